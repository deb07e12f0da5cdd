// SPDX-License-Identifier: GPL-2.0

//! NVMe/TCP target transport for nvmet, in Rust.
//!
//! Registers transport type `tcp` (`NVMF_TRTYPE_TCP`) with nvmet, so a configfs
//! port with `addr_trtype tcp` loads this module and reaches
//! [`transport::TcpTransport`], which enables a [`port::Port`] for it. Each
//! accepted connection is a [`queue::Queue`]: its receive side in `recv.rs`,
//! its send side in `send.rs`, its command slots in `command.rs`; every live
//! queue is in `registry.rs`.

use kernel::{module::this_module, prelude::*};

// The glue layer's shared part, and its own (target/).
#[path = "../../../rust/glue"]
mod glue {
    pub(crate) mod bindings;
    pub(crate) mod digest;
    pub(crate) mod fmt;
    pub(crate) mod layout;
    pub(crate) mod sock;
    pub(crate) mod sock_io;
    pub(crate) mod workqueue;
    pub(crate) mod target {
        pub(crate) mod listen;
        pub(crate) mod nvmet;
        pub(crate) mod params;
        pub(crate) mod splice;
        pub(crate) mod wq;
    }
}

#[path = "../../../rust/proto/src/nvme_tcp/mod.rs"]
pub mod proto;

mod command;
mod port;
mod queue;
mod recv;
mod registry;
mod send;
mod transport;

use glue::{
    target::nvmet::{OpsTable, Registration},
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

/// The workqueue that releases ended queues. Not [`WQ`]: a release waits for
/// its queue's I/O work, and a work item that flushes another one of its own
/// `WQ_MEM_RECLAIM` queue can deadlock when only that queue's rescuer runs,
/// under memory pressure (lockdep reports the recursion).
pub(crate) static RELEASE_WQ: ModuleWq = ModuleWq::new();

pub(crate) static OPS: OpsTable<transport::TcpTransport> = OpsTable::tcp(this_module::<LocalModule>());

struct NvmetTcpModule {
    // Field order is teardown order: no new ports, then no queues, then no
    // releases (which wait for I/O work), then no work.
    _registration: Registration<transport::TcpTransport>,
    _queues: registry::ShutdownOnDrop,
    _release_wq: ModuleWqGuard,
    _wq: ModuleWqGuard,
}

impl kernel::Module for NvmetTcpModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        check_layout()?;
        registry::init()?;
        let wq = WQ.create(c"nvmet_tcp_wq", false)?;
        let release_wq = RELEASE_WQ.create(c"nvmet_tcp_release_wq", false)?;
        let registration = Registration::new(&OPS)?;
        Ok(Self {
            _registration: registration,
            _queues: registry::ShutdownOnDrop,
            _release_wq: release_wq,
            _wq: wq,
        })
    }
}

/// Refuses to load if bindgen's view of the nvmet structures differs from gcc's.
fn check_layout() -> Result {
    use core::mem::{offset_of, size_of};
    use glue::bindings as b;
    macro_rules! fact {
        ($id:ident, $value:expr) => {
            (b::$id, $value, stringify!($value))
        };
    }
    glue::layout::check(
        &[
            fact!(nvmet_tcp_layout_NVMET_TCP_L_PORT_SIZE, size_of::<b::nvmet_port>()),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_PORT_DISC_ADDR, offset_of!(b::nvmet_port, disc_addr)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_PORT_PRIV, offset_of!(b::nvmet_port, priv_)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_PORT_INLINE_DATA_SIZE, offset_of!(b::nvmet_port, inline_data_size)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_DISC_TRADDR, offset_of!(b::nvmf_disc_rsp_page_entry, traddr)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_DISC_TRSVCID, offset_of!(b::nvmf_disc_rsp_page_entry, trsvcid)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_DISC_TSAS, offset_of!(b::nvmf_disc_rsp_page_entry, tsas)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_OPS_SIZE, size_of::<b::nvmet_fabrics_ops>()),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_OPS_ADD_PORT, offset_of!(b::nvmet_fabrics_ops, add_port)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_OPS_REMOVE_PORT, offset_of!(b::nvmet_fabrics_ops, remove_port)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_CTRL_SIZE, size_of::<b::nvmet_ctrl>()),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_REQ_SIZE, size_of::<b::nvmet_req>()),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_SK_CTX_SIZE, size_of::<b::nvtr_sk_ctx>()),
            // Embedded by value (`NvmetSq`), and read through projections.
            fact!(nvmet_tcp_layout_NVMET_TCP_L_SQ_SIZE, size_of::<b::nvmet_sq>()),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_SQ_CTRL, offset_of!(b::nvmet_sq, ctrl)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_SQ_QID, offset_of!(b::nvmet_sq, qid)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_SQ_SIZE_FIELD, offset_of!(b::nvmet_sq, size)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_SQ_SQHD_DISABLED, offset_of!(b::nvmet_sq, sqhd_disabled)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_CQ_SIZE, size_of::<b::nvmet_cq>()),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_REQ_CMD, offset_of!(b::nvmet_req, cmd)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_REQ_CQE, offset_of!(b::nvmet_req, cqe)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_REQ_SG, offset_of!(b::nvmet_req, sg)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_REQ_TRANSFER_LEN, offset_of!(b::nvmet_req, transfer_len)),
            fact!(nvmet_tcp_layout_NVMET_TCP_L_REQ_PORT, offset_of!(b::nvmet_req, port)),
        ],
        // SAFETY: `nvmet_tcp_layout` is a pure function of its argument.
        |id| unsafe { b::nvmet_tcp_layout(id) },
    )
}
