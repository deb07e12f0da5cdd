// SPDX-License-Identifier: GPL-2.0

//! nvmet's side of a fabrics transport: registration, the ports it hands us,
//! the queues and requests we hand it.
//!
//! C: `drivers/nvme/target/nvmet.h` (`struct nvmet_fabrics_ops`,
//! `struct nvmet_port`, `struct nvmet_sq`, `struct nvmet_req`).
//!
//! nvmet changes its structures concurrently (it updates `sq->sqhd` with
//! `cmpxchg`, for one), so no `&` reference to a whole C structure is ever
//! made here: fields are read through raw-pointer projections.

use crate::glue::{
    bindings,
    sock_io::{Bvecs, DataSink},
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::offset_of,
    ptr::{addr_of, addr_of_mut, NonNull},
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{
    error::{from_result, VTABLE_DEFAULT_ERROR},
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
    ThisModule,
};

/// Address family of a port, from its configfs `addr_adrfam`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AddrFamily {
    /// `ipv4`.
    Ipv4,
    /// `ipv6`.
    Ipv6,
    /// Anything else (`ib`, `fc`, `loop`, unset).
    Other(u8),
}

/// A target port (`struct nvmet_port`) as configured through configfs.
///
/// # Invariants
///
/// Wraps a valid `struct nvmet_port`. nvmet does not change its address or
/// parameters while the port is enabled (configfs refuses), nor while the
/// transport's `add_port`/`remove_port` runs.
#[repr(transparent)]
pub(crate) struct NvmetPort(Opaque<bindings::nvmet_port>);

/// The NUL-terminated prefix of a fixed-size C string field.
fn field_str(field: &[u8]) -> &CStr {
    CStr::from_bytes_until_nul(field).unwrap_or(c"")
}

impl NvmetPort {
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct nvmet_port` for the lifetime `'a`,
    /// whose configuration nvmet does not change during `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::nvmet_port) -> &'a Self {
        // SAFETY: `NvmetPort` is a transparent wrapper of `nvmet_port`; the caller
        // guarantees validity for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn disc_addr(&self) -> *const bindings::nvmf_disc_rsp_page_entry {
        // SAFETY: a projection within the valid port (type invariant); no reference is made.
        unsafe { addr_of!((*self.0.get()).disc_addr) }
    }

    /// A fixed-size byte field of the port's address, as configured.
    ///
    /// # Safety
    ///
    /// `field` must point to `N` bytes inside this port's `disc_addr`.
    unsafe fn bytes<const N: usize>(&self, field: *const [kernel::ffi::c_char; N]) -> &[u8] {
        // SAFETY: per the caller, `N` bytes inside the valid port, which nvmet
        // does not write while the port is enabled (type invariant); `c_char`
        // and `u8` have the same layout.
        unsafe { core::slice::from_raw_parts(field.cast::<u8>(), N) }
    }

    /// The port id (configfs directory name).
    pub(crate) fn id(&self) -> u16 {
        // SAFETY: a field of the valid port (type invariant), unchanging while enabled.
        u16::from_le(unsafe { addr_of!((*self.disc_addr()).portid).read() })
    }

    /// `addr_adrfam`.
    pub(crate) fn family(&self) -> AddrFamily {
        // SAFETY: as in `id`.
        let adrfam = unsafe { addr_of!((*self.disc_addr()).adrfam).read() };
        match u32::from(adrfam) {
            bindings::NVMF_ADDR_FAMILY_IP4 => AddrFamily::Ipv4,
            bindings::NVMF_ADDR_FAMILY_IP6 => AddrFamily::Ipv6,
            _ => AddrFamily::Other(adrfam),
        }
    }

    /// `addr_traddr`.
    pub(crate) fn traddr(&self) -> &CStr {
        // SAFETY: `traddr` is a byte array inside `disc_addr`.
        field_str(unsafe { self.bytes(addr_of!((*self.disc_addr()).traddr)) })
    }

    /// `addr_trsvcid`.
    pub(crate) fn trsvcid(&self) -> &CStr {
        // SAFETY: `trsvcid` is a byte array inside `disc_addr`.
        field_str(unsafe { self.bytes(addr_of!((*self.disc_addr()).trsvcid)) })
    }

    /// The TCP security type (`addr_tsas`): 0 = none, else TLS.
    pub(crate) fn tcp_sectype(&self) -> u8 {
        // SAFETY: a projection within the valid port (type invariant).
        let tsas = unsafe { addr_of!((*self.disc_addr()).tsas) };
        // CAST: bindgen's union members are zero-sized markers at the union's
        // start; for a TCP port the `tcp` member is the one set.
        let tcp = tsas.cast::<bindings::nvmf_disc_rsp_page_entry_tsas_tcp>();
        // SAFETY: a field of the valid port; any byte is a valid `u8`.
        unsafe { addr_of!((*tcp).sectype).read() }
    }

    /// `param_inline_data_size`; negative means "transport default".
    pub(crate) fn inline_data_size(&self) -> i32 {
        // SAFETY: a field of the valid port (type invariant).
        unsafe { addr_of!((*self.0.get()).inline_data_size).read() }
    }

    /// A handle the transport keeps while the port is enabled.
    pub(crate) fn handle(&self) -> PortHandle {
        // INVARIANT: nvmet hands the transport only enabled ports, which it
        // frees after `remove_port` (see `PortHandle`).
        PortHandle(NonNull::from(self))
    }

    /// Sets the in-capsule data size that the port reports (its default,
    /// when configfs left it to the transport).
    pub(crate) fn set_inline_data_size(&self, size: i32) {
        // SAFETY: a field of the valid port. nvmet calls the transport's
        // `add_port`, the only caller, under its port mutex: nobody else
        // writes or reads the field meanwhile.
        unsafe { addr_of_mut!((*self.0.get()).inline_data_size).write(size) };
    }
}

/// A port kept by the transport between `add_port` and `remove_port`.
///
/// # Invariants
///
/// Points to an enabled `nvmet_port`. nvmet frees a port only after
/// `remove_port`, which marks every queue of the port as cut off from it;
/// queues use the handle only to start commands, and start none once marked.
pub(crate) struct PortHandle(NonNull<NvmetPort>);

// SAFETY: the port is only read through the handle (see `NvmetPort`).
unsafe impl Send for PortHandle {}
// SAFETY: as above.
unsafe impl Sync for PortHandle {}

impl PortHandle {
    /// The port.
    pub(crate) fn get(&self) -> &NvmetPort {
        // SAFETY: valid per the type invariant.
        unsafe { self.0.as_ref() }
    }
}

/// A controller, as an identity to compare queues' controllers with; never
/// dereferenced by its holder.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CtrlId(usize);

/// NVMe status codes the transport completes commands with.
pub(crate) mod status {
    use crate::glue::bindings;
    /// Do not retry.
    pub(crate) const DNR: u16 = bindings::NVME_STATUS_DNR as u16;
    /// Invalid field in command.
    pub(crate) const INVALID_FIELD: u16 = bindings::NVME_SC_INVALID_FIELD as u16;
    /// Internal error.
    pub(crate) const INTERNAL: u16 = bindings::NVME_SC_INTERNAL as u16;
    /// Data SGL length invalid.
    pub(crate) const SGL_INVALID_DATA: u16 = bindings::NVME_SC_SGL_INVALID_DATA as u16;
    /// SGL offset invalid.
    pub(crate) const SGL_INVALID_OFFSET: u16 = bindings::NVME_SC_SGL_INVALID_OFFSET as u16;
    /// Connect: a parameter (here: the queue size) is invalid.
    pub(crate) const CONNECT_INVALID_PARAM: u16 = bindings::NVME_SC_CONNECT_INVALID_PARAM as u16;
    /// Connect: the controller is busy (being torn down); the host retries.
    pub(crate) const CONNECT_CTRL_BUSY: u16 = bindings::NVME_SC_CONNECT_CTRL_BUSY as u16;
}

/// A fabrics transport for nvmet. Methods with a default are optional:
/// without an implementation nvmet sees a NULL operation.
#[vtable]
pub(crate) trait NvmetTransport: 'static {
    /// Per-port state, kept in `nvmet_port.priv` while the port is enabled.
    type Port: ForeignOwnable + Send + Sync;
    /// A connection, owner of the [`Request`]s handed to nvmet.
    type Queue: NvmetQueue;

    /// Enables `port`: from here on hosts may connect.
    fn add_port(port: &NvmetPort) -> Result<Self::Port>;

    /// Disables `port`, whose state `add_port` returned.
    fn remove_port(port: &NvmetPort, state: Self::Port);

    /// The controller `ctrl` is going away: end its connections.
    fn delete_ctrl(ctrl: CtrlId);

    /// The Connect command made `queue` part of a controller, with its size
    /// now known: allocate its commands. Returns an NVMe status (0: success).
    fn install_queue(_queue: ArcBorrow<'_, Self::Queue>) -> u16 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The transport address a discovery log page shows for `port`, asked on
    /// `queue`, written NUL-terminated into `out`.
    fn disc_traddr(_queue: &Self::Queue, _port: &NvmetPort, _out: &mut [u8]) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The host's address on controller `ctrl`'s admin queue, written into
    /// `out`; returns its length.
    fn host_traddr(_ctrl: CtrlId, _out: &mut [u8]) -> Result<usize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Largest data transfer of one command, as MDTS: a power of two in
    /// units of the controller's minimum page size (4 KiB).
    fn mdts() -> u8 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The static `nvmet_fabrics_ops` table of a transport.
#[repr(transparent)]
pub(crate) struct OpsTable<T: NvmetTransport>(bindings::nvmet_fabrics_ops, PhantomData<T>);

// SAFETY: the table is immutable after construction and only read by nvmet.
unsafe impl<T: NvmetTransport> Sync for OpsTable<T> {}

impl<T: NvmetTransport> OpsTable<T> {
    /// The table for TCP (`NVMF_TRTYPE_TCP`), owned by `module`.
    pub(crate) const fn tcp(module: &'static ThisModule) -> Self {
        // SAFETY: all-zero is a valid `nvmet_fabrics_ops` (NULL callbacks).
        let mut ops: bindings::nvmet_fabrics_ops = unsafe { core::mem::zeroed() };
        ops.owner = module.as_ptr();
        ops.type_ = bindings::NVMF_TRTYPE_TCP;
        ops.msdbd = 1;
        ops.add_port = Some(Self::add_port);
        ops.remove_port = Some(Self::remove_port);
        ops.queue_response = Some(Self::queue_response);
        ops.delete_ctrl = Some(Self::delete_ctrl);
        if T::HAS_INSTALL_QUEUE {
            ops.install_queue = Some(Self::install_queue);
        }
        if T::HAS_DISC_TRADDR {
            ops.disc_traddr = Some(Self::disc_traddr);
        }
        if T::HAS_HOST_TRADDR {
            ops.host_traddr = Some(Self::host_traddr);
        }
        if T::HAS_MDTS {
            ops.get_mdts = Some(Self::get_mdts);
        }
        Self(ops, PhantomData)
    }

    /// # Safety
    ///
    /// Called by nvmet as `get_mdts`, with any controller (unused).
    unsafe extern "C" fn get_mdts(_ctrl: *const bindings::nvmet_ctrl) -> u8 {
        T::mdts()
    }

    /// # Safety
    ///
    /// Called by nvmet as `queue_response`, with a request that this table's
    /// [`Request::init`] handed to it and that is not completed yet.
    unsafe extern "C" fn queue_response(req: *mut bindings::nvmet_req) {
        // SAFETY: per the function's contract, `req` is the `req` field of a live
        // `Request<T::Queue>`.
        let req = unsafe { Request::<T::Queue>::from_raw(req) };
        let queue = req.owner();
        queue.completions().push(req);
        T::Queue::response_ready(queue);
    }

    /// # Safety
    ///
    /// Called by nvmet as `install_queue`, with the SQ of a queue of ours
    /// ([`NvmetQueue::sq`]) whose Connect command is executing.
    unsafe extern "C" fn install_queue(sq: *mut bindings::nvmet_sq) -> u16 {
        // SAFETY: per the function's contract `sq` belongs to a `T::Queue` with
        // a command in flight, so its SQ is not yet destroyed and (per
        // `NvmetQueue`'s contract) its `Arc` count is above zero.
        let queue = unsafe { NvmetSq::owner::<T::Queue>(sq) };
        T::install_queue(queue)
    }

    /// # Safety
    ///
    /// Called by nvmet as `delete_ctrl`, with one of its controllers.
    unsafe extern "C" fn delete_ctrl(ctrl: *mut bindings::nvmet_ctrl) {
        T::delete_ctrl(CtrlId(ctrl as usize))
    }

    /// # Safety
    ///
    /// Called by nvmet as `disc_traddr`, with a request of ours that is
    /// executing, its enabled port, and a buffer of `NVMF_TRADDR_SIZE` bytes.
    unsafe extern "C" fn disc_traddr(
        req: *mut bindings::nvmet_req,
        nport: *mut bindings::nvmet_port,
        traddr: *mut kernel::ffi::c_char,
    ) {
        // SAFETY: per the function's contract.
        let (req, port, out) = unsafe {
            (
                Request::<T::Queue>::from_raw(req),
                NvmetPort::from_raw(nport),
                core::slice::from_raw_parts_mut(traddr.cast::<u8>(), bindings::NVMF_TRADDR_SIZE as usize),
            )
        };
        T::disc_traddr(&req.owner(), port, out);
    }

    /// # Safety
    ///
    /// Called by nvmet as `host_traddr`, with one of its controllers and a
    /// writable buffer of `len` bytes.
    unsafe extern "C" fn host_traddr(
        ctrl: *mut bindings::nvmet_ctrl,
        traddr: *mut kernel::ffi::c_char,
        len: usize,
    ) -> isize {
        // SAFETY: per the function's contract.
        let out = unsafe { core::slice::from_raw_parts_mut(traddr.cast::<u8>(), len) };
        match T::host_traddr(CtrlId(ctrl as usize), out) {
            // CAST: at most `len`, a buffer size.
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by nvmet as `add_port`, under its port mutex, with a valid port
    /// that stays valid until `remove_port`.
    unsafe extern "C" fn add_port(nport: *mut bindings::nvmet_port) -> i32 {
        from_result(|| {
            // SAFETY: per the function's contract.
            let port = unsafe { NvmetPort::from_raw(nport) };
            let state = T::add_port(port)?;
            // SAFETY: `nport` is valid; `priv_` belongs to the transport.
            unsafe { addr_of_mut!((*nport).priv_).write(state.into_foreign().cast::<c_void>()) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by nvmet as `remove_port`, under its port mutex, for a port whose
    /// `add_port` succeeded, once.
    unsafe extern "C" fn remove_port(nport: *mut bindings::nvmet_port) {
        // SAFETY: per the function's contract `priv_` holds what a successful
        // `add_port` stored; it is taken back exactly once, here.
        let state = unsafe { T::Port::from_foreign(addr_of!((*nport).priv_).read().cast()) };
        // SAFETY: as above.
        unsafe { addr_of_mut!((*nport).priv_).write(core::ptr::null_mut()) };
        // SAFETY: per the function's contract.
        T::remove_port(unsafe { NvmetPort::from_raw(nport) }, state);
    }
}

/// A transport registered with nvmet; unregistered on drop.
pub(crate) struct Registration<T: NvmetTransport> {
    ops: &'static OpsTable<T>,
}

impl<T: NvmetTransport> Registration<T> {
    /// Registers `ops`, after which configfs ports of its type reach `T`.
    pub(crate) fn new(ops: &'static OpsTable<T>) -> Result<Self> {
        // SAFETY: `ops` is a valid, static table.
        kernel::error::to_result(unsafe { bindings::nvmet_register_transport(&ops.0) })?;
        Ok(Self { ops })
    }
}

impl<T: NvmetTransport> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`.
        unsafe { bindings::nvmet_unregister_transport(&self.ops.0) };
    }
}

/// nvmet's submission and completion queue of one connection.
///
/// Zeroed when created; [`NvmetSq::init`] registers them with nvmet once the
/// owner has its final address, and [`NvmetSq::destroy`] waits for every
/// request in flight and unregisters them.
///
/// # Invariants
///
/// `live` is true exactly while `sq` and `cq` are initialised with nvmet;
/// `inited` is set by the one call of `init` that initialises them.
#[pin_data]
pub(crate) struct NvmetSq {
    #[pin]
    sq: Opaque<bindings::nvmet_sq>,
    #[pin]
    cq: Opaque<bindings::nvmet_cq>,
    inited: AtomicBool,
    live: AtomicBool,
}

// SAFETY: nvmet synchronises its own use of `nvmet_sq`/`nvmet_cq`; we only
// read fields nvmet sets during Connect (before any request of ours uses them).
unsafe impl Send for NvmetSq {}
// SAFETY: as above.
unsafe impl Sync for NvmetSq {}

impl NvmetSq {
    /// Zeroed, not yet known to nvmet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            sq: Opaque::zeroed(),
            cq: Opaque::zeroed(),
            inited: AtomicBool::new(false),
            live: AtomicBool::new(false),
        })
    }

    /// The queue whose [`NvmetQueue::sq`] holds `sq`.
    ///
    /// # Safety
    ///
    /// `sq` must be the `sq` of the [`NvmetSq`] of a live `Q`, kept alive for `'a`.
    unsafe fn owner<'a, Q: NvmetQueue>(sq: *mut bindings::nvmet_sq) -> ArcBorrow<'a, Q> {
        // SAFETY: per the caller and `NvmetQueue`'s contract, subtracting the
        // two field offsets gives the `Q` (inside an `Arc`) that holds `sq`.
        unsafe {
            let this = sq.cast::<u8>().sub(offset_of!(NvmetSq, sq)).cast::<NvmetSq>();
            ArcBorrow::from_raw(this.cast::<u8>().sub(Q::SQ_OFFSET).cast::<Q>())
        }
    }

    /// Initialises the queues with nvmet (`nvmet_cq_init`, `nvmet_sq_init`).
    pub(crate) fn init(&self) -> Result {
        // At most once, whoever else may call it.
        if self.inited.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        // SAFETY: `cq` is pinned inside `self`, zeroed, and never initialised
        // (`inited` was false).
        unsafe { bindings::nvmet_cq_init(self.cq.get()) };
        // SAFETY: `sq` is pinned and zeroed; `cq` was just initialised.
        let ret = unsafe { bindings::nvmet_sq_init(self.sq.get(), self.cq.get()) };
        if ret != 0 {
            // SAFETY: `cq` was initialised above and nothing else holds it.
            unsafe { bindings::nvmet_cq_put(self.cq.get()) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: both are initialised.
        self.live.store(true, Ordering::Release);
        Ok(())
    }

    /// Waits for the requests in flight, then releases the queues from nvmet
    /// (and with them the controller's reference). Idempotent.
    pub(crate) fn destroy(&self) {
        if self.live.swap(false, Ordering::AcqRel) {
            // SAFETY: initialised (type invariant), destroyed exactly once here.
            unsafe {
                bindings::nvmet_sq_destroy(self.sq.get());
                bindings::nvmet_cq_put(self.cq.get());
            }
        }
    }

    /// The queue id (0: admin), valid after Connect.
    pub(crate) fn qid(&self) -> u16 {
        // SAFETY: a field of the pinned `sq`. nvmet writes it during this
        // queue's Connect, which other queues' lookups may overlap: a
        // volatile read, the kernel's READ_ONCE.
        unsafe { addr_of!((*self.sq.get()).qid).read_volatile() }
    }

    /// The queue size, valid after Connect.
    pub(crate) fn size(&self) -> u16 {
        // SAFETY: as in `qid`.
        unsafe { addr_of!((*self.sq.get()).size).read() }
    }

    /// Whether the host disabled SQ flow control (then a successful read needs
    /// no response capsule after its data).
    pub(crate) fn sqhd_disabled(&self) -> bool {
        // SAFETY: as in `qid`.
        unsafe { addr_of!((*self.sq.get()).sqhd_disabled).read() }
    }

    fn ctrl_ptr(&self) -> *mut bindings::nvmet_ctrl {
        // SAFETY: as in `qid` (nvmet also clears it in `nvmet_sq_destroy`);
        // NULL before Connect (the queue starts zeroed).
        unsafe { addr_of!((*self.sq.get()).ctrl).read_volatile() }
    }

    /// The controller this queue belongs to, once connected.
    pub(crate) fn ctrl(&self) -> Option<CtrlId> {
        let ctrl = self.ctrl_ptr();
        (!ctrl.is_null()).then_some(CtrlId(ctrl as usize))
    }

    /// Reports a fatal transport error to the controller, which tears down
    /// every queue of it (no-op before Connect).
    pub(crate) fn ctrl_fatal_error(&self) {
        let ctrl = self.ctrl_ptr();
        if !ctrl.is_null() {
            // SAFETY: the queue holds a reference on its controller while connected.
            unsafe { bindings::nvmet_ctrl_fatal_error(ctrl) };
        }
    }
}

/// The requests of a `Q` whose responses are ready, in the order they became ready.
///
/// nvmet's `queue_response` may run in any context, the request's queue's I/O
/// work included; it only pushes onto this lock-free list.
///
/// # Invariants
///
/// Every node on the list is the `node` field of a `Request<Q>`.
pub(crate) struct Completions<Q> {
    head: Opaque<bindings::llist_head>,
    _q: PhantomData<Q>,
}

// SAFETY: `llist` is a lock-free multi-producer list; `take` is only called
// by the queue's I/O work (single consumer).
unsafe impl<Q> Send for Completions<Q> {}
// SAFETY: as above.
unsafe impl<Q> Sync for Completions<Q> {}

impl<Q: NvmetQueue> Completions<Q> {
    /// An empty list.
    pub(crate) fn new() -> Self {
        let c = Self { head: Opaque::zeroed(), _q: PhantomData };
        // SAFETY: `head` is valid for writes; an llist head needs no pinning.
        unsafe { bindings::nvtr_init_llist_head(c.head.get()) };
        c
    }

    fn push(&self, req: &Request<Q>) {
        // A request is on the list at most once (else the list would break).
        if !req.queued.swap(true, Ordering::AcqRel) {
            // SAFETY: `req.node` is valid and not on any list (`queued` was false).
            // INVARIANT: it is the `node` of a `Request<Q>`.
            unsafe { bindings::nvtr_llist_add(req.node.get(), self.head.get()) };
        }
    }

    /// Takes every ready request, oldest first, and calls `f` with its tag.
    /// Only the owner's I/O work may call this.
    pub(crate) fn take(&self, mut f: impl FnMut(u16)) {
        // SAFETY: `head` is a valid list head.
        let mut node = unsafe { bindings::nvtr_llist_del_all_fifo(self.head.get()) };
        while !node.is_null() {
            let off = offset_of!(Request<Q>, node);
            // SAFETY: per the type invariant `node` is the `node` of a `Request<Q>`,
            // which stays allocated while its queue exists.
            let req = unsafe { &*node.cast::<u8>().sub(off).cast::<Request<Q>>() };
            // SAFETY: `node` is valid; read its successor before `req` may be re-queued.
            node = unsafe { (*node).next };
            req.queued.store(false, Ordering::Release);
            f(req.tag);
        }
    }
}

/// A queue that owns [`Request`]s and an [`NvmetSq`], and is told when their
/// responses are ready.
///
/// # Safety
///
/// `SQ_OFFSET` is the offset in `Self` of the field that [`NvmetQueue::sq`]
/// returns, and every `Self` whose [`NvmetSq`] is initialised lives in an
/// [`Arc`] and destroys the [`NvmetSq`] (which waits for every request in
/// flight) while a reference to that `Arc` is still held: never from its
/// `Drop`, so that a callback for a request in flight never sees a count of
/// zero.
pub(crate) unsafe trait NvmetQueue: Send + Sync + Sized {
    /// `offset_of!(Self, <the field sq() returns>)`.
    const SQ_OFFSET: usize;
    /// The queue's nvmet SQ.
    fn sq(&self) -> &NvmetSq;
    /// The list nvmet's `queue_response` pushes this queue's requests onto.
    fn completions(&self) -> &Completions<Self>;
    /// A request was pushed onto [`NvmetQueue::completions`] (any context: only
    /// queue work).
    fn response_ready(this: ArcBorrow<'_, Self>);
}

/// One command slot shared with nvmet: the request, its SQE and CQE.
///
/// # Invariants
///
/// `req` is the first field (`#[repr(C)]`), so a `*mut nvmet_req` that nvmet
/// passes back is a pointer to its `Request`; `owner` points to the queue
/// that owns the slot, which outlives every use nvmet makes of it.
#[repr(C)]
pub(crate) struct Request<Q> {
    req: Opaque<bindings::nvmet_req>,
    sqe: Opaque<bindings::nvme_command>,
    cqe: Opaque<bindings::nvme_completion>,
    node: Opaque<bindings::llist_node>,
    queued: AtomicBool,
    tag: u16,
    owner: *const Q,
}

// SAFETY: nvmet and the owner's I/O work hand a request to each other (through
// `nvmet_req_init`/`execute` and `queue_response`); the Rust side only touches
// it from the owner's I/O work and through atomics.
unsafe impl<Q: Sync> Send for Request<Q> {}
// SAFETY: as above.
unsafe impl<Q: Sync> Sync for Request<Q> {}

impl<Q: NvmetQueue> Request<Q> {
    /// A request nvmet handed back, resolved to its slot.
    ///
    /// # Safety
    ///
    /// `req` must be the `req` field of a live `Request<Q>`, live for `'a`.
    unsafe fn from_raw<'a>(req: *mut bindings::nvmet_req) -> &'a Self {
        // SAFETY: `req` is the first field of a `#[repr(C)]` `Request<Q>` (type
        // invariant), which the caller guarantees is live.
        unsafe { &*req.cast::<Self>() }
    }

    fn raw(&self) -> *mut bindings::nvmet_req {
        self.req.get()
    }

    fn sg(&self) -> *mut bindings::scatterlist {
        // SAFETY: a field of the valid request, which only the transport writes
        // (`alloc_data`, `free_data`) from the owner's I/O work.
        unsafe { addr_of!((*self.raw()).sg).read() }
    }

    /// Starts a command: copies `sqe` in and hands the request to nvmet
    /// (`nvmet_req_init`). On `false` nvmet has already completed the request
    /// with an error status (and called `queue_response`).
    pub(crate) fn init<T: NvmetTransport<Queue = Q>>(
        &self,
        sqe: &[u8; 64],
        port: &NvmetPort,
        ops: &'static OpsTable<T>,
    ) -> bool {
        // The owner's SQ: a request is only ever started on its own queue.
        let sq = self.owner().sq().sq.get();
        // SAFETY: the slot is idle (the owner's I/O work only starts idle slots),
        // so nothing else reads `sqe`, `cmd`, `cqe` or `port` now; `sqe` is 64
        // bytes, the size of `nvme_command`; the owner's SQ is initialised.
        unsafe {
            core::ptr::copy_nonoverlapping(sqe.as_ptr(), self.sqe.get().cast::<u8>(), 64);
            addr_of_mut!((*self.raw()).cmd).write(self.sqe.get());
            addr_of_mut!((*self.raw()).cqe).write(self.cqe.get());
            addr_of_mut!((*self.raw()).port).write(port.0.get());
            bindings::nvmet_req_init(self.raw(), sq, &ops.0)
        }
    }

    /// Whether the command writes (host to controller data); false before
    /// the slot's first `init`.
    pub(crate) fn is_write(&self) -> bool {
        // SAFETY: `cmd` is NULL (the slot starts zeroed), which the helper
        // checks, or points to this slot's SQE, set by `init`.
        unsafe { bindings::nvtr_req_is_write(self.raw()) }
    }

    /// The command's data length, as nvmet parsed it (before mapping) or as
    /// the transport mapped it.
    pub(crate) fn transfer_len(&self) -> usize {
        // SAFETY: a field of the valid request, set by nvmet in `init` or by
        // `alloc_data`, both on the owner's I/O work.
        unsafe { addr_of!((*self.raw()).transfer_len).read() }
    }

    /// Allocates the data buffer for `len` bytes and records it as the
    /// request's transfer length.
    pub(crate) fn alloc_data(&self, len: u32) -> Result {
        // SAFETY: the request is initialised and owned by the I/O work until it
        // executes; `transfer_len` and `sg` are the transport's to set.
        unsafe {
            addr_of_mut!((*self.raw()).transfer_len).write(len as usize);
            kernel::error::to_result(bindings::nvtr_req_alloc_data(self.raw(), len))
        }
    }

    /// Frees the data buffer, if any.
    pub(crate) fn free_data(&self) {
        // SAFETY: the request is idle or owned by the I/O work; `sg` was set by
        // `alloc_data` or is NULL (`nvmet_req_init` clears it).
        unsafe { bindings::nvtr_req_free_data(self.raw()) }
    }

    /// Adds up to `len` bytes of the data buffer from `offset` to a send's
    /// table (its pages are spliced, not copied); returns how many fit.
    pub(crate) fn add_data(&self, bvs: &mut Bvecs, offset: u32, len: u32) -> u32 {
        // SAFETY: `sg` covers `transfer_len` bytes and the helper stops at
        // its end; the table is ours alone for the call (`&mut`); the pages
        // stay allocated until the caller frees the data, after the send
        // (the socket takes its own page references).
        unsafe { bindings::nvtr_bvecs_add_sg(bvs.raw(), self.sg(), offset, len) }
    }

    /// Runs the command (`req->execute`); its completion calls `queue_response`.
    pub(crate) fn execute(&self) {
        // SAFETY: `nvmet_req_init` succeeded and set `execute`.
        unsafe { bindings::nvtr_req_execute(self.raw()) }
    }

    /// Completes the command with an NVMe `status` (calls `queue_response`).
    pub(crate) fn complete(&self, status: u16) {
        // SAFETY: the request was initialised and is not yet completed.
        unsafe { bindings::nvmet_req_complete(self.raw(), status) }
    }

    /// Gives back what `nvmet_req_init` took, for a command that will never
    /// execute (its queue is going away).
    pub(crate) fn uninit(&self) {
        // SAFETY: the request was initialised and neither executed nor completed.
        unsafe { bindings::nvmet_req_uninit(self.raw()) }
    }

    /// The completion queue entry nvmet filled in, as on the wire.
    pub(crate) fn cqe(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: the CQE is 16 bytes; nvmet wrote it before `queue_response`,
        // which happens before the I/O work reads it.
        unsafe { core::ptr::copy_nonoverlapping(self.cqe.get().cast::<u8>(), out.as_mut_ptr(), 16) };
        out
    }

    /// The NVMe status of the completion (0: success).
    pub(crate) fn status(&self) -> u16 {
        // SAFETY: as in `cqe`.
        u16::from_le(unsafe { addr_of!((*self.cqe.get()).status).read() }) >> 1
    }

    /// The owning queue.
    pub(crate) fn owner(&self) -> ArcBorrow<'_, Q> {
        // SAFETY: per the type invariant `owner` came from `Arc::as_ptr` of an
        // `Arc<Q>` that outlives the request, so the count stays above zero.
        unsafe { ArcBorrow::from_raw(self.owner) }
    }
}

impl<Q: NvmetQueue> DataSink for Request<Q> {
    /// The pages of up to `len` bytes of the data buffer from `offset`.
    fn map_data(&self, bvs: &mut Bvecs, offset: u32, len: u32) -> u32 {
        // SAFETY: the table is ours alone for the call (`&mut`).
        unsafe { bindings::nvtr_bvecs_clear(bvs.raw()) };
        self.add_data(bvs, offset, len)
    }

    /// Copies `bytes` into the data buffer at `offset` (bytes read ahead of
    /// the socket with a PDU header).
    fn copy_in(&self, offset: u32, bytes: &[u8]) {
        // CAST: the callers copy at most a PDU header's worth.
        let len = bytes.len() as u32;
        // SAFETY: `sg` covers `transfer_len` bytes and the caller keeps
        // `offset + len` within it (the helper stops at the end of `sg`
        // anyway); `bytes` is valid for `len` bytes.
        unsafe { bindings::nvtr_sg_copy_in(self.sg(), offset, bytes.as_ptr().cast(), len) }
    }

    /// Adds `len` bytes of the data buffer from `offset` to a running CRC32C
    /// (raw register value, not inverted).
    fn data_crc(&self, crc: u32, offset: u32, len: u32) -> u32 {
        // SAFETY: `sg` covers `transfer_len` bytes and the caller keeps
        // `offset + len` within it (the helper stops at the end of `sg`).
        unsafe { bindings::nvtr_sg_crc32c(crc, self.sg(), offset, len) }
    }
}

/// A fixed set of [`Request`] slots, created once and never resized (nvmet
/// holds pointers into it). Backed by `kvmalloc`, as the C target's commands:
/// a deep queue's slots need about 1 MiB, which a physically contiguous
/// allocation may not find under fragmentation.
pub(crate) struct Requests<Q> {
    slots: KVVec<Request<Q>>,
}

impl<Q: NvmetQueue> Requests<Q> {
    /// `n` idle slots tagged `first_tag..` (wrapping), owned by `owner`.
    ///
    /// `owner` must outlive the slots' use by nvmet: the owner destroys its
    /// [`NvmetSq`] (which waits for every request) before dropping them.
    pub(crate) fn new(n: u16, first_tag: u16, owner: &Arc<Q>) -> Result<Self> {
        let mut slots = KVVec::with_capacity(usize::from(n), GFP_KERNEL)?;
        for i in 0..n {
            let tag = first_tag.wrapping_add(i);
            slots.push(
                Request {
                    req: Opaque::zeroed(),
                    sqe: Opaque::zeroed(),
                    cqe: Opaque::zeroed(),
                    node: Opaque::zeroed(),
                    queued: AtomicBool::new(false),
                    tag,
                    owner: Arc::as_ptr(owner),
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Self { slots })
    }

    /// The slot at `index`.
    pub(crate) fn get(&self, index: usize) -> Option<&Request<Q>> {
        self.slots.get(index)
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> u16 {
        // CAST: `new` makes at most `u16::MAX` slots.
        self.slots.len() as u16
    }
}
