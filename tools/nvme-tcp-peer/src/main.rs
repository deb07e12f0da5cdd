// SPDX-License-Identifier: GPL-2.0

//! nvme-tcp-peer: a raw NVMe/TCP host for probing a target, and a proxy
//! that plays a misbehaving target to a host.
//!
//! ```text
//! nvme-tcp-peer icreq ADDR PORT [--hdgst] [--ddgst] [--hold SECS]
//!                                                     a valid ICReq/ICResp exchange;
//!                                                     --hold keeps the connection open
//!                                                     until the target closes it or SECS pass
//! nvme-tcp-peer h2c-split ADDR PORT [--nqn NQN] LEN CHUNK
//!                                                     a LEN-byte write to namespace 1 whose
//!                                                     R2T'd data goes in H2CData PDUs of at
//!                                                     most CHUNK bytes
//! nvme-tcp-peer hostile --list                        the violations it knows
//! nvme-tcp-peer hostile ADDR PORT [--nqn NQN] [CASE...]
//!                                                     send them (all by default); the
//!                                                     data-path cases connect to NQN
//! nvme-tcp-peer proxy --list                          the target misbehaviours it knows
//! nvme-tcp-peer proxy LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT CASE
//!                     [--after N] [--count N] [--dry-run]
//!                                                     forwards every connection a host
//!                                                     opens to the target, and corrupts
//!                                                     one target-to-host PDU of an I/O
//!                                                     queue after N suitable ones (see
//!                                                     `proxy.rs`); exits once --count
//!                                                     connections ended, if given
//! ```
//!
//! Each hostile case opens its own connection, commits one violation and
//! checks that the target ends the connection within a few seconds, after a
//! C2HTermReq with the expected fatal error status and information where the
//! specification asks for one. One line per case: `ok CASE: ... [port P]` or
//! `FAIL CASE: ... [port P]`, P being the local port of the connection that
//! committed the violation (the one the target's log names); the exit status
//! is 0 when every case passed.

mod proxy;
mod session;

use nvme_tcp_proto::{self as proto, Digests, Fes, Pdu, Role, Stage};
use session::Session;
use std::{
    io::{self, Read, Write},
    net::{Shutdown, TcpStream, ToSocketAddrs},
    process::ExitCode,
    time::{Duration, Instant},
};

/// The subsystem data-path cases connect to, unless `--nqn` says otherwise.
const DEFAULT_NQN: &str = "nqn.2026-11.io.nvme-tcp-rs:test";

/// How long the target has to react to a violation.
const REACT: Duration = Duration::from_secs(5);

/// The Fatal Error Information a C2HTermReq must carry.
#[derive(Clone, Copy, Debug)]
enum Fei {
    /// This value: the offending field's byte offset, or 0 where the
    /// specification reserves the field.
    Is(u32),
    /// The value this function computes (the header digest a case sent).
    From(fn() -> u32),
}

impl Fei {
    fn value(self) -> u32 {
        match self {
            Fei::Is(v) => v,
            Fei::From(f) => f(),
        }
    }
}

/// What the target must do after a violation.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Send a C2HTermReq with this FES and FEI, then close.
    Term(Fes, Fei),
    /// Close (a TermReq is allowed but not required: e.g. the peer itself
    /// ended the stream, so the target has nobody to report to).
    Close,
    /// The peer reset the connection itself, so there is nothing to watch on
    /// it: the target must still answer a new connection (the VM test also
    /// checks its log line for the reset connection and that it unloads).
    Gone,
    /// Not a violation: the case checks the target's answer itself, and the
    /// connection must stay open.
    StaysOpen,
}

/// One protocol violation.
struct Case {
    name: &'static str,
    what: &'static str,
    expect: Expect,
    /// Commits the violation on a fresh connection.
    send: fn(&mut TcpStream) -> io::Result<()>,
}

/// A violation that needs a live I/O queue: `send` gets a session whose
/// controller is connected, with a 4 KiB write outstanding for which the
/// target sent the R2T (`r2t`).
struct DataCase {
    name: &'static str,
    what: &'static str,
    expect: Expect,
    digests: Digests,
    /// Keep-alive timeout the controller is connected with, in ms.
    kato_ms: u32,
    send: fn(&mut Session, &proto::R2t) -> io::Result<()>,
}

const NO_DIGESTS: Digests = Digests { header: false, data: false };
const DDGST: Digests = Digests { header: false, data: true };
const HDGST: Digests = Digests { header: true, data: false };

fn h2c(r2t: &proto::R2t, ttag: u16, datao: u32, datal: u32) -> proto::Data {
    proto::Data { from_host: true, cccid: r2t.cccid, ttag, datao, datal, last: true, success: false }
}

const DATA_CASES: &[DataCase] = &[
    DataCase {
        name: "h2c-unknown-ttag",
        what: "H2CData whose ttag names no command",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(10)),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.send_h2c(&h2c(r, r.ttag.wrapping_add(7), 0, r.r2tl), None),
    },
    DataCase {
        name: "h2c-bad-offset",
        what: "H2CData at offset 512 where 0 is due",
        expect: Expect::Term(Fes::DataOutOfRange, Fei::Is(0)),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.send_h2c(&h2c(r, r.ttag, 512, 512), None),
    },
    DataCase {
        name: "h2c-beyond-r2t",
        what: "H2CData with twice the data the R2T asked for",
        expect: Expect::Term(Fes::DataOutOfRange, Fei::Is(0)),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.send_h2c(&h2c(r, r.ttag, 0, 2 * r.r2tl), None),
    },
    DataCase {
        name: "h2c-datal-mismatch",
        what: "H2CData whose datal disagrees with its plen (more data than announced)",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(16)),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.send_h2c(&h2c(r, r.ttag, 0, r.r2tl), Some(r.r2tl + 512)),
    },
    DataCase {
        name: "h2c-bad-data-digest",
        what: "H2CData with a wrong data digest",
        expect: Expect::Close,
        digests: DDGST,
        kato_ms: 15000,
        send: |s, r| s.send_h2c_bad_ddgst(&h2c(r, r.ttag, 0, r.r2tl)),
    },
    DataCase {
        name: "h2c-unsolicited",
        what: "H2CData for the ttag of a command that has no R2T",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(10)),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| {
            // Complete the outstanding write properly, then send more data for it.
            s.send_h2c(&h2c(r, r.ttag, 0, r.r2tl), None)?;
            s.recv_response()?;
            s.send_h2c(&h2c(r, r.ttag, 0, r.r2tl), None)
        },
    },
    DataCase {
        name: "keep-alive-expiry",
        what: "a controller with a 1 s keep-alive timeout goes silent with a write waiting for data",
        expect: Expect::Close,
        digests: NO_DIGESTS,
        kato_ms: 1000,
        send: |_, _| Ok(()),
    },
    DataCase {
        name: "inline-refused",
        what: "(control) a write with in-capsule data to a namespace that does not exist: refused, connection kept",
        expect: Expect::StaysOpen,
        digests: DDGST,
        kato_ms: 15000,
        send: |s, _| {
            let cid = s.send_write(0xfffe, 4096, &[0x5a; 4096], false)?;
            let cqe = s.recv_cqe()?;
            match (u16::from_le_bytes([cqe[12], cqe[13]]), session::cqe_status(&cqe)) {
                (c, st) if c == cid && st != 0 => Ok(()),
                (c, st) => Err(io::Error::other(format!("expected an error status for cid {cid}, got cid {c} status {st:#x}"))),
            }
        },
    },
    DataCase {
        name: "mdts-exceeded",
        what: "an 8 MiB write, past the 4 MiB MDTS: refused with Data SGL Length Invalid, connection kept",
        expect: Expect::StaysOpen,
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, _| {
            let cid = s.send_write(1, 8 << 20, &[], false)?;
            let cqe = s.recv_cqe()?;
            // Status code 0xf, generic command status, Do Not Retry.
            match (u16::from_le_bytes([cqe[12], cqe[13]]), session::cqe_status(&cqe)) {
                (c, 0x400f) if c == cid => Ok(()),
                (c, st) => Err(io::Error::other(format!("expected status 0x400f for cid {cid}, got cid {c} status {st:#x}"))),
            }
        },
    },
    DataCase {
        name: "admin-sqsize-too-large",
        what: "a second controller's admin queue of 65535 entries (more command tags than 16 bits hold, \
               counting two per entry): refused with Connect Invalid Parameters, connection kept",
        expect: Expect::StaysOpen,
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, _| {
            let addr = s.peer_addr()?;
            let mut admin = Session::open(&addr, s.digests())?;
            let cqe = admin.connect_admin(0xfffe)?;
            // Status code 0x82, command specific status 0x1 (fabrics), Do Not Retry.
            match session::cqe_status(&cqe) {
                0x4182 => Ok(()),
                st => Err(io::Error::other(format!("expected status 0x4182, got {st:#x}"))),
            }
        },
    },
    DataCase {
        name: "inline-refused-bad-ddgst",
        what: "the same refused write with a wrong data digest on its in-capsule data",
        expect: Expect::Close,
        digests: DDGST,
        kato_ms: 15000,
        send: |s, _| s.send_write(0xfffe, 4096, &[0x5a; 4096], true).map(|_| ()),
    },
    DataCase {
        name: "rst-during-data",
        what: "half of the H2CData, then a TCP reset",
        expect: Expect::Gone,
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.reset_mid_h2c(&h2c(r, r.ttag, 0, r.r2tl)),
    },
];

fn icreq_bytes(req: proto::IcReq) -> [u8; proto::ICREQ_LEN] {
    let mut b = [0u8; proto::ICREQ_LEN];
    // The buffer is exactly an ICReq long.
    let _ = req.encode(&mut b);
    b
}

fn good_icreq() -> proto::IcReq {
    proto::IcReq { pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }
}

/// Sends a valid ICReq and reads the ICResp.
fn handshake(s: &mut TcpStream, req: proto::IcReq) -> io::Result<proto::IcResp> {
    s.write_all(&icreq_bytes(req))?;
    let mut resp = [0u8; proto::ICRESP_LEN];
    s.read_exact(&mut resp)?;
    let resp = proto::IcResp::decode(&resp).map_err(|e| io::Error::other(format!("ICResp: {e}")))?;
    resp.validate_host(&req).map_err(|e| io::Error::other(format!("ICResp: {e}")))?;
    Ok(resp)
}

fn with_icreq(f: impl Fn(&mut [u8; proto::ICREQ_LEN])) -> [u8; proto::ICREQ_LEN] {
    let mut b = icreq_bytes(good_icreq());
    f(&mut b);
    b
}

fn capsule(sqe_opcode: u8) -> [u8; proto::CAPSULE_CMD_HLEN] {
    let mut sqe = [0u8; proto::SQE_LEN];
    sqe[0] = sqe_opcode;
    let mut b = [0u8; proto::CAPSULE_CMD_HLEN];
    let _ = proto::CapsuleCmd { sqe, data_len: 0 }.encode(&mut b, Digests::NONE);
    b
}

/// A capsule with header digests on and a wrong header digest, and that
/// digest as the target sees it.
fn bad_hdgst_capsule() -> ([u8; proto::CAPSULE_CMD_HLEN + proto::DIGEST_LEN], u32) {
    let mut b = [0u8; proto::CAPSULE_CMD_HLEN + proto::DIGEST_LEN];
    let sqe = [0u8; proto::SQE_LEN];
    // The buffer holds exactly the header and its digest.
    let _ = proto::CapsuleCmd { sqe, data_len: 0 }.encode(&mut b, HDGST);
    b[proto::CAPSULE_CMD_HLEN + 3] ^= 0x55;
    let mut d = [0u8; 4];
    d.copy_from_slice(&b[proto::CAPSULE_CMD_HLEN..]);
    (b, u32::from_le_bytes(d))
}

const CASES: &[Case] = &[
    Case {
        name: "icreq-bad-pfv",
        what: "ICReq with PDU format version 1",
        expect: Expect::Term(Fes::UnsupportedParameter, Fei::Is(8)),
        send: |s| s.write_all(&with_icreq(|b| b[8] = 1)),
    },
    Case {
        name: "icreq-bad-hlen",
        what: "ICReq with hlen 24",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(2)),
        send: |s| s.write_all(&with_icreq(|b| b[2] = 24)),
    },
    Case {
        name: "icreq-bad-plen",
        what: "ICReq with plen 4096",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(4)),
        send: |s| s.write_all(&with_icreq(|b| b[4..8].copy_from_slice(&4096u32.to_le_bytes()))),
    },
    Case {
        name: "icreq-hpda",
        what: "ICReq asking for host PDU data alignment 3",
        expect: Expect::Term(Fes::UnsupportedParameter, Fei::Is(10)),
        send: |s| s.write_all(&with_icreq(|b| b[10] = 3)),
    },
    Case {
        name: "icreq-digest-flag",
        what: "ICReq with HDGSTF set in its common header",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(1)),
        send: |s| s.write_all(&with_icreq(|b| b[1] = proto::flags::HDGSTF)),
    },
    Case {
        name: "icreq-truncated",
        what: "40 bytes of an ICReq, then FIN",
        expect: Expect::Close,
        send: |s| {
            s.write_all(&icreq_bytes(good_icreq())[..40])?;
            s.shutdown(Shutdown::Write)
        },
    },
    Case {
        name: "header-truncated",
        what: "5 bytes of a common header, then FIN",
        expect: Expect::Close,
        send: |s| {
            s.write_all(&icreq_bytes(good_icreq())[..5])?;
            s.shutdown(Shutdown::Write)
        },
    },
    Case {
        name: "unknown-pdu-type",
        what: "a PDU of type 0x0c as the first PDU",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(0)),
        send: |s| s.write_all(&with_icreq(|b| b[0] = 0x0c)),
    },
    Case {
        name: "c2h-pdu-from-host",
        what: "an ICResp sent to the target",
        expect: Expect::Term(Fes::InvalidHeaderField, Fei::Is(0)),
        send: |s| s.write_all(&with_icreq(|b| b[0] = 0x01)),
    },
    Case {
        name: "capsule-before-icreq",
        what: "a command capsule as the first PDU",
        expect: Expect::Term(Fes::PduSequenceError, Fei::Is(0)),
        send: |s| s.write_all(&capsule(0x06)),
    },
    Case {
        name: "second-icreq",
        what: "a valid ICReq, then another",
        expect: Expect::Term(Fes::PduSequenceError, Fei::Is(0)),
        send: |s| {
            handshake(s, good_icreq())?;
            s.write_all(&icreq_bytes(good_icreq()))
        },
    },
    Case {
        name: "bad-header-digest",
        what: "header digests on, then a capsule with a wrong header digest",
        // FEI: the digest received (NVMe/TCP 1.0, C2HTermReq FEI).
        expect: Expect::Term(Fes::HeaderDigestError, Fei::From(|| bad_hdgst_capsule().1)),
        send: |s| {
            handshake(s, proto::IcReq { hdgst: true, ..good_icreq() })?;
            s.write_all(&bad_hdgst_capsule().0)
        },
    },
    Case {
        name: "inline-too-large",
        what: "a capsule with 64 KiB of in-capsule data (the port allows 16 KiB)",
        expect: Expect::Term(Fes::DataTransferLimitExceeded, Fei::Is(0)),
        send: |s| {
            handshake(s, good_icreq())?;
            let mut b = [0u8; proto::CAPSULE_CMD_HLEN];
            let mut sqe = [0u8; proto::SQE_LEN];
            sqe[0] = 0x01;
            let _ = proto::CapsuleCmd { sqe, data_len: 65536 }.encode(&mut b, NO_DIGESTS);
            s.write_all(&b)?;
            s.write_all(&[0u8; 65536])
        },
    },
    Case {
        name: "stop-mid-pdu",
        what: "30 bytes of a capsule, 2 s of silence, then FIN",
        expect: Expect::Close,
        send: |s| {
            handshake(s, good_icreq())?;
            s.write_all(&capsule(0x06)[..30])?;
            std::thread::sleep(Duration::from_secs(2));
            s.shutdown(Shutdown::Write)
        },
    },
];

/// Waits for the target to end the connection; returns the TermReq it sent
/// first, if any.
fn await_close(s: &mut TcpStream) -> Result<Option<proto::TermReq>, String> {
    let deadline = Instant::now() + REACT;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("connection still open after {} s", REACT.as_secs()));
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    parse_close(&got)
}

/// The C2HTermReq among the bytes a target sent before closing, if any;
/// PDUs before it (an ICResp) are skipped.
fn parse_close(got: &[u8]) -> Result<Option<proto::TermReq>, String> {
    let mut at = 0;
    while at < got.len() {
        let rest = &got[at..];
        let ch = proto::CommonHeader::decode(rest).map_err(|e| format!("target sent {e}"))?;
        if ch.pdu_type == proto::PduType::C2HTermReq as u8 {
            return match Pdu::decode(rest, Role::Host, Stage::Handshake, 0) {
                Ok((Pdu::TermReq(t), _)) => Ok(Some(t)),
                Ok((p, _)) => Err(format!("unexpected {p:?}")),
                Err(e) => Err(format!("malformed C2HTermReq: {e}")),
            };
        }
        // The target closed: whatever it sent must be whole PDUs.
        let plen = ch.plen as usize;
        if plen < proto::COMMON_HEADER_LEN || plen > rest.len() {
            return Err(format!("target sent a PDU of type {:#x} with plen {plen}, {} bytes before it closed", ch.pdu_type, rest.len()));
        }
        at += plen;
    }
    Ok(None)
}

/// The local port of a connection, for the target's log lines.
fn port_of(s: &TcpStream) -> u16 {
    s.local_addr().map(|a| a.port()).unwrap_or(0)
}

fn run_case(addr: &str, case: &Case) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let port = port_of(&s);
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(REACT)).map_err(|e| e.to_string())?;
    (case.send)(&mut s).map_err(|e| format!("sending: {e} [port {port}]"))?;
    let term = await_close(&mut s)?;
    judge(case.expect, term).map(|how| format!("{how} [port {port}]"))
}

fn run_data_case(addr: &str, case: &DataCase) -> Result<String, String> {
    let mut s = Session::open(addr, case.digests).map_err(|e| format!("set-up: {e}"))?;
    let port = s.local_port();
    let r2t = s.connect_and_write(case.kato_ms).map_err(|e| format!("set-up: {e} [port {port}]"))?;
    (case.send)(&mut s, &r2t).map_err(|e| format!("sending: {e} [port {port}]"))?;
    let how = match case.expect {
        Expect::Gone => {
            drop(s);
            // The target must go on serving: a fresh connection gets its ICResp.
            let mut fresh = TcpStream::connect(addr).map_err(|e| format!("after the reset: connect: {e}"))?;
            fresh.set_read_timeout(Some(REACT)).map_err(|e| e.to_string())?;
            handshake(&mut fresh, good_icreq()).map_err(|e| format!("after the reset: ICReq: {e}"))?;
            "reset sent; the target answers a new connection".to_string()
        }
        Expect::StaysOpen => {
            let stream = s.stream();
            stream.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
            let mut b = [0u8; 1];
            match stream.read(&mut b) {
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    "answered, connection kept".to_string()
                }
                Ok(0) => return Err(format!("the target closed the connection [port {port}]")),
                Ok(_) => return Err(format!("the target sent an unexpected PDU [port {port}]")),
                Err(e) => return Err(format!("the connection failed: {e} [port {port}]")),
            }
        }
        expect => judge(expect, await_close(s.stream())?)?,
    };
    Ok(format!("{how} [port {port}]"))
}

/// Whether the way the target ended a connection is what `expect` asks.
fn judge(expect: Expect, term: Option<proto::TermReq>) -> Result<String, String> {
    match (expect, term) {
        (Expect::Term(fes, fei), Some(t)) if t.fes == fes as u16 && t.fei == fei.value() => {
            Ok(format!("C2HTermReq fes {:#x} fei {:#x}, then closed", t.fes, t.fei))
        }
        (Expect::Term(fes, fei), Some(t)) if t.fes == fes as u16 => {
            Err(format!("C2HTermReq fes {:#x} fei {:#x}, expected fei {:#x}", t.fes, t.fei, fei.value()))
        }
        (Expect::Term(fes, _), Some(t)) => Err(format!("C2HTermReq fes {:#x}, expected {:#x}", t.fes, fes as u16)),
        (Expect::Term(fes, _), None) => Err(format!("closed without the C2HTermReq (fes {:#x}) the spec asks for", fes as u16)),
        (Expect::Close | Expect::Gone, Some(t)) => Ok(format!("C2HTermReq fes {:#x}, then closed", t.fes)),
        (Expect::Close | Expect::Gone, None) => Ok("closed".into()),
        (Expect::StaysOpen, Some(t)) => Err(format!("C2HTermReq fes {:#x} on a connection that should stay", t.fes)),
        (Expect::StaysOpen, None) => Err("closed a connection that should stay".into()),
    }
}

/// A `len`-byte write whose data goes in H2CData PDUs of at most `chunk`
/// bytes; returns how many PDUs it took.
fn split_write(host: &str, len: u32, chunk: u32) -> Result<u32, String> {
    let mut s = Session::open(host, NO_DIGESTS).map_err(|e| format!("set-up: {e}"))?;
    s.connect_io(15000).map_err(|e| format!("set-up: {e}"))?;
    let cid = s.send_write(1, len, &[], false).map_err(|e| e.to_string())?;
    let r2t = s.recv_r2t(cid, len).map_err(|e| e.to_string())?;
    let (mut off, mut n) = (0, 0);
    while off < len {
        let l = chunk.min(len - off);
        let d = proto::Data { from_host: true, cccid: cid, ttag: r2t.ttag, datao: off, datal: l, last: off + l == len, success: false };
        if let Err(e) = s.send_h2c(&d, None) {
            // The target may have refused an earlier PDU and closed: what
            // it said before closing is the answer, not the failed send.
            return Err(match await_close(s.stream()) {
                Ok(Some(t)) => format!("C2HTermReq fes {:#x} fei {:#x}, then closed", t.fes, t.fei),
                Ok(None) => format!("closed without a C2HTermReq (send: {e})"),
                Err(why) => format!("send: {e}; then {why}"),
            });
        }
        off += l;
        n += 1;
    }
    s.recv_response().map_err(|e| e.to_string())?;
    Ok(n)
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: nvme-tcp-peer icreq ADDR PORT [--hdgst] [--ddgst] [--hold SECS]\n       \
         nvme-tcp-peer h2c-split ADDR PORT [--nqn NQN] LEN CHUNK\n       \
         nvme-tcp-peer hostile --list\n       \
         nvme-tcp-peer hostile ADDR PORT [--nqn NQN] [CASE...]\n       \
         nvme-tcp-peer proxy --list\n       \
         nvme-tcp-peer proxy LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT CASE [--after N] [--count N] [--dry-run]"
    );
    ExitCode::from(2)
}

fn target(addr: &str, port: &str) -> Result<String, String> {
    let host = if addr.contains(':') { format!("[{addr}]:{port}") } else { format!("{addr}:{port}") };
    host.to_socket_addrs().map_err(|e| format!("{host}: {e}"))?;
    Ok(host)
}

/// The proxy's options from its command line (after the two addresses).
fn proxy_options(listen: String, target: String, case: &str, opts: &[&str]) -> Result<proxy::Options, String> {
    let case = proxy::Case::by_name(case).ok_or(format!("no case named {case} (see proxy --list)"))?;
    let mut o = proxy::Options { listen, target, case, after: proxy::DEFAULT_AFTER, count: None, dry_run: false };
    let mut opts = opts.iter();
    while let Some(opt) = opts.next() {
        let mut num = || opts.next().and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{opt} wants a number"));
        match *opt {
            "--after" => o.after = num()?,
            "--count" => o.count = Some(usize::try_from(num()?).map_err(|e| e.to_string())?),
            "--dry-run" => o.dry_run = true,
            _ => return Err(format!("unknown option {opt}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match argv.as_slice() {
        ["hostile", "--list"] => {
            for c in CASES {
                println!("{:24} {}", c.name, c.what);
            }
            for c in DATA_CASES {
                println!("{:24} {}", c.name, c.what);
            }
            ExitCode::SUCCESS
        }
        ["hostile", addr, port, rest @ ..] => {
            let (nqn, names) = match rest {
                ["--nqn", nqn, names @ ..] => (nqn.to_string(), names),
                names => (DEFAULT_NQN.to_string(), names),
            };
            let _ = session::SUBSYS_NQN.set(nqn);
            let host = match target(addr, port) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let all: Vec<&str> = CASES.iter().map(|c| c.name).chain(DATA_CASES.iter().map(|c| c.name)).collect();
            let chosen: Vec<&str> = if names.is_empty() { all.clone() } else { names.to_vec() };
            if let Some(n) = chosen.iter().find(|n| !all.contains(n)) {
                eprintln!("no case named {n} (see --list)");
                return ExitCode::from(2);
            }
            let mut failed = 0;
            for name in chosen {
                let result = match CASES.iter().find(|c| c.name == name) {
                    Some(c) => run_case(&host, c),
                    None => match DATA_CASES.iter().find(|c| c.name == name) {
                        Some(c) => run_data_case(&host, c),
                        None => Err("no such case".into()),
                    },
                };
                match result {
                    Ok(how) => println!("ok {name}: {how}"),
                    Err(why) => {
                        println!("FAIL {name}: {why}");
                        failed += 1;
                    }
                }
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        ["proxy", "--list"] => {
            for (_, name, what) in proxy::CASES {
                println!("{name:24} {what}");
            }
            ExitCode::SUCCESS
        }
        ["proxy", laddr, lport, taddr, tport, case, opts @ ..] => {
            let o = target(laddr, lport)
                .and_then(|l| target(taddr, tport).map(|t| (l, t)))
                .and_then(|(l, t)| proxy_options(l, t, case, opts));
            let o = match o {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match proxy::run(o) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("proxy: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["h2c-split", addr, port, rest @ ..] => {
            let (nqn, nums) = match rest {
                ["--nqn", nqn, nums @ ..] => (nqn.to_string(), nums),
                nums => (DEFAULT_NQN.to_string(), nums),
            };
            let (len, chunk) = match nums {
                [l, c] => match (l.parse::<u32>(), c.parse::<u32>()) {
                    (Ok(l), Ok(c)) if l > 0 && c > 0 && l % 512 == 0 => (l, c),
                    _ => return usage(),
                },
                _ => return usage(),
            };
            let _ = session::SUBSYS_NQN.set(nqn);
            match target(addr, port).and_then(|host| split_write(&host, len, chunk)) {
                Ok(n) => {
                    println!("ok: {len} bytes in {n} H2CData PDUs of at most {chunk} bytes, write succeeded");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("FAIL: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["icreq", addr, port, opts @ ..] => {
            let mut req = good_icreq();
            let mut hold = None;
            let mut opts = opts.iter();
            while let Some(o) = opts.next() {
                match *o {
                    "--hdgst" => req.hdgst = true,
                    "--ddgst" => req.ddgst = true,
                    "--hold" => match opts.next().and_then(|v| v.parse().ok()) {
                        Some(secs) => hold = Some(Duration::from_secs(secs)),
                        None => return usage(),
                    },
                    _ => return usage(),
                }
            }
            let result = target(addr, port).and_then(|host| {
                let mut s = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
                s.set_read_timeout(Some(REACT)).map_err(|e| e.to_string())?;
                let r = handshake(&mut s, req).map_err(|e| e.to_string())?;
                println!(
                    "ICResp pfv {} cpda {} hdgst {} ddgst {} maxdata {}",
                    r.pfv, r.cpda, r.hdgst as u8, r.ddgst as u8, r.maxdata
                );
                if let Some(hold) = hold {
                    // Until the target closes (EOF or reset) or time is up.
                    s.set_read_timeout(Some(hold)).map_err(|e| e.to_string())?;
                    let mut b = [0u8; 64];
                    match s.read(&mut b) {
                        Ok(0) => println!("closed by the target"),
                        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => println!("closed by the target"),
                        Ok(n) => return Err(format!("target sent {n} unexpected bytes")),
                        Err(e) => return Err(format!("still open after {} s ({e})", hold.as_secs())),
                    }
                }
                Ok(())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => usage(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(fes: Fes, fei: u32) -> Option<proto::TermReq> {
        Some(proto::TermReq { from_host: false, fes: fes as u16, fei, data_len: 0 })
    }

    fn termreq_bytes(fes: Fes, fei: u32) -> Vec<u8> {
        let mut b = [0u8; 24];
        let n = term(fes, fei).map(|t| t.encode(&mut b, &[])).and_then(Result::ok).unwrap_or(0);
        b[..n].to_vec()
    }

    #[test]
    fn judge_term_wants_fes_and_fei() {
        let want = Expect::Term(Fes::InvalidHeaderField, Fei::Is(10));
        assert!(judge(want, term(Fes::InvalidHeaderField, 10)).is_ok());
        assert!(judge(want, term(Fes::InvalidHeaderField, 16)).unwrap_err().contains("expected fei 0xa"));
        assert!(judge(want, term(Fes::DataOutOfRange, 10)).unwrap_err().contains("expected 0x1"));
        assert!(judge(want, None).unwrap_err().contains("without the C2HTermReq"));
    }

    #[test]
    fn judge_computed_fei() {
        let (_, digest) = bad_hdgst_capsule();
        let want = Expect::Term(Fes::HeaderDigestError, Fei::From(|| bad_hdgst_capsule().1));
        assert!(judge(want, term(Fes::HeaderDigestError, digest)).is_ok());
        assert!(judge(want, term(Fes::HeaderDigestError, digest ^ 1)).is_err());
    }

    #[test]
    fn bad_hdgst_capsule_digest_is_wrong() {
        let (b, digest) = bad_hdgst_capsule();
        assert_ne!(digest, proto::crc32c(&b[..proto::CAPSULE_CMD_HLEN]));
        assert_eq!(digest ^ 0x5500_0000, proto::crc32c(&b[..proto::CAPSULE_CMD_HLEN]));
    }

    #[test]
    fn judge_close_and_stays_open() {
        assert!(judge(Expect::Close, None).is_ok());
        assert!(judge(Expect::Close, term(Fes::InvalidHeaderField, 0)).is_ok());
        assert!(judge(Expect::Gone, None).is_ok());
        assert!(judge(Expect::StaysOpen, None).is_err());
        assert!(judge(Expect::StaysOpen, term(Fes::InvalidHeaderField, 0)).is_err());
    }

    #[test]
    fn parse_close_finds_the_termreq_after_an_icresp() {
        let mut got = vec![0u8; proto::ICRESP_LEN];
        let resp = proto::IcResp { pfv: 0, cpda: 0, hdgst: false, ddgst: false, maxdata: 4096 };
        assert!(resp.encode(&mut got).is_ok());
        got.extend(termreq_bytes(Fes::UnsupportedParameter, 8));
        let t = parse_close(&got).ok().flatten().map(|t| (t.fes, t.fei));
        assert_eq!(t, Some((Fes::UnsupportedParameter as u16, 8)));
    }

    #[test]
    fn parse_close_without_termreq_or_with_garbage() {
        assert_eq!(parse_close(&[]).map(|t| t.is_none()), Ok(true));
        let mut got = vec![0u8; proto::ICRESP_LEN];
        let resp = proto::IcResp { pfv: 0, cpda: 0, hdgst: false, ddgst: false, maxdata: 4096 };
        assert!(resp.encode(&mut got).is_ok());
        assert_eq!(parse_close(&got).map(|t| t.is_none()), Ok(true));
        assert!(parse_close(&[0xff; 8]).is_err());
        let tr = termreq_bytes(Fes::InvalidHeaderField, 0);
        assert!(parse_close(&tr[..tr.len() - 4]).is_err());
    }

    #[test]
    fn proxy_options_parse() {
        let o = proxy_options("l".into(), "t".into(), "truncated", &[]).expect("parses");
        assert_eq!((o.case, o.after, o.count, o.dry_run), (proxy::Case::Truncated, proxy::DEFAULT_AFTER, None, false));
        let o = proxy_options("l".into(), "t".into(), "bad-hlen", &["--after", "7", "--count", "3", "--dry-run"]).expect("parses");
        assert_eq!((o.case, o.after, o.count, o.dry_run), (proxy::Case::BadHlen, 7, Some(3), true));
        assert!(proxy_options("l".into(), "t".into(), "nothing", &[]).is_err());
        assert!(proxy_options("l".into(), "t".into(), "bad-hlen", &["--after"]).is_err());
        assert!(proxy_options("l".into(), "t".into(), "bad-hlen", &["--after", "x"]).is_err());
        assert!(proxy_options("l".into(), "t".into(), "bad-hlen", &["--bogus"]).is_err());
    }

    #[test]
    fn every_case_name_is_unique() {
        let mut names: Vec<&str> = CASES.iter().map(|c| c.name).chain(DATA_CASES.iter().map(|c| c.name)).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
