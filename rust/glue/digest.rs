// SPDX-License-Identifier: GPL-2.0

//! The kernel's `crc32c()`, which uses the CPU's CRC instruction where there
//! is one: the byte step of the protocol crate's `Crc32c` in the modules.

use crate::glue::bindings;

/// The running (pre-inversion) CRC `crc` advanced over `data`.
pub(crate) fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is a valid, initialised slice of `data.len()` bytes for
    // the duration of the call; `crc32c()` only reads it.
    unsafe { bindings::nvtr_crc32c(crc, data.as_ptr().cast(), data.len()) }
}
