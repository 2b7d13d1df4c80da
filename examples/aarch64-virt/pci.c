/*
 * PCIe on QEMU virt with highmem=off: the ECAM host bridge, whose BARs no firmware assigned
 * (QEMU -kernel runs none), so vio assigns them (vio_pci_assign) from the windows the device
 * tree's `ranges` gives, as docs/porting.md section 3 shows. Then every virtio function is
 * probed like any PCI device.
 *
 *   ECAM      0x3f000000, 16 MiB: buses 0-15 (highmem=off; otherwise it lies above 4 GiB)
 *   I/O       bus 0..0xffff at CPU 0x3eff0000
 *   mem32     0x10000000..0x3efeffff, bus = CPU address; no 64-bit window with highmem=off
 *   INTx      interrupt-map: slot s, pin p (1-4) -> SPI 3 + (s + p - 1) % 4, INTID 35 + ...
 */
#include <vio/err.h>
#include <vio/pci.h>
#include <vio/virtio.h>

#include "kernel.h"

#define ECAM_BASE   0x3f000000ull
#define PIO_BASE    0x3eff0000ull
#define INTX_INTID0 35u

static struct vio_pci_bus bus;
static struct vio_pci_dev fns[32];

/* The GIC INTID a function's pin reaches: where the port's intx_attach finds it. */
static uint8_t intx_line(void *arg, const struct vio_pci_dev *dev)
{
	return (uint8_t)(INTX_INTID0 + (dev->dev + dev->irq_pin - 1u) % 4u);
}

int pci_find(struct vio_pci_dev **out, int max)
{
	const struct vio_pci_ecam ecam = {
	    .phys = ECAM_BASE, .segment = 0, .bus_start = 0, .bus_end = 15};
	const struct vio_pci_windows win = {
	    .io = {.base = 0, .size = 0x10000, .cpu_offset = PIO_BASE},
	    .mem32 = {.base = 0x10000000, .size = 0x2eff0000},
	};
	int err = vio_pci_bus_init(&bus, &port, &ecam);
	if (err == 0)
		err = vio_pci_assign(&bus, &win, intx_line, NULL);
	if (err < 0) {
		kprintf("pci: %s\n", vio_strerror(err));
		return err;
	}
	int n = vio_pci_enumerate_into(&bus, fns, 32), found = 0;
	for (int i = 0; i < n && i < 32 && found < max; i++)
		if (vio_pci_virtio_id(&fns[i]) >= 0)
			out[found++] = &fns[i];
	return found;
}
