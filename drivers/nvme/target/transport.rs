// SPDX-License-Identifier: GPL-2.0

//! The nvmet transport: what nvmet calls on `tcp` ports, their queues and
//! their controllers.

use crate::{
    command::MDTS,
    glue::target::nvmet::{CtrlId, NvmetPort, NvmetTransport},
    port::Port,
    queue::Queue,
    registry,
};
use kernel::{prelude::*, sync::{Arc, ArcBorrow}};

/// The nvmet transport.
pub(crate) struct TcpTransport;

#[vtable]
impl NvmetTransport for TcpTransport {
    type Port = Arc<Port>;
    type Queue = Queue;

    fn add_port(nport: &NvmetPort) -> Result<Arc<Port>> {
        Port::add(nport)
    }

    fn remove_port(_nport: &NvmetPort, port: Arc<Port>) {
        port.remove();
    }

    fn delete_ctrl(ctrl: CtrlId) {
        registry::shutdown_ctrl(ctrl)
    }

    fn install_queue(queue: ArcBorrow<'_, Queue>) -> u16 {
        Queue::install(queue)
    }

    fn disc_traddr(queue: &Queue, port: &NvmetPort, out: &mut [u8]) {
        if queue.port_is_any {
            // A wildcard port reports the address the host reached.
            queue.local.format_ip(out);
            return;
        }
        let traddr = port.traddr().to_bytes_with_nul();
        let n = traddr.len().min(out.len());
        // PANIC: `n` is at most the length of either slice.
        out[..n].copy_from_slice(&traddr[..n]);
    }

    fn host_traddr(ctrl: CtrlId, out: &mut [u8]) -> Result<usize> {
        registry::host_traddr(ctrl, out)
    }

    fn mdts() -> u8 {
        MDTS
    }
}
