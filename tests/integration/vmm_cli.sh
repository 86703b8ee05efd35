#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vmm_cli.sh - vdk-vmm's command line and its errors.
#
# Every mistake must give one clear "vdk-vmm: ..." message and exit status
# 1 before any guest code runs (nothing on stdout, the guest's console);
# --help and --version exit 0. None of the cases needs /dev/kvm: inputs are
# checked before KVM is opened.
#
# Environment: VDK_VMM (default: <repo>/build/vmm/vdk-vmm).
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (no binary or no python3).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
vmm="${VDK_VMM:-$repo/build/vmm/vdk-vmm}"
mkkernel="$repo/tests/integration/mkkernel.py"

skip() {
	echo "vmm_cli: SKIPPED: $*" >&2
	echo "SKIPPED"
	exit 77
}
[[ -x "$vmm" ]] || skip "no vdk-vmm binary at $vmm (build it: ninja -C build, or set VDK_VMM)"
command -v python3 >/dev/null || skip "python3 not installed (builds the test kernels)"
# Here, or nested in an L1 guest with KVM (lib/vmm_harness.sh): the cases that reach KVM need it.
. "$repo/tests/integration/lib/vmm_harness.sh"
harness_guest=freestanding # no Linux: runs directly where /dev/kvm can run it
harness_run "$@"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
printf '\xf4\xeb\xfd' >"$work/code.bin" # hlt; jmp .-1 (never runs here)
python3 "$mkkernel" pvh "$work/code.bin" "$work/pvh.elf" || skip "mkkernel.py failed"
python3 "$mkkernel" bzimage "$work/code.bin" "$work/old.bzImage" --version 0x020b
python3 "$mkkernel" bzimage "$work/code.bin" "$work/k32.bzImage" --no-64
python3 "$mkkernel" elf-no-note "$work/nonote.elf"
head -c 8192 /dev/urandom >"$work/random.bin"
: >"$work/empty"
mkdir "$work/dir"
truncate -s 1M "$work/disk.img"
k=(--kernel "$work/pvh.elf")

failures=0 cases=0
runner=() # command prefix for the next check (e.g. setpriv)
# check NAME STATUS TEXT ARGS...: vdk-vmm ARGS must exit with STATUS and
# print TEXT; an error (STATUS 1) must print nothing on stdout.
check() {
	local name=$1 want=$2 text=$3 rc out err
	shift 3
	cases=$((cases + 1))
	out=$(timeout 20 "${runner[@]}" "$vmm" "$@" </dev/null 2>"$work/stderr")
	rc=$?
	err=$(<"$work/stderr")
	printf -- '---- %s (exit %d): %s\n' "$name" "$rc" "${err:-${out%%$'\n'*}}"
	if [[ $rc -ne $want ]]; then
		echo "vmm_cli: FAIL: $name: exit status $rc, expected $want" >&2
		failures=$((failures + 1))
	elif ! grep -qF -- "$text" <<<"$out$err"; then
		echo "vmm_cli: FAIL: $name: output lacks '$text'" >&2
		failures=$((failures + 1))
	elif [[ $want -eq 1 && -n "$out" ]]; then
		echo "vmm_cli: FAIL: $name: printed on stdout: $out" >&2
		failures=$((failures + 1))
	elif [[ $want -eq 1 && "$err" != vdk-vmm:* ]]; then
		echo "vmm_cli: FAIL: $name: message does not start with 'vdk-vmm:'" >&2
		failures=$((failures + 1))
	elif [[ $want -eq 1 && $(wc -l <"$work/stderr") -ne 1 ]]; then
		echo "vmm_cli: FAIL: $name: more than one line on stderr" >&2
		failures=$((failures + 1))
	fi
}

# check_one_line NAME: the last case printed exactly one line on stderr.
check_one_line() {
	local n
	n=$(wc -l <"$work/stderr")
	if [[ $n -ne 1 ]]; then
		echo "vmm_cli: FAIL: $1: $n lines on stderr, expected one" >&2
		failures=$((failures + 1))
	fi
}

check help 0 "Usage: vdk-vmm --kernel PATH" --help
check version 0 "vdk-vmm 0." --version
check version-short 0 "vdk-vmm 0." -V
check help-short 0 "Usage: vdk-vmm --kernel PATH" -h
check no-kernel-option 1 "--kernel PATH is required"
check kernel-missing 1 "cannot open kernel $work/nope: No such file" --kernel "$work/nope"
check kernel-directory 1 "not a regular, non-empty file" --kernel "$work/dir"
check kernel-empty 1 "not a regular, non-empty file" --kernel "$work/empty"
check kernel-random 1 "neither a bzImage nor an ELF image with a PVH entry note" \
	--kernel "$work/random.bin"
check kernel-elf-without-note 1 "neither a bzImage nor an ELF image with a PVH entry note" \
	--kernel "$work/nonote.elf"
check kernel-host-binary 1 "neither a bzImage nor" --kernel "$(command -v bash)"
check bzimage-old-protocol 1 "boot protocol < 2.12" --kernel "$work/old.bzImage"
check bzimage-no-64bit-entry 1 "without a 64-bit entry" --kernel "$work/k32.bzImage"
check initrd-missing 1 "cannot open initrd $work/nope" "${k[@]}" --initrd "$work/nope"
check initrd-directory 1 "initrd $work/dir: not a regular" "${k[@]}" --initrd "$work/dir"
check disk-missing 1 "disk $work/nope: No such file" "${k[@]}" --disk "$work/nope"
check disk-directory 1 "not a regular file or block device" "${k[@]}" --disk "$work/dir"
check disk-bad-option 1 "--disk $work/disk.img,bogus: bogus: unknown setting" "${k[@]}" \
	--disk "$work/disk.img,bogus"
check disk-long-serial 1 "serial: at most 20 bytes" "${k[@]}" \
	--disk "$work/disk.img,serial=123456789012345678901"
check vhost-user-missing 1 "vhost-user back-end $work/nope.sock: No such file or directory" \
	"${k[@]}" --vhost-user-blk "$work/nope.sock"
check_one_line vhost-user-missing
check vhost-user-not-a-socket 1 "vhost-user back-end $work/empty: Connection refused" \
	"${k[@]}" --vhost-user-rng "$work/empty"
check_one_line vhost-user-not-a-socket
check vhost-user-blk-bad-option 1 "expected SOCKET[,num-queues=N]" "${k[@]}" \
	--vhost-user-blk "$work/s,num-queues=0"
check vhost-user-rng-bad-option 1 "--vhost-user-rng $work/s,x: expected SOCKET" "${k[@]}" \
	--vhost-user-rng "$work/s,x"
check vhost-user-bad-type 1 "TYPE: blk, rng or a virtio device ID" "${k[@]}" \
	--vhost-user "floppy,$work/s"
check net-bad-spec 1 "bad --net bogus: bogus: unknown setting" "${k[@]}" --net bogus
check net-bad-pairs 1 "queue-pairs: want 1..31" "${k[@]}" --net loopback,queue-pairs=99
check net-bad-mtu 1 "mtu: want 68..65535" "${k[@]}" --net loopback,mtu=5
check net-bad-mac 1 "mac: want a unicast address" "${k[@]}" --net loopback,mac=01:00:5e:00:00:01
check net-bad-key 1 "speed: unknown setting" "${k[@]}" --net tap=x,speed=10
check net-empty-tap 1 "tap: empty" "${k[@]}" --net tap=
check net-no-backend 1 "give one of tap, tap-fd, loopback" "${k[@]}" --net mtu=1500
check net-two-backends 1 "tap: loopback already chosen" "${k[@]}" --net loopback,tap=x
check memory-too-small 1 "too small" "${k[@]}" --memory 1M
check memory-zero 1 "too small" "${k[@]}" --memory 0
check memory-too-large 1 "too large" "${k[@]}" --memory 2T
check memory-overflow 1 "not a size" "${k[@]}" --memory 99999999999999999999G
check memory-garbage 1 "not a size" "${k[@]}" --memory lots
check memory-partial-mib 1 "not a whole MiB" "${k[@]}" --memory 16388K
check cpus-zero 1 "must be 1.." "${k[@]}" --cpus 0
check cpus-garbage 1 "must be 1.." "${k[@]}" --cpus two
check transport-bogus 1 "mmio or pci" "${k[@]}" --transport isa
check timeout-zero 1 "--timeout 0: must be 1..86400 seconds" "${k[@]}" --timeout 0
check timeout-garbage 1 "--timeout soon: must be 1..86400" "${k[@]}" --timeout soon
check timeout-negative 1 "must be 1..86400" "${k[@]}" --timeout -5
check timeout-too-long 1 "must be 1..86400" "${k[@]}" --timeout 86401
check unknown-option 1 "unknown option '--bogus' (see --help)" "${k[@]}" --bogus
check unknown-short-option 1 "unknown option '-x' (see --help)" "${k[@]}" -x
check missing-argument 1 "missing argument for '--kernel'" --kernel
check flag-with-value 1 "option '--rng=1' takes no value" "${k[@]}" --rng=1
check extra-argument 1 "unexpected argument: extra" "${k[@]}" extra
# A value option given twice is an error, not a silent override; --disk
# is the one that repeats.
check kernel-twice 1 "--kernel given more than once" "${k[@]}" "${k[@]}"
check memory-twice 1 "--memory given more than once" "${k[@]}" --memory 64M --memory 128M
check cpus-twice 1 "--cpus given more than once" "${k[@]}" --cpus 1 --cpus 2
check console-twice 1 "--console given more than once" "${k[@]}" --console stdio --console x
check disk-repeatable 1 "disk $work/nope: No such file" "${k[@]}" \
	--disk "$work/disk.img" --disk "$work/nope"
# ",," is a comma inside a --disk value (QEMU's escape).
check disk-comma-escape 1 "disk $work/a,b.img: No such file" "${k[@]}" \
	--disk "$work/a,,b.img,serial=x,,y"
check disk-single-comma 1 "b.img: unknown setting" "${k[@]}" \
	--disk "$work/a,b.img"
check disk-bad-queues 1 "num-queues: want 1..16" "${k[@]}" \
	--disk "$work/disk.img,num-queues=17"
check disk-serial-twice 1 "serial: given twice" "${k[@]}" \
	--disk "$work/disk.img,serial=a,serial=b"

# An unreadable kernel: root reads anything, so drop to nobody if possible.
chmod 000 "$work/code.bin"
if [[ $(id -u) -ne 0 ]]; then
	check kernel-unreadable 1 "Permission denied" --kernel "$work/code.bin"
elif command -v setpriv >/dev/null &&
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$vmm" 2>/dev/null; then
	runner=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	check kernel-unreadable 1 "Permission denied" --kernel "$work/code.bin"
	runner=()
else
	echo "vmm_cli: note: unreadable-kernel case not run (root, and $vmm not runnable as nobody)"
fi

# KVM refusing us: where /dev/kvm is usable (here or in the nested L1 guest).
if [[ -r /dev/kvm && -w /dev/kvm ]]; then
	# /dev/kvm not openable (as nobody; root opens anything).
	chmod 644 "$work/code.bin"
	if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null &&
		setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$vmm" 2>/dev/null &&
		! setpriv --reuid=65534 --regid=65534 --clear-groups test -w /dev/kvm; then
		runner=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		check kvm-permission 1 "cannot open /dev/kvm: Permission denied" "${k[@]}"
		check_one_line kvm-permission
		runner=()
	else
		echo "vmm_cli: note: kvm-permission case not run (needs root and setpriv)"
	fi
	# KVM_CREATE_VCPU (or an eventfd before it) refused: out of file descriptors.
	runner=(bash -c 'ulimit -n 24 && exec "$0" "$@"')
	check kvm-ioctl-refused 1 "Too many open files" "${k[@]}" --cpus 32 --memory 32M
	check_one_line kvm-ioctl-refused
	runner=()
else
	echo "vmm_cli: note: KVM refusal cases not run (no usable /dev/kvm here)"
fi

if [[ $failures -ne 0 ]]; then
	echo "FAIL ($failures of $cases cases)"
	exit 1
fi
echo "PASS ($cases cases)"
exit 0
