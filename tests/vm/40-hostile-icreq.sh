# SPDX-License-Identifier: GPL-2.0
# Malformed ICReqs (and PDUs out of sequence) from the test peer: for each,
# our target logs the reason naming queue and peer, sends the C2HTermReq the
# spec asks for, and closes that connection only. A connection held open
# across all cases keeps working; the module unloads cleanly afterwards.
. "$(dirname "$0")/lib.sh"
need_peer

target_setup 127.0.0.1 4420
"$PEER" icreq 127.0.0.1 4420 --hold 60 >/tmp/held.out 2>&1 &
held=$!
sleep 1
# One named result per case (the peer prints "ok NAME: how" / "FAIL NAME: why").
# The cases before and around the handshake (41-hostile-data-path runs the rest).
cases=$("$PEER" hostile --list | awk '{print $1}' | grep -E '^(icreq|header|unknown|c2h|capsule|second)')
# shellcheck disable=SC2086
hostile_cases 127.0.0.1 4420 $cases
# Every refused ICReq was logged with the queue and the peer's address.
logged_cases
# The connection held open throughout is still up, and a new one works.
kill -0 $held 2>/dev/null || fail "the held connection ended: $(cat /tmp/held.out)"
"$PEER" icreq 127.0.0.1 4420 --hdgst
# Removing the port ends the held connection.
remove_port 1
wait $held || fail "held connection: $(cat /tmp/held.out)"
grep -q 'closed by the target' /tmp/held.out || fail "held connection: $(cat /tmp/held.out)"
rmmod nvmet_tcp
