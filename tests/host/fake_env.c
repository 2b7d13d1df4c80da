/* The whole-device fake for driver tests: see fake_env.h. */
#include "fake_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

static void env_on_wait(void *arg)
{
	struct fake_env *e = arg;
	fake_env_run(e);
}

void fake_env_run(struct fake_env *e)
{
	if (!e->model || e->in_model)
		return;
	e->in_model = true;
	e->model(e);
	e->in_model = false;
}

uint64_t fake_env_ring_features(void)
{
	const char *ring = getenv("VIO_TEST_RING");
	return ring && !strcmp(ring, "packed") ? 1ull << VIRTIO_F_RING_PACKED : 0;
}

struct fake_env *fake_env_new(uint32_t device_id, uint64_t features, const void *config,
			      size_t config_len, int nqueues, uint16_t qsize)
{
	/*
	 * All zero but what the inits below set up themselves (the port, the PCI segment) and
	 * the rings' packed tables (2.3 MiB of the struct), which fake_vring_attach clears as far
	 * as each ring reaches: clearing them all here was most of the cost of a fuzz input.
	 */
	_Static_assert(offsetof(struct fake_env, pci) < offsetof(struct fake_env, vd) &&
			   offsetof(struct fake_env, dev) < offsetof(struct fake_env, ring),
		       "fp and pci first, ring after the rest");
	struct fake_env *e = malloc(sizeof(*e));
	assert_non_null(e);
	memset(&e->vd, 0, offsetof(struct fake_env, ring) - offsetof(struct fake_env, vd));
	for (int i = 0; i < FAKE_VDEV_QUEUES; i++)
		memset(&e->ring[i], 0, offsetof(struct fake_vring, pk_ndesc));
	memset(&e->nrings, 0, sizeof(*e) - offsetof(struct fake_env, nrings));
	assert_true(config_len <= sizeof(e->vd.config));
	assert_true(nqueues >= 1 && nqueues <= FAKE_VDEV_QUEUES);
	fake_port_init(&e->fp);
	e->fp.on_wait = env_on_wait;
	e->fp.on_wait_arg = e;
	fake_pci_init(&e->pci, &e->fp);
	e->vd.kind = FAKE_VDEV_MODERN_ONLY;
	e->vd.device_id = device_id;
	e->vd.features = features | (1ull << VIRTIO_F_VERSION_1) | fake_env_ring_features();
	e->vd.msix_entries = (uint16_t)(nqueues + 1);
	for (int i = 0; i < nqueues; i++)
		e->vd.q[i].max = qsize;
	if (config_len)
		memcpy(e->vd.config, config, config_len);
	e->vd.config_len = (uint32_t)(config_len ? config_len : 4);
	fake_vdev_attach(&e->vd, &e->pci, 0, 4, 0);
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, NULL), 0);
	assert_int_equal(vio_pci_dev_init(&e->pdev, &e->bus, 0, 4, 0), 0);
	assert_int_equal(vio_pci_probe(&e->dev, &e->pdev), 0);
	return e;
}

void fake_env_no_irqs(struct fake_env *e)
{
	fake_port_no_irqs(&e->fp);
}

void fake_env_rings(struct fake_env *e)
{
	assert_non_null(e->dev.vqs);
	e->nrings = e->dev.nvqs;
	for (int i = 0; i < e->nrings; i++) {
		if (!e->dev.vqs[i].size)
			continue;
		/* The layout asked for is the one the core set up (VIO_TEST_RING; legacy: split). */
		assert_int_equal(vio_vq_is_packed(&e->dev.vqs[i]),
				 e->dev.modern && fake_env_ring_features() != 0);
		fake_vring_attach(&e->ring[i], &e->dev.vqs[i],
				  vio_dev_has_feature(&e->dev, VIRTIO_F_RING_EVENT_IDX));
		e->ring[i].deliver_irqs = true;
	}
}

void fake_env_set_config(struct fake_env *e, uint32_t off, const void *val, size_t len)
{
	assert_true(off + len <= sizeof(e->vd.config));
	memcpy(e->vd.config + off, val, len);
	e->vd.generation++;
	e->vd.isr |= 2;
}

void fake_env_config_irq(struct fake_env *e)
{
	if (e->dev.irq_mode == VIO_IRQ_MSIX || e->dev.irq_mode == VIO_IRQ_MSIX_SHARED) {
		/* MSI-X table entry 0 serves configuration changes (src/virtio/virtio.c). */
		fake_port_fire_msix(&e->fp, e->dev.t.pci.vectors[0].data);
	} else if (e->dev.irq_mode == VIO_IRQ_INTX) {
		fake_port_fire_intx(&e->fp);
	}
}

/* Is [p, p + bytes) one of the core's own allocations for a queue of the device? */
static bool core_memory(const struct fake_env *e, const void *p)
{
	for (uint16_t i = 0; e->dev.vqs && i < e->dev.nvqs; i++) {
		const struct vio_vq *vq = &e->dev.vqs[i];
		if (!p)
			return false;
		if (p == vq->vq_priv)
			return true;
		for (int a = 0; a < VIO_VQ_MAX_AREAS; a++)
			if (p == vq->vq_area[a])
				return true;
		for (uint16_t t = 0; vq->vq_table_pages && t < vq->vq_ntable_pages; t++)
			if (p == vq->vq_table_pages[t].virt)
				return true;
	}
	return false;
}

size_t fake_env_scribble(struct fake_env *e, uint8_t byte)
{
	size_t n = 0;

	for (int i = 0; i < e->fp.dma_high; i++) {
		struct fake_dma_region *r = &e->fp.dma[i];
		if (!r->p || core_memory(e, r->p))
			continue;
		memset(r->p, byte, r->bytes);
		n += r->bytes;
	}
	return n;
}

static uint64_t instant_v2p(void *ctx, const void *virt)
{
	struct fake_env *e = ctx; /* the fake_port is the first member */
	uint64_t phys = e->instant_v2p(ctx, virt);
	const uint8_t *p = virt;

	if (e->instant_q < 0 || e->instant_done >= e->instant_max || p < e->instant_lo ||
	    p >= e->instant_lo + e->instant_len)
		return phys;
	/* vio_vq_add is filling the descriptor at the queue's free head: that head is the one
	 * the driver is posting, and is in flight by the time it looks at the used ring. */
	struct vio_vq *vq = &e->dev.vqs[e->instant_q];
	struct fake_vring *fv = &e->ring[e->instant_q];
	fv->deliver_irqs = false;
	fake_vring_complete(fv, vq->vq_free_head, e->instant_used_len);
	e->instant_done++;
	return phys;
}

void fake_env_instant_completions(struct fake_env *e, int q, const void *lo, size_t len,
				  uint32_t used_len, unsigned max)
{
	_Static_assert(offsetof(struct fake_env, fp) == 0, "ctx is the fake_env");
	if (!e->instant_v2p) {
		e->instant_v2p = e->fp.port.virt_to_phys;
		e->fp.port.virt_to_phys = instant_v2p;
	}
	e->instant_q = q;
	e->instant_lo = lo;
	e->instant_len = len;
	e->instant_used_len = used_len;
	e->instant_max = max;
	e->instant_done = 0;
}

int fake_env_reclaim_leaks(struct fake_env *e)
{
	int n = 0;

	for (int i = 0; i < e->fp.dma_high; i++) {
		struct fake_dma_region *r = &e->fp.dma[i];
		if (!r->p)
			continue;
		e->fp.port.dma_free(e->fp.port.ctx, r->p, r->bytes);
		n++;
	}
	return n;
}

void fake_env_free(struct fake_env *e)
{
	if (e->dev.ops && e->dev.vqs)
		vio_dev_teardown(&e->dev);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_pci_free(&e->pci);
	free(e);
}
