"""
Virtio core scenarios (issue: the embeddable virtio core). The kernel enumerates PCI, probes
every virtio function with the vio core, negotiates, picks an interrupt mode and prints one
line per device; its self-test then runs hundreds of requests through virtio-rng's queue 0
on whatever transport and interrupt mode the scenario set up. Each scenario checks the
device lines (transport, features, irq mode) in the serial log. The packed ring's rows, and
every driver scenario again with packed=on, are at the end.
"""
import copy
import os
import re
import subprocess

from harness import Scenario
from scn_blk import pattern_check
import scn_9p
import scn_balloon
import scn_blk
import scn_blk_features
import scn_microvm
import scn_net
import scn_rng_console


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


# --- the packed ring (2.8): every driver, every completion mode ------------------------------
#
# QEMU offers VIRTIO_F_RING_PACKED with packed=on; the core takes it from any 1.x device. The
# device sets and host peers are the microvm scenarios' (scn_microvm.py), with each
# virtio-*-device turned into its PCI twin: the self-tests (every device line, the virtio-rng
# round trip, 300 pattern writes checked byte by byte on the image) and the peers (blk SHA-256
# ranges against the host's, 4 MiB through a console port and socat, 20,000 frames echoed and
# malformed ones counted, QMP set_link, each device's interrupt count: some with MSI-X or INTx,
# none when polled). Each in MSI-X, INTx (vectors=0) and polled (vio.irq=poll) mode.

# VERSION_1 (bit 32) and RING_PACKED (bit 34) negotiated: bits 32-35 read 0x5.
PACKED_FEATURES = r"0x5[0-9a-f]{8}"
IRQ = {"msix": "msix(-shared)?", "intx": "intx", "poll": "poll"}


def as_pci(args, extra):
    """A microvm device set on PCI: virtio-X-device becomes virtio-X-pci, modern-only, plus
    `extra` on every virtio device."""
    out = []
    for a in args:
        m = re.match(r"(virtio-[a-z]+)-device(,.*)?$", a)
        out.append(m.group(1) + "-pci,disable-legacy=on" + (m.group(2) or "") + extra
                   if m else a)
    return out


def packed_setup(base, irq):
    extra = ",packed=on" + (",vectors=0" if irq == "intx" else "")
    # virtio-balloon-pci has no `vectors`: it is on INTx already (irq_of).
    return lambda workdir: [a.replace(",vectors=0", "") if a.startswith("virtio-balloon")
                            else a for a in as_pci(base(workdir), extra)]


def irq_of(name, irq):
    # QEMU 7.2's virtio-balloon-pci has no MSI-X vectors unless asked: it takes INTx.
    if name == "virtio-balloon" and irq == "msix":
        return "intx"
    return IRQ[irq]


def table_row(unit, name, ring):
    return r"^  %-6s %s 0000:00:.* ring=%s$" % (unit, name, ring)


def packed_lines(names, irq, ring="packed"):
    units = {"virtio-rng": "rng0", "virtio-blk": "blk0", "virtio-console": "cons0",
             "virtio-net": "net0", "virtio-balloon": "balloon0"}
    features = PACKED_FEATURES if ring == "packed" else MODERN_FEATURES
    return ([r"^vio: %s 0000:00:[0-9a-f]{2}\.0 pci-modern features=%s queues=\d+ irq=%s$"
             % (n, features, irq_of(n, irq)) for n in names]
            + [table_row(units[n], n, ring) for n in names])


def packed_selftests(irq):
    names = ["virtio-rng", "virtio-blk", "virtio-console", "virtio-net", "virtio-balloon"]
    return Scenario(
        "virtio-packed-%s-selftests" % irq, machine="q35",
        cmdline="vio.tests=blk-pattern vio.seed=3 vio.count=300"
        + (" vio.irq=poll" if irq == "poll" else ""),
        setup=packed_setup(scn_microvm.selftest_setup, irq), check=pattern_check, timeout=240,
        expect_log=packed_lines(names, irq)
        + [r"^ok \d+ - virtio-rng reads through the driver$", r"^ok \d+ - blk-pattern$"])


def packed_peers(irq):
    names = ["virtio-rng", "virtio-blk", "virtio-console", "virtio-net"]
    return Scenario(
        "virtio-packed-%s-peers" % irq, machine="q35", mode="shell",
        cmdline="vio.irq=poll" if irq == "poll" else "",
        setup=packed_setup(scn_microvm.peers_setup, irq),
        interact=packed_peers_interact(irq), timeout=600, expect_exit=0,
        expect_tap=False, expect_log=packed_lines(names, irq) + [r"^vio: power off$"])


def packed_peers_interact(irq):
    """The microvm peers, after 'virtio <dev>' has named the ring of every device."""
    peers = scn_microvm.peers_interact(irq == "poll")

    def interact(q):
        q.wait_for(r"vio> ")
        for dev in ("rng0", "blk0", "cons0", "net0"):
            out = q.shell("virtio " + dev)
            assert re.search(r", ring packed,", out), "%s: no 'ring packed' in %r" % (dev, out)
        peers(q)
    return interact


def with_packed(args):
    """Every virtio-*-pci device of a device set with packed=on."""
    return [a + ",packed=on" if re.match(r"virtio-[a-z0-9]+-pci(,|$)", a) else a for a in args]


def packed_twin(scn, poll=False):
    """The same scenario, its virtio PCI devices with packed=on (and with `poll`, vio.irq=poll),
    and the boot's device table showing every bound device on a packed ring."""
    twin = copy.copy(scn)
    twin.name = scn.name + ("-packed-poll" if poll else "-packed")
    if poll:
        twin.cmdline = (scn.cmdline + " vio.irq=poll").strip()
    twin.qemu_args = with_packed(scn.qemu_args)
    setup, check = scn.setup, scn.check
    twin.setup = (lambda w: with_packed(setup(w))) if setup else None

    def packed_check(log, workdir):
        rows = re.findall(r"^  \S+ +virtio-\S+ \S+ .* ring=(\w+)$", log, re.M)
        if not rows or set(rows) != {"packed"}:
            return "device table rings %s, expected packed only" % (rows or "missing")
        return check(log, workdir) if check else None
    twin.check = packed_check
    return twin


def microvm_packed_setup(workdir):
    return [a + ",packed=on" if re.match(r"virtio-[a-z]+-device", a) else a
            for a in scn_microvm.selftest_setup(workdir)]


SCENARIOS += [packed_selftests(irq) for irq in ("msix", "intx", "poll")]
SCENARIOS += [packed_peers(irq) for irq in ("msix", "intx", "poll")]
SCENARIOS += [
    # vio.ring=split keeps every device on the split ring, packed=on or not.
    Scenario("virtio-packed-offered-vio-ring-split", machine="q35",
             cmdline="vio.ring=split vio.tests=blk-pattern vio.seed=3 vio.count=300",
             setup=packed_setup(scn_microvm.selftest_setup, "msix"), check=pattern_check,
             timeout=240,
             expect_log=packed_lines(["virtio-rng", "virtio-blk", "virtio-console",
                                      "virtio-net", "virtio-balloon"], "msix", ring="split")
             + [r"^vio: vio\.ring=split: split rings only", r"^ok \d+ - blk-pattern$"]),
    # virtio-mmio version 2 (1.x) on microvm, packed=on on every device; version 1 is
    # legacy and never packed.
    Scenario("virtio-packed-microvm-mmio-v2-selftests", machine=scn_microvm.machine(True),
             cmdline="vio.tests=blk-pattern vio.seed=3 vio.count=300",
             setup=microvm_packed_setup, qemu_args=scn_microvm.version_args(True),
             check=pattern_check, timeout=240,
             expect_log=[r"^vio: %s mmio@0xfeb0[0-9a-f]{4} mmio features=%s queues=\d+ "
                         r"irq=line:\d+$" % (n, PACKED_FEATURES)
                         for n in ("virtio-rng", "virtio-blk", "virtio-console", "virtio-net",
                                   "virtio-balloon")]
             + [r"^  blk0   virtio-blk mmio@.* ring=packed$", r"^ok \d+ - blk-pattern$"]),
]
# Every driver's own scenarios again on packed rings (MSI-X, as they boot): blk (all but the
# 20,000-request model run) and its features (flush, multiqueue, indirect and EVENT_IDX used
# and each switched off, ...), net, balloon, rng, console and 9p.
SCENARIOS += [packed_twin(scn) for scn in scn_blk.SCENARIOS + scn_blk_features.SCENARIOS
              + scn_net.SCENARIOS + scn_balloon.SCENARIOS + scn_rng_console.SCENARIOS
              + scn_9p.SCENARIOS
              if scn.name != "blk-20000-ops-against-model"]
# The balloon is on INTx in those (virtio-balloon-pci has no MSI-X); polled as well:
SCENARIOS += [packed_twin(scn, poll=True) for scn in scn_balloon.SCENARIOS
              if scn.name == "balloon-inflate-256m-and-back"]
