# SPDX-License-Identifier: GPL-2.0
#
# nvme-tcp-rs: NVMe/TCP host (nvme_tcp) and target (nvmet_tcp) in Rust.
#
#   make                 build both modules
#   make check           every test: protocol crate on the host, then the VM suite
#                        on the debug kernel and part of it on the stock kernel
#                        (make check STOCK=all: all of it on both)
#   make demo            configfs target + nvme connect in a VM
#   make bench           C and Rust hosts and targets in their four pairings and
#                        nvme-loop, one VM per clock, as ratios
#   make deb             the DKMS package nvme-tcp-rs-dkms_*.deb (Documentation/dkms.md)
#   make clean
#
# Building for a kernel of your own (see Documentation/building.md):
#   make KDIR=/lib/modules/$(uname -r)/build KSRC=/usr/src/linux-source-X.Y
# KDIR is a prepared kernel build or headers tree that has the Rust artifacts;
# KSRC is the matching kernel source (the nvme private headers come from it).
#
# Without KDIR, and outside the project's build tree, the build runs inside
# that tree (tools/tree makes it once; it needs root) for the stock kernel
# $(KVER).

KVER ?= 7.3.4+deb13-amd64
REPO := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
IN_TREE := $(wildcard /.nvme-tcp-rs-ready)

ifeq ($(KDIR)$(IN_TREE),)
# On the development machine: delegate to the tree.
modules all clean:
	KVER=$(KVER) $(REPO)/tools/in-tree $(MAKE) -C $(REPO) $@
else
ifneq ($(IN_TREE),)
KDIR ?= /usr/src/linux-headers-$(KVER)
KSRC ?= $(firstword $(wildcard /usr/src/linux-source-*))
endif

# Problems worth a clear sentence rather than a page of compiler errors.
KCONFIG_FILE := $(KDIR)/.config
check-kdir := $(if $(wildcard $(KDIR)/Makefile),,$(error KDIR=$(KDIR) is not a kernel build or headers tree))
check-rust := $(if $(shell grep -x 'CONFIG_RUST=y' $(KCONFIG_FILE) 2>/dev/null),,$(error $(KDIR) is a kernel without CONFIG_RUST=y))
check-artifacts := $(if $(wildcard $(KDIR)/rust/libkernel.rmeta),,$(error $(KDIR) lacks the Rust build artifacts (rust/libkernel.rmeta and friends): Debian's headers packages do not ship them; regenerate them from the matching linux-source, see Documentation/building.md))
check-ksrc := $(if $(wildcard $(KSRC)/drivers/nvme/target/nvmet.h),,$(error KSRC=$(KSRC) has no drivers/nvme/target/nvmet.h: point KSRC at the kernel source matching KDIR (e.g. /usr/src/linux-source-X.Y from Debian's linux-source package)))
rustc-want := $(shell sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$$/\1/p' $(KCONFIG_FILE))
rustc-have := $(shell rustc --version 2>/dev/null)
check-rustc := $(if $(filter-out $(rustc-want),$(rustc-have))$(filter-out $(rustc-have),$(rustc-want)),$(error rustc is "$(rustc-have)" but $(KDIR) was built with "$(rustc-want)": Rust modules must be built by the exact same compiler))

modules all:
	$(check-kdir)$(check-rust)$(check-artifacts)$(check-ksrc)$(check-rustc)
	$(MAKE) -C $(KDIR) M=$(REPO) KSRC=$(abspath $(KSRC)) modules

clean:
	$(MAKE) -C $(KDIR) M=$(REPO) KSRC=$(abspath $(KSRC)) clean
endif

.PHONY: modules all clean check demo bench deb

check:
	STOCK=$(STOCK) $(REPO)/tools/check

demo:
	$(REPO)/tools/demo

bench:
	$(REPO)/tools/bench

deb:
	$(REPO)/tools/deb
