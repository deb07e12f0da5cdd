// SPDX-License-Identifier: GPL-2.0

//! The target's sockets: listening on a port's address, accepting
//! connections, and the addresses nvmet reports.

use crate::glue::{
    bindings,
    sock::{SockAddr, Socket},
};
use core::ptr::{self, NonNull};
use kernel::{error::to_result, prelude::*};

impl SockAddr {
    /// Parses a port's `addr_traddr` (without brackets) and `addr_trsvcid`,
    /// as an IPv6 address if `ipv6`, else IPv4.
    pub(crate) fn parse_ip(ipv6: bool, addr: &CStr, port: &CStr) -> Result<Self> {
        Self::parse_af(if ipv6 { bindings::AF_INET6 } else { bindings::AF_INET }, addr, port)
    }

    /// True for the wildcard address (`0.0.0.0` or `::`).
    pub(crate) fn is_any(&self) -> bool {
        // SAFETY: `self.0` is a valid `sockaddr_storage`.
        unsafe { bindings::nvtr_addr_is_any(&self.0) }
    }
}

impl Socket {
    /// A new TCP socket of family `family` (of a [`SockAddr`]).
    fn create(family: u16) -> Result<Self> {
        let mut raw: *mut bindings::socket = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer.
        to_result(unsafe { bindings::nvtr_sock_create(family, &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `sock_create_kern` succeeded and handed us the socket.
        Ok(unsafe { Self::from_raw(ptr) })
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> Result<SockAddr> {
        self.name(true)
    }

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
}
