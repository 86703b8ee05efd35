#!/usr/bin/env bash
# vhost_user_reconnect.sh - the blk backend dies (SIGKILL) during guest I/O and is restarted;
# QEMU reconnects, the new backend resubmits the requests left in flight, the guest's writes
# complete without an error and the image holds exactly what the guest wrote.
#
# One vdk-vhost-user-blk on a 48 MiB image (serial vdk-rc, 2 request queues, -v) serves QEMU's
# vhost-user-blk-pci through `-chardev socket,...,reconnect=1`. The test guest (docs/guest.md)
# runs tests/integration/guest-tests/reconnect.sh: four O_DIRECT dd writers put a 32 MiB
# pattern (every sector distinct) at offset 0. Meanwhile the host
#   1. waits for the guest's "VDK-RECONNECT: writing" and opens the inflight region (the memfd
#      vdk-vhost-inflight that vdk created for GET_INFLIGHT_FD and QEMU keeps) through
#      /proc/<qemu>/fd;
#   2. stutters the backend (SIGSTOP 3 ms, SIGCONT 2 ms) so the guest's requests arrive in
#      bursts, and watches the region for a head marked in flight other than the last used one;
#   3. seeing one, SIGSTOPs the backend, reads the now frozen region again and, if a request is
#      still in flight and the image already holds MiB 2 of the pattern, SIGKILLs it; so the
#      kill always falls mid-way and leaves requests for the new backend to resubmit;
#   4. starts a new backend on the same socket at once; QEMU reconnects within a second.
# Checked: the guest's writes and read-back (sha256 against the host's) with no kernel I/O
# error, a clean power off; the first backend died of SIGKILL with the guest's writes still
# running; the new backend mapped the same inflight region (SET_INFLIGHT_FD: same memfd inode
# as QEMU's), logged resubmitting at least as many requests as were seen in flight, and exited
# 0 when QEMU quit; the image equals the expected one byte for byte (the 16 MiB past the
# pattern untouched). Prints the timings: kill to new backend listening, kill to
# SET_INFLIGHT_FD, the guest's write time, boot to power off.
#
# Environment:
#   VDK_BUILD_DIR     meson build directory with the tools (default: <repo>/build)
#   VDK_ARTIFACTS     console and backend logs (default: <repo>/build/test-artifacts/vhost_user_reconnect)
#   VDK_QEMU_ACCEL    kvm or tcg (default: kvm only where KVM can run Linux, see
#                     pick_accel in lib/vhost_user.sh)
#   VDK_BOOT_TIMEOUT  seconds for the whole boot (default: 120)
# Exit status: 0 pass, 1 fail, 77 skipped (no QEMU).
set -uo pipefail

name=vhost_user_reconnect
# shellcheck source-path=SCRIPTDIR source=lib/vhost_user.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/vhost_user.sh"
art="${VDK_ARTIFACTS:-$repo/build/test-artifacts/vhost_user_reconnect}"
boot_timeout="${VDK_BOOT_TIMEOUT:-120}"
mib=32       # MiB the guest writes from offset 0 (a multiple of its 4 writers)
disk_mib=48  # image size; the last 16 MiB must stay untouched
arm_mib=2    # kill only once this MiB of the image holds the pattern

# clean: the console without carriage returns and terminal escapes (docs/guest.md).
clean() { sed -E $'s/\r//g; s/\x1b(c|\\[[0-9;?]*[A-Za-z])//g'; }
now() { date +%s.%N; }
secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.2f", e - s }'; }

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v python3 >/dev/null || skip "python3 not installed"
qemu_accel

# --- build the backend and the guest ----------------------------------------------------------
blk="$build/tools/vdk-vhost-user-blk"
guest="$repo/build/vhost-user-reconnect-guest"
vhost_user_build "$guest" tools/vdk-vhost-user-blk

rm -rf "$art"
mkdir -p "$art"
# Sockets need a short path (108 bytes); the images live next to it.
tmp="$(mktemp -d /tmp/vdk-rc.XXXXXX)"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
	{ wait; } 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- images: the expected one and the one the guest writes --------------------------------------
# Sector s of MiB m: "vdk-reconnect MiB mmm sector ssss" padded with spaces to 511 bytes, then
# a newline (the guest's awk printf "%-511s\n"); every byte past the pattern is 0xa5.
expect="$(python3 - "$tmp" "$mib" "$disk_mib" <<'EOF'
import hashlib, sys
tmp, mib, disk_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pattern = b"".join(
    ("vdk-reconnect MiB %03d sector %04d" % (m, s)).ljust(511).encode() + b"\n"
    for m in range(mib) for s in range(2048))
filler = b"\xa5" * ((disk_mib - mib) << 20)
with open(tmp + "/expect.img", "wb") as f:
    f.write(pattern + filler)
with open(tmp + "/disk.img", "wb") as f:
    f.write(b"\xa5" * (disk_mib << 20))
print(hashlib.sha256(pattern).hexdigest())
EOF
)" || fail "cannot write the images"

# --- backend ----------------------------------------------------------------------------------
sock="$tmp/blk.sock"
start_backend() { # start_backend LOG: a backend on $sock; its pid in $bpid
	"$blk" --socket-path="$sock" --disk="$tmp/disk.img,serial=vdk-rc" --num-queues=2 -v \
		>"$1" 2>&1 &
	bpid=$!
	pids+=("$bpid")
}
wait_socket() {
	for _ in $(seq 200); do [[ -S "$sock" ]] && return 0; sleep 0.01; done
	return 1
}
start_backend "$art/blk-1.log"
b1="$bpid"
wait_socket || fail "backend socket $sock did not appear; see $art/blk-1.log"

# --- boot -------------------------------------------------------------------------------------
# edd=off: see vhost_user_guest.sh (SeaBIOS would drive the disk with one of its two queues).
raw="$art/console.raw"
console="$art/console.log"
start_s="$(now)"
boot_deadline=$((SECONDS + boot_timeout))
qemu-system-x86_64 -M q35 "${accel[@]}" -smp 2 -m 512M \
	-nographic -no-reboot -nic none \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 edd=off vdk.test=reconnect vdk.timeout=90 vdk.mib=$mib vdk.expect=$expect" \
	-chardev socket,id=blk0,path="$sock",reconnect=1 \
	-device vhost-user-blk-pci,chardev=blk0,num-queues=2 \
	</dev/null >"$raw" 2>&1 &
qpid=$!
pids+=("$qpid")

# --- kill the backend while a request is in flight ---------------------------------------------
# Prints "region <fd path> <inode>" once found and, after the kill, "killed <n>
# <queue:head:counter>...", each queue's region, and "rounds ..."; exit 0 killed, 2 the guest
# finished its writes first, 3 no region / timeout / QEMU gone.
kill_out="$art/kill.txt"
# (The group's 2>/dev/null keeps bash from printing "Killed" for the backend it reaps meanwhile.)
{
	python3 - "$qpid" "$b1" "$raw" "$tmp/disk.img" "$arm_mib" "$boot_timeout" >"$kill_out" 2>&1 <<'EOF'
import mmap, os, signal, struct, sys, time

qpid, bpid, console, image = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
arm_mib, deadline = int(sys.argv[5]), time.monotonic() + float(sys.argv[6])
arm_text = b"vdk-reconnect MiB %03d sector 0000" % arm_mib

def out(*a):
    print(*a, flush=True)

def done(code, why):
    out(why)
    sys.exit(code)

def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

def console_has(text):
    try:
        with open(console, "rb") as f:
            return text in f.read()
    except OSError:
        return False

def wait_for(what, pred, step=0.02):
    while not pred():
        if console_has(b"VDK-RECONNECT: written"):
            done(3, "the guest's writes finished while waiting for " + what)
        if time.monotonic() > deadline or not alive(qpid):
            done(3, "gave up waiting for " + what)
        time.sleep(step)

def find_region():
    """QEMU's fd of the region GET_INFLIGHT_FD handed it: the memfd inflight.c names."""
    d = "/proc/%d/fd" % qpid
    try:
        fds = os.listdir(d)
    except OSError:
        return None
    for fd in fds:
        try:
            if "memfd:vdk-vhost-inflight" in os.readlink(d + "/" + fd):
                return d + "/" + fd
        except OSError:
            pass
    return None

def pending(m):
    """(queue, head, counter) of every head marked in flight other than the last used one,
    which stays marked until the next pop (inflight.c); QueueRegionSplit layout."""
    res, off, q = [], 0, 0
    while off + 16 <= len(m):
        version, desc_num, last = struct.unpack_from("<HHH", m, off + 8)
        if version == 0 or desc_num == 0:
            break
        flags = m[off + 16:off + 16 + 16 * desc_num:16]
        if b"\x01" in flags:
            for h, fl in enumerate(flags):
                if fl == 1 and h != last:
                    res.append((q, h, struct.unpack_from("<Q", m, off + 16 + 16 * h + 8)[0]))
        off += (16 + 16 * desc_num + 63) & ~63
        q += 1
    return res

def out_regions(m):
    """Each queue's region header and marked heads, for the log."""
    off, q = 0, 0
    while off + 16 <= len(m):
        version, desc_num, last, used = struct.unpack_from("<HHHH", m, off + 8)
        if version == 0 or desc_num == 0:
            break
        flags = m[off + 16:off + 16 + 16 * desc_num:16]
        out("queue %d: version %d desc_num %d last_batch_head %d used_idx %d marked %s" % (
            q, version, desc_num, last, used,
            [(h, struct.unpack_from("<Q", m, off + 16 + 16 * h + 8)[0])
             for h, fl in enumerate(flags) if fl]))
        off += (16 + 16 * desc_num + 63) & ~63
        q += 1

def stopped(pid):
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
            if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                return False
    return True

wait_for("the guest's VDK-RECONNECT: writing", lambda: console_has(b"VDK-RECONNECT: writing"))
path = None
def have_region():
    global path
    path = find_region()
    return path is not None
wait_for("the inflight region among QEMU's fds (no GET_INFLIGHT_FD: "
         "VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD not negotiated?)", have_region)
out("region", path, os.stat(path).st_ino)
with open(path, "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)

def armed():
    with open(image, "rb") as f:
        f.seek(arm_mib << 20)
        return f.read(len(arm_text)) == arm_text

# Stutter the backend: stopped for 3 ms the guest queues requests; let go, it pops them in a
# burst, marking them in flight. Watch the region through the burst (2 ms, no sleep) and stop
# the backend as soon as a request shows; frozen, the region tells what the kill leaves. Kill
# only once the image holds MiB arm_mib of the pattern, so that the kill falls mid-way.
rounds = false_alarms = early = 0

def stop_and_check():
    """Stop the backend; kill it if the frozen region shows a request in flight (and the
    image is armed). Return: False if nothing was in flight."""
    global early
    os.kill(bpid, signal.SIGSTOP)
    while not stopped(bpid):
        time.sleep(0.0001)
    seen = pending(m)
    if not seen:
        return False
    if not armed():
        early += 1
        return True
    os.kill(bpid, signal.SIGKILL)
    written = console_has(b"VDK-RECONNECT: written")
    out("killed", len(seen), " ".join("%d:%d:%d" % s for s in seen))
    out_regions(m)
    out("rounds", rounds, "false-alarms", false_alarms, "early", early,
        "guest-done-at-kill", int(written))
    sys.exit(0)

while True:
    rounds += 1
    stop_and_check()
    time.sleep(0.003)
    os.kill(bpid, signal.SIGCONT)
    t = time.monotonic()
    while time.monotonic() - t < 0.002:
        if pending(m):
            if not stop_and_check():
                false_alarms += 1
            os.kill(bpid, signal.SIGCONT)
            break
    if rounds % 10 == 0:
        if console_has(b"VDK-RECONNECT: written"):
            done(2, "the guest finished writing before a request was seen in flight "
                 "(%d rounds, %d false alarms, %d before MiB %d was written)"
                 % (rounds, false_alarms, early, arm_mib))
        if time.monotonic() > deadline or not alive(qpid):
            done(3, "timeout or QEMU gone while watching the region")
EOF
} 2>/dev/null
kill_status=$?
kill_s="$(now)"
case "$kill_status" in
0) ;;
2) fail "$(tail -n 1 "$kill_out"); the backend was never killed" ;;
*)
	clean <"$raw" | tail -n 15 >&2
	fail "killing the backend: $(tail -n 1 "$kill_out")"
	;;
esac
{ wait "$b1"; } 2>/dev/null # (no "Killed" notice from bash)
b1_status=$?
# --- restart at once -------------------------------------------------------------------------
start_backend "$art/blk-2.log"
b2="$bpid"
wait_socket || fail "the new backend's socket did not appear; see $art/blk-2.log"
listen_s="$(now)"
[[ "$b1_status" == 137 ]] || fail "the first backend exited $b1_status, want 137 (SIGKILL)"
read -r _ seen_n seen_heads < <(grep '^killed ' "$kill_out")
read -r _ region_path region_ino < <(grep '^region ' "$kill_out")
say "backend killed with $seen_n request(s) in flight (queue:head:counter $seen_heads); new backend listening $(secs "$kill_s" "$listen_s") s later"

# The new backend maps the region QEMU kept (SET_INFLIGHT_FD) once QEMU reconnected.
set_inflight_s=
for _ in $(seq 1000); do
	if grep -q "memfd:vdk-vhost-inflight" "/proc/$b2/maps" 2>/dev/null; then
		set_inflight_s="$(now)"
		break
	fi
	kill -0 "$b2" 2>/dev/null || break
	sleep 0.01
done
[[ -n "$set_inflight_s" ]] ||
	fail "the new backend never mapped the inflight region (no SET_INFLIGHT_FD within 10 s); see $art/blk-2.log"
b2_ino="$(awk '/memfd:vdk-vhost-inflight/ { print $5; exit }' "/proc/$b2/maps")"
[[ "$b2_ino" == "$region_ino" ]] ||
	fail "the new backend mapped inflight memfd inode $b2_ino, QEMU kept $region_ino ($region_path)"
say "QEMU reconnected: the new backend mapped the same inflight region (inode $b2_ino) $(secs "$kill_s" "$set_inflight_s") s after the kill"

# --- wait for the guest to finish -------------------------------------------------------------
# A request lost across the restart leaves a writer waiting forever: give the writes 30 s.
written_s=
for _ in $(seq 300); do
	grep -qa 'VDK-RECONNECT: written' "$raw" && written_s="$(now)" && break
	kill -0 "$qpid" 2>/dev/null || break
	sleep 0.1
done
if [[ -z "$written_s" ]]; then
	clean <"$raw" | tail -n 8 >&2
	grep -a 'resubmitting' "$art/blk-2.log" >&2
	fail "the guest's writes did not complete within 30 s of the reconnect (a request lost or never completed?)"
fi
timed_out=0
while kill -0 "$qpid" 2>/dev/null; do
	if ((SECONDS > boot_deadline)); then
		timed_out=1
		kill "$qpid"
		break
	fi
	sleep 0.1
done
{ wait "$qpid"; } 2>/dev/null
qemu_status=$?
boot_s="$(secs "$start_s" "$(now)")"
clean <"$raw" >"$console"

grep -a 'VDK-CHECK: ' "$console" | sed "s/^/$name: guest: /"
[[ "$timed_out" == 0 ]] || fail "QEMU still ran after ${boot_timeout} s; console: $console"
[[ "$qemu_status" == 0 ]] || fail "QEMU exited with status $qemu_status; console: $console"
grep -qa 'VDK-TEST: reconnect: PASS' "$console" || {
	tail -n 15 "$console" >&2
	fail "the guest test did not pass; console: $console"
}
grep -qaE 'reboot: Power down|reboot: Restarting' "$console" || fail "no clean power off in $console"
grep -q '^rounds .* guest-done-at-kill 0$' "$kill_out" ||
	fail "the guest had finished its writes when the backend was killed ($kill_out)"

# --- the new backend resubmitted, kept listening, and SIGHUP stopped it with 0 -----------------
sleep 0.5
kill -0 "$b2" 2>/dev/null || fail "the new backend exited after QEMU left (it must keep listening)"
kill -HUP "$b2"
for _ in $(seq 100); do kill -0 "$b2" 2>/dev/null || break; sleep 0.05; done
kill -0 "$b2" 2>/dev/null && fail "the new backend still runs 5 s after SIGHUP"
wait "$b2" || fail "the new backend exited with status $? on SIGHUP (want 0); see $art/blk-2.log"
pids=()
resub="$(sed -nE 's/.*queue [0-9]+: resubmitting ([0-9]+) in-flight requests.*/\1/p' "$art/blk-2.log" |
	awk '{ n += $1 } END { print n + 0 }')"
[[ "$resub" -ge 1 && "$resub" -ge "$seen_n" ]] ||
	fail "the new backend resubmitted $resub request(s); $seen_n were in flight at the kill ($art/blk-2.log)"
grep -q 'front-end disconnected' "$art/blk-2.log" || fail "the new backend did not see the disconnect"
b2_bytes="$(sed -nE 's/.* writes \(([0-9]+) bytes\).*/\1/p' "$art/blk-2.log")"
say "new backend: $(grep -c 'resubmitting' "$art/blk-2.log") queue(s) resubmitted $resub request(s), wrote $((${b2_bytes:-0} >> 10)) KiB of the guest's $((mib << 10)); kept listening, exited 0 on SIGHUP"

# --- the image holds exactly what the guest wrote ---------------------------------------------
if ! cmp -s "$tmp/disk.img" "$tmp/expect.img"; then
	first="$(cmp "$tmp/disk.img" "$tmp/expect.img" | sed -nE 's/.* byte ([0-9]+),.*/\1/p')"
	sector=$(((first - 1) / 512))
	what="$(dd if="$tmp/disk.img" bs=512 skip="$sector" count=1 status=none | head -c 40 | tr -c '[:print:]' '.')"
	fail "the image differs from the expected one at byte $((first - 1)) (MiB $((sector / 2048)) sector $((sector % 2048)) holds '$what')"
fi
say "host: the image equals the expected one byte for byte ($mib MiB pattern, $((disk_mib - mib)) MiB untouched)"
write_ms="$(sed -nE 's/^.*VDK-DATA: write-ms ([0-9]+).*/\1/p' "$console")"
say "guest writes done $(secs "$kill_s" "$written_s") s after the kill"
say "PASS ($(pick_accel); guest writes ${write_ms:-?} ms across the restart, boot to power off ${boot_s} s; logs in $art)"
