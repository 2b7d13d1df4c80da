#!/bin/busybox sh
# shellcheck shell=dash disable=SC2013
# /init of the Linux guest tests/bench.py measures beside vio (scripts/linux-peer.sh packs
# it). The kernel command line chooses what it does:
#   bench=boot        print the boot marker, power off
#   bench=dev ms=N    load the virtio modules, run `loadgen dev N`, power off
#   bench=net ip=A/P  load the modules, bring eth0 up with A/P, start the UDP echo server on
#                     port 7 and `iperf -s` (iperf 2), then a shell on the console with the
#                     prompt "linux> " for the host to drive (it ends with poweroff -f)
/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "LINUX-INIT"

arg() {
	for w in $(cat /proc/cmdline); do
		case $w in "$1"=*) echo "${w#*=}" ;; esac
	done
}
mode=$(arg bench)
[ "$mode" = boot ] && poweroff -f

for m in $(cat /lib/modules/modules.load); do
	insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done
# Devices appear as the drivers probe: wait for the network interface (both modes have
# one) and, for dev, the disk.
for _ in $(seq 50); do
	if [ -d /sys/class/net/eth0 ] && { [ "$mode" = net ] || [ -b /dev/vda ]; }; then
		break
	fi
	sleep 0.1
done
ip link set lo up
ip link set eth0 up

case $mode in
dev)
	loadgen dev "$(arg ms)"
	;;
net)
	ip addr add "$(arg ip)" dev eth0
	loadgen udpecho 7 &
	iperf -s >/dev/null 2>&1 &
	PS1='linux> ' setsid cttyhack sh
	;;
*)
	echo "init: unknown bench=$mode"
	;;
esac
poweroff -f
