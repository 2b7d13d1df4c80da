/*
 * The packed virtqueue (virtio 1.2 section 2.8): the driver's half, behind the same verbs as
 * the split ring (vio/virtqueue.h). virtqueue.c owns the verbs, the bookkeeping and the
 * indirect pool (virtqueue_impl.h); this file is what differs.
 *
 * One ring of `size` descriptors, written by both sides. The driver makes a buffer available
 * by writing its descriptors into the next free slots, in ring order, with the buffer's id,
 * and with AVAIL equal to its ring wrap counter and USED the inverse (2.8.1); the head's flags
 * last, after a write barrier, so the device never sees half a chain (2.8.6). The device
 * hands a buffer back by overwriting the slot at its own used position with { id, bytes
 * written } and AVAIL = USED = its wrap counter, then both sides skip forward by the number of
 * descriptors that buffer took (2.8.2, 2.8.6). Each counter starts at 1 and flips on passing
 * the end of the ring.
 *
 * Positions are kept as free-running 16-bit counts of slots (vq_avail_idx for the next slot to
 * make available, vq_last_used for the next used one). The ring size is a power of two that
 * divides 65536 an even number of times, so a count gives both the slot (count % size) and
 * the wrap counter (1 on even laps), and they never disagree when the count wraps.
 *
 * What the device writes (a used descriptor's flags, id and len; its event structure) is
 * read once and checked: the slot the driver reads must be one it made available, holding
 * either its own available descriptor or a used one for the current lap; the id must be one
 * in flight. Anything else breaks the queue. Which slots and ids a request holds is only in
 * private memory (struct vio_vq_head), never read back from the ring.
 *
 * QEMU exercises it with packed=on on any virtio-*-pci or virtio-*-device, e.g.
 *	-device virtio-blk-pci,drive=d0,packed=on,disable-legacy=on
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/assert.h>
#include <vio/barrier.h>
#include <vio/err.h>
#include <vio/log.h>
#include <vio/spec/virtio_ring.h>
#include <vio/virtqueue.h>

#include "virtqueue_impl.h"

#define EVENT_OFF_MASK 0x7fffu

/* The wrap counter at free-running slot count `idx`: 1 on the first lap, then flipping. */
static inline bool wrap_at(const struct vio_vq *vq, uint16_t idx)
{
	return (idx & vq->size) == 0;
}

static inline uint16_t slot_of(const struct vio_vq *vq, uint16_t idx)
{
	return (uint16_t)(idx & (vq->size - 1u));
}

/* AVAIL and USED for a descriptor made available at count idx (2.8.1). */
static inline uint16_t avail_flags(const struct vio_vq *vq, uint16_t idx)
{
	return wrap_at(vq, idx) ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
}

/* The event suppression offset/wrap naming the slot at count idx (2.8.14). */
static inline uint16_t off_wrap_at(const struct vio_vq *vq, uint16_t idx)
{
	return (uint16_t)(slot_of(vq, idx) | (wrap_at(vq, idx) ? VRING_PACKED_EVENT_WRAP : 0));
}

/* Descriptors made available and not yet passed by the used position. */
static inline uint16_t slots_posted(const struct vio_vq *vq)
{
	return (uint16_t)(vq->size - vq->vq_num_free);
}

void vq_packed_areas(uint32_t size, uint32_t len[3], uint32_t align[3])
{
	len[0] = vring_packed_desc_bytes(size);
	len[1] = len[2] = sizeof(struct vring_packed_desc_event);
	align[0] = VRING_PACKED_DESC_ALIGN;
	align[1] = align[2] = VRING_PACKED_EVENT_ALIGN;
}

void vq_packed_init(struct vio_vq *vq, void *area[3])
{
	vq->vq_pdesc = area[0];
	vq->vq_driver_event = area[1];
	vq->vq_device_event = area[2];
}

static void set_driver_event_flags(struct vio_vq *vq, uint16_t flags)
{
	ring_store16(&vq->vq_driver_event->flags, flags);
}

static void fill(const struct vio_vq *vq, struct vring_packed_desc *d, const struct vio_sg *sg,
		 uint16_t id)
{
	d->addr = vq->port->virt_to_phys(vq->port->ctx, sg->addr);
	d->len = sg->len;
	d->id = id;
}

/*
 * The whole request in one table, one ring descriptor pointing at it (2.8.7): table entries
 * carry only WRITE (2.8.19); the ring descriptor only INDIRECT and the wrap bits. Returns the
 * head's flags, which the caller publishes.
 */
static uint16_t add_indirect(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out,
			     unsigned n, uint16_t id)
{
	uint16_t t;
	uint64_t table_phys;
	struct vring_packed_desc *table = vq_take_table(vq, &t, &table_phys);
	uint16_t at = vq->vq_avail_idx;

	for (unsigned k = 0; k < n; k++) {
		fill(vq, &table[k], &sg[k], 0);
		table[k].flags = k >= n_out ? VRING_DESC_F_WRITE : 0;
	}
	struct vring_packed_desc *d = &vq->vq_pdesc[slot_of(vq, at)];
	d->addr = table_phys;
	d->len = n * (uint32_t)sizeof(*d);
	d->id = id;
	vq->vq_heads[id].ndesc = 1;
	vq->vq_heads[id].table = t;
	return (uint16_t)(VRING_DESC_F_INDIRECT | avail_flags(vq, at));
}

/*
 * A chain in n consecutive slots, NEXT on all but the last (2.8.6), each with the wrap bits
 * of its own slot (the counter may flip inside the chain) and the buffer id in every one. All
 * but the head are made available here; the head's flags are returned for the caller.
 */
static uint16_t add_chain(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out, unsigned n,
			  uint16_t id)
{
	uint16_t at = vq->vq_avail_idx;
	uint16_t head_flags = 0;

	for (unsigned k = 0; k < n; k++) {
		uint16_t idx = (uint16_t)(at + k);
		struct vring_packed_desc *d = &vq->vq_pdesc[slot_of(vq, idx)];
		uint16_t flags = (uint16_t)((k + 1 < n ? VRING_DESC_F_NEXT : 0) |
					    (k >= n_out ? VRING_DESC_F_WRITE : 0) |
					    avail_flags(vq, idx));
		fill(vq, d, &sg[k], id);
		if (k == 0)
			head_flags = flags;
		else
			ring_store16(&d->flags, flags);
	}
	vq->vq_heads[id].ndesc = (uint16_t)n;
	vq->vq_heads[id].table = NO_TABLE;
	return head_flags;
}

uint16_t vq_packed_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out, unsigned n,
		       bool indirect)
{
	/* A free id: there is one whenever a slot is free (each request holds a slot and an id). */
	uint16_t id = vq->vq_free_head;
	vq->vq_free_head = vq->vq_next[id];

	uint16_t at = vq->vq_avail_idx;
	uint16_t head_flags = indirect ? add_indirect(vq, sg, n_out, n, id)
				       : add_chain(vq, sg, n_out, n, id);
	uint16_t ndesc = vq->vq_heads[id].ndesc;

	/*
	 * Write barrier: every other descriptor of the request, and the table, must be visible
	 * before the head's flags make the whole of it available (2.8.21.1.1).
	 */
	vio_wmb();
	ring_store16(&vq->vq_pdesc[slot_of(vq, at)].flags, head_flags);
	vq->vq_avail_idx = (uint16_t)(at + ndesc);
	vq->vq_num_free = (uint16_t)(vq->vq_num_free - ndesc);
	return id;
}

/*
 * Did the device ask to be notified about the slots made available since the last kick?
 * With DESC (EVENT_IDX only), its offset and wrap name one slot: notify when that slot is
 * among the new ones (2.8.10). The event is placed on our free-running count: in the lap of
 * `new_idx` when its wrap counter matches, else in the lap before; then the same window test
 * as the split ring's (vring_need_event). The device's offset indexes nothing: a nonsense
 * value only changes whether we notify.
 */
static bool device_wants(const struct vio_vq *vq, uint16_t new_idx, uint16_t old)
{
	/* The flags first: a device sets the offset before it sets DESC (2.8.14). */
	uint16_t flags = ring_load16(&vq->vq_device_event->flags) & 3u;

	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !has_flag(vq, VIO_VQ_F_EVENT_IDX))
		return true;
	uint16_t off_wrap = ring_load16(&vq->vq_device_event->off_wrap);
	uint16_t ev = (uint16_t)((new_idx & ~(vq->size - 1u)) + (off_wrap & EVENT_OFF_MASK));
	bool ev_wrap = (off_wrap & VRING_PACKED_EVENT_WRAP) != 0;
	if (ev_wrap != wrap_at(vq, new_idx))
		ev = (uint16_t)(ev - vq->size);
	return vring_need_event(ev, new_idx, old);
}

bool vq_packed_kick_prepare(struct vio_vq *vq)
{
	uint16_t old = vq->vq_avail_published;
	uint16_t new_idx = vq->vq_avail_idx;

	if (vq->vq_broken || old == new_idx)
		return false;
	vq->vq_avail_published = new_idx;
	vq->stats.kicks++;

	/*
	 * Full barrier: the descriptors' flags must be visible before we read the device's
	 * event structure, or we may read a stale DISABLE while the device, seeing nothing new,
	 * goes to sleep (2.8.21.3.1). More new slots than the ring holds (adds and completions
	 * without a kick in between) cover every event: notify.
	 */
	vio_mb();
	bool need = (uint16_t)(new_idx - old) >= vq->size || device_wants(vq, new_idx, old);
	if (!need)
		vq->stats.suppressed++;
	return need;
}

enum slot_state { SLOT_PENDING, SLOT_USED, SLOT_BAD };

/*
 * What the slot at the used position says. While requests are posted it holds a descriptor
 * we made available in this lap: still available (AVAIL = wrap, USED = inverse) or used by the
 * device (both = wrap); any other pair fits neither. With nothing posted it holds the last
 * lap's descriptor; marked used for this lap, it is the device running ahead.
 */
static enum slot_state slot_state(const struct vio_vq *vq, uint16_t flags)
{
	bool w = wrap_at(vq, vq->vq_last_used);
	bool a = (flags & VRING_PACKED_DESC_F_AVAIL) != 0;
	bool u = (flags & VRING_PACKED_DESC_F_USED) != 0;

	if (a == w && u == w)
		return SLOT_USED;
	if (slots_posted(vq) == 0 || (a == w && u != w))
		return SLOT_PENDING;
	return SLOT_BAD;
}

static uint16_t used_slot_flags(const struct vio_vq *vq)
{
	return ring_load16(&vq->vq_pdesc[slot_of(vq, vq->vq_last_used)].flags);
}

int vq_packed_get_used(struct vio_vq *vq, struct vio_vq_used *out)
{
	uint16_t last = vq->vq_last_used;
	uint16_t slot = slot_of(vq, last);
	const struct vring_packed_desc *d = &vq->vq_pdesc[slot];

	/* Read the flags once; the read barrier below orders id and len after them. */
	uint16_t flags = ring_load16(&d->flags);
	switch (slot_state(vq, flags)) {
	case SLOT_PENDING:
		return VIO_EAGAIN;
	case SLOT_BAD:
		vq_bad_ring(vq, "descriptor %u flags 0x%x neither available nor used (wrap %u)", slot,
			    flags, wrap_at(vq, last));
		return VIO_EIO;
	case SLOT_USED:
		break;
	}
	if (slots_posted(vq) == 0) {
		vq_bad_ring(vq, "descriptor %u marked used with nothing posted", slot);
		return VIO_EIO;
	}

	/*
	 * Read barrier: the device wrote id and len before the flags that mark the descriptor
	 * used (2.8.22), so read them only after the flags.
	 */
	vio_rmb();
	uint16_t ndesc;
	uint16_t posted = slots_posted(vq);
	if (vq_take_used(vq, ring_load16(&d->id), ring_load32(&d->len), out, &ndesc))
		return VIO_EIO;

	/*
	 * Skip the slots the buffer took (2.8.6): our own count, never the device's. Every
	 * request in flight holds its slots, so this never passes the slots posted.
	 */
	VIO_ASSERT(ndesc <= posted);
	vq->vq_last_used = (uint16_t)(last + ndesc);

	/*
	 * With EVENT_IDX and callbacks on, ask for an interrupt at the next used descriptor.
	 * Full barrier: the device must see it before we next read a slot's flags, else it may
	 * mark one used, read the old event and not interrupt while we saw it still pending.
	 */
	if (has_flag(vq, VIO_VQ_F_EVENT_IDX) && vq->vq_cb_enabled) {
		ring_store16(&vq->vq_driver_event->off_wrap, off_wrap_at(vq, vq->vq_last_used));
		vio_mb();
	}
	return 0;
}

bool vq_packed_has_used(struct vio_vq *vq)
{
	/* A slot in a state that breaks a rule counts: get_used will say VIO_EIO. */
	return slot_state(vq, used_slot_flags(vq)) != SLOT_PENDING;
}

/* 2.8.10: DISABLE is valid with or without EVENT_IDX. A polled queue stays there. */
void vq_packed_disable_cb(struct vio_vq *vq)
{
	vq->vq_cb_enabled = false;
	set_driver_event_flags(vq, VRING_PACKED_EVENT_FLAG_DISABLE);
}

bool vq_packed_enable_cb(struct vio_vq *vq)
{
	if (!has_flag(vq, VIO_VQ_F_NO_INTERRUPTS)) {
		vq->vq_cb_enabled = true;
		if (has_flag(vq, VIO_VQ_F_EVENT_IDX)) {
			/* The offset first: DESC must never name a stale descriptor (2.8.14). */
			ring_store16(&vq->vq_driver_event->off_wrap,
				     off_wrap_at(vq, vq->vq_last_used));
			vio_wmb();
			set_driver_event_flags(vq, VRING_PACKED_EVENT_FLAG_DESC);
		} else {
			set_driver_event_flags(vq, VRING_PACKED_EVENT_FLAG_ENABLE);
		}
	}
	/*
	 * Full barrier: the re-arm must reach the device before we look at the used slot, or a
	 * descriptor marked used in between is seen by neither side (the note in 2.8.22).
	 */
	vio_mb();
	return vq->vq_broken || !vq_packed_has_used(vq);
}

void vq_packed_dump(const struct vio_vq *vq)
{
	const struct vio_port *port = vq->port;
	const unsigned shown = 4;

	vio_logf(port, VIO_LOG_INFO,
		 "vq%u: next avail %u wrap %u (kicked at %u) | next used %u wrap %u | driver event "
		 "flags %u off_wrap 0x%x | device event flags %u off_wrap 0x%x | tables free %u/%u",
		 vq->index, slot_of(vq, vq->vq_avail_idx), wrap_at(vq, vq->vq_avail_idx),
		 slot_of(vq, vq->vq_avail_published), slot_of(vq, vq->vq_last_used),
		 wrap_at(vq, vq->vq_last_used), ring_load16(&vq->vq_driver_event->flags),
		 ring_load16(&vq->vq_driver_event->off_wrap),
		 ring_load16(&vq->vq_device_event->flags),
		 ring_load16(&vq->vq_device_event->off_wrap), vq->vq_tables_free, vq->vq_ntables);
	for (uint32_t i = 0; i < vq->size && i < shown; i++) {
		const struct vring_packed_desc *d = &vq->vq_pdesc[i];
		vio_logf(port, VIO_LOG_INFO, "vq%u: desc[%u] addr 0x%lx len %u id %u flags 0x%x",
			 vq->index, i, (unsigned long)d->addr, ring_load32(&d->len),
			 ring_load16(&d->id), ring_load16(&d->flags));
	}
}
