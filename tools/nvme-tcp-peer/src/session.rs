// SPDX-License-Identifier: GPL-2.0

//! Just enough of an NVMe/TCP host to reach a target's data path: an admin
//! queue (Connect, Property Set CC.EN) and one I/O queue with a write
//! outstanding, so that hostile cases can misbehave in the middle of it.

use nvme_tcp_proto::{self as proto, Digests, Pdu, Role, Stage};
use std::{
    io::{self, Read, Write},
    net::TcpStream,
    sync::OnceLock,
    time::Duration,
};

/// The subsystem the sessions connect to (`--nqn`).
pub static SUBSYS_NQN: OnceLock<String> = OnceLock::new();
const HOST_NQN: &str = "nqn.2026-11.io.nvme-tcp-rs:nvme-tcp-peer";
const HOST_ID: [u8; 16] = *b"nvme-tcp-peer-id";
/// Bytes the hostile write transfers.
const WRITE_LEN: u32 = 4096;
/// Set in every SQE: data pointer is an SGL (as fabrics require).
const SGL_METABUF: u8 = 0x40;

/// The status field of a CQE (without the phase bit): 0 is success.
pub fn cqe_status(cqe: &[u8; 16]) -> u16 {
    u16::from_le_bytes([cqe[14], cqe[15]]) >> 1
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// One connection, after ICReq/ICResp.
pub struct Session {
    s: TcpStream,
    d: Digests,
    next_cid: u16,
    /// The admin queue's connection, kept open while the I/O queue is used.
    admin: Option<Box<Session>>,
}

impl Session {
    /// Connects to `addr` and negotiates `digests`.
    pub fn open(addr: &str, digests: Digests) -> io::Result<Session> {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let req = proto::IcReq { pfv: 0, hpda: 0, hdgst: digests.header, ddgst: digests.data, maxr2t: 0 };
        let mut b = [0u8; proto::ICREQ_LEN];
        req.encode(&mut b).map_err(other)?;
        s.write_all(&b)?;
        let mut r = [0u8; proto::ICRESP_LEN];
        s.read_exact(&mut r)?;
        let resp = proto::IcResp::decode(&r).map_err(other)?;
        resp.validate_host(&req).map_err(other)?;
        Ok(Session { s, d: digests, next_cid: 1, admin: None })
    }

    /// The connection, for watching how the target ends it.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.s
    }

    fn cid(&mut self) -> u16 {
        self.next_cid = self.next_cid.wrapping_add(1);
        self.next_cid
    }

    /// Sends a command capsule with `data` in the capsule.
    fn send_capsule(&mut self, sqe: [u8; 64], data: &[u8]) -> io::Result<()> {
        self.send_capsule_digest(sqe, data, false)
    }

    /// Sends a command capsule with `data` in the capsule, whose data digest
    /// is wrong with `bad_ddgst`.
    fn send_capsule_digest(&mut self, sqe: [u8; 64], data: &[u8], bad_ddgst: bool) -> io::Result<()> {
        let mut b = [0u8; proto::CAPSULE_CMD_HLEN + proto::DIGEST_LEN];
        let cmd = proto::CapsuleCmd { sqe, data_len: data.len() as u32 };
        let n = cmd.encode(&mut b, self.d).map_err(other)?;
        let mut out = b[..n].to_vec();
        out.extend_from_slice(data);
        if self.d.data && !data.is_empty() {
            let d = proto::crc32c(data) ^ u32::from(bad_ddgst);
            out.extend_from_slice(&d.to_le_bytes());
        }
        self.s.write_all(&out)
    }

    /// Receives one PDU from the target, with its data.
    fn recv_pdu(&mut self) -> io::Result<(Pdu, Vec<u8>)> {
        let mut ch = [0u8; proto::COMMON_HEADER_LEN];
        self.s.read_exact(&mut ch)?;
        let frame = proto::CommonHeader::decode(&ch)
            .and_then(|c| c.frame(Role::Host, Stage::Established(self.d), 16 << 20))
            .map_err(other)?;
        let mut hdr = vec![0u8; frame.header_len];
        hdr[..8].copy_from_slice(&ch);
        self.s.read_exact(&mut hdr[8..])?;
        let (pdu, _) = Pdu::decode(&hdr, Role::Host, Stage::Established(self.d), 16 << 20).map_err(other)?;
        let mut data = vec![0u8; frame.data_len as usize + if frame.data_digest { 4 } else { 0 }];
        self.s.read_exact(&mut data)?;
        Ok((pdu, data))
    }

    /// Waits for the next response capsule; returns its CQE if it succeeded.
    pub fn recv_response(&mut self) -> io::Result<[u8; 16]> {
        let cqe = self.recv_cqe()?;
        match cqe_status(&cqe) {
            0 => Ok(cqe),
            status => Err(other(format!("command failed with status {status:#x}"))),
        }
    }

    /// Waits for the next response capsule and returns its CQE, whatever its
    /// status.
    pub fn recv_cqe(&mut self) -> io::Result<[u8; 16]> {
        loop {
            match self.recv_pdu()? {
                (Pdu::CapsuleResp(r), _) => return Ok(r.cqe),
                (Pdu::TermReq(t), _) => {
                    return Err(other(format!("C2HTermReq fes {:#x} fei {:#x}", t.fes, t.fei)))
                }
                _ => continue,
            }
        }
    }

    /// Fabrics Connect for queue `qid` of controller `cntlid`; returns the
    /// controller id.
    fn connect(&mut self, qid: u16, cntlid: u16, kato_ms: u32) -> io::Result<u16> {
        let cqe = self.connect_cqe(qid, cntlid, kato_ms, 31)?;
        match cqe_status(&cqe) {
            0 => Ok(u16::from_le_bytes([cqe[0], cqe[1]])),
            status => Err(other(format!("Connect qid {qid}: command failed with status {status:#x}"))),
        }
    }

    /// Fabrics Connect for a new controller's admin queue of `sqsize`
    /// entries (0's based); returns its CQE, whatever its status.
    pub fn connect_admin(&mut self, sqsize: u16) -> io::Result<[u8; 16]> {
        self.connect_cqe(0, 0xffff, 15000, sqsize)
    }

    /// Fabrics Connect; returns the CQE, whatever its status.
    fn connect_cqe(&mut self, qid: u16, cntlid: u16, kato_ms: u32, sqsize: u16) -> io::Result<[u8; 16]> {
        let mut sqe = [0u8; 64];
        sqe[0] = 0x7f;
        sqe[1] = SGL_METABUF;
        let cid = self.cid();
        sqe[2..4].copy_from_slice(&cid.to_le_bytes());
        sqe[4] = 0x01; // fctype: Connect
        sqe[32..36].copy_from_slice(&1024u32.to_le_bytes());
        sqe[39] = proto::SGL_DATA_BLOCK_OFFSET;
        sqe[42..44].copy_from_slice(&qid.to_le_bytes());
        sqe[44..46].copy_from_slice(&sqsize.to_le_bytes()); // 0's based
        sqe[48..52].copy_from_slice(&kato_ms.to_le_bytes());
        let mut data = [0u8; 1024];
        data[..16].copy_from_slice(&HOST_ID);
        data[16..18].copy_from_slice(&cntlid.to_le_bytes());
        let nqn = SUBSYS_NQN.get().map(String::as_str).unwrap_or("");
        data[256..256 + nqn.len().min(255)].copy_from_slice(&nqn.as_bytes()[..nqn.len().min(255)]);
        data[512..512 + HOST_NQN.len()].copy_from_slice(HOST_NQN.as_bytes());
        self.send_capsule(sqe, &data)?;
        self.recv_cqe().map_err(|e| other(format!("Connect qid {qid}: {e}")))
    }

    /// Property Set CC = EN with 64-byte SQEs and 16-byte CQEs.
    fn enable(&mut self) -> io::Result<()> {
        let mut sqe = [0u8; 64];
        sqe[0] = 0x7f;
        sqe[1] = SGL_METABUF;
        let cid = self.cid();
        sqe[2..4].copy_from_slice(&cid.to_le_bytes());
        sqe[4] = 0x00; // fctype: Property Set
        sqe[39] = proto::SGL_TRANSPORT_DATA_BLOCK;
        sqe[44..48].copy_from_slice(&0x14u32.to_le_bytes()); // CC
        sqe[48..56].copy_from_slice(&0x0046_0001u64.to_le_bytes());
        self.send_capsule(sqe, &[])?;
        self.recv_response().map(|_| ()).map_err(|e| other(format!("Property Set CC: {e}")))
    }

    /// The digests this session uses.
    pub fn digests(&self) -> Digests {
        self.d
    }

    /// The target's address, as `Session::open` takes it.
    pub fn peer_addr(&self) -> io::Result<String> {
        Ok(self.s.peer_addr()?.to_string())
    }

    /// The local TCP port of this connection (the one the target logs).
    pub fn local_port(&self) -> u16 {
        self.s.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Connects a controller with keep-alive timeout `kato_ms` (admin queue on
    /// a second connection, which this session keeps) and makes this session
    /// its I/O queue 1.
    pub fn connect_io(&mut self, kato_ms: u32) -> io::Result<()> {
        let addr = self.s.peer_addr()?;
        let mut admin = Session::open(&addr.to_string(), self.d)?;
        let cntlid = admin.connect(0, 0xffff, kato_ms)?;
        admin.enable()?;
        self.admin = Some(Box::new(admin));
        self.connect(1, cntlid, kato_ms).map(|_| ())
    }

    /// Sends a write of `len` bytes at LBA 0 of namespace `nsid`, with
    /// `inline` as in-capsule data (empty: the data is to be asked for by
    /// R2T); a wrong data digest with `bad_ddgst`. Returns its command id.
    pub fn send_write(&mut self, nsid: u32, len: u32, inline: &[u8], bad_ddgst: bool) -> io::Result<u16> {
        let mut sqe = [0u8; 64];
        sqe[0] = 0x01; // Write
        sqe[1] = SGL_METABUF;
        let cid = self.cid();
        sqe[2..4].copy_from_slice(&cid.to_le_bytes());
        sqe[4..8].copy_from_slice(&nsid.to_le_bytes());
        sqe[32..36].copy_from_slice(&len.to_le_bytes());
        sqe[39] = if inline.is_empty() { proto::SGL_TRANSPORT_DATA_BLOCK } else { proto::SGL_DATA_BLOCK_OFFSET };
        sqe[48..50].copy_from_slice(&((len / 512).saturating_sub(1) as u16).to_le_bytes());
        self.send_capsule_digest(sqe, inline, bad_ddgst)?;
        Ok(cid)
    }

    /// Waits for the R2T of command `cid`, asking for `len` bytes.
    pub fn recv_r2t(&mut self, cid: u16, len: u32) -> io::Result<proto::R2t> {
        match self.recv_pdu()? {
            (Pdu::R2t(r2t), _) if r2t.cccid == cid && r2t.r2tl == len => Ok(r2t),
            (Pdu::TermReq(t), _) => Err(other(format!("C2HTermReq fes {:#x} fei {:#x}", t.fes, t.fei))),
            (p, _) => Err(other(format!("expected the R2T for the write, got {p:?}"))),
        }
    }

    /// [`Session::connect_io`], then a 4 KiB write to namespace 1; returns
    /// the target's R2T for it.
    pub fn connect_and_write(&mut self, kato_ms: u32) -> io::Result<proto::R2t> {
        self.connect_io(kato_ms)?;
        let cid = self.send_write(1, WRITE_LEN, &[], false)?;
        self.recv_r2t(cid, WRITE_LEN)
    }

    fn h2c_bytes(&self, data: &proto::Data, plen_datal: Option<u32>, bad_ddgst: bool) -> io::Result<Vec<u8>> {
        // The header announces `plen_datal` bytes of data when given (a lie
        // about `datal`), else `datal`.
        let sent = plen_datal.unwrap_or(data.datal);
        let mut b = [0u8; proto::DATA_HLEN + proto::DIGEST_LEN];
        let n = proto::Data { datal: sent, ..*data }.encode(&mut b, self.d).map_err(other)?;
        if plen_datal.is_some() {
            // Put the real datal back in, and redo the header digest.
            b[16..20].copy_from_slice(&data.datal.to_le_bytes());
            if self.d.header {
                let d = proto::crc32c(&b[..proto::DATA_HLEN]);
                b[proto::DATA_HLEN..proto::DATA_HLEN + 4].copy_from_slice(&d.to_le_bytes());
            }
        }
        let mut out = b[..n].to_vec();
        let payload = vec![0x5au8; sent as usize];
        out.extend_from_slice(&payload);
        if self.d.data {
            let mut d = proto::crc32c(&payload);
            if bad_ddgst {
                d ^= 1;
            }
            out.extend_from_slice(&d.to_le_bytes());
        }
        Ok(out)
    }

    /// Sends an H2CData PDU; with `plen_datal`, its plen announces that much
    /// data while its `datal` field says otherwise.
    pub fn send_h2c(&mut self, data: &proto::Data, plen_datal: Option<u32>) -> io::Result<()> {
        let out = self.h2c_bytes(data, plen_datal, false)?;
        self.s.write_all(&out)
    }

    /// Sends an H2CData PDU whose data digest is wrong.
    pub fn send_h2c_bad_ddgst(&mut self, data: &proto::Data) -> io::Result<()> {
        let out = self.h2c_bytes(data, None, true)?;
        self.s.write_all(&out)
    }

    /// Sends half of an H2CData PDU, then resets the connection.
    pub fn reset_mid_h2c(&mut self, data: &proto::Data) -> io::Result<()> {
        let out = self.h2c_bytes(data, None, false)?;
        self.s.write_all(&out[..out.len() / 2])?;
        std::thread::sleep(Duration::from_millis(200));
        // SO_LINGER 0 makes the close (when the session is dropped) an RST.
        set_linger_zero(&self.s)
    }
}

/// `SO_LINGER` with a zero timeout, so that closing resets the connection.
fn set_linger_zero(s: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, val: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let l = Linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `fd` is an open socket; `l` is a valid `struct linger`.
    let r = unsafe { setsockopt(s.as_raw_fd(), SOL_SOCKET, SO_LINGER, &l, std::mem::size_of::<Linger>() as u32) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
