set -x
KVER=$(uname -r)
M=/lib/modules/$KVER
ls $M; ls $M/kernel/drivers/nvme/host $M/kernel/drivers/nvme/target
lsmod | head -30
touch $M/x && echo writable && rm $M/x
time depmod -a
mkdir -p $M/updates/test && xz -dc $M/kernel/drivers/nvme/target/nvmet-tcp.ko.xz > $M/updates/test/nvmet_tcp.ko
time depmod -a
modprobe --show-depends nvmet-transport-3
modinfo -n nvmet-transport-3
cat /etc/nvme/hostnqn; ls /etc/nvme
which ss nvme fio python3 dmesg timeout setsid xz
cat /proc/sys/kernel/tainted /proc/sys/kernel/hung_task_timeout_secs
cat /proc/sys/kernel/printk
dmesg | wc -l
