#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# nested_smp_rate.sh - failure rate of short multi-vCPU Linux boots under vdk-vmm, for several
# variants of the environment, alternated boot by boot inside ONE L1 guest so that load
# affects every variant alike (lib/vmm_harness.sh runs it nested where /dev/kvm cannot boot
# Linux). A diagnosis tool, not a test: it never fails on a guest fault, it counts them.
#
# Each boot: build/linux-vmm's Debian guest (linux_vmm.sh prepares it), 256 MiB, --cpus
# $VDK_RATE_CPUS, virtio-mmio (or $VDK_RATE_TRANSPORT), a disk and the rng, `quiet`, no vdk.test: the
# guest's /init reports "VDK-GUEST: ready" and powers off (exit 0). Anything else (triple
# fault, timeout, L1 wedge) is a failure of that variant.
#
# Environment:
#   VDK_RATE_VARIANTS  space-separated NAME=ENV[,ENV...]: ENV is VAR=VALUE in vdk-vmm's
#                  environment, or VMM=PATH, another vdk-vmm binary (list it in
#                  VDK_HARNESS_EXTRA so that it reaches L1), or "-" for none; default "A=-".
#                  Example: VDK_RATE_VARIANTS="A=- B=VMM=/tmp/vdk-vmm-patched"; QEMU=1 boots
#                  the same guest under QEMU microvm with L1's KVM instead (the cross-check:
#                  does the fault come from the nested emulation or from vdk-vmm?)
#   VDK_RATE_ROUNDS    rounds (each boots every variant once, in turn); default 40
#   VDK_RATE_SECONDS   start no new round after this many seconds; default 2400
#   VDK_RATE_FIRST     index of the variant that starts each round (default 0), to resume a
#                  rotation in a new L1 after a wedged one
#   VDK_RATE_CPUS      vCPUs per boot (default 4); VDK_RATE_TRANSPORT (default mmio)
#   VDK_VMM        the vdk-vmm to run (default build/vmm/vdk-vmm)
# Output: "rate: <variant> boot <n> rc=<rc> <ms> ms [AnonHugePages]" per boot, then
# "rate: <variant> failed <f> of <n>" per variant. Exit 0 when every boot ran.
set -uo pipefail

name=nested_smp_rate
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/integration/lib/vmm_harness.sh"
dir=$root/build/linux-vmm
vmm=${VDK_VMM:-$root/build/vmm/vdk-vmm}
if ! harness_in_l1; then
	[ -f "$dir/guest/vmlinuz" ] || { echo "$name: run tests/integration/linux_vmm.sh once to build $dir"; exit 77; }
	[ -x "$vmm" ] || { echo "$name: $vmm missing"; exit 77; }
fi
harness_run "$@"
[ -e /dev/kvm ] || { echo "SKIPPED: $name: no /dev/kvm"; exit 77; }

read -r -a variants <<<"${VDK_RATE_VARIANTS:-A=-}"
rounds=${VDK_RATE_ROUNDS:-40}
limit=${VDK_RATE_SECONDS:-2400}
cpus=${VDK_RATE_CPUS:-4}
work=$(mktemp -d /tmp/$name.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "rate: L1 THP enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)," \
	"defrag: $(cat /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null), $(nproc) CPUs"
declare -A fails boots
for v in "${variants[@]}"; do fails[${v%%=*}]=0 boots[${v%%=*}]=0; done

first=${VDK_RATE_FIRST:-0}
for ((r = 1; r <= rounds && SECONDS < limit; r++)); do
	for ((k = 0; k < ${#variants[@]}; k++)); do
		v=${variants[(k + first) % ${#variants[@]}]}
		vn=${v%%=*} envs=${v#*=} envv=()
		[ "$envs" = - ] || IFS=, read -r -a envv <<<"$envs"
		bin=$vmm
		for e in "${envv[@]}"; do [[ "$e" == VMM=* ]] && bin=${e#VMM=}; done
		truncate -s 0 "$work/disk.img" && truncate -s 4M "$work/disk.img"
		t0=$(date +%s%N)
		(sleep 4; grep AnonHugePages /proc/meminfo >"$work/thp") &
		if [[ " ${envv[*]} " == *" QEMU=1 "* ]]; then
			# The cross-check: the same L2 under QEMU's microvm with L1's KVM.
			timeout 100 qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 256M -smp "$cpus" \
				-nodefaults -no-user-config -display none -serial stdio -no-reboot \
				-global virtio-mmio.force-legacy=false \
				-drive "id=d0,file=$work/disk.img,format=raw,if=none" -device virtio-blk-device,drive=d0 \
				-device virtio-rng-device -kernel "$dir/guest/vmlinuz" \
				-initrd "$dir/guest/initramfs.cpio.gz" -append "console=ttyS0 panic=-1 pci=off quiet vdk.exit=poweroff" \
				>"$work/serial" 2>"$work/err" </dev/null
		else
			env "${envv[@]}" timeout 100 "$bin" --timeout 90 --disk "$work/disk.img" \
				--kernel "$dir/guest/vmlinuz" --initrd "$dir/guest/initramfs.cpio.gz" \
				--memory 256M --cpus "$cpus" --transport "${VDK_RATE_TRANSPORT:-mmio}" --rng \
				--cmdline "quiet vdk.exit=poweroff" >"$work/serial" 2>"$work/err" </dev/null
		fi
		rc=$?
		wait
		ms=$((($(date +%s%N) - t0) / 1000000))
		boots[$vn]=$((boots[$vn] + 1))
		ok=1
		[ $rc -eq 0 ] && grep -aq 'VDK-GUEST: ready' "$work/serial" || ok=0
		[ $ok = 1 ] || fails[$vn]=$((fails[$vn] + 1))
		echo "rate: $vn boot ${boots[$vn]} rc=$rc ok=$ok $ms ms $(tr -s ' ' <"$work/thp" 2>/dev/null)"
		if [ $ok = 0 ]; then
			sed 's/^/rate:   err: /' "$work/err" | tail -n 30
			tail -n 5 "$work/serial" | sed 's/\r//; s/^/rate:   serial: /'
		fi
	done
done
for v in "${variants[@]}"; do
	echo "rate: ${v%%=*} failed ${fails[${v%%=*}]} of ${boots[${v%%=*}]} ($v)"
done
exit 0
