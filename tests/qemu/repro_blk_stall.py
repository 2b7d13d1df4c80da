#!/usr/bin/env python3
"""
The stall of blk-20000-ops-against-model, reproduced: QEMU before 8.1 leaves out the guest's
memory barriers under TCG when the machine has a single vCPU.

TCG turns a guest barrier (mfence, a locked instruction) into a host barrier only when it
translates code for several vCPUs (CF_PARALLEL). With one vCPU it drops it, although QEMU's
own threads (the main loop, iothreads) read and write guest memory at the same time; QEMU
8.1 fixed it (commit c914d46d, "tcg: Do not elide memory barriers for !CF_PARALLEL in system
mode"). On an x86 host a load may then pass an earlier store. That is exactly the order
vio_vq_kick_prepare needs kept: store avail->idx, vio_mb, load avail_event (2.7.10), against
the device's store avail_event, barrier, load avail->idx. Each side can then see the other
asleep: QEMU stops taking requests, and the driver, whose new requests are all published,
has nothing left to notify about. The test's ring dump shows it: avail idx = used idx + the
requests in flight, avail_event = used_event = used idx = last_used, no completion for 10 s.

This runs the blk-model self-test with one vCPU and with two (the same kernel; with two,
TCG keeps the barriers), interleaved so that both see the same host load, and prints how
many runs of each stalled. Stalls need a loaded host; run a few in parallel.

  tests/qemu/repro_blk_stall.py [RUNS]       (needs build/vio.elf; each run takes seconds)

On QEMU 7.2 (Debian 12), at a load average of 6 to 13 on two cores, the same kernel:

  one vCPU, EVENT_IDX, MSI-X              10 of 182 runs stalled (and 1 of 19 with INTx)
  two vCPUs                                0 of 202 (40 of them with event_idx=off)
  one vCPU, a port write added to vio_mb   0 of 61 (the access takes a QEMU lock, which is
                                           a host barrier)
  one vCPU, event_idx=off                  0 of 60 (the same race exists on used->flags; it
                                           was not seen)

Every stall's dump had the same shape, e.g. "avail idx 15669 (published 15669) used_event
15605 | used idx 15605 avail_event 15605 | last_used 15605", 64 in flight. The driver's side
of it (vio_vq_kick_prepare, and blk's slots under out-of-order completion and reaping in the
interrupt handler) holds: the fix is QEMU 8.1 or later, or more than one vCPU under TCG.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Scenario  # noqa: E402
from scn_blk import pattern_setup  # noqa: E402

ARMS = [("1 vCPU", ["-smp", "1"]), ("2 vCPUs", ["-smp", "2"])]


def run(name, smp):
    scn = Scenario(name, setup=pattern_setup, qemu_args=smp, timeout=900,
                   cmdline="vio.tests=blk-model vio.count=20000")
    ok, reason, seconds, log = harness.run_scenario(scn)
    with open(log) as f:
        stalled = re.search(r"^not ok \d+ - blk-model # stalled.*", f.read(), re.M)
    if not stalled:
        os.remove(log)
    return stalled.group(0) if stalled else None, log


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    stalls = {arm: 0 for arm, _ in ARMS}
    for i in range(runs):
        for arm, smp in ARMS:
            stalled, log = run("repro-blk-stall-%s-%d" % (smp[1], i), smp)
            if stalled:
                stalls[arm] += 1
                print("%s, run %d: %s (%s)" % (arm, i, stalled, log), flush=True)
    for arm, _ in ARMS:
        print("%s: %d of %d runs stalled" % (arm, stalls[arm], runs))


if __name__ == "__main__":
    main()
