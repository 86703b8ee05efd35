#!/usr/bin/env bash
# Public API hygiene (part of `make check`; STYLE.md "Ownership and API"):
#   1. libvdk.so exports only vdk_* symbols (nm -D --defined-only);
#   2. every public header compiles on its own as C11 and as C++17
#      (gcc/g++ -Wall -Wextra -Werror);
#   3. no third-party header (libcbor, liburing) is included by a public one.
# Usage: scripts/check-api.sh [BUILD_DIR]   (default build/, built if needed)
# Exit status: 0 all good, 1 otherwise (each problem is printed).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rc=0

[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null || exit 1
ninja -C "$build" libvdk.so.0.1.0 >/dev/null || { echo "check-api: build failed"; exit 1; }

others=$(nm -D --defined-only "$build/libvdk.so.0.1.0" | awk '{print $3}' | grep -v '^vdk_')
if [ -n "$others" ]; then
	echo "check-api: libvdk.so exports symbols outside vdk_*:"
	echo "$others" | sed 's/^/  /'
	rc=1
fi
n=$(nm -D --defined-only "$build/libvdk.so.0.1.0" | wc -l)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
headers=$(cd include && find vdk -name '*.h' | sort)
for h in $headers; do
	printf '#include <%s>\n' "$h" >"$tmp/one.c"
	cp "$tmp/one.c" "$tmp/one.cc"
	gcc -std=c11 -Wall -Wextra -Werror -fsyntax-only -Iinclude "$tmp/one.c" 2>"$tmp/err" ||
		{ echo "check-api: $h does not compile alone as C11:"; head -n 5 "$tmp/err"; rc=1; }
	g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -Iinclude "$tmp/one.cc" 2>"$tmp/err" ||
		{ echo "check-api: $h does not compile as C++17:"; head -n 5 "$tmp/err"; rc=1; }
done

if grep -rnE '#include <(cbor|liburing)' include; then
	echo "check-api: a public header includes a third-party header (above)"
	rc=1
fi

[ $rc -eq 0 ] && echo "check-api: ok ($n exported symbols, all vdk_*; $(wc -w <<<"$headers") headers compile as C11 and C++17)"
exit $rc
