/*
 * The two kinds of memory vio allocates (include/vio/port.h):
 *   DMA memory      rings and buffers the device reads and writes: port->dma_alloc;
 *   private memory  vio's bookkeeping, which the device must never write: port->priv_alloc,
 *                   or dma_alloc when the port has no private allocator.
 * Everything the library trusts (a cookie it will call through, an index it will use, a
 * pointer it will follow) lives in private memory; nothing read back from DMA memory is
 * trusted. Not IRQ-safe.
 */
#ifndef VIO_ALLOC_H
#define VIO_ALLOC_H

#include <stddef.h>
#include <vio/port.h>

/* `bytes` of zeroed private memory, or NULL. */
void *vio_priv_alloc(const struct vio_port *port, size_t bytes);
/* Give back one vio_priv_alloc allocation of `bytes` (NULL is ignored). */
void vio_priv_free(const struct vio_port *port, void *p, size_t bytes);

#endif
