// SPDX-License-Identifier: GPL-2.0

//! nvme-core's side of a host transport: the controller (`struct nvme_ctrl`)
//! that a transport embeds, its operations table, and the calls that drive
//! it through its life.
//!
//! C: `drivers/nvme/host/nvme.h` (`struct nvme_ctrl`, `struct nvme_ctrl_ops`).
//! The transport's controller type implements [`FabricsCtrl`]; the tables
//! nvme-core and blk-mq call through are built once per type
//! ([`HostTables`]) and point at the trampolines here and in `blk.rs`.

use crate::glue::{
    bindings,
    host::{
        blk::{MqOps, NewRequest, Request, TagSet},
        fabrics::{CtrlOptions, NewCtrl},
    },
};
use core::{marker::PhantomData, ptr::addr_of};
use kernel::{error::to_result, ffi::c_char, prelude::*, sync::{Arc, ArcBorrow}, types::Opaque, ThisModule};

/// A controller state (`enum nvme_ctrl_state`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CtrlState {
    New,
    Live,
    Resetting,
    Connecting,
    Deleting,
    DeletingNoIo,
    Dead,
}

impl CtrlState {
    fn from_raw(s: u32) -> Self {
        match s {
            bindings::nvme_ctrl_state_NVME_CTRL_NEW => Self::New,
            bindings::nvme_ctrl_state_NVME_CTRL_LIVE => Self::Live,
            bindings::nvme_ctrl_state_NVME_CTRL_RESETTING => Self::Resetting,
            bindings::nvme_ctrl_state_NVME_CTRL_CONNECTING => Self::Connecting,
            bindings::nvme_ctrl_state_NVME_CTRL_DELETING => Self::Deleting,
            bindings::nvme_ctrl_state_NVME_CTRL_DELETING_NOIO => Self::DeletingNoIo,
            _ => Self::Dead,
        }
    }

    fn to_raw(self) -> u32 {
        match self {
            Self::New => bindings::nvme_ctrl_state_NVME_CTRL_NEW,
            Self::Live => bindings::nvme_ctrl_state_NVME_CTRL_LIVE,
            Self::Resetting => bindings::nvme_ctrl_state_NVME_CTRL_RESETTING,
            Self::Connecting => bindings::nvme_ctrl_state_NVME_CTRL_CONNECTING,
            Self::Deleting => bindings::nvme_ctrl_state_NVME_CTRL_DELETING,
            Self::DeletingNoIo => bindings::nvme_ctrl_state_NVME_CTRL_DELETING_NOIO,
            Self::Dead => bindings::nvme_ctrl_state_NVME_CTRL_DEAD,
        }
    }
}

/// nvme-core's controller, embedded in a transport's controller.
///
/// # Invariants
///
/// Once [`NvmeCtrl::init`] succeeded, nvme-core owns the structure's
/// life: its device's last reference calls `free_ctrl`, which frees the
/// transport's controller around it. Fields are read through raw-pointer
/// projections; the ones read here are set before the calls that read them
/// and changed only by the transport's own setup, in process context.
#[repr(transparent)]
pub(crate) struct NvmeCtrl(Opaque<bindings::nvme_ctrl>);

// SAFETY: nvme-core synchronises its own use of the controller; the fields we
// read are written by the transport's setup before anything concurrent reads them.
unsafe impl Send for NvmeCtrl {}
// SAFETY: as above.
unsafe impl Sync for NvmeCtrl {}

impl NvmeCtrl {
    /// A zeroed controller for [`NvmeCtrl::init`].
    pub(crate) fn new() -> Self {
        // All-zero is the state nvme_init_ctrl() expects (the C transports
        // kzalloc their controllers).
        Self(Opaque::zeroed())
    }

    pub(crate) fn raw(&self) -> *mut bindings::nvme_ctrl {
        self.0.get()
    }

    /// Initialises the controller (`nvme_init_ctrl`) for `opts`, with the
    /// queue count and queue size they ask for.
    ///
    /// # Safety
    ///
    /// `self` is the `nctrl()` of a `T` that lives in a leaked
    /// `Pin<KBox<T>>` which only `T::free_ctrl` (through `tables`) frees, and
    /// `dev` is the device nvme-fabrics passed to `create_ctrl`.
    pub(crate) unsafe fn init<T: FabricsCtrl>(
        &self,
        dev: DeviceRef,
        opts: &CtrlOptions,
        queue_count: u32,
        tables: &'static HostTables<T>,
    ) -> Result {
        let c = self.raw();
        // SAFETY: the controller is not shared yet: plain writes of its fields.
        unsafe {
            (*c).opts = opts.raw();
            (*c).queue_count = queue_count;
            (*c).sqsize = u16::try_from(opts.queue_size().saturating_sub(1)).unwrap_or(u16::MAX);
            (*c).kato = opts.kato();
        }
        // SAFETY: per the caller; the tables are static.
        to_result(unsafe { bindings::nvme_init_ctrl(c, dev.0, &tables.ctrl_ops, 0) })?;
        // SAFETY: initialised; nothing can queue the work before this returns.
        unsafe { bindings::nvtr_init_reset_work(c, Some(HostTables::<T>::reset_work)) };
        Ok(())
    }

    /// Starts a reset (`nvme_reset_ctrl`): the state moves to `Resetting`
    /// and the transport's reset work runs. False if the state does not
    /// allow it (only a new or live controller resets).
    pub(crate) fn reset(&self) -> bool {
        // SAFETY: initialised.
        unsafe { bindings::nvme_reset_ctrl(self.raw()) == 0 }
    }

    /// Makes the controller visible (`nvme_add_ctrl`: its device and `/dev/nvmeN`).
    pub(crate) fn add(&self) -> Result {
        // SAFETY: initialised (type invariant).
        to_result(unsafe { bindings::nvme_add_ctrl(self.raw()) })
    }

    /// Undoes `add` on a failed creation (`nvme_uninit_ctrl`).
    pub(crate) fn uninit(&self) {
        // SAFETY: added, and being given up by its creator.
        unsafe { bindings::nvme_uninit_ctrl(self.raw()) }
    }

    /// Drops the creator's reference (`nvme_put_ctrl`); the last one frees the controller.
    ///
    /// # Safety
    ///
    /// The caller owns a reference and does not use the controller after this.
    pub(crate) unsafe fn put(&self) {
        // SAFETY: per the caller; `nvme_put_ctrl` is `put_device(ctrl->device)`.
        unsafe { bindings::put_device((*self.raw()).device) }
    }

    /// Takes a reference, given back by [`NvmeCtrl::put`].
    pub(crate) fn get(&self) {
        // SAFETY: initialised, so `device` is valid.
        unsafe { bindings::get_device((*self.raw()).device) };
    }

    /// Hands the creator's reference to nvme-fabrics, as `create_ctrl`'s result.
    ///
    /// # Safety
    ///
    /// The caller owns a reference (from `init`) and gives it up.
    pub(crate) unsafe fn hand_over(&self) -> NewCtrl {
        // SAFETY: per the caller.
        unsafe { NewCtrl::from_raw(self.raw()) }
    }

    /// The instance number (`N` of `nvmeN`).
    pub(crate) fn instance(&self) -> i32 {
        // SAFETY: set by `nvme_init_ctrl`, never changed.
        unsafe { addr_of!((*self.raw()).instance).read() }
    }

    /// The options it was created with.
    pub(crate) fn opts(&self) -> &CtrlOptions {
        // SAFETY: set by `init` and valid until `free_ctrl`.
        unsafe { CtrlOptions::from_raw(addr_of!((*self.raw()).opts).read()) }
    }

    /// The current state.
    pub(crate) fn state(&self) -> CtrlState {
        // SAFETY: initialised; `nvme_ctrl_state` is a READ_ONCE.
        CtrlState::from_raw(unsafe { bindings::nvtr_ctrl_state(self.raw()) })
    }

    /// Moves to `state` if nvme-core allows it from the current one.
    pub(crate) fn change_state(&self, state: CtrlState) -> bool {
        // SAFETY: initialised; nvme-core serialises state changes.
        unsafe { bindings::nvme_change_ctrl_state(self.raw(), state.to_raw()) }
    }

    /// Number of queues, admin queue included (1: a discovery controller).
    pub(crate) fn queue_count(&self) -> u32 {
        // SAFETY: written only by the transport's setup (`set_queue_count`).
        unsafe { addr_of!((*self.raw()).queue_count).read() }
    }

    /// Sets the number of queues, admin queue included.
    pub(crate) fn set_queue_count(&self, n: u32) {
        // SAFETY: only the transport's setup writes it, in process context.
        unsafe { (*self.raw()).queue_count = n }
    }

    /// `sqsize` (queue entries minus one), `maxcmd`, `ioccsz` (in 16-byte
    /// units) and `icdoff`, as Identify Controller and Connect set them.
    pub(crate) fn sqsize(&self) -> u16 {
        // SAFETY: a field nvme-core and the transport set during setup.
        unsafe { addr_of!((*self.raw()).sqsize).read() }
    }

    /// See [`NvmeCtrl::sqsize`].
    pub(crate) fn set_sqsize(&self, v: u16) {
        // SAFETY: only written during setup, in process context.
        unsafe { (*self.raw()).sqsize = v }
    }

    /// See [`NvmeCtrl::sqsize`].
    pub(crate) fn maxcmd(&self) -> u16 {
        // SAFETY: as in `sqsize`.
        unsafe { addr_of!((*self.raw()).maxcmd).read() }
    }

    /// See [`NvmeCtrl::sqsize`].
    pub(crate) fn ioccsz(&self) -> u32 {
        // SAFETY: as in `sqsize`.
        unsafe { addr_of!((*self.raw()).ioccsz).read() }
    }

    /// See [`NvmeCtrl::sqsize`].
    pub(crate) fn icdoff(&self) -> u16 {
        // SAFETY: as in `sqsize`.
        unsafe { addr_of!((*self.raw()).icdoff).read() }
    }

    /// Whether the controller supports SGLs (mandatory for fabrics).
    pub(crate) fn sgl_supported(&self) -> bool {
        // SAFETY: as in `sqsize`.
        let sgls = unsafe { addr_of!((*self.raw()).sgls).read() };
        sgls & (bindings::NVME_CTRL_SGLS_BYTE_ALIGNED | bindings::NVME_CTRL_SGLS_DWORD_ALIGNED) != 0
    }

    /// Asks the target for `count` I/O queues (`nvme_set_queue_count`);
    /// returns how many it grants.
    pub(crate) fn negotiate_queue_count(&self, count: u32) -> Result<u32> {
        let mut n = i32::try_from(count).map_err(|_| EINVAL)?;
        // SAFETY: the admin queue is live; `n` is a valid in/out pointer.
        to_result(unsafe { bindings::nvme_set_queue_count(self.raw(), &mut n) })?;
        u32::try_from(n).map_err(|_| EIO)
    }

    /// Fabrics Connect on the admin queue.
    pub(crate) fn connect_admin_queue(&self) -> Result {
        // SAFETY: the admin tag set and queue exist.
        to_result(unsafe { bindings::nvmf_connect_admin_queue(self.raw()) })
    }

    /// Fabrics Connect on I/O queue `qid`.
    pub(crate) fn connect_io_queue(&self, qid: u16) -> Result {
        // SAFETY: the I/O tag set exists and `qid` has a hardware queue.
        to_result(unsafe { bindings::nvmf_connect_io_queue(self.raw(), qid) })
    }

    /// `nvme_enable_ctrl`, `nvme_init_ctrl_finish`: the admin-queue part of setup.
    pub(crate) fn enable(&self) -> Result {
        // SAFETY: the admin queue is connected.
        to_result(unsafe { bindings::nvme_enable_ctrl(self.raw()) })
    }

    /// See [`NvmeCtrl::enable`].
    pub(crate) fn init_finish(&self) -> Result {
        // SAFETY: enabled, admin queue unquiesced.
        to_result(unsafe { bindings::nvme_init_ctrl_finish(self.raw(), false) })
    }

    /// Starts namespace scanning, keep-alive and async events (`nvme_start_ctrl`).
    pub(crate) fn start(&self) {
        // SAFETY: live.
        unsafe { bindings::nvme_start_ctrl(self.raw()) }
    }

    /// `nvme_stop_keep_alive`.
    pub(crate) fn stop_keep_alive(&self) {
        // SAFETY: initialised.
        unsafe { bindings::nvme_stop_keep_alive(self.raw()) }
    }

    /// `nvme_disable_ctrl` (a shutdown when `shutdown`); errors are logged by nvme-core.
    pub(crate) fn disable(&self, shutdown: bool) {
        // SAFETY: initialised; fails cleanly if the admin queue is gone.
        unsafe { bindings::nvme_disable_ctrl(self.raw(), shutdown) };
    }

    /// Schedules the controller's deletion (`nvme_delete_ctrl`); false if it
    /// is already being deleted.
    pub(crate) fn delete(&self) -> bool {
        // SAFETY: initialised.
        unsafe { bindings::nvme_delete_ctrl(self.raw()) == 0 }
    }

    /// Quiesces or unquiesces the admin or the I/O queues.
    pub(crate) fn quiesce(&self, admin: bool, on: bool) {
        // SAFETY: initialised; the calls tolerate queues not created yet.
        unsafe {
            match (admin, on) {
                (true, true) => bindings::nvme_quiesce_admin_queue(self.raw()),
                (true, false) => bindings::nvme_unquiesce_admin_queue(self.raw()),
                (false, true) => bindings::nvme_quiesce_io_queues(self.raw()),
                (false, false) => bindings::nvme_unquiesce_io_queues(self.raw()),
            }
        }
    }

    /// Waits for `queue_rq` calls in flight on the I/O queues (`nvme_sync_io_queues`).
    pub(crate) fn sync_io_queues(&self) {
        // SAFETY: initialised.
        unsafe { bindings::nvme_sync_io_queues(self.raw()) }
    }

    /// Completes every request still started on the admin or I/O tag set as
    /// aborted (`nvme_cancel_admin_tagset`, `nvme_cancel_tagset`).
    pub(crate) fn cancel_requests(&self, admin: bool) {
        // SAFETY: initialised; the calls skip a tag set that does not exist.
        unsafe {
            if admin {
                bindings::nvme_cancel_admin_tagset(self.raw())
            } else {
                bindings::nvme_cancel_tagset(self.raw())
            }
        }
    }

    /// Allocates the admin tag set into `set` (`nvme_alloc_admin_tag_set`).
    pub(crate) fn alloc_admin_tag_set(&self, set: &TagSet, ops: &'static MqOps, cmd_size: u32) -> Result {
        // SAFETY: `set` lives in the transport's controller as long as this one.
        to_result(unsafe { bindings::nvme_alloc_admin_tag_set(self.raw(), set.raw(), ops.raw(), cmd_size) })
    }

    /// Allocates the I/O tag set into `set` (`nvme_alloc_io_tag_set`), with
    /// `nr_maps` queue maps.
    pub(crate) fn alloc_io_tag_set(&self, set: &TagSet, ops: &'static MqOps, nr_maps: u32, cmd_size: u32) -> Result {
        // SAFETY: as in `alloc_admin_tag_set`.
        to_result(unsafe { bindings::nvme_alloc_io_tag_set(self.raw(), set.raw(), ops.raw(), nr_maps, cmd_size) })
    }

    /// Frees the admin or I/O tag set and its queues.
    pub(crate) fn remove_tag_set(&self, admin: bool) {
        // SAFETY: the tag set was allocated; no request of it is in flight.
        unsafe {
            if admin {
                bindings::nvme_remove_admin_tag_set(self.raw())
            } else {
                bindings::nvme_remove_io_tag_set(self.raw())
            }
        }
    }

    /// Hands the completion of the async event request to nvme-core.
    pub(crate) fn complete_async_event(&self, status: u16, result: u64) {
        // SAFETY: initialised; `status`/`result` as on the wire.
        unsafe { bindings::nvtr_complete_aen(self.raw(), status, result) }
    }

    /// Whether an existing controller matches these options' address
    /// (`nvmf_ip_options_match`).
    pub(crate) fn matches(&self, opts: &CtrlOptions) -> bool {
        // SAFETY: both are valid.
        unsafe { bindings::nvmf_ip_options_match(self.raw(), opts.raw()) }
    }

    /// `nvmf_get_address`: the sysfs `address` line, into `buf`; its length.
    pub(crate) fn fabrics_address(&self, buf: &mut [u8]) -> usize {
        let size = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        // SAFETY: `buf` is writable for `size` bytes.
        let n = unsafe { bindings::nvmf_get_address(self.raw(), buf.as_mut_ptr().cast::<c_char>(), size) };
        usize::try_from(n).unwrap_or(0).min(buf.len())
    }
}

/// The device nvme-fabrics passes to `create_ctrl` (valid for the call).
#[derive(Clone, Copy)]
pub(crate) struct DeviceRef(*mut bindings::device);

impl DeviceRef {
    /// # Safety
    ///
    /// `dev` is the device of a `create_ctrl` call, used only during it.
    pub(crate) unsafe fn from_raw(dev: *mut bindings::device) -> Self {
        Self(dev)
    }
}

/// A transport's controller type, which embeds an [`NvmeCtrl`].
///
/// # Safety
///
/// `NCTRL_OFFSET` is the offset of the [`NvmeCtrl`] field that `nctrl`
/// returns. A `Self` handed to nvme-core ([`NvmeCtrl::init`]) lives in a
/// leaked `Pin<KBox<Self>>` that only the `free_ctrl` trampoline frees, and
/// the queues `queue` returns live until its tag sets are removed.
pub(crate) unsafe trait FabricsCtrl: Sized + Send + Sync + 'static {
    /// The offset of the embedded [`NvmeCtrl`].
    const NCTRL_OFFSET: usize;
    /// A transport queue, which hardware contexts point at.
    type Queue: Send + Sync;

    /// The embedded controller.
    fn nctrl(&self) -> &NvmeCtrl;
    /// Queue `idx` (0: the admin queue), if it exists. It must live until
    /// the tag sets are removed: hardware contexts point at it.
    fn queue(&self, idx: usize) -> Option<Arc<Self::Queue>>;
    /// `submit_async_event`.
    fn submit_async_event(&self);
    /// `delete_ctrl`: tear everything down (the deletion work, process context).
    fn delete_ctrl(&self);
    /// `stop_ctrl`: stop the transport's own works.
    fn stop_ctrl(&self);
    /// `get_address`: the sysfs `address` line into `buf`; its length.
    fn get_address(&self, buf: &mut [u8]) -> usize;
    /// The reset work (`nvme_reset_ctrl`, also error recovery); process context.
    fn reset_work(&self);
    /// `free_ctrl`: the last reference is gone.
    fn free(this: Pin<KBox<Self>>);
    /// `queue_rq` of `queue` for `rq` (`ns` is the namespace, if the request
    /// queue is one's); `last` is false when more requests follow at once.
    fn queue_rq(queue: ArcBorrow<'_, Self::Queue>, rq: NewRequest<'_>, ns: Option<NsRef>, last: bool) -> u8;
    /// `commit_rqs`: the requests queued so far are all there is for now.
    fn commit_rqs(queue: ArcBorrow<'_, Self::Queue>);
    /// `timeout` of `rq` on `queue`: true to wait again (recovery started),
    /// false when the request was completed.
    fn timeout(queue: ArcBorrow<'_, Self::Queue>, rq: &Request) -> bool;
    /// `map_queues` of the I/O tag set.
    fn map_queues(&self, set: &TagSet);
}

/// A namespace (`struct nvme_ns`), for `nvme_setup_cmd`.
#[derive(Clone, Copy)]
pub(crate) struct NsRef(pub(super) *mut bindings::nvme_ns);

/// The tables nvme-core and blk-mq call `T` through: one `static` per
/// transport.
pub(crate) struct HostTables<T: FabricsCtrl> {
    pub(super) ctrl_ops: bindings::nvme_ctrl_ops,
    /// blk-mq operations of the admin tag set.
    pub(crate) admin_mq: MqOps,
    /// blk-mq operations of the I/O tag set.
    pub(crate) io_mq: MqOps,
    _t: PhantomData<T>,
}

// SAFETY: the tables are immutable after construction and only read by C.
unsafe impl<T: FabricsCtrl> Sync for HostTables<T> {}

impl<T: FabricsCtrl> HostTables<T> {
    /// The tables of transport `name`, owned by `module`.
    pub(crate) const fn new(name: &'static CStr, module: &'static ThisModule) -> Self {
        // SAFETY: all-zero is a valid `nvme_ctrl_ops` (NULL callbacks).
        let mut ops: bindings::nvme_ctrl_ops = unsafe { core::mem::zeroed() };
        ops.name = name.as_ptr().cast();
        ops.module = module.as_ptr();
        ops.flags = bindings::NVME_F_FABRICS | bindings::NVME_F_BLOCKING;
        ops.reg_read32 = Some(bindings::nvmf_reg_read32);
        ops.reg_read64 = Some(bindings::nvmf_reg_read64);
        ops.reg_write32 = Some(bindings::nvmf_reg_write32);
        ops.subsystem_reset = Some(bindings::nvmf_subsystem_reset);
        ops.free_ctrl = Some(Self::free_ctrl);
        ops.submit_async_event = Some(Self::submit_async_event);
        ops.delete_ctrl = Some(Self::delete_ctrl);
        ops.get_address = Some(Self::get_address);
        ops.stop_ctrl = Some(Self::stop_ctrl);
        ops.get_virt_boundary = Some(Self::get_virt_boundary);
        Self { ctrl_ops: ops, admin_mq: MqOps::new::<T>(true), io_mq: MqOps::new::<T>(false), _t: PhantomData }
    }

    /// The transport's controller around `ctrl`.
    ///
    /// # Safety
    ///
    /// `ctrl` was initialised with these tables and is not freed yet.
    pub(super) unsafe fn ctrl<'a>(ctrl: *mut bindings::nvme_ctrl) -> &'a T {
        // SAFETY: per the caller, `ctrl` is the `NvmeCtrl` field of a live `T`
        // (`FabricsCtrl`'s contract fixes its offset).
        unsafe { &*ctrl.cast::<u8>().sub(T::NCTRL_OFFSET).cast::<T>() }
    }

    /// # Safety
    ///
    /// Called by nvme-core as `free_ctrl` once, when the last reference is gone.
    unsafe extern "C" fn free_ctrl(ctrl: *mut bindings::nvme_ctrl) {
        // SAFETY: per the trait's contract the controller lives in a leaked
        // `Pin<KBox<T>>`, given back exactly once, here.
        let this = unsafe { Pin::new_unchecked(KBox::from_raw(ctrl.cast::<u8>().sub(T::NCTRL_OFFSET).cast::<T>())) };
        T::free(this)
    }

    /// # Safety
    ///
    /// Called by nvme-core with a live controller of these tables.
    unsafe extern "C" fn submit_async_event(ctrl: *mut bindings::nvme_ctrl) {
        // SAFETY: per the function's contract.
        unsafe { Self::ctrl(ctrl) }.submit_async_event()
    }

    /// # Safety
    ///
    /// Called by the workqueue as the `reset_work` of a controller of these
    /// tables (`init` set it up), which is alive while its work runs.
    unsafe extern "C" fn reset_work(work: *mut bindings::work_struct) {
        // SAFETY: per the function's contract.
        unsafe { Self::ctrl(bindings::nvtr_reset_work_ctrl(work)) }.reset_work()
    }

    /// # Safety
    ///
    /// As `submit_async_event`.
    unsafe extern "C" fn delete_ctrl(ctrl: *mut bindings::nvme_ctrl) {
        // SAFETY: per the function's contract.
        unsafe { Self::ctrl(ctrl) }.delete_ctrl()
    }

    /// # Safety
    ///
    /// As `submit_async_event`.
    unsafe extern "C" fn stop_ctrl(ctrl: *mut bindings::nvme_ctrl) {
        // SAFETY: per the function's contract.
        unsafe { Self::ctrl(ctrl) }.stop_ctrl()
    }

    /// # Safety
    ///
    /// As `submit_async_event`; `buf` is writable for `size` bytes.
    unsafe extern "C" fn get_address(ctrl: *mut bindings::nvme_ctrl, buf: *mut c_char, size: i32) -> i32 {
        let Ok(len) = usize::try_from(size) else { return 0 };
        // SAFETY: per the function's contract.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        // SAFETY: per the function's contract.
        let n = unsafe { Self::ctrl(ctrl) }.get_address(buf);
        i32::try_from(n).unwrap_or(0)
    }

    /// Fabrics controllers have no virtual boundary (`nvmf_get_virt_boundary`).
    unsafe extern "C" fn get_virt_boundary(_ctrl: *mut bindings::nvme_ctrl, _is_admin: bool) -> usize {
        0
    }
}

/// A counted reference to a transport's controller: a reference to its
/// device, which keeps the controller from being freed (`free_ctrl` runs at
/// the last one).
pub(crate) struct CtrlRef<T: FabricsCtrl>(core::ptr::NonNull<T>);

// SAFETY: `T` is `Send + Sync`; device references may be dropped anywhere.
unsafe impl<T: FabricsCtrl> Send for CtrlRef<T> {}
// SAFETY: as above.
unsafe impl<T: FabricsCtrl> Sync for CtrlRef<T> {}

impl<T: FabricsCtrl> CtrlRef<T> {
    /// A new reference to `ctrl`, which nvme-core initialised.
    pub(crate) fn new(ctrl: &T) -> Self {
        ctrl.nctrl().get();
        Self(core::ptr::NonNull::from(ctrl))
    }
}

impl<T: FabricsCtrl> core::ops::Deref for CtrlRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the device reference this holds keeps the controller alive
        // (`FabricsCtrl`'s contract: only `free_ctrl`, at the last reference,
        // frees it).
        unsafe { self.0.as_ref() }
    }
}

impl<T: FabricsCtrl> Drop for CtrlRef<T> {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `new`, given back once.
        unsafe { self.nctrl().put() }
    }
}

/// Waits until every controller deletion queued so far has finished
/// (`flush_workqueue(nvme_delete_wq)`).
pub(crate) fn flush_deletions() {
    // SAFETY: `nvme_delete_wq` lives as long as nvme-core, which we depend on.
    unsafe { bindings::__flush_workqueue(bindings::nvme_delete_wq) }
}
