"""
Block features proven against QEMU's virtio-blk, not only the host tests' fake: FLUSH seen
by the host's block layer (QMP query-blockstats), multiqueue, GET_ID, CONFIG_WCE and
TOPOLOGY with 4 KiB logical blocks, indirect descriptors and EVENT_IDX in use, and the
driver still moving the right data with each of those switched off. Every scenario asserts
the features the driver negotiated (`virtio blk0`), so a driver that quietly does without
one cannot pass for one that uses it.
"""
import os
import random
import re

from harness import Scenario
from scn_blk import host_sha256

MiB = 1024 * 1024


def disk(workdir, dev_extra="", size=32 * MiB, seed=81):
    path = os.path.join(workdir, "disk.img")
    with open(path, "wb") as f:
        f.write(random.Random(seed).randbytes(size))
    return ["-device", "virtio-rng-pci",
            "-drive", "file=%s,format=raw,if=none,id=d0,cache=writeback" % path,
            "-device", "virtio-blk-pci,drive=d0,id=vblk0" + dev_extra]


def setup_with(dev_extra):
    return lambda workdir: disk(workdir, dev_extra)


def features(q):
    """The names of the features blk0 negotiated, and its per-queue lines."""
    out = q.shell("virtio blk0")
    m = re.search(r"features 0x[0-9a-f]+:(.*)", out)
    assert m, out
    queues = [dict(index=int(v.group(1)), adds=int(v.group(2)), indirect=int(v.group(3)),
                   suppressed=int(v.group(4)), by=v.group(5))
              for v in re.finditer(r"vq(\d+): size \d+ free \d+ adds (\d+) \(indirect (\d+)\)"
                                   r" kicks \d+ notifies \d+ suppressed (\d+) \(by (\w+)\)",
                                   out)]
    return set(m.group(1).split()), queues


def sha_matches(q, ranges):
    path = os.path.join(q.workdir, "disk.img")
    for off, length in ranges:
        out = q.shell("blk sha256 blk0 %d %d" % (off, length), timeout=180)
        m = re.search(r"length \d+: ([0-9a-f]{64})", out)
        assert m, "no digest in %r" % out
        want = host_sha256(path, off, length)
        assert m.group(1) == want, "range %d+%d: kernel %s, host %s" % (off, length,
                                                                     m.group(1), want)


def blockstats(q):
    for dev in q.qmp("query-blockstats"):
        if dev.get("device") == "d0" or dev.get("qdev", "").startswith("vblk0") or \
                "vblk0" in dev.get("qdev", ""):
            return dev["stats"]
    raise AssertionError("no blockstats for d0")


def query_writeback(q):
    for dev in q.qmp("query-block"):
        if dev.get("device") == "d0":
            return dev["inserted"]["cache"]["writeback"]
    raise AssertionError("no query-block entry for d0")


# --- FLUSH reaches the host, and a disk without FLUSH is not taken for one -----------------

def flush_interact(q):
    q.wait_for(r"vio> ")
    feats, _ = features(q)
    assert "FLUSH" in feats, "FLUSH not negotiated: %s" % sorted(feats)
    assert "write-back" in q.shell("blk info blk0")
    before = blockstats(q)
    assert "wrote 8 sector(s)" in q.shell("blk write blk0 100 8 90")
    assert q.shell("blk flush blk0").strip() == "flushed"
    after = blockstats(q)
    assert after["flush_operations"] >= before["flush_operations"] + 1, (before, after)
    assert after["wr_operations"] > before["wr_operations"], (before, after)
    print("    host saw flush_operations %d -> %d" % (before["flush_operations"],
                                                    after["flush_operations"]))
    q.send("poweroff\r")


def no_flush_interact(q):
    q.wait_for(r"vio> ")
    feats, _ = features(q)
    assert "FLUSH" not in feats and "CONFIG_WCE" not in feats, sorted(feats)
    info = q.shell("blk info blk0")
    assert "write-through" in info and "(flush)" not in info, info
    before = blockstats(q)
    assert "nothing to flush" in q.shell("blk flush blk0")
    after = blockstats(q)
    assert after["flush_operations"] == before["flush_operations"], (before, after)
    q.send("poweroff\r")


# --- multiqueue ------------------------------------------------------------------------------

def mq_interact(q):
    q.wait_for(r"vio> ")
    feats, _ = features(q)
    assert "MQ" in feats, sorted(feats)
    assert "queues 4 x" in q.shell("blk info blk0")
    sha_matches(q, [(0, 16 * MiB), (4096, 1 * MiB + 512), (31 * MiB, 1 * MiB)])
    out = q.shell("blk qd blk0 400 16")
    assert re.search(r"qd: 400 reads .* 0 errors", out), out
    _, queues = features(q)
    assert [v["index"] for v in queues] == [0, 1, 2, 3], queues
    assert all(v["adds"] > 50 for v in queues), "a queue carried (almost) nothing: %s" % queues
    print("    requests per queue: %s" % [v["adds"] for v in queues])
    q.send("poweroff\r")


# --- GET_ID ------------------------------------------------------------------------------------

def serial_interact(q):
    q.wait_for(r"vio> ")
    out = q.shell("blk info blk0")
    assert re.search(r", serial vio-serial-42\n", out), out
    q.send("poweroff\r")


# --- 4 KiB logical blocks, topology, CONFIG_WCE ----------------------------------------------

TOPO = (",logical_block_size=4096,physical_block_size=8192,min_io_size=8192,"
        "opt_io_size=65536")


def topo_interact(q):
    q.wait_for(r"vio> ")
    feats, _ = features(q)
    assert {"BLK_SIZE", "TOPOLOGY", "CONFIG_WCE"} <= feats, sorted(feats)
    info = q.shell("blk info blk0")
    assert "block 4096" in info, info
    assert re.search(r"topology: physical block 8192 \(2\^1 logical\), alignment offset 0, "
                     r"min_io 2, opt_io 16", info), info
    for cmd in ("blk read blk0 1 8", "blk write blk0 12 8 119", "blk read blk0 8 1"):
        out = q.shell(cmd)
        assert "whole logical blocks" in out and "VIO_EALIGN" in out, (cmd, out)
    assert "wrote 16 sector(s)" in q.shell("blk write blk0 16 16 119")
    sha_matches(q, [(0, 4 * MiB), (8192, 65536), (28 * MiB, 4096)])
    # cache mode: the device takes writethrough and back, and the host's block layer follows
    assert query_writeback(q) is True
    assert "cache mode writethrough" in q.shell("blk wce blk0 off")
    assert query_writeback(q) is False
    assert "cache mode writethrough" in q.shell("blk info blk0")
    assert "cache mode writeback" in q.shell("blk wce blk0 on")
    assert query_writeback(q) is True
    q.send("poweroff\r")


def topo_check(log, workdir):
    img = open(os.path.join(workdir, "disk.img"), "rb").read()
    want = bytearray(random.Random(81).randbytes(32 * MiB))
    want[16 * 512:32 * 512] = bytes([119]) * (16 * 512)
    if img != want:
        first = next(i for i in range(len(img)) if img[i] != want[i])
        return "image differs at byte %d: the refused writes reached it, or the good one " \
               "did not" % first
    return None


# --- indirect descriptors and EVENT_IDX: used, and not needed ------------------------------

def ring_interact(indirect, event_idx):
    def interact(q):
        q.wait_for(r"vio> ")
        feats, _ = features(q)
        assert ("RING_INDIRECT_DESC" in feats) == indirect, sorted(feats)
        assert ("RING_EVENT_IDX" in feats) == event_idx, sorted(feats)
        out = q.shell("blk qd blk0 3000 32", timeout=180)
        assert re.search(r"qd: 3000 reads .* 0 errors", out), out
        sha_matches(q, [(0, 512), (4096, 65536), (1 * MiB + 512, 3 * MiB), (0, 32 * MiB)])
        _, queues = features(q)
        adds = sum(v["adds"] for v in queues)
        ind = sum(v["indirect"] for v in queues)
        sup = sum(v["suppressed"] for v in queues)
        by = {v["by"] for v in queues}
        assert by == {"EVENT_IDX" if event_idx else "NO_NOTIFY"}, queues
        if indirect:
            # A queue has 16 indirect tables (VIO_BLK_INDIRECT_TABLES) for up to 32 reads in
            # flight: when all are taken a request goes as a direct chain, so nearly all, not
            # every one, go indirect.
            assert ind >= adds * 9 // 10, "only %d of %d requests went indirect" % (ind, adds)
        else:
            assert ind == 0, queues
        if event_idx:
            assert sup > 0, "EVENT_IDX negotiated but no kick was suppressed: %s" % queues
        print("    %d requests, %d indirect, %d kicks suppressed by %s" % (adds, ind, sup,
                                                                         by.pop()))
        q.send("poweroff\r")
    return interact


def shell_scenario(name, interact, dev_extra="", check=None, timeout=300):
    return Scenario(name, mode="shell", setup=setup_with(dev_extra), interact=interact,
                    check=check, expect_exit=0, timeout=timeout)


SCENARIOS = [
    shell_scenario("blk-flush-reaches-host-blockstats", flush_interact),
    shell_scenario("blk-without-flush-is-write-through", no_flush_interact,
                   ",write-cache=off,config-wce=off"),
    shell_scenario("blk-mq-4-queues-all-carry-data-verified", mq_interact, ",num-queues=4"),
    shell_scenario("blk-get-id-serial-shown", serial_interact, ",serial=vio-serial-42"),
    shell_scenario("blk-4k-blocks-topology-wce", topo_interact, TOPO, check=topo_check),
    shell_scenario("blk-indirect-and-event-idx-used", ring_interact(True, True)),
    shell_scenario("blk-indirect-desc-off-still-correct", ring_interact(False, True),
                   ",indirect_desc=off"),
    shell_scenario("blk-event-idx-off-still-correct", ring_interact(True, False),
                   ",event_idx=off"),
]
