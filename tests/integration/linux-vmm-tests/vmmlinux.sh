#!/bin/sh
# vmmlinux: a stock Linux kernel under vdk-vmm (tests/integration/linux_vmm.sh).
# Runs in the busybox initramfs of scripts/build-guest.sh as /tests/vmmlinux.sh; the host puts
# what it expects on the kernel command line (vdk.*). Every check ends the test on failure
# with one line of detail.
detail() { echo "$*" >"$VDK_TEST_DETAIL"; echo "vmmlinux: $*"; }
bad() { detail "$*"; exit 1; }
read -r cmdline </proc/cmdline # once: a fork costs milliseconds in a nested guest
word() { # word KEY: the value of KEY= on the kernel command line
	for w in $cmdline; do
		case "$w" in "$1"=*) echo "${w#*=}"; return ;; esac
	done
}
by_serial() { # by_serial ID: the vdX whose virtio-blk serial is ID
	for s in /sys/block/vd*/serial; do
		[ -r "$s" ] && [ "$(cat "$s")" = "$1" ] && { basename "$(dirname "$s")"; return; }
	done
}
sum() { # sum DEV SKIP_MIB: SHA-256 of one MiB, read with O_DIRECT
	dd if="/dev/$1" bs=1M skip="$2" count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1
}

# ---- vCPUs (MADT, INIT/SIPI), command line, initrd ----------------------------------------
cpus=$(word vdk.cpus)
n=$(grep -c '^processor' /proc/cpuinfo)
[ "$n" = "$cpus" ] || bad "$n CPUs online, expected $cpus ($(cat /sys/devices/system/cpu/online))"
want_online=0
[ "$cpus" -gt 1 ] && want_online="0-$((cpus - 1))"
[ "$(cat /sys/devices/system/cpu/online)" = "$want_online" ] ||
	bad "online CPUs $(cat /sys/devices/system/cpu/online), expected $want_online"
transport=$(word vdk.transport)
prefix="console=ttyS0 panic=-1 pci=off "
[ "$transport" = pci ] && prefix="console=ttyS0 panic=-1 "
case "$(cat /proc/cmdline)" in
"$prefix"*) ;;
*) bad "command line does not start with vdk-vmm's prefix '$prefix': $(cat /proc/cmdline)" ;;
esac

# ---- virtio-pci: the functions, the driver, MSI-X ------------------------------------------
if [ "$transport" = pci ]; then
	if command -v lspci >/dev/null 2>&1; then
		echo "vmmlinux: lspci:"
		lspci -n 2>&1 | sed 's/^/vmmlinux:   /'
	fi
	npci=0
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1af4 ] || continue
		dev=$(cat "$d/device")
		case "$dev" in 0x104[1-9a-f] | 0x105[0-9a-f] | 0x107f) ;; *) bad "${d##*/}: device id $dev is not a modern virtio-pci id (0x1040 + type)" ;; esac
		[ "$(cat "$d/revision")" != 0x00 ] || bad "${d##*/}: revision 0 (a transitional device)"
		# BAR 0, 64-bit: placed by vdk-vmm in the 64-bit window at or above 4 GiB (a
		# QWordMemory of the PNP0A08 _CRS), which Linux kept.
		bar=$(head -n 1 "$d/resource" | cut -d' ' -f1)
		[ $((bar >> 32)) -ge 1 ] || bad "${d##*/}: BAR 0 at $bar, not in the 64-bit window above 4 GiB"
		drv=$(basename "$(readlink "$d/driver" 2>/dev/null)")
		[ "$drv" = virtio-pci ] || bad "${d##*/} ($dev): bound to '$drv', not virtio-pci"
		echo "vmmlinux: pci ${d##*/} 1af4:${dev#0x} class $(cat "$d/class") driver $drv irq $(cat "$d/irq") bar0 $bar"
		npci=$((npci + 1))
	done
	[ "$npci" -ge 4 ] || bad "$npci virtio-pci functions, expected 4 (2 blk, rng, console)"
fi
[ -n "$(word vdk.token)" ] || bad "no vdk.token on the command line"
# The initrd: we run from it; its size as the kernel saw it (rounded to pages).
kib=$(dmesg | sed -n 's/.*Freeing initrd memory: \([0-9]*\)K.*/\1/p' | head -n 1)
want=$(word vdk.initrd_kib)
[ -n "$kib" ] || bad "the kernel did not report freeing an initrd"
[ "$kib" -ge "$want" ] && [ "$kib" -le $((want + 8)) ] ||
	bad "initrd of ${kib} KiB, the host gave ${want} KiB"

# ---- virtio-blk: two disks, distinct serials, I/O, flush, read-only ---------------------
# vdk.rw_serial: a back-end that fixes its own serial (qemu-storage-daemon: vhost_user_blk)
rw_serial=$(word vdk.rw_serial)
rw_serial=${rw_serial:-vdk-linux-rw}
rw=$(by_serial "$rw_serial")
ro_serial=$(word vdk.ro_serial)
ro_serial=${ro_serial:-vdk-linux-ro}
ro=$(by_serial "$ro_serial")
[ -n "$rw" ] || bad "no virtio disk with serial $rw_serial ($(ls /sys/block))"
[ -n "$ro" ] || bad "no virtio disk with serial $ro_serial"
[ "$rw" != "$ro" ] || bad "both serials on $rw"
[ "$(cat /sys/block/$rw/size)" = 8192 ] || bad "$rw: $(cat /sys/block/$rw/size) sectors, expected 8192"
[ "$(cat /sys/block/$ro/size)" = 2048 ] || bad "$ro: $(cat /sys/block/$ro/size) sectors, expected 2048"
[ "$(cat /sys/block/$rw/ro)" = 0 ] || bad "$rw is read-only"
[ "$(cat /sys/block/$ro/ro)" = 1 ] || bad "$ro is not read-only (VIRTIO_BLK_F_RO)"
[ "$(sum "$rw" 0)" = "$(word vdk.rw_sha)" ] || bad "$rw MiB 0: SHA-256 differs from the host's"
[ "$(sum "$ro" 0)" = "$(word vdk.ro_sha)" ] || bad "$ro: SHA-256 differs from the host's"
# vdk.io_rounds=N: N more copies first, each announced on the console and each lasting at
# least 2 s of I/O (the host kills and restarts a vhost-user back-end when a round starts:
# vmm_vhost_user.sh; a fast guest must not finish the round before the kill lands)
rounds=$(word vdk.io_rounds)
uptime_cs() {
	read -r up _ </proc/uptime
	echo $((${up%.*} * 100 + 1${up#*.} - 100))
}
i=0
while [ "$i" -lt "${rounds:-0}" ]; do
	i=$((i + 1))
	echo "vmmlinux: io round $i"
	end=$(($(uptime_cs) + 200)) n=0
	while [ "$n" -eq 0 ] || [ "$(uptime_cs)" -lt "$end" ]; do
		n=$((n + 1))
		dd if=/dev/zero of="/dev/$rw" bs=64k count=16 seek=32 oflag=direct conv=fsync 2>/dev/null ||
			bad "$rw: io round $i.$n: zeroing MiB 2 failed"
		dd if="/dev/$rw" of="/dev/$rw" bs=64k count=16 seek=32 iflag=direct oflag=direct conv=fsync 2>/dev/null ||
			bad "$rw: io round $i.$n: copying MiB 0 to MiB 2 failed"
		[ "$(sum "$rw" 2)" = "$(word vdk.rw_sha)" ] || bad "$rw: io round $i.$n: MiB 2 read back differs"
	done
	echo "vmmlinux: io round $i: $n copies"
done
dd if="/dev/$rw" of="/dev/$rw" bs=1M count=1 seek=2 iflag=direct oflag=direct conv=fsync 2>/dev/null ||
	bad "$rw: copying MiB 0 to MiB 2 failed"
[ "$(sum "$rw" 2)" = "$(word vdk.rw_sha)" ] || bad "$rw MiB 2: read back differs"
printf 'VDK-LINUX-WROTE cpus=%s %s\n' "$cpus" "$(uname -r)" |
	dd of="/dev/$rw" bs=512 seek=6144 conv=sync,fsync 2>/dev/null || bad "$rw: writing the text sector failed"
if dd if=/dev/zero of="/dev/$ro" bs=512 count=1 oflag=direct 2>/dev/null; then
	bad "$ro: a write to the read-only disk succeeded"
fi
[ "$(sum "$ro" 0)" = "$(word vdk.ro_sha)" ] || bad "$ro changed after the refused write"

# ---- virtio-rng ------------------------------------------------------------------------
cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
case "$cur" in virtio_rng.*) ;; *) bad "hwrng is '$cur', not virtio_rng" ;; esac
n=$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)
[ "$n" = 64 ] || bad "read $n bytes from /dev/hwrng, expected 64"

# ---- virtio-console as the Linux console (hvc0); vdk.con_lines=0: no console test ----------
echo "vmmlinux: disks and rng checked (uptime $(cut -d' ' -f1 /proc/uptime) s)"
lines=$(word vdk.con_lines)
if [ "${lines:-0}" -gt 0 ]; then
grep -q '^hvc0 ' /proc/consoles || bad "hvc0 is not a kernel console: $(cat /proc/consoles)"
in_bytes=$(word vdk.in_bytes)
# Hold hvc0 open throughout: the hvc driver resets its termios on the last close.
exec 3<>/dev/hvc0 || bad "cannot open /dev/hvc0"
stty raw -echo <&3 || bad "stty on /dev/hvc0 failed"
{
	echo "VDK-CON-OUT-BEGIN"
	# Through cat: awk would write (and the driver notify) line by line to a tty.
	awk -v n="$lines" 'BEGIN {
		a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"; a = a a
		for (i = 0; i < n; i++) printf "VDK-CON-OUT %05d %s\n", i, substr(a, i % 62 + 1, 20 + i % 41)
	}' | cat
	echo "VDK-CON-OUT-END"
	echo "VDK-CON-IN-READY"
} >/dev/hvc0
echo "vmmlinux: hvc0: $lines lines written (uptime $(cut -d' ' -f1 /proc/uptime) s); reading $in_bytes bytes"
head -c "$in_bytes" </dev/hvc0 >/tmp/in
got=$(wc -c </tmp/in)
[ "$got" = "$in_bytes" ] || bad "read $got of $in_bytes bytes from hvc0"
[ "$(sha256sum </tmp/in | cut -d' ' -f1)" = "$(word vdk.in_sha)" ] || bad "hvc0 input: SHA-256 differs from the host's"
echo "vmmlinux: hvc0: input read (uptime $(cut -d' ' -f1 /proc/uptime) s); echoing it"
{
	echo "VDK-CON-ECHO-BEGIN"
	cat /tmp/in
	echo "VDK-CON-ECHO-END"
} >&3
stty sane <&3
exec 3>&-
echo "vmmlinux: hvc0: echoed (uptime $(cut -d' ' -f1 /proc/uptime) s)"
fi

# ---- interrupts (irqfd): every virtio device interrupted ---------------------------------
if [ "$transport" = pci ] && [ "$(word vdk.intx)" = 1 ]; then
	# INTx (pci=nomsi): no MSI-X vector anywhere; each device on a level-triggered IO-APIC
	# line of its own name (shared lines list several: "virtio0, virtio2"), each line fired.
	grep virtio /proc/interrupts | sed 's/^/vmmlinux:   /'
	grep -q ' virtio[0-9]*-' /proc/interrupts && bad "pci=nomsi, yet MSI-X vectors: $(grep ' virtio[0-9]*-' /proc/interrupts | tr -s ' ')"
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1af4 ] || continue
		[ -d "$d/msi_irqs" ] && [ -n "$(ls "$d/msi_irqs")" ] && bad "${d##*/}: MSI/MSI-X enabled despite pci=nomsi"
		[ "$(cat "$d/irq")" -gt 0 ] || bad "${d##*/}: no INTx line (irq $(cat "$d/irq"))"
	done
	nline=0
	for v in /sys/bus/virtio/devices/virtio*; do
		n=${v##*/}
		line=$(grep -E " $n(,|\$)" /proc/interrupts)
		[ -n "$line" ] || bad "$n: no interrupt line named $n in /proc/interrupts"
		case "$line" in *IO-APIC*fasteoi*) ;; *) bad "$n: not a level-triggered IO-APIC line: $(echo "$line" | tr -s ' ')" ;; esac
		fired=$(echo "$line" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break } END { print s + 0 }')
		[ "$fired" -gt 0 ] || bad "$n: its INTx line never fired: $(echo "$line" | tr -s ' ')"
		nline=$((nline + 1))
	done
	nirq=$(grep -c 'virtio' /proc/interrupts)
	detail "$transport INTx: $npci functions, $nline devices on $nirq IO-APIC lines; $cpus vCPUs; $rw rw, $ro ro: read, copy, fsync, ro refused; hwrng 64 B; hvc0: $lines lines out, $in_bytes B in and echoed"
	exit 0
fi
if [ "$transport" = pci ]; then
	# MSI-X: per device a config vector and one vector per virtqueue (virtioN-config,
	# virtioN-<queue>), all on PCI-MSI; each device's queue vectors fired.
	grep virtio /proc/interrupts | sed 's/^/vmmlinux:   /'
	for v in /sys/bus/virtio/devices/virtio*; do
		n=${v##*/}
		grep -q " $n-config\$" /proc/interrupts || bad "$n: no MSI-X config vector ($n-config) in /proc/interrupts"
		q=$(grep -c " $n-[^c][^ ]*\$" /proc/interrupts)
		[ "$q" -ge 1 ] || bad "$n: no per-queue MSI-X vector in /proc/interrupts"
		grep " $n-" /proc/interrupts | grep -qv 'PCI-MSI' && bad "$n: a vector not on PCI-MSI: $(grep " $n-" /proc/interrupts | tr -s ' ')"
		fired=$(awk -v n="$n" '$NF ~ "^" n "-" && $NF != n "-config" { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break } END { print s + 0 }' /proc/interrupts)
		[ "$fired" -gt 0 ] || bad "$n: no queue vector ever fired: $(grep " $n-" /proc/interrupts | tr -s ' ')"
	done
	nvec=$(grep -c ' virtio[0-9]*-' /proc/interrupts)
	detail "$transport: $npci functions, $nvec MSI-X vectors; $cpus vCPUs; $rw rw, $ro ro: read, copy, fsync, ro refused; hwrng 64 B; hvc0: $lines lines out, $in_bytes B in and echoed"
	exit 0
fi
irqs=$(awk '/virtio/ { s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break; print s }' /proc/interrupts)
[ -n "$irqs" ] || bad "no virtio lines in /proc/interrupts"
for c in $irqs; do [ "$c" -gt 0 ] || bad "a virtio interrupt line never fired: $(grep virtio /proc/interrupts | tr -s ' ')"; done
con="hvc0: $lines lines out, $in_bytes B in and echoed"
[ "${lines:-0}" -gt 0 ] || con="no hvc0 test"
if [ "${rounds:-0}" -gt 0 ]; then con="$rounds io rounds; $con"; fi
detail "$cpus vCPUs; $rw rw, $ro ro: read, copy, fsync, ro refused; hwrng 64 B; $con"
