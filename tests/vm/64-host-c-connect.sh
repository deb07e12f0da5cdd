# SPDX-License-Identifier: GPL-2.0
# Our host against the stock C target: as host-ours-connect (tests/vm/host/connect.sh).
PAIRINGS=c-target
. "$(dirname "$0")/host/connect.sh"
