// SPDX-License-Identifier: GPL-2.0

//! Host build of the NVMe/TCP protocol module (see `nvme_tcp/mod.rs`, which
//! also forbids `unsafe` code), for `cargo test`, fuzzing and the user-space
//! test peer.

#![no_std]

mod nvme_tcp;
pub use nvme_tcp::*;
