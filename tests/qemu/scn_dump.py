"""
Crash dumps through polled blk: the kernel dies, writes a dump to the disk vio.dump= names
with the block driver's panic-safe writes, and scripts/vio-dump reads it back from the image
after QEMU exits. The faulting RIP it prints must be the one the console showed and must
name the function that faulted; the log and the device table must be in the dump.
"""
import os
import random
import re
import subprocess

from harness import BUILD, EXIT_FAIL, ROOT, Scenario

MiB = 1024 * 1024
TOOL = os.path.join(ROOT, "scripts", "vio-dump")
DUMP_SECTOR = 2048


def images(workdir):
    """blk0, a data disk, and blk1, the dump disk, full of known bytes."""
    args = ["-device", "virtio-rng-pci"]
    for i, size in enumerate((16 * MiB, 16 * MiB)):
        path = os.path.join(workdir, "d%d.img" % i)
        with open(path, "wb") as f:
            f.write(random.Random(70 + i).randbytes(size))
        args += ["-drive", "file=%s,format=raw,if=none,id=d%d,cache=writeback" % (path, i),
                 "-device", "virtio-blk-pci,drive=d%d" % i]
    return args


def read_dump(workdir, sector):
    """What scripts/vio-dump prints for the dump disk; raises when it finds no good dump."""
    out = subprocess.run([TOOL, os.path.join(workdir, "d1.img"), "--sector", str(sector),
                          "--elf", os.path.join(BUILD, "vio.elf")],
                         capture_output=True, text=True, timeout=60)
    with open(os.path.join(workdir, "vio-dump.txt"), "w") as f:
        f.write(out.stdout)
    print("    " + "\n    ".join(out.stdout.splitlines()[:12]))
    if out.returncode:
        raise AssertionError("vio-dump exited %d: %s%s" % (out.returncode, out.stdout,
                                                           out.stderr))
    return out.stdout


def console_rip(log):
    m = re.search(r"^RIP (0x[0-9a-f]+)", log, re.M)
    return int(m.group(1), 16) if m else None


def check_common(log, dump, function):
    """The dump's RIP is the console's and names `function`; log and devices are there."""
    rip = console_rip(log)
    m = re.search(r"^RIP (0x[0-9a-f]+)  (.*)$", dump, re.M)
    if not rip or not m:
        return "no RIP on the console (%s) or in the dump (%s)" % (rip, m)
    if int(m.group(1), 16) != rip:
        return "dump RIP %s, console RIP %#x" % (m.group(1), rip)
    if not m.group(2).startswith(function + " "):
        return "RIP %s is named %r, not %s" % (m.group(1), m.group(2), function)
    for want in (r"^--- log ---$", r"^vio: booting$", r"^dump: crash dumps go to blk1",
                 r"^--- devices ---$", r"^  blk1 +virtio-blk", r"vq0: avail idx \d+",
                 r"^backtrace:\n  #0 "):
        if not re.search(want, dump, re.M):
            return "the dump lacks /%s/" % want
    return None


def pf_check(log, workdir):
    dump = read_dump(workdir, DUMP_SECTOR)
    err = check_common(log, dump, "deliberate_fault")
    if err:
        return err
    if not re.search(r"^selftest: raising a deliberate pf$", dump, re.M):
        return "the log in the dump stops before the fault"
    if not re.search(r"^vector 14, error code 0x2$", dump, re.M):
        return "the dump's registers are not the page fault's"
    before = open(os.path.join(workdir, "d1.img"), "rb").read(DUMP_SECTOR * 512)
    if before != random.Random(71).randbytes(16 * MiB)[:DUMP_SECTOR * 512]:
        return "the dump wrote below vio.dump's sector %d" % DUMP_SECTOR
    return damage_is_noticed(workdir)


def damage_is_noticed(workdir):
    """One flipped bit in the body, or a header never written, is not taken for a dump."""
    img = os.path.join(workdir, "d1.img")
    data = bytearray(open(img, "rb").read())
    base = DUMP_SECTOR * 512
    for what, offset, want_rc in (("a flipped body bit", base + 4096 + 100, 2),
                                  ("a header never written", base, 1)):
        bad = bytearray(data)
        if want_rc == 1:
            bad[offset:offset + 4096] = bytes(4096)
        else:
            bad[offset] ^= 0x10
        path = os.path.join(workdir, "bad.img")
        with open(path, "wb") as f:
            f.write(bad)
        out = subprocess.run([TOOL, path, "--sector", str(DUMP_SECTOR)], capture_output=True,
                             text=True, timeout=60)
        if out.returncode != want_rc:
            return "vio-dump took a dump with %s: exit %d, %s" % (what, out.returncode,
                                                                out.stdout[:200])
    return None


IN_FLIGHT_SECTOR = 16384  # the reads `blk crash` leaves in flight are at sectors 0..63


def in_flight_interact(q):
    q.wait_for(r"vio> ")
    q.send("blk crash blk1\r")
    q.wait_for(r"^blk crash: \d+ request\(s\) in flight, faulting now$", timeout=60)
    q.wait_for(r"^dump: \d+ bytes written to blk1", timeout=120)


def in_flight_check(log, workdir):
    dump = read_dump(workdir, IN_FLIGHT_SECTOR)
    err = check_common(log, dump, "crash_with_reads_in_flight")
    if err:
        return err
    m = re.search(r"^dump: blk1: (\d+) request\(s\) in flight$", dump, re.M)
    if not m or int(m.group(1)) == 0:
        return "the dump does not show blk1's reads in flight (%s)" % (m and m.group(0))
    if not re.search(r"^  #\d+ +0x[0-9a-f]+  blk_crash ", dump, re.M):
        return "the backtrace does not reach blk_crash"
    print("    dump written past %s request(s) in flight on the same disk" % m.group(1))
    return None


# --- panic(), with all RAM -------------------------------------------------------------------

PANIC_WORDS = "dump test 9f2c1e"


def ram_setup(workdir):
    """blk0 and a sparse 160 MiB blk1: room for a 128 MiB guest's RAM."""
    args = images(workdir)
    path = os.path.join(workdir, "d1.img")
    os.truncate(path, 0)
    os.truncate(path, 160 * MiB)
    return args


def ram_interact(q):
    q.wait_for(r"vio> ")
    q.send("panic %s\r" % PANIC_WORDS)
    q.wait_for(r"^dump: \d+ bytes written to blk1", timeout=300)


def ram_check(log, workdir):
    ram = os.path.join(workdir, "ram.bin")
    out = subprocess.run([TOOL, os.path.join(workdir, "d1.img"), "--elf",
                          os.path.join(BUILD, "vio.elf"), "--ram-out", ram],
                         capture_output=True, text=True, timeout=300)
    if out.returncode:
        return "vio-dump exited %d: %s" % (out.returncode, out.stdout)
    dump = out.stdout
    if not re.search(r"^dump: panic: %s$" % PANIC_WORDS, dump, re.M):
        return "the dump's reason is not the panic's"
    if not re.search(r"^RIP 0x[0-9a-f]+  cmd_panic ", dump, re.M):
        return "RIP does not name cmd_panic, which called panic()"
    usable = int(re.search(r"^mem: (\d+) MiB usable", log, re.M).group(1))
    kib = sum(int(k) for k in re.findall(r"^ram: 0x[0-9a-f]+-0x[0-9a-f]+ \((\d+) KiB\)$",
                                         dump, re.M))
    if abs(kib // 1024 - usable) > 1:
        return "RAM records hold %d KiB, the kernel had %d MiB usable" % (kib, usable)
    data = open(ram, "rb").read()
    # the panic's reason sits in main.c's static buffer: the RAM image must hold it
    if ("panic: " + PANIC_WORDS).encode() not in data:
        return "the RAM image lacks the panic message the kernel held in memory"
    print("    %d KiB of RAM in the dump; the panic message found in it" % kib)
    return None


SCENARIOS = [
    Scenario("dump-page-fault-to-blk1-read-by-vio-dump", setup=images, expect_exit=EXIT_FAIL,
             expect_tap=False, cmdline="vio.fault=pf vio.dump=blk1@%d" % DUMP_SECTOR,
             check=pf_check, expect_log=[r"^dump: \d+ bytes written to blk1 at sector 2048"]),
    Scenario("dump-with-blk1-reads-in-flight", setup=images, mode="shell",
             expect_exit=EXIT_FAIL, expect_tap=False, interact=in_flight_interact,
             cmdline="vio.dump=blk1@%d" % IN_FLIGHT_SECTOR, check=in_flight_check,
             timeout=180),
    Scenario("dump-panic-with-all-ram", setup=ram_setup, mode="shell", mem="128M",
             expect_exit=EXIT_FAIL, expect_tap=False, interact=ram_interact,
             cmdline="vio.dump=blk1,ram", check=ram_check, timeout=300),
]
