"""
The aarch64 example kernel (examples/aarch64-virt) on QEMU `virt` with a Cortex-A57: a kernel
written from docs/porting.md and the public headers alone. One boot per transport
(virtio-mmio version 2, version 1 with -global virtio-mmio.force-legacy=true, and modern
virtio-pci behind virt's ECAM host bridge with -append pci, BARs assigned by vio) and
interrupt mode (GICv2 lines: the MMIO line, PCI MSI-X through the GICv2m frame, or PCI
INTx with -append nomsi; or polled with -append poll). Each
boot has an entropy device, a disk, a console and a NIC, and checks:

  rng        4 KiB of entropy read (the kernel checks it is not one repeated byte)
  blk        the SHA-256 the kernel prints for 3 MiB of the disk equals dd | sha256sum's
  console    64 KiB of random bytes sent into the port org.vio.echo come back byte-exact
  net        the kernel's hello frame arrives over -netdev dgram; 32 frames of random sizes
             come back byte-exact with MACs swapped, then a stop frame ends the echo
  interrupts every device ran irq=line:<intid> (MMIO), irq=msix or irq=intx (PCI) and
             took GIC interrupts, or irq=poll and took none

The kernel powers off through PSCI (QEMU exits 0); the TAP lines say whether it passed. It is
built here (make -C examples/aarch64-virt) when it is missing or stale.
"""
import os
import random
import socket
import subprocess
import threading

import harness
from harness import Scenario
from harness import free_udp_port
from scn_riscv64 import DISK_BYTES, check, exchange

EXAMPLE = os.path.join(harness.ROOT, "examples", "aarch64-virt")
OUT = os.path.join(harness.BUILD, "aarch64-virt")
KERNEL = os.path.join(OUT, "kernel.bin")

_build_lock = threading.Lock()
_built = []
_host_socks = {}  # workdir -> the UDP socket bound in setup, before QEMU sends anything


def build():
    """Make the kernel once per run (scenarios run in parallel threads: one make at a time)."""
    with _build_lock:
        if not _built:
            p = subprocess.run(["make", "-C", EXAMPLE, "OUT=" + OUT], capture_output=True,
                               text=True, timeout=600)
            if p.returncode != 0:
                raise RuntimeError("make -C examples/aarch64-virt failed:\n" +
                                   (p.stdout + p.stderr)[-2000:])
            _built.append(True)


def qemu_argv(legacy, words):
    def argv(workdir):
        build()
        # Two vCPUs, the second never started (PSCI CPU_ON is never called): with one, QEMU
        # 7.2's TCG drops guest memory barriers (harness.py says more). highmem=off puts the
        # PCIe ECAM window below 4 GiB, where the kernel maps devices.
        return (["qemu-system-aarch64", "-machine", "virt,highmem=off", "-cpu", "cortex-a57",
                 "-smp", "2", "-accel", "tcg", "-m", "256M", "-display", "none",
                 "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nodefaults",
                 "-kernel", KERNEL,
                 "-global", "virtio-mmio.force-legacy=%s" % ("true" if legacy else "false")]
                + (["-append", " ".join(words)] if words else []))
    return argv


def devices(kind):
    """setup(workdir) for one of each device, kind 'device' (virtio-mmio) or 'pci'."""
    return lambda workdir: setup(workdir, kind)


def setup(workdir, kind):
    rnd = random.Random(11)
    with open(os.path.join(workdir, "disk.img"), "wb") as f:
        f.write(rnd.randbytes(DISK_BYTES))
    guest, host = free_udp_port(), free_udp_port()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", host))
    _host_socks[workdir] = (sock, ("127.0.0.1", guest))
    return ["-device", "virtio-rng-" + kind,
            "-drive", "file=%s/disk.img,if=none,format=raw,id=d0" % workdir,
            "-device", "virtio-blk-%s,drive=d0" % kind,
            "-device", "virtio-serial-" + kind,
            "-chardev", "socket,id=echo,path=%s/echo.sock,server=on,wait=off" % workdir,
            "-device", "virtserialport,chardev=echo,name=org.vio.echo",
            "-netdev", "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=%d,"
            "remote.type=inet,remote.host=127.0.0.1,remote.port=%d" % (guest, host),
            "-device", "virtio-net-%s,netdev=n0" % kind]


def interact(q):
    exchange(q, _host_socks, b"vio aarch64-virt hello")


def scenario(transport, mode):
    """transport: 'mmio' (version 2), 'mmio-legacy' (version 1) or 'pci-modern';
    mode: 'line' (MMIO), 'msix' or 'intx' (PCI) or 'poll'."""
    where = r"0000:00:[0-9a-f]{2}\.0" if transport == "pci-modern" else r"mmio@0x[0-9a-f]+"
    irq = {"line": r"line:(4[89]|[5-7]\d)", "msix": "msix(-shared)?", "intx": "intx",
           "poll": "poll"}[mode]
    found = [r"^vio: virtio-%s %s %s features=0x[0-9a-f]+ queues=\d+ irq=%s$"
             % (name, where, transport, irq) for name in ("rng", "blk", "console", "net")]
    tests = [r"^ok \d+ - %s$" % t for t in ("rng", "blk sha256", "console echo",
                                              "net frame exchange", "interrupts")]
    name = {"mmio": "mmio2", "mmio-legacy": "mmio1", "pci-modern": "pci"}[transport]
    words = ((["pci"] if transport == "pci-modern" else []) +
             {"poll": ["poll"], "intx": ["nomsi"]}.get(mode, []))
    return Scenario("aarch64-%s-%s" % (name, mode),
                    argv=qemu_argv(transport == "mmio-legacy", words),
                    setup=devices("pci" if transport == "pci-modern" else "device"),
                    interact=interact, check=check, timeout=180, expect_exit=0,
                    expect_tap=True, expect_log=found + tests)


SCENARIOS = [scenario(t, m) for t, modes in (("mmio", ("line", "poll")),
                                             ("mmio-legacy", ("line", "poll")),
                                             ("pci-modern", ("msix", "intx", "poll")))
             for m in modes]
