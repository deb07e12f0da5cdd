// SPDX-License-Identifier: GPL-2.0

//! Queues: one per accepted connection, each driven by its own I/O work.
//!
//! The socket callbacks and nvmet's `queue_response` only queue [`Queue`]'s
//! I/O work. A round of the work hands completed commands to the send side
//! (`send.rs`), sends, and receives (`recv.rs`): PDUs framed and checked by
//! the protocol crate, commands started and their data routed by
//! `command.rs`. Any violation ends this connection alone, with a logged
//! reason naming queue and peer and, where the spec asks for one, a
//! C2HTermReq.
//!
//! Locking: [`Inner`] (the receive, send and command state) is only locked by
//! the I/O work and, after the work is stopped, by the release work.
//! Commands are executed after the lock is dropped, because nvmet may call
//! back into the transport (`install_queue`) from `execute`.

use crate::{
    command::{Ready, Slots, CONNECT_TAG},
    glue::{
        sock::Socket,
        sock_io::{peer_log_allowed, warn_bug, Bvecs, CallbackSocket, SockEvent, SocketEvents},
        target::nvmet::{status, Completions, NvmetQueue, NvmetSq, PortHandle, Request, Requests},
        target::params::PollDeadline,
        sock::SockAddr,
    },
    port::Port,
    proto,
    recv,
    registry,
    send::{SendKind, Tx},
    RELEASE_WQ, WQ,
};
use core::{
    mem::offset_of,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex, SetOnce},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

/// Segments one socket call moves: 1 MiB of a command's data pages, so that
/// a data PDU usually takes one receive call (each may make TCP send an
/// ACK), or the headers and pages of several commands' sends.
const BVECS: u32 = 256;
/// Operations per run of the I/O work before it yields, as the C target.
const IO_BUDGET: u32 = 64;
/// Receive steps per round of the I/O work: each a PDU header, or as much
/// of a PDU's data as one receive call takes.
const RECV_BUDGET: usize = 16;
/// Closing queues of one controller above which a new admin queue for it is
/// refused as busy, as the C target.
const TEARDOWN_BACKLOG: usize = 128;

static NEXT_IDX: AtomicU32 = AtomicU32::new(0);

/// State owned by the I/O work.
pub(crate) struct Inner {
    /// The receive state machine.
    pub(crate) rx: proto::Receiver,
    /// The send side.
    pub(crate) tx: Tx,
    /// The command slots.
    pub(crate) cmds: Slots,
    /// Until when an idle queue keeps being polled (`idle_poll_period_usecs`).
    poll: PollDeadline,
    /// The `maxh2cdata` this connection's ICResp offered.
    pub(crate) max_h2c: u32,
    /// Segment table for data moved straight to and from command pages.
    pub(crate) bvecs: Bvecs,
}

/// What a round of I/O found.
enum Round {
    /// Something was sent or received, and more may be there at once: the
    /// receive budget ran out, or what was received queued a send.
    Busy,
    /// Nothing (more) to do: only a socket event or a completion brings more.
    Idle,
    /// Nothing to do, but the queue is to be polled again (`idle_poll_period_usecs`).
    Polling,
}

/// Why a queue is being closed.
pub(crate) enum Close {
    /// The peer violated the protocol: log it, tell the peer (C2HTermReq), close.
    Protocol(proto::Error),
    /// Something else worth a line in the log (out of memory, the peer gone
    /// in the middle of a PDU, the peer exceeding the queue's limits).
    Reason(&'static str),
    /// A state the code never reaches: a bug of ours, reported with a
    /// kernel warning.
    Bug(&'static CStr),
    /// Socket error.
    Sock(Error),
    /// Orderly end: the peer closed, or we were asked to shut down.
    Quiet,
}

impl From<proto::Error> for Close {
    fn from(e: proto::Error) -> Self {
        Close::Protocol(e)
    }
}

/// A connection from a host.
#[pin_data]
pub(crate) struct Queue {
    /// Index for messages (not the NVMe queue id, which is known after Connect).
    pub(crate) idx: u32,
    /// The host's address, for messages.
    pub(crate) peer: SockAddr,
    /// Our address on this connection (discovery on wildcard ports).
    pub(crate) local: SockAddr,
    /// The port it came in through, as a key for `shutdown_port` (never
    /// dereferenced: the queue does not keep the port, whose listening socket
    /// must close when the port is removed).
    pub(crate) port_key: usize,
    /// Whether that port listens on a wildcard address.
    pub(crate) port_is_any: bool,
    /// The port was removed: no command may start (`nport` is about to go).
    port_gone: AtomicBool,
    pub(crate) nport: PortHandle,
    pub(crate) inline_data_size: u32,
    closing: AtomicBool,
    /// The I/O work is running (it checks `rerun` before it stops).
    running: AtomicBool,
    /// Something happened that the I/O work may not have seen yet.
    rerun: AtomicBool,
    #[pin]
    pub(crate) sock: CallbackSocket<Queue>,
    #[pin]
    pub(crate) sq: NvmetSq,
    completions: Completions<Queue>,
    /// The Connect command's slot (tag `CONNECT_TAG`).
    connect_req: SetOnce<Requests<Queue>>,
    /// The command slots, allocated by `install_queue`.
    reqs: SetOnce<Requests<Queue>>,
    #[pin]
    io_work: Work<Queue, 1>,
    #[pin]
    release_work: Work<Queue, 2>,
    #[pin]
    inner: Mutex<Inner>,
}

impl_has_work! {
    impl HasWork<Self, 1> for Queue { self.io_work }
    impl HasWork<Self, 2> for Queue { self.release_work }
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

// SAFETY: `SQ_OFFSET` is the offset of `sq`, which `sq()` returns; queues
// live in an `Arc` (`start`) and `release` destroys the SQ before the last
// reference can go.
unsafe impl NvmetQueue for Queue {
    const SQ_OFFSET: usize = offset_of!(Queue, sq);

    fn sq(&self) -> &NvmetSq {
        &self.sq
    }

    fn completions(&self) -> &Completions<Self> {
        &self.completions
    }

    fn response_ready(this: ArcBorrow<'_, Self>) {
        Self::kick(this);
    }
}

impl WorkItem<1> for Queue {
    type Pointer = Arc<Queue>;

    fn run(this: Arc<Queue>) {
        // While `running` is set, kicks only set `rerun`: this loop looks
        // again before it stops, so a completion or packet that arrives while
        // it runs costs no extra run of the work (see `kick`).
        this.running.store(true, Ordering::SeqCst);
        let mut ops = 0;
        loop {
            let mut ready = Ready::new();
            if this.closing.load(Ordering::Acquire) {
                this.running.store(false, Ordering::SeqCst);
                return;
            }
            // This round sees every event kicked so far; only later ones
            // need another. (A swap: later loads cannot pass it.)
            this.rerun.swap(false, Ordering::SeqCst);
            let result = {
                let mut inner = this.inner.lock();
                this.io_round(&mut inner, &mut ready)
            };
            // Outside the lock: nvmet may call back into the transport
            // (`install_queue`). A command that completes at once kicks the
            // queue (setting `rerun`), so its response goes out in the next
            // round of this same run.
            for req in ready.tags().iter().filter_map(|&tag| this.request(tag)) {
                req.execute();
            }
            let idle = match result {
                Err(close) => {
                    this.running.store(false, Ordering::SeqCst);
                    return this.close(close);
                }
                Ok(Round::Idle) => true,
                Ok(Round::Polling) => {
                    this.running.store(false, Ordering::SeqCst);
                    return Self::queue_io_work(this.as_arc_borrow());
                }
                Ok(Round::Busy) => false,
            };
            if idle {
                this.running.store(false, Ordering::SeqCst);
                // Pairs with `kick`: either it saw `running` clear and queued
                // the work, or this sees its `rerun` and goes round again.
                if !this.rerun.load(Ordering::SeqCst) {
                    return;
                }
                this.running.store(true, Ordering::SeqCst);
            }
            ops += 1;
            if ops >= IO_BUDGET {
                // Budget used up with work left: run again after others had a turn.
                this.running.store(false, Ordering::SeqCst);
                return Self::queue_io_work(this.as_arc_borrow());
            }
        }
    }
}

impl WorkItem<2> for Queue {
    type Pointer = Arc<Queue>;

    fn run(this: Arc<Queue>) {
        this.release();
    }
}

impl Queue {
    /// Takes over an accepted connection on `port`.
    pub(crate) fn start(port: &Arc<Port>, sock: Socket) {
        let peer = sock.peer_addr().unwrap_or_else(|_| SockAddr::unspecified());
        let local = sock.local_addr().unwrap_or_else(|_| SockAddr::unspecified());
        let idx = NEXT_IDX.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::pin_init(
            try_pin_init!(Queue {
                idx,
                peer,
                local,
                port_key: port.key(),
                port_is_any: port.addr.is_any(),
                port_gone: AtomicBool::new(false),
                nport: port.nport.get().handle(),
                inline_data_size: port.inline_data_size,
                closing: AtomicBool::new(false),
                running: AtomicBool::new(false),
                rerun: AtomicBool::new(false),
                sock <- CallbackSocket::new(sock),
                sq <- NvmetSq::new(),
                completions: Completions::new(),
                connect_req: SetOnce::new(),
                reqs: SetOnce::new(),
                io_work <- new_work!("nvmet_tcp::Queue::io_work"),
                release_work <- new_work!("nvmet_tcp::Queue::release_work"),
                inner <- new_mutex!(Inner {
                    rx: proto::Receiver::new(proto::Role::Controller, recv::limits(port.inline_data_size)),
                    tx: Tx::new()?,
                    cmds: Slots::new(),
                    poll: PollDeadline::default(),
                    max_h2c: crate::command::MAX_DATA,
                    bvecs: Bvecs::new(BVECS)?,
                }),
            }? Error),
            GFP_KERNEL,
        );
        let queue = match queue {
            Ok(q) => q,
            Err(e) => {
                pr_err!("port {}: no memory for a queue for {}: {:?}\n", port.id, peer, e);
                return; // Dropping `sock` closes the connection.
            }
        };
        let setup = Requests::new(1, CONNECT_TAG, &queue)
            .and_then(|r| if queue.connect_req.populate(r) { Ok(()) } else { Err(EBUSY) })
            .and_then(|()| queue.sq.init());
        if let Err(e) = setup {
            pr_err!("queue {} ({}): failed to set up: {:?}\n", idx, peer, e);
            queue.sq.destroy();
            return;
        }
        if let Err(e) = registry::add(queue.clone()) {
            pr_err!("queue {} ({}): failed to register it: {:?}\n", idx, peer, e);
            queue.sq.destroy();
            return;
        }
        CallbackSocket::attach(&queue);
        // Data may have arrived before the callbacks were ours.
        Self::kick(queue.as_arc_borrow());
    }

    /// Makes the I/O work look at the queue: a socket event, or a completion.
    fn kick(this: ArcBorrow<'_, Self>) {
        // The event is visible before `rerun` is set; a running work either
        // sees `rerun` before it stops, or had already stopped (see `run`).
        this.rerun.store(true, Ordering::SeqCst);
        if !this.running.load(Ordering::SeqCst) {
            Self::queue_io_work(this);
        }
    }

    /// Queues the I/O work (a no-op if it is already queued) on the CPU that
    /// receives the connection's packets, as the C target does.
    fn queue_io_work(this: ArcBorrow<'_, Self>) {
        if this.closing.load(Ordering::Relaxed) {
            return;
        }
        let cpu = this.sock.sock().incoming_cpu();
        let _ = WQ.enqueue_on::<_, 1>(cpu, Arc::from(this));
    }

    /// Shuts the connection down; its I/O work then releases the queue.
    pub(crate) fn shutdown(&self) {
        self.sock.sock().shutdown();
    }

    /// Its port is being removed: start no more commands (capsules already
    /// received end the connection instead), and shut down.
    pub(crate) fn cut_off_port(&self) {
        self.port_gone.store(true, Ordering::Release);
        self.shutdown();
    }

    /// Whether its port was removed.
    pub(crate) fn port_gone(&self) -> bool {
        self.port_gone.load(Ordering::Acquire)
    }

    /// Whether the queue is going away.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The nvmet request of slot `tag`.
    pub(crate) fn request(&self, tag: u16) -> Option<&Request<Queue>> {
        if tag == CONNECT_TAG {
            return self.connect_req.as_ref().and_then(|r| r.get(0));
        }
        self.reqs.as_ref().and_then(|r| r.get(usize::from(tag)))
    }

    /// `install_queue`: the Connect command made this queue part of a
    /// controller with `sq.size()` entries; allocate twice as many command
    /// slots, as the C target does (a slot stays busy until its response is
    /// sent, which may be after the host already reused the SQ entry).
    pub(crate) fn install(this: ArcBorrow<'_, Self>) -> u16 {
        if this.sq.qid() == 0 {
            // A host that reconnects faster than its old controller goes
            // away is told to retry, as by the C target.
            if let Some(ctrl) = this.sq.ctrl() {
                if registry::closing_queues_of(ctrl) > TEARDOWN_BACKLOG {
                    return status::CONNECT_CTRL_BUSY;
                }
            }
        }
        // Tags are 16 bits, and the last one is the Connect command's: only an
        // admin queue can ask for more (nvmet bounds I/O queues by MQES).
        let Some(n) = this.sq.size().checked_mul(2).filter(|&n| n < CONNECT_TAG) else {
            return status::CONNECT_INVALID_PARAM | status::DNR;
        };
        if this.reqs.as_ref().is_some() {
            return status::INTERNAL;
        }
        match Requests::new(n, 0, &Arc::from(this)) {
            Ok(r) => {
                if this.reqs.populate(r) {
                    0
                } else {
                    status::INTERNAL
                }
            }
            Err(_) => status::INTERNAL,
        }
    }

    /// One round of I/O: hands completed commands to the send side, sends and
    /// receives what the socket takes and has. Commands ready to run are added
    /// to `ready`.
    fn io_round(&self, inner: &mut Inner, ready: &mut Ready) -> Result<Round, Close> {
        self.size_slots(inner)?;
        self.take_completions(inner)?;
        let sent = {
            let d = inner.rx.stage().digests();
            let Inner { tx, cmds, bvecs, .. } = &mut *inner;
            self.send(tx, cmds, bvecs, d)?
        };
        let mut received = false;
        // Whether receiving stopped for a limit rather than an empty socket.
        let mut limited = true;
        for _ in 0..RECV_BUDGET {
            // A Connect command is executed before anything else is read: it
            // gives the queue its command slots.
            let connecting = !inner.cmds.is_sized() && !ready.tags().is_empty();
            if connecting || ready.is_full() {
                break;
            }
            if !self.recv(inner, ready)? {
                limited = false;
                break;
            }
            received = true;
        }
        if sent || received {
            // With idle_poll_period_usecs, activity re-arms the polling deadline.
            inner.poll = PollDeadline::arm();
            // Sends that what was received queued (an ICResp, R2Ts) go out
            // in the next round; otherwise only an event brings more work,
            // and the round that would find nothing is saved.
            if limited || inner.tx.pending() {
                return Ok(Round::Busy);
            }
        } else if self.sock.sock().is_closing() {
            return Err(Close::Quiet);
        }
        // An idle queue is polled a while longer if asked to, as in C.
        Ok(if inner.poll.passed() { Round::Idle } else { Round::Polling })
    }

    /// Sizes the slot table once `install_queue` allocated the requests.
    fn size_slots(&self, inner: &mut Inner) -> Result<(), Close> {
        // Sized once; `reqs` never changes after that.
        if inner.cmds.is_sized() {
            return Ok(());
        }
        let Some(reqs) = self.reqs.as_ref() else { return Ok(()) };
        inner.tx.reserve(reqs.len())?;
        inner.cmds.size(reqs.len())
    }

    /// Moves the commands nvmet completed onto the send queue.
    fn take_completions(&self, inner: &mut Inner) -> Result<(), Close> {
        let mut res = Ok(());
        self.completions.take(|tag| {
            if res.is_ok() {
                res = inner.tx.push(tag, SendKind::Completion);
            }
        });
        res
    }

    /// Ends the connection: logs why, tells the peer where the spec asks for
    /// it, and schedules the release of everything.
    fn close(self: Arc<Self>, why: Close) {
        if self.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        let log = peer_log_allowed();
        let mut fatal = true;
        match why {
            Close::Protocol(err) => {
                if log {
                    pr_err!("queue {} ({}): {}, closing\n", self.idx, self.peer, err);
                }
                if !matches!(err, proto::Error::DataDigest { .. }) {
                    self.send_term_req(&err);
                }
            }
            Close::Reason(r) => {
                if log {
                    pr_err!("queue {} ({}): {}, closing\n", self.idx, self.peer, r)
                }
            }
            Close::Bug(what) => {
                pr_err!("queue {} ({}): internal error, closing\n", self.idx, self.peer);
                warn_bug(what);
            }
            Close::Sock(e) if e == ECONNRESET || e == EPIPE => {
                fatal = false;
                pr_debug!("queue {} ({}): connection reset by the host\n", self.idx, self.peer)
            }
            Close::Sock(e) => {
                if log {
                    pr_err!("queue {} ({}): socket error {:?}, closing\n", self.idx, self.peer, e)
                }
            }
            Close::Quiet => {
                fatal = false;
                pr_debug!("queue {} ({}): closed\n", self.idx, self.peer)
            }
        }
        self.sock.detach();
        self.shutdown();
        if fatal {
            // As the C target: an error on one queue fails the whole controller.
            self.sq.ctrl_fatal_error();
        }
        if let Some(wq) = RELEASE_WQ.get() {
            let _ = wq.enqueue::<_, 2>(self);
        }
    }

    /// Best effort: the connection ends either way.
    fn send_term_req(&self, err: &proto::Error) {
        let mut term = [0u8; proto::TERM_REQ_MAX_LEN];
        let inner = self.inner.lock();
        let len = proto::TermReq::c2h(err).encode(&mut term, inner.rx.offending_header());
        drop(inner);
        if let Some(pdu) = len.ok().and_then(|len| term.get(..len)) {
            let _ = self.sock.sock().send(pdu, false);
        }
    }

    /// Frees everything once the I/O work can no longer run: commands that
    /// never executed are given back to nvmet, nvmet's queues are destroyed
    /// (which waits for the commands in flight), data buffers are freed.
    fn release(self: Arc<Self>) {
        crate::glue::workqueue::flush(&self.io_work);
        {
            let inner = self.inner.lock();
            for (tag, slot) in inner.cmds.iter() {
                if slot.state == crate::command::SlotState::DataIn {
                    if let Some(req) = self.request(tag) {
                        req.uninit();
                    }
                }
            }
        }
        self.sq.destroy();
        // Nothing runs any more: drop what completions still hold, free buffers.
        self.completions.take(|_| {});
        let n = self.reqs.as_ref().map_or(0, |r| r.len());
        for tag in Iterator::chain(0..n, core::iter::once(CONNECT_TAG)) {
            if let Some(req) = self.request(tag) {
                req.free_data();
            }
        }
        registry::remove(&self);
    }
}
