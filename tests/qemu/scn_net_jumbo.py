"""
virtio-net's MTU and mergeable receive buffers proven end to end through a tap. QEMU offers
VIRTIO_NET_F_MTU with `host_mtu=9000`, the tap in the namespace gets MTU 9000, and the kernel
posts 1 KiB RX buffers (`vio.net.rxbuf=1024`), so a jumbo frame really spans ten of them
(MRG_RXBUF, num_buffers > 1). A raw AF_PACKET socket sends frames of 1500 to 9014 bytes; the
kernel's echo must return every one byte-exact (MACs swapped), and `net stats net0` must count
the frames that spanned buffers (rx merged) and no errors.
"""
import os
import random
import re
import socket
import sys
import time

from harness import Scenario
from scn_lwip import in_ns

MTU = 9000
FRAMES = 300
RXBUF = 1024
HOST_MAC = bytes([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
PACKET_OUTGOING = 4


def peer(ifname, guest_mac_text, count, window=8, timeout=300):
    """Inside the namespace: send `count` frames of 1500..MTU+14 bytes, check every echo."""
    guest_mac = bytes(int(x, 16) for x in guest_mac_text.split(":"))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.settimeout(0.5)
    rnd = random.Random(9)
    pending = {}
    sent = received = biggest = 0
    end = time.monotonic() + timeout
    while received < count:
        assert time.monotonic() < end, "echoed %d of %d frames" % (received, count)
        while sent < count and len(pending) < window:
            size = MTU + 14 if sent % 10 == 0 else rnd.randint(1500, MTU + 14)
            frame = (guest_mac + HOST_MAC + b"\x88\xb5" + sent.to_bytes(4, "big")
                     + rnd.randbytes(size - 18))
            pending[sent] = frame
            s.send(frame)
            sent += 1
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            for frame in pending.values():
                s.send(frame)
            continue
        if addr[2] == PACKET_OUTGOING or data[:6] != HOST_MAC or data[12:14] != b"\x88\xb5":
            continue
        frame = pending.pop(int.from_bytes(data[14:18], "big"), None)
        if frame is None:
            continue
        want = frame[6:12] + frame[0:6] + frame[12:]
        assert data == want, "a %d-byte frame came back different (%d bytes)" % (
            len(want), len(data))
        received += 1
        biggest = max(biggest, len(data))
    print("%d frames of 1500..%d bytes echoed byte-exact" % (count, biggest))


def jumbo_interact(q):
    q.wait_for(r"vio> ")
    in_ns(q, ["ip", "link", "set", "tap0", "mtu", str(MTU)])
    info = q.shell("net info net0")
    m = re.search(r"mac=([0-9a-f:]{17}) mtu=(\d+)", info)
    assert m and m.group(2) == str(MTU), "MTU from host_mtu not taken: %r" % info
    q.shell("net echo net0 on")
    t0 = time.monotonic()
    line = in_ns(q, [sys.executable, os.path.abspath(__file__), "peer", "tap0", m.group(1),
                     str(FRAMES)], timeout=400)
    print("    %s in %.1f s" % (line.strip(), time.monotonic() - t0))
    out = q.shell("net stats net0")
    s = re.search(r"rx (\d+) frames \d+ bytes, (\d+) drops, (\d+) errors.*rx merged (\d+)", out)
    assert s, out
    frames, drops, errors, merged = map(int, s.groups())
    assert errors == 0 and drops == 0, "rx drops/errors: %r" % out
    assert merged >= FRAMES, "only %d of %d jumbo frames spanned RX buffers: %r" % (
        merged, FRAMES, out)
    print("    rx: %d frames, %d of them over several %d-byte buffers" % (frames, merged, RXBUF))
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("net-jumbo-mrg-tap-netns", mode="shell", expect_exit=0, timeout=600,
             netns="192.168.80.1/24",
             cmdline="vio.net.rxbuf=%d vio.ip=192.168.80.2/24" % RXBUF,
             qemu_args=["-device", "virtio-rng-pci",
                        "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                        "-device", "virtio-net-pci,netdev=n0,host_mtu=%d" % MTU],
             interact=jumbo_interact),
]

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "peer":
        peer(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("usage: scn_net_jumbo.py peer <ifname> <guest-mac> <count>")
