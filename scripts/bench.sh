#!/usr/bin/env bash
# `make bench`: build the benchmarks, run each natively (operations per
# second) and under callgrind (instructions per operation), print a table.
#
#   bench_virtq --shape 1 / --shape 3   one chain popped and returned
#   bench_bus --devices 1 / 64 / 1024    one MMIO write dispatched
#
# Instructions per operation are computed two ways:
#   library  instructions inside the library calls only (callgrind
#            --toggle-collect on vdk_virtq_pop + vdk_virtq_add_used, or on
#            vdk_bus_write), divided by the iterations;
#   loop     (total with N iterations - total with 0 iterations) / N: the
#            whole benchmark loop, including the mock driver of bench_virtq
#            and the loop and device callback of bench_bus.
#
# Environment: BUILD (build directory, default build), CG_ITERS (iterations
# under callgrind, default 100000), NATIVE_ITERS (default 10000000).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
CG_ITERS=${CG_ITERS:-100000}
NATIVE_ITERS=${NATIVE_ITERS:-10000000}

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD"
ninja -C "$BUILD" bench/bench_virtq bench/bench_bus

have_cg=1
command -v valgrind >/dev/null || have_cg=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# cg_total OUTFILE ARGS...: run ARGS under callgrind, print its total Ir.
cg_total() {
	local out=$1
	shift
	valgrind --tool=callgrind --callgrind-out-file="$out" "$@" \
		>/dev/null 2>"$out.log" || {
		echo "bench: callgrind failed: $*" >&2
		cat "$out.log" >&2
		return 1
	}
	sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$out" | head -1
}

div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# row NAME CONFIG FUNCS NATIVE_OPS_PER_S ARGS...
rows=()
row() {
	local name=$1 config=$2 funcs=$3 ops=$4
	shift 4
	local bin="$BUILD/bench/$name" lib="-" loop="-"
	if [ "$have_cg" = 1 ]; then
		local toggles=() f n0 n1 nl
		for f in $funcs; do toggles+=("--toggle-collect=$f"); done
		nl=$(cg_total "$tmp/lib" --collect-atstart=no "${toggles[@]}" \
			"$bin" "$@" --iters "$CG_ITERS")
		n1=$(cg_total "$tmp/n1" "$bin" "$@" --iters "$CG_ITERS")
		n0=$(cg_total "$tmp/n0" "$bin" "$@" --iters 0)
		lib=$(div "$nl" "$CG_ITERS")
		loop=$(div "$((n1 - n0))" "$CG_ITERS")
	fi
	rows+=("$(printf '%-12s %-14s %14s %14s %16s' "$name" "$config" \
		"$lib" "$loop" "$ops")")
}

echo
echo "== native runs ($NATIVE_ITERS iterations each)"
for shape in 1 3; do
	line=$("$BUILD/bench/bench_virtq" --shape "$shape" --iters "$NATIVE_ITERS")
	echo "$line"
	ops=$(echo "$line" | sed -n 's/.*: \([0-9]*\) chains\/s.*/\1/p')
	row bench_virtq "shape $shape" "vdk_virtq_pop vdk_virtq_add_used" \
		"$ops" --shape "$shape"
done
for dev in 1 64 1024; do
	line=$("$BUILD/bench/bench_bus" --devices "$dev" --iters "$NATIVE_ITERS")
	echo "$line"
	ops=$(echo "$line" | awk '{ for (i = 1; i < NF; i++)
		if ($(i + 1) == "M/s") printf "%.0f", $i * 1e6 }')
	row bench_bus "$dev devices" "vdk_bus_write" "$ops" --devices "$dev"
done

echo
if [ "$have_cg" = 1 ]; then
	echo "== instructions per operation (callgrind, $CG_ITERS iterations)"
else
	echo "== valgrind not installed: no instruction counts"
fi
printf '%-12s %-14s %14s %14s %16s\n' benchmark config "instr/op lib" \
	"instr/op loop" "ops/s native"
printf '%s\n' "${rows[@]}"
BUILD="$BUILD" bench/bench_vmm.sh || [ $? -eq 77 ]
BUILD="$BUILD" bench/bench_linux_vmm.sh || [ $? -eq 77 ]
