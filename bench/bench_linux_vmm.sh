#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_linux_vmm.sh - a stock Linux guest under vdk-vmm and under QEMU's microvm machine
# (`qemu-system-x86_64 -M microvm -enable-kvm`), side by side, runs alternating, the same L2
# kernel and initramfs (scripts/build-guest.sh: Debian 12 cloud kernel, busybox init that
# loads the virtio modules, prints "VDK-GUEST: ready" and powers off through ACPI).
# Where this host's /dev/kvm cannot run Linux the whole benchmark runs nested, inside the L1
# guest of tests/integration/lib/vmm_harness.sh, and so do both VMMs: absolute times under
# emulated nested virtualisation mean little, the ratios in one L1 do.
#
# Both VMMs: 1 vCPU, 256 MiB, a 16 MiB virtio-blk disk and a virtio-rng on virtio-mmio found
# through ACPI, COM1 console, command line "console=ttyS0 panic=-1 pci=off quiet". Per run:
#   first byte   exec -> the first byte on the serial console
#   init         exec -> "VDK-GUEST: init", the first line of the initramfs's /init
#   poweroff     exec -> the process's exit after the guest's ACPI poweroff
#   RSS overhead the VMM's peak RSS (VmHWM) minus the Rss of the guest RAM mapping (for both
#                the mapping of exactly the RAM size: anonymous memory with no vhost-user device),
#                sampled from /proc every 20 ms until exit
# Prints the median of each, and vdk-vmm / QEMU, and vdk-vmm's VDK_VMM_STATS=1 counters of its
# last run (exits to userspace; KVM's own counters of exits and page faults). Goals: init <= 0.7 x QEMU microvm;
# RSS overhead < 5 MiB.
#
# Environment: RUNS (per VMM, default 5), BENCH_TIMEOUT (seconds per run, default 120),
# VDK_VMM, QEMU (default qemu-system-x86_64), VDK_NESTED (lib/vmm_harness.sh),
# VDK_VMM_BASE: another vdk-vmm build (before a change) run alternating with the two, its own
# column (nested: put it where the L1 sysroot gets it, VDK_HARNESS_EXTRA=its directory, not
# under /tmp or this repository).
# Exit: 0 done, 1 a run failed, 77 skipped (no KVM here and no nested L1, no QEMU).
# shellcheck disable=SC2016,SC2054
set -uo pipefail

name=bench_linux_vmm
root=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
TIMEOUT=${BENCH_TIMEOUT:-120}
QEMU=${QEMU:-qemu-system-x86_64}
MEM=256M
CMDLINE="console=ttyS0 panic=-1 pci=off quiet"
dir=$root/build/bench-l2

die() { echo "$name: FAIL $*"; exit 1; }
skip() { echo "SKIPPED: $name: $*"; exit 77; }

. "$root/tests/integration/lib/vmm_harness.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/lib/linux_guest.sh
. "$root/tests/integration/lib/linux_guest.sh"
command -v python3 >/dev/null || skip "python3 not found"
vmm=${VDK_VMM:-$root/build/vmm/vdk-vmm}
linux_guest_prepare "$root/build" "$dir" "" || die "$linux_guest_why"
[ -x "$vmm" ] || die "$vmm missing"
harness_run "$@"
[ -e /dev/kvm ] || skip "no /dev/kvm"
command -v "$QEMU" >/dev/null || skip "$QEMU not installed: nothing to compare with"

work=$(mktemp -d /tmp/$name.XXXXXX)
trap 'rm -rf "$work"' EXIT
truncate -s 16M "$work/disk.img"
kernel=$dir/guest/vmlinuz
initrd=$dir/guest/initramfs.cpio.gz

# runvm.py RAM -- CMD...: run CMD, print "rc first_ms init_ms exit_ms hwm_kib guest_kib"
# (times from just before the fork; -1 when absent). RAM names the guest RAM mapping: a
# substring of its smaps header line, or its exact size in KiB.
cat >"$work/runvm.py" <<'PY'
import os, select, subprocess, sys, time

def smaps_rss(pid, ram):
    by_size, total, match = ram.isdigit(), 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if not first.endswith(":"):
                match = not by_size and ram in line
            elif first == "Size:" and by_size:
                match = int(line.split()[1]) == int(ram)
            elif first == "Rss:" and match:
                total += int(line.split()[1])
    return total

def top_mappings(pid):
    """The five mappings with the most Rss (KiB, name), for the notes."""
    maps, name = [], ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if not first.endswith(":"):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else "[anon]"
            elif first == "Rss:":
                maps.append((int(line.split()[1]), name))
    return sorted(maps, reverse=True)[:5]

ram, cmd = sys.argv[1], sys.argv[3:]
top = []
timeout = float(os.environ.get("BENCH_TIMEOUT", "120"))
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=open(os.environ["RUNVM_ERR"], "wb"))
fd = p.stdout.fileno()
data = bytearray()
first = init = None
guest = hwm = -1
next_sample = t0
while True:
    now = time.monotonic()
    if now - t0 > timeout:
        p.kill()
        break
    ready, _, _ = select.select([fd], [], [], max(0.0, next_sample - now))
    if ready:
        chunk = os.read(fd, 65536)
        t = time.monotonic()
        if not chunk:
            break
        if first is None:
            first = t
        data += chunk
        if init is None and b"VDK-GUEST: init" in data:
            init = t
    if time.monotonic() >= next_sample:
        next_sample = time.monotonic() + 0.02
        try:
            guest = max(guest, smaps_rss(p.pid, ram))
            top = top_mappings(p.pid) or top  # empty once it exits
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except (OSError, ValueError):
            pass
_, status, _ = os.wait4(p.pid, 0)
t_exit = time.monotonic()
open(os.environ["RUNVM_OUT"], "wb").write(data)
with open(os.environ["RUNVM_OUT"] + ".maps", "w") as f:
    for kib, name in top:
        f.write(f"  {kib:8d} KiB  {name}\n")
ms = lambda t: -1 if t is None else round((t - t0) * 1000, 1)
print(os.waitstatus_to_exitcode(status), ms(first), ms(init), ms(t_exit), hwm, guest)
PY

vdk_cmd=("$vmm" --kernel "$kernel" --initrd "$initrd" --memory "$MEM" --cpus 1
	--disk "$work/disk.img" --rng --cmdline "quiet")
qemu_base=("$QEMU" -M microvm -enable-kvm -m "$MEM" -smp 1 -nodefaults -no-user-config
	-display none -serial stdio -no-reboot
	-global virtio-mmio.force-legacy=false
	-drive "id=d0,file=$work/disk.img,format=raw,if=none" -device virtio-blk-device,drive=d0
	-device virtio-rng-device -kernel "$kernel" -initrd "$initrd" -append "$CMDLINE")

# run WHO N: one run; appends its figures to $work/WHO.
run() {
	local who=$1 n=$2 line rc
	if [ "$who" = vdk ] || [ "$who" = base ]; then
		local exe=$vmm
		[ "$who" = base ] && exe=$VDK_VMM_BASE
		line=$(RUNVM_OUT=$work/out RUNVM_ERR=$work/err BENCH_TIMEOUT=$TIMEOUT VDK_VMM_STATS=1 \
			python3 "$work/runvm.py" $((256 * 1024)) -- "$exe" "${vdk_cmd[@]:1}")
		grep -a '^vdk-vmm: ' "$work/err" >"$work/$who.stats"
	else
		line=$(RUNVM_OUT=$work/out RUNVM_ERR=$work/err BENCH_TIMEOUT=$TIMEOUT \
			python3 "$work/runvm.py" $((256 * 1024)) -- "${qemu_base[@]}" "${qemu_cpu[@]}")
	fi
	read -r rc _ <<<"$line"
	if [ "$rc" != 0 ] || ! grep -aq 'VDK-GUEST: ready' "$work/out"; then
		tail -c 1500 "$work/out"
		cat "$work/err"
		die "$who run $n: exit $rc, or no 'VDK-GUEST: ready'"
	fi
	echo "$line" >>"$work/$who"
	echo "$name: $who run $n: $line"
	cp "$work/out.maps" "$work/$who.maps"
}

# QEMU's -cpu: the first model that boots the guest under KVM here.
qemu_cpu=()
for cpu in host max qemu64; do
	qemu_cpu=(-cpu "$cpu")
	if RUNVM_OUT=$work/out RUNVM_ERR=$work/err BENCH_TIMEOUT=$TIMEOUT \
		python3 "$work/runvm.py" 1 -- "${qemu_base[@]}" "${qemu_cpu[@]}" >/dev/null &&
		grep -aq 'VDK-GUEST: ready' "$work/out"; then
		break
	fi
	echo "$name: QEMU -cpu $cpu does not boot the guest here: $(head -n 1 "$work/err")"
	qemu_cpu=()
done
[ ${#qemu_cpu[@]} -gt 0 ] || die "QEMU microvm boots the guest with no -cpu model tried"

# One warm-up each (page cache), then alternating runs.
run vdk 0 >/dev/null
: >"$work/vdk"
[ -z "${VDK_VMM_BASE:-}" ] || [ -x "$VDK_VMM_BASE" ] || die "VDK_VMM_BASE=$VDK_VMM_BASE is not executable here"
for ((i = 1; i <= RUNS; i++)); do
	run vdk "$i"
	run qemu "$i"
	[ -z "${VDK_VMM_BASE:-}" ] || run base "$i"
done

# median WHO FIELD: the median of field FIELD (1-based) over WHO's runs.
median() {
	awk -v f="$2" '{ print $f }' "$work/$1" | sort -n |
		awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m }'
}
overhead() { # WHO: the median of (VmHWM - guest RAM Rss), MiB
	awk '{ print ($5 - $6) / 1024 }' "$work/$1" | sort -n |
		awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f\n", m }'
}
echo
echo "== $name: vdk-vmm vs QEMU microvm (-enable-kvm ${qemu_cpu[*]}), $RUNS runs each, alternating; medians"
if harness_in_l1; then
	echo "   (inside the nested L1 guest: QEMU TCG L1, nested SVM; ratios matter, not absolute times)"
fi
thp=/sys/kernel/mm/transparent_hugepage
echo "   transparent huge pages here: enabled $(cat $thp/enabled 2>/dev/null || echo '(none)'), shmem_enabled $(cat $thp/shmem_enabled 2>/dev/null || echo '(none)')"
printf '%-34s %10s %10s %12s\n' metric vdk-vmm QEMU vdk/QEMU
for m in "first serial byte (ms):2" "init (ms):3" "poweroff (ms):4"; do
	label=${m%:*} f=${m##*:}
	v=$(median vdk "$f") q=$(median qemu "$f")
	printf '%-34s %10s %10s %12s\n' "exec -> $label" "$v" "$q" "$(awk -v a="$v" -v b="$q" 'BEGIN { printf "%.2f", a / b }')"
done
v=$(overhead vdk) q=$(overhead qemu)
printf '%-34s %10s %10s %12s\n' "RSS overhead (MiB)" "$v" "$q" "$(awk -v a="$v" -v b="$q" 'BEGIN { printf "%.2f", a / b }')"
printf '%-34s %10s %10s\n' "guest RAM touched (MiB)" \
	"$(awk '{ s += $6 } END { printf "%.1f", s / NR / 1024 }' "$work/vdk")" \
	"$(awk '{ s += $6 } END { printf "%.1f", s / NR / 1024 }' "$work/qemu")"
init_ratio=$(awk -v a="$(median vdk 3)" -v b="$(median qemu 3)" 'BEGIN { printf "%.2f", a / b }')
echo "goal exec -> init <= 0.70 x QEMU microvm: $init_ratio $(awk -v r="$init_ratio" 'BEGIN { print (r <= 0.70) ? "(met)" : "(NOT met)" }')"
echo "goal RSS overhead < 5 MiB: $v MiB $(awk -v r="$v" 'BEGIN { print (r < 5) ? "(met)" : "(NOT met)" }')"
echo "vdk-vmm's VDK_VMM_STATS=1 of the last run (exits to userspace, KVM's counters):"
sed 's/^/  /' "$work/vdk.stats"
if [ -n "${VDK_VMM_BASE:-}" ]; then
	echo "== the same for VDK_VMM_BASE=$VDK_VMM_BASE (medians; /QEMU as above)"
	for m in "first serial byte (ms):2" "init (ms):3" "poweroff (ms):4"; do
		label=${m%:*} f=${m##*:}
		v=$(median base "$f") q=$(median qemu "$f")
		printf '%-34s %10s %10s %12s\n' "exec -> $label" "$v" "$q" "$(awk -v a="$v" -v b="$q" 'BEGIN { printf "%.2f", a / b }')"
	done
	echo "VDK_VMM_STATS=1 of its last run:"
	sed 's/^/  /' "$work/base.stats"
fi
echo "largest mappings by Rss at the last sample of the last run (guest RAM included):"
for who in vdk qemu; do
	echo " $who:"
	cat "$work/$who.maps"
done
