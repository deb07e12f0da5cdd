# SPDX-License-Identifier: GPL-2.0
# nvmetcli (Debian's) with our target: a configfs set-up saved, cleared and
# restored. After the clear nothing is exported and nothing listens; after
# the restore the same configuration is back (saved again, it is the same),
# our module serves it, and the stock C host connects and does verified I/O.
. "$(dirname "$0")/lib.sh"

command -v nvmetcli >/dev/null || fail "no nvmetcli in the guest"
load_stock host/nvme-tcp
target_setup 127.0.0.1 4420
# Something beyond the sample's defaults, to see it survive the round trip.
# (nvmet takes a port parameter only while the port is disabled: unlinked.)
rm "$CFS/ports/1/subsystems/$NQN"
echo 8192 >"$CFS/ports/1/param_inline_data_size"
ln -s "$CFS/subsystems/$NQN" "$CFS/ports/1/subsystems/$NQN"
echo 0 >"$CFS/subsystems/$NQN/attr_allow_any_host"
mkdir "$CFS/hosts/$(cat /etc/nvme/hostnqn)"
ln -s "$CFS/hosts/$(cat /etc/nvme/hostnqn)" "$CFS/subsystems/$NQN/allowed_hosts/$(cat /etc/nvme/hostnqn)"
is_ours nvmet_tcp || fail "the target is not ours"
listening 127.0.0.1:4420 || fail "nothing listens on 127.0.0.1:4420"

nvmetcli save /tmp/saved.json || fail "nvmetcli save failed"
grep -q '"trtype": "tcp"' /tmp/saved.json || fail "the saved configuration has no tcp port: $(cat /tmp/saved.json)"
echo "PASS save"

nvmetcli clear || fail "nvmetcli clear failed"
left=$(find "$CFS/ports" "$CFS/subsystems" "$CFS/hosts" -mindepth 1 -maxdepth 1)
[ -z "$left" ] || fail "configfs not empty after clear: $left"
wait_for 10 sh -c "! ss -Hltn 'sport = :4420' | grep -q ." || fail "something still listens on 4420 after clear"
echo "PASS clear"

nvmetcli restore /tmp/saved.json || fail "nvmetcli restore failed"
wait_for 10 listening 127.0.0.1:4420 || fail "nothing listens on 127.0.0.1:4420 after restore"
is_ours nvmet_tcp || fail "the restored port is not served by our module"
[ "$(cat "$CFS/ports/1/param_inline_data_size")" = 8192 ] || fail "inline_data_size did not survive the round trip"
nvmetcli save /tmp/again.json || fail "nvmetcli save after restore failed"
python3 - /tmp/saved.json /tmp/again.json <<'PY' || fail "the restored configuration differs from the saved one"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
if a != b:
    print("saved:   ", json.dumps(a, sort_keys=True))
    print("restored:", json.dumps(b, sort_keys=True))
    sys.exit(1)
PY
dev=$(connect 127.0.0.1 4420) || fail "connect after restore failed"
fio_verify "$dev" --rw=randrw --bs=4k --iodepth=8 --size=4m || fail "I/O after restore failed"
nvme disconnect -n "$NQN" >/dev/null || fail "disconnect failed"
echo "PASS restore"
nvmetcli clear || fail "the final clear failed"
