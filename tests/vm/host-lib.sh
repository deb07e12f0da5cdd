# SPDX-License-Identifier: GPL-2.0
# Helpers for the host tests (tests/vm/6N-our-host-*.sh), sourced after lib.sh.
#
# The host under test is ours by default. NVME_TCP_HOST=stock puts the stock
# C host under the same tests instead, to check the tests themselves:
# tools/testbed/vm passes every NVME_TCP_* variable into the guest, so
#   NVME_TCP_HOST=stock tools/testbed/check-vm --kernel stock --cpus 4 our-host-
# runs them against the C host. Each test runs its checks in two pairings:
# the host against the stock C target (`c-target`) and against ours
# (`our-target`), reporting `PASS|FAIL <pairing>:<check>` for each.
#
# Every exec costs the debug kernel dearly (tests/vm/lib.sh): the helpers
# that run often read sysfs and the sniffer's output with bash builtins.

HOST_KIND=${NVME_TCP_HOST:-ours}
case $HOST_KIND in
ours | stock) ;;
*) fail "NVME_TCP_HOST is '$HOST_KIND': ours (the default) or stock" ;;
esac
# shellcheck disable=SC2034
PAIRINGS=${PAIRINGS:-c-target our-target}
PAIRING=
FAILED_CHECKS=
SNIFF_PID=

# Loads the host under test unless it is loaded, and checks it is the one
# NVME_TCP_HOST asks for.
host_load() {
	if [ ! -d /sys/module/nvme_tcp ]; then
		case $HOST_KIND in
		stock) load_stock host/nvme-tcp ;;
		ours) modprobe nvme_tcp ;;
		esac
	fi
	case $HOST_KIND in
	stock) if is_ours nvme_tcp; then fail "NVME_TCP_HOST=stock, but nvme_tcp is ours"; fi ;;
	ours) is_ours nvme_tcp || fail "nvme_tcp is not ours (NVME_TCP_HOST=stock runs the stock host)" ;;
	esac
}

# The host's controllers (nvmeN), space-separated.
host_ctrls() {
	local c l=''
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c" ] && l="$l${l:+ }${c##*/}"
	done
	echo "$l"
}

# True when the host has no controller.
no_ctrls() {
	! compgen -G '/sys/class/nvme/nvme*' >/dev/null
}

# How many controllers the host has.
nr_ctrls() {
	local l
	read -r -a l <<<"$(host_ctrls)"
	echo ${#l[@]}
}

# Removes every controller of the host and waits (up to 30 s) until they are
# gone.
host_reset() {
	no_ctrls && return
	nvme disconnect-all >/dev/null 2>&1 || true
	wait_for 30 no_ctrls
}

# Connects the host to $NQN at ADDR PORT (the rest: nvme connect options),
# and prints the name of the controller it made (nvmeN).
host_connect() { # ADDR PORT [options]
	local a=$1 p=$2 before c new=''
	shift 2
	before=" $(host_ctrls) "
	nvme connect -t tcp -a "$a" -s "$p" -n "$NQN" "$@" >/tmp/connect.out 2>&1 ||
		{ cat /tmp/connect.out >&2; return 1; }
	for c in $(host_ctrls); do
		[[ $before == *" $c "* ]] || new="$new${new:+ }$c"
	done
	[[ -n $new && $new != *" "* ]] || { echo "nvme connect $*: new controllers: '$new'" >&2; return 1; }
	echo "$new"
}

# Waits for the namespace of controller CTRL and prints its block device
# (with multipath, nvme-core's head /dev/nvmeSn1 of the path nvmeScCn1).
host_ns() { # CTRL
	local i p n
	for ((i = 0; i < 150; i++)); do
		for p in /sys/class/nvme/"$1"/nvme*n1; do
			[ -e "$p" ] || continue
			n=${p##*/}
			n=${n/c[0-9]*n/n}
			[ -b "/dev/$n" ] && { echo "/dev/$n"; return 0; }
		done
		sleep 0.2
	done
	echo "$1: no namespace appeared" >&2
	return 1
}

# Attribute ATTR of controller CTRL (/sys/class/nvme/CTRL/ATTR).
attr() { # CTRL ATTR
	local v
	read -r v <"/sys/class/nvme/$1/$2" || return 1
	echo "$v"
}

# Fails unless attribute ATTR of CTRL is VALUE.
attr_is() { # CTRL ATTR VALUE
	local v
	read -r v <"/sys/class/nvme/$1/$2" || fail "$1 has no $2"
	[ "$v" = "$3" ] || fail "$1's $2 is '$v', expected '$3'"
}

# Fails unless CTRL is gone within SECS seconds, and its namespace's device
# DEV with it (if given).
gone_within() { # SECS CTRL [DEV]
	wait_for "$1" test ! -e "/sys/class/nvme/$2" || fail "$2 still there $1 s later ($(attr "$2" state 2>&1))"
	[ -z "${3:-}" ] || wait_for "$1" test ! -b "$3" || fail "$3 still there $1 s after $2 went"
}

# A small direct write, read back and compared, on DEV.
small_io() { # DEV
	[ -s /tmp/small ] || head -c 1M /dev/urandom >/tmp/small
	dd if=/tmp/small of="$1" bs=64k oflag=direct status=none || fail "a write to $1 failed"
	dd if="$1" of=/tmp/small.back bs=64k count=16 iflag=direct status=none || fail "a read from $1 failed"
	cmp -s /tmp/small /tmp/small.back || fail "the data read back from $1 differs from what was written"
}

# rmmod nvme_tcp with live controllers: the module unloads, every controller
# goes. On a kernel with lockdep, the C host's sockets each pin the module
# (nvme_tcp_reclassify_socket gives them lock classes of its own, and
# sock_lock_init_class_and_name() takes a module reference for them until the
# socket is freed), so there rmmod is refused while a controller lives: then
# the controllers must be left as they were (live), and once they are
# disconnected the module unloads.
unload_live() {
	local c
	timeout 60 rmmod nvme_tcp 2>/tmp/rmmod.err && return
	cat /tmp/rmmod.err
	[ -e /proc/lockdep ] || fail "rmmod nvme_tcp with live controllers failed or hung: $(cat /tmp/rmmod.err)"
	grep -q 'in use' /tmp/rmmod.err || fail "rmmod nvme_tcp with live controllers failed or hung: $(cat /tmp/rmmod.err)"
	echo "lockdep: rmmod refused with live controllers (module refcnt $(cat /sys/module/nvme_tcp/refcnt)); disconnecting them first"
	for c in $(host_ctrls); do attr_is "$c" state live; done
	nvme disconnect-all >/dev/null || fail "disconnect-all failed"
	wait_for 30 no_ctrls || fail "controllers left after disconnect-all: $(host_ctrls)"
	timeout 60 rmmod nvme_tcp || fail "rmmod nvme_tcp failed once the controllers were gone"
}

# Loads the target of pairing P (c-target: the stock C nvmet-tcp; our-target:
# ours) and exports null_blk as $NQN on 127.0.0.1:4420 (port 1).
target_load() { # P
	case $1 in
	c-target)
		load_stock target/nvmet-tcp
		if is_ours nvmet_tcp; then fail "the target is not the stock one"; fi
		;;
	our-target)
		modprobe nvmet_tcp
		is_ours nvmet_tcp || fail "nvmet_tcp is not ours"
		;;
	*) fail "no pairing $1" ;;
	esac
	target_setup 127.0.0.1 4420
	PAIRING=$1
}

# Ends the pairing: the host's controllers, the target's configfs, the target.
target_unload() {
	host_reset || fail "$PAIRING: the host's controllers did not go: $(host_ctrls)"
	sh "$REPO/samples/nvmet-tcp-teardown.sh"
	wait_for 10 rmmod nvmet_tcp || fail "$PAIRING: rmmod nvmet_tcp failed"
	PAIRING=
}

# check NAME FUNCTION [ARG...]: runs FUNCTION in a subshell with errexit and
# reports `PASS <pairing>:NAME` or `FAIL <pairing>:NAME: why` (a `fail`'s
# reason, or the command that failed). Whatever the check left connected is
# disconnected after it; the host is loaded again if the check unloaded it.
# A failed check does not stop the test: the next one runs, and host_done
# fails the test at its end.
check() { # NAME FUNCTION [ARG...]
	local name=${PAIRING:+$PAIRING:}$1 rc why
	shift
	rm -f /tmp/check.why
	echo "nvme-tcp-rs: check $name" >/dev/kmsg
	set +e
	(
		set -eE
		# shellcheck disable=SC2317
		fail() {
			echo "$*" >/tmp/check.why
			echo "FAILED: $name: $*" >&2
			exit 1
		}
		trap 'echo "line $LINENO: $BASH_COMMAND (status $?)" >/tmp/check.why' ERR
		"$@"
	)
	rc=$?
	set -e
	host_reset || fail "$name: the host's controllers did not go after the check: $(host_ctrls)"
	host_load
	if [ $rc = 0 ]; then
		echo "PASS $name"
	else
		why=$(cat /tmp/check.why 2>/dev/null || echo "exit $rc")
		echo "FAIL $name: $why"
		FAILED_CHECKS="$FAILED_CHECKS $name"
	fi
}

# Ends a host test: the host unloaded, the sniffer stopped; fails the test if
# a check failed.
host_done() {
	sniff_stop
	host_reset || true
	rmmod nvme_tcp 2>/dev/null || true
	[ -z "$FAILED_CHECKS" ] || fail "failed:$FAILED_CHECKS"
}

# The wire: tests/vm/sniff-connects.py reports each TCP connection to port
# 4420 (the ICReq's digests and TOS, the Connect command's fields) in
# /tmp/sniff.out; sniff_mark counts its lines before a connect, wire MARK N
# waits for the N connections made since. Their lines, in /tmp/wire:
#   conn SRC SPORT tos T icreq hdgst H ddgst D connect qid Q sqsize S cattr C kato K flags F
# ($2 SRC, $5 T, $8 H, $10 D, $13 Q, $15 S, $17 C, $19 K, $21 F for awk).
sniff_start() {
	python3 "$REPO/tests/vm/sniff-connects.py" 4420 >/tmp/sniff.out 2>&1 &
	SNIFF_PID=$!
	wait_for 60 grep -qx ready /tmp/sniff.out || fail "the sniffer did not start: $(cat /tmp/sniff.out)"
}

sniff_stop() {
	[ -z "$SNIFF_PID" ] && return
	kill "$SNIFF_PID" 2>/dev/null || true
	wait "$SNIFF_PID" 2>/dev/null || true
	SNIFF_PID=
}

sniff_mark() {
	local l
	mapfile -t l </tmp/sniff.out
	echo ${#l[@]}
}

# The lines of connections since MARK, into /tmp/wire; true if N or more.
wire_read() { # MARK N
	local l n=0
	mapfile -t -s "$1" l </tmp/sniff.out
	: >/tmp/wire
	for l in "${l[@]}"; do
		[[ $l == conn\ * ]] || continue
		printf '%s\n' "$l" >>/tmp/wire
		n=$((n + 1))
	done
	[ $n -ge "$2" ]
}

# Waits for the N connections made since MARK and puts their lines in
# /tmp/wire; fails unless there are exactly N, one for each queue 0 to N-1.
wire() { # MARK N
	local f n=0 qids='' q
	wait_for 15 wire_read "$1" "$2" || true
	sleep 0.2
	wire_read "$1" "$2" || true
	while read -r -a f; do
		n=$((n + 1))
		qids="$qids ${f[12]:-?}"
	done </tmp/wire
	[ "$n" = "$2" ] || { cat /tmp/wire >&2; fail "the wire shows $n connections, expected $2"; }
	for ((q = 0; q < $2; q++)); do
		[[ " $qids " == *" $q "* ]] || { cat /tmp/wire >&2; fail "the wire's Connect commands are for queues$qids, expected 0 to $(($2 - 1))"; }
	done
}

# Fails unless every connection since MARK (N: queues 0 to N-1) satisfies
# the awk condition COND; WHAT says what COND checks.
wire_all() { # MARK N COND WHAT
	wire "$1" "$2"
	awk "!($3) { bad = 1 } END { exit bad }" /tmp/wire ||
		{ cat /tmp/wire >&2; fail "on the wire, not every connection has $4"; }
}
