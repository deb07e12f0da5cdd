// SPDX-License-Identifier: GPL-2.0

//! NVMe/TCP host transport for nvme-fabrics, in Rust.
//!
//! Registers transport `tcp` with nvme-fabrics, so `nvme connect -t tcp`
//! reaches [`ctrl::TcpHost`], which creates a [`ctrl::TcpCtrl`] on
//! nvme-core: its queues (`queue.rs`) each one TCP connection, whose send
//! side is in `send.rs` and receive side in `recv.rs`, fed by the blk-mq
//! operations in `mq.rs`. Every controller is in `registry.rs`.

use kernel::{module::this_module, prelude::*};

// The glue layer's shared part that this module uses, and its own (host/).
#[path = "../../../rust/glue"]
mod glue {
    pub(crate) mod bindings;
    pub(crate) mod digest;
    pub(crate) mod fmt;
    pub(crate) mod layout;
    pub(crate) mod sock;
    pub(crate) mod sock_io;
    pub(crate) mod workqueue;
    pub(crate) mod host {
        pub(crate) mod blk;
        pub(crate) mod connect;
        pub(crate) mod fabrics;
        pub(crate) mod nvme;
        pub(crate) mod params;
        pub(crate) mod sock_read;
    }
}

#[path = "../../../rust/proto/src/nvme_tcp/mod.rs"]
pub mod proto;

mod ctrl;
mod mq;
mod queue;
mod recv;
mod registry;
mod send;

use glue::{
    host::{
        fabrics::{Registration, TCP_ALLOWED_OPTS, TCP_REQUIRED_OPTS},
        nvme::HostTables,
    },
    workqueue::{ModuleWq, ModuleWqGuard},
};

module! {
    type: NvmeTcpModule,
    name: "nvme_tcp",
    authors: ["nvme-tcp-rs developers"],
    description: "NVMe/TCP host transport (Rust)",
    license: "GPL",
    alias: ["nvme-tcp"],
}

/// The workqueue every queue's I/O work runs on (`nvme_tcp_wq`).
pub(crate) static WQ: ModuleWq = ModuleWq::new();

/// What nvme-core and blk-mq call controllers through.
pub(crate) static TABLES: HostTables<ctrl::TcpCtrl> = HostTables::new(c"tcp", this_module::<LocalModule>());

#[pin_data]
struct NvmeTcpModule {
    // Field order is teardown order: no new controllers, then none at all,
    // then no work.
    #[pin]
    _registration: Registration<ctrl::TcpHost>,
    _ctrls: registry::DeleteAllOnDrop,
    _wq: ModuleWqGuard,
}

impl kernel::InPlaceModule for NvmeTcpModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _wq: {
                check_layout()?;
                registry::init();
                WQ.create(c"nvme_tcp_wq", glue::host::params::wq_unbound())?
            },
            _ctrls: registry::DeleteAllOnDrop,
            _registration <- Registration::new(
                c"tcp",
                TCP_REQUIRED_OPTS,
                TCP_ALLOWED_OPTS,
                this_module::<LocalModule>(),
            ),
        })
    }
}

/// Refuses to load if bindgen's view of the nvme-core, nvme-fabrics and
/// blk-mq structures differs from gcc's.
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
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_SIZE, size_of::<b::nvmf_ctrl_options>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_SUBSYSNQN, offset_of!(b::nvmf_ctrl_options, subsysnqn)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_TRADDR, offset_of!(b::nvmf_ctrl_options, traddr)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_TRSVCID, offset_of!(b::nvmf_ctrl_options, trsvcid)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_HOST_TRADDR, offset_of!(b::nvmf_ctrl_options, host_traddr)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_HOST_IFACE, offset_of!(b::nvmf_ctrl_options, host_iface)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_QUEUE_SIZE, offset_of!(b::nvmf_ctrl_options, queue_size)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_NR_IO_QUEUES, offset_of!(b::nvmf_ctrl_options, nr_io_queues)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_NR_WRITE_QUEUES, offset_of!(b::nvmf_ctrl_options, nr_write_queues)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_KATO, offset_of!(b::nvmf_ctrl_options, kato)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_DUPLICATE_CONNECT, offset_of!(b::nvmf_ctrl_options, duplicate_connect)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_HDR_DIGEST, offset_of!(b::nvmf_ctrl_options, hdr_digest)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_DATA_DIGEST, offset_of!(b::nvmf_ctrl_options, data_digest)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_TOS, offset_of!(b::nvmf_ctrl_options, tos)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_TLS, offset_of!(b::nvmf_ctrl_options, tls)),
            fact!(nvme_tcp_layout_NVME_TCP_L_TRANSPORT_SIZE, size_of::<b::nvmf_transport_ops>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_TRANSPORT_CREATE_CTRL, offset_of!(b::nvmf_transport_ops, create_ctrl)),
            // Embedded by value (`NvmeCtrl`), and read through projections.
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_SIZE, size_of::<b::nvme_ctrl>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_OPTS, offset_of!(b::nvme_ctrl, opts)),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_QUEUE_COUNT, offset_of!(b::nvme_ctrl, queue_count)),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_SQSIZE, offset_of!(b::nvme_ctrl, sqsize)),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_IOCCSZ, offset_of!(b::nvme_ctrl, ioccsz)),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_INSTANCE, offset_of!(b::nvme_ctrl, instance)),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_OPS_SIZE, size_of::<b::nvme_ctrl_ops>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_OPS_FREE_CTRL, offset_of!(b::nvme_ctrl_ops, free_ctrl)),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_OPS_GET_VIRT_BOUNDARY, offset_of!(b::nvme_ctrl_ops, get_virt_boundary)),
            // The start of every request's PDU (`nvme_req()`).
            fact!(nvme_tcp_layout_NVME_TCP_L_REQUEST_SIZE, size_of::<b::nvme_request>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_REQUEST_CMD, offset_of!(b::nvme_request, cmd)),
            fact!(nvme_tcp_layout_NVME_TCP_L_REQUEST_CTRL, offset_of!(b::nvme_request, ctrl)),
            fact!(nvme_tcp_layout_NVME_TCP_L_RQ_SIZE, size_of::<b::request>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_RQ_TAG, offset_of!(b::request, tag)),
            fact!(nvme_tcp_layout_NVME_TCP_L_MQ_OPS_SIZE, size_of::<b::blk_mq_ops>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_MQ_OPS_MAP_QUEUES, offset_of!(b::blk_mq_ops, map_queues)),
            fact!(nvme_tcp_layout_NVME_TCP_L_TAG_SET_SIZE, size_of::<b::blk_mq_tag_set>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_TAG_SET_QUEUE_DEPTH, offset_of!(b::blk_mq_tag_set, queue_depth)),
            fact!(nvme_tcp_layout_NVME_TCP_L_TAG_SET_DRIVER_DATA, offset_of!(b::blk_mq_tag_set, driver_data)),
            fact!(nvme_tcp_layout_NVME_TCP_L_HCTX_DRIVER_DATA, offset_of!(b::blk_mq_hw_ctx, driver_data)),
            fact!(nvme_tcp_layout_NVME_TCP_L_SK_CTX_SIZE, size_of::<b::nvtr_sk_ctx>()),
        ],
        // SAFETY: `nvme_tcp_layout` is a pure function of its argument.
        |id| unsafe { b::nvme_tcp_layout(id) },
    )
}
