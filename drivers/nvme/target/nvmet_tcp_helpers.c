// SPDX-License-Identifier: GPL-2.0
/*
 * C side of nvmet_tcp: the shared socket helpers, and the C compiler's view of
 * the nvmet structures that the Rust side reads, checked at module load.
 */
#include "target/nvmet.h"
#include "nvtr_helpers.c"
#include "nvtr_nvmet.c"
#include "nvmet_tcp_helpers.h"

size_t nvmet_tcp_layout(unsigned int which)
{
	switch (which) {
	case NVMET_TCP_L_PORT_SIZE: return sizeof(struct nvmet_port);
	case NVMET_TCP_L_PORT_DISC_ADDR: return offsetof(struct nvmet_port, disc_addr);
	case NVMET_TCP_L_PORT_PRIV: return offsetof(struct nvmet_port, priv);
	case NVMET_TCP_L_PORT_INLINE_DATA_SIZE: return offsetof(struct nvmet_port, inline_data_size);
	case NVMET_TCP_L_DISC_TRADDR: return offsetof(struct nvmf_disc_rsp_page_entry, traddr);
	case NVMET_TCP_L_DISC_TRSVCID: return offsetof(struct nvmf_disc_rsp_page_entry, trsvcid);
	case NVMET_TCP_L_DISC_TSAS: return offsetof(struct nvmf_disc_rsp_page_entry, tsas);
	case NVMET_TCP_L_OPS_SIZE: return sizeof(struct nvmet_fabrics_ops);
	case NVMET_TCP_L_OPS_ADD_PORT: return offsetof(struct nvmet_fabrics_ops, add_port);
	case NVMET_TCP_L_OPS_REMOVE_PORT: return offsetof(struct nvmet_fabrics_ops, remove_port);
	case NVMET_TCP_L_CTRL_SIZE: return sizeof(struct nvmet_ctrl);
	case NVMET_TCP_L_REQ_SIZE: return sizeof(struct nvmet_req);
	case NVMET_TCP_L_SK_CTX_SIZE: return sizeof(struct nvtr_sk_ctx);
	default: return SIZE_MAX;
	}
}
