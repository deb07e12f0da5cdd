// SPDX-License-Identifier: GPL-2.0

//! The target's use of its module workqueues as `kernel::workqueue` queues.

use crate::glue::workqueue::ModuleWq;
use kernel::workqueue::Queue;

impl ModuleWq {
    /// The queue, while it exists.
    pub(crate) fn get(&self) -> Option<&Queue> {
        let raw = self.raw();
        if raw.is_null() {
            return None;
        }
        // SAFETY: per the type invariant `raw` is a live workqueue; it is only
        // destroyed on unload, after every user of the module has finished.
        Some(unsafe { Queue::from_raw(raw) })
    }
}
