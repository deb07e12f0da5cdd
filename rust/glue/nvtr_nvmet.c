// SPDX-License-Identifier: GPL-2.0
/* See nvtr_nvmet.h. Included by the nvmet_tcp module's C helpers. */
#include <linux/scatterlist.h>
#include "target/nvmet.h"
#include "nvtr_nvmet.h"

bool nvtr_req_is_write(struct nvmet_req *req)
{
	return req->cmd && nvme_is_write(req->cmd);
}

void nvtr_req_execute(struct nvmet_req *req)
{
	req->execute(req);
}

int nvtr_req_alloc_data(struct nvmet_req *req, unsigned int len)
{
	unsigned int nents = 0;

	req->sg = sgl_alloc(len, GFP_KERNEL | __GFP_NOWARN, &nents);
	if (!req->sg)
		return -ENOMEM;
	req->sg_cnt = nents;
	return 0;
}

void nvtr_req_free_data(struct nvmet_req *req)
{
	if (req->sg) {
		sgl_free(req->sg);
		req->sg = NULL;
		req->sg_cnt = 0;
	}
}
