// SPDX-License-Identifier: GPL-2.0

//! The send side: the ICResp, then R2Ts, read data and responses, several
//! commands' PDUs per socket call.
//!
//! A command's sends wait in a FIFO ([`Tx::push`]); up to [`TX_BATCH`] of them
//! are laid out at a time ([`TxSend`]: PDU headers in a fresh page fragment,
//! read data in the command's pages) and gathered into one segment table,
//! which the socket splices without a copy. A send is done once all of its
//! bytes went out; a partial socket call leaves the rest for the next one.

use crate::{
    glue::{
        sock_io::{Bvecs, DataSink, Io},
        target::splice::{Frag, FragCache},
    },
    command::{SlotState, Slots},
    proto::{self, Digests},
    queue::{Close, Queue},
};
use core::ops::Range;
use kernel::{
    alloc::{KVVec, KVec},
    prelude::*,
};

/// Sends laid out at once: their PDUs go out together, in one socket call as
/// far as the segment table allows.
const TX_BATCH: usize = 16;

/// Where a send's tail (data digest, response) starts in its [`Frag`].
const TAIL: usize = Frag::SIZE / 2;

/// What a queued send is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendKind {
    /// An R2T for the rest of the command's data.
    R2t,
    /// The command completed: its data (reads) and response.
    Completion,
}

/// One command's outgoing PDUs, in wire order: a header (R2T, C2HData or
/// response) in `pdus[..head]`, for reads `data` bytes of the command's
/// pages, then `pdus[TAIL..TAIL + tail]` (the data digest, the response).
/// `pdus` is fresh memory, never rewritten while TCP may still send it.
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

/// A piece of a send, in wire order: where its next bytes come from.
enum Part {
    /// PDU header bytes `pdus[range]`: an R2T, a C2HData or a response.
    Head(Range<usize>),
    /// `len` bytes of read data from byte `offset` of the command's buffer.
    Data { offset: u32, len: u32 },
    /// Trailer bytes `pdus[range]`: the data digest, the response after data.
    Tail(Range<usize>),
}

impl TxSend {
    fn len(&self) -> usize {
        self.head + self.data as usize + self.tail
    }

    /// The part of the send that its byte `at` is in, and where that part
    /// ends; `None` past the end.
    fn part_at(&self, at: usize) -> Option<(Part, usize)> {
        let data_end = self.head + self.data as usize;
        let end = data_end + self.tail;
        if at < self.head {
            Some((Part::Head(at..self.head), self.head))
        } else if at < data_end {
            // CAST: `at - head` is below `data`, a `u32`.
            let offset = (at - self.head) as u32;
            Some((Part::Data { offset, len: self.data - offset }, data_end))
        } else if at < end {
            Some((Part::Tail(TAIL + (at - data_end)..TAIL + self.tail), end))
        } else {
            None
        }
    }
}

/// The send side's state, owned by the I/O work.
pub(crate) struct Tx {
    /// The ICResp (it goes before anything else), and how much of it went out.
    icresp: [u8; proto::ICRESP_LEN],
    icresp_len: usize,
    icresp_sent: usize,
    /// Sends laid out and on their way, oldest first (at most `TX_BATCH`).
    txq: KVec<TxSend>,
    /// Memory for the PDU headers of `txq`.
    frags: FragCache,
    /// Sends waiting their turn (FIFO: `sendq[send_head..]`).
    sendq: KVVec<(u16, SendKind)>,
    send_head: usize,
}

impl Tx {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            icresp: [0; proto::ICRESP_LEN],
            icresp_len: 0,
            icresp_sent: 0,
            txq: KVec::with_capacity(TX_BATCH, GFP_KERNEL)?,
            frags: FragCache::new()?,
            sendq: KVVec::new(),
            send_head: 0,
        })
    }

    /// Makes room for the sends of `slots` command slots, so that queueing
    /// one never allocates on the I/O path: at most an R2T and a completion
    /// per slot, and the Connect command's.
    pub(crate) fn reserve(&mut self, slots: u16) -> Result<(), Close> {
        self.sendq
            .reserve(2 * usize::from(slots) + 2, GFP_KERNEL)
            .map_err(|_| Close::Reason("no memory for the send queue"))
    }

    /// Queues the ICResp, which goes out before anything else.
    pub(crate) fn queue_icresp(&mut self, resp: &proto::IcResp) -> Result<(), Close> {
        self.icresp_len = resp.encode(&mut self.icresp)?;
        self.icresp_sent = 0;
        Ok(())
    }

    /// Appends a send to the FIFO.
    pub(crate) fn push(&mut self, tag: u16, kind: SendKind) -> Result<(), Close> {
        // Room was reserved for every slot's sends (`reserve`); the Connect
        // command's come before that and may allocate (process context: the
        // I/O work).
        self.sendq.push((tag, kind), GFP_KERNEL).map_err(|_| Close::Reason("no memory for the send queue"))
    }

    /// Whether anything waits to be sent.
    pub(crate) fn pending(&self) -> bool {
        self.icresp_sent < self.icresp_len || !self.txq.is_empty() || self.send_head < self.sendq.len()
    }

    /// Drops the sent part of the FIFO once it is most of it, so the FIFO stays
    /// within the room reserved for it under constant load.
    fn compact(&mut self) {
        let head = self.send_head;
        if head > 0 && head * 2 >= self.sendq.len() {
            let len = self.sendq.len();
            self.sendq.copy_within(head..len, 0);
            self.sendq.truncate(len - head);
            self.send_head = 0;
        }
    }
}

impl Queue {
    /// Sends what is pending; true if progress was made.
    pub(crate) fn send(&self, tx: &mut Tx, cmds: &mut Slots, bvecs: &mut Bvecs, d: Digests) -> Result<bool, Close> {
        let sock = self.sock.sock();
        let mut progress = false;
        // The ICResp first: nothing else is queued before it.
        while let Some(pending) = tx.icresp.get(tx.icresp_sent..tx.icresp_len).filter(|p| !p.is_empty()) {
            match sock.send(pending, false).map_err(Close::Sock)? {
                Io::Done(n) => {
                    tx.icresp_sent += n.get();
                    progress = true;
                }
                Io::WouldBlock | Io::Eof => return Ok(progress),
            }
        }
        loop {
            self.fill_txq(tx, cmds, d)?;
            if tx.txq.is_empty() {
                return Ok(progress);
            }
            let more = self.gather(tx, bvecs)?;
            match bvecs.send(sock, more).map_err(Close::Sock)? {
                Io::Done(n) => {
                    progress = true;
                    self.sent(tx, cmds, n.get());
                }
                Io::WouldBlock | Io::Eof => return Ok(progress),
            }
        }
    }

    /// Lays out queued sends, up to `TX_BATCH` on their way.
    fn fill_txq(&self, tx: &mut Tx, cmds: &mut Slots, d: Digests) -> Result<(), Close> {
        while tx.txq.len() < TX_BATCH {
            let Some(&(tag, kind)) = tx.sendq.get(tx.send_head) else {
                tx.sendq.clear();
                tx.send_head = 0;
                return Ok(());
            };
            tx.send_head += 1;
            let send = self.prepare_send(&mut tx.frags, cmds, tag, kind, d)?;
            // Does not allocate: `txq` has room for `TX_BATCH` sends.
            tx.txq.push(send, GFP_KERNEL).map_err(|_| Close::Bug(c"the send batch is full"))?;
        }
        tx.compact();
        Ok(())
    }

    /// Fills the segment table with what is left of the sends on their way,
    /// in order, as far as it holds; returns whether more follows at once
    /// (the table is full, or more sends are queued).
    fn gather(&self, tx: &Tx, bvecs: &mut Bvecs) -> Result<bool, Close> {
        let queued = tx.send_head < tx.sendq.len();
        bvecs.clear();
        for send in tx.txq.iter() {
            let mut at = send.done;
            while let Some((part, end)) = send.part_at(at) {
                let added = match part {
                    Part::Head(range) | Part::Tail(range) => bvecs.add_frag(&send.pdus, range),
                    Part::Data { offset, len } => {
                        let req = self.request(send.tag).ok_or(Close::Bug(c"sending a missing command"))?;
                        // Only a full table takes less than all of it.
                        let all = req.add_data(bvecs, offset, len) == len;
                        if !all && !bvecs.is_full() {
                            return Err(Close::Bug(c"a command's data is shorter than its transfer"));
                        }
                        all
                    }
                };
                if !added {
                    return Ok(true);
                }
                at = end;
            }
        }
        Ok(queued)
    }

    /// `n` bytes of the sends on their way went out: finishes those all out.
    fn sent(&self, tx: &mut Tx, cmds: &mut Slots, mut n: usize) {
        while let Some(send) = tx.txq.first_mut() {
            let left = send.len() - send.done;
            if n < left {
                send.done += n;
                return;
            }
            n -= left;
            if let Ok(send) = tx.txq.remove(0) {
                self.finish_send(cmds, send.tag, send.kind);
            }
        }
    }

    /// Lays out the PDUs of a queued send.
    fn prepare_send(
        &self,
        frags: &mut FragCache,
        cmds: &mut Slots,
        tag: u16,
        kind: SendKind,
        d: Digests,
    ) -> Result<TxSend, Close> {
        let req = self.request(tag).ok_or(Close::Bug(c"sending a missing command"))?;
        let slot = cmds.get_mut(tag).ok_or(Close::Bug(c"sending a missing slot"))?;
        let mut pdus = frags.alloc().map_err(|_| Close::Reason("no memory for a PDU header"))?;
        let (hbuf, tbuf) = pdus.bytes_mut().split_at_mut(TAIL);
        let (mut data, mut tail) = (0, 0);
        let head = match kind {
            SendKind::R2t => {
                slot.r2t_sent = true;
                let r2t = proto::R2t {
                    cccid: slot.cid,
                    ttag: tag,
                    r2to: slot.rbytes,
                    // CAST: at most MAX_DATA (the command was refused otherwise).
                    r2tl: (req.transfer_len() as u32).saturating_sub(slot.rbytes),
                };
                r2t.encode(hbuf, d)?
            }
            SendKind::Completion => {
                let resp = proto::CapsuleResp { cqe: req.cqe() };
                let ok = slot.state != SlotState::Failed && req.status() == 0;
                if ok && !req.is_write() && req.transfer_len() > 0 {
                    // Read data: C2HData, then its digest, then the response
                    // unless C2HData says SUCCESS.
                    // CAST: at most MAX_DATA.
                    data = req.transfer_len() as u32;
                    let success = self.sq.sqhd_disabled();
                    let c2h = proto::Data {
                        from_host: false,
                        cccid: slot.cid,
                        ttag: 0,
                        datao: 0,
                        datal: data,
                        last: true,
                        success,
                    };
                    let head = c2h.encode(hbuf, d)?;
                    if d.data {
                        let crc = proto::Crc32c::resume(req.data_crc(proto::Crc32c::new().state(), 0, data));
                        // PANIC: `tbuf` is `Frag::SIZE - TAIL` (32) bytes.
                        let (digest, rest) = tbuf.split_at_mut(proto::DIGEST_LEN);
                        digest.copy_from_slice(&crc.finish().to_le_bytes());
                        tail = proto::DIGEST_LEN;
                        if !success {
                            tail += resp.encode(rest, d)?;
                        }
                    } else if !success {
                        tail = resp.encode(tbuf, d)?;
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
    fn finish_send(&self, cmds: &mut Slots, tag: u16, kind: SendKind) {
        if kind == SendKind::R2t {
            return; // The command waits for its H2CData.
        }
        if let Some(req) = self.request(tag) {
            req.free_data();
        }
        cmds.free(tag);
    }
}
