// SPDX-License-Identifier: GPL-2.0

//! Typed protocol errors.
//!
//! Every error knows the Fatal Error Status (FES) and Fatal Error Information
//! (FEI) that a H2CTermReq/C2HTermReq reporting it carries (NVMe/TCP 1.0,
//! section 3.6.2.9), so the caller never has to map errors to wire values.

use core::fmt;

/// A header field, named for messages; its value is the field's byte offset
/// in the PDU header (the FEI of an "invalid header field" error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `pdu-type`, common header byte 0.
    PduType,
    /// `flags`, common header byte 1.
    Flags,
    /// `hlen`, common header byte 2.
    Hlen,
    /// `pdo`, common header byte 3.
    Pdo,
    /// `plen`, common header bytes 4..8.
    Plen,
    /// ICReq/ICResp `pfv`, bytes 8..10.
    Pfv,
    /// ICReq `hpda` / ICResp `cpda`, byte 10.
    Pda,
    /// ICReq/ICResp `dgst`, byte 11.
    Dgst,
    /// ICReq `maxr2t` / ICResp `maxh2cdata`, bytes 12..16.
    IcParam,
    /// Data/R2T `cccid`, bytes 8..10.
    Cccid,
    /// Data/R2T `ttag`, bytes 10..12.
    Ttag,
    /// Data `datao` / R2T `r2to`, bytes 12..16.
    Offset,
    /// Data `datal` / R2T `r2tl`, bytes 16..20.
    Length,
    /// TermReq `fes`, bytes 8..10.
    Fes,
}

impl Field {
    /// Byte offset of the field in the PDU header.
    pub const fn offset(self) -> u32 {
        match self {
            Field::PduType => 0,
            Field::Flags => 1,
            Field::Hlen => 2,
            Field::Pdo => 3,
            Field::Plen => 4,
            Field::Pfv | Field::Cccid | Field::Fes => 8,
            Field::Pda => 10,
            Field::Ttag => 10,
            Field::Dgst => 11,
            Field::IcParam | Field::Offset => 12,
            Field::Length => 16,
        }
    }

    /// The field's name as the specification spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Field::PduType => "pdu-type",
            Field::Flags => "flags",
            Field::Hlen => "hlen",
            Field::Pdo => "pdo",
            Field::Plen => "plen",
            Field::Pfv => "pfv",
            Field::Pda => "pda",
            Field::Dgst => "dgst",
            Field::IcParam => "maxr2t/maxh2cdata",
            Field::Cccid => "cccid",
            Field::Ttag => "ttag",
            Field::Offset => "data offset",
            Field::Length => "data length",
            Field::Fes => "fes",
        }
    }
}

/// Fatal Error Status values of a TermReq.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Fes {
    /// A header field has an invalid value; FEI is its byte offset.
    InvalidHeaderField = 0x01,
    /// A PDU arrived that may not come in the connection's current state.
    PduSequenceError = 0x02,
    /// The header digest did not match; FEI is the digest received.
    HeaderDigestError = 0x03,
    /// Data offset or length outside the range the command allows.
    DataOutOfRange = 0x04,
    /// More data than the R2T (or the negotiated limit) allowed.
    DataTransferLimitExceeded = 0x05,
    /// A parameter the receiver does not support; FEI is its byte offset.
    UnsupportedParameter = 0x06,
}

/// Why a PDU was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// `field` holds `value`, which the specification or this connection's
    /// negotiated parameters forbid.
    InvalidField {
        /// The offending field.
        field: Field,
        /// Its value as received.
        value: u32,
    },
    /// `field` holds `value`, a parameter this implementation does not support.
    Unsupported {
        /// The offending field.
        field: Field,
        /// Its value as received.
        value: u32,
    },
    /// A PDU of type `pdu_type` that may not come now (before the ICReq, a
    /// second ICReq, a PDU of the other direction, ...).
    Sequence {
        /// The type received.
        pdu_type: u8,
    },
    /// The header digest received does not match the header.
    HeaderDigest {
        /// Digest computed over the header.
        expected: u32,
        /// Digest received.
        received: u32,
    },
    /// The data digest received does not match the data.
    DataDigest {
        /// Digest computed over the data.
        expected: u32,
        /// Digest received.
        received: u32,
    },
    /// Data offset or length outside what the command or R2T allows.
    DataOutOfRange {
        /// Offset of the data in the command's buffer.
        offset: u32,
        /// Length of the data.
        length: u32,
    },
    /// More data than the negotiated maximum.
    DataLimit {
        /// Length announced.
        length: u32,
        /// The limit.
        limit: u32,
    },
    /// A buffer handed to a decoder or encoder is shorter than the PDU
    /// needs: a caller's error, or a truncated PDU.
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

impl Error {
    /// The Fatal Error Status a TermReq reporting this error carries.
    pub const fn fes(&self) -> Fes {
        match self {
            Error::InvalidField { .. } | Error::Truncated { .. } => Fes::InvalidHeaderField,
            Error::Unsupported { .. } => Fes::UnsupportedParameter,
            Error::Sequence { .. } => Fes::PduSequenceError,
            Error::HeaderDigest { .. } => Fes::HeaderDigestError,
            // A data digest error is not a fatal-error status of its own; a
            // receiver that ends the connection for it reports the PDU as bad.
            Error::DataDigest { .. } => Fes::InvalidHeaderField,
            Error::DataOutOfRange { .. } => Fes::DataOutOfRange,
            Error::DataLimit { .. } => Fes::DataTransferLimitExceeded,
        }
    }

    /// The Fatal Error Information a TermReq reporting this error carries.
    pub const fn fei(&self) -> u32 {
        match self {
            Error::InvalidField { field, .. } | Error::Unsupported { field, .. } => field.offset(),
            Error::Truncated { .. } => Field::Plen.offset(),
            Error::HeaderDigest { received, .. } => *received,
            Error::DataDigest { .. }
            | Error::Sequence { .. }
            | Error::DataOutOfRange { .. }
            | Error::DataLimit { .. } => 0,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidField { field, value } => {
                write!(f, "invalid {} {:#x} (byte {})", field.name(), value, field.offset())
            }
            Error::Unsupported { field, value } => {
                write!(f, "unsupported {} {:#x} (byte {})", field.name(), value, field.offset())
            }
            Error::Sequence { pdu_type } => write!(f, "unexpected PDU type {:#x}", pdu_type),
            Error::HeaderDigest { expected, received } => {
                write!(f, "header digest error (expected {:#010x}, received {:#010x})", expected, received)
            }
            Error::DataDigest { expected, received } => {
                write!(f, "data digest error (expected {:#010x}, received {:#010x})", expected, received)
            }
            Error::DataOutOfRange { offset, length } => {
                write!(f, "data out of range (offset {}, length {})", offset, length)
            }
            Error::DataLimit { length, limit } => {
                write!(f, "data length {} exceeds the limit {}", length, limit)
            }
            Error::Truncated { need, have } => write!(f, "truncated PDU ({} of {} bytes)", have, need),
        }
    }
}

impl core::error::Error for Error {}
