"""
virtio-net receive-side scaling and hash report (VIRTIO_NET_F_RSS, VIRTIO_NET_F_HASH_REPORT)
against QEMU's multiqueue tap: `-netdev tap,queues=4` and
`-device virtio-net-pci,mq=on,rss=on,hash=on,vectors=10`. The kernel opens the NIC with
`vio.net.pairs=4 vio.net.rss=on`, which configures the device with Microsoft's example RSS
key, the IPv4/IPv6 TCP/UDP hash types and an indirection table whose entry i is pair i % 4
(src/kernel/glue_net.c), and `net echo net0 report` sends every frame back with, in its last
8 bytes, the pair it came in on, the hash report and the hash value.

From inside the namespace a raw AF_PACKET socket on the tap sends IPv4 and IPv6 TCP and UDP
frames of FLOWS distinct 4-tuples, and frames of no IP type. For each, the Toeplitz hash below
(the specification's, 5.1.6.4.3, checked first against Microsoft's published test vectors)
predicts the hash, and the indirection table the pair; every echo must carry exactly that
hash, the report of its type (TCPv4, UDPv4, TCPv6, UDPv6; NONE for the others), and have come
in on that pair (the unclassified pair, 0, for the others), the rest of the frame byte-exact.

Variants: hash report alone (rss=off, hash=on: the tap steers, the hashes are still checked;
on packed rings, where the 20-byte header travels as on split ones);
RSS alone (rss=on, hash=off: the pairs are checked, no hash comes with the frames). QEMU 7.2
steers in software whenever it must report hashes, and with RSS alone tries its eBPF program
on the tap first (TUNSETSTEERINGEBPF), falling back to software with the warning "Can't load
eBPF RSS"; the RSS-alone variant says which it was. On the machines this was written on,
Debian's QEMU 7.2 fails to load it ("libbpf: failed to initialize skeleton BPF object
'rss_bpf': -95"), so all three variants check QEMU's software RSS.
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

FLOWS = 64
PER_FLOW = 3
OTHER = 8  # frames of no IP type: unclassified
HOST_MAC = bytes([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
HOST_IP = bytes([192, 168, 79, 1])
GUEST_IP = bytes([192, 168, 79, 2])
HOST_IP6 = socket.inet_pton(socket.AF_INET6, "fd00:79::1")
GUEST_IP6 = socket.inet_pton(socket.AF_INET6, "fd00:79::2")
PACKET_OUTGOING = 4
# src/kernel/glue_net.c's key: the example key of Microsoft's RSS specification.
KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c"
                    "6a42b73bbeac01fa")
REPORT_NONE, REPORT_TCPV4, REPORT_UDPV4, REPORT_TCPV6, REPORT_UDPV6 = 0, 2, 3, 5, 6
REPORT_NAMES = {0: "other", 2: "TCPv4", 3: "UDPv4", 5: "TCPv6", 6: "UDPv6"}


def toeplitz(key, data):
    """The Toeplitz hash (virtio 1.2 5.1.6.4.3): for each set bit of the input, from its most
    significant, XOR in the 32 bits of the key starting at that bit's position."""
    k = int.from_bytes(key, "big")
    bits = 8 * len(key)
    h = 0
    for i, byte in enumerate(data):
        for b in range(8):
            if byte & (0x80 >> b):
                h ^= (k >> (bits - 32 - (8 * i + b))) & 0xffffffff
    return h


def check_toeplitz():
    """Microsoft's "Verifying the RSS Hash Calculation" vectors (IPv4, then with TCP ports)."""
    vectors = [("66.9.149.187", 2794, "161.142.100.80", 1766, 0x323e8fc2, 0x51ccc178),
               ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xd718262a, 0xc626b0ea),
               ("24.19.198.95", 12898, "12.22.207.184", 38024, 0xd2d0a5de, 0x5c2b394a)]
    for src, sport, dst, dport, ip_hash, tcp_hash in vectors:
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
        assert toeplitz(KEY, addrs) == ip_hash, "Toeplitz wrong for %s" % src
        assert toeplitz(KEY, addrs + struct.pack("!HH", sport, dport)) == tcp_hash


def csum(data):
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip_frame(guest_mac, v6, proto, sport, dport, seq, rnd):
    """An IPv4 or IPv6 (v6) TCP (6) or UDP (17) frame, host to guest, carrying `seq`; the
    Toeplitz hash of its addresses and ports (5.1.6.4.3.1, .3.2: source first)."""
    payload = seq.to_bytes(4, "big") + rnd.randbytes(rnd.randint(12, 400))
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x18, 65535, 0, 0)
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    if v6:
        src, dst = HOST_IP6, GUEST_IP6
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(l4) + len(payload), proto, 64, src, dst)
        ethertype = b"\x86\xdd"
    else:
        src, dst = HOST_IP, GUEST_IP
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4) + len(payload), seq & 0xffff,
                         0, 64, proto, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        ethertype = b"\x08\x00"
    frame = guest_mac + HOST_MAC + ethertype + ip + l4 + payload
    return frame, toeplitz(KEY, src + dst + struct.pack("!HH", sport, dport))


def other_frame(guest_mac, seq, rnd):
    """A frame of the IEEE local experimental EtherType: no hash type applies."""
    return guest_mac + HOST_MAC + b"\x88\xb5" + seq.to_bytes(4, "big") + rnd.randbytes(60)


def seq_of(frame):
    if frame[12:14] == b"\x08\x00":
        l4, proto = 14 + 20, frame[23]
    elif frame[12:14] == b"\x86\xdd":
        l4, proto = 14 + 40, frame[20]
    else:
        return int.from_bytes(frame[14:18], "big")
    l4 += 20 if proto == 6 else 8
    return int.from_bytes(frame[l4:l4 + 4], "big")


def frames(guest_mac):
    """Every frame to send, with what its echo must report: [(frame, report, hash)]."""
    rnd = random.Random(79)
    out = []
    seq = 0
    for flow in range(FLOWS):
        v6, proto = flow % 4 >= 2, 6 if flow % 2 == 0 else 17
        report = {(False, 6): REPORT_TCPV4, (False, 17): REPORT_UDPV4,
                  (True, 6): REPORT_TCPV6, (True, 17): REPORT_UDPV6}[(v6, proto)]
        sport, dport = 20000 + rnd.randrange(40000), 1 + rnd.randrange(60000)
        for _ in range(PER_FLOW):
            frame, h = ip_frame(guest_mac, v6, proto, sport, dport, seq, rnd)
            out.append((frame, report, h))
            seq += 1
    for _ in range(OTHER):
        out.append((other_frame(guest_mac, seq, rnd), REPORT_NONE, 0))
        seq += 1
    return out


def peer(ifname, guest_mac_text, pairs, table_len, check_hash, check_pair, timeout=300):
    """Inside the namespace: send every frame, check every echo; print per-pair counts."""
    check_toeplitz()
    guest_mac = bytes(int(x, 16) for x in guest_mac_text.split(":"))
    todo = frames(guest_mac)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.settimeout(0.5)
    pending = {}
    per_pair = [0] * pairs
    sent = received = resent = 0
    end = time.monotonic() + timeout
    while received < len(todo):
        assert time.monotonic() < end, "echoed %d of %d frames" % (received, len(todo))
        while sent < len(todo) and len(pending) < 16:
            pending[seq_of(todo[sent][0])] = todo[sent]
            s.send(todo[sent][0])
            sent += 1
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            for frame, _, _ in pending.values():
                s.send(frame)
                resent += 1
            continue
        if addr[2] == PACKET_OUTGOING or data[:6] != HOST_MAC or len(data) < 26:
            continue
        item = pending.pop(seq_of(data[6:12] + data[0:6] + data[12:]), None)
        if item is None:
            continue
        frame, report, h = item
        n = len(frame)
        want = frame[6:12] + frame[0:6] + frame[12:n - 8]
        assert len(data) == n and data[:n - 8] == want, "frame %d came back different" % (
            seq_of(frame))
        pair, got_report, got_hash = struct.unpack("!HHI", data[n - 8:])
        what = "frame %d (%s)" % (seq_of(frame), REPORT_NAMES[report])
        if check_hash:
            assert got_report == report, "%s: hash report %d, want %d" % (
                what, got_report, report)
            assert got_hash == h, "%s: hash 0x%08x, Toeplitz says 0x%08x" % (
                what, got_hash, h)
        else:
            assert got_report == REPORT_NONE and got_hash == 0, "%s: a hash without " \
                "HASH_REPORT" % what
        if check_pair:
            want_pair = (h & (table_len - 1)) % pairs if report != REPORT_NONE else 0
            assert pair == want_pair, "%s: on pair %d, the table says %d (hash 0x%08x)" % (
                what, pair, want_pair, h)
        assert pair < pairs
        per_pair[pair] += 1
        received += 1
    print("%d frames (%d IPv4 and IPv6 TCP/UDP flows, %d unclassified) echoed, %d resent; "
          "per pair %s" % (received, FLOWS, OTHER, resent, per_pair))


def rss_interact(pairs, check_hash, check_pair, rss, hash_, packed):
    def interact(q):
        m = q.wait_for(r"net0: rss types 0x([0-9a-f]+) key 40 table (\d+) over (\d+) pair")
        table_len = int(m.group(2))
        assert int(m.group(3)) == pairs, "RSS over %s pairs, want %d" % (m.group(3), pairs)
        assert (table_len > 0) == rss, "table %d with rss=%s" % (table_len, rss)
        q.wait_for(r"vio> ")
        in_ns(q, ["ip", "link", "set", "taprss", "up"])
        out = q.shell("virtio net0")
        assert "ring %s" % ("packed" if packed else "split") in out, out
        for name, on in (("RSS", rss), ("HASH_REPORT", hash_)):
            assert bool(re.search(r"features 0x[0-9a-f]+:.* %s\b" % name, out)) == on, \
                "%s %snegotiated: %r" % (name, "not " if on else "", out)
        info = q.shell("net info net0")
        guest_mac = re.search(r"mac=([0-9a-f:]{17})", info).group(1)
        assert re.search(r"hdr=%d" % (20 if hash_ else 12), info), info
        q.shell("net echo net0 report")
        line = in_ns(q, [sys.executable, os.path.abspath(__file__), "peer", "taprss",
                         guest_mac, str(pairs), str(max(table_len, 1)), str(int(check_hash)),
                         str(int(check_pair))], timeout=400)
        print("    " + line.strip())
        out = q.shell("virtio net0")
        counts = [int(c) for c in re.findall(r"pair \d+: rx (\d+) frames", out)]
        assert len(counts) == pairs, out
        if check_pair:
            assert all(counts), "a pair received nothing: %r" % out
        assert re.search(r"rx \d+ frames \d+ B, drops \d+, errors 0;", out), out
        if rss and not hash_:
            ebpf = "Can't load eBPF RSS" not in q.log and "Can't use eBPF RSS" not in q.log
            why = re.search(r"^libbpf: failed .*$", q.log, re.M)
            print("    QEMU steered with %s" % (
                "its eBPF program on the tap" if ebpf else "software RSS (eBPF not loaded%s)"
                % (": " + why.group(0) if why else "")))
        q.send("poweroff\r")
    return interact


def scenario(name, pairs, rss, hash_, packed=False):
    return Scenario(
        name, mode="shell", expect_exit=0, timeout=600, netns="192.168.79.1/24",
        cmdline="vio.net.pairs=%d vio.net.rss=on vio.ip=192.168.79.2/24" % pairs,
        qemu_args=["-device", "virtio-rng-pci",
                   "-netdev", "tap,id=n0,ifname=taprss,queues=%d,script=no,downscript=no"
                   % pairs,
                   "-device", "virtio-net-pci,netdev=n0,mq=on,rss=%s,hash=%s,vectors=%d%s"
                   % ("on" if rss else "off", "on" if hash_ else "off", 2 * pairs + 2,
                      ",packed=on" if packed else "")],
        interact=rss_interact(pairs, check_hash=hash_, check_pair=rss, rss=rss, hash_=hash_,
                              packed=packed))


SCENARIOS = [
    scenario("net-rss-hash-tap-netns", 4, rss=True, hash_=True),
    scenario("net-rss-hash-report-only-packed", 2, rss=False, hash_=True, packed=True),
    scenario("net-rss-steer-only", 4, rss=True, hash_=False),
]

if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "peer":
        peer(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
             sys.argv[6] == "1", sys.argv[7] == "1")
    elif len(sys.argv) == 2 and sys.argv[1] == "selftest":
        check_toeplitz()
        print("Toeplitz matches Microsoft's test vectors")
    else:
        sys.exit("usage: scn_net_rss.py peer <ifname> <guest-mac> <pairs> <table-len> "
                 "<check-hash 0|1> <check-pair 0|1> | selftest")
