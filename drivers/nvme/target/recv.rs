// SPDX-License-Identifier: GPL-2.0

//! The receive side: the protocol crate's sans-I/O [`proto::Receiver`],
//! driven from the socket.
//!
//! The receiver frames and checks every PDU header (a bad common header
//! ends the connection before any byte it announced is awaited), checks the
//! digests, and says where each byte goes. Header bytes go into its own
//! buffer; a command's data goes straight from the socket into the
//! command's pages, except for the few bytes read ahead with a header.

use crate::{
    command::{Ready, MAX_DATA},
    glue::{
        sock_io::{receive, RxError, RxEvent},
        target::params,
    },
    proto,
    queue::{Close, Inner, Queue},
};
use kernel::prelude::*;

/// The receiver's limits for a port that accepts `inline_data_size` bytes of
/// in-capsule data.
pub(crate) fn limits(inline_data_size: u32) -> proto::Limits {
    proto::Limits { max_data: MAX_DATA, max_inline: inline_data_size }
}

impl Queue {
    /// Receives what the socket has up to the next complete PDU header or
    /// piece of data, and handles it; true if progress was made.
    pub(crate) fn recv(&self, inner: &mut Inner, ready: &mut Ready) -> Result<bool, Close> {
        let Inner { rx, bvecs, .. } = &mut *inner;
        match receive(rx, self.sock.sock(), bvecs, |tag| self.request(tag)) {
            Ok(RxEvent::Header) => {
                let pdu = *inner.rx.pdu();
                self.handle_pdu(inner, &pdu, ready).map(|()| true)
            }
            Ok(RxEvent::DataDone { tag, len }) => self.data_done(inner, tag, len, ready).map(|()| true),
            Ok(RxEvent::Idle { progress }) => Ok(progress),
            Ok(RxEvent::Eof) => Err(Self::eof(rx)),
            Err(RxError::Proto(e)) => Err(Close::Protocol(e)),
            Err(RxError::Sock(e)) => Err(Close::Sock(e)),
            Err(RxError::NoSink) => Err(Close::Bug(c"data for a missing command")),
        }
    }

    /// The host closed the connection: orderly between PDUs, else an error.
    fn eof(rx: &proto::Receiver) -> Close {
        if rx.at_boundary() {
            Close::Quiet
        } else {
            Close::Reason("connection closed in the middle of a PDU")
        }
    }

    /// A whole PDU header is in: handle it.
    fn handle_pdu(&self, inner: &mut Inner, pdu: &proto::Pdu, ready: &mut Ready) -> Result<(), Close> {
        match pdu {
            proto::Pdu::IcReq(icreq) => self.handle_icreq(inner, icreq),
            proto::Pdu::CapsuleCmd(cmd) => self.handle_capsule(inner, cmd, ready),
            proto::Pdu::Data(data) => self.handle_h2c_data(inner, data),
            proto::Pdu::TermReq(t) => {
                if crate::glue::sock_io::peer_log_allowed() {
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
            // The receiver admits nothing else to a controller.
            _ => Err(Close::Bug(c"a PDU only a controller sends")),
        }
    }

    fn handle_icreq(&self, inner: &mut Inner, icreq: &proto::IcReq) -> Result<(), Close> {
        icreq.validate_target()?;
        let resp = proto::IcResp {
            pfv: proto::PFV_1_0,
            cpda: 0,
            hdgst: icreq.hdgst,
            ddgst: icreq.ddgst,
            maxdata: params::max_h2c_data(),
        };
        inner.max_h2c = resp.maxdata;
        inner.tx.queue_icresp(&resp)?;
        inner.rx.set_stage(proto::Stage::Established(icreq.digests()));
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
}
