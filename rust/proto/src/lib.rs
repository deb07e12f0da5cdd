// SPDX-License-Identifier: GPL-2.0

//! Host build of the NVMe/TCP protocol module (see `nvme_tcp/mod.rs`), for
//! `cargo test`, fuzzing and the user-space test peer.

#![no_std]
#![forbid(unsafe_code)]

mod nvme_tcp;
pub use nvme_tcp::*;
