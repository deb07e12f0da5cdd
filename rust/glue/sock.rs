// SPDX-License-Identifier: GPL-2.0

//! Kernel TCP sockets, shaped by what NVMe/TCP needs.
//!
//! The 7.3 kernel crate has no socket API. [`Socket`] owns a `struct socket`;
//! [`SockAddr`] is a parsed IPv4/IPv6 address; [`CallbackSocket`] routes a
//! socket's `sk_data_ready`/`sk_write_space`/`sk_state_change` callbacks to an
//! [`Arc`]'d owner, which may only queue work from them.

use super::bindings;
use core::{
    marker::PhantomData,
    ptr::{self, NonNull},
};
use kernel::{
    error::{code::*, to_result},
    ffi::{c_char, c_long, c_uint, c_void},
    fmt,
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::Opaque,
};

/// An IPv4 or IPv6 socket address.
#[derive(Clone, Copy)]
pub(crate) struct SockAddr(bindings::__kernel_sockaddr_storage);

// SAFETY: a `sockaddr_storage` is plain bytes; its pointer-typed union member
// (an alignment device) is never dereferenced.
unsafe impl Send for SockAddr {}
// SAFETY: as above; `&SockAddr` gives read-only access.
unsafe impl Sync for SockAddr {}

/// Address family of a [`SockAddr`] to parse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
    /// Whichever the address string is.
    Any,
}

impl SockAddr {
    /// An unspecified address (family `AF_UNSPEC`).
    pub(crate) fn unspecified() -> Self {
        // SAFETY: all-zero bytes are a valid `sockaddr_storage` (AF_UNSPEC).
        Self(unsafe { core::mem::zeroed() })
    }

    /// Parses `addr` (without brackets) and `port`, as configfs and nvme-cli give them.
    pub(crate) fn parse(family: Family, addr: &CStr, port: &CStr) -> Result<Self> {
        let af = match family {
            Family::Inet => bindings::AF_INET,
            Family::Inet6 => bindings::AF_INET6,
            Family::Any => bindings::AF_UNSPEC,
        };
        let mut sa = Self::unspecified();
        // SAFETY: `addr` and `port` are NUL-terminated strings; `sa.0` is a valid,
        // writable `sockaddr_storage`.
        to_result(unsafe {
            bindings::nvtr_addr_parse(af as u16, addr.as_char_ptr(), port.as_char_ptr(), &mut sa.0)
        })?;
        Ok(sa)
    }

    /// Writes the address without the port (`1.2.3.4`, `::1`) into `out`,
    /// NUL-terminated; returns its length.
    pub(crate) fn format_ip(&self, out: &mut [u8]) -> usize {
        // SAFETY: `out` is writable for `out.len()` bytes; `self.0` is valid.
        let n = unsafe { bindings::nvtr_addr_format_ip(&self.0, out.as_mut_ptr().cast::<c_char>(), out.len()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// True for the wildcard address (`0.0.0.0` or `::`).
    pub(crate) fn is_any(&self) -> bool {
        // SAFETY: `self.0` is a valid `sockaddr_storage`.
        unsafe { bindings::nvtr_addr_is_any(&self.0) }
    }

    /// The address family, `AF_INET` or `AF_INET6` (0 if unspecified).
    pub(crate) fn family(&self) -> u16 {
        // SAFETY: `self.0` is a valid `sockaddr_storage`.
        unsafe { bindings::nvtr_addr_family(&self.0) }
    }

    fn as_unsized(&self) -> *mut bindings::sockaddr_unsized {
        ptr::from_ref(&self.0).cast_mut().cast()
    }

    fn len(&self) -> i32 {
        // CAST: `sockaddr_storage` is 128 bytes.
        core::mem::size_of::<bindings::__kernel_sockaddr_storage>() as i32
    }
}

impl kernel::fmt::Display for SockAddr {
    /// Formats as the kernel's `%pISpc`: `1.2.3.4:4420` or `[::1]:4420`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // SAFETY: `buf` is writable for `buf.len()` bytes; `self.0` is valid.
        let n = unsafe {
            bindings::nvtr_addr_format(&self.0, buf.as_mut_ptr().cast::<c_char>(), buf.len())
        };
        let n = usize::try_from(n).unwrap_or(0).min(buf.len());
        let s = buf.get(..n).and_then(|b| core::str::from_utf8(b).ok()).unwrap_or("?");
        f.write_str(s)
    }
}

/// An owned kernel TCP socket, released when dropped.
///
/// # Invariants
///
/// `ptr` points to a valid `struct socket` that this object owns.
pub(crate) struct Socket {
    ptr: NonNull<bindings::socket>,
}

// SAFETY: the kernel's socket calls do their own locking; a socket may be used
// and released from any thread.
unsafe impl Send for Socket {}
// SAFETY: as above; `&Socket` only permits the internally synchronised calls.
unsafe impl Sync for Socket {}

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

    /// Empties the table, to fill it for a send.
    pub(crate) fn clear(&mut self) {
        // SAFETY: the table is live (type invariant) and ours (`&mut`).
        unsafe { bindings::nvtr_bvecs_clear(self.raw()) }
    }

    /// Whether every segment is in use.
    pub(crate) fn is_full(&self) -> bool {
        // SAFETY: the table is live (type invariant); a read-only look.
        unsafe { bindings::nvtr_bvecs_full(self.ptr.as_ptr()) }
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
        Socket::io_result(ret, false)
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

/// What a non-blocking receive or send achieved.
pub(crate) enum Io {
    /// This many bytes were transferred (never 0).
    Done(usize),
    /// Nothing can be transferred now; wait for the next socket event.
    WouldBlock,
    /// The peer closed its side (receive only).
    Eof,
}

impl Socket {
    fn create(family: u16) -> Result<Self> {
        let mut raw: *mut bindings::socket = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer.
        to_result(unsafe { bindings::nvtr_sock_create(family, &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or(ENOMEM)?;
        // INVARIANT: `sock_create_kern` succeeded and handed us the socket.
        Ok(Self { ptr })
    }

    /// The C socket, for the glue layer's scatterlist I/O.
    pub(super) fn raw(&self) -> *mut bindings::socket {
        self.ptr.as_ptr()
    }

    /// Maps the return value of a non-blocking socket call to [`Io`].
    pub(super) fn io_result(ret: i32, eof_ok: bool) -> Result<Io> {
        match ret {
            0 if eof_ok => Ok(Io::Eof),
            0 => Ok(Io::WouldBlock),
            // CAST: positive `i32` fits `usize`.
            n if n > 0 => Ok(Io::Done(n as usize)),
            e if e == EAGAIN.to_errno() => Ok(Io::WouldBlock),
            e => Err(Error::from_errno(e)),
        }
    }

    /// A listening socket bound to `addr`.
    pub(crate) fn listen(addr: &SockAddr, backlog: i32, priority: u32) -> Result<Self> {
        let sock = Self::create(addr.family())?;
        // SAFETY: `sock.raw()` is a valid socket (type invariant).
        unsafe {
            bindings::nvtr_sock_set_reuseaddr(sock.raw());
            bindings::nvtr_sock_set_nodelay(sock.raw());
            if priority > 0 {
                bindings::nvtr_sock_set_priority(sock.raw(), priority);
            }
        }
        // SAFETY: `sock.raw()` is valid; `addr` is a `sockaddr_storage` of `addr.len()` bytes.
        to_result(unsafe { bindings::kernel_bind(sock.raw(), addr.as_unsized(), addr.len()) })?;
        // SAFETY: `sock.raw()` is a valid, bound socket.
        to_result(unsafe { bindings::kernel_listen(sock.raw(), backlog) })?;
        Ok(sock)
    }

    /// Accepts one pending connection without blocking.
    pub(crate) fn accept(&self) -> Result<Option<Socket>> {
        let mut raw: *mut bindings::socket = ptr::null_mut();
        // SAFETY: `self.raw()` is a valid listening socket; `raw` a valid out-pointer.
        let ret = unsafe { bindings::kernel_accept(self.raw(), &mut raw, bindings::O_NONBLOCK as i32) };
        if ret == EAGAIN.to_errno() {
            return Ok(None);
        }
        to_result(ret)?;
        let ptr = NonNull::new(raw).ok_or(ENOMEM)?;
        // INVARIANT: `kernel_accept` succeeded and handed us the new socket.
        Ok(Some(Self { ptr }))
    }

    /// Connects to `addr` (blocking), bound to `src` when given.
    pub(crate) fn connect(addr: &SockAddr, src: Option<&SockAddr>) -> Result<Self> {
        let sock = Self::create(addr.family())?;
        // SAFETY: `sock.raw()` is a valid socket (type invariant).
        unsafe {
            bindings::nvtr_sock_set_syncnt(sock.raw(), 1);
            bindings::nvtr_sock_set_nodelay(sock.raw());
            bindings::nvtr_sock_no_linger(sock.raw());
        }
        if let Some(src) = src {
            // SAFETY: `sock.raw()` is valid; `src` is a `sockaddr_storage` of `src.len()` bytes.
            to_result(unsafe { bindings::kernel_bind(sock.raw(), src.as_unsized(), src.len()) })?;
        }
        // SAFETY: `sock.raw()` is valid; `addr` is a `sockaddr_storage` of `addr.len()` bytes.
        to_result(unsafe { bindings::kernel_connect(sock.raw(), addr.as_unsized(), addr.len(), 0) })?;
        Ok(sock)
    }

    /// Sets the socket priority (`SO_PRIORITY`).
    pub(crate) fn set_priority(&self, priority: u32) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_priority(self.raw(), priority) }
    }

    /// The CPU that receives this connection's packets (a CPU number for
    /// [`crate::glue::workqueue::ModuleWq::enqueue_on`], or "any").
    pub(crate) fn incoming_cpu(&self) -> i32 {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_incoming_cpu(self.raw()) }
    }

    /// Drops unsent data at close instead of lingering (`sock_no_linger`), so
    /// a connection that comes back does not see stale PDUs.
    pub(crate) fn set_no_linger(&self) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_no_linger(self.raw()) }
    }

    /// Sets the IP type of service.
    pub(crate) fn set_tos(&self, tos: i32) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_tos(self.raw(), tos) }
    }

    /// Bounds how long blocking receives (`recv_exact`) wait, in jiffies.
    pub(crate) fn set_recv_timeout(&self, jiffies: c_long) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_rcvtimeo(self.raw(), jiffies) }
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> Result<SockAddr> {
        let sa = SockAddr::unspecified();
        // SAFETY: `self.raw()` is valid; `sa.0` is a writable `sockaddr_storage`.
        let ret = unsafe { bindings::kernel_getpeername(self.raw(), sa.as_unsized().cast()) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(sa)
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> Result<SockAddr> {
        let sa = SockAddr::unspecified();
        // SAFETY: `self.raw()` is valid; `sa.0` is a writable `sockaddr_storage`.
        let ret = unsafe { bindings::kernel_getsockname(self.raw(), sa.as_unsized().cast()) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(sa)
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

    fn recvmsg(&self, buf: &mut [u8], flags: u32) -> i32 {
        let mut iov = bindings::kvec { iov_base: buf.as_mut_ptr().cast::<c_void>(), iov_len: buf.len() };
        // SAFETY: all-zero is a valid empty `msghdr`.
        let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
        // SAFETY: `self.raw()` is valid; `iov` describes `buf`, writable for its length.
        unsafe { bindings::kernel_recvmsg(self.raw(), &mut msg, &mut iov, 1, buf.len(), flags as i32) }
    }

    /// Whether a receive would find something (data, an error or EOF), at the
    /// cost of a few loads; anything queued after `false` is followed by a
    /// data-ready event.
    pub(crate) fn readable(&self) -> bool {
        // SAFETY: the socket is valid (type invariant); lockless reads only.
        unsafe { bindings::nvtr_sk_readable(self.raw()) }
    }

    /// Receives what is there, up to `buf.len()` bytes, without blocking.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<Io> {
        if buf.is_empty() {
            return Ok(Io::Done(0));
        }
        Self::io_result(self.recvmsg(buf, bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL), true)
    }

    /// Receives exactly `buf.len()` bytes, blocking up to the receive timeout.
    pub(crate) fn recv_exact(&self, buf: &mut [u8]) -> Result {
        match self.recvmsg(buf, bindings::MSG_WAITALL | bindings::MSG_NOSIGNAL) {
            n if n >= 0 && n as usize == buf.len() => Ok(()),
            n if n >= 0 => Err(ECONNRESET),
            e => Err(Error::from_errno(e)),
        }
    }

    fn sendmsg(&self, buf: &[u8], flags: u32) -> i32 {
        let mut iov =
            bindings::kvec { iov_base: buf.as_ptr().cast_mut().cast::<c_void>(), iov_len: buf.len() };
        // SAFETY: all-zero is a valid empty `msghdr`.
        let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
        msg.msg_flags = flags;
        // SAFETY: `self.raw()` is valid; `iov` describes `buf`, which the kernel only reads.
        unsafe { bindings::kernel_sendmsg(self.raw(), &mut msg, &mut iov, 1, buf.len()) }
    }

    /// Sends as much of `buf` as the socket takes now; `more` hints that more follows.
    pub(crate) fn send(&self, buf: &[u8], more: bool) -> Result<Io> {
        let mut flags = bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL;
        if more {
            flags |= bindings::MSG_MORE;
        }
        Self::io_result(self.sendmsg(buf, flags), false)
    }

    /// Sends all of `buf`, blocking.
    pub(crate) fn send_all(&self, buf: &[u8]) -> Result {
        match self.sendmsg(buf, bindings::MSG_NOSIGNAL) {
            n if n >= 0 && n as usize == buf.len() => Ok(()),
            n if n >= 0 => Err(ECONNRESET),
            e => Err(Error::from_errno(e)),
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the socket (type invariant) and nobody uses it after this.
        unsafe { bindings::sock_release(self.raw()) };
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
