// SPDX-License-Identifier: GPL-2.0

//! Kernel formatting for the protocol crate's types.
//!
//! `pr_*!` take `kernel::fmt::Display`; the `no_std` protocol crate implements
//! `core::fmt::Display`, which this forwards to.

impl kernel::fmt::Display for crate::proto::Error {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}
