// SPDX-License-Identifier: GPL-2.0

//! nvmet's side of a fabrics transport: registration and the ports it hands us.
//!
//! C: `drivers/nvme/target/nvmet.h` (`struct nvmet_fabrics_ops`, `struct nvmet_port`).

use super::bindings;
use super::sock::{Bvecs, Socket};
use core::{ffi::c_void, marker::PhantomData};
use kernel::{
    error::from_result,
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
/// Wraps a valid `struct nvmet_port`, which nvmet keeps alive and does not
/// reconfigure while the transport's `add_port`/`remove_port` runs or the port
/// is enabled.
#[repr(transparent)]
pub(crate) struct NvmetPort(Opaque<bindings::nvmet_port>);

/// The NUL-terminated prefix of a fixed-size C string field.
fn field_str(field: &[u8]) -> &CStr {
    CStr::from_bytes_until_nul(field).unwrap_or(c"")
}

impl NvmetPort {
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct nvmet_port` for the lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::nvmet_port) -> &'a Self {
        // SAFETY: `NvmetPort` is a transparent wrapper of `nvmet_port`; the caller
        // guarantees validity for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn raw(&self) -> &bindings::nvmet_port {
        // SAFETY: valid per the type invariant; nvmet does not write these fields
        // while we look at them.
        unsafe { &*self.0.get() }
    }

    /// The port id (configfs directory name).
    pub(crate) fn id(&self) -> u16 {
        u16::from_le(self.raw().disc_addr.portid)
    }

    /// `addr_adrfam`.
    pub(crate) fn family(&self) -> AddrFamily {
        match u32::from(self.raw().disc_addr.adrfam) {
            bindings::NVMF_ADDR_FAMILY_IP4 => AddrFamily::Ipv4,
            bindings::NVMF_ADDR_FAMILY_IP6 => AddrFamily::Ipv6,
            _ => AddrFamily::Other(self.raw().disc_addr.adrfam),
        }
    }

    /// `addr_traddr`.
    pub(crate) fn traddr(&self) -> &CStr {
        // CAST: `c_char` and `u8` have the same layout.
        let f = &self.raw().disc_addr.traddr;
        // SAFETY: `f` is a plain byte array of `f.len()` bytes.
        field_str(unsafe { core::slice::from_raw_parts(f.as_ptr().cast::<u8>(), f.len()) })
    }

    /// `addr_trsvcid`.
    pub(crate) fn trsvcid(&self) -> &CStr {
        let f = &self.raw().disc_addr.trsvcid;
        // SAFETY: `f` is a plain byte array of `f.len()` bytes.
        field_str(unsafe { core::slice::from_raw_parts(f.as_ptr().cast::<u8>(), f.len()) })
    }

    /// The TCP security type (`addr_tsas`): 0 = none, else TLS.
    pub(crate) fn tcp_sectype(&self) -> u8 {
        // SAFETY: for a TCP port the `tcp` member of the `tsas` union is the one set;
        // any byte value is a valid `u8`.
        unsafe { self.raw().disc_addr.tsas.tcp.as_ref().sectype }
    }

    /// `param_inline_data_size`; negative means "transport default".
    pub(crate) fn inline_data_size(&self) -> i32 {
        self.raw().inline_data_size
    }

    /// A handle the transport keeps while the port is enabled.
    pub(crate) fn handle(&self) -> PortHandle {
        PortHandle(core::ptr::NonNull::from(self))
    }

    /// Sets the inline data size that the port reports.
    pub(crate) fn set_inline_data_size(&self, size: i32) {
        // SAFETY: `add_port` runs under nvmet's port mutex; nobody else writes it.
        unsafe { (*self.0.get()).inline_data_size = size };
    }
}

/// A port kept by the transport between `add_port` and `remove_port`.
///
/// # Invariants
///
/// Points to an enabled `nvmet_port`. nvmet frees a port only after
/// `remove_port`, which shuts down every queue of the port; queues use the
/// handle only to start commands while they are not shut down.
pub(crate) struct PortHandle(core::ptr::NonNull<NvmetPort>);

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

/// NVMe status codes the transport completes commands with.
pub(crate) mod status {
    use super::bindings;
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
}

/// A fabrics transport for nvmet.
pub(crate) trait NvmetTransport: 'static {
    /// Per-port state, kept in `nvmet_port.priv` while the port is enabled.
    type Port: ForeignOwnable + Send + Sync;
    /// A connection, owner of the [`Request`]s handed to nvmet.
    type Queue: NvmetQueue;

    /// Enables `port`: from here on hosts may connect.
    fn add_port(port: &NvmetPort) -> Result<Self::Port>;

    /// Disables `port`, whose state `add_port` returned.
    fn remove_port(port: &NvmetPort, state: Self::Port);

    /// The Connect command made the queue whose [`NvmetSq::as_ptr`] is `sq`
    /// part of a controller, with its size now known: allocate its
    /// commands. Returns an NVMe status (0: success).
    fn install_queue(sq: *mut bindings::nvmet_sq) -> u16;

    /// The controller `ctrl_key` ([`NvmetSq::ctrl_key`]) is going away: end
    /// its connections.
    fn delete_ctrl(ctrl_key: usize);

    /// The transport address a discovery log page shows for `port`, asked on
    /// `queue`, written NUL-terminated into `out`.
    fn disc_traddr(queue: &Self::Queue, port: &NvmetPort, out: &mut [u8]);

    /// The host's address on controller `ctrl_key`'s admin queue, written
    /// into `out`; returns its length.
    fn host_traddr(ctrl_key: usize, out: &mut [u8]) -> Result<usize>;

    /// Largest data transfer of one command, as MDTS: a power of two in
    /// units of the controller's minimum page size (4 KiB).
    const MDTS: u8;
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
        ops.install_queue = Some(Self::install_queue);
        ops.delete_ctrl = Some(Self::delete_ctrl);
        ops.disc_traddr = Some(Self::disc_traddr);
        ops.host_traddr = Some(Self::host_traddr);
        ops.get_mdts = Some(Self::get_mdts);
        Self(ops, PhantomData)
    }

    unsafe extern "C" fn get_mdts(_ctrl: *const bindings::nvmet_ctrl) -> u8 {
        T::MDTS
    }

    unsafe extern "C" fn queue_response(req: *mut bindings::nvmet_req) {
        // SAFETY: nvmet only passes back requests it got from `Request::init`.
        let req = unsafe { request_from_raw::<T::Queue>(req) };
        let queue = req.owner();
        queue.completions().push(req);
        T::Queue::response_ready(queue);
    }

    unsafe extern "C" fn install_queue(sq: *mut bindings::nvmet_sq) -> u16 {
        T::install_queue(sq)
    }

    unsafe extern "C" fn delete_ctrl(ctrl: *mut bindings::nvmet_ctrl) {
        T::delete_ctrl(ctrl as usize)
    }

    unsafe extern "C" fn disc_traddr(
        req: *mut bindings::nvmet_req,
        nport: *mut bindings::nvmet_port,
        traddr: *mut kernel::ffi::c_char,
    ) {
        // SAFETY: nvmet passes a request of ours, its port, and a buffer of
        // NVMF_TRADDR_SIZE bytes.
        let (req, port, out) = unsafe {
            (
                request_from_raw::<T::Queue>(req),
                NvmetPort::from_raw(nport),
                core::slice::from_raw_parts_mut(traddr.cast::<u8>(), bindings::NVMF_TRADDR_SIZE as usize),
            )
        };
        T::disc_traddr(&req.owner(), port, out);
    }

    unsafe extern "C" fn host_traddr(
        ctrl: *mut bindings::nvmet_ctrl,
        traddr: *mut kernel::ffi::c_char,
        len: usize,
    ) -> isize {
        // SAFETY: nvmet passes a buffer of `len` bytes.
        let out = unsafe { core::slice::from_raw_parts_mut(traddr.cast::<u8>(), len) };
        match T::host_traddr(ctrl as usize, out) {
            // CAST: at most `len`, a buffer size.
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    unsafe extern "C" fn add_port(nport: *mut bindings::nvmet_port) -> i32 {
        from_result(|| {
            // SAFETY: nvmet passes a valid port that outlives this call.
            let port = unsafe { NvmetPort::from_raw(nport) };
            let state = T::add_port(port)?;
            // SAFETY: `nport` is valid; `priv_` belongs to the transport.
            unsafe { (*nport).priv_ = state.into_foreign().cast::<c_void>() };
            Ok(0)
        })
    }

    unsafe extern "C" fn remove_port(nport: *mut bindings::nvmet_port) {
        // SAFETY: nvmet passes a valid port; `priv_` was set by a successful
        // `add_port` (nvmet only removes enabled ports) and is taken back once.
        let state = unsafe { T::Port::from_foreign((*nport).priv_.cast()) };
        // SAFETY: as above.
        unsafe { (*nport).priv_ = core::ptr::null_mut() };
        // SAFETY: nvmet passes a valid port that outlives this call.
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
/// `live` is true exactly while `sq` and `cq` are initialised with nvmet.
#[pin_data]
pub(crate) struct NvmetSq {
    #[pin]
    sq: Opaque<bindings::nvmet_sq>,
    #[pin]
    cq: Opaque<bindings::nvmet_cq>,
    live: core::sync::atomic::AtomicBool,
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
            live: core::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Initialises the queues with nvmet (`nvmet_cq_init`, `nvmet_sq_init`).
    pub(crate) fn init(&self) -> Result {
        use core::sync::atomic::Ordering;
        if self.live.load(Ordering::Acquire) {
            return Err(EBUSY);
        }
        // SAFETY: `cq` is pinned inside `self`, zeroed, and not yet initialised.
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
        if self.live.swap(false, core::sync::atomic::Ordering::AcqRel) {
            // SAFETY: initialised (type invariant), destroyed exactly once here.
            unsafe {
                bindings::nvmet_sq_destroy(self.sq.get());
                bindings::nvmet_cq_put(self.cq.get());
            }
        }
    }

    fn raw(&self) -> &bindings::nvmet_sq {
        // SAFETY: `sq` is valid; the fields read through this are written by
        // nvmet during Connect, before the transport reads them.
        unsafe { &*self.sq.get() }
    }

    /// The C queue, for matching nvmet's callbacks to their queue.
    pub(crate) fn as_ptr(&self) -> *mut bindings::nvmet_sq {
        self.sq.get()
    }

    /// The queue id (0: admin), valid after Connect.
    pub(crate) fn qid(&self) -> u16 {
        self.raw().qid
    }

    /// The queue size, valid after Connect.
    pub(crate) fn size(&self) -> u16 {
        self.raw().size
    }

    /// Whether the host disabled SQ flow control (then a successful read needs
    /// no response capsule after its data).
    pub(crate) fn sqhd_disabled(&self) -> bool {
        self.raw().sqhd_disabled
    }

    /// The controller this queue belongs to (a key; 0 before Connect).
    pub(crate) fn ctrl_key(&self) -> usize {
        self.raw().ctrl as usize
    }

    /// Reports a fatal transport error to the controller, which tears down
    /// every queue of it (no-op before Connect).
    pub(crate) fn ctrl_fatal_error(&self) {
        let ctrl = self.raw().ctrl;
        if !ctrl.is_null() {
            // SAFETY: the queue holds a reference on its controller while connected.
            unsafe { bindings::nvmet_ctrl_fatal_error(ctrl) };
        }
    }
}

/// The requests whose responses are ready, in the order they became ready.
///
/// nvmet's `queue_response` may run in any context, the request's queue's I/O
/// work included; it only pushes onto this lock-free list.
pub(crate) struct Completions {
    head: Opaque<bindings::llist_head>,
}

// SAFETY: `llist` is a lock-free multi-producer list; `take` is only called
// by the queue's I/O work (single consumer).
unsafe impl Send for Completions {}
// SAFETY: as above.
unsafe impl Sync for Completions {}

impl Completions {
    /// An empty list.
    pub(crate) fn new() -> Self {
        let c = Self { head: Opaque::zeroed() };
        // SAFETY: `head` is valid for writes; an llist head needs no pinning.
        unsafe { bindings::nvtr_init_llist_head(c.head.get()) };
        c
    }

    fn push<Q>(&self, req: &Request<Q>) {
        use core::sync::atomic::Ordering;
        // A request is on the list at most once (else the list would break).
        if !req.queued.swap(true, Ordering::AcqRel) {
            // SAFETY: `req.node` is valid and not on any list (`queued` was false).
            unsafe { bindings::nvtr_llist_add(req.node.get(), self.head.get()) };
        }
    }

    /// Takes every ready request, oldest first, and calls `f` with its tag.
    /// Only the owner's I/O work may call this.
    pub(crate) fn take<Q>(&self, mut f: impl FnMut(u16)) {
        use core::sync::atomic::Ordering;
        // SAFETY: `head` is a valid list head.
        let mut node = unsafe { bindings::nvtr_llist_del_all_fifo(self.head.get()) };
        while !node.is_null() {
            let off = core::mem::offset_of!(Request<Q>, node);
            // SAFETY: only `Completions::push` adds nodes, each the `node` field of
            // a `Request<Q>` that stays allocated while its queue exists.
            let req = unsafe { &*node.cast::<u8>().sub(off).cast::<Request<Q>>() };
            // SAFETY: `node` is valid; read its successor before `req` may be re-queued.
            node = unsafe { (*node).next };
            req.queued.store(false, Ordering::Release);
            f(req.tag);
        }
    }
}

/// A queue that owns [`Request`]s and is told when their responses are ready.
pub(crate) trait NvmetQueue: Send + Sync + Sized {
    /// The list nvmet's `queue_response` pushes this queue's requests onto.
    fn completions(&self) -> &Completions;
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
    queued: core::sync::atomic::AtomicBool,
    tag: u16,
    owner: *const Q,
}

// SAFETY: nvmet and the owner's I/O work hand a request to each other (through
// `nvmet_req_init`/`execute` and `queue_response`); the Rust side only touches
// it from the owner's I/O work and through atomics.
unsafe impl<Q: Sync> Send for Request<Q> {}
// SAFETY: as above.
unsafe impl<Q: Sync> Sync for Request<Q> {}

/// What a data transfer on a request's buffer achieved.
pub(crate) use super::sock::Io as DataIo;

impl<Q: NvmetQueue> Request<Q> {
    fn raw(&self) -> *mut bindings::nvmet_req {
        self.req.get()
    }

    /// The slot's tag (its index, or the connect slot's tag).
    pub(crate) fn tag(&self) -> u16 {
        self.tag
    }

    /// Starts a command: copies `sqe` in and hands the request to nvmet
    /// (`nvmet_req_init`). On `false` nvmet has already completed the request
    /// with an error status (and called `queue_response`).
    pub(crate) fn init<T: NvmetTransport<Queue = Q>>(
        &self,
        sqe: &[u8; 64],
        sq: &NvmetSq,
        port: &NvmetPort,
        ops: &'static OpsTable<T>,
    ) -> bool {
        // SAFETY: the slot is idle (the owner's I/O work only starts idle slots),
        // so nothing else reads `sqe`, `cmd`, `cqe` or `port` now; `sqe` is 64
        // bytes, the size of `nvme_command`.
        unsafe {
            core::ptr::copy_nonoverlapping(sqe.as_ptr(), self.sqe.get().cast::<u8>(), 64);
            (*self.raw()).cmd = self.sqe.get();
            (*self.raw()).cqe = self.cqe.get();
            (*self.raw()).port = port.0.get();
            bindings::nvmet_req_init(self.raw(), sq.as_ptr(), &ops.0)
        }
    }

    /// Whether the command writes (host to controller data).
    pub(crate) fn is_write(&self) -> bool {
        // SAFETY: `cmd` points to this slot's SQE, set by `init`.
        unsafe { bindings::nvtr_req_is_write(self.raw()) }
    }

    /// The command's data length, as nvmet parsed it (before mapping) or as
    /// the transport mapped it.
    pub(crate) fn transfer_len(&self) -> usize {
        // SAFETY: `transfer_len` is a plain field of a valid request.
        unsafe { (*self.raw()).transfer_len }
    }

    /// Allocates the data buffer for `len` bytes and records it as the
    /// request's transfer length.
    pub(crate) fn alloc_data(&self, len: u32) -> Result {
        // SAFETY: the request is initialised and owned by the I/O work until it
        // executes; `transfer_len` and `sg` are the transport's to set.
        unsafe {
            (*self.raw()).transfer_len = len as usize;
            kernel::error::to_result(bindings::nvtr_req_alloc_data(self.raw(), len))
        }
    }

    /// Frees the data buffer, if any.
    pub(crate) fn free_data(&self) {
        // SAFETY: the request is idle or owned by the I/O work; `sg` was set by
        // `alloc_data` or is NULL (`nvmet_req_init` clears it).
        unsafe { bindings::nvtr_req_free_data(self.raw()) }
    }

    /// Receives up to `len` bytes from `sock` into the data buffer at `offset`.
    pub(crate) fn recv_data(&self, sock: &Socket, bvs: &mut Bvecs, offset: u32, len: u32) -> Result<DataIo> {
        // SAFETY: `sg` covers `transfer_len` bytes and the caller keeps
        // `offset + len` within it; the socket and the table are valid, and
        // the table is ours alone for the call (`&mut`).
        let ret = unsafe { bindings::nvtr_sock_recv_sg(sock.raw(), bvs.raw(), (*self.raw()).sg, offset, len) };
        Socket::io_result(ret, true)
    }

    /// Adds up to `len` bytes of the data buffer from `offset` to a send's
    /// table (its pages are spliced, not copied); returns how many fit.
    pub(crate) fn add_data(&self, bvs: &mut Bvecs, offset: u32, len: u32) -> u32 {
        // SAFETY: as in `recv_data`; the pages stay allocated until the
        // caller frees the data, after the send (the socket takes its own
        // page references).
        unsafe { bindings::nvtr_bvecs_add_sg(bvs.raw(), (*self.raw()).sg, offset, len) }
    }

    /// Copies `bytes` into the data buffer at `offset` (bytes read ahead of
    /// the socket with a PDU header).
    pub(crate) fn copy_in(&self, offset: u32, bytes: &[u8]) {
        // CAST: the callers copy at most a PDU header's worth.
        let len = bytes.len() as u32;
        // SAFETY: `sg` covers `transfer_len` bytes and the caller keeps
        // `offset + len` within it (the helper stops at the end of `sg`
        // anyway); `bytes` is valid for `len` bytes.
        unsafe { bindings::nvtr_sg_copy_in((*self.raw()).sg, offset, bytes.as_ptr().cast(), len) }
    }

    /// Adds `len` bytes of the data buffer from `offset` to a running CRC32C
    /// (raw register value, not inverted).
    pub(crate) fn data_crc(&self, crc: u32, offset: u32, len: u32) -> u32 {
        // SAFETY: as in `recv_data`.
        unsafe { bindings::nvtr_sg_crc32c(crc, (*self.raw()).sg, offset, len) }
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
        u16::from_le(unsafe { (*self.cqe.get()).status }) >> 1
    }

    /// The owning queue.
    pub(crate) fn owner(&self) -> ArcBorrow<'_, Q> {
        // SAFETY: per the type invariant `owner` came from `Arc::as_ptr` of an
        // `Arc<Q>` that outlives the request, so the count stays above zero.
        unsafe { ArcBorrow::from_raw(self.owner) }
    }
}

/// A fixed set of [`Request`] slots, created once and never resized (nvmet
/// holds pointers into it).
pub(crate) struct Requests<Q> {
    slots: KVec<Request<Q>>,
}

impl<Q: NvmetQueue> Requests<Q> {
    /// `n` idle slots tagged `first_tag..` (wrapping), owned by `owner`.
    ///
    /// `owner` must outlive the slots' use by nvmet: the owner destroys its
    /// [`NvmetSq`] (which waits for every request) before dropping them.
    pub(crate) fn new(n: usize, first_tag: u16, owner: &Arc<Q>) -> Result<Self> {
        let mut slots = KVec::with_capacity(n, GFP_KERNEL | __GFP_ZERO)?;
        for i in 0..n {
            // CAST: tags are 16 bits on the wire; `n` is at most 2 * 1024 + 1.
            let tag = first_tag.wrapping_add(i as u16);
            slots.push(
                Request {
                    req: Opaque::zeroed(),
                    sqe: Opaque::zeroed(),
                    cqe: Opaque::zeroed(),
                    node: Opaque::zeroed(),
                    queued: core::sync::atomic::AtomicBool::new(false),
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
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// A request nvmet handed back, resolved to its slot.
///
/// # Safety
///
/// `req` must be the `req` field of a live `Request<Q>`.
unsafe fn request_from_raw<'a, Q>(req: *mut bindings::nvmet_req) -> &'a Request<Q> {
    // SAFETY: `req` is the first field of a `#[repr(C)]` `Request<Q>` (type
    // invariant), which the caller guarantees is live.
    unsafe { &*req.cast::<Request<Q>>() }
}
