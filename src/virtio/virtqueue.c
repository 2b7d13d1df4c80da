/*
 * The split virtqueue (virtio 1.2 section 2.7): the driver's half of the ring protocol.
 *
 * The driver hands a request to the device by writing a chain of descriptors (or one
 * descriptor pointing at an indirect table), putting the chain's head in the next slot of the
 * available ring, and then, after a write barrier, advancing avail->idx. The device hands it
 * back by writing { head, bytes written } into the used ring and advancing used->idx.
 *
 * Everything in ring memory can be scribbled on by the device, so the driver never reads its
 * own descriptors or available ring back. Which descriptors belong to which chain, the
 * request's cookie and how many bytes it offered to be written live in private memory
 * (vio_priv_alloc), which the device cannot reach even when it may rewrite every byte of DMA
 * memory at any moment (struct vio_vq_head, vq_next). What the device writes (used->idx, id, len,
 * avail_event, flags) is each read exactly once and checked before use: a violation breaks
 * the queue. What we keep in that private allocation we trust, and VIO_ASSERT says so where
 * it matters (include/vio/virtqueue.h tells the two apart).
 *
 * The same ring serves every transport: legacy ones get it in the legacy contiguous layout
 * (2.7.2), modern ones in three separate areas. QEMU exercises it through every device, e.g.
 * -device virtio-rng-pci,disable-legacy=on.
 *
 * This file also owns the verbs and what the packed ring (virtqueue_packed.c) shares with the
 * split one: the private bookkeeping, the free lists, the indirect pool, the argument checks
 * (virtqueue_impl.h). Each verb hands its layout-specific part to one or the other.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/alloc.h>
#include <vio/assert.h>
#include <vio/barrier.h>
#include <vio/err.h>
#include <vio/format.h>
#include <vio/log.h>
#include <vio/spec/virtio_ring.h>
#include <vio/virtqueue.h>

#include "virtqueue_impl.h"

_Static_assert(VIO_VQ_INDIRECT_SEGS >= 2 && TABLE_BYTES <= PAGE_BYTES,
	       "VIO_VQ_INDIRECT_SEGS: 2 to 256, so that an indirect table fits in a page");
_Static_assert(sizeof(struct vring_desc) == 16 && sizeof(struct vring_packed_desc) == 16,
	       "the indirect pool's tables hold either layout's descriptors");

/* used_event sits after the avail ring's last entry, avail_event after the used ring's. */
static inline vio_le16 *used_event(const struct vio_vq *vq)
{
	return &vq->vq_avail->ring[vq->size];
}

static inline vio_le16 *avail_event(const struct vio_vq *vq)
{
	return (vio_le16 *)&vq->vq_used->ring[vq->size];
}

static inline bool packed(const struct vio_vq *vq)
{
	return has_flag(vq, VIO_VQ_F_PACKED);
}

void vq_bad_ring(struct vio_vq *vq, const char *fmt, ...)
{
	char why[120];
	va_list ap;

	if (vq->vq_broken)
		return;
	va_start(ap, fmt);
	vio_vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vio_vq_break(vq, why);
	if (vq->vq_fault)
		vq->vq_fault(vq, vq->vq_fault_arg);
}

/* Where indirect table t lies: in page t / TABLES_PER_PAGE of the pool. */
static void *table_at(const struct vio_vq *vq, uint16_t t, uint64_t *phys)
{
	const struct vio_vq_table_page *pg = &vq->vq_table_pages[t / TABLES_PER_PAGE];
	uint32_t off = (uint32_t)(t % TABLES_PER_PAGE) * TABLE_BYTES;

	*phys = pg->phys + off;
	return (char *)pg->virt + off;
}

/* Free the private bookkeeping (heads, links, the table pool's list) and forget it. */
static void free_bookkeeping(struct vio_vq *vq)
{
	vio_priv_free(vq->port, vq->vq_priv, vq->vq_priv_bytes);
	vq->vq_priv = NULL;
	vq->vq_heads = NULL;
	vq->vq_next = NULL;
	vq->vq_table_free = NULL;
	vq->vq_table_pages = NULL;
	vq->vq_ntable_pages = 0;
	vq->vq_ntables = 0;
	vq->vq_tables_free = 0;
}

static void free_all(struct vio_vq *vq)
{
	const struct vio_port *port = vq->port;

	for (unsigned a = 0; a < VIO_VQ_MAX_AREAS; a++) {
		if (vq->vq_area[a])
			port->dma_free(port->ctx, vq->vq_area[a], vq->vq_area_bytes[a]);
		vq->vq_area[a] = NULL;
	}
	for (uint16_t p = 0; vq->vq_table_pages && p < vq->vq_ntable_pages; p++)
		if (vq->vq_table_pages[p].virt)
			port->dma_free(port->ctx, vq->vq_table_pages[p].virt, PAGE_BYTES);
	free_bookkeeping(vq);
	vq->vq_desc = NULL;
	vq->vq_avail = NULL;
	vq->vq_used = NULL;
	vq->vq_pdesc = NULL;
	vq->vq_driver_event = NULL;
	vq->vq_device_event = NULL;
}

/* True when a request in flight holds indirect table t. O(size): for VIO_ASSERT only. */
static bool table_held(const struct vio_vq *vq, uint16_t t)
{
	for (uint32_t i = 0; i < vq->size; i++)
		if (vq->vq_heads[i].in_flight && vq->vq_heads[i].table == t)
			return true;
	return false;
}

/*
 * A polled queue (VIO_VQ_F_NO_INTERRUPTS) never asks for used-buffer notifications: nobody
 * takes them, and a wired level-triggered line left unacknowledged stays asserted. Without
 * EVENT_IDX that is VRING_AVAIL_F_NO_INTERRUPT (2.7.7). With it, flags must stay 0 (2.7.7.1)
 * and the device interrupts when used->idx moves past used_event (2.7.10); used_event is kept
 * one behind the next entry we will consume, which used->idx, never more than a ring ahead of
 * that entry, cannot pass. get_used moves it along as entries are consumed.
 */
static void keep_interrupts_off(struct vio_vq *vq)
{
	if (has_flag(vq, VIO_VQ_F_EVENT_IDX))
		ring_store16(used_event(vq), (uint16_t)(vq->vq_last_used - 1u));
	else
		ring_store16(&vq->vq_avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
}

/* Everything free, indexes at 0: the driver side of a new queue (both layouts). */
static void init_state(struct vio_vq *vq)
{
	uint16_t size = vq->size;

	for (uint32_t i = 0; i < size; i++) {
		vq->vq_next[i] = (uint16_t)((i + 1) & (size - 1u));
		vq->vq_heads[i] = (struct vio_vq_head){.table = NO_TABLE};
	}
	for (uint16_t t = 0; t < vq->vq_ntables; t++)
		vq->vq_table_free[t] = t;
	vq->vq_tables_free = vq->vq_ntables;
	vq->vq_free_head = 0;
	vq->vq_num_free = size;
	vq->vq_in_flight = 0;
	vq->vq_avail_idx = 0;
	vq->vq_avail_published = 0;
	vq->vq_last_used = 0;
	vq->vq_detach_next = 0;
	vq->vq_broken = false;
	vq->vq_cb_enabled = !has_flag(vq, VIO_VQ_F_NO_INTERRUPTS);
	if (has_flag(vq, VIO_VQ_F_NO_INTERRUPTS) && packed(vq))
		vq_packed_disable_cb(vq); /* DISABLE, for good */
	else if (has_flag(vq, VIO_VQ_F_NO_INTERRUPTS))
		keep_interrupts_off(vq);
}

/*
 * Driver-only bookkeeping, one private allocation: heads[size], the indirect pool's page list,
 * next[size], the table free stack. It is private memory, which the device cannot write
 * (vio/alloc.h): were it beside the ring, a device could rewrite a cookie we are about to hand
 * back, or a next link.
 */
static int alloc_bookkeeping(struct vio_vq *vq)
{
	uint32_t size = vq->size;

	vq->vq_priv_bytes = size * (uint32_t)sizeof(struct vio_vq_head) +
			    vq->vq_ntable_pages * (uint32_t)sizeof(struct vio_vq_table_page) +
			    size * (uint32_t)sizeof(uint16_t) +
			    vq->vq_ntables * (uint32_t)sizeof(uint16_t);
	vq->vq_priv = vio_priv_alloc(vq->port, vq->vq_priv_bytes);
	if (!vq->vq_priv)
		return VIO_ENOMEM;
	vq->vq_heads = vq->vq_priv;
	vq->vq_table_pages = (struct vio_vq_table_page *)(vq->vq_heads + size);
	vq->vq_next = (uint16_t *)(vq->vq_table_pages + vq->vq_ntable_pages);
	vq->vq_table_free = vq->vq_next + size;
	return 0;
}

/* The split ring's areas: descriptor table, available ring, used ring (2.7). */
static void split_areas(uint32_t size, uint32_t len[3], uint32_t align[3])
{
	len[0] = vring_desc_bytes(size);
	len[1] = vring_avail_bytes(size);
	len[2] = vring_used_bytes(size);
	align[0] = VRING_DESC_ALIGN;
	align[1] = VRING_AVAIL_ALIGN;
	align[2] = VRING_USED_ALIGN;
}

/*
 * Where the ring's three areas go (2.7; the packed ring's three, 2.8, the same way). A legacy
 * transport knows one address, the queue's
 * page frame, so the areas are one allocation in the legacy layout (2.7.2: used ring on the
 * next 4096-byte boundary). A modern transport takes one address per area, and each area needs
 * only its own alignment (16, 2, 4). Then areas share an allocation while it stays within one
 * page, and an area that does not fit starts the next: no allocation is larger than a page or
 * than the largest area, the descriptor table (4 KiB for 256 entries, where the legacy layout
 * takes 10 KiB in one piece). Returns the number of allocations; sets each area's allocation
 * and offset, and each allocation's size.
 */
static unsigned plan_areas(const struct vio_vq *vq, unsigned which[3], uint32_t off[3],
			   uint32_t bytes[VIO_VQ_MAX_AREAS])
{
	const uint32_t size = vq->size;
	uint32_t len[3], align[3];

	if (packed(vq))
		vq_packed_areas(size, len, align);
	else
		split_areas(size, len, align);

	if (!has_flag(vq, VIO_VQ_F_SEPARATE_AREAS)) {
		which[0] = which[1] = which[2] = 0;
		off[0] = 0;
		off[1] = len[0];
		off[2] = vring_legacy_used_offset(size);
		bytes[0] = vring_legacy_bytes(size);
		return 1;
	}
	unsigned n = 0;
	uint32_t end = 0;
	for (unsigned i = 0; i < 3; i++) {
		uint32_t at = (end + align[i] - 1) & ~(align[i] - 1);
		if (end && at + len[i] > PAGE_BYTES) {
			bytes[n++] = end;
			at = 0;
		}
		which[i] = n;
		off[i] = at;
		end = at + len[i];
	}
	bytes[n++] = end;
	return n;
}

/*
 * The ring. dma_alloc hands back zeroed memory, which is exactly the state the device expects
 * at queue setup: split, both indexes 0, no flags, event indexes 0; packed, a zeroed
 * descriptor ring (2.8.13) and both event structures at ENABLE.
 */
static int alloc_ring(struct vio_vq *vq)
{
	const struct vio_port *port = vq->port;
	unsigned which[3];
	uint32_t off[3];
	uint64_t phys[VIO_VQ_MAX_AREAS];
	void *area[3];
	unsigned n = plan_areas(vq, which, off, vq->vq_area_bytes);

	for (unsigned a = 0; a < n; a++) {
		vq->vq_area[a] = port->dma_alloc(port->ctx, vq->vq_area_bytes[a], &phys[a]);
		if (!vq->vq_area[a])
			return VIO_ENOMEM;
	}
	for (unsigned i = 0; i < 3; i++)
		area[i] = (char *)vq->vq_area[which[i]] + off[i];
	vq->desc_phys = phys[which[0]] + off[0];
	vq->avail_phys = phys[which[1]] + off[1];
	vq->used_phys = phys[which[2]] + off[2];
	vq->ring_phys = has_flag(vq, VIO_VQ_F_SEPARATE_AREAS) ? 0 : vq->desc_phys;
	if (packed(vq)) {
		vq_packed_init(vq, area);
		return 0;
	}
	vq->vq_desc = area[0];
	vq->vq_avail = area[1];
	vq->vq_used = area[2];
	return 0;
}

/*
 * The indirect pool: device-readable tables, written by us, never read back. One page at a
 * time (TABLES_PER_PAGE tables each), so the pool never needs more than a page of contiguous
 * memory, however many tables the driver asked for.
 */
static int alloc_tables(struct vio_vq *vq)
{
	const struct vio_port *port = vq->port;

	for (uint16_t p = 0; p < vq->vq_ntable_pages; p++) {
		struct vio_vq_table_page *pg = &vq->vq_table_pages[p];
		pg->virt = port->dma_alloc(port->ctx, PAGE_BYTES, &pg->phys);
		if (!pg->virt)
			return VIO_ENOMEM;
	}
	return 0;
}

int vio_vq_init(struct vio_vq *vq, const struct vio_port *port, uint16_t index, uint16_t size,
		uint32_t flags, const struct vio_vq_opts *opts, vio_vq_notify_fn notify,
		void *notify_arg)
{
	if (!vq)
		return VIO_EINVAL;
	*vq = (struct vio_vq){.msix_vector = VIO_VQ_NO_VECTOR};
	if (!port || !port->dma_alloc || !port->dma_free || !port->virt_to_phys)
		return VIO_EINVAL;
	if (size == 0 || size > VIO_VQ_MAX_SIZE || (size & (size - 1u)) != 0)
		return VIO_EINVAL;
	/* 2.8: packed rings exist only on 1.x transports, which place each area on its own. */
	if ((flags & VIO_VQ_F_PACKED) && !(flags & VIO_VQ_F_SEPARATE_AREAS))
		return VIO_EINVAL;

	*vq = (struct vio_vq){
		.port = port,
		.index = index,
		.size = size,
		.msix_vector = VIO_VQ_NO_VECTOR,
		.vq_flags = flags & VIO_VQ_F_ALL,
		.vq_notify = notify,
		.vq_notify_arg = notify_arg,
	};
	if (has_flag(vq, VIO_VQ_F_INDIRECT)) {
		/* No more tables than requests the ring can hold. */
		uint32_t n = opts && opts->indirect_tables ? opts->indirect_tables
							   : VIO_VQ_INDIRECT_TABLES;
		vq->vq_ntables = (uint16_t)(n < size ? n : size);
		vq->vq_ntable_pages =
			(uint16_t)((vq->vq_ntables + TABLES_PER_PAGE - 1) / TABLES_PER_PAGE);
	}

	if (alloc_bookkeeping(vq)) {
		vio_logf(port, VIO_LOG_ERR, "vq%u: no memory for the queue's bookkeeping", index);
		free_all(vq);
		return VIO_ENOMEM;
	}
	if (alloc_ring(vq) || alloc_tables(vq)) {
		vio_logf(port, VIO_LOG_ERR, "vq%u: no DMA memory for a %u-entry ring", index, size);
		free_all(vq);
		return VIO_ENOMEM;
	}
	init_state(vq);
	return 0;
}

void vio_vq_destroy(struct vio_vq *vq)
{
	if (!vq || !vq->port)
		return;
	/*
	 * The device has been reset and holds nothing, so the requests still posted are only
	 * forgotten; their descriptors go back first, and then the books must balance: no head
	 * in flight, every descriptor and every indirect table free.
	 */
	if (vq->vq_heads) {
		while (vio_vq_detach_unused(vq))
			;
		VIO_ASSERT(vq->vq_in_flight == 0 && vq->vq_num_free == vq->size &&
			   vq->vq_tables_free == vq->vq_ntables);
	}
	free_all(vq);
	vq->vq_num_free = 0;
	vq->vq_in_flight = 0;
}

/* Validate a request's segments; sets *in_len to the writable total. */
static int check_segments(const struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out,
			  unsigned n_in, uint32_t *in_len)
{
	uint64_t total = 0, total_in = 0;

	/* 2.7.5.3.1: no chain may be longer than the queue, even through a table. */
	if (!sg || n_out > vq->size || n_in > vq->size || n_out + n_in == 0 ||
	    n_out + n_in > vq->size)
		return VIO_EINVAL;
	for (unsigned k = 0; k < n_out + n_in; k++) {
		if (sg[k].len == 0)
			return VIO_EINVAL;
		total += sg[k].len;
		if (k >= n_out)
			total_in += sg[k].len;
	}
	/* 2.7.5.2: a chain is shorter than 4 GiB (and len, the bytes written, is 32 bits). */
	if (total > UINT32_MAX)
		return VIO_EINVAL;
	*in_len = (uint32_t)total_in;
	return 0;
}

static void fill_desc(const struct vio_vq *vq, struct vring_desc *d, const struct vio_sg *sg,
		      bool writable, bool more, uint16_t next)
{
	d->addr = vq->port->virt_to_phys(vq->port->ctx, sg->addr);
	d->len = sg->len;
	d->flags = (uint16_t)((more ? VRING_DESC_F_NEXT : 0) | (writable ? VRING_DESC_F_WRITE : 0));
	d->next = more ? next : 0;
}

void *vq_take_table(struct vio_vq *vq, uint16_t *taken, uint64_t *phys)
{
	VIO_ASSERT(vq->vq_tables_free > 0);
	uint16_t t = vq->vq_table_free[--vq->vq_tables_free];
	VIO_ASSERT(t < vq->vq_ntables && !table_held(vq, t));
	vq->stats.adds_indirect++;
	*taken = t;
	return table_at(vq, t, phys);
}

/* Write the whole request into one table and point a single ring descriptor at it (2.7.5.3). */
static uint16_t add_indirect(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out,
			     unsigned n)
{
	uint16_t t;
	uint64_t table_phys;
	struct vring_desc *table = vq_take_table(vq, &t, &table_phys);
	uint16_t head = vq->vq_free_head;

	/* Entries in a table chain by their index within the table (2.7.5.3). */
	for (unsigned k = 0; k < n; k++)
		fill_desc(vq, &table[k], &sg[k], k >= n_out, k + 1 < n, (uint16_t)(k + 1));

	/*
	 * A ring descriptor with INDIRECT must not also have NEXT (2.7.5.3.1); the device
	 * ignores WRITE on it (2.7.5.3.2): direction is in each table entry.
	 */
	struct vring_desc *d = &vq->vq_desc[head];
	d->addr = table_phys;
	d->len = n * (uint32_t)sizeof(*d);
	d->flags = VRING_DESC_F_INDIRECT;
	d->next = 0;

	vq->vq_free_head = vq->vq_next[head];
	vq->vq_num_free--;
	vq->vq_heads[head].ndesc = 1;
	vq->vq_heads[head].table = t;
	return head;
}

/*
 * Take n descriptors off the free list, in list order, and write them as one chain. The free
 * list is linked through the private vq_next, so the chain's links are already right there;
 * the device gets a copy of them in each descriptor's `next`.
 */
static uint16_t add_direct(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out, unsigned n)
{
	uint16_t head = vq->vq_free_head;
	uint16_t i = head;

	for (unsigned k = 0; k < n; k++) {
		VIO_ASSERT(i < vq->size);
		fill_desc(vq, &vq->vq_desc[i], &sg[k], k >= n_out, k + 1 < n, vq->vq_next[i]);
		i = vq->vq_next[i];
	}
	vq->vq_free_head = i;
	vq->vq_num_free = (uint16_t)(vq->vq_num_free - n);
	vq->vq_heads[head].ndesc = (uint16_t)n;
	vq->vq_heads[head].table = NO_TABLE;
	return head;
}

int vio_vq_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out, unsigned n_in,
	       void *cookie)
{
	uint32_t in_len;
	int err;

	if (vq->vq_broken)
		return VIO_EIO;
	if (!cookie)
		return VIO_EINVAL;
	err = check_segments(vq, sg, n_out, n_in, &in_len);
	if (err)
		return err;

	unsigned n = n_out + n_in;
	bool indirect = has_flag(vq, VIO_VQ_F_INDIRECT) && n > 1 && n <= VIO_VQ_INDIRECT_SEGS &&
			vq->vq_tables_free > 0;
	if (vq->vq_num_free < (indirect ? 1u : n)) {
		vq->stats.full++;
		return VIO_ENOSPC;
	}

	/* Our free list, not the device, names the head: it must not be a request in flight. */
	VIO_ASSERT(vq->vq_free_head < vq->size && !vq->vq_heads[vq->vq_free_head].in_flight);
	uint16_t head;
	if (packed(vq))
		head = vq_packed_add(vq, sg, n_out, n, indirect);
	else
		head = indirect ? add_indirect(vq, sg, n_out, n) : add_direct(vq, sg, n_out, n);
	struct vio_vq_head *h = &vq->vq_heads[head];
	h->cookie = cookie;
	h->in_len = in_len;
	h->in_flight = true;
	vq->vq_in_flight++;
	vq->stats.adds++;
	if (packed(vq))
		return 0;

	/* The slot is invisible to the device until kick_prepare moves avail->idx past it. */
	ring_store16(&vq->vq_avail->ring[vq->vq_avail_idx & (vq->size - 1u)], head);
	vq->vq_avail_idx++;
	return 0;
}

bool vio_vq_kick_prepare(struct vio_vq *vq)
{
	uint16_t old = vq->vq_avail_published;
	uint16_t new_idx = vq->vq_avail_idx;

	if (packed(vq))
		return vq_packed_kick_prepare(vq);
	if (vq->vq_broken || old == new_idx)
		return false;

	/*
	 * Write barrier: the descriptors, tables and avail->ring entries written by vio_vq_add
	 * must be visible to the device before the idx that tells it to read them (2.7.13.3.1).
	 */
	vio_wmb();
	ring_store16(&vq->vq_avail->idx, new_idx);
	vq->vq_avail_published = new_idx;
	vq->stats.kicks++;

	/*
	 * Full barrier: the idx store must be visible before we read the device's suppression
	 * state, or the device may decide "nothing new, go to sleep" while we read a stale
	 * "don't notify me" and skip the notification: a lost wakeup (2.7.13.4.1).
	 */
	vio_mb();

	bool need;
	if (has_flag(vq, VIO_VQ_F_EVENT_IDX))
		need = vring_need_event(ring_load16(avail_event(vq)), new_idx, old);
	else
		need = !(ring_load16(&vq->vq_used->flags) & VRING_USED_F_NO_NOTIFY);
	if (!need)
		vq->stats.suppressed++;
	return need;
}

void vio_vq_notify(struct vio_vq *vq)
{
	vq->stats.notifies++;
	if (vq->vq_notify)
		vq->vq_notify(vq, vq->vq_notify_arg);
}

bool vio_vq_kick(struct vio_vq *vq)
{
	if (!vio_vq_kick_prepare(vq))
		return false;
	vio_vq_notify(vq);
	return true;
}

/*
 * Give a returned chain's descriptors (and table) back; uses only driver-private state. Both
 * callers have made sure `head` is in flight: get_used checked the device's id, and
 * detach_unused found it by its flag. A split chain's descriptors go back on the free list
 * in the order they were linked; a packed request gives back its one buffer id, and its ring
 * slots are free once the used position has moved past them.
 */
void *vq_detach_chain(struct vio_vq *vq, uint16_t head)
{
	VIO_ASSERT(head < vq->size && vq->vq_heads[head].in_flight && vq->vq_in_flight > 0);
	struct vio_vq_head *h = &vq->vq_heads[head];
	uint16_t last = head;
	void *cookie = h->cookie;
	unsigned links = packed(vq) ? 1 : h->ndesc;

	VIO_ASSERT(h->ndesc >= 1 && vq->vq_num_free + h->ndesc <= vq->size);
	for (unsigned k = 1; k < links; k++) {
		last = vq->vq_next[last];
		VIO_ASSERT(last < vq->size);
	}
	vq->vq_next[last] = vq->vq_free_head;
	vq->vq_free_head = head;
	vq->vq_num_free = (uint16_t)(vq->vq_num_free + h->ndesc);
	if (h->table != NO_TABLE) {
		VIO_ASSERT(vq->vq_tables_free < vq->vq_ntables);
		vq->vq_table_free[vq->vq_tables_free++] = h->table;
	}
	*h = (struct vio_vq_head){.table = NO_TABLE};
	vq->vq_in_flight--;
	return cookie;
}

/* Log, once per queue, a used length above what the request offered. */
static void note_len(struct vio_vq *vq, uint16_t id, uint32_t len)
{
	/*
	 * len is passed on unclamped next to what was posted: only the driver knows whether a
	 * short or long write is an error for its device (a net rx header, a blk status byte).
	 * It is logged once so a misbehaving device shows up in the log.
	 */
	uint32_t in_len = vq->vq_heads[id].in_len;
	if (len > in_len && !vq->vq_warned_len) {
		vq->vq_warned_len = true;
		vio_logf(vq->port, VIO_LOG_WARN, "vq%u: used id %u len %u > %u posted", vq->index,
			 id, len, in_len);
	}
}

int vq_take_used(struct vio_vq *vq, uint32_t id, uint32_t len, struct vio_vq_used *out,
		 uint16_t *ndesc)
{
	if (id >= vq->size) {
		vq_bad_ring(vq, "used id %u out of range (size %u)", id, vq->size);
		return VIO_EIO;
	}
	if (!vq->vq_heads[id].in_flight) {
		vq_bad_ring(vq, "used id %u not in flight", id);
		return VIO_EIO;
	}
	*ndesc = vq->vq_heads[id].ndesc;
	note_len(vq, (uint16_t)id, len);
	out->len = len;
	out->in_len = vq->vq_heads[id].in_len;
	out->cookie = vq_detach_chain(vq, (uint16_t)id);
	vq->stats.completions++;
	return 0;
}

int vio_vq_get_used(struct vio_vq *vq, struct vio_vq_used *out)
{
	if (vq->vq_broken)
		return VIO_EIO;
	if (packed(vq))
		return vq_packed_get_used(vq, out);

	/* Read used->idx once; the read barrier below orders the element after it. */
	uint16_t used_idx = ring_load16(&vq->vq_used->idx);
	uint16_t last = vq->vq_last_used;
	if (used_idx == last)
		return VIO_EAGAIN;

	/* The device cannot have finished more chains than we have posted. */
	uint16_t pending = (uint16_t)(used_idx - last);
	if (pending > vq->vq_in_flight) {
		vq_bad_ring(vq, "used idx %u is %u ahead of %u, only %u in flight", used_idx, pending,
			 last, vq->vq_in_flight);
		return VIO_EIO;
	}

	/*
	 * Read barrier: the device wrote the element (id and len) before it moved idx
	 * (2.7.8.2), so read the element only after the idx that covers it.
	 */
	vio_rmb();
	const struct vring_used_elem *e = &vq->vq_used->ring[last & (vq->size - 1u)];
	uint16_t ndesc;
	if (vq_take_used(vq, ring_load32(&e->id), ring_load32(&e->len), out, &ndesc))
		return VIO_EIO;
	vq->vq_last_used = (uint16_t)(last + 1);

	/*
	 * With EVENT_IDX and callbacks on, ask for an interrupt at the next entry. Full barrier:
	 * the device must see the new used_event before we next read used->idx, else it may
	 * add an entry, see the old event and not interrupt while we see no entry (2.7.7).
	 */
	if (has_flag(vq, VIO_VQ_F_EVENT_IDX) && vq->vq_cb_enabled) {
		ring_store16(used_event(vq), vq->vq_last_used);
		vio_mb();
	} else if (has_flag(vq, VIO_VQ_F_EVENT_IDX) && has_flag(vq, VIO_VQ_F_NO_INTERRUPTS)) {
		keep_interrupts_off(vq); /* used_event one behind, out of the device's reach */
	}
	return 0;
}

bool vio_vq_has_used(struct vio_vq *vq)
{
	if (vq->vq_broken)
		return true;
	if (packed(vq))
		return vq_packed_has_used(vq);
	/* Only a peek: get_used has the read barrier before it uses the entry. */
	return ring_load16(&vq->vq_used->idx) != vq->vq_last_used;
}

void vio_vq_disable_cb(struct vio_vq *vq)
{
	if (packed(vq)) {
		vq_packed_disable_cb(vq);
		return;
	}
	vq->vq_cb_enabled = false;
	/*
	 * With EVENT_IDX the driver must leave flags at 0 (2.7.7.1). Leaving used_event where
	 * it is means the device interrupts at most once more, when it passes it, then not
	 * until the 16-bit index comes round again.
	 */
	if (!has_flag(vq, VIO_VQ_F_EVENT_IDX))
		ring_store16(&vq->vq_avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
}

bool vio_vq_enable_cb(struct vio_vq *vq)
{
	if (packed(vq))
		return vq_packed_enable_cb(vq);
	/* A polled queue keeps interrupts off; the caller still learns what is pending. */
	if (has_flag(vq, VIO_VQ_F_NO_INTERRUPTS))
		return vq->vq_broken || ring_load16(&vq->vq_used->idx) == vq->vq_last_used;
	vq->vq_cb_enabled = true;
	if (has_flag(vq, VIO_VQ_F_EVENT_IDX))
		ring_store16(used_event(vq), vq->vq_last_used);
	else
		ring_store16(&vq->vq_avail->flags, 0);

	/*
	 * Full barrier: the re-arm must reach the device before we look at used->idx. Otherwise
	 * an entry added in between is seen by neither side: the device read the old "no
	 * interrupt" and we read the old idx (the race in the note of 2.7.14).
	 */
	vio_mb();
	if (vq->vq_broken)
		return true;
	return ring_load16(&vq->vq_used->idx) == vq->vq_last_used;
}

void vio_vq_set_callback(struct vio_vq *vq, vio_vq_callback cb, void *arg)
{
	vq->vq_cb = cb;
	vq->vq_cb_arg = arg;
}

void vio_vq_set_fault_callback(struct vio_vq *vq, vio_vq_fault_fn fault, void *arg)
{
	vq->vq_fault = fault;
	vq->vq_fault_arg = arg;
}

void vio_vq_interrupt(struct vio_vq *vq)
{
	vq->stats.interrupts++;
	if (vq->vq_cb && vio_vq_has_used(vq))
		vq->vq_cb(vq, vq->vq_cb_arg);
}

unsigned vio_vq_num_free(const struct vio_vq *vq)
{
	return vq->vq_num_free;
}

bool vio_vq_is_broken(const struct vio_vq *vq)
{
	return vq->vq_broken;
}

bool vio_vq_is_packed(const struct vio_vq *vq)
{
	return packed(vq);
}

void vio_vq_break(struct vio_vq *vq, const char *why)
{
	if (vq->vq_broken)
		return;
	vq->vq_broken = true;
	if (why)
		vio_logf(vq->port, VIO_LOG_ERR, "vq%u: broken: %s", vq->index, why);
}

void *vio_vq_detach_unused(struct vio_vq *vq)
{
	if (!vq->vq_heads)
		return NULL;
	for (uint32_t k = 0; k < vq->size && vq->vq_in_flight; k++) {
		uint16_t head = (uint16_t)((vq->vq_detach_next + k) & (vq->size - 1u));
		if (vq->vq_heads[head].in_flight) {
			vq->vq_detach_next = (uint16_t)((head + 1u) & (vq->size - 1u));
			return vq_detach_chain(vq, head);
		}
	}
	/* A whole scan found no head in flight: the count must agree. */
	VIO_ASSERT(vq->vq_in_flight == 0);
	return NULL;
}

void vio_vq_abandon(struct vio_vq *vq)
{
	if (!vq->port)
		return;
	vio_vq_break(vq, "device did not reset: ring and tables kept");
	/*
	 * Forget the allocations without freeing them. The ring pointers stay: the memory
	 * behind them stays too, and the calls of a broken queue touch no more than the flags
	 * and event fields of an enable_cb or disable_cb.
	 */
	for (unsigned a = 0; a < VIO_VQ_MAX_AREAS; a++)
		vq->vq_area[a] = NULL;
	free_bookkeeping(vq);
	vq->vq_num_free = 0;
	vq->vq_in_flight = 0;
}

/* The split ring's indexes, event fields and first descriptors, for vio_vq_dump. */
static void split_dump(const struct vio_vq *vq, unsigned shown)
{
	const struct vio_port *port = vq->port;

	vio_logf(port, VIO_LOG_INFO,
		 "vq%u: avail idx %u (published %u) flags 0x%x used_event %u | used idx %u "
		 "flags 0x%x avail_event %u | last_used %u tables free %u/%u",
		 vq->index, vq->vq_avail_idx, vq->vq_avail_published,
		 ring_load16(&vq->vq_avail->flags), ring_load16(used_event(vq)),
		 ring_load16(&vq->vq_used->idx), ring_load16(&vq->vq_used->flags),
		 ring_load16(avail_event(vq)), vq->vq_last_used, vq->vq_tables_free,
		 vq->vq_ntables);
	for (uint32_t i = 0; i < vq->size && i < shown; i++) {
		const struct vring_desc *d = &vq->vq_desc[i];
		vio_logf(port, VIO_LOG_INFO, "vq%u: desc[%u] addr 0x%lx len %u flags 0x%x next %u",
			 vq->index, i, (unsigned long)d->addr, d->len, d->flags, d->next);
	}
}

void vio_vq_dump(const struct vio_vq *vq)
{
	const struct vio_port *port = vq->port;
	const unsigned shown = 4;

	if (!vq->vq_desc && !vq->vq_pdesc) {
		vio_logf(port, VIO_LOG_INFO, "vq%u: not set up", vq->index);
		return;
	}
	vio_logf(port, VIO_LOG_INFO,
		 "vq%u: size %u%s%s%s%s%s free %u in-flight %u cb %s msix %u desc 0x%lx",
		 vq->index, vq->size, has_flag(vq, VIO_VQ_F_EVENT_IDX) ? " event-idx" : "",
		 has_flag(vq, VIO_VQ_F_INDIRECT) ? " indirect" : "",
		 has_flag(vq, VIO_VQ_F_NO_INTERRUPTS) ? " polled" : "",
		 packed(vq) ? " packed" : "", vq->vq_broken ? " BROKEN" : "",
		 vq->vq_num_free, vq->vq_in_flight, vq->vq_cb_enabled ? "on" : "off",
		 vq->msix_vector, (unsigned long)vq->desc_phys);
	vio_logf(port, VIO_LOG_INFO,
		 "vq%u: adds %lu (indirect %lu) kicks %lu notifies %lu suppressed %lu "
		 "completions %lu interrupts %lu full %lu",
		 vq->index, (unsigned long)vq->stats.adds, (unsigned long)vq->stats.adds_indirect,
		 (unsigned long)vq->stats.kicks, (unsigned long)vq->stats.notifies,
		 (unsigned long)vq->stats.suppressed, (unsigned long)vq->stats.completions,
		 (unsigned long)vq->stats.interrupts, (unsigned long)vq->stats.full);

	unsigned listed = 0;
	for (uint32_t h = 0; vq->vq_heads && h < vq->size && listed < shown; h++) {
		const struct vio_vq_head *p = &vq->vq_heads[h];
		if (!p->in_flight)
			continue;
		listed++;
		vio_logf(port, VIO_LOG_INFO, "vq%u: in flight head %u ndesc %u table %d in_len %u "
			 "cookie %p", vq->index, h, p->ndesc, p->table == NO_TABLE ? -1 : p->table,
			 p->in_len, p->cookie);
	}
	if (packed(vq))
		vq_packed_dump(vq);
	else
		split_dump(vq, shown);
}
