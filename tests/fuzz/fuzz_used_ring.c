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
 * The driver's side, those checks and the op loop are shared with fuzz_packed_used.c
 * (fuzz_vq.h); this file is the split ring's part.
 *
 *   make build/fuzz/fuzz_used_ring && build/fuzz/fuzz_used_ring -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/spec/virtio_ring.h>

#include "fuzz_vq.h"

static uint32_t ring_flags(uint8_t cfg)
{
	return (cfg & 0x40 ? VIO_VQ_F_EVENT_IDX : 0) | (cfg & 0x80 ? VIO_VQ_F_INDIRECT : 0);
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
static unsigned held(const struct state *s, const struct req *r)
{
	const struct vring_desc *desc = ring_ptr(s->vq.desc_phys);
	const struct vring_desc *d = &desc[r->id];
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
	unsigned i = r->id;
	for (unsigned k = 0; k < n; k++) {
		check(i < s->vq.size);
		check_desc(&desc[i], r, k, k + 1 == n);
		i = desc[i].next;
	}
	return n;
}

/* The head vio_vq_add put in the avail slot; the chain is checked with the others. */
static void added(struct state *s, struct req *r, uint16_t at)
{
	const struct vring_avail *avail = ring_ptr(s->vq.avail_phys);
	r->id = avail->ring[at & (s->vq.size - 1)];
}

/* The device writes one used element, often naming a real in-flight head. */
static void op_device_used_elem(struct state *s)
{
	struct vring_used *used = ring_ptr(s->vq.used_phys);
	uint8_t pick = byte(s);
	uint32_t id = word(s);
	if (pick & 1) {
		struct req *r = &s->req[(pick >> 1) % MAX_REQS];
		id = r->live ? r->id : id % (s->vq.size + 2u);
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

static void device_write(struct state *s, unsigned op)
{
	if (op == 0)
		op_device_used_elem(s);
	else if (op == 1)
		op_device_used_idx(s);
	else
		op_device_suppress(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_vq_run(data, size);
}
