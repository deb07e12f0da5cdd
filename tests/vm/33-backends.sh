# SPDX-License-Identifier: GPL-2.0
# Backends other than null_blk behind our target, through the stock C host,
# with fio verifying: a RAM disk (brd), and a file namespace (nvmet's file
# backend) with buffered I/O, whose commands complete later from nvmet's own
# workqueue rather than within execute, and with direct I/O.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
modprobe nvmet
modprobe brd rd_nr=1 rd_size=65536 max_part=0 || fail "no brd module"
[ -b /dev/ram0 ] || fail "brd made no /dev/ram0"
# The file on a tmpfs of its own: the guest's root (the host's tree through
# 9p) reports no usable block size for nvmet's file backend.
DIR=/run/nvmet-backends
mkdir -p "$DIR"
mount -t tmpfs -o size=80m tmpfs "$DIR"
trap 'sh "$REPO/samples/nvmet-tcp-teardown.sh"; umount "$DIR"' EXIT
FILE=$DIR/ns.img
truncate -s 64M "$FILE"

# Writes VALUE to configfs attribute FILE and reads it back.
set_attr() { # FILE VALUE
	echo "$2" >"$1"
	[ "$(cat "$1")" = "$2" ] || fail "$1 reads back '$(cat "$1")', not '$2'"
}

# Exports DEVICE as namespace 1 of $NQN on 127.0.0.1:4420; extra arguments
# are namespace attributes as NAME=VALUE, set before it is enabled. Every
# attribute is read back.
export_ns() { # DEVICE [ATTR=VALUE...]
	local s=$CFS/subsystems/$NQN a
	mkdir "$s"
	set_attr "$s/attr_allow_any_host" 1
	mkdir "$s/namespaces/1"
	set_attr "$s/namespaces/1/device_path" "$1"
	shift
	for a in "$@"; do
		set_attr "$s/namespaces/1/${a%%=*}" "${a#*=}"
	done
	set_attr "$s/namespaces/1/enable" 1
	add_port 1 127.0.0.1 4420
}

backend() { # LABEL DEVICE [ATTR=VALUE...]
	local label=$1 dev
	shift
	export_ns "$@"
	is_ours nvmet_tcp || fail "$label: the target is not ours"
	dev=$(connect 127.0.0.1 4420 --data-digest) || fail "$label: connect failed"
	fio_verify "$dev" --rw=randrw --bs=4k --iodepth=32 || fail "$label: 4 KiB QD32"
	fio_verify "$dev" --rw=randwrite --bs=128k --iodepth=8 --size=32m || fail "$label: 128 KiB QD8"
	fio_verify "$dev" --rw=randrw --bs=4k --iodepth=1 --size=2m || fail "$label: 4 KiB QD1"
	nvme disconnect -n "$NQN" >/dev/null
	wait_for 10 sh -c "! test -b $dev" || fail "$label: $dev still there after disconnect"
	sh "$REPO/samples/nvmet-tcp-teardown.sh"
	echo "PASS $label"
}

backend brd /dev/ram0
backend file-buffered "$FILE" buffered_io=1
backend file-direct "$FILE" buffered_io=0
rmmod brd
