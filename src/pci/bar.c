/*
 * Base Address Registers (PCI 3.0 6.2.5.1): where a function's registers sit in memory or
 * I/O space, and how large each window is.
 *
 * Bit 0 of a BAR says I/O (1) or memory (0); a memory BAR's bits 2:1 say 32 or 64 bits (a
 * 64-bit BAR takes the next slot for its upper half) and bit 3 prefetchable. The size is not
 * stored anywhere: writing all ones and reading back leaves the address bits the function
 * decodes stuck at zero, and the lowest bit that stuck at one is the size.
 *
 * The function reports these values, so they are untrusted: a range is mapped only when it
 * lies wholly inside an implemented memory BAR.
 */
#include <stddef.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>

#define HDR(field) offsetof(struct pci_header_type0, field)
#define COMMON(field) offsetof(struct pci_header_common, field)

/* Size from a BAR sizing read: the lowest address bit that stuck at one (as Linux does). */
static uint64_t size_from_mask(uint64_t mask)
{
	return mask & ~(mask - 1);
}

/*
 * Size one BAR slot: write all ones, read what the function lets stick, put the address
 * back. The caller has disabled decoding, so the function never answers at the bogus
 * address in between. Returns how many slots the BAR used (2 for a 64-bit one).
 */
static unsigned size_bar(struct vio_pci_dev *dev, unsigned i, unsigned nbars)
{
	uint16_t off = (uint16_t)(HDR(bar) + 4 * i);
	uint32_t orig = vio_pci_read32(dev, off);
	struct vio_pci_bar *bar = &dev->bars[i];

	*bar = (struct vio_pci_bar){0};
	vio_pci_write32(dev, off, 0xffffffffu);
	uint32_t probe = vio_pci_read32(dev, off);
	vio_pci_write32(dev, off, orig);

	if (probe == 0 || probe == 0xffffffffu)
		return 1; /* not implemented, or the function vanished */
	if (orig & PCI_BAR_IO) {
		/* I/O BARs decode 16 bits on x86; the upper half may read back 0. */
		uint32_t mask = (probe & PCI_BAR_IO_MASK) | 0xffff0000u;
		bar->is_io = true;
		bar->phys = orig & PCI_BAR_IO_MASK & 0xffffu;
		bar->size = size_from_mask(mask & 0xffffu);
		return 1;
	}
	uint64_t mask = probe & PCI_BAR_MEM_MASK;
	uint64_t phys = orig & PCI_BAR_MEM_MASK;
	unsigned used = 1;
	if ((orig & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64) {
		if (i + 1 >= nbars)
			return 1; /* a 64-bit BAR cannot start in the last slot */
		uint16_t hi_off = (uint16_t)(off + 4);
		uint32_t hi_orig = vio_pci_read32(dev, hi_off);
		vio_pci_write32(dev, hi_off, 0xffffffffu);
		uint32_t hi_probe = vio_pci_read32(dev, hi_off);
		vio_pci_write32(dev, hi_off, hi_orig);
		mask |= (uint64_t)hi_probe << 32;
		phys |= (uint64_t)hi_orig << 32;
		bar->is64 = true;
		used = 2;
	}
	bar->prefetch = (orig & PCI_BAR_MEM_PREFETCH) != 0;
	bar->phys = phys;
	bar->size = size_from_mask(mask);
	return used;
}

void vio_pci_read_bars(struct vio_pci_dev *dev)
{
	unsigned nbars = dev->header_type == PCI_HEADER_TYPE_NORMAL   ? 6
			 : dev->header_type == PCI_HEADER_TYPE_BRIDGE ? 2
								      : 0;

	for (unsigned i = 0; i < VIO_PCI_MAX_BARS; i++)
		dev->bars[i] = (struct vio_pci_bar){0};
	if (!nbars)
		return;
	uint16_t cmd = vio_pci_read16(dev, COMMON(command));
	vio_pci_write16(dev, COMMON(command),
			(uint16_t)(cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY)));
	for (unsigned i = 0; i < nbars;)
		i += size_bar(dev, i, nbars);
	vio_pci_write16(dev, COMMON(command), cmd);
}

bool vio_pci_bar_contains(const struct vio_pci_dev *dev, unsigned bar, uint64_t offset,
			  uint64_t len)
{
	if (bar >= VIO_PCI_MAX_BARS)
		return false;
	const struct vio_pci_bar *b = &dev->bars[bar];
	return !b->is_io && b->size != 0 && offset <= b->size && len <= b->size - offset;
}

/* The CPU address of bus address `addr`, through the memory window that holds it. */
static uint64_t cpu_address(const struct vio_pci_bus *bus, uint64_t addr)
{
	const struct vio_pci_window *w[] = {&bus->windows.mem32, &bus->windows.mem64};

	for (unsigned i = 0; i < 2; i++)
		if (w[i]->size && addr - w[i]->base < w[i]->size)
			return addr + w[i]->cpu_offset;
	return addr;
}

volatile void *vio_pci_map_bar(const struct vio_pci_dev *dev, unsigned bar, uint64_t offset,
			       uint64_t len)
{
	const struct vio_port *port = dev->bus->port;

	if (!port->map_mmio || !vio_pci_bar_contains(dev, bar, offset, len))
		return NULL;
	return port->map_mmio(port->ctx, cpu_address(dev->bus, dev->bars[bar].phys + offset),
			      (size_t)len);
}
