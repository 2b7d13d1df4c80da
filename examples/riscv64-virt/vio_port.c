/*
 * vio_port.c: how this kernel gives the vio library what include/vio/port.h asks for. It is
 * the only file that knows both sides.
 *
 *   DMA memory   runs of pages from kalloc_pages. Paging is off (satp = 0), so a buffer's
 *                physical address is its pointer. QEMU's devices see the hart's memory
 *                coherently; a RISC-V SoC whose DMA is not coherent would need cache
 *                maintenance (Zicbom) that this port does not do.
 *   MMIO         nothing to map: with paging off every physical address is reachable, and
 *                the platform's physical memory attributes make the device regions
 *                uncached I/O.
 *   private mem  none of its own: vio keeps its bookkeeping in DMA pages. Fine for QEMU's
 *                devices; a confidential guest would give priv_alloc unshared memory.
 *   port I/O     RISC-V has none: NULL.
 *   clock        the time CSR (timer.c).
 *   interrupts   no MSI-X (QEMU virt without an IMSIC has no MSI target), so every line
 *                is a PLIC source: a virtio-mmio device's own, full width
 *                (platform_irq_attach), or the one a PCI function's INTx pin reaches, which
 *                pci.c wrote in its 8-bit Interrupt Line register (intx_attach): virt's
 *                PCIe INTx sources 32..35 fit.
 */
#include "kernel.h"
#include <vio/err.h>
#include <vio/port.h>

#define PAGES(bytes) ((bytes) ? ((bytes) + PAGE_SIZE - 1) / PAGE_SIZE : 1)

/* A broken invariant of the library's own (built with DEBUG=1): a bug, so panic. */
void vio_assert_failed(const char *expr, const char *file, unsigned line)
{
	panic("vio assertion failed: %s (%s:%u)", expr, file, line);
}

static void *port_dma_alloc(void *ctx, size_t bytes, uint64_t *phys)
{
	(void)ctx;
	void *p = kalloc_pages(PAGES(bytes)); /* zeroed */
	if (p)
		*phys = (uint64_t)(uintptr_t)p;
	return p;
}

static void port_dma_free(void *ctx, void *virt, size_t bytes)
{
	(void)ctx;
	if (virt)
		kfree_pages(virt, PAGES(bytes));
}

static uint64_t port_virt_to_phys(void *ctx, const void *virt)
{
	(void)ctx;
	return (uint64_t)(uintptr_t)virt;
}

static volatile void *port_map_mmio(void *ctx, uint64_t phys, size_t len)
{
	(void)ctx, (void)len;
	return (volatile void *)(uintptr_t)phys;
}

static uint64_t port_now_ns(void *ctx)
{
	(void)ctx;
	return now_ns();
}

static void port_delay_us(void *ctx, uint32_t us)
{
	(void)ctx;
	delay_us(us);
}

static void port_log(void *ctx, enum vio_log_level level, const char *line)
{
	static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
	(void)ctx;
	if (level <= VIO_LOG_INFO)
		printf("vio: %s%s\n", prefix[level & 3], line);
}

static int port_intx_attach(void *ctx, uint16_t segment, uint8_t bus, uint8_t dev, uint8_t fn,
			    uint8_t pin, uint8_t line, vio_irq_handler handler, void *arg)
{
	(void)ctx, (void)segment, (void)bus, (void)dev, (void)fn, (void)pin;
	if (line == 0 || line == 0xff)
		return VIO_ENOTSUP; /* no PLIC source: the interrupt-map had none */
	return plic_attach(line, handler, arg) ? VIO_ENOSPC : 0;
}

/* A virtio-mmio device's line is a PLIC source: the core attaches it by number. */
static int port_platform_irq_attach(void *ctx, uint32_t irq, vio_irq_handler handler, void *arg)
{
	(void)ctx;
	return plic_attach(irq, handler, arg) ? VIO_ENOSPC : 0;
}

const struct vio_port kernel_vio_port = {
    .dma_alloc = port_dma_alloc,
    .dma_free = port_dma_free,
    .virt_to_phys = port_virt_to_phys,
    .map_mmio = port_map_mmio,
    .now_ns = port_now_ns,
    .delay_us = port_delay_us,
    .log = port_log,
    .intx_attach = port_intx_attach,
    .platform_irq_attach = port_platform_irq_attach,
};
