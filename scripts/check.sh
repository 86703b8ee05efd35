#!/usr/bin/env bash
# `make check`: everything a change must pass, in one run.
#   1. install missing Debian packages (scripts/install-deps.sh)
#   2. format check (.clang-format)
#   3. normal build (build/, debugoptimized, -Werror) and its unit tests;
#      public API hygiene (scripts/check-api.sh: only vdk_* exported, headers
#      compile as C++17); compile-only release and debug builds
#      (build-release/, build-debug/: no tests, fuzzers or test guest: the
#      library, the programs, bench/)
#   4. ASan+UBSan build (build-san/) and the same tests under it
#   5. libFuzzer build (build-fuzz/, clang) and a short smoke run of each target
#   6. integration tests (tests/integration/*.sh): each prints PASS, FAIL or SKIPPED
# Ends with one line "check: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
passed=0 failed=0 skipped=0
failures=()

step() { printf '\n==== %s\n' "$*"; }
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $1"; }

scripts/install-deps.sh || { echo "check: dependency install failed"; exit 1; }

step "format (clang-format --dry-run)"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find include src tests fuzz bench -name '*.[ch]')
if clang-format --dry-run --Werror "${sources[@]}"; then ok; else bad "clang-format"; fi

# meson_tests DIR LABEL: run the unit tests of a configured build dir and
# count each test as passed/failed/skipped from meson's JSON log.
meson_tests() {
	local dir=$1 label=$2
	meson test -C "$dir" --print-errorlogs --num-processes 2
	local counts
	counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
	read -r p f s <<<"$counts"
	passed=$((passed + p)); skipped=$((skipped + s))
	if [ "$f" -ne 0 ]; then failed=$((failed + f)); failures+=("$label: $f test(s)"); fi
	echo "$label: $p passed, $f failed, $s skipped"
}

# -Werror is on for vdk's own builds only (meson.build says why); an
# existing build dir configured without it is switched over.
step "build (gcc, debugoptimized, -Werror)"
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
meson configure build -Dwerror=true >/dev/null
if ninja -C build; then ok; meson_tests build "unit"; else bad "build"; fi

step "public API: exported symbols, headers as C11 and C++17"
if scripts/check-api.sh build; then ok; else bad "public API hygiene"; fi

# What a distributor builds: every build type must compile warning-free
# (GCC at -O3 sees through inlining what -O2 does not). Compile only, and
# without the unit tests, to keep the cost down.
for bt in release debug; do
	step "compile only: --buildtype=$bt (-Werror)"
	[ -f "build-$bt/build.ninja" ] || meson setup "build-$bt" --buildtype="$bt" \
		-Dwerror=true -Dtests=false >/dev/null
	if ninja -C "build-$bt"; then ok; else bad "$bt build"; fi
done

step "build with ASan+UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
[ -f build-san/build.ninja ] || meson setup build-san -Db_sanitize=address,undefined \
	-Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined >/dev/null
if ninja -C build-san; then ok; meson_tests build-san "unit (asan+ubsan)"; else bad "sanitizer build"; fi

step "fuzz targets (clang libFuzzer), ${FUZZ_SECONDS}s smoke run each"
fuzz_out=$(FUZZ_SECONDS=$FUZZ_SECONDS scripts/fuzz.sh 2>&1)
echo "$fuzz_out"
n_ok=$(grep -c '^fuzz: .*: ok' <<<"$fuzz_out")
n_bad=$(grep -c '^fuzz: .*\(CRASH\|failed\)' <<<"$fuzz_out")
passed=$((passed + n_ok))
[ "$n_bad" -eq 0 ] || { failed=$((failed + n_bad)); failures+=("fuzz: $n_bad"); }
[ "$n_ok" -gt 0 ] || bad "no fuzz target ran"

step "integration tests"
# The vdk-vmm tests share one nested-KVM L1 guest where this host's KVM cannot run Linux
# (tests/integration/lib/vmm_harness.sh): the first of them boots it for all.
VDK_NESTED_RESULTS=$(mktemp -d /tmp/vdk-check-nested.XXXXXX)
export VDK_NESTED_RESULTS
# The L1 console outlives the run (build/nested-l1-console.txt): it is what tells why an L1 died.
trap 'cp -f "$VDK_NESTED_RESULTS/l1-console.txt" build/nested-l1-console.txt 2>/dev/null; rm -rf "$VDK_NESTED_RESULTS"' EXIT
for t in tests/integration/*.sh; do
	[ -f "$t" ] || continue
	out=$(bash "$t" 2>&1); rc=$?
	echo "$out" | tail -n 20
	if [ $rc -eq 77 ]; then
		skipped=$((skipped + 1)); echo "SKIPPED: $(basename "$t")"
	elif [ $rc -eq 0 ]; then ok; else bad "$(basename "$t")"; fi
done

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
