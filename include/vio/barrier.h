/*
 * Memory ordering between the CPU and a virtio device: the one per-architecture part of vio.
 *
 * A virtio device and the driver share two kinds of memory, and a weakly ordered CPU (RISC-V,
 * Arm) may reorder accesses between them unless told not to:
 *
 *   - the rings and buffers, in ordinary RAM the device reaches by DMA. Spec 2.7.7 and
 *     2.7.13 fix the order: the driver writes descriptors and the avail entry, then
 *     avail->idx (vio_wmb between them), then reads the device's suppression flags
 *     (vio_mb after the idx store); it reads used->idx, then the used entries it covers
 *     (vio_rmb between them).
 *   - the device's registers (MMIO). A register write often tells the device to go and
 *     read RAM (the notify of 4.1.5.2 and 4.2.3.3: "look at queue 3"), so every RAM write
 *     before it must reach the device first; a register read (an interrupt status) often
 *     tells the driver to go and read RAM, so no RAM read after it may be satisfied early.
 *     The accessors in include/vio/io.h put vio_before_mmio_write() before each register
 *     store and vio_after_mmio_read() after each register load.
 *
 * Those five operations are all vio needs from the CPU. Each architecture supplies them in
 * include/vio/arch/<arch>.h, chosen below from the compiler's predefined macros:
 *
 *   operation                 x86-64, i686         riscv32/64    aarch64
 *   vio_mb()                  lock; addl $0,-4(sp) fence rw,rw   dmb osh
 *   vio_rmb()                 compiler barrier     fence r,r     dmb oshld
 *   vio_wmb()                 compiler barrier     fence w,w     dmb oshst
 *   vio_before_mmio_write()   compiler barrier     fence w,o     dmb oshst
 *   vio_after_mmio_read()     compiler barrier     fence i,ir    dmb oshld
 *
 * Each is also a compiler barrier ("memory" clobber): the compiler moves no memory access
 * across it. Port I/O (inb/outb, x86 only) goes through the port's functions, and on x86
 * every in/out instruction is already ordered against all memory accesses.
 *
 * Another architecture: define VIO_ARCH_CUSTOM when compiling the library and put a header
 * named vio/arch/custom.h on the include path (vio ships none). It must define the five
 * function-like macros above, each usable as a statement, ordering what its row of the
 * table orders, and each a compiler barrier. It may also define the six raw register
 * accesses of include/vio/io.h (vio_raw_read8/16/32, vio_raw_write8/16/32); without them
 * they are plain volatile loads and stores. A missing barrier is a compile error, so no port
 * is ever built with barriers silently left out.
 *
 * What vio assumes of the machine, on every architecture:
 *
 *   - Little-endian CPU. Virtio 1.x devices (VIRTIO_F_VERSION_1) are little-endian whatever
 *     the CPU; legacy (0.9.5) devices use the guest's native byte order. vio reads and
 *     writes ring fields and registers as plain integers, which is right for both only on
 *     a little-endian CPU; a big-endian target is refused below.
 *   - Coherent DMA. The device sees what the CPU wrote to RAM without the CPU cleaning
 *     caches, and the CPU sees what the device wrote without invalidating them. That holds
 *     on x86 and for the virtio devices of QEMU's riscv64 and aarch64 `virt` machines, as
 *     long as the port maps DMA memory like the rest of RAM (normal, write-back cacheable):
 *     under KVM on arm64 the device is QEMU on another CPU reading through a cacheable
 *     mapping, and an uncached guest alias of the same page would not see its writes.
 *     On a machine whose devices are not coherent the port would have to clean (write
 *     back) the descriptors, the avail ring and outgoing buffers before each avail->idx
 *     store and notify, and invalidate the used ring and incoming buffers before reading
 *     them. vio has no hooks for that; such a machine needs its DMA memory mapped uncached
 *     (the barriers above still apply).
 */
#ifndef VIO_BARRIER_H
#define VIO_BARRIER_H

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vio needs a little-endian CPU: virtio 1.x rings and registers are little-endian (legacy devices are guest-endian) and vio does not byte-swap"
#endif

#if defined(VIO_ARCH_CUSTOM)
#include <vio/arch/custom.h>
#elif defined(__x86_64__) || defined(__i386__)
#include <vio/arch/x86.h>
#elif defined(__riscv)
#include <vio/arch/riscv.h>
#elif defined(__aarch64__)
#include <vio/arch/aarch64.h>
#else
#error "vio has no barriers for this architecture: define VIO_ARCH_CUSTOM and supply vio/arch/custom.h (see include/vio/barrier.h)"
#endif

#ifndef vio_mb
#error "vio/barrier.h: the architecture header does not define vio_mb()"
#endif
#ifndef vio_rmb
#error "vio/barrier.h: the architecture header does not define vio_rmb()"
#endif
#ifndef vio_wmb
#error "vio/barrier.h: the architecture header does not define vio_wmb()"
#endif
#ifndef vio_before_mmio_write
#error "vio/barrier.h: the architecture header does not define vio_before_mmio_write()"
#endif
#ifndef vio_after_mmio_read
#error "vio/barrier.h: the architecture header does not define vio_after_mmio_read()"
#endif

#endif
