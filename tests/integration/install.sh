#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install.sh - `meson install --destdir` puts everything where the README
# says: the programs in bindir, the library and its pkg-config file, the
# headers, one vhost-user backend description per backend program
# (share/qemu/vhost-user/50-vdk-*.json, valid JSON naming the installed
# binary; vhost-user spec "Backend program conventions") and the man pages.
#
# Environment: VDK_BUILD (default: <repo>/build, configured).
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (no configured build, no python3 or no
# scdoc).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${VDK_BUILD:-$repo/build}"

skip() {
	echo "install: SKIPPED: $*" >&2
	echo "SKIPPED"
	exit 77
}
[[ -f "$build/build.ninja" ]] || skip "no configured build at $build (meson setup build)"
command -v python3 >/dev/null || skip "python3 not installed (checks the JSON)"
command -v scdoc >/dev/null || skip "scdoc not installed (builds the man pages; scripts/install-deps.sh)"

dest="$(mktemp -d)"
trap 'rm -rf "$dest"' EXIT
if ! meson install -C "$build" --destdir "$dest" --quiet >"$dest.log" 2>&1; then
	cat "$dest.log"
	rm -f "$dest.log"
	echo "install: FAIL: meson install failed" >&2
	echo "FAIL"
	exit 1
fi
rm -f "$dest.log"
eval "$(python3 - "$build" <<'PY'
import json, sys, subprocess
opts = json.loads(subprocess.run(["meson", "introspect", "--buildoptions", sys.argv[1]],
                                 capture_output=True, text=True, check=True).stdout)
v = {o["name"]: o["value"] for o in opts}
for k in ("prefix", "bindir", "libdir", "includedir", "datadir", "mandir"):
    print(f'{k}="{v[k]}"')
PY
)"
rel() { [[ $1 == /* ]] && echo "$1" || echo "$prefix/$1"; }
bindir=$(rel "$bindir") libdir=$(rel "$libdir") includedir=$(rel "$includedir")
datadir=$(rel "$datadir") mandir=$(rel "$mandir")

failures=0 cases=0
want() { # want FILE DESCRIPTION
	cases=$((cases + 1))
	if [[ -e "$dest$1" ]]; then echo "---- ok: $2: $1"
	else echo "install: FAIL: $2 missing: $1" >&2; failures=$((failures + 1)); fi
}
for p in vdk-vhost-user-blk vdk-vhost-user-rng vdk-vhost-user-net vdk-blkbench vdk-vmm; do
	want "$bindir/$p" "program"
	want "$mandir/man1/$p.1" "man page"
done
want "$libdir/pkgconfig/vdk.pc" "pkg-config file"
want "$includedir/vdk/virtq.h" "header"
want "$libdir/libvdk.a" "static library"
for t in blk:block rng:rng net:net; do
	j="$datadir/qemu/vhost-user/50-vdk-vhost-user-${t%%:*}.json"
	want "$j" "vhost-user backend description"
	[[ -f "$dest$j" ]] || continue
	cases=$((cases + 1))
	if ! python3 -m json.tool "$dest$j" >/dev/null; then
		echo "install: FAIL: $j is not valid JSON" >&2; failures=$((failures + 1)); continue
	fi
	got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["type"], d["binary"], bool(d["description"]))' "$dest$j")
	if [[ "$got" != "${t#*:} $bindir/vdk-vhost-user-${t%%:*} True" ]]; then
		echo "install: FAIL: $j: type/binary/description wrong: $got" >&2; failures=$((failures + 1))
	else
		echo "---- ok: $j: $got"
	fi
	# The binary it names answers --print-capabilities with the same type.
	cases=$((cases + 1))
	caps=$("$dest$bindir/vdk-vhost-user-${t%%:*}" --print-capabilities |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')
	if [[ "$caps" != "${t#*:}" ]]; then
		echo "install: FAIL: --print-capabilities type '$caps', JSON says '${t#*:}'" >&2
		failures=$((failures + 1))
	fi
done
# The man pages are troff that man(1) renders.
cases=$((cases + 1))
if command -v man >/dev/null; then
	if ! man -l "$dest$mandir/man1/vdk-vhost-user-blk.1" 2>/dev/null | grep -q -- "--print-capabilities"; then
		echo "install: FAIL: man -l cannot render vdk-vhost-user-blk.1" >&2; failures=$((failures + 1))
	fi
fi

if [[ $failures -ne 0 ]]; then
	echo "FAIL ($failures of $cases cases)"
	exit 1
fi
echo "PASS ($cases cases)"
exit 0
