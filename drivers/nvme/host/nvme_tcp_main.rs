// SPDX-License-Identifier: GPL-2.0

//! NVMe/TCP host transport for nvme-fabrics, in Rust.
//!
//! Registers transport `tcp` with nvme-fabrics, so `nvme connect -t tcp`
//! reaches [`ctrl::TcpHost::create_ctrl`].

use kernel::{module::this_module, prelude::*};

// The glue layer's shared part that this module uses, and its own (host/).
#[path = "../../../rust/glue"]
mod glue {
    pub(crate) mod bindings;
    pub(crate) mod digest;
    pub(crate) mod fmt;
    pub(crate) mod layout;
    pub(crate) mod sock;
    pub(crate) mod host {
        pub(crate) mod connect;
        pub(crate) mod fabrics;
    }
}

#[path = "../../../rust/proto/src/nvme_tcp/mod.rs"]
pub mod proto;

mod ctrl;

use glue::host::fabrics::{Registration, TCP_ALLOWED_OPTS, TCP_REQUIRED_OPTS};

module! {
    type: NvmeTcpModule,
    name: "nvme_tcp",
    authors: ["nvme-tcp-rs developers"],
    description: "NVMe/TCP host transport (Rust)",
    license: "GPL",
}

#[pin_data]
struct NvmeTcpModule {
    _layout: (),
    #[pin]
    _registration: Registration<ctrl::TcpHost>,
}

impl kernel::InPlaceModule for NvmeTcpModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _layout: check_layout()?,
            _registration <- Registration::new(
                c"tcp",
                TCP_REQUIRED_OPTS,
                TCP_ALLOWED_OPTS,
                this_module::<LocalModule>(),
            ),
        })
    }
}

/// Refuses to load if bindgen's view of the nvme-fabrics structures differs from gcc's.
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
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_HDR_DIGEST, offset_of!(b::nvmf_ctrl_options, hdr_digest)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_DATA_DIGEST, offset_of!(b::nvmf_ctrl_options, data_digest)),
            fact!(nvme_tcp_layout_NVME_TCP_L_OPTS_TOS, offset_of!(b::nvmf_ctrl_options, tos)),
            fact!(nvme_tcp_layout_NVME_TCP_L_TRANSPORT_SIZE, size_of::<b::nvmf_transport_ops>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_TRANSPORT_CREATE_CTRL, offset_of!(b::nvmf_transport_ops, create_ctrl)),
            fact!(nvme_tcp_layout_NVME_TCP_L_CTRL_SIZE, size_of::<b::nvme_ctrl>()),
            fact!(nvme_tcp_layout_NVME_TCP_L_SK_CTX_SIZE, size_of::<b::nvtr_sk_ctx>()),
        ],
        // SAFETY: `nvme_tcp_layout` is a pure function of its argument.
        |id| unsafe { b::nvme_tcp_layout(id) },
    )
}
