# SPDX-License-Identifier: GPL-2.0
# fio with crc32c verification through the stock C host and our target, with
# every digest combination: block sizes from 512 B (in-capsule writes) to
# 1 MiB (one R2T, one C2HData), queue depths 1 to 128. Then the same with
# maxh2cdata lowered to 8 KiB, so writes arrive in many H2CData PDUs.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
target_setup 127.0.0.1 4420
run_matrix() { # LABEL [nvme connect options]
	local label=$1 dev
	shift
	dev=$(connect 127.0.0.1 4420 "$@") || fail "$label: connect failed"
	fio_verify "$dev" --rw=randrw --bs=512 --iodepth=1 --size=2m || fail "$label: 512 B QD1"
	fio_verify "$dev" --rw=randrw --bs=4k --iodepth=32 || fail "$label: 4 KiB QD32"
	fio_verify "$dev" --rw=randwrite --bs=64k --iodepth=8 || fail "$label: 64 KiB QD8"
	fio_verify "$dev" --rw=write --bs=1m --iodepth=4 --size=16m || fail "$label: 1 MiB QD4"
	nvme disconnect -n "$NQN" >/dev/null
	wait_for 10 sh -c "! test -b $dev"
	echo "PASS $label"
}
run_matrix no-digests
run_matrix hdgst --hdr-digest
run_matrix ddgst --data-digest
run_matrix hdgst+ddgst --hdr-digest --data-digest

dev=$(connect 127.0.0.1 4420 --data-digest) || fail "connect failed"
fio_verify "$dev" --rw=randrw --bs=4k --iodepth=128 --size=16m || fail "4 KiB QD128"
nvme disconnect -n "$NQN" >/dev/null
echo "PASS qd128"

echo 8192 >/sys/module/nvmet_tcp/parameters/max_h2c_data
run_matrix maxh2cdata-8k+ddgst --data-digest
