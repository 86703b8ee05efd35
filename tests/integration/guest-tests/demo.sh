#!/bin/sh
# demo.sh - guest side of `make demo` (scripts/demo.sh), busybox sh.
# Lists the virtio devices, writes a message to the vhost-user disk at 1 MiB and reads it back
# from the device, reads the vhost-user entropy device, and, when the host gave a virtio-net
# device (vdk-vhost-user-net on a tap in the demo's network namespace), takes an address by
# DHCP (busybox udhcpc; the host runs busybox udhcpd) and fetches the page the host's busybox
# httpd serves at the URL of vdk.url= on the kernel command line. Lines for the host start "demo: ".

say() { echo "demo: $*"; }

for d in /sys/bus/virtio/devices/*; do
	case "$(cat "$d/device")" in
	0x0002) what=block ;;
	0x0001) what=network ;;
	0x0004) what=entropy ;;
	*) what="type $(cat "$d/device")" ;;
	esac
	drv=none
	[ -L "$d/driver" ] && drv="$(basename "$(readlink "$d/driver")")"
	say "found virtio $what device ${d##*/} (driver $drv)"
done

disk=
for b in /sys/block/vd*; do [ -e "$b" ] && disk="${b##*/}" && break; done
[ -n "$disk" ] || {
	say "no virtio disk"
	exit 1
}
say "disk /dev/$disk: $(($(cat "/sys/block/$disk/size") / 2048)) MiB, serial '$(cat "/sys/block/$disk/serial")'"

msg="Hello from a Linux $(uname -r) guest, through vdk-vhost-user-blk"
# One 512-byte sector at 1 MiB (sector 2048), flushed to the image (conv=fsync: a FLUSH request).
printf '%s\n' "$msg" | dd of="/dev/$disk" bs=512 seek=2048 conv=sync,fsync 2>/dev/null || {
	say "write failed"
	exit 1
}
echo 3 >/proc/sys/vm/drop_caches
back="$(dd if="/dev/$disk" bs=512 skip=2048 count=1 iflag=direct 2>/dev/null | tr -d '\000')"
say "wrote and read back at 1 MiB: \"$back\""
[ "$back" = "$msg" ] || exit 1

rnd="$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
say "16 bytes from /dev/hwrng ($(cat /sys/class/misc/hw_random/rng_current)): $rnd"
[ "${#rnd}" -eq 32 ]

# --- networking --------------------------------------------------------------------------------
url=""
# shellcheck disable=SC2013 # the command line is one line of words
for w in $(cat /proc/cmdline); do
	case "$w" in vdk.url=*) url="${w#*=}" ;; esac
done
[ -n "$url" ] || exit 0
dev=""
for d in /sys/class/net/*; do
	[ "$(readlink "$d/device/driver" 2>/dev/null | sed 's,.*/,,')" = virtio_net ] && dev="${d##*/}"
done
[ -n "$dev" ] || {
	say "no virtio_net interface"
	exit 1
}
ip link set lo up
ip link set "$dev" up
# udhcpc runs this script with $1 = bound|renew|deconfig and the lease in the environment.
cat >/tmp/udhcpc.sh <<'EOS'
#!/bin/sh
case "$1" in
deconfig) ip addr flush dev "$interface" ;;
bound | renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	echo "$ip ${mask:-24} $serverid" >/tmp/lease
	;;
esac
EOS
chmod +x /tmp/udhcpc.sh
udhcpc -i "$dev" -s /tmp/udhcpc.sh -q -n -t 10 -T 1 >/dev/null 2>&1 || {
	say "$dev: no DHCP lease"
	exit 1
}
read -r addr mask server </tmp/lease
say "$dev ($(cat "/sys/class/net/$dev/address")): address $addr/$mask by DHCP from $server"
# busybox nc, not busybox wget: the static wget of Debian's busybox-static crashes (SIGSEGV)
# in an initramfs without /etc. An HTTP/1.0 GET; the server closes the connection at the end.
hostport="${url#http://}"
path="/${hostport#*/}"
hostport="${hostport%%/*}"
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" |
	nc -w 10 "${hostport%:*}" "$([ "${hostport#*:}" != "$hostport" ] && echo "${hostport#*:}" || echo 80)" \
		>/tmp/http.out 2>/tmp/http.err
status="$(head -n 1 /tmp/http.out | tr -d '\r')"
case "$status" in
"HTTP/1."?" 200 "*) ;;
*)
	say "GET $url failed: '$status' $(cat /tmp/http.err)"
	exit 1
	;;
esac
# The body: everything after the first empty line.
page="$(tr -d '\r' </tmp/http.out | sed '1,/^$/d')"
say "fetched $url ($(printf '%s' "$page" | wc -c) bytes):"
printf '%s\n' "$page" | sed 's/^/demo:   | /'
case "$page" in *"vdk demo"*) ;; *) exit 1 ;; esac
