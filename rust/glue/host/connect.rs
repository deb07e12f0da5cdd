// SPDX-License-Identifier: GPL-2.0

//! The host's sockets: connecting to a target, and the blocking exchange of
//! ICReq and ICResp. Also: whether a network interface exists.

use crate::glue::{
    bindings,
    sock::{SockAddr, Socket},
};
use kernel::{error::to_result, ffi::c_long, prelude::*};

impl SockAddr {
    /// Parses `addr` (IPv4 or IPv6, without brackets) and `port`, as
    /// nvme-cli passes them.
    pub(crate) fn parse(addr: &CStr, port: &CStr) -> Result<Self> {
        Self::parse_af(bindings::AF_UNSPEC, addr, port)
    }
}

impl Socket {
    /// Connects to `addr` (blocking) from a socket in the caller's network
    /// namespace, bound to `src` and to interface `iface` when given.
    pub(crate) fn connect_from(addr: &SockAddr, src: Option<&SockAddr>, iface: Option<&CStr>) -> Result<Self> {
        let mut raw: *mut bindings::socket = core::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer.
        to_result(unsafe { bindings::nvtr_sock_create_caller_ns(addr.family(), &mut raw) })?;
        let ptr = core::ptr::NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `sock_create_kern` succeeded and handed us the socket.
        let sock = unsafe { Self::from_raw(ptr) };
        // SAFETY: `sock.raw()` is a valid socket (type invariant).
        unsafe {
            bindings::nvtr_sock_set_syncnt(sock.raw(), 1);
            bindings::nvtr_sock_set_nodelay(sock.raw());
        }
        sock.set_no_linger();
        if let Some(iface) = iface {
            // SAFETY: `sock.raw()` is valid; `iface` is a NUL-terminated string.
            to_result(unsafe { bindings::nvtr_sock_bind_dev(sock.raw(), iface.as_char_ptr()) })?;
        }
        if let Some(src) = src {
            // SAFETY: `sock.raw()` is valid; `src` is a `sockaddr_storage` of `src.len()` bytes.
            to_result(unsafe { bindings::kernel_bind(sock.raw(), src.as_unsized(), src.len()) })?;
        }
        // SAFETY: `sock.raw()` is valid; `addr` is a `sockaddr_storage` of `addr.len()` bytes.
        to_result(unsafe { bindings::kernel_connect(sock.raw(), addr.as_unsized(), addr.len(), 0) })?;
        Ok(sock)
    }

    /// Makes the socket fit to serve the block layer: atomic allocations
    /// and memory reserves (it may be writing back pages to free memory).
    pub(crate) fn set_noio(&self) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_noio(self.raw()) }
    }

    /// Sets the IP type of service.
    pub(crate) fn set_tos(&self, tos: i32) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_tos(self.raw(), tos) }
    }

    /// Bounds how long blocking receives (`recv_exact`) wait.
    pub(crate) fn set_recv_timeout(&self, secs: u32) {
        let jiffies = c_long::try_from(u64::from(secs) * u64::from(bindings::HZ)).unwrap_or(c_long::MAX);
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_rcvtimeo(self.raw(), jiffies) }
    }

    /// Receives exactly `buf.len()` bytes, blocking up to the receive timeout.
    pub(crate) fn recv_exact(&self, buf: &mut [u8]) -> Result {
        let len = buf.len();
        whole(self.recvmsg(buf, bindings::MSG_WAITALL | bindings::MSG_NOSIGNAL), len)
    }

    /// Sends all of `buf`, blocking.
    pub(crate) fn send_all(&self, buf: &[u8]) -> Result {
        whole(self.sendmsg(buf, bindings::MSG_NOSIGNAL), buf.len())
    }
}

/// A blocking call's result `ret` for `len` bytes: all of them, else
/// `ECONNRESET` (the peer ended the exchange early) or the call's error.
fn whole(ret: i32, len: usize) -> Result {
    match ret {
        n if usize::try_from(n) == Ok(len) => Ok(()),
        n if n >= 0 => Err(ECONNRESET),
        e => Err(Error::from_errno(e)),
    }
}

/// Whether a network interface named `name` exists in the caller's namespace.
pub(crate) fn netdev_exists(name: &CStr) -> bool {
    // SAFETY: `name` is a NUL-terminated string the call only reads.
    unsafe { bindings::nvtr_netdev_exists(name.as_char_ptr()) }
}
