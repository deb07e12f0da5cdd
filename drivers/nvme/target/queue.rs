// SPDX-License-Identifier: GPL-2.0

//! Queues: one per accepted connection, each driven by its own I/O work.
//!
//! The socket callbacks only queue [`Queue`]'s work. The work receives and
//! parses PDUs with the `proto` crate and sends what is due; any violation
//! ends this connection alone, with a logged reason and, where the spec asks
//! for one, a C2HTermReq.

use crate::{
    glue::sock::{peer_log_allowed, CallbackSocket, Io, SockAddr, SockEvent, Socket, SocketEvents},
    port::Port,
    proto::{self, Role, Stage},
    WQ,
};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{
    alloc::KVec,
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
    time::{delay::fsleep, Delta},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

/// Largest H2CData PDU we accept (`maxdata` in the ICResp), as the C target.
const MAX_H2C_DATA: u32 = 4 * 1024 * 1024;
/// Receive and send operations per run of the I/O work before it yields.
const IO_BUDGET: u32 = 64;

kernel::sync::global_lock! {
    // SAFETY: initialised by `init_registry` in module init, before any port exists.
    unsafe(uninit) static QUEUES: Mutex<KVec<Arc<Queue>>> = KVec::new();
}

/// Prepares the queue registry; called once from module init.
pub(crate) fn init_registry() {
    // SAFETY: called once, from module init, before any other use of `QUEUES`.
    unsafe { QUEUES.init() };
}

static NEXT_IDX: AtomicU32 = AtomicU32::new(0);

/// Receive side: the PDU header being assembled.
struct Rx {
    buf: [u8; proto::MAX_HEADER_LEN],
    /// Bytes of `buf` filled so far.
    have: usize,
    /// Bytes the current header needs (8 until the common header is parsed).
    want: usize,
}

/// Send side: one PDU being sent.
struct Tx {
    buf: [u8; proto::ICRESP_LEN],
    sent: usize,
    len: usize,
}

/// State owned by the I/O work.
struct Inner {
    /// Before or after ICReq/ICResp, with the negotiated digests.
    stage: Stage,
    rx: Rx,
    tx: Tx,
}

/// Why a queue is being closed.
enum Close {
    /// The peer violated the protocol: log it, tell the peer (C2HTermReq), close.
    Protocol(proto::Error),
    /// Something else worth a line in the log.
    Reason(&'static str),
    /// Socket error.
    Sock(Error),
    /// Orderly end: the peer closed, or we were asked to shut down.
    Quiet,
}

/// A connection from a host.
#[pin_data]
pub(crate) struct Queue {
    /// Index for messages (not the NVMe queue id, which is known after Connect).
    idx: u32,
    /// The host's address, for messages.
    peer: SockAddr,
    /// The port's key, for `shutdown_port`.
    port_key: usize,
    closing: AtomicBool,
    #[pin]
    sock: CallbackSocket<Queue>,
    #[pin]
    io_work: Work<Queue>,
    #[pin]
    inner: Mutex<Inner>,
}

impl_has_work! {
    impl HasWork<Self> for Queue { self.io_work }
}

// SAFETY: `callback_socket` returns a field of `self`.
unsafe impl SocketEvents for Queue {
    fn callback_socket(&self) -> &CallbackSocket<Self> {
        &self.sock
    }

    fn event(this: ArcBorrow<'_, Self>, _event: SockEvent) {
        Self::kick(this);
    }
}

impl WorkItem for Queue {
    type Pointer = Arc<Queue>;

    fn run(this: Arc<Queue>) {
        if this.closing.load(Ordering::Acquire) {
            return;
        }
        let result = {
            let mut inner = this.inner.lock();
            this.io(&mut inner)
        };
        match result {
            Ok(true) => {
                // Budget used up with work left: run again after others had a turn.
                if let Some(wq) = WQ.get() {
                    let _ = wq.enqueue(this);
                }
            }
            Ok(false) => {}
            Err(close) => this.close(close),
        }
    }
}

impl Queue {
    /// Takes over an accepted connection on `port`.
    pub(crate) fn start(port: &Port, sock: Socket) {
        let peer = sock.peer_addr().unwrap_or_else(|_| SockAddr::unspecified());
        let idx = NEXT_IDX.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::pin_init(
            pin_init!(Queue {
                idx,
                peer,
                port_key: port.key(),
                closing: AtomicBool::new(false),
                sock <- CallbackSocket::new(sock),
                io_work <- new_work!("nvmet_tcp::Queue::io_work"),
                inner <- new_mutex!(Inner {
                    stage: Stage::Handshake,
                    rx: Rx { buf: [0; proto::MAX_HEADER_LEN], have: 0, want: proto::COMMON_HEADER_LEN },
                    tx: Tx { buf: [0; proto::ICRESP_LEN], sent: 0, len: 0 },
                }),
            }),
            GFP_KERNEL,
        );
        let queue = match queue {
            Ok(q) => q,
            Err(e) => {
                pr_err!("port {}: no memory for a queue for {}: {:?}\n", port.id, peer, e);
                return; // Dropping `sock` closes the connection.
            }
        };
        if QUEUES.lock().push(queue.clone(), GFP_KERNEL).is_err() {
            pr_err!("port {}: no memory for a queue for {}\n", port.id, peer);
            return;
        }
        CallbackSocket::attach(&queue);
        // Data may have arrived before the callbacks were ours.
        Self::kick(queue.as_arc_borrow());
    }

    /// Queues the I/O work (a no-op if it is already queued).
    fn kick(this: ArcBorrow<'_, Self>) {
        if !this.closing.load(Ordering::Relaxed) {
            if let Some(wq) = WQ.get() {
                let _ = wq.enqueue(Arc::from(this));
            }
        }
    }

    /// Shuts the connection down; its I/O work then releases the queue.
    fn shutdown(&self) {
        self.sock.sock().shutdown();
    }

    /// Receives and sends until the socket has nothing more, or the budget is
    /// used up (`Ok(true)`: run again).
    fn io(&self, inner: &mut Inner) -> Result<bool, Close> {
        let mut ops = 0;
        while ops < IO_BUDGET {
            let sent = self.send(inner)?;
            let received = self.recv(inner)?;
            if !sent && !received {
                if self.sock.sock().is_closing() {
                    return Err(Close::Quiet);
                }
                return Ok(false);
            }
            ops += 1;
        }
        Ok(true)
    }

    /// Sends what is pending; true if progress was made.
    fn send(&self, inner: &mut Inner) -> Result<bool, Close> {
        let tx = &mut inner.tx;
        let Some(pending) = tx.buf.get(tx.sent..tx.len) else { return Ok(false) };
        if pending.is_empty() {
            return Ok(false);
        }
        match self.sock.sock().send(pending, false).map_err(Close::Sock)? {
            Io::Done(n) => {
                tx.sent += n;
                Ok(true)
            }
            Io::WouldBlock | Io::Eof => Ok(false),
        }
    }

    /// Receives into the header buffer and handles a complete PDU; true if
    /// progress was made.
    fn recv(&self, inner: &mut Inner) -> Result<bool, Close> {
        // While a reply is unsent, do not read more (one PDU in flight at this stage).
        if inner.tx.sent < inner.tx.len {
            return Ok(false);
        }
        let rx = &mut inner.rx;
        let Some(space) = rx.buf.get_mut(rx.have..rx.want) else {
            return Err(Close::Reason("receive state out of bounds"));
        };
        match self.sock.sock().recv(space).map_err(Close::Sock)? {
            Io::Done(n) => rx.have += n,
            Io::WouldBlock => return Ok(false),
            Io::Eof if rx.have == 0 => return Err(Close::Quiet),
            Io::Eof => return Err(Close::Reason("connection closed in the middle of a PDU")),
        }
        if rx.have < rx.want {
            return Ok(true);
        }
        self.header_progress(inner)?;
        Ok(true)
    }

    /// The header buffer holds `want` bytes: check the common header, or
    /// handle the whole PDU header once it is complete.
    fn header_progress(&self, inner: &mut Inner) -> Result<(), Close> {
        if inner.rx.want == proto::COMMON_HEADER_LEN {
            // Check the common header for this stage before reading more, so a
            // bad header never makes us wait for the bytes it announced.
            let ch = proto::CommonHeader::decode(&inner.rx.buf).map_err(Close::Protocol)?;
            let frame = ch.frame(Role::Controller, inner.stage, MAX_H2C_DATA).map_err(Close::Protocol)?;
            inner.rx.want = frame.header_len;
            if frame.header_len > proto::COMMON_HEADER_LEN {
                return Ok(());
            }
        }
        let header = inner.rx.buf.get(..inner.rx.have).unwrap_or(&[]);
        let (pdu, _frame) =
            proto::Pdu::decode(header, Role::Controller, inner.stage, MAX_H2C_DATA).map_err(Close::Protocol)?;
        match pdu {
            proto::Pdu::IcReq(icreq) => self.handle_icreq(inner, &icreq),
            proto::Pdu::TermReq(t) => {
                if peer_log_allowed() {
                    pr_err!(
                        "queue {} ({}): host terminated the connection (fes {:#x}, fei {:#x})\n",
                        self.idx,
                        self.peer,
                        t.fes,
                        t.fei
                    );
                }
                Err(Close::Quiet)
            }
            _ => {
                pr_info!(
                    "queue {} ({}): command processing is not implemented yet, closing\n",
                    self.idx,
                    self.peer
                );
                Err(Close::Quiet)
            }
        }
    }

    fn handle_icreq(&self, inner: &mut Inner, icreq: &proto::IcReq) -> Result<(), Close> {
        icreq.validate_target().map_err(Close::Protocol)?;
        let resp = proto::IcResp {
            pfv: proto::PFV_1_0,
            cpda: 0,
            hdgst: icreq.hdgst,
            ddgst: icreq.ddgst,
            maxdata: MAX_H2C_DATA,
        };
        inner.tx.len = resp.encode(&mut inner.tx.buf).map_err(Close::Protocol)?;
        inner.tx.sent = 0;
        inner.rx.have = 0;
        inner.rx.want = proto::COMMON_HEADER_LEN;
        inner.stage = Stage::Established(icreq.digests());
        pr_debug!(
            "queue {} ({}): ICReq accepted (hdgst {}, ddgst {}, maxr2t {})\n",
            self.idx,
            self.peer,
            u8::from(icreq.hdgst),
            u8::from(icreq.ddgst),
            icreq.maxr2t
        );
        Ok(())
    }

    /// Ends the connection: logs why, tells the peer where the spec asks for it,
    /// gives back the socket callbacks and leaves the registry.
    fn close(self: Arc<Self>, why: Close) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        let log = peer_log_allowed();
        match why {
            Close::Protocol(err) => {
                if log {
                    pr_err!("queue {} ({}): {}, closing\n", self.idx, self.peer, err);
                }
                let mut term = [0u8; proto::TERM_REQ_MAX_LEN];
                let inner = self.inner.lock();
                let len = proto::TermReq::c2h(&err)
                    .encode(&mut term, inner.rx.buf.get(..inner.rx.have).unwrap_or(&[]))
                    .unwrap_or(0);
                drop(inner);
                if let Some(pdu) = term.get(..len).filter(|p| !p.is_empty()) {
                    // Best effort: the connection ends either way.
                    let _ = self.sock.sock().send(pdu, false);
                }
            }
            Close::Reason(r) if log => {
                pr_err!("queue {} ({}): {}, closing\n", self.idx, self.peer, r)
            }
            Close::Sock(e) if e == ECONNRESET || e == EPIPE => {
                pr_debug!("queue {} ({}): connection reset by the host\n", self.idx, self.peer)
            }
            Close::Sock(e) if log => {
                pr_err!("queue {} ({}): socket error {:?}, closing\n", self.idx, self.peer, e)
            }
            Close::Reason(_) | Close::Sock(_) => {}
            Close::Quiet => pr_debug!("queue {} ({}): closed\n", self.idx, self.peer),
        }
        self.sock.detach();
        self.shutdown();
        let mut queues = QUEUES.lock();
        if let Some(pos) = queues.iter().position(|q| Arc::ptr_eq(q, &self)) {
            let removed = queues.remove(pos).ok();
            drop(queues);
            drop(removed);
        }
    }
}

/// Shuts down every queue that came in through the port with `key`.
pub(crate) fn shutdown_port(key: usize) {
    for q in QUEUES.lock().iter().filter(|q| q.port_key == key) {
        q.shutdown();
    }
}

/// On drop (module unload), shuts down every queue and waits until all are gone.
pub(crate) struct ShutdownOnDrop;

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        loop {
            let remaining = {
                let queues = QUEUES.lock();
                for q in queues.iter() {
                    q.shutdown();
                }
                queues.len()
            };
            if remaining == 0 {
                return;
            }
            // Their I/O work sees the shutdown and releases them.
            fsleep(Delta::from_millis(10));
        }
    }
}
