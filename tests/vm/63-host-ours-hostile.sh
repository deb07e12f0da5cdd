# SPDX-License-Identifier: GPL-2.0
# Our host against a misbehaving target: the test peer's proxy in front of our target (tests/vm/host/hostile-target.sh).
HOSTILE_TARGET=ours
. "$(dirname "$0")/host/hostile-target.sh"
