#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools_stats.sh - live statistics and log lines of vdk-vhost-user-blk while
# vdk-blkbench drives it:
#   - --stats-socket answers each connection with one JSON document whose
#     per-device and per-queue counters match the traffic (reads, bytes,
#     used chains, the latency histogram) and grow while it runs;
#   - the socket answers also before any front-end connected and after it
#     left (served from the program's loop; no queue started then);
#   - SIGUSR1 logs the same document as one line, and so does a clean stop, last;
#   - vdk-vhost-user-net's document (device counters, queue pairs) the same ways;
#   - every log line carries a UTC timestamp and the device's name;
#   - -v logs the vhost-user message trace (request names, queue indices,
#     feature bits);
#   - --stats-socket on a live socket is refused; --log takes stderr|syslog.
#
# Environment: VDK_BUILD (default: <repo>/build).
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (no binaries or no python3).
set -uo pipefail

name=tools_stats
# shellcheck source-path=SCRIPTDIR source=lib/tools.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
blk="$build/tools/vdk-vhost-user-blk"
bench="$build/tools/vdk-blkbench"

tools_need "$blk" "$bench"
command -v python3 >/dev/null || skip "python3 not installed (reads the JSON)"
tools_scratch

truncate -s 16M "$work/disk.img"
"$blk" --socket-path="$work/blk.sock" --disk="$work/disk.img,serial=st0" \
	--stats-socket="$work/stats.sock" --num-queues=2 -v 2>"$work/blk.log" &
bpid=$!
pids+=("$bpid")
wait_socket "$work/blk.sock"
wait_socket "$work/stats.sock"
[[ -S "$work/stats.sock" ]] || { cat "$work/blk.log"; fail "no stats socket"; exit 1; }

# A second backend may not take over the live statistics socket.
out=$("$blk" --socket-path="$work/other.sock" --disk="$work/disk.img" \
	--stats-socket="$work/stats.sock" 2>&1)
rc=$?
[[ $rc -eq 1 && $out == *"another process serves it"* ]] ||
	fail "live --stats-socket not refused (exit $rc): $out"
[[ -S "$work/stats.sock" ]] || fail "the refused backend removed the live stats socket"

query() { # query OUTFILE: one document from the stats socket
	python3 - "$work/stats.sock" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
json.dump(json.loads(data), open(sys.argv[2], "w"))
PY
}
# Served from the program's loop before any front-end connected.
query "$work/q0.json" 2>"$work/q0.err" || fail "stats query without a front-end failed: $(cat "$work/q0.err")"

"$bench" --socket-path "$work/blk.sock" --rw randread --iodepth 4 --num-queues 2 \
	--runtime 60 >"$work/bench.out" 2>&1 & # stopped by SIGINT below
cpid=$!
pids+=("$cpid")

sleep 1
query "$work/q1.json" 2>"$work/q1.err" || fail "first stats query failed: $(cat "$work/q1.err")"
sleep 1
query "$work/q2.json" 2>"$work/q2.err" || fail "second stats query failed: $(cat "$work/q2.err")"
kill -USR1 "$bpid"
sleep 0.5
kill -INT "$cpid" # ends the run cleanly, with its report
wait "$cpid" || fail "vdk-blkbench failed: $(cat "$work/bench.out")"
# ... and after the front-end left (the backend keeps listening).
sleep 0.3
query "$work/q3.json" 2>"$work/q3.err" || fail "stats query after the front-end left failed: $(cat "$work/q3.err")"
python3 - "$work/q0.json" "$work/q2.json" "$work/q3.json" <<'PY' || fail "statistics without a front-end wrong"
import json, sys
z, b, c = (json.load(open(p)) for p in sys.argv[1:4])
ok = (z["device"]["reads"] == 0 and not any(q["started"] for q in z["queues"])
      and not any(q["started"] for q in c["queues"])
      and c["device"]["reads"] >= b["device"]["reads"] > 0 and c["device"]["in_flight"] == 0)
print("---- stats without a front-end: before %d reads, after %d reads, no queue started" % (
    z["device"]["reads"], c["device"]["reads"]))
sys.exit(0 if ok else 1)
PY

python3 - "$work/q1.json" "$work/q2.json" <<'PY' || fail "statistics document wrong"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def check(c, msg):
    if not c:
        print("tools_stats: document:", msg, file=sys.stderr)
        sys.exit(1)
for d in (a, b):
    check(d["version"] == 1 and d["program"] == "vdk-vhost-user-blk", "header")
    check(d["device_name"] == "st0" and d["type"] == "block", "name/type")
    check(len(d["queues"]) == 2, "two queues")
    dev, qs = d["device"], d["queues"]
    check(dev["capacity_sectors"] == 16 * 2048, "capacity")
    check(dev["reads"] == sum(q["reads"] for q in qs), "device reads = sum of queues")
    check(dev["bytes_read"] == 4096 * dev["reads"], "4 KiB per read")
    for q in qs:
        check(q["started"], "queue started")
        check(q["reads"] > 0, "each queue read")
        # every used chain but the in-flight-at-sampling ones is a counted read
        check(q["used"] == q["reads"], "used chains = reads")
        check(q["used_bytes"] == q["reads"] * 4097, "used bytes = data + status")
        lat = q["latency_us"]
        check(len(lat["upper"]) == len(lat["count"]) == 24 and lat["upper"][-1] is None,
              "latency buckets")
        check(sum(lat["count"]) == q["reads"], "one latency sample per request")
        check(q["notify_sent"] + q["notify_suppressed"] > 0, "notifications counted")
        check(0 <= q["in_flight"] <= 4, "in flight")
check(b["device"]["reads"] > a["device"]["reads"], "counters grow")
check(b["uptime_ms"] > a["uptime_ms"], "uptime grows")
print("---- stats: %d then %d reads, queue 0 p(lat<%sus) buckets %s" % (
    a["device"]["reads"], b["device"]["reads"], b["queues"][0]["latency_us"]["upper"][:6],
    b["queues"][0]["latency_us"]["count"][:6]))
PY

# SIGUSR1: the document, one log line.
line=$(grep '"program":"vdk-vhost-user-blk"' "$work/blk.log" | head -n 1)
if [[ -z "$line" ]]; then
	fail "SIGUSR1 logged no statistics"
else
	python3 -c 'import json,sys; l=sys.argv[1]; json.loads(l[l.index("{"):])' "$line" ||
		fail "SIGUSR1 line is not JSON: $line"
fi
# Log lines: "YYYY-MM-DDTHH:MM:SS.mmmZ vdk-vhost-user-blk[st0]: ..." once
# the device exists.
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z vdk-vhost-user-blk\[st0\]: front-end connected' \
	"$work/blk.log" || fail "log lines lack a timestamp or the device name"
bad=$(grep -vcE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z vdk-vhost-user-blk' "$work/blk.log")
[[ $bad -eq 0 ]] || fail "$bad log line(s) without a timestamp"
# -v: the message trace.
grep -q 'vhost-user: <- VHOST_USER_SET_VRING_NUM (8) size 8, 0 fd(s) queue 1 num 256' "$work/blk.log" ||
	fail "no message trace with queue index"
grep -qE 'vhost-user: <- VHOST_USER_SET_FEATURES \(2\) size 8, 0 fd\(s\) 0x[0-9a-f]{16}' "$work/blk.log" ||
	fail "no message trace with feature bits"
grep -qE 'vhost-user: -> VHOST_USER_GET_FEATURES reply, size 8 0x[0-9a-f]{16}' "$work/blk.log" ||
	fail "no reply trace with feature bits"

# At exit (SIGTERM): the document once more, the counters as the last query saw them.
kill -TERM "$bpid"
wait_exit "$bpid"
wait "$bpid" || fail "vdk-vhost-user-blk exited with status $? on SIGTERM (want 0)"
python3 - "$work/blk.log" "$work/q3.json" <<'PY' || fail "no statistics logged at exit, or other counters than the last query's"
import json, sys
lines = [l for l in open(sys.argv[1]) if '"program":"vdk-vhost-user-blk"' in l]
last, q3 = json.loads(lines[-1][lines[-1].index("{"):]), json.load(open(sys.argv[2]))
print("---- at exit: %d reads (%d statistics lines in the log)" % (last["device"]["reads"], len(lines)))
sys.exit(0 if len(lines) >= 2 and last["device"]["reads"] == q3["device"]["reads"] > 0 else 1)
PY

# vdk-vhost-user-net: the same document with its own members, without a front-end; SIGUSR1
# and the line at exit.
net="$build/tools/vdk-vhost-user-net"
if [[ -x "$net" ]]; then
	"$net" --socket-path="$work/net.sock" --loopback --queue-pairs=3 \
		--stats-socket="$work/stats.sock" 2>"$work/net.log" &
	npid=$!
	pids+=("$npid")
	wait_socket "$work/net.sock"
	wait_socket "$work/stats.sock"
	query "$work/n0.json" 2>"$work/n0.err" || fail "net: stats query failed: $(cat "$work/n0.err")"
	kill -USR1 "$npid"
	sleep 0.3
	kill -TERM "$npid"
	wait_exit "$npid"
	wait "$npid" || fail "vdk-vhost-user-net exited with status $? after SIGUSR1 and SIGTERM (want 0): $(tail -n 3 "$work/net.log")"
	python3 - "$work/n0.json" "$work/net.log" <<'PY' || fail "net: statistics document wrong"
import json, sys
d = json.load(open(sys.argv[1]))
lines = [l for l in open(sys.argv[2]) if '"program":"vdk-vhost-user-net"' in l]
pairs, dev = d["queue_pairs"], d["device"]
print("---- net: type %s, %d queue pairs, %d device counters, %d log lines" % (
    d["type"], len(pairs), len(dev), len(lines)))
ok = (d["program"] == "vdk-vhost-user-net" and d["type"] == "net"
      and [p["index"] for p in pairs] == [0, 1, 2]
      and all(p["tx_packets"] == p["rx_packets"] == 0 for p in pairs)
      and dev["tx_packets"] == dev["rx_packets"] == dev["rx_dropped_no_room"] == 0
      and len(lines) == 2)  # SIGUSR1, then at exit
sys.exit(0 if ok else 1)
PY
else
	echo "---- net: SKIPPED: $net not built"
fi

# --log
out=$("$blk" --socket-path="$work/x.sock" --disk="$work/disk.img" --log=bogus 2>&1)
[[ $? -eq 1 && $out == *"--log: want stderr or syslog"* ]] || fail "--log=bogus accepted: $out"
"$blk" --socket-path="$work/y.sock" --disk="$work/disk.img" --log=syslog 2>"$work/syslog.err" &
spid=$!
pids+=("$spid")
wait_socket "$work/y.sock" 50
[[ -S "$work/y.sock" ]] || fail "--log=syslog: backend did not start"
kill "$spid"
wait "$spid"
[[ ! -s "$work/syslog.err" ]] || fail "--log=syslog still wrote to stderr: $(cat "$work/syslog.err")"

if [[ $failures -ne 0 ]]; then
	echo "--- backend log:"; tail -n 20 "$work/blk.log"
	echo "FAIL ($failures)"
	exit 1
fi
echo "PASS"
exit 0
