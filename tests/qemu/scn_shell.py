"""The shell driven like a user: wrong commands and arguments get a one-line error and the
shell goes on; the device commands answer."""
import re

from harness import Scenario

BAD = [
    ("bogus", r"unknown command 'bogus'"),
    ("blk", r"usage: blk "),
    ("blk read", r"usage: blk "),
    ("blk read blk9 0 1", r"no disk 'blk9'"),
    ("blk read blk0 zero 1", r"usage: blk "),
    ("blk read blk0 99999999999 1", r"blk read: an argument is out of range .*\(VIO_EINVAL\)"),
    ("rng abc", r"usage: rng "),
    ("rng 0", r"usage: rng "),
    ("net send net0 zz:zz 64", r"usage: net "),
    ("net info net7", r"no NIC 'net7'"),
    ("virtio nope", r"no device 'nope'"),
    ("cons write 99 hi", r"VIO_E|no port"),
    ("mem extra", r"usage: mem"),
]


def shell_interact(q):
    q.wait_for(r"vio> ")
    for cmd, rx in BAD:
        out = q.shell(cmd)
        assert re.search(rx, out), "%r printed %r" % (cmd, out)
        assert len(out.strip().splitlines()) == 1, "%r printed more than one line" % cmd
    out = q.shell("devices")
    assert re.search(r"blk0 +virtio-blk", out), out
    out = q.shell("virtio blk0")
    assert "VERSION_1" in out and "vq0:" in out, out
    out = q.shell("rng 32")
    assert re.search(r"^00000010 ", out, re.M), out
    out = q.shell("blk write blk0 8 2 0xab")
    assert "wrote 2 sector(s)" in out, out
    out = q.shell("blk read blk0 8 1")
    assert "00001000  ab ab" in out, out
    out = q.shell("lspci")
    assert "1af4:" in out, out
    q.send("poweroff\r")


def setup(workdir):
    import subprocess
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", "%s/disk.img" % workdir, "8M"],
                   check=True)
    return ["-device", "virtio-rng-pci", "-device", "virtio-serial-pci",
            "-drive", "file=disk.img,format=raw,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0",
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]


SCENARIOS = [
    Scenario("shell-bad-input-and-device-commands", mode="shell", setup=setup,
             interact=shell_interact, expect_exit=0, timeout=120),
]
