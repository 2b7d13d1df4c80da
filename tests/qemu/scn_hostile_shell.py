"""
The shell and the boot configuration against input a person (or a host typing on console
port 0) can give: lengths, counts and port numbers out of range, long commands that must stop
on Ctrl-C, command-line values that are malformed or too long. Each gets an error a person
can act on, nothing is written out of bounds, and the shell goes on answering.

The largest-frame scenario reads the bytes just past the shell's `net send` buffer through
QMP (`xp`, guest physical memory, which the kernel maps identity) before and after sending,
so an overflow shows even when the frame itself comes out right.

Interrupts a device can get wrong: a vector that never stops firing (played by the CPU,
self-IPIs on a real device's vector, vio.tests=irq-storm) must be cut off, its source
masked, and the device served by polling. An Interrupt Line that ACPI does not give PCI
(played with the port's test hook vio.test.intx_line) must be refused and COM1 kept.
"""
import os
import re
import socket
import subprocess
import threading
import time

import harness
from harness import Scenario, free_udp_port

HOST_MAC = "02:00:00:00:00:01"
JUMBO_MTU = 9000
# The largest frame a device with that MTU takes: MTU, Ethernet header, one VLAN tag.
JUMBO_FRAME = JUMBO_MTU + 14 + 4


def static_object(elf, source, function, name):
    """(address, size) of the static `name` inside `function` in `source`: gcc calls it
    name.N under the source's FILE symbol, clang function.name."""
    out = subprocess.run(["readelf", "-sW", elf], capture_output=True, text=True,
                         check=True).stdout
    current = None
    for line in out.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        if f[3] == "FILE":
            current = f[7]
        elif f[3] == "OBJECT" and (f[7] == function + "." + name or (
                current == source and re.fullmatch(re.escape(name) + r"\.\d+", f[7]))):
            return int(f[1], 16), int(f[2], 0)
    raise AssertionError("no static %s in %s's symbols" % (name, function))


def guest_bytes(q, addr, n):
    """n bytes of guest physical memory at addr, read through QMP."""
    out = q.qmp("human-monitor-command", **{"command-line": "xp /%dxb %#x" % (n, addr)})
    data = [int(x, 16) for line in out.splitlines() for x in line.split(":", 1)[1].split()]
    assert len(data) == n, "xp gave %r" % out
    return bytes(data)


# --- net send: the largest frame fits, a larger one is refused ----------------------------

def jumbo_setup(workdir):
    guest, host = free_udp_port(), free_udp_port()
    with open(os.path.join(workdir, "ports"), "w") as f:
        f.write("%d %d" % (guest, host))
    return ["-netdev", "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=%d,"
            "remote.type=inet,remote.host=127.0.0.1,remote.port=%d" % (guest, host),
            "-device", "virtio-net-pci,netdev=n0,host_mtu=%d" % JUMBO_MTU]


def recv_frame(sock, ethertype, timeout=10):
    """The next frame with this EtherType (lwIP's DHCP and ARP frames are skipped)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.1, end - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if data[12:14] == ethertype:
            return data
    raise AssertionError("no frame with EtherType %s arrived" % ethertype.hex())


def jumbo_interact(q):
    _, host_port = map(int, open(os.path.join(q.workdir, "ports")).read().split())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", host_port))
    q.wait_for(r"vio> ")
    info = q.shell("net info net0")
    assert "mtu=%d" % JUMBO_MTU in info, "the device did not offer MTU %d: %r" % (
        JUMBO_MTU, info)
    addr, size = static_object(harness.ELF, "cmd_dev.c", "cmd_net", "frame")
    past = addr + size
    before = guest_bytes(q, past, 16)

    out = q.shell("net send net0 %s %d" % (HOST_MAC, JUMBO_FRAME))
    assert "sent %d-byte frame" % JUMBO_FRAME in out, out
    frame = recv_frame(sock, b"\x88\xb5")
    want = bytes(i & 0xff for i in range(14, JUMBO_FRAME))
    assert len(frame) == JUMBO_FRAME and frame[14:] == want, \
        "the %d-byte frame arrived as %d bytes, or changed" % (JUMBO_FRAME, len(frame))
    after = guest_bytes(q, past, 16)
    assert after == before, "net send wrote past its %d-byte buffer: %s became %s" % (
        size, before.hex(" "), after.hex(" "))

    for length in (JUMBO_FRAME + 1, 13, 1 << 40):
        out = q.shell("net send net0 %s %d" % (HOST_MAC, length))
        assert re.fullmatch(r"net send: net0 sends frames of 14 to %d bytes \(Ethernet header "
                            r"included\), not %d\n" % (JUMBO_FRAME, length), out), out
    assert guest_bytes(q, past, 16) == before
    sock.close()
    q.send("poweroff\r")


# --- the shell with a console and user networking --------------------------------------------

def shell_setup(workdir):
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw",
                    os.path.join(workdir, "disk.img"), "8M"], check=True)
    return ["-device", "virtio-serial-pci,id=vser",
            "-chardev", "socket,id=c0,path=%s/port0.sock,server=on,wait=off" % workdir,
            "-device", "virtconsole,bus=vser.0,chardev=c0",
            "-drive", "file=disk.img,format=raw,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0",
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]


class Port0:
    """The host end of console port 0: what the kernel mirrors there is read and kept."""

    def __init__(self, q):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.path.join(q.workdir, "port0.sock"))
        self.text = b""
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.text += data

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


def one_line(q, cmd, rx):
    out = q.shell(cmd)
    assert re.search(rx, out), "%r printed %r" % (cmd, out)
    assert len(out.strip().splitlines()) == 1, "%r printed more than one line: %r" % (cmd, out)
    return out


def connect_port0(q):
    """Open port 0 from the host and wait until the kernel has seen it (and DHCP is done),
    so that no event line lands in the middle of a command's output."""
    q.wait_for(r"vio> ")
    q.wait_for(r"net0: 10\.0\.2\.15/24 gw 10\.0\.2\.2 \(dhcp\)", timeout=60)
    port0 = Port0(q)
    end = time.monotonic() + 20
    while not re.search(r"^port 0: .* host open", q.shell("cons ports"), re.M):
        assert time.monotonic() < end, "the kernel never saw port 0 open"
        time.sleep(0.5)
    return port0


def cons_port_interact(q):
    port0 = connect_port0(q)
    # 2^32 is not port 0, whatever an int cast makes of it.
    for big in (1 << 32, (1 << 32) + 1, 1 << 31, 99):
        one_line(q, "cons write %d hi" % big, r"^cons write: no port %d: this console has \d+ "
                 r"port\(s\), numbered from 0 \(see 'cons ports'\)$" % big)
    one_line(q, "cons write nosuchport hi", r"^cons write: no port named 'nosuchport'")
    one_line(q, "cons write 0 hello-port0", r"^wrote 12 byte\(s\) to port 0$")
    port0.close()
    q.send("poweroff\r")


def wait_quiet_prompt(q, start, timeout):
    """Wait for a prompt printed after log offset `start`."""
    end = time.monotonic() + timeout
    while "vio> " not in q.log[start:]:
        assert time.monotonic() < end, "no prompt within %d s: %r" % (timeout, q.log[start:])
        q._pump(0.2)
    return q.log[start:]


def ctrl_c_interact(q):
    port0 = connect_port0(q)
    one_line(q, "ping 10.0.2.2 1000000",
             r"^ping: the count must be 1 to 3600 \(one a second; Ctrl-C stops ping early\)$")
    one_line(q, "ping 10.0.2.2 0", r"^ping: the count must be 1 to 3600")
    one_line(q, "iperf client 10.0.2.2 100000",
             r"^iperf: the test runs 1 to 3600 seconds \(Ctrl-C stops it early\)$")

    # Ctrl-C on COM1 stops a 100-second ping after its second reply, with the summary.
    start = len(q.log)
    q.send("ping 10.0.2.2 100\r")
    q.wait_for(r"icmp_seq=2 ", timeout=30)
    t0 = time.monotonic()
    q.send("\x03")
    out = wait_quiet_prompt(q, start, 10)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m and int(m.group(1)) < 10, "ping did not stop on Ctrl-C: %r" % out
    print("    ping: stopped by Ctrl-C on COM1 after %s packets, in %.1f s" % (
        m.group(1), time.monotonic() - t0))

    # Ctrl-C on console port 0 stops an iperf client that cannot connect (nothing answers
    # ARP for 10.0.2.77: without Ctrl-C it would wait 5 + 30 s).
    start = len(q.log)
    q.send("iperf client 10.0.2.77 5\r")
    q.wait_for(r"iperf: client to 10\.0\.2\.77:5001 for 5 s", timeout=10)
    time.sleep(1)
    t0 = time.monotonic()
    port0.send(b"\x03")
    out = wait_quiet_prompt(q, start, 10)
    assert "iperf: no connection to 10.0.2.77: interrupted" in out, out
    print("    iperf: stopped by Ctrl-C on console port 0 in %.1f s" % (time.monotonic() - t0))

    # What is typed while a command runs, with no Ctrl-C, is the next command.
    q.send("ping 10.0.2.2 2\recho typed-ahead\r")
    q.wait_for(r"^typed-ahead$", timeout=20)
    one_line(q, "echo still-here", r"^still-here$")
    port0.close()
    q.send("poweroff\r")


# --- the command line ------------------------------------------------------------------------

LONG_LOG = "debug" + "x" * 40
# Four NICs, each told a different malformed vio.ip: none may come up static.
BAD_IP = [("vio.ip", "10.0.2.15/"), ("vio.ip1", "10.0.2.15/33"), ("vio.ip2", "10.0.2.15/2x"),
          ("vio.ip3", "10.0.2.15/+24")]


def boot_to_prompt(q):
    q.wait_for(r"vio> ")
    q.send("poweroff\r")


def four_nics(workdir):
    args = []
    for i in range(4):
        args += ["-netdev", "user,id=n%d" % i, "-device", "virtio-net-pci,netdev=n%d" % i]
    return args


def bad_ip_check(log, workdir):
    for unit, (key, value) in enumerate(BAD_IP):
        rx = (r"^net%d: %s=%s refused: the prefix length after '/' must be a number from 0 "
              r"to 32 \(want dhcp or a\.b\.c\.d/len\[,gw=a\.b\.c\.d\]\); asking DHCP instead$"
              % (unit, re.escape(key), re.escape(value)))
        if not re.search(rx, log, re.M):
            return "no refusal of %s=%s in the log" % (key, value)
    static = re.search(r"^.*\(static\)$", log, re.M)
    if static:
        return "a malformed vio.ip was used: %s" % static.group(0)
    return None


# --- Ctrl-C stops every long command ---------------------------------------------------------

DISK_BYTES = 2 << 30


def slow_devices(workdir):
    """An entropy source of 256 bytes every 200 ms (QEMU hands them out in one burst per
    period, so the period must stay well under the driver's 1 s silence limit), and a 2 GiB
    disk (sparse): `rng 1G` would take 10 days and `blk sha256` of the whole disk minutes."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw",
                    os.path.join(workdir, "big.img"), str(DISK_BYTES)], check=True)
    return ["-device", "virtio-rng-pci,max-bytes=256,period=200",
            "-drive", "file=big.img,format=raw,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0"]


def stop_with_ctrl_c(q, cmd, stopped_rx):
    """Start cmd, let it run, type Ctrl-C: the prompt is back within 3 s, saying so."""
    start = len(q.log)
    q.send(cmd + "\r")
    time.sleep(1.5)
    assert "vio> " not in q.log[start:], "%r finished on its own: %r" % (cmd, q.log[start:])
    t0 = time.monotonic()
    q.send("\x03")
    out = wait_quiet_prompt(q, start, 10)
    took = time.monotonic() - t0
    assert re.search(stopped_rx, out, re.M), "%r did not stop on Ctrl-C: %r" % (cmd, out)
    assert took < 3, "%r took %.1f s to stop" % (cmd, took)
    print("    %s: stopped by Ctrl-C in %.1f s" % (cmd, took))


def long_commands_interact(q):
    q.wait_for(r"vio> ")
    stop_with_ctrl_c(q, "rng 1G",
                     r"^rng: stopped \(Ctrl-C\) after \d+ of 1073741824 bytes$")
    out = q.shell("rng 16")
    assert re.search(r"^00000000 ( [0-9a-f]{2}){16}", out, re.M), out
    stop_with_ctrl_c(q, "blk sha256 blk0 0 %d" % DISK_BYTES,
                     r"^blk sha256: stopped \(Ctrl-C\) at offset \d+$")
    out = q.shell("blk read blk0 0 1")
    assert re.search(r"^00000000  00 00", out, re.M), out
    stop_with_ctrl_c(q, "blk qd blk0 100000000 8",
                     r"^blk qd: stopped \(Ctrl-C\) after \d+ of 100000000 reads$")
    time.sleep(0.5)  # the reads still in flight come back meanwhile
    out = q.shell("blk qd blk0 100 8")
    assert re.search(r"^qd: 100 reads of 512 bytes, 8 in flight at most, \d+ ms, 0 errors$",
                     out, re.M), out
    q.send("poweroff\r")


# --- a host that adds and removes ports in a loop ----------------------------------------------

FLOOD_CYCLES = 150
# Not anchored at the line's start: a line may follow a prompt ("vio> console: ...").
EVENT_LINE = r"console: port \d+ (added|removed|named)$"
SUPPRESSED_LINE = r"console: (\d+) more 'port (added|removed|named)' events not shown \(at most " \
                  r"one a second\)$"


def flood_setup(workdir):
    return ["-device", "virtio-serial-pci,id=vser"]


def port_flood_interact(q):
    """QMP adds and removes a port FLOOD_CYCLES times as fast as it can: the log shows at most
    one line per event type per second, then how many it left out, and the two add up to
    every add and every remove. The shell answers all along."""
    q.wait_for(r"vio> ")
    start, t0 = len(q.log), time.monotonic()
    for i in range(FLOOD_CYCLES):
        q.qmp("device_add", driver="virtserialport", bus="vser.0", id="flood%d" % i,
              name="org.vio.flood", nr=5)
        q.qmp("device_del", id="flood%d" % i)
        if i == FLOOD_CYCLES // 2:
            out = q.shell("uptime")
            assert re.search(r"^up \d+\.\d+ s", out, re.M), out
    took = time.monotonic() - t0
    q.idle(2.5)  # the counts of the last second come once it is over
    log = q.log[start:]
    for ev in ("added", "removed"):
        shown = len(re.findall(r"console: port 5 %s$" % ev, log, re.M))
        hidden = sum(int(n) for n, e in re.findall(SUPPRESSED_LINE, log, re.M) if e == ev)
        assert shown + hidden == FLOOD_CYCLES, "%s: %d shown + %d not shown, %d happened" % (
            ev, shown, hidden, FLOOD_CYCLES)
        assert 1 <= shown <= took + 2, "%s: %d lines in %.1f s" % (ev, shown, took)
    lines = len(re.findall(EVENT_LINE + "|" + SUPPRESSED_LINE, log, re.M))
    print("    %d port adds and removes in %.1f s: %d log lines" % (
        2 * FLOOD_CYCLES, took, lines))
    out = q.shell("cons ports")
    assert "org.vio.flood" not in out, out
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("console-port-flood-rate-limited", mode="shell", setup=flood_setup,
             interact=port_flood_interact, expect_exit=0, timeout=180),
    Scenario("shell-long-commands-stop-on-ctrl-c", mode="shell", setup=slow_devices,
             interact=long_commands_interact, expect_exit=0, timeout=120),
    Scenario("shell-net-send-largest-frame-no-overflow", mode="shell", setup=jumbo_setup,
             interact=jumbo_interact, expect_exit=0, timeout=120),
    Scenario("shell-cons-write-port-id-not-truncated", mode="shell", setup=shell_setup,
             interact=cons_port_interact, expect_exit=0, timeout=120),
    Scenario("shell-ping-iperf-bounded-and-ctrl-c", mode="shell", setup=shell_setup,
             interact=ctrl_c_interact, expect_exit=0, timeout=180),
    Scenario("boot-cmdline-overlong-value-refused", mode="shell", cmdline="vio.log=" + LONG_LOG,
             interact=boot_to_prompt, expect_exit=0, timeout=60,
             expect_log=[r"^vio: vio\.log= is %d characters long, more than the 15 this "
                         r"kernel reads: ignored$" % len(LONG_LOG)]),
    Scenario("boot-vio-ip-bad-prefix-refused", mode="shell",
             cmdline=" ".join("%s=%s" % kv for kv in BAD_IP), setup=four_nics,
             interact=boot_to_prompt, check=bad_ip_check, expect_exit=0, timeout=120),
]


# --- interrupts ----------------------------------------------------------------------------

STORM_LOG = r"^irq: vector (0x[0-9a-f]+): an interrupt storm \(\d+ in \d+ ms\); source masked"


def storm_logged_once(log, workdir):
    hits = re.findall(STORM_LOG, log, re.M)
    if len(hits) != 1:
        return "the storm was logged %d times, not once" % len(hits)
    return None


# Four devices on INTx, each made to see a line ACPI does not give PCI (the port's test hook
# vio.test.intx_line, in bind order: rng, console, blk, net): COM1's 4; 2, where ISA IRQ 0
# (the timer) arrives; 200, which no IOAPIC has; 13, an ISA IRQ not declared for PCI. Each
# is refused and polled, and COM1 must still take a typed line by interrupt.
BAD_LINES = [(4, r"the kernel's own ISA device \(COM1\) is on that input"),
             (2, r"ACPI routes another ISA IRQ to that input"),
             (200, r"no IOAPIC has that input"),
             (13, r"ACPI does not declare that ISA IRQ level-triggered, as it does the ones "
                  r"PCI shares")]


def intx_devices(workdir):
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw",
                    os.path.join(workdir, "disk.img"), "8M"], check=True)
    return ["-device", "virtio-rng-pci,vectors=0", "-device", "virtio-serial-pci,vectors=0",
            "-drive", "file=disk.img,format=raw,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0,vectors=0",
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,vectors=0"]


def type_a_line(q):
    q.wait_for(r"READY FOR INPUT")
    q.send("hello-vio\r")


SCENARIOS += [
    Scenario("intx-bad-lines-refused-com1-kept",
             cmdline="vio.test.intx_line=%s vio.expect_input=hello-vio"
             % ",".join(str(line) for line, _ in BAD_LINES),
             setup=intx_devices, interact=type_a_line,
             expect_log=[r"^vio: 0000:00:0[1-4]\.0: INTx line %d refused: %s; the device is "
                         r"polled$" % (line, why) for line, why in BAD_LINES]
             + [r"^vio: %s .* irq=poll$" % name for name in
                ("virtio-rng", "virtio-console", "virtio-blk", "virtio-net")]
             + [r"^ok \d+ - serial line input$",
                r"^ok \d+ - virtio-rng reads through the driver$"]),
    Scenario("irq-storm-msix-masked", cmdline="vio.tests=irq-storm",
             qemu_args=["-device", "virtio-rng-pci"], check=storm_logged_once,
             expect_log=[r"^ok \d+ - irq-storm$", r"^vio: virtio-rng .* irq=msix$"]),
    Scenario("irq-storm-intx-masked", cmdline="vio.tests=irq-storm",
             qemu_args=["-device", "virtio-rng-pci,vectors=0"], check=storm_logged_once,
             expect_log=[r"^ok \d+ - irq-storm$", r"^vio: virtio-rng .* irq=intx$"]),
]
