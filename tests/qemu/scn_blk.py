"""
Block driver against real peers: the host fills disk images and checks what the kernel did
with `dd | sha256sum` and by reading the image back after QEMU exits; QEMU's blkdebug
injects an I/O error; SIGKILL in the middle of a run tests durability.
"""
import os
import random
import re
import subprocess

from harness import Scenario

MiB = 1024 * 1024


def image(workdir, name="disk.img", size=16 * MiB, seed=7):
    """A raw image full of known random bytes; returns its path."""
    path = os.path.join(workdir, name)
    with open(path, "wb") as f:
        f.write(random.Random(seed).randbytes(size))
    return path


def drive(path, extra="", dev_extra=""):
    return ["-drive", "file=%s,format=raw,if=none,id=d0,cache=writeback%s" % (path, extra),
            "-device", "virtio-blk-pci,drive=d0" + dev_extra]


def base_devices():
    return ["-device", "virtio-rng-pci"]


# --- SHA-256 of ranges, through the shell, against dd | sha256sum ------------------------

SHA_RANGES = [(0, 512), (4096, 65536), (1 * MiB + 512, 3 * MiB), (31 * MiB, 1 * MiB),
              (0, 32 * MiB)]


def sha_setup(workdir):
    return base_devices() + drive(image(workdir, size=32 * MiB, seed=11))


def host_sha256(path, off, length):
    dd = subprocess.run("dd if=%s bs=512 skip=%d count=%d status=none | sha256sum"
                        % (path, off // 512, length // 512), shell=True, capture_output=True,
                        text=True, check=True)
    return dd.stdout.split()[0]


def sha_interact(q):
    q.wait_for(r"vio> ")
    path = os.path.join(q.workdir, "disk.img")
    for off, length in SHA_RANGES:
        out = q.shell("blk sha256 blk0 %d %d" % (off, length), timeout=120)
        m = re.search(r"length \d+: ([0-9a-f]{64})", out)
        assert m, "no digest in %r" % out
        want = host_sha256(path, off, length)
        assert m.group(1) == want, "range %d+%d: kernel %s, host %s" % (
            off, length, m.group(1), want)
    out = q.shell("blk read blk9 0 1")
    assert "no disk" in out, out
    q.send("poweroff\r")


# --- random pattern writes, checked byte by byte on the image after exit -----------------

def pattern_byte(seed, k, off):
    return (((off * 2654435761) & 0xffffffff) >> 13 ^ (k * 131) ^ seed) & 0xff


def pattern_setup(workdir):
    return base_devices() + drive(image(workdir, seed=21))


def pattern_check(log, workdir):
    expect = bytearray(random.Random(21).randbytes(16 * MiB))
    writes = [tuple(map(int, m)) for m in re.findall(r"^blkw (\d+) (\d+) (\d+)$", log, re.M)]
    if len(writes) != 300:
        return "expected 300 writes in the log, found %d" % len(writes)
    for k, sector, n in writes:
        base = sector * 512
        expect[base:base + n * 512] = bytes(pattern_byte(3, k, base + i) for i in range(n * 512))
    got = open(os.path.join(workdir, "disk.img"), "rb").read()
    if got != expect:
        first = next(i for i in range(len(got)) if got[i] != expect[i])
        return "image differs from the writes the kernel reported, first at byte %d" % first
    return None


# --- read-only, zeroes, EIO ---------------------------------------------------------------

def ro_setup(workdir):
    return base_devices() + drive(image(workdir, seed=31), ",readonly=on")


def unchanged_check(seed):
    def check(log, workdir):
        got = open(os.path.join(workdir, "disk.img"), "rb").read()
        return None if got == random.Random(seed).randbytes(16 * MiB) else "image changed"
    return check


def zero_setup(workdir):
    return base_devices() + drive(image(workdir, seed=41), ",discard=unmap")


def zero_check(log, workdir):
    expect = bytearray(random.Random(41).randbytes(16 * MiB))
    ranges = [tuple(map(int, m)) for m in re.findall(r"^blkz (\d+) (\d+) ", log, re.M)]
    if len(ranges) != 16:
        return "expected 16 ranges, found %d" % len(ranges)
    for s, n in ranges:
        expect[s * 512:(s + n) * 512] = bytes(n * 512)
    got = open(os.path.join(workdir, "disk.img"), "rb").read()
    if got != expect:
        first = next(i for i in range(len(got)) if got[i] != expect[i])
        return "image differs at byte %d (sector %d)" % (first, first // 512)
    return None


BAD_SECTOR = 1000


def eio_setup(workdir):
    img = image(workdir, seed=51)
    conf = os.path.join(workdir, "blkdebug.conf")
    with open(conf, "w") as f:
        f.write('[inject-error]\nevent = "read_aio"\nerrno = "5"\nsector = "%d"\n' % BAD_SECTOR)
    return base_devices() + [
        "-drive", "file=blkdebug:%s:%s,format=raw,if=none,id=d0,rerror=report,werror=report"
        % (conf, img), "-device", "virtio-blk-pci,drive=d0"]


# --- durability: SIGKILL in the middle, every acknowledged record must be there ----------

def durable_setup(workdir):
    return base_devices() + drive(image(workdir, seed=61))


def durable_interact(q):
    stop_after = random.Random().randint(40, 120)
    q.wait_for(r"^ACK %d$" % stop_after, timeout=300)
    q.kill()


def durable_check(log, workdir):
    import hashlib
    import struct
    acked = [int(n) for n in re.findall(r"^ACK (\d+)$", log, re.M)]
    if not acked or acked != list(range(len(acked))):
        return "acknowledgements out of order: %s" % acked[:10]
    data = open(os.path.join(workdir, "disk.img"), "rb").read()
    for k in acked:
        rec = data[k * 4096:(k + 1) * 4096]
        magic, seq = rec[:8], struct.unpack("<Q", rec[8:16])[0]
        if magic != b"VIOREC01" or seq != k:
            return "record %d missing after SIGKILL (magic %r seq %d)" % (k, magic, seq)
        if hashlib.sha256(rec[48:]).digest() != rec[16:48]:
            return "record %d corrupt after SIGKILL" % k
    print("    %d acknowledged records all on the image after SIGKILL" % len(acked))
    return None


SCENARIOS = [
    Scenario("blk-sha256-ranges-vs-host", mode="shell", setup=sha_setup, interact=sha_interact,
             expect_exit=0, timeout=300),
    Scenario("blk-random-pattern-writes", setup=pattern_setup, check=pattern_check,
             cmdline="vio.tests=blk-pattern vio.seed=3 vio.count=300",
             expect_log=[r"^ok \d+ - blk-pattern$"]),
    Scenario("blk-20000-ops-against-model", setup=pattern_setup, timeout=900,
             cmdline="vio.tests=blk-model vio.count=20000",
             expect_log=[r"^ok \d+ - blk-model$", r"blk-model: \d+ reads, \d+ writes"]),
    Scenario("blk-read-only-rejects-writes", setup=ro_setup, check=unchanged_check(31),
             cmdline="vio.tests=blk-ro",
             expect_log=[r"^ok \d+ - blk-ro$", r"features=0x[0-9a-f]+"]),
    Scenario("blk-discard-and-write-zeroes", setup=zero_setup, check=zero_check,
             cmdline="vio.tests=blk-zero", expect_log=[r"^ok \d+ - blk-zero$"]),
    Scenario("blk-blkdebug-eio-fails-one-request", setup=eio_setup,
             cmdline="vio.tests=blk-eio vio.sector=%d" % BAD_SECTOR,
             expect_log=[r"^ok \d+ - blk-eio$"]),
    Scenario("blk-durability-sigkill", setup=durable_setup, interact=durable_interact,
             check=durable_check, cmdline="vio.tests=blk-durable vio.count=100000",
             expect_exit=None, expect_tap=False, timeout=400),
]
