/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for nvme-core's and blk-mq's static inlines, used by the Rust
 * wrappers in rust/glue/host/ (nvme_tcp only).
 */
#ifndef NVTR_HOST_H
#define NVTR_HOST_H

#include <linux/types.h>

struct nvme_ctrl;
struct nvmf_ctrl_options;
struct request;
struct blk_mq_tag_set;
struct socket;
struct nvtr_bvecs;

struct work_struct;

/* INIT_WORK(&ctrl->reset_work, fn): the transport's reset (and error) work. */
void nvtr_init_reset_work(struct nvme_ctrl *ctrl, void (*fn)(struct work_struct *work));
/* The controller whose reset_work `work` is. */
struct nvme_ctrl *nvtr_reset_work_ctrl(struct work_struct *work);
/* nvme_ctrl_state(). */
unsigned int nvtr_ctrl_state(struct nvme_ctrl *ctrl);
/* nvme_check_ready(). */
bool nvtr_check_ready(struct nvme_ctrl *ctrl, struct request *rq, bool queue_live);
/* nvmf_nr_io_queues(): I/O queues the options ask for, capped at the CPUs online. */
unsigned int nvtr_nr_io_queues(struct nvmf_ctrl_options *opts);

/* nvme_start_request(). */
void nvtr_start_request(struct request *rq);
/*
 * Completes rq with a response's status (as on the wire: little endian, phase
 * bit included) and result: nvme_try_complete_req(), and nvme_complete_rq()
 * when that leaves the completion to the caller.
 */
void nvtr_complete_rq(struct request *rq, __le16 status, __le64 result);
/* nvme_complete_async_event() with a response's status and result. */
void nvtr_complete_aen(struct nvme_ctrl *ctrl, __le16 status, __le64 result);
/* nvmf_complete_timed_out_request(). */
void nvtr_complete_timed_out(struct request *rq);
/* The request of `tag` on hardware queue hctx_idx of set, or NULL. */
struct request *nvtr_tag_to_rq(struct blk_mq_tag_set *set, unsigned int hctx_idx,
			       unsigned int tag);
/* Bytes of data rq moves (0 without data segments), and its direction. */
unsigned int nvtr_rq_data_len(struct request *rq);
bool nvtr_rq_is_write(struct request *rq);
/* The transport queue of rq (its hardware context's driver_data). */
void *nvtr_rq_queue(struct request *rq);

/*
 * A request's data pages, from byte `offset` of its data on. nvtr_rq_map
 * puts the pages of up to `len` bytes into the table bvs (as many as it
 * holds) and returns the bytes they cover. A send (as nvtr_sock_send_bvecs)
 * splices the pages unless one of them may not be spliced (slab memory),
 * then it copies.
 */
unsigned int nvtr_rq_map(struct nvtr_bvecs *bvs, struct request *rq,
			 unsigned int offset, unsigned int len);
int nvtr_sock_send_rq(struct socket *sock, struct nvtr_bvecs *bvs,
		      struct request *rq, unsigned int offset, unsigned int len,
		      bool more);
/* Copies len bytes of buf into rq's data at offset. */
void nvtr_rq_copy_in(struct request *rq, unsigned int offset, const void *buf,
		     unsigned int len);
/* CRC32C (not inverted) of len bytes of rq's data from offset. */
u32 nvtr_rq_crc32c(u32 crc, struct request *rq, unsigned int offset, unsigned int len);

/*
 * Received bytes, handed over by TCP without a copy (its read_sock, with the
 * socket locked): nvtr_sock_read calls fn for each stretch of `len` bytes
 * from `offset` of an skb, in order, until fn returns 0 or -errno instead
 * of the bytes it took (TCP offers what fn leaves again). Returns the bytes
 * taken in all (TCP drops and acknowledges them), or fn's or TCP's -errno
 * if none were.
 * nvtr_skb_copy_bvecs copies up to `max` bytes from there into the pages of
 * bvs: the bytes copied or -errno.
 */
struct sk_buff;
typedef int (*nvtr_read_fn)(void *ctx, const struct sk_buff *skb,
			    unsigned int offset, unsigned int len);
int nvtr_sock_read(struct socket *sock, nvtr_read_fn fn, void *ctx);
int nvtr_skb_copy_bvecs(const struct sk_buff *skb, unsigned int offset,
			struct nvtr_bvecs *bvs, unsigned int max);

/*
 * The CPU for the I/O work of hardware queue hctx_idx (of all the set's) in
 * map `type` of set:
 * the online CPU mapped to it that the fewest queues of this module use
 * (counted until nvtr_io_cpu_put), or WORK_CPU_UNBOUND.
 */
int nvtr_io_cpu_get(struct blk_mq_tag_set *set, unsigned int type, unsigned int hctx_idx);
void nvtr_io_cpu_put(int cpu);

/* Whether a network device of that name exists in the caller's namespace. */
bool nvtr_netdev_exists(const char *name);
/* SO_BINDTODEVICE. */
int nvtr_sock_bind_dev(struct socket *sock, const char *ifname);
/* A TCP socket of family af in the caller's network namespace. */
int nvtr_sock_create_caller_ns(unsigned short af, struct socket **res);

#endif /* NVTR_HOST_H */
