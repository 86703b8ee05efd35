#!/usr/bin/env bash
# build-guest.sh - build the default vdk test guest: a Debian 12 cloud kernel and a busybox
# initramfs carrying the kernel's virtio modules. See docs/guest.md.
#
# Usage: scripts/build-guest.sh [OUTDIR [TESTS_DIR]]
#   OUTDIR     where vmlinuz and initramfs.cpio.gz go (default: <repo>/build/guest)
#   TESTS_DIR  optional directory whose files are copied into /tests of the initramfs;
#              /init runs /tests/<name>.sh when the kernel command line has vdk.test=<name>.
#              With it, the shell helpers the test scripts share (tests/integration/guest-lib)
#              go to /tests/lib, where a script sources them (`. /tests/lib/check.sh`).
#
# Environment:
#   VDK_GUEST_CACHE  package cache shared by every OUTDIR (default: <repo>/build/guest-cache)
#   VDK_GUEST_FORCE  set to 1 to rebuild even when the outputs look up to date
#   VDK_GUEST_EXTRA_MODULES  more modules to load, space-separated paths below kernel/ without
#                    the .ko suffix (e.g. "arch/x86/kvm/kvm-amd" for the nested-KVM L1 guest of
#                    tests/integration/lib/vmm_harness.sh); loaded after the virtio modules
#
# Only Debian packages are fetched, with `apt-get download`, and unpacked with `dpkg-deb -x`;
# nothing is installed on the host. Needs: apt-get, apt-cache, dpkg-deb, gzip, xz (for .ko.xz).
set -euo pipefail
shopt -s inherit_errexit

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"
readonly script_dir repo_dir
readonly init_script="$script_dir/guest-init.sh"
readonly guest_lib="$repo_dir/tests/integration/guest-lib"

outdir="${1:-$repo_dir/build/guest}"
tests_dir="${2:-}"
cache="${VDK_GUEST_CACHE:-$repo_dir/build/guest-cache}"

# Modules the guest loads; their dependencies are added from modules.dep. Paths are relative to
# /lib/modules/<version>/kernel and carry no .ko suffix (it may be .ko, .ko.xz, ...).
readonly wanted_modules=(
	drivers/virtio/virtio
	drivers/virtio/virtio_ring
	drivers/virtio/virtio_pci_modern_dev
	drivers/virtio/virtio_pci_legacy_dev
	drivers/virtio/virtio_pci
	drivers/virtio/virtio_mmio
	drivers/block/virtio_blk
	drivers/char/hw_random/virtio-rng
	drivers/char/virtio_console
	drivers/net/virtio_net
)
read -r -a extra_modules <<<"${VDK_GUEST_EXTRA_MODULES:-}"

log() { echo "build-guest: $*" >&2; }
die() {
	echo "build-guest: error: $*" >&2
	exit 1
}

for tool in apt-get apt-cache dpkg-deb gzip; do
	command -v "$tool" >/dev/null || die "'$tool' not found (this script expects a Debian host)"
done
if [[ -n "$tests_dir" && ! -d "$tests_dir" ]]; then
	die "tests directory '$tests_dir' does not exist"
fi

# --- Up to date? ----------------------------------------------------------------------------
# The outputs are current when both exist and are newer than this script, guest-init.sh and
# every file of TESTS_DIR and of the guest-lib.
up_to_date() {
	local out
	for out in "$outdir/vmlinuz" "$outdir/initramfs.cpio.gz"; do
		[[ -f "$out" ]] || return 1
		[[ "$out" -nt "${BASH_SOURCE[0]}" && "$out" -nt "$init_script" ]] || return 1
		if [[ -n "$tests_dir" ]] &&
			[[ -n "$(find "$tests_dir" "$guest_lib" -newer "$out" -print -quit)" ]]; then
			return 1
		fi
	done
	# The same module list as last time.
	[[ -f "$outdir/manifest.txt" ]] &&
		grep -qxF "extra modules: ${extra_modules[*]}" "$outdir/manifest.txt"
}
if [[ "${VDK_GUEST_FORCE:-0}" != 1 ]] && up_to_date; then
	log "up to date: $outdir"
	exit 0
fi

# --- Fetch and unpack packages ---------------------------------------------------------------
mkdir -p "$cache/debs" "$outdir"
cache="$(cd "$cache" && pwd)"
outdir="$(cd "$outdir" && pwd)"

# Builds into different OUTDIRs may run at once (parallel tests) and share the cache: hold a
# lock on it until this script exits.
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"

# apt drops privileges to _apt for downloads, which cannot write to a root-owned cache; as root
# we tell it to stay root instead of printing a warning.
apt_opts=()
if [[ "$(id -u)" == 0 ]]; then
	apt_opts=(-o APT::Sandbox::User=root)
fi

# fetch PKG: download PKG's candidate version into the cache (once) and print the .deb path.
fetch() {
	local pkg="$1" version deb
	version="$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')"
	[[ -n "$version" && "$version" != "(none)" ]] ||
		die "package '$pkg' has no candidate version (run apt-get update?)"
	# apt names the file pkg_version_arch.deb with ':' (epoch) encoded as %3a.
	deb="$(find "$cache/debs" -name "${pkg}_${version//:/%3a}_*.deb" -print -quit)"
	if [[ -z "$deb" ]]; then
		log "downloading $pkg $version"
		(cd "$cache/debs" && apt-get "${apt_opts[@]}" -q download "$pkg=$version" >&2) ||
			die "apt-get download $pkg=$version failed"
		deb="$(find "$cache/debs" -name "${pkg}_${version//:/%3a}_*.deb" -print -quit)"
		[[ -n "$deb" ]] || die "apt-get download $pkg did not leave a .deb in $cache/debs"
	fi
	echo "$deb"
}

# unpack DEB: extract DEB into $cache/root/<deb name> (once) and print that directory.
unpack() {
	local deb="$1" dir
	dir="$cache/root/$(basename "$deb" .deb)"
	if [[ ! -f "$dir/.unpacked" ]]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir" || die "dpkg-deb -x $deb failed"
		touch "$dir/.unpacked"
	fi
	echo "$dir"
}

# The metapackage linux-image-cloud-amd64 depends on the real, versioned image package.
kpkg="$(apt-cache depends linux-image-cloud-amd64 |
	awk '/Depends: linux-image-[0-9].*-cloud-amd64/ { print $2; exit }')"
[[ -n "$kpkg" ]] || die "cannot resolve linux-image-cloud-amd64 to a versioned kernel package"
kdeb="$(fetch "$kpkg")"
kroot="$(unpack "$kdeb")"
bbdeb="$(fetch busybox-static)"
bbroot="$(unpack "$bbdeb")"

kver="${kpkg#linux-image-}"
moddir="$kroot/lib/modules/$kver"
[[ -f "$kroot/boot/vmlinuz-$kver" ]] || die "no boot/vmlinuz-$kver in $kpkg"
[[ -d "$moddir/kernel" ]] || die "no lib/modules/$kver/kernel in $kpkg"
busybox="$bbroot/bin/busybox"
[[ -x "$busybox" ]] || die "no bin/busybox in busybox-static"

# --- modules.dep ---------------------------------------------------------------------------
# Debian's image package ships no modules.dep: depmod writes it at install time. Run depmod on
# the unpacked tree: the host's if it has one, else the one from Debian's kmod package.
if [[ ! -f "$moddir/modules.dep" ]]; then
	log "generating modules.dep for $kver"
	depmod_bin="$(command -v depmod || true)"
	[[ -n "$depmod_bin" ]] || depmod_bin="$(command -v /sbin/depmod || true)"
	if [[ -n "$depmod_bin" ]]; then
		"$depmod_bin" -b "$kroot" "$kver" || die "depmod -b $kroot $kver failed"
	else
		kmoddeb="$(fetch kmod)"
		kmodroot="$(unpack "$kmoddeb")"
		libkmoddeb="$(fetch libkmod2)"
		libkmodroot="$(unpack "$libkmoddeb")"
		# kmod is a multi-call binary that acts on its argv[0]; its depmod link is absolute.
		(LD_LIBRARY_PATH="$libkmodroot/usr/lib/x86_64-linux-gnu" \
			exec -a depmod "$kmodroot/bin/kmod" -b "$kroot" "$kver") ||
			die "depmod (from Debian's kmod package) failed on $kroot"
	fi
fi

# Read modules.dep into deps[<module path>]="<dependency paths>" (paths relative to $moddir).
declare -A deps=()
while IFS= read -r line; do
	deps["${line%%:*}"]="${line#*:}"
done <"$moddir/modules.dep"

# find_module STEM: print the modules.dep path of kernel/STEM.ko[.xz|.zst|.gz].
find_module() {
	local ext
	for ext in .ko .ko.xz .ko.zst .ko.gz; do
		if [[ -v "deps[kernel/$1$ext]" ]]; then
			echo "kernel/$1$ext"
			return
		fi
	done
	# A built-in driver needs no module; say so rather than fail.
	if grep -qx "kernel/$1.ko" "$moddir/modules.builtin"; then
		return
	fi
	die "module $1 is neither in modules.dep nor built in ($kver)"
}

# Depth-first walk: every module goes after the modules it depends on (a topological order).
declare -A placed=()
load_order=()
visit() {
	local mod="$1" dep
	[[ -v "placed[$mod]" ]] && return
	placed["$mod"]=1
	for dep in ${deps["$mod"]}; do
		visit "$dep"
	done
	load_order+=("$mod")
}
for stem in "${wanted_modules[@]}" "${extra_modules[@]}"; do
	mod="$(find_module "$stem")"
	[[ -z "$mod" ]] || visit "$mod"
done

# --- Assemble the initramfs tree -------------------------------------------------------------
staging="$(mktemp -d "$outdir/.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
root="$staging/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,tests,lib/modules/"$kver"}

# busybox with one symlink per applet (busybox --list-full prints e.g. "sbin/insmod").
cp "$busybox" "$root/bin/busybox"
while IFS= read -r applet; do
	[[ -e "$root/$applet" ]] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
[[ -L "$root/bin/sh" ]] || die "busybox has no sh applet"

install -m 0755 "$init_script" "$root/init"

# Modules, decompressed (busybox insmod reads a plain ELF object), and the load order list:
# one path per line, relative to /lib/modules/<version>.
list="$root/lib/modules/$kver/vdk-load-order"
: >"$list"
for mod in "${load_order[@]}"; do
	plain="${mod%.ko*}.ko"
	mkdir -p "$(dirname "$root/lib/modules/$kver/$plain")"
	case "$mod" in
	*.ko) cp "$moddir/$mod" "$root/lib/modules/$kver/$plain" ;;
	*.ko.xz) xz -dc "$moddir/$mod" >"$root/lib/modules/$kver/$plain" ;;
	*.ko.zst) zstd -qdc "$moddir/$mod" >"$root/lib/modules/$kver/$plain" ;;
	*.ko.gz) gzip -dc "$moddir/$mod" >"$root/lib/modules/$kver/$plain" ;;
	esac
	echo "$plain" >>"$list"
done

# The kernel opens /dev/console before running /init; without the node /init starts with no
# stdio (guest-init.sh then reopens the console from devtmpfs). mknod needs root.
if ! mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null; then
	log "warning: cannot mknod /dev/console (not root?); /init will reopen the console itself"
fi

if [[ -n "$tests_dir" ]]; then
	cp -R "$tests_dir/." "$root/tests/"
	mkdir -p "$root/tests/lib"
	cp -R "$guest_lib/." "$root/tests/lib/"
	chmod -R a+rX "$root/tests"
fi

# --- Pack ------------------------------------------------------------------------------------
# cpio newc (the only format the kernel unpacks), owned by root, gzip-compressed. The busybox
# from the package does the packing, so the host needs no cpio. Fixed times, sorted names and
# renumbered inodes make the archive the same bytes for the same inputs (on one file system;
# --ignore-devno would also zero the /dev/console node).
find "$root" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	"$busybox" cpio -o -H newc -R 0:0 --renumber-inodes 2>/dev/null) |
	gzip -9n >"$staging/initramfs.cpio.gz"
cp "$kroot/boot/vmlinuz-$kver" "$staging/vmlinuz"

# Publish both files only when both are complete.
mv -f "$staging/vmlinuz" "$outdir/vmlinuz"
mv -f "$staging/initramfs.cpio.gz" "$outdir/initramfs.cpio.gz"
{
	echo "kernel: $kpkg ($kver)"
	echo "kernel package: $(basename "$kdeb")"
	echo "busybox package: $(basename "$bbdeb")"
	echo "extra modules: ${extra_modules[*]}"
	echo "modules (load order):"
	sed 's/^/  /' "$list"
} >"$outdir/manifest.txt"

log "kernel $kver, ${#load_order[@]} modules, initramfs $(du -h "$outdir/initramfs.cpio.gz" | cut -f1)"
log "wrote $outdir/vmlinuz and $outdir/initramfs.cpio.gz"
