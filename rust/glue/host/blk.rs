// SPDX-License-Identifier: GPL-2.0

//! blk-mq for nvme-core's tag sets: the operations tables, the requests, and
//! the per-request data (PDU) this transport keeps in each.
//!
//! The 7.3 crate's `kernel::block::mq` allocates its own tag sets and owns
//! the request PDU; nvme-core allocates ours (`nvme_alloc_*_tag_set`) and
//! needs `struct nvme_request` at the start of the PDU. So the tables here
//! are our own, with `complete` pointing at `nvme_complete_rq` itself.

use crate::glue::{
    bindings,
    host::nvme::{FabricsCtrl, HostTables, NsRef, NvmeCtrl},
    sock::Socket,
    sock_io::{Bvecs, DataSink, Io},
};
use core::mem::{offset_of, size_of};
use kernel::{ffi::c_void, prelude::*, sync::{Arc, ArcBorrow}, types::Opaque};

/// Bytes of a request's command PDU: the CapsuleCmd header (common header
/// and SQE) and room for its header digest.
pub(crate) const CMD_PDU_LEN: usize = 72 + 4;
/// Where the SQE starts in the command PDU.
const SQE_OFFSET: usize = 8;

#[repr(C, align(8))]
struct CmdBuf([u8; CMD_PDU_LEN]);

/// The transport's part of each request (`blk_mq_rq_to_pdu`): nvme-core's
/// `struct nvme_request` first (`nvme_req()` casts the PDU to it), then the
/// command PDU whose SQE `nvme_setup_cmd` writes, straight into the bytes
/// that go on the wire.
#[repr(C)]
pub(crate) struct RqPdu {
    nreq: Opaque<bindings::nvme_request>,
    cmd: Opaque<CmdBuf>,
}

const _: () = assert!(offset_of!(RqPdu, nreq) == 0);
const _: () = assert!(offset_of!(RqPdu, cmd) % 8 == 0);

/// Bytes of per-request data the tag sets are allocated with.
pub(crate) const RQ_PDU_SIZE: u32 = size_of::<RqPdu>() as u32;

/// A blk-mq request of one of our tag sets.
///
/// # Invariants
///
/// Wraps a request of a tag set allocated with [`RQ_PDU_SIZE`] bytes of PDU
/// that our `init_request` initialised. The command PDU is written only by
/// `queue_rq` ([`NewRequest`]), before the request is handed to the send
/// path, and not again until blk-mq hands the request out anew.
#[repr(transparent)]
pub(crate) struct Request(Opaque<bindings::request>);

impl Request {
    fn raw(&self) -> *mut bindings::request {
        self.0.get()
    }

    /// # Safety
    ///
    /// `rq` is a request of our tag sets, alive for `'a`.
    unsafe fn from_raw<'a>(rq: *mut bindings::request) -> &'a Self {
        // SAFETY: per the caller; transparent wrapper.
        unsafe { &*rq.cast::<Self>() }
    }

    fn pdu(&self) -> *mut RqPdu {
        // SAFETY: the PDU follows the request (`blk_mq_rq_to_pdu`), within the
        // same allocation (type invariant).
        unsafe { self.raw().add(1).cast::<RqPdu>() }
    }

    /// Its tag.
    pub(crate) fn tag(&self) -> u16 {
        // SAFETY: `tag` is set when the request is handed out and stays while it is ours.
        let tag = unsafe { core::ptr::addr_of!((*self.raw()).tag).read() };
        u16::try_from(tag).unwrap_or(u16::MAX)
    }

    /// The command PDU as `queue_rq` wrote it.
    pub(crate) fn cmd(&self) -> &[u8; CMD_PDU_LEN] {
        // SAFETY: initialised by `init_request`; not written while the request
        // is in flight (type invariant).
        unsafe { &(*(*self.pdu()).cmd.get()).0 }
    }

    /// The command identifier in its SQE.
    pub(crate) fn command_id(&self) -> u16 {
        let c = self.cmd();
        u16::from_le_bytes([c[SQE_OFFSET + 2], c[SQE_OFFSET + 3]])
    }

    /// Bytes of data the request moves (0 for none).
    pub(crate) fn data_len(&self) -> u32 {
        // SAFETY: a request of ours, in flight.
        unsafe { bindings::nvtr_rq_data_len(self.raw()) }
    }

    /// Whether it moves data to the controller.
    pub(crate) fn is_write(&self) -> bool {
        // SAFETY: as in `data_len`.
        unsafe { bindings::nvtr_rq_is_write(self.raw()) }
    }

    /// Completes it with a response's status and result, as on the wire.
    /// The request is not ours any more afterwards.
    pub(crate) fn complete(&self, status: u16, result: u64) {
        // SAFETY: a started request of ours that nothing else completes.
        unsafe { bindings::nvtr_complete_rq(self.raw(), status, result) }
    }

    /// Completes a timed-out request as aborted, unless it already completed
    /// (`nvmf_complete_timed_out_request`).
    pub(crate) fn complete_timed_out(&self) {
        // SAFETY: a request of ours; the helper checks its state.
        unsafe { bindings::nvtr_complete_timed_out(self.raw()) }
    }

    /// Sends up to `len` bytes of its data from `offset`, without blocking.
    pub(crate) fn send_data(&self, sock: &Socket, bvecs: &mut Bvecs, offset: u32, len: u32, more: bool) -> Result<Io> {
        // SAFETY: the socket and table are valid, the table ours alone for
        // the call (`&mut`); the helper stays within the request's data,
        // whose pages the request holds while it is in flight.
        let ret = unsafe { bindings::nvtr_sock_send_rq(sock.raw(), bvecs.raw(), self.raw(), offset, len, more) };
        Io::from_ret(ret, false)
    }

}

impl DataSink for Request {
    /// The pages of up to `len` bytes of its data from `offset`.
    fn map_data(&self, bvecs: &mut Bvecs, offset: u32, len: u32) -> u32 {
        // SAFETY: the table is ours alone for the call (`&mut`); the helper
        // stays within the request's data, whose pages the request holds
        // while it is in flight.
        unsafe { bindings::nvtr_rq_map(bvecs.raw(), self.raw(), offset, len) }
    }

    /// Copies `buf` into its data at `offset`.
    fn copy_in(&self, offset: u32, buf: &[u8]) {
        let len = u32::try_from(buf.len()).unwrap_or(0);
        // SAFETY: `buf` is readable for `len` bytes; the helper stays within the request's data.
        unsafe { bindings::nvtr_rq_copy_in(self.raw(), offset, buf.as_ptr().cast(), len) }
    }

    /// `crc` (a running CRC32C) advanced over `len` bytes of its data at `offset`.
    fn data_crc(&self, crc: u32, offset: u32, len: u32) -> u32 {
        // SAFETY: the helper only reads within the request's data.
        unsafe { bindings::nvtr_rq_crc32c(crc, self.raw(), offset, len) }
    }
}

/// A request in `queue_rq`: the transport's alone, so its command may be
/// set up and written.
pub(crate) struct NewRequest<'a>(&'a Request);

impl<'a> NewRequest<'a> {
    /// The request.
    pub(crate) fn request(&self) -> &'a Request {
        self.0
    }

    /// Whether the controller takes this request now (`nvme_check_ready`),
    /// with the queue connected or not.
    pub(crate) fn check_ready(&self, ctrl: &NvmeCtrl, queue_live: bool) -> bool {
        // SAFETY: both are valid.
        unsafe { bindings::nvtr_check_ready(ctrl.raw(), self.0.raw(), queue_live) }
    }

    /// Fails or requeues a request the controller cannot take
    /// (`nvme_fail_nonready_command`); returns the blk-mq status.
    pub(crate) fn fail_nonready(&self, ctrl: &NvmeCtrl) -> u8 {
        // SAFETY: both are valid; the request is ours.
        unsafe { bindings::nvme_fail_nonready_command(ctrl.raw(), self.0.raw()) }
    }

    /// Writes the request's SQE into its command PDU (`nvme_setup_cmd`).
    pub(crate) fn setup_cmd(&mut self, ns: Option<NsRef>) -> core::result::Result<(), u8> {
        let ns = ns.map_or(core::ptr::null_mut(), |n| n.0);
        // SAFETY: `ns` is null or the request queue's namespace; the request is
        // ours and its `nvme_request.cmd` points at its command PDU.
        match unsafe { bindings::nvme_setup_cmd(ns, self.0.raw()) } {
            0 => Ok(()),
            s => Err(s),
        }
    }

    /// Undoes `setup_cmd` for a request that will not be sent (`nvme_cleanup_cmd`).
    pub(crate) fn cleanup_cmd(&mut self) {
        // SAFETY: set up by `setup_cmd`.
        unsafe { bindings::nvme_cleanup_cmd(self.0.raw()) }
    }

    /// The command PDU, to fill in around the SQE.
    pub(crate) fn cmd_mut(&mut self) -> &mut [u8; CMD_PDU_LEN] {
        // SAFETY: the request is ours alone in `queue_rq` (`&mut self`), and the
        // send path reads the PDU only after `queue_rq` handed it over.
        unsafe { &mut (*(*self.0.pdu()).cmd.get()).0 }
    }

    /// Starts the request's timer (`nvme_start_request`).
    pub(crate) fn start(&mut self) {
        // SAFETY: the request is ours, set up.
        unsafe { bindings::nvtr_start_request(self.0.raw()) }
    }
}

/// A tag set, embedded in the transport's controller and allocated by nvme-core.
///
/// # Invariants
///
/// Zeroed until nvme-core allocates it; freed by `nvme_remove_*_tag_set`,
/// before the controller around it goes.
#[repr(transparent)]
pub(crate) struct TagSet(Opaque<bindings::blk_mq_tag_set>);

// SAFETY: blk-mq synchronises its tag sets; we only read fixed fields.
unsafe impl Send for TagSet {}
// SAFETY: as above.
unsafe impl Sync for TagSet {}

impl TagSet {
    /// A zeroed tag set.
    pub(crate) fn new() -> Self {
        // All-zero is an unallocated tag set (nvme-core memsets it anyway).
        Self(Opaque::zeroed())
    }

    pub(super) fn raw(&self) -> *mut bindings::blk_mq_tag_set {
        self.0.get()
    }

    /// The in-flight request of `tag` on hardware queue `hctx_idx`, if any.
    pub(crate) fn request(&self, hctx_idx: u32, tag: u16) -> Option<&Request> {
        // SAFETY: the helper checks that the set and the tag exist.
        let rq = unsafe { bindings::nvtr_tag_to_rq(self.raw(), hctx_idx, u32::from(tag)) };
        if rq.is_null() {
            return None;
        }
        // SAFETY: a request of this tag set, which lives as long as `self`.
        Some(unsafe { Request::from_raw(rq) })
    }

    /// Entries per hardware queue, reserved ones included.
    pub(crate) fn queue_depth(&self) -> u32 {
        // SAFETY: set by nvme-core when it allocated the set.
        unsafe { core::ptr::addr_of!((*self.raw()).queue_depth).read() }
    }

    /// Hardware queues.
    pub(crate) fn nr_hw_queues(&self) -> u32 {
        // SAFETY: as in `queue_depth`.
        unsafe { core::ptr::addr_of!((*self.raw()).nr_hw_queues).read() }
    }

    /// Maps CPUs to the hardware queues: `io_queues` of each type
    /// (`nvmf_map_queues`).
    pub(crate) fn map_queues(&self, ctrl: &NvmeCtrl, io_queues: &mut [u32; 3]) {
        // SAFETY: called from `map_queues`, with the set's own controller.
        unsafe { bindings::nvmf_map_queues(self.raw(), ctrl.raw(), io_queues.as_mut_ptr()) }
    }

    /// Picks the CPU for the I/O work of hardware queue `hctx_idx`, of map
    /// `map` (0 default, 1 read): see [`IoCpu`].
    pub(crate) fn io_cpu(&self, map: u32, hctx_idx: u32) -> IoCpu {
        // SAFETY: the set is allocated and mapped.
        IoCpu(unsafe { bindings::nvtr_io_cpu_get(self.raw(), map, hctx_idx) })
    }
}

/// The CPU a queue's I/O work runs on, counted among the module's queues
/// until dropped; or "unbound" (`WORK_CPU_UNBOUND`).
pub(crate) struct IoCpu(i32);

impl IoCpu {
    /// No CPU chosen (`wq_unbound`).
    pub(crate) fn unbound() -> Self {
        // CAST: WORK_CPU_UNBOUND is NR_CPUS, a small constant.
        Self(bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32)
    }

    /// The CPU number, or WORK_CPU_UNBOUND.
    pub(crate) fn get(&self) -> i32 {
        self.0
    }

    /// Whether it names a CPU.
    pub(crate) fn is_bound(&self) -> bool {
        // CAST: as in `unbound`.
        self.0 != bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32
    }
}

impl Drop for IoCpu {
    fn drop(&mut self) {
        if self.is_bound() {
            // SAFETY: counted by `nvtr_io_cpu_get`.
            unsafe { bindings::nvtr_io_cpu_put(self.0) }
        }
    }
}

/// A blk-mq operations table for `T`'s admin or I/O tag set.
pub(crate) struct MqOps(bindings::blk_mq_ops);

// SAFETY: immutable after construction, only read by blk-mq.
unsafe impl Sync for MqOps {}

impl MqOps {
    pub(super) const fn new<T: FabricsCtrl>(admin: bool) -> Self {
        // SAFETY: all-zero is a valid `blk_mq_ops` (NULL callbacks).
        let mut ops: bindings::blk_mq_ops = unsafe { core::mem::zeroed() };
        ops.queue_rq = Some(queue_rq::<T>);
        ops.complete = Some(bindings::nvme_complete_rq);
        ops.init_request = Some(init_request::<T>);
        ops.exit_request = Some(exit_request);
        ops.timeout = Some(timeout::<T>);
        if admin {
            ops.init_hctx = Some(init_hctx::<T, true>);
        } else {
            ops.init_hctx = Some(init_hctx::<T, false>);
            ops.commit_rqs = Some(commit_rqs::<T>);
            ops.map_queues = Some(map_queues::<T>);
        }
        Self(ops)
    }

    pub(super) fn raw(&'static self) -> *const bindings::blk_mq_ops {
        &self.0
    }
}

/// The transport's controller of a tag set (`driver_data`, set by nvme-core).
///
/// # Safety
///
/// `set` is a tag set that nvme-core allocated for a live `T`.
unsafe fn set_ctrl<'a, T: FabricsCtrl>(set: *mut bindings::blk_mq_tag_set) -> &'a T {
    // SAFETY: per the caller; `driver_data` is the `nvme_ctrl` of a `T`.
    unsafe { HostTables::<T>::ctrl((*set).driver_data.cast()) }
}

/// # Safety
///
/// Called by blk-mq as `queue_rq` of a hardware context that `init_hctx`
/// pointed at a live queue.
unsafe extern "C" fn queue_rq<T: FabricsCtrl>(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: per the function's contract; `driver_data` came from
    // `Arc::as_ptr` of a queue that lives until the tag sets are removed.
    let (queue, ns, rq, last) = unsafe {
        let queue = ArcBorrow::from_raw((*hctx).driver_data.cast::<T::Queue>());
        let ns = (*(*hctx).queue).queuedata.cast::<bindings::nvme_ns>();
        (queue, (!ns.is_null()).then_some(NsRef(ns)), Request::from_raw((*bd).rq), (*bd).last)
    };
    T::queue_rq(queue, NewRequest(rq), ns, last)
}

/// # Safety
///
/// As `queue_rq`.
unsafe extern "C" fn commit_rqs<T: FabricsCtrl>(hctx: *mut bindings::blk_mq_hw_ctx) {
    // SAFETY: per the function's contract (see `queue_rq`).
    T::commit_rqs(unsafe { ArcBorrow::from_raw((*hctx).driver_data.cast::<T::Queue>()) })
}

/// # Safety
///
/// Called by blk-mq as `init_request` of a tag set nvme-core allocated for
/// a live `T`, with [`RQ_PDU_SIZE`] bytes of PDU after `rq`.
unsafe extern "C" fn init_request<T: FabricsCtrl>(
    set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx_idx: u32,
    _numa_node: i32,
) -> i32 {
    // SAFETY: per the function's contract.
    let ctrl = unsafe { set_ctrl::<T>(set) };
    // SAFETY: the PDU is ours, not in use yet.
    unsafe {
        let pdu = rq.add(1).cast::<RqPdu>();
        let cmd = (*pdu).cmd.get();
        cmd.write(CmdBuf([0; CMD_PDU_LEN]));
        let nreq = (*pdu).nreq.get();
        (*nreq).ctrl = ctrl.nctrl().raw();
        (*nreq).cmd = cmd.cast::<u8>().add(SQE_OFFSET).cast();
    }
    0
}

/// # Safety
///
/// Called by blk-mq as `exit_request` of a request `init_request` set up.
unsafe extern "C" fn exit_request(_set: *mut bindings::blk_mq_tag_set, rq: *mut bindings::request, _hctx_idx: u32) {
    // Nothing was allocated per request; the SQE pointer is cleared so that
    // nothing can use it past the tag set.
    // SAFETY: per the function's contract.
    unsafe { (*(*rq.add(1).cast::<RqPdu>()).nreq.get()).cmd = core::ptr::null_mut() };
}

/// # Safety
///
/// Called by blk-mq as `init_hctx`, with `data` the tag set's `driver_data`.
unsafe extern "C" fn init_hctx<T: FabricsCtrl, const ADMIN: bool>(
    hctx: *mut bindings::blk_mq_hw_ctx,
    data: *mut c_void,
    hctx_idx: u32,
) -> i32 {
    // SAFETY: per the function's contract, `data` is the `nvme_ctrl` of a live `T`.
    let ctrl = unsafe { HostTables::<T>::ctrl(data.cast()) };
    let idx = if ADMIN { 0 } else { hctx_idx as usize + 1 };
    match ctrl.queue(idx) {
        Some(q) => {
            // The queue lives until the tag sets are removed (the trait's
            // contract), so the context may point at it without a count.
            // SAFETY: `hctx` is being initialised for us.
            unsafe { (*hctx).driver_data = Arc::as_ptr(&q).cast_mut().cast() };
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// # Safety
///
/// Called by blk-mq as `timeout` of an in-flight request of ours.
unsafe extern "C" fn timeout<T: FabricsCtrl>(rq: *mut bindings::request) -> bindings::blk_eh_timer_return {
    // SAFETY: per the function's contract; its hardware context's queue is
    // live (see `queue_rq`).
    let (queue, rq) = unsafe {
        (ArcBorrow::from_raw(bindings::nvtr_rq_queue(rq).cast::<T::Queue>().cast_const()), Request::from_raw(rq))
    };
    if T::timeout(queue, rq) {
        bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER
    } else {
        bindings::blk_eh_timer_return_BLK_EH_DONE
    }
}

/// # Safety
///
/// Called by blk-mq as `map_queues` of the I/O tag set of a live `T`.
unsafe extern "C" fn map_queues<T: FabricsCtrl>(set: *mut bindings::blk_mq_tag_set) {
    // SAFETY: per the function's contract.
    let ctrl = unsafe { set_ctrl::<T>(set) };
    // SAFETY: `TagSet` is a transparent wrapper of the set.
    ctrl.map_queues(unsafe { &*set.cast::<TagSet>() })
}
