#!/usr/bin/env python3
"""
The library on every architecture vio supports, checked from what the compilers made of it.
`make lib-cross-build` puts one libvio.a per compiler and architecture in
build/cross/<compiler>-<arch>/ (clang for x86_64, i686, riscv64 and aarch64; GCC where it is
installed). For each library:

  symbols  it needs nothing from outside but memcpy, memset, memmove and memcmp: no libgcc
           helper (__udivdi3 for a 64-bit division on i686), no libc function
  fences   riscv64 and aarch64 only: the notify paths put the device-ordering fence of
           include/vio/barrier.h right before the register store, the interrupt paths put
           it right after the register load, and the rings get their write, full and read
           barriers (spec 2.7.13 and 2.7.7) where virtqueue.c publishes and reaps

and once, from the headers alone:

  refusals  barrier.h stops an unknown architecture and a big-endian one at compile time,
            and accepts a port's own barriers (VIO_ARCH_CUSTOM, tests/arch/custom/)

Every function whose stack frame exceeds the -Werror=frame-larger-than limit of the build is
listed (from the compilers' -fstack-usage files) and written to build/cross/frames.txt, and
fails the check: the compilers already refuse such a frame, so this catches a build whose
flags lost the limit.

  tests/arch/archcheck.py [-k SUBSTRING]      (make lib-cross; tests/runner.py runs it too)
"""
import argparse
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
CROSS = os.path.join(BUILD, "cross")
ARCHS = ("x86_64", "i686", "riscv64", "aarch64")
ALLOWED_UNDEFINED = {"memcpy", "memset", "memmove", "memcmp"}

# The instructions include/vio/arch/<arch>.h emits for each barrier (its table).
BARRIERS = {
    "riscv64": {"mb": "fence rw, rw", "rmb": "fence r, r", "wmb": "fence w, w",
                "before_mmio_write": "fence w, o", "after_mmio_read": "fence i, ir"},
    "aarch64": {"mb": "dmb osh", "rmb": "dmb oshld", "wmb": "dmb oshst",
                "before_mmio_write": "dmb oshst", "after_mmio_read": "dmb oshld"},
}


# --- instructions ------------------------------------------------------------------------------
class Insn:
    """One disassembled instruction: `text` is "mnemonic operands", spaces normalised."""

    def __init__(self, arch, mnemonic, operands):
        self.arch, self.mnemonic = arch, mnemonic
        self.operands = re.sub(r"\s+", " ", operands.strip())
        self.text = (mnemonic + " " + self.operands).strip()

    def _stack(self):
        # Spills and saved registers, through sp or the frame pointer, are not ring or
        # register accesses.
        if self.arch == "riscv64":
            return re.search(r"\((sp|s0)\)", self.operands) is not None
        return re.search(r"\[(sp|x29)\b", self.operands) is not None

    def load(self, width=None):
        m = self.mnemonic
        if self.arch == "riscv64":
            sizes = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4, "lwu": 4, "ld": 8}
            size = sizes.get(m)
        else:
            if not re.match(r"^(ldr|ldur|ldp|ldar)", m):
                return False
            if m.endswith("b") or m.endswith("sb"):
                size = 1
            elif m.endswith("h") or m.endswith("sh"):
                size = 2
            else:
                size = 4 if self.operands.startswith("w") else 8
        return size is not None and not self._stack() and (width is None or size == width)

    def store(self, width=None):
        m = self.mnemonic
        if self.arch == "riscv64":
            size = {"sb": 1, "sh": 2, "sw": 4, "sd": 8}.get(m)
        else:
            if not re.match(r"^(str|stur|stp|stlr)", m):
                return False
            if m.endswith("b"):
                size = 1
            elif m.endswith("h"):
                size = 2
            else:
                size = 4 if self.operands.startswith("w") else 8
        return size is not None and not self._stack() and (width is None or size == width)


def disassemble(lib, arch):
    """{member.o: {function: [Insn]}} for a libvio.a (llvm-objdump -d)."""
    out = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", lib], capture_output=True,
                         text=True, check=True).stdout
    objs, member, func = {}, None, None
    for line in out.splitlines():
        m = re.match(r"^\S+\((\S+\.o)\):\s+file format", line)
        if m:
            member, func = m.group(1), None
            objs[member] = {}
            continue
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            name = m.group(1)
            if not name.startswith(".L"):  # a local label continues the function
                func = name
                objs[member][func] = []
            continue
        m = re.match(r"^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$", line)
        if m and member and func:
            objs[member][func].append(Insn(arch, m.group(1), m.group(2)))
    return objs


def find_sequence(insns, steps):
    """
    Steps are (what, stop) pairs of predicates. Match step 1 anywhere; then each further step
    must match a later instruction before any instruction that matches its `stop`. Returns
    the matched instructions, or None.
    """
    def match_from(i, k):
        what, stop = steps[k]
        for j in range(i, len(insns)):
            if what(insns[j]):
                if k + 1 == len(steps):
                    return [insns[j]]
                rest = match_from(j + 1, k + 1)
                if rest is not None:
                    return [insns[j]] + rest
            if k > 0 and stop is not None and stop(insns[j]):
                return None
        return None

    return match_from(0, 0)


def fence(arch, name):
    want = BARRIERS[arch][name]
    return lambda insn: insn.text == want


def fence_paths(arch):
    """(path name, object, functions it may be in, steps), from barrier.h's contract."""
    b = BARRIERS[arch]
    bw, ar = fence(arch, "before_mmio_write"), fence(arch, "after_mmio_read")
    store, load = (lambda i: i.store()), (lambda i: i.load())

    def write(width):  # the fence, then as the very next store the register store
        return [(bw, None), (lambda i: i.store(width), store)]

    def read(width):  # the register load, then the fence before any other load
        return [(lambda i: i.load(width), None), (ar, load)]

    return [
        ("mmio notify: %s before the 32-bit QueueNotify store" % b["before_mmio_write"],
         "mmio.o", ["mmio_notify"], write(4)),
        ("mmio interrupt: %s after the 32-bit InterruptStatus load" % b["after_mmio_read"],
         "mmio.o", ["mmio_line_handler"], read(4)),
        ("pci notify: %s before the 16-bit doorbell store" % b["before_mmio_write"],
         "pci_modern.o", ["modern_notify", "region_write"], write(2)),
        ("pci interrupt: %s after the 8-bit ISR load" % b["after_mmio_read"],
         "pci_modern.o", ["modern_isr_read", "region_read"], read(1)),
        ("publish: %s, 16-bit avail->idx store, %s" % (b["wmb"], b["mb"]),
         "virtqueue.o", ["vio_vq_kick_prepare"],
         [(fence(arch, "wmb"), None), (lambda i: i.store(2), store),
          (fence(arch, "mb"), lambda i: i.load(2))]),
        ("reap: 16-bit used->idx load, %s, 32-bit used entry loads" % b["rmb"],
         "virtqueue.o", ["vio_vq_get_used"],
         [(lambda i: i.load(2), None), (fence(arch, "rmb"), lambda i: i.load(4)),
          (lambda i: i.load(4), None)]),
    ]


def check_fences(lib, arch):
    objs = disassemble(lib, arch)
    problems, found = [], 0
    for what, obj, funcs, steps in fence_paths(arch):
        bodies = [(f, insns) for f, insns in objs.get(obj, {}).items()
                  if f.split(".")[0] in funcs]
        if not bodies:
            problems.append("%s: none of %s in %s" % (what, ", ".join(funcs), obj))
            continue
        if any(find_sequence(insns, steps) for _, insns in bodies):
            found += 1
        else:
            problems.append("%s: not found in %s" % (what, ", ".join(f for f, _ in bodies)))
    if problems:
        return False, "; ".join(problems)
    return True, "%d paths fenced" % found


# --- symbols -------------------------------------------------------------------------------------
def check_symbols(lib):
    out = subprocess.run(["llvm-nm", "--format=posix", lib], capture_output=True, text=True,
                         check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2 or line.endswith(":"):
            continue
        (undefined if f[1] in ("U", "w", "v") else defined).add(f[0])
    outside = sorted(undefined - defined)
    bad = [s for s in outside if s not in ALLOWED_UNDEFINED]
    if bad:
        return False, "needs %s (only %s allowed)" % (" ".join(bad),
                                                       " ".join(sorted(ALLOWED_UNDEFINED)))
    return True, ("needs only " + " ".join(outside)) if outside else "needs nothing"


# --- what barrier.h refuses and accepts ------------------------------------------------------------
def compile_probe(target, *extra):
    """Compile src/virtio/virtqueue.c and mmio.c (syntax only) for a clang target."""
    inc = subprocess.run(["clang", "-print-file-name=include"], capture_output=True,
                         text=True).stdout.strip()
    errors = ""
    for src in ("src/virtio/virtqueue.c", "src/virtio/mmio.c"):
        p = subprocess.run(["clang", "--target=" + target, "-fsyntax-only", "-std=gnu11",
                            "-ffreestanding", "-nostdinc", "-isystem", inc, "-Iinclude",
                            "-Wall", "-Werror", *extra, src],
                           cwd=ROOT, capture_output=True, text=True)
        errors += p.stderr
        if p.returncode != 0:
            return False, errors
    return True, errors


def first_error(err):
    return next((l for l in err.splitlines() if "error:" in l), err.strip() or "compiled")


def check_refusals():
    results = []
    ok, err = compile_probe("mipsel-unknown-none-elf")
    results.append(("headers: unknown architecture refused",
                    not ok and "no barriers for this architecture" in err,
                    "mipsel: " + first_error(err)))
    ok, err = compile_probe("aarch64_be-none-elf")
    results.append(("headers: big-endian refused", not ok and "little-endian CPU" in err,
                    "aarch64_be: " + first_error(err)))
    custom = ("-DVIO_ARCH_CUSTOM", "-I" + os.path.join(HERE, "custom"))
    ok, err = compile_probe("mipsel-unknown-none-elf", *custom)
    results.append(("headers: VIO_ARCH_CUSTOM port accepted", ok,
                    "mipsel with tests/arch/custom" + (": " + err.strip() if err else "")))
    ok, err = compile_probe("mipsel-unknown-none-elf", *custom, "-DVIO_TEST_OMIT_RMB")
    results.append(("headers: VIO_ARCH_CUSTOM without vio_rmb refused",
                    not ok and "does not define vio_rmb()" in err,
                    first_error(err)))
    return results


# --- stack frames ----------------------------------------------------------------------------------
def frame_limit(config):
    try:
        with open(os.path.join(CROSS, config, "flags")) as f:
            m = re.search(r"-W(?:error=)?frame-larger-than=(\d+)", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


def big_frames(configs):
    """[(bytes, config, file, function, qualifier)] over each build's limit, largest first."""
    rows = []
    for config in configs:
        limit = frame_limit(config)
        if limit is None:
            continue
        for su in glob.glob(os.path.join(CROSS, config, "**", "*.su"), recursive=True):
            for line in open(su):
                f = line.rstrip("\n").split("\t")
                if len(f) != 3:
                    continue
                where, func = f[0].rsplit(":", 1)
                if int(f[1]) > limit:
                    rows.append((int(f[1]), config, where.split(":")[0], func, f[2]))
    return sorted(rows, key=lambda r: (-r[0], r[1]))


def frame_report(configs):
    rows = big_frames(configs)
    limits = sorted({frame_limit(c) for c in configs} - {None})
    lines = ["# stack frames over %s bytes (-fstack-usage), largest first" %
             "/".join(map(str, limits))]
    lines += ["%6d  %-14s %s: %s%s" % (b, c, f, fn, "" if q == "static" else " (%s)" % q)
              for b, c, f, fn, q in rows]
    os.makedirs(CROSS, exist_ok=True)
    with open(os.path.join(CROSS, "frames.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")
    # One line per function: its largest frame on each build.
    per_func = {}
    for b, c, f, fn, _ in rows:
        per_func.setdefault((f, fn.split(".")[0]), []).append("%s %d" % (c, b))
    return ["%s %s: %s" % (f, fn, ", ".join(v)) for (f, fn), v in sorted(per_func.items())]


# --- all of it ---------------------------------------------------------------------------------------
def configs_built():
    return sorted(os.path.basename(os.path.dirname(p))
                  for p in glob.glob(os.path.join(CROSS, "*", "libvio.a")))


def run(pattern=""):
    """[(name, ok, detail)] for every check, and the frame report lines."""
    configs = configs_built()
    results = []
    missing = ["clang-" + a for a in ARCHS if "clang-" + a not in configs]
    if missing:
        results.append(("libraries", False, "%s not built under %s (run 'make lib-cross-build')"
                        % (", ".join(missing), os.path.relpath(CROSS))))
    for config in configs:
        lib = os.path.join(CROSS, config, "libvio.a")
        arch = config.split("-", 1)[1]
        results.append((config + " symbols",) + check_symbols(lib))
        if arch in BARRIERS:
            results.append((config + " fences",) + check_fences(lib, arch))
    results += check_refusals()
    frames = frame_report(configs)
    results.append(("frames: none over the limit", not frames,
                    "%d functions over it" % len(frames) if frames else
                    "every frame within %s bytes" % "/".join(
                        str(l) for l in sorted({frame_limit(c) for c in configs} - {None}))))
    results = [r for r in results if not pattern or pattern in r[0]]
    return results, frames


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", dest="pattern", default="", help="only checks whose name has this")
    args = ap.parse_args()
    results, frames = run(args.pattern)
    for name, ok, detail in results:
        print("%-5s arch/%s: %s" % ("PASS" if ok else "FAIL", name, detail))
    print("frames over the limit, per function (build/cross/frames.txt):")
    for line in frames:
        print("    " + line)
    failed = sum(1 for r in results if not r[1])
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
