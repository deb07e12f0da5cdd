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
	case NVMET_TCP_L_SQ_SIZE: return sizeof(struct nvmet_sq);
	case NVMET_TCP_L_SQ_CTRL: return offsetof(struct nvmet_sq, ctrl);
	case NVMET_TCP_L_SQ_QID: return offsetof(struct nvmet_sq, qid);
	case NVMET_TCP_L_SQ_SIZE_FIELD: return offsetof(struct nvmet_sq, size);
	case NVMET_TCP_L_SQ_SQHD_DISABLED: return offsetof(struct nvmet_sq, sqhd_disabled);
	case NVMET_TCP_L_CQ_SIZE: return sizeof(struct nvmet_cq);
	case NVMET_TCP_L_REQ_CMD: return offsetof(struct nvmet_req, cmd);
	case NVMET_TCP_L_REQ_CQE: return offsetof(struct nvmet_req, cqe);
	case NVMET_TCP_L_REQ_SG: return offsetof(struct nvmet_req, sg);
	case NVMET_TCP_L_REQ_TRANSFER_LEN: return offsetof(struct nvmet_req, transfer_len);
	case NVMET_TCP_L_REQ_PORT: return offsetof(struct nvmet_req, port);
	default: return SIZE_MAX;
	}
}

/*
 * Module parameters. The first two are the C nvmet-tcp's, with the same names
 * and meaning; max_h2c_data is ours. The `module!` macro's parameters are not
 * writable at run time, so they live here; Rust reads them through the
 * getters below (READ_ONCE: they may change at any time).
 */
static int nvmet_tcp_param_set_int(const char *val, const struct kernel_param *kp)
{
	int n, ret = kstrtoint(val, 10, &n);

	if (ret || n < 0)
		return -EINVAL;
	WRITE_ONCE(*(int *)kp->arg, n);
	return 0;
}

static const struct kernel_param_ops nvmet_tcp_nonneg_ops = {
	.set = nvmet_tcp_param_set_int,
	.get = param_get_int,
};

static int so_priority;
module_param_cb(so_priority, &nvmet_tcp_nonneg_ops, &so_priority, 0644);
MODULE_PARM_DESC(so_priority, "nvmet tcp socket optimize priority: Default 0");

static int idle_poll_period_usecs;
module_param_cb(idle_poll_period_usecs, &nvmet_tcp_nonneg_ops, &idle_poll_period_usecs, 0644);
MODULE_PARM_DESC(idle_poll_period_usecs,
		 "nvmet tcp io_work poll till idle time period in usecs: Default 0");

static int max_h2c_data = NVMET_TCP_MAX_H2C_DATA;

static int nvmet_tcp_set_max_h2c_data(const char *val, const struct kernel_param *kp)
{
	int n, ret = kstrtoint(val, 10, &n);

	if (ret || n < 4096 || n > NVMET_TCP_MAX_H2C_DATA || n % 4)
		return -EINVAL;
	WRITE_ONCE(max_h2c_data, n);
	return 0;
}

static const struct kernel_param_ops nvmet_tcp_h2c_ops = {
	.set = nvmet_tcp_set_max_h2c_data,
	.get = param_get_int,
};
module_param_cb(max_h2c_data, &nvmet_tcp_h2c_ops, &max_h2c_data, 0644);
MODULE_PARM_DESC(max_h2c_data,
		 "largest H2CData PDU offered to new connections (maxh2cdata), bytes: 4096..4194304, a multiple of 4; Default 4194304");

int nvmet_tcp_so_priority(void)
{
	return READ_ONCE(so_priority);
}

unsigned long nvmet_tcp_poll_deadline(void)
{
	int usecs = READ_ONCE(idle_poll_period_usecs);

	return usecs ? jiffies + usecs_to_jiffies(usecs) : 0;
}

bool nvmet_tcp_deadline_passed(unsigned long deadline)
{
	return !deadline || time_after(jiffies, deadline);
}

u32 nvmet_tcp_max_h2c_data(void)
{
	return READ_ONCE(max_h2c_data);
}
