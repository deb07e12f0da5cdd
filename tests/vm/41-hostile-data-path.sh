# SPDX-License-Identifier: GPL-2.0
# Protocol violations in the middle of the data path (a peer with a live
# controller and a write in flight), and header/data digest errors, while the
# stock C host runs fio with verification on its own controller. Each case
# ends only the peer's connection (its controller is torn down); the C host's
# I/O never fails; the module unloads afterwards.
. "$(dirname "$0")/lib.sh"
need_peer

load_stock host/nvme-tcp
target_setup 127.0.0.1 4420
dev=$(connect 127.0.0.1 4420) || fail "C host connect failed"
# Writes verified as they go (verify_backlog), from before the first case to
# after the last, over 128 MiB of the device; read back and checked again
# afterwards.
JOB=(--bs=16k --iodepth=8 --size=128m)
fio_timed_writes "$dev" "${JOB[@]}" >/tmp/bg.out 2>&1 &
fio_pid=$!
sleep 2
# The cases past the handshake (40-hostile-icreq runs the others).
cases=$("$PEER" hostile --list | awk '{print $1}' | grep -vE '^(icreq|header|unknown|c2h|capsule|second)')
# shellcheck disable=SC2086
hostile_cases 127.0.0.1 4420 --nqn "$NQN" $cases
kill -0 $fio_pid 2>/dev/null || fail "fio on the C host ended during the hostile cases: $(cat /tmp/bg.out)"
fio_stop $fio_pid || fail "fio on the C host failed: $(tail -n 20 /tmp/bg.out)"
fio_verify_after "$dev" "${JOB[@]}" || fail "the C host's data did not verify after the job"
echo "PASS concurrent-fio-verify"
# Every case that ended a connection was logged, naming it. Not by us: the
# refused commands' connections stay, and end quietly when the peer leaves;
# a reset is the host's own doing; an expired keep-alive is nvmet's to
# report, and it does.
logged_cases inline-refused mdts-exceeded admin-sqsize-too-large rst-during-data keep-alive-expiry
klog | grep -qE "nvmet: ctrl [0-9]+ keep-alive timer \([0-9]+ seconds\) expired" ||
	fail "nvmet did not report the peer's expired keep-alive"
nvme disconnect -n "$NQN" >/dev/null || fail "disconnect failed"
remove_port 1
rmmod nvmet_tcp || fail "nvmet_tcp does not unload after the hostile cases"
