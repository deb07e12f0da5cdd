# SPDX-License-Identifier: GPL-2.0
# fio with crc32c verification through the host (ours; NVME_TCP_HOST=stock:
# the C one) against the stock C target and ours: block sizes from 512 B to
# 1 MiB, queue depths 1 to 128, reads, writes and mixed, with every digest
# combination; 1, 2 and 4 I/O queues and write queues, fio's jobs spread over
# the CPUs so that every queue carries I/O; 8 MiB direct I/O, which the block
# layer splits; and, against our target (the C target's maxh2cdata is fixed at
# 4 MiB), maxh2cdata lowered to 8 KiB, so the host must send each write in
# H2CData PDUs of at most 8 KiB (our target ends a connection that sends
# more). Every job ends with zero errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/host-lib.sh"

CPUS=$(nproc)
# The jobs (sizes scaled by FIO_SCALE).
region=$(fio_scaled --size=2m)
declare -A JOBS=(
	[A]="--rw=randrw --bs=512 --iodepth=1 --size=1m"   # in-capsule writes
	[B]="--rw=randrw --bs=4k --iodepth=32"
	[C]="--rw=randwrite --bs=64k --iodepth=8"          # an R2T for each write
	[D]="--rw=write --bs=1m --iodepth=4 --size=16m"
	[E]="--rw=randrw --bs=4k --iodepth=128 --size=8m"
	# Four jobs, one a CPU (so over every queue), each in a region of its own.
	[F]="--rw=randrw --bs=16k --iodepth=16 --size=2m --numjobs=4 --offset_increment=${region#--size=} --cpus_allowed=0-$((CPUS - 1)) --cpus_allowed_policy=split --group_reporting"
	[G]="--rw=write --bs=8m --iodepth=2 --size=32m"
)

# The JOBS named, one after the other in one fio (an exec costs the debug
# kernel dearly), as lib.sh's fio_verify runs one: crc32c verification,
# sizes scaled by FIO_SCALE; every job must end without error.
fio_jobs() { # DEV JOB...
	local dev=$1 j opts args=()
	shift
	for j in "$@"; do
		# shellcheck disable=SC2086
		mapfile -t opts < <(fio_scaled --size=8m ${JOBS[$j]})
		args+=(--name="$j" --stonewall "${opts[@]}")
	done
	fio --filename="$dev" --ioengine=libaio --direct=1 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--output-format=terse --terse-version=3 "${args[@]}" >/tmp/fio.out 2>&1 ||
		{ cat /tmp/fio.out; return 1; }
	# terse v3: a result line per job; field 5 is its error.
	awk -F';' -v n=$# '/^3;fio-/ { r++; if ($5 != 0) bad = 1 } END { exit bad || r != n }' /tmp/fio.out ||
		{ cat /tmp/fio.out; return 1; }
}

# Connects with OPTS (nvme connect options, split on spaces), checks the
# queue count (WANT, if not empty) and runs the JOBS named on the namespace.
run() { # "OPTS" WANT JOB...
	local copts=$1 want=$2 c dev
	shift 2
	# shellcheck disable=SC2086
	c=$(host_connect 127.0.0.1 4420 $copts) || fail "connect $copts failed"
	dev=$(host_ns "$c") || fail "no namespace"
	[ -z "$want" ] || attr_is "$c" queue_count "$want"
	fio_jobs "$dev" "$@" || fail "jobs $* with '$copts'"
	echo "'$copts': jobs $* verified"
	nvme disconnect -d "$c" >/dev/null || fail "disconnect failed"
	gone_within 10 "$c" "$dev"
}

# Its arguments on the stock kernel, nothing on the debug one.
stock_only() {
	[ "$DEBUG_KERNEL" = 1 ] || echo "$@"
}

# No digests and both run every job (but B on the debug kernel: E is random
# 4 KiB too); header or data digest alone, one in-capsule (but on the debug
# kernel) and one R2T job (c-host-fio-verify runs the whole list for each
# with the C host).
# shellcheck disable=SC2046
f_none() { run "" $((CPUS + 1)) A $(stock_only B) C D; }
# shellcheck disable=SC2046
f_hdgst() { run "--hdr-digest" "" $(stock_only A) C; }
# shellcheck disable=SC2046
f_ddgst() { run "--data-digest" "" $(stock_only A) C; }
# shellcheck disable=SC2046
f_both() { run "--hdr-digest --data-digest" "" A $(stock_only B) C D; }
f_qd128() { run "--data-digest" "" E; }
f_queues() { # N: I/O queues
	run "--nr-io-queues=$1" $(($1 < CPUS ? $1 + 1 : CPUS + 1)) F
}
f_write_queues() { run "--nr-io-queues=2 --nr-write-queues=2" 5 F; }

# 8 MiB direct writes and reads: over the queue's max_sectors_kb, so the
# block layer splits each; fio's (on the stock kernel) and a dd of random
# data read back.
f_8m() {
	local c dev kb
	c=$(host_connect 127.0.0.1 4420) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	kb=$(cat "/sys/block/${dev#/dev/}/queue/max_sectors_kb")
	echo "max_sectors_kb $kb, max_hw_sectors_kb $(cat "/sys/block/${dev#/dev/}/queue/max_hw_sectors_kb")"
	[ "$kb" -lt 8192 ] || fail "max_sectors_kb is $kb: an 8 MiB I/O would not be split"
	[ "$DEBUG_KERNEL" = 1 ] || fio_jobs "$dev" G || fail "8 MiB fio job"
	head -c 8M /dev/urandom >/tmp/8m
	dd if=/tmp/8m of="$dev" bs=8M count=1 oflag=direct status=none || fail "an 8 MiB direct write failed"
	dd if="$dev" of=/tmp/8m.back bs=8M count=1 iflag=direct status=none || fail "an 8 MiB direct read failed"
	cmp -s /tmp/8m /tmp/8m.back || fail "the 8 MiB read back differs from what was written"
	rm -f /tmp/8m /tmp/8m.back
}

# Our target's maxh2cdata at 8 KiB (its ICResp says so; a larger H2CData PDU
# ends the connection): writes of 64 KiB and (but on the debug kernel) 1 MiB,
# with data digests.
f_maxh2cdata() {
	local m
	echo 8192 >/sys/module/nvmet_tcp/parameters/max_h2c_data
	m=$(klog_mark "maxh2cdata 8k")
	# shellcheck disable=SC2046
	run "--data-digest" "" C $(stock_only D)
	if klog "$m" | grep -E 'nvmet_tcp: .*closing'; then
		fail "our target closed a connection"
	fi
}

host_load
for p in $PAIRINGS; do
	target_load "$p"
	check no-digests f_none
	check hdgst f_hdgst
	check ddgst f_ddgst
	check hdgst+ddgst f_both
	check qd128 f_qd128
	check io-queues-1 f_queues 1
	check io-queues-2 f_queues 2
	check io-queues-4 f_queues 4
	check write-queues f_write_queues
	check 8m-direct f_8m
	if [ "$p" = our-target ]; then
		h2c=$(cat /sys/module/nvmet_tcp/parameters/max_h2c_data)
		check maxh2cdata-8k f_maxh2cdata
		echo "$h2c" >/sys/module/nvmet_tcp/parameters/max_h2c_data
	fi
	target_unload
done
host_done
