/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for nvmet's static inlines and function pointers, used by the
 * Rust wrappers in rust/glue/nvmet.rs (nvmet_tcp only).
 */
#ifndef NVTR_NVMET_H
#define NVTR_NVMET_H

#include <linux/types.h>

struct nvmet_req;
struct nvmet_sq;
struct nvmet_port;
struct scatterlist;

/* nvme_is_write(req->cmd); false while req->cmd is NULL. */
bool nvtr_req_is_write(struct nvmet_req *req);
/* req->execute(req). */
void nvtr_req_execute(struct nvmet_req *req);
/* The request's data buffer: allocates `len` bytes into req->sg (0 or -ENOMEM). */
int nvtr_req_alloc_data(struct nvmet_req *req, unsigned int len);
/* Frees what nvtr_req_alloc_data() allocated (no-op without). */
void nvtr_req_free_data(struct nvmet_req *req);

#endif /* NVTR_NVMET_H */
