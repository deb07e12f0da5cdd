// SPDX-License-Identifier: GPL-2.0

//! Properties of the receive state machine ([`Receiver`]): any chunking of a
//! stream gives the same events, data and errors as feeding it whole; a bad
//! common header fails before more bytes are asked for; header receives ask
//! for exactly what the buffering rules say; `at_boundary` and
//! `offending_header` tell the truth; garbage never panics.

use nvme_tcp_proto::*;
use std::collections::BTreeMap;

mod common;
use common::Rng;

/// Tags whose data the test driver drops: bit 15 set (TermReqs aside).
const DROP: u16 = 0x8000;
/// The tag the driver delivers a TermReq's data to, when its `fes` is odd.
const TERM_TAG: u16 = 0xffff;
/// Data offsets above this are dropped by the driver (garbage streams).
const MAX_OFFSET: u32 = 1 << 16;

/// Where the test driver routes a PDU's data, as a real driver would:
/// in-capsule data to the command id at 0, data PDUs to `cccid` at `datao`.
fn route(pdu: &Pdu) -> Option<(u16, u32)> {
    match pdu {
        Pdu::CapsuleCmd(c) if c.command_id() & DROP == 0 => Some((c.command_id(), 0)),
        // Offsets whose end overflows are delivered too: `deliver` refuses them.
        Pdu::Data(d) if d.cccid & DROP == 0 && (d.datao <= MAX_OFFSET || d.datao.checked_add(d.datal).is_none()) => {
            Some((d.cccid, d.datao))
        }
        Pdu::TermReq(t) if t.fes & 1 == 1 => Some((TERM_TAG, 0)),
        _ => None,
    }
}

/// The events a driver sees.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Header(Pdu, Frame),
    DataDone(u16, u32),
}

/// What a run of the test driver saw.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Outcome {
    events: Vec<Ev>,
    /// Delivered bytes per tag.
    data: BTreeMap<u16, Vec<u8>>,
    error: Option<Error>,
    /// `offending_header()` when the error appeared.
    offending: Vec<u8>,
    /// Whether the stream ended at a PDU boundary (no error).
    clean_end: bool,
}

impl Outcome {
    /// A header event: what a driver does with it (the stage after an
    /// ICReq/ICResp, the data routed).
    fn header(&mut self, rx: &mut Receiver, pdu: Pdu, frame: Frame) {
        self.events.push(Ev::Header(pdu, frame));
        match pdu {
            Pdu::IcReq(r) => rx.set_stage(Stage::Established(r.digests())),
            Pdu::IcResp(r) => rx.set_stage(Stage::Established(r.digests())),
            _ => {}
        }
        if let Some((tag, offset)) = route(&pdu) {
            rx.deliver(tag, offset);
        }
    }

    /// Reports `bytes`, just copied to the data buffer, as received.
    fn data_received(&mut self, rx: &mut Receiver, bytes: &[u8]) {
        if let Some((tag, len)) = rx.data_received(bytes.len() as u32, |c| Crc32c::resume(c).tap(bytes)) {
            self.events.push(Ev::DataDone(tag, len));
        }
    }

    /// The `len` bytes of `tag`'s data from `offset`.
    fn data_at(&mut self, tag: u16, offset: u32, len: u32) -> &mut [u8] {
        let dst = self.data.entry(tag).or_default();
        let (off, end) = (offset as usize, offset as usize + len as usize);
        if dst.len() < end {
            dst.resize(end, 0);
        }
        &mut dst[off..end]
    }
}

/// One PDU's place in a stream, for the checks of what is asked for.
#[derive(Clone, Copy, Debug)]
struct Place {
    start: usize,
    header_len: usize,
    data_len: usize,
    ddgst: bool,
}

impl Place {
    fn data_start(&self) -> usize {
        self.start + self.header_len
    }
    fn data_end(&self) -> usize {
        self.data_start() + self.data_len
    }
    fn end(&self) -> usize {
        self.data_end() + if self.ddgst { DIGEST_LEN } else { 0 }
    }
}

/// A bad PDU in a stream.
#[derive(Clone, Copy, Debug)]
struct Bad {
    start: usize,
    /// Whether the common header alone is refused.
    common: bool,
    /// Length of what `offending_header` reports.
    offending: usize,
}

/// A byte stream, what it must give, and where its PDUs are.
struct Stream {
    role: Role,
    limits: Limits,
    bytes: Vec<u8>,
    expect: Outcome,
    /// The PDUs up to (and with) a bad one; empty for garbage.
    places: Vec<Place>,
    bad: Option<Bad>,
}

/// The role's typical header with `stage`'s header digest.
fn min_ask(role: Role, stage: Stage) -> usize {
    let h = match role {
        Role::Controller => CAPSULE_CMD_HLEN,
        Role::Host => CAPSULE_RESP_HLEN,
    };
    match stage {
        Stage::Established(d) => h + d.header_len(),
        Stage::Handshake => h,
    }
}

/// Feeds `s` to a receiver, each read ending at the next of `cuts` (sorted
/// positions in the stream), and checks the buffering rules on the way.
fn run(s: &Stream, cuts: &[usize]) -> Outcome {
    let mut rx = Receiver::new(s.role, s.limits);
    let mut out = Outcome::default();
    let mut at = 0;
    let mut cut = 0;
    let bounds: Vec<usize> = s.places.iter().map(|p| p.start).collect();
    // The most one read may take from `at`.
    let avail = |at: usize, cut: &mut usize| -> usize {
        while *cut < cuts.len() && cuts[*cut] <= at {
            *cut += 1;
        }
        cuts.get(*cut).copied().unwrap_or(s.bytes.len()).min(s.bytes.len()) - at
    };
    for _ in 0..1_000_000 {
        let stage = rx.stage();
        let needs_input = rx.needs_input();
        let step = match rx.step() {
            Ok(step) => step,
            Err(e) => {
                out.error = Some(e);
                out.offending = rx.offending_header().to_vec();
                // Failed for good.
                assert_eq!(rx.step().unwrap_err(), e);
                assert!(!rx.at_boundary());
                if let Some(bad) = s.bad.filter(|b| b.common) {
                    // No more than one typical header past the bad one's start.
                    assert!(at <= bad.start + min_ask(s.role, stage), "read {at}, bad header at {}", bad.start);
                }
                return out;
            }
        };
        // A driver may skip a step that can only ask for input.
        if needs_input {
            assert!(
                matches!(step, Step::Recv(_)) || matches!(step, Step::Data { buffered: &[], .. }),
                "needs_input, then {step:?} at {at}"
            );
        }
        match step {
            Step::Header { pdu, frame } => {
                let pdu = *pdu;
                out.header(&mut rx, pdu, frame);
            }
            Step::DataDone { tag, len } => out.events.push(Ev::DataDone(tag, len)),
            Step::Recv(buf) => {
                assert!(!buf.is_empty(), "empty receive at {at}");
                let offered = buf.len();
                check_recv(s, &bounds, at, offered, stage);
                if let Some(bad) = s.bad.filter(|b| b.common) {
                    assert!(at < bad.start + COMMON_HEADER_LEN, "asked for more than a bad common header");
                }
                if at == s.bytes.len() {
                    out.clean_end = rx.at_boundary();
                    return out;
                }
                if !s.places.is_empty() {
                    assert_eq!(rx.at_boundary(), bounds.contains(&at), "at_boundary at {at}");
                }
                // Asking again asks for the same.
                let Ok(Step::Recv(buf)) = rx.step() else { panic!("another step at {at}") };
                assert_eq!(buf.len(), offered);
                let n = avail(at, &mut cut).min(offered);
                buf[..n].copy_from_slice(&s.bytes[at..at + n]);
                at += n;
                // Over-reporting is clamped to what was offered.
                rx.received(n + if n == offered { 5 } else { 0 });
            }
            Step::Data { tag, offset, len, buffered } => {
                assert!(len > 0 && buffered.len() <= len as usize);
                let dst = out.data_at(tag, offset, len);
                if !buffered.is_empty() {
                    dst[..buffered.len()].copy_from_slice(buffered);
                    rx.buffered_copied();
                    continue;
                }
                if let Some(p) = s.places.iter().find(|p| p.data_start() <= at && at < p.data_end()) {
                    assert_eq!(p.data_end() - at, len as usize, "data due at {at}");
                }
                if at == s.bytes.len() {
                    assert!(!rx.at_boundary());
                    return out;
                }
                let n = avail(at, &mut cut).min(len as usize);
                let bytes = &s.bytes[at..at + n];
                dst[..n].copy_from_slice(bytes);
                at += n;
                out.data_received(&mut rx, bytes);
            }
        }
    }
    panic!("the receiver makes no progress");
}

/// Feeds `s` as [`run`] does, but with header bytes read inside the steps
/// ([`Receiver::step_reading`]), which find nothing once at each of `cuts`
/// (the driver then steps again): the same outcome as `run`.
fn run_reading(s: &Stream, cuts: &[usize]) -> Outcome {
    let mut rx = Receiver::new(s.role, s.limits);
    let mut out = Outcome::default();
    let mut at = 0;
    // Cuts not yet reached; the read at a cut finds nothing once.
    let mut cuts = cuts.iter().copied().peekable();
    for _ in 0..1_000_000 {
        let mut paused = false;
        let step = rx.step_reading(|buf| {
            assert!(!buf.is_empty(), "empty read at {at}");
            if cuts.next_if(|&c| c <= at).is_some() {
                paused = true;
                return 0;
            }
            let n = buf.len().min(cuts.peek().map_or(s.bytes.len(), |&c| c) - at);
            buf[..n].copy_from_slice(&s.bytes[at..at + n]);
            at += n;
            n
        });
        let step = match step {
            Ok(step) => step,
            Err(e) => {
                out.error = Some(e);
                out.offending = rx.offending_header().to_vec();
                return out;
            }
        };
        match step {
            Step::Header { pdu, frame } => {
                let pdu = *pdu;
                out.header(&mut rx, pdu, frame);
            }
            Step::DataDone { tag, len } => out.events.push(Ev::DataDone(tag, len)),
            Step::Recv(_) if paused => {}
            Step::Recv(_) => {
                assert_eq!(at, s.bytes.len(), "a read found nothing at {at}");
                out.clean_end = rx.at_boundary();
                return out;
            }
            Step::Data { tag, offset, len, buffered } => {
                let dst = out.data_at(tag, offset, len);
                if !buffered.is_empty() {
                    dst[..buffered.len()].copy_from_slice(buffered);
                    rx.buffered_copied();
                    continue;
                }
                if at == s.bytes.len() {
                    return out;
                }
                cuts.next_if(|&c| c <= at);
                let n = (len as usize).min(cuts.peek().map_or(s.bytes.len(), |&c| c) - at);
                let bytes = &s.bytes[at..at + n];
                dst[..n].copy_from_slice(bytes);
                at += n;
                out.data_received(&mut rx, bytes);
            }
        }
    }
    panic!("the receiver makes no progress");
}

/// Checks a receive of `offered` bytes at `at` against the buffering rules:
/// a header receive asks for the role's typical header (or the whole header
/// once framed) from the header's start; a digest receive for the digest and
/// a typical header; a drop receive for no more than the data.
fn check_recv(s: &Stream, bounds: &[usize], at: usize, offered: usize, stage: Stage) {
    let ask = min_ask(s.role, stage);
    let Some(p) = s.places.iter().find(|p| p.start <= at && at < p.end()) else {
        if !s.places.is_empty() && s.bad.is_none() {
            // Past the last PDU: a header receive from its start.
            assert!(bounds.contains(&at) || at == s.bytes.len());
            assert_eq!(offered, ask, "receive at the end {at}");
        }
        return;
    };
    if at < p.data_start() {
        let have = at - p.start;
        let want = if have >= COMMON_HEADER_LEN { ask.max(p.header_len) } else { ask };
        if !matches!(s.bad, Some(b) if b.start == p.start && have >= COMMON_HEADER_LEN) {
            assert_eq!(have + offered, want, "header receive at {at} ({p:?})");
        }
    } else if at < p.data_end() {
        assert!(offered <= p.data_end() - at, "drop receive at {at} ({p:?})");
    } else {
        assert_eq!(offered, p.end() - at + ask, "digest receive at {at} ({p:?})");
    }
}

/// Builds valid streams and their expected outcome.
struct Gen {
    rng: Rng,
    role: Role,
    digests: Digests,
    stage: Stage,
    limits: Limits,
    bytes: Vec<u8>,
    expect: Outcome,
    places: Vec<Place>,
    next_tag: u16,
    /// Whether the next tags drop their data (`None`: at random).
    force_drop: Option<bool>,
}

impl Gen {
    fn new(seed: u64, role: Role, digests: Digests) -> Self {
        Gen {
            rng: Rng(seed),
            role,
            digests,
            stage: Stage::Handshake,
            limits: Limits { max_data: 8192, max_inline: 1024 },
            bytes: Vec::new(),
            expect: Outcome { clean_end: true, ..Outcome::default() },
            places: Vec::new(),
            next_tag: 1,
            force_drop: None,
        }
    }

    fn tag(&mut self) -> u16 {
        self.next_tag += 1;
        let drop = self.force_drop.unwrap_or_else(|| self.rng.below(4) == 0);
        self.next_tag | if drop { DROP } else { 0 }
    }

    /// Appends a PDU with `data` (a TermReq's data is its offending header),
    /// and the events and data a driver gets from it.
    fn push(&mut self, pdu: Pdu, data: &[u8]) {
        let d = match self.stage {
            Stage::Established(d) => d,
            Stage::Handshake => Digests::NONE,
        };
        let mut hdr = [0u8; MAX_HEADER_LEN + TERM_REQ_MAX_DATA];
        let hl = match pdu {
            Pdu::TermReq(t) => TermReq { data_len: 0, ..t }.encode(&mut hdr, data).unwrap() - data.len(),
            _ => pdu.encode(&mut hdr, d).unwrap(),
        };
        let (decoded, frame) = Pdu::decode(&hdr[..hl], self.role, self.stage, u32::MAX).unwrap();
        assert_eq!(frame.data_len as usize, data.len(), "{pdu:?}");
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&hdr[..hl]);
        self.bytes.extend_from_slice(data);
        if frame.data_digest {
            self.bytes.extend_from_slice(&crc32c(data).to_le_bytes());
        }
        self.places.push(Place { start, header_len: hl, data_len: data.len(), ddgst: frame.data_digest });
        self.expect.events.push(Ev::Header(decoded, frame));
        if let (Some((tag, offset)), false) = (route(&decoded), data.is_empty()) {
            let dst = self.expect.data.entry(tag).or_default();
            let (off, end) = (offset as usize, offset as usize + data.len());
            if dst.len() < end {
                dst.resize(end, 0);
            }
            dst[off..end].copy_from_slice(data);
            self.expect.events.push(Ev::DataDone(tag, frame.data_len));
        }
        match decoded {
            Pdu::IcReq(r) => self.stage = Stage::Established(r.digests()),
            Pdu::IcResp(r) => self.stage = Stage::Established(r.digests()),
            _ => {}
        }
    }

    fn handshake(&mut self) {
        let (h, dd) = (self.digests.header, self.digests.data);
        match self.role {
            Role::Controller => {
                let r = IcReq { pfv: 0, hpda: 0, hdgst: h, ddgst: dd, maxr2t: self.rng.u32() };
                self.push(Pdu::IcReq(r), &[]);
            }
            Role::Host => {
                let r = IcResp { pfv: 0, cpda: 0, hdgst: h, ddgst: dd, maxdata: 131072 };
                self.push(Pdu::IcResp(r), &[]);
            }
        }
    }

    /// A data length: mostly short (so small streams cross every path),
    /// sometimes a few KiB.
    fn data_len(&mut self, max: u32) -> usize {
        let n = if self.rng.below(8) == 0 { 1 + self.rng.below(3000) } else { 1 + self.rng.below(90) };
        n.min(max as usize)
    }

    fn capsule(&mut self, data_len: usize) {
        let tag = self.tag();
        let mut sqe: [u8; SQE_LEN] = self.rng.bytes();
        sqe[2..4].copy_from_slice(&tag.to_le_bytes());
        let data = self.rng.vec(data_len);
        self.push(Pdu::CapsuleCmd(CapsuleCmd { sqe, data_len: data_len as u32 }), &data);
    }

    fn data_pdu(&mut self, len: usize) {
        let from_host = self.role == Role::Controller;
        let success = !from_host && self.rng.bool();
        let d = Data {
            from_host,
            cccid: self.tag(),
            ttag: self.rng.u16(),
            datao: self.rng.below(64) as u32,
            datal: len as u32,
            last: success || self.rng.bool(),
            success,
        };
        let data = self.rng.vec(len);
        self.push(Pdu::Data(d), &data);
    }

    /// One random valid PDU for the role, after the handshake.
    fn any(&mut self) {
        match (self.role, self.rng.below(4)) {
            (Role::Controller, 0) => self.capsule(0),
            (Role::Controller, 1 | 2) => {
                let n = self.data_len(self.limits.max_inline);
                self.capsule(n)
            }
            (Role::Controller, _) => {
                let n = self.data_len(self.limits.max_data);
                self.data_pdu(n)
            }
            (Role::Host, 0) => {
                let cqe = self.rng.bytes();
                self.push(Pdu::CapsuleResp(CapsuleResp { cqe }), &[])
            }
            (Role::Host, 1) => {
                let r = R2t { cccid: self.rng.u16(), ttag: self.rng.u16(), r2to: self.rng.u32(), r2tl: 1 + self.rng.u32() / 2 };
                self.push(Pdu::R2t(r), &[]);
            }
            (Role::Host, _) => {
                let n = self.data_len(self.limits.max_data);
                self.data_pdu(n)
            }
        }
    }

    fn term_req(&mut self) {
        let n = self.rng.below(TERM_REQ_MAX_DATA + 1);
        let data = self.rng.vec(n);
        let t = TermReq { from_host: self.role == Role::Controller, fes: self.rng.u16(), fei: self.rng.u32(), data_len: 0 };
        self.push(Pdu::TermReq(t), &data);
    }

    /// A TermReq with a short offending header (for small streams).
    fn term_req_short(&mut self) {
        let n = self.rng.below(12);
        let data = self.rng.vec(n);
        let t = TermReq { from_host: self.role == Role::Controller, fes: self.rng.u16() | 1, fei: 0, data_len: 0 };
        self.push(Pdu::TermReq(t), &data);
    }

    fn stream(self, bad: Option<Bad>) -> Stream {
        Stream { role: self.role, limits: self.limits, bytes: self.bytes, expect: self.expect, places: self.places, bad }
    }
}

/// A valid stream: the handshake, `n` PDUs, sometimes a TermReq.
fn valid(seed: u64, role: Role, digests: Digests, n: usize) -> Stream {
    let mut g = Gen::new(seed, role, digests);
    g.handshake();
    for _ in 0..n {
        g.any();
    }
    if g.rng.below(3) == 0 {
        g.term_req();
    }
    g.stream(None)
}

const DIGESTS: [Digests; 4] = [
    Digests { header: false, data: false },
    Digests { header: true, data: false },
    Digests { header: false, data: true },
    Digests { header: true, data: true },
];

const ROLES: [Role; 2] = [Role::Controller, Role::Host];

/// Runs `s` whole and under the given chunkings, checking every outcome
/// equals the expected one.
fn check_chunkings(s: &Stream, chunkings: impl Iterator<Item = Vec<usize>>) -> usize {
    let whole = run(s, &[]);
    assert_eq!(whole, s.expect, "fed whole");
    assert_eq!(run_reading(s, &[]), whole, "read whole");
    let mut runs = 1;
    for cuts in chunkings {
        assert_eq!(run(s, &cuts), whole, "cuts {cuts:?}");
        assert_eq!(run_reading(s, &cuts), whole, "reading, cuts {cuts:?}");
        runs += 1;
    }
    runs
}

/// Chunkings: every fixed chunk size up to `max`.
fn chunk_sizes(len: usize, max: usize) -> impl Iterator<Item = Vec<usize>> {
    (1..=max.min(len.max(1))).map(move |c| (1..).map(|i| i * c).take_while(|&p| p < len).collect())
}

/// Random chunkings: cuts at random gaps (some tiny, some large).
fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut at = 0;
    loop {
        at += match rng.below(4) {
            0 => 1 + rng.below(4),
            1 => 1 + rng.below(30),
            2 => 1 + rng.below(200),
            _ => 1 + rng.below(5000),
        };
        if at >= len {
            return cuts;
        }
        cuts.push(at);
    }
}

/// Property 1 on small streams: every single and every pair of split points,
/// and every chunk size, for both roles and every digest setting.
#[test]
fn small_streams_any_split() {
    let mut runs = 0;
    for (i, role) in ROLES.into_iter().enumerate() {
        for (j, d) in DIGESTS.into_iter().enumerate() {
            // Short data only, so the streams stay small.
            let mut g = Gen::new(100 + (i * 4 + j) as u64, role, d);
            g.limits = Limits { max_data: 40, max_inline: 40 };
            g.handshake();
            for _ in 0..3 {
                g.any();
            }
            g.term_req_short();
            let s = g.stream(None);
            let len = s.bytes.len();
            assert!(len < 500, "{len}");
            runs += check_chunkings(&s, chunk_sizes(len, len));
            runs += check_chunkings(&s, (1..len).map(|a| vec![a]));
            // Pairs of split points past the handshake (whose 128 bytes add
            // nothing but time) and around it, up to two largest headers
            // apart (to keep the test fast: single splits and random chunkings
            // cover the rest).
            let from = s.places[1].start.saturating_sub(4);
            let pairs = (from..len).flat_map(|a| (a + 1..len.min(a + 2 * MAX_HEADER_LEN)).map(move |b| vec![a, b]));
            runs += check_chunkings(&s, pairs);
        }
    }
    assert!(runs > 10_000, "{runs}");
}

/// Property 1 on longer streams: every chunk size up to 160, and random
/// chunkings.
#[test]
fn long_streams_any_chunking() {
    let mut rng = Rng(0x5eed);
    for seed in 0..16u64 {
        let role = ROLES[seed as usize % 2];
        let d = DIGESTS[(seed as usize / 2) % 4];
        let s = valid(1000 + seed, role, d, 40);
        let len = s.bytes.len();
        check_chunkings(&s, chunk_sizes(len, 160));
        let cuts: Vec<_> = (0..300).map(|_| random_cuts(&mut rng, len)).collect();
        check_chunkings(&s, cuts.into_iter());
    }
}

/// The kinds of bad PDU `invalid` builds.
const BAD_KINDS: usize = 16;

/// Fixes the header digest of the header at `start` after an edit.
fn fix_hdgst(bytes: &mut [u8], start: usize, hlen: usize) {
    let d = crc32c(&bytes[start..start + hlen]);
    bytes[start + hlen..start + hlen + 4].copy_from_slice(&d.to_le_bytes());
}

/// An invalid stream: a valid prefix of `prefix` PDUs, then a bad PDU of
/// `kind` (`None` when the kind does not apply to the role and digests),
/// then junk. The expected outcome has the prefix's events and data, those
/// of the bad PDU before its error, and the error.
fn invalid(seed: u64, role: Role, d: Digests, kind: usize, prefix: usize) -> Option<Stream> {
    let mut g = Gen::new(seed, role, d);
    let ctrl = role == Role::Controller;
    // 11: a PDU before the handshake.
    if kind != 11 {
        g.handshake();
        for _ in 0..prefix {
            g.any();
        }
    }
    let saved = g.expect.clone();
    let start = g.bytes.len();
    let hd = if matches!(g.stage, Stage::Established(x) if x.header) { DIGEST_LEN } else { 0 };
    let common = Bad { start, common: true, offending: COMMON_HEADER_LEN };
    let whole = |g: &Gen| Bad { start, common: false, offending: g.places.last().unwrap().header_len };
    // A PDU of the role's typical header (CapsuleCmd or CapsuleResp), no data.
    let typical = |g: &mut Gen| {
        if ctrl {
            g.capsule(0)
        } else {
            let cqe = g.rng.bytes();
            g.push(Pdu::CapsuleResp(CapsuleResp { cqe }), &[])
        }
    };
    let (error, bad) = match kind {
        0 => {
            typical(&mut g);
            let ty = [0x08u8, 0x0a, 0x7f, 0xff][g.rng.below(4)];
            g.bytes[start] = ty;
            (Error::InvalidField { field: Field::PduType, value: ty.into() }, common)
        }
        1 => {
            typical(&mut g);
            let hlen = if ctrl { 24 } else { 72 };
            g.bytes[start + 2] = hlen;
            (Error::InvalidField { field: Field::Hlen, value: hlen.into() }, common)
        }
        2 => {
            // plen shorter than the header.
            typical(&mut g);
            let plen = 8 + g.rng.below(16) as u32;
            g.bytes[start + 4..start + 8].copy_from_slice(&plen.to_le_bytes());
            (Error::InvalidField { field: Field::Plen, value: plen }, common)
        }
        3 => {
            // Data over max_data; the stream does not hold it.
            g.data_pdu(10);
            let ddgst = if d.data { 4 } else { 0 };
            let length = g.limits.max_data + 1 + g.rng.below(1000) as u32;
            let plen = (DATA_HLEN + hd + ddgst) as u32 + length;
            g.bytes[start + 4..start + 8].copy_from_slice(&plen.to_le_bytes());
            (Error::DataLimit { length, limit: g.limits.max_data }, common)
        }
        4 if ctrl => {
            // In-capsule data over max_inline (within max_data).
            let n = g.limits.max_inline as usize + 1 + g.rng.below(100);
            g.capsule(n);
            (Error::DataLimit { length: n as u32, limit: g.limits.max_inline }, common)
        }
        5 if d.header => {
            typical(&mut g);
            let hl = g.places.last().unwrap().header_len;
            let at = start + 8 + g.rng.below(hl - 12);
            g.bytes[at] ^= 1 << g.rng.below(8);
            let expected = crc32c(&g.bytes[start..start + hl - 4]);
            let received = u32::from_le_bytes(g.bytes[start + hl - 4..start + hl].try_into().unwrap());
            (Error::HeaderDigest { expected, received }, whole(&g))
        }
        6 | 7 if d.data => {
            // A data digest mismatch, on delivered (6) or dropped (7) data.
            g.force_drop = Some(kind == 7);
            let n = g.data_len(g.limits.max_inline);
            if ctrl && g.rng.bool() {
                g.capsule(n)
            } else {
                g.data_pdu(n)
            }
            let p = *g.places.last().unwrap();
            if kind == 6 {
                let done = g.expect.events.pop();
                assert!(matches!(done, Some(Ev::DataDone(..))), "{done:?}");
            }
            let expected = crc32c(&g.bytes[p.data_start()..p.data_end()]);
            let received = expected ^ (1 << g.rng.below(32));
            g.bytes[p.data_end()..p.end()].copy_from_slice(&received.to_le_bytes());
            (Error::DataDigest { expected, received }, whole(&g))
        }
        8 => {
            // A PDU only the other role sends.
            let (ty, hl) = if ctrl { (PduType::CapsuleResp, CAPSULE_RESP_HLEN) } else { (PduType::CapsuleCmd, CAPSULE_CMD_HLEN) };
            let mut b = vec![0u8; hl + hd];
            b[..8].copy_from_slice(&[ty as u8, (hd > 0).into(), hl as u8, 0, (hl + hd) as u8, 0, 0, 0]);
            g.bytes.extend_from_slice(&b);
            g.places.push(Place { start, header_len: hl + hd, data_len: 0, ddgst: false });
            (Error::InvalidField { field: Field::PduType, value: ty as u32 }, common)
        }
        9 => {
            // Header digest flag other than negotiated.
            typical(&mut g);
            g.bytes[start + 1] ^= flags::HDGSTF;
            let f = g.bytes[start + 1];
            (Error::InvalidField { field: Field::Flags, value: f.into() }, common)
        }
        10 => {
            // A second ICReq/ICResp.
            let mut b = [0u8; 128];
            if ctrl {
                IcReq { pfv: 0, hpda: 0, hdgst: d.header, ddgst: d.data, maxr2t: 0 }.encode(&mut b).unwrap();
            } else {
                IcResp { pfv: 0, cpda: 0, hdgst: d.header, ddgst: d.data, maxdata: 8192 }.encode(&mut b).unwrap();
            }
            g.bytes.extend_from_slice(&b);
            g.places.push(Place { start, header_len: 128, data_len: 0, ddgst: false });
            (Error::Sequence { pdu_type: b[0] }, common)
        }
        11 => {
            // A command or response before the handshake.
            g.stage = Stage::Established(Digests::NONE);
            typical(&mut g);
            (Error::Sequence { pdu_type: g.bytes[start] }, common)
        }
        12 => {
            // datal other than the data the PDU carries.
            g.data_pdu(20);
            let datal = 21 + g.rng.below(100) as u32;
            g.bytes[start + 16..start + 20].copy_from_slice(&datal.to_le_bytes());
            if hd > 0 {
                fix_hdgst(&mut g.bytes, start, DATA_HLEN);
            }
            (Error::InvalidField { field: Field::Length, value: datal }, whole(&g))
        }
        13 => {
            // Data at an offset whose end overflows, which the driver delivers.
            let len = 10 + g.rng.below(10) as u32;
            let offset = u32::MAX - g.rng.below(len as usize - 1) as u32;
            let p = Data { from_host: ctrl, cccid: 7, ttag: 1, datao: offset, datal: len, last: true, success: false };
            let mut hdr = [0u8; 28];
            let hl = p.encode(&mut hdr, d).unwrap();
            let (pdu, frame) = Pdu::decode(&hdr[..hl], role, g.stage, u32::MAX).unwrap();
            assert_eq!(route(&pdu), Some((7, offset)));
            g.bytes.extend_from_slice(&hdr[..hl]);
            g.bytes.extend(g.rng.vec(len as usize + 4));
            g.places.push(Place { start, header_len: hl, data_len: len as usize, ddgst: frame.data_digest });
            let mut s = with_error(g, saved, Error::DataOutOfRange { offset, length: len });
            s.expect.events.push(Ev::Header(pdu, frame));
            s.bad = Some(Bad { start, common: false, offending: hl });
            return Some(s);
        }
        14 if !ctrl => {
            // An R2T for no data.
            let r = R2t { cccid: 1, ttag: 2, r2to: 0, r2tl: 5 };
            g.push(Pdu::R2t(r), &[]);
            g.bytes[start + 16..start + 20].copy_from_slice(&0u32.to_le_bytes());
            if hd > 0 {
                fix_hdgst(&mut g.bytes, start, R2T_HLEN);
            }
            (Error::InvalidField { field: Field::Length, value: 0 }, whole(&g))
        }
        15 => {
            // A PDU without data announcing a data digest.
            typical(&mut g);
            g.bytes[start + 1] |= flags::DDGSTF;
            let f = g.bytes[start + 1];
            (Error::InvalidField { field: Field::Flags, value: f.into() }, common)
        }
        _ => return None,
    };
    // Only a data digest error comes after the header was returned (and
    // after its data was delivered).
    let expect = if matches!(error, Error::DataDigest { .. }) { g.expect.clone() } else { saved };
    let mut s = with_error(g, expect, error);
    s.bad = Some(bad);
    // Junk after the bad PDU, so reads could take more.
    let mut rng = Rng(seed ^ 0xdead);
    s.bytes.extend((0..300).map(|_| rng.u8()));
    Some(s)
}

/// The stream of `g`, expecting the events and data of `expect` and then
/// `error`.
fn with_error(g: Gen, expect: Outcome, error: Error) -> Stream {
    let mut s = g.stream(None);
    s.expect = Outcome { error: Some(error), clean_end: false, ..expect };
    s
}

/// Property 2 and 3: any chunking of an invalid stream gives the same
/// events and error as feeding it whole (the expected ones), a bad common
/// header is refused without asking for more bytes, and `offending_header`
/// is the bad header.
#[test]
fn invalid_streams_any_chunking() {
    let mut rng = Rng(0xbad);
    let mut cases = 0;
    for kind in 0..BAD_KINDS {
        for role in ROLES {
            for d in DIGESTS {
                for prefix in [0, 1, 3] {
                    let seed = rng.next();
                    let Some(mut s) = invalid(seed, role, d, kind, prefix) else { continue };
                    let bad = s.bad.unwrap();
                    let whole = run(&s, &[]);
                    s.expect.offending = s.bytes[bad.start..bad.start + bad.offending].to_vec();
                    assert_eq!(whole, s.expect, "kind {kind} {role:?} {d:?} prefix {prefix}");
                    let len = s.bytes.len();
                    // Every chunk size up to a header and a bit, then random ones.
                    for cuts in chunk_sizes(len, 90) {
                        assert_eq!(run(&s, &cuts), whole, "kind {kind} cuts {cuts:?}");
                    }
                    for _ in 0..40 {
                        let cuts = random_cuts(&mut rng, len);
                        assert_eq!(run(&s, &cuts), whole, "kind {kind} cuts {cuts:?}");
                        assert_eq!(run_reading(&s, &cuts), whole, "kind {kind} reading, cuts {cuts:?}");
                    }
                    // Every split point around the bad PDU.
                    for a in bad.start.saturating_sub(10)..(bad.start + 140).min(len) {
                        assert_eq!(run(&s, &[a]), whole, "kind {kind} cut {a}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 200, "{cases}");
}

/// Property 4: garbage (random bytes, and valid streams with random bytes
/// changed or cut) under random chunking never panics, and gives the same
/// outcome under any chunking.
#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x6a7b);
    let mut errors = 0;
    for i in 0..10_000 {
        let role = ROLES[rng.below(2)];
        let d = DIGESTS[rng.below(4)];
        let mut bytes = if rng.below(4) == 0 {
            let n = rng.below(600);
            let mut b = rng.vec(n);
            if !b.is_empty() {
                b[0] %= 10;
            }
            b
        } else {
            let s = valid(rng.next(), role, d, 1 + rng.below(6));
            s.bytes
        };
        for _ in 0..rng.below(4) {
            if !bytes.is_empty() {
                let at = rng.below(bytes.len());
                bytes[at] = if rng.bool() { rng.u8() } else { bytes[at] ^ (1 << rng.below(8)) };
            }
        }
        if rng.bool() && !bytes.is_empty() {
            let n = rng.below(bytes.len());
            bytes.truncate(n);
        }
        let limits = Limits { max_data: rng.u32() % 10000, max_inline: rng.u32() % 2000 };
        let s = Stream { role, limits, bytes, expect: Outcome::default(), places: Vec::new(), bad: None };
        let whole = run(&s, &[]);
        errors += usize::from(whole.error.is_some());
        for _ in 0..4 {
            let cuts = random_cuts(&mut rng, s.bytes.len());
            assert_eq!(run(&s, &cuts), whole, "case {i}");
            assert_eq!(run_reading(&s, &cuts), whole, "case {i}, reading");
        }
        // Misuse by the driver is ignored, never a panic.
        let mut rx = Receiver::new(role, limits);
        rx.received(usize::MAX);
        rx.buffered_copied();
        assert_eq!(rx.data_received(u32::MAX, |c| c), None);
        rx.deliver(1, u32::MAX);
        assert!(rx.at_boundary());
    }
    assert!(errors > 3000, "{errors}");
}

/// Property 5: `at_boundary` is true exactly between PDUs (checked at every
/// receive by `run`), and at the end of a valid stream.
#[test]
fn boundaries() {
    for (i, role) in ROLES.into_iter().enumerate() {
        for d in DIGESTS {
            let s = valid(7 + i as u64, role, d, 12);
            let out = run(&s, &[]);
            assert!(out.clean_end);
            // Cut one byte short: the stream ends inside a PDU.
            let mut short = valid(7 + i as u64, role, d, 12);
            short.bytes.pop();
            short.places.clear();
            let out = run(&short, &[]);
            assert!(!out.clean_end && out.error.is_none());
        }
    }
}

// ---- step-by-step scenarios ----

fn handshaken(role: Role, d: Digests) -> Receiver {
    let mut rx = Receiver::new(role, Limits { max_data: 1 << 20, max_inline: 8192 });
    rx.set_stage(Stage::Established(d));
    rx
}

fn recv(rx: &mut Receiver, bytes: &[u8]) -> usize {
    let Ok(Step::Recv(buf)) = rx.step() else { panic!("no receive") };
    let n = buf.len().min(bytes.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    rx.received(n);
    n
}

/// A capsule with in-capsule data: the header receive asks for exactly the
/// capsule header, and the data goes straight to the driver.
#[test]
fn capsule_data_goes_straight_to_the_driver() {
    let d = Digests { header: true, data: true };
    let mut rx = handshaken(Role::Controller, d);
    let mut sqe = [0u8; SQE_LEN];
    sqe[2] = 9;
    let mut hdr = [0u8; 76];
    CapsuleCmd { sqe, data_len: 100 }.encode(&mut hdr, d).unwrap();
    let data = [0x5au8; 100];
    let Ok(Step::Recv(buf)) = rx.step() else { panic!() };
    assert_eq!(buf.len(), 76);
    buf.copy_from_slice(&hdr);
    rx.received(76);
    let Ok(Step::Header { pdu: &Pdu::CapsuleCmd(c), frame }) = rx.step() else { panic!() };
    assert_eq!((c.command_id(), frame.data_len), (9, 100));
    assert!(!rx.at_boundary());
    assert_eq!(rx.offending_header(), &hdr);
    rx.deliver(9, 0);
    let Ok(Step::Data { tag: 9, offset: 0, len: 100, buffered: &[] }) = rx.step() else { panic!() };
    assert_eq!(rx.data_received(60, |c| Crc32c::resume(c).tap(&data[..60])), None);
    let Ok(Step::Data { tag: 9, offset: 60, len: 40, buffered: &[] }) = rx.step() else { panic!() };
    // All data in, but its digest is still due.
    assert_eq!(rx.data_received(40, |c| Crc32c::resume(c).tap(&data[60..])), None);
    // The digest, and a typical header past it.
    let Ok(Step::Recv(buf)) = rx.step() else { panic!() };
    assert_eq!(buf.len(), 4 + 76);
    buf[..4].copy_from_slice(&crc32c(&data).to_le_bytes());
    rx.received(4);
    assert!(matches!(rx.step(), Ok(Step::DataDone { tag: 9, len: 100 })));
    assert!(rx.at_boundary());
    let Ok(Step::Recv(buf)) = rx.step() else { panic!() };
    assert_eq!(buf.len(), 76);
}

trait Tap {
    fn tap(self, bytes: &[u8]) -> u32;
}

impl Tap for Crc32c {
    fn tap(mut self, bytes: &[u8]) -> u32 {
        self.update(bytes);
        self.state()
    }
}

/// Bytes read past a short header are offered as buffered data first.
#[test]
fn read_ahead_is_buffered_data() {
    let mut rx = handshaken(Role::Controller, Digests::NONE);
    let h2c = Data { from_host: true, cccid: 3, ttag: 4, datao: 10, datal: 100, last: true, success: false };
    let mut stream = vec![0u8; 24];
    h2c.encode(&mut stream, Digests::NONE).unwrap();
    stream.extend((0..100).map(|i| i as u8));
    assert_eq!(recv(&mut rx, &stream), 72);
    let Ok(Step::Header { pdu: &Pdu::Data(got), .. }) = rx.step() else { panic!() };
    assert_eq!(got, h2c);
    rx.deliver(3, 10);
    let Ok(Step::Data { tag: 3, offset: 10, len: 100, buffered }) = rx.step() else { panic!() };
    assert_eq!(buffered, &stream[24..72]);
    rx.buffered_copied();
    let Ok(Step::Data { tag: 3, offset: 58, len: 52, buffered: &[] }) = rx.step() else { panic!() };
    // No digest: the last bytes complete the PDU, and no step repeats it.
    assert_eq!(rx.data_received(52, |_| unreachable!("no data digest")), Some((3, 100)));
    assert!(rx.at_boundary());
    assert!(matches!(rx.step(), Ok(Step::Recv(_))));
    assert!(rx.at_boundary());
}

/// A host asks for a response capsule's header at once.
#[test]
fn host_asks_for_a_response() {
    let mut rx = Receiver::new(Role::Host, Limits { max_data: 4096, max_inline: 0 });
    let Ok(Step::Recv(buf)) = rx.step() else { panic!() };
    assert_eq!(buf.len(), CAPSULE_RESP_HLEN);
    rx.set_stage(Stage::Established(Digests { header: true, data: false }));
    let Ok(Step::Recv(buf)) = rx.step() else { panic!() };
    assert_eq!(buf.len(), CAPSULE_RESP_HLEN + 4);
}

/// A bad common header fails on its 8 bytes, without waiting for the rest.
#[test]
fn bad_common_header_fails_at_once() {
    let mut rx = handshaken(Role::Controller, Digests::NONE);
    let bad = [0x04, 0, 72, 0, 10, 0, 0, 0];
    assert_eq!(recv(&mut rx, &bad[..5]), 5);
    assert_eq!(recv(&mut rx, &bad[5..]), 3);
    let e = rx.step().unwrap_err();
    assert_eq!(e, Error::InvalidField { field: Field::Plen, value: 10 });
    assert_eq!(rx.offending_header(), &bad);
    assert_eq!(rx.step().unwrap_err(), e);
    assert!(!rx.at_boundary());
}

/// In-capsule data over `max_inline` is refused from the common header.
#[test]
fn inline_over_the_limit() {
    let mut rx = Receiver::new(Role::Controller, Limits { max_data: 1 << 20, max_inline: 4096 });
    rx.set_stage(Stage::Established(Digests::NONE));
    let mut hdr = [0u8; 72];
    CapsuleCmd { sqe: [0; 64], data_len: 4097 }.encode(&mut hdr, Digests::NONE).unwrap();
    recv(&mut rx, &hdr[..8]);
    assert_eq!(rx.step().unwrap_err(), Error::DataLimit { length: 4097, limit: 4096 });
    assert_eq!(rx.offending_header(), &hdr[..8]);
}

/// `deliver` with an offset whose end overflows fails the next step.
#[test]
fn deliver_offset_overflow() {
    let mut rx = handshaken(Role::Host, Digests::NONE);
    let c2h = Data { from_host: false, cccid: 3, ttag: 0, datao: u32::MAX - 5, datal: 10, last: true, success: false };
    let mut hdr = [0u8; 24];
    c2h.encode(&mut hdr, Digests::NONE).unwrap();
    recv(&mut rx, &hdr);
    assert!(matches!(rx.step(), Ok(Step::Header { .. })));
    rx.deliver(3, c2h.datao);
    assert_eq!(rx.step().unwrap_err(), Error::DataOutOfRange { offset: u32::MAX - 5, length: 10 });
    assert_eq!(rx.offending_header(), &hdr);
}

/// Dropped data (the default) is read into the receiver's own buffer, its
/// digest checked, and no `DataDone` reported.
#[test]
fn dropped_data_is_digested() {
    let d = Digests { header: false, data: true };
    let mut rx = handshaken(Role::Controller, d);
    let mut stream = vec![0u8; 72];
    CapsuleCmd { sqe: [0; 64], data_len: 1000 }.encode(&mut stream, d).unwrap();
    let data: Vec<u8> = (0..1000).map(|i| (i * 7) as u8).collect();
    stream.extend_from_slice(&data);
    stream.extend_from_slice(&crc32c(&data).to_le_bytes());
    let mut at = 0;
    loop {
        match rx.step().unwrap() {
            Step::Recv(buf) => {
                if at == stream.len() {
                    break;
                }
                // A drop receive never reads past the data.
                assert!(!(72..1072).contains(&at) || buf.len() <= 1072 - at);
                let n = buf.len().min(stream.len() - at);
                buf[..n].copy_from_slice(&stream[at..at + n]);
                at += n;
                rx.received(n);
            }
            Step::Header { .. } => {}
            s => panic!("{s:?}"),
        }
    }
    assert!(rx.at_boundary());
}
