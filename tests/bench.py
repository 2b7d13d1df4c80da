#!/usr/bin/env python3
"""
make bench: boot the kernel with vio.mode=bench on a fixed configuration (q35, 1 vCPU, TCG,
raw image with cache=none,aio=threads) and collect its `BENCH <metric> <value> <unit>`
lines. Beside every block figure, run `qemu-img bench` on the same image with the same cache
mode, request size and queue depth: the ceiling a guest driver could reach, measured in the
same run, and print the guest/ceiling ratio. Results go to build/bench/results.txt.
Numbers, not pass/fail: the exit status only says whether the run completed.
BENCH_ACCEL=kvm runs the guest under KVM when the kernel's self-tests pass under it here
(tests/qemu/accel.py), else under TCG; the report's first line says which ran.
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu"))
import accel  # noqa: E402
import harness  # noqa: E402
import scn_net  # noqa: E402

OUT = os.path.join(harness.BUILD, "bench")
IMG = os.path.join(OUT, "disk.img")
IMG_MB = 128
MS = int(os.environ.get("BENCH_MS", "2000"))

# metric -> (request size, depth, qemu-img extra args, unit converter from ops/s)
BLK = {
    "blk_randread_4k_qd1": (4096, 1, ["-S", str(1024 * 1024 + 4096)], lambda r: r),
    "blk_randread_4k_qd32": (4096, 32, ["-S", str(1024 * 1024 + 4096)], lambda r: r),
    "blk_seqread_64k": (65536, 4, [], lambda r: r * 65536 / 2**20),
    "blk_seqread_1m": (1 << 20, 4, [], lambda r: r),
    "blk_seqwrite_64k": (65536, 4, ["-w"], lambda r: r * 65536 / 2**20),
}


def make_image():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(IMG) or os.path.getsize(IMG) != IMG_MB << 20:
        subprocess.run(["dd", "if=/dev/urandom", "of=" + IMG, "bs=1M", "count=%d" % IMG_MB,
                        "status=none"], check=True)


def qemu_img_rate(size, depth, extra):
    """Operations per second of qemu-img bench (about MS milliseconds of work)."""
    count = 2000
    while True:
        p = subprocess.run(["qemu-img", "bench", "-f", "raw", "-t", "none", "-i", "threads",
                            "-s", str(size), "-d", str(depth), "-c", str(count)] + extra
                           + [IMG], capture_output=True, text=True, check=True)
        secs = float(re.search(r"Run completed in ([0-9.]+) seconds", p.stdout).group(1))
        if secs >= MS / 1000 / 2 or count > 10**7:
            return count / secs
        count *= max(2, int(MS / 1000 / max(secs, 1e-3)))


def setup(workdir):
    args = ["-drive", "file=%s,format=raw,if=none,id=d0,cache=none,aio=threads" % IMG,
            "-device", "virtio-blk-pci,drive=d0",
            "-device", "virtio-serial-pci,id=vser", "-chardev", "file,id=bn,path=/dev/null",
            "-device", "virtserialport,bus=vser.0,chardev=bn,name=org.vio.bench"]
    return ["-device", "virtio-rng-pci", "-smp", "1"] + args + scn_net.net_setup(workdir)[2:]


def interact(q):
    """Flood 64-byte frames at the guest during its net RX phase."""
    guest_port, host_port = map(int, open("%s/ports" % q.workdir).read().split())
    q.wait_for(r"^BENCH-PHASE net-rx$", timeout=600)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", host_port))
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01\x88\xb5" + bytes(50)
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            for _ in range(64):
                sock.sendto(frame, ("127.0.0.1", guest_port))
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        q.wait_for(r"^BENCH-PHASE net-rx-done$", timeout=60)
    finally:
        stop.set()
        t.join()
        sock.close()


def main():
    make_image()
    # BENCH_ACCEL=kvm: KVM when the kernel's self-tests pass under it here, else TCG.
    which, verdict = accel.choose(os.environ.get("BENCH_ACCEL", "tcg") == "kvm", harness.ELF,
                                  log_path=os.path.join(OUT, "kvm-probe.log"))
    print("# bench: %s" % verdict)
    scn = harness.Scenario("bench", mode="bench", machine="q35", mem="1G", boot="direct",
                           cmdline="vio.bench_ms=%d" % MS, setup=setup, interact=interact,
                           timeout=900, expect_tap=False, accel=which)
    # The host disk is shared and noisy: measure the ceiling before and after the guest run
    # and compare against their mean (both are printed, so the spread is visible).
    before = {m: conv(qemu_img_rate(size, depth, extra))
              for m, (size, depth, extra, conv) in BLK.items()}
    ok, reason, secs, log_path = harness.run_scenario(scn)
    log = open(log_path).read()
    results = [(m[0], float(m[1]), m[2]) for m in
               re.findall(r"^BENCH (\S+) ([0-9.]+) (\S+)$", log, re.M)]
    lines = ["# vio bench: q35, 1 vCPU, %s, %d MiB raw image cache=none aio=threads, "
             "%d ms per metric" % (which.upper(), IMG_MB, MS),
             "# %-24s %14s %-9s %14s %s  %s" % ("metric", "guest", "unit", "qemu-img", "ratio",
                                              "(qemu-img before / after)")]
    for metric, value, unit in results:
        if metric in BLK:
            size, depth, extra, conv = BLK[metric]
            after = conv(qemu_img_rate(size, depth, extra))
            limit = (before[metric] + after) / 2
            lines.append("BENCH %-24s %14.2f %-9s %14.2f %.3f  (%.2f / %.2f)" % (
                metric, value, unit, limit, value / limit, before[metric], after))
        else:
            lines.append("BENCH %-24s %14.2f %-9s" % (metric, value, unit))
    with open(os.path.join(OUT, "results.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("# results in %s (%.0f s)" % (os.path.relpath(os.path.join(OUT, "results.txt")), secs))
    if not ok:
        print("bench run failed: %s (log %s)" % (reason, os.path.relpath(log_path)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
