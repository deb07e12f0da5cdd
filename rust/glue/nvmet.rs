// SPDX-License-Identifier: GPL-2.0

//! nvmet's side of a fabrics transport: registration and the ports it hands us.
//!
//! C: `drivers/nvme/target/nvmet.h` (`struct nvmet_fabrics_ops`, `struct nvmet_port`).

use super::bindings;
use core::{ffi::c_void, marker::PhantomData};
use kernel::{error::from_result, prelude::*, types::ForeignOwnable, types::Opaque, ThisModule};

/// Address family of a port, from its configfs `addr_adrfam`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AddrFamily {
    /// `ipv4`.
    Ipv4,
    /// `ipv6`.
    Ipv6,
    /// Anything else (`ib`, `fc`, `loop`, unset).
    Other(u8),
}

/// A target port (`struct nvmet_port`) as configured through configfs.
///
/// # Invariants
///
/// Wraps a valid `struct nvmet_port`, which nvmet keeps alive and does not
/// reconfigure while the transport's `add_port`/`remove_port` runs or the port
/// is enabled.
#[repr(transparent)]
pub(crate) struct NvmetPort(Opaque<bindings::nvmet_port>);

/// The NUL-terminated prefix of a fixed-size C string field.
fn field_str(field: &[u8]) -> &CStr {
    CStr::from_bytes_until_nul(field).unwrap_or(c"")
}

impl NvmetPort {
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct nvmet_port` for the lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::nvmet_port) -> &'a Self {
        // SAFETY: `NvmetPort` is a transparent wrapper of `nvmet_port`; the caller
        // guarantees validity for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn raw(&self) -> &bindings::nvmet_port {
        // SAFETY: valid per the type invariant; nvmet does not write these fields
        // while we look at them.
        unsafe { &*self.0.get() }
    }

    /// The port id (configfs directory name).
    pub(crate) fn id(&self) -> u16 {
        u16::from_le(self.raw().disc_addr.portid)
    }

    /// `addr_adrfam`.
    pub(crate) fn family(&self) -> AddrFamily {
        match u32::from(self.raw().disc_addr.adrfam) {
            bindings::NVMF_ADDR_FAMILY_IP4 => AddrFamily::Ipv4,
            bindings::NVMF_ADDR_FAMILY_IP6 => AddrFamily::Ipv6,
            _ => AddrFamily::Other(self.raw().disc_addr.adrfam),
        }
    }

    /// `addr_traddr`.
    pub(crate) fn traddr(&self) -> &CStr {
        // CAST: `c_char` and `u8` have the same layout.
        let f = &self.raw().disc_addr.traddr;
        // SAFETY: `f` is a plain byte array of `f.len()` bytes.
        field_str(unsafe { core::slice::from_raw_parts(f.as_ptr().cast::<u8>(), f.len()) })
    }

    /// `addr_trsvcid`.
    pub(crate) fn trsvcid(&self) -> &CStr {
        let f = &self.raw().disc_addr.trsvcid;
        // SAFETY: `f` is a plain byte array of `f.len()` bytes.
        field_str(unsafe { core::slice::from_raw_parts(f.as_ptr().cast::<u8>(), f.len()) })
    }

    /// The TCP security type (`addr_tsas`): 0 = none, else TLS.
    pub(crate) fn tcp_sectype(&self) -> u8 {
        // SAFETY: for a TCP port the `tcp` member of the `tsas` union is the one set;
        // any byte value is a valid `u8`.
        unsafe { self.raw().disc_addr.tsas.tcp.as_ref().sectype }
    }

    /// `param_inline_data_size`; negative means "transport default".
    pub(crate) fn inline_data_size(&self) -> i32 {
        self.raw().inline_data_size
    }

    /// Sets the inline data size that the port reports.
    pub(crate) fn set_inline_data_size(&self, size: i32) {
        // SAFETY: `add_port` runs under nvmet's port mutex; nobody else writes it.
        unsafe { (*self.0.get()).inline_data_size = size };
    }
}

/// A fabrics transport for nvmet.
pub(crate) trait NvmetTransport: 'static {
    /// Per-port state, kept in `nvmet_port.priv` while the port is enabled.
    type Port: ForeignOwnable + Send + Sync;

    /// Enables `port`: from here on hosts may connect.
    fn add_port(port: &NvmetPort) -> Result<Self::Port>;

    /// Disables `port`, whose state `add_port` returned.
    fn remove_port(port: &NvmetPort, state: Self::Port);
}

/// The static `nvmet_fabrics_ops` table of a transport.
#[repr(transparent)]
pub(crate) struct OpsTable<T: NvmetTransport>(bindings::nvmet_fabrics_ops, PhantomData<T>);

// SAFETY: the table is immutable after construction and only read by nvmet.
unsafe impl<T: NvmetTransport> Sync for OpsTable<T> {}

impl<T: NvmetTransport> OpsTable<T> {
    /// The table for TCP (`NVMF_TRTYPE_TCP`), owned by `module`.
    pub(crate) const fn tcp(module: &'static ThisModule) -> Self {
        // SAFETY: all-zero is a valid `nvmet_fabrics_ops` (NULL callbacks).
        let mut ops: bindings::nvmet_fabrics_ops = unsafe { core::mem::zeroed() };
        ops.owner = module.as_ptr();
        ops.type_ = bindings::NVMF_TRTYPE_TCP;
        ops.msdbd = 1;
        ops.add_port = Some(Self::add_port);
        ops.remove_port = Some(Self::remove_port);
        Self(ops, PhantomData)
    }

    unsafe extern "C" fn add_port(nport: *mut bindings::nvmet_port) -> i32 {
        from_result(|| {
            // SAFETY: nvmet passes a valid port that outlives this call.
            let port = unsafe { NvmetPort::from_raw(nport) };
            let state = T::add_port(port)?;
            // SAFETY: `nport` is valid; `priv_` belongs to the transport.
            unsafe { (*nport).priv_ = state.into_foreign().cast::<c_void>() };
            Ok(0)
        })
    }

    unsafe extern "C" fn remove_port(nport: *mut bindings::nvmet_port) {
        // SAFETY: nvmet passes a valid port; `priv_` was set by a successful
        // `add_port` (nvmet only removes enabled ports) and is taken back once.
        let state = unsafe { T::Port::from_foreign((*nport).priv_.cast()) };
        // SAFETY: as above.
        unsafe { (*nport).priv_ = core::ptr::null_mut() };
        // SAFETY: nvmet passes a valid port that outlives this call.
        T::remove_port(unsafe { NvmetPort::from_raw(nport) }, state);
    }
}

/// A transport registered with nvmet; unregistered on drop.
pub(crate) struct Registration<T: NvmetTransport> {
    ops: &'static OpsTable<T>,
}

impl<T: NvmetTransport> Registration<T> {
    /// Registers `ops`, after which configfs ports of its type reach `T`.
    pub(crate) fn new(ops: &'static OpsTable<T>) -> Result<Self> {
        // SAFETY: `ops` is a valid, static table.
        kernel::error::to_result(unsafe { bindings::nvmet_register_transport(&ops.0) })?;
        Ok(Self { ops })
    }
}

impl<T: NvmetTransport> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`.
        unsafe { bindings::nvmet_unregister_transport(&self.ops.0) };
    }
}
