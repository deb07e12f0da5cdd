#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Exports a block device over NVMe/TCP with nvmet's configfs, the seed-style
# recipe. Enabling the port loads the transport module for `tcp` by itself
# (nvmet requests "nvmet-transport-3", which is nvmet_tcp).
#
#   samples/nvmet-tcp-setup.sh DEVICE [NQN] [TRADDR] [TRSVCID] [PORTID]
#   e.g. modprobe null_blk nr_devices=1 && samples/nvmet-tcp-setup.sh /dev/nullb0
#
# Use an IPv6 TRADDR (e.g. ::1) for an IPv6 port. Undo with nvmet-tcp-teardown.sh.
set -eu
DEVICE=$1
NQN=${2:-nqn.2026-11.io.nvme-tcp-rs:demo}
TRADDR=${3:-127.0.0.1}
TRSVCID=${4:-4420}
PORTID=${5:-1}
case $TRADDR in *:*) ADRFAM=ipv6 ;; *) ADRFAM=ipv4 ;; esac

modprobe nvmet
CFS=/sys/kernel/config/nvmet
mkdir "$CFS/subsystems/$NQN"
echo 1 >"$CFS/subsystems/$NQN/attr_allow_any_host"
mkdir "$CFS/subsystems/$NQN/namespaces/1"
echo "$DEVICE" >"$CFS/subsystems/$NQN/namespaces/1/device_path"
echo 1 >"$CFS/subsystems/$NQN/namespaces/1/enable"

mkdir "$CFS/ports/$PORTID"
echo tcp >"$CFS/ports/$PORTID/addr_trtype"
echo "$ADRFAM" >"$CFS/ports/$PORTID/addr_adrfam"
echo "$TRADDR" >"$CFS/ports/$PORTID/addr_traddr"
echo "$TRSVCID" >"$CFS/ports/$PORTID/addr_trsvcid"
ln -s "$CFS/subsystems/$NQN" "$CFS/ports/$PORTID/subsystems/$NQN"
echo "exported $DEVICE as $NQN on tcp $TRADDR:$TRSVCID (port $PORTID)"
