"""
virtio-net multiqueue (VIRTIO_NET_F_MQ) against QEMU's multiqueue tap: `-netdev tap,queues=4`
and `-device virtio-net-pci,mq=on,vectors=10` (a vector per queue: 4 pairs, the controlq and
config changes). The kernel opens the NIC with `vio.net.pairs=4` (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET)
and echoes frames, each on the TX queue of its flow's hash. From inside the namespace a raw
AF_PACKET socket on the tap sends IPv4/UDP frames of 64 flows; the host's tun driver steers each
flow to one of its four queues, so to one of the guest's RX queues. Every frame must come back
byte-exact (MACs swapped), and `virtio net0` must show completions on all eight data queues:
every pair carried traffic both ways.

QEMU creates the tap itself (the harness's tap0 is not multiqueue), and the scenario brings it
up inside the namespace. QEMU 7.2 shows three queues until MQ is negotiated, nine after: the
PCI transport reads num_queues again for each queue it sets up.
"""
import os
import random
import re
import socket
import struct
import sys
import time

from harness import Scenario
from scn_lwip import in_ns

PAIRS = 4
FRAMES = 4000
FLOWS = 64
TAP = "tapmq"
HOST_MAC = bytes([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
PACKET_OUTGOING = 4


def udp_frame(guest_mac, flow, seq, rnd):
    """An IPv4/UDP frame of flow `flow` (its source port) carrying sequence number `seq`."""
    payload = seq.to_bytes(4, "big") + rnd.randbytes(rnd.randint(18, 1000))
    udp = struct.pack("!HHHH", 10000 + flow, 7, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xffff, 0, 64, 17, 0,
                     bytes([192, 168, 78, 1]), bytes([192, 168, 78, 2]))
    return guest_mac + HOST_MAC + b"\x08\x00" + ip + udp


def peer(ifname, guest_mac_text, count, window=32, timeout=300):
    """Inside the namespace: send `count` frames over FLOWS flows, check every echo."""
    guest_mac = bytes(int(x, 16) for x in guest_mac_text.split(":"))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.settimeout(0.5)
    rnd = random.Random(13)
    pending = {}
    sent = received = resent = 0
    end = time.monotonic() + timeout
    while received < count:
        assert time.monotonic() < end, "echoed %d of %d frames" % (received, count)
        while sent < count and len(pending) < window:
            frame = udp_frame(guest_mac, sent % FLOWS, sent, rnd)
            pending[sent] = frame
            s.send(frame)
            sent += 1
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            for frame in pending.values():
                s.send(frame)
                resent += 1
            continue
        if addr[2] == PACKET_OUTGOING or data[:6] != HOST_MAC or len(data) < 46:
            continue
        seq = int.from_bytes(data[42:46], "big")
        frame = pending.pop(seq, None)
        if frame is None:
            continue
        want = frame[6:12] + frame[0:6] + frame[12:]
        assert data == want, "frame %d came back different (%d vs %d bytes)" % (
            seq, len(data), len(want))
        received += 1
    print("%d frames over %d flows echoed byte-exact, %d resent" % (count, FLOWS, resent))


def queue_completions(q):
    """{queue index: completions} from `virtio net0`."""
    out = q.shell("virtio net0")
    found = {int(m.group(1)): int(m.group(2))
             for m in re.finditer(r"vq(\d+): size .* completions (\d+)", out)}
    assert found, "no queues in %r" % out
    return out, found


def mq_interact(q):
    q.wait_for(r"vio> ")
    in_ns(q, ["ip", "link", "set", TAP, "up"])
    info = q.shell("net info net0")
    m = re.search(r"mac=([0-9a-f:]{17})", info)
    assert m, "no MAC in %r" % info
    guest_mac = m.group(1)
    out, _ = queue_completions(q)
    assert re.search(r"features .* MQ\b", out), "MQ not negotiated: %r" % out
    q.shell("net echo net0 on")
    t0 = time.monotonic()
    line = in_ns(q, [sys.executable, os.path.abspath(__file__), "peer", TAP, guest_mac,
                     str(FRAMES)], timeout=400)
    print("    %s in %.1f s" % (line.strip(), time.monotonic() - t0))
    out, done = queue_completions(q)
    for vq in range(2 * PAIRS):
        kind = "RX" if vq % 2 == 0 else "TX"
        assert done.get(vq, 0) > 0, "%s queue of pair %d carried nothing: %r" % (
            kind, vq // 2 + 1, out)
    assert 2 * PAIRS in done, "no controlq at %d: %r" % (2 * PAIRS, out)
    print("    completions per queue: " + ", ".join(
        "vq%d %d" % (vq, done[vq]) for vq in range(2 * PAIRS)))
    stats = q.shell("net stats net0")
    m = re.search(r"(\d+) errors;", stats)
    assert m and m.group(1) == "0", "rx errors: %r" % stats
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("net-mq-tap-netns", mode="shell", expect_exit=0, timeout=600,
             netns="192.168.78.1/24",
             cmdline="vio.net.pairs=%d vio.ip=192.168.78.2/24" % PAIRS,
             qemu_args=["-device", "virtio-rng-pci",
                        "-netdev", "tap,id=n0,ifname=%s,queues=%d,script=no,downscript=no"
                        % (TAP, PAIRS),
                        "-device", "virtio-net-pci,netdev=n0,mq=on,vectors=%d"
                        % (2 * PAIRS + 2)],
             interact=mq_interact,
             expect_log=[r"^vio: virtio-net .* queues=9 irq=msix$"]),
]

if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "peer":
        peer(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("usage: scn_net_mq.py peer <ifname> <guest-mac> <count>")
