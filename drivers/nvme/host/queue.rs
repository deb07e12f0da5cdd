// SPDX-License-Identifier: GPL-2.0

//! Queues: one TCP connection each, the admin queue (0) and the I/O queues.
//!
//! A queue's sockets callbacks and `queue_rq` only queue its I/O work (or,
//! on the queue's CPU, send at once). A round of the work sends what is
//! queued (`send.rs`) and receives what arrived (`recv.rs`).
//!
//! Locking: [`Inner`] holds everything about the commands on the wire (the
//! receive state machine, the send in progress, each tag's progress), and
//! is only touched with its mutex held, so the send and the receive side
//! of a command never race. `queue_rq` hands new commands over through
//! [`Queue::submit`], a spinlocked FIFO of tags, and never waits for the
//! mutex (it may run inside a completion that the receive side calls).
//! Any transport error stops the queue and hands the controller to its
//! error work; after [`Queue::stop`] nothing of the queue touches a
//! request any more.

use crate::{
    ctrl::TcpCtrl,
    glue::{
        host::{blk::IoCpu, nvme::CtrlRef, params},
        sock::{SockAddr, Socket},
        sock_io::{peer_log_allowed, warn_bug, Bvecs, CallbackSocket, SockEvent, SocketEvents},
    },
    proto,
    send::Tx,
    WQ,
};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use kernel::{
    alloc::KVec,
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex, SetOnce, SpinLock},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

/// How long to wait for the ICResp, as the C host.
const ICRESP_TIMEOUT_SECS: u32 = 10;
/// Segments one socket call moves: a 1 MiB request in 4 KiB pages.
const BVECS: u32 = 256;
/// Rounds per run of the I/O work before it yields.
const IO_BUDGET: u32 = 64;
/// `NVME_SC_HOST_ABORTED_CMD` as a response carries it (status field << 1).
const STATUS_HOST_ABORTED: u16 = 0x371 << 1;
/// The admin queue's tag for the async event request (`NVME_AQ_BLK_MQ_DEPTH`),
/// beyond its tag set's tags.
pub(crate) const AEN_TAG: u16 = 31;

/// A tag's progress on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub(crate) enum CmdState {
    /// Not on the wire: free, or waiting in [`Queue::submit`].
    #[default]
    Idle,
    /// Its capsule is being sent.
    Sending,
    /// Sent; waiting for its data, R2Ts or response.
    Waiting,
    /// An R2T arrived: its data waits to be sent.
    H2cQueued,
    /// Its H2CData PDUs are being sent.
    H2cSending,
}

/// The wire state of one tag.
#[derive(Clone, Copy, Default)]
pub(crate) struct Cmd {
    pub(crate) state: CmdState,
    /// The command identifier sent (tag and generation).
    pub(crate) cid: u16,
    /// Bytes of data the command moves, and in which direction.
    pub(crate) data_len: u32,
    pub(crate) write: bool,
    /// Data bytes moved so far: sent (writes) or received (reads).
    pub(crate) done: u32,
    /// The current R2T: where its data starts, how much is left, its tag.
    pub(crate) r2t_offset: u32,
    pub(crate) r2t_left: u32,
    pub(crate) ttag: u16,
    /// The C2HData being received says the command succeeded (no response follows).
    pub(crate) success: bool,
}

/// A FIFO of tags with room for every tag once.
pub(crate) struct TagRing {
    buf: KVec<u16>,
    head: usize,
    len: usize,
}

impl TagRing {
    pub(crate) const fn new() -> Self {
        Self { buf: KVec::new(), head: 0, len: 0 }
    }

    /// A ring for tags `0..n`.
    pub(crate) fn with_capacity(n: usize) -> Result<Self> {
        let mut buf = KVec::with_capacity(n, GFP_KERNEL)?;
        buf.resize(n, 0, GFP_KERNEL)?;
        Ok(Self { buf, head: 0, len: 0 })
    }

    /// Adds `tag`; false if the ring is full (a tag queued twice: a bug).
    pub(crate) fn push(&mut self, tag: u16) -> bool {
        let cap = self.buf.len();
        if self.len >= cap {
            return false;
        }
        if let Some(slot) = self.buf.get_mut((self.head + self.len) % cap) {
            *slot = tag;
            self.len += 1;
            return true;
        }
        false
    }

    pub(crate) fn pop(&mut self) -> Option<u16> {
        if self.len == 0 {
            return None;
        }
        let tag = self.buf.get(self.head).copied();
        self.head = (self.head + 1) % self.buf.len().max(1);
        self.len -= 1;
        tag
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// State of a queue's commands on the wire (see the module documentation).
pub(crate) struct Inner {
    pub(crate) rx: proto::Receiver,
    pub(crate) tx: Tx,
    /// Per tag (the admin queue's include [`AEN_TAG`]).
    pub(crate) cmds: KVec<Cmd>,
    pub(crate) bvecs: Bvecs,
}

/// Why a queue stops.
pub(crate) enum Close {
    /// The target violated the protocol.
    Protocol(proto::Error),
    /// As `Reason`, about the command with this identifier.
    Cmd(&'static str, u16),
    /// A state the code never reaches: a bug of ours (with a kernel warning).
    Bug(&'static CStr),
    /// Socket error.
    Sock(Error),
    /// The target closed the connection.
    Eof,
    /// The target ended the association (C2HTermReq).
    TermReq { fes: u16, fei: u32 },
}

impl From<proto::Error> for Close {
    fn from(e: proto::Error) -> Self {
        Close::Protocol(e)
    }
}

impl From<Error> for Close {
    fn from(e: Error) -> Self {
        Close::Sock(e)
    }
}

/// A connection to the target.
#[pin_data]
pub(crate) struct Queue {
    pub(crate) qid: u16,
    /// The controller (a counted reference: the controller drops its
    /// queues when it is torn down, which ends the cycle).
    ctrl: CtrlRef<TcpCtrl>,
    /// The controller's instance (`nvmeN`), for messages.
    pub(crate) instance: i32,
    /// The target's address, for messages.
    pub(crate) peer: SockAddr,
    pub(crate) digests: proto::Digests,
    /// In-capsule data this queue may send with a write.
    pub(crate) inline_max: u32,
    /// Largest H2CData PDU the target accepts.
    pub(crate) max_h2c: u32,
    /// Fabrics Connect completed: commands other than Connect may go.
    live: AtomicBool,
    /// Stopped or failed: nothing more is sent or received.
    stopped: AtomicBool,
    running: AtomicBool,
    rerun: AtomicBool,
    cpu: SetOnce<IoCpu>,
    #[pin]
    pub(crate) sock: CallbackSocket<Queue>,
    /// New commands from `queue_rq`, in order.
    #[pin]
    submit: SpinLock<TagRing>,
    /// How many tags `submit` holds, stored with its lock held: a sender
    /// looks here before it takes the lock. A stale zero is harmless: whoever
    /// submitted then kicks the I/O work or sends itself.
    submitted: AtomicUsize,
    #[pin]
    io_work: Work<Queue>,
    #[pin]
    pub(crate) inner: Mutex<Inner>,
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
        this.running.store(true, Ordering::SeqCst);
        for _ in 0..IO_BUDGET {
            if this.stopped.load(Ordering::Acquire) {
                this.running.store(false, Ordering::SeqCst);
                return;
            }
            this.rerun.swap(false, Ordering::SeqCst);
            let busy = {
                let mut inner = this.inner.lock();
                if this.stopped.load(Ordering::Acquire) {
                    this.running.store(false, Ordering::SeqCst);
                    return;
                }
                this.round(&mut inner)
            };
            match busy {
                Err(close) => {
                    this.running.store(false, Ordering::SeqCst);
                    return this.fail(close);
                }
                Ok(true) => {}
                Ok(false) => {
                    this.running.store(false, Ordering::SeqCst);
                    // Pairs with `kick`: either it saw `running` clear and
                    // queued the work, or this sees its `rerun`.
                    if !this.rerun.load(Ordering::SeqCst) {
                        return;
                    }
                    this.running.store(true, Ordering::SeqCst);
                }
            }
        }
        this.running.store(false, Ordering::SeqCst);
        Self::queue_work(this.as_arc_borrow());
    }
}

impl Queue {
    /// Connects queue `qid` of `ctrl` to `addr` and exchanges ICReq/ICResp.
    pub(crate) fn connect(ctrl: &TcpCtrl, qid: u16) -> Result<Arc<Queue>> {
        let opts = ctrl.nctrl().opts();
        let addr = ctrl.addr;
        let instance = ctrl.nctrl().instance();
        let sock = Socket::connect_from(&addr, ctrl.src.as_ref(), opts.host_iface()).inspect_err(|e| {
            pr_err!("nvme{}: queue {} ({}): failed to connect: {:?}\n", instance, qid, addr, e);
        })?;
        if opts.tos() >= 0 {
            sock.set_tos(opts.tos());
        }
        let prio = params::so_priority();
        if prio > 0 {
            sock.set_priority(prio);
        }
        sock.set_recv_timeout(ICRESP_TIMEOUT_SECS);
        let icresp = icreq_exchange(&sock, opts.hdr_digest(), opts.data_digest()).map_err(|(what, e)| {
            match e {
                IcError::Sock(e) => pr_err!("nvme{}: queue {} ({}): {}: {:?}\n", instance, qid, addr, what, e),
                IcError::Proto(e) => pr_err!("nvme{}: queue {} ({}): {}: {}\n", instance, qid, addr, what, e),
            }
            match e {
                IcError::Sock(e) => e,
                IcError::Proto(_) => EPROTO,
            }
        })?;
        // From here on the socket serves the block layer: atomic
        // allocations (the queue may be writing back pages).
        sock.set_noio();
        let digests: proto::Digests = icresp.digests();
        let inline_max = if qid == 0 {
            // The admin queue's capsules carry up to 8 KiB (`NVME_TCP_ADMIN_CCSZ`).
            8192
        } else {
            (ctrl.nctrl().ioccsz() * 16).saturating_sub(proto::SQE_LEN as u32)
        };
        let queue = Arc::pin_init(
            try_pin_init!(Queue {
                qid,
                ctrl: CtrlRef::new(ctrl),
                instance,
                peer: addr,
                digests,
                inline_max,
                max_h2c: icresp.maxdata,
                live: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                running: AtomicBool::new(false),
                rerun: AtomicBool::new(false),
                cpu: SetOnce::new(),
                sock <- CallbackSocket::new(sock),
                submit <- new_spinlock!(TagRing::new()),
                submitted: AtomicUsize::new(0),
                io_work <- new_work!("nvme_tcp::Queue::io_work"),
                inner <- new_mutex!(Inner {
                    rx: {
                        let mut rx = proto::Receiver::new(
                            proto::Role::Host,
                            proto::Limits { max_data: u32::MAX, max_inline: 0 },
                        );
                        rx.set_stage(proto::Stage::Established(*digests));
                        rx
                    },
                    tx: Tx::new(),
                    cmds: KVec::new(),
                    bvecs: Bvecs::new(BVECS)?,
                }),
            }? Error),
            GFP_KERNEL,
        )?;
        pr_debug!(
            "nvme{}: queue {} ({}): connected (hdgst {}, ddgst {}, maxh2cdata {})\n",
            instance,
            qid,
            addr,
            u8::from(digests.header),
            u8::from(digests.data),
            icresp.maxdata
        );
        Ok(queue)
    }

    /// Starts the queue once its tag set exists: `depth` tags (the admin
    /// queue adds the async event's), the I/O work on `cpu`; then the
    /// socket's events reach the work.
    pub(crate) fn start(self: &Arc<Self>, depth: usize, cpu: IoCpu) -> Result {
        let depth = if self.qid == 0 { depth.max(usize::from(AEN_TAG) + 1) } else { depth };
        {
            let mut inner = self.inner.lock();
            let mut cmds = KVec::with_capacity(depth, GFP_KERNEL)?;
            cmds.resize(depth, Cmd::default(), GFP_KERNEL)?;
            inner.cmds = cmds;
            inner.tx.size(depth)?;
        }
        *self.submit.lock() = TagRing::with_capacity(depth)?;
        self.submitted.store(0, Ordering::Release);
        self.cpu.populate(cpu);
        CallbackSocket::attach(self);
        // Data may have arrived before the callbacks were ours.
        Self::kick(self.as_arc_borrow());
        Ok(())
    }

    /// Fabrics Connect completed: other commands may go.
    pub(crate) fn set_live(&self) {
        self.live.store(true, Ordering::Release);
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    pub(crate) fn ctrl(&self) -> &TcpCtrl {
        &self.ctrl
    }

    /// The CPU its I/O work runs on (`WORK_CPU_UNBOUND` if none).
    pub(crate) fn io_cpu(&self) -> i32 {
        self.cpu.as_ref().map_or_else(|| IoCpu::unbound().get(), |c| c.get())
    }

    /// Makes the I/O work look at the queue.
    pub(crate) fn kick(this: ArcBorrow<'_, Self>) {
        this.rerun.store(true, Ordering::SeqCst);
        if !this.running.load(Ordering::SeqCst) {
            Self::queue_work(this);
        }
    }

    fn queue_work(this: ArcBorrow<'_, Self>) {
        if this.stopped.load(Ordering::Relaxed) {
            return;
        }
        let _ = WQ.enqueue_on(this.io_cpu(), Arc::from(this));
    }

    /// One round of I/O: true if something was sent or received.
    fn round(&self, inner: &mut Inner) -> Result<bool, Close> {
        let sent = self.send(inner)?;
        // A read of an empty socket costs a lock of it; data that arrives
        // after this look kicks the work again.
        let received = self.sock.sock().readable() && self.recv(inner)?;
        if !sent && !received && self.sock.sock().is_closing() {
            return Err(Close::Eof);
        }
        Ok(sent || received)
    }

    /// Sends what is queued, from `queue_rq` on the queue's CPU; false if the
    /// I/O work is busy (it sends instead).
    pub(crate) fn try_send_now(&self) -> bool {
        let Some(mut inner) = self.inner.try_lock() else { return false };
        if self.stopped.load(Ordering::Acquire) {
            return true;
        }
        if let Err(close) = self.send(&mut inner) {
            drop(inner);
            self.fail(close);
        }
        true
    }

    /// Queues `tag` for sending; false if it is queued already (a bug).
    pub(crate) fn submit(&self, tag: u16) -> bool {
        let mut ring = self.submit.lock();
        let queued = ring.push(tag);
        self.submitted.store(ring.len(), Ordering::Release);
        queued
    }

    /// The oldest tag queued for sending, if any.
    pub(crate) fn next_submitted(&self) -> Option<u16> {
        if self.submitted.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut ring = self.submit.lock();
        let tag = ring.pop();
        self.submitted.store(ring.len(), Ordering::Release);
        tag
    }

    /// Whether commands wait to be sent (a hint: see `submitted`).
    pub(crate) fn submissions_pending(&self) -> bool {
        self.submitted.load(Ordering::Acquire) != 0
    }

    /// Ends the queue after an error: logs why, shuts the socket down and
    /// hands the controller to its error work.
    pub(crate) fn fail(&self, why: Close) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let n = self.instance;
        let (q, peer) = (self.qid, &self.peer);
        if peer_log_allowed() {
            match why {
                Close::Protocol(e) => pr_err!("nvme{}: queue {} ({}): {}\n", n, q, peer, e),
                Close::Cmd(r, cid) => pr_err!("nvme{}: queue {} ({}): {} (command id {:#x})\n", n, q, peer, r, cid),
                Close::Bug(what) => {
                    pr_err!("nvme{}: queue {} ({}): internal error\n", n, q, peer);
                    warn_bug(what);
                }
                Close::Sock(e) => pr_err!("nvme{}: queue {} ({}): socket error {:?}\n", n, q, peer, e),
                Close::Eof => pr_err!("nvme{}: queue {} ({}): connection closed by the target\n", n, q, peer),
                Close::TermReq { fes, fei } => pr_err!(
                    "nvme{}: queue {} ({}): target terminated the connection (fes {:#x}, fei {:#x})\n",
                    n,
                    q,
                    peer,
                    fes,
                    fei
                ),
            }
        }
        self.sock.sock().shutdown();
        self.abort_requests();
        self.ctrl.error();
    }

    /// Fails every request this stopped queue holds (sent or still waiting
    /// to be), so that nothing waits for its timeout; nvme-core decides
    /// whether each is retried. Only the queue's own users complete its
    /// requests: the timeout handler and teardown stop the queue first,
    /// which waits for this.
    fn abort_requests(&self) {
        let mut inner = self.inner.lock();
        let abort = |tag: u16| {
            if self.qid == 0 && tag == AEN_TAG {
                return;
            }
            if let Some(rq) = self.request(tag) {
                rq.complete(STATUS_HOST_ABORTED, 0);
            }
        };
        for (tag, cmd) in (0u16..).zip(inner.cmds.iter_mut()) {
            if cmd.state != CmdState::Idle {
                cmd.state = CmdState::Idle;
                abort(tag);
            }
        }
        while let Some(tag) = self.next_submitted() {
            abort(tag);
        }
        inner.tx.reset();
    }

    /// Stops the queue: no more sends or receives, callbacks detached, the
    /// I/O work finished. Afterwards nothing of the queue touches a request.
    pub(crate) fn stop(&self) {
        self.live.store(false, Ordering::Release);
        self.stopped.store(true, Ordering::Release);
        self.sock.sock().shutdown();
        self.sock.detach();
        // A sender that passed its check holds the lock until it is done.
        drop(self.inner.lock());
        crate::glue::workqueue::flush(&self.io_work);
    }
}

/// Why the ICReq/ICResp exchange failed.
enum IcError {
    Sock(Error),
    Proto(proto::Error),
}

/// Sends the ICReq on `sock` and checks the ICResp (blocking, bounded by
/// the socket's receive timeout). On error, says what failed.
fn icreq_exchange(sock: &Socket, hdgst: bool, ddgst: bool) -> Result<proto::IcResp, (&'static str, IcError)> {
    let icreq = proto::IcReq { pfv: proto::PFV_1_0, hpda: 0, hdgst, ddgst, maxr2t: 0 };
    let mut buf = [0u8; proto::ICREQ_LEN];
    icreq.encode(&mut buf).map_err(|e| ("failed to encode the ICReq", IcError::Proto(e)))?;
    sock.send_all(&buf).map_err(|e| ("failed to send ICReq", IcError::Sock(e)))?;
    let mut resp = [0u8; proto::ICRESP_LEN];
    sock.recv_exact(&mut resp).map_err(|e| ("failed to receive ICResp", IcError::Sock(e)))?;
    let icresp = proto::IcResp::decode(&resp).map_err(|e| ("malformed ICResp", IcError::Proto(e)))?;
    icresp.validate_host(&icreq).map_err(|e| ("ICResp refused", IcError::Proto(e)))?;
    Ok(icresp)
}
