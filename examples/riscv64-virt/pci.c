/*
 * pci.c: the work firmware does on a PC before any kernel runs, done here because nothing
 * does it on QEMU virt: OpenSBI leaves the PCIe functions as reset left them, every BAR at
 * 0 and decoding off. For each function on the root bus we give every BAR an address in the
 * host bridge's windows (memory BARs, 64-bit ones included, in the 32-bit memory window; I/O
 * BARs in the I/O window), naturally aligned, and write the Interrupt Line register with the
 * PLIC source its INTx pin reaches through the bridge's interrupt-map, as a PC BIOS writes
 * the IOAPIC pin. Then vio enumerates the bus as it would on a PC and finds the BARs set.
 *
 * vio reads config space and sizes the BARs for us (vio_pci_enumerate); we only choose the
 * addresses. Bridges are not handled: QEMU virt puts every device on the root bus unless
 * told otherwise. Bus addresses are CPU addresses in virt's memory windows (ranges maps them
 * 1:1), which vio assumes when it maps a BAR.
 */
#include "kernel.h"
#include <stddef.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>

struct cursor {
	uint64_t mem, mem_end; /* next free bus address in the 32-bit memory window */
	uint64_t io, io_end;   /* and in the I/O window */
	int assigned;
};

static uint64_t place(uint64_t *next, uint64_t end, uint64_t size)
{
	uint64_t at = (*next + size - 1) & ~(size - 1); /* BAR sizes are powers of two */
	if (at + size > end || at + size < at)
		return 0;
	*next = at + size;
	return at;
}

/* The PLIC source INTx `pin` (1..4) of device `dev` reaches, or 0 when the map has none. */
uint32_t pci_intx_source(uint8_t dev, uint8_t pin)
{
	const struct pci_host *h = &machine.pci;
	uint32_t hi = ((uint32_t)dev << 11) & h->imask_hi, p = pin & h->imask_pin;

	for (int i = 0; i < h->nintmap; i++)
		if (h->intmap[i].hi == hi && h->intmap[i].pin == p)
			return h->intmap[i].irq;
	return 0;
}

static int assign(struct vio_pci_dev *d, void *arg)
{
	struct cursor *c = arg;

	if (d->header_type != PCI_HEADER_TYPE_NORMAL)
		return 0;
	for (int i = 0; i < VIO_PCI_MAX_BARS; i++) {
		struct vio_pci_bar *b = &d->bars[i];
		if (!b->size)
			continue;
		uint64_t at = b->is_io ? place(&c->io, c->io_end, b->size)
				       : place(&c->mem, c->mem_end, b->size);
		if (!at) {
			printf("pci: no room for BAR %d of %02x:%02x.%x (%llu bytes)\n", i,
			       d->busno, d->dev, d->fn, (unsigned long long)b->size);
			continue;
		}
		uint16_t reg = (uint16_t)(offsetof(struct pci_header_type0, bar) + 4 * i);
		vio_pci_write32(d, reg, (uint32_t)at);
		if (b->is64)
			vio_pci_write32(d, reg + 4, (uint32_t)(at >> 32));
		c->assigned++;
	}
	if (d->irq_pin)
		vio_pci_write8(d, offsetof(struct pci_header_type0, interrupt_line),
			       (uint8_t)pci_intx_source(d->dev, d->irq_pin));
	return 0;
}

/* Assign the BARs of every function on `bus`; returns how many were placed. */
int pci_assign(struct vio_pci_bus *bus)
{
	const struct pci_host *h = &machine.pci;
	/* Leave the first 4 KiB of I/O space alone, as PCs do (legacy ISA ports). */
	struct cursor c = {h->mem32.bus, h->mem32.bus + h->mem32.size, h->io.bus + 0x1000,
			   h->io.bus + h->io.size, 0};

	vio_pci_enumerate(bus, assign, &c);
	return c.assigned;
}
