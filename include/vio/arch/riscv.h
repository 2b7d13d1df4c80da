/*
 * Barriers for RISC-V, 64- and 32-bit (included by vio/barrier.h; see the table there).
 *
 * RISC-V's memory model (RVWMO, in the unprivileged spec) lets a hart reorder almost any
 * two accesses to different addresses. `fence pred, succ` orders every access of the kinds in
 * pred before it against every access of the kinds in succ after it, where r and w are loads
 * and stores to memory and i and o are device input and output (loads and stores to I/O
 * regions, here the virtio registers). RAM and I/O are ordered separately: `fence rw,rw`,
 * the fence C11 atomics compile to, says nothing about a register store.
 *
 *   vio_mb                 fence rw,rw   ring accesses on both sides, in RAM
 *   vio_rmb                fence r,r     used->idx before the used entries
 *   vio_wmb                fence w,w     ring entries before avail->idx
 *   vio_before_mmio_write  fence w,o     RAM stores before the register store (notify)
 *   vio_after_mmio_read    fence i,ir    the register load (interrupt status) before later
 *                                        loads from RAM and from other registers
 *
 * The MMIO pair is what Linux's writel and readl use on RISC-V (arch/riscv/include/asm/io.h
 * and mmio.h). Like Linux, vio puts no fence between two accesses to one device's registers:
 * it relies on the platform's I/O regions being strongly ordered (a physical memory
 * attribute, privileged spec), as QEMU's virt machine's are.
 */
#ifndef VIO_ARCH_RISCV_H
#define VIO_ARCH_RISCV_H

#define vio_arch_fence(pred, succ) __asm__ __volatile__("fence " #pred ", " #succ ::: "memory")

#define vio_mb() vio_arch_fence(rw, rw)
#define vio_rmb() vio_arch_fence(r, r)
#define vio_wmb() vio_arch_fence(w, w)
#define vio_before_mmio_write() vio_arch_fence(w, o)
#define vio_after_mmio_read() vio_arch_fence(i, ir)

#endif
