"""
Net driver against a real QEMU backend: `-netdev dgram` carries each Ethernet frame as one
UDP datagram between QEMU and this script, so the host side is a plain socket. The kernel's
shell turns on the frame echo; 20,000 frames of random sizes go out and must all come back
byte-exact (MACs swapped); runt, oversized and garbage frames must be counted as errors and
dropped without stopping the echo; QMP set_link takes the link down and up.
"""
import random
import re
import socket
import time

from harness import Scenario, free_udp_port

FRAMES = 20000
MTU = 1500




def net_setup(workdir):
    guest, host = free_udp_port(), free_udp_port()
    with open("%s/ports" % workdir, "w") as f:
        f.write("%d %d" % (guest, host))
    return ["-device", "virtio-rng-pci",
            "-netdev", "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=%d,"
            "remote.type=inet,remote.host=127.0.0.1,remote.port=%d" % (guest, host),
            "-device", "virtio-net-pci,netdev=n0"]


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def echo_frames(sock, dest, guest_mac, host_mac, count, rnd, window=16, timeout=300):
    """Send `count` frames (at most `window` unanswered) and check every echo."""
    pending = {}
    sent = received = 0
    end = time.monotonic() + timeout
    sock.settimeout(0.5)
    while received < count:
        assert time.monotonic() < end, "echoed %d of %d frames" % (received, count)
        while sent < count and len(pending) < window:
            size = rnd.randint(60, MTU + 14)
            payload = sent.to_bytes(4, "big") + rnd.randbytes(size - 18)
            frame = guest_mac + host_mac + b"\x88\xb5" + payload
            pending[sent] = frame
            sock.sendto(frame, dest)
            sent += 1
        try:
            data = sock.recv(65536)
        except socket.timeout:
            # A frame lost in QEMU's queue (not by the guest) would stall the window:
            # resend what is outstanding; duplicates are ignored below.
            for frame in pending.values():
                sock.sendto(frame, dest)
            continue
        seq = int.from_bytes(data[14:18], "big")
        frame = pending.pop(seq, None)
        if frame is None:
            continue
        want = frame[6:12] + frame[0:6] + frame[12:]
        assert data == want, "frame %d came back different (%d vs %d bytes)" % (
            seq, len(data), len(want))
        received += 1


def stats(q):
    out = q.shell("net stats net0")
    m = re.search(r"rx (\d+) frames \d+ bytes, (\d+) drops, (\d+) errors", out)
    assert m, out
    return int(m.group(1)), int(m.group(3))


def net_interact(q):
    guest_port, host_port = map(int, open("%s/ports" % q.workdir).read().split())
    q.wait_for(r"vio> ")
    info = q.shell("net info net0")
    m = re.search(r"mac=([0-9a-f:]{17})", info)
    assert m, "no MAC in %r" % info
    guest_mac = mac_bytes(m.group(1))
    host_mac = bytes([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
    q.shell("net echo net0 on")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", host_port))
    dest = ("127.0.0.1", guest_port)
    rnd = random.Random(5)
    t0 = time.monotonic()
    echo_frames(sock, dest, guest_mac, host_mac, FRAMES, rnd)
    print("    %d frames echoed byte-exact in %.1f s" % (FRAMES, time.monotonic() - t0))

    _, errors_before = stats(q)
    bad = [guest_mac + host_mac[:2],                       # runt: 8 bytes
           guest_mac + host_mac + b"\x88\xb5" + bytes(MTU + 200),  # oversized
           b"\xff" * 5,                                     # garbage
           bytes(13)]                                       # one byte short of a header
    for frame in bad:
        sock.sendto(frame, dest)
    time.sleep(1)
    echo_frames(sock, dest, guest_mac, host_mac, 100, rnd)
    _, errors_after = stats(q)
    assert errors_after - errors_before == len(bad), \
        "rx_errors went from %d to %d after %d bad frames" % (errors_before, errors_after,
                                                              len(bad))
    sock.close()

    q.qmp("set_link", name="n0", up=False)
    q.wait_for(r"net0: link down", timeout=30)
    q.qmp("set_link", name="n0", up=True)
    q.wait_for(r"net0: link up", timeout=30)
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("net-frame-echo-dgram", mode="shell", setup=net_setup, interact=net_interact,
             expect_exit=0, timeout=600,
             expect_log=[r"^vio: virtio-net .* irq=msix$"]),
]
