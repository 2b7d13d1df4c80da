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
 * one, or (cfg bit 5) left for vio_vq_destroy to reclaim. The driver's side, the layout-free
 * checks and the op loop are fuzz_used_ring.c's too (fuzz_vq.h).
 *
 *   make build/fuzz/fuzz_packed_used && build/fuzz/fuzz_packed_used -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vio/spec/virtio_ring.h>

#include "fuzz_vq.h"

#define WRAP_BITS (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)

/* Ring slots each request holds (1 through a table), by its place in s->req. */
static unsigned slots[MAX_REQS];

static uint32_t ring_flags(uint8_t cfg)
{
	return VIO_VQ_F_PACKED | VIO_VQ_F_SEPARATE_AREAS | (cfg & 0x40 ? VIO_VQ_F_EVENT_IDX : 0) |
	       (cfg & 0x80 ? VIO_VQ_F_INDIRECT : 0) | (cfg & 0x10 ? VIO_VQ_F_NO_INTERRUPTS : 0);
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

/*
 * Right after vio_vq_add, before the device can touch it: the request as the device reads
 * it. (The device may overwrite these slots with used descriptors later, so this is the one
 * moment to look.)
 */
static void added(struct state *s, struct req *r, uint16_t at)
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
		slots[r - s->req] = 1;
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
	slots[r - s->req] = n;
}

static unsigned held(const struct state *s, const struct req *r)
{
	return slots[r - s->req];
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

static void device_write(struct state *s, unsigned op)
{
	if (op < 2)
		op_device_desc(s);
	else
		op_device_event(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_vq_run(data, size);
}
