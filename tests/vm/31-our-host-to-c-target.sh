# SPDX-License-Identifier: GPL-2.0
# Our host against the stock C target: nvme connect reaches our create_ctrl,
# which connects and completes ICReq/ICResp, then refuses the controller with
# a clear error (controller set-up is issue #3's and #4's work).
. "$(dirname "$0")/lib.sh"

load_stock target/nvmet-tcp
is_ours nvmet_tcp && fail "the target is not the stock one"
target_setup 127.0.0.1 4420
modprobe nvme_tcp
is_ours nvme_tcp || fail "nvme_tcp is not ours"
for digests in "" "--hdr-digest --data-digest"; do
	m=$(klog_mark "digests: $digests")
	# shellcheck disable=SC2086
	if err=$(nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" $digests 2>&1); then
		fail "connect succeeded unexpectedly"
	fi
	echo "nvme connect: $err"
	want="queue 0 (127.0.0.1:4420): ICResp accepted"
	case $digests in *hdr*) want="$want (pfv 0, cpda 0, hdgst 1, ddgst 1" ;; *) want="$want (pfv 0, cpda 0, hdgst 0, ddgst 0" ;; esac
	klog "$m" | grep -qF "$want" || fail "no '$want' in the kernel log"
	klog "$m" | grep -q 'controller setup is not implemented yet' || fail "no reason logged for the refusal"
	echo "PASS icreq${digests:+-hdgst+ddgst}"
done
# Nothing listens here: the connect fails with a reason, quickly.
m=$(klog_mark "closed port")
if nvme connect -t tcp -a 127.0.0.1 -s 4999 -n "$NQN" 2>/dev/null; then fail "connect to a closed port succeeded"; fi
klog "$m" | grep -q 'queue 0 (127.0.0.1:4999): failed to connect' || fail "no reason logged for the refused connection"
rmmod nvme_tcp
