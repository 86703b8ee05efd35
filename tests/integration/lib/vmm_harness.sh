# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# vmm_harness.sh - where the vdk-vmm tests run: on this host's KVM, or nested in an L1 guest.
#
# Sourced by every test of vdk-vmm (tests/integration/vmm_*.sh, testguest_vmm.sh,
# linux_vmm.sh). A test does its host-side preparation (builds, guest images) unless
# harness_in_l1, then calls
#
#     harness_run "$@"
#
# which returns when the test should run right here, and otherwise runs the whole test inside
# an L1 guest and exits with its status. Modes:
#
#   direct  /dev/kvm exists and can run a stock Linux kernel (hardware KVM: the CPU shows
#           vmx/svm and KVM is not PVM-backed), or we already are inside the L1 guest.
#   nested  otherwise: QEMU (TCG, `-cpu max,-xsave`, an AMD CPU with svm/npt) boots an L1 guest:
#           the Debian 12 cloud kernel and the busybox initramfs of scripts/build-guest.sh with
#           irqbypass, kvm and kvm-amd added (kvm_amd.nested=1). Its second disk is an ext4
#           "sysroot" made here with mke2fs -d: the host's bash, python3, coreutils, binutils,
#           QEMU (for the benchmark) with every shared library ldd lists, and this repository's
#           scripts and built programs, at the same absolute paths. /tests/l1.sh (below) mounts
#           it (QEMU snapshot=on: writes are thrown away), checks /dev/kvm and runs the tests
#           in a chroot with VDK_IN_L1=1, one after another.
#
# Results come back over the L1 serial console as marker lines, stamped with the host's clock
# as they arrive:
#
#   VDK-L1: start                          L1 userspace runs (end of the "l1-boot" stage)
#   VDK-L1: kvm PASS|SKIP <detail>         /dev/kvm usable in L1 (nested SVM)
#   VDK-L1-OUT <test>: <line>              the test's own output, line by line
#   VDK-L1: test <test> rc=<n>             the test ended with status n (0, 1, 77; 75: again in a new L1)
#   VDK-L1: alive                          every 20 s (a heartbeat: see VDK_NESTED_SILENCE)
#   VDK-L1: end                            every test ran
#
# and the harness prints one line per stage, "harness: stage <stage>: PASS|FAIL|SKIPPED
# <seconds> s <detail>"; a stage that did not run is never counted as passed.
#
# Batch mode (scripts/check.sh): with VDK_NESTED_RESULTS set to a directory, the first nested
# test prepares every test that sources this file (`bash TEST --prepare`), boots one L1 for all
# of them, and leaves <test>.rc and <test>.log there; the later tests print what they find.
#
# Environment:
#   VDK_NESTED          1: always nested; 0: never (a test needing KVM then SKIPs); default auto
#   VDK_NESTED_RESULTS  batch mode directory (see above)
#   VDK_NESTED_SMP      vCPUs of L1 (default 2, with `-accel tcg,thread=multi`)
#   VDK_NESTED_TIMEOUT  seconds for the whole L1 run (default 900)
#   VDK_NESTED_TEST_TIMEOUT  seconds for one test inside L1 (default 420; exit 124 past it)
#   VDK_NESTED_L1_ATTEMPTS  most L1 guests per run (default 12; see "Known limit" below)
#   VDK_NESTED_L1_BUDGET  seconds of L1 runs after which no new L1 guest starts (default 2400)
#   VDK_NESTED_SILENCE  seconds without L1 console output (L1 prints a heartbeat every 20 s)
#                       after which L1 counts as wedged and is stopped (default 120)
#   VDK_NESTED_L1_LOGLEVEL   L1 kernel console loglevel (default 3; 4 shows L1's soft lockups,
#                       8 their call traces, on the L1 console)
#   VDK_NESTED_QEMU     the QEMU binary that runs L1 (default qemu-system-x86_64 on PATH)
#   VDK_NESTED_QEMU_ARGS more QEMU arguments for L1, e.g. "-d cpu_reset,guest_errors -D FILE"
#                       (QEMU logs the L1 CPU state when L1 resets)
#   VDK_IN_L1           set inside L1 (by l1.sh); tests skip their host-side preparation
#   VDK_HARNESS_EXTRA   more host paths to put in the sysroot (space-separated)
#
# Known limit of the nested mode (QEMU 7.2 TCG emulating SVM for L1's KVM): now and then an L2
# vCPU triple-faults, or both L1 CPUs soft-lock in vdk-vmm's vCPU threads ("watchdog: BUG: soft
# lockup ... [vdk-vmm:N]", the "L1 wedge"); 4 in about 85 Linux L2 boots in one session, 3 of
# them at 4 vCPUs. A KVM trace in L1 (kvm:kvm_exit) of one such triple fault: the vCPU left
# L2 for a WRMSR (the LAPIC timer), L1 KVM skipped the instruction by decoding it (TCG's SVM
# has no NRIPS), and on re-entry the vCPU took an instruction-fetch #PF (error code 0x10) at
# the next kernel text address whose delivery ended in SHUTDOWN (exit_int_info 0x80000b0e);
# the other vCPUs' state was sane. With SVM, KVM resets a vCPU before it reports the
# triple fault, so vdk-vmm cannot show where it faulted; trace in L1 for that.
# The same L2 booted by QEMU (microvm, -enable-kvm) inside the same L1 fails the same ways (the
# cross-check in bench/nested_smp_rate.sh, variant QEMU=1: a silent triple fault, a vCPU stuck
# with an RCU stall), so it is the nested emulation, not vdk-vmm.
# Rarer still, the L1 guest itself dies (QEMU exits with no "VDK-L1: end": 2 of about 12 full
# nested runs on 2026-12-05/06, with QEMU 7.2 and with 10.0) or wedges (both CPUs spinning with
# interrupts off: no console output at all, not even a soft-lockup report). A process in L1 cannot legitimately
# take down L1's kernel, so the harness then boots a new L1 for the tests that have no result
# yet (the one that was running starts again); it says so loudly (THE L1 GUEST DIED), keeps
# every L1 console in one file and records "l1-died" in the stages.
# An L2 fault of the emulation (harness_l2_crash) ends its test with status 75
# (harness_l2_retry): the harness runs that test again in a new L1 too. Not in the same L1:
# on 2026-12-06 (19 runs of linux_vmm_net's mmio boot) an L2 booted again in the L1 where
# one had just faulted faulted again 3 times in 4, while each of the 2 tests restarted in a
# new L1 (after the L1 died) passed. At most HARNESS_L1_ATTEMPTS L1 guests per run
# (VDK_NESTED_L1_ATTEMPTS, default 12), and no new one once the L1 guests have run
# HARNESS_L1_BUDGET seconds in all (VDK_NESTED_L1_BUDGET, default 2400): a make check
# rehearsal on 2026-12-06 needed 3 (an L2 fault, then L1 died, then a pass), and CI's run of
# that day saw the L2 fault in each of the 4 it then allowed (each a triple fault of vCPU 1
# during linux_vmm_net's transfer). QEMU 10.0.2 (Debian bookworm-backports) as L1's QEMU is no
# way out: it faulted the same way in the same part of the test (1 of 2 runs), and L1 boots in
# 36 s instead of 3.5. Nor is one L1 vCPU (-smp 1): L1 went silent, wedged, in 1 of 1 run. A test
# that fails otherwise (a wrong byte, a missing device, a FAIL verdict) is never run again.
HARNESS_L1_ATTEMPTS=${VDK_NESTED_L1_ATTEMPTS:-12}
HARNESS_L1_BUDGET=${VDK_NESTED_L1_BUDGET:-2400}

harness_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
harness_dir=$harness_root/build/nested
harness_why="VDK_NESTED=1"

# harness_in_l1: true inside the L1 guest.
harness_in_l1() { [[ "${VDK_IN_L1:-0}" == 1 ]]; }

# harness_log TEXT: a harness line on stdout.
harness_log() { echo "harness: $*"; }

# harness_kvm_runs_linux: true when this host's /dev/kvm can boot a stock Linux kernel;
# otherwise false with the reason in $harness_why.
harness_kvm_runs_linux() {
	harness_why=
	if [[ "$(uname -m)" != x86_64 ]]; then
		harness_why="host is $(uname -m); vdk-vmm runs x86-64 guests"
	elif [[ ! -e /dev/kvm ]]; then
		harness_why="/dev/kvm does not exist"
	elif [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
		harness_why="/dev/kvm is not readable and writable by $(id -un)"
	elif grep -qs '^kvm_pvm ' /proc/modules || [[ -d /sys/module/kvm_pvm ]]; then
		harness_why="/dev/kvm is PVM-backed (kvm_pvm), which cannot boot a stock Linux kernel"
	elif ! grep -qsw -e vmx -e svm /proc/cpuinfo; then
		harness_why="the CPU shows no vmx/svm flag: /dev/kvm is not hardware KVM"
	fi
	[[ -z "$harness_why" ]]
}

# harness_path NAME: the script of test (or benchmark) NAME.
harness_path() {
	if [[ -f "$harness_root/bench/$1.sh" ]]; then
		echo "$harness_root/bench/$1.sh"
	else
		echo "$harness_root/tests/integration/$1.sh"
	fi
}

# harness_kvm_usable: /dev/kvm can be opened, enough for the freestanding guests (PVM runs them).
harness_kvm_usable() {
	[[ "$(uname -m)" == x86_64 && -r /dev/kvm && -w /dev/kvm ]]
}

# harness_direct_freestanding: a test that sets harness_guest=freestanding before harness_run
# (it boots no Linux: test guest, PVH smoke, CLI) runs directly on a /dev/kvm that cannot boot
# Linux but can run it, unless VDK_NESTED=1. Fewer tests in the L1 guest, a shorter nested run.
harness_direct_freestanding() {
	[[ "${VDK_NESTED:-auto}" != 1 ]] && harness_kvm_usable
}

# harness_tests: the tests that use this harness (every tests/integration/*.sh sourcing it),
# less the freestanding ones that run directly here.
harness_tests() {
	local t
	for t in "$harness_root"/tests/integration/*.sh; do
		grep -q '^harness_run ' "$t" || continue
		if grep -q '^harness_guest=freestanding' "$t" && harness_direct_freestanding; then
			continue
		fi
		basename "$t" .sh
	done
}

# harness_run ARGS...: see the header. ARGS are the test's arguments (--prepare: stop here).
harness_run() {
	local name
	name=$(basename "$0" .sh)
	if [[ "${1:-}" == --prepare ]]; then
		exit 0
	fi
	if harness_in_l1; then
		return 0
	fi
	if [[ "${VDK_NESTED:-auto}" != 1 ]] && harness_kvm_runs_linux; then
		harness_log "mode direct: /dev/kvm runs Linux here"
		return 0
	fi
	if [[ "${harness_guest:-linux}" == freestanding ]] && harness_direct_freestanding; then
		harness_log "mode direct: $name boots no Linux, and /dev/kvm runs it although $harness_why"
		return 0
	fi
	if [[ "${VDK_NESTED:-auto}" == 0 ]]; then
		harness_log "mode direct (VDK_NESTED=0), although $harness_why"
		return 0
	fi
	harness_log "mode nested: $harness_why; running $name in an L1 guest under QEMU TCG"

	local results=${VDK_NESTED_RESULTS:-}
	if [[ -n "$results" && -f "$results/$name.rc" ]]; then
		harness_log "result of the shared L1 run ($results)"
		cat "$results/$name.log"
		exit "$(<"$results/$name.rc")"
	fi
	local tests=("$name")
	if [[ -n "$results" ]]; then
		mapfile -t tests < <(harness_tests)
	else
		results=$(mktemp -d /tmp/vdk-nested.XXXXXX)
		# shellcheck disable=SC2064 # expand now
		trap "rm -rf '$results'" EXIT
	fi
	harness_nested "$results" "${tests[@]}"
	if [[ ! -f "$results/$name.rc" ]]; then
		echo "SKIPPED: $name: the nested run gave no result for it (see above)"
		exit 77
	fi
	cat "$results/$name.log"
	exit "$(<"$results/$name.rc")"
}

# harness_skip_all RESULTS REASON TESTS...: every test gets status 77 with REASON.
harness_skip_all() {
	local results=$1 why=$2 t
	shift 2
	for t in "$@"; do
		echo "SKIPPED: $t: $why" >"$results/$t.log"
		echo 77 >"$results/$t.rc"
	done
}

# harness_fail_all RESULTS REASON TESTS...: every test without a result gets status 1.
harness_fail_all() {
	local results=$1 why=$2 t
	shift 2
	for t in "$@"; do
		[[ -f "$results/$t.rc" ]] && continue
		echo "$t: FAIL $why" >>"$results/$t.log"
		echo 1 >"$results/$t.rc"
	done
}

# harness_stage NAME STATUS SECONDS DETAIL: one stage line, also kept in RESULTS/stages.txt.
harness_stage() {
	local line
	line=$(printf 'stage %s: %s %s s%s' "$1" "$2" "$3" "${4:+ $4}")
	harness_log "$line"
	echo "$line" >>"$harness_results/stages.txt"
}

# harness_nested RESULTS TESTS...: prepare, build the L1 guest and sysroot, boot it, run TESTS
# in it, and write RESULTS/<test>.rc and .log for each.
harness_nested() {
	harness_results=$1
	shift
	local tests=("$@") t qemu
	local t0 now

	qemu=${VDK_NESTED_QEMU:-$(command -v qemu-system-x86_64 || true)}
	if [[ -z "$qemu" ]]; then
		harness_skip_all "$harness_results" "no qemu-system-x86_64 to run the nested L1 guest (apt-get install qemu-system-x86)" "${tests[@]}"
		harness_stage l1-boot SKIPPED 0 "no qemu-system-x86_64"
		return
	fi
	if ! command -v mke2fs >/dev/null; then
		harness_skip_all "$harness_results" "no mke2fs (e2fsprogs) to build the L1 sysroot" "${tests[@]}"
		harness_stage l1-boot SKIPPED 0 "no mke2fs"
		return
	fi

	# 1. Host-side preparation of every test (builds, L2 guests, disk images).
	t0=$EPOCHREALTIME
	for t in "${tests[@]}"; do
		if ! out=$(bash "$(harness_path "$t")" --prepare 2>&1); then
			echo "$out" >"$harness_results/$t.log"
			echo "$t: FAIL host-side preparation failed" >>"$harness_results/$t.log"
			echo 1 >"$harness_results/$t.rc"
		fi
	done
	mkdir -p "$harness_dir"
	# The L1 guest: build-guest.sh's kernel and initramfs with KVM added and /tests/l1.sh.
	mkdir -p "$harness_dir/l1-tests"
	harness_l1_script >"$harness_dir/l1-tests/l1.sh.new"
	if ! cmp -s "$harness_dir/l1-tests/l1.sh.new" "$harness_dir/l1-tests/l1.sh"; then
		mv "$harness_dir/l1-tests/l1.sh.new" "$harness_dir/l1-tests/l1.sh"
	else
		rm -f "$harness_dir/l1-tests/l1.sh.new"
	fi
	if ! VDK_GUEST_EXTRA_MODULES="virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd drivers/net/tun" \
		"$harness_root/scripts/build-guest.sh" "$harness_dir/l1" "$harness_dir/l1-tests" \
		>"$harness_dir/build-l1.log" 2>&1; then
		tail -n 5 "$harness_dir/build-l1.log"
		harness_fail_all "$harness_results" "building the L1 guest failed (see $harness_dir/build-l1.log)" "${tests[@]}"
		harness_stage prepare FAIL "$(harness_secs "$t0")" "scripts/build-guest.sh"
		return
	fi
	if ! harness_sysroot "$harness_dir/sysroot.ext4" >"$harness_dir/sysroot.log" 2>&1; then
		tail -n 5 "$harness_dir/sysroot.log"
		harness_fail_all "$harness_results" "building the L1 sysroot failed (see $harness_dir/sysroot.log)" "${tests[@]}"
		harness_stage prepare FAIL "$(harness_secs "$t0")" "sysroot"
		return
	fi
	harness_stage prepare PASS "$(harness_secs "$t0")" "builds, L1 guest, sysroot $(du -m "$harness_dir/sysroot.ext4" | cut -f1) MiB"

	# 2. Boot L1 and run the tests in it, in new L1 guests as long as needed and allowed.
	harness_l1_attempts "$qemu" "${tests[@]}"
	cp "$harness_results/stages.txt" "$harness_dir/stages.txt" 2>/dev/null || true
}

# harness_l1_attempts QEMU TESTS...: boot an L1 guest for the TESTS (harness_l1_run); when
# the L1 guest itself dies (a user process such as vdk-vmm cannot legitimately bring down a
# kernel: it is L1's kernel or QEMU's emulation of SVM, see "Known limit" above) or a test saw
# the emulation fault an L2 (status 75), boot a new L1 for the tests without a result, up to
# HARNESS_L1_ATTEMPTS L1 guests and while they have run less than HARNESS_L1_BUDGET seconds in
# all. A test still without a result then fails.
harness_l1_attempts() {
	local qemu=$1
	shift
	local tests=("$@") attempt r left t t0=$SECONDS
	for ((attempt = 1; attempt <= HARNESS_L1_ATTEMPTS; attempt++)); do
		harness_l1_run "$qemu" "$attempt" "${tests[@]}"
		r=$?
		[[ $r == 0 || $r == 1 ]] || break
		left=()
		for t in "${tests[@]}"; do
			[[ -f "$harness_results/$t.rc" ]] || left+=("$t")
		done
		[[ ${#left[@]} -gt 0 && $attempt -lt $HARNESS_L1_ATTEMPTS ]] || break
		if ((SECONDS - t0 >= HARNESS_L1_BUDGET)); then
			harness_log "no new L1 guest: the L1 guests have run $((SECONDS - t0)) s, the budget is" \
				"${HARNESS_L1_BUDGET} s (VDK_NESTED_L1_BUDGET)"
			break
		fi
		if [[ $r == 1 ]]; then
			harness_log "THE L1 GUEST DIED (not a vdk-vmm exit: the L1 kernel or its emulation);" \
				"its console: $harness_results/l1-console.txt; booting a new L1 for: ${left[*]}"
		else
			harness_log "the nested emulation faulted an L2 guest (see the test's RETRY line);" \
				"booting a new L1 for: ${left[*]}"
		fi
	done
	harness_fail_all "$harness_results" "no result after $attempt L1 guest(s): the L1 guest ended or timed out, or the nested emulation faulted an L2 in each (RETRY lines); see $harness_results/l1-console.txt" "${tests[@]}"
}

# harness_l1_run QEMU ATTEMPT TESTS...: boot one L1 guest for the TESTS that have no result
# yet in $harness_results and follow its console (appended to l1-console.txt). Returns 0 when
# the L1 guest ran to its end (or there was nothing to run), 1 when it died (QEMU exited early,
# or "BUG: soft lockup", the L1 wedge: then QEMU is stopped at once), 2 when L1 did not come up,
# 3 when the whole run timed out.
harness_l1_run() {
	local qemu=$1 attempt=$2
	shift 2
	local tests=("$@") t run=()
	for t in "${tests[@]}"; do
		[[ -f "$harness_results/$t.rc" ]] || run+=("$t")
	done
	[[ ${#run[@]} -gt 0 ]] || return 0
	local list smp=${VDK_NESTED_SMP:-2} accel=tcg
	list=$(
		IFS=,
		echo "${run[*]}"
	)
	[[ "$smp" -gt 1 ]] && accel=tcg,thread=multi
	local timeout=${VDK_NESTED_TIMEOUT:-900}
	# The tests' environment settings (VDK_*, LINUX_VMM_*, TESTGUEST_*, BENCH_*) go to L1 on a
	# small raw disk of "export NAME=VALUE" lines, read there as /dev/vdb.
	local envdisk=$harness_results/l1-env.img name
	: >"$envdisk"
	while IFS= read -r name; do
		case "$name" in VDK_NESTED* | VDK_IN_L1 | VDK_GUEST_*) continue ;; esac
		printf 'export %s=%q\n' "$name" "${!name}" >>"$envdisk"
	done < <(compgen -e | grep -E '^(VDK_|LINUX_VMM_|TESTGUEST_|BENCH_)')
	truncate -s 64K "$envdisk"
	local console=$harness_results/l1-console.txt sfx=
	[[ $attempt == 1 ]] || sfx=" (attempt $attempt)"
	[[ $attempt == 1 ]] || echo "$EPOCHREALTIME ==== harness: L1 attempt $attempt" >>"$console"
	harness_log "booting L1$sfx: $qemu -M q35 -accel $accel -cpu max,-xsave -smp $smp -m 2G; tests: ${run[*]}"
	local t0=$EPOCHREALTIME now
	local tstart=$t0 line stamp rest rc kvm_done=0 booted=0 ended=0 wedged=0 cur= qrc
	local fifo=$harness_results/l1-console.fifo qpid
	rm -f "$fifo"
	mkfifo "$fifo"
	timeout --kill-after=10 "$timeout" "$qemu" -M q35 -accel "$accel" \
		-cpu max,-xsave -smp "$smp" -m 2G -nographic -no-reboot -nic none ${VDK_NESTED_QEMU_ARGS:-} \
		-kernel "$harness_dir/l1/vmlinuz" -initrd "$harness_dir/l1/initramfs.cpio.gz" \
		-drive "file=$harness_dir/sysroot.ext4,if=virtio,format=raw,snapshot=on" \
		-drive "file=$envdisk,if=virtio,format=raw,readonly=on" \
		-append "console=ttyS0 quiet loglevel=${VDK_NESTED_L1_LOGLEVEL:-3} panic=-1 mitigations=off kvm_amd.nested=1 vdk.test=l1 vdk.timeout=$timeout vdk.testtimeout=${VDK_NESTED_TEST_TIMEOUT:-420} vdk.exit=poweroff vdk.l1root=$harness_root vdk.l1tests=$list" \
		</dev/null >"$fifo" 2>&1 &
	qpid=$!
	# Silence for $silence seconds once L1 is up (no test output, no heartbeat) is the L1 wedge:
	# its CPUs spin with interrupts off (no soft-lockup report either). Stop it then.
	local silence=${VDK_NESTED_SILENCE:-120} st
	while :; do
		IFS= read -r -t "$silence" line
		st=$?
		if [[ $st -gt 128 ]]; then
			[[ $booted == 1 ]] || continue
			echo "$EPOCHREALTIME ==== harness: no L1 console output for ${silence}s; stopping QEMU" >>"$console"
			wedged=1
			kill "$qpid" 2>/dev/null
			break
		fi
		[[ $st == 0 ]] || break
		line=${line%$'\r'}
		stamp=$EPOCHREALTIME
		printf '%s %s\n' "$stamp" "$line" >>"$console"
		case "$line" in
		"VDK-L1: start"*)
			booted=1
			harness_stage "l1-boot$sfx" PASS "$(harness_secs "$t0" "$stamp")" "(QEMU start to L1 userspace)"
			tstart=$stamp
			;;
		"VDK-L1: kvm "*)
			rest=${line#VDK-L1: kvm }
			kvm_done=1
			case "$rest" in
			PASS*) harness_stage kvm PASS "$(harness_secs "$tstart" "$stamp")" "${rest#PASS }" ;;
			*)
				harness_stage kvm SKIPPED "$(harness_secs "$tstart" "$stamp")" "${rest#* }"
				harness_skip_all "$harness_results" "no usable nested KVM in the L1 guest: ${rest#* }" "${run[@]}"
				;;
			esac
			tstart=$stamp
			;;
		"VDK-L1-OUT "*)
			rest=${line#VDK-L1-OUT }
			t=${rest%%: *}
			[[ " ${run[*]} " == *" $t "* ]] && printf '%s\n' "${rest#*: }" >>"$harness_results/$t.log"
			;;
		"VDK-L1: test "*)
			rest=${line#VDK-L1: test }
			t=${rest%% *}
			rc=${rest##*rc=}
			if [[ " ${run[*]} " == *" $t "* && "$rc" == 75 ]]; then
				harness_stage "test $t" RETRY "$(harness_secs "$tstart" "$stamp")" \
					"(exit 75: the nested emulation faulted an L2; again in a new L1)"
			elif [[ " ${run[*]} " == *" $t "* && "$rc" =~ ^[0-9]+$ ]]; then
				echo "$rc" >"$harness_results/$t.rc"
				local st=FAIL
				[[ "$rc" == 0 ]] && st=PASS
				[[ "$rc" == 77 ]] && st=SKIPPED
				harness_stage "test $t" "$st" "$(harness_secs "$tstart" "$stamp")" "(exit $rc)"
			fi
			tstart=$stamp
			;;
		"VDK-L1: end"*) ended=1 ;;
		"VDK-L1: alive") ;;
		*"BUG: soft lockup"*)
			# The L1 wedge: its CPUs stay locked; stop it now.
			wedged=1
			kill "$qpid" 2>/dev/null
			;;
		esac
	done <"$fifo"
	wait "$qpid"
	qrc=$?
	rm -f "$fifo"
	now=$EPOCHREALTIME
	harness_stage "l1-total$sfx" "$([[ $ended == 1 ]] && echo PASS || echo FAIL)" "$(harness_secs "$t0" "$now")" \
		"(QEMU start to exit; console in $console)"
	[[ $ended == 1 ]] && return 0
	if [[ $booted == 0 ]]; then
		harness_stage "l1-boot$sfx" FAIL "$(harness_secs "$t0" "$now")" "L1 never reached userspace"
		tail -n 30 "$console" | cut -d' ' -f2-
		return 2
	elif [[ $kvm_done == 0 ]]; then
		harness_stage kvm FAIL "$(harness_secs "$tstart" "$now")" "L1 ended before the KVM check"
		return 2
	fi
	tail -n 15 "$console" | cut -d' ' -f2-
	for t in "${run[@]}"; do
		[[ -f "$harness_results/$t.rc" ]] || { cur=$t && break; }
	done
	if [[ $wedged == 0 ]] && awk -v a="$t0" -v b="$now" -v t="$timeout" 'BEGIN { exit !(b - a >= t) }'; then
		harness_stage "l1-timeout$sfx" FAIL "$(harness_secs "$t0" "$now")" "the L1 run took over ${timeout}s${cur:+, in $cur}"
		return 3
	fi
	local why="the L1 guest ended without its end line (QEMU exit status $qrc: an L1 panic or reset)"
	[[ $wedged == 1 ]] && why="the L1 guest locked up (soft lockup, or ${silence}s of silence: the L1 wedge); QEMU stopped"
	[[ -n "$cur" && -f "$harness_results/$cur.log" ]] &&
		echo "---- $why during this test$sfx" >>"$harness_results/$cur.log"
	harness_stage "l1-died$sfx" FAIL "$(harness_secs "$t0" "$now")" "$why${cur:+, during $cur}"
	return 1
}

# harness_vmstat FILE: inside the L1 guest, keep L1's /proc/vmstat in FILE (elsewhere nothing).
# harness_vmstat_delta FILE: then print one line with the memory-management events of L1 since
# (page migration, compaction, THP, reclaim, swap) that changed, or "none": what L1's kernel
# did to the pages behind an L2's RAM while the L2 ran (each moves or drops NPT mappings).
harness_vmstat() {
	harness_in_l1 && cp /proc/vmstat "$1" 2>/dev/null
	return 0
}
harness_vmstat_delta() {
	harness_in_l1 && [[ -f "$1" ]] || return 0
	awk 'NR == FNR { before[$1] = $2; next }
		$1 ~ /^(pgmigrate_|compact_|thp_|numa_pte|numa_huge|numa_hint|numa_pages|pswp|pgsteal_|pgscan_|pgdemote|ksm|kswapd)/ && $2 != before[$1] {
			s = s " " $1 "+" ($2 - before[$1]) }
		END { print "L1 memory events during the boot:" (s == "" ? " none" : s) }' "$1" /proc/vmstat
}

# harness_l2_retry RC VMM_STDERR SERIAL WHAT: after a Linux L2 boot (WHAT names it): when it
# shows the nested emulation's fault (harness_l2_crash), print the serial console's end and a
# RETRY line and end the test with status 75, which the harness answers by running the test
# again in a new L1 guest ("Known limit" above). Otherwise return 1.
harness_l2_retry() {
	local sign
	sign=$(harness_l2_crash "$1" "$2" "$3") || return 1
	tail -n 40 "$3"
	echo "$name: RETRY $4: $sign; the harness runs this test again in a new L1 guest"
	exit 75
}

# harness_l2_crash RC VMM_STDERR SERIAL: inside the L1 guest, when a Linux L2 boot that ended
# with vdk-vmm exit status RC shows the nested-emulation fault ("Known limit" above), print
# which sign and return 0; otherwise (and always outside L1) return 1. The signs, each seen
# in this harness with QEMU 7.2: vdk-vmm's triple-fault exit (3); a timeout (5, 124) with a
# vCPU stuck re-taking a page fault on the instruction it fetches (rip == cr2); an L2 kernel
# panic from an instruction-fetch page fault or a double fault; a timeout with the L2 kernel's
# RCU stall report and a vCPU that still has an NMI pending. Any other failure (a wrong
# byte, a missing device, a FAIL verdict) is final.
harness_l2_crash() {
	harness_in_l1 || return 1
	local rc=$1 err=$2 serial=$3 line
	if [[ $rc == 3 ]] && grep -q 'triple fault' "$err"; then
		echo "L2 triple fault (KVM_EXIT_SHUTDOWN)"
		return 0
	fi
	if [[ $rc == 5 || $rc == 124 ]]; then
		line=$(grep -m1 -E 'vCPU [0-9]+: rip (0x[0-9a-f]+) .* cr2 \1 ' "$err")
		if [[ -n "$line" ]]; then
			line=${line#*vCPU }
			echo "L2 vCPU ${line%%:*} stuck re-faulting on the instruction it fetches (rip == cr2 $(sed -E 's/.* cr2 (0x[0-9a-f]+) .*/\1/' <<<"$line"))"
			return 0
		fi
		# A vCPU in KVM_RUN that takes no event: the L2 kernel reports an RCU stall on a
		# CPU, and after the stop that vCPU still has an NMI pending (the stall report's
		# backtrace NMI, sent seconds to minutes before) and its thread was in KVM_RUN,
		# not in vdk-vmm handling an exit (vdk-vmm's state line says which). A vCPU that
		# runs, even one spinning in a driver, takes an NMI at once.
		line=$(grep -m1 -E 'vCPU [0-9]+: rip .* nmi pending mp-state runnable in KVM_RUN for [0-9]+ ms' "$err")
		if [[ -n "$line" ]] && grep -aq 'rcu: INFO: rcu_[a-z]* detected stalls' "$serial"; then
			line=${line#*vCPU }
			echo "L2 vCPU ${line%%:*} took no event for minutes (RCU stall, an NMI still pending at $(sed -E 's/^[0-9]+: (rip 0x[0-9a-f]+).*/\1/' <<<"$line"))"
			return 0
		fi
	fi
	if grep -aq 'Kernel panic - not syncing' "$serial"; then
		line=$(grep -a -m1 -e 'supervisor instruction fetch' -e 'double fault' -e 'RIP: 0010:entry_SYSCALL_64+0x0/' "$serial")
		if [[ -n "$line" ]]; then
			echo "L2 kernel panic: ${line//$'\r'/}" | cut -c1-160
			return 0
		fi
	fi
	return 1
}

# harness_secs T0 [T1]: seconds from T0 to T1 (default now), one decimal.
harness_secs() {
	local t1=${2:-$EPOCHREALTIME}
	awk -v a="$1" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

# harness_sysroot IMAGE: build the ext4 image L1 chroots into (skipped when every input is
# older than IMAGE).
harness_sysroot() {
	local img=$1 stage cmd p paths=() libs=()
	local cmds=(bash sh env cat cp mv rm mkdir rmdir ls ln chmod chown touch date sleep head
		tail tr cut wc sort uniq tee grep sed awk gawk mawk find xargs timeout cmp diff mktemp
		dd sha256sum md5sum truncate stat basename dirname readlink realpath id printf test
		expr seq od hexdump xxd setpriv nproc uname kill ps pgrep pkill sync python3 python3.11
		as ld ld.bfd x86_64-linux-gnu-as x86_64-linux-gnu-ld x86_64-linux-gnu-ld.bfd
		qemu-system-x86_64 qemu-storage-daemon ip true false yes fold base64 numfmt flock nohup setsid
		mount umount losetup ionice nice renice taskset strace mkfifo comm paste du df free)
	for cmd in "${cmds[@]}"; do
		p=$(command -v "$cmd" 2>/dev/null) || continue
		[[ "$p" == /* ]] || continue
		# pyenv and similar shims: use the system's binary.
		[[ "$p" == */shims/* && -x /usr/bin/$cmd ]] && p=/usr/bin/$cmd
		paths+=("$p")
	done
	[[ -x /usr/bin/time ]] && paths+=(/usr/bin/time)
	# The repository's programs and prepared files.
	local repo_items=(tests scripts bench build/vmm/vdk-vmm build/testguest/vdk-testguest
		build/tools/vdk-vhost-user-blk build/tools/vdk-vhost-user-rng build/tools/vdk-blkbench
		build/linux-vmm build/bench-l2 build/bench-transport-l2)
	# shellcheck disable=SC2206 # a list on purpose
	local extra=(${VDK_HARNESS_EXTRA:-})

	# Up to date: the image is newer than every input.
	if [[ -f "$img" ]]; then
		local newer
		newer=$(find "${paths[@]}" "${extra[@]}" /usr/lib/python3.11 \
			"${repo_items[@]/#/$harness_root/}" -newer "$img" -print -quit 2>/dev/null)
		if [[ -z "$newer" ]]; then
			echo "sysroot up to date: $img"
			return 0
		fi
		echo "sysroot out of date ($newer is newer)"
	fi

	stage=$(mktemp -d "$harness_dir/.sysroot.XXXXXX")
	chmod 755 "$stage" # the sysroot's /: everyone traverses it
	# shellcheck disable=SC2064
	trap "rm -rf '$stage'" RETURN
	mkdir -p "$stage"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,tmp,run,root,var/tmp}
	ln -s usr/bin "$stage/bin"
	ln -s usr/sbin "$stage/sbin"
	ln -s usr/lib "$stage/lib"
	ln -s usr/lib64 "$stage/lib64"
	chmod 1777 "$stage/tmp" "$stage/var/tmp"
	# put PATH: copy PATH (a file, following symlinks) to the same place in the sysroot, with
	# /bin, /sbin, /lib, /lib64 folded into /usr as in the sysroot's layout.
	put() {
		local src=$1 dst=$1
		case "$dst" in /bin/* | /sbin/* | /lib/* | /lib64/*) dst=/usr$dst ;; esac
		[[ -e "$stage$dst" ]] && return 0
		mkdir -p "$(dirname "$stage$dst")"
		cp -L --preserve=mode,timestamps "$src" "$stage$dst"
	}
	for p in "${paths[@]}" "${extra[@]}"; do
		[[ -e "$p" ]] || continue
		if [[ -d "$p" ]]; then
			mkdir -p "$stage$(dirname "$p")"
			cp -a "$p" "$stage$p"
			continue
		fi
		put "$p"
		# The command's name as the tests call it, when it reached us through a symlink.
		mapfile -t libs < <(ldd "$p" 2>/dev/null | grep -o '/[^ ]*')
		for l in "${libs[@]}"; do put "$l"; done
	done
	for cmd in "${cmds[@]}"; do
		p=$(command -v "$cmd" 2>/dev/null) || continue
		[[ "$p" == */shims/* ]] && p=/usr/bin/$cmd
		[[ -e "$stage/usr/bin/$cmd" || ! -e "$p" ]] && continue
		[[ -e "$stage/usr/bin/$(basename "$p")" ]] &&
			ln -s "$(basename "$p")" "$stage/usr/bin/$cmd" 2>/dev/null
	done
	ln -sf python3.11 "$stage/usr/bin/python3"
	# Python's standard library (no tests, GUI, packaging).
	mkdir -p "$stage/usr/lib/python3.11"
	(cd /usr/lib/python3.11 && find . \( -name test -o -name tests -o -name idlelib -o \
		-name tkinter -o -name ensurepip -o -name lib2to3 -o -name pydoc_data -o \
		-name site-packages -o -name dist-packages -o -name turtledemo \) -prune -o -print0 |
		cpio -0 -pdm --quiet "$stage/usr/lib/python3.11") 2>/dev/null ||
		cp -a /usr/lib/python3.11/. "$stage/usr/lib/python3.11/"
	for p in $(find "$stage/usr/lib/python3.11/lib-dynload" -name '*.so' 2>/dev/null); do
		mapfile -t libs < <(ldd "$p" 2>/dev/null | grep -o '/[^ ]*')
		for l in "${libs[@]}"; do put "$l"; done
	done
	# QEMU's firmware and option ROMs (the benchmark runs QEMU microvm in L1).
	for p in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
		[[ -d "$p" ]] && mkdir -p "$stage$(dirname "$p")" && cp -aL "$p" "$stage$p" 2>/dev/null
	done
	cp /etc/ld.so.cache "$stage/etc/" 2>/dev/null
	printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$stage/etc/passwd"
	printf 'root:x:0:\nkvm:x:104:\nnogroup:x:65534:\n' >"$stage/etc/group"
	# The repository, kept under /.l1root and bind-mounted at its host path by l1.sh once
	# /tmp and /run are tmpfs (a clone under /tmp would otherwise be hidden).
	local repo=$stage/.l1root$harness_root
	for p in "${repo_items[@]}"; do
		[[ -e "$harness_root/$p" ]] || continue
		mkdir -p "$repo/$(dirname "$p")"
		cp -a "$harness_root/$p" "$repo/$p"
	done
	cp -a "$harness_root/Makefile" "$harness_root/meson.build" "$repo/" 2>/dev/null
	# ... and the shared libraries of its programs.
	while IFS= read -r p; do
		mapfile -t libs < <(ldd "$p" 2>/dev/null | grep -o '/[^ ]*')
		for l in "${libs[@]}"; do put "$l"; done
	done < <(find "$repo/build" -type f -perm -u+x 2>/dev/null)
	local mib
	mib=$(du -sm "$stage" | cut -f1)
	mib=$((mib + mib / 4 + 256))
	rm -f "$img.new"
	mke2fs -q -t ext4 -L vdk-l1 -E root_owner=0:0 -d "$stage" "$img.new" "${mib}M" || return 1
	mv -f "$img.new" "$img"
	echo "sysroot: $img, ${mib} MiB"
}

# harness_l1_script: print /tests/l1.sh, run by the L1 guest's /init (busybox sh).
harness_l1_script() {
	cat <<'L1'
#!/bin/sh
# l1.sh - inside the nested-KVM L1 guest (tests/integration/lib/vmm_harness.sh).
echo "VDK-L1: start"
# A heartbeat: silence on the console means L1 itself is stuck (lib/vmm_harness.sh).
(while sleep 20; do echo "VDK-L1: alive"; done) &
word() { for w in $(cat /proc/cmdline); do case "$w" in "$1"=*) echo "${w#*=}"; return ;; esac; done; }
tests=$(word vdk.l1tests | tr , ' ')
if [ ! -e /dev/kvm ]; then
	why="no /dev/kvm in L1"
	grep -qw svm /proc/cpuinfo || why="$why: the emulated CPU has no svm flag (QEMU too old for nested SVM under TCG?)"
	[ -d /sys/module/kvm_amd ] || why="$why; kvm_amd not loaded"
	echo "VDK-L1: kvm SKIP $why"
	echo "VDK-L1: end"
	exit 0
fi
echo "VDK-L1: kvm PASS /dev/kvm, kvm_amd nested=$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null) npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null), $(grep -c ^processor /proc/cpuinfo) vCPUs"
mkdir -p /sysroot
mount -t ext4 /dev/vda /sysroot || { echo "VDK-L1: sysroot mount failed"; echo "VDK-L1: end"; exit 1; }
mount -t proc proc /sysroot/proc
mount -t sysfs sysfs /sysroot/sys
mount -t devtmpfs devtmpfs /sysroot/dev
mkdir -p /sysroot/dev/shm /sysroot/dev/pts
mount -t tmpfs tmpfs /sysroot/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /sysroot/tmp
mount -t tmpfs tmpfs /sysroot/run
root=$(word vdk.l1root)
mkdir -p "/sysroot$root" && mount -o bind "/sysroot/.l1root$root" "/sysroot$root" ||
	echo "VDK-L1: bind mount of the repository at $root failed"
tr -d '\000' </dev/vdb >/sysroot/run/vdk-env 2>/dev/null
for t in $tests; do
	f=$(word vdk.l1root)/tests/integration/$t.sh
	[ -f "/sysroot$f" ] || f=$(word vdk.l1root)/bench/$t.sh
	if [ ! -f "/sysroot$f" ]; then
		echo "VDK-L1-OUT $t: $t: FAIL no $t.sh in the sysroot"
		echo "VDK-L1: test $t rc=1"
		continue
	fi
	# The output as it comes (busybox sh has no pipefail: the status goes through a file).
	{
		# Each test within its own bound, so that one that hangs (a process stuck in
		# the nested kernel) fails alone instead of taking the whole L1 run with it.
		chroot /sysroot /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/usr/sbin HOME=/root \
			TERM=dumb LANG=C.UTF-8 VDK_IN_L1=1 /usr/bin/timeout -k 10 "$(word vdk.testtimeout)" \
			/bin/bash -c '. /run/vdk-env; exec bash "$0"' "$f" </dev/null 2>&1
		echo $? >/tmp/rc
	} | sed "s/^/VDK-L1-OUT $t: /"
	echo "VDK-L1: test $t rc=$(cat /tmp/rc)"
done
echo "VDK-L1: end"
L1
}
