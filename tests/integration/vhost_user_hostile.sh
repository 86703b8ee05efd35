#!/usr/bin/env bash
# vhost_user_hostile.sh - the backend programs under a hostile front-end: SIGTERM always ends
# them within a second, and a flooding driver does not keep the control socket waiting.
#
# With the hostile front-end tests/mock/vu_hostile.c (vdk-test-vu-hostile) connected, each
# backend gets SIGTERM and must be gone within 1.5 s (1 s is the rule, see <vdk/vhost_user.h>;
# the margin is for a loaded machine) in these states:
#   idle          a set-up ring, nothing happening
#   half-message  half a message header received
#   stuck-call    the ring's call eventfd made blocking behind the backend's back and its
#                 counter full, a request posted: the notification write would wait forever
#                 (vdk-vhost-user-rng; blk answers the same way but needs a valid request)
#   state-lowat   a device-state load from a socket whose read() would block (SO_RCVLOWAT)
#   flood         a driver keeping the rng ring full
# The time each took is printed. Then a 3 s flood against vdk-vhost-user-rng with GET_FEATURES
# round trips timed by the front-end: the figures are printed (no timed assertion; every reply
# must come, within the front-end's 10 s timeout).
#
# Environment: VDK_BUILD_DIR (default <repo>/build), VDK_ARTIFACTS (logs).
# Exit status: 0 pass, 1 fail, 77 skipped.
set -uo pipefail

name=vhost_user_hostile
# shellcheck source-path=SCRIPTDIR source=lib/vhost_user.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/vhost_user.sh"
art="${VDK_ARTIFACTS:-$build/test-artifacts/vhost_user_hostile}"
hostile="$build/tests/vdk-test-vu-hostile"

for b in "$hostile" "$build/tools/vdk-vhost-user-rng" "$build/tools/vdk-vhost-user-blk"; do
	[[ -x "$b" ]] || skip "$b not built (meson setup build && ninja -C build)"
done
rm -rf "$art"
mkdir -p "$art"
tmp="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
truncate -s 16M "$tmp/disk.img"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_backend KIND LOG: sets $be_pid.
start_backend() {
	local kind=$1 log=$2
	rm -f "$tmp/sock"
	if [[ $kind == blk ]]; then
		"$build/tools/vdk-vhost-user-blk" --socket-path="$tmp/sock" \
			--disk="$tmp/disk.img" >"$log" 2>&1 &
	else
		"$build/tools/vdk-vhost-user-rng" --socket-path="$tmp/sock" >"$log" 2>&1 &
	fi
	be_pid=$!
	pids+=("$be_pid")
	for _ in $(seq 100); do
		[[ -S "$tmp/sock" ]] && return 0
		sleep 0.05
	done
	fail "$kind backend did not listen (log $log)"
}

# sigterm_case KIND MODE
sigterm_case() {
	local kind=$1 mode=$2 log="$art/$1-$2"
	start_backend "$kind" "$log.backend.log"
	mkfifo "$tmp/in"
	if [[ $mode == flood ]]; then
		"$hostile" "$tmp/sock" flood 30 >"$log.frontend.log" 2>&1 &
		fe_pid=$!
		sleep 1
	else
		"$hostile" "$tmp/sock" "$mode" <"$tmp/in" >"$log.frontend.log" 2>&1 &
		fe_pid=$!
		exec 7>"$tmp/in" # keeps the front-end's stdin open
		for _ in $(seq 200); do
			grep -q ready "$log.frontend.log" 2>/dev/null && break
			kill -0 "$fe_pid" 2>/dev/null || break
			sleep 0.05
		done
		grep -q ready "$log.frontend.log" ||
			fail "$kind $mode: front-end not ready: $(cat "$log.frontend.log")"
		sleep 0.3 # let the backend reach the state
	fi
	pids+=("$fe_pid")
	kill -0 "$be_pid" 2>/dev/null || fail "$kind $mode: backend died before the signal"
	local t0 t1 status
	t0=$(now_ms)
	kill -TERM "$be_pid"
	for _ in $(seq 500); do
		kill -0 "$be_pid" 2>/dev/null || break
		sleep 0.01
	done
	t1=$(now_ms)
	if kill -0 "$be_pid" 2>/dev/null; then
		kill -KILL "$be_pid"
		fail "$kind $mode: backend still running 5 s after SIGTERM"
	fi
	wait "$be_pid"
	status=$?
	exec 7>&-
	kill "$fe_pid" 2>/dev/null
	wait "$fe_pid" 2>/dev/null
	rm -f "$tmp/in"
	say "$kind $mode: SIGTERM → exit in $((t1 - t0)) ms (status $status)"
	((t1 - t0 <= 1500)) || fail "$kind $mode: took $((t1 - t0)) ms"
	[[ $status == 0 || $status == 143 ]] || fail "$kind $mode: exit status $status"
}

for mode in idle half-message stuck-call state-lowat flood; do
	sigterm_case rng "$mode"
done
for mode in idle half-message state-lowat; do
	sigterm_case blk "$mode"
done

# fairness: GET_FEATURES round trips under a flooding driver
start_backend rng "$art/flood.backend.log"
"$hostile" "$tmp/sock" flood 3 >"$art/flood.frontend.log" 2>&1 ||
	fail "flood: $(cat "$art/flood.frontend.log")"
kill -0 "$be_pid" 2>/dev/null || fail "rng backend exited after the flood (it must keep listening)"
kill -TERM "$be_pid"
wait "$be_pid" || fail "rng backend exit status $? on SIGTERM after the flood"
say "rng $(cat "$art/flood.frontend.log")"
say PASS
