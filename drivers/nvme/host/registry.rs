// SPDX-License-Identifier: GPL-2.0

//! Every controller of this module: for `duplicate_connect` checks, and for
//! module unload, which deletes them all (as the C module does).

use crate::{
    ctrl::TcpCtrl,
    glue::host::{
        fabrics::CtrlOptions,
        nvme::{flush_deletions, CtrlRef},
    },
};
use kernel::{alloc::KVec, prelude::*};

kernel::sync::global_lock! {
    // SAFETY: initialised by `init` in module init, before the transport is registered.
    unsafe(uninit) static CTRLS: Mutex<KVec<CtrlRef<TcpCtrl>>> = KVec::new();
}

/// Prepares the list; called once from module init.
pub(crate) fn init() {
    // SAFETY: called once, from module init, before any other use of `CTRLS`.
    unsafe { CTRLS.init() };
}

/// Lists a controller that was just created.
pub(crate) fn add(ctrl: CtrlRef<TcpCtrl>) -> Result {
    CTRLS.lock().push(ctrl, GFP_KERNEL)?;
    Ok(())
}

/// Forgets a controller being deleted.
pub(crate) fn remove(ctrl: &TcpCtrl) {
    let mut list = CTRLS.lock();
    let removed = list
        .iter()
        .position(|c| core::ptr::eq::<TcpCtrl>(&**c, ctrl))
        .and_then(|i| list.remove(i).ok());
    drop(list);
    // The list's reference goes after the lock.
    drop(removed);
}

/// Whether a controller to the same address exists (`nvmf_ip_options_match`).
pub(crate) fn exists(opts: &CtrlOptions) -> bool {
    CTRLS.lock().iter().any(|c| c.nctrl().matches(opts))
}

/// Deletes every controller when dropped (module unload, after the
/// transport is unregistered), and waits until they are gone.
pub(crate) struct DeleteAllOnDrop;

impl Drop for DeleteAllOnDrop {
    fn drop(&mut self) {
        for c in CTRLS.lock().iter() {
            c.nctrl().delete();
        }
        flush_deletions();
        // Deletion took each off the list; anything left never started.
        let rest = core::mem::replace(&mut *CTRLS.lock(), KVec::new());
        drop(rest);
    }
}
