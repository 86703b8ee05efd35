#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# vhost-user devices in vdk-vmm (--vhost-user-blk, --vhost-user-rng): external back-ends
# attached as virtio devices through the library's front-end (src/vhost_user_frontend/device.c).
#
# Boots, each with fresh back-ends and fresh images:
#   1. vdk-testguest (virtio-mmio): the writable disk on vdk-vhost-user-blk (serial vdk-rw-0001),
#      the read-only disk on a second vdk-vhost-user-blk (readonly, serial vdk-ro-0001), the rng
#      on vdk-vhost-user-rng. Every check of testguest_vmm.sh (blk init/read/get-id/write/
#      readback/flush/reset-reinit, read-only refusal, rng) PASS, ACPI poweroff, exit 0; on the
#      host, the sector the guest wrote is in the image and the read-only image is unchanged.
#   2. the same over virtio-pci (--transport pci), the writable disk on qemu-storage-daemon
#      (--export type=vhost-user-blk: a back-end nobody here wrote; its serial is fixed,
#      "vhost_user_blk").
#   3. where KVM runs Linux (here, or nested in the L1 guest of lib/vmm_harness.sh): the stock
#      Linux guest of linux_vmm.sh runs the same virtio-blk and rng checks
#      (linux-vmm-tests/vmmlinux.sh, without its hvc0 part) with the writable disk on
#      vdk-vhost-user-blk, the read-only disk on qemu-storage-daemon (writable=off) and the rng
#      on vdk-vhost-user-rng, plus $ROUNDS rounds of O_DIRECT zero/copy/verify of a MiB on the
#      writable disk; the host SIGKILLs the writable disk's back-end during rounds 1 and 2 and
#      starts it again: vdk-vmm reconnects (inflight resubmission) each time, the guest's checks
#      all pass, and on the host the image is byte-exact (MiB 2 = MiB 0, MiB 1 untouched, the
#      text sector), the read-only image unchanged.
#
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (no KVM; or a part could not run: no qemu-storage-daemon,
# no Linux guest — said loudly, the other parts' results are printed). Environment:
# VDK_BUILD_DIR, VDK_VMM, LINUX_VMM_DIR, VDK_NESTED (lib/vmm_harness.sh).
set -uo pipefail

name=vmm_vhost_user
root=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT=${VHOST_USER_VMM_TIMEOUT:-120}

pass() { echo "$name: PASS $*"; exit 0; }
fail() { echo "$name: FAIL $*"; exit 1; }
skip() {
	echo "SKIPPED: $name: $*" >&2
	echo "SKIPPED: $name: $*"
	exit 77
}

. "$root/tests/integration/lib/vmm_harness.sh"
# shellcheck source-path=SCRIPTDIR source=lib/linux_guest.sh
. "$root/tests/integration/lib/linux_guest.sh"
[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m); vdk-vmm boots x86-64 guests"
command -v python3 >/dev/null || skip "python3 not found"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"

# ---- build (on the host; the nested L1 guest gets the results) ---------------------------
build=$(vmm_build_dir /tmp/vdk-vmm-vhost-user-build)
vmm=${VDK_VMM:-$build/vmm/vdk-vmm}
guest=$build/testguest/vdk-testguest
vublk=$build/tools/vdk-vhost-user-blk
vurng=$build/tools/vdk-vhost-user-rng
dir=${LINUX_VMM_DIR:-$root/build/linux-vmm}
if ! harness_in_l1; then
	vmm_build "$build" testguest/vdk-testguest tools/vdk-vhost-user-blk tools/vdk-vhost-user-rng \
		vmm/vdk-vmm || fail "building vdk-vmm, vdk-testguest and the vhost-user back-ends failed"
	# The Linux guest (shared with linux_vmm.sh, built once).
	linux_guest_build "$dir" "$root/tests/integration/linux-vmm-tests" "$dir/build-guest-vu.log" ||
		echo "$name: note: the Linux guest could not be built (see $dir/build-guest-vu.log)"
fi
for f in "$vmm" "$guest" "$vublk" "$vurng"; do [ -e "$f" ] || fail "$f missing after the build"; done

# Here, or nested in an L1 guest (lib/vmm_harness.sh).
harness_run "$@"
[ -e /dev/kvm ] || skip "/dev/kvm does not exist (no KVM here)"
[[ -r /dev/kvm && -w /dev/kvm ]] || skip "/dev/kvm is not readable and writable by $(id -un)"

work=$(mktemp -d /tmp/$name.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# backend LOG SOCKET CMD...: start a back-end listening on SOCKET, wait for the socket.
backend() {
	local log=$1 sock=$2 i
	shift 2
	rm -f "$sock"
	"$@" >"$log" 2>&1 &
	pids+=($!)
	for ((i = 0; i < 100; i++)); do
		[ -S "$sock" ] && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "$log"
	fail "back-end $1 did not listen on $sock"
}
# qsd LOG SOCKET IMAGE: qemu-storage-daemon exporting IMAGE (writable) as vhost-user-blk.
qsd() {
	backend "$1" "$2" qemu-storage-daemon \
		--blockdev "driver=file,node-name=disk0,filename=$3,cache.direct=off" \
		--export "type=vhost-user-blk,id=exp0,node-name=disk0,writable=on,addr.type=unix,addr.path=$2"
}
stop_backends() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	pids=()
}
have_qsd=0
command -v qemu-storage-daemon >/dev/null && have_qsd=1
not_run=()
results=()

# ---- 1, 2: vdk-testguest ---------------------------------------------------------------
tg_images() {
	python3 - "$1" <<'PY' || fail "creating disk images"
import sys
d = sys.argv[1]
magic = b"VDK-TESTDISK-0001"
s0 = magic + bytes((i * 7 + 3) & 0xff for i in range(len(magic), 512))
for n in ("rw.img", "ro.img"):
    with open(f"{d}/{n}", "wb") as f:
        f.write(s0 + bytes(1024 * 1024 - 512))
PY
	cp "$1/ro.img" "$1/ro.orig"
}

# testguest LABEL TRANSPORT RW_BACKEND(vdk|qsd)
testguest() {
	local label=$1 transport=$2 rwb=$3 w=$work/$1 serial=vdk-rw-0001 rc ms start c
	mkdir -p "$w"
	tg_images "$w"
	if [ "$rwb" = qsd ]; then
		serial=vhost_user_blk
		qsd "$w/rw.log" "$w/rw.sock" "$w/rw.img"
	else
		backend "$w/rw.log" "$w/rw.sock" "$vublk" --socket-path="$w/rw.sock" \
			--disk="$w/rw.img,serial=$serial"
	fi
	backend "$w/ro.log" "$w/ro.sock" "$vublk" --socket-path="$w/ro.sock" \
		--disk="$w/ro.img,readonly,serial=vdk-ro-0001"
	backend "$w/rng.log" "$w/rng.sock" "$vurng" --socket-path="$w/rng.sock"
	start=$(date +%s%N)
	timeout "$TIMEOUT" "$vmm" --timeout $((TIMEOUT - 5)) --transport "$transport" \
		--kernel "$guest" --memory 128M \
		--vhost-user-blk "$w/rw.sock" --vhost-user-blk "$w/ro.sock" \
		--vhost-user-rng "$w/rng.sock" \
		--cmdline "vdk.serial=$serial vdk.expect=blk:2,rng:1" \
		</dev/null >"$w/out.log" 2>"$w/vmm.err"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	stop_backends
	tr -d '\r' <"$w/out.log" >"$w/out.txt"
	echo "---- $label ($transport, writable disk on $rwb): vdk-vmm exit $rc, ${ms} ms"
	grep -a '^VDK-TESTGUEST: ' "$w/out.txt" | grep -v ': info: '
	echo "---- $label: vdk-vmm stderr"
	cat "$w/vmm.err"
	echo "---- $label: back-ends"
	cat "$w/rw.log" "$w/ro.log" "$w/rng.log"
	[ "$rc" -ne 124 ] && [ "$rc" -ne 5 ] || fail "$label: the guest did not power off within ${TIMEOUT}s"
	! grep -aq '^VDK-TESTGUEST: .*: FAIL' "$w/out.txt" || fail "$label: a guest check failed"
	grep -aq '^VDK-TESTGUEST: done [0-9]* passed, 0 failed$' "$w/out.txt" ||
		fail "$label: no 'done ... 0 failed' line"
	for c in blk.rw.init blk.rw.read0 blk.rw.read-beyond-end blk.rw.get-id blk.rw.write \
		blk.rw.readback blk.rw.flush blk.rw.reset-reinit blk.ro.init blk.ro.read0 \
		blk.ro.get-id blk.ro.write-refused rng.init rng.read; do
		grep -aq "^VDK-TESTGUEST: $c: PASS" "$w/out.txt" || fail "$label: check '$c' missing"
	done
	[ "$rc" -eq 0 ] || fail "$label: vdk-vmm exit status $rc, expected 0 (ACPI poweroff)"
	python3 - "$w/rw.img" <<'PY' || fail "$label: host: the sector the guest wrote is not in rw.img"
import sys
magic = b"VDK-GUEST-WROTE-"
want = magic + bytes((i * 13 + 5) & 0xff for i in range(len(magic), 512))
d = open(sys.argv[1], "rb").read()
sys.exit(0 if d[8 * 512:9 * 512] == want else 1)
PY
	cmp -s "$w/ro.img" "$w/ro.orig" || fail "$label: host: the read-only image changed"
	results+=("$label ${ms} ms")
	rm -rf "$w"
}

testguest testguest-mmio mmio vdk
if [ "$have_qsd" = 1 ]; then
	testguest testguest-pci-qsd pci qsd
else
	testguest testguest-pci pci vdk
	not_run+=("qemu-storage-daemon back-end: not installed (apt-get install qemu-system-common)")
fi

# ---- 3: a Linux guest; the writable disk's back-end killed and restarted during its I/O ----
ROUNDS=2
linux() {
	local label=$1 w=$work/$1 rc ms start sums rw_sha ro_sha kib i k ro_serial=vdk-linux-ro
	local rwcmd kills=0 roname=vdk
	mkdir -p "$w"
	sums=$(linux_guest_disks "$w" 0x7675) || fail "creating disk images"
	read -r rw_sha ro_sha <<<"$sums"
	cp "$w/ro.img" "$w/ro.orig"
	kib=$(linux_guest_initrd_kib "$dir")
	rwcmd=("$vublk" --socket-path="$w/rw.sock" --disk="$w/rw.img,serial=vdk-linux-rw")
	backend "$w/rw.log" "$w/rw.sock" "${rwcmd[@]}"
	local rwpid=${pids[-1]}
	if [ "$have_qsd" = 1 ]; then
		# The read-only disk on qemu-storage-daemon (its serial is fixed).
		ro_serial=vhost_user_blk roname=qemu-storage-daemon
		backend "$w/ro.log" "$w/ro.sock" qemu-storage-daemon \
			--blockdev "driver=file,node-name=disk0,filename=$w/ro.img,read-only=on" \
			--export "type=vhost-user-blk,id=exp0,node-name=disk0,writable=off,addr.type=unix,addr.path=$w/ro.sock"
	else
		backend "$w/ro.log" "$w/ro.sock" "$vublk" --socket-path="$w/ro.sock" \
			--disk="$w/ro.img,readonly,serial=$ro_serial"
	fi
	backend "$w/rng.log" "$w/rng.sock" "$vurng" --socket-path="$w/rng.sock"
	start=$(date +%s%N)
	timeout "$TIMEOUT" "$vmm" --timeout $((TIMEOUT - 5)) --kernel "$dir/guest/vmlinuz" \
		--initrd "$dir/guest/initramfs.cpio.gz" --memory 256M --cpus 1 \
		--vhost-user-blk "$w/rw.sock" --vhost-user-blk "$w/ro.sock" \
		--vhost-user-rng "$w/rng.sock" --console "$w/serial.log" \
		--cmdline "quiet vdk.test=vmmlinux vdk.timeout=$((TIMEOUT - 10)) vdk.exit=poweroff vdk.cpus=1 vdk.token=t$RANDOM$RANDOM vdk.initrd_kib=$kib vdk.rw_sha=$rw_sha vdk.ro_sha=$ro_sha vdk.ro_serial=$ro_serial vdk.con_lines=0 vdk.io_rounds=$ROUNDS" \
		</dev/null >"$w/out.log" 2>"$w/vmm.err" &
	local vmmpid=$!
	# SIGKILL the writable disk's back-end when the guest starts I/O rounds 1 and 2 (each
	# keeps the disk busy for at least 2 s), and start it again on the same socket.
	for k in 1 2; do
		for ((i = 0; i < TIMEOUT * 10; i++)); do
			grep -aq "vmmlinux: io round $k" "$w/serial.log" 2>/dev/null && break
			kill -0 "$vmmpid" 2>/dev/null || break
			sleep 0.1
		done
		grep -aq "vmmlinux: io round $k" "$w/serial.log" 2>/dev/null || break
		sleep 0.1
		kill -KILL "$rwpid" 2>/dev/null && kills=$((kills + 1))
		wait "$rwpid" 2>/dev/null
		echo "$name: $label: SIGKILLed the writable disk's back-end during I/O round $k"
		sleep 0.3
		"${rwcmd[@]}" >>"$w/rw.log" 2>&1 &
		rwpid=$!
		pids+=("$rwpid")
	done
	wait "$vmmpid"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	stop_backends
	sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$w/serial.log" >"$w/serial.txt"
	echo "---- $label (Linux; rw on vdk-vhost-user-blk, killed $kills times; ro on $roname): vdk-vmm exit $rc, ${ms} ms"
	grep -a -e 'VDK-GUEST' -e 'VDK-TEST' -e 'vmmlinux' "$w/serial.txt"
	echo "---- $label: vdk-vmm stderr"
	cat "$w/vmm.err"
	echo "---- $label: back-ends"
	cat "$w/rw.log" "$w/ro.log" "$w/rng.log"
	# Nested only: the emulation's L2 fault runs the test again in a new L1 (lib/vmm_harness.sh).
	harness_l2_retry "$rc" "$w/vmm.err" "$w/serial.txt" "$label"
	[ "$rc" -ne 124 ] && [ "$rc" -ne 5 ] ||
		{ tail -n 30 "$w/serial.txt"; fail "$label: the guest did not end within ${TIMEOUT}s"; }
	grep -aq 'VDK-TEST: vmmlinux: PASS' "$w/serial.txt" ||
		{ tail -n 30 "$w/serial.txt"; fail "$label: no 'VDK-TEST: vmmlinux: PASS' verdict"; }
	[ "$rc" -eq 0 ] || fail "$label: vdk-vmm exit status $rc, expected 0 (poweroff)"
	[ "$kills" -eq 2 ] || fail "$label: the back-end was killed $kills times, expected 2"
	# Both losses must be seen, and the first reconnection (round 2's I/O needs it); the
	# second may come after the guest already powered off, when its last round finished
	# before the restarted back-end was listening.
	[ "$(grep -c 'went away; reconnecting' "$w/vmm.err")" -eq 2 ] &&
		[ "$(grep -c 'is back' "$w/vmm.err")" -ge 1 ] ||
		fail "$label: vdk-vmm did not report 2 losses and at least 1 reconnection"
	python3 - "$w/rw.img" <<'PY' || fail "$label: host: the image is not byte-exact"
import sys
d = open(sys.argv[1], "rb").read()
m = 1 << 20
if len(d) != 4 * m:
    sys.exit("size %d" % len(d))
if d[2 * m:3 * m] != d[:m]:
    sys.exit("MiB 2 != MiB 0")
if d[m:2 * m] != bytes(m):
    sys.exit("MiB 1 changed")
if not d[3 * m:3 * m + 512].startswith(b"VDK-LINUX-WROTE cpus=1 "):
    sys.exit("no text sector at MiB 3: %r" % d[3 * m:3 * m + 32])
PY
	cmp -s "$w/ro.img" "$w/ro.orig" || fail "$label: host: the read-only image changed"
	results+=("$label ${ms} ms, $kills back-end kills")
	rm -rf "$w"
}

if ! harness_in_l1 && ! harness_kvm_runs_linux; then
	not_run+=("Linux guest: $harness_why")
elif [ ! -f "$dir/guest/vmlinuz" ]; then
	not_run+=("Linux guest: $dir/guest/vmlinuz missing (scripts/build-guest.sh failed)")
else
	linux linux-reconnect
fi

if [ "${#not_run[@]}" -gt 0 ]; then
	echo "$name: passed: ${results[*]}"
	for r in "${not_run[@]}"; do echo "$name: NOT RUN: $r"; done
	skip "parts could not run: ${not_run[*]}"
fi
pass "(${results[*]})"
