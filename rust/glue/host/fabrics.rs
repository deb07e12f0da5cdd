// SPDX-License-Identifier: GPL-2.0

//! nvme-fabrics' side of a host transport: registration and connect options.
//!
//! C: `drivers/nvme/host/fabrics.h` (`struct nvmf_transport_ops`,
//! `struct nvmf_ctrl_options`).

use crate::glue::bindings;
use core::{marker::PhantomData, ptr::{addr_of, NonNull}};
use kernel::{
    error::to_result,
    ffi::c_char,
    prelude::*,
    str::CStrExt,
    types::Opaque,
    ThisModule,
};

/// Options of one `nvme connect` (`struct nvmf_ctrl_options`), as parsed by
/// nvme-fabrics.
///
/// # Invariants
///
/// Wraps a valid `nvmf_ctrl_options` that nvme-fabrics does not change while
/// the transport's `create_ctrl` runs. Fields are read through raw-pointer
/// projections: no reference to the whole C structure is made.
#[repr(transparent)]
pub(crate) struct CtrlOptions(Opaque<bindings::nvmf_ctrl_options>);

impl CtrlOptions {
    /// An option string of these options.
    fn string(&self, ptr: *const c_char) -> Option<&CStr> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: nvme-fabrics' option strings are NUL-terminated and live as
        // long as the options (they are freed with them).
        Some(unsafe { CStr::from_char_ptr(ptr) })
    }

    fn opts(&self) -> *const bindings::nvmf_ctrl_options {
        self.0.get()
    }

    /// `traddr` (required by this transport).
    pub(crate) fn traddr(&self) -> Option<&CStr> {
        // SAFETY: a field of the valid options, unchanged during `create_ctrl` (type invariant).
        self.string(unsafe { addr_of!((*self.opts()).traddr).read() })
    }

    /// `trsvcid`, if given.
    pub(crate) fn trsvcid(&self) -> Option<&CStr> {
        // SAFETY: as in `traddr`.
        self.string(unsafe { addr_of!((*self.opts()).trsvcid).read() })
    }

    /// `host_traddr`, if given.
    pub(crate) fn host_traddr(&self) -> Option<&CStr> {
        // SAFETY: as in `traddr`.
        self.string(unsafe { addr_of!((*self.opts()).host_traddr).read() })
    }

    /// `subsysnqn`.
    pub(crate) fn subsysnqn(&self) -> Option<&CStr> {
        // SAFETY: as in `traddr`.
        self.string(unsafe { addr_of!((*self.opts()).subsysnqn).read() })
    }

    /// `hdr_digest`.
    pub(crate) fn hdr_digest(&self) -> bool {
        // SAFETY: as in `traddr`.
        unsafe { addr_of!((*self.opts()).hdr_digest).read() }
    }

    /// `data_digest`.
    pub(crate) fn data_digest(&self) -> bool {
        // SAFETY: as in `traddr`.
        unsafe { addr_of!((*self.opts()).data_digest).read() }
    }

    /// `tos`, negative when not given.
    pub(crate) fn tos(&self) -> i32 {
        // SAFETY: as in `traddr`.
        unsafe { addr_of!((*self.opts()).tos).read() }
    }
}

/// A controller that a transport created and hands to nvme-fabrics, which
/// takes over the reference that [`FabricsTransport::create_ctrl`] returns.
///
/// # Invariants
///
/// Points to an `nvme_ctrl` that nvme-core initialised (`nvme_init_ctrl`),
/// with one reference owned by this value.
pub(crate) struct NewCtrl(NonNull<bindings::nvme_ctrl>);

/// Options this transport requires and allows, as the C `nvme-tcp`.
pub(crate) const TCP_REQUIRED_OPTS: u32 = bindings::NVMF_OPT_TRADDR;
/// See [`TCP_REQUIRED_OPTS`].
pub(crate) const TCP_ALLOWED_OPTS: u32 = bindings::NVMF_OPT_TRSVCID
    | bindings::NVMF_OPT_RECONNECT_DELAY
    | bindings::NVMF_OPT_HOST_TRADDR
    | bindings::NVMF_OPT_CTRL_LOSS_TMO
    | bindings::NVMF_OPT_HDR_DIGEST
    | bindings::NVMF_OPT_DATA_DIGEST
    | bindings::NVMF_OPT_NR_WRITE_QUEUES
    | bindings::NVMF_OPT_NR_POLL_QUEUES
    | bindings::NVMF_OPT_TOS
    | bindings::NVMF_OPT_HOST_IFACE
    | bindings::NVMF_OPT_TLS
    | bindings::NVMF_OPT_KEYRING
    | bindings::NVMF_OPT_TLS_KEY
    | bindings::NVMF_OPT_CONCAT;

/// A host transport for nvme-fabrics.
pub(crate) trait FabricsTransport: 'static {
    /// Creates and starts a controller for `opts` (process context; may block).
    fn create_ctrl(opts: &CtrlOptions) -> Result<NewCtrl>;
}

/// A transport registered with nvme-fabrics; unregistered on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: FabricsTransport> {
    #[pin]
    ops: Opaque<bindings::nvmf_transport_ops>,
    _t: PhantomData<T>,
}

// SAFETY: after registration nvme-fabrics owns `ops.entry` under its own lock;
// we only touch `ops` in `new` and drop.
unsafe impl<T: FabricsTransport> Sync for Registration<T> {}
// SAFETY: as above.
unsafe impl<T: FabricsTransport> Send for Registration<T> {}

impl<T: FabricsTransport> Registration<T> {
    /// Registers transport `name` with the given option masks.
    pub(crate) fn new(
        name: &'static CStr,
        required_opts: u32,
        allowed_opts: u32,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            ops <- Opaque::try_ffi_init(|ops: *mut bindings::nvmf_transport_ops| {
                // SAFETY: `ops` is valid for writes and pinned; all-zero is a valid
                // starting point (NULL list links, which registration sets).
                unsafe {
                    ops.write(core::mem::zeroed());
                    (*ops).module = module.as_ptr();
                    (*ops).name = name.as_char_ptr();
                    (*ops).required_opts = required_opts as i32;
                    (*ops).allowed_opts = allowed_opts as i32;
                    (*ops).create_ctrl = Some(Self::create_ctrl);
                }
                // SAFETY: `ops` is fully initialised and stays pinned until drop,
                // which unregisters it.
                to_result(unsafe { bindings::nvmf_register_transport(ops) })
            }),
            _t: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by nvme-fabrics as `create_ctrl`, in process context, with
    /// options that it owns and leaves unchanged until the controller is freed.
    unsafe extern "C" fn create_ctrl(
        _dev: *mut bindings::device,
        opts: *mut bindings::nvmf_ctrl_options,
    ) -> *mut bindings::nvme_ctrl {
        // SAFETY: per the function's contract; `CtrlOptions` is a transparent wrapper.
        let opts = unsafe { &*opts.cast::<CtrlOptions>() };
        match T::create_ctrl(opts) {
            // The reference goes to nvme-fabrics.
            Ok(ctrl) => ctrl.0.as_ptr(),
            Err(e) => e.to_ptr(),
        }
    }
}

#[pinned_drop]
impl<T: FabricsTransport> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered in `new` (a failed registration never yields `Self`).
        unsafe { bindings::nvmf_unregister_transport(self.ops.get()) };
    }
}
