// SPDX-License-Identifier: GPL-2.0

//! blk-mq operations: a request becomes a command capsule (`queue_rq`), is
//! handed to its queue's send side, and times out (`timeout`).

use crate::{
    ctrl::TcpCtrl,
    glue::host::{
        blk::{NewRequest, Request},
        nvme::{CtrlState, NsRef},
    },
    proto,
    queue::Queue,
};
use kernel::{prelude::*, sync::ArcBorrow};

/// `NVME_CMD_SGL_METABUF`: the SQE's data pointer is an SGL.
const CMD_SGL_METABUF: u8 = 0x40;
/// Where the SQE and its SGL descriptor are in the command PDU.
const SQE: usize = proto::COMMON_HEADER_LEN;
const SGL: usize = SQE + 24;
/// `BLK_STS_IOERR`.
const BLK_STS_IOERR: u8 = 10;

/// `queue_rq`: sets the request's command up in its PDU and queues it.
pub(crate) fn queue_rq(queue: ArcBorrow<'_, Queue>, mut rq: NewRequest<'_>, ns: Option<NsRef>, last: bool) -> u8 {
    let nctrl = queue.ctrl().nctrl();
    if !rq.check_ready(nctrl, queue.is_live()) {
        return rq.fail_nonready(nctrl);
    }
    if let Err(status) = rq.setup_cmd(ns) {
        return status;
    }
    let r = rq.request();
    let (data_len, write) = (r.data_len(), r.is_write());
    let inline = queue.inline(write, data_len);
    let digests = queue.digests;
    let icdoff = u64::from(nctrl.icdoff());
    let cmd = rq.cmd_mut();
    // The data pointer: in-capsule data at `icdoff`, else a transport SGL
    // data block the target moves with R2T/H2CData or C2HData.
    cmd[SQE + 1] |= CMD_SGL_METABUF;
    let (addr, len, ty) = if inline {
        (icdoff, data_len, proto::SGL_DATA_BLOCK_OFFSET)
    } else if data_len > 0 {
        (0, data_len, proto::SGL_TRANSPORT_DATA_BLOCK)
    } else {
        (0, 0, proto::SGL_TRANSPORT_DATA_BLOCK & 0xf0)
    };
    cmd[SGL..SGL + 8].copy_from_slice(&addr.to_le_bytes());
    cmd[SGL + 8..SGL + 12].copy_from_slice(&len.to_le_bytes());
    cmd[SGL + 12..SGL + 15].fill(0);
    cmd[SGL + 15] = ty;
    let inline_len = if inline { data_len } else { 0 };
    let mut flags = 0;
    if digests.header {
        flags |= proto::flags::HDGSTF;
    }
    if digests.data && inline {
        flags |= proto::flags::DDGSTF;
    }
    let hlen = proto::CAPSULE_CMD_HLEN;
    let hd = digests.header_len();
    let ch = proto::CommonHeader {
        pdu_type: proto::PduType::CapsuleCmd as u8,
        flags,
        // CAST: 72 bytes.
        hlen: hlen as u8,
        // CAST: at most 76.
        pdo: if inline { (hlen + hd) as u8 } else { 0 },
        // CAST: header, digests and at most `inline_max` bytes of data.
        plen: (hlen + hd) as u32 + inline_len + if inline { digests.data_len() as u32 } else { 0 },
    };
    if ch.encode(&mut cmd[..proto::COMMON_HEADER_LEN]).is_err() {
        rq.cleanup_cmd();
        return BLK_STS_IOERR;
    }
    if digests.header {
        let d = proto::crc32c(&cmd[..hlen]).to_le_bytes();
        cmd[hlen..hlen + proto::DIGEST_LEN].copy_from_slice(&d);
    }
    let tag = r.tag();
    rq.start();
    if !queue.submit(tag) {
        // Every tag fits once: a bug, but one this request can survive.
        crate::glue::sock_io::warn_bug(c"a tag submitted twice");
        return BLK_STS_IOERR;
    }
    // Sent at once on the queue's own CPU, as by the C host; else (and when
    // the work is busy) by the I/O work. Requests of a batch wait for its
    // last one, or for `commit_rqs`.
    if last {
        let here = kernel::cpu::CpuId::current().as_u32();
        let on_cpu = u32::try_from(queue.io_cpu()).is_ok_and(|c| c == here);
        if !on_cpu || !queue.try_send_now() || queue.submissions_pending() {
            Queue::kick(queue);
        }
    }
    0
}

/// `commit_rqs`: the batch is complete; send it.
pub(crate) fn commit_rqs(queue: ArcBorrow<'_, Queue>) {
    Queue::kick(queue);
}

/// `timeout`: true to wait again (error recovery will complete the
/// request), false if it was completed here.
pub(crate) fn timeout(queue: ArcBorrow<'_, Queue>, rq: &Request) -> bool {
    let ctrl: &TcpCtrl = queue.ctrl();
    let cmd = rq.cmd();
    pr_warn!(
        "nvme{}: I/O tag {} ({:04x}) opcode {:#x} QID {} timeout\n",
        queue.instance,
        rq.tag(),
        rq.command_id(),
        cmd[SQE],
        queue.qid
    );
    if ctrl.nctrl().state() != CtrlState::Live {
        // Connecting, deleting: nothing else will complete it, and setup or
        // teardown may wait for it. Stop the queue first, so that its
        // response can no longer arrive.
        queue.stop();
        rq.complete_timed_out();
        return false;
    }
    ctrl.error();
    true
}
