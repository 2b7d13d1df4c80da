/* The device side of a split or packed ring, for host tests: see fake_vring.h. */
#include "fake_vring.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void *ptr(uint64_t phys)
{
	return (void *)(uintptr_t)phys;
}

static void chain_error(struct fake_vring *fv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fv->last_error, sizeof(fv->last_error), fmt, ap);
	va_end(ap);
	fv->chain_errors++;
}

void fake_vring_attach(struct fake_vring *fv, struct vio_vq *vq, bool event_idx)
{
	/* Everything before the packed tables; of those, the ids this ring can name (see the
	 * header): pk_pending is written before it is read. */
	memset(fv, 0, offsetof(struct fake_vring, pk_ndesc));
	fv->vq = vq;
	fv->size = vq->size;
	fv->event_idx = event_idx;
	fv->packed = vio_vq_is_packed(vq);
	if (fv->packed) {
		/* 2.8: the three addresses are the ring and the two event structures. */
		assert(vq->size <= FAKE_VRING_PACKED_MAX);
		memset(fv->pk_ndesc, 0, vq->size * sizeof(fv->pk_ndesc[0]));
		fv->pdesc = ptr(vq->desc_phys);
		fv->driver_event = ptr(vq->avail_phys);
		fv->device_event = ptr(vq->used_phys);
		return;
	}
	fv->desc = ptr(vq->desc_phys);
	fv->avail = ptr(vq->avail_phys);
	fv->used = ptr(vq->used_phys);
}

/* --- packed (2.8) ---------------------------------------------------------------------- */

static bool pk_wrap(const struct fake_vring *fv, uint16_t idx)
{
	return (idx & fv->size) == 0;
}

static uint16_t pk_slot(const struct fake_vring *fv, uint16_t idx)
{
	return (uint16_t)(idx & (fv->size - 1u));
}

static uint16_t pk_flags(const struct fake_vring *fv, uint16_t idx)
{
	return __atomic_load_n(&fv->pdesc[pk_slot(fv, idx)].flags, __ATOMIC_ACQUIRE);
}

/* 2.8.1: available for the lap of idx: AVAIL = wrap, USED = its inverse. */
static bool pk_is_avail(const struct fake_vring *fv, uint16_t idx)
{
	uint16_t f = pk_flags(fv, idx);
	bool w = pk_wrap(fv, idx);
	return !!(f & VRING_PACKED_DESC_F_AVAIL) == w && !!(f & VRING_PACKED_DESC_F_USED) != w;
}

uint16_t fake_vring_packed_used_flags(const struct fake_vring *fv, uint16_t idx)
{
	return pk_wrap(fv, idx) ? (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED) : 0;
}

/* Buffers made available from count idx on, chains walked by NEXT, at most a ring's worth. */
static unsigned pk_pending_buffers(const struct fake_vring *fv)
{
	unsigned n = 0;
	uint16_t idx = fv->last_avail;
	for (unsigned steps = 0; steps < fv->size && pk_is_avail(fv, idx); steps++) {
		bool more = pk_flags(fv, idx) & VRING_DESC_F_NEXT;
		idx++;
		if (!more)
			n++;
	}
	return n;
}

/* The device event structure naming the slot at count idx (2.8.14). */
static uint16_t pk_off_wrap(const struct fake_vring *fv, uint16_t idx)
{
	return (uint16_t)(pk_slot(fv, idx) | (pk_wrap(fv, idx) ? VRING_PACKED_EVENT_WRAP : 0));
}

void fake_vring_notify(struct vio_vq *vq, void *arg)
{
	struct fake_vring *fv = arg;
	(void)vq;
	fv->notifications++;
}

static uint16_t *avail_event_p(const struct fake_vring *fv)
{
	return (uint16_t *)&fv->used->ring[fv->size];
}

static uint16_t *used_event_p(const struct fake_vring *fv)
{
	return &fv->avail->ring[fv->size];
}

unsigned fake_vring_avail_pending(const struct fake_vring *fv)
{
	if (fv->packed)
		return pk_pending_buffers(fv);
	return (uint16_t)(__atomic_load_n(&fv->avail->idx, __ATOMIC_ACQUIRE) - fv->last_avail);
}

/* A request starts empty; its segments are written as the chain is walked (8 KiB of them:
 * the first n_out + n_in are the request's, the rest are left as they are). */
static void req_clear(struct fake_req *req)
{
	req->head = 0;
	req->indirect = false;
	req->n_out = req->n_in = 0;
	req->out_len = req->in_len = 0;
}

static bool add_seg(struct fake_vring *fv, struct fake_req *req, uint64_t addr, uint32_t len,
		    bool write)
{
	unsigned n = req->n_out + req->n_in;

	if (n >= FAKE_VRING_MAX_SEGS) {
		chain_error(fv, "head %u: chain longer than %u", req->head, FAKE_VRING_MAX_SEGS);
		return false;
	}
	if (len == 0) {
		chain_error(fv, "head %u: zero-length descriptor", req->head);
		return false;
	}
	/* 2.7.4.2: device-writable elements must follow every device-readable one. */
	if (!write && req->n_in) {
		chain_error(fv, "head %u: readable descriptor after a writable one", req->head);
		return false;
	}
	req->seg[n] = (struct fake_seg){addr, len, write};
	if (write) {
		req->n_in++;
		req->in_len += len;
	} else {
		req->n_out++;
		req->out_len += len;
	}
	return true;
}

static bool add_desc(struct fake_vring *fv, struct fake_req *req, const struct vring_desc *d)
{
	return add_seg(fv, req, d->addr, d->len, d->flags & VRING_DESC_F_WRITE);
}

/* 2.8.7, 2.8.19: a packed indirect table: entries in order, only WRITE among their flags. */
static bool pk_walk_indirect(struct fake_vring *fv, struct fake_req *req,
			     const struct vring_packed_desc *d)
{
	if (d->len == 0 || d->len % sizeof(struct vring_packed_desc)) {
		chain_error(fv, "id %u: indirect table len %u", req->head, d->len);
		return false;
	}
	const struct vring_packed_desc *table = ptr(d->addr);
	req->indirect = true;
	for (unsigned i = 0; i < d->len / sizeof(*table); i++) {
		if (table[i].flags & ~VRING_DESC_F_WRITE) {
			chain_error(fv, "id %u: indirect entry %u has flags 0x%x", req->head, i,
				    table[i].flags);
			return false;
		}
		if (!add_seg(fv, req, table[i].addr, table[i].len,
			     table[i].flags & VRING_DESC_F_WRITE))
			return false;
	}
	return true;
}

/* Pop the buffer at last_avail: its chain in consecutive slots, or one indirect descriptor. */
static bool pk_pop(struct fake_vring *fv, struct fake_req *req)
{
	uint16_t start = fv->last_avail, idx = start;

	if (!pk_is_avail(fv, start))
		return false;
	req_clear(req);
	for (;;) {
		if ((uint16_t)(idx - start) >= fv->size || !pk_is_avail(fv, idx)) {
			chain_error(fv, "chain at %u runs into a slot not available", start);
			return false;
		}
		const struct vring_packed_desc *d = &fv->pdesc[pk_slot(fv, idx)];
		uint16_t flags = pk_flags(fv, idx);
		req->head = d->id; /* 2.8.6: the last descriptor's id names the buffer */
		idx++;
		if (flags & VRING_DESC_F_INDIRECT) {
			if (idx - start != 1 || (flags & VRING_DESC_F_NEXT)) {
				chain_error(fv, "INDIRECT not alone in its chain at %u", start);
				return false;
			}
			if (!pk_walk_indirect(fv, req, d))
				return false;
			break;
		}
		if (!add_seg(fv, req, d->addr, d->len, flags & VRING_DESC_F_WRITE))
			return false;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
	}
	if (req->head >= fv->size) {
		chain_error(fv, "buffer id %u out of range", req->head);
		return false;
	}
	fv->pk_ndesc[req->head] = (uint16_t)(idx - start);
	fv->last_avail = idx;
	if (fv->event_idx && fv->auto_avail_event)
		fake_vring_set_avail_event(fv, idx);
	return true;
}

/* 2.7.5.3.2: the device side of an indirect table. */
static bool walk_indirect(struct fake_vring *fv, struct fake_req *req, const struct vring_desc *d)
{
	if (d->flags & VRING_DESC_F_NEXT) {
		chain_error(fv, "head %u: INDIRECT together with NEXT", req->head);
		return false;
	}
	if (d->len == 0 || d->len % sizeof(struct vring_desc)) {
		chain_error(fv, "head %u: indirect table len %u", req->head, d->len);
		return false;
	}
	const struct vring_desc *table = ptr(d->addr);
	unsigned n = d->len / sizeof(struct vring_desc);
	unsigned i = 0;
	req->indirect = true;
	for (unsigned steps = 0;; steps++) {
		if (i >= n || steps >= n) {
			chain_error(fv, "head %u: indirect next %u / loop in a table of %u",
				    req->head, i, n);
			return false;
		}
		if (table[i].flags & VRING_DESC_F_INDIRECT) {
			chain_error(fv, "head %u: INDIRECT inside an indirect table", req->head);
			return false;
		}
		if (!add_desc(fv, req, &table[i]))
			return false;
		if (!(table[i].flags & VRING_DESC_F_NEXT))
			return true;
		i = table[i].next;
	}
}

bool fake_vring_pop(struct fake_vring *fv, struct fake_req *req)
{
	if (fv->packed)
		return pk_pop(fv, req);
	if (!fake_vring_avail_pending(fv))
		return false;

	uint16_t head = __atomic_load_n(&fv->avail->ring[fv->last_avail % fv->size],
					__ATOMIC_RELAXED);
	fv->last_avail++;
	if (fv->event_idx && fv->auto_avail_event)
		__atomic_store_n(avail_event_p(fv), fv->last_avail, __ATOMIC_RELAXED);

	req_clear(req);
	req->head = head;
	if (head >= fv->size) {
		chain_error(fv, "avail entry %u out of range", head);
		return false;
	}
	unsigned i = head;
	for (unsigned steps = 0;; steps++) {
		if (i >= fv->size || steps >= fv->size) {
			chain_error(fv, "head %u: next %u / chain longer than the ring", head, i);
			return false;
		}
		const struct vring_desc *d = &fv->desc[i];
		if (d->flags & VRING_DESC_F_INDIRECT) {
			if (steps != 0 || req->n_out + req->n_in) {
				chain_error(fv, "head %u: INDIRECT not alone in its chain", head);
				return false;
			}
			return walk_indirect(fv, req, d);
		}
		if (!add_desc(fv, req, d))
			return false;
		if (!(d->flags & VRING_DESC_F_NEXT))
			return true;
		i = d->next;
	}
}

uint32_t fake_vring_fill(const struct fake_req *req, uint8_t seed)
{
	uint32_t written = 0;

	for (unsigned k = 0; k < req->n_out + req->n_in; k++) {
		if (!req->seg[k].write)
			continue;
		uint8_t *p = ptr(req->seg[k].addr);
		for (uint32_t b = 0; b < req->seg[k].len; b++)
			p[b] = (uint8_t)(seed + written++);
	}
	return written;
}

uint32_t fake_vring_gather(const struct fake_req *req, void *buf, uint32_t max)
{
	uint32_t got = 0;

	for (unsigned k = 0; k < req->n_out + req->n_in && got < max; k++) {
		if (req->seg[k].write)
			continue;
		uint32_t n = req->seg[k].len < max - got ? req->seg[k].len : max - got;
		memcpy((uint8_t *)buf + got, ptr(req->seg[k].addr), n);
		got += n;
	}
	return got;
}

/*
 * 2.8.6: the used descriptor goes in the next used slot; both sides then skip the slots the
 * buffer took. Its flags wait for publish, so a batch appears at once, as with split.
 */
static void pk_push(struct fake_vring *fv, uint32_t id, uint32_t len)
{
	struct vring_packed_desc *d = &fv->pdesc[pk_slot(fv, fv->used_idx)];
	d->id = (uint16_t)id;
	d->len = len;
	assert(fv->pk_npending < FAKE_VRING_PACKED_MAX);
	fv->pk_pending[fv->pk_npending++] = fv->used_idx;
	uint16_t n = id < fv->size && fv->pk_ndesc[id] ? fv->pk_ndesc[id] : 1;
	fv->used_idx = (uint16_t)(fv->used_idx + n);
}

/* 2.8.10: the driver's event structure: DISABLE, ENABLE, or DESC at one slot. */
static bool pk_wants_irq(const struct fake_vring *fv, uint16_t new_idx, uint16_t old)
{
	uint16_t flags = __atomic_load_n(&fv->driver_event->flags, __ATOMIC_RELAXED) & 3u;
	uint16_t off_wrap = __atomic_load_n(&fv->driver_event->off_wrap, __ATOMIC_RELAXED);

	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !fv->event_idx)
		return true;
	uint16_t ev = (uint16_t)((new_idx & ~(fv->size - 1u)) + (off_wrap & 0x7fffu));
	if (!!(off_wrap & VRING_PACKED_EVENT_WRAP) != pk_wrap(fv, new_idx))
		ev = (uint16_t)(ev - fv->size);
	return vring_need_event(ev, new_idx, old);
}

void fake_vring_packed_write(struct fake_vring *fv, uint16_t idx, uint16_t id, uint32_t len,
			     uint16_t flags)
{
	struct vring_packed_desc *d = &fv->pdesc[pk_slot(fv, idx)];
	d->id = id;
	d->len = len;
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
}

void fake_vring_push(struct fake_vring *fv, uint32_t id, uint32_t len)
{
	if (fv->packed) {
		pk_push(fv, id, len);
		return;
	}
	struct vring_used_elem *e = &fv->used->ring[fv->used_idx % fv->size];
	__atomic_store_n(&e->id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	fv->used_idx++;
}

bool fake_vring_publish(struct fake_vring *fv)
{
	uint16_t old = fv->used_published;
	uint16_t new_idx = fv->used_idx;
	bool irq;

	if (fv->packed) {
		/* 2.8.22: id and len before the flags that mark each descriptor used. */
		for (unsigned k = 0; k < fv->pk_npending; k++) {
			uint16_t at = fv->pk_pending[k];
			const struct vring_packed_desc *d = &fv->pdesc[pk_slot(fv, at)];
			uint16_t flags = fake_vring_packed_used_flags(fv, at);
			if (d->len)
				flags |= VRING_DESC_F_WRITE;
			__atomic_store_n(&fv->pdesc[pk_slot(fv, at)].flags, flags,
					 __ATOMIC_RELEASE);
		}
		fv->pk_npending = 0;
		fv->used_published = new_idx;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		irq = pk_wants_irq(fv, new_idx, old);
	} else {
		/* The device's half of 2.7.8.2: elements before idx, then a barrier. */
		__atomic_store_n(&fv->used->idx, new_idx, __ATOMIC_RELEASE);
		fv->used_published = new_idx;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (fv->event_idx)
			irq = vring_need_event(__atomic_load_n(used_event_p(fv), __ATOMIC_RELAXED),
					       new_idx, old);
		else
			irq = !(__atomic_load_n(&fv->avail->flags, __ATOMIC_RELAXED) &
				VRING_AVAIL_F_NO_INTERRUPT);
	}
	if (!irq) {
		fv->irqs_suppressed++;
		return false;
	}
	fv->interrupts++;
	if (fv->deliver_irqs)
		vio_vq_interrupt(fv->vq);
	return true;
}

bool fake_vring_complete(struct fake_vring *fv, uint32_t id, uint32_t len)
{
	fake_vring_push(fv, id, len);
	return fake_vring_publish(fv);
}

void fake_vring_set_used_idx(struct fake_vring *fv, uint16_t idx)
{
	if (fv->packed) {
		/* Mark every slot up to idx used for its lap, whatever id and len it holds. */
		for (uint16_t at = fv->used_idx; (uint16_t)(idx - at) != 0 &&
						 (uint16_t)(idx - at) <= 2u * fv->size;
		     at++)
			__atomic_store_n(&fv->pdesc[pk_slot(fv, at)].flags,
					 fake_vring_packed_used_flags(fv, at), __ATOMIC_RELEASE);
		fv->used_idx = fv->used_published = idx;
		return;
	}
	fv->used_idx = idx;
	fv->used_published = idx;
	__atomic_store_n(&fv->used->idx, idx, __ATOMIC_RELEASE);
}

void fake_vring_set_no_notify(struct fake_vring *fv, bool on)
{
	if (fv->packed) {
		__atomic_store_n(&fv->device_event->flags,
				 on ? VRING_PACKED_EVENT_FLAG_DISABLE : VRING_PACKED_EVENT_FLAG_ENABLE,
				 __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&fv->used->flags, on ? VRING_USED_F_NO_NOTIFY : 0, __ATOMIC_RELAXED);
}

void fake_vring_set_avail_event(struct fake_vring *fv, uint16_t idx)
{
	if (fv->packed) {
		__atomic_store_n(&fv->device_event->off_wrap, pk_off_wrap(fv, idx),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&fv->device_event->flags, VRING_PACKED_EVENT_FLAG_DESC,
				 __ATOMIC_RELEASE);
		return;
	}
	__atomic_store_n(avail_event_p(fv), idx, __ATOMIC_RELAXED);
}

uint16_t fake_vring_used_event(const struct fake_vring *fv)
{
	if (fv->packed)
		return __atomic_load_n(&fv->driver_event->off_wrap, __ATOMIC_RELAXED);
	return __atomic_load_n(used_event_p(fv), __ATOMIC_RELAXED);
}

bool fake_vring_no_interrupt(const struct fake_vring *fv)
{
	if (fv->packed)
		return __atomic_load_n(&fv->driver_event->flags, __ATOMIC_RELAXED) ==
		       VRING_PACKED_EVENT_FLAG_DISABLE;
	return __atomic_load_n(&fv->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT;
}
