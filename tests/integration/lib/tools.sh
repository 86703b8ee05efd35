# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# name is the test's; build, work and pids are for the test:
# shellcheck disable=SC2154,SC2034
#
# tools.sh - what the tests of vdk's command-line tools share (tools_cli.sh, tools_stats.sh):
# where the built programs are, a scratch directory with the programs started in the background
# stopped at exit, failures counted (the test goes on and says FAIL at the end), waits.
#
# The test sets name (the prefix of its lines) and sources this file, which sets repo (the
# repository), build ($VDK_BUILD, default <repo>/build) and failures=0.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
build="${VDK_BUILD:-$repo/build}"
failures=0

# skip REASON: the test cannot run here: say so loudly, exit 77.
skip() {
	echo "$name: SKIPPED: $*" >&2
	echo "SKIPPED"
	exit 77
}

# fail WHAT: one check failed; the test goes on.
fail() {
	echo "$name: FAIL: $*" >&2
	failures=$((failures + 1))
}

# tools_need PROGRAM...: skip unless every PROGRAM (a path in the build) is there.
tools_need() {
	local b
	for b in "$@"; do
		[[ -x "$b" ]] || skip "no $b (build it: ninja -C build, or set VDK_BUILD)"
	done
}

# tools_scratch: work, a scratch directory, and pids, the programs started in the background;
# at exit those are killed and the directory removed.
tools_scratch() {
	work="$(mktemp -d)"
	pids=()
	trap tools_cleanup EXIT
}
tools_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}

# wait_socket PATH [TENTHS]: wait until PATH is a socket, for at most TENTHS tenths of a
# second (default 100); the caller checks.
wait_socket() {
	local _
	for _ in $(seq "${2:-100}"); do
		[[ -S "$1" ]] && return
		sleep 0.1
	done
}

# wait_exit PID [TENTHS]: wait until PID has ended, for at most TENTHS tenths of a second
# (default 50); the caller checks (kill -0) and reaps it (wait).
wait_exit() {
	local _
	for _ in $(seq "${2:-50}"); do
		kill -0 "$1" 2>/dev/null || return
		sleep 0.1
	done
}
