/*
 * pci.c: the work firmware does on a PC before any kernel runs, which nothing does on QEMU
 * virt: OpenSBI leaves the PCIe functions as reset left them, every BAR at 0 and decoding
 * off. We describe the host bridge as its device tree does (fdt.c read `ranges` and
 * `interrupt-map`) and vio does the rest (vio_pci_assign): every BAR of the root bus gets an
 * address in the bridge's windows, and every Interrupt Line the PLIC source its INTx pin
 * reaches, as a PC BIOS writes the IOAPIC pin. Then vio enumerates the bus as it would on a
 * PC and finds the BARs set.
 */
#include "kernel.h"
#include <vio/pci.h>

/* The PLIC source INTx pin of root-bus device `d` reaches through the interrupt-map, or 0. */
static uint8_t intx_source(void *arg, const struct vio_pci_dev *d)
{
	const struct pci_host *h = arg;
	uint32_t hi = ((uint32_t)d->dev << 11) & h->imask_hi, pin = d->irq_pin & h->imask_pin;

	for (int i = 0; i < h->nintmap; i++)
		if (h->intmap[i].hi == hi && h->intmap[i].pin == pin)
			return (uint8_t)h->intmap[i].irq; /* virt's INTx sources are 32..35 */
	return 0;
}

static struct vio_pci_window window(const struct pci_window *w)
{
	return (struct vio_pci_window){
	    .base = w->bus, .size = w->size, .cpu_offset = w->cpu - w->bus};
}

/* Assign the BARs of the root bus: how many were placed, or VIO_ENOSPC (vio logged why). */
int pci_assign(struct vio_pci_bus *bus)
{
	struct pci_host *h = &machine.pci;
	struct vio_pci_windows win = {window(&h->io), window(&h->mem32), window(&h->mem64)};

	return vio_pci_assign(bus, &win, intx_source, h);
}
