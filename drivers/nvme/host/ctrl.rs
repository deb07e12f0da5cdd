// SPDX-License-Identifier: GPL-2.0

//! Controllers: connecting queues to a target.

use crate::{
    glue::{
        host::fabrics::{CtrlOptions, FabricsTransport, NewCtrl},
        sock::{SockAddr, Socket},
    },
    proto,
};
use kernel::prelude::*;

/// Port used when `trsvcid` is not given (the NVMe/TCP discovery port).
const DEFAULT_TRSVCID: &CStr = c"8009";
/// How long to wait for the ICResp, as the C host.
const ICRESP_TIMEOUT_SECS: u32 = 10;

/// The host transport.
pub(crate) struct TcpHost;

impl FabricsTransport for TcpHost {
    fn create_ctrl(opts: &CtrlOptions) -> Result<NewCtrl> {
        let traddr = opts.traddr().ok_or(EINVAL)?;
        let trsvcid = opts.trsvcid().unwrap_or(DEFAULT_TRSVCID);
        let addr = SockAddr::parse(traddr, trsvcid).inspect_err(|_| {
            pr_err!(
                "malformed address passed: {}:{}\n",
                traddr.to_str().unwrap_or("?"),
                trsvcid.to_str().unwrap_or("?")
            );
        })?;
        let src = match opts.host_traddr() {
            Some(h) => Some(SockAddr::parse(h, c"0").inspect_err(|_| {
                pr_err!("malformed src address passed: {}\n", h.to_str().unwrap_or("?"));
            })?),
            None => None,
        };

        let (_sock, icresp) = connect_queue(0, &addr, src.as_ref(), opts)?;
        pr_info!(
            "queue 0 ({}): ICResp accepted (pfv {}, cpda {}, hdgst {}, ddgst {}, maxdata {})\n",
            addr,
            icresp.pfv,
            icresp.cpda,
            u8::from(icresp.hdgst),
            u8::from(icresp.ddgst),
            icresp.maxdata
        );
        pr_err!(
            "{} ({}): controller setup is not implemented yet\n",
            opts.subsysnqn().and_then(|s| s.to_str().ok()).unwrap_or("?"),
            addr
        );
        Err(EOPNOTSUPP)
    }
}

/// Connects queue `qid` and performs the ICReq/ICResp exchange.
fn connect_queue(
    qid: u16,
    addr: &SockAddr,
    src: Option<&SockAddr>,
    opts: &CtrlOptions,
) -> Result<(Socket, proto::IcResp)> {
    let sock = Socket::connect(addr, src).inspect_err(|e| {
        pr_err!("queue {} ({}): failed to connect: {:?}\n", qid, addr, e);
    })?;
    if opts.tos() >= 0 {
        sock.set_tos(opts.tos());
    }
    sock.set_recv_timeout(ICRESP_TIMEOUT_SECS);

    let icreq = proto::IcReq {
        pfv: 0,
        hpda: 0,
        hdgst: opts.hdr_digest(),
        ddgst: opts.data_digest(),
        maxr2t: 0,
    };
    let mut buf = [0u8; proto::ICREQ_LEN];
    // An ICReq is exactly `ICREQ_LEN` bytes: `encode` fills `buf`.
    icreq.encode(&mut buf).map_err(|_| EINVAL)?;
    sock.send_all(&buf).inspect_err(|e| {
        pr_err!("queue {} ({}): failed to send ICReq: {:?}\n", qid, addr, e);
    })?;

    let mut resp = [0u8; proto::ICRESP_LEN];
    sock.recv_exact(&mut resp).inspect_err(|e| {
        pr_err!("queue {} ({}): failed to receive ICResp: {:?}\n", qid, addr, e);
    })?;
    let icresp = proto::IcResp::decode(&resp)
        .and_then(|r| r.validate_host(&icreq).map(|()| r))
        .map_err(|err| {
            pr_err!("queue {} ({}): {}\n", qid, addr, err);
            EPROTO
        })?;
    Ok((sock, icresp))
}
