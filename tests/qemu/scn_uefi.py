"""
UEFI rows of the transport matrix: the same GRUB ISO the BIOS scenarios boot, started by
Debian's OVMF on q35 instead of SeaBIOS. OVMF assigns PCI resources its own way: it puts
every 64-bit prefetchable BAR (the virtio-pci modern capabilities live in one) far above
RAM, at 0xe000000000 with Debian 12's build, and GRUB hands the kernel the EFI memory map
after ExitBootServices. Each row drives every device from the shell against a real peer:
rng output, a console port echoing through socat, blk SHA-256 ranges against
`dd | sha256sum` on the image, net frames echoed byte-exact over `-netdev dgram`, and the
balloon inflated and deflated through QMP; `lspci` must show a virtio BAR above 4 GiB.

OVMF under TCG takes 5-20 s to reach GRUB on these shared machines (SeaBIOS: under 1 s),
hence the longer timeouts.
"""
import os
import random
import re
import shutil
import socket

import scn_balloon
import scn_blk
import scn_net
import scn_rng_console
from harness import Scenario, grub_iso

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
MiB = 1024 * 1024
RAM_MB = 512
TIMEOUT = 420
SHA_RANGES = [(0, 512), (4096, 65536), (3 * MiB + 512, 5 * MiB - 1024)]


def uefi_argv(mem, cmdline):
    """argv hook: OVMF's code read-only, a private copy of its variable store, the ISO."""
    def argv(workdir):
        vars_copy = os.path.join(workdir, "ovmf-vars.fd")
        shutil.copyfile(OVMF_VARS, vars_copy)
        return ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-smp", "2",
                "-m", mem, "-display", "none", "-monitor", "none", "-serial", "stdio",
                "-no-reboot", "-nodefaults", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-qmp", "unix:%s,server=on,wait=off" % os.path.join(workdir, "qmp.sock"),
                "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMF_CODE,
                "-drive", "if=pflash,format=raw,unit=1,file=" + vars_copy,
                "-cdrom", grub_iso(cmdline), "-boot", "d"]
    return argv


def every_device(opt):
    """setup hook: rng, console (an echo port), blk (a random image), net (dgram), balloon;
    opt goes to every device but the balloon, which has no MSI-X in QEMU 7.2."""
    def setup(workdir):
        scn_blk.image(workdir, size=8 * MiB, seed=17)
        net = scn_net.net_setup(workdir)[2:]  # without its virtio-rng
        net[-1] += opt
        return (["-device", "virtio-rng-pci" + opt,
                 "-device", "virtio-serial-pci,id=vser" + opt,
                 "-chardev", "socket,id=echo,path=%s/echo.sock,server=on,wait=off" % workdir,
                 "-device", "virtserialport,bus=vser.0,chardev=echo,name=org.vio.echo",
                 "-drive", "file=disk.img,format=raw,if=none,id=d0,cache=writeback",
                 "-device", "virtio-blk-pci,drive=d0" + opt,
                 "-device", "virtio-balloon-pci,id=balloon0"] + net)
    return setup


def bars_above_4g(lspci):
    """The 64-bit memory BARs of virtio functions (vendor 1af4) at or above 4 GiB."""
    found, virtio = [], False
    for line in lspci.splitlines():
        m = re.match(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d \S+ ([0-9a-f]{4}):", line)
        if m:
            virtio = m.group(1) == "1af4"
            continue
        b = re.match(r"^\s+BAR\d mem (0x[0-9a-f]+) size", line)
        if virtio and b and int(b.group(1), 16) >= 1 << 32:
            found.append(int(b.group(1), 16))
    return found


def check_rng(q):
    out = q.shell("rng 64")
    rows = re.findall(r"^000000[0-3]0 ((?: [0-9a-f]{2}){16})", out, re.M)
    assert len(rows) == 4, "rng 64 printed %r" % out
    assert len(set(rows)) == 4, "64 bytes of entropy repeat a 16-byte row: %r" % rows


def check_console(q):
    q.wait_for(r"console: port \d+ \(org\.vio\.echo\) echoes")
    scn_rng_console.socat_echo(os.path.join(q.workdir, "echo.sock"), 256 * 1024, 3, 120)
    # The kernel reports socat's hang-up on its own: let it, before typing the next command.
    q.wait_for(r"console: port \d+ closed by the host", timeout=60)


def check_blk(q):
    path = os.path.join(q.workdir, "disk.img")
    for off, length in SHA_RANGES:
        out = q.shell("blk sha256 blk0 %d %d" % (off, length), timeout=120)
        m = re.search(r"length \d+: ([0-9a-f]{64})", out)
        assert m, "no digest in %r" % out
        want = scn_blk.host_sha256(path, off, length)
        assert m.group(1) == want, "range %d+%d: kernel %s, host %s" % (
            off, length, m.group(1), want)


def check_net(q):
    guest_port, host_port = map(int, open("%s/ports" % q.workdir).read().split())
    info = q.shell("net info net0")
    m = re.search(r"mac=([0-9a-f:]{17})", info)
    assert m, "no MAC in %r" % info
    q.shell("net echo net0 on")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", host_port))
    try:
        scn_net.echo_frames(sock, ("127.0.0.1", guest_port), scn_net.mac_bytes(m.group(1)),
                            bytes([2, 0, 0, 0, 0, 1]), 500, random.Random(9), timeout=120)
    finally:
        sock.close()
    q.shell("net echo net0 off")


def check_balloon(q):
    free0, _, held = scn_balloon.mem(q)
    assert held == 0, "the balloon holds %d pages at boot" % held
    q.qmp("balloon", value=(RAM_MB - 64) * MiB)
    scn_balloon.wait_actual(q, (RAM_MB - 64) * MiB)
    _, _, held = scn_balloon.mem(q)
    assert held == 64 * MiB // 4096, "balloon holds %d pages, want %d" % (held, 64 * MiB // 4096)
    q.qmp("balloon", value=RAM_MB * MiB)
    scn_balloon.wait_actual(q, RAM_MB * MiB)
    free, _, held = scn_balloon.mem(q)
    assert held == 0 and free == free0, "after deflate: %d free (boot %d), %d held" % (
        free, free0, held)


def every_device_interact(q):
    q.wait_for(r"vio> ")
    high = bars_above_4g(q.shell("lspci"))
    assert high, "no virtio BAR above 4 GiB in lspci: OVMF placed them all low"
    print("    virtio BARs above 4 GiB: %s" % ", ".join("%#x" % a for a in high))
    for check in (check_rng, check_console, check_blk, check_net, check_balloon):
        check(q)
    q.send("poweroff\r")


def device_lines(irq):
    """Every device came up modern with this interrupt mode. In the MSI-X row the console
    shares vectors (virtio-serial has 2 by default, fewer than its queues) and the balloon
    has INTx only."""
    lines = []
    for name in ("virtio-rng", "virtio-blk", "virtio-net", "virtio-console", "virtio-balloon"):
        mode = {"virtio-console": "msix-shared", "virtio-balloon": "intx"}.get(name, irq) \
            if irq == "msix" else irq
        lines.append(r"^vio: %s 0000:00:[0-9a-f]{2}\.0 pci-modern features=0x1[0-9a-f]{8} "
                     r"queues=\d+ irq=%s$" % (name, mode))
    return lines


UEFI_BOOT = [r"booted by GRUB .*\(multiboot2, UEFI\)$",
             r"^boot: UEFI firmware, boot services exited, EFI system table at 0x[0-9a-f]+$",
             r"^boot: \d+ memory region\(s\) from the EFI memory map$",
             r"^acpi: MCFG: ECAM 0x[0-9a-f]+"]


def row(name, irq, opt="", cmdline=""):
    return Scenario(name, mode="shell", argv=uefi_argv("%dM" % RAM_MB,
                                                       ("vio.mode=shell " + cmdline).strip()),
                    setup=every_device(opt), interact=every_device_interact,
                    expect_exit=0, timeout=TIMEOUT, expect_log=UEFI_BOOT + device_lines(irq))


SCENARIOS = [
    row("uefi-q35-msix-every-device", "msix"),
    row("uefi-q35-intx-every-device", "intx", opt=",vectors=0"),
    row("uefi-q35-poll-every-device", "poll", cmdline="vio.irq=poll"),
    # RAM above 4 GiB in the EFI map, and the self-tests, which include a virtio device
    # that came up with its BAR above 4 GiB.
    Scenario("uefi-q35-5g-ram-self-tests",
             argv=uefi_argv("5G", "vio.mode=test vio.expect_bar_above_4g=1"),
             qemu_args=["-device", "virtio-rng-pci"], timeout=TIMEOUT,
             expect_log=UEFI_BOOT + [r"highest RAM 0x1[0-9a-f]{8}",
                                     r"^ok \d+ - virtio BAR above 4 GiB in use$"]),
]
