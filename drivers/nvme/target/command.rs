// SPDX-License-Identifier: GPL-2.0

//! Command slots: which are free, where each command is in its life, and the
//! PDUs that start commands (capsules) and carry their data (H2CData).
//!
//! A slot's nvmet side is a [`Request`] in the queue's `Requests`; the
//! transport's side is a [`Slot`] here, owned by the I/O work.

use crate::{
    glue::target::nvmet::status,
    proto,
    queue::{Close, Inner, Queue},
    send::SendKind,
    OPS,
};
use kernel::{alloc::KVVec, prelude::*};

/// Largest H2CData PDU we accept (`maxh2cdata` in the ICResp), and largest
/// data transfer of one command, as the C target.
pub(crate) const MAX_DATA: u32 = 4 * 1024 * 1024;
/// [`MAX_DATA`] as the controller's MDTS (in 4 KiB pages, log2), so that a
/// host splits larger I/O rather than sending commands we refuse.
pub(crate) const MDTS: u8 = {
    let pages = MAX_DATA / 4096;
    assert!(pages.is_power_of_two());
    // CAST: at most 31.
    pages.trailing_zeros() as u8
};
/// The tag of the Connect command's slot, before the queue has its command
/// slots; also the transfer tag of its R2T.
pub(crate) const CONNECT_TAG: u16 = 0xffff;
/// Commands started per round: received in one go, executed together once the
/// lock is dropped, their responses then sent back to back (as the C target,
/// which receives up to 8 PDUs before it sends).
pub(crate) const EXEC_BUDGET: usize = 8;

/// Where a command slot is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SlotState {
    /// Not in use.
    Free,
    /// Started; its in-capsule or H2C data is being received, or an R2T is
    /// queued or sent for it.
    DataIn,
    /// Executing in nvmet, or its completion is queued for sending.
    Executing,
    /// nvmet refused it in `nvmet_req_init`; its response is on its way.
    Failed,
}

/// The transport's state of one command slot.
#[derive(Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) state: SlotState,
    /// Data bytes received so far.
    pub(crate) rbytes: u32,
    /// Whether an R2T went out for it (H2CData may come).
    pub(crate) r2t_sent: bool,
    /// The command's identifier, for R2T and C2HData.
    pub(crate) cid: u16,
}

impl Slot {
    const FREE: Slot = Slot { state: SlotState::Free, rbytes: 0, r2t_sent: false, cid: 0 };
}

/// The queue's command slots: the Connect command's, then (once the queue is
/// installed) one per request, and the free ones among them.
pub(crate) struct Slots {
    connect: Slot,
    /// Index = tag.
    slots: KVVec<Slot>,
    /// Free tags.
    free: KVVec<u16>,
}

impl Slots {
    pub(crate) const fn new() -> Self {
        Self { connect: Slot::FREE, slots: KVVec::new(), free: KVVec::new() }
    }

    /// Whether the queue has its command slots (it is installed).
    pub(crate) fn is_sized(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Makes `n` free slots, once `install_queue` allocated as many requests.
    pub(crate) fn size(&mut self, n: u16) -> Result<(), Close> {
        let n = usize::from(n);
        // Process context (the I/O work), as the C target's `kvcalloc`.
        let nomem = |_| Close::Reason("no memory for the command slots");
        self.slots.reserve(n, GFP_KERNEL).map_err(nomem)?;
        self.free.reserve(n, GFP_KERNEL).map_err(nomem)?;
        for tag in (0..n).rev() {
            self.slots.push(Slot::FREE, GFP_KERNEL).map_err(nomem)?;
            // CAST: below `n`, a `u16`.
            self.free.push(tag as u16, GFP_KERNEL).map_err(nomem)?;
        }
        Ok(())
    }

    /// Slot `tag`.
    pub(crate) fn get_mut(&mut self, tag: u16) -> Option<&mut Slot> {
        if tag == CONNECT_TAG {
            Some(&mut self.connect)
        } else {
            self.slots.get_mut(usize::from(tag))
        }
    }

    /// Slot `tag`, by value.
    pub(crate) fn get(&self, tag: u16) -> Option<Slot> {
        if tag == CONNECT_TAG {
            Some(self.connect)
        } else {
            self.slots.get(usize::from(tag)).copied()
        }
    }

    /// A free slot for a new command with identifier `cid`, in state `DataIn`:
    /// the Connect slot until the queue is installed.
    fn start(&mut self, cid: u16) -> Result<u16, Close> {
        let tag = if !self.is_sized() {
            if self.connect.state != SlotState::Free {
                return Err(Close::Reason("a second command before the queue is connected"));
            }
            CONNECT_TAG
        } else {
            self.free.pop().ok_or(Close::Reason("more commands in flight than the queue has slots"))?
        };
        let slot = self.get_mut(tag).ok_or(Close::Bug(c"a free tag without a slot"))?;
        *slot = Slot { state: SlotState::DataIn, rbytes: 0, r2t_sent: false, cid };
        Ok(tag)
    }

    /// Sets slot `tag`'s state.
    fn set_state(&mut self, tag: u16, state: SlotState) {
        if let Some(s) = self.get_mut(tag) {
            s.state = state;
        }
    }

    /// Frees slot `tag` after its last PDU went out.
    pub(crate) fn free(&mut self, tag: u16) {
        if let Some(s) = self.get_mut(tag) {
            *s = Slot::FREE;
        }
        if tag != CONNECT_TAG {
            // Cannot allocate: `free` has room for every tag (`size`).
            let _ = self.free.push(tag, GFP_KERNEL);
        }
    }

    /// Every slot with its tag, the Connect slot first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u16, Slot)> + '_ {
        // CAST: `size` makes at most `u16::MAX` slots.
        let slots = self.slots.iter().enumerate().map(|(i, s)| (i as u16, *s));
        Iterator::chain(core::iter::once((CONNECT_TAG, self.connect)), slots)
    }
}

/// Commands whose data is in, executed once the round has dropped the lock.
pub(crate) struct Ready {
    tags: [u16; EXEC_BUDGET],
    len: usize,
}

impl Ready {
    pub(crate) const fn new() -> Self {
        Ready { tags: [0; EXEC_BUDGET], len: 0 }
    }

    fn push(&mut self, tag: u16) -> Result<(), Close> {
        // The receive loop stops while there is room for one more.
        let slot = self.tags.get_mut(self.len).ok_or(Close::Bug(c"too many commands ready in one round"))?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len >= EXEC_BUDGET
    }

    pub(crate) fn tags(&self) -> &[u16] {
        // PANIC: `push` keeps `len` at most `EXEC_BUDGET`, the array's length.
        &self.tags[..self.len]
    }
}

impl Queue {
    /// A command capsule arrived: start its command, and route its in-capsule
    /// data (or leave the receiver to drop it, for a refused command).
    pub(crate) fn handle_capsule(
        &self,
        inner: &mut Inner,
        cmd: &proto::CapsuleCmd,
        ready: &mut Ready,
    ) -> Result<(), Close> {
        if self.port_gone() {
            // Its port is being removed: nvmet is about to free it.
            return Err(Close::Quiet);
        }
        let tag = inner.cmds.start(cmd.command_id())?;
        let req = self.request(tag).ok_or(Close::Bug(c"a command slot without a request"))?;
        let inline = cmd.data_len;
        if !req.init(&cmd.sqe, self.nport.get(), &OPS) {
            // nvmet completed it with an error (its response is queued); the
            // receiver drops any in-capsule data.
            inner.cmds.set_state(tag, SlotState::Failed);
            return Ok(());
        }
        let sgl = cmd.sgl();
        let len = sgl.length;
        let plen_error = || Close::Protocol(proto::Error::InvalidField { field: proto::Field::Plen, value: inline });
        if len == 0 {
            if inline > 0 {
                return Err(plen_error());
            }
            inner.cmds.set_state(tag, SlotState::Executing);
            return ready.push(tag);
        }
        let in_capsule = sgl.type_ == proto::SGL_DATA_BLOCK_OFFSET;
        // The capsule must carry exactly the data its SGL describes, or none.
        if (in_capsule && inline != len) || (!in_capsule && inline > 0) {
            return Err(plen_error());
        }
        let status = if len > MAX_DATA {
            status::SGL_INVALID_DATA | status::DNR
        } else if in_capsule && !req.is_write() {
            status::INVALID_FIELD | status::DNR
        } else if in_capsule && len > self.inline_data_size {
            status::SGL_INVALID_OFFSET | status::DNR
        } else if req.alloc_data(len).is_err() {
            status::INTERNAL
        } else {
            0
        };
        if status != 0 {
            // Refused before any data moved: in-capsule data is dropped.
            inner.cmds.set_state(tag, SlotState::Executing);
            req.complete(status);
            return Ok(());
        }
        if in_capsule {
            inner.rx.deliver(tag, 0);
        } else if req.is_write() {
            inner.tx.push(tag, SendKind::R2t)?;
        } else {
            inner.cmds.set_state(tag, SlotState::Executing);
            ready.push(tag)?;
        }
        Ok(())
    }

    /// H2CData arrived: route its data to the command its R2T asked for.
    pub(crate) fn handle_h2c_data(&self, inner: &mut Inner, data: &proto::Data) -> Result<(), Close> {
        let tag = data.ttag;
        let bad_ttag = proto::Error::InvalidField { field: proto::Field::Ttag, value: tag.into() };
        let out_of_range = proto::Error::DataOutOfRange { offset: data.datao, length: data.datal };
        let slot = inner.cmds.get(tag).ok_or(bad_ttag)?;
        if slot.state != SlotState::DataIn || !slot.r2t_sent {
            return Err(Close::Protocol(bad_ttag));
        }
        let transfer = self.request(tag).map(|r| r.transfer_len()).ok_or(Close::Bug(c"a slot without a request"))?;
        if data.datao != slot.rbytes {
            return Err(Close::Protocol(out_of_range));
        }
        if data.datal > inner.max_h2c {
            return Err(Close::Protocol(proto::Error::DataLimit { length: data.datal, limit: inner.max_h2c }));
        }
        let end = data.datao.checked_add(data.datal).ok_or(Close::Protocol(out_of_range))?;
        if end as usize > transfer {
            return Err(Close::Protocol(out_of_range));
        }
        inner.rx.deliver(tag, data.datao);
        Ok(())
    }

    /// A data PDU (or in-capsule data) of `len` bytes for `tag` is complete:
    /// once all of the command's data is in, it is ready to execute.
    pub(crate) fn data_done(&self, inner: &mut Inner, tag: u16, len: u32, ready: &mut Ready) -> Result<(), Close> {
        let transfer = self.request(tag).map(|r| r.transfer_len()).ok_or(Close::Bug(c"data for a missing command"))?;
        let slot = inner.cmds.get_mut(tag).ok_or(Close::Bug(c"data for a missing slot"))?;
        slot.rbytes = slot.rbytes.saturating_add(len);
        if slot.rbytes as usize >= transfer {
            slot.state = SlotState::Executing;
            ready.push(tag)?;
        }
        Ok(())
    }
}
