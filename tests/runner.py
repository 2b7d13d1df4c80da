#!/usr/bin/env python3
"""
vio test runner: host unit tests (cmocka binaries in build/host/), then the library built for
every architecture (tests/arch/archcheck.py over build/cross/, from `make lib-cross-build`),
then QEMU scenarios (tests/qemu/scn_*.py), then the benchmark tool once in its quick mode
(tests/bench.py --quick: that it runs and writes its report, not how fast). Prints one line
per test binary, check and scenario, the last 30 lines of every failing log, and ends with
exactly one line `N passed, N failed`.

  tests/runner.py [--host-only | --arch-only | --qemu-only] [-k SUBSTRING] [-j JOBS]

Each cmocka test case counts as one; each architecture check, QEMU scenario and the quick
benchmark (named bench-quick for -k) as one.
"""
import argparse
import concurrent.futures
import glob
import importlib.util
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "qemu"))
sys.path.insert(0, os.path.join(HERE, "arch"))
import archcheck  # noqa: E402
import harness  # noqa: E402

TAIL = 30


def tail(text, n=TAIL):
    return "\n".join("    | " + l for l in text.rstrip("\n").split("\n")[-n:])


def uses_fake_env(binary):
    """Driver tests (those built on tests/host/fake_env) and the virtqueue's run once per
    ring layout: with VIO_TEST_RING=packed the fake device offers VIRTIO_F_RING_PACKED."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "host",
                       os.path.basename(binary) + ".c")
    try:
        with open(src) as f:
            text = f.read()
            return "fake_env_new(" in text or "fake_env_ring_features(" in text
    except OSError:
        return False


def run_host_tests(pattern):
    passed = failed = 0
    binaries = sorted(glob.glob(os.path.join(harness.BUILD, "host", "test_*")))
    binaries = [b for b in binaries if os.access(b, os.X_OK) and not b.endswith(".d")]
    if not binaries:
        print("host: no test binaries under build/host (run 'make hosttest-build')")
        return 0, 1
    runs = []
    for b in binaries:
        runs.append((b, os.path.basename(b), "split"))
        if uses_fake_env(b):
            runs.append((b, os.path.basename(b) + "[packed]", "packed"))
    for b, name, ring in runs:
        if pattern and pattern not in name:
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="STDOUT",
                   ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", VIO_TEST_RING=ring)
        try:
            p = subprocess.run([b], capture_output=True, text=True, timeout=300, env=env)
            out, rc = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), None
        ok = len(re.findall(r"^\[       OK \]", out, re.M))
        bad = len(re.findall(r"^\[  (?:FAILED|ERROR)  \] (?!\d+ test)", out, re.M))
        if rc != 0 and bad == 0:
            bad = 1  # crashed, sanitizer report, or timeout: count the binary as a failure
        passed, failed = passed + ok, failed + bad
        os.makedirs(harness.LOGS, exist_ok=True)
        with open(os.path.join(harness.LOGS, name.replace("[", "-").replace("]", "") + ".log"),
                  "w") as f:
            f.write(out)
        status = "PASS" if rc == 0 and bad == 0 else ("TIMEOUT" if rc is None else "FAIL")
        print("%-5s host/%s: %d ok, %d failed" % (status, name, ok, bad), flush=True)
        if status != "PASS":
            print(tail(out))
    return passed, failed


def run_arch_checks(pattern):
    results, frames = archcheck.run(pattern)
    passed = failed = 0
    for name, ok, detail in results:
        print("%-5s arch/%s: %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)
        passed, failed = passed + ok, failed + (not ok)
    if frames and not pattern:
        print("note  arch: stack frames over the limit (build/cross/frames.txt):")
        print("\n".join("    | " + line for line in frames), flush=True)
    return passed, failed


def load_scenarios(pattern):
    scns = []
    for path in sorted(glob.glob(os.path.join(HERE, "qemu", "scn_*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        scns += [s for s in mod.SCENARIOS if not pattern or pattern in s.name]
    return scns


def run_qemu_tests(pattern, jobs):
    if not os.path.exists(harness.ELF):
        print("qemu: %s missing (run 'make')" % harness.ELF)
        return 0, 1
    scns = load_scenarios(pattern)
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(harness.run_scenario, s): s for s in scns}
        for fut in concurrent.futures.as_completed(futures):
            s = futures[fut]
            ok, reason, secs, log_path = fut.result()
            if ok:
                passed += 1
                print("PASS  qemu/%s (%.1f s)" % (s.name, secs), flush=True)
            else:
                failed += 1
                print("FAIL  qemu/%s (%.1f s): %s" % (s.name, secs, reason), flush=True)
                print("    log: %s" % os.path.relpath(log_path))
                try:
                    print(tail(open(log_path).read()), flush=True)
                except OSError:
                    pass
    return passed, failed


def run_bench_quick(pattern):
    """tests/bench.py --quick: every measurement it makes completed and the report has them."""
    if pattern and pattern not in "bench-quick":
        return 0, 0
    start = time.monotonic()
    report = os.path.join(harness.BUILD, "bench", "quick", "report.md")
    if os.path.exists(report):
        os.unlink(report)
    try:
        p = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--quick"],
                           capture_output=True, text=True, timeout=600)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired:
        out, rc = "timed out after 600 s", None
    os.makedirs(harness.LOGS, exist_ok=True)
    log_path = os.path.join(harness.LOGS, "bench-quick.log")
    with open(log_path, "w") as f:
        f.write(out)
    text = open(report).read() if os.path.exists(report) else ""
    rows = ("4 KiB random read, QD1", "TCP host to guest", "boot: QEMU start", "virtio-blk")
    missing = [r for r in rows if not re.search(r"^\| %s.*\| [0-9,.]+" % re.escape(r), text,
                                                re.M)]
    secs = time.monotonic() - start
    if rc == 0 and not missing:
        print("PASS  bench/bench-quick (%.1f s)" % secs, flush=True)
        return 1, 0
    print("FAIL  bench/bench-quick (%.1f s): %s" % (
        secs, "exit status %s" % rc if rc != 0 else "report lacks " + ", ".join(missing)))
    print("    log: %s" % os.path.relpath(log_path))
    print(tail(out), flush=True)
    return 0, 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--host-only", action="store_true")
    only.add_argument("--arch-only", action="store_true")
    only.add_argument("--qemu-only", action="store_true")
    ap.add_argument("-k", dest="pattern", default="", help="only tests whose name contains this")
    ap.add_argument("-j", dest="jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="QEMU scenarios run at once (default 2)")
    args = ap.parse_args()
    start = time.monotonic()
    passed = failed = 0
    everything = not (args.host_only or args.arch_only or args.qemu_only)
    if everything or args.host_only:
        p, f = run_host_tests(args.pattern)
        passed, failed = passed + p, failed + f
    if everything or args.arch_only:
        p, f = run_arch_checks(args.pattern)
        passed, failed = passed + p, failed + f
    if everything or args.qemu_only:
        p, f = run_qemu_tests(args.pattern, args.jobs)
        passed, failed = passed + p, failed + f
        p, f = run_bench_quick(args.pattern)
        passed, failed = passed + p, failed + f
    print("# %.0f s; logs in %s" % (time.monotonic() - start, os.path.relpath(harness.LOGS)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
