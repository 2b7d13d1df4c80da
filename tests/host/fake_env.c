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

struct fake_env *fake_env_new(uint32_t device_id, uint64_t features, const void *config,
			      size_t config_len, int nqueues, uint16_t qsize)
{
	struct fake_env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	assert_true(config_len <= sizeof(e->vd.config));
	assert_true(nqueues >= 1 && nqueues <= FAKE_VDEV_QUEUES);
	fake_port_init(&e->fp);
	e->fp.on_wait = env_on_wait;
	e->fp.on_wait_arg = e;
	fake_pci_init(&e->pci, &e->fp);
	e->vd.kind = FAKE_VDEV_MODERN_ONLY;
	e->vd.device_id = device_id;
	e->vd.features = features | (1ull << VIRTIO_F_VERSION_1);
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

void fake_env_free(struct fake_env *e)
{
	if (e->dev.ops && e->dev.vqs)
		vio_dev_teardown(&e->dev);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_pci_free(&e->pci);
	free(e);
}
