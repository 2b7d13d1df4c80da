#!/usr/bin/env python3
"""
Which accelerator runs the vio kernel on this machine: KVM when it can really run it, TCG
otherwise. run-qemu.sh --kvm and `make bench` with BENCH_ACCEL=kvm both ask here.

/dev/kvm being there proves little: on some hosts KVM starts a trivial guest but its virtual
CPU cannot execute SSE, and the kernel (newlib's printf and string code use XMM registers)
dies on its first `movq %rax, %xmm0` with "KVM internal error ... emulation failure" and a
register dump. So the probe boots the real kernel under KVM in its self-test mode
(`vio.mode=test`, no devices: memory, timer, ACPI and SHA-256 self-tests, about 0.5 s under
TCG) and believes KVM only when the kernel reports success through isa-debug-exit. The
probe's whole output goes to a log file; the caller prints one line. The log's first line
names the kernel, QEMU and /dev/kvm it judged: while they stay the same, the verdict is
read back from it instead of probing again.

The CPU model does not rescue it where it fails: with QEMU 7.2 on such a host, `-cpu host`
and `-cpu max` make QEMU abort ("failed to set MSR 0x10a", IA32_ARCH_CAPABILITIES), and
qemu64 (the default), kvm64 and `host,-arch-capabilities` all stop at the first SSE
instruction. The probe uses QEMU's default CPU, as the real run does.

  tests/qemu/accel.py [--machine q35] [--log build/kvm-probe.log] build/vio.elf
prints one line, exits 0 when KVM works (use -accel kvm) and 1 when it does not (use TCG).
VIO_KVM_DEVICE names the device node checked before QEMU runs (default /dev/kvm); pointing
it at a missing path makes KVM unusable on purpose (tests/qemu/scn_boot.py does).
"""
import argparse
import os
import re
import selectors
import shutil
import subprocess
import sys
import time

# Seconds. Where KVM works the probe takes about a second; where its virtual CPU is slow
# and broken (SeaBIOS alone takes 13 s under it here) the SSE failure comes after ~17 s.
PROBE_TIMEOUT = 60
EXIT_PASS, EXIT_FAIL = 33, 35


def _sse_opcode(op):
    """0f-prefixed opcodes of the SSE/SSE2 (and MMX) register instructions."""
    return (0x10 <= op <= 0x17 or 0x28 <= op <= 0x2f or 0x50 <= op <= 0x7f or op == 0xc2
            or 0xc4 <= op <= 0xc6 or op >= 0xd0 or op in (0x38, 0x3a))


def _instruction(code_line):
    """What the instruction at RIP is, from QEMU's `Code=.. <xx> ..` dump line."""
    m = re.search(r"<([0-9a-f]{2})>((?: [0-9a-f]{2})*)", code_line)
    if not m:
        return "an instruction"
    code = [int(m.group(1), 16)] + [int(b, 16) for b in m.group(2).split()]
    i = 0
    while i < len(code) and code[i] in (0x66, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26,
                                        0x64, 0x65):
        i += 1
    if i < len(code) and 0x40 <= code[i] <= 0x4f:
        i += 1
    text = " ".join("%02x" % b for b in code[:min(len(code), i + 3)])
    if i + 1 < len(code) and code[i] == 0x0f and _sse_opcode(code[i + 1]):
        return "an SSE instruction (%s)" % text
    if i < len(code) and code[i] in (0xc4, 0xc5):
        return "an AVX instruction (%s)" % text
    return "the instruction %s" % text


def _reason(status, out, timeout):
    """Why a probe that did not pass failed, in a few words, from QEMU's output."""
    if "KVM internal error" in out:
        what = "emulation failure" if "emulation failure" in out else "internal error"
        code = re.search(r"^Code=.*$", out, re.M)
        rip = re.search(r"^RIP=([0-9a-f]+)", out, re.M)
        return "internal error, %s on %s at rip %#x" % (
            what, _instruction(code.group(0) if code else ""),
            int(rip.group(1), 16) if rip else 0)
    if status is None:
        return "the kernel did not finish its self-tests under KVM in %d s" % timeout
    if status == EXIT_FAIL:
        bad = re.search(r"^not ok \d+ - (.*)$", out, re.M)
        return "its self-tests failed under KVM%s" % (": " + bad.group(1) if bad else "")
    errors = [l for l in re.findall(r"^qemu-system-x86_64: (.*)$", out, re.M)
              if not l.startswith("warning:") and "terminating on signal" not in l]
    if errors:
        return "QEMU: " + errors[0]
    if status < 0:
        return "QEMU died of signal %d" % -status
    return "QEMU exited with status %d" % status


def _probe_key(elf, machine, device):
    """What a verdict depends on: this kernel build, the machine, QEMU, the KVM device."""
    qemu = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
    st = os.stat(elf)
    return "%s %d %d %s %s %d %d" % (
        os.path.realpath(elf), st.st_mtime_ns, st.st_size, machine, qemu,
        os.stat(qemu).st_mtime_ns if os.path.exists(qemu) else 0, os.stat(device).st_ctime_ns)


def _earlier_verdict(log_path, key):
    """(works, reason, seconds, log_path) from a probe log with this key, else None."""
    try:
        with open(log_path) as f:
            first, second = f.readline(), f.readline()
    except OSError:
        return None
    m = re.match(r"^# KVM (works|unusable: (.*)) after ([0-9.]+) s$", second.rstrip("\n"))
    if first.rstrip("\n") != "# probe key: " + key or not m:
        return None
    return m.group(1) == "works", m.group(2) or "", float(m.group(3)), log_path


def probe_kvm(elf, machine="q35", log_path=None, timeout=PROBE_TIMEOUT):
    """Boot `elf` under KVM in self-test mode. Returns (works, reason, seconds, log): log is
    the file with QEMU's output, None when there was no QEMU to run."""
    device = os.environ.get("VIO_KVM_DEVICE", "/dev/kvm")
    t0 = time.monotonic()
    if not os.path.exists(device):
        return False, "no %s" % device, 0.0, None
    if not os.access(device, os.R_OK | os.W_OK):
        return False, "%s is not readable and writable for this user" % device, 0.0, None
    key = _probe_key(elf, machine, device)
    earlier = _earlier_verdict(log_path, key) if log_path else None
    if earlier:
        return earlier
    argv = ["qemu-system-x86_64", "-machine", machine, "-accel", "kvm", "-smp", "2",
            "-m", "256M", "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-no-reboot", "-nodefaults", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", elf, "-append", "vio.mode=test"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out = b""
    # After a KVM internal error QEMU stops the guest and waits: do not wait with it.
    while proc.poll() is None and b"KVM internal error" not in out:
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            break
        if sel.select(min(left, 0.2)):
            out += os.read(proc.stdout.fileno(), 65536)
    killed = proc.poll() is None
    if killed:
        time.sleep(0.2)  # let QEMU finish printing the register dump
        proc.kill()
    proc.wait()
    out += proc.stdout.read()
    proc.stdout.close()
    status = None if killed else proc.returncode
    seconds = time.monotonic() - t0
    text = out.decode("utf-8", "replace").replace("\r", "")
    works = proc.returncode == EXIT_PASS
    reason = "" if works else _reason(status, text, timeout)
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        with open(log_path, "w") as f:
            f.write("# probe key: %s\n# KVM %s after %.1f s\n# %s\n%s" % (
                key, "works" if works else "unusable: " + reason, seconds, " ".join(argv),
                text))
    return works, reason, seconds, log_path


def choose(want_kvm, elf, machine="q35", log_path=None):
    """The accelerator to use ('kvm' or 'tcg') and the one line that says why."""
    if not want_kvm:
        return "tcg", "using TCG"
    works, reason, seconds, log = probe_kvm(elf, machine, log_path)
    if works:
        return "kvm", "using KVM (the kernel's self-tests passed under it in %.1f s)" % seconds
    where = ". Details: %s" % os.path.relpath(log) if log else ""
    return "tcg", "KVM cannot run this kernel here (%s); using TCG%s" % (reason, where)


def main():
    ap = argparse.ArgumentParser(description="Can KVM run this vio kernel here?")
    ap.add_argument("--machine", default="q35")
    ap.add_argument("--log", default=None, help="where the probe's QEMU output goes")
    ap.add_argument("elf")
    args = ap.parse_args()
    accel, line = choose(True, args.elf, args.machine, args.log)
    print(line)
    return 0 if accel == "kvm" else 1


if __name__ == "__main__":
    sys.exit(main())
