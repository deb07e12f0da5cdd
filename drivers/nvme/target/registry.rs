// SPDX-License-Identifier: GPL-2.0

//! Every live queue, for what nvmet asks of the transport as a whole (a
//! port removed, a controller deleted, a controller's host address) and for
//! module unload, which shuts every queue down and waits until all are gone.

use crate::{glue::target::nvmet::CtrlId, port::Port, queue::Queue};
use kernel::{
    alloc::KVec,
    prelude::*,
    sync::{Arc, Completion},
};

/// The live queues, and what module unload waits on.
struct Registry {
    queues: KVec<Arc<Queue>>,
    /// Completed by the release of the last queue once `unloading` is set
    /// (made at module init, so that unload needs no memory).
    gone: Option<Arc<Completion>>,
    unloading: bool,
}

kernel::sync::global_lock! {
    // SAFETY: initialised by `init` in module init, before any port exists.
    unsafe(uninit) static QUEUES: Mutex<Registry> =
        Registry { queues: KVec::new(), gone: None, unloading: false };
}

/// Prepares the registry; called once from module init.
pub(crate) fn init() -> Result {
    let gone = Arc::pin_init(Completion::new(), GFP_KERNEL)?;
    // SAFETY: called once, from module init, before any other use of `QUEUES`.
    unsafe { QUEUES.init() };
    QUEUES.lock().gone = Some(gone);
    Ok(())
}

/// Registers a queue that has just started.
pub(crate) fn add(queue: Arc<Queue>) -> Result {
    QUEUES.lock().queues.push(queue, GFP_KERNEL)?;
    Ok(())
}

/// Forgets a released queue; the last one wakes a waiting module unload.
pub(crate) fn remove(queue: &Arc<Queue>) {
    let mut reg = QUEUES.lock();
    let removed = reg.queues.iter().position(|q| Arc::ptr_eq(q, queue)).and_then(|i| reg.queues.remove(i).ok());
    if reg.unloading && reg.queues.is_empty() {
        if let Some(gone) = &reg.gone {
            gone.complete_all();
        }
    }
    drop(reg);
    // The registry's reference goes after the lock (it may be the last).
    drop(removed);
}

/// Calls `f` on every live queue.
fn for_each(mut f: impl FnMut(&Queue)) {
    for q in QUEUES.lock().queues.iter() {
        f(q);
    }
}

/// Cuts every queue that came in through `port` off it, and shuts it down.
pub(crate) fn shutdown_port(port: &Port) {
    for_each(|q| {
        if q.port_key == port.key() {
            q.cut_off_port();
        }
    });
}

/// Shuts down every queue of controller `ctrl`.
pub(crate) fn shutdown_ctrl(ctrl: CtrlId) {
    for_each(|q| {
        if q.sq.ctrl() == Some(ctrl) {
            q.shutdown();
        }
    });
}

/// How many queues of controller `ctrl` are being torn down.
pub(crate) fn closing_queues_of(ctrl: CtrlId) -> usize {
    let mut n = 0;
    for_each(|q| {
        if q.sq.ctrl() == Some(ctrl) && q.is_closing() {
            n += 1;
        }
    });
    n
}

/// The host's address on controller `ctrl`'s admin queue, into `out`;
/// returns its length.
pub(crate) fn host_traddr(ctrl: CtrlId, out: &mut [u8]) -> Result<usize> {
    let reg = QUEUES.lock();
    let q = reg.queues.iter().find(|q| q.sq.ctrl() == Some(ctrl) && q.sq.qid() == 0).ok_or(EINVAL)?;
    if q.peer.family() == 0 {
        return Err(EINVAL);
    }
    Ok(q.peer.format_ip(out))
}

/// On drop (module unload), shuts down every queue and waits until all are
/// released.
pub(crate) struct ShutdownOnDrop;

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let mut reg = QUEUES.lock();
        reg.unloading = true;
        for q in reg.queues.iter() {
            q.shutdown();
        }
        let wait = if reg.queues.is_empty() { None } else { reg.gone.clone() };
        drop(reg);
        if let Some(gone) = wait {
            // Their I/O work sees the shutdown and releases them; the last
            // release completes `gone`.
            gone.wait_for_completion();
        }
        // A static is never dropped: give its memory back, or it outlives the
        // module (kmemleak reports it on unload).
        let mut reg = QUEUES.lock();
        let queues = core::mem::replace(&mut reg.queues, KVec::new());
        let gone = reg.gone.take();
        drop(reg);
        drop((queues, gone));
    }
}
