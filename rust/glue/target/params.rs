// SPDX-License-Identifier: GPL-2.0

//! nvmet_tcp's module parameters (defined in C, writable at run time through
//! `/sys/module/nvmet_tcp/parameters/`).

use crate::glue::bindings;

/// `so_priority`: socket priority of listeners and connections (0: unset).
pub(crate) fn so_priority() -> u32 {
    // SAFETY: a plain read of a module parameter.
    let p = unsafe { bindings::nvmet_tcp_so_priority() };
    u32::try_from(p).unwrap_or(0)
}

/// `max_h2c_data`: the `maxh2cdata` offered in new connections' ICResp.
pub(crate) fn max_h2c_data() -> u32 {
    // SAFETY: a plain read of a module parameter.
    unsafe { bindings::nvmet_tcp_max_h2c_data() }
}

/// `idle_poll_period_usecs` as a deadline: the I/O work keeps polling an idle
/// queue until it passes.
#[derive(Clone, Copy, Default)]
pub(crate) struct PollDeadline(kernel::ffi::c_ulong);

impl PollDeadline {
    /// A deadline one poll period from now (never, when polling is off).
    pub(crate) fn arm() -> Self {
        // SAFETY: reads a module parameter and jiffies.
        Self(unsafe { bindings::nvmet_tcp_poll_deadline() })
    }

    /// Whether polling should stop.
    pub(crate) fn passed(self) -> bool {
        // 0: polling is off (no call needed for the common case).
        // SAFETY: compares with jiffies.
        self.0 == 0 || unsafe { bindings::nvmet_tcp_deadline_passed(self.0) }
    }
}
