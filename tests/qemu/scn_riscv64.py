"""
The riscv64 example kernel (examples/riscv64-virt) on QEMU `virt`: the same library, a second
kernel, a second architecture. One boot per transport and interrupt mode: virtio-mmio
version 2 and version 1 (-global virtio-mmio.force-legacy), and PCIe (modern virtio-pci
behind virt's ECAM host bridge, BARs assigned by the kernel), each with PLIC interrupts and
polled (-append poll). Each boot has an entropy device, a disk, a console and a NIC, and
checks:

  rng        4 KiB of entropy read (the kernel checks it is not one repeated byte)
  blk        the SHA-256 the kernel prints for 3 MiB of the disk equals dd | sha256sum's
  console    64 KiB of random bytes sent into the port org.vio.echo come back byte-exact
  net        the kernel's hello frame arrives over -netdev dgram; 32 frames of random sizes
             come back byte-exact with MACs swapped, then a stop frame ends the echo
  interrupts every device ran irq=intx (PCI) or irq=line:<n> (MMIO) and took PLIC interrupts, or irq=poll and took none

The kernel is built here (make -C examples/riscv64-virt) when it is missing or stale.
"""
import os
import random
import re
import socket
import subprocess
import threading
import time

import harness
from harness import Scenario
from scn_blk import host_sha256
from harness import free_udp_port
from scn_net import echo_frames, mac_bytes

EXAMPLE = os.path.join(harness.ROOT, "examples", "riscv64-virt")
OUT = os.path.join(harness.BUILD, "riscv64-virt")
KERNEL = os.path.join(OUT, "kernel.elf")
DISK_BYTES = 8 * 1024 * 1024
CONSOLE_BYTES = 65536  # main.c's CONSOLE_BYTES
NET_FRAMES = 32        # main.c's NET_FRAMES: it wants more than this many, then the stop frame
NET_STOP = b"\xff\xff\xff\xffstop"

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
                raise RuntimeError("make -C examples/riscv64-virt failed:\n" +
                                   (p.stdout + p.stderr)[-2000:])
            _built.append(True)


def qemu_argv(legacy, poll):
    def argv(workdir):
        build()
        return (["qemu-system-riscv64", "-machine", "virt", "-accel", "tcg", "-m", "256M",
                 "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
                 "-nodefaults", "-bios", "default", "-kernel", KERNEL,
                 "-global", "virtio-mmio.force-legacy=%s" % ("true" if legacy else "false")]
                + (["-append", "poll"] if poll else []))
    return argv


def devices(kind):
    """setup(workdir) for one of each device, kind 'device' (virtio-mmio) or 'pci'."""
    def setup(workdir):
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
    return setup


def console_echo(path, data, timeout):
    """Send data into the port's socket and read it all back."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    threading.Thread(target=s.sendall, args=(data,), daemon=True).start()
    got = bytearray()
    s.settimeout(1)
    end = time.monotonic() + timeout
    while len(got) < len(data) and time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        got += chunk
    s.close()
    assert len(got) == len(data), "console echoed %d of %d bytes" % (len(got), len(data))
    assert bytes(got) == data, "console echo differs at byte %d" % next(
        i for i in range(len(data)) if got[i] != data[i])


def net_exchange(q, sock, dest, hello_text):
    m = q.wait_for(r"^net: mac=([0-9a-f:]{17}) ready$", timeout=60)
    guest_mac = mac_bytes(m.group(1))
    host_mac = bytes([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
    sock.settimeout(30)
    while True:  # the hello frame: broadcast, from the guest's MAC
        hello = sock.recv(65536)
        if hello[6:12] == guest_mac and hello[12:14] == b"\x88\xb5":
            break
    assert hello[:6] == b"\xff" * 6, "hello frame sent to %s" % hello[:6].hex(":")
    assert hello[14:].startswith(hello_text), "hello frame says %r" % hello[14:40]
    echo_frames(sock, dest, guest_mac, host_mac, NET_FRAMES, random.Random(7), timeout=60)
    stop = guest_mac + host_mac + b"\x88\xb5" + NET_STOP + bytes(40)
    sock.settimeout(0.5)
    end = time.monotonic() + 30
    while True:
        assert time.monotonic() < end, "the stop frame never came back"
        sock.sendto(stop, dest)
        try:
            if sock.recv(65536)[14:22] == NET_STOP:
                break
        except socket.timeout:
            pass


def exchange(q, host_socks, hello_text):
    """The console echo, then the frame echo, as the example kernels run them (the aarch64
    one too): host_socks holds the UDP socket setup bound for this boot."""
    sock, dest = host_socks.pop(q.workdir)
    try:
        q.wait_for(r"^console: port \d+ \(org\.vio\.echo\) echoes %d bytes$" % CONSOLE_BYTES,
                   timeout=60)
        console_echo(os.path.join(q.workdir, "echo.sock"),
                     random.Random(3).randbytes(CONSOLE_BYTES), 60)
        net_exchange(q, sock, dest, hello_text)
    finally:
        sock.close()


def interact(q):
    exchange(q, _host_socks, b"vio riscv64-virt hello")


def check(log, workdir):
    m = re.search(r"^blk: sha256 ([0-9a-f]{64}) offset (\d+) length (\d+)", log, re.M)
    if not m:
        return "no blk digest in the log"
    want = host_sha256(os.path.join(workdir, "disk.img"), int(m.group(2)), int(m.group(3)))
    if m.group(1) != want:
        return "blk digest %s, the host's %s" % (m.group(1), want)
    return None


def scenario(transport, poll):
    """transport: 'mmio' (version 2), 'mmio-legacy' (version 1) or 'pci-modern'."""
    # An MMIO device interrupts on a platform line ("line:<n>"), a PCI one on INTx.
    mode = "poll" if poll else ("intx" if transport == "pci-modern" else "line")
    where = r"0000:00:[0-9a-f]{2}\.0" if transport == "pci-modern" else r"mmio@0x[0-9a-f]+"
    found = [r"^vio: virtio-%s %s %s features=0x[0-9a-f]+ queues=\d+ irq=%s(:\d+)?$"
             % (name, where, transport, mode) for name in ("rng", "blk", "console", "net")]
    tests = [r"^ok \d+ - %s$" % t for t in ("rng", "blk sha256", "console echo",
                                              "net frame exchange", "interrupts")]
    name = {"mmio": "mmio2", "mmio-legacy": "mmio1", "pci-modern": "pci"}[transport]
    setup = devices("pci" if transport == "pci-modern" else "device")
    return Scenario("riscv64-%s-%s" % (name, mode),
                    argv=qemu_argv(transport == "mmio-legacy", poll), setup=setup,
                    interact=interact, check=check, timeout=180, expect_exit=0,
                    expect_tap=True, expect_log=found + tests)


SCENARIOS = [scenario(transport, poll) for transport in ("mmio", "mmio-legacy", "pci-modern")
             for poll in (False, True)]
