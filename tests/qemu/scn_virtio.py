"""
Virtio core scenarios (issue: the embeddable virtio core). The kernel enumerates PCI, probes
every virtio function with the vio core, negotiates, picks an interrupt mode and prints one
line per device; its self-test then runs hundreds of requests through virtio-rng's queue 0
on whatever transport and interrupt mode the scenario set up. Each scenario checks the
device lines (transport, features, irq mode) in the serial log.
"""
import os
import subprocess

from harness import Scenario


def devices(modern=None, vectors=None, blk=True, net=True, console=True):
    """A virtio device set. modern: None = transitional, True = modern-only, False = legacy."""
    opt = ""
    if modern is True:
        opt += ",disable-legacy=on"
    elif modern is False:
        opt += ",disable-modern=on"
    if vectors is not None:
        opt += ",vectors=%d" % vectors
    args = ["-device", "virtio-rng-pci" + opt]
    if blk:
        args += ["-drive", "file=disk.img,format=raw,if=none,id=d0,cache=unsafe",
                 "-device", "virtio-blk-pci,drive=d0" + opt]
    if net:
        args += ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0" + opt]
    if console:
        args += ["-device", "virtio-serial-pci" + opt]
    return args


def scratch_disk(workdir):
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw",
                    os.path.join(workdir, "disk.img"), "16M"], check=True)
    return []


def line(name, transport, irq, features=r"0x[0-9a-f]+"):
    if name == "virtio-console" and irq == "msix":
        irq = CONSOLE_MSIX
    return r"^vio: %s 0000:00:[0-9a-f]{2}\.0 %s features=%s queues=\d+ irq=%s$" % (
        name, transport, features, irq)


ALL = ["virtio-rng", "virtio-blk", "virtio-net", "virtio-console"]
# Modern devices negotiate VERSION_1 (bit 32).
MODERN_FEATURES = r"0x1[0-9a-f]{8}"
# QEMU gives virtio-serial only 2 MSI-X vectors by default: too few for one per queue, so the
# console shares one (the point of the shared mode).
CONSOLE_MSIX = "msix-shared"
ROUND_TRIPS = r"^ok \d+ - virtio-rng reads through the driver$"

SCENARIOS = [
    Scenario("virtio-q35-modern-msix", machine="q35", setup=scratch_disk,
             qemu_args=devices(modern=True),
             expect_log=[line(n, "pci-modern", "msix", MODERN_FEATURES) for n in ALL]
             + [ROUND_TRIPS, r"pci: \d+ function\(s\) via ECAM"]),
    Scenario("virtio-pc-legacy-msix", machine="pc", setup=scratch_disk,
             qemu_args=devices(modern=False),
             expect_log=[line(n, "pci-legacy", "msix", r"0x[0-9a-f]{1,8}") for n in ALL]
             + [ROUND_TRIPS, r"pci: \d+ function\(s\) via port I/O"]),
    Scenario("virtio-pc-transitional-prefers-modern", machine="pc", setup=scratch_disk,
             qemu_args=devices(),
             expect_log=[line(n, "pci-modern", "msix") for n in ALL] + [ROUND_TRIPS]),
    Scenario("virtio-q35-intx", machine="q35", setup=scratch_disk,
             qemu_args=devices(vectors=0),
             expect_log=[line(n, "pci-modern", "intx") for n in ALL] + [ROUND_TRIPS]),
    Scenario("virtio-pc-legacy-intx", machine="pc", setup=scratch_disk,
             qemu_args=devices(modern=False, vectors=0),
             expect_log=[line(n, "pci-legacy", "intx") for n in ALL] + [ROUND_TRIPS]),
    Scenario("virtio-q35-shared-msix", machine="q35",
             qemu_args=devices(vectors=1, blk=False),
             expect_log=[line("virtio-rng", "pci-modern", "msix-shared"), ROUND_TRIPS]),
    Scenario("virtio-q35-legacy-only", machine="q35",
             qemu_args=devices(modern=False, blk=False, net=False, console=False),
             expect_log=[line("virtio-rng", "pci-legacy", "msix"), ROUND_TRIPS]),
    # 5 GiB of RAM and a 1 GiB 64-bit BAR that cannot fit below 4 GiB make the firmware put
    # every 64-bit BAR above 4 GiB, the virtio ones included.
    Scenario("virtio-q35-5g-bars-above-4g", machine="q35", mem="5G",
             cmdline="vio.expect_bar_above_4g=1",
             qemu_args=devices(modern=True, blk=False, console=False)
             + ["-object", "memory-backend-ram,id=hm,size=1G",
                "-device", "ivshmem-plain,memdev=hm"],
             expect_log=[line("virtio-rng", "pci-modern", "msix"), ROUND_TRIPS,
                         r"^ok \d+ - virtio BAR above 4 GiB in use$"]),
    Scenario("virtio-grub-pc-default-set", machine="pc", boot="grub", setup=scratch_disk,
             qemu_args=devices(),
             expect_log=[line(n, "pci-modern", "msix") for n in ALL] + [ROUND_TRIPS]),
]
