# SPDX-License-Identifier: GPL-2.0
# The guest has no network device but loopback (no path out of the VM).
. "$(dirname "$0")/lib.sh"
links=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || fail "guest network devices: $links"
