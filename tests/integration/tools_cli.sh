#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools_cli.sh - the command lines of vdk-vhost-user-blk, vdk-vhost-user-rng
# and vdk-blkbench (the conventions of tools/options.h).
#
#   - --version / -V print "PROG VERSION", exit 0;
#   - --print-capabilities prints valid JSON and ignores every other option,
#     unknown ones included (vhost-user spec, "Backend program conventions");
#   - a mistake is exactly one line "PROG: ... (see --help)" on stderr, exit
#     1, nothing on stdout (no usage dump);
#   - a value option given twice is an error;
#   - ",," is a comma inside a --disk value;
#   - vdk-blkbench reports a stray argument as such, and notices at once a
#     back-end that dies under it (it watches the socket for a hang-up);
#   - a backend keeps listening after a front-end leaves (--once: it exits);
#     a second backend on a live --socket-path exits 1 with a clear message
#     and leaves the socket alone, a stale socket file is replaced; SIGHUP is
#     a clean stop (exit 0, socket removed); a front-end leaving right after
#     GET_QUEUE_NUM (QEMU refusing the queue count) is explained in the
#     backend's log.
#
# Environment: VDK_BUILD (default: <repo>/build).
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (no binaries or no python3).
set -uo pipefail

name=tools_cli
# shellcheck source-path=SCRIPTDIR source=lib/tools.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
blk="$build/tools/vdk-vhost-user-blk"
rng="$build/tools/vdk-vhost-user-rng"
bench="$build/tools/vdk-blkbench"
net="$build/tools/vdk-vhost-user-net"

tools_need "$blk" "$rng" "$bench"
command -v python3 >/dev/null || skip "python3 not installed (checks the JSON)"
tools_scratch

cases=0
# check NAME STATUS TEXT PROGRAM ARGS...: PROGRAM ARGS must exit with
# STATUS and print TEXT; an error (STATUS 1) is one line on stderr that
# starts with the program's name, and nothing on stdout.
check() {
	local name=$1 want=$2 text=$3 prog=$4 rc out err
	shift 4
	cases=$((cases + 1))
	out=$(timeout 20 "$prog" "$@" </dev/null 2>"$work/stderr")
	rc=$?
	err=$(<"$work/stderr")
	printf -- '---- %s (exit %d): %s\n' "$name" "$rc" "${err:-${out%%$'\n'*}}"
	if [[ $rc -ne $want ]]; then
		fail "$name: exit status $rc, expected $want"
	elif ! grep -qF -- "$text" <<<"$out$err"; then
		fail "$name: output lacks '$text'"
	elif [[ $want -eq 1 && -n "$out" ]]; then
		fail "$name: printed on stdout: $out"
	elif [[ $want -eq 1 && "$err" != "$(basename "$prog")":* ]]; then
		fail "$name: message does not start with '$(basename "$prog"):'"
	elif [[ $want -eq 1 && $(wc -l <"$work/stderr") -ne 1 ]]; then
		fail "$name: more than one line on stderr"
	fi
}
# json NAME PROGRAM ARGS...: stdout is valid JSON, exit 0.
json() {
	local name=$1
	shift
	cases=$((cases + 1))
	if ! timeout 20 "$@" </dev/null 2>/dev/null | python3 -m json.tool >/dev/null; then
		fail "$name: no valid JSON on stdout or non-zero exit"
	else
		echo "---- $name: valid JSON"
	fi
}

truncate -s 1M "$work/disk.img"

for p in "$blk" "$rng" "$net" "$bench"; do
	n=$(basename "$p")
	check "$n-version" 0 "$n 0." "$p" --version
	check "$n-version-short" 0 "$n 0." "$p" -V
	check "$n-help" 0 "Usage: $n" "$p" --help
	check "$n-unknown" 1 "unknown option '--bogus' (see --help)" "$p" --bogus
	check "$n-unknown-short" 1 "unknown option '-x' (see --help)" "$p" -x
	check "$n-missing-arg" 1 "missing argument for '--socket-path'" "$p" --socket-path
	check "$n-socket-twice" 1 "--socket-path given more than once" "$p" \
		--socket-path a --socket-path=b
	check "$n-extra" 1 "unexpected argument 'extra'" "$p" --socket-path "$work/s" extra
done

for p in "$blk" "$rng" "$net"; do
	n=$(basename "$p")
	json "$n-caps" "$p" --print-capabilities
	json "$n-caps-ignores-unknown" "$p" --print-capabilities --bogus -x
	json "$n-caps-ignores-bad-values" "$p" --fd=nope --socket-path --print-capabilities
	json "$n-caps-abbreviated" "$p" --print-cap
	check "$n-caps-type" 0 '"type"' "$p" --bogus --print-capabilities
	check "$n-fd-twice" 1 "--fd given more than once" "$p" --fd=3 --fd=4
	check "$n-flag-value" 1 "option '--verbose=2' takes no value" "$p" --verbose=2
done

check blk-disk-twice 1 "--disk given more than once" "$blk" --socket-path "$work/s" \
	--disk "$work/disk.img" --disk "$work/disk.img"
check blk-disk-and-blk-file 1 "give one of --disk and --blk-file" "$blk" \
	--socket-path "$work/s" --disk "$work/disk.img" --blk-file "$work/disk.img"
check blk-disk-bad-subopt 1 "--disk: bogus: unknown setting (see --help)" "$blk" \
	--socket-path "$work/s" --disk "$work/disk.img,bogus"
check blk-blk-file-and-disk 1 "give one of --disk and --blk-file" "$blk" \
	--socket-path "$work/s" --blk-file "$work/disk.img" --disk "$work/disk.img"
check blk-disk-serial-twice 1 "--disk: serial: given twice" "$blk" \
	--socket-path "$work/s" --disk "$work/disk.img,serial=a,serial=b"
check blk-long-serial 1 "--serial: at most 20 bytes" "$blk" --socket-path "$work/s" \
	--disk "$work/disk.img" --serial 123456789012345678901
check blk-bad-queues 1 "--num-queues: want 1..16" "$blk" --socket-path "$work/s" \
	--disk "$work/disk.img" --num-queues 17
check blk-bad-queue-size 1 "--queue-size: want a power of two 4..1024" "$blk" \
	--socket-path "$work/s" --disk "$work/disk.img" --queue-size 100
check blk-bad-aio 1 "--aio: want auto|sync|io_uring" "$blk" --socket-path "$work/s" \
	--disk "$work/disk.img" --aio=native
check blk-no-disk 1 "--disk (or --blk-file) is required" "$blk" --socket-path "$work/s"
check rng-bad-max-bytes 1 "--max-bytes: want 1..4294967295" "$rng" --socket-path "$work/s" \
	--max-bytes 0
check rng-bad-queue-size 1 "--queue-size: want a power of two 1..32768" "$rng" \
	--socket-path "$work/s" --queue-size 3
check net-bad-mac 1 "--mac: want a unicast address" "$net" --socket-path "$work/s" \
	--loopback --mac 01:00:5e:00:00:01
check net-bad-pairs 1 "--queue-pairs: want 1..31" "$net" --socket-path "$work/s" \
	--loopback --queue-pairs 32
check net-bad-mtu 1 "--mtu: want 68..65535" "$net" --socket-path "$work/s" \
	--loopback --mtu 67
check net-two-backends 1 "--loopback: tap already chosen" "$net" --socket-path "$work/s" \
	--tap=tap0 --loopback
check net-no-backend 1 "want one of --tap, --tap-fd, --loopback" "$net" --socket-path "$work/s"
check net-tap-fd-pairs 1 "--tap-fd: carries one queue pair" "$net" --socket-path "$work/s" \
	--tap-fd=5 --queue-pairs=2
check net-mac-twice 1 "--mac given more than once" "$net" --socket-path "$work/s" \
	--loopback --mac 52:54:00:00:00:01 --mac 52:54:00:00:00:02
check blk-queues-twice 1 "--num-queues given more than once" "$blk" --socket-path "$work/s" \
	--disk "$work/disk.img" --num-queues 1 --num-queues 2
check rng-max-bytes-twice 1 "--max-bytes given more than once" "$rng" --socket-path "$work/s" \
	--max-bytes 1 --max-bytes 2
check bench-rw-twice 1 "--rw given more than once" "$bench" --socket-path "$work/s" \
	--rw read --rw write
check bench-no-socket 1 "--socket-path is required" "$bench"

check rng-group-unknown 1 "--socket-group=no-such-group-vdk: no such group" "$rng" \
	--socket-path "$work/s" --socket-group=no-such-group-vdk
check rng-group-with-fd 1 "--socket-group needs --socket-path" "$rng" --fd=3 --socket-group=0

# --socket-group: the socket is GROUP's, mode 0660 (another group if we may
# chown to it, i.e. as root; else our own).
grp=$(id -gn)
[[ $(id -u) -eq 0 ]] && getent group nogroup >/dev/null && grp=nogroup
cases=$((cases + 1))
"$rng" --socket-path "$work/grp.sock" --socket-group="$grp" 2>"$work/grp.log" &
pid=$!
pids+=("$pid")
wait_socket "$work/grp.sock"
perm=$(stat -c '%a %G' "$work/grp.sock" 2>/dev/null)
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
echo "---- rng-socket-group: $perm"
[[ "$perm" == "660 $grp" ]] || fail "rng-socket-group: socket is '$perm', expected '660 $grp': $(cat "$work/grp.log")"

# ",,": the image "a,b.img" with serial "x,y" is served.
cp "$work/disk.img" "$work/a,b.img"
cases=$((cases + 1))
"$blk" --socket-path "$work/comma.sock" --disk "$work/a,,b.img,serial=x,,y" -v \
	2>"$work/comma.log" &
pid=$!
pids+=("$pid")
wait_socket "$work/comma.sock"
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
echo "---- blk-disk-comma-escape: $(head -n 1 "$work/comma.log")"
grep -qF "$work/a,b.img: 2048 sectors, serial x,y" "$work/comma.log" ||
	fail "blk-disk-comma-escape: image 'a,b.img' with serial 'x,y' not served: $(cat "$work/comma.log")"

# vdk-blkbench notices a back-end that dies: SIGKILL the back-end one second
# into a 60 s run; blkbench must stop with an error long before the run
# would have ended (well inside its 10 s drain timeout, which it used to
# hit).
cases=$((cases + 1))
"$blk" --socket-path "$work/dead.sock" --disk "$work/disk.img" 2>"$work/dead-backend.log" &
bpid=$!
pids+=("$bpid")
wait_socket "$work/dead.sock"
"$bench" --socket-path "$work/dead.sock" --runtime 60 --iodepth 4 >"$work/bench.out" \
	2>"$work/bench.err" &
cpid=$!
pids+=("$cpid")
sleep 1
kill -KILL "$bpid"
start=$SECONDS
wait_exit "$cpid" 80
if kill -0 "$cpid" 2>/dev/null; then
	fail "blkbench-dead-backend: still running 8 s after the back-end died"
else
	wait "$cpid"
	rc=$?
	echo "---- blkbench-dead-backend (exit $rc after $((SECONDS - start)) s): $(tail -n 1 "$work/bench.err")"
	[[ $rc -eq 1 ]] || fail "blkbench-dead-backend: exit status $rc, expected 1"
	grep -q "the back-end closed the connection" "$work/bench.err" ||
		fail "blkbench-dead-backend: no 'closed the connection' message: $(cat "$work/bench.err")"
fi

# Keep listening, one live socket, SIGHUP.
cases=$((cases + 1))
live="$work/live.sock"
"$blk" --socket-path "$live" --disk "$work/disk.img" 2>"$work/live.log" &
lpid=$!
pids+=("$lpid")
wait_socket "$live"
for run in 1 2; do
	"$bench" --socket-path "$live" --runtime 1 >"$work/live-bench.out" 2>&1 ||
		fail "keep-listening: front-end $run failed: $(cat "$work/live-bench.out")"
done
sleep 0.2
if kill -0 "$lpid" 2>/dev/null && [[ -S "$live" ]]; then
	echo "---- keep-listening: still serving after 2 front-ends"
else
	fail "keep-listening: the backend or its socket is gone after a front-end left: $(cat "$work/live.log")"
fi
cases=$((cases + 1))
ino=$(stat -c %i "$live")
timeout 10 "$blk" --socket-path "$live" --disk "$work/disk.img" 2>"$work/second.log"
rc=$?
echo "---- second-backend-live-socket (exit $rc): $(grep 'cannot serve' "$work/second.log")"
[[ $rc -eq 1 ]] || fail "second-backend-live-socket: exit $rc, expected 1"
grep -q "another process serves this socket" "$work/second.log" ||
	fail "second-backend-live-socket: no clear message: $(cat "$work/second.log")"
[[ "$(stat -c %i "$live" 2>/dev/null)" == "$ino" ]] ||
	fail "second-backend-live-socket: the first backend's socket was replaced"
cases=$((cases + 1))
python3 - "$live" <<'PY' || fail "queue-num-refusal: the front-end script failed"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(struct.pack("<III", 17, 1, 0))  # VHOST_USER_GET_QUEUE_NUM, version 1
rep = b""
while len(rep) < 20:
    b = s.recv(20 - len(rep))
    if not b:
        sys.exit("no reply")
    rep += b
s.close()  # as QEMU does when num-queues exceeds the answer
PY
for _ in $(seq 50); do grep -q "right after asking the number of queues" "$work/live.log" && break; sleep 0.1; done
echo "---- queue-num-refusal: $(grep -o 'the front-end disconnected right after.*' "$work/live.log" | head -n 1)"
grep -q "right after asking the number of queues (1).*num-queues=1" "$work/live.log" ||
	fail "queue-num-refusal: no clear backend log line: $(cat "$work/live.log")"
cases=$((cases + 1))
kill -HUP "$lpid"
wait_exit "$lpid"
wait "$lpid"
rc=$?
echo "---- sighup-clean-stop (exit $rc): $(grep -o 'Hangup.*' "$work/live.log")"
[[ $rc -eq 0 ]] || fail "sighup-clean-stop: exit $rc, expected 0: $(cat "$work/live.log")"
[[ ! -e "$live" ]] || fail "sighup-clean-stop: the socket was left behind"

# A stale socket file (nobody listens) is replaced.
cases=$((cases + 1))
stale="$work/stale.sock"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$stale"
ino=$(stat -c %i "$stale")
"$rng" --socket-path "$stale" 2>"$work/stale.log" &
spid=$!
pids+=("$spid")
for _ in $(seq 100); do
	[[ -S "$stale" && "$(stat -c %i "$stale")" != "$ino" ]] && break
	sleep 0.1
done
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$stale" 2>/dev/null
crc=$?
kill -HUP "$spid"
wait "$spid"
rc=$?
echo "---- stale-socket-replaced (connect $crc, exit $rc)"
[[ $crc -eq 0 && $rc -eq 0 ]] || fail "stale-socket-replaced: connect $crc, exit $rc: $(cat "$work/stale.log")"

# --once: exit 0 when the first front-end leaves.
cases=$((cases + 1))
"$blk" --socket-path "$work/once.sock" --disk "$work/disk.img" --once 2>"$work/once.log" &
opid=$!
pids+=("$opid")
wait_socket "$work/once.sock"
"$bench" --socket-path "$work/once.sock" --runtime 1 >/dev/null 2>&1
wait_exit "$opid"
if kill -0 "$opid" 2>/dev/null; then
	fail "once: still running 5 s after its front-end left"
else
	wait "$opid"
	rc=$?
	echo "---- once (exit $rc)"
	[[ $rc -eq 0 && ! -e "$work/once.sock" ]] || fail "once: exit $rc or socket left: $(cat "$work/once.log")"
fi

if [[ $failures -ne 0 ]]; then
	echo "FAIL ($failures of $cases cases)"
	exit 1
fi
echo "PASS ($cases cases)"
exit 0
