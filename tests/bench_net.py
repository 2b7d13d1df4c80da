#!/usr/bin/env python3
"""
make bench, the network half: the kernel's lwIP stack (vio.mode=shell) against host peers
through a tap device in a network namespace of its own (harness netns=), on a fixed
configuration: q35, 1 vCPU, TCG, 512 MiB, virtio-net-pci on `-netdev tap` (no vhost), MTU
1500. Each configuration boots once and measures, in this order:

  net_ping_rtt_median   host `ping -c 200 -i 0.01` to the kernel: median of the 200 times
  net_udp_echo_rr       host sends one 64-byte datagram to `udp echo 7`, waits for it to
                        come back, repeats for 3 s: round trips per second
  net_tcp_host_to_guest host `iperf -c <kernel> -t 10` (iperf 2) to the kernel's lwiperf
                        server: the client's figure
  net_tcp_guest_to_host kernel `iperf client <host> 10` to host `iperf -s`: the server's figure

twice: with the checksum offloads negotiated (VIRTIO_NET_F_CSUM and GUEST_CSUM: the default)
and without (csum=off,guest_csum=off on the device; metrics suffixed _nocsum). The lines
`BENCH <metric> <value> <unit>` are appended to build/bench/results.txt (tests/bench.py
writes it first), after a comment naming the configuration. Numbers, not pass/fail: the exit
status only says whether every run completed.

  python3 tests/bench_net.py [--quick]   (--quick: offloads only, TCP for $BENCH_NET_SECS or 3 s)
"""
import os
import re
import statistics
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu"))
import harness  # noqa: E402
from scn_lwip import in_ns  # noqa: E402

OUT = os.path.join(harness.BUILD, "bench")
HOST_IP, GUEST_IP = "192.168.78.1", "192.168.78.2"
UDP_PORT = 7
TCP_SECS = int(os.environ.get("BENCH_NET_SECS", "10"))
RR_SECS = 3.0

CONFIGS = [
    # (metric suffix, virtio-net-pci properties, description)
    ("", "", "offloads negotiated (CSUM, GUEST_CSUM)"),
    ("_nocsum", ",csum=off,guest_csum=off", "no offloads (csum=off,guest_csum=off)"),
]


def mbits(text):
    """The last 'N Mbits/sec' figure iperf printed (-f m)."""
    found = re.findall(r"([\d.]+) Mbits/sec", text)
    assert found, "iperf reported no bandwidth: %r" % text[-500:]
    return float(found[-1])


def measure(q, suffix, results, info):
    q.wait_for(r"vio> ")
    q.wait_for(r"net0: %s/24 \(static\)" % re.escape(GUEST_IP), timeout=30)
    ip = q.shell("ip")
    info["mtu"] = re.search(r"mtu (\d+)", ip).group(1)
    feats = q.shell("virtio net0")
    info["features"] = " ".join(f for f in ("GUEST_CSUM", "CSUM", "MRG_RXBUF", "GUEST_TSO4",
                                            "HOST_TSO4")
                                if re.search(r"\b%s\b" % f, feats.split("offered")[0]))
    assert "echo on port" in q.shell("udp echo %d" % UDP_PORT)
    assert "server on port 5001" in q.shell("iperf server")

    out = in_ns(q, ["ping", "-c", "200", "-i", "0.01", "-W", "2", GUEST_IP], timeout=120)
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
    assert len(times) >= 190, "ping: %d of 200 replies" % len(times)
    results.append(("net_ping_rtt_median" + suffix, statistics.median(times), "ms"))

    out = in_ns(q, [sys.executable, os.path.abspath(__file__), "rr", GUEST_IP, str(UDP_PORT),
                    str(RR_SECS)], timeout=60)
    results.append(("net_udp_echo_rr" + suffix, float(out.split()[0]), "rt/s"))

    out = in_ns(q, ["iperf", "-c", GUEST_IP, "-t", str(TCP_SECS), "-f", "m"],
                timeout=TCP_SECS + 60)
    q.wait_for(r"iperf: done \(server\)", timeout=30)
    results.append(("net_tcp_host_to_guest" + suffix, mbits(out), "Mbit/s"))

    # The host's server runs until the kernel's client has closed; -1: one client, then exit.
    srv = subprocess.Popen(["ip", "netns", "exec", q.netns, "iperf", "-s", "-1", "-f", "m"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1)  # let it listen
        out = q.shell("iperf client %s %d" % (HOST_IP, TCP_SECS), timeout=TCP_SECS + 60)
        assert re.search(r"iperf: done \(client\)", out), "kernel iperf client: %r" % out
        try:
            srv_out = srv.communicate(timeout=15)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            srv.terminate()
            srv_out = srv.communicate()[0].decode("utf-8", "replace")
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    results.append(("net_tcp_guest_to_host" + suffix, mbits(srv_out), "Mbit/s"))
    info["netstat"] = q.shell("netstat")
    q.send("poweroff\r")


def run_config(suffix, props, desc):
    results, info = [], {}
    scn = harness.Scenario(
        "bench-net" + (suffix or "_csum"), mode="shell", machine="q35", mem="512M",
        boot="direct", expect_exit=0, timeout=300 + 4 * TCP_SECS,
        netns=HOST_IP + "/24", cmdline="vio.ip=%s/24" % GUEST_IP,
        qemu_args=["-smp", "1", "-device", "virtio-rng-pci",
                   "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
                   "-device", "virtio-net-pci,netdev=n0" + props],
        interact=lambda q: measure(q, suffix, results, info))
    ok, reason, secs, log_path = harness.run_scenario(scn)
    head = ("# vio bench net: q35, 1 vCPU, TCG, virtio-net-pci on a tap in a network "
            "namespace (no vhost), MTU %s, %s; features: %s; TCP %d s (iperf 2)" % (
                info.get("mtu", "?"), desc, info.get("features", "?"), TCP_SECS))
    lines = [head] + ["BENCH %-24s %14.3f %-9s" % r for r in results]
    if not ok:
        lines.append("# bench-net%s failed: %s (log %s)" % (suffix, reason,
                                                             os.path.relpath(log_path)))
    return ok, lines


def rr_peer(ip, port, secs):
    """One 64-byte datagram at a time: send, wait for the echo, repeat; round trips/s."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    sock.connect((ip, port))
    data = bytes(64)
    n, lost = 0, 0
    t0 = time.monotonic()
    end = t0 + secs
    while time.monotonic() < end:
        sock.send(data)
        try:
            sock.recv(2048)
            n += 1
        except socket.timeout:
            lost += 1
    print("%.1f %d" % (n / (time.monotonic() - t0), lost))


def main():
    global TCP_SECS
    configs = CONFIGS
    if "--quick" in sys.argv:
        configs, TCP_SECS = CONFIGS[:1], int(os.environ.get("BENCH_NET_SECS", "3"))
    os.makedirs(OUT, exist_ok=True)
    all_ok, out = True, []
    for suffix, props, desc in configs:
        ok, lines = run_config(suffix, props, desc)
        all_ok &= ok
        out += lines
        print("\n".join(lines), flush=True)
    with open(os.path.join(OUT, "results.txt"), "a") as f:
        f.write("\n".join(out) + "\n")
    print("# appended to %s" % os.path.relpath(os.path.join(OUT, "results.txt")))
    return 0 if all_ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "rr":
        rr_peer(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
