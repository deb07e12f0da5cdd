# SPDX-License-Identifier: GPL-2.0
# Our host against our target: fio verification over digests, queue depths, queue counts (tests/vm/host/fio-verify.sh).
PAIRINGS=our-target
. "$(dirname "$0")/host/fio-verify.sh"
