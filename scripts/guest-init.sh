#!/bin/sh
# guest-init.sh - /init of the vdk test guest (busybox sh). Built into the initramfs by
# scripts/build-guest.sh; the protocol is described in docs/guest.md.
#
# 1. mount devtmpfs, proc and sysfs; reopen the console
# 2. insmod the virtio modules in the order listed in /lib/modules/<version>/vdk-load-order,
#    passing each module the <module>.<param>=<value> words of the kernel command line
#    (modprobe would do that; insmod does not)
# 3. print every virtio device with its driver
# 4. vdk.test=<name>: run /tests/<name>.sh, print "VDK-TEST: <name>: PASS|FAIL <detail>"
#    vdk.shell=1:     start an interactive shell on the console
#    otherwise:       print "VDK-GUEST: ready"
# 5. power off (or reset when there is no ACPI; the host runs QEMU with -no-reboot, so a reset
#    or a panic ends the VM too)

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

say() { echo "VDK-GUEST: $*"; }

# End the VM. With ACPI the kernel can power off; without it (e.g. QEMU microvm,acpi=off, a
# bare VMM) a power off only halts the CPU, so reset instead: QEMU's -no-reboot turns a reset
# into an exit, and a VMM should do the same. vdk.exit=poweroff|reboot overrides the choice.
# Should both fail, returning from /init panics the kernel, and panic=-1 resets too.
finish() {
	sync
	how="$exit_how"
	if [ -z "$how" ]; then
		how=reboot
		[ -d /sys/firmware/acpi/tables ] && how=poweroff
	fi
	case "$how" in
	reboot) reboot -f ;;
	*) poweroff -f ;;
	esac
	sleep 10
	exit 1
}

# --- 1. File systems and console ------------------------------------------------------------
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Without a /dev/console node in the initramfs the kernel started us with no stdio.
exec </dev/console >/dev/console 2>&1
# Start on a fresh line: firmware output before the kernel may have left one open. The first
# line marks the start of userspace (bench/bench_linux_vmm.sh times it).
echo
say "init"
mount -t proc proc /proc || say "mount /proc failed"
mount -t sysfs sysfs /sys || say "mount /sys failed"
mkdir -p /tmp

cmdline="$(cat /proc/cmdline)"

# --- 2. Modules -----------------------------------------------------------------------------
# module_params NAME: set $params to the NAME.param=value words of the kernel command line as
# "param=value ...". The kernel treats '-' and '_' in module names alike; so do we. No command
# substitution or pipe here: under emulated nested virtualization every fork costs
# milliseconds, and this runs for every module and every word (it was a fifth of a nested boot).
module_params() {
	want="${1//-/_}"
	params=
	for word in $cmdline; do
		case "$word" in
		*.*=*)
			mod="${word%%.*}"
			[ "${mod//-/_}" = "$want" ] && params="$params ${word#*.}"
			;;
		esac
	done
}

kver="$(uname -r)"
moddir="/lib/modules/$kver"
loaded=0
failed=0
if [ -f "$moddir/vdk-load-order" ]; then
	while read -r path; do
		case "$path" in '' | '#'*) continue ;; esac
		name="${path##*/}"
		name="${name%.ko}"
		module_params "$name"
		# shellcheck disable=SC2086 # parameters are separate words on purpose
		if insmod "$moddir/$path" $params 2>/tmp/insmod.err; then
			loaded=$((loaded + 1))
		else
			say "insmod $name failed: $(cat /tmp/insmod.err)"
			failed=$((failed + 1))
		fi
	done <"$moddir/vdk-load-order"
else
	say "no $moddir/vdk-load-order: no modules loaded"
fi
say "kernel $kver, $loaded modules loaded, $failed failed"

# --- 3. Virtio devices ----------------------------------------------------------------------
# One line per device: "VDK-GUEST: virtio <dev> id <device id> driver <driver> on <parent>",
# where <parent> is the transport device (a PCI address or a virtio-mmio platform device).
ndev=0
for dev in /sys/bus/virtio/devices/*; do
	[ -e "$dev" ] || continue
	ndev=$((ndev + 1))
	id="$(cat "$dev/device" 2>/dev/null)"
	driver=none
	[ -L "$dev/driver" ] && driver="$(basename "$(readlink "$dev/driver")")"
	parent="$(basename "$(dirname "$(readlink -f "$dev")")")"
	say "virtio ${dev##*/} id $id driver $driver on $parent"
done
say "$ndev virtio devices"
if [ -r /sys/class/misc/hw_random/rng_current ]; then
	say "hwrng $(cat /sys/class/misc/hw_random/rng_current)"
fi

# --- 4. Test, shell or ready ----------------------------------------------------------------
test_name=
test_timeout=120
shell=0
exit_how=
for word in $cmdline; do
	case "$word" in
	vdk.test=*) test_name="${word#vdk.test=}" ;;
	vdk.timeout=*) test_timeout="${word#vdk.timeout=}" ;;
	vdk.shell=1) shell=1 ;;
	vdk.exit=*) exit_how="${word#vdk.exit=}" ;;
	esac
done

# run_test NAME: run /tests/NAME.sh under a timeout and print the verdict line. The test's exit
# status decides; the first line it writes to $VDK_TEST_DETAIL (if any) is the detail.
run_test() {
	name="$1"
	case "$name" in
	*[!A-Za-z0-9_.-]* | '')
		echo "VDK-TEST: $name: FAIL invalid test name"
		return
		;;
	esac
	script="/tests/$name.sh"
	if [ ! -f "$script" ]; then
		echo "VDK-TEST: $name: FAIL no $script in the initramfs"
		return
	fi
	case "$test_timeout" in *[!0-9]* | '') test_timeout=120 ;; esac

	export VDK_TEST_NAME="$name" VDK_TEST_DETAIL=/tmp/vdk-test-detail
	rm -f "$VDK_TEST_DETAIL"
	say "running $script (timeout ${test_timeout}s)"
	(cd /tests && exec timeout "$test_timeout" sh "$script" </dev/null)
	rc=$?
	detail="$(head -n 1 "$VDK_TEST_DETAIL" 2>/dev/null)"
	if [ "$rc" -eq 0 ]; then
		echo "VDK-TEST: $name: PASS${detail:+ $detail}"
	elif [ "$rc" -eq 143 ]; then
		echo "VDK-TEST: $name: FAIL timed out after ${test_timeout}s${detail:+: $detail}"
	else
		echo "VDK-TEST: $name: FAIL exit status $rc${detail:+: $detail}"
	fi
}

if [ -n "$test_name" ]; then
	run_test "$test_name"
elif [ "$shell" = 1 ]; then
	say "shell (exit to power off)"
	setsid cttyhack sh
else
	say "ready"
fi

# --- 5. Power off ---------------------------------------------------------------------------
finish
