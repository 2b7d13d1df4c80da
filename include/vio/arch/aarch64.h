/*
 * Barriers for AArch64 (included by vio/barrier.h; see the table there).
 *
 * Arm lets the CPU reorder accesses to normal memory (RAM) freely; device memory
 * (Device-nGnRE, how a port maps registers) stays in order with other device accesses but
 * not with RAM. `dmb <domain><kind>` orders accesses before it against those after it, as
 * seen by every observer in the shareability domain: ISH covers the CPUs, OSH also the
 * devices that do DMA. vio uses OSH throughout, because the other side of the ring may be a
 * real device, not QEMU on another CPU. The kind: LD orders loads before it against later
 * loads and stores, ST stores against stores, none everything against everything.
 *
 *   vio_mb                 dmb osh     ring accesses on both sides
 *   vio_rmb                dmb oshld   used->idx before the used entries
 *   vio_wmb                dmb oshst   ring entries before avail->idx
 *   vio_before_mmio_write  dmb oshst   RAM stores before the register store (notify)
 *   vio_after_mmio_read    dmb oshld   the register load (interrupt status) before later
 *                                      loads and stores
 *
 * The MMIO pair is the dma_wmb/dma_rmb that Linux's writel and readl put around each
 * access on arm64 (arch/arm64/include/asm/io.h). A DMB suffices because the device
 * observes RAM through the same coherent interconnect; a `dsb st` would wait for the stores
 * to complete, which is needed only for non-coherent or side-band observers.
 */
#ifndef VIO_ARCH_AARCH64_H
#define VIO_ARCH_AARCH64_H

#include <stdint.h>

#define vio_arch_dmb(opt) __asm__ __volatile__("dmb " #opt ::: "memory")

#define vio_mb() vio_arch_dmb(osh)
#define vio_rmb() vio_arch_dmb(oshld)
#define vio_wmb() vio_arch_dmb(oshst)
#define vio_before_mmio_write() vio_arch_dmb(oshst)
#define vio_after_mmio_read() vio_arch_dmb(oshld)

/*
 * Register accesses as single loads and stores through a base register, written out so the
 * compiler cannot choose a pre- or post-indexed form or a pair. Under KVM a register access
 * traps to the hypervisor, which can emulate only a plain load or store whose syndrome
 * (ESR_EL2.ISV) names the register; anything else stops the guest. Linux's __raw_readl and
 * __raw_writel are written the same way for the same reason.
 */
static inline uint8_t vio_arch_ldrb(const volatile void *addr)
{
	uint32_t v;
	__asm__ __volatile__("ldrb %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
	return (uint8_t)v;
}

static inline uint16_t vio_arch_ldrh(const volatile void *addr)
{
	uint32_t v;
	__asm__ __volatile__("ldrh %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
	return (uint16_t)v;
}

static inline uint32_t vio_arch_ldr(const volatile void *addr)
{
	uint32_t v;
	__asm__ __volatile__("ldr %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
	return v;
}

static inline void vio_arch_strb(volatile void *addr, uint8_t v)
{
	__asm__ __volatile__("strb %w0, [%1]" : : "r"((uint32_t)v), "r"(addr) : "memory");
}

static inline void vio_arch_strh(volatile void *addr, uint16_t v)
{
	__asm__ __volatile__("strh %w0, [%1]" : : "r"((uint32_t)v), "r"(addr) : "memory");
}

static inline void vio_arch_str(volatile void *addr, uint32_t v)
{
	__asm__ __volatile__("str %w0, [%1]" : : "r"(v), "r"(addr) : "memory");
}

#define vio_raw_read8(addr) vio_arch_ldrb(addr)
#define vio_raw_read16(addr) vio_arch_ldrh(addr)
#define vio_raw_read32(addr) vio_arch_ldr(addr)
#define vio_raw_write8(addr, v) vio_arch_strb(addr, v)
#define vio_raw_write16(addr, v) vio_arch_strh(addr, v)
#define vio_raw_write32(addr, v) vio_arch_str(addr, v)

#endif
