"""
lwIP, the kernel's TCP/IP stack, over the virtio-net driver, against real peers.

1. QEMU user networking: the kernel asks DHCP for an address, gets 10.0.2.15, and pings the
   gateway 10.0.2.2.
2. A tap device in a network namespace of our own (the harness's netns=), the host side at
   192.168.77.1 and the kernel at 192.168.77.2 (vio.ip=): the host pings the kernel 100
   times and the kernel pings back; 10,000 UDP datagrams of random sizes come back intact
   from `udp echo`; iperf 2 runs 10 s against lwiperf; curl fetches / and the 10 MiB
   /big.bin, whose SHA-256 must match the generator's; then a flood of malformed frames on
   the tap (AF_PACKET: bad IP header lengths and checksums, truncated TCP options, short
   UDP, ARP garbage) must not stop the kernel from answering ping and curl.

The host side of 2 runs inside the namespace: `ip netns exec`, and this file itself as the
UDP and raw-frame peer (python3 scn_lwip.py udp|flood ...).
"""
import hashlib
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time

from harness import Scenario

HOST_IP, GUEST_IP = "192.168.77.1", "192.168.77.2"
UDP_PORT, UDP_COUNT = 7, 10000
BIG_BIN_SIZE = 10 * 1024 * 1024


def big_bin(size=BIG_BIN_SIZE):
    """The bytes of /big.bin (src/kernel/net/httpd_fs.c): byte i = (i * 7 + (i >> 12)) & 0xff.
    Within 4 KiB block b that is (7 * j + b) & 0xff, since 7 * 4096 * b is 0 mod 256."""
    base = bytes((7 * j) & 0xff for j in range(4096))
    blocks = [base.translate(bytes((x + b) & 0xff for x in range(256)))
              for b in range((size + 4095) // 4096)]
    return b"".join(blocks)[:size]


# --- scenario 1: DHCP behind QEMU's user networking ---------------------------------------

def dhcp_interact(q):
    q.wait_for(r"vio> ")
    m = q.wait_for(r"net0: (\S+)/(\d+) gw (\S+) \(dhcp\)", timeout=60)
    assert m.group(1) == "10.0.2.15" and m.group(3) == "10.0.2.2", m.group(0)
    out = q.shell("ping 10.0.2.2 3", timeout=30)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m and m.group(2) != "0", "no ping reply from the gateway: %r" % out
    print("    dhcp: 10.0.2.15/24 gw 10.0.2.2; ping 10.0.2.2: %s of %s replies" % (
        m.group(2), m.group(1)))
    # The link follows the device: lwIP sees it go down and up (QMP set_link), and the
    # stack works again afterwards.
    q.qmp("set_link", name="n0", up=False)
    q.wait_for(r"net0: link down", timeout=30)
    out = q.shell("ip")
    assert re.search(r"en0: link down", out), "ip after set_link down: %r" % out
    q.qmp("set_link", name="n0", up=True)
    q.wait_for(r"net0: link up", timeout=30)
    out = q.shell("ip")
    assert re.search(r"en0: link up", out), "ip after set_link up: %r" % out
    out = q.shell("ping 10.0.2.2 2", timeout=30)
    assert re.search(r"2 packets transmitted, [12] received", out), "after link up: %r" % out
    q.send("poweroff\r")


# --- scenario 2: a tap in a namespace ---------------------------------------------------------

def in_ns(q, argv, timeout=120):
    """Run argv inside the scenario's namespace; its stdout. Fails the scenario on error."""
    try:
        r = subprocess.run(["ip", "netns", "exec", q.netns] + argv, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s: no result after %d s" % (" ".join(argv), timeout))
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "%s failed (%d): %s %s" % (
        " ".join(argv), r.returncode, out[-500:], r.stderr.decode("utf-8", "replace")[-500:])
    return out


def host_ping(q, count, interval):
    out = in_ns(q, ["ping", "-c", str(count), "-i", str(interval), "-W", "2", GUEST_IP],
                timeout=count * interval + 60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    rtt = re.search(r"rtt min/avg/max/mdev = ([\d./]+) ms", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), rtt.group(1) if rtt else "-"


def curl(q, path, dest):
    out = in_ns(q, ["curl", "-sS", "--max-time", "120", "-o", dest, "-w",
                    "%{http_code} %{size_download} %{time_total}",
                    "http://%s%s" % (GUEST_IP, path)], timeout=150)
    code, size, secs = out.split()
    assert code == "200", "GET %s: HTTP %s" % (path, code)
    return int(size), float(secs)


def check_web(q, tmp):
    size, _ = curl(q, "/", os.path.join(tmp, "index.html"))
    assert b"vio" in open(os.path.join(tmp, "index.html"), "rb").read(), "odd index page"
    path = os.path.join(tmp, "big.bin")
    size, secs = curl(q, "/big.bin", path)
    got = hashlib.sha256(open(path, "rb").read()).hexdigest()
    want = hashlib.sha256(big_bin()).hexdigest()
    assert size == BIG_BIN_SIZE, "big.bin: %d bytes, want %d" % (size, BIG_BIN_SIZE)
    assert got == want, "big.bin sha256 %s, want %s" % (got, want)
    return secs, got


def tap_interact(q):
    q.wait_for(r"vio> ")
    q.wait_for(r"net0: 192\.168\.77\.2/24 \(static\)", timeout=30)
    info = q.shell("net info net0")
    guest_mac = re.search(r"mac=([0-9a-f:]{17})", info).group(1)
    assert "echo on port" in q.shell("udp echo %d" % UDP_PORT)
    assert "server on port 5001" in q.shell("iperf server")
    assert "on port 80" in q.shell("httpd start")

    sent, got, rtt = host_ping(q, 100, 0.05)
    print("    host ping: %d/%d replies, rtt min/avg/max/mdev %s ms" % (got, sent, rtt))
    assert got == sent == 100, "host ping: %d of %d replies" % (got, sent)

    out = q.shell("ping %s 3" % HOST_IP, timeout=30)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m and m.group(2) == "3", "kernel ping: %r" % out
    print("    kernel ping: %s/%s replies (%s)" % (
        m.group(2), m.group(1), re.search(r"rtt (.*)", out).group(1)))

    out = in_ns(q, [sys.executable, os.path.abspath(__file__), "udp", GUEST_IP,
                    str(UDP_PORT), str(UDP_COUNT)], timeout=400)
    print("    " + out.strip())

    out = in_ns(q, ["iperf", "-c", GUEST_IP, "-t", "10", "-f", "m"], timeout=60)
    m = re.search(r"([\d.]+) MBytes\s+([\d.]+) Mbits/sec", out)
    assert m, "iperf reported no bandwidth: %r" % out
    q.wait_for(r"iperf: done \(server\)", timeout=30)
    print("    iperf -t 10: %s MBytes, %s Mbits/sec" % (m.group(1), m.group(2)))

    secs, digest = check_web(q, q.workdir)
    print("    curl /big.bin: 10 MiB in %.2f s (%.1f MiB/s), sha256 %s... matches" % (
        secs, 10 / secs, digest[:16]))

    out = in_ns(q, [sys.executable, os.path.abspath(__file__), "flood", "tap0", guest_mac],
                timeout=120)
    print("    " + out.strip())
    sent, got, _ = host_ping(q, 5, 0.2)
    assert got == sent, "after the flood: %d of %d pings answered" % (got, sent)
    size, _ = curl(q, "/", os.path.join(q.workdir, "index2.html"))
    print("    after the flood: ping %d/%d, GET / %d bytes" % (got, sent, size))
    stats = q.shell("netstat")
    for name in ("ip", "tcp", "udp"):
        m = re.search(r"^  %s\s+xmit (\d+) recv (\d+) drop (\d+) chkerr (\d+) lenerr (\d+)"
                      % name, stats, re.M)
        if m:
            print("    lwIP %s: drop %s chkerr %s lenerr %s" % (name, m.group(3), m.group(4),
                                                              m.group(5)))
    q.send("poweroff\r")


# --- peers run inside the namespace (python3 scn_lwip.py ...) --------------------------------

def udp_peer(ip, port, count, window=32, timeout=300):
    """Send `count` datagrams of random sizes (at most `window` unanswered); each must come
    back byte-exact. Datagrams lost on the way are sent again."""
    rnd = random.Random(77)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    pending, sent, done, resent = {}, 0, 0, 0
    t0 = time.monotonic()
    while done < count:
        assert time.monotonic() - t0 < timeout, "echoed %d of %d" % (done, count)
        while sent < count and len(pending) < window:
            size = rnd.randint(4, 1472)
            data = struct.pack(">I", sent) + rnd.randbytes(size - 4)
            pending[sent] = data
            sock.sendto(data, (ip, port))
            sent += 1
        try:
            reply = sock.recv(65536)
        except socket.timeout:
            for data in pending.values():
                sock.sendto(data, (ip, port))
                resent += 1
            continue
        seq = struct.unpack(">I", reply[:4])[0]
        data = pending.pop(seq, None)
        if data is None:
            continue  # a duplicate of one resent
        assert reply == data, "datagram %d came back different (%d vs %d bytes)" % (
            seq, len(reply), len(data))
        done += 1
    print("udp: %d datagrams (4..1472 bytes) echoed intact in %.1f s, %d resent" % (
        count, time.monotonic() - t0, resent))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip_hdr(proto, payload_len, src, dst, ihl=5, total=None, good_csum=True, frag=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total if total is not None else
                      20 + payload_len, random.randrange(65536), frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    c = csum(hdr) if good_csum else 0x1234
    return hdr[:10] + struct.pack("!H", c) + hdr[12:]


def flood_peer(ifname, guest_mac_text, rounds=200):
    """Malformed frames at the kernel through the tap (raw AF_PACKET socket)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    gmac = bytes(int(x, 16) for x in guest_mac_text.split(":"))
    hmac = s.getsockname()[4][:6]
    src, dst = HOST_IP, GUEST_IP
    rnd = random.Random(13)
    eth_ip = gmac + hmac + b"\x08\x00"
    eth_arp = gmac + hmac + b"\x08\x06"
    tcp_ok = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 8192, 0, 0)

    def frames():
        yield eth_ip + ip_hdr(6, 20, src, dst, ihl=3) + tcp_ok  # ihl below 5
        yield eth_ip + ip_hdr(6, 20, src, dst, ihl=15) + tcp_ok  # ihl beyond the packet
        yield eth_ip + ip_hdr(6, 20, src, dst, total=1400) + tcp_ok  # total > frame
        yield eth_ip + ip_hdr(6, 20, src, dst, total=10) + tcp_ok  # total < header
        yield eth_ip + ip_hdr(6, 20, src, dst, good_csum=False) + tcp_ok  # bad IP checksum
        yield eth_ip + ip_hdr(6, 20, src, dst)[:12]  # truncated IP header
        # TCP: data offset 15 words with 4 bytes of options present; option lengths 0, 1,
        # and running past the header; a bad checksum.
        for opts in (b"\x02\x04\x05", b"\x02\x00\x00\x00", b"\x03\x01\x00\x00",
                     b"\x08\x0a\x00\x00", b"\x02\xff\x05\xb4"):
            off = 15 if opts == b"\x02\x04\x05" else (20 + len(opts)) // 4
            t = struct.pack("!HHIIBBHHH", 40001, 80, 7, 0, off << 4, 0x02, 8192, 0, 0) + opts
            yield eth_ip + ip_hdr(6, len(t), src, dst) + t
        yield eth_ip + ip_hdr(6, 20, src, dst) + tcp_ok[:8]  # TCP header cut short
        yield eth_ip + ip_hdr(17, 8, src, dst) + struct.pack("!HHHH", 9, 7, 900, 0)  # UDP len
        yield eth_ip + ip_hdr(17, 4, src, dst) + b"\x00\x09\x00\x07"  # UDP header cut short
        yield eth_ip + ip_hdr(17, 12, src, dst) + struct.pack("!HHHH", 9, 7, 12, 0xdead) + b"abcd"
        icmp = struct.pack("!BBHHH", 8, 0, 0xbeef, 1, 1) + b"x" * 8  # echo, bad checksum
        yield eth_ip + ip_hdr(1, len(icmp), src, dst) + icmp
        yield eth_ip + ip_hdr(1, 2, src, dst) + b"\x08\x00"  # ICMP cut short
        yield eth_ip + ip_hdr(17, 16, src, dst, frag=0x2000 | 8191) + bytes(16)  # odd frag
        yield eth_ip + ip_hdr(99, 8, src, dst) + bytes(8)  # unknown protocol
        yield eth_ip + bytes([0x60]) + bytes(40)  # IPv6 version in an IPv4 frame
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hmac + socket.inet_aton(src)
        yield eth_arp + arp[:10]  # truncated ARP
        yield eth_arp + struct.pack("!HHBBH", 7, 0x1234, 0, 0, 99) + bytes(20)  # garbage
        yield eth_arp + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 77) + bytes(20)  # bad opcode
        yield eth_arp + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + bytes(6) + bytes(4) + \
            gmac + socket.inet_aton("0.0.0.0")  # reply from 0.0.0.0, MAC 0
        yield eth_ip + rnd.randbytes(rnd.randint(1, 200))  # noise claiming to be IPv4
        yield eth_arp + rnd.randbytes(rnd.randint(1, 60))  # noise claiming to be ARP

    n = 0
    for _ in range(rounds):
        for f in frames():
            s.send(f.ljust(60, b"\0") if len(f) < 60 else f)
            n += 1
        time.sleep(0.002)
    print("flood: %d malformed frames sent on %s" % (n, ifname))


# --- scenarios -------------------------------------------------------------------------------

SCENARIOS = [
    Scenario("lwip-dhcp-user", mode="shell", expect_exit=0, timeout=180,
             qemu_args=["-device", "virtio-rng-pci", "-netdev", "user,id=n0",
                        "-device", "virtio-net-pci,netdev=n0"],
             interact=dhcp_interact,
             expect_log=[r"net0: 10\.0\.2\.15/24 gw 10\.0\.2\.2 \(dhcp\)"]),
    Scenario("lwip-tap-netns", mode="shell", expect_exit=0, timeout=900,
             netns=HOST_IP + "/24", cmdline="vio.ip=%s/24" % GUEST_IP,
             qemu_args=["-device", "virtio-rng-pci",
                        "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                        "-device", "virtio-net-pci,netdev=n0"],
             interact=tap_interact),
]

if __name__ == "__main__":
    if sys.argv[1] == "udp":
        udp_peer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "flood":
        flood_peer(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: scn_lwip.py udp <ip> <port> <count> | flood <ifname> <guest-mac>")
