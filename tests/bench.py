#!/usr/bin/env python3
"""
make bench: boot the kernel with vio.mode=bench on a fixed configuration (q35, 1 vCPU, TCG)
and collect its `BENCH <metric> <value> <unit>` lines into build/bench/results.txt.
Numbers, not pass/fail: the exit status only says whether the run completed.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu"))
import harness  # noqa: E402

CONFIG = dict(machine="q35", mem="1G", boot="direct")


def main():
    scn = harness.Scenario("bench", mode="bench", timeout=600, expect_tap=False, **CONFIG)
    ok, reason, secs, log_path = harness.run_scenario(scn)
    lines = re.findall(r"^BENCH .*$", open(log_path).read(), re.M)
    out = os.path.join(harness.BUILD, "bench", "results.txt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write("# %s, TCG, 1 vCPU\n" % ", ".join("%s=%s" % kv for kv in CONFIG.items()))
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("# results in %s (%.0f s)" % (os.path.relpath(out), secs))
    if not ok:
        print("bench run failed: %s (log %s)" % (reason, os.path.relpath(log_path)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
