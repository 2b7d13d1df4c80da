"""
The screen and the keyboard against QEMU's own devices (virtio-gpu-pci, virtio-keyboard-pci,
virtio-tablet-pci), read back the way a person would see them: QMP `screendump` gives the
picture the host shows, and QMP `input-send-event` presses keys and moves the tablet.

- Text: the test renders the same font the build converted (scripts/psf2c.py reads the PSF
  file named in build/gen/font.c) and reads the screendump back cell by cell; what the
  shell printed must be there, row for row.
- Damage: QEMU's own trace of RESOURCE_FLUSH (-trace ...,file=) shows that a key's echo
  sends the host one 16x16 rectangle, not the screen.
- Test pattern: `screen pattern` fills the screen with a picture the test computes from the
  size alone; the screendump's SHA-256 must equal the computed one.
- Keyboard: a command typed on the virtio keyboard runs; its output is on the serial line
  and on the screen. A held key repeats, Ctrl-C drops the line, Shift gives '!', Caps Lock
  upper case, and its LED state goes to the
  device: QMP and HMP cannot read it, but QEMU hands it to its VNC server, which sends it
  to a client that asks (tests/qemu/vnc_client.py, QEMU LED State): bit 2 must come and go.
- Tablet and mouse: absolute and relative events move the pointer; QEMU's screendump leaves
  the cursor plane out, so the pointer's place is read from the driver (`screen`,
  `virtio gpu0`).
- Sizes: two start sizes (xres/yres), and a live resize: with -display none there is no
  window to resize, but a VNC client's SetDesktopSize reaches virtio-gpu as a display
  change, the kernel re-creates its framebuffer, and the next screendump is the new size
  with the text and the test pattern on it.
- Transports: PCI (q35), and virtio-mmio on microvm (virtio-gpu-device, ...) once.
The last screendump is kept as build/test-logs/gpu-screen.png (docs/screen.png is one).
"""
import hashlib
import os
import re
import struct
import sys
import zlib

from harness import BUILD, LOGS, ROOT, Scenario
from vnc_client import LED_CAPS_LOCK, Vnc

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import psf2c  # noqa: E402

CELL_W, CELL_H = 8, 16


def font_path():
    """The PSF file the build converted, from build/gen/font.c's first line."""
    with open(os.path.join(BUILD, "gen", "font.c")) as f:
        m = re.search(r"from (\S+):", f.readline())
    return m.group(1)


def read_ppm(path):
    """(width, height, RGB bytes) of a binary PPM (P6, maxval 255) as QEMU writes it."""
    data = open(path, "rb").read()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)
    assert m, "not a P6 PPM: %r" % data[:20]
    w, h = int(m.group(1)), int(m.group(2))
    return w, h, data[m.end():m.end() + w * h * 3]


def write_png(path, w, h, rgb):
    """A PNG of the picture, with zlib alone (no imaging library needed)."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))
    rows = b"".join(b"\0" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def screen_text(w, h, rgb):
    """The screen read back as rows of text: each 8x16 cell matched against the font's
    glyphs ('?' for a cell no glyph matches, such as the one under the text cursor)."""
    glyphs = {}
    for code, g in enumerate(psf2c.load_ascii(font_path())):
        if code >= 0x20:
            glyphs.setdefault(bytes(g), chr(code))
    lines = []
    for r in range(h // CELL_H):
        line = []
        for c in range(w // CELL_W):
            cell = bytearray()
            for y in range(CELL_H):
                off = ((r * CELL_H + y) * w + c * CELL_W) * 3
                bits = 0
                for x in range(CELL_W):
                    p = off + x * 3
                    if rgb[p] + rgb[p + 1] + rgb[p + 2] > 3 * 0x68:
                        bits |= 0x80 >> x
                cell.append(bits)
            line.append(glyphs.get(bytes(cell), "?"))
        lines.append("".join(line).rstrip())
    return lines


def pattern_sha256(w, h):
    """The picture `screen pattern` draws (src/kernel/fbcon.c), as the PPM's RGB bytes."""
    out = bytearray(w * h * 3)
    i = 0
    for y in range(h):
        g = y * 255 // (h - 1)
        for x in range(w):
            out[i] = x * 255 // (w - 1)
            out[i + 1] = g
            out[i + 2] = (x ^ y) & 0xff
            i += 3
    return hashlib.sha256(out).hexdigest()


def screendump(q, name):
    path = os.path.join(q.workdir, name + ".ppm")
    q.qmp("screendump", filename=path)
    return read_ppm(path)


def keys(q, text):
    """Type `text` on the virtio keyboard: a press and a release per key (Shift for upper
    case and '!')."""
    names = {" ": "spc", "\r": "ret", "-": "minus", ".": "dot", "/": "slash"}
    for ch in text:
        shift = ch.isupper() or ch == "!"
        key = "1" if ch == "!" else names.get(ch, ch.lower())
        ev = []
        if shift:
            ev.append(key_event("shift", True))
        ev += [key_event(key, True), key_event(key, False)]
        if shift:
            ev.append(key_event("shift", False))
        q.qmp("input-send-event", events=ev)


def key_event(qcode, down):
    return {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": qcode}}}


def wait_screen(q, want, name, tries=20):
    """Screendumps until every regex of `want` matches a row; returns the last picture."""
    for _ in range(tries):
        w, h, rgb = screendump(q, name)
        rows = screen_text(w, h, rgb)
        if all(any(re.search(rx, row) for row in rows) for rx in want):
            return w, h, rgb, rows
        q.idle(0.5)
    raise AssertionError("screen lacks %s; it shows:\n%s" % (want, "\n".join(rows)))


def gpu_flushes(q):
    """Every RESOURCE_FLUSH QEMU traced so far (trace_setup): (w, h, x, y) each."""
    with open(os.path.join(q.workdir, "gpu-trace.log")) as f:
        return [tuple(int(v) for v in m) for m in
                re.findall(r"virtio_gpu_cmd_res_flush res \S+, w (\d+), h (\d+), x (\d+), "
                           r"y (\d+)", f.read())]


def trace_setup(workdir):
    return ["-trace", "enable=virtio_gpu_cmd_res_flush,file=%s" %
            os.path.join(workdir, "gpu-trace.log")]


def shell_until(q, command, rx, tries=20):
    """Run `command` until its output matches `rx` (the device's events are handled by the
    kernel's idle loop, and a QMP event may not have been taken yet); returns the output."""
    for _ in range(tries):
        out = q.shell(command)
        if re.search(rx, out):
            return out
        q.idle(0.3)
    raise AssertionError("%r never printed /%s/; last:\n%s" % (command, rx, out))


def interact_for(width, height, keep_png):
    def interact(q):
        q.wait_for(r"vio> ", 90)
        out = q.shell("virtio gpu0")
        assert "framebuffer %dx%d" % (width, height) in out, out
        out = q.shell("virtio input0")
        assert 'name "QEMU Virtio Keyboard"' in out and "KEY LED" in out, out
        out = q.shell("virtio input1")
        assert 'name "QEMU Virtio Tablet"' in out and "abs x 0..32767" in out, out

        # Text typed on COM1 and printed by the shell, read back from the picture.
        q.shell("echo screen-test 4711")
        w, h, rgb, rows = wait_screen(q, [r"^vio> echo screen-test 4711$",
                                          r"^screen-test 4711$"], "text")
        assert (w, h) == (width, height), (w, h)

        # The test pattern, pixel for pixel.
        check_pattern(q, "pattern")

        # A command typed on the virtio keyboard: run, echoed and answered on both.
        start = len(q.log)
        keys(q, "echo typed on virtio Keys!\r")
        q.wait_for(r"typed on virtio Keys!\n.*vio> ", 30)
        assert "echo typed on virtio Keys!" in q.log[start:], q.log[start:]
        w, h, rgb, rows = wait_screen(q, [r"^vio> echo typed on virtio Keys!$",
                                          r"^typed on virtio Keys!$"], "keys")

        # Caps Lock: upper case, and the LED state to the device and back off.
        caps_lock(q)
        keys(q, "echo caps\r")
        q.wait_for(r"unknown command 'ECHO'", 30)
        shell_until(q, "virtio input0", r"leds 0x2 \(1 status events sent")
        caps_lock(q)
        shell_until(q, "virtio input0", r"leds 0x0 \(2 status events sent")

        # A key held down repeats (after 500 ms, at 30 Hz); Ctrl-C drops the line.
        q.qmp("input-send-event", events=[key_event("x", True)])
        q.idle(1.5)
        q.qmp("input-send-event", events=[key_event("x", False)])
        keys(q, "\r")
        m = q.wait_for(r"unknown command '(x+)'", 30)
        # One press, then repeats: as many as the guest's loop got to run in the second
        # after the delay (at most 30; fewer on a loaded host, whose TCG runs slowly).
        assert 2 <= len(m.group(1)) <= 40, "held 1.5 s: %d x" % len(m.group(1))
        # Only the damaged rectangle goes to the host: each key's echo changes its cell and
        # moves the text cursor to the next, so QEMU's trace of RESOURCE_FLUSH must show one
        # 16x16 rectangle per key, side by side.
        q.wait_for(r"unknown command 'x+' \(try 'help'\)\nvio> ", 30)
        start = len(q.log)
        keys(q, "abc")
        q.wait_for(r"vio> abc", 30)
        q.idle(0.3)
        rects = gpu_flushes(q)[-4:]
        # The prompt "vio> " (cells 0-5, with the cursor), then a, b, c at cells 5, 6, 7.
        last_row = (height // CELL_H - 1) * CELL_H
        assert rects[1:] == [(16, 16, x, last_row) for x in (40, 48, 56)], rects
        assert rects[0][:3] == (48, 16, 0), rects
        print("    the prompt and three keys, four flushes: %s" % rects)
        q.qmp("input-send-event", events=[key_event("ctrl", True), key_event("c", True),
                                          key_event("c", False), key_event("ctrl", False)])
        q.wait_for(r"\^C\n", 30)
        keys(q, "\r")
        q.idle(0.5)
        assert "unknown command 'abc'" not in q.log[start:], q.log[start:]

        # The tablet: absolute position to pixels, on the cursor plane.
        q.qmp("input-send-event", events=[
            {"type": "abs", "data": {"axis": "x", "value": 16384}},
            {"type": "abs", "data": {"axis": "y", "value": 8192}}])
        x, y = 16384 * (width - 1) // 32767, 8192 * (height - 1) // 32767
        shell_until(q, "screen", r"pointer at \(%d,%d\)" % (x, y))
        out = q.shell("virtio gpu0")
        assert "pointer at (%d,%d)" % (x, y) in out and "0 bad answers" in out, out

        w, h, rgb, rows = wait_screen(q, [r"pointer at \(%d,%d\)" % (x, y)], "last")
        if keep_png:
            os.makedirs(LOGS, exist_ok=True)
            write_png(os.path.join(LOGS, "gpu-screen.png"), w, h, rgb)
        q.send("poweroff\r")
    return interact


def check_pattern(q, name):
    q.shell("screen pattern")
    q.idle(0.5)
    w, h, rgb = screendump(q, name)
    got, want = hashlib.sha256(rgb).hexdigest(), pattern_sha256(w, h)
    assert got == want, "pattern: screendump sha256 %s, expected %s" % (got, want)
    print("    pattern %dx%d: sha256 %s matches" % (w, h, got[:16]))
    return w, h


def caps_lock(q):
    q.qmp("input-send-event", events=[key_event("caps_lock", True),
                                      key_event("caps_lock", False)])


def vnc_interact(q):
    """The LED as the host sees it, and a live resize from a VNC client."""
    q.wait_for(r"fbcon: 800x600", 90)
    q.wait_for(r"vio> ", 30)
    v = Vnc(os.path.join(q.workdir, "vnc.sock"))
    v.pump(1)
    caps_lock(q)
    v.pump(2)
    assert v.leds and v.leds[-1] & LED_CAPS_LOCK, "VNC saw LED states %s" % v.leds
    caps_lock(q)
    v.pump(2)
    assert not v.leds[-1] & LED_CAPS_LOCK, "VNC saw LED states %s" % v.leds
    print("    Caps Lock LED as QEMU's VNC server sent it: %s" % v.leds)

    v.set_desktop_size(1024, 768)
    q.wait_for(r"fbcon: resized to 1024x768, 128x48 text", 30)
    v.pump(1)
    assert (1024, 768) in v.sizes, "VNC saw sizes %s" % v.sizes
    out = q.shell("virtio gpu0")
    assert "display 0 1024x768; framebuffer 1024x768" in out and "1 display events" in out, out
    q.shell("echo resized-screen 1024")
    w, h, rgb, rows = wait_screen(q, [r"^resized-screen 1024$"], "resized")
    assert (w, h) == (1024, 768), (w, h)
    assert check_pattern(q, "resized-pattern") == (1024, 768)
    v.close()

    # A mouse beside the tablet: QEMU gives it the relative moves, the tablet the absolute.
    q.qmp("input-send-event", events=[
        {"type": "abs", "data": {"axis": "x", "value": 16384}},
        {"type": "abs", "data": {"axis": "y", "value": 16384}}])
    x, y = 16384 * 1023 // 32767, 16384 * 767 // 32767
    shell_until(q, "screen", r"pointer at \(%d,%d\)" % (x, y))
    q.qmp("input-send-event", events=[
        {"type": "rel", "data": {"axis": "x", "value": 10}},
        {"type": "rel", "data": {"axis": "y", "value": -5}}])
    shell_until(q, "screen", r"pointer at \(%d,%d\)" % (x + 10, y - 5))
    q.send("poweroff\r")


def vnc_setup(workdir):
    return ["-vnc", "unix:%s" % os.path.join(workdir, "vnc.sock")]


def devices(width, height, bus="pci"):
    return ["-device", "virtio-gpu-%s,xres=%d,yres=%d" % (bus, width, height),
            "-device", "virtio-keyboard-%s" % bus, "-device", "virtio-tablet-%s" % bus]


SCENARIOS = [
    Scenario("gpu-input-1024x768", mode="shell", qemu_args=devices(1024, 768),
             setup=trace_setup, interact=interact_for(1024, 768, True), expect_exit=0,
             timeout=240,
             expect_log=[r"fbcon: 1024x768, 128x48 text"]),
    Scenario("gpu-input-640x480", mode="shell", qemu_args=devices(640, 480),
             setup=trace_setup, interact=interact_for(640, 480, False), expect_exit=0,
             timeout=240,
             expect_log=[r"fbcon: 640x480, 80x30 text"]),
    Scenario("gpu-input-microvm-mmio-800x600", machine="microvm", mode="shell",
             qemu_args=devices(800, 600, "device"), setup=trace_setup,
             interact=interact_for(800, 600, False),
             expect_exit=0, timeout=240,
             expect_log=[r"vio: virtio-gpu mmio@\S+ mmio-legacy", r"fbcon: 800x600, 100x37 text"]),
    Scenario("gpu-input-vnc-resize-and-led", mode="shell",
             qemu_args=devices(800, 600) + ["-device", "virtio-mouse-pci"],
             setup=vnc_setup, interact=vnc_interact, expect_exit=0, timeout=240),
]
