#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and run each
# for FUZZ_SECONDS (default 30). Corpora grow in build-fuzz/corpus/<target>;
# crash inputs land in build-fuzz/ (crash-*). Prints one line per target:
#   fuzz: <target>: ok (<runs> runs in <s>s)   or   fuzz: <target>: CRASH ...
# Usage: scripts/fuzz.sh [target ...]     e.g. FUZZ_SECONDS=600 scripts/fuzz.sh
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}

[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
	-Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=undefined >/dev/null || exit 1
ninja -C build-fuzz >/dev/null || { ninja -C build-fuzz; echo "fuzz: build failed"; exit 1; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for t in build-fuzz/fuzz/fuzz_*; do
		[ -f "$t" ] && [ -x "$t" ] && targets+=("$(basename "$t")")
	done
fi

rc=0
for name in "${targets[@]}"; do
	corpus=build-fuzz/corpus/$name
	mkdir -p "$corpus"
	seeds=()
	[ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
	log=build-fuzz/$name.log
	if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"build-fuzz/fuzz/$name" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build-fuzz/ \
		"$corpus" "${seeds[@]}" >"$log" 2>&1; then
		runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
		[ -n "$runs" ] || runs=$(grep -oE '#[0-9]+' "$log" | tail -n 1 | tr -d '#')
		echo "fuzz: $name: ok (${runs:-?} runs in ${secs}s)"
	else
		tail -n 40 "$log"
		echo "fuzz: $name: CRASH (see $log and build-fuzz/crash-*)"
		rc=1
	fi
done
exit $rc
