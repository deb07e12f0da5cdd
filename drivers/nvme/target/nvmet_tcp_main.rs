// SPDX-License-Identifier: GPL-2.0

//! NVMe/TCP target transport for nvmet, in Rust.
//!
//! Registers transport type `tcp` (`NVMF_TRTYPE_TCP`) with nvmet, so a configfs
//! port with `addr_trtype tcp` loads this module and reaches [`port::Port`].
//! Each accepted connection is a [`queue::Queue`].

use kernel::{module::this_module, prelude::*};

// Shared with the other module, which uses the parts this one does not.
#[allow(dead_code)]
#[path = "../../../rust/glue"]
mod glue {
    pub(crate) mod bindings;
    pub(crate) mod fmt;
    pub(crate) mod nvmet;
    pub(crate) mod sock;
    pub(crate) mod workqueue;
}

#[path = "../../../rust/proto/src/nvme_tcp/mod.rs"]
pub mod proto;

mod port;
mod queue;

use glue::{
    nvmet::{OpsTable, Registration},
    workqueue::{ModuleWq, ModuleWqGuard},
};

module! {
    type: NvmetTcpModule,
    name: "nvmet_tcp",
    authors: ["nvme-tcp-rs developers"],
    description: "NVMe/TCP target transport (Rust)",
    license: "GPL",
    alias: ["nvmet-transport-3"],
}

/// The workqueue that runs every port's accept work and every queue's I/O work.
pub(crate) static WQ: ModuleWq = ModuleWq::new();

static OPS: OpsTable<port::TcpTransport> = OpsTable::tcp(this_module::<LocalModule>());

struct NvmetTcpModule {
    // Field order is teardown order: no new ports, then no queues, then no work.
    _registration: Registration<port::TcpTransport>,
    _queues: queue::ShutdownOnDrop,
    _wq: ModuleWqGuard,
}

impl kernel::Module for NvmetTcpModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        queue::init_registry();
        let wq = WQ.create(c"nvmet_tcp_wq")?;
        let registration = Registration::new(&OPS)?;
        Ok(Self { _registration: registration, _queues: queue::ShutdownOnDrop, _wq: wq })
    }
}
