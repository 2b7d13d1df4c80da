#!/usr/bin/env bash
# Build newlib's libc.a for the kernel, once, into an ignored cache.
#
#   scripts/newlib.sh <cc-command> <prefix-dir>
#
# The source is Debian's newlib-source package (/usr/src/newlib/newlib-*.tar.xz, installed by
# scripts/deps.sh). It is configured for x86_64-elf with the same compiler and code-model flags
# as the kernel, without newlib's own syscalls: the kernel supplies _sbrk, _write and the rest
# (src/kernel/syscalls.c). The result is <prefix-dir>/x86_64-elf/{include,lib/libc.a}.
# A stamp file makes a second call return at once.
set -eu

CC_CMD=${1:?usage: newlib.sh <cc-command> <prefix-dir>}
PREFIX=${2:?usage: newlib.sh <cc-command> <prefix-dir>}
STAMP="$PREFIX/.built"
[ -f "$STAMP" ] && exit 0

TARBALL=$(ls /usr/src/newlib/newlib-*.tar.* 2>/dev/null | head -1 || true)
if [ -z "$TARBALL" ]; then
	echo "newlib: no tarball under /usr/src/newlib (is newlib-source installed? run scripts/deps.sh)" >&2
	exit 1
fi

PREFIX=$(mkdir -p "$PREFIX" && cd "$PREFIX" && pwd)
WORK="$PREFIX.work"
rm -rf "$WORK"
mkdir -p "$WORK/build"
echo "newlib: building $(basename "$TARBALL") with '$CC_CMD' into $PREFIX (about a minute)"
tar -xf "$TARBALL" -C "$WORK"
SRC=$(ls -d "$WORK"/newlib-*/)

FLAGS="-ffreestanding -mno-red-zone -fno-pic -fno-pie -mcmodel=small -fno-stack-protector -O2 -g"
LOG="$WORK/build.log"
(
	cd "$WORK/build"
	"$SRC/configure" --target=x86_64-elf --prefix="$PREFIX" \
		--disable-multilib --disable-newlib-supplied-syscalls \
		--enable-newlib-nano-malloc --disable-nls \
		CC_FOR_TARGET="$CC_CMD $FLAGS" \
		AR_FOR_TARGET=ar RANLIB_FOR_TARGET=ranlib AS_FOR_TARGET=as \
		LD_FOR_TARGET=ld NM_FOR_TARGET=nm \
		CFLAGS_FOR_TARGET="$FLAGS"
	make -j"$(nproc)" all-target-newlib
	make install-target-newlib
) >"$LOG" 2>&1 || {
	echo "newlib: build failed; last lines of $LOG:" >&2
	tail -30 "$LOG" >&2
	exit 1
}
test -f "$PREFIX/x86_64-elf/lib/libc.a" || { echo "newlib: libc.a not produced" >&2; exit 1; }
rm -rf "$WORK"
touch "$STAMP"
echo "newlib: ok"
