# SPDX-License-Identifier: GPL-2.0
# Our host against the stock C target: as host-ours-teardown (tests/vm/host/teardown.sh).
PAIRINGS=c-target
. "$(dirname "$0")/host/teardown.sh"
