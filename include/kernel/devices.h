/* The kernel's view of the machine's devices: PCI functions and the virtio devices on them. */
#ifndef KERNEL_DEVICES_H
#define KERNEL_DEVICES_H

#include <vio/pci.h>
#include <vio/virtio.h>

#define MAX_PCI_FUNCTIONS 64
#define MAX_VIRTIO_DEVICES 16

struct kvirtio {
	const struct vio_pci_dev *pci; /* the function it was probed from */
	struct vio_dev dev;
	struct vio_vq vqs[1]; /* the generic bring-up uses queue 0 only */
	int err;              /* 0 when the device came up, else the vio_err that stopped it */
	volatile unsigned long irqs; /* completions signalled on queue 0 */
};

extern struct vio_pci_bus pci_bus;
extern struct vio_pci_dev pci_functions[MAX_PCI_FUNCTIONS];
extern int n_pci_functions;
extern struct kvirtio virtio_devices[MAX_VIRTIO_DEVICES];
extern int n_virtio_devices;

/* Enumerate PCI (ECAM when ACPI has an MCFG, else port I/O), probe every virtio function
 * and bring each up with the generic core; prints the device table. */
void devices_init(void);
/* The first virtio device of type `id` that came up, or NULL. */
struct kvirtio *virtio_find(uint32_t id);
void devices_print_table(void);
void lspci_print(void);

#endif
