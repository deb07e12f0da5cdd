# SPDX-License-Identifier: GPL-2.0
# Teardown with connections open: port removal closes them and frees the
# queues; the module then unloads. Repeated, to catch leaks and races.
. "$(dirname "$0")/lib.sh"

target_setup 127.0.0.1 4420
for round in 1 2 3; do
	[ $round -eq 1 ] || add_port 1 127.0.0.1 4420
	pids=
	for i in 1 2 3 4; do
		"$PEER" icreq 127.0.0.1 4420 --hold 60 >/dev/null 2>&1 &
		pids="$pids $!"
	done
	# Half-open ones too: connected, no ICReq yet.
	exec 3<>/dev/tcp/127.0.0.1/4420
	sleep 1
	remove_port 1
	for p in $pids; do wait "$p" || fail "round $round: a held connection was not closed cleanly"; done
	exec 3<&-
done
rmmod nvmet_tcp
[ ! -d /sys/module/nvmet_tcp ] || fail "nvmet_tcp still loaded"
