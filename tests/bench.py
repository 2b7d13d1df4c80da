#!/usr/bin/env python3
"""
make bench: vio beside a Linux guest beside the limit, on the same QEMU, in interleaved rounds,
written up as build/bench/report.md with PNG plots. Numbers, not pass/fail: the exit status
only says whether every run completed.

Each round runs, in turn:
  devices   the vio kernel (vio.mode=bench, src/kernel/bench.c) on split rings, again with
            packed=on on every virtio device (vio negotiates the packed ring when offered),
            the Linux guest (bench=dev,
            tests/bench/loadgen.c), then `qemu-img bench` per block row: q35, TCG, 1 GiB,
            the same 128 MiB raw image with cache=none,aio=threads, virtio-blk-pci,
            virtio-rng-pci, a virtio-serial port named org.vio.bench on /dev/null, virtio-net
            on `-netdev dgram` (64-byte raw frames flooded by the host); $BENCH_MS (2000) ms
            per metric in both guests
            Both guests get the harness's two vCPUs (QEMU 7.2's TCG keeps guest memory
            barriers only with more than one) and run on one: vio never starts the second,
            Linux boots with maxcpus=1.
  storage   tests/bench_storage.py: 9p and virtio-scsi beside the host's own tools
  network   tests/bench_net.py: vio with every offload QEMU offers, without segmentation
            offload (checksum offloads only), without any offload, with packed=on, the Linux
            guest, then the same host tools between two namespaces over a veth pair (the
            limit); for each TCP transfer of a guest also the frames per second and bytes per
            frame each way on the tap and QEMU's CPU seconds per Gbit (vCPU, the rest)
  boot      QEMU start to the shell prompt (vio, direct PVH boot and GRUB ISO) and to /init
            (Linux), no devices
Once per run (group "footprint"): vio's footprint (size of build/vio.elf, libvio.a per
driver, DMA and heap bytes per device from boots with one device each).

The ratios are computed within each round (so a noisy moment of the shared host moves both
sides of one ratio) and are oriented so that above 1 means vio is faster: guest/peer for
rates, peer/guest for times.

  python3 tests/bench.py            $BENCH_ROUNDS rounds (3); progress on stderr
  python3 tests/bench.py --quick    CI: vio (split rings) only, one round, short metrics,
                                    under a minute,
                                    into build/bench/quick/ (also BENCH_QUICK=1)

BENCH_GROUPS picks the groups to run, comma-separated, of devices (the block and devices
rows), storage, net, boot, footprint (default: all); BENCH_ROUNDS the number of rounds. So
`BENCH_GROUPS=net BENCH_ROUNDS=1 BENCH_NET_SECS=3 make bench` is one short network round.

BENCH_ACCEL=kvm runs the device boots under KVM when the kernel's self-tests pass under it
here (tests/qemu/accel.py), else under TCG; the report says which ran.
"""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "qemu"))
sys.path.insert(0, HERE)
import accel  # noqa: E402
import harness  # noqa: E402
import scn_net  # noqa: E402
import bench_net  # noqa: E402
import bench_storage  # noqa: E402

QUICK = "--quick" in sys.argv or os.environ.get("BENCH_QUICK") == "1"
OUT = os.path.join(harness.BUILD, "bench", "quick" if QUICK else "")
IMG = os.path.join(harness.BUILD, "bench", "disk.img")
IMG_MB = 128
MS = int(os.environ.get("BENCH_MS", "200" if QUICK else "2000"))
ROUNDS = 1 if QUICK else int(os.environ.get("BENCH_ROUNDS", "3"))
LOADGEN = os.path.join(harness.BUILD, "bench", "loadgen")
PEER_DIR = os.path.join(harness.BUILD, "bench", "linux")

SIDES = ["vio", "vio-packed", "vio-notso", "vio-nocsum", "linux", "limit"]
SIDE_TITLE = {"vio": "vio, split ring", "vio-packed": "vio, packed ring",
              "vio-notso": "vio, csum offload only", "vio-nocsum": "vio, no offload",
              "linux": "Linux 6.1", "limit": "limit"}
SIDE_COLOR = {"vio": "#1f77b4", "vio-packed": "#2ca02c", "vio-notso": "#6baed6",
              "vio-nocsum": "#c6dbef", "linux": "#ff7f0e", "limit": "#7f7f7f"}
# The vio sides that get ratio columns against Linux and the limit.
RATIO_SIDES = ["vio", "vio-packed"]

# metric -> (group, title, higher is better)
METRICS = {
    "blk_randread_4k_qd1": ("block", "4 KiB random read, QD1", True),
    "blk_randread_4k_qd32": ("block", "4 KiB random read, QD32", True),
    "blk_seqread_64k": ("block", "64 KiB sequential read, QD4", True),
    "blk_seqread_1m": ("block", "1 MiB sequential read, QD4", True),
    "blk_seqwrite_64k": ("block", "64 KiB sequential write, QD4", True),
    "rng_read": ("devices", "virtio-rng read", True),
    "console_tx": ("devices", "virtio-console write", True),
    "net_tx_64b": ("devices", "virtio-net TX, 64-byte frames", True),
    "net_rx_64b": ("devices", "virtio-net RX, 64-byte frames", True),
    "net_tcp_host_to_guest": ("network", "TCP host to guest (iperf 2)", True),
    "net_tcp_guest_to_host": ("network", "TCP guest to host (iperf 2)", True),
    "net_udp_echo_rr": ("network", "UDP echo, 64 bytes, round trips", True),
    "net_ping_rtt_median": ("network", "ping round trip, median", False),
    "boot_ms": ("boot", "boot: QEMU start to prompt (vio, PVH) / to /init (Linux)", False),
    "boot_grub_ms": ("boot", "boot: QEMU start to prompt through GRUB (vio)", False),
}
METRICS.update(bench_storage.METRICS)  # 9p, and virtio-scsi beside virtio-blk at QD1
GROUPS = ["block", "storage", "devices", "network", "boot"]

# What each TCP transfer of a guest cost (bench_net.transfer_cost()): metric suffix ->
# (column title, higher is better). Group "tcp-cost" has a table of its own, a row per side
# and direction (tcp_cost_table()), and a plot (tcp_plot()).
TCP = ["net_tcp_host_to_guest", "net_tcp_guest_to_host"]
COST = {"_fps_to_guest": ("frames/s to guest", True),
        "_fps_from_guest": ("frames/s from guest", True),
        "_bpf_to_guest": ("bytes/frame to guest", True),
        "_bpf_from_guest": ("bytes/frame from guest", True),
        "_vcpu_s_per_gbit": ("vCPU s/Gbit", False),
        "_qemu_s_per_gbit": ("rest of QEMU s/Gbit", False)}
for _m in TCP:
    for _suffix, (_title, _higher) in COST.items():
        METRICS[_m + _suffix] = ("tcp-cost", "%s: %s" % (METRICS[_m][1], _title), _higher)
# The cost table's order: each offload added in turn, then the other peers.
COST_SIDES = ["vio-nocsum", "vio-notso", "vio", "vio-packed", "linux", "limit"]

# BENCH_GROUPS: the groups to run; a job's kind -> its group.
JOB_GROUP = {"devices": "devices", "qemu-img": "devices", "storage": "storage",
             "storage-host": "storage", "net": "net", "veth": "net", "boot": "boot"}
RUN_GROUPS = ["devices", "storage", "net", "boot", "footprint"]
if os.environ.get("BENCH_GROUPS"):
    RUN_GROUPS = os.environ["BENCH_GROUPS"].split(",")
    for _g in RUN_GROUPS:
        if _g not in JOB_GROUP.values() and _g != "footprint":
            sys.exit("bench: BENCH_GROUPS: no group %r (devices, storage, net, boot, "
                     "footprint)" % _g)

# metric -> (request size, depth, qemu-img extra args, unit converter from ops/s); the
# "random" rows use a 1 MiB + 4 KiB stride: qemu-img bench has no random mode.
QEMU_IMG = {
    "blk_randread_4k_qd1": (4096, 1, ["-S", str(1024 * 1024 + 4096)], lambda r: r),
    "blk_randread_4k_qd32": (4096, 32, ["-S", str(1024 * 1024 + 4096)], lambda r: r),
    "blk_seqread_64k": (65536, 4, [], lambda r: r * 65536 / 2**20),
    "blk_seqread_1m": (1 << 20, 4, [], lambda r: r),
    "blk_seqwrite_64k": (65536, 4, ["-w"], lambda r: r * 65536 / 2**20),
}

bench_net.PROGRESS = lambda metric, value, unit: progress("  %s %.3f %s" % (
    metric, value, unit))
bench_storage.PROGRESS = bench_net.PROGRESS
if QUICK:
    bench_net.PING_COUNT, bench_net.RR_SECS, bench_net.TCP_SECS = 20, 1.0, 2

# Seconds a job takes on a quiet host: the progress line's estimate until measured.
GUESS = {"devices": 40, "qemu-img": 15, "net": 50, "veth": 30, "boot": 10}
GUESS.update(bench_storage.GUESS)
if QUICK:
    GUESS.update(devices=12, net=20, boot=3)


def make_image():
    os.makedirs(os.path.dirname(IMG), exist_ok=True)
    if not os.path.exists(IMG) or os.path.getsize(IMG) != IMG_MB << 20:
        subprocess.run(["dd", "if=/dev/urandom", "of=" + IMG, "bs=1M", "count=%d" % IMG_MB,
                        "status=none"], check=True)


def bench_lines(log):
    return {m: (float(v), u) for m, v, u in
            re.findall(r"^BENCH (\S+) ([0-9.]+) (\S+)$", log, re.M)}


# --- the devices ------------------------------------------------------------------------------

def device_args(workdir, devices=("rng", "blk", "console", "net"), packed=False):
    """QEMU arguments for the device set; `packed` adds packed=on to every virtio device.
    QEMU names its threads (debug-threads) so that bench_net.qemu_threads() can tell them
    apart."""
    args = ["-name", "bench,debug-threads=on"]
    if "rng" in devices:
        args += ["-device", "virtio-rng-pci"]
    if "blk" in devices:
        args += ["-drive", "file=%s,format=raw,if=none,id=d0,cache=none,aio=threads" % IMG,
                 "-device", "virtio-blk-pci,drive=d0"]
    if "console" in devices:
        args += ["-device", "virtio-serial-pci,id=vser",
                 "-chardev", "file,id=bn,path=/dev/null",
                 "-device", "virtserialport,bus=vser.0,chardev=bn,name=org.vio.bench"]
    if "net" in devices:
        args += scn_net.net_setup(workdir)[2:]  # without net_setup's own virtio-rng-pci
    return bench_net.with_packed(args) if packed else args


def threads_busy(before, after, secs):
    """Cores busy per thread name (the workers summed) between two qemu_threads() looks; a
    thread that came or went in between counts from zero or not at all."""
    busy = {}
    for tid, (name, cpu) in after.items():
        name = "worker" if name.startswith("worker") else name
        spent = cpu - before.get(tid, (name, 0.0))[1]
        if spent > 0:
            busy[name] = busy.get(name, 0.0) + spent / secs
    return busy


THREADS = {}  # scenario name -> {block metric: {thread: cores busy}} (follow())


def follow(q, pattern, timeout):
    """q.wait_for(pattern), showing each BENCH line the guest prints meanwhile as progress,
    and noting how busy each QEMU thread was during each block row (from the line before it
    to its own) in THREADS."""
    rx = re.compile(r"^BENCH (\S+) ([0-9.]+) (\S+)$", re.M)
    seen = len(rx.findall(q.log))
    mark = (time.monotonic(), bench_net.qemu_threads(q.proc.pid))
    end = time.monotonic() + timeout
    while True:
        try:
            return q.wait_for(pattern, timeout=0.2)
        except harness.Timeout:
            if time.monotonic() > end or q.proc.poll() is not None:
                raise
        finally:
            found = rx.findall(q.log)
            if found[seen:]:
                now = (time.monotonic(), bench_net.qemu_threads(q.proc.pid))
                secs = now[0] - mark[0]
                for metric, value, unit in found[seen:]:
                    progress("  %s %s %s" % (metric, value, unit))
                    if metric.startswith("blk_") and secs > 0:
                        THREADS.setdefault(q.scn.name, {})[metric] = threads_busy(
                            mark[1], now[1], secs)
                mark = now
            seen = len(found)


def flood(q):
    """Flood 64-byte frames at the guest during its net RX phase."""
    import socket
    import threading
    if not os.path.exists("%s/ports" % q.workdir):
        return
    guest_port, host_port = map(int, open("%s/ports" % q.workdir).read().split())
    follow(q, r"^BENCH-PHASE net-rx$", timeout=600)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", host_port))
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01\x88\xb5" + bytes(50)
    stop = threading.Event()

    def send():
        while not stop.is_set():
            for _ in range(64):
                sock.sendto(frame, ("127.0.0.1", guest_port))
    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        follow(q, r"^BENCH-PHASE net-rx-done$", timeout=60)
    finally:
        stop.set()
        t.join()
        sock.close()


ACCEL = "tcg"  # main() may choose KVM (BENCH_ACCEL=kvm)
BLK_STATS = {}  # side -> {metric: "requests N notifies/req ..."} from the last vio boot
BLK_THREADS = {}  # side -> {metric: {QEMU thread: cores busy}} from the last boot


def run_devices(side, ms=None, devices=("rng", "blk", "console", "net"), name=None):
    """One boot of vio (vio.mode=bench; side vio-packed: packed=on on every device) or Linux
    (bench=dev) on the device set."""
    ms = ms or MS
    packed = side == "vio-packed"
    in_rounds = name is None  # not one of footprint()'s one-device boots
    common = dict(setup=lambda w: device_args(w, devices, packed), interact=flood, timeout=900,
                  expect_tap=False, accel=ACCEL)
    if side in ("vio", "vio-packed"):
        name = name or ("bench-packed" if packed else "bench")
        scn = harness.Scenario(name, mode="bench", machine="q35", mem="1G",
                               boot="direct", cmdline="vio.bench_ms=%d" % ms, **common)
    else:
        scn = harness.Scenario(name or "bench-linux", expect_exit=0,
                               argv=bench_net.linux_argv(peer_paths(), "bench=dev ms=%d" % ms,
                                                         "1G"), **common)
    ok, reason, _secs, log_path = harness.run_scenario(scn)
    found = bench_lines(open(log_path).read()) if os.path.exists(log_path) else {}
    if ok and "BENCH done" not in open(log_path).read():
        ok, reason = False, "no 'BENCH done' in the log"
    if in_rounds and THREADS.get(scn.name):
        BLK_THREADS[side] = THREADS.pop(scn.name)
    if in_rounds and side.startswith("vio") and os.path.exists(log_path):
        # bench.c's per-request counters of each block row: the report's last table
        BLK_STATS[side] = dict(re.findall(r"^BENCH-STAT (\S+) (.*)$", open(log_path).read(),
                                          re.M)) or BLK_STATS.get(side, {})
    if ok and side.startswith("vio"):
        # the boot's device table: every bound device on the ring this side is about
        rings = set(re.findall(r"^  \S+ +virtio-\S+ \S+ .* ring=(\w+)$", open(log_path).read(),
                               re.M))
        want = {"packed" if packed else "split"}
        if rings != want:
            ok, reason = False, "device table rings %s, expected %s" % (
                sorted(rings) or "missing", sorted(want))
    return ok, reason, found, log_path


def run_qemu_img():
    results = {}
    for metric, (size, depth, extra, conv) in QEMU_IMG.items():
        count = 2000
        while True:
            p = subprocess.run(["qemu-img", "bench", "-f", "raw", "-t", "none", "-i", "threads",
                                "-s", str(size), "-d", str(depth), "-c", str(count)] + extra
                               + [IMG], capture_output=True, text=True, check=True)
            secs = float(re.search(r"Run completed in ([0-9.]+) seconds", p.stdout).group(1))
            if secs >= MS / 1000 / 2 or count > 10**7:
                break
            count *= max(2, int(MS / 1000 / max(secs, 1e-3)))
        unit = "IOPS" if metric.startswith("blk_randread") else "MiB/s"
        results[metric] = (conv(count / secs), unit)
    return True, None, results, None


# --- boot time ------------------------------------------------------------------------------

def run_boot(side, boot="direct"):
    """Seconds from starting QEMU to vio's shell prompt or Linux's /init, as milliseconds."""
    t = {}

    def setup(_workdir):  # the harness calls it just before it starts QEMU
        t["start"] = time.monotonic()
        return []

    def interact(q):
        q.wait_for(r"vio> " if side == "vio" else r"^LINUX-INIT$", timeout=120)
        t["prompt"] = time.monotonic()
        if side == "vio":
            q.send("poweroff\r")

    if side == "vio":
        scn = harness.Scenario("bench-boot-" + boot, mode="shell", machine="q35", mem="512M",
                               boot=boot, expect_exit=0, timeout=180, setup=setup,
                               interact=interact)
    else:
        scn = harness.Scenario("bench-boot-linux", expect_exit=0, timeout=180, setup=setup,
                               interact=interact,
                               argv=bench_net.linux_argv(peer_paths(), "bench=boot", "512M"))
    ok, reason, _secs, log_path = harness.run_scenario(scn)
    metric = "boot_grub_ms" if boot == "grub" else "boot_ms"
    found = {metric: ((t["prompt"] - t["start"]) * 1000, "ms")} if "prompt" in t else {}
    return ok, reason, found, log_path


# --- the Linux peer ---------------------------------------------------------------------------

_peer = []


def peer_paths():
    """(vmlinuz, initramfs) from scripts/linux-peer.sh, built once per run."""
    if not _peer:
        p = subprocess.run([os.path.join(harness.ROOT, "scripts", "linux-peer.sh"), LOADGEN,
                            PEER_DIR], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("scripts/linux-peer.sh failed: " + p.stderr.strip()[-500:])
        _peer.extend(os.path.abspath(x) for x in p.stdout.split())
    return tuple(_peer)


# --- footprint --------------------------------------------------------------------------------

def footprint():
    """Sizes of the kernel and of libvio.a's members, and each device's memory."""
    out = {}
    p = subprocess.run(["size", harness.ELF], capture_output=True, text=True, check=True)
    text, data, bss = map(int, p.stdout.split("\n")[1].split()[:3])
    out["kernel"] = {"text": text, "data": data, "bss": bss}
    p = subprocess.run(["size", os.path.join(harness.BUILD, "libvio.a")], capture_output=True,
                       text=True, check=True)
    members = {}
    for line in p.stdout.split("\n")[1:]:
        f = line.split()
        if len(f) >= 6:
            members[f[5]] = int(f[0]) + int(f[1]) + int(f[2])
    out["lib"] = members
    # DMA and heap with one device at a time, minus a boot with none.
    mem, runs = {}, [("none", ()), ("virtio-blk", ("blk",)), ("virtio-net", ("net",)),
                     ("virtio-console", ("console",)), ("virtio-rng", ("rng",))]
    for label, devices in runs:
        ok, reason, found, _log = run_devices("vio", ms=1, devices=devices,
                                              name="bench-mem-" + label)
        if not ok or "mem_dma_bytes" not in found:
            mem[label] = "failed: %s" % reason
            continue
        mem[label] = (found["mem_dma_bytes"][0], found["mem_heap_bytes"][0])
    base = mem.get("none")
    out["mem"] = {k: (v if isinstance(v, str) or not isinstance(base, tuple)
                      else (v[0] - base[0], v[1] - base[1]))
                  for k, v in mem.items() if k != "none"}
    return out


# --- the rounds -------------------------------------------------------------------------------

def jobs():
    """(label, side, kind, function) in the order one round runs them."""
    out = [("vio devices", "vio", "devices", lambda: run_devices("vio"))]
    if not QUICK:
        out += [("vio devices, packed ring", "vio-packed", "devices",
                 lambda: run_devices("vio-packed")),
                ("Linux devices", "linux", "devices", lambda: run_devices("linux")),
                ("qemu-img bench", "limit", "qemu-img", run_qemu_img)] + \
            bench_storage.jobs(IMG)
    out += [("vio network", "vio", "net", lambda: bench_net.vio_net("vio")[:3]
             + (None,))]
    if not QUICK:
        out += [("vio network, csum offload only", "vio-notso", "net",
                 lambda: bench_net.vio_net("vio-notso")[:3] + (None,)),
                ("vio network, no offload", "vio-nocsum", "net",
                 lambda: bench_net.vio_net("vio-nocsum")[:3] + (None,)),
                ("vio network, packed ring", "vio-packed", "net",
                 lambda: bench_net.vio_net("vio-packed")[:3] + (None,)),
                ("Linux network", "linux", "net",
                 lambda: bench_net.linux_net(peer_paths())[:3] + (None,)),
                ("host over veth", "limit", "veth",
                 lambda: bench_net.host_net(LOADGEN) + (None,))]
    out += [("vio boot (PVH)", "vio", "boot", lambda: run_boot("vio", "direct"))]
    if not QUICK:
        out += [("vio boot (GRUB)", "vio", "boot", lambda: run_boot("vio", "grub")),
                ("Linux boot", "linux", "boot", lambda: run_boot("linux"))]
    return [job for job in out if JOB_GROUP[job[2]] in RUN_GROUPS]


def progress(text):
    sys.stderr.write("bench: %s\n" % text)
    sys.stderr.flush()


def run_rounds():
    """values[side][metric] = [one value per round]; units; failures."""
    todo = jobs()
    values = {s: {} for s in SIDES}
    units, failures, took = {}, [], {}
    total = ROUNDS * len(todo)
    for r in range(ROUNDS):
        for i, (label, side, kind, fn) in enumerate(todo):
            done = r * len(todo) + i
            left = sum(took.get(l, GUESS[k]) for l, _s, k, _f in todo[i:]) + \
                (ROUNDS - r - 1) * sum(took.get(l, GUESS[k]) for l, _s, k, _f in todo)
            progress("round %d/%d, %s (%d of %d), about %d min %02d s left" % (
                r + 1, ROUNDS, label, done + 1, total, left // 60, left % 60))
            t0 = time.monotonic()
            try:
                ok, reason, found, log_path = fn()
            except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                ok, reason, found, log_path = False, str(e), {}, None
            took[label] = time.monotonic() - t0
            for metric, (value, unit) in found.items():
                if metric in METRICS:
                    values[side].setdefault(metric, [None] * ROUNDS)[r] = value
                    units[metric] = unit
            if not ok:
                failures.append("round %d, %s: %s%s" % (
                    r + 1, label, reason,
                    " (log %s)" % os.path.relpath(log_path) if log_path else ""))
                progress("  failed: %s" % failures[-1])
    return values, units, failures


# --- the report -------------------------------------------------------------------------------

def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), statistics.median(xs), max(xs)) if xs else None


def ratios(values, metric, other, mine="vio"):
    """`mine` (a vio side) against `other` within each round, >1 when vio is faster."""
    a = values[mine].get(metric, [])
    b = values[other].get(metric, [])
    higher = METRICS[metric][2]
    out = [(x / y if higher else y / x) for x, y in zip(a, b)
           if x is not None and y is not None and x > 0 and y > 0]
    return spread(out)


def fmt(x):
    if x is None:
        return ""
    if abs(x) >= 100:
        return "{:,.0f}".format(x)
    return "%.3g" % x


def fmt3(s, ratio=False):
    if s is None:
        return "-"
    if ratio:
        return "%.2f / **%.2f** / %.2f" % s
    return "%s / **%s** / %s" % tuple(fmt(x) for x in s)


def host_info():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                          text=True).stdout.split("\n")[0]
    return {"cpu": cpu, "cores": os.cpu_count(), "qemu": qemu,
            "kernel": platform.release()}


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def plots(values, units):
    """One PNG per group: a panel per metric, a bar per side (median), min-max whiskers."""
    try:
        import matplotlib
    except ImportError:  # Debian's python3-matplotlib, when python3 is not Debian's
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import matplotlib
        except ImportError:
            return [], "matplotlib is missing (apt-get install python3-matplotlib): no plots"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    for group in GROUPS:
        metrics = [m for m in METRICS if METRICS[m][0] == group
                   and any(spread(values[s].get(m, [])) for s in SIDES)]
        if not metrics:
            continue
        cols = min(3, len(metrics))
        rows = (len(metrics) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            sides = [s for s in SIDES if spread(values[s].get(metric, []))]
            sp = [spread(values[s][metric]) for s in sides]
            med = [x[1] for x in sp]
            err = [[x[1] - x[0] for x in sp], [x[2] - x[1] for x in sp]]
            ax.bar(range(len(sides)), med, yerr=err, capsize=5,
                   color=[SIDE_COLOR[s] for s in sides])
            ax.set_xticks(range(len(sides)))
            ax.set_xticklabels([SIDE_TITLE[s].replace(", ", ",\n") for s in sides],
                               fontsize=8)
            ax.set_title(METRICS[metric][1], fontsize=9)
            ax.set_ylabel(units.get(metric, "") + ("" if METRICS[metric][2]
                                                   else " (lower is better)"), fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
        for ax in list(axes.flat)[len(metrics):]:
            ax.axis("off")
        fig.suptitle("vio bench: %s (median of %d rounds, whiskers min-max)" % (group, ROUNDS),
                     fontsize=10)
        fig.tight_layout()
        name = "%s.png" % group
        fig.savefig(os.path.join(OUT, name), dpi=90)
        plt.close(fig)
        made.append((group, name))
    name = tcp_plot(values, plt)
    if name:
        made.append(("tcp-cost", name))
    return made, None


def tcp_plot(values, plt):
    """tcp.png: per direction, Gbit/s, frames/s each way and CPU seconds per Gbit (vCPU and
    the rest of QEMU stacked) of each side, medians with min-max whiskers; None without data."""
    sides = [s for s in COST_SIDES if any(spread(values[s].get(m, [])) for m in TCP)]
    if not sides:
        return None

    def med(side, metric):
        sp = spread(values[side].get(metric, []))
        return (sp[1], sp[1] - sp[0], sp[2] - sp[1]) if sp else (0, 0, 0)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.4), squeeze=False)
    for row, metric in zip(axes, TCP):
        panels = [
            ([("", "Gbit/s", 1e-3)], "Gbit/s"),
            ([("_fps_to_guest", "to guest", 1e-3), ("_fps_from_guest", "from guest", 1e-3)],
             "thousand frames/s on the tap"),
            ([("_vcpu_s_per_gbit", "vCPU", 1), ("_qemu_s_per_gbit", "rest of QEMU", 1)],
             "CPU seconds per Gbit (lower is better)")]
        for ax, (series, ylabel) in zip(row, panels):
            here = sides if len(series) == 1 else [s for s in sides if s != "limit"]
            x = list(range(len(here)))
            bottom = [0.0] * len(here)
            for k, (suffix, label, scale) in enumerate(series):
                m = [med(s, metric + suffix) for s in here]
                val = [v[0] * scale for v in m]
                err = [[v[1] * scale for v in m], [v[2] * scale for v in m]]
                if suffix.startswith("_fps"):  # side by side
                    ax.bar([i + (k - 0.5) * 0.4 for i in x], val, 0.4, yerr=err, capsize=3,
                           label=label, color=["#444444", "#bbbbbb"][k])
                elif suffix.endswith("per_gbit"):  # stacked
                    ax.bar(x, val, bottom=bottom, label=label, color=["#444444", "#bbbbbb"][k])
                    bottom = [b + v for b, v in zip(bottom, val)]
                else:
                    ax.bar(x, val, yerr=err, capsize=5, color=[SIDE_COLOR[s] for s in here])
            if len(series) > 1:
                ax.legend(fontsize=7)
            ax.set_xticks(x)
            ax.set_xticklabels([textwrap.fill(SIDE_TITLE[s], 11) for s in here], fontsize=7)
            ax.set_title("%s: %s" % (METRICS[metric][1], ylabel.split(" (")[0]), fontsize=9)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
    fig.suptitle("vio bench: where TCP's time goes (median of %d rounds, whiskers min-max, "
                 "CPU stacked medians; the limit has no tap and no QEMU)" % ROUNDS, fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "tcp.png"), dpi=90)
    plt.close(fig)
    return "tcp.png"


def tcp_cost_table(values):
    """The "where TCP's time goes" table: a row per side and direction, a column per
    transfer_cost() figure, min / median / max; blank where nothing was measured (the limit
    has no tap and no QEMU)."""
    sides = [s for s in COST_SIDES if any(spread(values[s].get(m, [])) for m in TCP)]
    if not sides:
        return []
    lines = ["### Where TCP's time goes", "",
             "For each TCP transfer: the frames per second that crossed the tap each way and "
             "their average size in bytes (above the MTU when segmentation offload hands whole "
             "TCP segments across), and QEMU's CPU seconds per Gbit moved: its vCPU thread "
             "(`CPU 0/TCG`) and the rest of its threads (main loop, workers). Sides in the order "
             "each offload is added.", "",
             "| side | transfer | Mbit/s | " + " | ".join(t for t, _h in COST.values()) + " |",
             "|---|---|" + "---:|" * (1 + len(COST))]
    for side in sides:
        for metric in TCP:
            cells = [fmt3(spread(values[side].get(metric + x, []))) for x in [""] + list(COST)]
            if side == "limit":
                cells = cells[:1] + [""] * len(COST)
            lines.append("| %s | %s | %s |" % (SIDE_TITLE[side], METRICS[metric][1].split(
                " (")[0], " | ".join(cells)))
    return lines + [""]


def footprint_lines(fp):
    """The report's footprint section from footprint()."""
    lines = ["## Footprint", "",
             "`size build/vio.elf` (the teaching kernel with lwIP and newlib): text %s, "
             "data %s, bss %s bytes." % tuple("{:,}".format(fp["kernel"][k])
                                              for k in ("text", "data", "bss")), "",
             "`size build/libvio.a` (GCC, x86-64, the kernel's flags), text + data + bss of "
             "each member:", "", "| part | bytes |", "|---|---:|"]
    lib = fp["lib"]
    drivers = sorted(m for m in lib if m.startswith("virtio_") and m not in ("virtio_pci.o",))
    for m in drivers:
        lines.append("| driver %s | %s |" % (m[:-2], "{:,}".format(lib[m])))
    rest = [m for m in lib if m not in drivers]
    lines += ["| core, PCI and MMIO transports (%d objects) | %s |" % (
        len(rest), "{:,}".format(sum(lib[m] for m in rest))),
        "| libvio.a | %s |" % "{:,}".format(sum(lib.values())), "",
        "Memory per device: the kernel's bench mode prints the DMA bytes vio took through "
        "the port and the kernel heap in use once the devices are probed; a boot with one "
        "device minus a boot with none gives each device's share. The heap share is vio's "
        "private memory plus the kernel's own record of the device (the port takes private "
        "memory from the heap); the two are not told apart.", "",
        "| device (QEMU defaults; 2 vCPUs give virtio-blk 2 queues) | DMA bytes | heap bytes |", "|---|---:|---:|"]
    for dev, v in fp["mem"].items():
        if isinstance(v, str):
            lines.append("| %s | not measured (%s) | |" % (dev, v))
        else:
            lines.append("| %s | %s | %s |" % (dev, "{:,.0f}".format(v[0]),
                                               "{:,.0f}".format(v[1])))
    return lines + [""]


def report(values, units, failures, info, fp, made, plot_note):
    lines = ["# vio benchmark report", "",
             "| | |", "|---|---|",
             "| date | %s |" % info["date"],
             "| host | %s, %d cores, Linux %s |" % (info["cpu"], info["cores"], info["kernel"]),
             "| QEMU | %s; %s |" % (info["qemu"], info["accel"]),
             "| load average (1, 5, 15 min) | before %s; after %s |" % (info["load_before"],
                                                                      info["load_after"]),
             "| rounds | %d, interleaved (vio split, vio packed, Linux, limit in turn each round) |" % ROUNDS,
             "| per metric | %d ms in each guest; TCP %d s; UDP echo %.0f s; ping %d |" % (
                 MS, bench_net.TCP_SECS, bench_net.RR_SECS,
                 bench_net.PING_COUNT),
             "| Linux guest | %s |" % info.get("peer", "not run"),
             "| command | `%s` |" % info["command"], ""]
    lines += ["Every cell is min / **median** / max over the rounds. Ratios are computed "
              "within each round and are above 1 when vio is faster (guest/peer for rates, "
              "peer/guest for times). The limit is `qemu-img bench` on the same image and "
              "cache mode for the block rows, and the same host tools between two network "
              "namespaces over a veth pair (no QEMU) for the network rows.", ""]
    for group in GROUPS:
        metrics = [m for m in METRICS if METRICS[m][0] == group
                   and any(values[s].get(m) for s in SIDES)]
        if not metrics:
            continue
        sides = [s for s in SIDES if any(spread(values[s].get(m, [])) for m in metrics)]
        pairs = [(v, o) for v in RATIO_SIDES if v in sides
                 for o in ("linux", "limit") if o in sides]
        lines += ["## %s" % group.capitalize(), "",
                  "| metric | unit | " + " | ".join(SIDE_TITLE[s] for s in sides) +
                  "".join(" | %s / %s" % (SIDE_TITLE[v], SIDE_TITLE[o]) for v, o in pairs) +
                  " |",
                  "|---|---|" + "---:|" * (len(sides) + len(pairs))]
        for m in metrics:
            cells = [fmt3(spread(values[s].get(m, []))) for s in sides]
            cells += [fmt3(ratios(values, m, o, v), ratio=True) for v, o in pairs]
            lines.append("| %s | %s | %s |" % (METRICS[m][1], units.get(m, ""),
                                               " | ".join(cells)))
        lines.append("")
        for g, name in made:
            if g == group:
                lines += ["![%s](%s)" % (group, name), ""]
        if group == "network":
            lines += tcp_cost_table(values)
            lines += ["![tcp](%s)" % name for g, name in made if g == "tcp-cost"] + [""]
    if plot_note:
        lines += [plot_note, ""]
    if fp:
        lines += footprint_lines(fp)
    if BLK_STATS or BLK_THREADS:
        lines += ["## Block, per device request", "",
                  "From the last round's boots. vio's `BENCH-STAT` lines (src/kernel/bench.c): "
                  "notifies (each an MMIO write that traps into QEMU), queue interrupts and "
                  "indirect tables per completed request, and the nanoseconds per request "
                  "spent in `vio_blk_submit`, in the unplug's notify and in `vio_blk_poll`. "
                  "QEMU's threads: CPU seconds per second of the row (`/proc/<pid>/task/*/stat`"
                  ", utime + stime): the vCPU (`CPU 0/TCG`), the main loop "
                  "(`qemu-system-x86`), the block layer's `worker` threads.",
                  "", "| side | metric | vio's counters | QEMU threads, cores busy |",
                  "|---|---|---|---|"]
        for side in SIDES:
            stats, threads = BLK_STATS.get(side, {}), BLK_THREADS.get(side, {})
            for metric in [m for m in QEMU_IMG if m in stats or m in threads]:
                busy = sorted(threads.get(metric, {}).items(), key=lambda kv: -kv[1])
                lines.append("| %s | %s | %s | %s |" % (
                    SIDE_TITLE[side], metric, stats.get(metric, ""),
                    ", ".join("%s %.2f" % kv for kv in busy if kv[1] >= 0.005)))
        lines.append("")
    if failures:
        lines += ["## Runs that failed", ""] + ["- " + f for f in failures] + [""]
    return "\n".join(lines)


def main():
    if not os.path.exists(harness.ELF):
        print("bench: %s missing (run 'make')" % harness.ELF)
        return 1
    os.makedirs(OUT, exist_ok=True)
    make_image()
    global ACCEL
    ACCEL, verdict = accel.choose(os.environ.get("BENCH_ACCEL", "tcg") == "kvm", harness.ELF,
                                  log_path=os.path.join(OUT, "kvm-probe.log"))
    progress(verdict)
    info = host_info()
    info["accel"] = "device boots under %s" % ACCEL.upper()
    info["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info["load_before"] = loadavg()
    info["command"] = ("make bench-quick" if QUICK else
                       "make bench  (BENCH_ROUNDS=%d BENCH_MS=%d BENCH_NET_SECS=%d%s)" % (
                           ROUNDS, MS, bench_net.TCP_SECS,
                           " BENCH_GROUPS=" + ",".join(RUN_GROUPS)
                           if os.environ.get("BENCH_GROUPS") else ""))
    start = time.monotonic()
    if not QUICK and any(job[1] == "linux" for job in jobs()):
        try:
            vmlinuz, _initramfs = peer_paths()
            info["peer"] = "Debian %s, busybox-static initramfs, tests/bench/loadgen.c" % (
                os.path.basename(os.path.dirname(os.path.realpath(vmlinuz))))
        except RuntimeError as e:
            progress(str(e))
            info["peer"] = "not run: %s" % e
    values, units, failures = run_rounds()
    fp = None
    if "footprint" in RUN_GROUPS:
        progress("footprint")
        fp = footprint()
    info["load_after"] = loadavg()
    made, plot_note = plots(values, units)
    text = report(values, units, failures, info, fp, made, plot_note)
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"info": info, "units": units, "values": values, "footprint": fp,
                   "blk_stats": BLK_STATS, "blk_threads": BLK_THREADS,
                   "failures": failures}, f, indent=1)
    with open(os.path.join(OUT, "results.txt"), "w") as f:
        for side in SIDES:
            for metric, xs in values[side].items():
                s = spread(xs)
                if s:
                    f.write("BENCH %-10s %-44s %14.3f %s\n" % (side, metric, s[1],
                                                               units[metric]))
    print(text)
    print("# report: %s, plots: %s (%.0f s)" % (
        os.path.relpath(os.path.join(OUT, "report.md")),
        ", ".join(n for _g, n in made) or "none", time.monotonic() - start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
