// SPDX-License-Identifier: GPL-2.0

//! nvme-tcp-peer: a raw NVMe/TCP host for probing a target.
//!
//! ```text
//! nvme-tcp-peer icreq ADDR PORT [--hdgst] [--ddgst] [--hold SECS]
//!                                                     a valid ICReq/ICResp exchange;
//!                                                     --hold keeps the connection open
//!                                                     until the target closes it or SECS pass
//! nvme-tcp-peer hostile --list                        the violations it knows
//! nvme-tcp-peer hostile ADDR PORT [--nqn NQN] [CASE...]
//!                                                     send them (all by default); the
//!                                                     data-path cases connect to NQN
//! ```
//!
//! Each hostile case opens its own connection, commits one violation and
//! checks that the target ends the connection within a few seconds, after a
//! C2HTermReq with the expected fatal error status where the specification
//! asks for one. One line per case: `ok CASE: ...` or `FAIL CASE: ...`; the
//! exit status is 0 when every case passed.

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

/// What the target must do after a violation.
#[derive(Clone, Copy)]
enum Expect {
    /// Send a C2HTermReq with this FES, then close.
    Term(Fes),
    /// Close (a TermReq is allowed but not required: e.g. the peer itself
    /// ended the stream, so the target has nobody to report to).
    Close,
    /// Nothing to observe: the peer reset the connection itself. The VM test
    /// checks the target's log and that it unloads cleanly.
    Gone,
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
        expect: Expect::Term(Fes::InvalidHeaderField),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.send_h2c(&h2c(r, r.ttag.wrapping_add(7), 0, r.r2tl), None),
    },
    DataCase {
        name: "h2c-bad-offset",
        what: "H2CData at offset 512 where 0 is due",
        expect: Expect::Term(Fes::DataOutOfRange),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.send_h2c(&h2c(r, r.ttag, 512, 512), None),
    },
    DataCase {
        name: "h2c-beyond-r2t",
        what: "H2CData with twice the data the R2T asked for",
        expect: Expect::Term(Fes::DataOutOfRange),
        digests: NO_DIGESTS,
        kato_ms: 15000,
        send: |s, r| s.send_h2c(&h2c(r, r.ttag, 0, 2 * r.r2tl), None),
    },
    DataCase {
        name: "h2c-datal-mismatch",
        what: "H2CData whose datal disagrees with its plen (more data than announced)",
        expect: Expect::Term(Fes::InvalidHeaderField),
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
        expect: Expect::Term(Fes::InvalidHeaderField),
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

const CASES: &[Case] = &[
    Case {
        name: "icreq-bad-pfv",
        what: "ICReq with PDU format version 1",
        expect: Expect::Term(Fes::UnsupportedParameter),
        send: |s| s.write_all(&with_icreq(|b| b[8] = 1)),
    },
    Case {
        name: "icreq-bad-hlen",
        what: "ICReq with hlen 24",
        expect: Expect::Term(Fes::InvalidHeaderField),
        send: |s| s.write_all(&with_icreq(|b| b[2] = 24)),
    },
    Case {
        name: "icreq-bad-plen",
        what: "ICReq with plen 4096",
        expect: Expect::Term(Fes::InvalidHeaderField),
        send: |s| s.write_all(&with_icreq(|b| b[4..8].copy_from_slice(&4096u32.to_le_bytes()))),
    },
    Case {
        name: "icreq-hpda",
        what: "ICReq asking for host PDU data alignment 3",
        expect: Expect::Term(Fes::UnsupportedParameter),
        send: |s| s.write_all(&with_icreq(|b| b[10] = 3)),
    },
    Case {
        name: "icreq-digest-flag",
        what: "ICReq with HDGSTF set in its common header",
        expect: Expect::Term(Fes::InvalidHeaderField),
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
        expect: Expect::Term(Fes::InvalidHeaderField),
        send: |s| s.write_all(&with_icreq(|b| b[0] = 0x0c)),
    },
    Case {
        name: "c2h-pdu-from-host",
        what: "an ICResp sent to the target",
        expect: Expect::Term(Fes::InvalidHeaderField),
        send: |s| s.write_all(&with_icreq(|b| b[0] = 0x01)),
    },
    Case {
        name: "capsule-before-icreq",
        what: "a command capsule as the first PDU",
        expect: Expect::Term(Fes::PduSequenceError),
        send: |s| s.write_all(&capsule(0x06)),
    },
    Case {
        name: "second-icreq",
        what: "a valid ICReq, then another",
        expect: Expect::Term(Fes::PduSequenceError),
        send: |s| {
            handshake(s, good_icreq())?;
            s.write_all(&icreq_bytes(good_icreq()))
        },
    },
    Case {
        name: "bad-header-digest",
        what: "header digests on, then a capsule with a wrong header digest",
        expect: Expect::Term(Fes::HeaderDigestError),
        send: |s| {
            handshake(s, proto::IcReq { hdgst: true, ..good_icreq() })?;
            let mut b = [0u8; proto::CAPSULE_CMD_HLEN + proto::DIGEST_LEN];
            let sqe = [0u8; proto::SQE_LEN];
            let n = proto::CapsuleCmd { sqe, data_len: 0 }.encode(&mut b, HDGST).map_err(io::Error::other)?;
            b[n - 1] ^= 0x55;
            s.write_all(&b[..n])
        },
    },
    Case {
        name: "inline-too-large",
        what: "a capsule with 64 KiB of in-capsule data (the port allows 16 KiB)",
        expect: Expect::Term(Fes::DataTransferLimitExceeded),
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
    if got.is_empty() {
        return Ok(None);
    }
    // Anything before the TermReq (an ICResp) is skipped.
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
        let plen = ch.plen as usize;
        if plen == 0 {
            break;
        }
        at += plen;
    }
    Ok(None)
}

fn run_case(addr: &str, case: &Case) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(REACT)).map_err(|e| e.to_string())?;
    (case.send)(&mut s).map_err(|e| format!("sending: {e}"))?;
    let term = await_close(&mut s)?;
    judge(case.expect, term)
}

fn run_data_case(addr: &str, case: &DataCase) -> Result<String, String> {
    let mut s = Session::open(addr, case.digests).map_err(|e| format!("set-up: {e}"))?;
    let r2t = s.connect_and_write(case.kato_ms).map_err(|e| format!("set-up: {e}"))?;
    (case.send)(&mut s, &r2t).map_err(|e| format!("sending: {e}"))?;
    if let Expect::Gone = case.expect {
        return Ok("reset sent".into());
    }
    let term = await_close(s.stream())?;
    judge(case.expect, term)
}

fn judge(expect: Expect, term: Option<proto::TermReq>) -> Result<String, String> {
    match (expect, term) {
        (Expect::Term(fes), Some(t)) if t.fes == fes as u16 => {
            Ok(format!("C2HTermReq fes {:#x} fei {:#x}, then closed", t.fes, t.fei))
        }
        (Expect::Term(fes), Some(t)) => Err(format!("C2HTermReq fes {:#x}, expected {:#x}", t.fes, fes as u16)),
        (Expect::Term(fes), None) => Err(format!("closed without the C2HTermReq (fes {:#x}) the spec asks for", fes as u16)),
        (Expect::Close | Expect::Gone, Some(t)) => Ok(format!("C2HTermReq fes {:#x}, then closed", t.fes)),
        (Expect::Close | Expect::Gone, None) => Ok("closed".into()),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: nvme-tcp-peer icreq ADDR PORT [--hdgst] [--ddgst] [--hold SECS]\n       \
         nvme-tcp-peer hostile --list\n       \
         nvme-tcp-peer hostile ADDR PORT [--nqn NQN] [CASE...]"
    );
    ExitCode::from(2)
}

fn target(addr: &str, port: &str) -> Result<String, String> {
    let host = if addr.contains(':') { format!("[{addr}]:{port}") } else { format!("{addr}:{port}") };
    host.to_socket_addrs().map_err(|e| format!("{host}: {e}"))?;
    Ok(host)
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
