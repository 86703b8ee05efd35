#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_transport_linux.sh - a stock Linux guest under vdk-vmm over virtio-pci
# (--transport pci) and over virtio-mmio (--transport mmio), side by side, runs alternating,
# the same L2 kernel and initramfs (scripts/build-guest.sh with bench/transport-l2-tests).
# Where this host's /dev/kvm cannot run Linux the whole benchmark runs nested, inside the L1
# guest of tests/integration/lib/vmm_harness.sh: absolute times under emulated nested
# virtualisation mean little, the ratios in one L1 do.
#
# Each run: 1 vCPU, 256 MiB, a 16 MiB virtio-blk disk and a virtio-rng, COM1 console. The
# guest boots and runs /tests/blkread.sh: $PASSES passes of O_DIRECT reads of $BS bytes over
# the whole disk (dd), timed in the guest. Per run:
#   init         exec -> "VDK-GUEST: init" on COM1 (boot to the initramfs's /init)
#   blk reads/s  the guest's read requests per second in the loop
#   notify/s     queue notifications (ioeventfd: QueueNotify on virtio-mmio, the notify
#                capability on virtio-pci) per second of the guest's whole run, from
#                VDK_VMM_STATS; and notifications per read request
# Prints the median of each and pci / mmio.
#
# Environment: RUNS (per transport, default 3), PASSES (default 2), BS (default 4096),
# BENCH_TIMEOUT (seconds per run, default 180), VDK_VMM, VDK_NESTED (lib/vmm_harness.sh).
# Exit: 0 done, 1 a run failed, 77 skipped (no KVM here and no nested L1).
# shellcheck disable=SC2016
set -uo pipefail

name=bench_transport_linux
root=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
PASSES=${PASSES:-2}
BS=${BS:-4096}
TIMEOUT=${BENCH_TIMEOUT:-180}
dir=$root/build/bench-transport-l2

die() { echo "$name: FAIL $*"; exit 1; }
skip() { echo "SKIPPED: $name: $*"; exit 77; }

. "$root/tests/integration/lib/vmm_harness.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/integration/lib/linux_guest.sh
. "$root/tests/integration/lib/linux_guest.sh"
command -v python3 >/dev/null || skip "python3 not found"
vmm=${VDK_VMM:-$root/build/vmm/vdk-vmm}
linux_guest_prepare "$root/build" "$dir" "$root/bench/transport-l2-tests" ||
	die "$linux_guest_why"
[ -x "$vmm" ] || die "$vmm missing"
harness_run "$@"
[ -e /dev/kvm ] || skip "no /dev/kvm"

work=$(mktemp -d /tmp/$name.XXXXXX)
trap 'rm -rf "$work"' EXIT
head -c 16M /dev/urandom >"$work/disk.img" || die "creating the disk image"

# runvm.py -- CMD...: run CMD, print "rc init_ms exit_ms" (from just before the fork).
cat >"$work/runvm.py" <<'PY'
import os, select, subprocess, sys, time
cmd = sys.argv[2:]
timeout = float(os.environ.get("BENCH_TIMEOUT", "180"))
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=open(os.environ["RUNVM_ERR"], "wb"))
fd, data, init = p.stdout.fileno(), bytearray(), None
while True:
    if time.monotonic() - t0 > timeout:
        p.kill()
        break
    ready, _, _ = select.select([fd], [], [], 1.0)
    if ready:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
        if init is None and b"VDK-GUEST: init" in data:
            init = time.monotonic()
_, status, _ = os.wait4(p.pid, 0)
t_exit = time.monotonic()
open(os.environ["RUNVM_OUT"], "wb").write(data)
ms = lambda t: -1 if t is None else round((t - t0) * 1000, 1)
print(os.waitstatus_to_exitcode(status), ms(init), ms(t_exit))
PY

# run TRANSPORT N: one run; appends "init_ms reads_per_s notify_per_s notify_per_read".
run() {
	local tr=$1 n=$2 line rc init reqs ms guest_ms notifies
	line=$(VDK_VMM_STATS=1 RUNVM_OUT=$work/out RUNVM_ERR=$work/err BENCH_TIMEOUT=$TIMEOUT \
		python3 "$work/runvm.py" -- "$vmm" --transport "$tr" --kernel "$dir/guest/vmlinuz" \
		--initrd "$dir/guest/initramfs.cpio.gz" --memory 256M --cpus 1 \
		--disk "$work/disk.img,readonly" --rng \
		--cmdline "quiet vdk.test=blkread vdk.exit=poweroff vdk.timeout=$((TIMEOUT - 10)) vdk.bs=$BS vdk.passes=$PASSES")
	read -r rc init _ <<<"$line"
	if [ "$rc" != 0 ] || ! grep -aq 'VDK-TEST: blkread: PASS' "$work/out"; then
		tail -c 1500 "$work/out"
		cat "$work/err"
		die "$tr run $n: exit $rc, or no 'VDK-TEST: blkread: PASS'"
	fi
	reqs=$(sed -n 's/.*BLKREAD requests=\([0-9]*\) .*/\1/p' "$work/out" | head -n 1)
	ms=$(sed -n 's/.*BLKREAD .* ms=\([0-9]*\).*/\1/p' "$work/out" | head -n 1)
	guest_ms=$(sed -n 's/.*guest ran \([0-9.]*\) ms.*/\1/p' "$work/err")
	notifies=$(sed -n 's/.* \([0-9]*\) queue notifications.*/\1/p' "$work/err")
	[ -n "$reqs" ] && [ -n "$ms" ] && [ -n "$guest_ms" ] && [ -n "$notifies" ] ||
		die "$tr run $n: missing figures (guest: '$reqs' '$ms'; vdk-vmm: '$guest_ms' '$notifies')"
	[ "$ms" -gt 0 ] || ms=10
	awk -v i="$init" -v r="$reqs" -v m="$ms" -v g="$guest_ms" -v q="$notifies" \
		'BEGIN { printf "%s %.0f %.0f %.2f\n", i, r * 1000 / m, q * 1000 / g, q / r }' >>"$work/$tr"
	echo "$name: $tr run $n: init ${init} ms, $reqs reads of $BS B in $ms ms, $notifies notifications in $guest_ms ms"
}

run pci 0 >/dev/null # warm-up (page cache)
for ((i = 1; i <= RUNS; i++)); do
	run pci "$i"
	run mmio "$i"
done

median() { # TRANSPORT FIELD
	awk -v f="$2" '{ print $f }' "$work/$1" | sort -n |
		awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m }'
}
row() { # LABEL FIELD
	local p m
	p=$(median pci "$2")
	m=$(median mmio "$2")
	awk -v l="$1" -v p="$p" -v m="$m" 'BEGIN { printf "%-26s %12s %12s %8.2f\n", l, p, m, m ? p / m : 0 }'
}
echo "$name: medians of $RUNS runs each, 1 vCPU, $PASSES passes of $BS-byte O_DIRECT reads of 16 MiB"
printf '%-26s %12s %12s %8s\n' "" "virtio-pci" "virtio-mmio" "pci/mmio"
row "boot to init (ms)" 1
row "blk reads/s" 2
row "notifications/s (run)" 3
row "notifications per read" 4
