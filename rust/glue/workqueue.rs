// SPDX-License-Identifier: GPL-2.0

//! The module's own workqueues, reachable from static C callbacks.
//!
//! `kernel::workqueue` offers the system queues only; a storage transport needs
//! its own `WQ_MEM_RECLAIM | WQ_HIGHPRI` queue, and one it can drain on unload.

use super::bindings;
use core::{ptr::NonNull, sync::atomic::{AtomicPtr, Ordering}};
use kernel::{prelude::*, str::CStrExt, workqueue::RawWorkItem};

/// A module-wide workqueue: created in module init, destroyed on unload.
///
/// # Invariants
///
/// `ptr` is null or points to a live workqueue that this object created and
/// that only [`ModuleWqGuard`]'s drop destroys.
pub(crate) struct ModuleWq {
    ptr: AtomicPtr<bindings::workqueue_struct>,
}

impl ModuleWq {
    /// An empty slot, for a `static`.
    pub(crate) const fn new() -> Self {
        Self { ptr: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// Creates the queue, per-CPU or (`unbound`) not; it lives until the
    /// guard is dropped.
    pub(crate) fn create(&'static self, name: &CStr, unbound: bool) -> Result<ModuleWqGuard> {
        // SAFETY: `name` is a NUL-terminated string that the call copies.
        let raw = unsafe { bindings::nvtr_alloc_io_wq(name.as_char_ptr(), unbound) };
        let wq = NonNull::new(raw).ok_or(ENOMEM)?;
        if self.ptr.compare_exchange(core::ptr::null_mut(), wq.as_ptr(), Ordering::AcqRel, Ordering::Acquire).is_err() {
            // SAFETY: `wq` was just created and was never published.
            unsafe { bindings::destroy_workqueue(wq.as_ptr()) };
            return Err(EBUSY);
        }
        Ok(ModuleWqGuard { wq: self })
    }

    /// The raw queue, while it exists.
    pub(super) fn raw(&self) -> *mut bindings::workqueue_struct {
        self.ptr.load(Ordering::Acquire)
    }

    /// Queues `w` to run on `cpu` (a CPU number, or `WORK_CPU_UNBOUND` for
    /// the local one), as `queue_work_on`; `None` (and `w` dropped) once the
    /// queue is gone.
    pub(crate) fn enqueue_on<W, const ID: u64>(&self, cpu: i32, w: W) -> Option<W::EnqueueOutput>
    where
        W: RawWorkItem<ID> + Send + 'static,
    {
        let raw = self.raw();
        if raw.is_null() {
            return None;
        }
        // SAFETY: as in `kernel::workqueue::Queue::enqueue`: the closure returns
        // `false` only if the work is already queued, `W` is `Send + 'static`,
        // and `queue_work_on` only uses the pointer `__enqueue` guarantees valid.
        // `raw` is a live queue (type invariant); a `cpu` that is not a valid
        // online CPU is WORK_CPU_UNBOUND (`Socket::incoming_cpu`).
        Some(unsafe { w.__enqueue(move |work| bindings::queue_work_on(cpu, raw, work)) })
    }
}

/// Owns the workqueue of a [`ModuleWq`]; dropping it drains and destroys it.
pub(crate) struct ModuleWqGuard {
    wq: &'static ModuleWq,
}

impl Drop for ModuleWqGuard {
    fn drop(&mut self) {
        let raw = self.wq.ptr.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !raw.is_null() {
            // SAFETY: `raw` is the live workqueue that `create` made; it is no longer
            // published, and `destroy_workqueue` drains what is still queued.
            unsafe { bindings::destroy_workqueue(raw) };
        }
    }
}

/// Waits until `work` is neither queued nor running.
///
/// Must not be called from `work` itself.
pub(crate) fn flush<T: ?Sized, const ID: u64>(work: &kernel::workqueue::Work<T, ID>) {
    // SAFETY: `work` is a valid, initialised work item for the duration of the call.
    unsafe { bindings::flush_work(kernel::workqueue::Work::raw_get(work)) };
}
