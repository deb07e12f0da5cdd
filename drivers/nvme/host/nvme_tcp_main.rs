// SPDX-License-Identifier: GPL-2.0

//! NVMe/TCP host transport for nvme-fabrics, in Rust.
//!
//! Registers transport `tcp` with nvme-fabrics, so `nvme connect -t tcp`
//! reaches [`ctrl::TcpHost::create_ctrl`].

use kernel::{module::this_module, prelude::*};

// Shared with the other module, which uses the parts this one does not.
#[allow(dead_code)]
#[path = "../../../rust/glue"]
mod glue {
    pub(crate) mod bindings;
    pub(crate) mod fmt;
    pub(crate) mod fabrics;
    pub(crate) mod sock;
}

#[path = "../../../rust/proto/src/nvme_tcp/mod.rs"]
pub mod proto;

mod ctrl;

use glue::fabrics::{Registration, TCP_ALLOWED_OPTS, TCP_REQUIRED_OPTS};

module! {
    type: NvmeTcpModule,
    name: "nvme_tcp",
    authors: ["nvme-tcp-rs developers"],
    description: "NVMe/TCP host transport (Rust)",
    license: "GPL",
}

#[pin_data]
struct NvmeTcpModule {
    #[pin]
    _registration: Registration<ctrl::TcpHost>,
}

impl kernel::InPlaceModule for NvmeTcpModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _registration <- Registration::new(
                c"tcp",
                TCP_REQUIRED_OPTS,
                TCP_ALLOWED_OPTS,
                this_module::<LocalModule>(),
            ),
        })
    }
}
