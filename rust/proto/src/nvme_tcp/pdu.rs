// SPDX-License-Identifier: GPL-2.0

//! PDU layouts (NVMe/TCP Transport Specification 1.0, section 3.6), framing
//! checks, decoding and encoding.
//!
//! Receiving is two steps. [`CommonHeader::frame`] checks the 8-byte common
//! header against the connection's state before anything else is read, so a
//! bad header never makes the receiver wait for bytes it announced. Once the
//! whole header (and its digest) is in, [`Pdu::decode`] checks the digest and
//! the type-specific fields. Data follows the header; its digest, when
//! negotiated, follows the data.
//!
//! Both sides of this project negotiate a PDU data alignment of 0 (as the
//! Linux implementations do), so data always starts right after the header
//! and its digest.

use super::{crc32c, Error, Field};

/// Length of the common header.
pub const COMMON_HEADER_LEN: usize = 8;
/// Length of a header or data digest.
pub const DIGEST_LEN: usize = 4;
/// Length of an ICReq (header only, never digested).
pub const ICREQ_LEN: usize = 128;
/// Length of an ICResp (header only, never digested).
pub const ICRESP_LEN: usize = 128;
/// Header length of a CapsuleCmd: common header and a 64-byte SQE.
pub const CAPSULE_CMD_HLEN: usize = 72;
/// Header length of a CapsuleResp: common header and a 16-byte CQE.
pub const CAPSULE_RESP_HLEN: usize = 24;
/// Header length of H2CData and C2HData.
pub const DATA_HLEN: usize = 24;
/// Header length of R2T.
pub const R2T_HLEN: usize = 24;
/// Header length of H2CTermReq and C2HTermReq.
pub const TERM_REQ_HLEN: usize = 24;
/// Most bytes of the offending PDU header a TermReq carries.
pub const TERM_REQ_MAX_DATA: usize = 128;
/// Largest TermReq.
pub const TERM_REQ_MAX_LEN: usize = TERM_REQ_HLEN + TERM_REQ_MAX_DATA;
/// Length of a submission queue entry.
pub const SQE_LEN: usize = 64;
/// Length of a completion queue entry.
pub const CQE_LEN: usize = 16;
/// The largest PDU header including its digest (ICReq/ICResp).
pub const MAX_HEADER_LEN: usize = 128;
/// PDU format version 1.0, the only one defined.
pub const PFV_1_0: u16 = 0;
/// Smallest `maxh2cdata` a controller may grant.
pub const MIN_MAXH2CDATA: u32 = 4096;

/// Common header flags.
pub mod flags {
    /// A header digest follows the header.
    pub const HDGSTF: u8 = 1 << 0;
    /// A data digest follows the data.
    pub const DDGSTF: u8 = 1 << 1;
    /// H2CData/C2HData: the last data PDU of the transfer.
    pub const DATA_LAST: u8 = 1 << 2;
    /// C2HData: the command succeeded; no CapsuleResp follows.
    pub const DATA_SUCCESS: u8 = 1 << 3;
}

/// ICReq/ICResp `dgst` bits.
const DGST_HDGST: u8 = 1 << 0;
const DGST_DDGST: u8 = 1 << 1;

/// PDU types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PduType {
    /// Initialize Connection Request (host to controller).
    IcReq = 0x00,
    /// Initialize Connection Response (controller to host).
    IcResp = 0x01,
    /// Host to controller terminate connection request.
    H2CTermReq = 0x02,
    /// Controller to host terminate connection request.
    C2HTermReq = 0x03,
    /// Command capsule (host to controller).
    CapsuleCmd = 0x04,
    /// Response capsule (controller to host).
    CapsuleResp = 0x05,
    /// Host to controller data.
    H2CData = 0x06,
    /// Controller to host data.
    C2HData = 0x07,
    /// Ready to transfer (controller to host).
    R2T = 0x09,
}

impl PduType {
    /// The type for a `pdu-type` byte, if it is one.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x00 => PduType::IcReq,
            0x01 => PduType::IcResp,
            0x02 => PduType::H2CTermReq,
            0x03 => PduType::C2HTermReq,
            0x04 => PduType::CapsuleCmd,
            0x05 => PduType::CapsuleResp,
            0x06 => PduType::H2CData,
            0x07 => PduType::C2HData,
            0x09 => PduType::R2T,
            _ => return None,
        })
    }

    /// The fixed properties of this type: one load from a table, which
    /// framing a header reads once.
    const fn props(self) -> Props {
        // PANIC: the discriminants are 0..=9, the table's indices.
        PROPS[self as usize]
    }

    /// The header length (`hlen`) every PDU of this type has.
    pub const fn hlen(self) -> usize {
        self.props().hlen as usize
    }

    /// Whether the host sends this type (else the controller does).
    pub const fn from_host(self) -> bool {
        self.props().from_host
    }

    /// Whether negotiated digests apply (they never do to the connection
    /// set-up and termination PDUs).
    const fn digested(self) -> bool {
        !self.props().setup_or_term()
    }
}

/// What [`CommonHeader::frame`] needs to know of a PDU type.
#[derive(Clone, Copy)]
struct Props {
    /// Header length (`hlen`).
    hlen: u8,
    /// Sent by the host.
    from_host: bool,
    /// ICReq or ICResp.
    ic: bool,
    /// H2CTermReq or C2HTermReq.
    term: bool,
    /// May carry data.
    data: bool,
}

impl Props {
    const fn new(hlen: usize, from_host: bool, ic: bool, term: bool, data: bool) -> Self {
        // CAST: header lengths are at most 128.
        Self { hlen: hlen as u8, from_host, ic, term, data }
    }

    const fn setup_or_term(self) -> bool {
        self.ic || self.term
    }
}

/// [`Props`] by type value (0x08 is no type: [`PduType::from_u8`] refuses it).
const PROPS: [Props; 10] = [
    Props::new(ICREQ_LEN, true, true, false, false),
    Props::new(ICRESP_LEN, false, true, false, false),
    Props::new(TERM_REQ_HLEN, true, false, true, true),
    Props::new(TERM_REQ_HLEN, false, false, true, true),
    Props::new(CAPSULE_CMD_HLEN, true, false, false, true),
    Props::new(CAPSULE_RESP_HLEN, false, false, false, false),
    Props::new(DATA_HLEN, true, false, false, true),
    Props::new(DATA_HLEN, false, false, false, true),
    Props::new(0, false, false, false, false),
    Props::new(R2T_HLEN, false, false, false, false),
];

/// Which end of a connection receives a PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The host (initiator).
    Host,
    /// The controller (target).
    Controller,
}

/// The digests negotiated for a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// Header digests (HDGST).
    pub header: bool,
    /// Data digests (DDGST).
    pub data: bool,
}

impl Digests {
    /// No digests.
    pub const NONE: Digests = Digests { header: false, data: false };

    /// Bytes of header digest after each digested header.
    pub const fn header_len(self) -> usize {
        if self.header {
            DIGEST_LEN
        } else {
            0
        }
    }

    /// Bytes of data digest after the data of a digested PDU.
    pub const fn data_len(self) -> usize {
        if self.data {
            DIGEST_LEN
        } else {
            0
        }
    }
}

/// Where a connection is: before or after the ICReq/ICResp exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before the exchange: only ICReq (to a controller) or ICResp (to a
    /// host) may come, or a TermReq.
    Handshake,
    /// After it, with the digests it negotiated.
    Established(Digests),
}

impl Stage {
    /// The digests PDUs carry at this stage: none before the exchange.
    pub const fn digests(self) -> Digests {
        match self {
            Stage::Handshake => Digests::NONE,
            Stage::Established(d) => d,
        }
    }
}

/// The 8-byte header that starts every PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommonHeader {
    /// `pdu-type`.
    pub pdu_type: u8,
    /// `flags`.
    pub flags: u8,
    /// `hlen`: header length, without the header digest.
    pub hlen: u8,
    /// `pdo`: offset of the data in the PDU, or 0 when it has none.
    pub pdo: u8,
    /// `plen`: length of the whole PDU.
    pub plen: u32,
}

/// How a PDU is laid out on the wire, as checked by [`CommonHeader::frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The PDU's type.
    pub pdu_type: PduType,
    /// Bytes of header to receive, the header digest included.
    pub header_len: usize,
    /// Bytes of data after the header.
    pub data_len: u32,
    /// Whether a data digest follows the data.
    pub data_digest: bool,
}

/// Reads a little-endian `u16` at `at` (the caller has checked the length).
fn le16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

/// Reads a little-endian `u32` at `at` (the caller has checked the length).
fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

/// Checks that `buf` has at least `need` bytes.
fn need(buf: &[u8], need: usize) -> Result<(), Error> {
    if buf.len() < need {
        Err(Error::Truncated { need, have: buf.len() })
    } else {
        Ok(())
    }
}

/// The first `N` bytes of `buf`, as an array.
fn header<const N: usize>(buf: &[u8]) -> Result<&[u8; N], Error> {
    buf.first_chunk::<N>().ok_or(Error::Truncated { need: N, have: buf.len() })
}

/// Writes `v` at `at`; the caller has checked the length.
fn put(buf: &mut [u8], at: usize, v: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + v.len()) {
        dst.copy_from_slice(v);
    }
}

impl CommonHeader {
    /// Decodes the common header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        let &[pdu_type, flags, hlen, pdo, a, b, c, d] = header::<COMMON_HEADER_LEN>(buf)?;
        Ok(Self { pdu_type, flags, hlen, pdo, plen: u32::from_le_bytes([a, b, c, d]) })
    }

    /// Encodes the common header at the start of `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<(), Error> {
        let [a, b, c, d] = self.plen.to_le_bytes();
        let have = buf.len();
        let out = buf
            .first_chunk_mut::<COMMON_HEADER_LEN>()
            .ok_or(Error::Truncated { need: COMMON_HEADER_LEN, have })?;
        *out = [self.pdu_type, self.flags, self.hlen, self.pdo, a, b, c, d];
        Ok(())
    }

    fn invalid(field: Field, value: impl Into<u32>) -> Error {
        Error::InvalidField { field, value: value.into() }
    }

    /// Checks that this header may start a PDU that `receiver` gets at
    /// `stage`, with at most `max_data` bytes of data, and says how the PDU
    /// is laid out.
    #[inline(always)]
    pub fn frame(&self, receiver: Role, stage: Stage, max_data: u32) -> Result<Frame, Error> {
        let ty = PduType::from_u8(self.pdu_type)
            .ok_or(Self::invalid(Field::PduType, self.pdu_type))?;
        let p = ty.props();
        if p.from_host != (receiver == Role::Controller) {
            // A PDU only the other side may send.
            return Err(Self::invalid(Field::PduType, self.pdu_type));
        }
        let (is_term, is_ic) = (p.term, p.ic);
        let digests = match stage {
            Stage::Handshake if p.setup_or_term() => Digests::NONE,
            Stage::Established(d) if !is_ic => d,
            _ => return Err(Error::Sequence { pdu_type: self.pdu_type }),
        };
        if self.hlen != p.hlen {
            return Err(Self::invalid(Field::Hlen, self.hlen));
        }
        let digests = if p.setup_or_term() { Digests::NONE } else { digests };
        if (self.flags & flags::HDGSTF != 0) != digests.header {
            return Err(Self::invalid(Field::Flags, self.flags));
        }
        let header_len = usize::from(p.hlen) + digests.header_len();
        // NO-OVERFLOW: `header_len` is at most 128 + 4.
        let plen = self.plen as usize;
        if plen < header_len {
            return Err(Self::invalid(Field::Plen, self.plen));
        }
        if plen == header_len {
            // No data: `pdo` is reserved, and no data digest may be announced.
            if self.flags & flags::DDGSTF != 0 {
                return Err(Self::invalid(Field::Flags, self.flags));
            }
            if matches!(ty, PduType::H2CData | PduType::C2HData) {
                // A data PDU without data.
                return Err(Self::invalid(Field::Plen, self.plen));
            }
            return Ok(Frame { pdu_type: ty, header_len, data_len: 0, data_digest: false });
        }
        if !p.data {
            return Err(Self::invalid(Field::Plen, self.plen));
        }
        if is_term {
            // The offending header follows the TermReq header, undigested.
            if plen > TERM_REQ_MAX_LEN || self.flags & flags::DDGSTF != 0 {
                return Err(Self::invalid(Field::Plen, self.plen));
            }
        } else {
            if usize::from(self.pdo) != header_len {
                return Err(Self::invalid(Field::Pdo, self.pdo));
            }
            if (self.flags & flags::DDGSTF != 0) != digests.data {
                return Err(Self::invalid(Field::Flags, self.flags));
            }
        }
        let ddgst = if is_term { 0 } else { digests.data_len() };
        let data_len = plen
            .checked_sub(header_len + ddgst)
            .filter(|&n| n > 0)
            .ok_or(Self::invalid(Field::Plen, self.plen))?;
        let data_len = u32::try_from(data_len).map_err(|_| Self::invalid(Field::Plen, self.plen))?;
        if data_len > max_data && !is_term {
            return Err(Error::DataLimit { length: data_len, limit: max_data });
        }
        Ok(Frame { pdu_type: ty, header_len, data_len, data_digest: ddgst != 0 })
    }
}

/// Checks the header digest that follows `hlen` bytes of header in `hdr`.
fn check_header_digest(hdr: &[u8], hlen: usize) -> Result<(), Error> {
    let header = hdr.get(..hlen).ok_or(Error::Truncated { need: hlen, have: hdr.len() })?;
    let expected = crc32c(header);
    need(hdr, hlen + DIGEST_LEN)?;
    let received = le32(hdr, hlen);
    if expected != received {
        return Err(Error::HeaderDigest { expected, received });
    }
    Ok(())
}

/// Writes the common header for a PDU of type `ty` carrying `data_len`
/// bytes of data into `buf`, leaving the type-specific header to the caller;
/// returns the header length with its digest.
fn begin(
    buf: &mut [u8],
    ty: PduType,
    extra_flags: u8,
    digests: Digests,
    data_len: u32,
) -> Result<usize, Error> {
    let digests = if ty.digested() { digests } else { Digests::NONE };
    let header_len = ty.hlen() + digests.header_len();
    let have = buf.len();
    buf.get_mut(..header_len).ok_or(Error::Truncated { need: header_len, have })?.fill(0);
    let mut flags = extra_flags;
    if digests.header {
        flags |= flags::HDGSTF;
    }
    let (pdo, ddgst) = if data_len > 0 && !matches!(ty, PduType::H2CTermReq | PduType::C2HTermReq) {
        if digests.data {
            flags |= flags::DDGSTF;
        }
        (header_len, digests.data_len())
    } else {
        (0, 0)
    };
    // NO-OVERFLOW: the header is at most 132 bytes; `data_len` is limited by
    // the encoders to what fits a `u32` PDU length.
    let plen = u32::try_from(header_len + ddgst)
        .ok()
        .and_then(|h| h.checked_add(data_len))
        .ok_or(Error::DataLimit { length: data_len, limit: u32::MAX - 256 })?;
    CommonHeader { pdu_type: ty as u8, flags, hlen: ty.hlen() as u8, pdo: pdo as u8, plen }
        .encode(buf)?;
    Ok(header_len)
}

/// Appends the header digest, if `header_len` says there is one.
fn finish(buf: &mut [u8], ty: PduType, header_len: usize) -> usize {
    let hlen = ty.hlen();
    if header_len > hlen {
        if let Some(header) = buf.get(..hlen) {
            let d = crc32c(header);
            put(buf, hlen, &d.to_le_bytes());
        }
    }
    header_len
}

/// Initialize Connection Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcReq {
    /// PDU format version.
    pub pfv: u16,
    /// Host PDU data alignment, in dwords minus one (0: none).
    pub hpda: u8,
    /// Header digests asked for.
    pub hdgst: bool,
    /// Data digests asked for.
    pub ddgst: bool,
    /// Outstanding R2Ts per command the host allows, minus one.
    pub maxr2t: u32,
}

impl IcReq {
    /// Decodes an ICReq, common header included, from `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        let ch = CommonHeader::decode(buf)?;
        ch.frame(Role::Controller, Stage::Handshake, 0)?;
        if ch.pdu_type != PduType::IcReq as u8 {
            return Err(Error::Sequence { pdu_type: ch.pdu_type });
        }
        let b = header::<ICREQ_LEN>(buf)?;
        Ok(Self {
            pfv: le16(b, 8),
            hpda: b[10],
            hdgst: b[11] & DGST_HDGST != 0,
            ddgst: b[11] & DGST_DDGST != 0,
            maxr2t: le32(b, 12),
        })
    }

    /// Encodes the ICReq into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = begin(buf, PduType::IcReq, 0, Digests::NONE, 0)?;
        put(buf, 8, &self.pfv.to_le_bytes());
        put(buf, 10, &[self.hpda, dgst_bits(self.hdgst, self.ddgst)]);
        put(buf, 12, &self.maxr2t.to_le_bytes());
        Ok(len)
    }

    /// Checks what a controller of this project accepts: PDU format 1.0 and
    /// no host data alignment (as the Linux target).
    pub fn validate_target(&self) -> Result<(), Error> {
        if self.pfv != PFV_1_0 {
            return Err(Error::Unsupported { field: Field::Pfv, value: self.pfv.into() });
        }
        if self.hpda > 31 {
            return Err(Error::InvalidField { field: Field::Pda, value: self.hpda.into() });
        }
        if self.hpda != 0 {
            return Err(Error::Unsupported { field: Field::Pda, value: self.hpda.into() });
        }
        Ok(())
    }

    /// The digests this ICReq asks for.
    pub const fn digests(&self) -> Digests {
        Digests { header: self.hdgst, data: self.ddgst }
    }
}

fn dgst_bits(hdgst: bool, ddgst: bool) -> u8 {
    (if hdgst { DGST_HDGST } else { 0 }) | (if ddgst { DGST_DDGST } else { 0 })
}

/// Initialize Connection Response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcResp {
    /// PDU format version.
    pub pfv: u16,
    /// Controller PDU data alignment, in dwords minus one (0: none).
    pub cpda: u8,
    /// Header digests granted.
    pub hdgst: bool,
    /// Data digests granted.
    pub ddgst: bool,
    /// Largest H2CData PDU data the controller accepts (`maxh2cdata`).
    pub maxdata: u32,
}

impl IcResp {
    /// Decodes an ICResp, common header included, from `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        let ch = CommonHeader::decode(buf)?;
        ch.frame(Role::Host, Stage::Handshake, 0)?;
        if ch.pdu_type != PduType::IcResp as u8 {
            return Err(Error::Sequence { pdu_type: ch.pdu_type });
        }
        let b = header::<ICRESP_LEN>(buf)?;
        Ok(Self {
            pfv: le16(b, 8),
            cpda: b[10],
            hdgst: b[11] & DGST_HDGST != 0,
            ddgst: b[11] & DGST_DDGST != 0,
            maxdata: le32(b, 12),
        })
    }

    /// Encodes the ICResp into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = begin(buf, PduType::IcResp, 0, Digests::NONE, 0)?;
        put(buf, 8, &self.pfv.to_le_bytes());
        put(buf, 10, &[self.cpda, dgst_bits(self.hdgst, self.ddgst)]);
        put(buf, 12, &self.maxdata.to_le_bytes());
        Ok(len)
    }

    /// Checks the answer to `req` as a host of this project (and the Linux
    /// host) requires: PDU format 1.0, exactly the digests asked for, no
    /// controller data alignment, and a `maxh2cdata` of at least 4096 bytes
    /// that is a multiple of 4.
    pub fn validate_host(&self, req: &IcReq) -> Result<(), Error> {
        if self.pfv != PFV_1_0 {
            return Err(Error::Unsupported { field: Field::Pfv, value: self.pfv.into() });
        }
        if self.hdgst != req.hdgst || self.ddgst != req.ddgst {
            let value = dgst_bits(self.hdgst, self.ddgst);
            return Err(Error::InvalidField { field: Field::Dgst, value: value.into() });
        }
        if self.cpda != 0 {
            return Err(Error::Unsupported { field: Field::Pda, value: self.cpda.into() });
        }
        if self.maxdata < MIN_MAXH2CDATA || self.maxdata % 4 != 0 {
            return Err(Error::InvalidField { field: Field::IcParam, value: self.maxdata });
        }
        Ok(())
    }

    /// The digests this ICResp grants.
    pub const fn digests(&self) -> Digests {
        Digests { header: self.hdgst, data: self.ddgst }
    }
}

/// H2CTermReq or C2HTermReq: the sender ends the connection because of a
/// fatal error; the header of the PDU that caused it may follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermReq {
    /// True for H2CTermReq, false for C2HTermReq.
    pub from_host: bool,
    /// Fatal error status.
    pub fes: u16,
    /// Fatal error information.
    pub fei: u32,
    /// Bytes of the offending PDU that follow (at most 128).
    pub data_len: u8,
}

impl TermReq {
    /// A C2HTermReq reporting `err`.
    pub const fn c2h(err: &Error) -> Self {
        Self { from_host: false, fes: err.fes() as u16, fei: err.fei(), data_len: 0 }
    }

    /// An H2CTermReq reporting `err`.
    pub const fn h2c(err: &Error) -> Self {
        Self { from_host: true, fes: err.fes() as u16, fei: err.fei(), data_len: 0 }
    }

    fn pdu_type(&self) -> PduType {
        if self.from_host {
            PduType::H2CTermReq
        } else {
            PduType::C2HTermReq
        }
    }

    /// Encodes the TermReq followed by (the first 128 bytes of) `offending`,
    /// the header that caused the error; returns the PDU's length.
    pub fn encode(&self, buf: &mut [u8], offending: &[u8]) -> Result<usize, Error> {
        let data = offending.get(..TERM_REQ_MAX_DATA).unwrap_or(offending);
        // CAST: at most 128.
        let data_len = data.len() as u32;
        let len = begin(buf, self.pdu_type(), 0, Digests::NONE, data_len)?;
        put(buf, 8, &self.fes.to_le_bytes());
        put(buf, 10, &self.fei.to_le_bytes());
        let total = len + data.len();
        need(buf, total)?;
        put(buf, len, data);
        Ok(total)
    }

    fn decode_fields(buf: &[u8], ty: PduType, frame: &Frame) -> Self {
        Self {
            from_host: ty == PduType::H2CTermReq,
            fes: le16(buf, 8),
            fei: le32(buf, 10),
            // CAST: `frame` limits TermReq data to 128 bytes.
            data_len: frame.data_len as u8,
        }
    }
}

/// A command capsule: the SQE, and the length of the in-capsule data that
/// follows the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapsuleCmd {
    /// The submission queue entry, as on the wire.
    pub sqe: [u8; SQE_LEN],
    /// Bytes of in-capsule data.
    pub data_len: u32,
}

/// The data pointer of an SQE as an SGL data block descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sgl {
    /// Address (for in-capsule data: offset into the capsule's data).
    pub addr: u64,
    /// Length in bytes.
    pub length: u32,
    /// Descriptor type (high nibble) and sub type (low nibble).
    pub type_: u8,
}

/// SGL descriptor type: data block, sub type offset (in-capsule data).
pub const SGL_DATA_BLOCK_OFFSET: u8 = 0x01;
/// SGL descriptor type: transport data block, sub type transport specific
/// (data transferred with R2T/H2CData or C2HData).
pub const SGL_TRANSPORT_DATA_BLOCK: u8 = 0x5a;

impl CapsuleCmd {
    /// The command's opcode.
    pub fn opcode(&self) -> u8 {
        self.sqe[0]
    }

    /// The command identifier.
    pub fn command_id(&self) -> u16 {
        le16(&self.sqe, 2)
    }

    /// The fabrics command type (valid when `opcode` is 0x7f).
    pub fn fctype(&self) -> u8 {
        self.sqe[4]
    }

    /// The first SGL descriptor.
    pub fn sgl(&self) -> Sgl {
        let addr = u64::from(le32(&self.sqe, 24)) | (u64::from(le32(&self.sqe, 28)) << 32);
        Sgl { addr, length: le32(&self.sqe, 32), type_: self.sqe[39] }
    }

    /// Encodes the capsule's header into `buf`; `data_len` bytes of
    /// in-capsule data (and a data digest) are the caller's to send after it.
    pub fn encode(&self, buf: &mut [u8], digests: Digests) -> Result<usize, Error> {
        let len = begin(buf, PduType::CapsuleCmd, 0, digests, self.data_len)?;
        put(buf, COMMON_HEADER_LEN, &self.sqe);
        Ok(finish(buf, PduType::CapsuleCmd, len))
    }
}

/// A response capsule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapsuleResp {
    /// The completion queue entry, as on the wire.
    pub cqe: [u8; CQE_LEN],
}

impl CapsuleResp {
    /// The command identifier the CQE completes.
    pub fn command_id(&self) -> u16 {
        le16(&self.cqe, 12)
    }

    /// Encodes the capsule into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8], digests: Digests) -> Result<usize, Error> {
        let len = begin(buf, PduType::CapsuleResp, 0, digests, 0)?;
        put(buf, COMMON_HEADER_LEN, &self.cqe);
        Ok(finish(buf, PduType::CapsuleResp, len))
    }
}

/// H2CData or C2HData.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Data {
    /// True for H2CData, false for C2HData.
    pub from_host: bool,
    /// Command capsule CID.
    pub cccid: u16,
    /// Transfer tag from the R2T (H2CData only; reserved in C2HData).
    pub ttag: u16,
    /// Offset of this data in the command's data.
    pub datao: u32,
    /// Bytes of data in this PDU.
    pub datal: u32,
    /// Last PDU of the transfer.
    pub last: bool,
    /// C2HData only: the command succeeded and no CapsuleResp follows.
    pub success: bool,
}

impl Data {
    fn pdu_type(&self) -> PduType {
        if self.from_host {
            PduType::H2CData
        } else {
            PduType::C2HData
        }
    }

    /// Encodes the header into `buf`; the `datal` bytes of data (and a data
    /// digest) are the caller's to send after it.
    pub fn encode(&self, buf: &mut [u8], digests: Digests) -> Result<usize, Error> {
        let mut f = 0;
        if self.last {
            f |= flags::DATA_LAST;
        }
        if self.success {
            f |= flags::DATA_SUCCESS;
        }
        let ty = self.pdu_type();
        let len = begin(buf, ty, f, digests, self.datal)?;
        put(buf, 8, &self.cccid.to_le_bytes());
        put(buf, 10, &self.ttag.to_le_bytes());
        put(buf, 12, &self.datao.to_le_bytes());
        put(buf, 16, &self.datal.to_le_bytes());
        Ok(finish(buf, ty, len))
    }
}

/// Ready to Transfer: the controller asks for a range of a write's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct R2t {
    /// Command capsule CID.
    pub cccid: u16,
    /// Transfer tag the H2CData PDUs must carry.
    pub ttag: u16,
    /// Offset of the requested data.
    pub r2to: u32,
    /// Length of the requested data.
    pub r2tl: u32,
}

impl R2t {
    /// Encodes the R2T into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8], digests: Digests) -> Result<usize, Error> {
        let len = begin(buf, PduType::R2T, 0, digests, 0)?;
        put(buf, 8, &self.cccid.to_le_bytes());
        put(buf, 10, &self.ttag.to_le_bytes());
        put(buf, 12, &self.r2to.to_le_bytes());
        put(buf, 16, &self.r2tl.to_le_bytes());
        Ok(finish(buf, PduType::R2T, len))
    }
}

/// A decoded PDU header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pdu {
    /// ICReq.
    IcReq(IcReq),
    /// ICResp.
    IcResp(IcResp),
    /// H2CTermReq or C2HTermReq.
    TermReq(TermReq),
    /// CapsuleCmd.
    CapsuleCmd(CapsuleCmd),
    /// CapsuleResp.
    CapsuleResp(CapsuleResp),
    /// H2CData or C2HData.
    Data(Data),
    /// R2T.
    R2t(R2t),
}

impl Pdu {
    /// What [`Pdu::decode_framed_into`] starts from before any header
    /// (an all-zero CapsuleResp).
    pub(crate) const PLACEHOLDER: Pdu = Pdu::CapsuleResp(CapsuleResp { cqe: [0; CQE_LEN] });

    /// Decodes the PDU header at the start of `buf` (its common header, the
    /// type-specific header and the header digest), as `receiver` gets it at
    /// `stage` with at most `max_data` bytes of data; returns the PDU and
    /// its layout. Data that follows the header is not looked at.
    pub fn decode(
        buf: &[u8],
        receiver: Role,
        stage: Stage,
        max_data: u32,
    ) -> Result<(Pdu, Frame), Error> {
        let frame = CommonHeader::decode(buf)?.frame(receiver, stage, max_data)?;
        Ok((Self::decode_framed(buf, &frame)?, frame))
    }

    /// As [`Pdu::decode`], for a header whose common header `frame` came
    /// from: [`CommonHeader::frame`] of the same bytes, already checked for
    /// the receiver and stage. Saves checking the common header twice when
    /// it was framed on its own first, to know how much header to receive.
    pub fn decode_framed(buf: &[u8], frame: &Frame) -> Result<Pdu, Error> {
        let mut pdu = Pdu::PLACEHOLDER;
        pdu.decode_framed_into(buf, frame)?;
        Ok(pdu)
    }

    /// As [`Pdu::decode_framed`], into `self` (left as it was on an error):
    /// a receiver decodes every header into the same place, and only the
    /// fields of the type received are written.
    #[inline(always)]
    pub fn decode_framed_into(&mut self, buf: &[u8], frame: &Frame) -> Result<(), Error> {
        need(buf, frame.header_len.max(COMMON_HEADER_LEN))?;
        // PANIC: `buf` holds at least the common header (checked above).
        let (pdu_type, ch_flags) = (buf[0], buf[1]);
        if pdu_type != frame.pdu_type as u8 {
            return Err(Error::InvalidField { field: Field::PduType, value: pdu_type.into() });
        }
        let ty = frame.pdu_type;
        if frame.header_len > ty.hlen() {
            check_header_digest(buf, ty.hlen())?;
        }
        // Each arm writes its own variant: only that variant's bytes move.
        match ty {
            PduType::IcReq => *self = Pdu::IcReq(IcReq::decode(buf)?),
            PduType::IcResp => *self = Pdu::IcResp(IcResp::decode(buf)?),
            PduType::H2CTermReq | PduType::C2HTermReq => {
                *self = Pdu::TermReq(TermReq::decode_fields(buf, ty, frame));
            }
            PduType::CapsuleCmd => {
                let (_, sqe) = header::<CAPSULE_CMD_HLEN>(buf)?.split_at(COMMON_HEADER_LEN);
                let sqe = *header::<SQE_LEN>(sqe)?;
                *self = Pdu::CapsuleCmd(CapsuleCmd { sqe, data_len: frame.data_len });
            }
            PduType::CapsuleResp => {
                let (_, cqe) = header::<CAPSULE_RESP_HLEN>(buf)?.split_at(COMMON_HEADER_LEN);
                let cqe = *header::<CQE_LEN>(cqe)?;
                *self = Pdu::CapsuleResp(CapsuleResp { cqe });
            }
            PduType::H2CData | PduType::C2HData => {
                let datal = le32(buf, 16);
                if datal != frame.data_len {
                    return Err(Error::InvalidField { field: Field::Length, value: datal });
                }
                let from_host = ty == PduType::H2CData;
                *self = Pdu::Data(Data {
                    from_host,
                    cccid: le16(buf, 8),
                    ttag: le16(buf, 10),
                    datao: le32(buf, 12),
                    datal,
                    last: ch_flags & flags::DATA_LAST != 0,
                    success: !from_host && ch_flags & flags::DATA_SUCCESS != 0,
                });
            }
            PduType::R2T => {
                let r2t = R2t {
                    cccid: le16(buf, 8),
                    ttag: le16(buf, 10),
                    r2to: le32(buf, 12),
                    r2tl: le32(buf, 16),
                };
                if r2t.r2tl == 0 {
                    return Err(Error::InvalidField { field: Field::Length, value: 0 });
                }
                *self = Pdu::R2t(r2t);
            }
        }
        Ok(())
    }

    /// Encodes the PDU header (with its digest, when `digests` asks for
    /// one) into `buf`; returns its length. A TermReq is encoded without
    /// offending data; use [`TermReq::encode`] to include it.
    pub fn encode(&self, buf: &mut [u8], digests: Digests) -> Result<usize, Error> {
        match self {
            Pdu::IcReq(p) => p.encode(buf),
            Pdu::IcResp(p) => p.encode(buf),
            Pdu::TermReq(p) => p.encode(buf, &[]),
            Pdu::CapsuleCmd(p) => p.encode(buf, digests),
            Pdu::CapsuleResp(p) => p.encode(buf, digests),
            Pdu::Data(p) => p.encode(buf, digests),
            Pdu::R2t(p) => p.encode(buf, digests),
        }
    }
}

/// The data digest of one PDU's data, and its check.
#[derive(Clone, Copy, Debug)]
pub struct DataDigest(super::Crc32c);

impl Default for DataDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl DataDigest {
    /// A digest over no data yet.
    pub const fn new() -> Self {
        Self(super::Crc32c::new())
    }

    /// Adds the next piece of the PDU's data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest as sent on the wire.
    pub fn to_wire(&self) -> [u8; DIGEST_LEN] {
        self.0.finish().to_le_bytes()
    }

    /// Checks the digest received after the data.
    pub fn check(&self, received: &[u8; DIGEST_LEN]) -> Result<(), Error> {
        let expected = self.0.finish();
        let received = u32::from_le_bytes(*received);
        if expected != received {
            return Err(Error::DataDigest { expected, received });
        }
        Ok(())
    }
}
