"""
QEMU scenario harness: boot the vio kernel under TCG with a device set, capture COM1, talk
to it, check TAP and the isa-debug-exit status. Every boot has a hard timeout.

A scenario is a Scenario(...) in a tests/qemu/scn_*.py module's SCENARIOS list. The runner
(tests/runner.py) collects and runs them.
"""
import codecs
import contextlib
import hashlib
import json
import os
import re
import selectors
import socket
import subprocess
import threading
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
    expect_exit  33 (self-tests passed) by default; 35 for scenarios that must fail; 0 for a
              shell session ended by `poweroff`; None when the scenario kills QEMU itself
    expect_tap   check the TAP plan and lines (default: when expect_exit is 33)
    expect_log   regexes that must appear in the serial log
    interact  function(Qemu) run while the kernel runs (send input, drive host peers)
    check     function(log_text, workdir) -> None or a failure reason, after QEMU exits
    setup     function(tmpdir) -> extra qemu args, run before boot (make images, ...)
    teardown  function(tmpdir), run last whatever happened, even when setup or the boot
              failed (stop the host processes setup started)
    netns     a host address like '192.168.77.1/24': QEMU runs inside a new network namespace
              (its name in q.netns) holding a tap device 'tap0' with that address, for
              `-netdev tap,id=n0,ifname=tap0,script=no,downscript=no`; removed afterwards
    argv      function(workdir) -> a whole QEMU command line for another machine than this
              kernel's (tests/qemu/scn_riscv64.py), run after setup; machine, boot, mem, mode
              and cmdline are then unused; qemu_args and setup's arguments are appended
    accel     'tcg' (default; tests always use it) or 'kvm' (tests/qemu/accel.py decides)
    """

    def __init__(self, name, machine="q35", boot="direct", mem="512M", cmdline="", mode="test",
                 qemu_args=(), timeout=120, expect_exit=EXIT_PASS, expect_tap=None,
                 expect_log=(), interact=None, check=None, setup=None, netns=None, argv=None,
                 teardown=None, accel="tcg"):
        self.name, self.machine, self.boot, self.mem = name, machine, boot, mem
        self.cmdline, self.qemu_args, self.timeout = cmdline, list(qemu_args), timeout
        self.mode = mode
        self.expect_exit = expect_exit
        self.expect_tap = (expect_exit == EXIT_PASS) if expect_tap is None else expect_tap
        self.expect_log, self.interact, self.check, self.setup = (
            list(expect_log), interact, check, setup)
        self.netns = netns
        self.argv = argv
        self.teardown = teardown
        self.accel = accel


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


# A kernel log line (a device's, printed from an interrupt handler or the poll loop) can
# land between two echoed characters of a command being typed: "blk read blk0 vio:
# virtio-blk: capacity now 65536 sectors (...)\n0 1". Each is a whole line, "name: text\n".
_LOG_LINES = r"(?:[A-Za-z][\w.-]*: [^\n]*\n)*"


def echo_pattern(command):
    """A regex for the shell's echo of `command`, with any kernel log lines inside it."""
    return _LOG_LINES.join(re.escape(ch) for ch in command) + _LOG_LINES


_port_lock = threading.Lock()
_ports_given = set()


def _port_window():
    """Where free_udp_port looks: below the kernel's ephemeral range, so no socket that binds
    port 0 (ours, QEMU's, anyone's on the machine) is given one of our ports while it sits
    unbound between this call and QEMU's bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    start = 10000 if low > 12000 else 1024
    return start, max(low, start + 1000)


def free_udp_port():
    """A UDP port on 127.0.0.1 that is free now and that no other call in this run returned.

    Scenarios run in parallel threads, and a port is often bound later by QEMU (its
    -netdev dgram local.port) or by interact(). Asking the kernel for port 0 and closing the
    socket raced: the kernel may hand the same ephemeral port to the next caller before QEMU
    binds it (CI saw "[Errno 98] Address already in use"). Ports come from a window below the
    ephemeral range, starting at a point derived from the process id (two runs on one machine
    start far apart), each handed out once per run and checked free by a test bind."""
    start, end = _port_window()
    span = end - start
    with _port_lock:
        first = (os.getpid() * 7919 + len(_ports_given)) % span
        for i in range(span):
            port = start + (first + i) % span
            if port in _ports_given:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            _ports_given.add(port)
            return port
    raise RuntimeError("no free UDP port in %d-%d" % (start, end - 1))


def netns_create(host_addr):
    """A fresh network namespace with lo and a tap device 'tap0' (host_addr) up; its name."""
    name = "vio-%s" % os.urandom(4).hex()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["link", "set", "lo", "up"], ["tuntap", "add", "dev", "tap0", "mode", "tap"],
                    ["addr", "add", host_addr, "dev", "tap0"], ["link", "set", "tap0", "up"]):
            subprocess.run(["ip", "-n", name] + cmd, check=True)
    except Exception:
        netns_delete(name)
        raise
    return name


def netns_delete(name):
    """Remove a namespace made by netns_create (its tap device goes with it)."""
    if name:
        subprocess.run(["ip", "netns", "del", name], check=False)


class Qemu:
    """A running QEMU with COM1 on pipes. Output is accumulated in self.log."""

    def __init__(self, scn, workdir):
        self.scn, self.workdir = scn, workdir
        self.log = ""
        # Serial bytes arrive a few at a time: a UTF-8 character may span two reads.
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.deadline = time.monotonic() + scn.timeout
        cmdline = ("vio.mode=%s %s" % (scn.mode, scn.cmdline)).strip()
        if scn.boot == "grub":
            boot = ["-cdrom", grub_iso(cmdline), "-boot", "d"]
        else:
            boot = ["-kernel", ELF, "-append", cmdline]
        self.netns = netns_create(scn.netns) if scn.netns else None
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        try:
            extra = scn.setup(workdir) if scn.setup else []
            base = scn.argv(workdir) if scn.argv else None
        except Exception:
            netns_delete(self.netns)
            raise
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        if base is None:
            # A second vCPU, which the kernel never starts: QEMU 7.2's TCG drops guest memory
            # barriers when a machine has one vCPU (fixed in QEMU 8.1), so the store of
            # avail->idx could pass the load of avail_event and a notification be lost
            # (tests/qemu/repro_blk_stall.py shows it). With two, TCG keeps them.
            base = ["qemu-system-x86_64", "-machine", scn.machine, "-accel", scn.accel,
                    "-smp", "2", "-m", scn.mem, "-display", "none", "-monitor", "none",
                    "-serial", "stdio", "-no-reboot", "-nodefaults",
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                    "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path] + boot
        self.argv = prefix + base + scn.qemu_args + extra
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         cwd=workdir)
        except Exception:
            netns_delete(self.netns)
            raise
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)

    def _pump(self, wait):
        for _key, _ev in self.sel.select(timeout=wait):
            data = self.proc.stdout.read()
            if data:
                self.log += self.decoder.decode(data).replace("\r", "")
                return True
        return False

    def wait_for(self, pattern, timeout=None):
        """Wait until `pattern` (regex) appears in the log; returns the match."""
        end = min(self.deadline, time.monotonic() + (timeout or self.scn.timeout))
        rx = re.compile(pattern, re.M)
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

    def idle(self, seconds):
        """Let the kernel run on its own for `seconds`, collecting what it prints."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.proc.poll() is None:
            self._pump(min(0.2, max(0.0, end - time.monotonic())))

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def kill(self):
        """SIGKILL QEMU now (a crash, as far as the guest is concerned)."""
        self.proc.kill()
        self.proc.wait()

    def shell(self, command, until=r"vio> ", timeout=60):
        """Type a shell command on COM1 and return what it printed before the next prompt."""
        start = len(self.log)
        self.send(command + "\r")
        rx = re.compile(echo_pattern(command) + r"\n(.*?)" + until, re.S)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.log, start)
            if m:
                return m.group(1)
            if time.monotonic() > end:
                raise Timeout("no prompt after %r" % command)
            self._pump(0.2)

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


@contextlib.contextmanager
def torn_down(scn, workdir):
    """Run the scenario's teardown when the block ends, however it ends."""
    try:
        yield
    finally:
        if scn.teardown:
            scn.teardown(workdir)


def run_scenario(scn):
    """Run one scenario; returns (ok, reason, seconds, log_path)."""
    import tempfile
    os.makedirs(LOGS, exist_ok=True)
    log_path = os.path.join(LOGS, scn.name + ".log")
    start = time.monotonic()
    reason = None
    with tempfile.TemporaryDirectory(prefix="vio-" + scn.name + "-") as tmp, \
            torn_down(scn, tmp):
        try:
            q = Qemu(scn, tmp)
        except Exception as e:  # setup failed: a missing tool, a bad image
            return False, "could not start: %s" % e, 0.0, log_path
        try:
            if scn.interact:
                scn.interact(q)
        except Timeout as e:
            reason = "timed out: %s" % e
        except (AssertionError, OSError) as e:
            reason = "interaction failed: %s" % e
        if reason is not None and q.proc.poll() is None:
            q.kill()  # the scenario is lost: do not wait out its timeout
        killed = q.proc.poll() is not None and q.proc.returncode == -9
        status = q.finish()
        netns_delete(q.netns)
        with open(log_path, "w") as f:
            f.write("# " + " ".join(q.argv) + "\n" + q.log)
        if reason is None:
            if scn.expect_exit is None:
                if not killed:
                    reason = "the scenario meant to kill QEMU, but it exited with %s" % status
            elif status is None:
                reason = "timeout: QEMU killed after %d s" % scn.timeout
            elif status != scn.expect_exit:
                reason = "QEMU exit status %d, expected %d" % (status, scn.expect_exit)
            elif scn.expect_tap:
                reason = check_tap(q.log)
        if reason is None:
            # Every scenario: the kernel's port logs a library call it made from thread
            # context with interrupts on (src/kernel/vio_port.c), a race with the device's
            # interrupt handler that corrupts a driver only when the interrupt lands inside.
            m = re.search(r"^vio: kernel bug: .*$", q.log, re.M)
            if m:
                reason = m.group(0)
        if reason is None:
            for rx in scn.expect_log:
                if not re.search(rx, q.log, re.M):
                    reason = "log lacks /%s/" % rx
                    break
        if reason is None and scn.check:
            try:
                reason = scn.check(q.log, tmp)
            except Exception as e:  # a host tool failed: report it, do not crash the run
                reason = "check failed: %r" % e
    return reason is None, reason, time.monotonic() - start, log_path
