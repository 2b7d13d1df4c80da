/*
 * Barriers for x86-64 and i686 (included by vio/barrier.h; see the table there).
 *
 * x86 keeps accesses to ordinary memory in program order but for one case: a load may be
 * satisfied before an earlier store to another address has left the CPU's store buffer
 * (Intel SDM vol. 3, "Memory Ordering": loads may be reordered with older stores to
 * different locations). Stores stay in order with stores and loads with loads, so vio_wmb
 * and vio_rmb only stop the compiler, and only vio_mb, which must keep the avail->idx store
 * ahead of the load of the device's suppression flags, needs an instruction. A locked
 * read-modify-write drains the store buffer like mfence and is cheaper on most CPUs.
 * Adding 0 changes nothing, and the word just below the stack pointer keeps it off the one
 * the next push, pop or ret uses.
 *
 * Device registers are mapped uncached (UC, as port.h asks of map_mmio). UC accesses are
 * not speculated and, as for RAM, a store stays behind earlier stores and a load ahead of
 * later loads. That is all the MMIO hooks must give (RAM stores before a register store, a
 * register load before later RAM loads), so they need no instruction either; Linux's writel
 * and readl on x86 are plain moves for the same reason. A write-combining (WC) mapping
 * would break this: vio's registers must never be mapped WC.
 */
#ifndef VIO_ARCH_X86_H
#define VIO_ARCH_X86_H

#define vio_arch_compiler_barrier() __asm__ __volatile__("" ::: "memory")

#ifdef __x86_64__
#define vio_mb() __asm__ __volatile__("lock; addl $0, -4(%%rsp)" ::: "memory", "cc")
#else
#define vio_mb() __asm__ __volatile__("lock; addl $0, -4(%%esp)" ::: "memory", "cc")
#endif
#define vio_rmb() vio_arch_compiler_barrier()
#define vio_wmb() vio_arch_compiler_barrier()
#define vio_before_mmio_write() vio_arch_compiler_barrier()
#define vio_after_mmio_read() vio_arch_compiler_barrier()

#endif
