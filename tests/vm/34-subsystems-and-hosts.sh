# SPDX-License-Identifier: GPL-2.0
# Several subsystems, namespaces and hosts on one port of our target, through
# the stock C host: two subsystems (two namespaces and one) with I/O to each
# namespace; two host NQNs on one subsystem at once; allow_any_host=0 with
# an allowed host and a refused one; 32 controllers connecting at once.
. "$(dirname "$0")/lib.sh"

load_stock host/nvme-tcp
modprobe null_blk nr_devices=4 gb=1 memory_backed=1 || fail "no null_blk"
modprobe nvmet
S1=$NQN-1 S2=$NQN-2 S3=$NQN-closed
# A subsystem (allow_any_host ANY) with the given devices as namespaces 1...
subsys() { # NQN ANY DEVICE...
	local s=$CFS/subsystems/$1 n=0 d
	mkdir "$s"
	echo "$2" >"$s/attr_allow_any_host"
	[ "$(cat "$s/attr_allow_any_host")" = "$2" ] || fail "$1: allow_any_host did not take $2"
	shift 2
	for d in "$@"; do
		n=$((n + 1))
		mkdir "$s/namespaces/$n"
		echo "$d" >"$s/namespaces/$n/device_path"
		echo 1 >"$s/namespaces/$n/enable"
		[ "$(cat "$s/namespaces/$n/enable")" = 1 ] || fail "$s/namespaces/$n did not enable"
	done
}
subsys "$S1" 1 /dev/nullb0 /dev/nullb1
subsys "$S2" 1 /dev/nullb2
subsys "$S3" 0 /dev/nullb3
P=$CFS/ports/1
mkdir "$P"
echo tcp >"$P/addr_trtype"
echo ipv4 >"$P/addr_adrfam"
echo 127.0.0.1 >"$P/addr_traddr"
echo 4420 >"$P/addr_trsvcid"
for s in "$S1" "$S2" "$S3"; do ln -s "$CFS/subsystems/$s" "$P/subsystems/$s"; done
is_ours nvmet_tcp || fail "the target is not ours"

# A host NQN of our own, with a host ID of its own (nvme-core refuses one
# ID under two NQNs).
hostnqn() { echo "nqn.2014-08.org.nvmexpress:uuid:$(printf '%08d' "$1")-0000-4000-8000-000000000000"; }
hostid() { printf '%08d-0000-4000-8000-000000000001\n' "$1"; }
# Connects host N to subsystem S; extra arguments go to nvme connect.
connect_as() { # N S [options]
	local n=$1 s=$2
	shift 2
	nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$s" --hostnqn "$(hostnqn "$n")" --hostid "$(hostid "$n")" "$@"
}
# The live controllers (nvmeN) of subsystem S, one per line.
ctrls_of() { # S
	local c
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$1" ] && [ "$(cat "$c/state")" = live ] && basename "$c"
	done
	return 0
}
# The block devices of subsystem S's namespaces, sorted by namespace ID.
ns_devs() { # S
	local c d
	c=$(ctrls_of "$1" | head -n 1)
	[ -n "$c" ] || return 1
	for d in /sys/class/nvme/"$c"/nvme*n* /sys/class/nvme/"$c"/device/nvme*n*; do
		[ -e "$d/nsid" ] && echo "$(cat "$d/nsid") /dev/$(basename "$d")"
	done | sort -n | awk '{ print $2 }' | sed 's/c[0-9]*n/n/' | uniq
}

# Two subsystems on the port: each controller sees its own namespaces.
connect_as 1 "$S1" >/dev/null || fail "connect to $S1 failed"
connect_as 1 "$S2" >/dev/null || fail "connect to $S2 failed"
wait_for 30 sh -c "[ \$(ls /dev/nvme*n* 2>/dev/null | grep -c 'n[0-9]*$') -ge 3 ]" || fail "the three namespaces did not appear: $(ls /dev/nvme*)"
d1=$(ns_devs "$S1") || fail "$S1 has no live controller"
d2=$(ns_devs "$S2") || fail "$S2 has no live controller"
[ "$(echo "$d1" | wc -l)" = 2 ] || fail "$S1 shows namespaces '$d1', expected two"
[ "$(echo "$d2" | wc -l)" = 1 ] || fail "$S2 shows namespaces '$d2', expected one"
for d in $d1 $d2; do
	[ -b "$d" ] || fail "no block device $d"
	fio_verify "$d" --rw=randrw --bs=4k --iodepth=8 --size=4m || fail "I/O to $d failed"
done
# Each namespace is its own device: a pattern written to one is not on the others.
head -c 4096 /dev/urandom >/tmp/pat
dd if=/tmp/pat of="$(echo "$d1" | head -n 1)" bs=4k count=1 seek=100 oflag=direct status=none || fail "write failed"
for d in $(echo "$d1" | tail -n 1) $d2; do
	dd if="$d" of=/tmp/back bs=4k count=1 skip=100 iflag=direct status=none || fail "read of $d failed"
	cmp -s /tmp/pat /tmp/back && fail "$d holds what was written to another namespace"
done
nvme disconnect -n "$S1" >/dev/null || fail "disconnect from $S1 failed"
nvme disconnect -n "$S2" >/dev/null || fail "disconnect from $S2 failed"
echo "PASS two-subsystems-three-namespaces"

# Two host NQNs on one subsystem at once: two controllers, both live; I/O
# goes on through one when the other leaves.
connect_as 1 "$S2" >/dev/null || fail "host 1: connect failed"
connect_as 2 "$S2" >/dev/null || fail "host 2: connect failed"
wait_for 20 sh -c "[ \$(cat /sys/class/nvme/nvme*/subsysnqn | grep -cxF '$S2') = 2 ]" || fail "expected two controllers of $S2"
wait_for 20 sh -c "[ \$(for c in /sys/class/nvme/nvme*; do [ \"\$(cat \$c/subsysnqn)\" = '$S2' ] && cat \$c/state; done | grep -c live) = 2 ]" ||
	fail "the two controllers of $S2 are not both live"
hosts=$(for c in $(ctrls_of "$S2"); do cat "/sys/class/nvme/$c/hostnqn"; done | sort -u | wc -l)
[ "$hosts" = 2 ] || fail "the controllers of $S2 have $hosts host NQNs, expected 2"
c1=$(ctrls_of "$S2" | head -n 1)
# Each controller has its own admin queue on the target: both answer.
for c in $(ctrls_of "$S2"); do
	nvme id-ctrl "/dev/$c" | grep -q "^subnqn *: $S2" || fail "$c: id-ctrl does not answer with $S2"
done
dev=$(ns_devs "$S2" | head -n 1)
fio_verify "$dev" --rw=randrw --bs=4k --iodepth=8 --size=4m || fail "I/O with two hosts connected failed"
nvme disconnect -d "$c1" >/dev/null || fail "disconnecting $c1 failed"
wait_for 20 sh -c "[ \$(cat /sys/class/nvme/nvme*/subsysnqn 2>/dev/null | grep -cxF '$S2') = 1 ]" || fail "$c1 did not go"
dev=$(ns_devs "$S2" | head -n 1)
fio_verify "$dev" --rw=randrw --bs=4k --iodepth=8 --size=4m || fail "I/O through the remaining host failed"
nvme disconnect -n "$S2" >/dev/null || fail "disconnect failed"
echo "PASS two-hosts-one-subsystem"

# allow_any_host=0: host 1 is allowed, host 2 is not.
mkdir "$CFS/hosts/$(hostnqn 1)"
ln -s "$CFS/hosts/$(hostnqn 1)" "$CFS/subsystems/$S3/allowed_hosts/$(hostnqn 1)"
connect_as 1 "$S3" >/dev/null || fail "the allowed host could not connect to $S3"
[ "$(ctrls_of "$S3" | wc -l)" = 1 ] || fail "the allowed host has no live controller of $S3"
nvme disconnect -n "$S3" >/dev/null || fail "disconnect failed"
if out=$(connect_as 2 "$S3" 2>&1); then
	fail "a host not in allowed_hosts connected to $S3: $out"
fi
[ -z "$(ctrls_of "$S3")" ] || fail "the refused host has a controller of $S3"
klog | grep -q "not allowed" ||
	fail "the refusal was not logged: $(klog | tail -n 5)"
echo "PASS allow-any-host-0"

# 32 controllers at once: 32 hosts on one subsystem, one I/O queue each,
# all connecting at the same time.
pids=()
for n in $(seq 1 32); do
	connect_as "$n" "$S1" --nr-io-queues=1 >"/tmp/connect-$n.out" 2>&1 &
	pids+=($!)
done
for n in $(seq 1 32); do
	wait "${pids[n - 1]}" || fail "controller $n: connect failed: $(cat "/tmp/connect-$n.out")"
done
wait_for 60 sh -c "[ \$(for c in /sys/class/nvme/nvme*; do [ \"\$(cat \$c/subsysnqn)\" = '$S1' ] && cat \$c/state; done | grep -c live) = 32 ]" ||
	fail "not 32 live controllers: $(ctrls_of "$S1" | wc -l)"
dev=$(ns_devs "$S1" | head -n 1)
fio_verify "$dev" --rw=randrw --bs=4k --iodepth=16 --size=4m || fail "I/O with 32 controllers failed"
nvme disconnect -n "$S1" >/dev/null || fail "disconnect of the 32 controllers failed"
wait_for 60 sh -c "! ls /sys/class/nvme/ 2>/dev/null | grep -q nvme" || fail "controllers left after disconnect: $(ls /sys/class/nvme)"
echo "PASS 32-controllers"
