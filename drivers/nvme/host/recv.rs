// SPDX-License-Identifier: GPL-2.0

//! The receive side: the protocol crate's sans-I/O [`proto::Receiver`],
//! driven from the socket.
//!
//! The receiver frames and checks every PDU header and the digests; this
//! file checks each PDU against the command it names (known command id,
//! right direction, data where the command expects it) and routes C2HData
//! straight from the socket into the request's pages. A PDU that does not
//! fit its command stops the queue before any of its data is written.
//!
//! The bytes come from TCP's receive queue as they are ([`SkbChunk`]):
//! everything queued is handled in one pass with the socket locked, so
//! completions run from there, and a PDU that asks for a send (R2T) only
//! queues it.

use crate::{
    glue::{
        host::sock_read::SkbChunk,
        sock_io::{receive, RxError, RxEvent},
    },
    proto,
    queue::{Close, Cmd, CmdState, Inner, Queue, AEN_TAG},
};
use kernel::prelude::*;

/// The tag of a command identifier (`nvme_tag_from_cid`).
fn tag_of(cid: u16) -> u16 {
    cid & 0xfff
}

impl Queue {
    /// Receives and handles what the socket holds; true if it held something.
    pub(crate) fn recv(&self, inner: &mut Inner) -> Result<bool, Close> {
        let taken = self.sock.sock().read_chunks(|chunk| self.recv_chunk(inner, chunk))?;
        Ok(taken > 0)
    }

    /// Feeds the receiver from `chunk` and handles each PDU it completes,
    /// until the chunk is used up.
    fn recv_chunk(&self, inner: &mut Inner, chunk: &mut SkbChunk<'_>) -> Result<(), Close> {
        loop {
            let Inner { rx, bvecs, .. } = &mut *inner;
            match receive(rx, &mut *chunk, bvecs, |tag| self.request(tag)) {
                Ok(RxEvent::Header) => self.handle_pdu(inner)?,
                Ok(RxEvent::DataDone { tag, len }) => self.data_done(inner, tag, len)?,
                Ok(RxEvent::Idle { .. }) => return Ok(()),
                Ok(RxEvent::Eof) => return Err(Close::Eof),
                Err(RxError::Proto(e)) => return Err(Close::Protocol(e)),
                Err(RxError::Sock(e)) => return Err(Close::Sock(e)),
                Err(RxError::NoSink) => return Err(Close::Bug(c"data for a command without a request")),
            }
        }
    }

    /// A whole PDU header is in ([`proto::Receiver::pdu`]): check it
    /// against its command.
    fn handle_pdu(&self, inner: &mut Inner) -> Result<(), Close> {
        // Each arm copies out only its own (small) header.
        match *inner.rx.pdu() {
            proto::Pdu::CapsuleResp(resp) => self.handle_response(inner, &resp),
            proto::Pdu::Data(data) => self.handle_c2h_data(inner, &data),
            proto::Pdu::R2t(r2t) => self.handle_r2t(inner, &r2t),
            proto::Pdu::TermReq(t) => Err(Close::TermReq { fes: t.fes, fei: t.fei }),
            // The receiver admits nothing else to a host.
            _ => Err(Close::Bug(c"a PDU only a host sends")),
        }
    }

    /// The command that `cid` names, if it is on the wire with exactly
    /// that identifier.
    fn command<'a>(inner: &'a mut Inner, cid: u16) -> Option<&'a mut Cmd> {
        inner.cmds.get_mut(usize::from(tag_of(cid))).filter(|c| c.state != CmdState::Idle && c.cid == cid)
    }

    fn handle_response(&self, inner: &mut Inner, resp: &proto::CapsuleResp) -> Result<(), Close> {
        let cid = resp.command_id();
        let cmd = Self::command(inner, cid).ok_or(Close::Cmd("response for an unknown command", cid))?;
        if cmd.state != CmdState::Waiting {
            return Err(Close::Cmd("response for a command whose data is still being sent", cid));
        }
        cmd.state = CmdState::Idle;
        let cqe = &resp.cqe;
        let result = u64::from_le_bytes([cqe[0], cqe[1], cqe[2], cqe[3], cqe[4], cqe[5], cqe[6], cqe[7]]);
        let status = u16::from_le_bytes([cqe[14], cqe[15]]);
        if self.qid == 0 && tag_of(cid) == AEN_TAG {
            self.ctrl().nctrl().complete_async_event(status, result);
            return Ok(());
        }
        let rq = self.request(tag_of(cid)).ok_or(Close::Bug(c"a response for a tag without a request"))?;
        rq.complete(status, result);
        Ok(())
    }

    fn handle_c2h_data(&self, inner: &mut Inner, data: &proto::Data) -> Result<(), Close> {
        let cid = data.cccid;
        let cmd = Self::command(inner, cid).ok_or(Close::Cmd("C2HData for an unknown command", cid))?;
        if cmd.state != CmdState::Waiting || cmd.write {
            return Err(Close::Cmd("C2HData for a command that reads no data", cid));
        }
        let end = data.datao.checked_add(data.datal);
        if data.datao != cmd.done || end.is_none_or(|e| e > cmd.data_len) {
            return Err(Close::Cmd("C2HData out of order or beyond the command's data", cid));
        }
        if data.success && !data.last {
            return Err(Close::Cmd("C2HData with SUCCESS but not LAST", cid));
        }
        cmd.success = data.success;
        inner.rx.deliver(tag_of(cid), data.datao);
        Ok(())
    }

    /// All data of a C2HData PDU arrived (and its digest matched).
    fn data_done(&self, inner: &mut Inner, tag: u16, len: u32) -> Result<(), Close> {
        let cmd = inner.cmds.get_mut(usize::from(tag)).ok_or(Close::Bug(c"data done for a tag beyond the queue's"))?;
        cmd.done += len;
        if !cmd.success {
            return Ok(());
        }
        // SUCCESS: no response follows; the command completes with its data.
        if cmd.done != cmd.data_len {
            return Err(Close::Cmd("C2HData with SUCCESS before all data", cmd.cid));
        }
        cmd.state = CmdState::Idle;
        let rq = self.request(tag).ok_or(Close::Bug(c"data for a tag without a request"))?;
        rq.complete(0, 0);
        Ok(())
    }

    fn handle_r2t(&self, inner: &mut Inner, r2t: &proto::R2t) -> Result<(), Close> {
        let cid = r2t.cccid;
        let cmd = Self::command(inner, cid).ok_or(Close::Cmd("R2T for an unknown command", cid))?;
        if cmd.state != CmdState::Waiting || !cmd.write || cmd.done >= cmd.data_len {
            return Err(Close::Cmd("R2T for a command with no data to send", cid));
        }
        let end = r2t.r2to.checked_add(r2t.r2tl);
        if r2t.r2to != cmd.done || end.is_none_or(|e| e > cmd.data_len) {
            return Err(Close::Cmd("R2T out of order or beyond the command's data", cid));
        }
        cmd.r2t_offset = r2t.r2to;
        cmd.r2t_left = r2t.r2tl;
        cmd.ttag = r2t.ttag;
        cmd.state = CmdState::H2cQueued;
        inner.tx.push_h2c(tag_of(cid))
    }
}
