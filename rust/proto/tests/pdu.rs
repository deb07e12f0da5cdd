// SPDX-License-Identifier: GPL-2.0

//! Spec-derived vectors and properties of the protocol crate.

use nvme_tcp_proto::*;

mod common;
use common::Rng;

// CRC32C vectors: the check value of the catalogue of CRC algorithms, and the
// iSCSI vectors of RFC 3720, B.4 (the same CRC32C NVMe/TCP uses).
#[test]
fn crc32c_vectors() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    let inc: Vec<u8> = (0u8..32).collect();
    assert_eq!(crc32c(&inc), 0x46DD_794E);
    let dec: Vec<u8> = (0u8..32).rev().collect();
    assert_eq!(crc32c(&dec), 0x113F_DB5C);
    assert_eq!(crc32c(&[]), 0);
}

#[test]
fn crc32c_streaming_equals_one_shot() {
    let mut rng = Rng(7);
    let data: Vec<u8> = (0..5000).map(|_| rng.u8()).collect();
    for split in [0, 1, 7, 8, 9, 63, 4096, 4999, 5000] {
        let mut c = Crc32c::new();
        c.update(&data[..split]);
        c.update(&data[split..]);
        assert_eq!(c.finish(), crc32c(&data), "split at {split}");
    }
}

/// An ICReq as the Linux host sends it with both digests on: type 0, hlen
/// 128, pdo 0, plen 128, pfv 0, hpda 0, dgst 3, maxr2t 0.
fn linux_icreq() -> [u8; 128] {
    let mut b = [0u8; 128];
    b[..8].copy_from_slice(&[0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00]);
    b[11] = 0x03;
    b
}

#[test]
fn icreq_wire_layout() {
    let req = IcReq::decode(&linux_icreq()).unwrap();
    assert_eq!(req, IcReq { pfv: 0, hpda: 0, hdgst: true, ddgst: true, maxr2t: 0 });
    req.validate_target().unwrap();
    let mut out = [0xaau8; 128];
    assert_eq!(req.encode(&mut out).unwrap(), 128);
    assert_eq!(out, linux_icreq());
}

#[test]
fn icresp_wire_layout() {
    let resp = IcResp { pfv: 0, cpda: 0, hdgst: false, ddgst: true, maxdata: 0x0040_0000 };
    let mut out = [0u8; 128];
    assert_eq!(resp.encode(&mut out).unwrap(), 128);
    assert_eq!(&out[..16], &[1, 0, 128, 0, 128, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0x40, 0]);
    assert!(out[16..].iter().all(|&b| b == 0));
    assert_eq!(IcResp::decode(&out).unwrap(), resp);
}

#[test]
fn icreq_rejections() {
    let ch = |b: &[u8]| CommonHeader::decode(b).unwrap().frame(Role::Controller, Stage::Handshake, 0);
    // Wrong pfv: unsupported parameter at byte 8.
    let mut b = linux_icreq();
    b[8] = 1;
    let e = IcReq::decode(&b).unwrap().validate_target().unwrap_err();
    assert_eq!((e.fes(), e.fei()), (Fes::UnsupportedParameter, 8));
    // hpda we do not support, and one the spec forbids.
    b = linux_icreq();
    b[10] = 3;
    assert_eq!(IcReq::decode(&b).unwrap().validate_target().unwrap_err().fes(), Fes::UnsupportedParameter);
    b[10] = 32;
    let e = IcReq::decode(&b).unwrap().validate_target().unwrap_err();
    assert_eq!((e.fes(), e.fei()), (Fes::InvalidHeaderField, 10));
    // Bad hlen: invalid header field at byte 2.
    b = linux_icreq();
    b[2] = 24;
    let e = ch(&b).unwrap_err();
    assert_eq!((e.fes(), e.fei()), (Fes::InvalidHeaderField, 2));
    // plen other than 128.
    b = linux_icreq();
    b[4] = 0x90;
    assert_eq!(ch(&b).unwrap_err(), Error::InvalidField { field: Field::Plen, value: 0x90 });
    b[4] = 0x10;
    assert_eq!(ch(&b).unwrap_err().fei(), 4);
    // Header digest flag on an ICReq.
    b = linux_icreq();
    b[1] = flags::HDGSTF;
    assert_eq!(ch(&b).unwrap_err().fei(), 1);
    // A capsule before the ICReq.
    let mut cmd = [0u8; 72];
    CapsuleCmd { sqe: [0; 64], data_len: 0 }.encode(&mut cmd, Digests::NONE).unwrap();
    assert_eq!(ch(&cmd).unwrap_err().fes(), Fes::PduSequenceError);
    // An unknown PDU type.
    b = linux_icreq();
    b[0] = 0x08;
    assert_eq!(ch(&b).unwrap_err(), Error::InvalidField { field: Field::PduType, value: 8 });
    // Truncated.
    assert!(matches!(IcReq::decode(&linux_icreq()[..100]), Err(Error::Truncated { need: 128, have: 100 })));
    assert!(matches!(CommonHeader::decode(&[0; 7]), Err(Error::Truncated { .. })));
}

#[test]
fn second_icreq_is_a_sequence_error() {
    let ch = CommonHeader::decode(&linux_icreq()).unwrap();
    let e = ch.frame(Role::Controller, Stage::Established(Digests::NONE), 4096).unwrap_err();
    assert_eq!(e, Error::Sequence { pdu_type: 0 });
    assert_eq!(e.fes(), Fes::PduSequenceError);
}

#[test]
fn icresp_host_checks() {
    let req = IcReq { pfv: 0, hpda: 0, hdgst: true, ddgst: false, maxr2t: 0 };
    let good = IcResp { pfv: 0, cpda: 0, hdgst: true, ddgst: false, maxdata: 131072 };
    good.validate_host(&req).unwrap();
    for bad in [
        IcResp { pfv: 1, ..good },
        IcResp { hdgst: false, ..good },
        IcResp { ddgst: true, ..good },
        IcResp { cpda: 1, ..good },
        IcResp { maxdata: 4092, ..good },
        IcResp { maxdata: 4098, ..good },
    ] {
        assert!(bad.validate_host(&req).is_err(), "{bad:?}");
    }
}

#[test]
fn term_req_layout() {
    let err = Error::InvalidField { field: Field::Hlen, value: 24 };
    let mut out = [0u8; TERM_REQ_MAX_LEN];
    let offending = [0xabu8; 200];
    let n = TermReq::c2h(&err).encode(&mut out, &offending).unwrap();
    assert_eq!(n, 152);
    // type 3, hlen 24, pdo 0, plen 152, fes 1, fei 2.
    assert_eq!(&out[..14], &[3, 0, 24, 0, 152, 0, 0, 0, 1, 0, 2, 0, 0, 0]);
    assert!(out[14..24].iter().all(|&b| b == 0));
    assert!(out[24..152].iter().all(|&b| b == 0xab));
    let (pdu, frame) = Pdu::decode(&out, Role::Host, Stage::Handshake, 0).unwrap();
    assert_eq!(frame.data_len, 128);
    assert_eq!(pdu, Pdu::TermReq(TermReq { from_host: false, fes: 1, fei: 2, data_len: 128 }));
}

#[test]
fn capsule_with_digests_and_inline_data() {
    let d = Digests { header: true, data: true };
    let mut sqe = [0u8; 64];
    sqe[0] = 0x01; // write
    sqe[2..4].copy_from_slice(&0x1234u16.to_le_bytes());
    sqe[32..36].copy_from_slice(&4096u32.to_le_bytes());
    sqe[39] = SGL_DATA_BLOCK_OFFSET;
    let cmd = CapsuleCmd { sqe, data_len: 4096 };
    let mut out = [0u8; 76];
    assert_eq!(cmd.encode(&mut out, d).unwrap(), 76);
    // flags HDGSTF|DDGSTF, hlen 72, pdo 76, plen 76 + 4096 + 4.
    assert_eq!(&out[..8], &[4, 3, 72, 76, 0x50, 0x10, 0, 0]);
    assert_eq!(&out[72..76], &crc32c(&out[..72]).to_le_bytes());
    let (pdu, frame) = Pdu::decode(&out, Role::Controller, Stage::Established(d), 8192).unwrap();
    assert_eq!(frame, Frame { pdu_type: PduType::CapsuleCmd, header_len: 76, data_len: 4096, data_digest: true });
    let Pdu::CapsuleCmd(c) = pdu else { panic!() };
    assert_eq!((c.opcode(), c.command_id(), c.sgl().length, c.sgl().type_), (1, 0x1234, 4096, 1));
    // In-capsule data over the limit.
    assert_eq!(
        Pdu::decode(&out, Role::Controller, Stage::Established(d), 2048).unwrap_err(),
        Error::DataLimit { length: 4096, limit: 2048 }
    );
    // A flipped header bit is a header digest error carrying the digest received.
    out[9] ^= 1;
    let e = Pdu::decode(&out, Role::Controller, Stage::Established(d), 8192).unwrap_err();
    assert_eq!(e.fes(), Fes::HeaderDigestError);
    assert_eq!(e.fei(), u32::from_le_bytes(out[72..76].try_into().unwrap()));
}

#[test]
fn digests_must_match_negotiation() {
    let mut out = [0u8; 76];
    CapsuleCmd { sqe: [0; 64], data_len: 0 }.encode(&mut out, Digests::NONE).unwrap();
    let hd = Stage::Established(Digests { header: true, data: false });
    let e = CommonHeader::decode(&out).unwrap().frame(Role::Controller, hd, 0).unwrap_err();
    assert_eq!(e.fei(), 1);
    // Data digest flag on a capsule without data.
    out[1] = flags::DDGSTF;
    let dd = Stage::Established(Digests { header: false, data: true });
    assert!(CommonHeader::decode(&out).unwrap().frame(Role::Controller, dd, 0).is_err());
}

#[test]
fn data_pdu_checks() {
    let d = Digests::NONE;
    let st = Stage::Established(d);
    let h2c = Data { from_host: true, cccid: 5, ttag: 9, datao: 8192, datal: 4096, last: true, success: false };
    let mut out = [0u8; 24];
    h2c.encode(&mut out, d).unwrap();
    assert_eq!(&out[..8], &[6, 4, 24, 24, 0x18, 0x10, 0, 0]);
    assert_eq!(Pdu::decode(&out, Role::Controller, st, 1 << 20).unwrap().0, Pdu::Data(h2c));
    // datal disagreeing with plen.
    out[16] = 1;
    assert_eq!(Pdu::decode(&out, Role::Controller, st, 1 << 20).unwrap_err().fei(), 16);
    // Wrong pdo.
    h2c.encode(&mut out, d).unwrap();
    out[3] = 28;
    assert_eq!(Pdu::decode(&out, Role::Controller, st, 1 << 20).unwrap_err().fei(), 3);
    // A data PDU without data.
    h2c.encode(&mut out, d).unwrap();
    out[4..8].copy_from_slice(&24u32.to_le_bytes());
    assert_eq!(Pdu::decode(&out, Role::Controller, st, 1 << 20).unwrap_err().fei(), 4);
    // The controller never receives C2HData; the host never receives H2CData.
    h2c.encode(&mut out, d).unwrap();
    assert_eq!(Pdu::decode(&out, Role::Host, st, 1 << 20).unwrap_err().fei(), 0);
    // A huge plen is refused from the common header alone.
    out[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        CommonHeader::decode(&out).unwrap().frame(Role::Controller, st, 1 << 22),
        Err(Error::DataLimit { .. })
    ));
}

#[test]
fn r2t_and_response_layout() {
    let d = Digests { header: true, data: true };
    let r2t = R2t { cccid: 3, ttag: 7, r2to: 0, r2tl: 65536 };
    let mut out = [0u8; 28];
    assert_eq!(r2t.encode(&mut out, d).unwrap(), 28);
    // No data: pdo 0 and no DDGSTF, even with data digests on.
    assert_eq!(&out[..8], &[9, 1, 24, 0, 28, 0, 0, 0]);
    let mut cqe = [0u8; 16];
    cqe[12] = 3;
    let resp = CapsuleResp { cqe };
    assert_eq!(resp.encode(&mut out, d).unwrap(), 28);
    assert_eq!(&out[..8], &[5, 1, 24, 0, 28, 0, 0, 0]);
    assert_eq!(resp.command_id(), 3);
}

#[test]
fn data_digest() {
    let mut dd = DataDigest::new();
    dd.update(b"1234");
    dd.update(b"56789");
    dd.check(&0xE306_9283u32.to_le_bytes()).unwrap();
    let e = dd.check(&[0; 4]).unwrap_err();
    assert!(matches!(e, Error::DataDigest { expected: 0xE306_9283, received: 0 }));
}

fn random_pdu(rng: &mut Rng) -> (Pdu, Role, Stage) {
    let digests = Digests { header: rng.bool(), data: rng.bool() };
    let est = Stage::Established(digests);
    let datal = |rng: &mut Rng| 1 + rng.u32() % (1 << 20);
    match rng.next() % 8 {
        0 => (
            Pdu::IcReq(IcReq { pfv: rng.u16(), hpda: rng.u8(), hdgst: rng.bool(), ddgst: rng.bool(), maxr2t: rng.u32() }),
            Role::Controller,
            Stage::Handshake,
        ),
        1 => (
            Pdu::IcResp(IcResp { pfv: rng.u16(), cpda: rng.u8(), hdgst: rng.bool(), ddgst: rng.bool(), maxdata: rng.u32() }),
            Role::Host,
            Stage::Handshake,
        ),
        2 => {
            let from_host = rng.bool();
            let role = if from_host { Role::Controller } else { Role::Host };
            (Pdu::TermReq(TermReq { from_host, fes: rng.u16(), fei: rng.u32(), data_len: 0 }), role, est)
        }
        3 => {
            let data_len = if rng.bool() { 0 } else { datal(rng) };
            (Pdu::CapsuleCmd(CapsuleCmd { sqe: rng.bytes(), data_len }), Role::Controller, est)
        }
        4 => (Pdu::CapsuleResp(CapsuleResp { cqe: rng.bytes() }), Role::Host, est),
        5 | 6 => {
            let from_host = rng.bool();
            let role = if from_host { Role::Controller } else { Role::Host };
            let success = !from_host && rng.bool();
            let data = Data {
                from_host,
                cccid: rng.u16(),
                ttag: rng.u16(),
                datao: rng.u32(),
                datal: datal(rng),
                last: rng.bool() || success,
                success,
            };
            (Pdu::Data(data), role, est)
        }
        _ => (
            Pdu::R2t(R2t { cccid: rng.u16(), ttag: rng.u16(), r2to: rng.u32(), r2tl: datal(rng) }),
            Role::Host,
            est,
        ),
    }
}

/// The digests a PDU is encoded with at `stage`.
fn stage_digests(stage: Stage) -> Digests {
    match stage {
        Stage::Established(d) => d,
        Stage::Handshake => Digests::NONE,
    }
}

/// decode(encode(p)) == p for every PDU, with every digest combination.
#[test]
fn property_encode_decode_identity() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..200_000 {
        let (pdu, role, stage) = random_pdu(&mut rng);
        let digests = stage_digests(stage);
        let mut buf = [0u8; MAX_HEADER_LEN];
        let len = pdu.encode(&mut buf, digests).unwrap();
        let (back, frame) = Pdu::decode(&buf[..len], role, stage, u32::MAX)
            .unwrap_or_else(|e| panic!("case {i}: {pdu:?}: {e}"));
        assert_eq!(back, pdu, "case {i}");
        assert_eq!(frame.header_len, len, "case {i}");
        // Re-encoding gives the same bytes.
        let mut again = [0u8; MAX_HEADER_LEN];
        assert_eq!(back.encode(&mut again, digests).unwrap(), len);
        assert_eq!(buf[..len], again[..len], "case {i}");
    }
}

/// Any bytes at all: decoding returns, and never panics.
#[test]
fn property_random_bytes_never_panic() {
    let mut rng = Rng(42);
    let mut accepted = 0;
    for _ in 0..300_000 {
        let mut buf: [u8; MAX_HEADER_LEN] = rng.bytes();
        // Bias towards plausible headers so the checks past the first are reached.
        buf[0] %= 10;
        if rng.bool() {
            buf[2] = [24u8, 72, 128][rng.next() as usize % 3];
            buf[4..8].copy_from_slice(&(rng.u32() % 4200).to_le_bytes());
        }
        let len = rng.next() as usize % (buf.len() + 1);
        let role = if rng.bool() { Role::Host } else { Role::Controller };
        let stage = if rng.bool() {
            Stage::Handshake
        } else {
            Stage::Established(Digests { header: rng.bool(), data: rng.bool() })
        };
        if let Ok((_, frame)) = Pdu::decode(&buf[..len], role, stage, rng.u32()) {
            assert!(frame.header_len <= len);
            accepted += 1;
        }
        let _ = IcReq::decode(&buf[..len]).map(|r| r.validate_target());
        let _ = IcResp::decode(&buf[..len]);
    }
    assert!(accepted > 0, "the generator never produced a valid header");
}

/// Any single-bit flip in a digested header is detected.
#[test]
fn header_digest_detects_every_bit_flip() {
    let d = Digests { header: true, data: false };
    let mut buf = [0u8; 76];
    let len = CapsuleCmd { sqe: [0x5a; 64], data_len: 0 }.encode(&mut buf, d).unwrap();
    for bit in 8 * 8..len * 8 {
        let mut b = buf;
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(Pdu::decode(&b[..len], Role::Controller, Stage::Established(d), 0).is_err(), "bit {bit}");
    }
}

/// Framing the common header first, then `decode_framed` (as the target's
/// receive path does) accepts and rejects exactly what `decode` does, and
/// decodes the same PDU; a frame of another type is refused.
#[test]
fn property_decode_framed_equals_decode() {
    let mut rng = Rng(7);
    let mut accepted = 0;
    for i in 0..300_000 {
        let (mut buf, len, role, stage, max) = if rng.bool() {
            let (pdu, role, stage) = random_pdu(&mut rng);
            let mut buf = [0u8; MAX_HEADER_LEN];
            let len = pdu.encode(&mut buf, stage_digests(stage)).unwrap();
            (buf, len, role, stage, u32::MAX)
        } else {
            let mut buf: [u8; MAX_HEADER_LEN] = rng.bytes();
            buf[0] %= 10;
            buf[2] = [24u8, 72, 128][rng.next() as usize % 3];
            buf[4..8].copy_from_slice(&(rng.u32() % 4200).to_le_bytes());
            let len = rng.next() as usize % (buf.len() + 1);
            let stage = Stage::Established(Digests { header: rng.bool(), data: rng.bool() });
            let role = if rng.bool() { Role::Host } else { Role::Controller };
            (buf, len, role, stage, rng.u32())
        };
        if rng.bool() && len > 12 {
            // Corrupt the type-specific part or the digest only.
            buf[8 + rng.next() as usize % (len - 8)] ^= 1 << (rng.next() % 8);
        }
        let whole = Pdu::decode(&buf[..len], role, stage, max);
        let framed = CommonHeader::decode(&buf[..len])
            .and_then(|ch| ch.frame(role, stage, max))
            .and_then(|f| Pdu::decode_framed(&buf[..len], &f).map(|p| (p, f)));
        assert_eq!(whole, framed, "case {i}");
        if let Ok((_, f)) = framed {
            accepted += 1;
            let other = Frame { pdu_type: if f.pdu_type == PduType::R2T { PduType::H2CData } else { PduType::R2T }, ..f };
            assert!(Pdu::decode_framed(&buf[..len], &other).is_err(), "case {i}");
        }
    }
    assert!(accepted > 1000, "too few valid headers: {accepted}");
}
