# SPDX-License-Identifier: GPL-2.0
# Shared shell helpers for the scripts in tools/. Source it; do not run it.
#
#   NVME_TCP_RS_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/nvme-tcp-rs)
#   KVER               stock kernel to build and test for (default: DEFAULT_KVER below)

DEFAULT_KVER=7.3.4+deb13-amd64

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${NVME_TCP_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nvme-tcp-rs}
KVER=${KVER:-$DEFAULT_KVER}

die() { echo "error: $*" >&2; exit 1; }
log() { echo ">> $*" >&2; }

# Loads tools/kernels/$KVER.conf: the pinned inputs for that kernel.
load_kernel_conf() {
	local conf=$REPO/tools/kernels/$KVER.conf
	[ -f "$conf" ] || die "no build recipe for kernel '$KVER' (have: $(cd "$REPO/tools/kernels" && ls | sed 's/\.conf$//' | tr '\n' ' '))"
	# shellcheck disable=SC1090
	. "$conf"
	KCONF=$conf
}

# The tree is keyed by everything that decides its contents.
tree_key() {
	cat "$REPO/tools/tree" "$REPO/tools/lib.sh" "$REPO/tools/prepare-kernel" "$KCONF" | sha256sum | cut -c1-16
}

tree_path() {
	echo "$CACHE/tree-$KVER-$(tree_key)"
}

# Paths inside the tree (as seen from inside it).
headers_dir() { echo "/usr/src/linux-headers-$KVER"; }
source_dir() { echo "/usr/src/$KSRC_PKG"; }

# The debug kernel (tools/debug-kernel): its release, its cache directory
# keyed by everything that produces it, and where tools/in-tree binds that
# directory inside the tree (the build's paths stay valid there).
DEBUG_RELEASE_SUFFIX=nvme-tcp-rs-debug
debug_release() { echo "${KVER%-*}-$DEBUG_RELEASE_SUFFIX"; }
# Of the kernel's recipe only the source and the toolchain count: a package
# added to the tree for the tests does not rebuild the kernel.
debug_kernel_key() {
	{
		cat "$REPO/tools/debug-kernel" "$REPO/tools/kernels/debug.config" "$REPO/tools/kernels/debug.modules"
		printf '%s\n' "$KVER" "$KSRC_PKG" "$KERNEL_PKG_VER" "$RUSTC_VER" "$BINDGEN_VER" "$GCC_VER" \
			"$CLANG_VER" "$CC" "$HOSTCC" "$CROSS_COMPILE" "$ARCH"
	} | sha256sum | cut -c1-16
}
debug_kernel_path() { echo "$CACHE/debug-$KVER-$(debug_kernel_key)"; }
debug_mount() { echo "/usr/src/nvme-tcp-rs-debug"; }
