"""
lwIP with TCP segmentation offload both ways (virtio 1.2 5.1.6.2, 5.1.6.4), against the host's
Linux stack on a tap in a network namespace (host 192.168.79.1, kernel 192.168.79.2).

  net-tso-lwip     QEMU offers GUEST_TSO4 and HOST_TSO4 and the kernel takes them. The host
                   sends 24 MiB of a seeded pseudo-random pattern to the kernel's `tcp echo`
                   and reads it all back: host -> kernel arrives as coalesced frames (the
                   host's TCP hands the tap 64 KiB segments, QEMU passes them on as such),
                   kernel -> host leaves as GSO frames lwIP built larger than the MSS. Every
                   byte must come back (SHA-256 of both), a raw AF_PACKET socket on the tap
                   must see frames larger than the MTU going both ways, and netstat's
                   counters (coalesced frames in, GSO frames out) must have moved. Then iperf 2
                   each way (host iperf to the kernel's lwiperf, the kernel's `iperf client` to
                   host `iperf -s`), for the figures and the counters, not for a pass mark.
                   Last, the host hands the tap coalesced frames lwIP cannot take (IPv6 TCP
                   with a TCPV6 GSO header, through a PACKET_VNET_HDR socket, as the host's
                   own stack would for an IPv6 connection, which lwIP has not): each must be
                   dropped and counted (netstat), and the kernel must go on answering.
  net-tso-off      the same with vio.net.offload=off: the same bytes come back, and not one
                   frame on the tap is larger than the MTU.

The host side runs inside the namespace: `python3 scn_net_tso.py echo ...` is the sender,
receiver and tap watcher in one.
"""
import hashlib
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

from harness import Scenario
from scn_lwip import in_ns

HOST_IP, GUEST_IP = "192.168.79.1", "192.168.79.2"
ECHO_PORT = 7
ECHO_BYTES = 24 * 1024 * 1024
MTU_FRAME = 1514  # Ethernet header + MTU 1500: anything larger on the tap is a GSO frame
PACKET_OUTGOING = 4
VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_HOST_TSO4 = 7, 11


def pattern(size, seed=13):
    return random.Random(seed).randbytes(size)


def watch_tap(ifname, counts, stop):
    """Count frames larger than the MTU on the tap, by direction, until stop is set."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            data, addr = s.recvfrom(1 << 17)
        except socket.timeout:
            continue
        if len(data) > MTU_FRAME:
            key = "to_guest" if addr[2] == PACKET_OUTGOING else "from_guest"
            counts[key] += 1
            counts[key + "_max"] = max(counts[key + "_max"], len(data))


def echo_peer(ip, port, size, ifname):
    """Inside the namespace: send `size` pattern bytes to the kernel's tcp echo, read them
    back, compare; print one line with the digests and the tap's large-frame counts."""
    counts = {"to_guest": 0, "from_guest": 0, "to_guest_max": 0, "from_guest_max": 0}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_tap, args=(ifname, counts, stop), daemon=True)
    watcher.start()
    time.sleep(0.3)
    data = pattern(size)
    s = socket.create_connection((ip, port), timeout=60)
    t0 = time.monotonic()
    sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
    sender.start()
    got = bytearray()
    while len(got) < size:
        chunk = s.recv(1 << 20)
        assert chunk, "the echo closed after %d of %d bytes" % (len(got), size)
        got += chunk
    secs = time.monotonic() - t0
    sender.join(10)
    s.close()
    time.sleep(0.3)
    stop.set()
    watcher.join(5)
    want, have = hashlib.sha256(data).hexdigest(), hashlib.sha256(bytes(got)).hexdigest()
    assert have == want, "echo: sha256 %s, sent %s (%d bytes)" % (have, want, len(got))
    print("echo: %d bytes back in %.2f s, sha256 %s... matches; frames > %d bytes on the tap: "
          "to the guest %d (largest %d), from the guest %d (largest %d)" % (
              size, secs, want[:16], MTU_FRAME, counts["to_guest"], counts["to_guest_max"],
              counts["from_guest"], counts["from_guest_max"]))


PACKET_VNET_HDR = 15  # linux/if_packet.h: frames carry a struct virtio_net_hdr in front
GSO_TCPV6, NEEDS_CSUM = 4, 1


def inject_v6_gso(ifname, dst_mac, count, payload=8000):
    """Inside the namespace: hand the tap `count` coalesced IPv6 TCP frames (gso_type TCPV6,
    NEEDS_CSUM, hdr_len 74, gso_size 1440) addressed to dst_mac; QEMU passes them to the
    guest whole, as it does the host stack's own 64 KiB segments."""
    import struct
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.setsockopt(263, PACKET_VNET_HDR, 1)  # SOL_PACKET
    s.bind((ifname, 0))
    src_mac = open("/sys/class/net/%s/address" % ifname).read().strip()
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) \
        + b"\x86\xdd"
    src, dst = socket.inet_pton(socket.AF_INET6, "fd00::1"), socket.inet_pton(socket.AF_INET6,
                                                                               "fd00::2")
    for i in range(count):
        tcp = struct.pack("!HHIIBBHHH", 40000 + i, 5001, 1000, 0, 5 << 4, 0x10, 65535, 0, 0)
        ip6 = struct.pack("!IHBB", 6 << 28, len(tcp) + payload, 6, 64) + src + dst
        hdr = struct.pack("<BBHHHH", NEEDS_CSUM, GSO_TCPV6, 14 + 40 + 20, 1440, 14 + 40, 16)
        s.send(hdr + eth + ip6 + tcp + bytes(payload))
    s.close()
    print("injected %d coalesced IPv6 frames" % count)


def offload_counters(q):
    """(coalesced frames in, dropped, GSO frames out) from netstat."""
    out = q.shell("netstat")
    m = re.search(r"en0\s+segmentation offload: receive (on|off), (\d+) coalesced frames in, "
                  r"(\d+) dropped; transmit (on|off), (\d+) GSO frames out", out)
    assert m, "no offload line in netstat: %r" % out
    return m.group(1) == "on", int(m.group(2)), int(m.group(3)), m.group(4) == "on", \
        int(m.group(5))


def echo_run(q):
    out = in_ns(q, [sys.executable, os.path.abspath(__file__), "echo", GUEST_IP,
                    str(ECHO_PORT), str(ECHO_BYTES), "tap0"], timeout=600)
    print("    " + out.strip())
    m = re.search(r"to the guest (\d+) .* from the guest (\d+)", out)
    return int(m.group(1)), int(m.group(2))


def iperf_both_ways(q, secs=5):
    out = in_ns(q, ["iperf", "-c", GUEST_IP, "-t", str(secs), "-f", "m"], timeout=secs + 60)
    m = re.search(r"([\d.]+) Mbits/sec", out)
    assert m, "iperf reported no bandwidth: %r" % out
    q.wait_for(r"iperf: done \(server\)", timeout=30)
    srv = subprocess.Popen(["ip", "netns", "exec", q.netns, "iperf", "-s", "-1", "-f", "m"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1)  # let it listen
        cli = q.shell("iperf client %s %d" % (HOST_IP, secs), timeout=secs + 60)
        assert re.search(r"iperf: done \(client\)", cli), "kernel iperf client: %r" % cli
        try:  # iperf -s -1 has its report out before it exits, and may linger
            text = srv.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            srv.terminate()
            text = srv.communicate()[0]
        text = text.decode("utf-8", "replace")
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    m2 = re.findall(r"([\d.]+) Mbits/sec", text)
    assert m2, "host iperf -s reported nothing: %r" % text
    print("    iperf %d s: host -> kernel %s Mbit/s, kernel -> host %s Mbit/s" % (
        secs, m.group(1), m2[-1]))


def features(q):
    info = q.shell("net info net0")
    m = re.search(r"features=0x([0-9a-f]+)", info)
    assert m, "no features in %r" % info
    return int(m.group(1), 16)


def start(q):
    q.wait_for(r"vio> ")
    q.wait_for(r"net0: 192\.168\.79\.2/24 \(static\)", timeout=30)
    assert "echo on port" in q.shell("tcp echo %d" % ECHO_PORT)
    assert "server on port 5001" in q.shell("iperf server")


def tso_interact(q):
    start(q)
    f = features(q)
    assert f >> VIRTIO_NET_F_GUEST_TSO4 & 1 and f >> VIRTIO_NET_F_HOST_TSO4 & 1, \
        "GUEST_TSO4/HOST_TSO4 not negotiated: 0x%x" % f
    out = q.shell("ip")  # the link's MTU, though lwIP's netif takes 64 KiB segments
    assert re.search(r"en0: link up, mtu 1500,", out), "ip with TSO: %r" % out
    to_guest, from_guest = echo_run(q)
    rx_on, rx_gso, rx_dropped, tx_on, tx_gso = offload_counters(q)
    assert rx_on and tx_on, "offloads off in netstat"
    assert to_guest > 0 and rx_gso > 0, "no coalesced frame reached lwIP (%d on the tap, " \
        "%d counted)" % (to_guest, rx_gso)
    assert from_guest > 0 and tx_gso > 0, "lwIP sent no GSO frame (%d on the tap, %d " \
        "counted)" % (from_guest, tx_gso)
    assert rx_dropped == 0, "%d coalesced frames dropped" % rx_dropped
    print("    counters: %d coalesced frames in, %d GSO frames out" % (rx_gso, tx_gso))
    iperf_both_ways(q)
    _, rx_gso2, _, _, tx_gso2 = offload_counters(q)
    assert rx_gso2 > rx_gso and tx_gso2 > tx_gso, "iperf moved no GSO frame: %d/%d -> %d/%d" % (
        rx_gso, tx_gso, rx_gso2, tx_gso2)
    print("    after iperf: %d coalesced frames in, %d GSO frames out" % (rx_gso2, tx_gso2))
    mac = re.search(r"lladdr ([0-9a-f:]{17})",
                    in_ns(q, ["ip", "neigh", "show", GUEST_IP], timeout=30))
    assert mac, "the host has no neighbour entry for the kernel"
    print("    " + in_ns(q, [sys.executable, os.path.abspath(__file__), "inject", "tap0",
                          mac.group(1), "3"], timeout=60).strip())
    deadline = time.monotonic() + 10
    while True:
        _, rx_gso3, dropped3, _, _ = offload_counters(q)
        if dropped3 >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert dropped3 == 3 and rx_gso3 == rx_gso2 + 3, \
        "3 coalesced IPv6 frames sent: %d more in, %d dropped" % (rx_gso3 - rx_gso2, dropped3)
    assert "0% packet loss" in in_ns(q, ["ping", "-c", "3", "-i", "0.2", GUEST_IP], timeout=30)
    print("    3 coalesced IPv6 frames dropped and counted; ping still answered")
    q.send("poweroff\r")


def off_interact(q):
    start(q)
    f = features(q)
    assert not (f >> VIRTIO_NET_F_GUEST_TSO4 & 1 or f >> VIRTIO_NET_F_HOST_TSO4 & 1), \
        "vio.net.offload=off still negotiated TSO: 0x%x" % f
    to_guest, from_guest = echo_run(q)
    assert to_guest == from_guest == 0, "frames above the MTU without offload: %d to, %d from" \
        % (to_guest, from_guest)
    rx_on, rx_gso, _, tx_on, tx_gso = offload_counters(q)
    assert not rx_on and not tx_on and rx_gso == tx_gso == 0, \
        "offload counters moved with vio.net.offload=off: %d in, %d out" % (rx_gso, tx_gso)
    iperf_both_ways(q)
    q.send("poweroff\r")


def tso_scenario(name, cmdline, interact):
    return Scenario(name, mode="shell", expect_exit=0, timeout=600,
                    netns=HOST_IP + "/24", cmdline="vio.ip=%s/24 %s" % (GUEST_IP, cmdline),
                    qemu_args=["-device", "virtio-rng-pci",
                               "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                               "-device", "virtio-net-pci,netdev=n0"],
                    interact=interact)


SCENARIOS = [
    tso_scenario("net-tso-lwip", "", tso_interact),
    tso_scenario("net-tso-off", "vio.net.offload=off", off_interact),
]

if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "echo":
        echo_peer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 5 and sys.argv[1] == "inject":
        inject_v6_gso(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("usage: scn_net_tso.py echo <ip> <port> <bytes> <ifname> | "
                 "inject <ifname> <mac> <count>")
