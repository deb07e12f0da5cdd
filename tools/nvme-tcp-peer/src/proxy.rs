// SPDX-License-Identifier: GPL-2.0

//! `proxy`: a hostile target for testing a host, as a man in the middle.
//!
//! Every connection a host opens to the proxy (a controller's admin queue,
//! then each I/O queue) is connected to the real target, and PDUs are
//! forwarded both ways, framed with the protocol crate: the ICResp of each
//! connection says which digests its PDUs carry, and the fabrics Connect
//! command the host sends first says which queue it is; the command capsules
//! say which commands are outstanding, which way their data goes and how
//! much of it there is. Once `after` PDUs suitable for the chosen case went
//! by on the I/O queues, the proxy corrupts the next one (once in its life,
//! re-encoding the PDU with its digests where the case changes a field), and
//! goes on forwarding unchanged.
//!
//! On stdout, flushed as they come: `injected CASE on queue QID (connection
//! N): what` when it acts, and `connection N queue QID (host ADDR:PORT):
//! ended: ...` as each connection ends, naming the side that ended it first
//! (`the host closed`, `the host is gone (...)`, `the target closed`, `the
//! proxy cut it ...`). Connections are numbered from 1 in order of arrival.

use nvme_tcp_proto::{self as proto, Digests, Frame, Pdu, Role, Stage};
use std::{
    collections::HashMap,
    fmt,
    io::{self, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    thread,
};

/// Suitable PDUs let through before the one corrupted, unless `--after` says
/// otherwise: past a connecting host's first reads (the partition scan), so
/// that the host has its block device and is doing I/O.
pub const DEFAULT_AFTER: u64 = 100;
/// The largest PDU the proxy frames (a C2HData may carry a whole transfer).
const MAX_PDU: u32 = 64 << 20;
/// Bytes `c2h-out-of-range` adds past the end of a command's data.
const EXTRA: u32 = 512;
/// The PDU type `bad-pdu-type` sends: none that NVMe/TCP defines.
const UNKNOWN_PDU_TYPE: u8 = 0x0c;
/// What `bad-hlen` adds to a PDU's header length.
const HLEN_SKEW: u8 = 8;

/// How the proxy misbehaves, on one target-to-host PDU of an I/O queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Flips a bit of a header digest.
    BadHeaderDigest,
    /// Flips a bit of a C2HData's data digest.
    BadDataDigest,
    /// C2HData for a command id that is not outstanding.
    C2hUnknownCid,
    /// C2HData ending the transfer, 512 bytes longer than the transfer.
    C2hOutOfRange,
    /// C2HData split in two, the second at the offset of the first.
    C2hBadOffset,
    /// R2T for a command id that is not outstanding.
    R2tUnknownCid,
    /// R2T asking for 512 bytes past the end of the write.
    R2tOutOfRange,
    /// CapsuleResp for a command id that is not outstanding.
    RespUnknownCid,
    /// A PDU type NVMe/TCP does not define.
    BadPduType,
    /// A header length that is wrong for the PDU's type.
    BadHlen,
    /// Half of a PDU, then both connections closed.
    Truncated,
}

/// Every case: its name on the command line, and what it does.
pub const CASES: &[(Case, &str, &str)] = &[
    (Case::BadHeaderDigest, "bad-header-digest", "a PDU with a wrong header digest (needs --hdr-digest)"),
    (Case::BadDataDigest, "bad-data-digest", "a C2HData with a wrong data digest (needs --data-digest)"),
    (Case::C2hUnknownCid, "c2h-unknown-cid", "a C2HData for a command id that is not outstanding"),
    (Case::C2hOutOfRange, "c2h-out-of-range", "the last C2HData of a read with 512 bytes more than the read's length"),
    (Case::C2hBadOffset, "c2h-bad-offset", "a C2HData split in two PDUs, the second at the first one's offset"),
    (Case::R2tUnknownCid, "r2t-unknown-cid", "an R2T for a command id that is not outstanding"),
    (Case::R2tOutOfRange, "r2t-out-of-range", "an R2T asking for 512 bytes past the end of the write"),
    (Case::RespUnknownCid, "resp-unknown-cid", "a CapsuleResp for a command id that is not outstanding"),
    (Case::BadPduType, "bad-pdu-type", "a PDU whose type (0x0c) NVMe/TCP does not define"),
    (Case::BadHlen, "bad-hlen", "a PDU whose header length is 8 more than its type's"),
    (Case::Truncated, "truncated", "half of a PDU, then the connection closed"),
];

impl Case {
    /// The case called `name`.
    pub fn by_name(name: &str) -> Option<Case> {
        CASES.iter().find(|(_, n, _)| *n == name).map(|(c, _, _)| *c)
    }

    /// The case's name.
    pub fn name(self) -> &'static str {
        CASES.iter().find(|(c, _, _)| *c == self).map_or("?", |(_, n, _)| n)
    }

    /// The digests a connection must have for this case to find its PDU.
    fn needs(self) -> Digests {
        match self {
            Case::BadHeaderDigest => Digests { header: true, data: false },
            Case::BadDataDigest => Digests { header: false, data: true },
            _ => Digests::NONE,
        }
    }
}

/// Which way a command moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    None,
    ToController,
    ToHost,
    Both,
}

/// An outstanding command, as the proxy saw its capsule go by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cmd {
    /// Bytes of data the command transfers (its SGL's length).
    len: u32,
    dir: Dir,
}

impl Cmd {
    fn of(c: &proto::CapsuleCmd) -> Self {
        // The data transfer direction: bits 1:0 of the opcode, or of the
        // fabrics command type for a fabrics command.
        let code = if c.opcode() == FABRICS_OPCODE { c.fctype() } else { c.opcode() };
        let dir = match code & 3 {
            1 => Dir::ToController,
            2 => Dir::ToHost,
            3 => Dir::Both,
            _ => Dir::None,
        };
        Cmd { len: c.sgl().length, dir }
    }
}

/// The fabrics command opcode, and the Connect command type.
const FABRICS_OPCODE: u8 = 0x7f;
const FCTYPE_CONNECT: u8 = 0x01;

/// The queue a fabrics Connect command connects: the QID in the high half of
/// CDW10 (SQE bytes 40..44).
fn connect_qid(c: &proto::CapsuleCmd) -> Option<u16> {
    (c.opcode() == FABRICS_OPCODE && c.fctype() == FCTYPE_CONNECT).then(|| u16::from_le_bytes([c.sqe[42], c.sqe[43]]))
}

/// What the proxy knows of one connection, shared by its two directions.
#[derive(Debug, Default)]
struct Conn {
    /// The queue, once the host's Connect went by.
    qid: Option<u16>,
    /// The digests, once the target's ICResp went by.
    digests: Option<Digests>,
    /// Commands sent and not yet completed, by command id.
    cmds: HashMap<u16, Cmd>,
}

impl Conn {
    /// Notes a command the host sent.
    fn sent(&mut self, c: &proto::CapsuleCmd) {
        if let Some(qid) = connect_qid(c) {
            self.qid = Some(qid);
        }
        self.cmds.insert(c.command_id(), Cmd::of(c));
    }

    /// Notes a PDU the target sent (before the host gets it: the host may
    /// reuse a command id as soon as it has).
    fn received(&mut self, pdu: &Pdu) {
        match pdu {
            Pdu::CapsuleResp(r) => {
                self.cmds.remove(&r.command_id());
            }
            Pdu::Data(d) if d.last && d.success => {
                self.cmds.remove(&d.cccid);
            }
            _ => {}
        }
    }

    fn is_io_queue(&self) -> bool {
        self.qid.is_some_and(|q| q > 0)
    }
}

fn lock(conn: &Mutex<Conn>) -> MutexGuard<'_, Conn> {
    // A thread that panicked holding the lock left consistent data: the
    // state is plain values, updated whole.
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// A command id that is not outstanding: `cid` with its top bit flipped (for
/// the Linux host, the same tag with another generation), or the next one
/// free after it.
fn unknown_cid(cid: u16, cmds: &HashMap<u16, Cmd>) -> u16 {
    let mut c = cid ^ 0x8000;
    while cmds.contains_key(&c) {
        c = c.wrapping_add(1);
    }
    c
}

/// Whether the target-to-host PDU `pdu` (laid out as `frame`) is one `case`
/// can corrupt, on a connection with outstanding commands `cmds`.
fn suits(case: Case, pdu: &Pdu, frame: &Frame, cmds: &HashMap<u16, Cmd>) -> bool {
    let known = |cid: u16, dir: Dir| cmds.get(&cid).filter(|c| c.dir == dir || c.dir == Dir::Both);
    match (case, pdu) {
        (Case::BadHeaderDigest, Pdu::CapsuleResp(_) | Pdu::Data(_) | Pdu::R2t(_)) => frame.header_len > frame.pdu_type.hlen(),
        (Case::BadDataDigest, Pdu::Data(_)) => frame.data_digest,
        (Case::C2hUnknownCid, Pdu::Data(d)) => known(d.cccid, Dir::ToHost).is_some(),
        (Case::C2hOutOfRange, Pdu::Data(d)) => {
            known(d.cccid, Dir::ToHost).is_some_and(|c| d.datao.checked_add(d.datal) == Some(c.len))
        }
        (Case::C2hBadOffset, Pdu::Data(d)) => d.datal >= 2 && known(d.cccid, Dir::ToHost).is_some(),
        (Case::R2tUnknownCid, Pdu::R2t(r)) => known(r.cccid, Dir::ToController).is_some(),
        (Case::R2tOutOfRange, Pdu::R2t(r)) => known(r.cccid, Dir::ToController).is_some_and(|c| r.r2to < c.len),
        (Case::RespUnknownCid, Pdu::CapsuleResp(r)) => cmds.contains_key(&r.command_id()),
        (Case::BadPduType | Case::BadHlen | Case::Truncated, Pdu::CapsuleResp(_) | Pdu::Data(_) | Pdu::R2t(_)) => true,
        _ => false,
    }
}

/// A corrupted PDU: the bytes to send the host instead, whether to close the
/// connection after them, and what was done.
#[derive(Debug)]
struct Corrupted {
    bytes: Vec<u8>,
    cut: bool,
    what: String,
}

fn kind(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::CapsuleResp(_) => "CapsuleResp",
        Pdu::Data(_) => "C2HData",
        Pdu::R2t(_) => "R2T",
        Pdu::TermReq(_) => "C2HTermReq",
        Pdu::IcResp(_) => "ICResp",
        Pdu::IcReq(_) | Pdu::CapsuleCmd(_) => "host PDU",
    }
}

/// Puts the header digest of the `hlen`-byte header at the start of `pdu`
/// after it again, when the connection has header digests.
fn redigest(pdu: &mut [u8], hlen: usize, d: Digests) {
    if let (true, Some(header)) = (d.header, pdu.get(..hlen)) {
        let digest = proto::crc32c(header).to_le_bytes();
        if let Some(at) = pdu.get_mut(hlen..hlen + proto::DIGEST_LEN) {
            at.copy_from_slice(&digest);
        }
    }
}

/// A C2HData PDU: `hdr`'s header with `data`, and its data digest when `d`
/// has data digests.
fn c2h_data(hdr: &proto::Data, data: &[u8], d: Digests) -> Result<Vec<u8>, proto::Error> {
    let mut b = [0u8; proto::DATA_HLEN + proto::DIGEST_LEN];
    let n = hdr.encode(&mut b, d)?;
    let mut out = b[..n].to_vec();
    out.extend_from_slice(data);
    if d.data {
        out.extend_from_slice(&proto::crc32c(data).to_le_bytes());
    }
    Ok(out)
}

/// Encodes a header-only PDU (R2T, CapsuleResp).
fn header_only(pdu: &Pdu, d: Digests) -> Result<Vec<u8>, proto::Error> {
    let mut b = [0u8; proto::MAX_HEADER_LEN + proto::DIGEST_LEN];
    let n = pdu.encode(&mut b, d)?;
    Ok(b[..n].to_vec())
}

/// Flips the lowest bit of the byte at `at` of a copy of `raw`.
fn flip(raw: &[u8], at: usize) -> Vec<u8> {
    let mut b = raw.to_vec();
    if let Some(x) = b.get_mut(at) {
        *x ^= 1;
    }
    b
}

/// Corrupts the target-to-host PDU `raw` (decoded as `pdu`, laid out as
/// `frame`) as `case` does, on a connection with digests `d` and outstanding
/// commands `cmds`. `raw` is a PDU [`suits`] accepted.
fn corrupt(
    case: Case,
    raw: &[u8],
    pdu: &Pdu,
    frame: &Frame,
    d: Digests,
    cmds: &HashMap<u16, Cmd>,
) -> Result<Corrupted, proto::Error> {
    let hlen = frame.pdu_type.hlen();
    let data = raw.get(frame.header_len..frame.header_len + frame.data_len as usize).unwrap_or(&[]);
    let what_pdu = kind(pdu);
    let done = |bytes, what| Ok(Corrupted { bytes, cut: false, what });
    match (case, pdu) {
        (Case::BadHeaderDigest, _) => done(flip(raw, hlen), format!("{what_pdu} with a bit of its header digest flipped")),
        (Case::BadDataDigest, Pdu::Data(x)) => done(
            flip(raw, raw.len().saturating_sub(proto::DIGEST_LEN)),
            format!("C2HData cid {:#x} with a bit of its data digest flipped", x.cccid),
        ),
        (Case::C2hUnknownCid, Pdu::Data(x)) => {
            let cid = unknown_cid(x.cccid, cmds);
            let b = c2h_data(&proto::Data { cccid: cid, ..*x }, data, d)?;
            done(b, format!("C2HData cid {:#x} sent as cid {cid:#x}", x.cccid))
        }
        (Case::C2hOutOfRange, Pdu::Data(x)) => {
            let mut more = data.to_vec();
            more.resize(data.len() + EXTRA as usize, 0);
            let b = c2h_data(&proto::Data { datal: x.datal + EXTRA, ..*x }, &more, d)?;
            let what = format!(
                "C2HData cid {:#x} at offset {} with {} bytes instead of {} (the read is {} bytes)",
                x.cccid,
                x.datao,
                x.datal + EXTRA,
                x.datal,
                x.datao + x.datal
            );
            done(b, what)
        }
        (Case::C2hBadOffset, Pdu::Data(x)) => {
            let half = x.datal / 2;
            let (first, second) = data.split_at(half as usize);
            let mut b = c2h_data(&proto::Data { datal: half, last: false, success: false, ..*x }, first, d)?;
            b.extend(c2h_data(&proto::Data { datal: x.datal - half, ..*x }, second, d)?);
            let what = format!(
                "C2HData cid {:#x} split in two at offset {}: the second at offset {} instead of {}",
                x.cccid,
                x.datao,
                x.datao,
                x.datao + half
            );
            done(b, what)
        }
        (Case::R2tUnknownCid, Pdu::R2t(r)) => {
            let cid = unknown_cid(r.cccid, cmds);
            done(header_only(&Pdu::R2t(proto::R2t { cccid: cid, ..*r }), d)?, format!("R2T cid {:#x} sent as cid {cid:#x}", r.cccid))
        }
        (Case::R2tOutOfRange, Pdu::R2t(r)) => {
            let len = cmds.get(&r.cccid).map_or(0, |c| c.len);
            let r2tl = len.saturating_sub(r.r2to).saturating_add(EXTRA);
            let what = format!(
                "R2T cid {:#x} at offset {} for {r2tl} bytes instead of {} (the write is {len} bytes)",
                r.cccid, r.r2to, r.r2tl
            );
            done(header_only(&Pdu::R2t(proto::R2t { r2tl, ..*r }), d)?, what)
        }
        (Case::RespUnknownCid, Pdu::CapsuleResp(r)) => {
            let cid = unknown_cid(r.command_id(), cmds);
            let mut cqe = r.cqe;
            cqe[12..14].copy_from_slice(&cid.to_le_bytes());
            let what = format!("CapsuleResp cid {:#x} sent as cid {cid:#x}", r.command_id());
            done(header_only(&Pdu::CapsuleResp(proto::CapsuleResp { cqe }), d)?, what)
        }
        (Case::BadPduType, _) => {
            let mut b = raw.to_vec();
            b[0] = UNKNOWN_PDU_TYPE;
            redigest(&mut b, hlen, d);
            done(b, format!("{what_pdu} sent as PDU type {UNKNOWN_PDU_TYPE:#x}"))
        }
        (Case::BadHlen, _) => {
            let mut b = raw.to_vec();
            // CAST: every header but ICReq/ICResp's is 24 bytes.
            let bad = hlen as u8 + HLEN_SKEW;
            b[2] = bad;
            redigest(&mut b, hlen, d);
            done(b, format!("{what_pdu} sent with hlen {bad} instead of {hlen}"))
        }
        (Case::Truncated, _) => {
            let n = (raw.len() / 2).max(1);
            let what = format!("{what_pdu}: closed after {n} of its {} bytes", raw.len());
            Ok(Corrupted { bytes: raw[..n].to_vec(), cut: true, what })
        }
        _ => Err(proto::Error::InvalidField { field: proto::Field::PduType, value: raw[0].into() }),
    }
}

/// The case, and when it acts. Shared by every connection: it acts once.
pub struct Injector {
    case: Case,
    after: u64,
    dry_run: bool,
    seen: AtomicU64,
    done: AtomicBool,
}

impl Injector {
    /// Acts on the next PDU suitable for `case` once `after` of them went by;
    /// with `dry_run`, only says it would.
    pub fn new(case: Case, after: u64, dry_run: bool) -> Self {
        Injector { case, after, dry_run, seen: AtomicU64::new(0), done: AtomicBool::new(false) }
    }

    /// Counts a suitable PDU; whether it is the one to corrupt.
    fn take(&self) -> bool {
        if self.done.load(Ordering::Relaxed) {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        n > self.after && !self.done.swap(true, Ordering::Relaxed)
    }
}

/// How one direction of a connection ended.
#[derive(Debug)]
enum End {
    /// Its sender closed it between PDUs.
    Closed,
    /// Its sender closed it after `n` bytes of a PDU.
    ClosedMidPdu(usize),
    /// The proxy closed it in the middle of a PDU (`truncated`).
    Cut,
    /// A PDU whose `plen` cannot be framed: everything from it on was
    /// forwarded unframed.
    Unframed(u32),
    /// Reading from its sender failed.
    Read(io::Error),
    /// Writing to its receiver failed.
    Write(io::Error),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Closed => write!(f, "closed"),
            End::ClosedMidPdu(n) => write!(f, "closed after {n} bytes of a PDU"),
            End::Cut => write!(f, "was cut by the proxy in the middle of a PDU"),
            End::Unframed(plen) => write!(f, "sent a PDU with plen {plen} (forwarded unframed from there)"),
            End::Read(e) => write!(f, "ended it with an error ({e})"),
            End::Write(e) => write!(f, "could not pass it on ({e})"),
        }
    }
}

/// Reads into `buf` until it is full or the stream ends; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What [`read_pdu`] got.
enum Got {
    /// A whole PDU, in the buffer.
    Pdu,
    /// The end of the stream, between PDUs.
    Eof,
    /// The end of the stream after this many bytes of a PDU, in the buffer.
    Partial(usize),
    /// A common header whose `plen` cannot be framed, in the buffer.
    Unframed(u32),
}

/// Reads the next PDU into `buf`, framed by its common header's `plen`.
fn read_pdu(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Got> {
    buf.resize(proto::COMMON_HEADER_LEN, 0);
    let n = read_full(r, buf)?;
    match n {
        0 => return Ok(Got::Eof),
        n if n < proto::COMMON_HEADER_LEN => return Ok(Got::Partial(n)),
        _ => {}
    }
    let plen = proto::CommonHeader::decode(buf).map(|c| c.plen).unwrap_or(0);
    if !(proto::COMMON_HEADER_LEN as u32..=MAX_PDU).contains(&plen) {
        return Ok(Got::Unframed(plen));
    }
    buf.resize(plen as usize, 0);
    let m = read_full(r, &mut buf[proto::COMMON_HEADER_LEN..])?;
    if proto::COMMON_HEADER_LEN + m < buf.len() {
        return Ok(Got::Partial(proto::COMMON_HEADER_LEN + m));
    }
    Ok(Got::Pdu)
}

/// Reads PDUs from `from` and writes them to `to` until either fails or
/// `from` ends, showing each to `look`, which may send something else in
/// its place (and end the connection after it). Returns how it ended and how
/// many PDUs went through.
fn pump(
    from: &mut impl Read,
    to: &mut impl Write,
    mut look: impl FnMut(&[u8]) -> Option<Corrupted>,
) -> (End, u64) {
    let mut buf = Vec::new();
    let mut pdus = 0;
    loop {
        let got = match read_pdu(from, &mut buf) {
            Ok(g) => g,
            Err(e) => return (End::Read(e), pdus),
        };
        let (bytes, end) = match got {
            Got::Eof => return (End::Closed, pdus),
            Got::Partial(n) => (&buf[..n], Some(End::ClosedMidPdu(n))),
            Got::Unframed(plen) => (&buf[..], Some(End::Unframed(plen))),
            Got::Pdu => (&buf[..], None),
        };
        let swapped = if end.is_none() { look(bytes) } else { None };
        let (bytes, end) = match &swapped {
            Some(c) => (&c.bytes[..], if c.cut { Some(End::Cut) } else { None }),
            None => (bytes, end),
        };
        if let Err(e) = to.write_all(bytes).and_then(|()| to.flush()) {
            return (End::Write(e), pdus);
        }
        pdus += 1;
        match end {
            Some(End::Unframed(plen)) => {
                return match io::copy(from, to) {
                    Ok(_) => (End::Unframed(plen), pdus),
                    Err(e) => (End::Read(e), pdus),
                }
            }
            Some(end) => return (end, pdus),
            None => {}
        }
    }
}

/// Prints a line on stdout and flushes it (the test reads it as it comes).
fn say(line: &str) {
    if cfg!(test) {
        // The test harness captures this, not writes to the handle.
        println!("{line}");
        return;
    }
    // Not println!, which panics when stdout is gone.
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One proxied connection: its number (in order of arrival) and the host's
/// address, for messages; what is known of it.
struct Link {
    n: usize,
    host: String,
    conn: Mutex<Conn>,
    /// The first direction to end, and how: the one that ended the
    /// connection.
    first: Mutex<Option<String>>,
}

impl Link {
    fn queue(&self) -> String {
        lock(&self.conn).qid.map_or("?".into(), |q| q.to_string())
    }

    /// Notes how the direction from `from` to `to` ended, if it is the
    /// first to: a failed write means `to` went away first.
    fn ended(&self, from: &str, to: &str, end: &End) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| match end {
            End::Write(e) => format!("the {to} is gone ({e})"),
            End::Cut => format!("the proxy cut it in the middle of a PDU to the {to}"),
            end => format!("the {from} {end}"),
        });
    }
}

/// The host-to-target direction: notes the commands and the queue.
fn look_h2t(link: &Link, raw: &[u8]) {
    let mut conn = lock(&link.conn);
    let stage = conn.digests.map_or(Stage::Handshake, Stage::Established);
    if let Ok((Pdu::CapsuleCmd(c), _)) = Pdu::decode(raw, Role::Controller, stage, MAX_PDU) {
        conn.sent(&c);
    }
}

/// The target-to-host direction: notes the digests and completions, and
/// corrupts the PDU the injector picks.
fn look_t2h(link: &Link, inj: &Injector, raw: &[u8]) -> Option<Corrupted> {
    let mut conn = lock(&link.conn);
    let Some(d) = conn.digests else {
        // Before the ICResp: it says which digests every later PDU has.
        if let Ok((Pdu::IcResp(r), _)) = Pdu::decode(raw, Role::Host, Stage::Handshake, 0) {
            conn.digests = Some(r.digests());
            let need = inj.case.needs();
            if (need.header && !r.hdgst) || (need.data && !r.ddgst) {
                eprintln!(
                    "connection {}: {} needs {} digests, which this connection does not have",
                    link.n,
                    inj.case.name(),
                    if need.header { "header" } else { "data" }
                );
            }
        }
        return None;
    };
    let (pdu, frame) = Pdu::decode(raw, Role::Host, Stage::Established(d), MAX_PDU).ok()?;
    let chosen = conn.is_io_queue() && suits(inj.case, &pdu, &frame, &conn.cmds) && inj.take();
    let swapped = if chosen { act(link, inj, &conn, raw, &pdu, &frame, d) } else { None };
    conn.received(&pdu);
    swapped
}

/// Corrupts the PDU the injector picked, and says so.
fn act(link: &Link, inj: &Injector, conn: &Conn, raw: &[u8], pdu: &Pdu, frame: &Frame, d: Digests) -> Option<Corrupted> {
    let qid = conn.qid.unwrap_or(0);
    let case = inj.case.name();
    match corrupt(inj.case, raw, pdu, frame, d, &conn.cmds) {
        Ok(c) if inj.dry_run => {
            say(&format!("injected {case} on queue {qid} (connection {}, dry run: forwarded unchanged): {}", link.n, c.what));
            None
        }
        Ok(c) => {
            say(&format!("injected {case} on queue {qid} (connection {}): {}", link.n, c.what));
            Some(c)
        }
        Err(e) => {
            say(&format!("could not inject {case} on queue {qid} (connection {}): {e}", link.n));
            None
        }
    }
}

/// Forwards one host connection to the target until both ends closed;
/// returns the line that reports it.
fn serve(n: usize, mut host: TcpStream, target: &str, inj: &Arc<Injector>) -> String {
    let host_addr = host.peer_addr().map_or("?".into(), |a| a.to_string());
    let mut tgt = match TcpStream::connect(target) {
        Ok(t) => t,
        Err(e) => return format!("connection {n} queue ? (host {host_addr}): cannot connect to the target {target}: {e}"),
    };
    let (mut host_r, mut tgt_w) = match (host.try_clone(), tgt.try_clone()) {
        (Ok(h), Ok(t)) => (h, t),
        (Err(e), _) | (_, Err(e)) => return format!("connection {n} queue ? (host {host_addr}): {e}"),
    };
    let _ = (host.set_nodelay(true), tgt.set_nodelay(true));
    let link = Arc::new(Link { n, host: host_addr, conn: Mutex::default(), first: Mutex::new(None) });
    let t2h = {
        let (link, inj) = (Arc::clone(&link), Arc::clone(inj));
        thread::spawn(move || {
            let (end, pdus) = pump(&mut tgt, &mut host, |raw| look_t2h(&link, &inj, raw));
            link.ended("target", "host", &end);
            close_after(&end, &tgt, &host);
            pdus
        })
    };
    let (end, to_target) = pump(&mut host_r, &mut tgt_w, |raw| {
        look_h2t(&link, raw);
        None
    });
    link.ended("host", "target", &end);
    close_after(&end, &host_r, &tgt_w);
    let to_host = t2h.join().unwrap_or(0);
    let first = link.first.lock().map(|f| f.clone()).unwrap_or_default().unwrap_or_default();
    format!(
        "connection {n} queue {} (host {}): ended: {first}; {to_target} PDUs to the target, {to_host} to the host",
        link.queue(),
        link.host
    )
}

/// Passes the end of one direction (from `from` to `to`) on: a close goes
/// on as a close of the other side's write half; anything else ends both.
fn close_after(end: &End, from: &TcpStream, to: &TcpStream) {
    match end {
        End::Closed | End::ClosedMidPdu(_) | End::Unframed(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        End::Cut | End::Read(_) | End::Write(_) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    }
}

/// The proxy's options.
pub struct Options {
    /// Where to listen, as `TcpListener::bind` takes it.
    pub listen: String,
    /// The target, as `TcpStream::connect` takes it.
    pub target: String,
    pub case: Case,
    pub after: u64,
    /// Exit once this many connections ended.
    pub count: Option<usize>,
    pub dry_run: bool,
}

/// Accepts connections and serves each on its own thread, until killed or
/// `count` connections ended.
pub fn run(o: Options) -> io::Result<()> {
    let listener = TcpListener::bind(&o.listen)?;
    let inj = Arc::new(Injector::new(o.case, o.after, o.dry_run));
    let target: Arc<str> = o.target.into();
    let ended = Arc::new(AtomicUsize::new(0));
    for (n, host) in listener.incoming().enumerate() {
        let host = match host {
            Ok(h) => h,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let (inj, ended, target, count) = (Arc::clone(&inj), Arc::clone(&ended), Arc::clone(&target), o.count);
        thread::spawn(move || {
            say(&serve(n + 1, host, &target, &inj));
            if count.is_some_and(|c| ended.fetch_add(1, Ordering::SeqCst) + 1 >= c) {
                std::process::exit(0);
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Digests = Digests { header: true, data: true };

    fn cmds(list: &[(u16, u32, Dir)]) -> HashMap<u16, Cmd> {
        list.iter().map(|&(cid, len, dir)| (cid, Cmd { len, dir })).collect()
    }

    fn c2h(cccid: u16, datao: u32, datal: u32, last: bool) -> proto::Data {
        proto::Data { from_host: false, cccid, ttag: 0, datao, datal, last, success: last }
    }

    fn decode_all(mut b: &[u8], d: Digests) -> Vec<(Pdu, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let (pdu, f) = Pdu::decode(b, Role::Host, Stage::Established(d), MAX_PDU).expect("a valid PDU");
            let data = b[f.header_len..f.header_len + f.data_len as usize].to_vec();
            if f.data_digest {
                let dd = &b[f.header_len + data.len()..][..4];
                assert_eq!(dd, proto::crc32c(&data).to_le_bytes(), "data digest");
            }
            let plen = proto::CommonHeader::decode(b).map(|c| c.plen).unwrap_or(0) as usize;
            out.push((pdu, data));
            b = &b[plen..];
        }
        out
    }

    fn framed(raw: &[u8], d: Digests) -> (Pdu, Frame) {
        Pdu::decode(raw, Role::Host, Stage::Established(d), MAX_PDU).expect("a valid PDU")
    }

    fn resp(cid: u16, d: Digests) -> Vec<u8> {
        let mut cqe = [0u8; proto::CQE_LEN];
        cqe[12..14].copy_from_slice(&cid.to_le_bytes());
        header_only(&Pdu::CapsuleResp(proto::CapsuleResp { cqe }), d).expect("encodes")
    }

    fn r2t(cccid: u16, r2to: u32, r2tl: u32, d: Digests) -> Vec<u8> {
        header_only(&Pdu::R2t(proto::R2t { cccid, ttag: 3, r2to, r2tl }), d).expect("encodes")
    }

    fn run(case: Case, raw: &[u8], d: Digests, cmds: &HashMap<u16, Cmd>) -> Corrupted {
        let (pdu, frame) = framed(raw, d);
        assert!(suits(case, &pdu, &frame, cmds), "{case:?} suits");
        corrupt(case, raw, &pdu, &frame, d, cmds).expect("corrupts")
    }

    #[test]
    fn case_names_round_trip() {
        for &(c, name, _) in CASES {
            assert_eq!(Case::by_name(name), Some(c));
            assert_eq!(c.name(), name);
        }
        assert_eq!(Case::by_name("none"), None);
    }

    #[test]
    fn connect_gives_the_queue_and_commands_their_direction() {
        let mut sqe = [0u8; proto::SQE_LEN];
        sqe[0] = FABRICS_OPCODE;
        sqe[2..4].copy_from_slice(&7u16.to_le_bytes());
        sqe[4] = FCTYPE_CONNECT;
        sqe[32..36].copy_from_slice(&1024u32.to_le_bytes());
        sqe[42..44].copy_from_slice(&3u16.to_le_bytes());
        let mut conn = Conn::default();
        conn.sent(&proto::CapsuleCmd { sqe, data_len: 1024 });
        assert_eq!(conn.qid, Some(3));
        assert_eq!(conn.cmds.get(&7), Some(&Cmd { len: 1024, dir: Dir::ToController }));
        sqe[0] = 0x02; // Read
        sqe[32..36].copy_from_slice(&65536u32.to_le_bytes());
        conn.sent(&proto::CapsuleCmd { sqe, data_len: 0 });
        assert_eq!(conn.qid, Some(3));
        assert_eq!(conn.cmds.get(&7), Some(&Cmd { len: 65536, dir: Dir::ToHost }));
        conn.received(&Pdu::Data(c2h(7, 0, 4096, false)));
        assert!(conn.cmds.contains_key(&7));
        conn.received(&Pdu::Data(c2h(7, 4096, 4096, true)));
        assert!(!conn.cmds.contains_key(&7));
    }

    #[test]
    fn unknown_cid_is_not_outstanding() {
        let c = cmds(&[(0x8001, 1, Dir::None), (0x8002, 1, Dir::None)]);
        assert_eq!(unknown_cid(0x0001, &c), 0x8003);
        assert_eq!(unknown_cid(0x8001, &HashMap::new()), 0x0001);
    }

    #[test]
    fn injector_acts_once_after_n() {
        let inj = Injector::new(Case::Truncated, 2, false);
        assert_eq!([inj.take(), inj.take(), inj.take(), inj.take()], [false, false, true, false]);
        let inj = Injector::new(Case::Truncated, 0, false);
        assert!(inj.take());
        assert!(!inj.take());
    }

    #[test]
    fn bad_header_digest_needs_header_digests() {
        let raw = resp(1, Digests::NONE);
        let (pdu, frame) = framed(&raw, Digests::NONE);
        assert!(!suits(Case::BadHeaderDigest, &pdu, &frame, &cmds(&[(1, 0, Dir::None)])));
        for d in [Digests { header: true, data: false }, BOTH] {
            let raw = resp(1, d);
            let c = run(Case::BadHeaderDigest, &raw, d, &cmds(&[(1, 0, Dir::None)]));
            assert!(matches!(
                Pdu::decode(&c.bytes, Role::Host, Stage::Established(d), MAX_PDU),
                Err(proto::Error::HeaderDigest { .. })
            ));
        }
    }

    #[test]
    fn bad_data_digest() {
        let d = Digests { header: false, data: true };
        let raw = c2h_data(&c2h(5, 0, 4096, true), &[0x5a; 4096], d).expect("encodes");
        let c = run(Case::BadDataDigest, &raw, d, &cmds(&[(5, 4096, Dir::ToHost)]));
        let (_, frame) = framed(&c.bytes, d);
        let data = &c.bytes[frame.header_len..frame.header_len + 4096];
        let mut digest = proto::DataDigest::new();
        digest.update(data);
        let got: [u8; 4] = c.bytes[c.bytes.len() - 4..].try_into().expect("4 bytes");
        assert!(digest.check(&got).is_err());
        // Not on a connection without data digests.
        let raw = c2h_data(&c2h(5, 0, 4096, true), &[0x5a; 4096], Digests::NONE).expect("encodes");
        let (pdu, frame) = framed(&raw, Digests::NONE);
        assert!(!suits(Case::BadDataDigest, &pdu, &frame, &cmds(&[(5, 4096, Dir::ToHost)])));
    }

    #[test]
    fn c2h_unknown_cid_keeps_the_data_and_its_digests() {
        let raw = c2h_data(&c2h(0x0010, 0, 4096, true), &[7; 4096], BOTH).expect("encodes");
        let outstanding = cmds(&[(0x0010, 4096, Dir::ToHost), (0x8010, 4096, Dir::ToHost)]);
        let c = run(Case::C2hUnknownCid, &raw, BOTH, &outstanding);
        let pdus = decode_all(&c.bytes, BOTH);
        assert!(matches!(pdus[..], [(Pdu::Data(proto::Data { cccid: 0x8011, datal: 4096, .. }), _)]));
        assert_eq!(pdus[0].1, vec![7; 4096]);
        // Only for a read the proxy saw.
        let (pdu, frame) = framed(&raw, BOTH);
        assert!(!suits(Case::C2hUnknownCid, &pdu, &frame, &cmds(&[(0x0010, 4096, Dir::ToController)])));
        assert!(!suits(Case::C2hUnknownCid, &pdu, &frame, &HashMap::new()));
    }

    #[test]
    fn c2h_out_of_range_lengthens_the_last_pdu() {
        let outstanding = cmds(&[(1, 8192, Dir::ToHost)]);
        let first = c2h_data(&c2h(1, 0, 4096, false), &[1; 4096], BOTH).expect("encodes");
        let (pdu, frame) = framed(&first, BOTH);
        assert!(!suits(Case::C2hOutOfRange, &pdu, &frame, &outstanding), "not the last PDU");
        let last = c2h_data(&c2h(1, 4096, 4096, true), &[2; 4096], BOTH).expect("encodes");
        let c = run(Case::C2hOutOfRange, &last, BOTH, &outstanding);
        let pdus = decode_all(&c.bytes, BOTH);
        assert!(matches!(pdus[..], [(Pdu::Data(proto::Data { datao: 4096, datal: 4608, last: true, .. }), _)]));
        assert_eq!(&pdus[0].1[..4096], &[2; 4096][..]);
    }

    #[test]
    fn c2h_bad_offset_splits_with_a_repeated_offset() {
        for d in [Digests::NONE, BOTH] {
            let raw = c2h_data(&c2h(9, 1024, 4096, true), &[3; 4096], d).expect("encodes");
            let c = run(Case::C2hBadOffset, &raw, d, &cmds(&[(9, 5120, Dir::ToHost)]));
            let pdus = decode_all(&c.bytes, d);
            let hdrs: Vec<_> = pdus
                .iter()
                .map(|(p, _)| match p {
                    Pdu::Data(x) => (x.datao, x.datal, x.last, x.success),
                    _ => (0, 0, false, false),
                })
                .collect();
            assert_eq!(hdrs, [(1024, 2048, false, false), (1024, 2048, true, true)]);
        }
    }

    #[test]
    fn r2t_cases() {
        let outstanding = cmds(&[(4, 65536, Dir::ToController)]);
        let raw = r2t(4, 0, 65536, BOTH);
        let c = run(Case::R2tUnknownCid, &raw, BOTH, &outstanding);
        assert!(matches!(decode_all(&c.bytes, BOTH)[..], [(Pdu::R2t(proto::R2t { cccid: 0x8004, ttag: 3, .. }), _)]));
        let raw = r2t(4, 32768, 16384, BOTH);
        let c = run(Case::R2tOutOfRange, &raw, BOTH, &outstanding);
        assert!(matches!(
            decode_all(&c.bytes, BOTH)[..],
            [(Pdu::R2t(proto::R2t { cccid: 4, r2to: 32768, r2tl: 33280, .. }), _)]
        ));
        // Not for a read.
        let (pdu, frame) = framed(&raw, BOTH);
        assert!(!suits(Case::R2tUnknownCid, &pdu, &frame, &cmds(&[(4, 65536, Dir::ToHost)])));
    }

    #[test]
    fn resp_unknown_cid() {
        let raw = resp(0x1234, BOTH);
        let c = run(Case::RespUnknownCid, &raw, BOTH, &cmds(&[(0x1234, 0, Dir::None)]));
        match decode_all(&c.bytes, BOTH)[..] {
            [(Pdu::CapsuleResp(r), _)] => assert_eq!(r.command_id(), 0x9234),
            _ => panic!("one CapsuleResp expected"),
        }
    }

    #[test]
    fn bad_pdu_type_and_hlen_keep_a_valid_header_digest() {
        let d = Digests { header: true, data: false };
        let raw = resp(1, d);
        let c = run(Case::BadPduType, &raw, d, &HashMap::new());
        assert_eq!(c.bytes[0], UNKNOWN_PDU_TYPE);
        assert_eq!(c.bytes[24..28], proto::crc32c(&c.bytes[..24]).to_le_bytes());
        let c = run(Case::BadHlen, &raw, d, &HashMap::new());
        assert_eq!(c.bytes[2], 32);
        assert_eq!(c.bytes[24..28], proto::crc32c(&c.bytes[..24]).to_le_bytes());
        assert!(matches!(
            proto::CommonHeader::decode(&c.bytes).and_then(|h| h.frame(Role::Host, Stage::Established(d), MAX_PDU)),
            Err(proto::Error::InvalidField { field: proto::Field::Hlen, .. })
        ));
    }

    #[test]
    fn truncated_cuts_half_a_pdu() {
        let raw = resp(1, Digests::NONE);
        let c = run(Case::Truncated, &raw, Digests::NONE, &HashMap::new());
        assert!(c.cut);
        assert_eq!(c.bytes, raw[..12]);
    }

    fn icresp(d: Digests) -> Vec<u8> {
        let mut b = vec![0u8; proto::ICRESP_LEN];
        let r = proto::IcResp { pfv: 0, cpda: 0, hdgst: d.header, ddgst: d.data, maxdata: 131072 };
        assert!(r.encode(&mut b).is_ok());
        b
    }

    fn link(qid: u16) -> Link {
        let conn = Conn { qid: Some(qid), ..Conn::default() };
        Link { n: 1, host: "test".into(), conn: Mutex::new(conn), first: Mutex::new(None) }
    }

    /// The target-to-host direction of an I/O queue, through `pump`.
    fn through(l: &Link, inj: &Injector, input: &[u8]) -> (End, u64, Vec<u8>) {
        let mut out = Vec::new();
        let (end, n) = pump(&mut &input[..], &mut out, |raw| look_t2h(l, inj, raw));
        (end, n, out)
    }

    #[test]
    fn pump_follows_the_icresp_digests_and_acts_once() {
        let l = link(1);
        lock(&l.conn).cmds = cmds(&[(1, 0, Dir::None), (2, 0, Dir::None), (3, 0, Dir::None)]);
        let mut input = icresp(BOTH);
        for cid in 1..=3 {
            input.extend(resp(cid, BOTH));
        }
        let inj = Injector::new(Case::RespUnknownCid, 1, false);
        let (end, n, out) = through(&l, &inj, &input);
        assert!(matches!(end, End::Closed), "{end}");
        assert_eq!(n, 4);
        let cids: Vec<u16> = decode_all(&out[proto::ICRESP_LEN..], BOTH)
            .iter()
            .map(|(p, _)| match p {
                Pdu::CapsuleResp(r) => r.command_id(),
                _ => 0,
            })
            .collect();
        assert_eq!(cids, [1, 0x8002, 3]);
        assert!(lock(&l.conn).cmds.is_empty(), "completions noted");
    }

    #[test]
    fn pump_leaves_the_admin_queue_alone_and_cuts_on_truncated() {
        let mut input = icresp(Digests::NONE);
        input.extend(resp(1, Digests::NONE));
        input.extend(resp(2, Digests::NONE));
        let admin = link(0);
        let inj = Injector::new(Case::Truncated, 0, false);
        let (_, _, out) = through(&admin, &inj, &input);
        assert_eq!(out, input);
        let (end, n, out) = through(&link(2), &inj, &input);
        assert!(matches!(end, End::Cut), "{end}");
        assert_eq!(n, 2);
        assert_eq!(out, input[..proto::ICRESP_LEN + 12]);
    }

    #[test]
    fn pump_dry_run_forwards_unchanged() {
        let mut input = icresp(Digests::NONE);
        input.extend(resp(1, Digests::NONE));
        let inj = Injector::new(Case::BadPduType, 0, true);
        let (_, _, out) = through(&link(1), &inj, &input);
        assert_eq!(out, input);
        assert!(inj.done.load(Ordering::Relaxed));
    }

    #[test]
    fn the_first_end_names_who_ended_the_connection() {
        let l = link(1);
        l.ended("target", "host", &End::Write(io::Error::from(io::ErrorKind::BrokenPipe)));
        l.ended("host", "target", &End::Closed);
        assert!(l.first.lock().map(|f| f.clone()).ok().flatten().is_some_and(|f| f.starts_with("the host is gone (")));
        let l = link(1);
        l.ended("host", "target", &End::Closed);
        assert_eq!(l.first.lock().map(|f| f.clone()).ok().flatten().as_deref(), Some("the host closed"));
    }

    #[test]
    fn pump_forwards_partial_and_unframed_pdus() {
        let raw = resp(1, Digests::NONE);
        let mut out = Vec::new();
        let (end, n) = pump(&mut &raw[..10], &mut out, |_| None);
        assert!(matches!(end, End::ClosedMidPdu(10)), "{end}");
        assert_eq!((n, &out[..]), (1, &raw[..10]));
        let mut bad = raw.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bad.extend_from_slice(b"rest");
        let mut out = Vec::new();
        let (end, _) = pump(&mut &bad[..], &mut out, |_| None);
        assert!(matches!(end, End::Unframed(u32::MAX)), "{end}");
        assert_eq!(out, bad);
    }
}
