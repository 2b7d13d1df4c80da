#!/usr/bin/env bash
# Boot the vio kernel in QEMU with the default virtio device set, serial on this terminal.
# Run `./run-qemu.sh --help` for the options. `make run` builds first and calls this.
set -eu
cd "$(dirname "$0")"

usage() {
	cat <<'TXT'
usage: ./run-qemu.sh [options] [-- extra QEMU arguments]

Boots build/vio.iso (GRUB, multiboot2; under SeaBIOS, or OVMF with --uefi) with COM1 on
this terminal (Ctrl-A X quits QEMU, Ctrl-A C switches to the QEMU monitor) and the default
devices:
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
  --uefi              boot the same ISO under UEFI: Debian's OVMF (package ovmf) instead of
                      SeaBIOS, its code read-only, its variables in build/ovmf-vars-q35.fd
                      (or -pc.fd)
  --machine q35|pc|microvm[,opts]
                      machine type (default q35; pc is i440FX; microvm implies --direct
                      and takes QEMU's options, e.g. microvm,acpi=off)
  --mmio-v2           on microvm: virtio-mmio version 2 (QEMU 7.2 defaults to the legacy
                      version 1: force-legacy)
  --mem SIZE          guest RAM, QEMU syntax (default 512M)
  --cmdline "ARGS"    kernel command line (default vio.mode=shell), e.g. "vio.mode=test"
  --kvm               use KVM when the kernel's self-tests pass under it here (a probe boot,
                      its output in build/kvm-probe.log, repeated only when the kernel,
                      QEMU or /dev/kvm change), else TCG; one line says which and why
  --no-devices        leave out the default virtio devices
  --help              this text
  --                  everything after goes to QEMU unchanged, e.g.
                      ./run-qemu.sh -- -device virtio-rng-pci,disable-modern=on

The exit status is QEMU's: 33 when the kernel reported success through isa-debug-exit,
35 for failure, 0 after a normal power-off.
TXT
}

DIRECT=0
UEFI=0
MACHINE=q35
MMIO_V2=0
MEM=512M
CMDLINE=vio.mode=shell
KVM=0
DEVICES=1
EXTRA=()
while [ $# -gt 0 ]; do
	case "$1" in
	--direct) DIRECT=1 ;;
	--uefi) UEFI=1 ;;
	--machine) MACHINE=${2:?--machine needs q35, pc or microvm}; shift ;;
	--mmio-v2) MMIO_V2=1 ;;
	--mem) MEM=${2:?--mem needs a size}; shift ;;
	--cmdline) CMDLINE=${2?--cmdline needs a string}; shift ;;
	--kvm) KVM=1 ;;
	--no-devices) DEVICES=0 ;;
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
[ "$UEFI" = 0 ] || [ "$DIRECT" = 0 ] || {
	echo "run-qemu.sh: --uefi boots the ISO through GRUB; it cannot go with --direct or microvm" >&2
	exit 2
}
[ "$MMIO_V2" = 0 ] || [ "$BUS" = mmio ] || { echo "run-qemu.sh: --mmio-v2 needs --machine microvm" >&2; exit 2; }

BUILD=${BUILD:-build}
ELF=$BUILD/vio.elf
[ -f "$ELF" ] || { echo "run-qemu.sh: $ELF missing; run 'make' first (or 'make run')" >&2; exit 1; }

ACCEL=(-accel tcg)
if [ "$KVM" = 1 ]; then
	# /dev/kvm can be there and still unable to run this kernel (a virtual CPU that cannot
	# execute SSE, seen on some hosts): boot the kernel's self-tests under KVM first
	# (tests/qemu/accel.py, log in $BUILD/kvm-probe.log) and say in one line what runs.
	if VERDICT=$(python3 tests/qemu/accel.py --machine "$MACHINE" --log "$BUILD/kvm-probe.log" "$ELF"); then
		ACCEL=(-accel kvm)
	fi
	echo "run-qemu.sh: $VERDICT" >&2
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
if [ "$UEFI" = 1 ]; then
	# OVMF in two flash chips: the firmware, shared and read-only, and its variable store
	# (boot entries), which it writes: a private copy, made once per machine type (q35's
	# saved entries name a SATA CD-ROM that pc does not have, and OVMF then starts its shell).
	OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
	OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
	VARS=$BUILD/ovmf-vars-${MACHINE%%,*}.fd
	[ -f "$OVMF_CODE" ] || { echo "run-qemu.sh: $OVMF_CODE missing: install ovmf (scripts/deps.sh)" >&2; exit 1; }
	[ -f "$VARS" ] || cp "$OVMF_VARS" "$VARS"
	BOOT+=(-drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF_CODE"
		-drive if=pflash,format=raw,unit=1,file="$VARS")
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

# -smp 2: a second vCPU the kernel never starts. QEMU 7.2's TCG drops guest memory barriers
# when a machine has only one vCPU (fixed in 8.1), which can lose a device notification.
exec qemu-system-x86_64 -machine "$MACHINE" "${ACCEL[@]}" -smp 2 -m "$MEM" -display none \
	-serial mon:stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	"${BOOT[@]}" "${DEV[@]}" "${EXTRA[@]}"
