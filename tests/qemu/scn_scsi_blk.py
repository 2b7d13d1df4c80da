"""
SCSI units as disks under the shell's `blk` commands, beside a virtio-blk disk: `blk info`
lists blk0 and sd0, sd1 and the CD; `blk sha256` of a unit's ranges equals the host's
`dd | sha256sum`; `blk write` lands in the unit's image; the CD refuses writes and odd
sectors in words; a range past the end, a virtio-blk-only command on a unit and a unit
unplugged over QMP each give their sentence, and the other disks work on.
"""
import hashlib
import os
import random
import re
import subprocess

from harness import Scenario

MiB = 1024 * 1024


def image(path, size, seed):
    with open(path, "wb") as f:
        f.write(random.Random(seed).randbytes(size))
    return path


def host_sha256(path, off, length):
    dd = subprocess.run("dd if=%s bs=512 skip=%d count=%d status=none | sha256sum"
                        % (path, off // 512, length // 512), shell=True, capture_output=True,
                        text=True, check=True)
    return dd.stdout.split()[0]


def devices(w):
    blk = image(os.path.join(w, "blk.img"), 4 * MiB, 21)
    d0 = image(os.path.join(w, "d0.img"), 8 * MiB, 22)
    d1 = image(os.path.join(w, "d1.img"), 4 * MiB, 23)
    tree = os.path.join(w, "cdtree")
    os.makedirs(tree)
    image(os.path.join(tree, "data.bin"), MiB, 24)
    iso = os.path.join(w, "cd.iso")
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso, tree], check=True)
    return ["-drive", "file=%s,format=raw,if=none,id=b0,cache=writeback" % blk,
            "-device", "virtio-blk-pci,drive=b0",
            "-device", "virtio-scsi-pci,id=scsi0",
            "-drive", "file=%s,format=raw,if=none,id=d0,cache=writeback" % d0,
            "-device", "scsi-hd,drive=d0,bus=scsi0.0,scsi-id=0,lun=0",
            "-drive", "file=%s,format=raw,if=none,id=d1" % d1,
            "-device", "scsi-hd,drive=d1,id=hd1,bus=scsi0.0,scsi-id=1,lun=2",
            "-drive", "file=%s,format=raw,if=none,id=c0,media=cdrom,readonly=on" % iso,
            "-device", "scsi-cd,drive=c0,bus=scsi0.0,scsi-id=2,lun=0"]


def sd_name(luns, addr):
    """sdN is lunN of `scsi luns`."""
    m = re.search(r"^\s*lun(\d+) %s " % re.escape(addr), luns, re.M)
    assert m, "no unit %s in: %s" % (addr, luns)
    return "sd" + m.group(1)


def interact(q):
    w = q.workdir
    blk, d0, d1, iso = (os.path.join(w, n) for n in ("blk.img", "d0.img", "d1.img", "cd.iso"))
    q.wait_for(r"vio> ")
    luns = q.shell("scsi luns")
    sd0, sd1, cd = sd_name(luns, "0:0"), sd_name(luns, "1:2"), sd_name(luns, "2:0")
    assert (sd0, sd1) == ("sd0", "sd1"), luns

    out = q.shell("blk info")
    assert re.search(r"^blk0: 8192 sectors .* read-write", out, re.M), out
    assert re.search(r"^sd0: 16384 sectors \(8 MiB\), block 512, read-write, SCSI disk 0:0 ",
                     out, re.M), out
    assert re.search(r"^sd1: 8192 sectors \(4 MiB\), block 512, read-write, SCSI disk 1:2 ",
                     out, re.M), out
    cd_sectors = os.path.getsize(iso) // 512
    assert re.search(r"^%s: %d sectors .*, block 2048, read-only, SCSI cd 2:0 " % (cd, cd_sectors),
                     out, re.M), out
    assert re.search(r"^%s: .* SCSI cd" % cd, q.shell("blk info %s" % cd), re.M)

    # Reading: ranges of every kind of disk hash like the host's images (64 KiB chunks).
    for disk, path, off, length in (("blk0", blk, 0, 4 * MiB), (sd1, d1, 0, 4 * MiB),
                                    (sd1, d1, 3 * 512, 200 * 512), (sd1, d1, MiB + 512, MiB),
                                    (sd0, d0, 0, 8 * MiB), (cd, iso, 2048 * 5, 2048 * 7),
                                    (cd, iso, 0, cd_sectors * 512)):
        out = q.shell("blk sha256 %s %d %d" % (disk, off, length), timeout=240)
        assert "sha256 %s offset %d length %d: %s" % (disk, off, length,
                                                      host_sha256(path, off, length)) in out, out

    # Writing: random patterns land in the unit's image, flushed, and nowhere else.
    rnd = random.Random()
    want = bytearray(open(d0, "rb").read())
    for _ in range(6):
        sector, count, byte = rnd.randrange(0, 16384 - 128), rnd.randint(1, 128), rnd.randrange(256)
        out = q.shell("blk write %s %d %d %d" % (sd0, sector, count, byte))
        assert "wrote %d sector(s) of 0x%02x at %d" % (count, byte, sector) in out, out
        want[sector * 512:(sector + count) * 512] = bytes([byte]) * (count * 512)
    assert q.shell("blk flush %s" % sd0).strip() == "flushed"
    assert open(d0, "rb").read() == bytes(want), "the image differs from the writes"
    out = q.shell("blk read %s %d 1" % (sd0, sector))
    assert re.search(r"^%08x  %s" % (sector * 512, " ".join(["%02x" % byte] * 16)), out, re.M), out

    # Sentences: the CD refuses writes and odd sectors, a range past the end is named, and
    # a virtio-blk-only command on a unit says so.
    before = open(iso, "rb").read()
    out = q.shell("blk write %s 0 4 7" % cd)
    assert re.match(r"blk write: %s is read-only \(a CD, or a write-protected disk\) "
                    r"\(VIO_EROFS\)$" % cd, out.strip()), out
    assert open(iso, "rb").read() == before
    out = q.shell("blk read %s 1 1" % cd)
    assert "%s reads and writes whole blocks of 2048 bytes" % cd in out and "VIO_EALIGN" in out, out
    out = q.shell("blk read %s 8190 4" % sd1)
    assert re.match(r"blk read: an argument is out of range for sd1: it has 8192 sectors, and 4 "
                    r"sector\(s\) at 8190 go past its end \(VIO_EINVAL\)$", out.strip()), out
    assert q.shell("blk discard %s 0 8" % sd0).strip() == \
        "sd0 is a SCSI disk: discard is a virtio-blk command"
    assert q.shell("blk qd %s 10 4" % cd).strip() == \
        "%s is a SCSI CD: qd is a virtio-blk command" % cd
    out = q.shell("blk read sd9 0 1")
    assert "blk: no disk 'sd9' (see 'blk info')" in out, out

    # Hot-unplug: sd1 keeps its name and says it is gone; the other disks read on.
    q.qmp("device_del", id="hd1")
    q.wait_for(r"virtio-scsi: 1:2 removed", timeout=60)
    out = q.shell("blk read %s 0 1" % sd1)
    assert re.match(r"blk read: sd1: the SCSI unit was unplugged \(see 'scsi luns'\) "
                    r"\(VIO_ENODEV\)$", out.strip()), out
    out = q.shell("blk sha256 %s 0 4096" % sd1)
    assert "sd1: the SCSI unit was unplugged" in out, out
    assert re.search(r"^sd1: SCSI disk 1:2 \(lun1\): unplugged$", q.shell("blk info sd1"), re.M)
    out = q.shell("blk sha256 %s 0 65536" % sd0)
    assert hashlib.sha256(want[:65536]).hexdigest() in out, out
    out = q.shell("blk sha256 blk0 0 65536")
    assert host_sha256(blk, 0, 65536) in out, out
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("scsi-units-under-blk", mode="shell", setup=devices, interact=interact,
             expect_exit=0, timeout=600,
             expect_log=[r"vio: virtio-scsi \S+ \S+ features=0x", r"scsi0: 3 unit\(s\)"]),
]
