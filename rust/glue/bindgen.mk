# SPDX-License-Identifier: GPL-2.0
#
# Included by a module's Kbuild after it sets `rust-main` (its Rust crate root,
# without .rs). Generates $(obj)/bindings_generated.rs from $(src)/bindings.h
# with the kernel's own bindgen settings, read from $(KSRC) so they always
# match the kernel being built for. Only items declared in the nvme headers
# and in rust/glue/*.h are generated; everything they refer to comes from
# `kernel::bindings` (see rust/glue/bindings.rs).

ifeq ($(KSRC),)
$(error KSRC is not set: pass the kernel source matching KDIR (make KSRC=...))
endif

nvtr-glue := $(abspath $(src)/../../../rust/glue)

# Flags clang does not understand, as rust/Makefile filters them.
$(eval $(shell sed -n '/^bindgen_skip_c_flags :=/,/[^\\]$$/p' $(KSRC)/rust/Makefile | tr -d '\\\n'))
nvtr-bindgen-target := $(shell sed -n 's/^BINDGEN_TARGET_$(SRCARCH)[[:space:]]*:=[[:space:]]*//p' $(KSRC)/rust/Makefile)
# The kernel's parameters, less the CFI attributes that modules may not use.
nvtr-bindgen-params := $(shell grep -Ev '^\#|^$$|cfi_encoding' $(KSRC)/rust/bindgen_parameters)

quiet_cmd_nvtr_bindgen = BINDGEN $@
      cmd_nvtr_bindgen = \
	$(BINDGEN) $< $(nvtr-bindgen-params) --rust-target 1.85 \
		--use-core --with-derive-default --ctypes-prefix ffi \
		--no-layout-tests --no-debug '.*' --enable-function-attribute-detection \
		--no-recursive-allowlist \
		--allowlist-file '(.*/)?drivers/nvme/.*\.h' \
		--allowlist-file '.*/include/linux/nvme.*\.h' \
		--allowlist-file '$(nvtr-glue)/.*\.h' \
		--allowlist-type opal_dev --allowlist-type __kfifo \
		$(nvtr-bindgen-extra) \
		-o $@ -- \
		$(filter-out $(bindgen_skip_c_flags),$(c_flags)) \
		-w --target=$(nvtr-bindgen-target) -fno-builtin -D__BINDGEN__ \
		-DMODULE -I$(KSRC)/drivers/nvme -I$(nvtr-glue)

# Every header it reads that is ours: a change to a glue or helper header
# regenerates the bindings.
$(obj)/bindings_generated.rs: $(src)/bindings.h $(wildcard $(src)/*.h) $(wildcard $(nvtr-glue)/*.h) \
		$(KSRC)/rust/bindgen_parameters FORCE
	$(call if_changed_dep,nvtr_bindgen)

targets += bindings_generated.rs

# The crate root includes the generated file through this variable.
$(obj)/$(rust-main).o: $(obj)/bindings_generated.rs
$(obj)/$(rust-main).o: export NVME_TCP_RS_BINDINGS = $(abspath $(obj)/bindings_generated.rs)

# The C helpers see the same private headers.
ccflags-y += -I$(KSRC)/drivers/nvme -I$(nvtr-glue)
