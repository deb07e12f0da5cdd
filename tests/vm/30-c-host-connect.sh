# SPDX-License-Identifier: GPL-2.0
# The stock C host against our target: connect with 1, 2, 4 and more I/O
# queues than CPUs (the host caps them; the debug suite's guest has 4), nvme list, id-ctrl, I/O, disconnect and
# reconnect; discovery and connect-all through our port.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
is_ours nvme_tcp && fail "the host is not the stock one"
target_setup 127.0.0.1 4420
cpus=$(nproc)
for q in 1 2 4 8; do
	m=$(klog_mark "q=$q")
	nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --nr-io-queues=$q >/dev/null
	dev=$(wait_ns) || fail "q=$q: no namespace appeared"
	want=$((q < cpus ? q : cpus))
	klog "$m" | grep -q "creating $want I/O queues" || fail "q=$q: expected $want I/O queues: $(klog "$m" | grep 'I/O queues')"
	[ "$(cat "/sys/class/nvme/$(basename "${dev%n1}")/queue_count")" = $((want + 1)) ] ||
		fail "q=$q: queue_count $(cat "/sys/class/nvme/$(basename "${dev%n1}")/queue_count"), expected $((want + 1))"
	nvme list | grep -q "$dev" || fail "q=$q: nvme list does not show $dev"
	nvme id-ctrl "${dev%n1}" | grep -q "^subnqn *: $NQN" || fail "q=$q: id-ctrl does not report $NQN"
	dd if="$dev" of=/dev/null bs=4k count=256 iflag=direct status=none || fail "q=$q: read failed"
	dd if=/dev/zero of="$dev" bs=64k count=16 oflag=direct status=none || fail "q=$q: write failed"
	nvme disconnect -n "$NQN" >/dev/null || fail "q=$q: disconnect failed"
	wait_for 10 sh -c "! test -b $dev" || fail "q=$q: $dev still there after disconnect"
	echo "PASS connect-io-queues-$q"
done

out=$(nvme discover -t tcp -a 127.0.0.1 -s 4420) || fail "discover failed"
echo "$out" | grep -qE "subnqn: +$NQN" || fail "discovery log lacks $NQN: $out"
echo "$out" | grep -qE "trsvcid: +4420" || fail "discovery log lacks the port: $out"
echo "PASS discover"

nvme connect-all -t tcp -a 127.0.0.1 -s 4420 >/dev/null || fail "connect-all failed"
dev=$(wait_ns) || fail "connect-all: no namespace appeared"
nvme disconnect-all >/dev/null
wait_for 10 sh -c "! test -b $dev" || fail "connect-all: $dev still there after disconnect-all"
echo "PASS connect-all"
