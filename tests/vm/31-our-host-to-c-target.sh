# SPDX-License-Identifier: GPL-2.0
# Our host against the stock C target: a controller with its namespace, with
# and without digests, I/O verified; a closed port fails quickly with a reason.
. "$(dirname "$0")/lib.sh"

load_stock target/nvmet-tcp
is_ours nvmet_tcp && fail "the target is not the stock one"
target_setup 127.0.0.1 4420
modprobe nvme_tcp
is_ours nvme_tcp || fail "nvme_tcp is not ours"
for digests in "" "--hdr-digest --data-digest"; do
	name=connect${digests:+-hdgst+ddgst}
	# shellcheck disable=SC2086
	dev=$(connect 127.0.0.1 4420 $digests) || fail "$name: no namespace"
	[ "$(cat /sys/class/nvme/nvme0/transport)" = tcp ] || fail "$name: transport"
	[ "$(cat /sys/class/nvme/nvme0/state)" = live ] || fail "$name: state"
	fio_verify "$dev" --rw=randrw --bs=4k --iodepth=16 || fail "$name: fio"
	nvme disconnect -n "$NQN" >/dev/null || fail "$name: disconnect"
	echo "PASS $name"
done
# Nothing listens here: the connect fails with a reason, quickly.
m=$(klog_mark "closed port")
if nvme connect -t tcp -a 127.0.0.1 -s 4999 -n "$NQN" 2>/dev/null; then fail "connect to a closed port succeeded"; fi
klog "$m" | grep -q 'queue 0 (127.0.0.1:4999): failed to connect' || fail "no reason logged for the refused connection"
echo "PASS closed-port"
rmmod nvme_tcp
