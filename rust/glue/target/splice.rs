// SPDX-License-Identifier: GPL-2.0

//! The target's sends: PDU headers in page fragments and command pages,
//! gathered in a segment table that the socket splices without a copy; and
//! the CPU that receives a connection's packets.

use crate::glue::{
    bindings,
    sock::Socket,
    sock_io::{Bvecs, Io},
};
use core::ptr::NonNull;
use kernel::prelude::*;

impl Bvecs {
    /// Empties the table, to fill it for a send.
    pub(crate) fn clear(&mut self) {
        // SAFETY: the table is live (type invariant) and ours (`&mut`).
        unsafe { bindings::nvtr_bvecs_clear(self.raw()) }
    }

    /// Whether every segment is in use.
    pub(crate) fn is_full(&mut self) -> bool {
        // SAFETY: the table is live (type invariant); a read-only look.
        unsafe { bindings::nvtr_bvecs_full(self.raw()) }
    }

    /// Adds bytes `range` of `frag`; false (nothing added) if the table is full.
    ///
    /// The caller keeps `frag` alive, unwritten, until the send that takes
    /// this segment is done with it (the socket then holds its own reference).
    pub(crate) fn add_frag(&mut self, frag: &Frag, range: core::ops::Range<usize>) -> bool {
        let range = range.start.min(Frag::SIZE)..range.end.min(Frag::SIZE);
        if range.is_empty() {
            return true;
        }
        // CAST: within `Frag::SIZE`.
        let len = (range.end - range.start) as u32;
        // SAFETY: the table is ours (`&mut`); `range` lies within the fragment.
        unsafe { bindings::nvtr_bvecs_add_virt(self.raw(), frag.ptr.as_ptr().add(range.start).cast(), len) }
    }

    /// Sends what the table holds, splicing its pages (no copy), without
    /// blocking; `more` says that more data follows at once (`MSG_MORE`).
    pub(crate) fn send(&mut self, sock: &Socket, more: bool) -> Result<Io> {
        // SAFETY: the socket is valid (its type invariant); every segment
        // the table holds is kept alive by the caller for the call.
        let ret = unsafe { bindings::nvtr_sock_send_bvecs(sock.raw(), self.raw(), more) };
        Io::from_ret(ret, false)
    }
}

/// A cache of page fragments for PDU headers that sends splice.
///
/// # Invariants
///
/// `ptr` is a live cache from `nvtr_frag_cache_alloc`, owned by this value.
pub(crate) struct FragCache {
    ptr: NonNull<bindings::page_frag_cache>,
}

impl FragCache {
    /// An empty cache.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: plain allocation; NULL on failure.
        let raw = unsafe { bindings::nvtr_frag_cache_alloc() };
        Ok(Self { ptr: NonNull::new(raw).ok_or(ENOMEM)? })
    }

    /// A fresh, zeroed fragment of [`Frag::SIZE`] bytes.
    pub(crate) fn alloc(&mut self) -> Result<Frag> {
        // CAST: a small constant.
        // SAFETY: the cache is live (type invariant) and used by us alone (`&mut`).
        let raw = unsafe { bindings::nvtr_frag_alloc(self.ptr.as_ptr(), Frag::SIZE as u32) };
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or(ENOMEM)?;
        // SAFETY: the fragment is `Frag::SIZE` writable bytes, ours alone.
        unsafe { ptr.as_ptr().write_bytes(0, Frag::SIZE) };
        // INVARIANT: just allocated and initialised, owned by the new `Frag`.
        Ok(Frag { ptr })
    }
}

impl Drop for FragCache {
    fn drop(&mut self) {
        // SAFETY: owned (type invariant) and no longer used; fragments still
        // out hold their own page references.
        unsafe { bindings::nvtr_frag_cache_free(self.ptr.as_ptr()) }
    }
}

// SAFETY: the cache is only used through `&mut`, by one thread at a time.
unsafe impl Send for FragCache {}

/// [`Frag::SIZE`] bytes of page memory that a send may splice: written only
/// before it is sent, freed when dropped (TCP keeps the page while it needs it).
///
/// # Invariants
///
/// `ptr` is an initialised fragment of `SIZE` bytes from `nvtr_frag_alloc`,
/// owned by this value.
pub(crate) struct Frag {
    ptr: NonNull<u8>,
}

impl Frag {
    /// Bytes in a fragment: room for two PDU headers with digests.
    pub(crate) const SIZE: usize = 64;

    /// The fragment's bytes, to write before it is sent.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; Self::SIZE] {
        // SAFETY: `SIZE` initialised bytes, owned by `self` (type invariant),
        // borrowed mutably through `&mut self`.
        unsafe { &mut *self.ptr.as_ptr().cast::<[u8; Self::SIZE]>() }
    }
}

impl Drop for Frag {
    fn drop(&mut self) {
        // SAFETY: owned (type invariant); sends that spliced it hold their own
        // references to its page.
        unsafe { bindings::nvtr_frag_free(self.ptr.as_ptr().cast()) }
    }
}

// SAFETY: plain memory owned by this value.
unsafe impl Send for Frag {}

impl Socket {
    /// The CPU that receives this connection's packets (a CPU number for
    /// [`crate::glue::workqueue::ModuleWq::enqueue_on`], or "any").
    pub(crate) fn incoming_cpu(&self) -> i32 {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_incoming_cpu(self.raw()) }
    }
}
