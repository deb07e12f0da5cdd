// SPDX-License-Identifier: GPL-2.0

//! Ports: a listening socket per enabled configfs port, and its accept work.

use crate::{
    glue::{
        sock::{SockAddr, Socket},
        sock_io::{CallbackSocket, SockEvent, SocketEvents},
        target::{
            nvmet::{AddrFamily, NvmetPort, PortHandle},
            params,
        },
    },
    queue::Queue,
    registry, WQ,
};
use kernel::{
    prelude::*,
    sync::{Arc, ArcBorrow},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

/// Listen backlog, as the C target.
const BACKLOG: i32 = 128;
/// In-capsule data size when the port leaves it to the transport, as the C
/// target.
const DEFAULT_INLINE_DATA_SIZE: i32 = 4 * 4096;

/// An enabled port.
#[pin_data]
pub(crate) struct Port {
    /// configfs port id, for messages.
    pub(crate) id: u16,
    /// The address listened on.
    pub(crate) addr: SockAddr,
    /// In-capsule data this port accepts.
    pub(crate) inline_data_size: u32,
    /// nvmet's port.
    pub(crate) nport: PortHandle,
    #[pin]
    listener: CallbackSocket<Port>,
    #[pin]
    accept_work: Work<Port>,
}

impl_has_work! {
    impl HasWork<Self> for Port { self.accept_work }
}

// SAFETY: `callback_socket` returns a field of `self`.
unsafe impl SocketEvents for Port {
    fn callback_socket(&self) -> &CallbackSocket<Self> {
        &self.listener
    }

    fn event(this: ArcBorrow<'_, Self>, event: SockEvent) {
        if event == SockEvent::DataReady {
            if let Some(wq) = WQ.get() {
                // Already queued is fine: one run accepts everything pending.
                let _ = wq.enqueue(Arc::from(this));
            }
        }
    }
}

impl WorkItem for Port {
    type Pointer = Arc<Port>;

    fn run(this: Arc<Port>) {
        loop {
            match this.listener.sock().accept() {
                Ok(Some(sock)) => {
                    sock.set_no_linger();
                    let priority = params::so_priority();
                    if priority > 0 {
                        sock.set_priority(priority);
                    }
                    Queue::start(&this, sock)
                }
                Ok(None) => return,
                Err(e) => {
                    pr_warn!("port {}: accept failed: {:?}\n", this.id, e);
                    return;
                }
            }
        }
    }
}

impl Port {
    /// The key by which queues remember their port (its address, unique while
    /// the port is enabled; never dereferenced).
    pub(crate) fn key(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// Enables `nport`: listens on its address.
    pub(crate) fn add(nport: &NvmetPort) -> Result<Arc<Port>> {
        let ipv6 = match nport.family() {
            AddrFamily::Ipv4 => false,
            AddrFamily::Ipv6 => true,
            AddrFamily::Other(f) => {
                pr_err!("port {}: address family {} not supported\n", nport.id(), f);
                return Err(EINVAL);
            }
        };
        if nport.tcp_sectype() != 0 {
            pr_err!("port {}: TLS (addr_tsas) is not supported\n", nport.id());
            return Err(EOPNOTSUPP);
        }
        let addr = SockAddr::parse_ip(ipv6, nport.traddr(), nport.trsvcid()).inspect_err(|_| {
            pr_err!(
                "port {}: malformed ip/port: {}:{}\n",
                nport.id(),
                nport.traddr().to_str().unwrap_or("?"),
                nport.trsvcid().to_str().unwrap_or("?")
            );
        })?;
        // After the address is known good, as the C target.
        if nport.inline_data_size() < 0 {
            nport.set_inline_data_size(DEFAULT_INLINE_DATA_SIZE);
        }
        let inline_data_size = u32::try_from(nport.inline_data_size()).unwrap_or(0);

        let sock = Socket::listen(&addr, BACKLOG, params::so_priority()).inspect_err(|e| {
            pr_err!("port {}: failed to listen on {}: {:?}\n", nport.id(), addr, e);
        })?;
        let port = Arc::pin_init(
            pin_init!(Port {
                id: nport.id(),
                addr,
                inline_data_size,
                nport: nport.handle(),
                listener <- CallbackSocket::new(sock),
                accept_work <- new_work!("nvmet_tcp::Port::accept_work"),
            }),
            GFP_KERNEL,
        )?;
        CallbackSocket::attach(&port);
        pr_info!("enabling port {} ({})\n", port.id, port.addr);
        // Connections that arrived before the callbacks were in place.
        if let Some(wq) = WQ.get() {
            let _ = wq.enqueue(port.clone());
        }
        Ok(port)
    }

    /// Disables the port: no new connections, and every queue that came in
    /// through it shut down.
    pub(crate) fn remove(self: Arc<Self>) {
        // No new accept work, then wait out the one that may be running.
        self.listener.detach();
        crate::glue::workqueue::flush(&self.accept_work);
        registry::shutdown_port(&self);
        pr_info!("disabling port {} ({})\n", self.id, self.addr);
        // Dropping the last reference releases the listening socket.
    }
}
