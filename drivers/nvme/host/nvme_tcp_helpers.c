// SPDX-License-Identifier: GPL-2.0
/*
 * C side of nvme_tcp: the shared socket helpers, and the C compiler's view of
 * the nvme-core/nvme-fabrics structures that the Rust side reads, checked at
 * module load.
 */
#include "host/nvme.h"
#include "host/fabrics.h"
#include "nvtr_helpers.c"
#include "nvme_tcp_helpers.h"

size_t nvme_tcp_layout(unsigned int which)
{
	switch (which) {
	case NVME_TCP_L_OPTS_SIZE: return sizeof(struct nvmf_ctrl_options);
	case NVME_TCP_L_OPTS_SUBSYSNQN: return offsetof(struct nvmf_ctrl_options, subsysnqn);
	case NVME_TCP_L_OPTS_TRADDR: return offsetof(struct nvmf_ctrl_options, traddr);
	case NVME_TCP_L_OPTS_TRSVCID: return offsetof(struct nvmf_ctrl_options, trsvcid);
	case NVME_TCP_L_OPTS_HOST_TRADDR: return offsetof(struct nvmf_ctrl_options, host_traddr);
	case NVME_TCP_L_OPTS_HDR_DIGEST: return offsetof(struct nvmf_ctrl_options, hdr_digest);
	case NVME_TCP_L_OPTS_DATA_DIGEST: return offsetof(struct nvmf_ctrl_options, data_digest);
	case NVME_TCP_L_OPTS_TOS: return offsetof(struct nvmf_ctrl_options, tos);
	case NVME_TCP_L_TRANSPORT_SIZE: return sizeof(struct nvmf_transport_ops);
	case NVME_TCP_L_TRANSPORT_CREATE_CTRL: return offsetof(struct nvmf_transport_ops, create_ctrl);
	case NVME_TCP_L_CTRL_SIZE: return sizeof(struct nvme_ctrl);
	case NVME_TCP_L_SK_CTX_SIZE: return sizeof(struct nvtr_sk_ctx);
	default: return SIZE_MAX;
	}
}
