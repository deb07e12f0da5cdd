// SPDX-License-Identifier: GPL-2.0

//! Controllers: creation (`nvme connect`), setup of the admin and I/O
//! queues through nvme-core, teardown, and the error path.
//!
//! Life cycle, as nvme-core runs a fabrics controller: `create_ctrl`
//! initialises and adds the controller, moves it to `Connecting`, sets up
//! the admin queue (socket, ICReq, tag set, Connect, enable, identify) and
//! the I/O queues, then goes `Live`. Deletion (`nvme disconnect`, module
//! unload, errors) runs nvme-core's delete work, which calls
//! [`TcpCtrl::teardown`] through `delete_ctrl`. A transport error (or
//! `nvme reset`) runs the reset work: it stops every queue, fails what
//! was in flight, and deletes the controller (reconnecting is not
//! supported yet). The controller's memory goes with its device's last
//! reference (`free_ctrl`).

use crate::{
    glue::{
        host::{
            blk::{IoCpu, Request, TagSet, RQ_PDU_SIZE},
            connect::netdev_exists,
            fabrics::{CtrlOptions, FabricsTransport, NewCtrl},
            nvme::{CtrlRef, CtrlState, DeviceRef, FabricsCtrl, NsRef, NvmeCtrl},
            params,
        },
        sock::SockAddr,
    },
    mq,
    queue::{Queue, AEN_TAG},
    registry, TABLES,
};
use core::{
    mem::offset_of,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};
use kernel::{
    alloc::KVec,
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// Port used when `trsvcid` is not given (the NVMe/TCP discovery port).
const DEFAULT_TRSVCID: &CStr = c"8009";

/// What of the controller's setup exists, for teardown.
#[derive(Default)]
struct Setup {
    admin_set: bool,
    io_set: bool,
}

/// An NVMe/TCP controller.
#[pin_data]
pub(crate) struct TcpCtrl {
    #[pin]
    nctrl: NvmeCtrl,
    #[pin]
    admin_set: TagSet,
    #[pin]
    io_set: TagSet,
    /// The target's address, and ours when given (`host_traddr`).
    pub(crate) addr: SockAddr,
    pub(crate) src: Option<SockAddr>,
    /// Queues by id; dropped at teardown (each holds a controller reference).
    #[pin]
    queues: Mutex<KVec<Arc<Queue>>>,
    /// Default, read and poll I/O queues (`nvmf_set_io_queues`).
    io_queues: [AtomicU32; 3],
    #[pin]
    setup: Mutex<Setup>,
    /// `create_ctrl` succeeded: `free_ctrl` frees the options.
    created: AtomicBool,
}

/// The host transport.
pub(crate) struct TcpHost;

impl FabricsTransport for TcpHost {
    fn create_ctrl(dev: DeviceRef, opts: &CtrlOptions) -> Result<NewCtrl> {
        TcpCtrl::create(dev, opts)
    }
}

/// Prints `s` of the options, for messages.
fn show(s: Option<&CStr>) -> &str {
    s.and_then(|s| s.to_str().ok()).unwrap_or("?")
}

impl TcpCtrl {
    fn create(dev: DeviceRef, opts: &CtrlOptions) -> Result<NewCtrl> {
        let traddr = opts.traddr().ok_or(EINVAL)?;
        let trsvcid = opts.trsvcid().unwrap_or(DEFAULT_TRSVCID);
        if opts.tls() {
            pr_err!("{}: TLS is not supported by this transport (nvme-tcp-rs)\n", show(opts.subsysnqn()));
            return Err(EOPNOTSUPP);
        }
        let (nr_io, nr_write, nr_poll) = opts.queue_counts();
        if nr_poll > 0 {
            pr_err!("{}: poll queues are not supported by this transport yet\n", show(opts.subsysnqn()));
            return Err(EINVAL);
        }
        let addr = SockAddr::parse(traddr, trsvcid).inspect_err(|_| {
            pr_err!("malformed address passed: {}:{}\n", show(Some(traddr)), show(Some(trsvcid)));
        })?;
        let src = match opts.host_traddr() {
            Some(h) => Some(SockAddr::parse(h, c"0").inspect_err(|_| {
                pr_err!("malformed src address passed: {}\n", show(Some(h)));
            })?),
            None => None,
        };
        if let Some(iface) = opts.host_iface() {
            if !netdev_exists(iface) {
                pr_err!("invalid interface passed: {}\n", show(Some(iface)));
                return Err(ENODEV);
            }
        }
        if !opts.duplicate_connect() && registry::exists(opts) {
            return Err(EALREADY);
        }

        let ctrl = KBox::pin_init(
            try_pin_init!(TcpCtrl {
                nctrl: NvmeCtrl::new(),
                admin_set: TagSet::new(),
                io_set: TagSet::new(),
                addr,
                src,
                queues <- new_mutex!(KVec::new()),
                io_queues: [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)],
                setup <- new_mutex!(Setup::default()),
                created: AtomicBool::new(false),
            }? Error),
            GFP_KERNEL,
        )?;
        let queue_count = nr_io + nr_write + nr_poll + 1;
        // SAFETY: `ctrl` is leaked right below when this succeeds; from then
        // on only `free_ctrl` frees it.
        unsafe { ctrl.nctrl.init(dev, opts, queue_count, &TABLES) }?;
        // SAFETY: owned by nvme-core's device from here on (see above); we
        // hold the creator's reference.
        let ctrl: &TcpCtrl = unsafe { &*KBox::into_raw(Pin::into_inner_unchecked(ctrl)) };

        let result = ctrl.nctrl.add().and_then(|()| {
            if !ctrl.nctrl.change_state(CtrlState::Connecting) {
                return Err(EINTR);
            }
            ctrl.setup()
        });
        if let Err(e) = result {
            ctrl.nctrl.uninit();
            // SAFETY: the creator's reference, not used after this.
            unsafe { ctrl.nctrl.put() };
            return Err(if e.to_errno() > 0 { EIO } else { e });
        }
        pr_info!(
            "nvme{}: new ctrl: NQN \"{}\", addr {}\n",
            ctrl.nctrl.instance(),
            show(opts.subsysnqn()),
            addr
        );
        if let Err(e) = registry::add(CtrlRef::new(ctrl)) {
            // Only unload needs the list: without it, the controller would
            // outlive the module. Not worth keeping.
            ctrl.nctrl.delete();
            // SAFETY: as above.
            unsafe { ctrl.nctrl.put() };
            return Err(e);
        }
        ctrl.created.store(true, Ordering::Release);
        // SAFETY: the creator's reference goes to nvme-fabrics.
        Ok(unsafe { ctrl.nctrl.hand_over() })
    }

    pub(crate) fn nctrl(&self) -> &NvmeCtrl {
        &self.nctrl
    }

    /// The request of `tag` on queue `qid`.
    pub(crate) fn request(&self, qid: u16, tag: u16) -> Option<&Request> {
        if qid == 0 {
            self.admin_set.request(0, tag)
        } else {
            self.io_set.request(u32::from(qid) - 1, tag)
        }
    }

    /// Queue `qid`, if connected.
    fn queue_by_id(&self, qid: usize) -> Option<Arc<Queue>> {
        self.queues.lock().get(qid).cloned()
    }

    /// Sets up the admin queue, then the I/O queues, and goes live. On
    /// error, everything set up so far is torn down again.
    fn setup(&self) -> Result {
        // A discovery controller has no I/O queues.
        let r = self.setup_admin().and_then(|()| if self.nctrl.queue_count() > 1 { self.setup_io() } else { Ok(()) }).and_then(|()| {
            if self.nctrl.change_state(CtrlState::Live) {
                Ok(())
            } else {
                Err(EINVAL)
            }
        });
        match r {
            Ok(()) => {
                self.nctrl.start();
                Ok(())
            }
            Err(e) => {
                self.nctrl.stop_keep_alive();
                self.teardown(true);
                Err(e)
            }
        }
    }

    fn setup_admin(&self) -> Result {
        let queue = Queue::connect(self, 0)?;
        self.queues.lock().push(queue.clone(), GFP_KERNEL)?;
        self.nctrl.alloc_admin_tag_set(&self.admin_set, &TABLES.admin_mq, RQ_PDU_SIZE)?;
        self.setup.lock().admin_set = true;
        queue.start(self.admin_set.queue_depth() as usize, IoCpu::unbound())?;
        self.nctrl.connect_admin_queue()?;
        queue.set_live();
        self.nctrl.enable()?;
        self.nctrl.quiesce(true, false);
        self.nctrl.init_finish()?;
        let n = self.nctrl.instance();
        if self.nctrl.icdoff() != 0 {
            pr_err!("nvme{}: icdoff is not supported!\n", n);
            return Err(EOPNOTSUPP);
        }
        if !self.nctrl.sgl_supported() {
            pr_err!("nvme{}: Mandatory sgls are not supported!\n", n);
            return Err(EOPNOTSUPP);
        }
        let opts = self.nctrl.opts();
        let sqsize = u32::from(self.nctrl.sqsize());
        if opts.queue_size() > sqsize + 1 {
            pr_warn!("nvme{}: queue_size {} > ctrl sqsize {}, clamping down\n", n, opts.queue_size(), sqsize + 1);
        }
        let maxcmd = self.nctrl.maxcmd();
        if sqsize + 1 > u32::from(maxcmd) && maxcmd > 0 {
            pr_warn!("nvme{}: sqsize {} > ctrl maxcmd {}, clamping down\n", n, sqsize + 1, maxcmd);
            self.nctrl.set_sqsize(maxcmd - 1);
        }
        Ok(())
    }

    fn setup_io(&self) -> Result {
        let n = self.nctrl.instance();
        let wanted = self.nctrl.opts().io_queues_wanted();
        let granted = self.nctrl.negotiate_queue_count(wanted)?;
        if granted == 0 {
            pr_err!("nvme{}: unable to set any I/O queues\n", n);
            return Err(ENOMEM);
        }
        self.nctrl.set_queue_count(granted + 1);
        pr_info!("nvme{}: creating {} I/O queues.\n", n, granted);
        let split = self.nctrl.opts().split_io_queues(granted);
        for (slot, v) in self.io_queues.iter().zip(split) {
            slot.store(v, Ordering::Relaxed);
        }
        for qid in 1..=granted {
            // CAST: at most the options' count, a few hundred.
            let queue = Queue::connect(self, qid as u16)?;
            self.queues.lock().push(queue, GFP_KERNEL)?;
        }
        // No poll queues: the default and read maps.
        self.nctrl.alloc_io_tag_set(&self.io_set, &TABLES.io_mq, 2, RQ_PDU_SIZE)?;
        self.setup.lock().io_set = true;
        let depth = self.io_set.queue_depth() as usize;
        let default = self.io_queues[0].load(Ordering::Relaxed);
        for qid in 1..=self.io_set.nr_hw_queues().min(granted) {
            let Some(queue) = self.queue_by_id(qid as usize) else { return Err(EINVAL) };
            let cpu = if params::wq_unbound() {
                IoCpu::unbound()
            } else {
                // Read queues follow the default ones, in their own map.
                let map = if qid <= default { 0 } else { 1 };
                self.io_set.io_cpu(map, qid - 1)
            };
            pr_debug!("nvme{}: queue {}: using cpu {}\n", n, qid, cpu.get());
            queue.start(depth, cpu)?;
            // CAST: as above.
            self.nctrl.connect_io_queue(qid as u16)?;
            queue.set_live();
        }
        Ok(())
    }

    /// Stops every queue and fails what was in flight; with `remove`, also
    /// frees the tag sets and drops the queues (deletion, failed setup).
    /// Nothing of the queues runs afterwards.
    fn teardown(&self, remove: bool) {
        let mut setup = self.setup.lock();
        self.teardown_io(&mut setup, remove);
        self.teardown_admin(&mut setup, remove);
        if remove {
            // Each queue holds a reference to the controller: drop them.
            let old = core::mem::replace(&mut *self.queues.lock(), KVec::new());
            drop(setup);
            drop(old);
        }
    }

    /// The I/O half of `teardown`: no new requests, queues stopped, what
    /// was in flight failed; with `remove`, the tag set freed.
    fn teardown_io(&self, setup: &mut Setup, remove: bool) {
        if !setup.io_set {
            return;
        }
        self.nctrl.quiesce(false, true);
        self.nctrl.sync_io_queues();
        // Stopping waits for each queue's I/O work, which never takes this lock.
        for q in self.queues.lock().iter().skip(1) {
            q.stop();
        }
        self.nctrl.cancel_requests(false);
        if remove {
            self.nctrl.quiesce(false, false);
            self.nctrl.remove_tag_set(false);
            setup.io_set = false;
        }
    }

    /// The admin half of `teardown`.
    fn teardown_admin(&self, setup: &mut Setup, remove: bool) {
        if setup.admin_set {
            self.nctrl.quiesce(true, true);
        }
        if let Some(q) = self.queue_by_id(0) {
            q.stop();
        }
        if setup.admin_set {
            self.nctrl.cancel_requests(true);
            if remove {
                self.nctrl.quiesce(true, false);
                self.nctrl.remove_tag_set(true);
                setup.admin_set = false;
            }
        }
    }

    /// A queue failed: recover. The reset work stops every queue and
    /// removes the controller; while connecting, the setup in progress
    /// fails instead (its commands fail or time out).
    pub(crate) fn error(&self) {
        if self.nctrl.reset() {
            pr_warn!("nvme{}: starting error recovery\n", self.nctrl.instance());
        }
    }
}

// SAFETY: `NCTRL_OFFSET` is the offset of `nctrl`, which `nctrl()` returns;
// `create` leaks the controller's box once `init` succeeded, and only
// `free_ctrl` (`free`) takes it back. Queues live until `teardown(true)`,
// which removes the tag sets first.
unsafe impl FabricsCtrl for TcpCtrl {
    const NCTRL_OFFSET: usize = offset_of!(TcpCtrl, nctrl);
    type Queue = Queue;

    fn nctrl(&self) -> &NvmeCtrl {
        &self.nctrl
    }

    fn queue(&self, idx: usize) -> Option<Arc<Queue>> {
        self.queue_by_id(idx)
    }

    fn submit_async_event(&self) {
        let Some(queue) = self.queue_by_id(0) else { return };
        if !queue.is_live() {
            return;
        }
        // The async event request takes the tag beyond the admin tag set's.
        if queue.submit(AEN_TAG) {
            Queue::kick(queue.as_arc_borrow());
        }
    }

    fn delete_ctrl(&self) {
        registry::remove(self);
        self.teardown_shutdown();
    }

    fn stop_ctrl(&self) {}

    fn reset_work(&self) {
        let n = self.nctrl.instance();
        self.nctrl.stop_keep_alive();
        self.teardown(false);
        // Reconnecting is the next step of this transport; for now the
        // controller goes, and pending I/O fails as soon as it is deleting.
        pr_warn!("nvme{}: removing the controller (reconnecting is not supported yet)\n", n);
        self.nctrl.change_state(CtrlState::Connecting);
        self.nctrl.delete();
        self.nctrl.quiesce(false, false);
        self.nctrl.quiesce(true, false);
    }

    fn get_address(&self, buf: &mut [u8]) -> usize {
        let mut len = self.nctrl.fabrics_address(buf);
        let Some(queue) = self.queue_by_id(0) else { return len };
        if !queue.is_live() {
            return len;
        }
        if let Ok(local) = queue.sock.sock().local_addr() {
            let mut ip = [0u8; 64];
            let n = local.format_ip(&mut ip).min(ip.len());
            // Replace the trailing newline, as the C host.
            if len > 0 && buf.get(len - 1) == Some(&b'\n') {
                len -= 1;
            }
            let sep: &[u8] = if len > 0 { b"," } else { b"" };
            for part in [sep, b"src_addr=", ip.get(..n).unwrap_or(&[]), b"\n"] {
                let end = (len + part.len()).min(buf.len().saturating_sub(1));
                let take = end.saturating_sub(len);
                if let (Some(dst), Some(src)) = (buf.get_mut(len..end), part.get(..take)) {
                    dst.copy_from_slice(src);
                }
                len = end;
            }
            if let Some(b) = buf.get_mut(len) {
                *b = 0;
            }
        }
        len
    }

    fn free(this: Pin<KBox<Self>>) {
        if this.created.load(Ordering::Acquire) {
            // SAFETY: the controller is being freed; nvme-fabrics left its
            // options to it once `create_ctrl` succeeded.
            unsafe { this.nctrl.opts().free() };
        }
        drop(this);
    }

    fn queue_rq(queue: ArcBorrow<'_, Queue>, rq: crate::glue::host::blk::NewRequest<'_>, ns: Option<NsRef>, last: bool) -> u8 {
        mq::queue_rq(queue, rq, ns, last)
    }

    fn commit_rqs(queue: ArcBorrow<'_, Queue>) {
        mq::commit_rqs(queue)
    }

    fn timeout(queue: ArcBorrow<'_, Queue>, rq: &Request) -> bool {
        mq::timeout(queue, rq)
    }

    fn map_queues(&self, set: &TagSet) {
        let mut q = [0u32; 3];
        for (v, slot) in q.iter_mut().zip(self.io_queues.iter()) {
            *v = slot.load(Ordering::Relaxed);
        }
        set.map_queues(&self.nctrl, &mut q);
    }
}

impl TcpCtrl {
    /// `delete_ctrl`: the I/O queues go, the controller is shut down over
    /// the admin queue (while it still works), then the admin queue goes.
    fn teardown_shutdown(&self) {
        {
            let mut setup = self.setup.lock();
            self.teardown_io(&mut setup, true);
            if setup.admin_set {
                self.nctrl.quiesce(true, true);
            }
        }
        // The shutdown's Property Set goes through the fabrics queue, which
        // quiescing the admin queue leaves running.
        if self.queue_by_id(0).is_some_and(|q| q.is_live()) {
            self.nctrl.disable(true);
        }
        self.teardown(true);
    }
}
