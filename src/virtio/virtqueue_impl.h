/*
 * What the two ring layouts share, inside the library only: the split ring in virtqueue.c
 * (2.7) and the packed ring in virtqueue_packed.c (2.8) sit behind the same verbs
 * (vio/virtqueue.h). virtqueue.c owns the verbs and everything that does not depend on the
 * layout: the bookkeeping in private memory (a head per buffer id, the free id list, the
 * indirect table pool), argument checks, detaching a returned request, breaking the queue.
 * Each verb hands the layout's own part to the split code or to a vq_packed_* function.
 */
#ifndef VIO_VIRTQUEUE_IMPL_H
#define VIO_VIRTQUEUE_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <vio/spec/virtio_ring.h>
#include <vio/virtqueue.h>

#define NO_TABLE 0xffff

/* dma_alloc hands out 4 KiB pages (vio/port.h); the indirect pool is allocated by the page. */
#define PAGE_BYTES 4096u
/* A split and a packed descriptor are both 16 bytes: one pool serves both layouts. */
#define TABLE_BYTES (VIO_VQ_INDIRECT_SEGS * 16u)
#define TABLES_PER_PAGE (PAGE_BYTES / TABLE_BYTES)

/*
 * What the driver remembers about a posted request, by buffer id: the head descriptor's index
 * in the split ring, a number from the free id list in the packed one.
 */
struct vio_vq_head {
	void *cookie;
	uint32_t in_len; /* device-writable bytes posted */
	uint16_t ndesc;  /* ring descriptors the request holds (1 when it uses a table) */
	uint16_t table;  /* indirect table number, or NO_TABLE */
	bool in_flight;  /* posted and not yet returned: the only ids the device may complete */
};

/*
 * Shared-memory accessors. Relaxed atomics make each access a single load or store of the
 * whole field: the compiler may neither tear it nor read a device-written value twice (a
 * device changing it between a check and a use would otherwise defeat the check). Ordering
 * against other accesses is done by the barriers of vio/barrier.h, where the spec asks.
 */
static inline uint16_t ring_load16(const vio_le16 *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline uint32_t ring_load32(const vio_le32 *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void ring_store16(vio_le16 *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline bool has_flag(const struct vio_vq *vq, uint32_t f)
{
	return (vq->vq_flags & f) != 0;
}

/* The device broke a rule: log it once, break the queue and tell whoever asked. */
void vq_bad_ring(struct vio_vq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Take a free indirect table (the caller checked vq_tables_free): its number, address. */
void *vq_take_table(struct vio_vq *vq, uint16_t *t, uint64_t *phys);

/* A request the device returned: free its id, descriptors and table; return its cookie. */
void *vq_detach_chain(struct vio_vq *vq, uint16_t id);

/*
 * The device says it finished buffer `id` with `len` bytes written: check the id (in range,
 * in flight; else the queue breaks and VIO_EIO), fill *out (len unclamped, logged once when
 * above what was posted), detach it and set *ndesc to the ring descriptors it held.
 */
int vq_take_used(struct vio_vq *vq, uint32_t id, uint32_t len, struct vio_vq_used *out,
		 uint16_t *ndesc);

/* --- the packed layout (virtqueue_packed.c) ------------------------------------------- */

/* Area sizes and alignments: descriptor ring, driver event, device event (2.8.10.1). */
void vq_packed_areas(uint32_t size, uint32_t len[3], uint32_t align[3]);
/* The driver side of a new queue, once its areas are in place (vq_area_ptr order). */
void vq_packed_init(struct vio_vq *vq, void *area[3]);
/* Write a checked request, `indirect` through a free table; returns its buffer id. */
uint16_t vq_packed_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out, unsigned n,
		       bool indirect);
bool vq_packed_kick_prepare(struct vio_vq *vq);
int vq_packed_get_used(struct vio_vq *vq, struct vio_vq_used *out);
bool vq_packed_has_used(struct vio_vq *vq);
void vq_packed_disable_cb(struct vio_vq *vq);
bool vq_packed_enable_cb(struct vio_vq *vq);
void vq_packed_dump(const struct vio_vq *vq);

#endif
