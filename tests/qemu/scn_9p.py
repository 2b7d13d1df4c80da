"""
A host folder over virtio-9p, against QEMU's own 9P server (`-fsdev local`), checked from
the host side: what the kernel reads must hash like the host's file, what it writes must
appear in the folder, byte for byte, and what the host refuses must come back as a sentence.
"""
import hashlib
import os
import re

from harness import Scenario

MiB = 1024 * 1024
LONG_NAME = "L" * 200 + ".txt"
UTF8_NAME = "h\u00e9llo-w\u00f6rld-\u65e5\u672c.txt"


def sha(path, length=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read() if length is None else f.read(length))
    return h.hexdigest()


def make_share(w):
    share = os.path.join(w, "share")
    os.makedirs(os.path.join(share, "many"))
    os.makedirs(os.path.join(share, "sub", "dir"))
    with open(os.path.join(share, "big.bin"), "wb") as f:
        f.write(os.urandom(10 * MiB))
    for i in range(1000):
        with open(os.path.join(share, "many", "f%04d" % i), "w") as f:
            f.write("%d\n" % i)
    for name, text in ((LONG_NAME, "a long name\n"), (UTF8_NAME, "unicode name\n"),
                       ("victim.txt", "soon gone\n"), ("sub/dir/deep.txt", "deep\n")):
        with open(os.path.join(share, name), "w", encoding="utf-8") as f:
            f.write(text)
    return share


def devices(w, readonly=False):
    share = make_share(w)
    disk = os.path.join(w, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(32 * MiB)
    ro = ",readonly=on" if readonly else ""
    return ["-fsdev", "local,id=fs0,path=%s,security_model=none%s" % (share, ro),
            "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=host",
            "-drive", "file=%s,if=none,id=d0,format=raw" % disk,
            "-device", "virtio-blk-pci,drive=d0"]


def host_folder_interact(q):
    share = os.path.join(q.workdir, "share")
    q.wait_for(r"vio> ")
    out = q.shell("9p info")
    assert "tag 'host'" in out and "msize 65536" in out, out

    # Reading: a 10 MiB file hashes like the host's, and copies back byte for byte.
    out = q.shell("9p sha256 big.bin", timeout=240)
    assert sha(os.path.join(share, "big.bin")) in out and "10485760 bytes" in out, out
    out = q.shell("9p cp big.bin copy.bin", timeout=240)
    assert "copied 10485760 bytes" in out, out
    assert sha(os.path.join(share, "copy.bin")) == sha(os.path.join(share, "big.bin"))

    # A directory of 1,000 files lists completely.
    out = q.shell("9p ls many", timeout=120)
    names = set(re.findall(r"^(f\d{4})\r?$", out, re.M))
    assert len(names) == 1000 and "1000 entries" in out, "%d names: %s" % (len(names),
                                                                        out[-200:])
    # Long and UTF-8 names, listed and read.
    out = q.shell("9p ls")
    assert LONG_NAME in out and UTF8_NAME in out and "many/" in out and "sub/" in out, out
    assert "a long name" in q.shell("9p cat " + LONG_NAME)
    assert "unicode name" in q.shell("9p cat " + UTF8_NAME)
    assert "deep" in q.shell("9p cat /sub//dir/deep.txt")
    out = q.shell("9p stat big.bin")
    assert "file" in out and "size 10485760" in out, out
    assert "directory" in q.shell("9p stat sub/dir")

    # Writing: the host sees every change.
    out = q.shell("9p put new.txt hello from vio")
    assert "wrote 15 bytes" in out, out
    with open(os.path.join(share, "new.txt")) as f:
        assert f.read() == "hello from vio\n"
    q.shell("9p put new.txt shorter")
    with open(os.path.join(share, "new.txt")) as f:
        assert f.read() == "shorter\n", "put must truncate"
    q.shell("9p mkdir made")
    assert os.path.isdir(os.path.join(share, "made"))
    q.shell("9p mv new.txt made/moved.txt")
    assert os.path.exists(os.path.join(share, "made", "moved.txt"))
    assert not os.path.exists(os.path.join(share, "new.txt"))
    out = q.shell("9p rm made")
    assert "not empty" in out, out
    q.shell("9p rm made/moved.txt")
    q.shell("9p rm made")
    assert not os.path.exists(os.path.join(share, "made"))

    # Between the folder and a disk, both ways.
    out = q.shell("9p cp big.bin blk0:0", timeout=240)
    assert "copied 10485760 bytes" in out, out
    assert sha(os.path.join(q.workdir, "disk.img"), 10 * MiB) == sha(
        os.path.join(share, "big.bin"))
    out = q.shell("9p cp blk0:8:1048576 fromdisk.bin", timeout=120)
    assert "copied 1048576 bytes" in out, out
    with open(os.path.join(share, "big.bin"), "rb") as f:
        f.seek(4096)
        want = f.read(MiB)
    with open(os.path.join(share, "fromdisk.bin"), "rb") as f:
        assert f.read() == want

    # The timed commands of make bench (tests/bench_storage.py): a whole file read, a new
    # file written with the pattern, and a disk read in 1 MiB requests wrapping at its end.
    out = q.shell("9p bench read big.bin", timeout=240)
    assert re.search(r"9p bench read: 10485760 bytes in [1-9]\d* ns", out), out
    out = q.shell("9p bench write bench.bin 2", timeout=240)
    assert re.search(r"9p bench write: 2097152 bytes in [1-9]\d* ns", out), out
    with open(os.path.join(share, "bench.bin"), "rb") as f:
        data = f.read()
    assert len(data) == 2 * MiB and data[:4096] == bytes((i * 131 + 7) & 0xff
                                                       for i in range(4096)), len(data)
    out = q.shell("9p bench write bench.bin 0")
    assert "give 1 to 4096 MiB" in out, out
    out = q.shell("blk seqread blk0 40 1024", timeout=240)
    assert re.search(r"blk seqread: 41943040 bytes in [1-9]\d* ns, requests of 1024 KiB",
                     out), out
    out = q.shell("blk seqread blk0 1 2048")
    assert "up to 1024 KiB" in out, out

    # What the host refuses, in words; the fids of failed commands are given back.
    os.unlink(os.path.join(share, "victim.txt"))
    out = q.shell("9p cat victim.txt")
    assert "victim.txt: no such file or directory (ENOENT)" in out, out
    out = q.shell("9p ls big.bin")
    assert "not a directory" in out, out
    out = q.shell("9p cat sub")
    assert "9p: cat sub:" in out, out
    out = q.shell("9p mkdir sub")
    assert "already exists" in out, out
    for _ in range(70):  # more than the client's 64 fids: none may leak
        q.shell("9p cat nothere/at/all")
    assert "deep" in q.shell("9p cat sub/dir/deep.txt")
    out = q.shell("9p frobnicate")
    assert "usage: 9p" in out, out
    out = q.shell("virtio 9p0")
    assert re.search(r"9p: msize 65536, requests \d+", out) and "MOUNT_TAG" in out, out
    q.send("poweroff\r")


def readonly_interact(q):
    share = os.path.join(q.workdir, "share")
    q.wait_for(r"vio> ")
    out = q.shell("9p put x.txt no")
    assert "the export is read-only (EROFS)" in out, out
    assert not os.path.exists(os.path.join(share, "x.txt"))
    out = q.shell("9p rm victim.txt")
    assert "read-only" in out, out
    out = q.shell("9p bench write x.bin 1")
    assert "bench write x.bin: the export is read-only (EROFS)" in out, out
    assert not os.path.exists(os.path.join(share, "x.bin"))
    assert os.path.exists(os.path.join(share, "victim.txt"))
    assert "soon gone" in q.shell("9p cat victim.txt")
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("9p-host-folder", mode="shell", setup=devices, interact=host_folder_interact,
             expect_exit=0, timeout=600, expect_log=[r"vio: virtio-9p \S+ \S+ features=0x"]),
    Scenario("9p-readonly-export", mode="shell", setup=lambda w: devices(w, readonly=True),
             interact=readonly_interact, expect_exit=0, timeout=180),
]
