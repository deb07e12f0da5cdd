# SPDX-License-Identifier: GPL-2.0
# The stock C host against our target: the C host validates our ICResp and
# only then sends its first capsule (Fabrics Connect), which our target sees.
# Controller set-up itself is issue #3's work, so the connect fails after that.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
is_ours nvme_tcp && fail "the host is not the stock one"
target_setup 127.0.0.1 4420
for digests in "" "--hdr-digest" "--data-digest" "--hdr-digest --data-digest"; do
	dmesg -C
	# shellcheck disable=SC2086
	if nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" $digests; then
		fail "connect succeeded, but the target cannot set up controllers yet"
	fi
	wait_for 5 sh -c 'dmesg | grep -q "command processing is not implemented yet"' ||
		fail "digests '$digests': the C host never sent a capsule after our ICResp"
	if dmesg | grep -E 'nvme_tcp|nvme nvme' | grep -iE 'icresp|bad|unsupported|digest'; then
		fail "the C host complained about our ICResp"
	fi
	label=$(echo "$digests" | sed 's/--hdr-digest/hdgst/; s/--data-digest/ddgst/; s/ /+/g')
	echo "PASS icresp${label:+-$label}"
done
