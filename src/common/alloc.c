/*
 * Private memory for the library's bookkeeping: the port's own allocator when it has one,
 * else DMA memory (see include/vio/alloc.h for why the difference matters).
 */
#include <vio/alloc.h>

void *vio_priv_alloc(const struct vio_port *port, size_t bytes)
{
	uint64_t phys;

	if (port->priv_alloc)
		return port->priv_alloc(port->ctx, bytes);
	return port->dma_alloc(port->ctx, bytes, &phys);
}

void vio_priv_free(const struct vio_port *port, void *p, size_t bytes)
{
	if (!p)
		return;
	if (port->priv_free)
		port->priv_free(port->ctx, p, bytes);
	else
		port->dma_free(port->ctx, p, bytes);
}
