// SPDX-License-Identifier: GPL-2.0

//! CRC32C (Castagnoli), the NVMe/TCP header and data digest.
//!
//! The digest is the standard CRC-32C: initial value and final XOR
//! `0xFFFF_FFFF`, reflected, stored on the wire little-endian. In the kernel
//! modules (`--cfg MODULE`) the bytes go through the kernel's `crc32c()`,
//! which uses the CPU's CRC instruction where there is one; elsewhere (host
//! tests, tools) through the portable table-driven (slice-by-8) walk
//! below. Both give the same answers.

#[cfg(MODULE)]
use crate::glue::digest::crc32c_update as update;

/// Reflected Castagnoli polynomial.
#[cfg(not(MODULE))]
const POLY: u32 = 0x82F6_3B78;

#[cfg(not(MODULE))]
const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLY } else { crc >> 1 };
            k += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut j = 1;
        while j < 8 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            j += 1;
        }
        i += 1;
    }
    t
}

#[cfg(not(MODULE))]
static TABLES: [[u32; 256]; 8] = make_tables();

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
        self.0 = update(self.0, data);
    }

    /// The digest of everything added.
    pub const fn finish(&self) -> u32 {
        !self.0
    }

    /// The running state: the CRC register before the final inversion
    /// (`!finish()`). Code that digests bytes elsewhere (the kernel's
    /// `crc32c()` over pages) continues from it, and [`Crc32c::resume`]
    /// takes the result back.
    pub const fn state(&self) -> u32 {
        self.0
    }

    /// A digest that continues from `state`, a [`Crc32c::state`] advanced
    /// over more bytes (`Crc32c::resume(Crc32c::new().state())` is a digest
    /// over no bytes yet).
    pub const fn resume(state: u32) -> Self {
        Self(state)
    }
}

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(data);
    c.finish()
}

/// The running (pre-inversion) CRC `crc` advanced over `data`: the portable
/// slice-by-8 table walk.
#[cfg(not(MODULE))]
fn update(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    // PANIC: `c` has exactly 8 bytes, and every table index is masked to a byte.
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][c[4] as usize]
            ^ TABLES[2][c[5] as usize]
            ^ TABLES[1][c[6] as usize]
            ^ TABLES[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_resume_continues_the_digest() {
        let mut c = Crc32c::new();
        c.update(b"1234");
        let mut r = Crc32c::resume(c.state());
        r.update(b"56789");
        assert_eq!(r.finish(), 0xE306_9283);
        assert_eq!(Crc32c::resume(Crc32c::new().state()).finish(), 0);
        assert_eq!(Crc32c::new().state(), !0);
    }
}
