/* SPDX-License-Identifier: GPL-2.0 */
/* nvmet_tcp's C helpers: layout facts the Rust side checks at load time. */
#ifndef NVMET_TCP_HELPERS_H
#define NVMET_TCP_HELPERS_H

#include <linux/types.h>

enum nvmet_tcp_layout {
	NVMET_TCP_L_PORT_SIZE,
	NVMET_TCP_L_PORT_DISC_ADDR,
	NVMET_TCP_L_PORT_PRIV,
	NVMET_TCP_L_PORT_INLINE_DATA_SIZE,
	NVMET_TCP_L_DISC_TRADDR,
	NVMET_TCP_L_DISC_TRSVCID,
	NVMET_TCP_L_DISC_TSAS,
	NVMET_TCP_L_OPS_SIZE,
	NVMET_TCP_L_OPS_ADD_PORT,
	NVMET_TCP_L_OPS_REMOVE_PORT,
	NVMET_TCP_L_CTRL_SIZE,
	NVMET_TCP_L_REQ_SIZE,
	NVMET_TCP_L_SK_CTX_SIZE,
	NVMET_TCP_L_SQ_SIZE,
	NVMET_TCP_L_SQ_CTRL,
	NVMET_TCP_L_SQ_QID,
	NVMET_TCP_L_SQ_SIZE_FIELD,
	NVMET_TCP_L_SQ_SQHD_DISABLED,
	NVMET_TCP_L_CQ_SIZE,
	NVMET_TCP_L_REQ_CMD,
	NVMET_TCP_L_REQ_CQE,
	NVMET_TCP_L_REQ_SG,
	NVMET_TCP_L_REQ_TRANSFER_LEN,
	NVMET_TCP_L_REQ_PORT,
	NVMET_TCP_L_COUNT,
};

/* The C compiler's value of a layout fact (sizeof or offsetof). */
size_t nvmet_tcp_layout(unsigned int which);

/* Largest data transfer of one command and largest H2CData PDU, as the C target. */
#define NVMET_TCP_MAX_H2C_DATA (4 * 1024 * 1024)

/* Module parameters (see nvmet_tcp_helpers.c). */
int nvmet_tcp_so_priority(void);
/* jiffies until which the I/O work keeps polling an idle queue; 0: no polling. */
unsigned long nvmet_tcp_poll_deadline(void);
bool nvmet_tcp_deadline_passed(unsigned long deadline);
u32 nvmet_tcp_max_h2c_data(void);

#endif
