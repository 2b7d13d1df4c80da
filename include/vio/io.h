/*
 * MMIO accessors: one load or store of exactly the named width, so the compiler can neither
 * merge, split, reorder nor drop a device register access, ordered against RAM as a device
 * needs (include/vio/barrier.h has the per-architecture instructions):
 *
 *   - the device sees a register write only after every earlier store to RAM
 *     (vio_before_mmio_write), so a notify never overtakes the ring entries it announces;
 *   - a register read completes before any later load from RAM (vio_after_mmio_read), so
 *     the used ring is read only after the interrupt status that said it changed.
 *
 * Both are also compiler barriers. The port maps registers uncached (Device-nGnRE on arm64,
 * UC on x86, never write-combining, an I/O region on RISC-V), which keeps one device's
 * register accesses in program order with each other. Registers are little-endian, like the CPU (barrier.h
 * refuses a big-endian target).
 */
#ifndef VIO_IO_H
#define VIO_IO_H

#include <stdint.h>
#include <vio/barrier.h>

/*
 * The access itself. A volatile access is one instruction of the right width everywhere;
 * an architecture header may supply its own (aarch64 does: see vio/arch/aarch64.h).
 */
#ifndef vio_raw_read8
#define vio_raw_read8(addr) (*(const volatile uint8_t *)(addr))
#define vio_raw_read16(addr) (*(const volatile uint16_t *)(addr))
#define vio_raw_read32(addr) (*(const volatile uint32_t *)(addr))
#define vio_raw_write8(addr, v) (*(volatile uint8_t *)(addr) = (v))
#define vio_raw_write16(addr, v) (*(volatile uint16_t *)(addr) = (v))
#define vio_raw_write32(addr, v) (*(volatile uint32_t *)(addr) = (v))
#endif

static inline uint8_t vio_mmio_read8(const volatile void *addr)
{
	uint8_t v = vio_raw_read8(addr);
	vio_after_mmio_read();
	return v;
}

static inline uint16_t vio_mmio_read16(const volatile void *addr)
{
	uint16_t v = vio_raw_read16(addr);
	vio_after_mmio_read();
	return v;
}

static inline uint32_t vio_mmio_read32(const volatile void *addr)
{
	uint32_t v = vio_raw_read32(addr);
	vio_after_mmio_read();
	return v;
}

static inline void vio_mmio_write8(volatile void *addr, uint8_t v)
{
	vio_before_mmio_write();
	vio_raw_write8(addr, v);
}

static inline void vio_mmio_write16(volatile void *addr, uint16_t v)
{
	vio_before_mmio_write();
	vio_raw_write16(addr, v);
}

static inline void vio_mmio_write32(volatile void *addr, uint32_t v)
{
	vio_before_mmio_write();
	vio_raw_write32(addr, v);
}

/* One access of `width` 1, 2 or 4 bytes (device-config fields come in all three). */
static inline uint32_t vio_mmio_read(const volatile void *addr, unsigned width)
{
	return width == 1 ? vio_mmio_read8(addr) : width == 2 ? vio_mmio_read16(addr)
							       : vio_mmio_read32(addr);
}

static inline void vio_mmio_write(volatile void *addr, unsigned width, uint32_t v)
{
	if (width == 1)
		vio_mmio_write8(addr, (uint8_t)v);
	else if (width == 2)
		vio_mmio_write16(addr, (uint16_t)v);
	else
		vio_mmio_write32(addr, v);
}

/* A register `field` of the struct type `type` mapped at `base`. */
#define VIO_REG(base, type, field) \
	((volatile void *)((volatile uint8_t *)(base) + __builtin_offsetof(type, field)))

#endif
