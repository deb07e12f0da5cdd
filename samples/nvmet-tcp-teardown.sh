#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Removes what nvmet-tcp-setup.sh made: every port, subsystem, namespace and
# host under nvmet's configfs, in the order configfs requires.
set -u
CFS=/sys/kernel/config/nvmet
[ -d "$CFS" ] || exit 0
for link in "$CFS"/ports/*/subsystems/*; do [ -L "$link" ] && rm "$link"; done
for port in "$CFS"/ports/*; do [ -d "$port" ] && rmdir "$port"; done
for ns in "$CFS"/subsystems/*/namespaces/*; do
	[ -d "$ns" ] || continue
	echo 0 >"$ns/enable"
	rmdir "$ns"
done
for link in "$CFS"/subsystems/*/allowed_hosts/*; do [ -L "$link" ] && rm "$link"; done
for subsys in "$CFS"/subsystems/*; do [ -d "$subsys" ] && rmdir "$subsys"; done
for host in "$CFS"/hosts/*; do [ -d "$host" ] && rmdir "$host"; done
exit 0
