// SPDX-License-Identifier: GPL-2.0

//! nvme-fabrics' side of a host transport: registration and connect options.
//!
//! C: `drivers/nvme/host/fabrics.h` (`struct nvmf_transport_ops`,
//! `struct nvmf_ctrl_options`).

use crate::glue::{bindings, host::nvme::DeviceRef};
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

    pub(super) fn raw(&self) -> *mut bindings::nvmf_ctrl_options {
        self.0.get()
    }

    /// # Safety
    ///
    /// `ptr` points to options that stay valid and unchanged for `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::nvmf_ctrl_options) -> &'a Self {
        // SAFETY: per the caller; transparent wrapper.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Whether option `opt` (an `NVMF_OPT_*` bit) was given.
    pub(crate) fn has(&self, opt: u32) -> bool {
        // SAFETY: as in `traddr`.
        let mask = unsafe { addr_of!((*self.opts()).mask).read() };
        mask & opt != 0
    }

    /// `host_iface`, if given.
    pub(crate) fn host_iface(&self) -> Option<&CStr> {
        // SAFETY: as in `traddr`.
        self.string(unsafe { addr_of!((*self.opts()).host_iface).read() })
    }

    /// `queue_size`: entries per I/O queue asked for.
    pub(crate) fn queue_size(&self) -> u32 {
        // SAFETY: as in `traddr`.
        let n = unsafe { addr_of!((*self.opts()).queue_size).read() };
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// `keep_alive_tmo`, in seconds.
    pub(crate) fn kato(&self) -> u32 {
        // SAFETY: as in `traddr`.
        unsafe { addr_of!((*self.opts()).kato).read() }
    }

    /// `nr_io_queues`, `nr_write_queues`, `nr_poll_queues` as given.
    pub(crate) fn queue_counts(&self) -> (u32, u32, u32) {
        // SAFETY: as in `traddr`.
        unsafe {
            (
                addr_of!((*self.opts()).nr_io_queues).read(),
                addr_of!((*self.opts()).nr_write_queues).read(),
                addr_of!((*self.opts()).nr_poll_queues).read(),
            )
        }
    }

    /// I/O queues to ask the controller for: each kind capped at the CPUs
    /// online (`nvmf_nr_io_queues`).
    pub(crate) fn io_queues_wanted(&self) -> u32 {
        // SAFETY: valid options.
        unsafe { bindings::nvtr_nr_io_queues(self.raw()) }
    }

    /// How `n` granted I/O queues split into default, read and poll queues
    /// (`nvmf_set_io_queues`).
    pub(crate) fn split_io_queues(&self, n: u32) -> [u32; 3] {
        let mut q = [0u32; 3];
        // SAFETY: valid options; `q` has HCTX_MAX_TYPES entries.
        unsafe { bindings::nvmf_set_io_queues(self.raw(), n, q.as_mut_ptr()) };
        q
    }

    /// `duplicate_connect`.
    pub(crate) fn duplicate_connect(&self) -> bool {
        // SAFETY: as in `traddr`.
        unsafe { addr_of!((*self.opts()).duplicate_connect).read() }
    }

    /// Whether TLS was asked for (`--tls`, a TLS key, or secure concatenation).
    pub(crate) fn tls(&self) -> bool {
        // SAFETY: as in `traddr`.
        let (tls, concat) = unsafe { (addr_of!((*self.opts()).tls).read(), addr_of!((*self.opts()).concat).read()) };
        tls || concat || self.has(bindings::NVMF_OPT_TLS_KEY) || self.has(bindings::NVMF_OPT_KEYRING)
    }

    /// Frees the options (`nvmf_free_options`).
    ///
    /// # Safety
    ///
    /// The options belong to a controller being freed, and nothing uses them after this.
    pub(crate) unsafe fn free(&self) {
        // SAFETY: per the caller.
        unsafe { bindings::nvmf_free_options(self.raw()) }
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

impl NewCtrl {
    /// # Safety
    ///
    /// `ctrl` satisfies the type invariant, and its reference is handed over.
    pub(super) unsafe fn from_raw(ctrl: *mut bindings::nvme_ctrl) -> Self {
        // SAFETY: per the caller, non-null.
        Self(unsafe { NonNull::new_unchecked(ctrl) })
    }
}

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
    /// Creates and starts a controller for `opts` (process context; may
    /// block); `dev` is nvme-fabrics' device for `nvme_init_ctrl`.
    fn create_ctrl(dev: DeviceRef, opts: &CtrlOptions) -> Result<NewCtrl>;
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
        dev: *mut bindings::device,
        opts: *mut bindings::nvmf_ctrl_options,
    ) -> *mut bindings::nvme_ctrl {
        // SAFETY: per the function's contract; `CtrlOptions` is a transparent wrapper.
        let opts = unsafe { &*opts.cast::<CtrlOptions>() };
        // SAFETY: `dev` is this call's device.
        let dev = unsafe { DeviceRef::from_raw(dev) };
        match T::create_ctrl(dev, opts) {
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
