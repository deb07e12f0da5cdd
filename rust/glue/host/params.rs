// SPDX-License-Identifier: GPL-2.0

//! nvme_tcp's module parameters (defined in C, as the C nvme-tcp's, and
//! writable at run time through `/sys/module/nvme_tcp/parameters/`).

use crate::glue::bindings;

/// `so_priority`: socket priority of new queues (0 or less: unset).
pub(crate) fn so_priority() -> u32 {
    // SAFETY: a plain read of a module parameter.
    u32::try_from(unsafe { bindings::nvme_tcp_so_priority() }).unwrap_or(0)
}

/// `wq_unbound`: I/O works run unbound instead of on a CPU of their queue's.
pub(crate) fn wq_unbound() -> bool {
    // SAFETY: a plain read of a module parameter.
    unsafe { bindings::nvme_tcp_wq_unbound() }
}
