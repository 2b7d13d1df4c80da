#!/usr/bin/env bash
# Install the Debian packages vio needs to build, boot and test, when any is missing.
# Idempotent: when everything is present it only runs dpkg-query and exits (well under a
# second). Runs apt-get as root (or through sudo when not root). Says exactly what failed.
set -u

PKGS=(
	make gcc binutils clang lld            # compilers: host GCC and clang/lld
	gcc-i686-linux-gnu gcc-riscv64-linux-gnu gcc-aarch64-linux-gnu # make lib-cross: GCC
	llvm                                   # llvm-nm, llvm-objdump: make lib-cross checks
	libclang-rt-dev                        # libFuzzer and sanitizer runtimes (make fuzz)
	qemu-system-x86 qemu-utils             # QEMU (TCG) and qemu-img
	qemu-system-misc llvm                  # examples/riscv64-virt: qemu-system-riscv64 (its
	                                       # OpenSBI comes with QEMU), llvm-ar, llvm-objdump
	qemu-system-arm                        # examples/aarch64-virt: qemu-system-aarch64
	grub-pc-bin grub-common xorriso mtools # grub-mkrescue and its helpers
	grub-efi-amd64-bin                     # ... and the UEFI half of the same ISO
	ovmf                                   # UEFI firmware for QEMU (run-qemu.sh --uefi)
	newlib-source                          # newlib tarball, built by scripts/newlib.sh
	libcmocka-dev pkg-config               # host unit tests
	python3                                # test runner, QMP client
	console-setup-linux                    # the screen console font (PSF, scripts/psf2c.py)
	rng-tools5 socat coreutils             # real peers: rngtest, socat, sha256sum
	iperf curl iputils-ping iproute2       # lwIP peers: iperf 2, web client, ping, netns + tap
	xz-utils bzip2 texinfo                 # unpacking and building newlib
	cpio python3-matplotlib                # make bench: the Linux peer's initramfs, plots
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "deps: installing missing packages: ${missing[*]}"
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then
		SUDO=sudo
	else
		echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
	echo "deps: 'apt-get update' failed; cannot install: ${missing[*]}" >&2
	exit 1
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/vio-deps.log 2>&1; then
	echo "deps: 'apt-get install ${missing[*]}' failed; last lines of its log:" >&2
	tail -20 /tmp/vio-deps.log >&2
	exit 1
fi

still=()
for p in "${missing[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	echo "deps: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps: ok"
