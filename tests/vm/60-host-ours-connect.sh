# SPDX-License-Identifier: GPL-2.0
# Our host against our target: connect, options and sysfs, discovery (tests/vm/host/connect.sh).
PAIRINGS=our-target
. "$(dirname "$0")/host/connect.sh"
