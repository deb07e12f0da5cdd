/* SPDX-License-Identifier: GPL-2.0 */
/* What bindgen sees for nvme_tcp (see rust/glue/bindgen.mk). */
#include <linux/nvme.h>
#include <linux/nvme-tcp.h>
#include <linux/blk-mq.h>
#include "host/nvme.h"
#include "host/fabrics.h"
#include "nvtr_helpers.h"
#include "nvtr_host.h"
#include "nvme_tcp_helpers.h"
