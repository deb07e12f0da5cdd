# SPDX-License-Identifier: GPL-2.0
# Our host against the stock C target: as host-ours-fio-verify (tests/vm/host/fio-verify.sh).
PAIRINGS=c-target
. "$(dirname "$0")/host/fio-verify.sh"
