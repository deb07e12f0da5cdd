# SPDX-License-Identifier: GPL-2.0
# Teardown while the stock C host does I/O: the port goes away and comes back
# (the host reconnects and fio finishes with verified data), the namespace is
# disabled and re-enabled, and the module unloads with a controller still
# trying to reconnect once its port is gone.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
target_setup 127.0.0.1 4420
dev=$(connect 127.0.0.1 4420 --reconnect-delay=1 --ctrl-loss-tmo=60) || fail "connect failed"
ctrl=$(basename "${dev%n1}")

# 1. Port removal in the middle of fio; the port comes back 3 s later.
fio_verify "$dev" --rw=randwrite --bs=16k --iodepth=16 --time_based --runtime=20 --verify_backlog=32 --size=32m >/tmp/bg.out 2>&1 &
fio_pid=$!
sleep 4
remove_port 1
wait_for 15 sh -c "grep -qv live /sys/class/nvme/$ctrl/state" || fail "the host did not notice the port going away"
sleep 3
add_port 1 127.0.0.1 4420
wait_for 30 sh -c "grep -qx live /sys/class/nvme/$ctrl/state" || fail "the host did not reconnect: $(cat /sys/class/nvme/$ctrl/state)"
wait $fio_pid || fail "fio across the port removal: $(tail -n 20 /tmp/bg.out)"
echo "PASS port-removal-during-io"

# 2. The namespace is disabled under I/O (which then fails, as it must), and
#    comes back.
fio --name=ns --filename="$dev" --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth=16 \
	--time_based --runtime=8 --output=/dev/null >/dev/null 2>&1 &
fio_pid=$!
sleep 2
echo 0 >"$CFS/subsystems/$NQN/namespaces/1/enable"
sleep 2
echo 1 >"$CFS/subsystems/$NQN/namespaces/1/enable"
wait $fio_pid || true
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
wait $fio_pid || true
nvme disconnect -n "$NQN" >/dev/null 2>&1 || true
echo "PASS unload-with-live-controller"
