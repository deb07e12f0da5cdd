// SPDX-License-Identifier: GPL-2.0

//! Kernel TCP sockets, shaped by what NVMe/TCP needs: the part both modules use.
//!
//! The 7.3 kernel crate has no socket API. [`Socket`] owns a `struct socket`;
//! [`SockAddr`] is a parsed IPv4/IPv6 address. The non-blocking data path and
//! the socket callbacks are in `sock_io`; listening is the target's
//! (`target/listen.rs`), connecting the host's (`host/connect.rs`).

use crate::glue::bindings;
use core::ptr::{self, NonNull};
use kernel::{
    error::to_result,
    ffi::{c_char, c_void},
    fmt,
    prelude::*,
};

/// An IPv4 or IPv6 socket address.
#[derive(Clone, Copy)]
pub(crate) struct SockAddr(pub(super) bindings::__kernel_sockaddr_storage);

// SAFETY: a `sockaddr_storage` is plain bytes; its pointer-typed union member
// (an alignment device) is never dereferenced.
unsafe impl Send for SockAddr {}
// SAFETY: as above; `&SockAddr` gives read-only access.
unsafe impl Sync for SockAddr {}

impl SockAddr {
    /// An unspecified address (family `AF_UNSPEC`).
    pub(crate) fn unspecified() -> Self {
        // SAFETY: all-zero bytes are a valid `sockaddr_storage` (AF_UNSPEC).
        Self(unsafe { core::mem::zeroed() })
    }

    /// Parses `addr` (without brackets) and `port` for address family `af`
    /// (`AF_INET`, `AF_INET6`, or `AF_UNSPEC` for either), as configfs and
    /// nvme-cli give them.
    pub(super) fn parse_af(af: u32, addr: &CStr, port: &CStr) -> Result<Self> {
        let mut sa = Self::unspecified();
        // CAST: address families are small constants.
        // SAFETY: `addr` and `port` are NUL-terminated strings; `sa.0` is a valid,
        // writable `sockaddr_storage`.
        to_result(unsafe {
            bindings::nvtr_addr_parse(af as u16, addr.as_char_ptr(), port.as_char_ptr(), &mut sa.0)
        })?;
        Ok(sa)
    }

    /// The address family, `AF_INET` or `AF_INET6` (0 if unspecified).
    pub(crate) fn family(&self) -> u16 {
        // SAFETY: `self.0` is a valid `sockaddr_storage`.
        unsafe { bindings::nvtr_addr_family(&self.0) }
    }

    /// The address for a call that only reads it (`kernel_bind`,
    /// `kernel_connect`, whose C prototypes are not `const`).
    pub(super) fn as_unsized(&self) -> *mut bindings::sockaddr_unsized {
        ptr::from_ref(&self.0).cast_mut().cast()
    }

    /// Writes the address without the port (`1.2.3.4`, `::1`) into `out`,
    /// NUL-terminated; returns its length.
    pub(crate) fn format_ip(&self, out: &mut [u8]) -> usize {
        // SAFETY: `out` is writable for `out.len()` bytes; `self.0` is valid.
        let n = unsafe { bindings::nvtr_addr_format_ip(&self.0, out.as_mut_ptr().cast::<c_char>(), out.len()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// The address for a call that writes it (`kernel_getpeername`).
    fn as_mut_ptr(&mut self) -> *mut bindings::sockaddr {
        ptr::from_mut(&mut self.0).cast()
    }

    pub(super) fn len(&self) -> i32 {
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

impl Socket {
    /// Takes ownership of a socket the kernel handed over.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid socket that nothing else owns or releases.
    pub(super) unsafe fn from_raw(ptr: NonNull<bindings::socket>) -> Self {
        // INVARIANT: per the caller.
        Self { ptr }
    }

    /// The C socket, for the glue layer's calls.
    pub(super) fn raw(&self) -> *mut bindings::socket {
        self.ptr.as_ptr()
    }

    /// Sets the socket priority (`SO_PRIORITY`).
    pub(crate) fn set_priority(&self, priority: u32) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_priority(self.raw(), priority) }
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> Result<SockAddr> {
        self.name(false)
    }

    /// The peer's (`getpeername`) or the local (`getsockname`) address.
    pub(super) fn name(&self, peer: bool) -> Result<SockAddr> {
        let mut sa = SockAddr::unspecified();
        let out = sa.as_mut_ptr();
        // SAFETY: `self.raw()` is valid; `out` is a writable `sockaddr_storage`.
        let ret = unsafe {
            if peer {
                bindings::kernel_getpeername(self.raw(), out)
            } else {
                bindings::kernel_getsockname(self.raw(), out)
            }
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(sa)
    }

    /// Drops unsent data at close instead of lingering (`sock_no_linger`), so
    /// a connection that comes back does not see stale PDUs.
    pub(crate) fn set_no_linger(&self) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_no_linger(self.raw()) }
    }

    /// `kernel_recvmsg` into `buf` with `flags`: bytes received, 0 at EOF, or -errno.
    pub(super) fn recvmsg(&self, buf: &mut [u8], flags: u32) -> i32 {
        let mut iov = bindings::kvec { iov_base: buf.as_mut_ptr().cast::<c_void>(), iov_len: buf.len() };
        // SAFETY: all-zero is a valid empty `msghdr`.
        let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
        // CAST: the kernel's flags are `int`; ours are small constants.
        // SAFETY: `self.raw()` is valid; `iov` describes `buf`, writable for its length.
        unsafe { bindings::kernel_recvmsg(self.raw(), &mut msg, &mut iov, 1, buf.len(), flags as i32) }
    }

    /// `kernel_sendmsg` of `buf` with `flags`: bytes sent, or -errno.
    pub(super) fn sendmsg(&self, buf: &[u8], flags: u32) -> i32 {
        let mut iov =
            bindings::kvec { iov_base: buf.as_ptr().cast_mut().cast::<c_void>(), iov_len: buf.len() };
        // SAFETY: all-zero is a valid empty `msghdr`.
        let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
        msg.msg_flags = flags;
        // SAFETY: `self.raw()` is valid; `iov` describes `buf`, which the kernel only reads.
        unsafe { bindings::kernel_sendmsg(self.raw(), &mut msg, &mut iov, 1, buf.len()) }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the socket (type invariant) and nobody uses it after this.
        unsafe { bindings::sock_release(self.raw()) };
    }
}
