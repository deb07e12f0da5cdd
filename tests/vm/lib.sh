# SPDX-License-Identifier: GPL-2.0
# Helpers for the VM tests; sourced by tests/vm/run and by every test.
# Runs in the guest (the stock kernel, booted by tools/testbed/vm).

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KVER=$(uname -r)
MODDIR=/lib/modules/$KVER
CFS=/sys/kernel/config/nvmet
NQN=nqn.2026-11.io.nvme-tcp-rs:test
PEER=${NVME_TCP_PEER:-$REPO/target/tree/release/nvme-tcp-peer}
# Kernel log lines that fail a test: warnings, oopses, sanitizer, debug-object
# and lockdep reports (BUG: covers KFENCE, KASAN's "BUG: KASAN:" and "BUG:
# sleeping function called from invalid context"; lockdep's reports start
# with "WARNING:", or say it turned itself off; a bare "lockdep" would match
# the debug kernel's boot banner).
SPLAT='WARNING:|BUG:|Oops|KASAN|KFENCE|UBSAN|ODEBUG|turning off the locking correctness validator|DEBUG_LOCKS_WARN_ON|possible irq lock inversion|possible (circular|recursive) locking|inconsistent lock state|INFO: trying to register non-static key|refcount_t:|blocked for more than|general protection fault|Kernel panic|list_(add|del) corruption|list corruption|stack-protector|Call Trace'

# Writes a unique marker line into the kernel log and prints it.
klog_mark() {
	local tag
	tag="nvme-tcp-rs: mark $(date +%s.%N) $*"
	echo "$tag" >/dev/kmsg
	echo "$tag"
}

# The kernel log from marker $1 on (default: the current test's start, which
# tests/vm/run sets). Nothing at all if the marker is gone.
klog() {
	dmesg | awk -v m="${1:-${NVME_TCP_TEST_MARK:?no marker}}" 'f || index($0, m) { f = 1; print }'
}

# kmemleak's report after two scans, less the leaks that are not ours: a leak
# is ours when a frame of its stack is in an nvme or nvmet module (the stack
# names it) or in a module unloaded since (an address without a name: every
# module the tests load is gone by now).
kmemleak_ours() {
	local k=/sys/kernel/debug/kmemleak
	echo scan >"$k" || return 1
	sleep 6
	echo scan >"$k" || return 1
	awk '
		function flush() { if (block != "" && ours) printf "%s", block; block = ""; ours = 0 }
		/^unreferenced object/ { flush() }
		{ block = block $0 "\n" }
		/\[nvmet?[a-z_]*\]/ || /(^| )nvmet?_[a-z0-9_]+\+0x/ { ours = 1 }
		/^ +(\[<[0-9a-f]+>\] )?0x[0-9a-f]+$/ { ours = 1 }
		END { flush() }' "$k"
}

fail() {
	echo "FAILED: $*" >&2
	exit 1
}

# Fails the test unless the test peer (tools/nvme-tcp-peer) is built.
need_peer() {
	[ -x "$PEER" ] || fail "no test peer at $PEER (cargo build --release -p nvme-tcp-peer; make check builds it)"
}

# Runs the test peer's hostile cases (`hostile ADDR PORT [OPTS] [CASE...]`),
# one `PASS|FAIL case` line each. Status 1 means some case failed (its line
# says which); anything else (a crash) fails the test.
hostile_cases() {
	local rc=0
	"$PEER" hostile "$@" >/tmp/cases.out || rc=$?
	sed -e 's/^ok /PASS /' /tmp/cases.out
	[ $rc -le 1 ] || fail "test peer ended with status $rc"
}

# The stock module file for e.g. host/nvme-tcp or target/nvmet-tcp.
stock_ko() {
	local f
	for f in "$MODDIR/kernel/drivers/nvme/$1".ko*; do
		[ -e "$f" ] && { echo "$f"; return; }
	done
	fail "no stock module $1 in $MODDIR"
}

# Loads the stock C module (e.g. host/nvme-tcp), not ours of the same name,
# after its dependencies.
load_stock() {
	local ko dep
	ko=$(stock_ko "$1")
	for dep in $(modinfo -F depends "$ko" | tr , ' '); do
		modprobe "$dep"
	done
	insmod "$ko"
}

# True if the loaded module $1 is ours (out-of-tree modules taint with O).
is_ours() {
	grep -q O "/sys/module/$1/taint" 2>/dev/null
}

# Waits up to $1 seconds for the command that follows to succeed.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

# Exports null_blk's first device as $NQN on TRADDR:TRSVCID (port PORTID).
target_setup() { # [TRADDR] [TRSVCID] [PORTID]
	# memory_backed: reads return what was written, so fio can verify.
	[ -e /dev/nullb0 ] || modprobe null_blk nr_devices=1 gb=1 memory_backed=1
	[ -d "$CFS/subsystems/$NQN" ] && fail "target already set up"
	sh "$REPO/samples/nvmet-tcp-setup.sh" /dev/nullb0 "$NQN" "${1:-127.0.0.1}" "${2:-4420}" "${3:-1}" >/dev/null
}

# Adds another port for $NQN.
add_port() { # PORTID TRADDR TRSVCID
	local p=$CFS/ports/$1
	mkdir "$p"
	echo tcp >"$p/addr_trtype"
	case $2 in *:*) echo ipv6 >"$p/addr_adrfam" ;; *) echo ipv4 >"$p/addr_adrfam" ;; esac
	echo "$2" >"$p/addr_traddr"
	echo "$3" >"$p/addr_trsvcid"
	ln -s "$CFS/subsystems/$NQN" "$p/subsystems/$NQN"
}

remove_port() { # PORTID
	rm -f "$CFS/ports/$1/subsystems/"*
	rmdir "$CFS/ports/$1"
}

# True while something listens on TCP ADDR:PORT (ss notation, e.g. [::1]:4420).
listening() {
	ss -Hltn "sport = :${1##*:}" | awk '{print $4}' | grep -qxF "$1"
}

# Waits for the namespace of a fresh connection and prints its device.
wait_ns() {
	local i d
	for i in $(seq 1 150); do
		for d in /dev/nvme[0-9]*n1; do
			[ -b "$d" ] && { echo "$d"; return 0; }
		done
		sleep 0.2
	done
	return 1
}

# Connects the stock or our host (whichever nvme_tcp is loaded) to $NQN and
# prints the namespace's device. Extra arguments go to nvme connect.
connect() { # ADDR PORT [nvme connect options]
	local a=$1 p=$2
	shift 2
	nvme connect -t tcp -a "$a" -s "$p" -n "$NQN" "$@" >/dev/null || return 1
	wait_ns
}

# How much data fio_verify's jobs move, in percent of the sizes the tests
# give: a quarter on the debug kernel, where KASAN under TCG moves data about
# ten times slower (NVME_TCP_FIO_SCALE overrides).
# DEBUG_KERNEL is 1 on the debug kernel: tests whose whole matrix also runs on
# the stock kernel (tools/check) run a smaller one there.
case $KVER in
*-debug) FIO_SCALE=${NVME_TCP_FIO_SCALE:-25} DEBUG_KERNEL=1 ;;
*) FIO_SCALE=${NVME_TCP_FIO_SCALE:-100} DEBUG_KERNEL=0 ;;
esac

# fio options with every --size=N[k|m] scaled by FIO_SCALE (at least 64 KiB).
fio_scaled() {
	local a n
	for a in "$@"; do
		case $a in
		--size=*[0-9]m | --size=*[0-9]k)
			n=${a#--size=}
			case $n in *m) n=$((${n%m} * 1024)) ;; *) n=${n%k} ;; esac
			n=$((n * FIO_SCALE / 100))
			echo "--size=$((n < 64 ? 64 : n))k"
			;;
		*) printf '%s\n' "$a" ;;
		esac
	done
}

# Field N of fio's terse (v3) result line in FILE: 5 is the error, 6 the KiB
# read. Only the result line: fio may log other lines first (a verify-only
# pass that reaches writes the job never completed says where it stops).
terse_field() { # N FILE
	grep -m1 '^3;fio-' "$2" | cut -d';' -f"$1"
}

# A short fio job with data verification on $1; the rest are fio options
# (sizes scaled by FIO_SCALE).
fio_verify() {
	local dev=$1 opts
	shift
	mapfile -t opts < <(fio_scaled --size=8m "$@")
	fio --name=verify --filename="$dev" --ioengine=libaio --direct=1 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--output-format=terse --terse-version=3 "${opts[@]}" >/tmp/fio.out 2>&1 ||
		{ cat /tmp/fio.out; return 1; }
	# terse v3: field 5 is the error.
	[ "$(terse_field 5 /tmp/fio.out)" = 0 ] || { cat /tmp/fio.out; return 1; }
}

# Random writes on $1 (the rest: fio options), verified as they go
# (verify_backlog), until fio_stop ends them (or 400 s pass), saving fio's
# verify state for fio_verify_after. Run it in the background.
fio_timed_writes() {
	local dev=$1
	shift
	rm -f /tmp/fio.stop
	fio --name=timed --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite \
		--verify=crc32c --verify_fatal=1 --verify_backlog=32 --time_based --runtime=400 \
		--trigger-file=/tmp/fio.stop --verify_state_save=1 --aux-path=/tmp \
		--output-format=terse --terse-version=3 "$@" >/tmp/timed.out 2>&1 ||
		{ cat /tmp/timed.out; return 1; }
	[ "$(terse_field 5 /tmp/timed.out)" = 0 ] || { cat /tmp/timed.out; return 1; }
}

# Ends the fio_timed_writes running as PID (fio's trigger file: it stops its
# writes and saves its verify state, the writes still in flight included) and
# returns its status.
fio_stop() { # PID
	kill -0 "$1" 2>/dev/null || { wait "$1"; return 1; }
	touch /tmp/fio.stop
	wait "$1"
}

# Reads back every block the last fio_timed_writes wrote on $1 and checks it;
# the rest are the same options.
fio_verify_after() {
	local dev=$1 kib
	shift
	fio --name=timed --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite \
		--verify=crc32c --verify_fatal=1 --verify_only --verify_state_load=1 --aux-path=/tmp \
		--output-format=terse --terse-version=3 "$@" >/tmp/after.out 2>&1 ||
		{ cat /tmp/after.out; return 1; }
	# terse v3: field 5 is the error, field 6 the KiB read.
	[ "$(terse_field 5 /tmp/after.out)" = 0 ] || { cat /tmp/after.out; return 1; }
	kib=$(terse_field 6 /tmp/after.out)
	[ "${kib:-0}" -gt 0 ] || { echo "fio_verify_after: nothing was read back"; cat /tmp/after.out; return 1; }
	echo "verified $kib KiB after the job"
}

# Checks the kernel log since the test began names the connection of every
# hostile case that passed in /tmp/cases.out (the peer prints its port) with
# a reason; CASEs given may end without one (a case that ends the
# connection itself, before the target has anything to report).
logged_cases() { # [CASE...]
	local line name port missing=
	while IFS= read -r line; do
		case $line in "ok "*) ;; *) continue ;; esac
		name=${line#ok }
		name=${name%%:*}
		port=$(echo "$line" | sed -n 's/.*\[port \([0-9]*\)\]$/\1/p')
		[ -n "$port" ] || fail "$name: the peer named no port"
		printf '%s\n' "$@" | grep -qxF "$name" && continue
		klog | grep -qE "nvmet_tcp: queue [0-9]+ \(127\.0\.0\.1:$port\): .*, closing" ||
			missing="$missing $name"
	done </tmp/cases.out
	[ -z "$missing" ] || fail "no reason naming the connection was logged for:$missing"
}

# Checks that our modules are where modprobe and nvmet's request_module find
# them before the stock ones (updates/nvme-tcp-rs: tools/testbed/vm installs
# them, when built, before the guest boots), and gives nvme-cli a host NQN
# and ID.
guest_setup() {
	local m
	for m in nvme_tcp nvmet_tcp; do
		case $(modinfo -n "$m" 2>/dev/null) in
		"$MODDIR"/updates/nvme-tcp-rs/"$m".ko) ;;
		*) return 1 ;;
		esac
	done
	mkdir -p /etc/nvme
	[ -s /etc/nvme/hostnqn ] || nvme gen-hostnqn >/etc/nvme/hostnqn
	[ -s /etc/nvme/hostid ] || cat /proc/sys/kernel/random/uuid >/etc/nvme/hostid
}

# For the benchmark and profiling scripts: serves $NQN from /dev/nullb0 on
# 127.0.0.1:4420 through the stock C target (c), ours (rust: configfs loads
# it) or a build of ours (.scratch/NAME.ko); or (loop) through nvmet's loop
# transport, nvme-loop, host and target in one module with no network at all
# (connect with connect_loop).
serve_target() { # c|rust|NAME|loop
	case $1 in
	c) load_stock target/nvmet-tcp ;;
	rust) ;;
	loop)
		modprobe nvme-loop
		local s=$CFS/subsystems/$NQN p=$CFS/ports/1
		mkdir "$s"
		echo 1 >"$s/attr_allow_any_host"
		mkdir "$s/namespaces/1"
		echo /dev/nullb0 >"$s/namespaces/1/device_path"
		echo 1 >"$s/namespaces/1/enable"
		mkdir "$p"
		echo loop >"$p/addr_trtype"
		ln -s "$s" "$p/subsystems/$NQN"
		return
		;;
	*) insmod "$REPO/.scratch/$1.ko" ;;
	esac
	sh "$REPO/samples/nvmet-tcp-setup.sh" /dev/nullb0 "$NQN" 127.0.0.1 4420 >/dev/null
	if [ "$1" = c ]; then
		if is_ours nvmet_tcp; then fail "wanted the C target"; fi
	elif ! is_ours nvmet_tcp; then
		fail "wanted ours"
	fi
}

# Ends what serve_target started, host controllers included.
unserve_target() {
	nvme disconnect-all >/dev/null 2>&1 || true
	sh "$REPO/samples/nvmet-tcp-teardown.sh"
	local m
	for m in nvmet_tcp nvme_loop; do
		[ -d "/sys/module/$m" ] || continue
		wait_for 10 rmmod "$m" 2>/dev/null || fail "cannot unload $m: $(rmmod "$m" 2>&1)"
	done
}

# Connects to $NQN through nvme-loop (serve_target loop) and prints the
# namespace's device.
connect_loop() {
	nvme connect -t loop -n "$NQN" >/dev/null || return 1
	wait_ns
}

# For the benchmark and profiling scripts: makes nvme_tcp the stock C host
# (c), ours (rust: modprobe finds it under updates/) or a build of ours
# (.scratch/NAME.ko, loaded afresh every time), unloading the one loaded
# when it is not that one. Only one nvme_tcp can be loaded (one module name):
# no controller may be connected through it then.
use_host() { # c|rust|NAME
	if [ -d /sys/module/nvme_tcp ]; then
		case $1 in
		c) is_ours nvme_tcp || return 0 ;;
		rust) is_ours nvme_tcp && return 0 ;;
		esac
		wait_for 10 rmmod nvme_tcp 2>/dev/null || fail "cannot unload nvme_tcp: $(rmmod nvme_tcp 2>&1)"
	fi
	case $1 in
	c) load_stock host/nvme-tcp ;;
	rust) modprobe nvme_tcp ;;
	*) insmod "$REPO/.scratch/$1.ko" ;;
	esac
	if [ "$1" = c ]; then
		if is_ours nvme_tcp; then fail "wanted the C host"; fi
	elif ! is_ours nvme_tcp; then
		fail "wanted our host"
	fi
}

# For the benchmark and profiling scripts: a pairing HOST-TARGET (c-c,
# rust-c, c-rust, rust-rust, NAME for .scratch/NAME.ko on either side), or
# loop. Loads the host (use_host), serves $NQN (serve_target), connects
# and prints the namespace's device; unserve_target ends it.
serve_pairing() { # HOST-TARGET|loop
	if [ "$1" = loop ]; then
		serve_target loop
		connect_loop || fail "connect through nvme-loop failed"
		return
	fi
	case $1 in *-*) ;; *) fail "pairing $1: not HOST-TARGET or loop" ;; esac
	use_host "${1%%-*}"
	serve_target "${1#*-}"
	connect 127.0.0.1 4420 || fail "connect of the ${1%%-*} host to the ${1#*-} target failed"
}

# For the profiling scripts: an untimed fio run of job options "$@" against
# the C target; the first I/O after boot translates most of the guest's path.
warm_up() {
	serve_target c
	local dev
	dev=$(connect 127.0.0.1 4420) || fail "connect to the C target failed"
	fio --name=warmup --filename="$dev" --ioengine=libaio --direct=1 --time_based --runtime=5 "$@" >/dev/null
	unserve_target
}

# Text symbols for the profilers' reports: the kernel's as "KALL addr t name",
# the loaded modules' as "MSYM TAG... addr t name [module]".
kernel_syms() {
	grep -E ' [tT] [^ ]+$' /proc/kallsyms | grep -v '\[' | sed 's/^/KALL /'
}
module_syms() {
	grep '\[' /proc/kallsyms | grep -E ' [tT] ' | sed "s/^/MSYM $* /"
}

# The IOPS of the read or write side of fio's JSON output in file $1.
fio_iops() {
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print("%.1f" % (j["read"] if j["read"]["io_bytes"] else j["write"])["iops"])' "$1"
}

# Undoes whatever a test left: host controllers, configfs, modules. A module
# that does not unload (within 10 s: teardown may still be running) is
# reported on stdout and fails the clean-up.
cleanup() {
	# Both may have nothing to do; what they fail to undo keeps a module busy.
	nvme disconnect-all >/dev/null 2>&1
	sh "$REPO/samples/nvmet-tcp-teardown.sh" >/dev/null 2>&1
	local m rc=0
	for m in nvme_tcp nvmet_tcp nvme_loop nvmet nvme_fabrics nvme_core nvme_auth nvme_keyring null_blk brd; do
		[ -d "/sys/module/$m" ] || continue
		if ! wait_for 10 rmmod "$m" 2>/dev/null; then
			echo "rmmod $m failed: $(rmmod "$m" 2>&1) (refcnt $(cat "/sys/module/$m/refcnt" 2>/dev/null), holders: $(ls "/sys/module/$m/holders" 2>/dev/null | tr '\n' ' '))"
			rc=1
		fi
	done
	return $rc
}
