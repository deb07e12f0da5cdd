#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Removes what nvmet-tcp-setup.sh made: every port, subsystem and namespace
# under nvmet's configfs, in the order configfs requires.
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
for subsys in "$CFS"/subsystems/*; do [ -d "$subsys" ] && rmdir "$subsys"; done
exit 0
