/*
 * libFuzzer target: the fuzzer plays a hostile device against the split virtqueue.
 *
 * The first byte picks the ring size and features. Every following op byte either makes the
 * driver act (add a request of 1..8 segments, kick, get a completion, toggle callbacks, take
 * an interrupt, detach) or lets the "device" write whatever it likes where a device may write:
 * used elements (id, len), used->idx, used->flags and avail_event.
 *
 * After every op the harness checks what must hold whatever the device did:
 *   - a cookie handed back is one that is in flight, returned once, with the in_len posted;
 *   - every chain still in flight is intact in ring memory: each descriptor the device could
 *     follow points exactly at a buffer segment the driver posted, with its length and
 *     direction (so the device is never told to write anywhere else);
 *   - descriptors are conserved: free + held by in-flight requests == size;
 *   - after a violation the queue stays broken and add / get_used return VIO_EIO.
 * ASan and UBSan catch any access outside the ring, the tables or the bookkeeping, and the
 * library is built with VIO_DEBUG: its own VIO_ASSERTs abort the run if any device input
 * leads vio to break its own bookkeeping. At the end, the requests still posted are detached
 * one by one, or (cfg bit 5) left for vio_vq_destroy to reclaim, as a driver's teardown may.
 *
 *   make build/fuzz/fuzz_used_ring && build/fuzz/fuzz_used_ring -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vio/err.h>
#include <vio/spec/virtio_ring.h>
#include <vio/virtqueue.h>

#include "fake_port.h"
#include "fuzz_input.h"

#define MAX_REQS 64
#define MAX_SEGS 8
#define SEG_BYTES 16

struct req {
	bool live;
	uint16_t head;
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

static void *ring_ptr(uint64_t phys)
{
	return (void *)(uintptr_t)phys; /* fake_port: physical == virtual */
}

static void check_desc(const struct vring_desc *d, const struct req *r, unsigned k, bool last)
{
	bool writable = k >= r->n_out;
	check(d->addr == (uint64_t)(uintptr_t)r->buf[k]);
	check(d->len == SEG_BYTES);
	check(!!(d->flags & VRING_DESC_F_WRITE) == writable);
	check(!!(d->flags & VRING_DESC_F_NEXT) == !last);
	check(!(d->flags & VRING_DESC_F_INDIRECT));
}

/* Walk request r's chain the way a device would; returns the ring descriptors it holds. */
static unsigned check_chain(const struct state *s, const struct req *r)
{
	const struct vring_desc *desc = ring_ptr(s->vq.desc_phys);
	const struct vring_desc *d = &desc[r->head];
	unsigned n = r->n_out + r->n_in;

	if (d->flags & VRING_DESC_F_INDIRECT) {
		const struct vring_desc *table = ring_ptr(d->addr);
		check(d->len == n * sizeof(*d) && !(d->flags & VRING_DESC_F_NEXT));
		for (unsigned k = 0; k < n; k++) {
			check_desc(&table[k], r, k, k + 1 == n);
			check(k + 1 == n || table[k].next == k + 1);
		}
		return 1;
	}
	unsigned i = r->head;
	for (unsigned k = 0; k < n; k++) {
		check(i < s->vq.size);
		check_desc(&desc[i], r, k, k + 1 == n);
		i = desc[i].next;
	}
	return n;
}

static void check_invariants(const struct state *s)
{
	unsigned held = 0;

	for (unsigned k = 0; k < MAX_REQS; k++)
		if (s->req[k].live)
			held += check_chain(s, &s->req[k]);
	check(held + vio_vq_num_free(&s->vq) == s->vq.size);
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
	uint16_t avail_idx = s->vq.vq_avail_idx;
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
	const struct vring_avail *avail = ring_ptr(s->vq.avail_phys);
	r->live = true;
	r->head = avail->ring[avail_idx & (s->vq.size - 1)];
	r->n_out = n_out;
	r->n_in = n - n_out;
	r->in_len = r->n_in * SEG_BYTES;
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

/* The device writes one used element, often naming a real in-flight head. */
static void op_device_used_elem(struct state *s)
{
	struct vring_used *used = ring_ptr(s->vq.used_phys);
	uint8_t pick = byte(s);
	uint32_t id = word(s);
	if (pick & 1) {
		struct req *r = &s->req[(pick >> 1) % MAX_REQS];
		id = r->live ? r->head : id % (s->vq.size + 2u);
	}
	struct vring_used_elem *e = &used->ring[byte(s) % s->vq.size];
	e->id = id;
	e->len = word(s);
}

static void op_device_used_idx(struct state *s)
{
	struct vring_used *used = ring_ptr(s->vq.used_phys);
	uint8_t how = byte(s);
	if (how & 1)
		used->idx = (uint16_t)(used->idx + (how >> 1) % 4);
	else
		used->idx = (uint16_t)(byte(s) << 8 | byte(s));
}

static void op_device_suppress(struct state *s)
{
	struct vring_used *used = ring_ptr(s->vq.used_phys);
	used->flags = byte(s);
	*(vio_le16 *)&used->ring[s->vq.size] = (uint16_t)(byte(s) << 8 | byte(s));
}

static void drain(struct vio_vq *vq, void *arg)
{
	struct state *s = arg;
	(void)vq;
	for (int i = 0; i < 4; i++)
		op_get(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
	uint32_t flags = (cfg & 0x40 ? VIO_VQ_F_EVENT_IDX : 0) |
			 (cfg & 0x80 ? VIO_VQ_F_INDIRECT : 0);
	check(vio_vq_init(&s->vq, &s->fp.port, 0, qsize, flags, NULL, NULL, NULL) == 0);
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
			op_device_used_elem(s);
			break;
		case 5:
			op_device_used_idx(s);
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
			op_device_suppress(s);
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
