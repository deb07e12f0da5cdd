# SPDX-License-Identifier: GPL-2.0
# Our host against our target: disconnect under I/O, unload with live controllers, port removal (tests/vm/host/teardown.sh).
PAIRINGS=our-target
. "$(dirname "$0")/host/teardown.sh"
