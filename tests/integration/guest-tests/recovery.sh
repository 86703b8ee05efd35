#!/bin/sh
# recovery.sh - guest side of tests/integration/vhost_user_recovery.sh (busybox sh).
#
# The host serves one virtio-rng through vdk-vhost-user-rng (vhost-user-rng-pci). This script
# is a hostile driver, then an honest one:
#   1. the kernel's driver is unbound from the PCI function and the script drives the device
#      itself through its BAR with busybox devmem (the virtio 1.2 §4.1.4 capabilities are read
#      from /sys/bus/pci/devices/*/config): reset, the features Linux would take, queue 0 of
#      size 8 laid out in the first MiB (the only RAM /dev/mem opens with STRICT_DEVMEM),
#      DRIVER_OK (QEMU starts the vhost-user rings);
#   2. it breaks a ring rule: an available head of 200 in a queue of 8, and a notification;
#      the backend stops the queue (the host checks its log);
#   3. it resets the device (status 0) and binds the kernel's driver again, which sets the
#      device up with the same features: QEMU sends GET_VRING_BASE then SET_VRING_* again,
#      with neither RESET_DEVICE nor a feature change;
#   4. /dev/hwrng must give bytes again (within 20 s).
# Each check prints "VDK-CHECK: <name>: ok|FAIL <why>".

# /tests/lib: tests/integration/guest-lib (scripts/build-guest.sh puts it in every test guest).
# shellcheck source-path=SCRIPTDIR source=../guest-lib/check.sh
. /tests/lib/check.sh

# the vhost-user-rng-pci function (virtio 1.0 device id 0x1044)
dev=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1044 ] && dev=$d
done
[ -n "$dev" ] || {
	bad find "no virtio-rng PCI function"
	exit 1
}
bdf=${dev##*/}

# cfg OFFSET SIZE: little-endian value of SIZE bytes of PCI configuration space, in decimal.
cfg() {
	v=0 sh=0
	for b in $(od -An -v -tu1 -j "$1" -N "$2" "$dev/config"); do
		v=$((v + (b << sh)))
		sh=$((sh + 8))
	done
	echo "$v"
}
# bar N: the address BAR N is mapped at.
bar() { sed -n "$(($1 + 1))p" "$dev/resource" | cut -d' ' -f1; }
rd() { echo $(($(devmem "$1" "$2"))); }
wr() { devmem "$1" "$2" "$3"; }

# --- 1. the driver lets go; the script drives the device ------------------------------------
echo "$bdf" >/sys/bus/pci/drivers/virtio-pci/unbind || bad unbind "cannot unbind $bdf"
# memory space and bus master on (QEMU stops a device whose bus master is off)
printf '\006' | dd of="$dev/config" bs=1 seek=4 count=1 conv=notrunc 2>/dev/null

common='' notify='' mult=''
cap=$(cfg 52 1)
while [ "$cap" -ne 0 ]; do
	if [ "$(cfg "$cap" 1)" -eq 9 ]; then # vendor-specific: a virtio capability
		type=$(cfg $((cap + 3)) 1)
		addr=$(($(bar "$(cfg $((cap + 4)) 1)") + $(cfg $((cap + 8)) 4)))
		case $type in
		1) common=$addr ;;
		2)
			notify=$addr
			mult=$(cfg $((cap + 16)) 4)
			;;
		esac
	fi
	cap=$(cfg $((cap + 1)) 1)
done
[ -n "$common" ] && [ -n "$notify" ] || {
	bad caps "no common or notify capability"
	exit 1
}
ok caps "$bdf common config at $(printf 0x%x "$common")"

status() { rd $((common + 0x14)) 8; }
wr $((common + 0x14)) 8 0
wr $((common + 0x14)) 8 3 # ACKNOWLEDGE | DRIVER
wr "$common" 32 0
f0=$(rd $((common + 4)) 32)
wr "$common" 32 1
f1=$(rd $((common + 4)) 32)
# what Linux's virtio-rng takes: RING_INDIRECT_DESC, RING_EVENT_IDX, VERSION_1
wr $((common + 8)) 32 0
wr $((common + 12)) 32 $((f0 & 0x30000000))
wr $((common + 8)) 32 1
wr $((common + 12)) 32 $((f1 & 1))
wr $((common + 0x14)) 8 11 # | FEATURES_OK
[ $(($(status) & 8)) -ne 0 ] || bad features "FEATURES_OK not kept (status $(status))"

# queue 0, 8 entries: descriptors at 0x60000, available ring at 0x60800, used at 0x61000
desc=0x60000 avail=0x60800 used=0x61000
for a in $avail $((avail + 4)) $((avail + 8)) $((avail + 12)) $((avail + 16)) $used $((used + 4)); do
	wr "$a" 32 0
done
wr $((common + 0x16)) 16 0
wr $((common + 0x18)) 16 8
wr $((common + 0x20)) 32 $desc
wr $((common + 0x24)) 32 0
wr $((common + 0x28)) 32 $avail
wr $((common + 0x2c)) 32 0
wr $((common + 0x30)) 32 $used
wr $((common + 0x34)) 32 0
wr $((common + 0x1c)) 16 1
wr $((common + 0x14)) 8 15 # | DRIVER_OK
[ $(($(status) & 4)) -ne 0 ] && ok setup "device running on the script's ring" ||
	bad setup "DRIVER_OK not kept (status $(status))"
sleep 1

# --- 2. a ring rule broken: head 200 in a queue of 8 ----------------------------------------
wr $((avail + 4)) 16 200
wr $((avail + 2)) 16 1
noff=$(rd $((common + 0x1e)) 16)
wr $((notify + noff * mult)) 16 0
sleep 1
[ "$(rd $((used + 2)) 16)" -eq 0 ] && ok break "the bad buffer was not used" ||
	bad break "used index moved to $(rd $((used + 2)) 16)"

# --- 3. reset, and the kernel's driver sets the device up again ------------------------------
wr $((common + 0x14)) 8 0
n=0
while [ "$(status)" -ne 0 ] && [ $n -lt 50 ]; do
	sleep 0.1
	n=$((n + 1))
done
[ "$(status)" -eq 0 ] || bad reset "status stays $(status) after writing 0"
echo "$bdf" >/sys/bus/pci/drivers/virtio-pci/bind || bad bind "cannot bind $bdf again"
n=0
while ! grep -q virtio /sys/class/misc/hw_random/rng_available 2>/dev/null && [ $n -lt 50 ]; do
	sleep 0.1
	n=$((n + 1))
done
grep -q virtio /sys/class/misc/hw_random/rng_available ||
	bad bind "no virtio rng after binding again"

# --- 4. the device serves again ----------------------------------------------------------------
got=$(timeout 20 dd if=/dev/hwrng bs=64 count=4 iflag=fullblock 2>/dev/null | wc -c)
if [ "$got" -eq 256 ]; then
	ok recovered "256 bytes from $(cat /sys/class/misc/hw_random/rng_current) after the reset"
else
	bad recovered "$got of 256 bytes from /dev/hwrng within 20 s"
fi
[ "$fails" -eq 0 ]
