#!/bin/sh
# reconnect.sh - guest side of tests/integration/vhost_user_reconnect.sh (busybox sh).
#
# The host serves one disk, serial "vdk-rc", through vdk-vhost-user-blk, and SIGKILLs that
# backend while this script writes, then starts a new one on the same socket; QEMU reconnects
# and the new backend resubmits the requests left in flight. Nothing here knows about the
# restart: the writes must simply complete, without an error, and land where they belong.
#
# Pattern: vdk.mib=<N> MiB from offset 0, made in RAM first, then written by four dd processes
# at once (each a quarter, O_DIRECT, 256 KiB requests, so several are in flight), every 512-byte
# sector a distinct line "vdk-reconnect MiB <m> sector <s>" padded with spaces to 511 bytes
# and a newline, so a lost, misplaced or duplicated write shows in the image. After the
# writes: sync, drop caches, read the range back with O_DIRECT and compare its sha256 with
# vdk.expect= (computed by the host from the same definition).
#
# Lines for the host: "VDK-RECONNECT: writing" when the writers start (the host arms its kill
# then), "VDK-RECONNECT: written" when all finished, "VDK-CHECK: <name>: ok|FAIL <why>",
# "VDK-DATA: <key> <value>".

# /tests/lib: tests/integration/guest-lib (scripts/build-guest.sh puts it in every test guest).
# shellcheck source-path=SCRIPTDIR source=../guest-lib/check.sh
. /tests/lib/check.sh

finish() {
	if [ "$fails" -eq 0 ]; then
		echo "$1" >"$VDK_TEST_DETAIL"
		exit 0
	fi
	echo "$fails check(s) failed" >"$VDK_TEST_DETAIL"
	exit 1
}

# uptime_ms: guest uptime in milliseconds.
uptime_ms() {
	read -r up _ </proc/uptime
	cs="${up#*.}"
	echo $((${up%.*} * 1000 + 10 * ${cs#0}))
}

# pattern FIRST_MIB COUNT: COUNT MiB of the pattern, starting with MiB FIRST_MIB, on stdout.
pattern() {
	awk -v first="$1" -v n="$2" 'BEGIN {
		for (m = first; m < first + n; m++)
			for (s = 0; s < 2048; s++)
				printf "%-511s\n", sprintf("vdk-reconnect MiB %03d sector %04d", m, s)
	}'
}

mib="$(param mib)"
expect="$(param expect)"
writers=4
if [ -z "$mib" ] || [ -z "$expect" ] || [ $((mib % writers)) -ne 0 ]; then
	bad params "vdk.mib='$mib' (a multiple of $writers) and vdk.expect='$expect' are required"
	finish ""
fi
per=$((mib / writers))

disk=
for d in /sys/block/vd*; do
	[ "$(cat "$d/serial" 2>/dev/null)" = vdk-rc ] && disk="${d##*/}"
done
if [ -z "$disk" ]; then
	bad disk "no virtio disk with serial vdk-rc; serials: $(cat /sys/block/vd*/serial 2>/dev/null | tr '\n' ' ')"
	finish ""
fi
size_mib=$(($(cat "/sys/block/$disk/size") / 2048))
nq="$(find "/sys/block/$disk/mq/" -mindepth 1 -maxdepth 1 | wc -l)"
if [ "$size_mib" -gt "$mib" ]; then
	ok disk "$disk, $size_mib MiB, $nq queue(s)"
else
	bad disk "$disk has $size_mib MiB, the test writes $mib"
	finish ""
fi

# --- the writes the host interrupts -----------------------------------------------------------
# The pattern is made first (in RAM, about as slow under TCG as the writes are fast), so that
# the writers keep requests coming while the host stutters and kills the backend.
pids=
w=0
while [ "$w" -lt "$writers" ]; do
	pattern $((w * per)) "$per" >"/tmp/part.$w" &
	pids="$pids $!"
	w=$((w + 1))
done
for p in $pids; do wait "$p"; done
echo "VDK-RECONNECT: writing"
t0="$(uptime_ms)"
pids=
w=0
while [ "$w" -lt "$writers" ]; do
	# bs=256K: 4 requests per MiB.
	dd if="/tmp/part.$w" of="/dev/$disk" bs=256K seek=$((w * per * 4)) oflag=direct \
		2>"/tmp/dd.$w" &
	pids="$pids $!"
	w=$((w + 1))
done
w=0
for p in $pids; do
	wait "$p" || bad "write-$w" "dd exited $?: $(tr '\n' ' ' <"/tmp/dd.$w")"
	w=$((w + 1))
done
t1="$(uptime_ms)"
echo "VDK-RECONNECT: written"
echo "VDK-DATA: write-ms $((t1 - t0))"
records=0
w=0
while [ "$w" -lt "$writers" ]; do
	n="$(sed -n 's/^\([0-9]*\)+0 records out$/\1/p' "/tmp/dd.$w")"
	records=$((records + ${n:-0}))
	w=$((w + 1))
done
if [ "$fails" -eq 0 ] && [ "$records" -eq $((mib * 4)) ]; then
	ok writes "$writers writers, $records x 256 KiB written in $((t1 - t0)) ms"
elif [ "$fails" -eq 0 ]; then
	bad writes "$records records written, want $((mib * 4))"
fi

# --- read back --------------------------------------------------------------------------------
sync
echo 3 >/proc/sys/vm/drop_caches
got="$(dd if="/dev/$disk" bs=1M count="$mib" iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "VDK-DATA: read-sum $got"
if [ "$got" = "$expect" ]; then
	ok read-back "sha256 of $mib MiB read with O_DIRECT matches"
else
	bad read-back "sha256 $got, want $expect"
fi

# --- the kernel saw no I/O error ----------------------------------------------------------------
errs="$(dmesg | grep -ciE 'I/O error|blk_update_request|virtio_blk.*(error|timeout)')"
if [ "$errs" -eq 0 ]; then
	ok no-io-errors "no block I/O error in the kernel log"
else
	bad no-io-errors "$errs kernel log line(s): $(dmesg | grep -iE 'I/O error|blk_update_request|virtio_blk' | head -n 3 | tr '\n' ' ')"
fi

finish "$mib MiB written across a backend restart and read back"
