#!/usr/bin/env bash
# Build a GRUB (multiboot2) boot ISO around the kernel ELF.
#
#   scripts/mkiso.sh <vio.elf> <out.iso> [kernel command line]
#
# Without a command line the ISO has a menu (shell, self-tests, benchmarks) with a 3 s
# timeout; with one, a single entry that boots at once with that command line (the test
# runner and run-qemu.sh --cmdline use this). GRUB talks on the serial port and the screen.
#
# One ISO boots both ways: with grub-pc-bin and grub-efi-amd64-bin installed, grub-mkrescue
# writes a BIOS El Torito image and an EFI system partition (EFI/BOOT/BOOTX64.EFI) side by
# side, so SeaBIOS and OVMF each find their own GRUB, which reads the same grub.cfg.
set -eu
ELF=${1:?usage: mkiso.sh <vio.elf> <out.iso> [cmdline]}
OUT=${2:?usage: mkiso.sh <vio.elf> <out.iso> [cmdline]}
CMDLINE=${3-}
for dir in i386-pc x86_64-efi; do
	[ -d "/usr/lib/grub/$dir" ] || {
		echo "mkiso: /usr/lib/grub/$dir missing: install grub-pc-bin and grub-efi-amd64-bin" \
			"(scripts/deps.sh)" >&2
		exit 1
	}
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vio-iso.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
ROOT=$TMP/iso
mkdir -p "$ROOT/boot/grub"
cp "$ELF" "$ROOT/boot/vio.elf"
{
	# UEFI has no text mode: load GOP (and UGA) so GRUB can hand the kernel the firmware's
	# framebuffer. On BIOS, GRUB finds VBE by itself.
	echo 'if [ "$grub_platform" = efi ]; then insmod efi_gop; insmod efi_uga; fi'
	echo 'serial --unit=0 --speed=115200'
	echo 'terminal_input serial console'
	echo 'terminal_output serial console'
	if [ -n "$CMDLINE" ]; then
		echo 'set timeout=0'
		echo "menuentry \"vio\" { multiboot2 /boot/vio.elf $CMDLINE; boot; }"
	else
		echo 'set timeout=3'
		echo 'menuentry "vio (shell)" { multiboot2 /boot/vio.elf vio.mode=shell; boot; }'
		echo 'menuentry "vio (self-tests)" { multiboot2 /boot/vio.elf vio.mode=test; boot; }'
		echo 'menuentry "vio (benchmarks)" { multiboot2 /boot/vio.elf vio.mode=bench; boot; }'
	fi
} >"$ROOT/boot/grub/grub.cfg"
# Built under a name of its own and renamed: two runs making the same ISO at once (parallel
# test scenarios with one command line) each finish, and a reader never sees half an ISO.
PART=$OUT.$$.tmp
if ! grub-mkrescue -o "$PART" "$ROOT" >"$TMP/log" 2>&1; then
	echo "mkiso: grub-mkrescue failed:" >&2
	cat "$TMP/log" >&2
	rm -f "$PART"
	exit 1
fi
mv "$PART" "$OUT"

