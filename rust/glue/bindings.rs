// SPDX-License-Identifier: GPL-2.0

//! Bindings to nvme-core, nvme-fabrics, nvmet and our C helpers.
//!
//! Generated at build time by `bindgen.mk` from the private headers of the kernel
//! source being built for, never committed. Types these items refer to come from
//! `kernel::bindings`, re-exported here so that the glue layer has one place to
//! take C types from.

#![allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks
)]

pub(crate) use kernel::bindings::*;
use kernel::ffi;
#[allow(unused_imports)]
use pin_init::{MaybeZeroable, Zeroable};

include!(env!("NVME_TCP_RS_BINDINGS"));
