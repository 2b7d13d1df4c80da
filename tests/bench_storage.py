#!/usr/bin/env python3
"""
The storage half of `make bench` (tests/bench.py runs it each round): a host folder over
virtio-9p, and virtio-scsi beside virtio-blk on the same image, against what the host does
without a guest.

vio_storage boots vio (vio.mode=shell, q35, TCG, 512 MiB) with
  -fsdev local (security_model=none) over build/bench/9p + virtio-9p-pci (msize 64 KiB)
  virtio-scsi-pci with one scsi-hd, and virtio-blk-pci, both on the bench image
            (build/bench/disk.img, 128 MiB) with cache=none,aio=threads as the block rows,
            and readonly=on (two drives may share an image only read-only)
and times shell commands, one request in flight at a time (both clients are synchronous):
  p9_read             `9p bench read read.bin`: the 64 MiB file through Treads of msize
  p9_write            `9p bench write vio-write.bin 64`: a new file, no fsync
  scsi_seqread_64k    `scsi bench read 0 128 64`: the whole image in 64 KiB requests
  scsi_seqread_1m     the same in 1 MiB requests (the driver moves 64 KiB per command)
  blk_seqread_64k_qd1 `blk seqread blk0 128 64`: the same image through virtio-blk
  blk_seqread_1m_qd1  the same in 1 MiB requests
host_storage is the limit, on the same files:
  p9_read             `cat read.bin > /dev/null` after one untimed cat: the host's page cache
                      is warm, which is the fair limit for QEMU's 9P server, which reads the
                      same cache; the fastest of three, each timed from process start (a cat
                      of 64 MiB takes a few ms, so its start is part of the figure)
  p9_write            `dd if=/dev/zero of=host-write.bin bs=1M count=64`: a new file, no
                      fsync, into the page cache where the 9P server's writes go too
  the four block rows `qemu-img bench -d 1` (one request in flight), 64 KiB and 1 MiB
                      requests, on the image with the same cache mode

  python3 tests/bench_storage.py [ROUNDS]   vio and the host in turn, ROUNDS (3) times;
                                            min / median / max of each metric, and the
                                            ratio vio / limit within each round
"""
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu"))
import harness  # noqa: E402

SHARE = os.path.join(harness.BUILD, "bench", "9p")
IMG = os.path.join(harness.BUILD, "bench", "disk.img")
IMG_MB = 128
FILE_MB = 64

# metric -> (group, title, higher is better), merged into tests/bench.py's METRICS
METRICS = {
    "p9_read": ("storage", "virtio-9p read, 64 MiB file (limit: host cat, warm cache)", True),
    "p9_write": ("storage", "virtio-9p write, 64 MiB new file (limit: host dd, no fsync)",
                 True),
    "scsi_seqread_64k": ("storage", "virtio-scsi 64 KiB sequential read, QD1", True),
    "scsi_seqread_1m": ("storage", "virtio-scsi 1 MiB sequential read, QD1", True),
    "blk_seqread_64k_qd1": ("storage", "virtio-blk 64 KiB sequential read, QD1, same boot",
                            True),
    "blk_seqread_1m_qd1": ("storage", "virtio-blk 1 MiB sequential read, QD1, same boot",
                           True),
}
# Seconds a job takes on a quiet host (tests/bench.py's progress estimate).
GUESS = {"storage": 45, "storage-host": 10}

# Called with (metric, value, unit) as each figure comes in (tests/bench.py shows progress).
PROGRESS = None


def note(results, metric, value, unit="MiB/s"):
    results[metric] = (value, unit)
    if PROGRESS:
        PROGRESS(metric, value, unit)


def prepare(img=IMG):
    """The shared folder with its 64 MiB file of random bytes, and the image if missing."""
    os.makedirs(SHARE, exist_ok=True)
    for path, mb in ((os.path.join(SHARE, "read.bin"), FILE_MB), (img, IMG_MB)):
        if not os.path.exists(path) or os.path.getsize(path) != mb << 20:
            subprocess.run(["dd", "if=/dev/urandom", "of=" + path, "bs=1M", "count=%d" % mb,
                            "status=none"], check=True)
    for name in ("vio-write.bin", "host-write.bin"):
        if os.path.exists(os.path.join(SHARE, name)):
            os.remove(os.path.join(SHARE, name))


def mibs(out, command):
    """MiB/s from a '<bytes> bytes in <ns> ns' line of a bench command."""
    m = re.search(r"(\d+) bytes in (\d+) ns", out)
    assert m, "%s: no timing in %r" % (command, out[-500:])
    return int(m.group(1)) / 2**20 / (int(m.group(2)) / 1e9)


def vio_storage(img=IMG):
    """Boot vio with the devices and time the commands: (ok, reason, results, log)."""
    prepare(img)
    results = {}
    drive = "file=%s,format=raw,if=none,cache=none,aio=threads,readonly=on" % img

    def measure(q):
        q.wait_for(r"vio> ")
        assert "lun0 0:0 disk" in q.shell("scsi luns")

        def run(metric, command, expect_bytes):
            out = q.shell(command, timeout=600)
            assert "%d bytes in" % expect_bytes in out, "%s: %r" % (command, out[-500:])
            note(results, metric, mibs(out, command))

        run("p9_read", "9p bench read read.bin", FILE_MB << 20)
        run("p9_write", "9p bench write vio-write.bin %d" % FILE_MB, FILE_MB << 20)
        written = os.path.getsize(os.path.join(SHARE, "vio-write.bin"))
        assert written == FILE_MB << 20, "vio-write.bin has %d bytes on the host" % written
        os.remove(os.path.join(SHARE, "vio-write.bin"))
        for kib, suffix in ((64, "64k"), (1024, "1m")):
            run("scsi_seqread_" + suffix, "scsi bench read 0 %d %d" % (IMG_MB, kib),
                IMG_MB << 20)
            run("blk_seqread_%s_qd1" % suffix, "blk seqread blk0 %d %d" % (IMG_MB, kib),
                IMG_MB << 20)
        q.send("poweroff\r")

    scn = harness.Scenario(
        "bench-storage", mode="shell", machine="q35", mem="512M", boot="direct",
        expect_exit=0, timeout=900,
        qemu_args=["-fsdev", "local,id=fs0,path=%s,security_model=none" % SHARE,
                   "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=host",
                   "-device", "virtio-scsi-pci,id=scsi0",
                   "-drive", drive + ",id=s0",
                   "-device", "scsi-hd,drive=s0,bus=scsi0.0,scsi-id=0,lun=0",
                   "-drive", drive + ",id=d0",
                   "-device", "virtio-blk-pci,drive=d0"],
        interact=measure)
    ok, reason, _secs, log_path = harness.run_scenario(scn)
    return ok, reason, results, log_path


def timed(argv):
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def qemu_img_qd1(img, size):
    """MiB/s of `qemu-img bench` reading `size`-byte requests one at a time, for at least
    one second."""
    count = 256
    while True:
        p = subprocess.run(["qemu-img", "bench", "-f", "raw", "-t", "none", "-i", "threads",
                            "-s", str(size), "-d", "1", "-c", str(count), img],
                           capture_output=True, text=True, check=True)
        secs = float(re.search(r"Run completed in ([0-9.]+) seconds", p.stdout).group(1))
        if secs >= 1 or count > 10**7:
            return count * size / 2**20 / secs
        count *= 2 if secs > 0.5 else 4


def host_storage(img=IMG):
    """The host's own figures on the same files: (ok, reason, results, None)."""
    results = {}
    try:
        prepare(img)
        src = os.path.join(SHARE, "read.bin")
        timed(["cat", src])  # warm the page cache: the 9P server reads the same cache
        note(results, "p9_read", FILE_MB / min(timed(["cat", src]) for _ in range(3)))
        dst = os.path.join(SHARE, "host-write.bin")
        note(results, "p9_write", FILE_MB / timed(
            ["dd", "if=/dev/zero", "of=" + dst, "bs=1M", "count=%d" % FILE_MB, "status=none"]))
        os.remove(dst)
        for size, suffix in ((65536, "64k"), (1 << 20, "1m")):
            rate = qemu_img_qd1(img, size)
            note(results, "scsi_seqread_" + suffix, rate)
            note(results, "blk_seqread_%s_qd1" % suffix, rate)
        return True, None, results, None
    except (OSError, subprocess.CalledProcessError, AttributeError) as e:
        return False, str(e), results, None


def jobs(img=IMG):
    """tests/bench.py's job entries: (label, side, kind, function)."""
    return [("vio storage (9p, scsi)", "vio", "storage", lambda: vio_storage(img)),
            ("host storage (cat, dd, qemu-img)", "limit", "storage-host",
             lambda: host_storage(img))]


def spread(xs):
    return "%.1f / %.1f / %.1f" % (min(xs), statistics.median(xs), max(xs))


def main():
    if not os.path.exists(harness.ELF):
        print("bench_storage: %s missing (run 'make')" % harness.ELF)
        return 1
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    vio, limit, failed = {}, {}, []
    for r in range(rounds):
        for side, fn in (("vio", vio_storage), ("limit", host_storage)):
            sys.stderr.write("bench_storage: round %d/%d, %s\n" % (r + 1, rounds, side))
            ok, reason, results, log_path = fn()
            for metric, (value, _unit) in results.items():
                (vio if side == "vio" else limit).setdefault(metric, [None] * rounds)[r] = value
            if not ok:
                failed.append("round %d, %s: %s (log %s)" % (r + 1, side, reason, log_path))
    print("# vio bench storage: %d rounds, min / median / max MiB/s" % rounds)
    print("| metric | vio | limit | vio / limit |")
    print("|---|---:|---:|---:|")
    for metric, (_group, title, _higher) in METRICS.items():
        a = [x for x in vio.get(metric, []) if x is not None]
        b = [x for x in limit.get(metric, []) if x is not None]
        ratio = [x / y for x, y in zip(vio.get(metric, []), limit.get(metric, []))
                 if x is not None and y]
        print("| %s | %s | %s | %s |" % (title, spread(a) if a else "-",
                                         spread(b) if b else "-",
                                         "%.2f / %.2f / %.2f" % (min(ratio),
                                                                 statistics.median(ratio),
                                                                 max(ratio))
                                         if ratio else "-"))
    for f in failed:
        print("# failed: " + f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
