"""
The x86 kernel on QEMU's `microvm`: no PCI, every device on virtio-mmio. The kernel finds its
devices the two ways microvm describes them (the DSDT's LNRO0005 devices with acpi=on, the
virtio_mmio.device= words QEMU adds to the command line with acpi=off), routes their lines
through the IOAPIC (GSIs 24-47 on the second IOAPIC with acpi=on, 5-12 on the first without
ACPI), and runs the device checks the PCI boots run.

Four machines, each booted twice: virtio-mmio version 1 (QEMU 7.2's default, force-legacy)
and version 2, each interrupt-driven (irq=line:<gsi>) and polled (vio.irq=poll), so that both
versions, both discovery routes and both interrupt modes are each covered:

  version 1, line   DSDT           version 1, poll   command line
  version 2, line   command line   version 2, poll   DSDT

  selftests  vio.mode=test with an entropy device, a disk, a console, a NIC and a balloon:
             every device line, the virtio-rng round trip (64 KiB; with irq=line the device
             must have interrupted), 300 pattern writes checked byte by byte on the image
  peers      vio.mode=shell, as the PCI scenarios do it: SHA-256 of disk ranges equal to
             dd | sha256sum's, 4 MiB through socat and the console port org.vio.echo, 20,000
             frames echoed over -netdev dgram and four malformed ones counted as errors, QMP
             set_link down and up seen by the driver; then each device's interrupt counter:
             some with irq=line, none when polled

A boot gives the command line junk next to the DSDT's devices: each entry is refused with
its reason, and the real device still comes up. Another gives four devices lines the kernel
must not lend (COM1's, the timer's, one no IOAPIC has): each line is refused, the device
polled, and COM1 still takes typed input by interrupt.
"""
import os
import random
import re
import socket

from harness import EXIT_PASS, Scenario, Timeout
from scn_blk import MiB, SHA_RANGES, host_sha256, image, pattern_check
from harness import free_udp_port
from scn_net import MTU, echo_frames, mac_bytes, stats
from scn_rng_console import socat_echo

NET_FRAMES = 20000
CONSOLE_BYTES = 4 * MiB
# 24-47: the second IOAPIC, where microvm wires its virtio-mmio slots when it has ACPI;
# 5-12: the first (and only) IOAPIC without ACPI.
GSIS = {True: r"(2[4-9]|3\d|4[0-7])", False: r"([5-9]|1[0-2])"}


def machine(acpi):
    return "microvm,acpi=%s" % ("on" if acpi else "off")


def version_args(v2):
    return ["-global", "virtio-mmio.force-legacy=%s" % ("false" if v2 else "true")]


def device_line(name, v2, poll, acpi):
    irq = "poll" if poll else "line:" + GSIS[acpi]
    return r"^vio: %s mmio@0xfeb0[0-9a-f]{4} %s features=0x[0-9a-f]+ queues=\d+ irq=%s$" % (
        name, "mmio" if v2 else "mmio-legacy", irq)


def discovered(acpi):
    """How the kernel must say it found the devices."""
    if acpi:
        return [r"^acpi: DSDT: \d+ virtio-mmio device\(s\)$",
                r"^virtio-mmio: 0x200 bytes at 0xfeb0[0-9a-f]{4}, GSI %s \(DSDT\)$" % GSIS[True]]
    return [r"virtio_mmio\.device=512@0xfeb0[0-9a-f]{4}:\d+",
            r"^virtio-mmio: 0x200 bytes at 0xfeb0[0-9a-f]{4}, GSI %s \(command line\)$"
            % GSIS[False]]


def tag(v2, poll, acpi):
    return "v%d-%s-%s" % (2 if v2 else 1, "poll" if poll else "line",
                          "dsdt" if acpi else "cmdline")


# --- selftests: vio.mode=test ---------------------------------------------------------------

def selftest_setup(workdir):
    return ["-device", "virtio-rng-device",
            "-drive", "file=%s,format=raw,if=none,id=d0,cache=writeback"
            % image(workdir, seed=21),
            "-device", "virtio-blk-device,drive=d0",
            "-device", "virtio-serial-device",
            "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
            "-device", "virtio-balloon-device"]


def selftests(v2, poll, acpi):
    names = ["virtio-rng", "virtio-blk", "virtio-console", "virtio-net", "virtio-balloon"]
    return Scenario(
        "microvm-%s-selftests" % tag(v2, poll, acpi), machine=machine(acpi),
        cmdline="vio.tests=blk-pattern vio.seed=3 vio.count=300" + (" vio.irq=poll" if poll
                                                                     else ""),
        setup=selftest_setup, qemu_args=version_args(v2), check=pattern_check, timeout=180,
        expect_log=[device_line(n, v2, poll, acpi) for n in names] + discovered(acpi)
        + [r"^ok \d+ - virtio-rng reads through the driver$", r"^ok \d+ - blk-pattern$",
           r"^ok \d+ - acpi tables found( # SKIP .*acpi=off)?$"])


# --- peers: vio.mode=shell, host tools on the other side ------------------------------------

def peers_setup(workdir):
    guest, host = free_udp_port(), free_udp_port()
    with open(os.path.join(workdir, "ports"), "w") as f:
        f.write("%d %d" % (guest, host))
    return ["-device", "virtio-rng-device",
            "-drive", "file=%s,format=raw,if=none,id=d0,cache=writeback"
            % image(workdir, size=32 * MiB, seed=11),
            "-device", "virtio-blk-device,drive=d0",
            "-device", "virtio-serial-device,id=vser",
            "-chardev", "socket,id=echo,path=%s/echo.sock,server=on,wait=off" % workdir,
            "-device", "virtserialport,bus=vser.0,chardev=echo,name=org.vio.echo",
            "-netdev", "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=%d,"
            "remote.type=inet,remote.host=127.0.0.1,remote.port=%d" % (guest, host),
            "-device", "virtio-net-device,netdev=n0"]


def blk_ranges(q):
    path = os.path.join(q.workdir, "disk.img")
    for off, length in SHA_RANGES:
        out = q.shell("blk sha256 blk0 %d %d" % (off, length), timeout=120)
        m = re.search(r"length \d+: ([0-9a-f]{64})", out)
        assert m, "no digest in %r" % out
        want = host_sha256(path, off, length)
        assert m.group(1) == want, "range %d+%d: kernel %s, host %s" % (
            off, length, m.group(1), want)


def net_echo(q):
    guest_port, host_port = map(int, open(os.path.join(q.workdir, "ports")).read().split())
    m = re.search(r"mac=([0-9a-f:]{17})", q.shell("net info net0"))
    assert m, "no MAC from 'net info net0'"
    guest_mac, host_mac = mac_bytes(m.group(1)), bytes([0x02, 0, 0, 0, 0, 1])
    q.shell("net echo net0 on")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", host_port))
    dest, rnd = ("127.0.0.1", guest_port), random.Random(5)
    try:
        try:
            echo_frames(sock, dest, guest_mac, host_mac, NET_FRAMES, rnd, timeout=120)
        except AssertionError:
            try:
                q.shell("virtio net0", timeout=10)  # the queues' state, into the log
            except Timeout:
                pass
            raise
        _, errors_before = stats(q)
        bad = [guest_mac + host_mac[:2], guest_mac + host_mac + b"\x88\xb5" + bytes(MTU + 200),
               b"\xff" * 5, bytes(13)]  # runt, oversized, garbage, one byte short of a header
        for frame in bad:
            sock.sendto(frame, dest)
        echo_frames(sock, dest, guest_mac, host_mac, 100, rnd, timeout=60)
        _, errors_after = stats(q)
        assert errors_after - errors_before == len(bad), \
            "rx errors went from %d to %d after %d bad frames" % (errors_before, errors_after,
                                                                 len(bad))
    finally:
        sock.close()
    q.qmp("set_link", name="n0", up=False)
    q.wait_for(r"net0: link down", timeout=30)
    q.qmp("set_link", name="n0", up=True)
    q.wait_for(r"net0: link up", timeout=30)


def interrupts(q, dev):
    """The interrupts a device took, from the shell's `virtio <dev>` (with one line per
    device, each queue shows the line's count)."""
    return max(int(n) for n in re.findall(r" irqs (\d+) ", q.shell("virtio " + dev)))


def peers_interact(poll):
    def interact(q):
        q.wait_for(r"console: port \d+ \(org\.vio\.echo\) echoes")
        q.wait_for(r"vio> ")
        blk_ranges(q)
        socat_echo(os.path.join(q.workdir, "echo.sock"), CONSOLE_BYTES, 1, 240)
        net_echo(q)
        for dev in ("rng0", "blk0", "cons0", "net0"):
            n = interrupts(q, dev)
            if poll:
                assert n == 0, "%s is polled but its queues took %d interrupts" % (dev, n)
            else:
                assert n > 0, "%s has irq=line but its queues took no interrupt" % dev
        q.send("poweroff\r")
    return interact


def peers(v2, poll, acpi):
    names = ["virtio-rng", "virtio-blk", "virtio-console", "virtio-net"]
    # With ACPI the kernel powers off through the sleep control register (QEMU exits 0);
    # without, it can only leave through isa-debug-exit.
    return Scenario(
        "microvm-%s-peers" % tag(v2, poll, acpi), machine=machine(acpi), mode="shell",
        cmdline="vio.irq=poll" if poll else "", setup=peers_setup, qemu_args=version_args(v2),
        interact=peers_interact(poll), timeout=600, expect_exit=0 if acpi else EXIT_PASS,
        expect_tap=False,
        expect_log=[device_line(n, v2, poll, acpi) for n in names] + discovered(acpi)
        + [r"^vio: power off$"])


# --- junk on the command line ---------------------------------------------------------------

# (entry, what the kernel must say about it). The DSDT has the entropy device in the last
# slot, 0xfeb02e00 on GSI 47; slot 0 at 0xfeb00000 is empty.
JUNK = [
    ("512@0xfeb02e00:47", r"the same device as the DSDT names, probed once"),
    ("512@0xfeb00000:24", r"mmio@0xfeb00000: no device there"),
    ("0x80@0xfeb00200:25", r"window smaller than the 0x100 bytes of registers"),
    ("4K@0x100000:5", r"window overlaps RAM at 0x100000-"),
    ("512@0xfeb00402:26", r"base not 32-bit aligned"),
    ("512@0xfeb00600", r"no ':<irq>' after the base"),
    ("512@0xfeb00600:99999999999", r"IRQ number out of range"),
    ("1G@0xfeb00600:27", r"window larger than 64 KiB"),
    ("512@0xfeb02d00:28", r"window overlaps the one at 0xfeb02e00 \(DSDT\)"),
    ("2x@0xfeb00600:27", r"no '@' after the size"),
]


def junk_logged(entry, says):
    if "no device there" in says:
        return r"^virtio-mmio: %s" % says
    return r"^virtio-mmio: virtio_mmio\.device=%s: %s" % (re.escape(entry), says)


# --- lines the kernel cannot lend ---------------------------------------------------------------

# Without ACPI, QEMU puts four entropy devices at these windows on GSIs 12 down to 9 and
# appends their entries after ours; ours come first and give each a line it must refuse:
# COM1's input, the timer's, the one a PC wires to the timer, and one no IOAPIC has (the one
# IOAPIC has 24). QEMU's own entries then overlap ours and are refused.
BAD_LINES = [("0xfeb00e00", 4, r"the kernel's own ISA device \(COM1\) is on that input"),
             ("0xfeb00c00", 0, r"the timer \(ISA IRQ 0\) arrives on that input"),
             ("0xfeb00a00", 2, r"a PC wires the 8259 PIC \(input 0\) or the timer \(input 2\) "
                               r"there"),
             ("0xfeb00800", 30, r"no IOAPIC has that input")]


def type_a_line(q):
    q.wait_for(r"READY FOR INPUT")
    q.send("hello-vio\r")


SCENARIOS = [selftests(v2, poll, acpi) for v2, poll, acpi in
             ((False, False, True), (False, True, False), (True, False, False),
              (True, True, True))]
SCENARIOS += [peers(v2, poll, acpi) for v2, poll, acpi in
              ((False, False, True), (False, True, False), (True, False, False),
               (True, True, True))]
SCENARIOS.append(Scenario(
    "microvm-cmdline-junk-refused", machine=machine(True),
    cmdline=" ".join("virtio_mmio.device=" + e for e, _ in JUNK),
    qemu_args=["-device", "virtio-rng-device"],
    expect_log=[junk_logged(e, s) for e, s in JUNK]
    + [device_line("virtio-rng", False, False, True),
       r"^ok \d+ - virtio-rng reads through the driver$"]))
SCENARIOS.append(Scenario(
    "microvm-cmdline-bad-lines-refused-polled", machine=machine(False),
    cmdline=" ".join("virtio_mmio.device=512@%s:%d" % (base, line) for base, line, _ in BAD_LINES)
    + " vio.expect_input=hello-vio",
    qemu_args=["-device", "virtio-rng-device"] * 4, interact=type_a_line, expect_exit=EXIT_PASS,
    expect_log=[r"^virtio-mmio: virtio_mmio\.device=512@%s:%d: GSI %d refused: %s; the device "
                r"is polled$" % (base, line, line, why) for base, line, why in BAD_LINES]
    + [r"^vio: virtio-rng mmio@%s mmio-legacy .* irq=poll$" % base for base, _, _ in BAD_LINES]
    + [r"^ok \d+ - serial line input$", r"^ok \d+ - virtio-rng reads through the driver$"]))
