# SPDX-License-Identifier: GPL-2.0
# Both modules: modprobe finds ours (updates/ wins over the stock C modules),
# with the stock vermagic and the expected dependencies; they load (the
# layout check passes) and unload.
. "$(dirname "$0")/lib.sh"

for m in nvmet_tcp nvme_tcp; do
	path=$(modinfo -n "$m")
	case $path in */updates/nvme-tcp-rs/*) ;; *) fail "modprobe would load $path for $m" ;; esac
	[ "$(modinfo -F vermagic "$m")" = "$KVER SMP preempt mod_unload " ] ||
		[ "$(modinfo -F vermagic "$m")" = "$KVER SMP preempt mod_unload" ] ||
		fail "$m vermagic: $(modinfo -F vermagic "$m")"
	echo "$m: $path, depends: $(modinfo -F depends "$m")"
	modprobe "$m"
	is_ours "$m" || fail "$m loaded but it is not ours"
	rmmod "$m"
	[ ! -d "/sys/module/$m" ] || fail "$m still loaded after rmmod"
done
[ "$(modinfo -F alias nvmet_tcp)" = nvmet-transport-3 ] || fail "nvmet_tcp lacks alias nvmet-transport-3"
case ,$(modinfo -F depends nvmet_tcp), in *,nvmet,*) ;; *) fail "nvmet_tcp does not depend on nvmet" ;; esac
for d in nvme-fabrics; do
	case ,$(modinfo -F depends nvme_tcp), in *,$d,*) ;; *) fail "nvme_tcp does not depend on $d" ;; esac
done
