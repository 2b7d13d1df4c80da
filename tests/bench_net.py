#!/usr/bin/env python3
"""
The network half of `make bench` (tests/bench.py runs it each round): a guest on q35, TCG, one
vCPU running of two (tests/bench.py), 512 MiB, virtio-net-pci on `-netdev tap` (no vhost) whose tap sits in a network
namespace of its own (host 192.168.78.1/24, guest 192.168.78.2/24), MTU 1500. Each boot
measures, in this order:

  net_ping_rtt_median   host `ping -c 200 -i 0.01` to the guest: median of the 200 times
  net_udp_echo_rr       host sends one 64-byte datagram to the guest's UDP echo on port 7,
                        waits for it to come back, repeats for 3 s: round trips per second
  net_tcp_host_to_guest host `iperf -c <guest> -t 10` (iperf 2) to the guest's server: the
                        client's figure
  net_tcp_guest_to_host guest iperf client to host `iperf -s`: the server's figure

and, for each of the two TCP transfers of a guest (metric name + suffix; transfer_cost()):

  _fps_to_guest, _fps_from_guest   frames per second the tap carried each way (its tx_packets,
                                   rx_packets before and after, read inside the namespace)
                                   over iperf's own interval
  _bpf_to_guest, _bpf_from_guest   bytes per frame each way (tx_bytes / tx_packets, rx): above
                                   the MTU when segmentation offload hands whole TCP segments
                                   of up to 64 KiB across the tap
  _vcpu_s_per_gbit                 CPU seconds of QEMU's vCPU threads ("CPU 0/TCG") per Gbit
                                   iperf moved (/proc/<pid>/task/*/stat, utime + stime)
  _qemu_s_per_gbit                 the same for QEMU's other threads (main loop, workers)

Four vio configurations and two other peers run the same host commands:
  vio_net    the vio kernel (vio.mode=shell): lwIP's `udp echo`, lwiperf (`iperf server`,
             `iperf client`); with every offload QEMU offers (vio takes what it implements),
             without segmentation offload (guest_/host_tso4, tso6, ecn, ufo off: the checksum
             offloads only), without any (csum=off,guest_csum=off), and with packed=on on every
             device (the packed ring)
  linux_net  the Linux guest of scripts/linux-peer.sh (bench=net): tests/bench/loadgen.c's
             UDP echo, the host's own iperf 2 binary copied into its initramfs
  host_net   no guest: two network namespaces joined by a veth pair, the same tools on both
             ends; what the host's stack does without QEMU in the way (the "limit" rows)

  python3 tests/bench_net.py [--quick] [SIDE]   one vio configuration (SIDE: vio, the default,
                                                vio-notso, vio-nocsum, vio-packed), printed
                                                once (--quick: TCP for $BENCH_NET_SECS or 3 s)
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

HOST_IP, GUEST_IP = "192.168.78.1", "192.168.78.2"
UDP_PORT = 7
TCP_SECS = int(os.environ.get("BENCH_NET_SECS", "10"))
RR_SECS = 3.0
PING_COUNT = 200

# Called with (metric, value, unit) as each figure comes in (tests/bench.py shows progress).
PROGRESS = None

NO_TSO = "".join(",%s_%s=off" % (way, f) for way in ("guest", "host")
                 for f in ("tso4", "tso6", "ecn", "ufo"))
VIO_CONFIGS = {
    # side name -> (virtio-net-pci properties, description)
    "vio": ("", "every offload QEMU offers"),
    "vio-notso": (NO_TSO, "checksum offloads only (%s)" % NO_TSO[1:]),
    "vio-nocsum": (",csum=off,guest_csum=off", "no offloads (csum=off,guest_csum=off)"),
    "vio-packed": ("", "every offload QEMU offers, packed ring (packed=on on every device)"),
}
# The offload features of virtio-net (virtio 1.2 section 5.1.3) as `virtio net0` names them;
# vio-notso must negotiate none but the first two, vio-nocsum none at all.
OFFLOADS = ("CSUM", "GUEST_CSUM", "GUEST_TSO4", "GUEST_TSO6", "GUEST_ECN", "GUEST_UFO",
            "HOST_TSO4", "HOST_TSO6", "HOST_ECN", "HOST_UFO")
# QEMU names its threads, so that qemu_threads() tells the vCPU from the rest.
NAMED_THREADS = ["-name", "bench-net,debug-threads=on"]


def with_packed(args):
    """QEMU arguments with packed=on added to every virtio-*-pci device (virtio 1.2 section
    2.8: QEMU then offers VIRTIO_F_RING_PACKED, and vio takes it)."""
    return [a + ",packed=on" if re.match(r"virtio-[a-z0-9]+-pci(,|$)", a) else a for a in args]


def iperf_summary(text):
    """(seconds, Mbit/s) of the last report line iperf 2 printed (-f m), such as
    '[  1] 0.0000-10.0076 sec  1234 MBytes  1034 Mbits/sec'."""
    found = re.findall(r"([\d.]+)-\s*([\d.]+) sec\s+[\d.]+ \w*Bytes\s+([\d.]+) Mbits/sec", text)
    assert found, "iperf reported no bandwidth: %r" % text[-500:]
    start, end, rate = map(float, found[-1])
    return end - start, rate


def qemu_threads(pid):
    """{thread id: (name, CPU seconds: utime + stime)} of QEMU's threads: the vCPUs
    ("CPU 0/TCG"), the main loop ("qemu-system-x86"), the block layer's "worker" threads, an
    iothread ("IO <id>"). The name is inside the first '(' and the last ')' of the stat line
    (it may hold spaces); utime and stime are the 14th and 15th fields (proc(5))."""
    out, clk = {}, os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            st = open("/proc/%d/task/%s/stat" % (pid, tid)).read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / clk)
    return out


TAP_COUNTERS = ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"]


def tap_counters(ns, dev="tap0"):
    """The tap's counters (TAP_COUNTERS -> int), read inside network namespace ns, whose sysfs
    shows its own devices. The tap transmits what the host sends the guest (QEMU reads it)
    and receives what the guest sends (QEMU writes it); a segmentation-offloaded frame
    counts once with all its bytes."""
    out = in_ns(ns, ["cat"] + ["/sys/class/net/%s/statistics/%s" % (dev, c)
                               for c in TAP_COUNTERS], timeout=10)
    return dict(zip(TAP_COUNTERS, map(int, out.split())))


def look(ns, pid):
    """What transfer_cost() compares: the tap's counters and QEMU's threads now."""
    threads = qemu_threads(pid)
    assert any(n.startswith("CPU ") for n, _c in threads.values()), \
        "QEMU (pid %d) has no thread named 'CPU n/...' (-name ...,debug-threads=on?)" % pid
    return tap_counters(ns), threads


def transfer_cost(before, after, secs, mbit):
    """{metric suffix: (value, unit)} of one TCP transfer of `secs` seconds at `mbit` Mbit/s
    (iperf's own figures), between two look()s taken just before and after it. A thread that
    started in between counts from zero; one that ended is not counted."""
    (tap0, cpu0), (tap1, cpu1) = before, after
    out = {}
    for way, counter in (("to_guest", "tx"), ("from_guest", "rx")):
        frames = tap1[counter + "_packets"] - tap0[counter + "_packets"]
        octets = tap1[counter + "_bytes"] - tap0[counter + "_bytes"]
        out["_fps_" + way] = (frames / secs, "frames/s")
        out["_bpf_" + way] = (octets / frames if frames else 0.0, "B/frame")
    vcpu = rest = 0.0
    for tid, (name, cpu) in cpu1.items():
        spent = cpu - cpu0.get(tid, (name, 0.0))[1]
        if name.startswith("CPU "):
            vcpu += spent
        else:
            rest += spent
    gbit = mbit * secs / 1000
    out["_vcpu_s_per_gbit"] = (vcpu / gbit, "CPU s/Gbit")
    out["_qemu_s_per_gbit"] = (rest / gbit, "CPU s/Gbit")
    return out


def in_ns(ns, argv, timeout=120):
    """Run argv inside network namespace ns; its stdout. Fails the measurement on error."""
    try:
        r = subprocess.run(["ip", "netns", "exec", ns] + argv, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s: no result after %d s" % (" ".join(argv), timeout))
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "%s failed (%d): %s %s" % (
        " ".join(argv), r.returncode, out[-500:], r.stderr.decode("utf-8", "replace")[-500:])
    return out


def note(results, metric, value, unit):
    results[metric] = (value, unit)
    if PROGRESS:
        PROGRESS(metric, value, unit)


def note_tcp(results, metric, out, before=None, after=None):
    """Note iperf's Mbit/s in `out` as `metric`, and with the look()s around the transfer, its
    cost (metric + transfer_cost()'s suffixes)."""
    secs, mbit = iperf_summary(out)
    note(results, metric, mbit, "Mbit/s")
    if before is not None:
        for suffix, (value, unit) in transfer_cost(before, after, secs, mbit).items():
            note(results, metric + suffix, value, unit)


def host_side(ns, peer_ip, results, secs, pid=None):
    """ping, UDP round trips and TCP towards the peer, from namespace ns; with QEMU's pid,
    the TCP transfer's cost too (a tap0 in ns)."""
    out = in_ns(ns, ["ping", "-c", str(PING_COUNT), "-i", "0.01", "-W", "2", peer_ip],
                timeout=120)
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
    assert len(times) >= PING_COUNT * 0.95, "ping: %d of %d replies" % (len(times), PING_COUNT)
    note(results, "net_ping_rtt_median", statistics.median(times), "ms")
    out = in_ns(ns, [sys.executable, os.path.abspath(__file__), "rr", peer_ip, str(UDP_PORT),
                     str(RR_SECS)], timeout=60)
    note(results, "net_udp_echo_rr", float(out.split()[0]), "rt/s")
    before = look(ns, pid) if pid else None
    out = in_ns(ns, ["iperf", "-c", peer_ip, "-t", str(secs), "-f", "m"], timeout=secs + 60)
    note_tcp(results, "net_tcp_host_to_guest", out, before, look(ns, pid) if pid else None)


def guest_to_host(ns, secs, run_client, results, pid=None):
    """Host `iperf -s -1` in ns while run_client() makes the peer send: the server's figure as
    net_tcp_guest_to_host, with QEMU's pid its cost too."""
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "iperf", "-s", "-1", "-f", "m"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1)  # let it listen
        before = look(ns, pid) if pid else None
        run_client()
        after = look(ns, pid) if pid else None
        try:
            out = srv.communicate(timeout=15)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            srv.terminate()
            out = srv.communicate()[0].decode("utf-8", "replace")
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    note_tcp(results, "net_tcp_guest_to_host", out, before, after)


def vio_net(side, secs=None):
    """Boot the vio kernel with configuration `side`; (ok, reason, results, info, log)."""
    secs = secs or TCP_SECS
    props, desc = VIO_CONFIGS[side]
    results, info = {}, {"desc": desc}

    def measure(q):
        q.wait_for(r"vio> ")
        q.wait_for(r"net0: %s/24 \(static\)" % re.escape(GUEST_IP), timeout=30)
        info["mtu"] = re.search(r"mtu (\d+)", q.shell("ip")).group(1)
        feats = q.shell("virtio net0")
        ring = "packed" if side == "vio-packed" else "split"
        assert ", ring %s," % ring in feats, "net0 not on a %s ring: %r" % (ring, feats[:300])
        negotiated = re.search(r"features 0x[0-9a-f]+: (.*)", feats).group(1).split()
        info["features"] = " ".join(f for f in negotiated if f in OFFLOADS + ("MRG_RXBUF",))
        off = {"vio-notso": OFFLOADS[2:], "vio-nocsum": OFFLOADS}.get(side, ())
        assert not set(off) & set(negotiated), "%s: negotiated %s" % (side, " ".join(
            f for f in negotiated if f in off))
        assert "echo on port" in q.shell("udp echo %d" % UDP_PORT)
        assert "server on port 5001" in q.shell("iperf server")
        host_side(q.netns, GUEST_IP, results, secs, q.proc.pid)
        q.wait_for(r"iperf: done \(server\)", timeout=30)

        def client():
            out = q.shell("iperf client %s %d" % (HOST_IP, secs), timeout=secs + 60)
            assert re.search(r"iperf: done \(client\)", out), "kernel iperf client: %r" % out
        guest_to_host(q.netns, secs, client, results, q.proc.pid)
        q.send("poweroff\r")

    scn = harness.Scenario(
        "bench-net-" + side, mode="shell", machine="q35", mem="512M",
        boot="direct", expect_exit=0, timeout=300 + 4 * secs,
        netns=HOST_IP + "/24", cmdline="vio.ip=%s/24" % GUEST_IP,
        qemu_args=NAMED_THREADS + (with_packed if side == "vio-packed" else list)(
            ["-device", "virtio-rng-pci",
             "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
             "-device", "virtio-net-pci,netdev=n0" + props]),
        interact=measure)
    ok, reason, _secs, log_path = harness.run_scenario(scn)
    return ok, reason, results, info, log_path


def linux_argv(peer, append, mem):
    """A QEMU command line for the Linux guest: the harness's machine (two vCPUs, of which
    vio starts one; maxcpus=1 makes Linux do the same), the peer's kernel."""
    vmlinuz, initramfs = peer
    return lambda workdir: [
        "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-smp", "2", "-m", mem,
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
        "-nodefaults", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-kernel", vmlinuz, "-initrd", initramfs,
        "-append", "console=ttyS0 quiet maxcpus=1 " + append]


def linux_net(peer, secs=None):
    """Boot the Linux guest (bench=net); (ok, reason, results, info, log)."""
    secs = secs or TCP_SECS
    results, info = {}, {"desc": "Linux 6.1 guest, default offloads"}
    prompt = r"linux> "

    def measure(q):
        q.wait_for(prompt, timeout=120)
        info["features"] = q.shell("cat /sys/class/net/eth0/mtu", until=prompt).strip()
        host_side(q.netns, GUEST_IP, results, secs, q.proc.pid)

        def client():
            out = q.shell("iperf -c %s -t %d -f m" % (HOST_IP, secs), until=prompt,
                          timeout=secs + 60)
            assert "Mbits/sec" in out, "guest iperf client: %r" % out
        guest_to_host(q.netns, secs, client, results, q.proc.pid)
        q.send("poweroff -f\r")

    scn = harness.Scenario(
        "bench-net-linux", expect_exit=0, timeout=300 + 4 * secs, netns=HOST_IP + "/24",
        argv=linux_argv(peer, "bench=net ip=%s/24" % GUEST_IP, "512M"),
        qemu_args=NAMED_THREADS + [
            "-device", "virtio-rng-pci",
            "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device", "virtio-net-pci,netdev=n0"],
        interact=measure)
    ok, reason, _secs, log_path = harness.run_scenario(scn)
    return ok, reason, results, info, log_path


def host_net(loadgen, secs=None):
    """The same commands between two namespaces joined by a veth pair: (ok, reason, results)."""
    secs = secs or TCP_SECS
    a, b = "vio-%s" % os.urandom(4).hex(), "vio-%s" % os.urandom(4).hex()
    results, procs = {}, []
    try:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", a, "link", "add", "veth0", "type", "veth", "peer", "name",
                        "veth1", "netns", b], check=True)
        for ns, dev, addr in ((a, "veth0", HOST_IP), (b, "veth1", GUEST_IP)):
            subprocess.run(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        for argv in ([loadgen, "udpecho", str(UDP_PORT)], ["iperf", "-s"]):
            procs.append(subprocess.Popen(["ip", "netns", "exec", b] + argv,
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        time.sleep(1)
        host_side(a, GUEST_IP, results, secs)
        guest_to_host(a, secs, lambda: in_ns(
            b, ["iperf", "-c", HOST_IP, "-t", str(secs), "-f", "m"], timeout=secs + 60),
            results)
        return True, None, results
    except (AssertionError, OSError, subprocess.CalledProcessError) as e:
        return False, str(e), results
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)


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
    secs = int(os.environ.get("BENCH_NET_SECS", "3")) if "--quick" in sys.argv else TCP_SECS
    sides = [a for a in sys.argv[1:] if not a.startswith("-")] or ["vio"]
    if len(sides) > 1 or sides[0] not in VIO_CONFIGS:
        print("usage: bench_net.py [--quick] [%s]" % "|".join(VIO_CONFIGS))
        return 2
    ok, reason, results, info, log_path = vio_net(sides[0], secs)
    print("# vio bench net: %s; features: %s; MTU %s; TCP %d s (iperf 2)" % (
        info["desc"], info.get("features", "?"), info.get("mtu", "?"), secs))
    for metric, (value, unit) in results.items():
        print("BENCH %-44s %14.3f %s" % (metric, value, unit))
    if not ok:
        print("# failed: %s (log %s)" % (reason, os.path.relpath(log_path)))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "rr":
        rr_peer(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
