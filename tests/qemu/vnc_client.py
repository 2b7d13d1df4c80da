"""
A minimal VNC (RFB 3.8) client for the screen scenarios: QEMU's VNC server is the one
headless way to do what a person at a window does, so the test uses it as that person.

It speaks no authentication and raw pixels, and asks for two pseudo-encodings QEMU 7.2
serves: ExtendedDesktopSize (-308), with which the client asks the guest for a new display
size (SetDesktopSize: QEMU passes it to virtio-gpu as a display-change event) and hears of
every new framebuffer size; and QEMU LED State (-261), a byte QEMU sends whenever the guest
changes its keyboard LEDs (bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps Lock).

    v = Vnc("vnc.sock")          # QEMU: -vnc unix:vnc.sock
    v.set_desktop_size(1024, 768)
    v.pump(2)                    # read what the server sent: v.leds, v.sizes
"""
import select
import socket
import struct
import time

ENC_RAW, ENC_DESKTOP_SIZE, ENC_EXT_DESKTOP_SIZE, ENC_QEMU_LED_STATE = 0, -223, -308, -261
LED_CAPS_LOCK = 1 << 2


class Vnc:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = time.monotonic() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.buf = b""
        self.leds = []   # every LED State byte, in order
        self.sizes = []  # every (width, height) the server announced
        version = self._read(12)
        assert version.startswith(b"RFB "), version
        self.s.sendall(b"RFB 003.008\n")
        types = self._read(self._read(1)[0])
        assert 1 in types, "VNC server wants authentication: %r" % types
        self.s.sendall(b"\x01")  # security type None
        assert struct.unpack(">I", self._read(4))[0] == 0, "VNC security handshake failed"
        self.s.sendall(b"\x01")  # ClientInit: shared
        self.width, self.height = struct.unpack(">HH", self._read(4))
        self.bytes_per_pixel = self._read(16)[0] // 8
        self._read(struct.unpack(">I", self._read(4))[0])  # the desktop's name
        encodings = [ENC_RAW, ENC_EXT_DESKTOP_SIZE, ENC_DESKTOP_SIZE, ENC_QEMU_LED_STATE]
        self.s.sendall(struct.pack(">BBH", 2, 0, len(encodings)) +
                       b"".join(struct.pack(">i", e) for e in encodings))

    def _fill(self, n, seconds):
        end = time.monotonic() + seconds
        while len(self.buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                return False
            if select.select([self.s], [], [], left)[0]:
                data = self.s.recv(65536)
                if not data:
                    raise EOFError("the VNC server closed the connection")
                self.buf += data
        return True

    def _read(self, n):
        if not self._fill(n, 10):
            raise TimeoutError("VNC: waited for %d bytes" % n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def pump(self, seconds):
        """Read the server's messages for `seconds`, noting LED states and sizes."""
        end = time.monotonic() + seconds
        while self._fill(1, max(0.0, end - time.monotonic())):
            kind = self._read(1)[0]
            if kind == 0:  # FramebufferUpdate
                self._read(1)
                for _ in range(struct.unpack(">H", self._read(2))[0]):
                    x, y, w, h, enc = struct.unpack(">HHHHi", self._read(12))
                    if enc == ENC_RAW:
                        self._read(w * h * self.bytes_per_pixel)
                    elif enc == ENC_QEMU_LED_STATE:
                        self.leds.append(self._read(1)[0])
                    elif enc == ENC_EXT_DESKTOP_SIZE:
                        screens = self._read(4)[0]
                        self._read(16 * screens)
                        self.sizes.append((w, h))
                    elif enc == ENC_DESKTOP_SIZE:
                        self.sizes.append((w, h))
                    else:
                        raise AssertionError("VNC: unexpected encoding %d" % enc)
            elif kind == 2:  # Bell
                pass
            elif kind == 3:  # ServerCutText
                self._read(3)
                self._read(struct.unpack(">I", self._read(4))[0])
            else:
                raise AssertionError("VNC: unexpected message %d" % kind)

    def set_desktop_size(self, width, height):
        """Ask for a new display size, as a viewer whose window was resized does."""
        self.s.sendall(struct.pack(">BBHHBB", 251, 0, width, height, 1, 0) +
                       struct.pack(">IHHHHI", 0, 0, 0, width, height, 0))

    def close(self):
        self.s.close()
