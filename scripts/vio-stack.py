#!/usr/bin/env python3
"""The deepest stack an interrupt takes inside vio, summed from the compiler's own numbers.

  scripts/vio-stack.py [--arch x86_64|i686|riscv64|aarch64] [--verbose]

Compiles every library source (src/virtio/vio.mk's list) with Debian's GCC cross compiler for
the architecture, the flags of `make lib-cross` and -fcallgraph-info=su: GCC then writes, per
file, every function's frame size and every call it makes, after inlining. From the interrupt
handlers vio registers with the port (the `static void name(void *arg)` handlers of
src/virtio/pci_irq.c and src/virtio/mmio.c) it follows every call and prints the worst chain
from each handler, and through each driver's completion callback, with the bytes of each
frame and their sum.

Indirect calls are resolved from the source line GCC names for them:
  dev->ops->NAME(...)   every function a transport's ops table sets .NAME to
  vq->vq_cb(...)        every callback a driver passes to vio_dev_setup_vq[_opts]
  dev->config_cb(...)   every callback a driver passes to vio_dev_set_config_callback
  vq->vq_notify, vq->vq_fault   the core's notify_trampoline and queue_fault
Calls into the port (port->log, port->now_ns, ...) and into the owner's callbacks (on_done,
on_irq, ...) leave the library: they count 0 bytes here and are listed, since their own
stack comes on top. Bounded recursion (config_copy_in splitting an 8-byte read into two
4-byte ones) is counted one level deep. Exits non-zero when a chain cannot be resolved.
"""
import argparse
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GCC = {"x86_64": "x86_64-linux-gnu-gcc", "i686": "i686-linux-gnu-gcc",
       "riscv64": "riscv64-linux-gnu-gcc", "aarch64": "aarch64-linux-gnu-gcc"}
ARCH_FLAGS = {"x86_64": ["-mno-red-zone"], "i686": ["-mgeneral-regs-only"],
              "riscv64": ["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany"],
              "aarch64": ["-mgeneral-regs-only"]}
FLAGS = ["-O2", "-std=gnu11", "-ffreestanding", "-nostdinc", "-fno-stack-protector", "-fno-pic",
         "-fno-pie", "-fno-omit-frame-pointer", "-fno-strict-aliasing", "-Iinclude"]
PORT_OR_OWNER = "(port or owner)"


def sources():
    out = subprocess.run(["make", "-s", "--no-print-directory", "-f", "-", "print"],
                         input="include src/virtio/vio.mk\nprint:\n\t@echo $(VIO_SRCS)\n",
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return [s[2:] if s.startswith("./") else s for s in out.split()]


def compile_all(arch, outdir):
    cc = GCC[arch]
    inc = subprocess.run([cc, "-print-file-name=include"], capture_output=True, text=True,
                         check=True).stdout.strip()
    for src in sources():
        obj = os.path.join(outdir, src.replace("/", "_") + ".o")
        subprocess.run([cc] + ARCH_FLAGS[arch] + FLAGS + ["-isystem", inc,
                       "-fcallgraph-info=su", "-c", src, "-o", obj], cwd=ROOT, check=True)
    return glob.glob(os.path.join(outdir, "*.ci"))


NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)" label: "([^"]+)"')


def short(title):
    """A static function's title is "path:name": keep the file, which tells same names apart."""
    if ":" not in title:
        return title
    path, name = title.rsplit(":", 1)
    return "%s:%s" % (os.path.basename(path), name)


def by_name(frames):
    """name -> every node of that name (a static function may exist in several files)."""
    index = collections.defaultdict(set)
    for title in frames:
        index[title.rsplit(":", 1)[-1]].add(title)
    return index


def read_graph(files):
    frames, edges = {}, collections.defaultdict(list)
    for f in files:
        for line in open(f):
            m = NODE.match(line)
            if m:
                b = re.search(r"\\n(\d+) bytes", m.group(2))
                if b:
                    frames[short(m.group(1))] = int(b.group(1))
                continue
            m = EDGE.match(line)
            if m:
                edges[short(m.group(1))].append((short(m.group(2)), m.group(3)))
    return frames, edges


def grep_src(pattern, files):
    found = set()
    for f in files:
        found.update(re.findall(pattern, open(os.path.join(ROOT, f)).read(), re.S))
    return found


def indirect_targets():
    """member name -> the library functions an indirect call through it may reach."""
    virtio = glob.glob(os.path.join(ROOT, "src/virtio/*.c"))
    drivers = glob.glob(os.path.join(ROOT, "src/drivers/*.c"))
    rel = lambda fs: [os.path.relpath(f, ROOT) for f in fs]
    ops = collections.defaultdict(set)
    for f in rel(virtio):
        for member, fn in re.findall(r"\.(\w+)\s*=\s*(\w+),", open(os.path.join(ROOT, f)).read()):
            ops[member].add(fn)
    targets = {m: set(fns) for m, fns in ops.items()}
    targets["vq_cb"] = grep_src(r"vio_dev_setup_vq(?:_opts)?\([^;]*?,\s*(\w+),\s*\w+\);",
                                rel(drivers)) - {"NULL"}
    targets["config_cb"] = grep_src(r"vio_dev_set_config_callback\(\w+,\s*(\w+),", rel(drivers)) \
        - {"NULL"}
    targets["vq_notify"] = {"notify_trampoline"}
    targets["vq_fault"] = {"queue_fault"}
    return targets


def call_member(site):
    """The member an indirect call at 'file:line:col' calls through, from the source."""
    path, line, col = site.rsplit(":", 2)
    text = open(path if os.path.isabs(path) else os.path.join(ROOT, path)).read().splitlines()
    src = text[int(line) - 1][int(col) - 1:]
    m = re.match(r"[\w.>\-\[\]]*?(?:->|\.)(\w+)\s*\(", src)
    return m.group(1) if m else None


def entries():
    found = []
    for f in ("src/virtio/pci_irq.c", "src/virtio/mmio.c"):
        found += re.findall(r"^static void (\w+)\(void \*arg\)", open(os.path.join(ROOT, f)).read(),
                            re.M)
    return found


def worst(fn, frames, edges, targets, stack, memo, unresolved, names):
    """(bytes, chain) of the deepest call chain starting in fn."""
    if fn in memo:
        return memo[fn]
    own = frames.get(fn)
    if own is None:
        return (0, [PORT_OR_OWNER + " " + fn])
    best = (0, [])
    for callee, site in edges.get(fn, []):
        if callee == "__indirect_call":
            member = call_member(site)
            if member in targets:
                callees = sorted(t for n in targets[member] for t in names.get(n, ()))
            else:
                callees = []
                if member is None:
                    unresolved.append("%s at %s" % (fn, site))
                alt = (0, ["%s %s()" % (PORT_OR_OWNER, member)])
                best = max(best, alt, key=lambda r: r[0])
        else:
            callees = [callee]
        for c in callees:
            if c in stack:  # bounded recursion: one more level of the same frame
                cand = (frames.get(c, 0), [c + " (again)"])
            else:
                cand = worst(c, frames, edges, targets, stack | {c}, memo, unresolved, names)
            if cand[0] > best[0] or not best[1]:
                best = cand
    memo[fn] = (own + best[0], ["%s %d" % (fn, own)] + best[1])
    return memo[fn]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="x86_64", choices=sorted(GCC))
    ap.add_argument("--verbose", action="store_true", help="print every chain in full")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        frames, edges = read_graph(compile_all(args.arch, tmp))
    targets = indirect_targets()
    unresolved, memo, names = [], {}, by_name(frames)
    print("deepest interrupt-path stack in vio, %s, %s -O2 (bytes of each frame)" %
          (args.arch, GCC[args.arch]))
    top = 0
    for e in sorted(t for n in entries() for t in names[n]):
        total, chain = worst(e, frames, edges, targets, {e}, memo, unresolved, names)
        top = max(top, total)
        print("%6d  from %s: %s" % (total, e, " -> ".join(chain)))
    print("through each driver's completion callback (from the handler above it):")
    for cb in sorted(t for n in targets["vq_cb"] | targets["config_cb"] for t in names[n]):
        total, chain = worst(cb, frames, edges, targets, {cb}, memo, unresolved, names)
        print("%6d  %s: %s" % (total, cb, " -> ".join(chain)))
    print("worst: %d bytes, plus the port's and the owner's callbacks" % top)
    for u in unresolved:
        print("unresolved indirect call: " + u)
    return 1 if unresolved else 0


if __name__ == "__main__":
    sys.exit(main())
