/* The kernel's implementation of the vio port (include/vio/port.h). */
#ifndef KERNEL_VIO_PORT_H
#define KERNEL_VIO_PORT_H

#include <vio/port.h>

extern const struct vio_port kernel_vio_port;
/* DMA pages handed out through the port and not yet freed (for leak checks). */
unsigned long vio_port_dma_pages(void);

#endif
