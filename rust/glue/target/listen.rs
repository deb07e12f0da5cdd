// SPDX-License-Identifier: GPL-2.0

//! The target's sockets: listening on a port's address, accepting
//! connections, and the addresses nvmet reports.

use crate::glue::{
    bindings,
    sock::{SockAddr, Socket},
};
use core::ptr::{self, NonNull};
use kernel::{error::to_result, ffi::c_char, prelude::*};

impl SockAddr {
    /// Parses a port's `addr_traddr` (without brackets) and `addr_trsvcid`,
    /// as an IPv6 address if `ipv6`, else IPv4.
    pub(crate) fn parse_ip(ipv6: bool, addr: &CStr, port: &CStr) -> Result<Self> {
        Self::parse_af(if ipv6 { bindings::AF_INET6 } else { bindings::AF_INET }, addr, port)
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

    /// True for the wildcard address (`0.0.0.0` or `::`).
    pub(crate) fn is_any(&self) -> bool {
        // SAFETY: `self.0` is a valid `sockaddr_storage`.
        unsafe { bindings::nvtr_addr_is_any(&self.0) }
    }
}

impl Socket {
    /// A listening socket bound to `addr`.
    pub(crate) fn listen(addr: &SockAddr, backlog: i32, priority: u32) -> Result<Self> {
        let sock = Self::create(addr.family())?;
        // SAFETY: `sock.raw()` is a valid socket (type invariant).
        unsafe {
            bindings::nvtr_sock_set_reuseaddr(sock.raw());
            bindings::nvtr_sock_set_nodelay(sock.raw());
        }
        if priority > 0 {
            sock.set_priority(priority);
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
        // CAST: a small flag constant.
        // SAFETY: `self.raw()` is a valid listening socket; `raw` a valid out-pointer.
        let ret = unsafe { bindings::kernel_accept(self.raw(), &mut raw, bindings::O_NONBLOCK as i32) };
        if ret == EAGAIN.to_errno() {
            return Ok(None);
        }
        to_result(ret)?;
        let ptr = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `kernel_accept` succeeded and handed us the new socket.
        Ok(Some(unsafe { Self::from_raw(ptr) }))
    }

    /// Sets the socket priority (`SO_PRIORITY`).
    pub(crate) fn set_priority(&self, priority: u32) {
        // SAFETY: `self.raw()` is a valid socket (type invariant).
        unsafe { bindings::nvtr_sock_set_priority(self.raw(), priority) }
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> Result<SockAddr> {
        self.name(true)
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> Result<SockAddr> {
        self.name(false)
    }

    /// The peer's (`getpeername`) or the local (`getsockname`) address.
    fn name(&self, peer: bool) -> Result<SockAddr> {
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
}
