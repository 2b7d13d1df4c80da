#!/usr/bin/env bash
# Fetch lwIP's source for the kernel's TCP/IP stack, once, into an ignored cache.
#
#   scripts/lwip.sh <cache-dir>
#
# We never commit lwIP: its code comes from Debian's `lwip` SOURCE package. When apt knows
# no deb-src entry yet, one is added (/etc/apt/sources.list.d/vio-deb-src.sources) for the
# same archives, suites and components the machine already uses for binaries, and the
# package lists are updated. `apt-get source --download-only lwip` then fetches the
# .orig.tar.xz, which is unpacked into <cache-dir>/lwip-<version>/ with a stamp file, and
# <cache-dir>/lwip points at it (the Makefile only knows that name). A second call with the
# stamp in place returns at once. Every failure says what failed and exits non-zero.
set -eu

CACHE=${1:?usage: lwip.sh <cache-dir>}
LINK="$CACHE/lwip"
STAMP_NAME=.vio-unpacked
[ -f "$LINK/$STAMP_NAME" ] && exit 0

die() { echo "lwip: $*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "need root (or sudo) to add a deb-src entry"
	SUDO=sudo
fi

SRC_LIST=/etc/apt/sources.list.d/vio-deb-src.sources

# A deb-src line or stanza anywhere in apt's configuration?
have_deb_src() {
	grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/
}

# Copy every `Types: deb` stanza of the *.sources files as `Types: deb-src`, keeping only
# the fields apt needs to find the same archive (URIs, Suites, Components, Signed-By).
write_deb_src() {
	local tmp
	tmp=$(mktemp)
	awk '
		function flush() {
			if (deb && uris != "")
				printf "Types: deb-src\n%s%s%s%s\n", uris, suites, comps, signed
			deb = 0; uris = suites = comps = signed = ""
		}
		/^[[:space:]]*$/ { flush(); next }
		/^Types:/ { deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/) }
		/^URIs:/ { uris = $0 "\n" }
		/^Suites:/ { suites = $0 "\n" }
		/^Components:/ { comps = $0 "\n" }
		/^Signed-By:/ { signed = $0 "\n" }
		END { flush() }
	' /etc/apt/sources.list.d/*.sources >"$tmp" 2>/dev/null || true
	# One-line style (sources.list): turn each `deb` line into a `deb-src` stanza too.
	if [ -f /etc/apt/sources.list ]; then
		sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]+(.*)$/Types: deb-src\nURIs: \2\nSuites: \3\nComponents: \4\n/p' \
			/etc/apt/sources.list >>"$tmp"
	fi
	[ -s "$tmp" ] || { rm -f "$tmp"; die "no 'deb' entries found to copy as deb-src"; }
	$SUDO install -m 0644 "$tmp" "$SRC_LIST"
	rm -f "$tmp"
	echo "lwip: added $SRC_LIST"
}

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DL="$CACHE/lwip-download"
mkdir -p "$DL"

orig_tarball() { ls "$DL"/lwip_*.orig.tar.* 2>/dev/null | head -1 || true; }

if [ -z "$(orig_tarball)" ]; then
	export DEBIAN_FRONTEND=noninteractive
	if ! have_deb_src; then
		write_deb_src
		$SUDO apt-get update -qq || die "'apt-get update' failed after adding $SRC_LIST"
	fi
	echo "lwip: fetching Debian's lwip source package into $DL"
	if ! (cd "$DL" && apt-get source --download-only lwip >"$DL/apt.log" 2>&1); then
		# The deb-src entry may be there but its lists not fetched yet.
		$SUDO apt-get update -qq || die "'apt-get update' failed"
		(cd "$DL" && apt-get source --download-only lwip >"$DL/apt.log" 2>&1) || {
			tail -10 "$DL/apt.log" >&2
			die "'apt-get source --download-only lwip' failed (log: $DL/apt.log)"
		}
	fi
fi
TARBALL=$(orig_tarball)
[ -n "$TARBALL" ] || die "no lwip_*.orig.tar.* in $DL after the download"

# lwip_2.1.3+dfsg1.orig.tar.xz -> 2.1.3+dfsg1
VERSION=$(basename "$TARBALL" | sed -E 's/^lwip_(.*)\.orig\.tar\..*$/\1/')
DEST="$CACHE/lwip-$VERSION"
if [ ! -f "$DEST/$STAMP_NAME" ]; then
	rm -rf "$DEST" "$DEST.tmp"
	mkdir -p "$DEST.tmp"
	# --touch: extraction time as mtime, so nothing in the tree looks older than our objects
	# expect; --strip-components: the tarball's top directory name varies between releases.
	tar -xf "$TARBALL" -C "$DEST.tmp" --strip-components=1 --touch ||
		{ rm -rf "$DEST.tmp"; die "could not unpack $TARBALL"; }
	[ -f "$DEST.tmp/src/core/tcp.c" ] || { rm -rf "$DEST.tmp"; die "$TARBALL has no src/core/tcp.c"; }
	mv "$DEST.tmp" "$DEST"
	touch "$DEST/$STAMP_NAME"
fi
ln -sfn "lwip-$VERSION" "$LINK"
echo "lwip: $VERSION in $DEST"
