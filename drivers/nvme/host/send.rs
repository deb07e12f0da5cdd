// SPDX-License-Identifier: GPL-2.0

//! The send side: command capsules (with in-capsule data for small
//! writes), the async event request, and the H2CData PDUs that answer R2Ts.
//!
//! One PDU is sent at a time, in parts: its header (the capsule header and
//! SQE that `queue_rq` wrote into the request, or an H2CData header built
//! here), its data (spliced from the request's pages) and its data digest.
//! Data the target asked for (R2T) goes before new commands.

use crate::{
    glue::{
        host::blk::{Request, CMD_PDU_LEN},
        sock_io::DataSink,
    },
    proto,
    queue::{Close, CmdState, Inner, Queue, TagRing, AEN_TAG},
};
use kernel::prelude::*;

/// Bytes of an H2CData header with its digest.
const H2C_HDR_LEN: usize = proto::DATA_HLEN + proto::DIGEST_LEN;

/// What a PDU being sent is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A command capsule (with in-capsule data, if any).
    Capsule,
    /// The async event request's capsule.
    Aen,
    /// H2CData for the current R2T of the command.
    H2c,
}

/// A part of the PDU being sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Head,
    Data,
    Digest,
}

/// The PDU being sent.
#[derive(Clone, Copy)]
struct Cur {
    tag: u16,
    kind: Kind,
    part: Part,
    /// Bytes of the current part sent.
    sent: usize,
    /// The PDU's data: `len` bytes at `offset` of the command's data.
    offset: u32,
    len: u32,
}

/// What [`Queue::next_pdu`] found.
enum Next<'a> {
    /// Nothing to send.
    None,
    /// A PDU, now the current one; the request of its tag, if looked up.
    Pdu(Option<&'a Request>),
}

/// The send side of a queue.
pub(crate) struct Tx {
    cur: Option<Cur>,
    /// Commands whose R2T waits to be answered.
    h2c: TagRing,
    /// The H2CData header being sent, and its length.
    hdr: [u8; H2C_HDR_LEN],
    hdr_len: usize,
    /// The async event request's capsule.
    aen: [u8; CMD_PDU_LEN],
    /// The data digest being sent.
    ddgst: [u8; proto::DIGEST_LEN],
}

impl Tx {
    pub(crate) fn new() -> Self {
        Self {
            cur: None,
            h2c: TagRing::new(),
            hdr: [0; H2C_HDR_LEN],
            hdr_len: 0,
            aen: [0; CMD_PDU_LEN],
            ddgst: [0; proto::DIGEST_LEN],
        }
    }

    /// Makes room for `n` tags.
    pub(crate) fn size(&mut self, n: usize) -> Result {
        self.h2c = TagRing::with_capacity(n)?;
        Ok(())
    }

    /// Forgets the send in progress and the R2Ts waiting (the queue stopped).
    pub(crate) fn reset(&mut self) {
        self.cur = None;
        while self.h2c.pop().is_some() {}
    }

    /// Queues the data that an R2T asked of `tag`.
    pub(crate) fn push_h2c(&mut self, tag: u16) -> Result<(), Close> {
        if self.h2c.push(tag) {
            Ok(())
        } else {
            Err(Close::Bug(c"an R2T queued twice"))
        }
    }

}

/// The capsule of the async event request (opcode 0x0c, command id
/// [`AEN_TAG`], no data), with its header digest if `digests` ask for one.
fn aen_capsule(buf: &mut [u8; CMD_PDU_LEN], digests: proto::Digests) -> usize {
    buf.fill(0);
    let mut sqe = [0u8; proto::SQE_LEN];
    sqe[0] = 0x0c;
    // NVME_CMD_SGL_METABUF: the data pointer is an SGL.
    sqe[1] = 0x40;
    sqe[2..4].copy_from_slice(&AEN_TAG.to_le_bytes());
    // An empty transport SGL data block.
    sqe[39] = proto::SGL_TRANSPORT_DATA_BLOCK & 0xf0;
    proto::CapsuleCmd { sqe, data_len: 0 }.encode(buf, digests).unwrap_or(0)
}

impl Queue {
    /// Sends until the socket takes no more or nothing is left; true if
    /// anything went out.
    #[inline]
    pub(crate) fn send(&self, inner: &mut Inner) -> Result<bool, Close> {
        // Most calls find nothing to send: tell without a call.
        if inner.tx.cur.is_none() && !self.queued(inner) {
            return Ok(false);
        }
        self.send_pending(inner)
    }

    fn send_pending(&self, inner: &mut Inner) -> Result<bool, Close> {
        let mut progress = false;
        // The request of the tag being sent, looked up once per call.
        let mut rq = None;
        loop {
            if inner.tx.cur.is_none() {
                match self.next_pdu(inner)? {
                    Next::None => return Ok(progress),
                    Next::Pdu(r) => rq = r,
                }
            }
            if !self.send_part(inner, &mut rq)? {
                return Ok(progress);
            }
            progress = true;
        }
    }

    /// Picks the next PDU to send: data for an R2T first, then a new
    /// command.
    fn next_pdu(&self, inner: &mut Inner) -> Result<Next<'_>, Close> {
        if let Some(tag) = inner.tx.h2c.pop() {
            self.begin_h2c(inner, tag)?;
            return Ok(Next::Pdu(None));
        }
        let Some(tag) = self.next_submitted() else { return Ok(Next::None) };
        let digests = self.digests;
        let Inner { tx, cmds, .. } = inner;
        let cmd = cmds.get_mut(usize::from(tag)).ok_or(Close::Bug(c"a tag beyond the queue's"))?;
        if cmd.state != CmdState::Idle {
            return Err(Close::Bug(c"a command submitted twice"));
        }
        let (kind, len, rq) = if self.qid == 0 && tag == AEN_TAG {
            aen_capsule(&mut tx.aen, digests);
            *cmd = Default::default();
            cmd.cid = AEN_TAG;
            (Kind::Aen, 0, None)
        } else {
            let rq = self.request(tag).ok_or(Close::Bug(c"a submitted tag without a request"))?;
            let data_len = rq.data_len();
            let write = rq.is_write();
            *cmd = Default::default();
            cmd.cid = rq.command_id();
            cmd.data_len = data_len;
            cmd.write = write;
            (Kind::Capsule, if self.inline(write, data_len) { data_len } else { 0 }, Some(rq))
        };
        cmd.state = CmdState::Sending;
        tx.cur = Some(Cur { tag, kind, part: Part::Head, sent: 0, offset: 0, len });
        Ok(Next::Pdu(rq))
    }

    /// Whether PDUs wait to be started: H2CData for R2Ts, or new commands.
    fn queued(&self, inner: &Inner) -> bool {
        !inner.tx.h2c.is_empty() || self.submissions_pending()
    }

    /// Whether a command's data goes in its capsule.
    pub(crate) fn inline(&self, write: bool, data_len: u32) -> bool {
        write && data_len > 0 && data_len <= self.inline_max
    }

    /// The request of `tag` on this queue.
    pub(crate) fn request(&self, tag: u16) -> Option<&Request> {
        self.ctrl().request(self.qid, tag)
    }

    /// Starts the next H2CData PDU for the R2T of `tag`.
    fn begin_h2c(&self, inner: &mut Inner, tag: u16) -> Result<(), Close> {
        let digests = self.digests;
        let Inner { tx, cmds, .. } = inner;
        let cmd = cmds.get_mut(usize::from(tag)).ok_or(Close::Bug(c"a tag beyond the queue's"))?;
        if !matches!(cmd.state, CmdState::H2cQueued | CmdState::H2cSending) || cmd.r2t_left == 0 {
            return Err(Close::Bug(c"H2CData without an R2T"));
        }
        let len = cmd.r2t_left.min(self.max_h2c);
        let data = proto::Data {
            from_host: true,
            cccid: cmd.cid,
            ttag: cmd.ttag,
            datao: cmd.r2t_offset,
            datal: len,
            last: len == cmd.r2t_left,
            success: false,
        };
        tx.hdr_len = data.encode(&mut tx.hdr, digests)?;
        cmd.state = CmdState::H2cSending;
        tx.cur = Some(Cur { tag, kind: Kind::H2c, part: Part::Head, sent: 0, offset: cmd.r2t_offset, len });
        Ok(())
    }

    /// The request of `tag`: `cached` if it is that tag's, else looked up
    /// (and cached).
    fn request_cached<'a>(&'a self, cached: &mut Option<&'a Request>, tag: u16) -> Result<&'a Request, Close> {
        if let Some(rq) = cached.filter(|rq| rq.tag() == tag) {
            return Ok(rq);
        }
        let rq = self.request(tag).ok_or(Close::Bug(c"a sending tag without a request"))?;
        *cached = Some(rq);
        Ok(rq)
    }

    /// Sends some of the current part; false if the socket took nothing.
    /// `rq` caches the request of the PDU's tag.
    fn send_part<'a>(&'a self, inner: &mut Inner, rq: &mut Option<&'a Request>) -> Result<bool, Close> {
        let Some(mut cur) = inner.tx.cur else { return Ok(false) };
        let sock = self.sock.sock();
        // More follows at once: later parts of this PDU, or other PDUs.
        let queued = self.queued(inner);
        let has_digest = self.digests.data && cur.len > 0;
        let (n, part_len) = match cur.part {
            Part::Head => {
                let more = cur.len > 0 || queued;
                let head: &[u8] = match cur.kind {
                    Kind::H2c => &inner.tx.hdr[..inner.tx.hdr_len],
                    Kind::Aen => {
                        let len = proto::CAPSULE_CMD_HLEN + self.digests.header_len();
                        &inner.tx.aen[..len]
                    }
                    Kind::Capsule => {
                        let rq = self.request_cached(rq, cur.tag)?;
                        let len = proto::CAPSULE_CMD_HLEN + self.digests.header_len();
                        &rq.cmd()[..len]
                    }
                };
                let rest = head.get(cur.sent..).unwrap_or(&[]);
                (sock.send(rest, more).map_err(Close::Sock)?, head.len())
            }
            Part::Data => {
                let rq = self.request_cached(rq, cur.tag)?;
                // CAST: `sent` is below `len`, a `u32`.
                let sent = cur.sent as u32;
                let io = rq
                    .send_data(sock, &mut inner.bvecs, cur.offset + sent, cur.len - sent, has_digest || queued)
                    .map_err(Close::Sock)?;
                (io, cur.len as usize)
            }
            Part::Digest => {
                let rest = inner.tx.ddgst.get(cur.sent..).unwrap_or(&[]);
                (sock.send(rest, queued).map_err(Close::Sock)?, proto::DIGEST_LEN)
            }
        };
        let n = match n {
            crate::glue::sock_io::Io::Done(n) => n.get(),
            _ => return Ok(false),
        };
        cur.sent += n;
        if cur.sent < part_len {
            inner.tx.cur = Some(cur);
            return Ok(true);
        }
        // The part is done: on to the next one.
        cur.sent = 0;
        cur.part = match cur.part {
            Part::Head if cur.len > 0 => Part::Data,
            Part::Data if has_digest => {
                let rq = self.request_cached(rq, cur.tag)?;
                let state = rq.data_crc(proto::Crc32c::new().state(), cur.offset, cur.len);
                inner.tx.ddgst = proto::Crc32c::resume(state).finish().to_le_bytes();
                Part::Digest
            }
            _ => {
                inner.tx.cur = None;
                self.pdu_sent(inner, cur)?;
                return Ok(true);
            }
        };
        inner.tx.cur = Some(cur);
        Ok(true)
    }

    /// A whole PDU went out.
    fn pdu_sent(&self, inner: &mut Inner, cur: Cur) -> Result<(), Close> {
        let cmd = inner.cmds.get_mut(usize::from(cur.tag)).ok_or(Close::Bug(c"a tag beyond the queue's"))?;
        match cur.kind {
            Kind::Capsule | Kind::Aen => {
                cmd.done = cur.len;
                cmd.state = CmdState::Waiting;
            }
            Kind::H2c => {
                cmd.done += cur.len;
                cmd.r2t_offset += cur.len;
                cmd.r2t_left -= cur.len;
                if cmd.r2t_left > 0 {
                    return self.begin_h2c(inner, cur.tag);
                }
                cmd.state = CmdState::Waiting;
            }
        }
        Ok(())
    }
}
