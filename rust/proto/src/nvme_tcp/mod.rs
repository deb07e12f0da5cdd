// SPDX-License-Identifier: GPL-2.0

//! The NVMe/TCP wire protocol: PDU layouts, framing checks with typed errors,
//! CRC32C digests, and the receive state machine ([`Receiver`]) both ends
//! drive from their sockets.
//!
//! Kernel-independent and `no_std`: the same source is compiled into both
//! kernel modules (as their `proto` module) and tested on the host as the
//! `nvme-tcp-proto` crate. Nothing here allocates, blocks or panics on peer
//! input.
//!
//! No `unsafe` either: the lint is set here, not in the host crate's root,
//! so that the kernel modules, which include this file as a module of their
//! own, are held to it too.

#![forbid(unsafe_code)]

mod crc32c;
mod error;
mod pdu;
mod rx;

pub use crc32c::{crc32c, Crc32c};
pub use error::{Error, Fes, Field};
pub use pdu::*;
pub use rx::{Limits, Receiver, Step};
