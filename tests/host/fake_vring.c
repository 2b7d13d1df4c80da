/* The device side of a split ring, for host tests: see fake_vring.h. */
#include "fake_vring.h"

#include <stdarg.h>
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
	memset(fv, 0, sizeof(*fv));
	fv->vq = vq;
	fv->size = vq->size;
	fv->event_idx = event_idx;
	fv->desc = ptr(vq->desc_phys);
	fv->avail = ptr(vq->avail_phys);
	fv->used = ptr(vq->used_phys);
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
	return (uint16_t)(__atomic_load_n(&fv->avail->idx, __ATOMIC_ACQUIRE) - fv->last_avail);
}

static bool add_seg(struct fake_vring *fv, struct fake_req *req, const struct vring_desc *d)
{
	unsigned n = req->n_out + req->n_in;
	bool write = d->flags & VRING_DESC_F_WRITE;

	if (n >= FAKE_VRING_MAX_SEGS) {
		chain_error(fv, "head %u: chain longer than %u", req->head, FAKE_VRING_MAX_SEGS);
		return false;
	}
	if (d->len == 0) {
		chain_error(fv, "head %u: zero-length descriptor", req->head);
		return false;
	}
	/* 2.7.4.2: device-writable elements must follow every device-readable one. */
	if (!write && req->n_in) {
		chain_error(fv, "head %u: readable descriptor after a writable one", req->head);
		return false;
	}
	req->seg[n] = (struct fake_seg){d->addr, d->len, write};
	if (write) {
		req->n_in++;
		req->in_len += d->len;
	} else {
		req->n_out++;
		req->out_len += d->len;
	}
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
		if (!add_seg(fv, req, &table[i]))
			return false;
		if (!(table[i].flags & VRING_DESC_F_NEXT))
			return true;
		i = table[i].next;
	}
}

bool fake_vring_pop(struct fake_vring *fv, struct fake_req *req)
{
	if (!fake_vring_avail_pending(fv))
		return false;

	uint16_t head = __atomic_load_n(&fv->avail->ring[fv->last_avail % fv->size],
					__ATOMIC_RELAXED);
	fv->last_avail++;
	if (fv->event_idx && fv->auto_avail_event)
		__atomic_store_n(avail_event_p(fv), fv->last_avail, __ATOMIC_RELAXED);

	memset(req, 0, sizeof(*req));
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
		if (!add_seg(fv, req, d))
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

void fake_vring_push(struct fake_vring *fv, uint32_t id, uint32_t len)
{
	struct vring_used_elem *e = &fv->used->ring[fv->used_idx % fv->size];
	__atomic_store_n(&e->id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	fv->used_idx++;
}

bool fake_vring_publish(struct fake_vring *fv)
{
	uint16_t old = fv->used_published;
	uint16_t new_idx = fv->used_idx;

	/* The device's half of 2.7.8.2: elements before idx, then a barrier before the check. */
	__atomic_store_n(&fv->used->idx, new_idx, __ATOMIC_RELEASE);
	fv->used_published = new_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	bool irq;
	if (fv->event_idx)
		irq = vring_need_event(__atomic_load_n(used_event_p(fv), __ATOMIC_RELAXED), new_idx,
				       old);
	else
		irq = !(__atomic_load_n(&fv->avail->flags, __ATOMIC_RELAXED) &
			VRING_AVAIL_F_NO_INTERRUPT);
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
	fv->used_idx = idx;
	fv->used_published = idx;
	__atomic_store_n(&fv->used->idx, idx, __ATOMIC_RELEASE);
}

void fake_vring_set_no_notify(struct fake_vring *fv, bool on)
{
	__atomic_store_n(&fv->used->flags, on ? VRING_USED_F_NO_NOTIFY : 0, __ATOMIC_RELAXED);
}

void fake_vring_set_avail_event(struct fake_vring *fv, uint16_t idx)
{
	__atomic_store_n(avail_event_p(fv), idx, __ATOMIC_RELAXED);
}

uint16_t fake_vring_used_event(const struct fake_vring *fv)
{
	return __atomic_load_n(used_event_p(fv), __ATOMIC_RELAXED);
}

bool fake_vring_no_interrupt(const struct fake_vring *fv)
{
	return __atomic_load_n(&fv->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT;
}
