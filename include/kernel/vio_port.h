/* The kernel's implementation of the vio port (include/vio/port.h). */
#ifndef KERNEL_VIO_PORT_H
#define KERNEL_VIO_PORT_H

#include <stdbool.h>
#include <vio/port.h>

extern const struct vio_port kernel_vio_port;
/* DMA pages handed out through the port and not yet freed (for leak checks). */
unsigned long vio_port_dma_pages(void);
/* Mask every interrupt PCI function `f` can raise: its first `nentries` MSI-X entries, or
 * its INTx line (and so every device sharing it). For a storm; the devices are then polled.
 * silenced false unmasks them again, all but those whose vector trap.c holds cut off. */
struct vio_pci_dev;
void vio_port_set_silenced(const struct vio_pci_dev *f, uint16_t nentries, bool silenced);
/* The same for an interrupt line (a virtio-mmio device's GSI, and every device on it). */
void vio_port_set_line_silenced(uint32_t gsi, bool silenced);
/* For the storm self-test: the IDT vector PCI function `f` interrupts on (its last MSI-X
 * entry in use, or its INTx line's), and whether that source is masked now; -1 when it has
 * none (polled). */
int vio_port_irq_vector(const struct vio_pci_dev *f, bool *masked);

#endif
