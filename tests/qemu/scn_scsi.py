"""
Disks and a CD behind virtio-scsi, against QEMU's own SCSI targets (scsi-hd, scsi-cd),
checked from the host side: what the kernel reads must hash like the host's image, what it
writes must be in the image, the CD must refuse writes in words, a disk hot-plugged over QMP
must be seen, used and then gone without a hang, blkdebug's injected errors must fail their
one request with the sense QEMU gives them, and a request QEMU holds must be aborted.
"""
import hashlib
import os
import random
import re
import subprocess

from harness import Scenario

MiB = 1024 * 1024
# blkdebug rules on the 1:2 disk: EIO at one sector, ENODATA (QEMU: MEDIUM ERROR) at another.
EIO_SECTOR = 6000
ENODATA_SECTOR = 7000


def image(path, size, seed):
    with open(path, "wb") as f:
        f.write(random.Random(seed).randbytes(size))
    return path


def sha(path, off=0, length=None):
    with open(path, "rb") as f:
        f.seek(off)
        return hashlib.sha256(f.read() if length is None else f.read(length)).hexdigest()


def devices(w):
    d0 = image(os.path.join(w, "d0.img"), 16 * MiB, 1)
    d1 = image(os.path.join(w, "d1.img"), 4 * MiB, 2)
    image(os.path.join(w, "hp.img"), 2 * MiB, 3)
    tree = os.path.join(w, "cdtree")
    os.makedirs(tree)
    image(os.path.join(tree, "data.bin"), 3 * MiB, 4)
    iso = os.path.join(w, "cd.iso")
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso, tree], check=True)
    conf = os.path.join(w, "blkdebug.conf")
    with open(conf, "w") as f:
        f.write('[inject-error]\nevent = "read_aio"\nerrno = "5"\nsector = "%d"\n\n'
                '[inject-error]\nevent = "read_aio"\nerrno = "61"\nsector = "%d"\n'
                % (EIO_SECTOR, ENODATA_SECTOR))
    return ["-device", "virtio-scsi-pci,id=scsi0",
            "-drive", "file=%s,format=raw,if=none,id=d0,cache=writeback,discard=unmap" % d0,
            "-device", "scsi-hd,drive=d0,bus=scsi0.0,scsi-id=0,lun=0",
            "-drive", "file=blkdebug:%s:%s,format=raw,if=none,id=d1,rerror=report,"
            "werror=report" % (conf, d1),
            "-device", "scsi-hd,drive=d1,bus=scsi0.0,scsi-id=1,lun=2",
            "-drive", "file=%s,format=raw,if=none,id=c0,media=cdrom,readonly=on" % iso,
            "-device", "scsi-cd,drive=c0,bus=scsi0.0,scsi-id=2,lun=0"]


def lun_index(out, addr):
    m = re.search(r"^\s*lun(\d+) %s " % re.escape(addr), out, re.M)
    assert m, "no unit %s in: %s" % (addr, out)
    return int(m.group(1))


def interact(q):
    w = q.workdir
    d0, d1, iso = (os.path.join(w, n) for n in ("d0.img", "d1.img", "cd.iso"))
    q.wait_for(r"vio> ")
    out = q.shell("scsi luns")
    disk0, disk1, cd = lun_index(out, "0:0"), lun_index(out, "1:2"), lun_index(out, "2:0")
    assert re.search(r"lun%d 0:0 disk .* 32768 blocks of 512 B .* read-write" % disk0, out), out
    assert re.search(r"lun%d 1:2 disk .* 8192 blocks of 512 B" % disk1, out), out
    cd_blocks = os.path.getsize(iso) // 2048
    assert re.search(r"lun%d 2:0 cd .* %d blocks of 2048 B .* read-only" % (cd, cd_blocks),
                     out), out

    # Reading: ranges hash like the host's images (across commands of 64 KiB).
    for lun, path, off, length in ((disk0, d0, 0, 16 * MiB), (disk0, d0, 3 * 512, 200 * 512),
                                   (disk1, d1, 512, MiB), (cd, iso, 0, cd_blocks * 2048),
                                   (cd, iso, 2048 * 5, 2048 * 7)):
        out = q.shell("scsi sha256 %d %d %d" % (lun, off, length), timeout=240)
        assert sha(path, off, length) in out, (lun, off, length, out)

    # Writing: random patterns land in the image, and nowhere else.
    rnd = random.Random()
    want = bytearray(open(d0, "rb").read())
    for _ in range(8):
        lba, count, byte = rnd.randrange(0, 32768 - 128), rnd.randint(1, 128), rnd.randrange(256)
        out = q.shell("scsi write %d %d %d %d" % (disk0, lba, count, byte))
        assert "wrote %d block(s)" % count in out, out
        want[lba * 512:(lba + count) * 512] = bytes([byte]) * (count * 512)
    out = q.shell("scsi sync %d" % disk0)
    assert "cache synchronized" in out, out
    assert open(d0, "rb").read() == bytes(want), "the image differs from the writes"
    out = q.shell("scsi sha256 %d 0 %d" % (disk0, 16 * MiB), timeout=240)
    assert hashlib.sha256(want).hexdigest() in out, out

    # UNMAP: the disk says it takes it (VPD B2; QEMU's scsi-hd says so on every disk and
    # acts on it with discard=unmap, as d0 has), and the range reads as zeros on the host
    # afterwards (QEMU punched a hole in the image). A unit that does not take it is the
    # host test's (tests/host/test_scsi.c).
    out = q.shell("scsi luns")
    assert re.search(r"lun%d 0:0 disk .*read-write, unmap" % disk0, out), out
    out = q.shell("scsi unmap %d 2048 4096" % disk0)
    assert "4096 block(s) at 2048 unmapped" in out, out
    q.shell("scsi sync %d" % disk0)
    want[2048 * 512:(2048 + 4096) * 512] = bytes(4096 * 512)
    assert open(d0, "rb").read() == bytes(want), "the unmapped range is not zeros"
    out = q.shell("scsi unmap %d 0 1" % cd)
    assert "read-only" in out, out
    out = q.shell("scsi unmap %d 32760 100" % disk0)
    assert "run past the end" in out, out

    # The timed read of make bench (tests/bench_storage.py): 40 MiB from a 16 MiB disk in
    # 1 MiB requests (wrapping at its end), then from the CD in its 2048-byte blocks.
    out = q.shell("scsi bench read %d 40 1024" % disk0, timeout=240)
    assert re.search(r"scsi bench read: lun%d 41943040 bytes in [1-9]\d* ns, requests of "
                     r"1024 KiB" % disk0, out), out
    out = q.shell("scsi bench read %d 1 64" % cd, timeout=240)
    assert re.search(r"lun%d 1048576 bytes in [1-9]\d* ns" % cd, out), out
    out = q.shell("scsi bench read %d 1 1" % cd)
    assert "whole 2048-byte blocks" in out, out

    # The CD refuses writes, in words, and stays readable.
    before = sha(iso)
    out = q.shell("scsi write %d 0 1 7" % cd)
    assert "read-only" in out and "VIO_EROFS" in out, out
    assert sha(iso) == before

    # blkdebug: EIO and ENODATA fail their one request, with QEMU's sense for each; the
    # blocks around them and the other units read on.
    out = q.shell("scsi read %d %d 1" % (disk1, EIO_SECTOR))
    assert "ABORTED COMMAND" in out and "I/O process terminated" in out, out
    assert "VIO_EIO" in out, out
    out = q.shell("scsi read %d %d 1" % (disk1, ENODATA_SECTOR))
    assert "MEDIUM ERROR" in out and "unrecovered read error" in out and "VIO_EIO" in out, out
    for lba in (EIO_SECTOR - 1, EIO_SECTOR + 1, ENODATA_SECTOR + 1):
        out = q.shell("scsi sha256 %d %d 512" % (disk1, lba * 512))
        assert sha(d1, lba * 512, 512) in out, out
    out = q.shell("scsi sha256 %d 0 4096" % disk0)
    assert hashlib.sha256(want[:4096]).hexdigest() in out, out

    # A read QEMU holds (a blkdebug breakpoint): the kernel times out and sends ABORT TASK;
    # once QEMU lets go, the held request and the abort are reaped and the unit reads on.
    q.qmp("human-monitor-command", **{"command-line": 'qemu-io d1 "break read_aio stall"'})
    out = q.shell("scsi read %d 100 1" % disk1, timeout=60)
    assert "did not answer in time" in out, out
    assert re.search(r"virtio-scsi: no answer to command 0x28 for 1:2", q.log), q.log[-2000:]
    assert re.search(r"virtio-scsi: abort task 1:2", q.log), q.log[-2000:]
    q.qmp("human-monitor-command", **{"command-line": 'qemu-io d1 "resume stall"'})
    out = q.shell("scsi sha256 %d %d 4096" % (disk1, 100 * 512), timeout=60)
    assert sha(d1, 100 * 512, 4096) in out, out
    out = q.shell("virtio scsi0")
    assert re.search(r"timeouts 1 \(aborts 1, ", out), out
    assert "HOTPLUG" in out and "CHANGE" in out, out  # the features, by name

    # Hot-plug: a disk appears on target 3 (the event queue says so, the kernel rescans),
    # is used, then is unplugged and fails cleanly.
    q.qmp("blockdev-add", driver="raw", **{"node-name": "hp0"},
          file={"driver": "file", "filename": os.path.join(w, "hp.img")})
    q.qmp("device_add", driver="scsi-hd", id="hp", drive="hp0", bus="scsi0.0",
          **{"scsi-id": 3, "lun": 0})
    q.wait_for(r"virtio-scsi: 3:0 added", timeout=60)
    m = q.wait_for(r"^\s*lun(\d+) 3:0 disk .* 4096 blocks of 512 B", timeout=60)
    hp = int(m.group(1))
    out = q.shell("scsi sha256 %d 0 %d" % (hp, 2 * MiB), timeout=120)
    assert sha(os.path.join(w, "hp.img")) in out, out
    out = q.shell("scsi write %d 10 2 165" % hp)
    assert "wrote 2 block(s)" in out, out
    with open(os.path.join(w, "hp.img"), "rb") as f:
        f.seek(10 * 512)
        assert f.read(1024) == b"\xa5" * 1024
    q.qmp("device_del", id="hp")
    q.wait_for(r"virtio-scsi: 3:0 removed", timeout=60)
    out = q.shell("scsi read %d 0 1" % hp)
    assert "no such unit, or it was unplugged" in out, out
    out = q.shell("scsi luns")
    assert re.search(r"lun%d 3:0 disk: gone" % hp, out), out
    out = q.shell("scsi sha256 %d 0 4096" % disk0)
    assert hashlib.sha256(want[:4096]).hexdigest() in out, out

    out = q.shell("virtio scsi0")
    assert re.search(r"scsi: \d+ request queue\(s\).*commands \d+, check conditions [1-9]",
                     out), out
    assert re.search(r"events [1-9]", out), out
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("scsi-disks-cd-hotplug-errors", mode="shell", setup=devices, interact=interact,
             expect_exit=0, timeout=600,
             expect_log=[r"vio: virtio-scsi \S+ \S+ features=0x", r"scsi0: 3 unit\(s\)"]),
]
