"""
Entropy and console drivers against real peers: rngtest (rng-tools5) judges 2.5 MB of
entropy the kernel streamed through a virtio-console port; socat carries 4 MiB of random
data through a named port the kernel echoes; QMP hot-plugs a port while the kernel runs; the
second shell on console port 0 answers over its socket.
"""
import os
import random
import re
import socket
import subprocess
import threading
import time

from harness import Scenario, Timeout

RNG_BYTES = 2500100  # 1000 FIPS 140-2 blocks of 2500 bytes, plus rngtest's first word


def rng_setup(workdir):
    return ["-device", "virtio-rng-pci", "-device", "virtio-serial-pci,id=vser",
            "-chardev", "file,id=rngout,path=rng.bin",
            "-device", "virtserialport,bus=vser.0,chardev=rngout,name=org.vio.rng"]


def rngtest(data):
    """rngtest's verdict on 1000 FIPS 140-2 blocks: (failures, one-line summary)."""
    p = subprocess.run(["rngtest", "-c", "1000"], input=data, capture_output=True,
                       timeout=120)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    m = re.search(r"FIPS 140-2 failures: (\d+)", out)
    if not m:
        raise AssertionError("rngtest said: %s" % out[-300:])
    kinds = ", ".join("%s %s" % k for k in
                      re.findall(r"FIPS 140-2\(2001-10-10\) (\S+(?: \S+)?): (\d+)", out))
    return int(m.group(1)), "%s failed (%s)" % (m.group(1), kinds)


def rngtest_check(log, workdir):
    """
    At most 3 of 1000 FIPS 140-2 blocks may fail. Each block fails about 0.1 % of the time
    even for a perfect source, so 4 or more happens in about 2 % of runs: the kernel streams
    two independent 2.5 MB halves and the second is judged only when the first fails by a
    chance-sized margin (4 to 10 blocks). More than 10 is never chance (p < 1e-8): it fails.
    """
    data = open(os.path.join(workdir, "rng.bin"), "rb").read()
    if len(data) < 2 * RNG_BYTES:
        return "only %d bytes of entropy arrived" % len(data)
    failures, summary = rngtest(data[:RNG_BYTES])
    print("    rngtest, first 2.5 MB: %s" % summary)
    if failures <= 3:
        return None
    if failures > 10:
        return "rngtest: %d FIPS 140-2 blocks failed" % failures
    failures, summary = rngtest(data[RNG_BYTES:2 * RNG_BYTES])
    print("    rngtest, second 2.5 MB: %s" % summary)
    return None if failures <= 3 else "rngtest: more than 3 FIPS 140-2 blocks failed twice"


def console_setup(workdir):
    return ["-device", "virtio-serial-pci,id=vser",
            "-chardev", "socket,id=c0,path=%s/port0.sock,server=on,wait=off" % workdir,
            "-device", "virtconsole,bus=vser.0,chardev=c0",
            "-chardev", "socket,id=echo,path=%s/echo.sock,server=on,wait=off" % workdir,
            "-device", "virtserialport,bus=vser.0,chardev=echo,name=org.vio.echo"]


def socat_echo(path, total, seed, timeout):
    """Send `total` random bytes in random-sized writes through socat and read them back."""
    rnd = random.Random(seed)
    data = rnd.randbytes(total)
    p = subprocess.Popen(["socat", "-b", "65536", "-", "UNIX-CONNECT:" + path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def writer():
        off = 0
        while off < total:
            n = min(rnd.randint(1, 64 * 1024), total - off)
            p.stdin.write(data[off:off + n])
            p.stdin.flush()
            off += n
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    got = bytearray()
    end = time.monotonic() + timeout
    os.set_blocking(p.stdout.fileno(), False)
    while len(got) < total and time.monotonic() < end:
        chunk = p.stdout.read(65536)
        if chunk:
            got += chunk
        else:
            time.sleep(0.01)
    p.kill()
    p.wait()
    assert len(got) == total, "echo returned %d of %d bytes in %d s" % (len(got), total, timeout)
    assert bytes(got) == data, "echoed data differs at byte %d" % next(
        i for i in range(total) if got[i] != data[i])


def console_interact(q):
    q.wait_for(r"console: port \d+ \(org\.vio\.echo\) echoes")
    q.wait_for(r"vio> ")
    socat_echo(os.path.join(q.workdir, "echo.sock"), 4 * 1024 * 1024, 1, 240)
    print("    4 MiB echoed byte-exact through org.vio.echo")

    # Hot-plug a second echo port through QMP and use it.
    hot = os.path.join(q.workdir, "hot.sock")
    q.qmp("chardev-add", id="hot", backend={"type": "socket", "data": {
        "addr": {"type": "unix", "data": {"path": hot}}, "server": True, "wait": False}})
    q.qmp("device_add", driver="virtserialport", bus="vser.0", chardev="hot",
          name="org.vio.echo.hot", id="hotport")
    q.wait_for(r"console: port \d+ \(org\.vio\.echo\.hot\) echoes", timeout=30)
    socat_echo(hot, 64 * 1024, 2, 60)

    # The second shell, on console port 0.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(q.workdir, "port0.sock"))
    s.settimeout(20)
    time.sleep(0.5)
    s.sendall(b"echo hello-from-port0\r")
    buf = b""
    end = time.monotonic() + 20
    while b"hello-from-port0\r\n" not in buf.replace(b"\r\r", b"\r") and time.monotonic() < end:
        try:
            buf += s.recv(4096)
        except socket.timeout:
            break
    s.close()
    assert b"hello-from-port0" in buf, "port 0 shell did not answer: %r" % buf[-200:]
    q.send("poweroff\r")


SCENARIOS = [
    Scenario("rng-stream-rngtest", machine="q35", cmdline="vio.tests=rng-stream vio.bytes=%d"
             % (2 * RNG_BYTES), setup=rng_setup, check=rngtest_check, timeout=600,
             expect_log=[r"^ok \d+ - rng-stream$"]),
    Scenario("console-echo-hotplug-port0", machine="q35", mode="shell", setup=console_setup,
             interact=console_interact, expect_exit=0, timeout=600,
             expect_log=[r"^vio: virtio-console .* irq=msix-shared$",
                         r"console: port \d+ added"]),
]
