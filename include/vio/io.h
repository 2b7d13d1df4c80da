/*
 * MMIO accessors: one volatile load or store of exactly the named width, so the compiler can
 * neither merge, split, reorder nor drop a device register access. Each store and load is
 * also a compiler barrier ("memory" clobber), so ordinary memory writes the device must see
 * (ring contents) are emitted before a register write that tells the device to look. On
 * x86, uncached MMIO is strongly ordered and needs no fence instructions.
 *
 * Virtio and PCI registers are little-endian; vio targets little-endian machines.
 */
#ifndef VIO_IO_H
#define VIO_IO_H

#include <stdint.h>

#define VIO_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

static inline uint8_t vio_mmio_read8(const volatile void *addr)
{
	uint8_t v = *(const volatile uint8_t *)addr;
	VIO_COMPILER_BARRIER();
	return v;
}

static inline uint16_t vio_mmio_read16(const volatile void *addr)
{
	uint16_t v = *(const volatile uint16_t *)addr;
	VIO_COMPILER_BARRIER();
	return v;
}

static inline uint32_t vio_mmio_read32(const volatile void *addr)
{
	uint32_t v = *(const volatile uint32_t *)addr;
	VIO_COMPILER_BARRIER();
	return v;
}

static inline void vio_mmio_write8(volatile void *addr, uint8_t v)
{
	VIO_COMPILER_BARRIER();
	*(volatile uint8_t *)addr = v;
}

static inline void vio_mmio_write16(volatile void *addr, uint16_t v)
{
	VIO_COMPILER_BARRIER();
	*(volatile uint16_t *)addr = v;
}

static inline void vio_mmio_write32(volatile void *addr, uint32_t v)
{
	VIO_COMPILER_BARRIER();
	*(volatile uint32_t *)addr = v;
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
