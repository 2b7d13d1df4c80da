/*
 * The port: what vio needs from this kernel (include/vio/port.h, docs/porting.md).
 * Memory is identity-mapped (arch.c), so a physical address is the pointer's value; DMA
 * memory is ordinary cacheable RAM, which QEMU's virt devices see coherently. No
 * priv_alloc: vio takes its bookkeeping from DMA pages (threat model A). No port I/O.
 */
#include <vio/port.h>

#include "kernel.h"

#define DEVICE_SPACE_END 0x40000000ull /* arch.c maps the low GiB as Device-nGnRE */

static void *dma_alloc(void *ctx, size_t bytes, uint64_t *phys)
{
	void *p = pages_alloc((bytes + PAGE_SIZE - 1) / PAGE_SIZE);
	*phys = (uint64_t)p;
	return p;
}

static void dma_free(void *ctx, void *virt, size_t bytes)
{
	pages_free(virt, (bytes + PAGE_SIZE - 1) / PAGE_SIZE);
}

static uint64_t virt_to_phys(void *ctx, const void *virt)
{
	return (uint64_t)virt;
}

static volatile void *map_mmio(void *ctx, uint64_t phys, size_t len)
{
	if (phys >= DEVICE_SPACE_END || len > DEVICE_SPACE_END - phys)
		return NULL;
	return (volatile void *)phys;
}

static uint64_t port_now_ns(void *ctx)
{
	return now_ns();
}
static void port_delay_us(void *ctx, uint32_t us)
{
	delay_us(us);
}

static void port_log(void *ctx, enum vio_log_level level, const char *line)
{
	if (level <= VIO_LOG_INFO)
		kprintf("vio: %s\n", line);
}

/* The device tree gives a GIC SPI as (0, n); vio gets the INTID, 32 + n (main.c). */
static int platform_irq_attach(void *ctx, uint32_t irq, vio_irq_handler fn, void *arg)
{
	return irq_attach(irq, fn, arg);
}

/* A PCI function's pin: vio_pci_assign wrote the GIC INTID it reaches in `line` (pci.c). */
static int intx_attach(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn, uint8_t pin,
		       uint8_t line, vio_irq_handler handler, void *arg)
{
	return irq_attach(line, handler, arg);
}

/* MSI-X: one GICv2m SPI per vector (arch.c); the message is the SPI's INTID. */
static int msix_alloc(void *ctx, vio_irq_handler handler, void *arg, uint64_t *addr, uint32_t *data)
{
	return msi_alloc(handler, arg, addr, data);
}

static void msix_free(void *ctx, uint64_t addr, uint32_t data)
{
	msi_free(data);
}

struct vio_port port = {
    .dma_alloc = dma_alloc,
    .dma_free = dma_free,
    .virt_to_phys = virt_to_phys,
    .map_mmio = map_mmio,
    .now_ns = port_now_ns,
    .delay_us = port_delay_us,
    .log = port_log,
    .platform_irq_attach = platform_irq_attach,
    .intx_attach = intx_attach,
    .msix_alloc = msix_alloc,
    .msix_free = msix_free,
};
