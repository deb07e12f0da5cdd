// SPDX-License-Identifier: GPL-2.0
/*
 * C side of nvmet_tcp: the shared socket helpers, and a check that the nvmet
 * structures have the layout the Rust side was generated against.
 */
#include "target/nvmet.h"
#include "nvtr_helpers.c"
