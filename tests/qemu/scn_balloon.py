"""
Memory balloon against QEMU's virtio-balloon, driven from the monitor (QMP) like a host
management tool would: `balloon` sets the guest size wanted, `query-balloon` reports the guest
size QEMU derives from the driver's `actual`, `qom-get guest-stats` shows the statistics the
kernel sent. The kernel's side is read from the shell: `mem` (the page allocator's view and
the pages the balloon holds) and `balloon` (target, actual, counters).

QEMU's numbers are bytes of guest RAM left to the guest: 512 MiB RAM with `balloon 256M` means
the balloon must hold 256 MiB = 65536 pages.
"""
import re
import time

from harness import Scenario

MiB = 1024 * 1024
RAM = 512 * MiB
PAGES_PER_MIB = MiB // 4096
FLOOR_PAGES = 8192  # VIO_BALLOON_FLOOR_PAGES: the balloon leaves the kernel this many free
BALLOON_PATH = "/machine/peripheral/balloon0"


def devices(extra=""):
    return ["-device", "virtio-rng-pci",
            "-device", "virtio-balloon-pci,id=balloon0,deflate-on-oom=on" + extra]


def mem(q):
    """The shell's `mem`: (free pages, total pages, pages the balloon holds)."""
    out = q.shell("mem")
    m = re.search(r"pages: (\d+) free of (\d+)", out)
    b = re.search(r"balloon: (\d+) pages held", out)
    assert m and b, "mem printed %r" % out
    return int(m.group(1)), int(m.group(2)), int(b.group(1))


def actual(q):
    return q.qmp("query-balloon")["actual"]


def wait_actual(q, want, timeout=60):
    """Wait until query-balloon says `want` bytes; returns the seconds it took."""
    t0 = time.monotonic()
    while True:
        got = actual(q)
        if got == want:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, "query-balloon stuck at %d MiB, want %d MiB" % (
            got // MiB, want // MiB)
        time.sleep(0.1)


def wait_stable(q, settle=3.0, timeout=90):
    """Wait until query-balloon stops moving for `settle` seconds; returns the value."""
    end = time.monotonic() + timeout
    last, since = actual(q), time.monotonic()
    while time.monotonic() - since < settle:
        assert time.monotonic() < end, "query-balloon never settled (last %d)" % last
        time.sleep(0.2)
        now = actual(q)
        if now != last:
            last, since = now, time.monotonic()
    return last


def check_consistent(q, free0, what):
    """Every page the allocator lost since boot is in the balloon (or is one of its
    bookkeeping pages: one per 1020 PFNs)."""
    free, _, held = mem(q)
    missing = free0 - free - held
    assert 0 <= missing <= held // 1020 + 4, (
        "%s: %d free + %d held, %d free at boot (%d unaccounted)" % (what, free, held, free0,
                                                                     missing))
    return free, held


# --- 1: inflate to 256 MiB and back --------------------------------------------------------

def inflate_interact(q):
    q.wait_for(r"vio> ")
    out = q.shell("balloon")
    assert "DEFLATE_ON_OOM" in out and "STATS_VQ" in out, out
    free0, total, held = mem(q)
    assert held == 0 and actual(q) == RAM
    q.qmp("balloon", value=256 * MiB)
    secs = wait_actual(q, 256 * MiB)
    free, _, held = mem(q)
    assert held == 256 * PAGES_PER_MIB, "balloon holds %d pages" % held
    assert free0 - free >= held, "free only dropped by %d pages" % (free0 - free)
    check_consistent(q, free0, "at 256 MiB")
    out = q.shell("balloon")
    assert re.search(r"actual 65536 pages", out), out
    print("    256 MiB reached in %.2f s; free pages %d -> %d (-%d), balloon holds %d"
          % (secs, free0, free, free0 - free, held))

    q.qmp("balloon", value=RAM)
    secs = wait_actual(q, RAM)
    free, _, held = mem(q)
    assert held == 0 and free == free0, "after deflate: %d free (boot %d), %d held" % (
        free, free0, held)
    print("    back to 512 MiB in %.2f s; free pages %d again" % (secs, free))
    q.send("poweroff\r")


# --- 2: statistics -------------------------------------------------------------------------

def stats_interact(q):
    q.wait_for(r"vio> ")
    _, total, _ = mem(q)
    q.qmp("balloon", value=384 * MiB)
    wait_actual(q, 384 * MiB)
    # Stats the kernel sent before the inflate finished may still be cached in QEMU: wait
    # for an update that arrives after polling was switched on.
    before = q.qmp("qom-get", path=BALLOON_PATH, property="guest-stats")["last-update"]
    q.qmp("qom-set", path=BALLOON_PATH, property="guest-stats-polling-interval", value=2)
    end = time.monotonic() + 30
    while True:
        st = q.qmp("qom-get", path=BALLOON_PATH, property="guest-stats")
        if st["last-update"] > before and st["stats"]["stat-total-memory"] != 2**64 - 1:
            break
        assert time.monotonic() < end, "no guest stats after 30 s: %r" % st
        time.sleep(0.5)
    s = st["stats"]
    free, _, _ = mem(q)
    assert s["stat-total-memory"] == total * 4096, "total %d, kernel says %d pages" % (
        s["stat-total-memory"], total)
    assert 0 < s["stat-free-memory"] <= s["stat-total-memory"], s
    # The kernel answers each request with the numbers of that moment; nothing moved since.
    assert s["stat-free-memory"] == free * 4096, "free %d, kernel says %d pages" % (
        s["stat-free-memory"], free)
    for tag in ("stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults"):
        assert s[tag] == 0, "%s = %d" % (tag, s[tag])
    # A second update arrives on the next interval.
    first = st["last-update"]
    end = time.monotonic() + 30
    while q.qmp("qom-get", path=BALLOON_PATH, property="guest-stats")["last-update"] == first:
        assert time.monotonic() < end, "guest stats not refreshed"
        time.sleep(0.5)
    out = q.shell("balloon")
    m = re.search(r"stats requests (\d+)", out)
    assert m and int(m.group(1)) >= 2, out
    print("    guest-stats: total %d MiB, free %d MiB, last-update %d, %s requests"
          % (s["stat-total-memory"] // MiB, s["stat-free-memory"] // MiB, first, m.group(1)))
    q.send("poweroff\r")


# --- 3: deflate on OOM ---------------------------------------------------------------------

def oom_interact(q):
    q.wait_for(r"vio> ")
    free0, _, _ = mem(q)
    q.qmp("balloon", value=160 * MiB)
    wait_actual(q, 160 * MiB)
    free, _, held = mem(q)
    want_mib = 200
    assert free < want_mib * PAGES_PER_MIB, "%d pages free: no need for the balloon" % free
    out = q.shell("balloon alloc %d" % want_mib, timeout=120)
    after = actual(q)  # before the balloon takes its pages back (it waits a second)
    m = re.search(r"alloc: (\d+) of (\d+) pages \((\d+) were free\), balloon gave back (\d+) "
                  r"on oom, balloon (\d+) -> (\d+) pages, (\d+) ms", out)
    assert m, out
    got, want, were_free, oom, held_before, held_after, ms = map(int, m.groups())
    assert got == want, "only %d of %d pages: the balloon did not deflate enough" % (got, want)
    assert oom >= want - were_free and held_after == held_before - oom, out
    assert after > 160 * MiB, "query-balloon did not see the deflate (%d MiB)" % (after // MiB)
    out = q.shell("mem")
    r = re.search(r"oom: (\d+) reclaims, (\d+) allocations rescued", out)
    assert r and int(r.group(2)) > 0, out
    print("    %d pages allocated with %d free: balloon deflated %d pages on OOM in %s "
          "reclaims (%d ms); query-balloon %d -> %d MiB"
          % (got, were_free, oom, r.group(1), ms, 160, after // MiB))
    # The target did not move: once its back-off is over the balloon fills up again.
    wait_actual(q, 160 * MiB, timeout=30)
    q.qmp("balloon", value=RAM)
    wait_actual(q, RAM)
    free, _, held = mem(q)
    assert held == 0 and free == free0, "%d free, %d at boot" % (free, free0)
    q.send("poweroff\r")


# --- 4: impossible and changing targets ----------------------------------------------------

def bad_interact(q):
    q.wait_for(r"vio> ")
    free0, _, _ = mem(q)

    # More than the guest can give: the balloon stops at its floor (VIO_BALLOON_FLOOR_PAGES,
    # 32 MiB, left free), or where the allocator says no if that comes first.
    q.qmp("balloon", value=16 * MiB)
    q.wait_for(r"out of memory at \d+ of \d+ pages|keeping the floor of \d+ pages free",
               timeout=60)
    stuck = wait_stable(q)
    free, held = check_consistent(q, free0, "at the floor")
    assert stuck == RAM - held * 4096, "QMP says %d, kernel holds %d pages" % (stuck, held)
    assert held > free0 * 9 // 10, "stopped early: %d of %d pages" % (held, free0)
    assert free >= FLOOR_PAGES, "only %d pages left free" % free
    assert q.shell("echo still here").strip() == "still here"
    print("    target 16 MiB: stopped at %d pages held, %d free, guest %d MiB"
          % (held, free, stuck // MiB))

    q.qmp("balloon", value=RAM)
    wait_actual(q, RAM)
    assert mem(q)[0] == free0

    # The target shrinks while the balloon is still inflating toward the first one.
    q.qmp("balloon", value=64 * MiB)
    q.qmp("balloon", value=400 * MiB)
    wait_actual(q, 400 * MiB)
    free, held = check_consistent(q, free0, "at 400 MiB")
    assert held == 112 * PAGES_PER_MIB, held
    # And once more with the inflate well under way.
    q.qmp("balloon", value=64 * MiB)
    time.sleep(0.3)
    q.qmp("balloon", value=400 * MiB)
    wait_actual(q, 400 * MiB)
    check_consistent(q, free0, "at 400 MiB again")

    q.qmp("balloon", value=RAM)
    wait_actual(q, RAM)
    free, _, held = mem(q)
    assert held == 0 and abs(free - free0) <= 4, "%d free, %d at boot" % (free, free0)
    print("    64 -> 400 -> 512 MiB: all returned, %d free pages (boot %d)" % (free, free0))
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("balloon-inflate-256m-and-back", mode="shell", setup=lambda w: devices(),
             interact=inflate_interact, expect_exit=0, timeout=180,
             expect_log=[r"vio: virtio-balloon \S+ \S+ features=0x"]),
    Scenario("balloon-guest-stats", mode="shell", setup=lambda w: devices(),
             interact=stats_interact, expect_exit=0, timeout=180),
    Scenario("balloon-deflate-on-oom", mode="shell", setup=lambda w: devices(),
             interact=oom_interact, expect_exit=0, timeout=240),
    Scenario("balloon-impossible-and-shrinking-targets", mode="shell",
             setup=lambda w: devices(), interact=bad_interact, expect_exit=0, timeout=300),
]
