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
for p in 4 3 2 1; do remove_port $p; done
