# SPDX-License-Identifier: GPL-2.0
# fio with crc32c verification through the stock C host and our target, with
# every digest combination: block sizes from 512 B (in-capsule writes) to
# 1 MiB (one R2T, one C2HData), queue depths 1 to 128. Then the same with
# maxh2cdata lowered to 8 KiB, so writes arrive in many H2CData PDUs.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
target_setup 127.0.0.1 4420
# On the debug kernel (which tools/check runs beside the stock one, where the
# whole matrix runs) only no digests and both digests run every job; the
# other settings run one in-capsule and one R2T job.
run_matrix() { # LABEL [nvme connect options]
	local label=$1 dev all=1
	shift
	case $DEBUG_KERNEL:$label in 1:hdgst | 1:ddgst | 1:maxh2cdata-*) all=0 ;; esac
	dev=$(connect 127.0.0.1 4420 "$@") || fail "$label: connect failed"
	fio_verify "$dev" --rw=randrw --bs=512 --iodepth=1 --size=2m || fail "$label: 512 B QD1"
	[ $all = 0 ] || fio_verify "$dev" --rw=randrw --bs=4k --iodepth=32 || fail "$label: 4 KiB QD32"
	fio_verify "$dev" --rw=randwrite --bs=64k --iodepth=8 || fail "$label: 64 KiB QD8"
	[ $all = 0 ] || fio_verify "$dev" --rw=write --bs=1m --iodepth=4 --size=16m || fail "$label: 1 MiB QD4"
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

# MDTS: the controller says 4 MiB (2^10 pages of 4 KiB), the largest
# transfer the target takes, so the host splits an 8 MiB direct write and
# read into commands the target accepts; the data comes back intact.
dev=$(connect 127.0.0.1 4420) || fail "connect failed"
mdts=$(nvme id-ctrl "${dev%n1}" | awk '$1 == "mdts" { print $3 }')
[ "$mdts" = 10 ] || fail "MDTS is '$mdts', expected 10 (4 MiB)"
hw=$(cat "/sys/block/${dev#/dev/}/queue/max_hw_sectors_kb")
[ "$hw" -le 4096 ] || fail "the host's max_hw_sectors_kb is $hw, over MDTS's 4096"
head -c 8M /dev/urandom >/tmp/8m
dd if=/tmp/8m of="$dev" bs=8M count=1 oflag=direct status=none || fail "an 8 MiB direct write failed"
dd if="$dev" of=/tmp/8m.back bs=8M count=1 iflag=direct status=none || fail "an 8 MiB direct read failed"
cmp -s /tmp/8m /tmp/8m.back || fail "the 8 MiB read back differs from what was written"
rm -f /tmp/8m /tmp/8m.back
nvme disconnect -n "$NQN" >/dev/null || fail "disconnect failed"
wait_for 10 sh -c "! test -b $dev" || fail "$dev still there after disconnect"
echo "PASS mdts-8m-direct"

# maxh2cdata 8 KiB: the ICResp says so, the target takes a write in PDUs of
# that size and ends a connection that sends more in one PDU; so the C
# host's writes, all verified, went in PDUs of at most 8 KiB.
echo 8192 >/sys/module/nvmet_tcp/parameters/max_h2c_data
[ "$(cat /sys/module/nvmet_tcp/parameters/max_h2c_data)" = 8192 ] || fail "max_h2c_data did not take 8192"
need_peer
"$PEER" icreq 127.0.0.1 4420 | grep -q 'maxdata 8192$' || fail "the ICResp does not say maxdata 8192"
echo "PASS maxh2cdata-icresp"
"$PEER" h2c-split 127.0.0.1 4420 --nqn "$NQN" 65536 8192 || fail "a write in 8 KiB H2CData PDUs failed"
if out=$("$PEER" h2c-split 127.0.0.1 4420 --nqn "$NQN" 65536 16384); then
	fail "a 16 KiB H2CData PDU over maxh2cdata 8 KiB was accepted: $out"
fi
echo "$out"
echo "$out" | grep -q 'fes 0x5' || fail "a 16 KiB H2CData PDU: not refused as a data transfer limit error: $out"
echo "PASS maxh2cdata-enforced"
run_matrix maxh2cdata-8k+ddgst --data-digest
