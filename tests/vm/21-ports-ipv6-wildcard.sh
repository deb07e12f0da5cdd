# SPDX-License-Identifier: GPL-2.0
# Several ports at once: IPv4, IPv6 and the IPv4 and IPv6 wildcards; each
# listens and answers an ICReq.
. "$(dirname "$0")/lib.sh"

target_setup 127.0.0.1 4420 1
add_port 2 ::1 4421
add_port 3 0.0.0.0 4422
add_port 4 :: 4423
wait_for 5 listening '[::1]:4421' || fail "nothing listens on [::1]:4421"
wait_for 5 listening 0.0.0.0:4422 || fail "nothing listens on 0.0.0.0:4422"
# ss shows a dual-stack IPv6 wildcard as *:port.
any6() { listening '[::]:4423' || listening '*:4423'; }
wait_for 5 any6 || fail "nothing listens on [::]:4423"
"$PEER" icreq 127.0.0.1 4420
"$PEER" icreq ::1 4421
"$PEER" icreq 127.0.0.1 4422
"$PEER" icreq ::1 4423 --hdgst --ddgst
# Discovery through a wildcard port reports the address the host reached
# (nvmet's disc_traddr op), not 0.0.0.0.
load_stock host/nvme-tcp
out=$(nvme discover -t tcp -a 127.0.0.1 -s 4422) || fail "discover on the wildcard port failed"
echo "$out"
echo "$out" | grep -A3 -E 'trsvcid: +4422' | grep -qE 'traddr: +127\.0\.0\.1' ||
	fail "the wildcard port's discovery entry lacks traddr 127.0.0.1: $out"
echo "$out" | grep -qE 'traddr: +0\.0\.0\.0' && fail "discovery shows the wildcard address: $out"
for p in 4 3 2 1; do remove_port $p; done
