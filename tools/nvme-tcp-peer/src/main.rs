// SPDX-License-Identifier: GPL-2.0

//! nvme-tcp-peer: a raw NVMe/TCP host for probing a target.
//!
//! ```text
//! nvme-tcp-peer icreq ADDR PORT [--hdgst] [--ddgst] [--hold SECS]
//!                                                     a valid ICReq/ICResp exchange;
//!                                                     --hold keeps the connection open
//!                                                     until the target closes it or SECS pass
//! nvme-tcp-peer hostile --list                        the violations it knows
//! nvme-tcp-peer hostile ADDR PORT [CASE...]           send them (all by default)
//! ```
//!
//! Each hostile case opens its own connection, commits one violation and
//! checks that the target ends the connection within a few seconds, after a
//! C2HTermReq with the expected fatal error status where the specification
//! asks for one. One line per case: `ok CASE: ...` or `FAIL CASE: ...`; the
//! exit status is 0 when every case passed.

use nvme_tcp_proto::{self as proto, Digests, Fes, Pdu, Role, Stage};
use std::{
    io::{self, Read, Write},
    net::{Shutdown, TcpStream, ToSocketAddrs},
    process::ExitCode,
    time::{Duration, Instant},
};

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
}

/// One protocol violation.
struct Case {
    name: &'static str,
    what: &'static str,
    expect: Expect,
    /// Commits the violation on a fresh connection.
    send: fn(&mut TcpStream) -> io::Result<()>,
}

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
    match (case.expect, term) {
        (Expect::Term(fes), Some(t)) if t.fes == fes as u16 => {
            Ok(format!("C2HTermReq fes {:#x} fei {:#x}, then closed", t.fes, t.fei))
        }
        (Expect::Term(fes), Some(t)) => Err(format!("C2HTermReq fes {:#x}, expected {:#x}", t.fes, fes as u16)),
        (Expect::Term(fes), None) => Err(format!("closed without the C2HTermReq (fes {:#x}) the spec asks for", fes as u16)),
        (Expect::Close, Some(t)) => Ok(format!("C2HTermReq fes {:#x}, then closed", t.fes)),
        (Expect::Close, None) => Ok("closed".into()),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: nvme-tcp-peer icreq ADDR PORT [--hdgst] [--ddgst] [--hold SECS]\n       \
         nvme-tcp-peer hostile --list\n       \
         nvme-tcp-peer hostile ADDR PORT [CASE...]"
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
            ExitCode::SUCCESS
        }
        ["hostile", addr, port, names @ ..] => {
            let host = match target(addr, port) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let chosen: Vec<&Case> = if names.is_empty() {
                CASES.iter().collect()
            } else {
                let mut v = Vec::new();
                for n in names {
                    match CASES.iter().find(|c| c.name == *n) {
                        Some(c) => v.push(c),
                        None => {
                            eprintln!("no case named {n} (see --list)");
                            return ExitCode::from(2);
                        }
                    }
                }
                v
            };
            let mut failed = 0;
            for c in chosen {
                match run_case(&host, c) {
                    Ok(how) => println!("ok {}: {}", c.name, how),
                    Err(why) => {
                        println!("FAIL {}: {}", c.name, why);
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
