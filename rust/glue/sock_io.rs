// SPDX-License-Identifier: GPL-2.0

//! A socket's non-blocking data path and its callbacks: receives and sends
//! that never wait, segment tables that move a command's pages without a
//! copy, page fragments for PDU headers, and [`CallbackSocket`], which routes
//! a socket's `sk_data_ready`/`sk_write_space`/`sk_state_change` callbacks
//! to an [`Arc`]'d owner that may only queue work from them.

use crate::glue::{bindings, sock::Socket};
use core::{
    marker::PhantomData,
    num::NonZeroUsize,
    ptr::{self, NonNull},
};
use kernel::{
    error::code::*,
    ffi::{c_uint, c_void},
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::Opaque,
};

/// What a non-blocking receive or send achieved.
pub(crate) enum Io {
    /// This many bytes were transferred.
    Done(NonZeroUsize),
    /// Nothing can be transferred now; wait for the next socket event.
    WouldBlock,
    /// The peer closed its side (receive only).
    Eof,
}

impl Io {
    /// Maps the return value of a non-blocking socket call: bytes moved, 0
    /// (EOF for a receive, `eof` true; nothing moved for a send), or -errno.
    pub(crate) fn from_ret(ret: i32, eof: bool) -> Result<Io> {
        match usize::try_from(ret) {
            Ok(n) => Ok(match NonZeroUsize::new(n) {
                Some(n) => Io::Done(n),
                None if eof => Io::Eof,
                None => Io::WouldBlock,
            }),
            Err(_) if ret == EAGAIN.to_errno() => Ok(Io::WouldBlock),
            Err(_) => Err(Error::from_errno(ret)),
        }
    }
}

/// Segment table for one socket call: the pages of a scatterlist to receive
/// into, or what a send splices (pieces of scatterlists and [`Frag`]s).
///
/// # Invariants
///
/// `ptr` is a live table from `nvtr_bvecs_alloc`, owned by this value.
pub(crate) struct Bvecs {
    ptr: NonNull<bindings::nvtr_bvecs>,
}

impl Bvecs {
    /// A table of `n` segments (`n` pages per socket call).
    pub(crate) fn new(n: u32) -> Result<Self> {
        // SAFETY: plain allocation; NULL on failure.
        let raw = unsafe { bindings::nvtr_bvecs_alloc(n) };
        Ok(Self { ptr: NonNull::new(raw).ok_or(ENOMEM)? })
    }

    /// The C table, for the glue layer's scatterlist I/O.
    pub(super) fn raw(&mut self) -> *mut bindings::nvtr_bvecs {
        self.ptr.as_ptr()
    }

}

impl Drop for Bvecs {
    fn drop(&mut self) {
        // SAFETY: owned (type invariant) and no longer used.
        unsafe { bindings::nvtr_bvecs_free(self.ptr.as_ptr()) }
    }
}

// SAFETY: the table is plain memory that only its owner uses, through `&mut`.
unsafe impl Send for Bvecs {}

impl Socket {
    /// Receives what is there, up to `buf.len()` bytes, without blocking.
    /// An empty `buf` is a caller's error (`EINVAL`): it could not tell
    /// "nothing received" from the end of the stream.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<Io> {
        if buf.is_empty() {
            return Err(EINVAL);
        }
        Io::from_ret(self.recvmsg(buf, bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL), true)
    }

    /// Sends as much of `buf` as the socket takes now; `more` hints that more follows.
    pub(crate) fn send(&self, buf: &[u8], more: bool) -> Result<Io> {
        let mut flags = bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL;
        if more {
            flags |= bindings::MSG_MORE;
        }
        Io::from_ret(self.sendmsg(buf, flags), false)
    }

    /// Whether a receive would find something (data, an error or EOF), at the
    /// cost of a few loads; anything queued after `false` is followed by a
    /// data-ready event.
    pub(crate) fn readable(&self) -> bool {
        // SAFETY: the socket is valid (type invariant); lockless reads only.
        unsafe { bindings::nvtr_sk_readable(self.raw()) }
    }

    /// True once the TCP connection is closing or closed.
    pub(crate) fn is_closing(&self) -> bool {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sk_closing(self.raw()) }
    }

    /// Shuts down both directions; pending and later calls fail or see EOF.
    pub(crate) fn shutdown(&self) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::kernel_sock_shutdown(self.raw(), bindings::sock_shutdown_cmd_SHUT_RDWR) };
    }

}

/// A socket event, as delivered to [`SocketEvents::event`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SockEvent {
    /// Data (or a new connection, on a listener) arrived.
    DataReady,
    /// Send buffer space became available.
    WriteSpace,
    /// The TCP state changed (e.g. the peer closed).
    StateChange,
}

/// An owner of a [`CallbackSocket`] that receives its events.
///
/// # Safety
///
/// `callback_socket` must return a field of `self`, so that the
/// [`CallbackSocket`] lives exactly as long as the object it is attached to.
pub(crate) unsafe trait SocketEvents: Sized + Send + Sync {
    /// The socket whose callbacks are routed to `Self`.
    fn callback_socket(&self) -> &CallbackSocket<Self>;

    /// Called in softirq context with the socket's callback lock held: may only
    /// queue work (or take an irq-safe lock), never sleep.
    fn event(this: ArcBorrow<'_, Self>, event: SockEvent);
}

/// A [`Socket`] whose callbacks can be routed to its [`Arc`]'d owner `T`.
///
/// While attached, the callbacks hold a reference to `T` (the `Arc` that
/// [`CallbackSocket::attach`] took), which [`CallbackSocket::detach`] gives back
/// once no callback can run any more.
///
/// # Invariants
///
/// `ctx.owner`, when non-null, came from `Arc::<T>::into_raw` in `attach` and is
/// owned by the installed callbacks.
#[pin_data]
pub(crate) struct CallbackSocket<T: SocketEvents> {
    sock: Socket,
    #[pin]
    ctx: Opaque<bindings::nvtr_sk_ctx>,
    _owner: PhantomData<Arc<T>>,
}

// SAFETY: `ctx` is written only by `attach` and `detach`, which publish and
// retract it under the socket's callback lock; `T` is `Send + Sync`.
unsafe impl<T: SocketEvents> Send for CallbackSocket<T> {}
// SAFETY: as above.
unsafe impl<T: SocketEvents> Sync for CallbackSocket<T> {}

impl<T: SocketEvents> CallbackSocket<T> {
    /// Wraps `sock`; callbacks stay the socket's own until [`Self::attach`].
    pub(crate) fn new(sock: Socket) -> impl PinInit<Self> {
        pin_init!(Self { sock, ctx: Opaque::zeroed(), _owner: PhantomData })
    }

    /// The socket.
    pub(crate) fn sock(&self) -> &Socket {
        &self.sock
    }

    /// # Safety
    ///
    /// Called by the C callbacks that `attach` installed (`nvtr_sk_ctx.event`),
    /// with the socket's callback lock held and `owner` the context's owner.
    unsafe extern "C" fn on_event(owner: *mut c_void, ev: c_uint) {
        let event = match ev {
            bindings::NVTR_EV_DATA => SockEvent::DataReady,
            bindings::NVTR_EV_WRITE_SPACE => SockEvent::WriteSpace,
            _ => SockEvent::StateChange,
        };
        // SAFETY: `owner` came from `Arc::into_raw` in `attach` and the reference
        // it stands for is only given back by `detach` after this callback can no
        // longer run (the C side holds the callback lock around this call).
        let this = unsafe { ArcBorrow::from_raw(owner.cast::<T>().cast_const()) };
        T::event(this, event);
    }

    /// Routes the socket's callbacks to `this` (no-op if already attached).
    pub(crate) fn attach(this: &Arc<T>) {
        let cs = this.callback_socket();
        let ctx = cs.ctx.get();
        // SAFETY: `ctx` is valid; the fields are only written here and read by the
        // C callbacks after `nvtr_sk_install` publishes them under the callback lock.
        unsafe {
            if !(*ctx).owner.is_null() {
                return;
            }
            (*ctx).event = Some(Self::on_event);
            // INVARIANT: the reference taken here is owned by the callbacks.
            (*ctx).owner = Arc::into_raw(this.clone()).cast_mut().cast::<c_void>();
            bindings::nvtr_sk_install(cs.sock.raw(), ctx);
        }
    }

    /// Gives the socket its own callbacks back and drops the reference they held.
    ///
    /// Must not be called from a socket callback. Returns once no callback of
    /// ours runs; safe to call more than once.
    pub(crate) fn detach(&self) {
        let ctx = self.ctx.get();
        // SAFETY: `self.sock` is valid; `ctx` is the context installed on it, if any.
        let was_installed = unsafe { bindings::nvtr_sk_restore(self.sock.raw(), ctx) };
        if was_installed {
            // SAFETY: the callbacks are gone (restored under the write lock), so the
            // owner reference is ours again, exactly once thanks to `was_installed`.
            let owner = unsafe { core::mem::replace(&mut (*ctx).owner, ptr::null_mut()) };
            // SAFETY: per the type invariant `owner` came from `Arc::into_raw`.
            drop(unsafe { Arc::from_raw(owner.cast::<T>().cast_const()) });
        }
    }
}

/// Whether a log line caused by a peer may be printed now.
///
/// Shares the networking stack's limit (`net_ratelimit()`), so that a hostile
/// peer opening connection after connection cannot flood the kernel log.
pub(crate) fn peer_log_allowed() -> bool {
    // SAFETY: `net_ratelimit` has no preconditions.
    unsafe { bindings::nvtr_net_ratelimit() }
}

/// Reports a state that the code never reaches (a bug of ours) as a kernel
/// warning with a backtrace: `WARN()`, which the 7.3 kernel crate's
/// `warn_on!` would also give, but only with build artifacts that Debian's
/// headers do not ship.
pub(crate) fn warn_bug(what: &CStr) {
    // SAFETY: `what` is a NUL-terminated string that the call only reads.
    unsafe { bindings::nvtr_warn(what.as_char_ptr()) }
}

/// A command's data buffer that received PDU data goes into.
pub(crate) trait DataSink {
    /// Copies `bytes` (read ahead with a header) to `offset`.
    fn copy_in(&self, offset: u32, bytes: &[u8]);
    /// Fills `bvecs` (emptied first) with the pages of up to `len` bytes of
    /// the buffer from `offset`, as many as it holds; returns the bytes they
    /// cover (0 if none of the range is in the buffer).
    fn map_data(&self, bvecs: &mut Bvecs, offset: u32, len: u32) -> u32;
    /// `crc` (a running CRC32C) advanced over `len` bytes at `offset`.
    fn data_crc(&self, crc: u32, offset: u32, len: u32) -> u32;
}

/// Where [`receive`] takes bytes from: a socket, or bytes that a socket
/// hands over as they are.
pub(crate) trait RxSource {
    /// Whether a read would find something (data, an error or EOF).
    fn readable(&self) -> bool;
    /// Bytes a read may take at most (`u32::MAX`: no limit but the read's).
    fn available(&self) -> u32;
    /// Reads up to `buf.len()` bytes (`buf` is not empty).
    fn read(&mut self, buf: &mut [u8]) -> Result<Io>;
    /// Reads up to what `bvecs` covers into its pages.
    fn read_bvecs(&mut self, bvecs: &mut Bvecs) -> Result<Io>;
}

impl RxSource for &Socket {
    fn readable(&self) -> bool {
        Socket::readable(self)
    }

    fn available(&self) -> u32 {
        u32::MAX
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<Io> {
        self.recv(buf)
    }

    fn read_bvecs(&mut self, bvecs: &mut Bvecs) -> Result<Io> {
        // SAFETY: the socket is valid (type invariant); the table is ours
        // alone for the call (`&mut`) and its pages are held by their owner.
        let ret = unsafe { bindings::nvtr_sock_recv_bvecs(self.raw(), bvecs.raw()) };
        Io::from_ret(ret, true)
    }
}

/// What [`receive`] stopped at.
pub(crate) enum RxEvent {
    /// A PDU header arrived, decoded and checked: [`Receiver::pdu`].
    ///
    /// [`Receiver::pdu`]: crate::proto::Receiver::pdu
    Header,
    /// All data of the PDU delivered to `tag` is in, its digest checked.
    DataDone { tag: u16, len: u32 },
    /// The source has nothing more now; `progress` if bytes were taken.
    Idle {
        // The host reads whole chunks and needs no count of its own.
        #[allow(dead_code)]
        progress: bool,
    },
    /// The peer closed the connection.
    Eof,
}

/// Why [`receive`] failed.
pub(crate) enum RxError {
    /// The receiver refused the stream.
    Proto(crate::proto::Error),
    /// A socket error.
    Sock(Error),
    /// Data for a tag that `sink` knows no buffer for, or beyond its buffer
    /// (the driver routed it there).
    NoSink,
}

/// Feeds `rx` from `src` until it has an event for its driver: header
/// bytes go into the receiver, data straight into the buffer `sink` gives
/// for its tag.
pub(crate) fn receive<'a, S: DataSink + 'a>(
    rx: &mut crate::proto::Receiver,
    mut src: impl RxSource,
    bvecs: &mut Bvecs,
    sink: impl Fn(u16) -> Option<&'a S>,
) -> core::result::Result<RxEvent, RxError> {
    use crate::proto::Step;
    let mut progress = false;
    loop {
        // A receive call that finds nothing costs as much as one that
        // works: when only the source can bring more, look first.
        if !src.readable() && rx.needs_input() {
            return Ok(RxEvent::Idle { progress });
        }
        // Header (and digest) bytes are read inside the step; a read that
        // ends it says why here.
        let mut stop = None;
        let step = rx.step_reading(|buf| match src.read(buf) {
            Ok(Io::Done(n)) => {
                progress = true;
                n.get()
            }
            Ok(io) => {
                stop = Some(Ok(io));
                0
            }
            Err(e) => {
                stop = Some(Err(e));
                0
            }
        });
        match step.map_err(RxError::Proto)? {
            Step::Header { .. } => return Ok(RxEvent::Header),
            Step::DataDone { tag, len } => return Ok(RxEvent::DataDone { tag, len }),
            Step::Recv(_) => {
                return match stop {
                    Some(Err(e)) => Err(RxError::Sock(e)),
                    Some(Ok(Io::Eof)) => Ok(RxEvent::Eof),
                    // Nothing more now (the receiver offers no empty buffer,
                    // so a read cannot have stopped for that).
                    _ => Ok(RxEvent::Idle { progress }),
                };
            }
            Step::Data { tag, offset, len, buffered } => {
                let dst = sink(tag).ok_or(RxError::NoSink)?;
                if !buffered.is_empty() {
                    dst.copy_in(offset, buffered);
                    rx.buffered_copied();
                } else {
                    if dst.map_data(bvecs, offset, len.min(src.available())) == 0 {
                        return Err(RxError::NoSink);
                    }
                    match src.read_bvecs(bvecs).map_err(RxError::Sock)? {
                        Io::Done(n) => {
                            // CAST: at most what `bvecs` covers, a `u32`.
                            let n = n.get() as u32;
                            if let Some((tag, len)) = rx.data_received(n, |crc| dst.data_crc(crc, offset, n)) {
                                return Ok(RxEvent::DataDone { tag, len });
                            }
                        }
                        Io::WouldBlock => return Ok(RxEvent::Idle { progress }),
                        Io::Eof => return Ok(RxEvent::Eof),
                    }
                }
            }
        }
        progress = true;
    }
}
