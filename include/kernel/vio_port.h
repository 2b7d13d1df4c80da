/* The kernel's implementation of the vio port (include/vio/port.h). */
#ifndef KERNEL_VIO_PORT_H
#define KERNEL_VIO_PORT_H

#include <stdbool.h>
#include <vio/port.h>

extern const struct vio_port kernel_vio_port;
/* DMA pages handed out through the port and not yet freed (for leak checks). */
unsigned long vio_port_dma_pages(void);
/* Mask every interrupt PCI function `f` can raise: its MSI-X entries, or its INTx line (and
 * so every device sharing it). For a storm; the devices are then polled. */
struct vio_pci_dev;
void vio_port_silence(const struct vio_pci_dev *f);
/* For the storm self-test: the IDT vector PCI function `f` interrupts on (its last MSI-X
 * entry in use, or its INTx line's), and whether that source is masked now; -1 when it has
 * none (polled). */
int vio_port_irq_vector(const struct vio_pci_dev *f, bool *masked);

#endif
