# SPDX-License-Identifier: GPL-2.0
# Teardown in the host (ours; NVME_TCP_HOST=stock: the C one), against the
# stock C target and ours: nvme disconnect while fio runs (the controller
# goes, fio ends with its I/O failed, nothing hangs), rmmod with live
# controllers under I/O (every controller goes, the module unloads; on a
# kernel with lockdep the C host's sockets pin the module, so there rmmod may
# be refused while they live: host-lib.sh's unload_live), three rounds of
# load, connect, I/O and unload, and the target's port removed under I/O
# (with --ctrl-loss-tmo=1 --reconnect-delay=1 the host gives up reconnecting
# within seconds: the controller goes and fio's I/O fails).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/host-lib.sh"

# Starts time-based random I/O on DEV in the background (longer than any
# check waits: it can only end early with an error); FIO_PID is fio's.
fio_bg() { # DEV
	fio --name=bg --filename="$1" --ioengine=libaio --direct=1 --rw=randrw --bs=16k --iodepth=16 \
		--time_based --runtime=300 --output=/tmp/bg.out >/dev/null 2>&1 &
	FIO_PID=$!
	sleep 3
	kill -0 "$FIO_PID" 2>/dev/null || fail "fio did not run: $(cat /tmp/bg.out)"
}

# Fails unless fio (FIO_PID) ends within SECS seconds, with an error.
fio_ends_failed() { # SECS
	local rc=0
	wait_for "$1" eval "! kill -0 $FIO_PID 2>/dev/null" ||
		{ kill -9 "$FIO_PID"; fail "fio still runs $1 s after its controller went"; }
	wait "$FIO_PID" || rc=$?
	[ $rc != 0 ] || fail "fio's I/O all succeeded, though its controller went"
	echo "fio ended with status $rc: $(grep -m1 -Ei 'err=|error' /tmp/bg.out || true)"
}

# nvme disconnect under I/O: it returns, the controller goes, fio ends.
t_disconnect_under_io() {
	local c dev
	c=$(host_connect 127.0.0.1 4420) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	fio_bg "$dev"
	timeout 60 nvme disconnect -d "$c" >/dev/null || fail "nvme disconnect under I/O failed or hung"
	gone_within 15 "$c" "$dev"
	fio_ends_failed 30
}

# rmmod nvme_tcp with two live controllers (IPv4, IPv6), one under I/O.
t_rmmod_live() {
	local c4 c6 dev
	c4=$(host_connect 127.0.0.1 4420) || fail "connect failed"
	dev=$(host_ns "$c4") || fail "no namespace"
	c6=$(host_connect ::1 4420) || fail "connect over IPv6 failed"
	fio_bg "$dev"
	unload_live
	[ ! -d /sys/module/nvme_tcp ] || fail "nvme_tcp is still loaded"
	gone_within 10 "$c4" "$dev"
	gone_within 10 "$c6"
	no_ctrls || fail "controllers left: $(host_ctrls)"
	fio_ends_failed 30
}

# Load, connect, I/O, unload with the controller live: three times.
t_reload_loop() {
	local round c dev
	for round in 1 2 3; do
		host_load
		c=$(host_connect 127.0.0.1 4420) || fail "round $round: connect failed"
		dev=$(host_ns "$c") || fail "round $round: no namespace"
		small_io "$dev"
		unload_live
		gone_within 10 "$c" "$dev"
		[ ! -d /sys/module/nvme_tcp ] || fail "round $round: nvme_tcp is still loaded"
		echo "round $round: connected, I/O, unloaded"
	done
}

# The target's port goes away under I/O: the host tries to reconnect, gives
# up after ctrl_loss_tmo (1 s) and removes the controller; fio's I/O fails.
t_port_removed() {
	local c dev t0
	c=$(host_connect 127.0.0.1 4420 --ctrl-loss-tmo=1 --reconnect-delay=1) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	attr_is "$c" ctrl_loss_tmo 1
	attr_is "$c" reconnect_delay 1
	fio_bg "$dev"
	t0=$SECONDS
	remove_port 1
	gone_within 30 "$c" "$dev"
	echo "the controller went $((SECONDS - t0)) s after the port"
	fio_ends_failed 30
	add_port 1 127.0.0.1 4420
}

host_load
for p in $PAIRINGS; do
	target_load "$p"
	add_port 2 ::1 4420
	check disconnect-under-io t_disconnect_under_io
	check rmmod-live-controllers t_rmmod_live
	check reload-loop t_reload_loop
	check port-removed t_port_removed
	target_unload
done
host_done
