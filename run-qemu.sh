#!/usr/bin/env bash
# Boot the vio kernel in QEMU with the default virtio device set, serial on this terminal.
# Run `./run-qemu.sh --help` for the options. `make run` builds first and calls this.
set -eu
cd "$(dirname "$0")"

usage() {
	cat <<'TXT'
usage: ./run-qemu.sh [options] [-- extra QEMU arguments]

Boots build/vio.iso (GRUB, multiboot2) with COM1 on this terminal (Ctrl-A X quits QEMU,
Ctrl-A C switches to the QEMU monitor) and the default devices:
  virtio-rng-pci                      entropy
  virtio-serial-pci + virtconsole     console port 0 on the socket build/vcon.sock
                                      (talk to it: socat - UNIX-CONNECT:build/vcon.sock)
  virtio-blk-pci                      disk on build/scratch.img (64 MiB, created if missing)
  virtio-net-pci, -netdev user        NAT networking (guest 10.0.2.15, host 10.0.2.2)
  isa-debug-exit                      lets the kernel end QEMU with a status

On --machine microvm the same devices are virtio-mmio ones (virtio-rng-device, ...),
booted with -kernel: the kernel finds them in the DSDT, or with microvm,acpi=off in the
virtio_mmio.device= words QEMU adds to the command line.

options:
  --direct            boot build/vio.elf with -kernel (PVH entry), no GRUB
  --machine q35|pc|microvm[,opts]
                      machine type (default q35; pc is i440FX; microvm implies --direct
                      and takes QEMU's options, e.g. microvm,acpi=off)
  --mmio-v2           on microvm: virtio-mmio version 2 (QEMU 7.2 defaults to the legacy
                      version 1: force-legacy)
  --mem SIZE          guest RAM, QEMU syntax (default 512M)
  --cmdline "ARGS"    kernel command line (default vio.mode=shell), e.g. "vio.mode=test"
  --kvm               use KVM when it works here, else fall back to TCG with a message
  --no-devices        leave out the default virtio devices
  --display           a screen and a keyboard: virtio-gpu, virtio-keyboard, virtio-tablet,
                      shown in a GTK (or SDL) window when there is a desktop, else on VNC
                      at 127.0.0.1:5900 (any VNC viewer); the shell runs on both
  --help              this text
  --                  everything after goes to QEMU unchanged, e.g.
                      ./run-qemu.sh -- -device virtio-rng-pci,disable-modern=on

The exit status is QEMU's: 33 when the kernel reported success through isa-debug-exit,
35 for failure, 0 after a normal power-off.
TXT
}

DIRECT=0
MACHINE=q35
MMIO_V2=0
MEM=512M
CMDLINE=vio.mode=shell
KVM=0
DEVICES=1
DISPLAY_UI=0
EXTRA=()
while [ $# -gt 0 ]; do
	case "$1" in
	--direct) DIRECT=1 ;;
	--machine) MACHINE=${2:?--machine needs q35, pc or microvm}; shift ;;
	--mmio-v2) MMIO_V2=1 ;;
	--mem) MEM=${2:?--mem needs a size}; shift ;;
	--cmdline) CMDLINE=${2?--cmdline needs a string}; shift ;;
	--kvm) KVM=1 ;;
	--no-devices) DEVICES=0 ;;
	--display) DISPLAY_UI=1 ;;
	--help | -h) usage; exit 0 ;;
	--) shift; EXTRA=("$@"); break ;;
	*) echo "run-qemu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case "${MACHINE%%,*}" in
q35 | pc) BUS=pci ;;
microvm) BUS=mmio; DIRECT=1 ;;
*) echo "run-qemu.sh: --machine must be q35, pc or microvm" >&2; exit 2 ;;
esac
[ "$MMIO_V2" = 0 ] || [ "$BUS" = mmio ] || { echo "run-qemu.sh: --mmio-v2 needs --machine microvm" >&2; exit 2; }

BUILD=${BUILD:-build}
ELF=$BUILD/vio.elf
[ -f "$ELF" ] || { echo "run-qemu.sh: $ELF missing; run 'make' first (or 'make run')" >&2; exit 1; }

ACCEL=(-accel tcg)
if [ "$KVM" = 1 ]; then
	# KVM can be present yet broken (a virtual CPU without SSE3, seen on some hosts): try it for
	# real, briefly.
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
		timeout 3 qemu-system-x86_64 -accel kvm -M none -S -nodefaults -display none \
			-monitor none -serial none >/dev/null 2>&1; [ $? -eq 124 ]; then
		ACCEL=(-accel kvm)
	else
		echo "run-qemu.sh: KVM is not usable here; falling back to TCG" >&2
	fi
fi

if [ "$DIRECT" = 1 ]; then
	BOOT=(-kernel "$ELF" -append "$CMDLINE")
else
	ISO=$BUILD/vio.iso
	if [ "$CMDLINE" != "vio.mode=shell" ]; then
		ISO=$BUILD/iso-cache/run.iso
		mkdir -p "$BUILD/iso-cache"
		scripts/mkiso.sh "$ELF" "$ISO" "$CMDLINE"
	fi
	[ -f "$ISO" ] || scripts/mkiso.sh "$ELF" "$ISO"
	BOOT=(-cdrom "$ISO" -boot d)
fi

DEV=()
[ "$MMIO_V2" = 1 ] && DEV=(-global virtio-mmio.force-legacy=false)
if [ "$DEVICES" = 1 ]; then
	[ -f "$BUILD/scratch.img" ] || qemu-img create -q -f raw "$BUILD/scratch.img" 64M
	# virtio-rng-pci on PCI, virtio-rng-device on virtio-mmio, and so on
	if [ "$BUS" = pci ]; then SUFFIX=pci; else SUFFIX=device; fi
	DEV+=(
		-device virtio-rng-$SUFFIX
		-device virtio-serial-$SUFFIX,id=vser
		-chardev socket,id=vcon,path="$BUILD/vcon.sock",server=on,wait=off
		-device virtconsole,chardev=vcon,bus=vser.0
		-drive file="$BUILD/scratch.img",format=raw,if=none,id=disk0,cache=none,aio=threads
		-device virtio-blk-$SUFFIX,drive=disk0
		-netdev user,id=net0
		-device virtio-net-$SUFFIX,netdev=net0
	)
fi

# --display: the screen console (src/kernel/fbcon.c) and the virtio keyboard and tablet
# (src/kernel/kbd.c), in a window where QEMU has a UI and a desktop to open it on.
UI=(-display none)
if [ "$DISPLAY_UI" = 1 ]; then
	if [ "$BUS" = pci ]; then SUFFIX=pci; else SUFFIX=device; fi
	DEV+=(-device virtio-gpu-$SUFFIX -device virtio-keyboard-$SUFFIX -device virtio-tablet-$SUFFIX)
	UIS=$(qemu-system-x86_64 -display help 2>/dev/null || true)
	if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && grep -qx gtk <<<"$UIS"; then
		UI=(-display gtk)
	elif [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && grep -qx sdl <<<"$UIS"; then
		UI=(-display sdl)
	else
		UI=(-display none -vnc 127.0.0.1:0)
		echo "run-qemu.sh: no desktop here: the screen is on VNC at 127.0.0.1:5900" >&2
	fi
fi

# -smp 2: a second vCPU the kernel never starts. QEMU 7.2's TCG drops guest memory barriers
# when a machine has only one vCPU (fixed in 8.1), which can lose a device notification.
exec qemu-system-x86_64 -machine "$MACHINE" "${ACCEL[@]}" -smp 2 -m "$MEM" "${UI[@]}" \
	-serial mon:stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	"${BOOT[@]}" "${DEV[@]}" "${EXTRA[@]}"
