#!/usr/bin/env python3
"""
vhost_user_blk.py: a virtio-blk device played by a host process, for QEMU's vhost-user-blk.

QEMU keeps the PCI side of the device (BARs, the status register, MSI-X) and hands the rings
to this process: over a Unix socket it tells us where guest memory is (one file descriptor
per RAM region, which we mmap), where each ring lives, and gives us two eventfds per queue:
"kick" (the guest notified the queue) and "call" (we want the guest interrupted). From then on
we read requests straight out of guest memory and write the answers back, as a device would.
The protocol is QEMU's docs/interop/vhost-user.rst; the ring is the split virtqueue of
virtio 1.2 section 2.7, the requests are section 5.2.6.

Played honestly it is a working disk backed by a raw image. With --mode it misbehaves on
purpose, once, on the first read or write of --trigger-sector, so that a test can show the
guest driver survives a device that lies (see MODES).

  tests/qemu/vhost_user_blk.py --socket /tmp/vu.sock --image disk.img [--mode MODE]
  qemu-system-x86_64 -m 512M \\
      -object memory-backend-memfd,id=mem,size=512M,share=on -machine memory-backend=mem \\
      -chardev socket,id=vu0,path=/tmp/vu.sock -device vhost-user-blk-pci,chardev=vu0 ...

Guest memory must be shared (share=on): we map the very pages the guest uses.
Python standard library only. The process serves one connection and exits when QEMU closes
it, on SIGTERM, or after --timeout seconds, whichever comes first.
"""
import argparse
import mmap
import os
import select
import signal
import socket
import struct
import sys
import time

# --- the message header (vhost-user.rst "Message Specification") ------------------------

HEADER = struct.Struct("=III")  # request, flags, payload size; native byte order
VERSION = 0x1                   # flags bits 0-1
FLAG_REPLY = 1 << 2             # set on every answer we send
FLAG_NEED_REPLY = 1 << 3        # the front-end wants an ack (REPLY_ACK) even without a body
MAX_FDS = 8                     # SET_MEM_TABLE sends at most 8 regions, one fd each

# Front-end requests, by number; each is handled by Backend.on_<name in lower case>.
REQUESTS = {
    1: "GET_FEATURES", 2: "SET_FEATURES", 3: "SET_OWNER", 4: "RESET_OWNER",
    5: "SET_MEM_TABLE", 6: "SET_LOG_BASE", 7: "SET_LOG_FD", 8: "SET_VRING_NUM",
    9: "SET_VRING_ADDR", 10: "SET_VRING_BASE", 11: "GET_VRING_BASE", 12: "SET_VRING_KICK",
    13: "SET_VRING_CALL", 14: "SET_VRING_ERR", 15: "GET_PROTOCOL_FEATURES",
    16: "SET_PROTOCOL_FEATURES", 17: "GET_QUEUE_NUM", 18: "SET_VRING_ENABLE",
    21: "SET_BACKEND_REQ_FD", 24: "GET_CONFIG", 25: "SET_CONFIG", 34: "RESET_DEVICE",
}

# Back-end requests, sent on the channel SET_BACKEND_REQ_FD gave us.
BACKEND_CONFIG_CHANGE_MSG = 2

# Protocol features (vhost-user.rst "Protocol features"): the ones we implement.
PROTOCOL_F_MQ = 0            # GET_QUEUE_NUM
PROTOCOL_F_REPLY_ACK = 3     # FLAG_NEED_REPLY on any request
PROTOCOL_F_BACKEND_REQ = 5   # a channel for our own requests (config change)
PROTOCOL_F_CONFIG = 9        # GET_CONFIG / SET_CONFIG: vhost-user-blk requires it
PROTOCOL_F_RESET_DEVICE = 13
PROTOCOL_FEATURES = sum(1 << b for b in (PROTOCOL_F_MQ, PROTOCOL_F_REPLY_ACK,
                                         PROTOCOL_F_BACKEND_REQ, PROTOCOL_F_CONFIG,
                                         PROTOCOL_F_RESET_DEVICE))

# Bit 8 of SET_VRING_KICK/CALL/ERR's u64: no descriptor came with the message.
VRING_NOFD = 1 << 8

# --- the device's features and config (virtio 1.2 sections 5.2.3, 5.2.4, 6) --------------

VIRTIO_BLK_F_SEG_MAX = 2
VIRTIO_BLK_F_BLK_SIZE = 6
VIRTIO_BLK_F_FLUSH = 9
VIRTIO_BLK_F_MQ = 12
VIRTIO_F_RING_INDIRECT_DESC = 28
VIRTIO_F_RING_EVENT_IDX = 29
VHOST_USER_F_PROTOCOL_FEATURES = 30  # not a virtio feature: vhost-user's own bit
VIRTIO_F_VERSION_1 = 32
FEATURES = sum(1 << b for b in (VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH,
                                VIRTIO_BLK_F_MQ, VIRTIO_F_RING_INDIRECT_DESC,
                                VIRTIO_F_RING_EVENT_IDX, VHOST_USER_F_PROTOCOL_FEATURES,
                                VIRTIO_F_VERSION_1))

# struct virtio_blk_config up to write_zeroes_may_unmap: capacity, size_max, seg_max,
# geometry (cylinders, heads, sectors), blk_size, topology (physical_block_exp,
# alignment_offset, min_io_size, opt_io_size), writeback, unused0, num_queues,
# max_discard_sectors, max_discard_seg, discard_sector_alignment,
# max_write_zeroes_sectors, max_write_zeroes_seg, write_zeroes_may_unmap, unused1[3].
BLK_CONFIG = struct.Struct("<QIIHBBIBBHIBBHIIIIIB3x")
assert BLK_CONFIG.size == 60
SECTOR = 512
SEG_MAX = 64
QUEUES = 4                     # what GET_QUEUE_NUM offers; QEMU uses its num-queues of them
CONFIG_SPACE_MAX = 256         # QEMU's limit for GET_CONFIG

# Request types and status bytes (5.2.6).
T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 4, 8
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
OUTHDR = struct.Struct("<IIQ")  # type, ioprio, sector
ID_BYTES = 20

# --- the split ring (2.7) -----------------------------------------------------------------

DESC = struct.Struct("<QIHH")  # addr, len, flags, next
DESC_F_NEXT, DESC_F_WRITE, DESC_F_INDIRECT = 1, 2, 4
AVAIL_F_NO_INTERRUPT = 1

BURST_SECONDS = 3  # irq-burst: how long the storm lasts
MODES = {
    "honest": "a working disk",
    "id-out-of-range": "answer the trigger request with a used id beyond the ring",
    "id-not-in-flight": "answer it with the id of a descriptor that is not an in-flight head",
    "id-twice": "answer it honestly, then once more with the same id after the driver took "
                "the first answer",
    "len-too-long": "answer it with a used len 4096 bytes larger than the buffers posted",
    "idx-jump": "do not answer it; move used->idx 1000 entries ahead instead",
    "never-complete": "never answer it",
    "bad-status": "answer it with status byte 0x5a",
    "irq-storm": "answer it honestly, then write every call eventfd without pause",
    "irq-burst": "answer it honestly, then write every call eventfd without pause for %d s, "
                 "then behave" % BURST_SECONDS,
    "config-storm": "answer it honestly, then send config-change messages without pause, the "
                    "capacity flipping each time so that QEMU bumps config_generation",
}
BAD_STATUS = 0x5a


class Log:
    """Timestamped lines, each written out at once: the log must survive a SIGKILL."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else sys.stderr
        self.start = time.monotonic()

    def __call__(self, fmt, *args):
        self.f.write("[%8.3f] %s\n" % (time.monotonic() - self.start, fmt % args))


class ProtocolError(Exception):
    pass


# --- guest memory ---------------------------------------------------------------------------

class Region:
    """One RAM region QEMU shares: guest-physical and QEMU-virtual bases, our mapping."""

    def __init__(self, gpa, size, uva, mmap_offset, fd):
        self.gpa, self.size, self.uva = gpa, size, uva
        # mmap from the start of the file: mmap_offset need not be page-aligned for us.
        self.map = mmap.mmap(fd, size + mmap_offset, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.map)
        self.base = mmap_offset

    def close(self):
        self.view.release()
        self.map.close()


class Memory:
    """
    Translates the two kinds of address vhost-user uses into (buffer, offset): ring addresses
    from SET_VRING_ADDR are QEMU's own virtual addresses ("user addresses"); descriptor
    addresses are guest-physical. Anything not wholly inside one region is refused.
    """

    def __init__(self):
        self.regions = []

    def set_table(self, regions):
        for r in self.regions:
            r.close()
        self.regions = regions

    def _find(self, addr, length, base_of):
        for r in self.regions:
            start = base_of(r)
            if start <= addr and addr + length <= start + r.size:
                return r.view, r.base + addr - start
        raise ProtocolError("address 0x%x+%d is in no memory region" % (addr, length))

    def guest(self, addr, length):
        return self._find(addr, length, lambda r: r.gpa)

    def user(self, addr, length):
        return self._find(addr, length, lambda r: r.uva)


# --- one virtqueue --------------------------------------------------------------------------

class Vring:
    """
    The device side of one split virtqueue. It starts when its kick eventfd arrives and
    stops on GET_VRING_BASE; with protocol features negotiated it also needs
    SET_VRING_ENABLE before it may touch the ring.
    """

    def __init__(self, index):
        self.index = index
        self.num = 0
        self.addr = None                 # (desc, used, avail) user addresses
        self.last_avail = 0              # next avail->ring slot to take
        self.used_idx = 0                # our copy of used->idx
        self.kick = self.call = self.err = None
        self.enabled = False
        self.started = False
        self.in_flight = set()           # heads taken and not answered
        self.desc = self.avail16 = self.used16 = self.used32 = self.avail_event16 = None

    def close_fds(self):
        for name in ("kick", "call", "err"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def resolve(self, mem):
        """
        Look the ring's three parts up in the memory table. The fields the guest reads while
        we write them are reached through typed memoryviews ("H" for 16-bit, "I" for
        32-bit): storing one item is one store of that width, so the guest never sees half an
        index. (struct.pack_into would not do: it clears the bytes before it writes them, and
        a driver polling used->idx then reads a 0 in between.) x86 keeps stores in order, so
        an element written before the index is seen before it (2.7.8.2).
        """
        desc, used, avail = self.addr
        n = self.num
        self.release()
        self.desc = mem.user(desc, 16 * n)
        view, off = mem.user(avail, 6 + 2 * n)
        self.avail16 = view[off:off + 6 + 2 * n].cast("H")    # flags, idx, ring[n], used_event
        view, off = mem.user(used, 6 + 8 * n)
        self.used16 = view[off:off + 4].cast("H")             # flags, idx
        self.used32 = view[off + 4:off + 4 + 8 * n].cast("I")  # ring[n] as id, len pairs
        self.avail_event16 = view[off + 4 + 8 * n:off + 6 + 8 * n].cast("H")

    def release(self):
        """Drop our views of guest memory, so that its mapping can be closed."""
        for name in ("avail16", "used16", "used32", "avail_event16"):
            view = getattr(self, name, None)
            if view is not None:
                view.release()
                setattr(self, name, None)
        self.desc = None

    # The fields, by the layout of 2.7.6 and 2.7.8.
    def avail_flags(self):
        return self.avail16[0]

    def avail_idx(self):
        return self.avail16[1]

    def avail_slot(self, i):
        return self.avail16[2 + i % self.num]

    def used_event(self):
        return self.avail16[2 + self.num]

    def set_avail_event(self, value):
        self.avail_event16[0] = value & 0xffff

    def put_used(self, head, length):
        """Write one used element, then publish it by moving used->idx (2.7.8.2)."""
        slot = self.used_idx % self.num
        self.used32[2 * slot] = head
        self.used32[2 * slot + 1] = length
        self.used_idx = (self.used_idx + 1) & 0xffff
        self.publish()

    def publish(self):
        self.used16[1] = self.used_idx

    def chain(self, mem, head):
        """
        The descriptors of the chain at `head`, followed through NEXT links and at most one
        indirect table (2.7.5.3), as (view, offset, length, writable). A loop or a chain
        longer than the ring is the driver's bug; we refuse it rather than spin.
        """
        dview, doff = self.desc
        table, limit, i = (dview, doff), self.num, head
        segs = []
        for _ in range(self.num + 1):
            if i >= limit:
                raise ProtocolError("vq%d: descriptor %d out of range" % (self.index, i))
            addr, length, flags, nxt = DESC.unpack_from(table[0], table[1] + 16 * i)
            if flags & DESC_F_INDIRECT:
                if table[0] is not dview or table[1] != doff or length % 16 or not length:
                    raise ProtocolError("vq%d: bad indirect descriptor" % self.index)
                table, limit, i = mem.guest(addr, length), length // 16, 0
                continue
            view, off = mem.guest(addr, length)
            segs.append((view, off, length, bool(flags & DESC_F_WRITE)))
            if not flags & DESC_F_NEXT:
                return segs
            i = nxt
        raise ProtocolError("vq%d: descriptor chain at %d loops" % (self.index, head))


def need_event(event, new, old):
    """2.7.10: interrupt when used->idx passes used_event on its way from old to new."""
    return ((new - event - 1) & 0xffff) < ((new - old) & 0xffff)


# --- the block device -----------------------------------------------------------------------

class Request:
    """One virtio-blk request: header, data, status byte (5.2.6)."""

    def __init__(self, segs):
        # 2.7.4.2: the device-readable descriptors come first, then the device-writable.
        first_in = next((k for k, s in enumerate(segs) if s[3]), len(segs))
        out, inn = segs[:first_in], segs[first_in:]
        if not out or not inn or not all(s[3] for s in inn):
            raise ProtocolError("request is not readable segments then writable ones")
        head = b""
        for v, o, n, _ in out:  # the header may be split over descriptors, rarely
            head += bytes(v[o:o + min(n, OUTHDR.size - len(head))])
            if len(head) == OUTHDR.size:
                break
        if len(head) < OUTHDR.size:
            raise ProtocolError("request header is %d bytes" % len(head))
        self.type, _, self.sector = OUTHDR.unpack_from(head)
        self.data_out = [(v, o, n) for v, o, n, _ in out]
        self.skip_out = OUTHDR.size  # data to write starts after the header
        self.data_in = [(v, o, n) for v, o, n, _ in inn]
        self.in_len = sum(n for _, _, n in self.data_in)  # data + status byte

    def in_views(self, length):
        """memoryviews over the first `length` device-writable bytes."""
        views = []
        for v, o, n in self.data_in:
            take = min(n, length)
            if take:
                views.append(v[o:o + take])
            length -= take
        return views

    def out_views(self):
        """memoryviews over the device-readable bytes after the header."""
        views, skip = [], self.skip_out
        for v, o, n in self.data_out:
            if skip >= n:
                skip -= n
                continue
            views.append(v[o + skip:o + n])
            skip = 0
        return views

    def set_status(self, status):
        v, o, n = self.data_in[-1]
        v[o + n - 1] = status


class Disk:
    """The raw image: reads, writes and flushes by sector, with the capacity checked."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR)
        self.sectors = os.fstat(self.fd).st_size // SECTOR
        self.serial = b"vio-vhost-user-blk"

    def in_range(self, sector, nbytes):
        return nbytes % SECTOR == 0 and sector + nbytes // SECTOR <= self.sectors

    def execute(self, req):
        """Do the request; returns (status, bytes written to the device-writable part)."""
        data_len = req.in_len - 1
        if req.type == T_IN:
            if not self.in_range(req.sector, data_len):
                return S_IOERR, 1
            views = req.in_views(data_len)
            got = os.preadv(self.fd, views, req.sector * SECTOR) if views else 0
            for mv in views:
                mv.release()
            return (S_OK, req.in_len) if got == data_len else (S_IOERR, 1)
        if req.type == T_OUT:
            views = req.out_views()
            n = sum(len(mv) for mv in views)
            ok = self.in_range(req.sector, n)
            if ok and views:
                ok = os.pwritev(self.fd, views, req.sector * SECTOR) == n
            for mv in views:
                mv.release()
            return (S_OK if ok else S_IOERR), 1
        if req.type == T_FLUSH:
            os.fsync(self.fd)
            return S_OK, 1
        if req.type == T_GET_ID:
            ident = self.serial.ljust(ID_BYTES, b"\0")[:min(ID_BYTES, data_len)]
            views = req.in_views(len(ident))
            pos = 0
            for mv in views:
                mv[:] = ident[pos:pos + len(mv)]
                pos += len(mv)
                mv.release()
            return S_OK, len(ident) + 1
        return S_UNSUPP, 1


# --- the vhost-user back-end ----------------------------------------------------------------

class Backend:
    """One vhost-user session: QEMU's requests on `conn`, the rings, the lies."""

    def __init__(self, conn, disk, mode, trigger_sector, log):
        self.conn, self.disk, self.mode, self.log = conn, disk, mode, log
        self.trigger_sector = trigger_sector
        self.triggered = False
        self.storming = None            # "irq" or "config" once a storm mode has triggered
        self.duplicate = None           # id-twice: (vring, head, len) still to send again
        self.storm_rounds = 0           # interrupts or config changes the storm has sent
        self.storm_until = None         # irq-burst: when the storm stops (time.monotonic)
        self.config_flip = False        # config-storm: report one sector less this time
        self.config_pending = False     # config-storm: a change sent, its GET_CONFIG not seen
        self.mem = Memory()
        self.vrings = {}
        self.features = 0
        self.protocol_features = 0
        self.backend_chan = None        # our end of SET_BACKEND_REQ_FD
        self.requests = 0

    def vring(self, index):
        if index >= QUEUES:
            raise ProtocolError("queue %d: we offered %d" % (index, QUEUES))
        return self.vrings.setdefault(index, Vring(index))

    # --- the socket ---------------------------------------------------------------------------

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def read_message(self):
        """One request: the header arrives with any file descriptors, then the payload."""
        head, fds, _, _ = socket.recv_fds(self.conn, HEADER.size, MAX_FDS)
        if not head:
            raise EOFError
        head += self.recv_exact(HEADER.size - len(head))
        request, flags, size = HEADER.unpack(head)
        if flags & 0x3 != VERSION:
            raise ProtocolError("message version %d" % (flags & 0x3))
        payload = self.recv_exact(size) if size else b""
        return request, flags, payload, list(fds)

    def reply(self, request, payload):
        self.conn.sendall(HEADER.pack(request, VERSION | FLAG_REPLY, len(payload)) + payload)

    # --- requests from QEMU -------------------------------------------------------------------

    def handle(self, request, flags, payload, fds):
        """Run the request's handler; send its answer, or the REPLY_ACK ack if asked for."""
        name = REQUESTS.get(request)
        if name is None:
            for fd in fds:
                os.close(fd)
            raise ProtocolError("request %d is not implemented" % request)
        if not (self.storming == "config" and name == "GET_CONFIG"):
            self.log("%s%s", name, " (%d fds)" % len(fds) if fds else "")
        handler = getattr(self, "on_" + name.lower())
        answer = handler(payload, fds)
        if answer is not None:
            self.reply(request, answer)
        elif flags & FLAG_NEED_REPLY:
            # REPLY_ACK: a u64 0 says "done" for requests that have no answer of their own.
            self.reply(request, struct.pack("=Q", 0))

    def on_get_features(self, payload, fds):
        """The device features, plus vhost-user's PROTOCOL_FEATURES bit (30)."""
        return struct.pack("=Q", FEATURES)

    def on_set_features(self, payload, fds):
        """What the guest driver accepted (QEMU passes it on at DRIVER_OK)."""
        (self.features,) = struct.unpack("=Q", payload[:8])
        self.log("features 0x%x%s", self.features,
                 " event-idx" if self.event_idx else "")

    @property
    def event_idx(self):
        return bool(self.features & (1 << VIRTIO_F_RING_EVENT_IDX))

    def on_get_protocol_features(self, payload, fds):
        """The vhost-user extensions we speak (PROTOCOL_FEATURES above)."""
        return struct.pack("=Q", PROTOCOL_FEATURES)

    def on_set_protocol_features(self, payload, fds):
        """The extensions QEMU will use: a subset of ours."""
        (self.protocol_features,) = struct.unpack("=Q", payload[:8])
        self.log("protocol features 0x%x", self.protocol_features)

    def on_set_owner(self, payload, fds):
        """The session starts: QEMU now owns this device."""

    def on_reset_owner(self, payload, fds):
        """Deprecated: we take it, as RESET_DEVICE, to mean "stop every ring"."""
        self.reset()

    def on_reset_device(self, payload, fds):
        """Back to the state before the first ring was set up, memory table kept."""
        self.reset()

    def reset(self):
        for vr in self.vrings.values():
            vr.close_fds()
            vr.release()
        self.vrings = {}
        self.log("device reset")

    def on_get_queue_num(self, payload, fds):
        """How many queues we can serve (PROTOCOL_F_MQ); QEMU's num-queues must not exceed it."""
        return struct.pack("=Q", QUEUES)

    def on_set_mem_table(self, payload, fds):
        """
        The guest's RAM: a count, padding, then per region its guest-physical address, size,
        QEMU-virtual address and offset in the file whose descriptor comes alongside.
        """
        (n,) = struct.unpack_from("=I", payload)
        if n != len(fds):
            raise ProtocolError("SET_MEM_TABLE: %d regions, %d descriptors" % (n, len(fds)))
        for vr in self.vrings.values():
            vr.release()
        regions = []
        for k in range(n):
            gpa, size, uva, off = struct.unpack_from("=QQQQ", payload, 8 + 32 * k)
            regions.append(Region(gpa, size, uva, off, fds[k]))
            os.close(fds[k])  # the mapping keeps the memory
            self.log("region %d: guest 0x%x size 0x%x user 0x%x offset 0x%x", k, gpa, size,
                     uva, off)
        self.mem.set_table(regions)
        for vr in self.vrings.values():
            if vr.addr:
                vr.resolve(self.mem)

    def on_set_vring_num(self, payload, fds):
        """The queue size the driver chose (a power of 2 for a split ring, 2.7)."""
        index, num = struct.unpack_from("=II", payload)
        if not num or num & (num - 1) or num > 32768:
            raise ProtocolError("vq%d: size %d" % (index, num))
        self.vring(index).num = num

    def on_set_vring_addr(self, payload, fds):
        """Where the descriptor table, used ring and available ring are (user addresses)."""
        index, flags, desc, used, avail, log = struct.unpack_from("=IIQQQQ", payload)
        vr = self.vring(index)
        vr.addr = (desc, used, avail)
        vr.resolve(self.mem)

    def on_set_vring_base(self, payload, fds):
        """The avail index to start from: 0 after a reset, more after a migration."""
        index, base = struct.unpack_from("=II", payload)
        vr = self.vring(index)
        vr.last_avail = base
        vr.used_idx = base
        vr.in_flight = set()

    def on_get_vring_base(self, payload, fds):
        """Stop the ring and say where we stopped (QEMU sends it when the device stops)."""
        (index,) = struct.unpack_from("=I", payload)
        vr = self.vring(index)
        vr.started = False
        vr.close_fds()
        self.log("vq%d stopped at avail %d", index, vr.last_avail)
        return struct.pack("=II", index, vr.last_avail)

    def vring_fd(self, payload, fds, name):
        """Take the eventfd of SET_VRING_KICK/CALL/ERR: queue index in bits 0-7, bit 8 none."""
        (u64,) = struct.unpack_from("=Q", payload)
        vr = self.vring(u64 & 0xff)
        old = getattr(vr, name)
        if old is not None:
            os.close(old)
        if u64 & VRING_NOFD:
            setattr(vr, name, None)
            for fd in fds:
                os.close(fd)
            return vr
        if len(fds) != 1:
            raise ProtocolError("%s without exactly one descriptor" % name)
        setattr(vr, name, fds[0])
        return vr

    def on_set_vring_kick(self, payload, fds):
        """The kick eventfd: QEMU's ioeventfd on the queue's notify register. Starts it."""
        vr = self.vring_fd(payload, fds, "kick")
        vr.started = vr.kick is not None
        self.log("vq%d started: size %d%s", vr.index, vr.num,
                 "" if vr.enabled or not self.protocol_enabled else " (not enabled yet)")

    @property
    def protocol_enabled(self):
        return bool(self.features & (1 << VHOST_USER_F_PROTOCOL_FEATURES))

    def on_set_vring_call(self, payload, fds):
        """The call eventfd: writing it makes QEMU raise the queue's interrupt."""
        self.vring_fd(payload, fds, "call")

    def on_set_vring_err(self, payload, fds):
        """An eventfd to report ring errors on; we never do (QEMU only logs them)."""
        self.vring_fd(payload, fds, "err")

    def on_set_vring_enable(self, payload, fds):
        """Enable (1) or disable (0) a ring; with protocol features rings start disabled."""
        index, on = struct.unpack_from("=II", payload)
        self.vring(index).enabled = bool(on)

    def on_set_backend_req_fd(self, payload, fds):
        """
        Our channel to QEMU, for requests of our own (BACKEND_CONFIG_CHANGE_MSG). Older texts,
        QEMU 7.2's among them, call it SET_SLAVE_REQ_FD.
        """
        if len(fds) != 1:
            raise ProtocolError("SET_BACKEND_REQ_FD without a descriptor")
        self.backend_chan = socket.socket(fileno=fds[0])

    def on_get_config(self, payload, fds):
        """
        Config space bytes [offset, offset+size): struct virtio_blk_config. QEMU reads it at
        realize and after each config change we announce. An empty payload means failure.
        """
        offset, size, flags = struct.unpack_from("=III", payload)
        if offset + size > CONFIG_SPACE_MAX:
            return struct.pack("=III", offset, 0, flags)
        sectors = self.disk.sectors - (1 if self.config_flip else 0)
        cfg = BLK_CONFIG.pack(sectors, 0, SEG_MAX, 0, 0, 0, SECTOR, 0, 0, 0, 0, 0, 0, QUEUES,
                              0, 0, 0, 0, 0, 0)
        cfg = cfg.ljust(CONFIG_SPACE_MAX, b"\0")
        self.config_pending = False
        return struct.pack("=III", offset, size, flags) + cfg[offset:offset + size]

    def on_set_config(self, payload, fds):
        """The guest wrote config space (only writeback is writable): we have no cache mode."""

    def on_set_log_base(self, payload, fds):
        """Dirty logging is for migration; we offered no LOG_SHMFD, so QEMU should not ask."""
        for fd in fds:
            os.close(fd)

    def on_set_log_fd(self, payload, fds):
        """Likewise: an eventfd for dirty-log updates we never make."""
        for fd in fds:
            os.close(fd)

    # --- the rings ----------------------------------------------------------------------------

    def ready(self, vr):
        """May we touch this ring now?"""
        return (vr.started and vr.addr and vr.num
                and (vr.enabled or not self.protocol_enabled))

    def service(self, vr):
        """
        Take every available request off the ring and answer it. With EVENT_IDX we tell the
        driver, through avail_event, that we want a kick for the next one, and look at
        avail->idx once more after writing it: a request that arrived in between would
        otherwise wait for a kick the driver decided not to send (2.7.10).
        """
        if not self.ready(vr):
            return
        old_used = vr.used_idx
        while True:
            if self.event_idx:
                vr.set_avail_event(vr.last_avail)
            avail = vr.avail_idx()
            if avail == vr.last_avail:
                break
            if (avail - vr.last_avail) & 0xffff > vr.num:
                raise ProtocolError("vq%d: avail idx %d is more than %d past %d"
                                    % (vr.index, avail, vr.num, vr.last_avail))
            while vr.last_avail != avail:
                head = vr.avail_slot(vr.last_avail)
                vr.last_avail = (vr.last_avail + 1) & 0xffff
                self.do_request(vr, head)
        self.interrupt(vr, old_used)

    def interrupt(self, vr, old_used):
        """Signal the call eventfd if the driver wants to hear of entries old_used.."""
        if vr.call is None or vr.used_idx == old_used:
            return
        if self.event_idx:
            want = need_event(vr.used_event(), vr.used_idx, old_used)
        else:
            want = not vr.avail_flags() & AVAIL_F_NO_INTERRUPT
        if want:
            os.write(vr.call, struct.pack("=Q", 1))

    def do_request(self, vr, head):
        req = Request(vr.chain(self.mem, head))
        self.requests += 1
        vr.in_flight.add(head)
        if (not self.triggered and self.mode != "honest" and req.type in (T_IN, T_OUT)
                and req.sector == self.trigger_sector):
            self.triggered = True
            self.log("request %d (type %d, sector %d, head %d, %d bytes writable): %s",
                     self.requests, req.type, req.sector, head, req.in_len, self.mode)
            self.misbehave(vr, head, req)
            return
        status, length = self.disk.execute(req)
        req.set_status(status)
        self.answer(vr, head, length)

    def answer(self, vr, head, length):
        vr.in_flight.discard(head)
        vr.put_used(head, length)

    def misbehave(self, vr, head, req):
        """The lie MODES names; each happens once, on the trigger request."""
        mode = self.mode
        if mode == "id-out-of-range":
            vr.put_used(vr.num + 7, req.in_len)
        elif mode == "id-not-in-flight":
            bogus = next(i for i in range(vr.num) if i not in vr.in_flight)
            self.log("answering with id %d instead of %d", bogus, head)
            vr.put_used(bogus, req.in_len)
        elif mode == "idx-jump":
            vr.used_idx = (vr.used_idx + 1000) & 0xffff
            vr.publish()
        elif mode == "never-complete":
            pass
        else:
            status, length = self.disk.execute(req)
            if mode == "bad-status":
                status = BAD_STATUS
            elif mode == "len-too-long":
                length = req.in_len + 4096
            req.set_status(status)
            self.answer(vr, head, length)
            if mode == "id-twice":
                self.duplicate = (vr, head, length)
            elif mode == "irq-storm":
                self.storming = "irq"
            elif mode == "irq-burst":
                self.storming = "irq"
                self.storm_until = time.monotonic() + BURST_SECONDS
            elif mode == "config-storm":
                self.storming = "config"

    def send_duplicate(self):
        """
        id-twice: the copy goes out once the driver has taken the original, which it shows by
        moving used_event up to our used->idx when it re-arms its interrupt (EVENT_IDX).
        """
        vr, head, length = self.duplicate
        if self.event_idx and vr.used_event() != vr.used_idx:
            return
        self.duplicate = None
        old_used = vr.used_idx
        vr.put_used(head, length)
        self.log("sent head %d again", head)
        self.interrupt(vr, old_used)

    # --- storms -------------------------------------------------------------------------------

    def storm(self):
        """One more round of the storm that triggered, if any."""
        if self.storm_until and time.monotonic() >= self.storm_until:
            self.log("storm over after %d interrupts", self.storm_rounds)
            self.storming = self.storm_until = None
        if self.storming == "irq":
            for vr in self.vrings.values():
                if vr.call is not None:
                    os.write(vr.call, struct.pack("=Q", 1))
            self.storm_rounds += 1
        elif self.storming == "config" and self.backend_chan and not self.config_pending:
            # One change at a time: QEMU answers it with GET_CONFIG on the main socket, and
            # only then do we send the next, so neither side ever blocks on a full socket.
            self.config_flip = not self.config_flip
            self.config_pending = True
            self.backend_chan.sendall(HEADER.pack(BACKEND_CONFIG_CHANGE_MSG, VERSION, 0))
            self.storm_rounds += 1

    # --- the loop -----------------------------------------------------------------------------

    def run(self, deadline):
        """
        Wait on the socket and every kick eventfd. Also look at the rings every 20 ms
        without a kick: a device may poll, and it covers a kick lost to the ordering between
        our avail_event store and avail->idx load, which Python cannot fence.
        """
        while time.monotonic() < deadline:
            kicks = [vr.kick for vr in self.vrings.values() if vr.kick is not None]
            watch = [self.conn] + kicks
            if self.backend_chan:
                watch.append(self.backend_chan)
            wait = 0 if self.storming else 0.02
            readable, _, _ = select.select(watch, [], [], wait)
            for r in readable:
                if r is self.conn:
                    self.handle(*self.read_message())
                elif r is self.backend_chan:
                    if not self.backend_chan.recv(4096):  # replies we did not ask for
                        self.backend_chan.close()
                        self.backend_chan = None
                else:
                    os.read(r, 8)  # a kick: clear the eventfd; the rings are served below
            for vr in list(self.vrings.values()):
                self.service(vr)
            if self.duplicate:
                self.send_duplicate()
            self.storm()
        self.log("timeout: giving up")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", required=True, help="Unix socket path to listen on")
    ap.add_argument("--image", required=True, help="raw disk image")
    ap.add_argument("--mode", default="honest", choices=sorted(MODES))
    ap.add_argument("--trigger-sector", type=int, default=1000,
                    help="misbehave on the first read or write of this sector")
    ap.add_argument("--timeout", type=float, default=120, help="exit after this many seconds")
    ap.add_argument("--log", help="append the log here (default stderr)")
    args = ap.parse_args()

    log = Log(args.log)
    deadline = time.monotonic() + args.timeout
    # SIGTERM keeps its default action, an immediate exit; the log is written line by line.
    # A hard stop even if something blocks where the deadline cannot be checked:
    signal.alarm(int(args.timeout) + 5)

    disk = Disk(args.image)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(1)
    print("ready", flush=True)  # the caller may start QEMU now
    log("listening on %s, %d sectors, mode %s (%s)", args.socket, disk.sectors, args.mode,
        MODES[args.mode])
    listener.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        conn, _ = listener.accept()
    except socket.timeout:
        log("nobody connected")
        return 1
    listener.close()
    conn.settimeout(None)
    backend = Backend(conn, disk, args.mode, args.trigger_sector, log)
    try:
        backend.run(deadline)
    except (EOFError, ConnectionResetError):
        log("QEMU closed the connection after %d requests", backend.requests)
        if backend.storming:
            log("%s storm: %d rounds", backend.storming, backend.storm_rounds)
        return 0
    except ProtocolError as e:
        log("protocol error: %s", e)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
