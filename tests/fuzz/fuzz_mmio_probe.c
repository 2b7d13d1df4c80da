/*
 * libFuzzer target: a virtio-mmio device (4.2) whose registers come from the fuzz input, fed
 * to the probe, the bring-up sequence, queue setup, interrupts, polling and teardown.
 *
 * The register window is plain memory (tests/host/fake_virtio_dev.h's struct fake_mmio): what
 * the driver writes stays, what the fuzzer writes is what the driver reads next. Input:
 *
 *   byte 0     bit 0: a valid magic; bit 1: version 1 (else 2); bit 2: a reset that never
 *              completes; bit 3: an interrupt line; bit 4: the port has no private allocator;
 *              bits 5-7: the window length, 0x100 + 32 * n bytes
 *   bytes 1-   the first 0x100 bytes of the window (registers and device config)
 *   the rest   operations, one byte each with its arguments: the driver's calls, and the
 *              device rewriting any register or any byte of a queue's used ring.
 *
 * Nothing may crash, read outside what was mapped or allocated, or leak (LeakSanitizer runs
 * at exit); a cookie that comes back must be one that was posted, once; a dead device answers
 * VIO_EDEAD and keeps its memory, which the harness then frees itself.
 *
 *   make build/fuzz/fuzz_mmio_probe && build/fuzz/fuzz_mmio_probe -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vio/err.h>
#include <vio/spec/virtio_config.h>
#include <vio/spec/virtio_mmio.h>
#include <vio/spec/virtio_ring.h>
#include <vio/transport.h>
#include <vio/virtio.h>

#include "fake_port.h"
#include "fake_virtio_dev.h"
#include "fuzz_input.h"

#define NVQS 4
#define LINE 9
#define REQS 8

struct state {
	struct fake_port fp;
	struct fake_mmio mmio;
	struct vio_dev dev;
	struct vio_vq vqs[NVQS];
	bool stuck;		/* the device ignores resets */
	bool live[NVQS][REQS];	/* requests posted on each queue, by cookie */
	uint8_t buf[NVQS][REQS][32];
	const uint8_t *p, *end;
};

static struct state st;

FUZZ_INPUT_READERS(struct state)

/* What the library kept, on purpose, for a device that did not reset: the harness frees it. */
static void free_kept_dma(struct fake_port *fp)
{
	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++)
		if (fp->dma[i].p)
			fp->port.dma_free(fp->port.ctx, fp->dma[i].p, fp->dma[i].bytes);
}

#define REG(field) offsetof(struct virtio_mmio_regs, field)

/* While the library waits (the reset), a stuck device keeps its status. */
static void device_runs(void *arg)
{
	struct state *s = arg;
	if (s->stuck)
		fake_mmio_set(&s->mmio, REG(status), VIRTIO_CONFIG_S_DRIVER);
}

/* Time runs fast, so that a reset that never completes gives up after a few reads. */
static void fast_delay(void *ctx, uint32_t us)
{
	struct fake_port *fp = ctx;
	(void)us;
	fp->now += 100000000ull;
	device_runs(fp->on_wait_arg);
}

static void op_add(struct state *s)
{
	unsigned q = byte(s) % NVQS, r = byte(s) % REQS;
	if (s->live[q][r] || !s->vqs[q].size || !s->dev.vqs)
		return;
	struct vio_sg sg[2] = {{s->buf[q][r], 16}, {s->buf[q][r] + 16, 16}};
	unsigned n_out = byte(s) % 3;
	int err = vio_vq_add(&s->vqs[q], sg, n_out, 2 - n_out, &s->live[q][r]);
	if (err == 0)
		s->live[q][r] = true;
	else /* two segments do not fit a ring of one */
		check(err == VIO_ENOSPC || err == VIO_EIO ||
		      (err == VIO_EINVAL && s->vqs[q].size < 2));
	vio_vq_kick(&s->vqs[q]);
}

static void take_cookie(struct state *s, unsigned q, void *cookie)
{
	uintptr_t c = (uintptr_t)cookie, base = (uintptr_t)s->live[q];
	check(c >= base && c < base + REQS * sizeof(bool));
	bool *live = cookie;
	check(*live);
	*live = false;
}

static void op_get(struct state *s)
{
	unsigned q = byte(s) % NVQS;
	struct vio_vq_used u;
	if (!s->vqs[q].size || !s->dev.vqs)
		return;
	int err = vio_vq_get_used(&s->vqs[q], &u);
	if (err == 0)
		take_cookie(s, q, u.cookie);
	else
		check(err == VIO_EAGAIN || err == VIO_EIO);
}

/* The device writes its side of queue q's used ring: the index or one element. */
static void op_device_used(struct state *s)
{
	unsigned q = byte(s) % NVQS;
	struct vio_vq *vq = &s->vqs[q];
	if (!vq->size || !vq->used_phys)
		return;
	struct vring_used *used = (void *)(uintptr_t)vq->used_phys;
	uint8_t how = byte(s);
	if (how & 1) {
		used->idx = (uint16_t)(used->idx + 1 + (how >> 1) % 3);
	} else {
		struct vring_used_elem *e = &used->ring[byte(s) % vq->size];
		e->id = how & 2 ? byte(s) % (vq->size + 1u) : word(s);
		e->len = word(s);
	}
}

static void op_setup_vq(struct state *s)
{
	unsigned q = byte(s) % NVQS;
	struct vio_vq_opts opts = {.max_size = (uint16_t)(1u << (byte(s) % 9)),
				   .indirect_tables = byte(s) % 20};
	if (byte(s) & 1)
		vio_dev_setup_vq_opts(&s->dev, (uint16_t)q, &opts, NULL, NULL);
	else
		vio_dev_setup_vq(&s->dev, (uint16_t)q, opts.max_size, NULL, NULL);
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
	case 2:
		op_setup_vq(s);
		break;
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
	case 6: /* the device rewrites a register (or config word) */
		off = (byte(s) % (sizeof(s->mmio.regs) / 4)) * 4;
		fake_mmio_set(&s->mmio, off, word(s));
		break;
	case 7:
		fake_port_fire_line(&s->fp, LINE);
		break;
	case 8:
		vio_dev_ack_interrupt(&s->dev);
		break;
	case 9:
		s->fp.now += byte(s) * 1000000ull;
		err = vio_dev_poll(&s->dev);
		check(vio_dev_is_dead(&s->dev) ? err == VIO_EDEAD : err != VIO_EDEAD);
		break;
	case 10:
		vio_dev_on_timeout(&s->dev);
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
		s->stuck = byte(s) & 1;
		break;
	case 15:
		err = byte(s) & 1 ? vio_dev_teardown(&s->dev) : vio_dev_abort(&s->dev);
		if (err == 0)
			memset(s->live, 0, sizeof(s->live)); /* posted cookies are forgotten */
		break;
	}
	if (vio_dev_is_dead(&s->dev)) {
		check(vio_dev_check(&s->dev) == VIO_EDEAD);
		check(vio_dev_reset(&s->dev) == VIO_EDEAD);
	}
}

/* Tear down; a dead device's rings and tables were kept on purpose: the harness frees them. */
static void give_back(struct state *s)
{
	bool dead = vio_dev_is_dead(&s->dev);
	int err = vio_dev_teardown(&s->dev);
	check(dead ? err == VIO_EDEAD : err == 0 || err == VIO_EDEAD);
	check(s->fp.priv_live_allocs == 0);
	if (vio_dev_is_dead(&s->dev))
		free_kept_dma(&s->fp);
	check(s->fp.dma_live_allocs == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state *s = &st;

	if (size < 1)
		return 0;
	memset(s, 0, sizeof(*s));
	uint8_t cfg = data[0];
	size_t regs = size - 1 < 0x100 ? size - 1 : 0x100;
	memcpy(s->mmio.regs, data + 1, regs);
	s->p = data + 1 + regs;
	s->end = data + size;

	fake_port_init(&s->fp);
	s->fp.on_wait = device_runs;
	s->fp.on_wait_arg = s;
	s->fp.port.delay_us = fast_delay;
	if (cfg & 16)
		fake_port_no_priv(&s->fp);
	if (cfg & 1)
		fake_mmio_set(&s->mmio, REG(magic_value), VIRTIO_MMIO_MAGIC);
	if (cfg & 1)
		fake_mmio_set(&s->mmio, REG(version), cfg & 2 ? 1 : 2);
	s->stuck = cfg & 4;
	size_t len = 0x100 + 32u * (cfg >> 5);

	int err = vio_mmio_probe(&s->dev, &s->fp.port, (uint64_t)(uintptr_t)&s->mmio, len,
				 cfg & 8 ? LINE : VIO_NO_IRQ);
	if (err) {
		check(err == VIO_ENODEV || err == VIO_ENOTSUP);
		check(s->fp.dma_live_allocs == 0);
		return 0;
	}
	check(s->dev.config_len == len - 0x100);
	while (s->p < s->end)
		run_op(s, byte(s));
	give_back(s);
	return 0;
}
