// SPDX-License-Identifier: GPL-2.0

//! CRC32C by the kernel's `crc32c()`, which uses the CPU's CRC instruction
//! where there is one.
//!
//! In the modules this stands in for the protocol crate's portable
//! table-driven CRC32C (same API and results), so header digests are
//! computed as fast as the data digests. The portable one stays for host
//! tests and tools.

use crate::glue::bindings;

/// A running CRC32C.
#[derive(Clone, Copy, Debug)]
pub struct Crc32c(u32);

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// A digest over no bytes yet.
    pub const fn new() -> Self {
        Self(!0)
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: `data` is a valid, initialised slice of `data.len()` bytes
        // for the duration of the call; `crc32c()` only reads it.
        self.0 = unsafe { bindings::nvtr_crc32c(self.0, data.as_ptr().cast(), data.len()) };
    }

    /// The digest of everything added.
    pub const fn finish(&self) -> u32 {
        !self.0
    }
}

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(data);
    c.finish()
}
