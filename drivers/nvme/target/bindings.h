/* SPDX-License-Identifier: GPL-2.0 */
/* What bindgen sees for nvmet_tcp (see rust/glue/bindgen.mk). */
#include <linux/nvme.h>
#include <linux/nvme-tcp.h>
#include "target/nvmet.h"
#include "nvtr_helpers.h"
#include "nvtr_nvmet.h"
#include "nvmet_tcp_helpers.h"
