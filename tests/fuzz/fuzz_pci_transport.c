/*
 * libFuzzer target: the PCI transports, modern (4.1.4) and legacy (4.1.4.10), against a fake
 * virtio function (tests/host/fake_virtio_dev.c) whose knobs, capability bytes and behaviour
 * come from the fuzz input: probe, feature negotiation, interrupt setup (MSI-X per queue,
 * shared, INTx, polling), queue setup, config access, interrupts, polling and teardown.
 *
 * Input:
 *   byte 0     bits 0-1: legacy-only, modern-only or transitional; bit 2: modern registers
 *              in a memory BAR that cannot be mapped (the PCI_CFG window); bit 3: the port
 *              has no interrupt hooks; bit 4: rings below 4 GiB (legacy needs them); bit 5:
 *              the device refuses FEATURES_OK; bit 6: it refuses every MSI-X vector; bit 7:
 *              probe one interface only (modern when bit 1 of byte 1, else legacy)
 *   byte 1     bits 4-7: MSI-X table entries (0-15); bits 0-3: the notify multiplier, from
 *              a list with the odd, the huge and the spec's
 *   bytes 2-9  features offered; bytes 10-25: each queue's size; byte 26: config generation
 *              bumps; byte 27: then that many (offset, value) writes into config space
 *   the rest   operations, one byte each with its arguments: the driver's calls, and the
 *              device changing its registers, status, ISR and used rings.
 *
 * Nothing may crash, read outside what was mapped or allocated, or leak; a cookie that comes
 * back must be one that was posted, once; a dead device answers VIO_EDEAD.
 *
 *   make build/fuzz/fuzz_pci_transport && build/fuzz/fuzz_pci_transport -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vio/err.h>
#include <vio/pci.h>
#include <vio/spec/virtio_config.h>
#include <vio/spec/virtio_pci.h>
#include <vio/spec/virtio_ring.h>
#include <vio/transport.h>
#include <vio/virtio.h>

#include "fake_pci.h"
#include "fake_port.h"
#include "fake_virtio_dev.h"
#include "fuzz_input.h"

#define NVQS 4
#define REQS 8
#define CAP_NOTIFY 0x60 /* where fake_virtio_dev.c puts the notify capability */

struct state {
	struct fake_port fp;
	struct fake_pci pci;
	struct fake_vdev vd;
	struct vio_pci_bus bus;
	struct vio_pci_dev pdev;
	struct vio_dev dev;
	struct vio_vq vqs[NVQS];
	bool live[NVQS][REQS];
	uint8_t buf[NVQS][REQS][32];
	const uint8_t *p, *end;
};

static struct state st;
static uint8_t scratch[1 << 16]; /* what a BAR moved by the input maps to */

FUZZ_INPUT_READERS(struct state)

/* What the library kept, on purpose, for a device that did not reset: the harness frees it. */
static void free_kept_dma(struct fake_port *fp)
{
	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++)
		if (fp->dma[i].p)
			fp->port.dma_free(fp->port.ctx, fp->dma[i].p, fp->dma[i].bytes);
}

/* The MSI-X table is real memory; the unmappable BAR stays unmapped; anything else moved. */
static volatile void *fuzz_map_mmio(void *ctx, uint64_t phys, size_t len)
{
	uint64_t table = (uint64_t)(uintptr_t)st.vd.msix_mem;
	(void)ctx;
	if (phys >= table && phys - table <= sizeof(st.vd.msix_mem) &&
	    len <= sizeof(st.vd.msix_mem) - (phys - table))
		return (volatile void *)(uintptr_t)phys;
	if (phys >= FAKE_VDEV_MEM_MODERN && phys < FAKE_VDEV_MEM_MODERN + FAKE_VDEV_BAR_SIZE)
		return NULL;
	return len <= sizeof(scratch) ? (volatile void *)scratch : NULL;
}

/* Time runs fast, so that a reset that never completes gives up after a few reads. */
static void fast_delay(void *ctx, uint32_t us)
{
	struct fake_port *fp = ctx;
	(void)us;
	fp->now += 100000000ull;
}

static void take_cookie(struct state *s, unsigned q, void *cookie)
{
	uintptr_t c = (uintptr_t)cookie, base = (uintptr_t)s->live[q];
	check(c >= base && c < base + REQS * sizeof(bool));
	bool *live = cookie;
	check(*live);
	*live = false;
}

static bool queue_up(const struct state *s, unsigned q)
{
	return s->dev.vqs == s->vqs && q < s->dev.nvqs && s->vqs[q].size;
}

static void op_add(struct state *s)
{
	unsigned q = byte(s) % NVQS, r = byte(s) % REQS;
	unsigned n_out = byte(s) % 3;
	if (!queue_up(s, q) || s->live[q][r])
		return;
	struct vio_sg sg[2] = {{s->buf[q][r], 16}, {s->buf[q][r] + 16, 16}};
	int err = vio_vq_add(&s->vqs[q], sg, n_out, 2 - n_out, &s->live[q][r]);
	if (err == 0)
		s->live[q][r] = true;
	else /* two segments do not fit a ring of one */
		check(err == VIO_ENOSPC || err == VIO_EIO ||
		      (err == VIO_EINVAL && s->vqs[q].size < 2));
	vio_vq_kick(&s->vqs[q]);
}

static void op_get(struct state *s)
{
	unsigned q = byte(s) % NVQS;
	struct vio_vq_used u;
	if (!queue_up(s, q))
		return;
	int err = vio_vq_get_used(&s->vqs[q], &u);
	if (err == 0)
		take_cookie(s, q, u.cookie);
	else
		check(err == VIO_EAGAIN || err == VIO_EIO);
}

static void op_device_used(struct state *s)
{
	unsigned q = byte(s) % NVQS;
	uint8_t how = byte(s);
	if (!queue_up(s, q))
		return;
	struct vio_vq *vq = &s->vqs[q];
	struct vring_used *used = (void *)(uintptr_t)vq->used_phys;
	if (how & 1) {
		used->idx = (uint16_t)(used->idx + 1 + (how >> 1) % 3);
	} else {
		struct vring_used_elem *e = &used->ring[byte(s) % vq->size];
		e->id = how & 2 ? byte(s) % (vq->size + 1u) : word(s);
		e->len = word(s);
	}
}

/* The device changes its own state, as real hardware may at any time. */
static void op_device(struct state *s)
{
	struct fake_vdev *vd = &s->vd;
	uint8_t what = byte(s);

	switch (what % 8) {
	case 0:
		vd->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
		break;
	case 1:
		vd->isr = byte(s);
		break;
	case 2:
		vd->q[byte(s) % FAKE_VDEV_QUEUES].max = half(s);
		break;
	case 3:
		vd->q[byte(s) % FAKE_VDEV_QUEUES].notify_off = half(s);
		break;
	case 4:
		vd->generation++;
		vd->config[byte(s) % sizeof(vd->config)] = byte(s);
		break;
	case 5:
		vd->reset_stuck = !vd->reset_stuck;
		break;
	case 6:
		vd->num_queues = half(s);
		break;
	case 7:
		vd->status = byte(s);
		break;
	}
}

static void run_op(struct state *s, uint8_t op)
{
	uint8_t b[8];
	uint32_t off;
	int err;

	switch (op % 16) {
	case 0:
		vio_dev_begin(&s->dev, (uint64_t)word(s) << 32 | word(s));
		break;
	case 1:
		vio_dev_setup_irqs(&s->dev, s->vqs, (uint16_t)(1 + byte(s) % NVQS));
		break;
	case 2: {
		unsigned q = byte(s) % NVQS;
		struct vio_vq_opts opts = {.max_size = (uint16_t)(1u << (byte(s) % 10)),
					   .indirect_tables = byte(s) % 20};
		vio_dev_setup_vq_opts(&s->dev, (uint16_t)q, &opts, NULL, NULL);
		break;
	}
	case 3:
		vio_dev_driver_ok(&s->dev);
		break;
	case 4:
		off = byte(s);
		vio_dev_config_read(&s->dev, off, b, 1u + byte(s) % 8);
		break;
	case 5:
		off = byte(s);
		memset(b, byte(s), sizeof(b));
		vio_dev_config_write(&s->dev, off, b, 1u + byte(s) % 4);
		break;
	case 6:
		op_device(s);
		break;
	case 7:
		fake_port_fire_msix(&s->fp, byte(s) % FAKE_PORT_MSIX_MAX);
		break;
	case 8:
		fake_port_fire_intx(&s->fp);
		break;
	case 9:
		vio_dev_ack_interrupt(&s->dev);
		break;
	case 10:
		s->fp.now += byte(s) * 1000000ull;
		err = vio_dev_poll(&s->dev);
		check(vio_dev_is_dead(&s->dev) ? err == VIO_EDEAD : err != VIO_EDEAD);
		break;
	case 11:
		op_add(s);
		break;
	case 12:
		op_get(s);
		break;
	case 13:
		op_device_used(s);
		break;
	case 14:
		vio_vq_notify(&s->vqs[byte(s) % NVQS]);
		break;
	case 15:
		err = byte(s) & 1 ? vio_dev_teardown(&s->dev) : vio_dev_abort(&s->dev);
		if (err == 0)
			memset(s->live, 0, sizeof(s->live)); /* posted cookies are forgotten */
		break;
	}
	if (vio_dev_is_dead(&s->dev)) {
		check(vio_dev_check(&s->dev) == VIO_EDEAD);
		check(vio_dev_setup_vq(&s->dev, 0, 0, NULL, NULL) == VIO_EDEAD);
	}
}

/* Notify multipliers: the spec's, the odd, the huge (4.1.4.4). */
static const uint32_t multipliers[16] = {
	0, 1, 2, 3, 4, 6, 8, 16, 64, 256, 4096, 1u << 20, 1u << 21, 0x80000000u, 5, 4,
};

static int probe(struct state *s, uint8_t cfg, uint8_t how)
{
	if (!(cfg & 128))
		return vio_pci_probe(&s->dev, &s->pdev);
	return how & 2 ? vio_pci_probe_modern(&s->dev, &s->pdev)
		       : vio_pci_probe_legacy(&s->dev, &s->pdev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state *s = &st;

	if (size < 28)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;
	uint8_t cfg = byte(s), how = byte(s);

	fake_port_init(&s->fp);
	s->fp.port.map_mmio = fuzz_map_mmio;
	s->fp.port.delay_us = fast_delay;
	if (cfg & 8)
		fake_port_no_irqs(&s->fp);
	if (cfg & 16)
		fake_port_low_dma(&s->fp);
	fake_pci_init(&s->pci, &s->fp);

	struct fake_vdev *vd = &s->vd;
	vd->kind = (enum fake_vdev_kind)((cfg & 3) % 3);
	vd->modern_in_mem = cfg & 4;
	vd->refuse_features_ok = cfg & 32;
	vd->reject_msix = cfg & 64;
	vd->msix_entries = how >> 4;
	vd->notify_mult = multipliers[how & 15];
	vd->device_id = VIRTIO_ID_RNG;
	vd->features = (uint64_t)word(s) << 32 | word(s);
	for (int i = 0; i < FAKE_VDEV_QUEUES; i++)
		vd->q[i].max = half(s);
	vd->gen_bump_reads = byte(s) % 4;
	uint8_t pokes = byte(s) % 16;
	fake_vdev_attach(vd, &s->pci, 0, 4, 0);
	/* The attach gives notify multiplier 0 the default: put the input's back. */
	fake_pci_w32(vd->fn, CAP_NOTIFY + offsetof(struct virtio_pci_notify_cap,
						   notify_off_multiplier),
		     multipliers[how & 15]);
	for (uint8_t i = 0; i < pokes; i++) {
		uint8_t off = byte(s);
		vd->fn->cfg[off < 4 ? off + 4 : off] = byte(s);
	}

	if (vio_pci_bus_init(&s->bus, &s->fp.port, NULL) == 0 &&
	    vio_pci_dev_init(&s->pdev, &s->bus, 0, 4, 0) == 0) {
		int err = probe(s, cfg, how);
		if (err == 0) {
			while (s->p < s->end)
				run_op(s, byte(s));
			bool dead = vio_dev_is_dead(&s->dev);
			err = vio_dev_teardown(&s->dev);
			check(dead ? err == VIO_EDEAD : err == 0 || err == VIO_EDEAD);
			check(s->fp.priv_live_allocs == 0);
			if (vio_dev_is_dead(&s->dev))
				free_kept_dma(&s->fp);
		}
	}
	check(s->fp.dma_live_allocs == 0 && s->fp.priv_live_allocs == 0);
	fake_pci_free(&s->pci);
	return 0;
}
