/*
 * What the two ring fuzzers share (fuzz_used_ring.c: split, fuzz_packed_used.c: packed): the
 * driver's side of the run, the requests and their buffers, the checks that do not depend on
 * the layout, and the op loop. A target includes this once and defines the layout's part:
 *
 *   ring_flags(cfg)       the VIO_VQ_F_* flags its queue gets from the config byte
 *   added(s, r, at)       check what vio_vq_add just wrote for r (posted at avail count `at`)
 *                         and remember how the device names it (r->id)
 *   held(s, r)            the ring descriptors r holds now, checking what must still hold
 *   device_write(s, op)   the device writes where it may: op 0 a used entry, 1 the used
 *                         index (split) or another used entry (packed), 2 its notification
 *                         suppression
 *
 * The op byte picks: add a request of 1..8 segments, kick, a device write, get a completion,
 * toggle callbacks, take an interrupt, detach. After every op: slots conserved (free + held
 * == size), a cookie handed back is one in flight with the in_len posted, and a broken queue
 * answers VIO_EIO. At the end the requests still posted are detached one by one, or (cfg bit
 * 5) left for vio_vq_destroy to reclaim, as a driver's teardown may.
 */
#ifndef FUZZ_VQ_H
#define FUZZ_VQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vio/err.h>
#include <vio/virtqueue.h>

#include "fake_port.h"
#include "fuzz_input.h"

#define MAX_REQS 64
#define MAX_SEGS 8
#define SEG_BYTES 16

struct req {
	bool live;
	uint16_t id; /* split: the head descriptor; packed: the buffer id */
	unsigned n_out, n_in;
	uint32_t in_len;
	uint8_t buf[MAX_SEGS][SEG_BYTES];
};

struct state {
	struct fake_port fp;
	struct vio_vq vq;
	struct req req[MAX_REQS];
	unsigned live;
	const uint8_t *p, *end;
};

FUZZ_INPUT_READERS(struct state)

static uint32_t ring_flags(uint8_t cfg);
static void added(struct state *s, struct req *r, uint16_t at);
static unsigned held(const struct state *s, const struct req *r);
static void device_write(struct state *s, unsigned op);

static inline void *ring_ptr(uint64_t phys)
{
	return (void *)(uintptr_t)phys; /* fake_port: physical == virtual */
}

static void check_invariants(const struct state *s)
{
	unsigned n = 0;

	for (unsigned k = 0; k < MAX_REQS; k++)
		if (s->req[k].live)
			n += held(s, &s->req[k]);
	check(n + vio_vq_num_free(&s->vq) == s->vq.size);
}

static struct req *cookie_req(struct state *s, void *cookie)
{
	uintptr_t c = (uintptr_t)cookie, base = (uintptr_t)s->req;
	check(c >= base && c < base + sizeof(s->req) && (c - base) % sizeof(s->req[0]) == 0);
	struct req *r = cookie;
	check(r->live);
	return r;
}

static void op_add(struct state *s)
{
	unsigned slot = byte(s) % MAX_REQS;
	unsigned n = 1 + byte(s) % MAX_SEGS;
	unsigned n_out = byte(s) % (n + 1);
	struct req *r = &s->req[slot];
	struct vio_sg sg[MAX_SEGS];

	if (r->live)
		return;
	for (unsigned k = 0; k < n; k++)
		sg[k] = (struct vio_sg){r->buf[k], SEG_BYTES};
	unsigned before = vio_vq_num_free(&s->vq);
	uint16_t at = s->vq.vq_avail_idx;
	int err = vio_vq_add(&s->vq, sg, n_out, n - n_out, r);
	if (err == VIO_EIO) {
		check(vio_vq_is_broken(&s->vq));
		return;
	}
	if (err == VIO_EINVAL) {
		check(n > s->vq.size);
		return;
	}
	if (err == VIO_ENOSPC) {
		check(before < n && vio_vq_num_free(&s->vq) == before);
		return;
	}
	check(err == 0);
	r->live = true;
	r->n_out = n_out;
	r->n_in = n - n_out;
	r->in_len = r->n_in * SEG_BYTES;
	added(s, r, at);
	s->live++;
}

static void op_get(struct state *s)
{
	struct vio_vq_used u;
	bool was_broken = vio_vq_is_broken(&s->vq);
	int err = vio_vq_get_used(&s->vq, &u);

	if (err == VIO_EAGAIN)
		return;
	if (err == VIO_EIO) {
		check(vio_vq_is_broken(&s->vq));
		return;
	}
	check(err == 0 && !was_broken);
	struct req *r = cookie_req(s, u.cookie);
	check(u.in_len == r->in_len);
	r->live = false;
	s->live--;
}

static void op_detach(struct state *s)
{
	void *c = vio_vq_detach_unused(&s->vq);
	if (!c) {
		check(s->live == 0);
		return;
	}
	cookie_req(s, c)->live = false;
	s->live--;
}

static void drain(struct vio_vq *vq, void *arg)
{
	struct state *s = arg;
	(void)vq;
	for (int i = 0; i < 4; i++)
		op_get(s);
}

static int fuzz_vq_run(const uint8_t *data, size_t size)
{
	static struct state st;
	struct state *s = &st;

	if (size < 1)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;
	fake_port_init(&s->fp);

	uint8_t cfg = byte(s);
	uint16_t qsize = (uint16_t)(1u << (cfg % 6)); /* 1 .. 32 */
	check(vio_vq_init(&s->vq, &s->fp.port, 0, qsize, ring_flags(cfg), NULL, NULL, NULL) == 0);
	vio_vq_set_callback(&s->vq, drain, s);

	while (s->p < s->end) {
		switch (byte(s) % 12) {
		case 0:
		case 1:
			op_add(s);
			break;
		case 2:
			vio_vq_kick(&s->vq);
			break;
		case 3:
		case 4:
			device_write(s, 0);
			break;
		case 5:
			device_write(s, 1);
			break;
		case 6:
		case 7:
			op_get(s);
			break;
		case 8:
			if (byte(s) & 1)
				vio_vq_disable_cb(&s->vq);
			else
				vio_vq_enable_cb(&s->vq);
			break;
		case 9:
			vio_vq_interrupt(&s->vq);
			break;
		case 10:
			device_write(s, 2);
			break;
		case 11:
			op_detach(s);
			break;
		}
		check_invariants(s);
		if (vio_vq_is_broken(&s->vq)) {
			struct vio_vq_used u;
			struct vio_sg sg = {s->req[0].buf[0], 1};
			check(vio_vq_get_used(&s->vq, &u) == VIO_EIO);
			check(vio_vq_add(&s->vq, &sg, 1, 0, &s->req[0]) == VIO_EIO);
		}
	}

	vio_vq_dump(&s->vq);
	if (!(cfg & 0x20)) {
		while (s->live)
			op_detach(s);
		check(vio_vq_detach_unused(&s->vq) == NULL);
		check(vio_vq_num_free(&s->vq) == qsize);
	}
	vio_vq_destroy(&s->vq);
	check(s->fp.dma_live_allocs == 0);
	return 0;
}

#endif
