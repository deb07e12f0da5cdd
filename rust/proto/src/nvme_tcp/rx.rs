// SPDX-License-Identifier: GPL-2.0

//! The receive side of a connection, without I/O: bytes in, events out.
//!
//! A [`Receiver`] frames and decodes the PDUs a host or a controller
//! receives, checks their digests, and says where each byte goes; the driver
//! owns the socket and the data buffers. It loops on [`Receiver::step`]:
//!
//! - [`Step::Recv`]: read from the socket into the slice offered (the
//!   receiver's own buffer), then [`Receiver::received`];
//! - [`Step::Header`]: a PDU header arrived; to have its data delivered
//!   rather than dropped, call [`Receiver::deliver`] before the next step;
//! - [`Step::Data`]: copy the bytes offered (read past a header) into the
//!   data buffer and call [`Receiver::buffered_copied`], or receive straight
//!   from the socket into it and call [`Receiver::data_received`];
//! - [`Step::DataDone`]: all of a PDU's delivered data is in, digest checked
//!   (for data without a digest, [`Receiver::data_received`] says so itself).
//!
//! Header receives ask for a typical header of the receiving role at once (a
//! CapsuleCmd for a controller, a CapsuleResp for a host), so one socket read
//! usually takes a whole header, and never more than one such header past the
//! current one. Bytes read past a header are used before the socket is read
//! again. The common header is framed as soon as its 8 bytes are in: a bad
//! one fails at once, without waiting for the bytes it announced.
//!
//! Nothing here allocates, blocks or panics. Once [`Receiver::step`] has
//! returned an error, it returns that error again on every later call.

use super::{
    CommonHeader, Crc32c, Error, Frame, Pdu, PduType, Role, Stage, CAPSULE_CMD_HLEN,
    CAPSULE_RESP_HLEN, COMMON_HEADER_LEN, DIGEST_LEN, MAX_HEADER_LEN,
};

/// The receiver's buffer: a largest PDU header, and as much room again for
/// bytes read past a header (at most a CapsuleCmd with its digest), a data
/// digest, or a chunk of data being dropped.
const BUF_LEN: usize = 2 * MAX_HEADER_LEN;

/// Data-length limits a [`Receiver`] enforces from the common header alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest data length any PDU may announce (the `max_data` of
    /// [`CommonHeader::frame`]); more is [`Error::DataLimit`].
    pub max_data: u32,
    /// Largest in-capsule data a CapsuleCmd may carry (controller role); more
    /// is [`Error::DataLimit`] right after the common header. Unused by the
    /// host role.
    pub max_inline: u32,
}

/// What the driver of a [`Receiver`] does next.
#[derive(Debug)]
pub enum Step<'a> {
    /// A whole PDU header arrived, framed for the role and stage and decoded
    /// (its header digest checked). If `frame.data_len > 0`, the PDU's data
    /// follows: it is dropped (its data digest still checked) unless the
    /// driver calls [`Receiver::deliver`] before the next step.
    Header {
        /// The decoded header (kept in the receiver, so that a step stays
        /// small to move).
        pdu: &'a Pdu,
        /// Its layout.
        frame: Frame,
    },
    /// All data of the current PDU was delivered to `tag`, and its data
    /// digest (if any) checked.
    DataDone {
        /// The tag given to [`Receiver::deliver`].
        tag: u16,
        /// The PDU's data length.
        len: u32,
    },
    /// More bytes are needed: read at most `buf.len()` bytes from the socket
    /// into the slice (never empty), then call [`Receiver::received`].
    Recv(&'a mut [u8]),
    /// `len` more data bytes are due for `tag`, at byte `offset` of its
    /// buffer. If `buffered` is not empty (at most `len` bytes read past a
    /// header), copy exactly it to `offset` and call
    /// [`Receiver::buffered_copied`]; else read at most `len` bytes from the
    /// socket to `offset` and call [`Receiver::data_received`].
    Data {
        /// The tag given to [`Receiver::deliver`].
        tag: u16,
        /// Where the bytes go in the tag's buffer.
        offset: u32,
        /// Data bytes still due for this PDU.
        len: u32,
        /// Bytes already received, to be copied.
        buffered: &'a [u8],
    },
}

/// Where the receiver is in the PDU stream.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Assembling the header that starts at `hs` (framed once `frame` is
    /// set). `pos == hs`: none of it is consumed yet.
    Header,
    /// The header was returned by `step`; its data, if any, is dropped
    /// unless `deliver` comes first.
    Decoded,
    /// Delivering `len - done` more bytes to `tag`, at `offset + done`;
    /// `crc` is the running data digest ([`Crc32c::state`]).
    Data { tag: u16, offset: u32, len: u32, done: u32, crc: Option<u32> },
    /// Dropping `left` more data bytes, digesting them if `crc` is set.
    Discard { left: u32, crc: Option<u32> },
    /// Receiving the data digest (at `pos`) of data delivered to `tag`
    /// (`None`: dropped), to compare with `expected`.
    Digest { tag: Option<u16>, len: u32, expected: u32 },
    /// Refused the stream; every step returns this error.
    Failed(Error),
}

/// What the last [`Step`] asked the driver to do, so that the call reporting
/// it can be checked and clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offer {
    None,
    /// `Step::Recv` of this many bytes at `len`.
    Recv(usize),
    /// `Step::Data` with this many buffered bytes at `pos`.
    Buffered(usize),
    /// `Step::Data` from the socket, of at most this many bytes.
    Socket(u32),
}

/// What `advance` stopped at, before its borrows are made into a [`Step`].
/// (Small: the decoded header goes straight into the `Step`.)
enum Next {
    /// The header at `hs`, of layout `frame`, is whole; its digest unchecked.
    Header(Frame),
    DataDone(u16, u32),
    /// Receive into `buf[len..to]`.
    Recv(usize),
    /// Data due: `buffered` bytes at `pos` (0: from the socket).
    Data { tag: u16, offset: u32, len: u32, buffered: usize },
}

/// The receive state machine of one connection (see the module
/// documentation).
///
/// The buffer holds, from `hs`: the current (or last) PDU header, then the
/// bytes received and not yet used, `buf[pos..len]`. Invariants:
/// `hs <= pos <= len <= BUF_LEN`, and once the header is decoded,
/// `hs + frame.header_len <= pos`.
#[derive(Clone, Debug)]
pub struct Receiver {
    role: Role,
    stage: Stage,
    limits: Limits,
    state: State,
    offer: Offer,
    /// Where the current header starts in `buf`.
    hs: usize,
    /// The current header's layout, once its common header is framed.
    frame: Option<Frame>,
    /// First received byte not yet used.
    pos: usize,
    /// End of the received bytes.
    len: usize,
    /// The last header decoded, which `Step::Header` refers to (a
    /// placeholder before the first).
    pdu: Pdu,
    buf: [u8; BUF_LEN],
}

/// A running data digest (`None`: the PDU has none) advanced over `bytes`.
fn digest(crc: Option<u32>, bytes: &[u8]) -> Option<u32> {
    crc.map(|c| {
        let mut c = Crc32c::resume(c);
        c.update(bytes);
        c.state()
    })
}

/// Moves `buf[from..to]` to `buf[dst..]`; an out-of-range move does nothing
/// (the callers' ranges are within the buffer).
fn shift(buf: &mut [u8; BUF_LEN], from: usize, to: usize, dst: usize) {
    if from <= to && to <= BUF_LEN && dst <= BUF_LEN - (to - from) {
        // PANIC: both ranges were checked to lie within the buffer.
        buf.copy_within(from..to, dst);
    }
}

impl Receiver {
    /// A receiver for `role` (the end that receives), at the start of a
    /// connection ([`Stage::Handshake`]).
    pub const fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            stage: Stage::Handshake,
            limits,
            state: State::Header,
            offer: Offer::None,
            hs: 0,
            frame: None,
            pos: 0,
            len: 0,
            pdu: Pdu::PLACEHOLDER,
            buf: [0; BUF_LEN],
        }
    }

    /// The last PDU header decoded: the one the last [`Step::Header`]
    /// returned.
    pub fn pdu(&self) -> &Pdu {
        &self.pdu
    }

    /// Sets the stage PDUs are framed for from the next header on: after the
    /// ICReq/ICResp exchange, with the digests it negotiated. Call it between
    /// PDUs, i.e. on the [`Step::Header`] of the ICReq/ICResp (a header
    /// receive never reads past an ICReq or ICResp).
    pub fn set_stage(&mut self, stage: Stage) {
        self.stage = stage;
    }

    /// The stage PDUs are framed for.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Sets the limits checked from the next common header on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Uses the bytes received as far as possible and says what the driver
    /// does next. After an error, returns that error on every call.
    pub fn step(&mut self) -> Result<Step<'_>, Error> {
        self.step_reading(|_| 0)
    }

    /// As [`Receiver::step`], but bytes that would be a [`Step::Recv`] are
    /// read by `read` first, as the driver would (it fills the start of the
    /// slice and returns how many bytes it wrote). A `Step::Recv` is
    /// returned only once `read` returns 0; the driver then tells why (no
    /// data now, end of stream or an error) from its own source.
    pub fn step_reading(&mut self, mut read: impl FnMut(&mut [u8]) -> usize) -> Result<Step<'_>, Error> {
        self.offer = Offer::None;
        let next = loop {
            match self.advance() {
                Ok(Next::Recv(to)) => {
                    // PANIC: `advance` offers `len < to <= BUF_LEN` (`header_recv`,
                    // `discard_recv`, `digest_recv`).
                    let n = read(&mut self.buf[self.len..to]);
                    if n == 0 {
                        break Next::Recv(to);
                    }
                    // NO-OVERFLOW: `len < to`; `len` stays within the slice read.
                    self.len += n.min(to - self.len);
                }
                Ok(next) => break next,
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            }
        };
        Ok(match next {
            Next::Header(frame) => {
                let end = self.header_end();
                // PANIC: `advance` returns a header once `len - hs` covers it, and
                // `len <= BUF_LEN` (type invariant).
                let header = &self.buf[self.hs..end];
                match self.pdu.decode_framed_into(header, &frame) {
                    Ok(()) => Step::Header { pdu: &self.pdu, frame },
                    Err(e) => {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
            Next::DataDone(tag, len) => Step::DataDone { tag, len },
            Next::Recv(to) => {
                // NO-OVERFLOW: `advance` offers `to > len`.
                self.offer = Offer::Recv(to.saturating_sub(self.len));
                // PANIC: `advance` offers `len < to <= BUF_LEN` (`header_recv`,
                // `discard_recv`, `digest_recv`).
                Step::Recv(&mut self.buf[self.len..to])
            }
            Next::Data { tag, offset, len, buffered } => {
                self.offer = if buffered > 0 { Offer::Buffered(buffered) } else { Offer::Socket(len) };
                // PANIC: `buffered <= len - pos`, and `len <= BUF_LEN`.
                let buffered = &self.buf[self.pos..self.pos + buffered];
                Step::Data { tag, offset, len, buffered }
            }
        })
    }

    /// Reports that `n` bytes were read into the slice of the last
    /// [`Step::Recv`] (clamped to its length; ignored after another step).
    pub fn received(&mut self, n: usize) {
        if let Offer::Recv(max) = self.offer {
            // NO-OVERFLOW: `len + max` is the end of the slice offered.
            self.len += n.min(max);
        }
        self.offer = Offer::None;
    }

    /// Reports that the `buffered` bytes of the last [`Step::Data`] were
    /// copied (ignored after another step).
    pub fn buffered_copied(&mut self) {
        if let (Offer::Buffered(n), State::Data { tag, offset, len, done, crc }) = (self.offer, self.state) {
            // PANIC: the step that offered `n` buffered bytes had `pos + n <= len
            // <= BUF_LEN`, and nothing moved since (every step resets the offer).
            let crc = digest(crc, &self.buf[self.pos..self.pos + n]);
            self.pos += n;
            // CAST: `n <= len - done`, a `u32`.
            let done = done + n as u32;
            self.state = State::Data { tag, offset, len, done, crc };
        }
        self.offer = Offer::None;
    }

    /// Reports that `n` bytes of the last [`Step::Data`] (the one with
    /// nothing buffered) went from the socket straight into the driver's
    /// buffer; `n` is clamped to its `len`. If the PDU has a data digest,
    /// `crc` gets the running digest ([`Crc32c::state`]) and returns it
    /// advanced over exactly those `n` bytes; otherwise (or for `n == 0`) it
    /// is not called.
    ///
    /// Returns `Some((tag, len))` if these bytes complete a PDU's data that
    /// has no digest: the PDU's [`Step::DataDone`], which the next step then
    /// does not return. Ignored (`None`) after another step.
    #[must_use = "the PDU's DataDone, which no step repeats"]
    pub fn data_received(&mut self, n: u32, crc: impl FnOnce(u32) -> u32) -> Option<(u16, u32)> {
        let offer = core::mem::replace(&mut self.offer, Offer::None);
        let (Offer::Socket(max), State::Data { tag, offset, len, done, crc: c }) = (offer, self.state) else {
            return None;
        };
        let n = n.min(max);
        // NO-OVERFLOW: `n <= len - done`.
        let done = done + n;
        match c {
            None if done >= len => {
                self.start_header();
                Some((tag, len))
            }
            None => {
                self.state = State::Data { tag, offset, len, done, crc: None };
                None
            }
            Some(c) => {
                let c = if n > 0 { crc(c) } else { c };
                self.state = State::Data { tag, offset, len, done, crc: Some(c) };
                None
            }
        }
    }

    /// Routes the data of the PDU whose [`Step::Header`] was just returned
    /// to `tag`, starting at byte `offset` of its buffer. Ignored for a PDU
    /// without data or after another step; if `offset` plus the data length
    /// overflows, the next step is [`Error::DataOutOfRange`].
    pub fn deliver(&mut self, tag: u16, offset: u32) {
        let (State::Decoded, Some(frame)) = (self.state, self.frame) else {
            return;
        };
        let len = frame.data_len;
        if len == 0 {
            return;
        }
        self.state = if offset.checked_add(len).is_none() {
            State::Failed(Error::DataOutOfRange { offset, length: len })
        } else {
            let crc = frame.data_digest.then_some(Crc32c::new().state());
            State::Data { tag, offset, len, done: 0, crc }
        };
    }

    /// Whether the next [`Receiver::step`] can only ask for bytes from the
    /// socket (a [`Step::Recv`], or a [`Step::Data`] with nothing buffered):
    /// the bytes received so far make no event. A driver whose socket has
    /// nothing to read skips the step then.
    pub fn needs_input(&self) -> bool {
        let pending = self.pending();
        match self.state {
            State::Header => {
                let have = self.len.saturating_sub(self.hs);
                have < self.frame.map_or(COMMON_HEADER_LEN, |f| f.header_len)
            }
            State::Digest { .. } => pending < DIGEST_LEN,
            // Delivered data that is all in, without a digest, is an event.
            State::Data { len, done, crc, .. } => pending == 0 && (done < len || crc.is_some()),
            State::Decoded | State::Discard { .. } => pending == 0,
            State::Failed(_) => false,
        }
    }

    /// Whether no PDU is partly received: the receiver is between PDUs and
    /// holds no byte of the next one. An end of stream here is an orderly
    /// close; anywhere else it cuts a PDU. False once the receiver failed.
    pub fn at_boundary(&self) -> bool {
        match self.state {
            State::Header => self.len == self.hs,
            State::Decoded => self.frame.is_some_and(|f| f.data_len == 0) && self.pos == self.len,
            _ => false,
        }
    }

    /// The bytes received of the current PDU's header (or of the last one,
    /// if it was refused), at most its header length, or the 8 bytes of the
    /// common header if that was refused: what a TermReq reports as the
    /// offending header.
    pub fn offending_header(&self) -> &[u8] {
        let cap = self.frame.map_or(COMMON_HEADER_LEN, |f| f.header_len);
        let end = self.len.min(self.hs.saturating_add(cap));
        // PANIC: `hs <= end <= len <= BUF_LEN` (type invariant).
        &self.buf[self.hs..end]
    }

    /// The header bytes a receive asks for at least, counted from the
    /// header's start: the role's typical header with this stage's digest.
    fn min_ask(&self) -> usize {
        let hlen = match self.role {
            Role::Controller => CAPSULE_CMD_HLEN,
            Role::Host => CAPSULE_RESP_HLEN,
        };
        hlen + self.stage.digests().header_len()
    }

    /// End of the current header in the buffer.
    fn header_end(&self) -> usize {
        self.hs + self.frame.map_or(0, |f| f.header_len)
    }

    /// Bytes received and not yet used.
    fn pending(&self) -> usize {
        self.len.saturating_sub(self.pos)
    }

    /// Starts on the next PDU's header, at the bytes not yet used (or at the
    /// buffer's start if there are none).
    fn start_header(&mut self) {
        if self.pos >= self.len {
            self.pos = 0;
            self.len = 0;
        }
        self.hs = self.pos;
        self.frame = None;
        self.state = State::Header;
    }

    /// Moves the current header to the buffer's start and the bytes not yet
    /// used right after it (at most a header and a few bytes).
    fn compact_after_header(&mut self) {
        let hl = self.header_end() - self.hs;
        let have = self.pending();
        // The header cannot overlap the unused bytes: `pos >= hs + hl >= hl`.
        shift(&mut self.buf, self.hs, self.hs + hl, 0);
        shift(&mut self.buf, self.pos, self.len, hl);
        self.hs = 0;
        self.pos = hl;
        self.len = hl + have;
    }

    /// The receive that continues the current header.
    fn header_recv(&mut self) -> Next {
        let want = self.min_ask().max(self.frame.map_or(0, |f| f.header_len));
        if self.hs + want > BUF_LEN {
            // Less than `want` bytes of header: move them to the start.
            shift(&mut self.buf, self.hs, self.len, 0);
            self.len = self.len.saturating_sub(self.hs);
            self.hs = 0;
            self.pos = 0;
        }
        Next::Recv(self.hs + want)
    }

    /// Frames the common header at `hs` for the role, stage and limits.
    #[inline(always)]
    fn frame_common_header(&self) -> Result<Frame, Error> {
        // PANIC: `hs <= len <= BUF_LEN` (type invariant).
        let ch = CommonHeader::decode(&self.buf[self.hs..self.len])?;
        let frame = ch.frame(self.role, self.stage, self.limits.max_data)?;
        if self.role == Role::Controller
            && frame.pdu_type == PduType::CapsuleCmd
            && frame.data_len > self.limits.max_inline
        {
            return Err(Error::DataLimit { length: frame.data_len, limit: self.limits.max_inline });
        }
        Ok(frame)
    }

    /// Runs until an event, or until bytes must come from the driver.
    #[inline(always)]
    fn advance(&mut self) -> Result<Next, Error> {
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Header => {
                    let have = self.len.saturating_sub(self.hs);
                    let Some(frame) = self.frame else {
                        if have < COMMON_HEADER_LEN {
                            return Ok(self.header_recv());
                        }
                        self.frame = Some(self.frame_common_header()?);
                        continue;
                    };
                    if have < frame.header_len {
                        return Ok(self.header_recv());
                    }
                    // `step` decodes it (and fails the stream if it is bad).
                    self.pos = self.header_end();
                    self.state = State::Decoded;
                    return Ok(Next::Header(frame));
                }
                State::Decoded => match self.frame {
                    Some(f) if f.data_len > 0 => {
                        let crc = f.data_digest.then_some(Crc32c::new().state());
                        self.state = State::Discard { left: f.data_len, crc };
                    }
                    _ => self.start_header(),
                },
                State::Data { tag, offset, len, done, crc } => {
                    if done >= len {
                        if let Some(c) = crc {
                            let expected = Crc32c::resume(c).finish();
                            self.state = State::Digest { tag: Some(tag), len, expected };
                            continue;
                        }
                        self.start_header();
                        return Ok(Next::DataDone(tag, len));
                    }
                    let left = len - done;
                    // CAST: at most `BUF_LEN`, after `min` with a `u32`.
                    let buffered = (self.pending() as u32).min(left) as usize;
                    // NO-OVERFLOW: `deliver` checked `offset + len`.
                    let offset = offset.saturating_add(done);
                    return Ok(Next::Data { tag, offset, len: left, buffered });
                }
                State::Discard { left, crc } => {
                    if left == 0 {
                        match crc {
                            Some(c) => {
                                let expected = Crc32c::resume(c).finish();
                                self.state = State::Digest { tag: None, len: 0, expected };
                            }
                            None => self.start_header(),
                        }
                        continue;
                    }
                    if self.pending() == 0 {
                        return Ok(self.discard_recv(left));
                    }
                    // CAST: at most `BUF_LEN`, after `min` with a `u32`.
                    let n = (self.pending() as u32).min(left) as usize;
                    // PANIC: `n <= len - pos`, and `len <= BUF_LEN`.
                    let crc = digest(crc, &self.buf[self.pos..self.pos + n]);
                    self.pos += n;
                    // CAST: `n <= left`.
                    self.state = State::Discard { left: left - n as u32, crc };
                }
                State::Digest { tag, len, expected } => {
                    if self.pending() < DIGEST_LEN {
                        return Ok(self.digest_recv());
                    }
                    let mut received = [0u8; DIGEST_LEN];
                    if let Some(b) = self.buf.get(self.pos..self.pos + DIGEST_LEN) {
                        received.copy_from_slice(b);
                    }
                    self.pos += DIGEST_LEN;
                    let received = u32::from_le_bytes(received);
                    if received != expected {
                        return Err(Error::DataDigest { expected, received });
                    }
                    self.start_header();
                    if let Some(tag) = tag {
                        return Ok(Next::DataDone(tag, len));
                    }
                }
            }
        }
    }

    /// The receive of data being dropped; nothing is pending. The chunk goes
    /// after the header, which is kept for [`Receiver::offending_header`].
    fn discard_recv(&mut self, left: u32) -> Next {
        if BUF_LEN.saturating_sub(self.header_end()) < MAX_HEADER_LEN {
            self.compact_after_header();
        }
        let end = self.header_end();
        self.pos = end;
        self.len = end;
        // CAST: at most `BUF_LEN`, after `min` with a `u32`.
        let n = (left.min(BUF_LEN as u32)) as usize;
        Next::Recv(BUF_LEN.min(end + n))
    }

    /// The receive of (the rest of) a data digest, and of the start of the
    /// next header: at most the role's typical header past the digest.
    fn digest_recv(&mut self) -> Next {
        if self.pending() == 0 {
            let end = self.header_end();
            self.pos = end;
            self.len = end;
        }
        let want = DIGEST_LEN + self.min_ask();
        if self.pos + want > BUF_LEN {
            self.compact_after_header();
        }
        Next::Recv(self.pos + want)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::{crc32c, CapsuleCmd, Data, Digests, DATA_HLEN};

    impl Receiver {
        /// The buffer invariants of the type's documentation.
        fn check_invariants(&self) {
            assert!(self.hs <= self.pos && self.pos <= self.len && self.len <= BUF_LEN, "{self:?}");
            if let State::Header = self.state {
                assert_eq!(self.pos, self.hs);
            } else if !matches!(self.state, State::Failed(_)) {
                assert!(self.header_end() <= self.pos, "{self:?}");
            }
        }
    }

    /// A long stream of digested capsules and data PDUs, of every short data
    /// length, under odd read sizes: the buffer's positions stay in bounds,
    /// and the header stays put under the data (for `offending_header`).
    #[test]
    fn buffer_positions_stay_in_bounds() {
        let d = Digests { header: true, data: true };
        let mut stream = std::vec::Vec::new();
        let mut pdus = 0;
        for len in 1..300u32 {
            let mut hdr = [0u8; MAX_HEADER_LEN];
            let hl = if len % 2 == 0 {
                let mut sqe = [0u8; 64];
                sqe[2] = len as u8;
                CapsuleCmd { sqe, data_len: len }.encode(&mut hdr, d)
            } else {
                let data = Data { from_host: true, cccid: 1, ttag: 2, datao: 0, datal: len, last: true, success: false };
                data.encode(&mut hdr, d)
            };
            let hl = hl.unwrap_or(0);
            assert!(hl == CAPSULE_CMD_HLEN + 4 || hl == DATA_HLEN + 4);
            stream.extend_from_slice(&hdr[..hl]);
            let data: [u8; 300] = core::array::from_fn(|i| (i as u32 * len) as u8);
            stream.extend_from_slice(&data[..len as usize]);
            stream.extend_from_slice(&crc32c(&data[..len as usize]).to_le_bytes());
            pdus += 1;
        }
        for read in [1, 3, 7, 50, 61, 200, 1000] {
            let mut rx = Receiver::new(Role::Controller, Limits { max_data: 4096, max_inline: 4096 });
            rx.set_stage(Stage::Established(d));
            let (mut at, mut headers, mut delivered) = (0, 0, 0);
            let mut sink = [0u8; 300];
            let (mut cur, mut cur_len) = ([0u8; MAX_HEADER_LEN], 0);
            loop {
                rx.check_invariants();
                match rx.step() {
                    Ok(Step::Header { pdu, frame }) => {
                        let pdu = *pdu;
                        headers += 1;
                        assert_eq!(rx.offending_header().len(), frame.header_len);
                        cur[..frame.header_len].copy_from_slice(rx.offending_header());
                        cur_len = frame.header_len;
                        // Every third PDU's data is dropped.
                        if headers % 3 != 0 {
                            let tag = if let Pdu::Data(_) = pdu { 1 } else { 0 };
                            rx.deliver(tag, 0);
                        }
                    }
                    Ok(Step::DataDone { .. }) => delivered += 1,
                    Ok(Step::Recv(buf)) => {
                        let n = buf.len().min(read).min(stream.len() - at);
                        if n == 0 {
                            break;
                        }
                        buf[..n].copy_from_slice(&stream[at..at + n]);
                        at += n;
                        rx.received(n);
                    }
                    Ok(Step::Data { offset, len, buffered, .. }) => {
                        assert!(offset as usize + len as usize <= sink.len());
                        if buffered.is_empty() {
                            let n = (len as usize).min(read).min(stream.len() - at);
                            let bytes = &stream[at..at + n];
                            sink[..n].copy_from_slice(bytes);
                            at += n;
                            let done = rx.data_received(n as u32, |c| {
                                let mut c = Crc32c::resume(c);
                                c.update(bytes);
                                c.state()
                            });
                            delivered += usize::from(done.is_some());
                        } else {
                            rx.buffered_copied();
                        }
                    }
                    Err(e) => panic!("read size {read}: {e}"),
                }
                // The header is kept (if moved) until the next one starts.
                if let State::Decoded | State::Data { .. } | State::Discard { .. } | State::Digest { .. } = rx.state {
                    assert_eq!(rx.offending_header(), &cur[..cur_len]);
                }
            }
            assert_eq!(at, stream.len());
            assert!(rx.at_boundary());
            assert_eq!(headers, pdus);
            assert_eq!(delivered, pdus - pdus / 3);
        }
    }
}
