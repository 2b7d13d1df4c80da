/*
 * libFuzzer target: the fuzzer plays a hostile device against the packed virtqueue (2.8).
 *
 * The first byte picks the ring size and features. Every following op byte either makes the
 * driver act (add a request of 1..8 segments, kick, get a completion, toggle callbacks, take
 * an interrupt, detach) or lets the "device" write whatever it likes where a packed device may
 * write: any descriptor of the ring (id, len, flags: often a used descriptor for the slot and
 * lap the driver reads next, naming a buffer in flight, sometimes nonsense), and its event
 * suppression structure.
 *
 * What must hold whatever the device did:
 *   - vio_vq_add writes exactly the request: each descriptor (or table entry) points at a
 *     segment the driver posted, with its length and direction, the chain in consecutive
 *     slots with the wrap bits of its own slot, the id in every one (so the device is never
 *     told to write anywhere else);
 *   - a cookie handed back is one that is in flight, returned once, with the in_len posted;
 *   - ring slots are conserved: free + held by in-flight requests == size;
 *   - after a violation the queue stays broken and add / get_used return VIO_EIO.
 * ASan and UBSan catch any access outside the ring, the tables or the bookkeeping, and the
 * library is built with VIO_DEBUG: its own VIO_ASSERTs abort the run if device input leads
 * vio to break its own bookkeeping. At the end the requests still posted are detached one by
 * one, or (cfg bit 5) left for vio_vq_destroy to reclaim.
 *
 *   make build/fuzz/fuzz_packed_used && build/fuzz/fuzz_packed_used -max_total_time=60
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
#define WRAP_BITS (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)

struct req {
	bool live;
	uint16_t id;
	unsigned n_out, n_in;
	unsigned slots; /* ring descriptors it holds */
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

static struct vring_packed_desc *slot_desc(const struct state *s, uint16_t count)
{
	struct vring_packed_desc *ring = ring_ptr(s->vq.desc_phys);
	return &ring[count & (s->vq.size - 1u)];
}

/* AVAIL = wrap, USED = its inverse, for the lap of free-running slot count `count`. */
static uint16_t avail_bits(const struct state *s, uint16_t count)
{
	return (count & s->vq.size) ? VRING_PACKED_DESC_F_USED : VRING_PACKED_DESC_F_AVAIL;
}

static uint16_t used_bits(const struct state *s, uint16_t count)
{
	return (count & s->vq.size) ? 0 : WRAP_BITS;
}

static void check_seg(const struct vring_packed_desc *d, const struct req *r, unsigned k)
{
	check(d->addr == (uint64_t)(uintptr_t)r->buf[k]);
	check(d->len == SEG_BYTES);
	check(!!(d->flags & VRING_DESC_F_WRITE) == (k >= r->n_out));
}

/* Right after vio_vq_add, before the device can touch it: the request as the device reads it. */
static void check_added(const struct state *s, struct req *r, uint16_t at)
{
	const struct vring_packed_desc *head = slot_desc(s, at);
	unsigned n = r->n_out + r->n_in;

	r->id = head->id;
	check(r->id < s->vq.size);
	if (head->flags & VRING_DESC_F_INDIRECT) {
		const struct vring_packed_desc *table = ring_ptr(head->addr);
		check((head->flags & ~WRAP_BITS) == VRING_DESC_F_INDIRECT);
		check((head->flags & WRAP_BITS) == avail_bits(s, at));
		check(head->len == n * sizeof(*head));
		for (unsigned k = 0; k < n; k++) {
			check_seg(&table[k], r, k);
			check((table[k].flags & ~VRING_DESC_F_WRITE) == 0);
		}
		r->slots = 1;
		return;
	}
	for (unsigned k = 0; k < n; k++) {
		uint16_t count = (uint16_t)(at + k);
		const struct vring_packed_desc *d = slot_desc(s, count);
		check_seg(d, r, k);
		check(d->id == r->id);
		check((d->flags & WRAP_BITS) == avail_bits(s, count));
		check(!!(d->flags & VRING_DESC_F_NEXT) == (k + 1 < n));
		check(!(d->flags & VRING_DESC_F_INDIRECT));
	}
	r->slots = n;
}

static void check_invariants(const struct state *s)
{
	unsigned held = 0;

	for (unsigned k = 0; k < MAX_REQS; k++)
		if (s->req[k].live)
			held += s->req[k].slots;
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
	check_added(s, r, at);
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

/*
 * The device writes one descriptor: mostly a used one where the driver looks next, for the
 * right lap, naming a buffer in flight, the way a device completes; otherwise any slot, any
 * id, any flags.
 */
static void op_device_desc(struct state *s)
{
	uint8_t pick = byte(s);
	uint16_t count = pick & 1 ? s->vq.vq_last_used : (uint16_t)(s->vq.vq_last_used + byte(s));
	uint16_t id = half(s);
	if (pick & 2) {
		struct req *r = &s->req[(pick >> 2) % MAX_REQS];
		id = r->live ? r->id : (uint16_t)(id % (s->vq.size + 2u));
	}
	uint16_t flags = pick & 0x80 ? half(s) : used_bits(s, count);
	struct vring_packed_desc *d = slot_desc(s, count);
	d->id = id;
	d->len = word(s);
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
}

static void op_device_event(struct state *s)
{
	struct vring_packed_desc_event *ev = ring_ptr(s->vq.used_phys);
	ev->off_wrap = half(s);
	ev->flags = byte(s);
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
	uint32_t flags = VIO_VQ_F_PACKED | VIO_VQ_F_SEPARATE_AREAS |
			 (cfg & 0x40 ? VIO_VQ_F_EVENT_IDX : 0) |
			 (cfg & 0x80 ? VIO_VQ_F_INDIRECT : 0) |
			 (cfg & 0x10 ? VIO_VQ_F_NO_INTERRUPTS : 0);
	check(vio_vq_init(&s->vq, &s->fp.port, 0, qsize, flags, NULL, NULL, NULL) == 0);
	vio_vq_set_callback(&s->vq, drain, s);

	while (s->p < s->end) {
		switch (byte(s) % 11) {
		case 0:
		case 1:
			op_add(s);
			break;
		case 2:
			vio_vq_kick(&s->vq);
			break;
		case 3:
		case 4:
		case 5:
			op_device_desc(s);
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
			if (byte(s) & 1)
				vio_vq_interrupt(&s->vq);
			else
				op_device_event(s);
			break;
		case 10:
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
