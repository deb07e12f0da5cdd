/* SPDX-License-Identifier: GPL-2.0 */
/* nvme_tcp's C helpers: layout facts the Rust side checks at load time. */
#ifndef NVME_TCP_HELPERS_H
#define NVME_TCP_HELPERS_H

#include <linux/types.h>

enum nvme_tcp_layout {
	NVME_TCP_L_OPTS_SIZE,
	NVME_TCP_L_OPTS_SUBSYSNQN,
	NVME_TCP_L_OPTS_TRADDR,
	NVME_TCP_L_OPTS_TRSVCID,
	NVME_TCP_L_OPTS_HOST_TRADDR,
	NVME_TCP_L_OPTS_HDR_DIGEST,
	NVME_TCP_L_OPTS_DATA_DIGEST,
	NVME_TCP_L_OPTS_TOS,
	NVME_TCP_L_TRANSPORT_SIZE,
	NVME_TCP_L_TRANSPORT_CREATE_CTRL,
	NVME_TCP_L_CTRL_SIZE,
	NVME_TCP_L_SK_CTX_SIZE,
	NVME_TCP_L_COUNT,
};

/* The C compiler's value of a layout fact (sizeof or offsetof). */
size_t nvme_tcp_layout(unsigned int which);

#endif
