// SPDX-License-Identifier: GPL-2.0

//! Receiving without a receive call: TCP's `read_sock` hands the bytes
//! queued on a socket over as they sit in its buffers ([`SkbChunk`]), and
//! the receiver copies each byte once, to where it belongs. One lock of the
//! socket per batch instead of one `recvmsg` per header and per piece of
//! data.

use crate::glue::{
    bindings,
    sock::Socket,
    sock_io::{Bvecs, Io, RxSource},
};
use core::{marker::PhantomData, num::NonZeroUsize, ptr::NonNull};
use kernel::{
    error::code::*,
    ffi::{c_int, c_uint, c_void},
    prelude::*,
};

/// Received bytes that TCP offers: `left` bytes from `offset` of an skb,
/// valid for `'a` (one call of the read actor, with the socket locked).
/// Reads take bytes from the front.
///
/// # Invariants
///
/// `skb` is valid for `'a` and holds at least `offset + left` bytes.
pub(crate) struct SkbChunk<'a> {
    skb: NonNull<bindings::sk_buff>,
    offset: u32,
    left: u32,
    taken: u32,
    _skb: PhantomData<&'a bindings::sk_buff>,
}

impl SkbChunk<'_> {
    /// Takes `n` (at most `left`) bytes from the front.
    fn take(&mut self, n: u32) -> Io {
        let n = n.min(self.left);
        self.offset += n;
        self.left -= n;
        self.taken += n;
        // CAST: `u32` to `usize` is lossless on the kernel's 64-bit targets.
        NonZeroUsize::new(n as usize).map_or(Io::WouldBlock, Io::Done)
    }
}

impl RxSource for &mut SkbChunk<'_> {
    fn readable(&self) -> bool {
        self.left > 0
    }

    fn available(&self) -> u32 {
        self.left
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<Io> {
        let n = u32::try_from(buf.len()).unwrap_or(u32::MAX).min(self.left);
        if n == 0 {
            return Ok(Io::WouldBlock);
        }
        // SAFETY: the skb holds `offset + left` bytes and is valid for the
        // chunk's life (type invariant); `buf` is writable for `n <= buf.len()`
        // bytes. CAST: both fit an `int` (the actor caps `len` at `INT_MAX`).
        let ret = unsafe {
            bindings::skb_copy_bits(self.skb.as_ptr(), self.offset as c_int, buf.as_mut_ptr().cast(), n as c_int)
        };
        kernel::error::to_result(ret)?;
        Ok(self.take(n))
    }

    fn read_bvecs(&mut self, bvecs: &mut Bvecs) -> Result<Io> {
        if self.left == 0 {
            return Ok(Io::WouldBlock);
        }
        // SAFETY: as in `read`; the helper copies at most `left` bytes, into
        // the table's pages, which their owner holds; the table is ours alone
        // for the call (`&mut`).
        let ret = unsafe { bindings::nvtr_skb_copy_bvecs(self.skb.as_ptr(), self.offset, bvecs.raw(), self.left) };
        match u32::try_from(ret) {
            Ok(n) => Ok(self.take(n)),
            Err(_) => Err(Error::from_errno(ret)),
        }
    }
}

/// The actor's context: the caller's closure and the first error it returned.
struct ReadCtx<F, E> {
    f: F,
    err: Option<E>,
}

/// # Safety
///
/// Called by `nvtr_sock_read` with the `ctx` that [`Socket::read_chunks`]
/// passed, and an skb valid for the call that holds `offset + len` bytes.
unsafe extern "C" fn read_actor<F, E>(ctx: *mut c_void, skb: *const bindings::sk_buff, offset: c_uint, len: c_uint) -> c_int
where
    F: FnMut(&mut SkbChunk<'_>) -> Result<(), E>,
{
    // SAFETY: `ctx` is the `ReadCtx<F, E>` on `read_chunks`' stack, which
    // nothing else uses during the call.
    let ctx = unsafe { &mut *ctx.cast::<ReadCtx<F, E>>() };
    let Some(skb) = NonNull::new(skb.cast_mut()) else { return EINVAL.to_errno() };
    // INVARIANT: per the function's safety requirements.
    let mut chunk = SkbChunk { skb, offset, left: len, taken: 0, _skb: PhantomData };
    match (ctx.f)(&mut chunk) {
        // CAST: at most `len`, which the C side caps at `INT_MAX`.
        Ok(()) => chunk.taken as c_int,
        Err(e) => {
            ctx.err = Some(e);
            EPROTO.to_errno()
        }
    }
}

impl Socket {
    /// Hands the bytes queued on the socket to `f` in order, chunk by chunk,
    /// without blocking. TCP drops (and acknowledges) what `f` takes of each
    /// chunk; the first chunk `f` takes nothing of, or its first error, ends
    /// the call. Returns the bytes taken; a socket error is `E::from`.
    pub(crate) fn read_chunks<E: From<Error>>(
        &self,
        f: impl FnMut(&mut SkbChunk<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        fn run<F, E>(sock: &Socket, f: F) -> (c_int, Option<E>)
        where
            F: FnMut(&mut SkbChunk<'_>) -> Result<(), E>,
        {
            let mut ctx = ReadCtx { f, err: None };
            // SAFETY: the socket is valid (type invariant); `read_actor::<F, E>`
            // is called only during this call, with `ctx`, which outlives it.
            let ret = unsafe {
                bindings::nvtr_sock_read(sock.raw(), Some(read_actor::<F, E>), (&raw mut ctx).cast::<c_void>())
            };
            (ret, ctx.err)
        }
        let (ret, err) = run(self, f);
        if let Some(e) = err {
            return Err(e);
        }
        usize::try_from(ret).map_err(|_| E::from(Error::from_errno(ret)))
    }
}
