# SPDX-License-Identifier: GPL-2.0
# Teardown while the stock C host does I/O: the port goes away and comes back
# five times (the host, with a 1 s keep-alive and reconnect delay, is live
# again each time, and fio finishes with verified data), the namespace is
# disabled and re-enabled, and the module unloads with a controller still
# trying to reconnect once its port is gone.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
target_setup 127.0.0.1 4420
dev=$(connect 127.0.0.1 4420 --keep-alive-tmo=1 --reconnect-delay=1 --ctrl-loss-tmo=60) || fail "connect failed"
ctrl=$(basename "${dev%n1}")

# 1. The port is removed and re-added five times in the middle of fio: each
#    time the host notices, reconnects and is live again. Every block written
#    is read back and checked after the job.
JOB=(--bs=16k --iodepth=16 --size=128m)
fio_timed_writes "$dev" "${JOB[@]}" >/tmp/bg.out 2>&1 &
fio_pid=$!
sleep 4
for i in 1 2 3 4 5; do
	remove_port 1
	wait_for 15 sh -c "grep -qv live /sys/class/nvme/$ctrl/state" || fail "round $i: the host did not notice the port going away"
	sleep 1
	add_port 1 127.0.0.1 4420
	wait_for 30 sh -c "grep -qx live /sys/class/nvme/$ctrl/state" ||
		fail "round $i: the host did not reconnect: $(cat /sys/class/nvme/$ctrl/state)"
	kill -0 $fio_pid 2>/dev/null || fail "round $i: fio ended early: $(tail -n 20 /tmp/bg.out)"
	echo "round $i: port removed, host back to live"
	sleep 2
done
fio_stop $fio_pid || fail "fio across the port removals: $(tail -n 20 /tmp/bg.out)"
fio_verify_after "$dev" "${JOB[@]}" || fail "data written across the port removals does not verify"
echo "PASS port-removal-during-io"

# 2. The namespace is disabled under I/O: the host loses it and the I/O
#    fails, as it must; re-enabled, it comes back.
ns=$CFS/subsystems/$NQN/namespaces/1
fio --name=ns --filename="$dev" --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=16 \
	--time_based --runtime=30 --output=/dev/null >/dev/null 2>&1 &
fio_pid=$!
sleep 2
echo 0 >"$ns/enable"
[ "$(cat "$ns/enable")" = 0 ] || fail "the namespace is still enabled after writing 0"
wait_for 20 sh -c "! test -b $dev" || fail "the host still has $dev 20 s after its namespace was disabled"
if wait $fio_pid; then fail "fio's reads all succeeded though the namespace was disabled"; fi
echo 1 >"$ns/enable"
[ "$(cat "$ns/enable")" = 1 ] || fail "the namespace did not come back enabled"
wait_for 20 test -b "$dev" || fail "the namespace did not come back"
dd if="$dev" of=/dev/null bs=4k count=64 iflag=direct status=none || fail "no I/O after the namespace came back"
echo "PASS namespace-disable-during-io"

# 3. While the port is enabled the module is in use, as the C one is; once
#    the port is gone it unloads, though the host still tries to reconnect.
if rmmod nvmet_tcp 2>/dev/null; then fail "rmmod succeeded with the port enabled"; fi
fio --name=unload --filename="$dev" --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=8 \
	--time_based --runtime=6 --output=/dev/null >/dev/null 2>&1 &
fio_pid=$!
sleep 2
remove_port 1
rmmod nvmet_tcp || fail "rmmod failed after the port was removed"
nvme disconnect -n "$NQN" >/dev/null || fail "disconnect of the reconnecting controller failed"
# Its reads may succeed or fail depending on when the port went; they must end.
wait $fio_pid || echo "fio ended with an error: its controller was deleted under it"
echo "PASS unload-with-live-controller"
