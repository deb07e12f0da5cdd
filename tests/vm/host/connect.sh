# SPDX-License-Identifier: GPL-2.0
# The host (ours; NVME_TCP_HOST=stock: the C one, tests/vm/host-lib.sh)
# against the stock C target and ours: connect, nvme list, id-ctrl, id-ns,
# discovery, connect-all, disconnect by NQN, by device and all; IPv6; every
# fabrics option with its effect, seen in sysfs (queue_count, sqsize, kato,
# address: the exact string the C host shows) and on the wire, where
# tests/vm/sniff-connects.py reads each connection's ICReq and Connect
# command (digests asked for, TOS, source address, queue IDs, SQ size, SQ
# flow control, keep-alive); options that cannot work (an unknown interface,
# TLS, a second identical connection) are refused.
# (awk conditions in single quotes: awk expands them.)
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/host-lib.sh"

CPUS=$(nproc)
# What the C host's `address` shows, and ours must.
ADDR4="traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1"
ADDR6="traddr=::1,trsvcid=4420,src_addr=::1"

min() { echo $(($1 < $2 ? $1 : $2)); }

# Connect with no options: the defaults (one I/O queue per CPU, queue size
# 128, keep-alive 5 s, no digests), the namespace usable through nvme-cli.
c_connect() {
	local m c dev out
	m=$(sniff_mark)
	c=$(host_connect 127.0.0.1 4420) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	attr_is "$c" state live
	attr_is "$c" transport tcp
	attr_is "$c" subsysnqn "$NQN"
	attr_is "$c" address "$ADDR4"
	attr_is "$c" queue_count $((CPUS + 1))
	attr_is "$c" sqsize 127
	attr_is "$c" kato 5
	wire_all "$m" $((CPUS + 1)) \
		'$8 == 0 && $10 == 0 && $21 == "0x00" && $17 == "0x00" && ($13 == 0 ? $15 == 31 && $19 == 5000 : $15 == 127 && $19 == 0)' \
		"no digests, SQ flow control, admin queue size 32 with a 5 s keep-alive, I/O queue size 128"
	out=$(nvme list) || fail "nvme list failed"
	echo "$out" | grep -q "^$dev " || fail "nvme list does not show $dev: $out"
	out=$(nvme id-ctrl "/dev/$c") || fail "nvme id-ctrl failed"
	echo "$out" | grep -q "^subnqn *: $NQN\$" || fail "id-ctrl does not report $NQN: $out"
	echo "$out" | grep -q "^cntrltype *: 1\$" || fail "id-ctrl: not an I/O controller: $out"
	out=$(nvme id-ns "$dev") || fail "nvme id-ns failed"
	# null_blk's 1 GiB in 512 B blocks.
	echo "$out" | grep -q '^nsze *: 0x200000$' || fail "id-ns: nsze is not 0x200000: $out"
	small_io "$dev"
	out=$(nvme disconnect -n "$NQN") || fail "nvme disconnect -n failed: $out"
	echo "$out" | grep -q 'disconnected 1 controller' || fail "nvme disconnect -n: $out"
	gone_within 10 "$c" "$dev"
}

# nr_io_queues: one I/O queue each (on the wire too), as many as asked, at
# most one per CPU; blk-mq gets as many hardware queues. (On the debug
# kernel, with its 4 CPUs, 8 stands for 4.)
c_nr_io_queues() {
	local q want m c hctx
	for q in 1 2 $([ "$DEBUG_KERNEL" = 1 ] || echo 4) 8; do
		want=$(min "$q" "$CPUS")
		m=$(sniff_mark)
		c=$(host_connect 127.0.0.1 4420 --nr-io-queues="$q") || fail "-i $q: connect failed"
		host_ns "$c" >/dev/null || fail "-i $q: no namespace"
		attr_is "$c" queue_count $((want + 1))
		wire "$m" $((want + 1))
		hctx=$(compgen -G "/sys/class/nvme/$c/nvme*n1/mq/[0-9]*" | wc -l)
		[ "$hctx" = "$want" ] || fail "-i $q: blk-mq has $hctx hardware queues, expected $want"
		nvme disconnect -d "$c" >/dev/null || fail "-i $q: disconnect failed"
		gone_within 10 "$c"
		echo "-i $q: $want I/O queues"
	done
}

# nr_write_queues: that many more I/O queues, for writes.
c_nr_write_queues() {
	local m c
	m=$(sniff_mark)
	c=$(host_connect 127.0.0.1 4420 --nr-write-queues=2) || fail "-W 2: connect failed"
	host_ns "$c" >/dev/null || fail "-W 2: no namespace"
	attr_is "$c" queue_count $((CPUS + 2 + 1))
	wire "$m" $((CPUS + 2 + 1))
}

# queue_size: the I/O queues' SQ size (0's based: 31), in sysfs and in the
# Connect commands; the admin queue keeps 32.
c_queue_size() {
	local m c dev
	m=$(sniff_mark)
	c=$(host_connect 127.0.0.1 4420 --queue-size=32) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	attr_is "$c" sqsize 31
	wire_all "$m" $((CPUS + 1)) '$15 == 31' "SQ size 32"
	small_io "$dev"
}

# hdr_digest, data_digest: asked for in the ICReq, used from the first
# capsule on (its HDGSTF/DDGSTF flags), data intact.
c_digests() {
	local opts h d m c dev
	for opts in "--hdr-digest:1:0" "--data-digest:0:1" "--hdr-digest --data-digest:1:1"; do
		h=$(echo "$opts" | cut -d: -f2)
		d=$(echo "$opts" | cut -d: -f3)
		opts=${opts%%:*}
		m=$(sniff_mark)
		# shellcheck disable=SC2086
		c=$(host_connect 127.0.0.1 4420 $opts) || fail "$opts: connect failed"
		dev=$(host_ns "$c") || fail "$opts: no namespace"
		wire_all "$m" $((CPUS + 1)) "\$8 == $h && \$10 == $d && \$21 == \"0x0$((h + 2 * d))\"" \
			"hdgst $h, ddgst $d in the ICReq and in the first capsule's flags"
		nvme disconnect -d "$c" >/dev/null
		gone_within 10 "$c" "$dev"
		echo "$opts: ICReq and Connect capsules with hdgst $h ddgst $d"
	done
}

# keep_alive_tmo: sysfs kato, and the admin queue's Connect command (ms).
c_keep_alive_tmo() {
	local m c
	m=$(sniff_mark)
	c=$(host_connect 127.0.0.1 4420 --keep-alive-tmo=7) || fail "connect failed"
	host_ns "$c" >/dev/null || fail "no namespace"
	attr_is "$c" kato 7
	wire_all "$m" $((CPUS + 1)) '$13 == 0 ? $19 == 7000 : $19 == 0' "a 7000 ms keep-alive on the admin queue"
}

# tos: every connection's packets carry it.
c_tos() {
	local m c dev
	m=$(sniff_mark)
	c=$(host_connect 127.0.0.1 4420 --tos=32) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	wire_all "$m" $((CPUS + 1)) '$5 == "0x20"' "TOS 0x20"
}

# host_traddr: every connection comes from that address (127.0.0.2 is
# another address of lo); `address` says so.
c_host_traddr() {
	local m c dev
	m=$(sniff_mark)
	c=$(host_connect 127.0.0.1 4420 --host-traddr=127.0.0.2) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	attr_is "$c" address "traddr=127.0.0.1,trsvcid=4420,host_traddr=127.0.0.2,src_addr=127.0.0.2"
	wire_all "$m" $((CPUS + 1)) '$2 == "127.0.0.2"' "source address 127.0.0.2"
}

# host_iface: lo works (and `address` names it); an interface that does not
# exist is refused (ENODEV: nvme-cli says "invalid interface").
c_host_iface() {
	local c dev err
	c=$(host_connect 127.0.0.1 4420 --host-iface=lo) || fail "-f lo: connect failed"
	dev=$(host_ns "$c") || fail "-f lo: no namespace"
	attr_is "$c" address "traddr=127.0.0.1,trsvcid=4420,host_iface=lo,src_addr=127.0.0.1"
	nvme disconnect -d "$c" >/dev/null
	gone_within 10 "$c" "$dev"
	if err=$(nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --host-iface=nosuchif 2>&1); then
		fail "-f nosuchif: connect succeeded"
	fi
	echo "-f nosuchif: $err"
	echo "$err" | grep -q 'invalid interface' || fail "-f nosuchif: not refused as an invalid interface (ENODEV): $err"
	no_ctrls || fail "-f nosuchif: a controller is left: $(host_ctrls)"
}

# disable_sqflow: every Connect command asks for it (CATTR bit 2).
c_disable_sqflow() {
	local m c dev
	m=$(sniff_mark)
	c=$(host_connect 127.0.0.1 4420 --disable-sqflow) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	wire_all "$m" $((CPUS + 1)) '$17 == "0x04"' "SQ flow control disabled in CATTR"
	small_io "$dev"
}

# duplicate_connect: nvme-cli refuses a second identical connect (it matches
# `address`); the kernel does too (EALREADY) unless duplicate_connect is
# given, which makes a second controller; disconnect -n removes both.
c_duplicate_connect() {
	local c err out opts
	# As nvme-cli connects: with its host NQN and ID.
	opts="transport=tcp,traddr=127.0.0.1,trsvcid=4420,nqn=$NQN,hostnqn=$(cat /etc/nvme/hostnqn),hostid=$(cat /etc/nvme/hostid)"
	c=$(host_connect 127.0.0.1 4420) || fail "connect failed"
	host_ns "$c" >/dev/null || fail "no namespace"
	if err=$(nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" 2>&1); then
		fail "nvme connect: a second identical connect succeeded"
	fi
	echo "$err" | grep -q 'already connected' || fail "nvme connect: a second identical connect: $err"
	# The kernel's own check: the options written to /dev/nvme-fabrics.
	if err=$(printf '%s\n' "$opts" 2>&1 >/dev/nvme-fabrics); then
		fail "/dev/nvme-fabrics: a second identical controller was made"
	fi
	echo "$err" | grep -q 'Operation already in progress' || fail "/dev/nvme-fabrics: not refused with EALREADY: $err"
	[ "$(nr_ctrls)" = 1 ] || fail "controllers after the refused ones: $(host_ctrls)"
	printf '%s\n' "$opts,duplicate_connect" >/dev/nvme-fabrics || fail "/dev/nvme-fabrics: duplicate_connect refused"
	[ "$(nr_ctrls)" = 2 ] || fail "duplicate_connect: controllers: $(host_ctrls)"
	err=$(nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --duplicate-connect 2>&1) ||
		fail "nvme connect --duplicate-connect failed: $err"
	[ "$(nr_ctrls)" = 3 ] || fail "--duplicate-connect: controllers: $(host_ctrls)"
	for c in $(host_ctrls); do attr_is "$c" state live; done
	out=$(nvme disconnect -n "$NQN") || fail "nvme disconnect -n failed"
	echo "$out" | grep -q 'disconnected 3 controller' || fail "nvme disconnect -n: $out"
	wait_for 10 no_ctrls || fail "controllers left: $(host_ctrls)"
}

# TLS: not offered; the connect fails with an error and leaves nothing, and
# the host connects as usual afterwards.
c_tls_refused() {
	local err c
	if err=$(nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --tls 2>&1); then
		fail "--tls: connect succeeded"
	fi
	echo "--tls: $err"
	echo "$err" | grep -q 'could not add new controller' || fail "--tls: no error from the kernel: $err"
	no_ctrls || fail "--tls: a controller is left: $(host_ctrls)"
	c=$(host_connect 127.0.0.1 4420) || fail "connect after --tls failed"
	host_ns "$c" >/dev/null || fail "no namespace after --tls"
}

# IPv6: to ::1 (port 2), from ::1.
c_ipv6() {
	local m c dev
	m=$(sniff_mark)
	c=$(host_connect ::1 4420) || fail "connect failed"
	dev=$(host_ns "$c") || fail "no namespace"
	attr_is "$c" state live
	attr_is "$c" address "$ADDR6"
	attr_is "$c" queue_count $((CPUS + 1))
	wire_all "$m" $((CPUS + 1)) '$2 == "::1"' "source address ::1"
	small_io "$dev"
}

# Discovery: the log lists the subsystem on the port; the discovery
# controller goes away after.
c_discover() {
	local out
	out=$(nvme discover -t tcp -a 127.0.0.1 -s 4420) || fail "discover failed: $out"
	echo "$out" | awk -v nqn="$NQN" '
		/^=====Discovery Log Entry/ { if (s == nqn && t == "tcp" && a == "127.0.0.1" && p == "4420") f = 1; s = t = a = p = "" }
		$1 == "subnqn:" { s = $2 } $1 == "trtype:" { t = $2 } $1 == "traddr:" { a = $2 } $1 == "trsvcid:" { p = $2 }
		END { if (s == nqn && t == "tcp" && a == "127.0.0.1" && p == "4420") f = 1; exit !f }' ||
		fail "the discovery log has no entry for $NQN on tcp 127.0.0.1:4420: $out"
	wait_for 10 no_ctrls || fail "the discovery controller stayed: $(host_ctrls)"
}

# connect-all: through the discovery log to the subsystem; disconnect-all.
c_connect_all() {
	local c dev
	nvme connect-all -t tcp -a 127.0.0.1 -s 4420 >/dev/null || fail "connect-all failed"
	wait_for 10 eval '! no_ctrls' || fail "connect-all made no controller"
	c=$(host_ctrls)
	[ "$(nr_ctrls)" = 1 ] || fail "controllers after connect-all: $c"
	dev=$(host_ns "$c") || fail "no namespace"
	attr_is "$c" subsysnqn "$NQN"
	attr_is "$c" state live
	nvme disconnect-all >/dev/null || fail "disconnect-all failed"
	gone_within 10 "$c" "$dev"
}

# Disconnect by device, then all, with one controller over IPv4 and one over
# IPv6 (connect and duplicate-connect disconnect by NQN).
c_disconnect() {
	local c4 c6
	c4=$(host_connect 127.0.0.1 4420) || fail "connect failed"
	c6=$(host_connect ::1 4420) || fail "connect over IPv6 failed"
	nvme disconnect -d "$c4" >/dev/null || fail "disconnect -d failed"
	gone_within 10 "$c4"
	attr_is "$c6" state live
	nvme disconnect-all >/dev/null || fail "disconnect-all failed"
	gone_within 10 "$c6"
}

host_load
sniff_start
trap sniff_stop EXIT
for p in $PAIRINGS; do
	target_load "$p"
	add_port 2 ::1 4420
	check connect c_connect
	check nr-io-queues c_nr_io_queues
	check nr-write-queues c_nr_write_queues
	check queue-size c_queue_size
	check digests c_digests
	check keep-alive-tmo c_keep_alive_tmo
	check tos c_tos
	check host-traddr c_host_traddr
	check host-iface c_host_iface
	check disable-sqflow c_disable_sqflow
	check duplicate-connect c_duplicate_connect
	check tls-refused c_tls_refused
	check ipv6 c_ipv6
	check discover c_discover
	check connect-all c_connect_all
	check disconnect c_disconnect
	target_unload
done
host_done
