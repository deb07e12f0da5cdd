// SPDX-License-Identifier: GPL-2.0
/*
 * C side of nvme_tcp: the shared socket helpers.
 */
#include "host/nvme.h"
#include "host/fabrics.h"
#include "nvtr_helpers.c"
