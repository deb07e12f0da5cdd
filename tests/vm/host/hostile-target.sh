# SPDX-License-Identifier: GPL-2.0
# The host against a misbehaving target: the test peer's proxy
# (`nvme-tcp-peer proxy`) sits between the host and a real target (ours, then
# the stock C one), forwards every queue's connection, and on an I/O queue,
# in the middle of fio's verified writes and reads, corrupts one PDU the
# target sends (one case per connect). A case passes when, within a few
# seconds and without a hang, the host ends the association (the corrupted
# connection is closed by the host, its I/O fails, or the controller leaves
# the live state), and our host logs `queue QID (127.0.0.1:4430): reason`.
#
# NVME_TCP_HOST=stock runs the stock C host instead of ours, to check the
# proxy itself: then each case wants the C host's own message for that
# fault (it reconnects afterwards: --ctrl-loss-tmo=2 --reconnect-delay=1 makes
# it give up quickly when it cannot). NVME_TCP_PROXY_DRY=1 makes the proxy
# forward the PDU it would corrupt unchanged: every case must then fail (but
# c2h-bad-offset with the C host, which does not check C2HData offsets).
. "$(dirname "$0")/lib.sh"
need_peer

HOST=${NVME_TCP_HOST:-ours}
PROXY=127.0.0.1:4430
# Suitable PDUs let through before the corrupted one: more than connecting
# (the partition scan) takes, so that the host is live with fio running.
AFTER=${NVME_TCP_PROXY_AFTER:-100}
# Seconds the host has to react once the PDU went out.
REACT=20
DRY=()
[ "${NVME_TCP_PROXY_DRY:-0}" = 1 ] && DRY=(--dry-run)

case $HOST in
stock) load_stock host/nvme-tcp ;;
ours)
	modprobe nvme_tcp
	is_ours nvme_tcp || fail "nvme_tcp is not ours"
	;;
*) fail "NVME_TCP_HOST wants stock or ours, not $HOST" ;;
esac

# CASE: the digests the host asks for, and the stock C host's message for
# the fault ("-": it does not check; then its I/O must go on unharmed).
declare -A OPTS=(
	[bad-header-digest]="--hdr-digest"
	[bad-data-digest]="--data-digest"
	[c2h-unknown-cid]="--hdr-digest --data-digest"
	[c2h-out-of-range]="--hdr-digest --data-digest"
	[c2h-bad-offset]="--hdr-digest --data-digest"
	[r2t-unknown-cid]="--hdr-digest --data-digest"
	[r2t-out-of-range]="--hdr-digest --data-digest"
	[resp-unknown-cid]="--hdr-digest --data-digest"
	[bad-pdu-type]=""
	[bad-hlen]=""
	[truncated]=""
)
declare -A STOCK_SAYS=(
	[bad-header-digest]="header digest error: recv"
	[bad-data-digest]="data digest error: recv"
	[c2h-unknown-cid]="got bad c2hdata.command_id"
	[c2h-out-of-range]="no space in request"
	[c2h-bad-offset]="-"
	[r2t-unknown-cid]="got bad r2t.command_id"
	[r2t-out-of-range]="r2t len [0-9]+ exceeded data len"
	[resp-unknown-cid]="got bad cqe.command_id"
	[bad-pdu-type]="unsupported pdu type"
	[bad-hlen]="has unexpected header length"
	[truncated]="starting error recovery"
)
CASES=$("$PEER" proxy --list | awk '{print $1}')
for c in $CASES; do
	[ -n "${STOCK_SAYS[$c]:-}" ] || fail "the proxy's case $c is not in this test"
done

proxy_pid= fio_pid=
# Ends what a case started: fio (which must end: a hang fails the case, in
# HANG), the controller, the proxy.
end_case() {
	HANG=
	if [ -n "$fio_pid" ]; then
		# A killed process exits only once its in-flight AIO completed.
		kill -KILL "$fio_pid" 2>/dev/null || true
		wait_for 30 sh -c "! kill -0 $fio_pid 2>/dev/null" ||
			HANG="fio still there 30 s after it was killed: its I/O hangs"
		wait "$fio_pid" 2>/dev/null || true
		fio_pid=
	fi
	timeout 30 nvme disconnect -n "$NQN" >/dev/null 2>&1 || true
	wait_for 30 sh -c '! ls /dev/nvme[0-9]*n1 >/dev/null 2>&1' ||
		fail "a controller is left 30 s after disconnect: $(ls /sys/class/nvme/)"
	if [ -n "$proxy_pid" ]; then
		kill "$proxy_pid" 2>/dev/null || true
		wait "$proxy_pid" 2>/dev/null || true
		proxy_pid=
	fi
}

# The proxy's line for connection N, once that connection ended.
ended_line() { # N
	grep -m1 "^connection $1 " /tmp/proxy.out || true
}

# The kernel log since MARK, less the target's lines and the marks.
host_log() { # MARK
	klog "$1" | grep -vE 'nvmet|nvme-tcp-rs: mark' || true
}

# Succeeds, saying what the host did, once it reacted as it should to the
# corrupted PDU on queue QID (connection N of the proxy).
reacted() { # CASE QID N CTRL MARK
	local case=$1 qid=$2 n=$3 ctrl=$4 m=$5 end said
	end=$(ended_line "$n")
	if [ "$HOST" = stock ]; then
		said=$(host_log "$m" | grep -E -m1 "nvme[0-9]+: .*${STOCK_SAYS[$case]}") || return 1
		# Every fault it reports but a data digest ends the association (the
		# proxy's cut ends it anyway).
		case $case:$end in
		bad-data-digest:* | truncated:*) ;;
		*:*"ended: the host "*) ;;
		*) return 1 ;;
		esac
	else
		# Ours: the reason, naming the queue and the peer...
		said=$(host_log "$m" | grep -E -m1 "queue $qid \(${PROXY//./\\.}\): ") || return 1
		# ...and the association ends, or the I/O fails.
		case $end in
		*"ended: the host "*) ;;
		*)
			if kill -0 "$fio_pid" 2>/dev/null && [ "$(cat "/sys/class/nvme/$ctrl/state" 2>/dev/null)" = live ]; then
				return 1
			fi
			;;
		esac
	fi
	echo "the host: ${said#\[*\] }"
	echo "the proxy: ${end:-connection $n still open}"
}

# Runs one case; sets WHY to why it failed (empty: it passed).
one_case() { # CASE
	local case=$1 m dev ctrl line qid n
	WHY=
	m=$(klog_mark "host-hostile-target $case")
	"$PEER" proxy "${PROXY%:*}" "${PROXY#*:}" 127.0.0.1 4420 "$case" --after "$AFTER" "${DRY[@]}" \
		>/tmp/proxy.out 2>/tmp/proxy.err &
	proxy_pid=$!
	wait_for 10 listening "$PROXY" || { WHY="the proxy does not listen: $(cat /tmp/proxy.err)"; return; }
	# shellcheck disable=SC2086
	dev=$(connect "${PROXY%:*}" "${PROXY#*:}" ${OPTS[$case]} --ctrl-loss-tmo=2 --reconnect-delay=1) ||
		{ WHY="connect through the proxy failed"; return; }
	ctrl=$(basename "${dev%n1}")
	if grep -q '^injected' /tmp/proxy.out; then
		WHY="the proxy acted before fio started (connecting took more than $AFTER suitable PDUs)"
		return
	fi
	# What the host logs from here on is about the I/O (our host names the
	# queues it connected in lines of the same form).
	m=$(klog_mark "host-hostile-target $case: fio")
	# 64 KiB writes go by R2T (in-capsule data stops at 16 KiB), verified by
	# reads as they go.
	fio --name=hostile --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite --bs=64k \
		--iodepth=8 --size=64m --verify=crc32c --verify_backlog=16 --verify_fatal=1 \
		--time_based --runtime=120 --output-format=terse --terse-version=3 >/tmp/fio.out 2>&1 &
	fio_pid=$!
	wait_for 60 grep -q '^injected' /tmp/proxy.out ||
		{ WHY="the proxy did not act within 60 s of fio's start: $(cat /tmp/proxy.err)"; return; }
	line=$(grep -m1 '^injected' /tmp/proxy.out)
	echo "$line"
	qid=$(echo "$line" | sed -n 's/^injected [a-z0-9-]* on queue \([0-9]*\) (connection \([0-9]*\).*/\1/p')
	n=$(echo "$line" | sed -n 's/^injected [a-z0-9-]* on queue \([0-9]*\) (connection \([0-9]*\).*/\2/p')
	[ -n "$qid" ] && [ "$qid" -gt 0 ] || { WHY="the proxy acted on no I/O queue"; return; }
	if [ "$HOST:${STOCK_SAYS[$case]}" = stock:- ]; then
		# The C host does not look: its I/O goes on (verified as it goes).
		sleep 5
		if line=$(host_log "$m" | grep -E -m1 'nvme[0-9]+: .*(error|unexpected|bad|failed)'); then
			WHY="the C host complained about something it does not check: $line"
		elif ! kill -0 "$fio_pid" 2>/dev/null; then
			WHY="fio ended: $(tail -n 3 /tmp/fio.out)"
		else
			line=$(ended_line "$n")
			echo "the host: (the C host does not check this) its I/O goes on"
			echo "the proxy: ${line:-connection $n still open}"
		fi
		return
	fi
	wait_for "$REACT" reacted "$case" "$qid" "$n" "$ctrl" "$m" && return
	line=$(ended_line "$n")
	WHY="the host did not react within $REACT s (controller $(cat "/sys/class/nvme/$ctrl/state" 2>/dev/null || echo gone); proxy: ${line:-connection $n still open})"
	host_log "$m" | grep nvme | tail -n 5
}

# Every case against the target set up; sub-results PREFIXCASE.
run_cases() { # PREFIX
	local c
	for c in $CASES; do
		one_case "$c" >/tmp/case.out 2>&1
		end_case
		sed 's/^/  /' /tmp/case.out
		WHY=${HANG:-$WHY}
		if [ -z "$WHY" ]; then
			echo "PASS $1$c"
		else
			echo "FAIL $1$c: $WHY"
		fi
	done
}

# The target: ours, or (HOSTILE_TARGET=c) the stock C one, whose cases are
# reported as c-target-CASE.
if [ "${HOSTILE_TARGET:-ours}" = c ]; then
	load_stock target/nvmet-tcp
	is_ours nvmet_tcp && fail "the target is not the stock one"
	target_setup 127.0.0.1 4420
	run_cases c-target-
else
	target_setup 127.0.0.1 4420
	is_ours nvmet_tcp || fail "the target is not ours"
	run_cases ""
fi
