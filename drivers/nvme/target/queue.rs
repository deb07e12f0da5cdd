// SPDX-License-Identifier: GPL-2.0

//! Queues: one per accepted connection, each driven by its own I/O work.
//!
//! The socket callbacks and nvmet's `queue_response` only queue [`Queue`]'s
//! I/O work. The work receives PDUs (framed and checked by the `proto` crate)
//! straight into the commands' data pages, starts and executes commands
//! through nvmet, and sends R2Ts, C2HData and responses: PDU headers in
//! fresh page fragments and data pages spliced together, several commands
//! per socket call. Any violation ends this connection alone, with a logged reason
//! naming queue and peer and, where the spec asks for one, a C2HTermReq.
//!
//! Locking: [`Inner`] (all receive/send state) is only locked by the I/O
//! work and, after the work is stopped, by the release work. Commands are
//! executed after the lock is dropped, because nvmet may call back into the
//! transport (`install_queue`) from `execute`.

use crate::{
    glue::{
        nvmet::{status, Completions, NvmetQueue, NvmetSq, PortHandle, Request, Requests},
        sock::{peer_log_allowed, Bvecs, CallbackSocket, Frag, FragCache, Io, SockAddr, SockEvent, Socket, SocketEvents},
        target_params::{self, PollDeadline},
    },
    port::Port,
    proto::{self, Digests, Role, Stage},
    OPS, RELEASE_WQ, WQ,
};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{
    alloc::KVec,
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex, SetOnce},
    time::{delay::fsleep, Delta},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

/// Largest H2CData PDU we accept (`maxh2cdata` in the ICResp), and largest
/// data transfer of one command, as the C target.
pub(crate) const MAX_DATA: u32 = 4 * 1024 * 1024;
/// [`MAX_DATA`] as the controller's MDTS (in 4 KiB pages, log2), so that a
/// host splits larger I/O rather than sending commands we refuse.
pub(crate) const MDTS: u8 = {
    let pages = MAX_DATA / 4096;
    assert!(pages.is_power_of_two());
    // CAST: at most 31.
    pages.trailing_zeros() as u8
};
/// Segments one socket call moves: 1 MiB of a command's data pages, so that
/// a data PDU usually takes one receive call (each may make TCP send an
/// ACK), or the headers and pages of several commands' sends.
const BVECS: u32 = 256;
/// Operations per run of the I/O work before it yields, as the C target.
const IO_BUDGET: u32 = 64;
/// Receive steps (a header, or a piece of data) per round of the I/O work.
const RECV_BUDGET: usize = 16;
/// Commands started per round: received in one go, executed together once the
/// lock is dropped, their responses then sent back to back (as the C target,
/// which receives up to 8 PDUs before it sends).
const EXEC_BUDGET: usize = 8;
/// The transfer tag of the R2T for a Connect command, before the queue has
/// its commands.
const CONNECT_TTAG: u16 = 0xffff;

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

/// Where a command slot is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
    /// Not in use.
    Free,
    /// Started; its in-capsule or H2C data is being received, or an R2T is
    /// queued or sent for it.
    DataIn,
    /// Executing in nvmet, or its completion is queued for sending.
    Executing,
    /// nvmet refused it in `nvmet_req_init`; its response is on its way.
    Failed,
}

/// The transport's state of one command slot (its nvmet side is a [`Request`]).
#[derive(Clone, Copy)]
struct Slot {
    state: SlotState,
    /// Data bytes received so far.
    rbytes: u32,
    /// Whether an R2T went out for it (H2CData may come).
    r2t_sent: bool,
    /// The command's identifier, for R2T and C2HData.
    cid: u16,
}

impl Slot {
    const FREE: Slot = Slot { state: SlotState::Free, rbytes: 0, r2t_sent: false, cid: 0 };
}

/// What the receive side is doing.
#[derive(Clone, Copy)]
enum Rx {
    /// Assembling a PDU header in `Inner::hdr`.
    Header,
    /// Receiving `len - done` more data bytes for slot `tag` at `offset`.
    Data { tag: u16, offset: u32, len: u32, done: u32, crc: Option<u32> },
    /// Receiving the data digest of the `len` bytes just received into `tag`
    /// (`None`: of data that was dropped).
    DataDigest { tag: Option<u16>, len: u32, expected: u32, have: usize },
    /// Reading and dropping `left` more bytes (the in-capsule data of a
    /// command that was refused), with their running digest if the queue
    /// has data digests: a wrong digest ends the connection all the same.
    Discard { left: u32, crc: Option<proto::Crc32c> },
}

/// Room for bytes read past a PDU header: a receive asks for at least a
/// whole command capsule header (see `Queue::header_ask`).
const HEADER_READ_AHEAD: usize = proto::CAPSULE_CMD_HLEN + proto::DIGEST_LEN;

/// Bytes received past the end of a PDU header (at most
/// [`HEADER_READ_AHEAD`]): the start of its data or of the next PDU.
#[derive(Clone, Copy)]
struct Ahead {
    buf: [u8; HEADER_READ_AHEAD],
    pos: usize,
    len: usize,
}

impl Ahead {
    const EMPTY: Ahead = Ahead { buf: [0; HEADER_READ_AHEAD], pos: 0, len: 0 };

    fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..self.len).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }

    /// Keeps `bytes` (at most the buffer's size) to be read first; what was
    /// pending must have been consumed.
    fn keep(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len());
        if let (Some(dst), Some(src)) = (self.buf.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos = 0;
        self.len = n;
    }

    /// Receives into `dst`: bytes read ahead first, else from the socket.
    fn recv(&mut self, sock: &Socket, dst: &mut [u8]) -> Result<Io> {
        let pending = self.pending();
        if pending.is_empty() {
            return sock.recv(dst);
        }
        let n = pending.len().min(dst.len());
        if let (Some(d), Some(p)) = (dst.get_mut(..n), pending.get(..n)) {
            d.copy_from_slice(p);
        }
        self.consume(n);
        Ok(Io::Done(n))
    }
}

/// Sends taken off the FIFO at once: their PDUs go out together, in one
/// socket call as far as the segment table allows.
const TX_BATCH: usize = 16;

/// Where a send's tail (data digest, response) starts in its [`Frag`].
const TAIL: usize = Frag::SIZE / 2;

/// One command's outgoing PDUs, in wire order: a header (R2T, C2HData or
/// response) in `pdus[..head]`, for reads `data` bytes of the command's
/// pages, then `pdus[TAIL..TAIL + tail]` (the data digest, the response).
/// Everything is spliced into the socket; `pdus` is fresh memory, never
/// rewritten while TCP may still send it.
struct TxSend {
    tag: u16,
    kind: SendKind,
    pdus: Frag,
    head: usize,
    data: u32,
    tail: usize,
    /// Bytes of it on the wire so far.
    done: usize,
}

impl TxSend {
    fn len(&self) -> usize {
        self.head + self.data as usize + self.tail
    }
}

/// What a queued send is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SendKind {
    /// An R2T for the rest of the command's data.
    R2t,
    /// The command completed: its data (reads) and response.
    Completion,
}

/// State owned by the I/O work.
struct Inner {
    /// Before or after ICReq/ICResp, with the negotiated digests.
    stage: Stage,
    rx: Rx,
    /// The PDU header being received.
    hdr: [u8; proto::MAX_HEADER_LEN],
    hdr_have: usize,
    /// The layout of the PDU whose header is being received, once its
    /// common header is checked (until then only that is wanted).
    frame: Option<proto::Frame>,
    /// Bytes read past the end of a PDU header, consumed before the socket.
    ahead: Ahead,
    /// The ICResp being sent (copied: it goes before any command), and how
    /// much of it went out.
    tx_hdr: [u8; proto::MAX_HEADER_LEN],
    tx_len: usize,
    tx_sent: usize,
    /// Sends on their way, oldest first (at most `TX_BATCH`).
    txq: KVec<TxSend>,
    /// Memory for the PDU headers of `txq`.
    frags: FragCache,
    /// The slot of the Connect command, before `install_queue`.
    connect: Slot,
    /// One per command slot once the queue is installed (index = tag).
    slots: KVec<Slot>,
    /// Free tags.
    free: KVec<u16>,
    /// Sends waiting their turn (FIFO: `sendq[send_head..]`).
    sendq: KVec<(u16, SendKind)>,
    send_head: usize,
    /// Until when an idle queue keeps being polled (`idle_poll_period_usecs`).
    poll: PollDeadline,
    /// The `maxh2cdata` this connection's ICResp offered.
    max_h2c: u32,
    /// Segment table for data moved straight to and from command pages.
    bvecs: Bvecs,
}

impl Inner {
    /// How much of the PDU header to receive: the common header until it is
    /// checked, then the whole header its frame announces.
    fn hdr_want(&self) -> usize {
        self.frame.map_or(proto::COMMON_HEADER_LEN, |f| f.header_len)
    }

    /// Whether anything waits to be sent: the ICResp, sends on their way,
    /// or queued sends.
    fn send_pending(&self) -> bool {
        self.tx_sent < self.tx_len || !self.txq.is_empty() || self.send_head < self.sendq.len()
    }
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

/// Commands whose data is in, executed once the round has dropped the lock.
struct Ready {
    tags: [u16; EXEC_BUDGET],
    len: usize,
}

impl Ready {
    const fn new() -> Self {
        Ready { tags: [0; EXEC_BUDGET], len: 0 }
    }

    fn push(&mut self, tag: u16) -> Result<(), Close> {
        // The receive loop stops while there is room for one more.
        let slot = self.tags.get_mut(self.len).ok_or(Close::Reason("too many commands ready in one round"))?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.len >= EXEC_BUDGET
    }

    fn tags(&self) -> &[u16] {
        self.tags.get(..self.len).unwrap_or(&[])
    }
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

impl From<proto::Error> for Close {
    fn from(e: proto::Error) -> Self {
        Close::Protocol(e)
    }
}

/// A connection from a host.
#[pin_data]
pub(crate) struct Queue {
    /// Index for messages (not the NVMe queue id, which is known after Connect).
    idx: u32,
    /// The host's address, for messages.
    peer: SockAddr,
    /// Our address on this connection (discovery on wildcard ports).
    local: SockAddr,
    /// The port it came in through, as a key for `shutdown_port` (never
    /// dereferenced: the queue does not keep the port, whose listening socket
    /// must close when the port is removed).
    port_key: usize,
    /// Whether that port listens on a wildcard address.
    port_is_any: bool,
    nport: PortHandle,
    inline_data_size: u32,
    closing: AtomicBool,
    /// The I/O work is running (it checks `rerun` before it stops).
    running: AtomicBool,
    /// Something happened that the I/O work may not have seen yet.
    rerun: AtomicBool,
    #[pin]
    sock: CallbackSocket<Queue>,
    #[pin]
    sq: NvmetSq,
    completions: Completions,
    /// The Connect command's slot (tag 0xffff on the wire).
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

impl NvmetQueue for Queue {
    fn completions(&self) -> &Completions {
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
                    stage: Stage::Handshake,
                    rx: Rx::Header,
                    hdr: [0; proto::MAX_HEADER_LEN],
                    hdr_have: 0,
                    frame: None,
                    ahead: Ahead::EMPTY,
                    tx_hdr: [0; proto::MAX_HEADER_LEN],
                    tx_len: 0,
                    tx_sent: 0,
                    txq: KVec::with_capacity(TX_BATCH, GFP_KERNEL)?,
                    frags: FragCache::new()?,
                    connect: Slot::FREE,
                    slots: KVec::new(),
                    free: KVec::new(),
                    sendq: KVec::new(),
                    send_head: 0,
                    poll: PollDeadline::default(),
                    max_h2c: MAX_DATA,
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
        let setup = Requests::new(1, CONNECT_TTAG, &queue)
            .map_err(|_| ENOMEM)
            .map(|r| queue.connect_req.populate(r))
            .and_then(|_| queue.sq.init());
        if let Err(e) = setup {
            pr_err!("queue {} ({}): failed to set up: {:?}\n", idx, peer, e);
            queue.sq.destroy();
            return;
        }
        if QUEUES.lock().push(queue.clone(), GFP_KERNEL).is_err() {
            pr_err!("queue {} ({}): no memory to register it\n", idx, peer);
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
    fn shutdown(&self) {
        self.sock.sock().shutdown();
    }

    /// The nvmet request of slot `tag`.
    fn request(&self, tag: u16) -> Option<&Request<Queue>> {
        if tag == CONNECT_TTAG {
            return self.connect_req.as_ref().and_then(|r| r.get(0));
        }
        self.reqs.as_ref().and_then(|r| r.get(usize::from(tag)))
    }

    /// `install_queue`: the Connect command made this queue part of a
    /// controller with `sq.size()` entries; allocate twice as many command
    /// slots, as the C target does (a slot stays busy until its response is
    /// sent, which may be after the host already reused the SQ entry).
    fn install(self: &Arc<Self>) -> u16 {
        let n = usize::from(self.sq.size()) * 2;
        if self.reqs.as_ref().is_some() {
            return status::INTERNAL;
        }
        match Requests::new(n, 0, self) {
            Ok(r) => {
                self.reqs.populate(r);
                0
            }
            Err(_) => status::INTERNAL,
        }
    }

    /// One round of I/O: hands completed commands to the send side, sends and
    /// receives what the socket takes and has. Commands ready to run are added
    /// to `ready`.
    fn io_round(&self, inner: &mut Inner, ready: &mut Ready) -> Result<Round, Close> {
        self.grow_slots(inner)?;
        self.take_completions(inner)?;
        let sent = self.send(inner)?;
        let mut received = false;
        // Whether receiving stopped for a limit rather than an empty socket.
        let mut limited = true;
        for _ in 0..RECV_BUDGET {
            // A Connect command is executed before anything else is read: it
            // gives the queue its command slots.
            let connecting = inner.slots.is_empty() && !ready.tags().is_empty();
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
            if limited || inner.send_pending() {
                return Ok(Round::Busy);
            }
        } else if self.sock.sock().is_closing() {
            return Err(Close::Quiet);
        }
        // An idle queue is polled a while longer if asked to, as in C.
        Ok(if inner.poll.passed() { Round::Idle } else { Round::Polling })
    }

    /// Sizes the slot table once `install_queue` allocated the requests.
    fn grow_slots(&self, inner: &mut Inner) -> Result<(), Close> {
        // Sized once; `reqs` never changes after that.
        if !inner.slots.is_empty() {
            return Ok(());
        }
        let Some(reqs) = self.reqs.as_ref() else { return Ok(()) };
        let n = reqs.len();
        let nomem = |_| Close::Reason("no memory for the command slots");
        inner.slots.reserve(n, GFP_KERNEL).map_err(nomem)?;
        inner.free.reserve(n, GFP_KERNEL).map_err(nomem)?;
        inner.sendq.reserve(2 * n + 2, GFP_KERNEL).map_err(nomem)?;
        for tag in (0..n).rev() {
            inner.slots.push(Slot::FREE, GFP_KERNEL).map_err(nomem)?;
            // CAST: `n` is at most 2 * 1024.
            inner.free.push(tag as u16, GFP_KERNEL).map_err(nomem)?;
        }
        Ok(())
    }

    fn slot<'a>(&self, inner: &'a mut Inner, tag: u16) -> Option<&'a mut Slot> {
        if tag == CONNECT_TTAG {
            Some(&mut inner.connect)
        } else {
            inner.slots.get_mut(usize::from(tag))
        }
    }

    /// Moves the commands nvmet completed onto the send queue.
    fn take_completions(&self, inner: &mut Inner) -> Result<(), Close> {
        let mut res = Ok(());
        self.completions.take::<Queue>(|tag| {
            if res.is_ok() {
                res = push_send(inner, tag, SendKind::Completion);
            }
        });
        res
    }

    // ---- receive side ----

    /// Receives what the socket has, and handles complete PDUs; true if
    /// progress was made.
    fn recv(&self, inner: &mut Inner, ready: &mut Ready) -> Result<bool, Close> {
        // A receive call that finds nothing costs as much as one that works.
        if inner.ahead.pending().is_empty() && !self.sock.sock().readable() {
            return Ok(false);
        }
        match inner.rx {
            Rx::Header => self.recv_header(inner, ready),
            Rx::Data { tag, offset, len, done, crc } => {
                let req = self.request(tag).ok_or(Close::Reason("data for a missing command"))?;
                let at = offset + done;
                let ahead = inner.ahead.pending();
                let n = if !ahead.is_empty() {
                    // CAST: `ahead` is at most HEADER_READ_AHEAD bytes.
                    let n = (ahead.len() as u32).min(len - done);
                    req.copy_in(at, ahead.get(..n as usize).unwrap_or(&[]));
                    inner.ahead.consume(n as usize);
                    n
                } else {
                    match req.recv_data(self.sock.sock(), &mut inner.bvecs, at, len - done).map_err(Close::Sock)? {
                        Io::Done(n) => n as u32,
                        Io::WouldBlock => return Ok(false),
                        Io::Eof => return Err(Close::Reason("connection closed in the middle of a PDU")),
                    }
                };
                let n = n.min(len - done);
                let crc = crc.map(|c| req.data_crc(c, at, n));
                let done = done + n;
                if done < len {
                    inner.rx = Rx::Data { tag, offset, len, done, crc };
                } else if let Some(c) = crc {
                    inner.rx = Rx::DataDigest { tag: Some(tag), len, expected: !c, have: 0 };
                    inner.hdr_have = 0;
                } else {
                    self.data_done(inner, tag, len, ready)?;
                }
                Ok(true)
            }
            Rx::DataDigest { tag, len, expected, have } => {
                let buf = inner.hdr.get_mut(have..proto::DIGEST_LEN).unwrap_or(&mut []);
                let n = match inner.ahead.recv(self.sock.sock(), buf).map_err(Close::Sock)? {
                    Io::Done(n) => n,
                    Io::WouldBlock => return Ok(false),
                    Io::Eof => return Err(Close::Reason("connection closed in the middle of a PDU")),
                };
                let have = have + n;
                if have < proto::DIGEST_LEN {
                    inner.rx = Rx::DataDigest { tag, len, expected, have };
                    return Ok(true);
                }
                let mut got = [0u8; proto::DIGEST_LEN];
                got.copy_from_slice(inner.hdr.get(..proto::DIGEST_LEN).unwrap_or(&[0; 4]));
                let received = u32::from_le_bytes(got);
                if received != expected {
                    return Err(Close::Protocol(proto::Error::DataDigest { expected, received }));
                }
                match tag {
                    Some(tag) => self.data_done(inner, tag, len, ready)?,
                    None => inner.rx = self.next_header(inner),
                }
                Ok(true)
            }
            Rx::Discard { left, crc } => {
                let mut sink = [0u8; 256];
                let want = (left as usize).min(sink.len());
                let got = sink.get_mut(..want).unwrap_or(&mut []);
                let n = match inner.ahead.recv(self.sock.sock(), got).map_err(Close::Sock)? {
                    Io::Done(n) => n.min(want),
                    Io::WouldBlock => return Ok(false),
                    Io::Eof => return Err(Close::Reason("connection closed in the middle of a PDU")),
                };
                let crc = crc.map(|mut c| {
                    c.update(sink.get(..n).unwrap_or(&[]));
                    c
                });
                // CAST: `n` is at most 256.
                let left = left.saturating_sub(n as u32);
                inner.rx = match (left, crc) {
                    (0, Some(c)) => {
                        inner.hdr_have = 0;
                        Rx::DataDigest { tag: None, len: 0, expected: c.finish(), have: 0 }
                    }
                    (0, None) => self.next_header(inner),
                    _ => Rx::Discard { left, crc },
                };
                Ok(true)
            }
        }
    }

    /// Drops the `len` bytes of in-capsule data of a refused command, checking
    /// their digest if the PDU has one.
    fn discard(&self, len: u32, frame: &proto::Frame) -> Rx {
        Rx::Discard { left: len, crc: frame.data_digest.then(proto::Crc32c::new) }
    }

    /// Prepares for the next PDU header.
    fn next_header(&self, inner: &mut Inner) -> Rx {
        inner.hdr_have = 0;
        inner.frame = None;
        Rx::Header
    }

    fn recv_header(&self, inner: &mut Inner, ready: &mut Ready) -> Result<bool, Close> {
        let mut progress = false;
        // The common header, then (once it is checked) the rest of the header.
        // A receive call asks for at least a whole capsule header, so one call
        // usually reads it even when it started in bytes read ahead: what
        // arrives past this PDU's header is kept in `ahead` for what follows.
        loop {
            let (have, want) = (inner.hdr_have, inner.hdr_want());
            let ask = want.max(Self::header_ask(inner));
            let Some(space) = inner.hdr.get_mut(have..ask) else {
                return Err(Close::Reason("receive state out of bounds"));
            };
            match inner.ahead.recv(self.sock.sock(), space).map_err(Close::Sock)? {
                Io::Done(n) => inner.hdr_have += n,
                Io::WouldBlock => return Ok(progress),
                Io::Eof if have == 0 => return Err(Close::Quiet),
                Io::Eof => return Err(Close::Reason("connection closed in the middle of a PDU")),
            }
            progress = true;
            if inner.hdr_have < inner.hdr_want() {
                continue;
            }
            if inner.frame.is_some() || !self.check_common_header(inner)? || inner.hdr_have >= inner.hdr_want() {
                break;
            }
        }
        let want = inner.hdr_want();
        if inner.hdr_have > want {
            // Only a receive from the socket reads past the header, and
            // `ahead` is drained before the socket is read.
            if !inner.ahead.pending().is_empty() {
                return Err(Close::Reason("receive state out of order"));
            }
            let extra = inner.hdr.get(want..inner.hdr_have).unwrap_or(&[]);
            inner.ahead.keep(extra);
            inner.hdr_have = want;
        }
        self.handle_header(inner, ready)
    }

    /// Checks the common header just received and sets how much header is
    /// left to read; false if the PDU is the common header alone.
    fn check_common_header(&self, inner: &mut Inner) -> Result<bool, Close> {
        // Checked for this stage before reading more, so a bad header never
        // makes us wait for the bytes it announced.
        let ch = proto::CommonHeader::decode(&inner.hdr)?;
        let frame = ch.frame(Role::Controller, inner.stage, MAX_DATA)?;
        if frame.pdu_type == proto::PduType::CapsuleCmd && frame.data_len > self.inline_data_size {
            // More in-capsule data than the port offers: as the C target, a
            // connection error (and we say so with a C2HTermReq).
            return Err(Close::Protocol(proto::Error::DataLimit {
                length: frame.data_len,
                limit: self.inline_data_size,
            }));
        }
        inner.frame = Some(frame);
        Ok(frame.header_len > proto::COMMON_HEADER_LEN)
    }

    /// A whole PDU header is in: handle it.
    fn handle_header(&self, inner: &mut Inner, ready: &mut Ready) -> Result<bool, Close> {
        // The common header was framed (checked) on its own, to know how
        // much header to receive; the rest is decoded against that frame.
        let frame = inner.frame.ok_or(Close::Reason("receive state out of order"))?;
        let header = inner.hdr.get(..inner.hdr_have).unwrap_or(&[]);
        let pdu = proto::Pdu::decode_framed(header, &frame)?;
        match pdu {
            proto::Pdu::IcReq(icreq) => self.handle_icreq(inner, &icreq)?,
            proto::Pdu::CapsuleCmd(cmd) => self.handle_capsule(inner, &cmd, &frame, ready)?,
            proto::Pdu::Data(data) => self.handle_h2c_data(inner, &data, &frame)?,
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
                return Err(Close::Quiet);
            }
            // `frame` admits nothing else to a controller.
            _ => return Err(Close::Reason("unexpected PDU")),
        }
        Ok(true)
    }

    fn handle_icreq(&self, inner: &mut Inner, icreq: &proto::IcReq) -> Result<(), Close> {
        icreq.validate_target()?;
        let resp = proto::IcResp {
            pfv: proto::PFV_1_0,
            cpda: 0,
            hdgst: icreq.hdgst,
            ddgst: icreq.ddgst,
            maxdata: target_params::max_h2c_data(),
        };
        inner.max_h2c = resp.maxdata;
        inner.tx_len = resp.encode(&mut inner.tx_hdr)?;
        inner.tx_sent = 0;
        inner.stage = Stage::Established(icreq.digests());
        inner.rx = self.next_header(inner);
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

    /// How much a header receive asks for at least: a command capsule's
    /// header with this queue's digest, so that one receive call usually
    /// reads it, and in-capsule data after it goes straight to the command's
    /// pages. (Shorter headers, of H2CData, read a little of their data ahead.)
    fn header_ask(inner: &Inner) -> usize {
        let digest = if Self::digests(inner).header { proto::DIGEST_LEN } else { 0 };
        proto::CAPSULE_CMD_HLEN + digest
    }

    fn digests(inner: &Inner) -> Digests {
        match inner.stage {
            Stage::Established(d) => d,
            Stage::Handshake => Digests::NONE,
        }
    }

    fn handle_capsule(
        &self,
        inner: &mut Inner,
        cmd: &proto::CapsuleCmd,
        frame: &proto::Frame,
        ready: &mut Ready,
    ) -> Result<(), Close> {
        // A free slot: the Connect slot until the queue is installed (and
        // its slots sized, at the start of the round).
        let tag = if inner.slots.is_empty() {
            if inner.connect.state != SlotState::Free {
                return Err(Close::Reason("a second command before the queue is connected"));
            }
            CONNECT_TTAG
        } else {
            inner.free.pop().ok_or(Close::Reason("more commands in flight than the queue has slots"))?
        };
        let req = self.request(tag).ok_or(Close::Reason("no command slot"))?;
        let inline = frame.data_len;
        if let Some(s) = self.slot(inner, tag) {
            *s = Slot { state: SlotState::DataIn, rbytes: 0, r2t_sent: false, cid: cmd.command_id() };
        }
        if !req.init(&cmd.sqe, &self.sq, self.nport.get(), &OPS) {
            // nvmet completed it with an error (its response is queued); drop
            // any in-capsule data.
            if let Some(s) = self.slot(inner, tag) {
                s.state = SlotState::Failed;
            }
            inner.rx = if inline > 0 { self.discard(inline, frame) } else { self.next_header(inner) };
            return Ok(());
        }
        let sgl = cmd.sgl();
        let len = sgl.length;
        let refuse = |inner: &mut Inner, status: u16| {
            if let Some(s) = self.slot(inner, tag) {
                s.state = SlotState::Executing;
            }
            req.complete(status);
        };
        if len == 0 {
            if inline > 0 {
                return Err(Close::Protocol(proto::Error::InvalidField { field: proto::Field::Plen, value: inline }));
            }
            if let Some(s) = self.slot(inner, tag) {
                s.state = SlotState::Executing;
            }
            inner.rx = self.next_header(inner);
            ready.push(tag)?;
            return Ok(());
        }
        let in_capsule = sgl.type_ == proto::SGL_DATA_BLOCK_OFFSET;
        if in_capsule && inline != len {
            // The capsule must carry exactly the data its SGL describes.
            return Err(Close::Protocol(proto::Error::InvalidField { field: proto::Field::Plen, value: inline }));
        }
        if !in_capsule && inline > 0 {
            return Err(Close::Protocol(proto::Error::InvalidField { field: proto::Field::Plen, value: inline }));
        }
        inner.rx = if inline > 0 { self.discard(inline, frame) } else { self.next_header(inner) };
        let status = if len > MAX_DATA {
            status::SGL_INVALID_DATA | status::DNR
        } else if in_capsule && !req.is_write() {
            status::INVALID_FIELD | status::DNR
        } else if in_capsule && len > self.inline_data_size {
            status::SGL_INVALID_OFFSET | status::DNR
        } else if req.alloc_data(len).is_err() {
            status::INTERNAL
        } else {
            0
        };
        if status != 0 {
            // Refused before any data moved: in-capsule data is dropped.
            refuse(inner, status);
            return Ok(());
        }
        if in_capsule {
            inner.rx = Rx::Data { tag, offset: 0, len, done: 0, crc: frame.data_digest.then_some(!0) };
        } else if req.is_write() {
            push_send(inner, tag, SendKind::R2t)?;
        } else {
            if let Some(s) = self.slot(inner, tag) {
                s.state = SlotState::Executing;
            }
            ready.push(tag)?;
        }
        Ok(())
    }

    fn handle_h2c_data(&self, inner: &mut Inner, data: &proto::Data, frame: &proto::Frame) -> Result<(), Close> {
        let tag = data.ttag;
        let out_of_range = proto::Error::DataOutOfRange { offset: data.datao, length: data.datal };
        let transfer = self.request(tag).map(|r| r.transfer_len()).unwrap_or(0);
        let slot = *self
            .slot(inner, tag)
            .ok_or(proto::Error::InvalidField { field: proto::Field::Ttag, value: tag.into() })?;
        if slot.state != SlotState::DataIn || !slot.r2t_sent {
            return Err(Close::Protocol(proto::Error::InvalidField { field: proto::Field::Ttag, value: tag.into() }));
        }
        if data.datao != slot.rbytes {
            return Err(Close::Protocol(out_of_range));
        }
        if data.datal > inner.max_h2c {
            return Err(Close::Protocol(proto::Error::DataLimit { length: data.datal, limit: inner.max_h2c }));
        }
        let end = data.datao.checked_add(data.datal).ok_or(Close::Protocol(out_of_range))?;
        if end as usize > transfer {
            return Err(Close::Protocol(out_of_range));
        }
        inner.rx = Rx::Data {
            tag,
            offset: data.datao,
            len: data.datal,
            done: 0,
            crc: frame.data_digest.then_some(!0),
        };
        Ok(())
    }

    /// A data PDU (or in-capsule data) of `len` bytes for `tag` is complete.
    fn data_done(&self, inner: &mut Inner, tag: u16, len: u32, ready: &mut Ready) -> Result<(), Close> {
        let transfer = self.request(tag).map(|r| r.transfer_len()).unwrap_or(0);
        inner.rx = self.next_header(inner);
        let slot = self.slot(inner, tag).ok_or(Close::Reason("data for a missing command"))?;
        slot.rbytes = slot.rbytes.saturating_add(len);
        if slot.rbytes as usize >= transfer {
            slot.state = SlotState::Executing;
            ready.push(tag)?;
        }
        Ok(())
    }

    // ---- send side ----

    /// Sends what is pending; true if progress was made.
    fn send(&self, inner: &mut Inner) -> Result<bool, Close> {
        let mut progress = false;
        // The ICResp first: nothing else is queued before it.
        while inner.tx_sent < inner.tx_len {
            let pending = inner.tx_hdr.get(inner.tx_sent..inner.tx_len).unwrap_or(&[]);
            match self.sock.sock().send(pending, false).map_err(Close::Sock)? {
                Io::Done(n) => {
                    inner.tx_sent += n;
                    progress = true;
                }
                Io::WouldBlock | Io::Eof => return Ok(progress),
            }
        }
        loop {
            self.fill_txq(inner)?;
            if inner.txq.is_empty() {
                return Ok(progress);
            }
            let more = self.gather(inner)?;
            match inner.bvecs.send(self.sock.sock(), more).map_err(Close::Sock)? {
                Io::Done(n) => {
                    progress = true;
                    self.sent(inner, n);
                }
                Io::WouldBlock | Io::Eof => return Ok(progress),
            }
        }
    }

    /// Takes queued sends off the FIFO, up to `TX_BATCH` on their way.
    fn fill_txq(&self, inner: &mut Inner) -> Result<(), Close> {
        while inner.txq.len() < TX_BATCH {
            let Some(&(tag, kind)) = inner.sendq.get(inner.send_head) else {
                inner.sendq.clear();
                inner.send_head = 0;
                return Ok(());
            };
            inner.send_head += 1;
            let tx = self.prepare_send(inner, tag, kind)?;
            // Cannot allocate: `txq` has room for `TX_BATCH` sends.
            inner.txq.push(tx, GFP_ATOMIC).map_err(|_| Close::Reason("no memory for the send queue"))?;
        }
        compact_sendq(inner);
        Ok(())
    }

    /// Fills the segment table with what is left of the sends on their way,
    /// in order, as far as it holds; returns whether more follows at once
    /// (the table is full, or more sends are queued).
    fn gather(&self, inner: &mut Inner) -> Result<bool, Close> {
        let queued = inner.send_head < inner.sendq.len();
        let Inner { bvecs, txq, .. } = inner;
        bvecs.clear();
        for tx in txq.iter() {
            let mut at = tx.done;
            if at < tx.head {
                if !bvecs.add_frag(&tx.pdus, at..tx.head) {
                    return Ok(true);
                }
                at = tx.head;
            }
            let data_end = tx.head + tx.data as usize;
            if at < data_end {
                let req = self.request(tx.tag).ok_or(Close::Reason("sending a missing command"))?;
                // CAST: `at - tx.head` is below `tx.data`, a `u32`.
                let offset = (at - tx.head) as u32;
                let want = tx.data - offset;
                if req.add_data(bvecs, offset, want) < want {
                    if bvecs.is_full() {
                        return Ok(true);
                    }
                    return Err(Close::Reason("a command's data is shorter than its transfer"));
                }
                at = data_end;
            }
            let tail = at - data_end;
            if tail < tx.tail && !bvecs.add_frag(&tx.pdus, TAIL + tail..TAIL + tx.tail) {
                return Ok(true);
            }
        }
        Ok(queued)
    }

    /// `n` bytes of the sends on their way went out: finishes those all out.
    fn sent(&self, inner: &mut Inner, mut n: usize) {
        while let Some(tx) = inner.txq.first_mut() {
            let left = tx.len() - tx.done;
            if n < left {
                tx.done += n;
                return;
            }
            n -= left;
            if let Ok(tx) = inner.txq.remove(0) {
                self.finish_send(inner, tx.tag, tx.kind);
            }
        }
    }

    /// Lays out the PDUs of a queued send.
    fn prepare_send(&self, inner: &mut Inner, tag: u16, kind: SendKind) -> Result<TxSend, Close> {
        let req = self.request(tag).ok_or(Close::Reason("sending a missing command"))?;
        let d = Self::digests(inner);
        let mut pdus = inner.frags.alloc().map_err(|_| Close::Reason("no memory for a PDU header"))?;
        let (hbuf, tbuf) = pdus.bytes_mut().split_at_mut(TAIL);
        let (mut data, mut tail) = (0, 0);
        let head = match kind {
            SendKind::R2t => {
                let slot = self.slot(inner, tag).ok_or(Close::Reason("sending a missing command"))?;
                slot.r2t_sent = true;
                let r2t = proto::R2t {
                    cccid: slot.cid,
                    ttag: tag,
                    r2to: slot.rbytes,
                    r2tl: (req.transfer_len() as u32).saturating_sub(slot.rbytes),
                };
                r2t.encode(hbuf, d)?
            }
            SendKind::Completion => {
                let (failed, cid) =
                    self.slot(inner, tag).map(|s| (s.state == SlotState::Failed, s.cid)).unwrap_or((true, 0));
                let resp = proto::CapsuleResp { cqe: req.cqe() };
                if !failed && !req.is_write() && req.transfer_len() > 0 && req.status() == 0 {
                    // Read data: C2HData, then its digest, then the response
                    // unless C2HData says SUCCESS.
                    // CAST: at most MAX_DATA.
                    data = req.transfer_len() as u32;
                    let success = self.sq.sqhd_disabled();
                    let c2h = proto::Data {
                        from_host: false,
                        cccid: cid,
                        ttag: 0,
                        datao: 0,
                        datal: data,
                        last: true,
                        success,
                    };
                    let head = c2h.encode(hbuf, d)?;
                    if d.data {
                        let crc = (!req.data_crc(!0, 0, data)).to_le_bytes();
                        if let Some(t) = tbuf.get_mut(..proto::DIGEST_LEN) {
                            t.copy_from_slice(&crc);
                            tail = proto::DIGEST_LEN;
                        }
                    }
                    if !success {
                        tail += resp.encode(tbuf.get_mut(tail..).unwrap_or(&mut []), d)?;
                    }
                    head
                } else {
                    resp.encode(hbuf, d)?
                }
            }
        };
        Ok(TxSend { tag, kind, pdus, head, data, tail, done: 0 })
    }

    /// The last PDU of a send went out.
    fn finish_send(&self, inner: &mut Inner, tag: u16, kind: SendKind) {
        if kind == SendKind::R2t {
            return; // The command waits for its H2CData.
        }
        if let Some(req) = self.request(tag) {
            req.free_data();
        }
        if let Some(s) = self.slot(inner, tag) {
            *s = Slot::FREE;
        }
        if tag != CONNECT_TTAG {
            // Cannot fail: `free` has room for every tag.
            let _ = inner.free.push(tag, GFP_ATOMIC);
        }
    }

    // ---- teardown ----

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
        let offending = inner.hdr.get(..inner.hdr_have.min(inner.hdr_want())).unwrap_or(&[]);
        let len = proto::TermReq::c2h(err).encode(&mut term, offending).unwrap_or(0);
        drop(inner);
        if let Some(pdu) = term.get(..len).filter(|p| !p.is_empty()) {
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
            let connect = core::iter::once((CONNECT_TTAG, inner.connect));
            let slots = inner.slots.iter().enumerate().map(|(i, s)| (i as u16, *s));
            for (tag, slot) in Iterator::chain(connect, slots) {
                if slot.state == SlotState::DataIn {
                    if let Some(req) = self.request(tag) {
                        req.uninit();
                    }
                }
            }
        }
        self.sq.destroy();
        // Nothing runs any more: drop what completions still hold, free buffers.
        self.completions.take::<Queue>(|_| {});
        let n = self.reqs.as_ref().map(|r| r.len()).unwrap_or(0);
        // CAST: at most 2 * 1024 slots.
        for tag in Iterator::chain((0..n).map(|i| i as u16), core::iter::once(CONNECT_TTAG)) {
            if let Some(req) = self.request(tag) {
                req.free_data();
            }
        }
        let mut queues = QUEUES.lock();
        if let Some(pos) = queues.iter().position(|q| Arc::ptr_eq(q, &self)) {
            let removed = queues.remove(pos).ok();
            drop(queues);
            drop(removed);
        }
    }
}

/// Drops the sent part of the FIFO once it is most of it, so the FIFO stays
/// within the room reserved for it under constant load.
fn compact_sendq(inner: &mut Inner) {
    let head = inner.send_head;
    if head > 0 && head * 2 >= inner.sendq.len() {
        let len = inner.sendq.len();
        inner.sendq.copy_within(head..len, 0);
        inner.sendq.truncate(len - head);
        inner.send_head = 0;
    }
}

/// Appends a send to the queue's FIFO.
fn push_send(inner: &mut Inner, tag: u16, kind: SendKind) -> Result<(), Close> {
    inner.sendq.push((tag, kind), GFP_KERNEL).map_err(|_| Close::Reason("no memory for the send queue"))
}

/// nvmet's `install_queue` for the queue whose nvmet SQ is `sq`.
pub(crate) fn install_queue(sq: *mut crate::glue::bindings::nvmet_sq) -> u16 {
    let queue = QUEUES.lock().iter().find(|q| q.sq.as_ptr() == sq).cloned();
    match queue {
        Some(q) => q.install(),
        None => status::INTERNAL,
    }
}

/// nvmet's `delete_ctrl`: ends every connection of the controller.
pub(crate) fn delete_ctrl(ctrl_key: usize) {
    for q in QUEUES.lock().iter().filter(|q| q.sq.ctrl_key() == ctrl_key) {
        q.shutdown();
    }
}

/// nvmet's `disc_traddr`: a wildcard port reports the address the host reached.
pub(crate) fn disc_traddr(queue: &Queue, out: &mut [u8]) -> bool {
    if queue.port_is_any {
        queue.local.format_ip(out);
        true
    } else {
        false
    }
}

/// nvmet's `host_traddr`: the host's address on the controller's admin queue.
pub(crate) fn host_traddr(ctrl_key: usize, out: &mut [u8]) -> Result<usize> {
    let queues = QUEUES.lock();
    let q = queues.iter().find(|q| q.sq.ctrl_key() == ctrl_key && q.sq.qid() == 0).ok_or(EINVAL)?;
    if q.peer.family() == 0 {
        return Err(EINVAL);
    }
    Ok(q.peer.format_ip(out))
}

/// Shuts down every queue that came in through `port`.
pub(crate) fn shutdown_port(port: &Port) {
    for q in QUEUES.lock().iter().filter(|q| q.port_key == port.key()) {
        q.shutdown();
    }
}

/// On drop (module unload), shuts down every queue and waits until all are gone.
pub(crate) struct ShutdownOnDrop;

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        loop {
            let remaining = {
                let mut queues = QUEUES.lock();
                for q in queues.iter() {
                    q.shutdown();
                }
                if queues.is_empty() {
                    // A static is never dropped: give its buffer back, or it
                    // outlives the module (kmemleak reports it on unload).
                    drop(core::mem::replace(&mut *queues, KVec::new()));
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
