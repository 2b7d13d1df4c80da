#!/bin/sh
# The Linux guest that `make bench` measures beside vio: Debian's cloud kernel and an
# initramfs of busybox-static, the virtio modules, the project's load generator
# (tests/bench/loadgen.c) and /init (tests/bench/init.sh).
#
#   scripts/linux-peer.sh LOADGEN OUTDIR
#
# Stage 1, shared and cached: `apt-get download` of the kernel package linux-image-cloud-amd64
# points at today and of busybox-static, unpacked with `dpkg -x` into
# build/cache/linux-peer/<kernel package>/ (vmlinuz, busybox, the virtio modules with their
# dependencies and the order to load them in). Done once per kernel version: a stamp file
# marks a complete folder; a half-made one is never seen (built under a temporary name, then
# renamed).
# Stage 2, per build: OUTDIR/initramfs.cpio.gz (cpio newc, gzip) from the cached parts, the
# load generator, /init and the host's iperf 2 with the shared libraries it needs; OUTDIR/vmlinuz
# links to the cached kernel. Prints the two paths.
set -eu

[ $# -eq 2 ] || { echo "usage: $0 LOADGEN OUTDIR" >&2; exit 2; }
LOADGEN=$(realpath "$1")
OUT=$2
TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$TOP/build/cache/linux-peer
MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio-rng"

kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\./ { print $2; exit }')
if [ -z "$kpkg" ]; then
	echo "linux-peer: apt-cache offers no linux-image-6.1.*-cloud-amd64 (run apt-get update)" >&2
	exit 1
fi
kdir=$CACHE/$kpkg

if [ ! -f "$kdir/stamp" ]; then
	mkdir -p "$CACHE"
	tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
	chmod 755 "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -q "$kpkg" busybox-static >download.log 2>&1) || {
		cat "$tmp/download.log" >&2
		echo "linux-peer: apt-get download $kpkg busybox-static failed" >&2
		exit 1
	}
	for deb in "$tmp"/*.deb; do
		dpkg -x "$deb" "$tmp/root"
	done
	kver=${kpkg#linux-image-}
	mdir=$tmp/root/lib/modules/$kver
	cp "$tmp/root/boot/vmlinuz-$kver" "$tmp/vmlinuz"
	cp "$tmp/root/bin/busybox" "$tmp/busybox"
	# The package has no modules.dep (depmod writes it at install time): follow each
	# module's own `depends=` in its .modinfo section, which is what depmod reads, and list
	# every dependency before the module that needs it, each once. Names use '_' where the
	# file may use '-' (virtio-rng.ko).
	mkdir "$tmp/modules"
	: >"$tmp/modules.load"
	find "$mdir/kernel" -name '*.ko' | while read -r path; do
		name=$(basename "$path" .ko)
		echo "$(echo "$name" | tr - _) $path"
	done >"$tmp/index"
	add() {
		path=$(awk -v m="$1" '$1 == m { print $2 }' "$tmp/index")
		if [ -z "$path" ]; then
			grep -q "/$1\.ko$" "$mdir/modules.builtin" ||
				{ echo "linux-peer: $1 is neither a module nor built in" >&2; exit 1; }
			return 0
		fi
		grep -qx "$(basename "$path")" "$tmp/modules.load" && return 0
		for dep in $(strings -a "$path" | sed -n 's/^depends=//p' | tr , ' '); do
			add "$dep"
		done
		path=$(awk -v m="$1" '$1 == m { print $2 }' "$tmp/index")
		cp "$path" "$tmp/modules/"
		basename "$path" >>"$tmp/modules.load"
	}
	for m in $MODULES; do
		add "$(echo "$m" | tr - _)"
	done
	rm -rf "$tmp/root" "$tmp"/*.deb "$tmp/download.log" "$tmp/index"
	echo "$kpkg" >"$tmp/stamp"
	if ! mv -T "$tmp" "$kdir" 2>/dev/null; then
		[ -f "$kdir/stamp" ] || { echo "linux-peer: cannot create $kdir" >&2; exit 1; }
	fi
	trap - EXIT
	rm -rf "$tmp"
fi

# Stage 2: the initramfs.
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
root=$OUT/root
rm -rf "$root"
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/lib/modules"
cp "$kdir/busybox" "$root/bin/busybox"
cp "$kdir/modules/"* "$kdir/modules.load" "$root/lib/modules/"
cp "$LOADGEN" "$root/bin/loadgen"
cp "$TOP/tests/bench/init.sh" "$root/init"
chmod 755 "$root/init"
# iperf 2 from the host, with the shared objects it links (ldd: "name => path (addr)" or
# "path (addr)" for the loader).
iperf=$(command -v iperf) || { echo "linux-peer: no iperf on the host (apt-get install iperf)" >&2; exit 1; }
cp "$iperf" "$root/bin/iperf"
for lib in $(ldd "$iperf" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -6 >"$OUT/initramfs.cpio.gz.tmp"
mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
ln -sf "$kdir/vmlinuz" "$OUT/vmlinuz"
rm -rf "$root"
echo "$OUT/vmlinuz"
echo "$OUT/initramfs.cpio.gz"
