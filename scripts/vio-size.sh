#!/bin/sh
# The code size of a few selections of the library (src/virtio/vio.mk's VIO_TRANSPORTS and
# VIO_DRIVERS), for x86-64 and riscv64, as the Markdown table docs/porting.md shows.
#
#   scripts/vio-size.sh            (from the top of the repository; about a minute)
#
# Each selection is built by `make lib-cross-build` (clang -O2 and the flags a small kernel
# uses: see the Makefile) into build/size/<selection>/, and measured on the members of its
# libvio.a: .text, .rodata and .data (and riscv64's small-data .srodata and .sdata), the
# bytes a kernel links; not .bss (vio keeps no globals), not unwind tables or debug info.
# Each selection must also stand alone: nothing undefined but memcpy, memset, memmove and
# memcmp, or the script fails.
set -eu

cd "$(dirname "$0")/.."
ARCHS="x86_64 riscv64"
# name|transports|drivers (empty: every driver)
SELECTIONS="mmio-blk|mmio|blk
mmio-all|mmio|
pci-all|pci|
everything|mmio pci|"

# The bytes of .text, .rodata and .data in every member of archive $1.
code_bytes() {
	llvm-size -A "$1" | awk '
		$1 ~ /^\.(text|rodata|srodata|data|sdata)(\.|$)/ { sum += $2 }
		END { print sum + 0 }'
}

# Fail when archive $1 needs a symbol from outside beyond the four mem* functions.
check_alone() {
	llvm-nm --defined-only -g "$1" | awk 'NF == 3 { print $3 }' | sort -u >"$1.defined"
	missing=$(llvm-nm -u "$1" | awk 'NF >= 2 { print $NF }' | sort -u |
		comm -23 - "$1.defined" | grep -vxE 'memcpy|memset|memmove|memcmp' || true)
	rm -f "$1.defined"
	if [ -n "$missing" ]; then
		printf 'vio-size: %s needs:\n%s\n' "$1" "$missing" >&2
		exit 1
	fi
}

mkdir -p build/size
echo "| selection | VIO_TRANSPORTS | VIO_DRIVERS | files | x86-64 bytes | riscv64 bytes |"
echo "|---|---|---|---:|---:|---:|"
echo "$SELECTIONS" | while IFS='|' read -r name transports drivers; do
	build=build/size/$name
	set -- VIO_NO_DEPS=1 BUILD="$build" CROSS_ARCHS="$ARCHS" CROSS_GCC_ARCHS= \
		VIO_TRANSPORTS="$transports"
	[ -n "$drivers" ] && set -- "$@" VIO_DRIVERS="$drivers"
	if ! make -s -j2 "$@" lib-cross-build >"$build.log" 2>&1; then
		cat "$build.log" >&2
		exit 1
	fi
	sizes=
	for arch in $ARCHS; do
		lib=$build/cross/clang-$arch/libvio.a
		check_alone "$lib"
		sizes="$sizes | $(code_bytes "$lib")"
	done
	echo "| $name | $transports | ${drivers:-all} | $(llvm-ar t "$lib" | wc -l)$sizes |"
done
