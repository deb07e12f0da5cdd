# SPDX-License-Identifier: GPL-2.0
# The seed-style configfs recipe: enabling a port with addr_trtype tcp loads
# our nvmet_tcp by itself ("nvmet-transport-3"), which listens on the port's
# address; while the port is enabled the module is in use, as the C one is.
. "$(dirname "$0")/lib.sh"

[ ! -d /sys/module/nvmet_tcp ] || fail "nvmet_tcp loaded before the test"
target_setup 127.0.0.1 4420
[ -d /sys/module/nvmet_tcp ] || fail "enabling the port did not load nvmet_tcp"
is_ours nvmet_tcp || fail "the port loaded the stock nvmet-tcp, not ours"
wait_for 5 listening 127.0.0.1:4420 || fail "nothing listens on 127.0.0.1:4420"
klog | grep -q 'nvmet_tcp: enabling port 1 (127.0.0.1:4420)' || fail "no 'enabling port' line"
if rmmod nvmet_tcp 2>/dev/null; then fail "rmmod succeeded with the port enabled"; fi
remove_port 1
wait_for 5 sh -c '! ss -Hltn "sport = :4420" | grep -q .' || fail "still listening after the port was removed"
rmmod nvmet_tcp
