"""
virtio-net's control queue proven by what crosses a tap (the harness's tap0 in a namespace),
seen from a raw AF_PACKET socket on the host side. The kernel echoes every frame it receives
(`net echo net0 on`), so a frame the device let through comes back, and one it filtered out
does not:
  - promiscuous mode off: a frame for a foreign unicast address is dropped, ours comes back;
    on again: the foreign one comes back too (QEMU starts promiscuous);
  - all-multicast on/off: a multicast frame comes back only while it is on;
  - the MAC filter table: the unicast and multicast addresses in it come back, others do not,
    and an empty table drops them again;
  - setting the MAC: frames leave with the new source address and frames for it come back,
    those for the old one do not;
  - GUEST_ANNOUNCE: QMP announce-self makes the kernel send a gratuitous ARP for its address
    from its MAC (QEMU's own announcement would be RARP).
"""
import os
import re
import socket
import subprocess
import sys
import time

from harness import Scenario
from scn_lwip import in_ns

HOST_ADDR, GUEST_IP = "192.168.79.1/24", "192.168.79.2"
HOST_MAC = bytes([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])
MARK = b"vio-ctrl-probe"
PACKET_OUTGOING = 4
PROBES = 5


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def raw_socket(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    return s


def probe(ifname, dst_text, count=PROBES, wait=1.5):
    """Inside the namespace: send `count` frames to dst; print how many were echoed."""
    dst = mac_bytes(dst_text)
    s = raw_socket(ifname)
    for i in range(count):
        s.send(dst + HOST_MAC + b"\x88\xb5" + MARK + bytes([i]) + bytes(40))
    seen = set()
    end = time.monotonic() + wait
    while time.monotonic() < end and len(seen) < count:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            break
        if (addr[2] != PACKET_OUTGOING and data[:6] == HOST_MAC and data[6:12] == dst
                and data[14:14 + len(MARK)] == MARK):
            seen.add(data[14 + len(MARK)])
    print(len(seen))


def capture(ifname, secs, ethertype, src_text):
    """Inside the namespace: print, one a line in hex, frames of ethertype from src."""
    src, etype = mac_bytes(src_text), int(ethertype, 16).to_bytes(2, "big")
    s = raw_socket(ifname)
    print("ready", flush=True)
    end = time.monotonic() + float(secs)
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            break
        if addr[2] != PACKET_OUTGOING and data[6:12] == src and data[12:14] == etype:
            print(data[:60].hex(), flush=True)


def echoed(q, mac):
    out = in_ns(q, [sys.executable, os.path.abspath(__file__), "probe", "tap0", mac])
    return int(out.strip())


def expect(q, mac, want, why):
    got = echoed(q, mac)
    ok = got == PROBES if want else got == 0
    assert ok, "%s: %d of %d frames to %s came back" % (why, got, PROBES, mac)


def captured(q, ethertype, src, trigger, secs=8):
    """Frames (bytes) of ethertype from src seen on the tap while trigger() runs."""
    p = subprocess.Popen(["ip", "netns", "exec", q.netns, sys.executable,
                          os.path.abspath(__file__), "capture", "tap0", str(secs), ethertype,
                          src], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready", "capture did not start"
        trigger()
        out, _ = p.communicate(timeout=secs + 30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return [bytes.fromhex(line) for line in out.split()]


def ctrl_interact(q):
    q.wait_for(r"vio> ")
    info = q.shell("net info net0")
    m = re.search(r"mac=([0-9a-f:]{17})", info)
    assert m, "no MAC in %r" % info
    mac = m.group(1)
    assert "frame echo on" in q.shell("net echo net0 on")
    foreign, multi = "02:00:00:00:00:99", "01:00:5e:00:00:42"

    expect(q, foreign, True, "QEMU starts promiscuous")
    assert "promisc off" in q.shell("net promisc net0 off")
    expect(q, foreign, False, "promisc off")
    expect(q, mac, True, "promisc off, our own MAC")
    assert "promisc on" in q.shell("net promisc net0 on")
    expect(q, foreign, True, "promisc on")
    q.shell("net promisc net0 off")
    print("    promiscuous: foreign unicast dropped when off, passed when on")

    expect(q, multi, False, "allmulti off")
    assert "allmulti on" in q.shell("net allmulti net0 on")
    expect(q, multi, True, "allmulti on")
    q.shell("net allmulti net0 off")
    expect(q, multi, False, "allmulti off again")
    print("    all-multicast: multicast passed only when on")

    out = q.shell("net filter net0 02:00:00:00:00:77 01:00:5e:00:00:43")
    assert "filter 1 unicast, 1 multicast" in out, out
    expect(q, "02:00:00:00:00:77", True, "unicast in the MAC table")
    expect(q, "01:00:5e:00:00:43", True, "multicast in the MAC table")
    expect(q, "02:00:00:00:00:78", False, "unicast not in the MAC table")
    q.shell("net filter net0")
    expect(q, "02:00:00:00:00:77", False, "emptied MAC table")
    print("    MAC filter table: listed addresses passed, others dropped")

    new = "52:54:00:aa:bb:cc"
    out = q.shell("net mac net0 %s" % new)
    assert "mac=%s" % new in out, out
    frames = captured(q, "88b5", new, lambda: q.shell("net send net0 broadcast 60"), secs=3)
    assert frames, "no frame left with the new source MAC %s" % new
    expect(q, new, True, "frames for the new MAC")
    expect(q, mac, False, "frames for the old MAC")
    print("    set MAC: frames leave from %s, and only frames for it come in" % new)

    def announce():
        q.qmp("announce-self", initial=50, max=550, rounds=2, step=100)
        q.wait_for(r"net0: announced", timeout=30)
    arps = captured(q, "0806", new, announce, secs=5)
    ip = bytes(int(x) for x in GUEST_IP.split("."))
    grat = [f for f in arps if f[:6] == b"\xff" * 6 and f[20:22] == b"\x00\x01"
            and f[22:28] == mac_bytes(new) and f[28:32] == ip and f[38:42] == ip]
    assert grat, "no gratuitous ARP for %s after announce-self: %r" % (GUEST_IP, arps)
    print("    announce-self: %d gratuitous ARP(s) for %s from %s" % (len(grat), GUEST_IP, new))
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("net-ctrl-tap-netns", mode="shell", expect_exit=0, timeout=600,
             netns=HOST_ADDR, cmdline="vio.ip=%s/24" % GUEST_IP,
             qemu_args=["-device", "virtio-rng-pci",
                        "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                        "-device", "virtio-net-pci,netdev=n0"],
             interact=ctrl_interact),
]

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "probe":
        probe(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "capture":
        capture(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        sys.exit("usage: scn_net_ctrl.py probe <ifname> <mac> | "
                 "capture <ifname> <secs> <ethertype> <src-mac>")
