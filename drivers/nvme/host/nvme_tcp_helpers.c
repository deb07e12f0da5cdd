// SPDX-License-Identifier: GPL-2.0
/*
 * C side of nvme_tcp: the shared socket helpers, nvme-core's static inlines,
 * the module parameters, and the C compiler's view of the nvme-core,
 * nvme-fabrics and blk-mq structures that the Rust side reads, checked at
 * module load.
 */
#include <linux/blk-mq.h>
#include "host/nvme.h"
#include "host/fabrics.h"
#include "nvtr_helpers.c"
#include "nvtr_host.c"
#include "nvme_tcp_helpers.h"

size_t nvme_tcp_layout(unsigned int which)
{
	switch (which) {
	case NVME_TCP_L_OPTS_SIZE: return sizeof(struct nvmf_ctrl_options);
	case NVME_TCP_L_OPTS_SUBSYSNQN: return offsetof(struct nvmf_ctrl_options, subsysnqn);
	case NVME_TCP_L_OPTS_TRADDR: return offsetof(struct nvmf_ctrl_options, traddr);
	case NVME_TCP_L_OPTS_TRSVCID: return offsetof(struct nvmf_ctrl_options, trsvcid);
	case NVME_TCP_L_OPTS_HOST_TRADDR: return offsetof(struct nvmf_ctrl_options, host_traddr);
	case NVME_TCP_L_OPTS_HOST_IFACE: return offsetof(struct nvmf_ctrl_options, host_iface);
	case NVME_TCP_L_OPTS_QUEUE_SIZE: return offsetof(struct nvmf_ctrl_options, queue_size);
	case NVME_TCP_L_OPTS_NR_IO_QUEUES: return offsetof(struct nvmf_ctrl_options, nr_io_queues);
	case NVME_TCP_L_OPTS_NR_WRITE_QUEUES: return offsetof(struct nvmf_ctrl_options, nr_write_queues);
	case NVME_TCP_L_OPTS_KATO: return offsetof(struct nvmf_ctrl_options, kato);
	case NVME_TCP_L_OPTS_DUPLICATE_CONNECT: return offsetof(struct nvmf_ctrl_options, duplicate_connect);
	case NVME_TCP_L_OPTS_HDR_DIGEST: return offsetof(struct nvmf_ctrl_options, hdr_digest);
	case NVME_TCP_L_OPTS_DATA_DIGEST: return offsetof(struct nvmf_ctrl_options, data_digest);
	case NVME_TCP_L_OPTS_TOS: return offsetof(struct nvmf_ctrl_options, tos);
	case NVME_TCP_L_OPTS_TLS: return offsetof(struct nvmf_ctrl_options, tls);
	case NVME_TCP_L_TRANSPORT_SIZE: return sizeof(struct nvmf_transport_ops);
	case NVME_TCP_L_TRANSPORT_CREATE_CTRL: return offsetof(struct nvmf_transport_ops, create_ctrl);
	case NVME_TCP_L_CTRL_SIZE: return sizeof(struct nvme_ctrl);
	case NVME_TCP_L_CTRL_OPTS: return offsetof(struct nvme_ctrl, opts);
	case NVME_TCP_L_CTRL_QUEUE_COUNT: return offsetof(struct nvme_ctrl, queue_count);
	case NVME_TCP_L_CTRL_SQSIZE: return offsetof(struct nvme_ctrl, sqsize);
	case NVME_TCP_L_CTRL_IOCCSZ: return offsetof(struct nvme_ctrl, ioccsz);
	case NVME_TCP_L_CTRL_INSTANCE: return offsetof(struct nvme_ctrl, instance);
	case NVME_TCP_L_CTRL_OPS_SIZE: return sizeof(struct nvme_ctrl_ops);
	case NVME_TCP_L_CTRL_OPS_FREE_CTRL: return offsetof(struct nvme_ctrl_ops, free_ctrl);
	case NVME_TCP_L_CTRL_OPS_GET_VIRT_BOUNDARY: return offsetof(struct nvme_ctrl_ops, get_virt_boundary);
	case NVME_TCP_L_REQUEST_SIZE: return sizeof(struct nvme_request);
	case NVME_TCP_L_REQUEST_CMD: return offsetof(struct nvme_request, cmd);
	case NVME_TCP_L_REQUEST_CTRL: return offsetof(struct nvme_request, ctrl);
	case NVME_TCP_L_RQ_SIZE: return sizeof(struct request);
	case NVME_TCP_L_RQ_TAG: return offsetof(struct request, tag);
	case NVME_TCP_L_MQ_OPS_SIZE: return sizeof(struct blk_mq_ops);
	case NVME_TCP_L_MQ_OPS_MAP_QUEUES: return offsetof(struct blk_mq_ops, map_queues);
	case NVME_TCP_L_TAG_SET_SIZE: return sizeof(struct blk_mq_tag_set);
	case NVME_TCP_L_TAG_SET_QUEUE_DEPTH: return offsetof(struct blk_mq_tag_set, queue_depth);
	case NVME_TCP_L_TAG_SET_DRIVER_DATA: return offsetof(struct blk_mq_tag_set, driver_data);
	case NVME_TCP_L_HCTX_DRIVER_DATA: return offsetof(struct blk_mq_hw_ctx, driver_data);
	case NVME_TCP_L_SK_CTX_SIZE: return sizeof(struct nvtr_sk_ctx);
	default: return SIZE_MAX;
	}
}

/*
 * Module parameters, as the C nvme-tcp's (same names and meaning). Rust
 * reads them through the getters below (READ_ONCE: they may change at any
 * time through /sys/module/nvme_tcp/parameters/).
 */
static int so_priority;
module_param(so_priority, int, 0644);
MODULE_PARM_DESC(so_priority, "nvme tcp socket optimize priority");

static bool wq_unbound;
module_param(wq_unbound, bool, 0644);
MODULE_PARM_DESC(wq_unbound, "Use unbound workqueue for nvme-tcp IO context (default false)");

int nvme_tcp_so_priority(void)
{
	return READ_ONCE(so_priority);
}

bool nvme_tcp_wq_unbound(void)
{
	return READ_ONCE(wq_unbound);
}
