#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_vmm.sh - vdk-vmm against QEMU's microvm machine, both on KVM, with
# the same guests, run alternately; prints a table of medians and ratios.
#
#   (a) start-up: process start -> the guest's first serial byte, and
#       process start -> process exit (the guest powers off), for
#         testguest  vdk-testguest (testguest/): two virtio-blk disks (one
#                    read-only), virtio-rng, virtio-console when vdk-vmm has
#                    one; its 20-odd checks must all pass in every run
#         minimal    bench/notify_guest in "boot" mode: finds the
#                    virtio-rng device, prints a line, powers off
#   (b) memory: the VMM's peak RSS (VmHWM) minus the guest RAM the guest
#       touched (the Rss of the guest RAM mapping: vdk-vmm's
#       memfd:vdk-vmm-ram-*, QEMU's anonymous mapping of exactly the RAM
#       size), both from /proc/PID, sampled every 2 ms until exit, with
#       vdk-testguest and 128 MiB RAM. Goal: < 5 MiB for vdk-vmm. RSS
#       counts the shared libraries' resident pages too (libc: ~1.2 MiB).
#   (c) MMIO exits: bench/notify_guest writes one virtio-mmio register of
#       a virtio-rng device ITERS times; the host times the guest's
#       "start" and "end" lines as they arrive and divides:
#         mmio    QueueSel writes: each one a KVM_EXIT_MMIO that the VMM
#                 dispatches in userspace (vdk-vmm: vdk_bus -> virtio-mmio
#                 register file)
#         notify  QueueNotify writes after DRIVER_OK: the ioeventfd path
#                 (KVM signals the eventfd, the device thread wakes)
#       Also per write: the process's CPU time (user + system, from
#       wait4, minus the median of the minimal guest's), which a loaded
#       host disturbs less than wall time. vdk-vmm's own count of
#       userspace exits (VDK_VMM_STATS=1) is shown per loop write, to show
#       which path the writes took.
#
# QEMU runs with -accel kvm and the first -cpu model that boots the
# minimal guest (on PVM-backed KVM, -cpu host fails to set MSR 0x10a
# (IA32_ARCH_CAPABILITIES); "host,-arch-capabilities" works). If none does,
# QEMU falls back to TCG and the table says so loudly: those are not KVM
# figures.
#
# Environment: BUILD (build directory, default build), RUNS (runs per VMM
# for (a), default 10), MEM_RUNS (default 3), LOOP_RUNS (default 5), ITERS
# (MMIO writes per loop, default 100000), QEMU (binary), VDK_VMM (binary,
# default $BUILD/vmm/vdk-vmm), BENCH_TIMEOUT (seconds per run, default 120).
# Exit: 0 done, 1 a run failed, 77 skipped (no usable /dev/kvm, no python3
# or binutils).
# awk programs in single quotes (SC2016); QEMU options with commas (SC2054)
# shellcheck disable=SC2016,SC2054
set -uo pipefail

name=bench_vmm
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
BUILD=${BUILD:-build}
RUNS=${RUNS:-10}
MEM_RUNS=${MEM_RUNS:-3}
LOOP_RUNS=${LOOP_RUNS:-5}
ITERS=${ITERS:-100000}
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${BENCH_TIMEOUT:-120}
MEM=128M
MEM_KIB=131072

die() { echo "$name: FAIL: $*" >&2; exit 1; }
skip() { echo "$name: SKIPPED: $*" >&2; echo "$name: SKIPPED: $*"; exit 77; }

[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m); the guests are x86-64"
[ -e /dev/kvm ] || skip "/dev/kvm does not exist: vdk-vmm needs KVM"
[[ -r /dev/kvm && -w /dev/kvm ]] || skip "/dev/kvm is not readable and writable by $(id -un)"
for tool in python3 as ld; do
	command -v "$tool" >/dev/null || skip "$tool not installed (python3, binutils needed)"
done

# ---- build -------------------------------------------------------------------------
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null || die "meson setup $BUILD failed"
ninja -C "$BUILD" vmm/vdk-vmm testguest/vdk-testguest >/dev/null ||
	die "ninja -C $BUILD vmm/vdk-vmm testguest/vdk-testguest failed"
vmm=${VDK_VMM:-$BUILD/vmm/vdk-vmm}
tg=$BUILD/testguest/vdk-testguest
[[ -x "$vmm" && -f "$tg" ]] || die "$vmm or $tg missing after the build"

work=$(mktemp -d /tmp/$name.XXXXXX)
trap 'rm -rf "$work"' EXIT
for m in boot mmio notify; do
	bench/notify_guest/build.sh "$m" "$ITERS" "$work/$m.elf" ||
		die "building bench/notify_guest ($m) failed"
done

# ---- the run helper: timestamps and memory of one VMM process -------------------------
# runvm.py [--ram NAME|KIB] [--out FILE] [--err FILE] -- CMD...
# prints "rc first_ms exit_ms start_ms end_ms hwm_kib guest_kib cpu_ms":
# times from just before fork; start/end are the arrival of the guest's
# "VDK-NOTIFY: start|end" lines (-1 if absent); cpu_ms the process's user
# + system time (wait4). With --ram, /proc/PID is sampled every 2 ms until
# exit: hwm_kib is the last VmHWM seen, guest_kib the largest Rss of the
# guest RAM mapping(s) (a substring of the mapping's name, or its exact
# size in KiB); both -1 without --ram. (wait4's ru_maxrss is no use here:
# it counts the forked Python before exec.)
cat >"$work/runvm.py" <<'PY'
import os, select, subprocess, sys, time

def smaps_rss(pid, ram):
    """Sum of Rss (KiB) of the mappings whose header line contains ram,
    or, when ram is a number, whose Size is exactly ram KiB."""
    by_size, total, match = ram.isdigit(), 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if not first.endswith(":"):  # a mapping's header line
                match = not by_size and ram in line
            elif first == "Size:" and by_size:
                match = int(line.split()[1]) == int(ram)
            elif first == "Rss:" and match:
                total += int(line.split()[1])
    return total

def main(argv):
    ram = out = err = None
    timeout = float(os.environ.get("BENCH_TIMEOUT", "120"))
    while argv[0] != "--":
        opt, val = argv[0], argv[1]
        argv = argv[2:]
        if opt == "--ram": ram = val
        elif opt == "--out": out = val
        elif opt == "--err": err = val
    cmd = argv[1:]
    errf = open(err, "wb") if err else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=errf)
    fd = p.stdout.fileno()
    data, scanned = bytearray(), 0
    first = None
    marks = {b"VDK-NOTIFY: start": None, b"VDK-NOTIFY: end": None}
    guest = hwm = -1
    while True:
        now = time.monotonic()
        if now - t0 > timeout:
            p.kill()
            break
        wait = 0.002 if ram else timeout - (now - t0)
        ready, _, _ = select.select([fd], [], [], wait)
        if ready:
            chunk = os.read(fd, 65536)
            t = time.monotonic()
            if not chunk:
                break
            if first is None:
                first = t
            data += chunk
            nl = data.rfind(b"\n")
            if nl >= scanned:
                for line in bytes(data[scanned:nl]).split(b"\n"):
                    for k in marks:
                        if marks[k] is None and k in line:
                            marks[k] = t
                scanned = nl + 1
        if ram:
            try:
                guest = max(guest, smaps_rss(p.pid, ram))
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            hwm = max(hwm, int(line.split()[1]))
            except (OSError, ValueError):
                pass
    _, status, ru = os.wait4(p.pid, 0)
    t_exit = time.monotonic()
    p.returncode = os.waitstatus_to_exitcode(status)
    if out:
        with open(out, "wb") as f:
            f.write(data)
    ms = lambda t: -1 if t is None else round((t - t0) * 1000, 3)
    print(p.returncode, ms(first), ms(t_exit), ms(marks[b"VDK-NOTIFY: start"]),
          ms(marks[b"VDK-NOTIFY: end"]), hwm, guest,
          round((ru.ru_utime + ru.ru_stime) * 1000, 3))

main(sys.argv[1:])
PY
runvm() { BENCH_TIMEOUT=$TIMEOUT python3 "$work/runvm.py" "$@"; }

# ---- QEMU: which accelerator and -cpu ----------------------------------------------
qemu_base=(-M microvm -m "$MEM" -nodefaults -no-user-config -display none
	-serial stdio -global virtio-mmio.force-legacy=false)
qemu_accel=()
qemu_label=
if ! command -v "$QEMU" >/dev/null; then
	echo "$name: NOTE: $QEMU not installed: vdk-vmm figures only" >&2
else
	for cpu in host,-arch-capabilities max,-arch-capabilities qemu64 kvm64; do
		read -r rc _ <<<"$(runvm --out "$work/probe.out" --err "$work/probe.err" -- \
			"$QEMU" "${qemu_base[@]}" -accel kvm -cpu "$cpu" \
			-kernel "$work/boot.elf" -device virtio-rng-device)"
		if [ "$rc" = 0 ] && grep -aq 'VDK-NOTIFY: end' "$work/probe.out"; then
			qemu_accel=(-accel kvm -cpu "$cpu")
			qemu_label="QEMU microvm, KVM, -cpu $cpu"
			break
		fi
		echo "$name: QEMU -accel kvm -cpu $cpu does not run here: $(head -n1 "$work/probe.err")" >&2
	done
	if [ ${#qemu_accel[@]} -eq 0 ]; then
		qemu_accel=(-accel tcg)
		qemu_label="QEMU microvm, TCG (NOT KVM)"
		cat >&2 <<-EOF
			$name: ***************************************************************
			$name: QEMU cannot use KVM here with any -cpu tried: comparing against
			$name: QEMU microvm under TCG. These are NOT KVM-to-KVM figures.
			$name: ***************************************************************
		EOF
	fi
fi
qemu=("$QEMU" "${qemu_base[@]}" "${qemu_accel[@]}")

# ---- the test guest's devices, the same on both sides ------------------------------------
python3 - "$work" <<'PY' || die "creating disk images"
import sys
magic = b"VDK-TESTDISK-0001"
s0 = magic + bytes((i * 7 + 3) & 0xff for i in range(len(magic), 512))
for n in ("rw.img", "ro.img"):
    with open(f"{sys.argv[1]}/{n}", "wb") as f:
        f.write(s0 + bytes(1024 * 1024 - 512))
PY
con_opt=$("$vmm" --help 2>&1 | grep -i 'virtio-console' | grep -o -m1 -- '--[a-z0-9-]*' | head -n1)
expect=blk:2,rng:1
vdk_con=() qemu_con=()
if [ -n "$con_opt" ]; then
	expect=blk:2,rng:1,console:1
	vdk_con=("$con_opt" "$work/vdk-console.out")
	qemu_con=(-chardev file,id=con0,path="$work/qemu-console.out"
		-device virtio-serial-device -device virtconsole,chardev=con0)
fi
append="vdk.serial=vdk-rw-0001 vdk.expect=$expect"
vdk_tg=("$vmm" --kernel "$tg" --memory "$MEM" --rng
	--disk "$work/rw.img,serial=vdk-rw-0001"
	--disk "$work/ro.img,readonly,serial=vdk-ro-0001"
	"${vdk_con[@]}" --cmdline "$append")
qemu_tg=("${qemu[@]}" -kernel "$tg" -append "$append"
	-drive if=none,id=d0,file="$work/rw.img",format=raw
	-device virtio-blk-device,drive=d0,serial=vdk-rw-0001
	-drive if=none,id=d1,file="$work/ro.img",format=raw,readonly=on
	-device virtio-blk-device,drive=d1,serial=vdk-ro-0001
	-device virtio-rng-device "${qemu_con[@]}")

# one KIND VMM: run one case, check it, append its figures to $work/KIND.VMM
one() {
	local kind=$1 who=$2 ram=() cmd env=() res rc
	case $kind-$who in
	testguest-vdk | mem-vdk) cmd=("${vdk_tg[@]}") ;;
	testguest-qemu | mem-qemu) cmd=("${qemu_tg[@]}") ;;
	minimal-vdk) cmd=("$vmm" --kernel "$work/boot.elf" --memory "$MEM" --rng) ;;
	minimal-qemu) cmd=("${qemu[@]}" -kernel "$work/boot.elf" -device virtio-rng-device) ;;
	mmio-vdk | notify-vdk)
		cmd=("$vmm" --kernel "$work/$kind.elf" --memory "$MEM" --rng)
		env=(VDK_VMM_STATS=1) ;;
	mmio-qemu | notify-qemu)
		cmd=("${qemu[@]}" -kernel "$work/$kind.elf" -device virtio-rng-device) ;;
	esac
	if [ "$kind" = mem ]; then
		[ "$who" = vdk ] && ram=(--ram memfd:vdk-vmm-ram) || ram=(--ram "$MEM_KIB")
	fi
	res=$(env "${env[@]}" BENCH_TIMEOUT="$TIMEOUT" python3 "$work/runvm.py" "${ram[@]}" \
		--out "$work/last.out" --err "$work/last.err" -- "${cmd[@]}")
	read -r rc _ <<<"$res"
	local ok=1
	[ "$rc" = 0 ] || ok=0
	case $kind in
	testguest | mem)
		grep -aq '^VDK-TESTGUEST: done [0-9]* passed, 0 failed' "$work/last.out" || ok=0 ;;
	*) grep -aq 'VDK-NOTIFY: end' "$work/last.out" || ok=0 ;;
	esac
	if [ $ok = 0 ]; then
		tr -d '\r' <"$work/last.out" | tail -n 20
		cat "$work/last.err"
		die "$kind under $who: exit $rc or guest output incomplete: ${cmd[*]}"
	fi
	local exits
	exits=$(sed -n 's/.* \([0-9]*\) exits to userspace.*/\1/p' "$work/last.err")
	echo "$res ${exits:--1}" >>"$work/$kind.$who"
}

# alternate KIND N: N runs of each VMM, alternating, order flipped each round
alternate() {
	local kind=$1 n=$2 i
	for ((i = 0; i < n; i++)); do
		if [ -n "$qemu_label" ] && ((i % 2)); then
			one "$kind" qemu
			one "$kind" vdk
		else
			one "$kind" vdk
			[ -z "$qemu_label" ] || one "$kind" qemu
		fi
	done
}

echo "$name: vdk-vmm: $vmm; against: ${qemu_label:-nothing (no QEMU)}" >&2
echo "$name: (a) start-up, $RUNS runs each ..." >&2
alternate testguest "$RUNS"
alternate minimal "$RUNS"
echo "$name: (b) memory, $MEM_RUNS runs each ..." >&2
alternate mem "$MEM_RUNS"
echo "$name: (c) MMIO loops of $ITERS writes, $LOOP_RUNS runs each ..." >&2
alternate mmio "$LOOP_RUNS"
alternate notify "$LOOP_RUNS"

# ---- figures ------------------------------------------------------------------------
# Fields of each result line: 1 rc, 2 first_ms, 3 exit_ms, 4 start_ms,
# 5 end_ms, 6 hwm_kib, 7 guest_kib, 8 cpu_ms, 9 vdk-vmm userspace exits.
# fig KIND WHO EXPR: the median over runs of an awk expression of the fields
fig() {
	local f=$work/$1.$2
	[ -s "$f" ] || { echo -; return; }
	awk -v iters="$ITERS" "{ print $3 }" "$f" | sort -g |
		awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
			printf "%.6g\n", m }'
}
# row LABEL UNIT BETTER V Q: BETTER is "low" or "high"
row() {
	awk -v l="$1" -v u="$2" -v b="$3" -v v="$4" -v q="$5" '
	function fmt(x) {
		if (x == "-") return x
		return sprintf(x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : "%.2f", x)
	}
	BEGIN {
		if (q == "-" || v + 0 <= 0 || q + 0 <= 0) { r = "-"; w = "" }
		else {
			r = sprintf("%.2f", q / v)
			x = (b == "low") ? q / v : v / q
			if (x >= 1) w = sprintf("vdk-vmm %.2fx %s", x, b == "low" ? "better (lower)" : "better (higher)")
			else w = sprintf("vdk-vmm %.2fx %s", 1 / x, b == "low" ? "worse (higher)" : "worse (lower)")
		}
		printf "%-44s %12s %12s %8s  %s\n", l " (" u ")", fmt(v), fmt(q), r, w }'
}

mib='$6 / 1024' gmib='$7 / 1024' ohd='($6 - $7) / 1024'
rate='iters / (($5 - $4) / 1000)'
echo
echo "== $name: vdk-vmm vs ${qemu_label:-(no QEMU)}; guest RAM $MEM; medians"
echo "   (a) $RUNS runs, (b) $MEM_RUNS runs, (c) $LOOP_RUNS runs of $ITERS writes each, alternating"
printf '%-44s %12s %12s %8s  %s\n' metric vdk-vmm QEMU QEMU/vdk ""
row "(a) testguest: start -> first serial byte" ms low "$(fig testguest vdk '$2')" "$(fig testguest qemu '$2')"
row "(a) testguest: start -> exit" ms low "$(fig testguest vdk '$3')" "$(fig testguest qemu '$3')"
row "(a) minimal guest: start -> first byte" ms low "$(fig minimal vdk '$2')" "$(fig minimal qemu '$2')"
row "(a) minimal guest: start -> exit" ms low "$(fig minimal vdk '$3')" "$(fig minimal qemu '$3')"
row "(b) peak RSS" MiB low "$(fig mem vdk "$mib")" "$(fig mem qemu "$mib")"
row "(b) guest RAM touched" MiB low "$(fig mem vdk "$gmib")" "$(fig mem qemu "$gmib")"
row "(b) VMM overhead = peak RSS - guest RAM" MiB low "$(fig mem vdk "$ohd")" "$(fig mem qemu "$ohd")"
row "(c) MMIO writes, userspace dispatch" "exits/s" high "$(fig mmio vdk "$rate")" "$(fig mmio qemu "$rate")"
row "(c) QueueNotify writes, ioeventfd" "writes/s" high "$(fig notify vdk "$rate")" "$(fig notify qemu "$rate")"
row "(c) MMIO write: wall time per exit" "us" low "$(fig mmio vdk '($5 - $4) * 1000 / iters')" "$(fig mmio qemu '($5 - $4) * 1000 / iters')"
row "(c) QueueNotify: wall time per write" "us" low "$(fig notify vdk '($5 - $4) * 1000 / iters')" "$(fig notify qemu '($5 - $4) * 1000 / iters')"
bv=$(fig minimal vdk '$8') bq=$(fig minimal qemu '$8')
row "(c) MMIO write: CPU time per exit" "us" low "$(fig mmio vdk "(\$8 - $bv) * 1000 / iters")" "$(fig mmio qemu "(\$8 - ${bq/-/0}) * 1000 / iters")"
row "(c) QueueNotify: CPU time per write" "us" low "$(fig notify vdk "(\$8 - $bv) * 1000 / iters")" "$(fig notify qemu "(\$8 - ${bq/-/0}) * 1000 / iters")"
echo
echo "vdk-vmm userspace exits per loop write (VDK_VMM_STATS): mmio $(fig mmio vdk '$9 / iters'), notify $(fig notify vdk '$9 / iters')"
ovh=$(fig mem vdk "$ohd")
if awk -v o="$ovh" 'BEGIN { exit !(o < 5) }'; then
	echo "(b) goal: vdk-vmm overhead ${ovh} MiB < 5 MiB: met"
else
	echo "(b) goal: vdk-vmm overhead ${ovh} MiB < 5 MiB: NOT MET"
fi
[ "${qemu_label#*TCG}" = "$qemu_label" ] ||
	echo "NOTE: QEMU ran under TCG, not KVM: the QEMU column is not a KVM figure."
echo
echo "raw (ms from fork: first byte, exit; per run):"
for k in testguest minimal; do
	for w in vdk qemu; do
		[ -s "$work/$k.$w" ] && echo "  $k $w: $(awk '{ printf "%.0f/%.0f ", $2, $3 }' "$work/$k.$w")"
	done
done
for k in mmio notify; do
	for w in vdk qemu; do
		[ -s "$work/$k.$w" ] && echo "  $k $w (ms in loop): $(awk '{ printf "%.0f ", $5 - $4 }' "$work/$k.$w")"
	done
done
exit 0
