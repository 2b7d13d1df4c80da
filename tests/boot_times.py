#!/usr/bin/env python3
"""
Time from QEMU start to the shell prompt for every boot path, as a user starts it: each
path's ./run-qemu.sh command (default devices, TCG) runs RUNS times, the clock starting when
the command starts and stopping when `vio> ` appears on COM1; then `poweroff`. Prints the
median and the spread per path (README.md, "Boot paths", quotes them).

  python3 tests/boot_times.py [RUNS]        (default 3; `make` first)

Timing on a shared machine is noisy: compare paths measured in the same run.
"""
import os
import selectors
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = [
    ("BIOS ISO", ["./run-qemu.sh"]),
    ("UEFI ISO", ["./run-qemu.sh", "--uefi"]),
    ("PVH direct", ["./run-qemu.sh", "--direct"]),
    ("microvm", ["./run-qemu.sh", "--machine", "microvm"]),
]
TIMEOUT = 180


def time_to_prompt(cmd):
    """Seconds from starting `cmd` to the shell prompt on its output."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out = b""
    try:
        while b"vio> " not in out:
            left = t0 + TIMEOUT - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError("%s: no prompt; output ends %r" % (" ".join(cmd), out[-300:]))
            if sel.select(min(left, 0.1)):
                out += os.read(proc.stdout.fileno(), 65536)
        seconds = time.monotonic() - t0
        proc.stdin.write(b"poweroff\r")
        proc.stdin.flush()
        proc.wait(timeout=30)
        return seconds
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print("# seconds from QEMU start to the shell prompt, TCG, %d runs each" % runs)
    print("# %-11s %7s  %s" % ("path", "median", "runs"))
    for name, cmd in PATHS:
        times = [time_to_prompt(cmd) for _ in range(runs)]
        print("%-13s %7.2f  %s   %s" % (name, statistics.median(times),
                                        " ".join("%.2f" % t for t in times), " ".join(cmd)),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
