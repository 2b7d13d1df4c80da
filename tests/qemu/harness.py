"""
QEMU scenario harness: boot the vio kernel under TCG with a device set, capture COM1, talk
to it, check TAP and the isa-debug-exit status. Every boot has a hard timeout.

A scenario is a Scenario(...) in a tests/qemu/scn_*.py module's SCENARIOS list. The runner
(tests/runner.py) collects and runs them.
"""
import hashlib
import json
import os
import re
import selectors
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
ELF = os.path.join(BUILD, "vio.elf")
LOGS = os.path.join(BUILD, "test-logs")
EXIT_PASS, EXIT_FAIL = 33, 35  # isa-debug-exit: (0x10 << 1) | 1 and (0x11 << 1) | 1


class Scenario:
    """One QEMU boot.

    name      unique, used for the log file name
    machine   'q35' or 'pc'
    boot      'grub' (ISO, multiboot2) or 'direct' (-kernel, PVH)
    mem       QEMU -m value
    mode      vio.mode= value: 'test' (default) or 'bench' or 'shell'
    cmdline   extra kernel command line words
    qemu_args extra QEMU arguments (devices)
    timeout   seconds before QEMU is killed and the scenario fails
    expect_exit  33 (self-tests passed) by default; 35 for scenarios that must fail
    expect_tap   check the TAP plan and lines (default: when expect_exit is 33)
    expect_log   regexes that must appear in the serial log
    interact  function(Qemu) run while the kernel runs (send input, drive host peers)
    check     function(log_text) -> None or a failure reason, after QEMU exits
    setup     function(tmpdir) -> extra qemu args, run before boot (make images, ...)
    """

    def __init__(self, name, machine="q35", boot="direct", mem="512M", cmdline="", mode="test",
                 qemu_args=(), timeout=120, expect_exit=EXIT_PASS, expect_tap=None,
                 expect_log=(), interact=None, check=None, setup=None):
        self.name, self.machine, self.boot, self.mem = name, machine, boot, mem
        self.cmdline, self.qemu_args, self.timeout = cmdline, list(qemu_args), timeout
        self.mode = mode
        self.expect_exit = expect_exit
        self.expect_tap = (expect_exit == EXIT_PASS) if expect_tap is None else expect_tap
        self.expect_log, self.interact, self.check, self.setup = (
            list(expect_log), interact, check, setup)


def grub_iso(cmdline):
    """A GRUB ISO that boots straight into the kernel with this command line (cached)."""
    key = hashlib.sha1((cmdline + str(os.path.getmtime(ELF))).encode()).hexdigest()[:12]
    iso = os.path.join(BUILD, "iso-cache", key + ".iso")
    if not os.path.exists(iso):
        os.makedirs(os.path.dirname(iso), exist_ok=True)
        subprocess.run([os.path.join(ROOT, "scripts", "mkiso.sh"), ELF, iso, cmdline],
                       check=True)
    return iso


class Timeout(Exception):
    pass


class Qemu:
    """A running QEMU with COM1 on pipes. Output is accumulated in self.log."""

    def __init__(self, scn, workdir):
        self.scn, self.workdir = scn, workdir
        self.log = ""
        self.deadline = time.monotonic() + scn.timeout
        cmdline = ("vio.mode=%s %s" % (scn.mode, scn.cmdline)).strip()
        if scn.boot == "grub":
            boot = ["-cdrom", grub_iso(cmdline), "-boot", "d"]
        else:
            boot = ["-kernel", ELF, "-append", cmdline]
        extra = scn.setup(workdir) if scn.setup else []
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.argv = (["qemu-system-x86_64", "-machine", scn.machine, "-accel", "tcg",
                      "-m", scn.mem, "-display", "none", "-monitor", "none",
                      "-serial", "stdio", "-no-reboot", "-nodefaults",
                      "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                      "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
                     + boot + scn.qemu_args + extra)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=workdir)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)

    def _pump(self, wait):
        for _key, _ev in self.sel.select(timeout=wait):
            data = self.proc.stdout.read()
            if data:
                self.log += data.decode("utf-8", "replace").replace("\r", "")
                return True
        return False

    def wait_for(self, pattern, timeout=None):
        """Wait until `pattern` (regex) appears in the log; returns the match."""
        end = min(self.deadline, time.monotonic() + (timeout or self.scn.timeout))
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.log)
            if m:
                return m
            left = end - time.monotonic()
            if left <= 0:
                raise Timeout("waited for %r" % pattern)
            if not self._pump(min(left, 0.2)) and self.proc.poll() is not None:
                self._pump(0)
                m = rx.search(self.log)
                if m:
                    return m
                raise Timeout("QEMU exited while waiting for %r" % pattern)

    def qmp(self, command, **arguments):
        """Run one QMP command; returns its "return" value, raises on "error"."""
        if not hasattr(self, "_qmp"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(max(1.0, self.deadline - time.monotonic()))
            for _ in range(50):
                try:
                    sock.connect(self.qmp_path)
                    break
                except OSError:
                    time.sleep(0.1)
            self._qmp = sock.makefile("rw")
            self.qmp_events = []
            json.loads(self._qmp.readline())  # greeting
            self._qmp_call("qmp_capabilities")
        return self._qmp_call(command, **arguments)

    def _qmp_call(self, command, **arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._qmp.write(json.dumps(msg) + "\n")
        self._qmp.flush()
        while True:
            line = self._qmp.readline()
            if not line:
                raise Timeout("QMP connection closed during %s" % command)
            reply = json.loads(line)
            if "event" in reply:
                self.qmp_events.append(reply)
                continue
            if "error" in reply:
                raise AssertionError("QMP %s: %s" % (command, reply["error"]))
            return reply.get("return")

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def kill(self):
        """SIGKILL QEMU now (a crash, as far as the guest is concerned)."""
        self.proc.kill()

    def finish(self):
        """Wait for QEMU to exit (killing it at the deadline); returns its status or None."""
        while self.proc.poll() is None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                self._pump(0)
                return None
            self._pump(min(left, 0.2))
        while self._pump(0):
            pass
        return self.proc.returncode


def check_tap(log):
    """None when the log holds a complete, all-ok TAP run; else the reason."""
    plan = re.search(r"^1\.\.(\d+)$", log, re.M)
    if not plan:
        return "no TAP plan in the log"
    n = int(plan.group(1))
    results = re.findall(r"^(ok|not ok) (\d+) - (.*)$", log, re.M)
    bad = [r for r in results if r[0] != "ok"]
    if bad:
        return "%d TAP test(s) failed: %s" % (len(bad), "; ".join(b[2] for b in bad[:3]))
    if len(results) != n:
        return "TAP plan says %d, log has %d results" % (n, len(results))
    return None


def run_scenario(scn):
    """Run one scenario; returns (ok, reason, seconds, log_path)."""
    import tempfile
    os.makedirs(LOGS, exist_ok=True)
    log_path = os.path.join(LOGS, scn.name + ".log")
    start = time.monotonic()
    reason = None
    with tempfile.TemporaryDirectory(prefix="vio-" + scn.name + "-") as tmp:
        try:
            q = Qemu(scn, tmp)
        except Exception as e:  # setup failed: a missing tool, a bad image
            return False, "could not start: %s" % e, 0.0, log_path
        try:
            if scn.interact:
                scn.interact(q)
        except Timeout as e:
            reason = "timed out: %s" % e
        except AssertionError as e:
            reason = "interaction failed: %s" % e
        status = q.finish()
        with open(log_path, "w") as f:
            f.write("# " + " ".join(q.argv) + "\n" + q.log)
        if reason is None:
            if status is None:
                reason = "timeout: QEMU killed after %d s" % scn.timeout
            elif status != scn.expect_exit:
                reason = "QEMU exit status %d, expected %d" % (status, scn.expect_exit)
            elif scn.expect_tap:
                reason = check_tap(q.log)
        if reason is None:
            for rx in scn.expect_log:
                if not re.search(rx, q.log, re.M):
                    reason = "log lacks /%s/" % rx
                    break
        if reason is None and scn.check:
            reason = scn.check(q.log)
    return reason is None, reason, time.monotonic() - start, log_path
