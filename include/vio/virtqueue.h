/*
 * The virtqueue: the verbs a driver uses to hand buffers to a device and get them back.
 *
 * A driver posts a request as a scatter-gather list (device-readable "out" segments first,
 * then device-writable "in" segments) with an opaque cookie, kicks the device, and later gets
 * the cookie back with the number of bytes the device wrote. Drivers never see the ring
 * layout: the queue is a split ring (2.7, src/virtio/virtqueue.c), in the legacy contiguous
 * layout for legacy PCI and MMIO v1 and in separate areas for modern transports, or a packed
 * ring (2.8, src/virtio/virtqueue_packed.c) when the device and the transport are 1.x and
 * VIRTIO_F_RING_PACKED was negotiated (VIO_VQ_F_PACKED). Both are in include/vio/spec/
 * virtio_ring.h.
 *
 * The device is untrusted: every index, id, flag and length it writes into the ring is
 * checked. A violation logs one line, marks the queue broken, and from then on vio_vq_add and
 * vio_vq_get_used return VIO_EIO. Nothing the device writes can make the library crash, hand
 * back a cookie that is not in flight, or free descriptors twice.
 *
 * Two kinds of broken rule are kept apart. "The device broke a rule" (a used id out of range
 * or not in flight, used->idx running ahead of what was posted, a packed descriptor marked
 * used where nothing was posted or with AVAIL/USED flags that fit neither state) is input: checked in every
 * build, logged, the queue broken, VIO_EIO; the driver carries on. "We broke our own" (the
 * free list hands out a head still in flight, an indirect table taken while a request holds
 * it, a chain walk leaving the ring, books that do not balance when the queue is destroyed)
 * is a bug in vio that no device can cause: VIO_ASSERT (vio/assert.h) states it, and a build
 * with VIO_DEBUG stops there (the host tests abort, the kernel built with DEBUG=1 panics).
 *
 * Concurrency (see include/vio/port.h): one caller at a time per queue. Calls marked IRQ-safe
 * may run in an interrupt handler, but still not concurrently with another call on the same
 * queue: a driver that completes in IRQ context and submits in thread context must keep the
 * two apart itself (typically by masking the interrupt around its thread-context calls).
 */
#ifndef VIO_VIRTQUEUE_H
#define VIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <vio/port.h>

/*
 * The indirect descriptor pool (2.7.5.3); override with -D before building the library. A
 * queue gets VIO_VQ_INDIRECT_TABLES tables unless vio_vq_opts asks for another number (never
 * more than its size). A table is VIO_VQ_INDIRECT_SEGS * 16 bytes (1 KiB by default) and the
 * pool is allocated one 4 KiB page at a time: the default pool is 16 KiB in four pages. When
 * every table is taken, requests go as direct chains, so the count trades memory for ring
 * slots, never correctness.
 */
#ifndef VIO_VQ_INDIRECT_TABLES
#define VIO_VQ_INDIRECT_TABLES 16 /* tables per queue, unless vio_vq_opts says otherwise */
#endif
#ifndef VIO_VQ_INDIRECT_SEGS
#define VIO_VQ_INDIRECT_SEGS 64 /* descriptors per table, 2..256: longer requests go direct */
#endif

#define VIO_VQ_F_EVENT_IDX (1u << 0) /* VIRTIO_F_RING_EVENT_IDX negotiated */
#define VIO_VQ_F_INDIRECT (1u << 1)  /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
/*
 * The transport takes the three ring areas' addresses one by one (modern PCI, MMIO version 2),
 * so each may be its own allocation with its own alignment (2.7). Without it the ring is one
 * allocation in the legacy layout (2.7.2), which legacy PCI and MMIO version 1 need: they know
 * only its first page frame. The largest single DMA allocation for a ring, in 4 KiB pages:
 *
 *	entries     separate areas      legacy layout
 *	    128         4 KiB               8 KiB
 *	    256         4 KiB              12 KiB
 *	   1024        16 KiB              32 KiB
 *	  32768       512 KiB             840 KiB
 */
#define VIO_VQ_F_SEPARATE_AREAS (1u << 2)
/*
 * Nobody takes this queue's interrupts (the device is polled, VIO_IRQ_POLL): the queue never
 * asks for used-buffer notifications, with NO_INTERRUPT or, with EVENT_IDX, a used_event the
 * device cannot reach (2.7.7, 2.7.10), so that a wired line is never left asserted.
 * vio_vq_enable_cb then only reports whether completions are pending.
 */
#define VIO_VQ_F_NO_INTERRUPTS (1u << 3)
/*
 * VIRTIO_F_RING_PACKED negotiated: a packed ring (2.8): one descriptor ring both sides write
 * (desc_phys), the driver event suppression structure (avail_phys, the "driver area") and the
 * device's (used_phys, the "device area"). Needs VIO_VQ_F_SEPARATE_AREAS: only 1.x
 * transports, which take the three addresses, have packed rings.
 */
#define VIO_VQ_F_PACKED (1u << 4)
#define VIO_VQ_F_ALL                                                                            \
	(VIO_VQ_F_EVENT_IDX | VIO_VQ_F_INDIRECT | VIO_VQ_F_SEPARATE_AREAS |                     \
	 VIO_VQ_F_NO_INTERRUPTS | VIO_VQ_F_PACKED)

/* Ring allocations a queue makes: one in the legacy layout, up to three with separate areas. */
#define VIO_VQ_MAX_AREAS 3

#define VIO_VQ_MAX_SIZE 32768 /* 2.7: Queue Size is a power of two, at most 32768 */
#define VIO_VQ_NO_VECTOR 0xffff /* VIRTIO_MSI_NO_VECTOR: this queue raises no MSI-X interrupt */

struct vio_vq;
struct vring_desc; /* include/vio/spec/virtio_ring.h; drivers need not see the layout */
struct vring_avail;
struct vring_used;
struct vring_packed_desc;
struct vring_packed_desc_event;

/* One buffer segment, by virtual address; the queue translates it with port->virt_to_phys. */
struct vio_sg {
	const void *addr;
	uint32_t len;
};

/* One completed request, as vio_vq_get_used returns it. */
struct vio_vq_used {
	void *cookie;  /* what the driver passed to vio_vq_add */
	uint32_t len;  /* what the device claims it wrote: NOT clamped, may exceed in_len */
	uint32_t in_len; /* total length of the device-writable segments the driver posted */
};

/* Transport hook: tell the device this queue has new buffers (write its notify register). */
typedef void (*vio_vq_notify_fn)(struct vio_vq *vq, void *arg);
/* Driver hook: used buffers arrived. Called from vio_vq_interrupt, so in IRQ context. */
typedef void (*vio_vq_callback)(struct vio_vq *vq, void *arg);
/* Core hook: the device broke a rule of this queue, which is now broken. */
typedef void (*vio_vq_fault_fn)(struct vio_vq *vq, void *arg);

/* Counters for debugging and the shell's `virtio <dev>` command. Free-running, never reset. */
struct vio_vq_stats {
	uint64_t adds;          /* requests posted */
	uint64_t adds_indirect; /* ... of which through an indirect table */
	uint64_t kicks;         /* vio_vq_kick_prepare calls that published new entries */
	uint64_t notifies;      /* vio_vq_notify calls (device notified) */
	uint64_t suppressed;    /* kicks the device did not want (NO_NOTIFY, EVENT_IDX) */
	uint64_t completions;   /* requests returned by vio_vq_get_used */
	uint64_t interrupts;    /* vio_vq_interrupt calls */
	uint64_t full;          /* vio_vq_add calls refused with VIO_ENOSPC */
};

/* Per-head driver bookkeeping; lives in private memory (vio_priv_alloc, see virtqueue.c). */
struct vio_vq_head;

/* One page of a queue's indirect pool, as dma_alloc gave it (private to virtqueue.c). */
struct vio_vq_table_page {
	void *virt;
	uint64_t phys;
};

/*
 * A driver's knobs for one queue (vio_dev_setup_vq_opts, vio_vq_init). A NULL pointer or a
 * zeroed field means the default.
 */
struct vio_vq_opts {
	uint16_t max_size;        /* at most this many entries (vio_dev_setup_vq_opts; 0: the
				   * device's maximum; a legacy PCI device fixes its own size) */
	uint16_t indirect_tables; /* indirect tables with VIO_VQ_F_INDIRECT (0:
				   * VIO_VQ_INDIRECT_TABLES; at most the queue's size) */
	bool direct_only;	  /* no indirect pool even when the device offers one
				   * (vio_dev_setup_vq_opts): every request is one segment,
				   * or the ring holds them all as direct chains */
};

/*
 * A virtqueue. The caller owns the storage; vio_vq_init fills it. The fields above the line
 * are for the virtio core and the transports; the vq_ fields are private to virtqueue.c.
 */
struct vio_vq {
	const struct vio_port *port;
	uint16_t index;       /* queue number within its device */
	uint16_t size;        /* number of descriptors, a power of two */
	uint16_t msix_vector; /* set by the core after init, before queue setup; 0xffff = none */
	uint64_t ring_phys;   /* legacy layout: the ring's start, PFN = ring_phys >> 12; else 0 */
	uint64_t desc_phys;   /* descriptor table / packed descriptor ring ("descriptor area") */
	uint64_t avail_phys;  /* available ring / packed driver event ("driver area") */
	uint64_t used_phys;   /* used ring / packed device event ("device area"); 4096-aligned
			       * in the legacy layout */
	struct vio_vq_stats stats;

	/* --- private to virtqueue.c ------------------------------------------------------ */
	uint32_t vq_flags;           /* VIO_VQ_F_* */
	bool vq_broken;
	bool vq_cb_enabled;          /* the driver wants used-buffer notifications */
	vio_vq_notify_fn vq_notify;
	void *vq_notify_arg;
	vio_vq_callback vq_cb;
	void *vq_cb_arg;
	vio_vq_fault_fn vq_fault;
	void *vq_fault_arg;

	void *vq_area[VIO_VQ_MAX_AREAS]; /* the ring's DMA allocations (see plan_areas) */
	uint32_t vq_area_bytes[VIO_VQ_MAX_AREAS];
	struct vring_desc *vq_desc;                       /* split: the three areas */
	struct vring_avail *vq_avail;
	struct vring_used *vq_used;
	struct vring_packed_desc *vq_pdesc;               /* packed: the descriptor ring */
	struct vring_packed_desc_event *vq_driver_event;  /* packed: ours, the device reads */
	struct vring_packed_desc_event *vq_device_event;  /* packed: the device's, we read */

	struct vio_vq_head *vq_heads; /* [size], in vq_priv: private memory the device never sees */
	uint16_t *vq_next;            /* [size] private copy of every descriptor's next link */
	uint16_t *vq_table_free;      /* stack of free indirect table numbers */
	void *vq_priv;
	uint32_t vq_priv_bytes;

	struct vio_vq_table_page *vq_table_pages; /* the indirect pool, a page at a time */
	uint16_t vq_ntable_pages;
	uint16_t vq_ntables;
	uint16_t vq_tables_free;      /* entries on vq_table_free */

	uint16_t vq_free_head;        /* split: first free descriptor; packed: first free buffer
				       * id (both lists linked by vq_next) */
	uint16_t vq_num_free;         /* descriptors free (packed: ring slots not posted) */
	uint16_t vq_in_flight;        /* heads posted and not yet returned */
	uint16_t vq_avail_idx;        /* split: our shadow of avail->idx, not yet published;
				       * packed: descriptors made available, free-running: slot
				       * idx % size, wrap counter 1 on even laps */
	uint16_t vq_avail_published;  /* vq_avail_idx at the last kick_prepare */
	uint16_t vq_last_used;        /* next used entry we will consume (packed: free-running
				       * slot count, as vq_avail_idx) */
	uint16_t vq_detach_next;      /* where vio_vq_detach_unused resumes its scan */
	bool vq_warned_len;           /* logged a len > in_len once already */
};

/*
 * Set up `vq` as queue `index` of `size` descriptors (a power of two, 1..VIO_VQ_MAX_SIZE,
 * normally the device's maximum queue size or less). `flags` are VIO_VQ_F_*: the ring
 * features negotiated with the device and how the transport places the ring. `opts` may be
 * NULL (its max_size is for vio_dev_setup_vq_opts and is ignored here). `notify(vq,
 * notify_arg)` is how vio_vq_notify reaches the device (may be NULL while testing). Allocates
 * the ring and, with VIO_VQ_F_INDIRECT, the indirect table pool through port->dma_alloc (never
 * more than a page in one piece but for the ring's areas: see VIO_VQ_F_SEPARATE_AREAS), and
 * the driver's bookkeeping through vio_priv_alloc. Interrupts start enabled; msix_vector
 * starts as VIO_VQ_NO_VECTOR. Returns 0, VIO_EINVAL (bad size or port, or VIO_VQ_F_PACKED
 * without VIO_VQ_F_SEPARATE_AREAS) or VIO_ENOMEM
 * (nothing stays allocated). Not IRQ-safe.
 */
int vio_vq_init(struct vio_vq *vq, const struct vio_port *port, uint16_t index, uint16_t size,
		uint32_t flags, const struct vio_vq_opts *opts, vio_vq_notify_fn notify,
		void *notify_arg);

/*
 * Free everything vio_vq_init allocated. The device must no longer use the queue (reset it
 * first). Posted cookies are forgotten: call vio_vq_detach_unused first to reclaim them.
 * With VIO_DEBUG, checks that every descriptor and table is accounted for before the memory
 * goes. Safe on a queue whose init failed, and twice. Not IRQ-safe.
 */
void vio_vq_destroy(struct vio_vq *vq);

/*
 * Post one request: sg[0..n_out) are device-readable, sg[n_out..n_out+n_in) device-writable.
 * `cookie` (not NULL) comes back from vio_vq_get_used. Takes one ring descriptor when an
 * indirect table is available (VIO_VQ_F_INDIRECT, more than one segment, at most
 * VIO_VQ_INDIRECT_SEGS), else one descriptor per segment. In a split ring the device does not
 * see the request until vio_vq_kick_prepare publishes it; in a packed ring it may see it at
 * once (its head descriptor's flags are the publication, 2.8.21.1), but it is only notified
 * through vio_vq_kick_prepare and vio_vq_notify.
 * Returns 0; VIO_ENOSPC when the ring is full (nothing changed: retry after a completion);
 * VIO_EINVAL for no segments, more segments than the queue size, a zero-length segment,
 * segments totalling 4 GiB or more, or a NULL cookie; VIO_EIO when broken.
 * IRQ-safe (uses port->virt_to_phys).
 */
int vio_vq_add(struct vio_vq *vq, const struct vio_sg *sg, unsigned n_out, unsigned n_in,
	       void *cookie);

/*
 * Publish the requests added since the last call (write barrier, then avail->idx) and say
 * whether the device wants to be notified: with EVENT_IDX when avail_event lies among the new
 * entries (2.7.10), otherwise when the device has not set VRING_USED_F_NO_NOTIFY. A packed
 * ring reads the device event structure instead (2.8.10): DISABLE, ENABLE, or with EVENT_IDX
 * DESC when its descriptor is among the new ones. False when
 * nothing new was added or the queue is broken. Splitting this from vio_vq_notify lets a
 * driver notify after dropping its own lock. IRQ-safe.
 */
bool vio_vq_kick_prepare(struct vio_vq *vq);

/* Notify the device through the transport's notify hook. IRQ-safe if the hook is. */
void vio_vq_notify(struct vio_vq *vq);

/* vio_vq_kick_prepare, then vio_vq_notify if needed. Returns whether it notified. IRQ-safe. */
bool vio_vq_kick(struct vio_vq *vq);

/*
 * Take one completed request off the used ring into *out. Returns 0; VIO_EAGAIN when there is
 * none; VIO_EIO when the queue is broken, including when this very entry breaks a rule (id
 * out of range or not in flight, used idx running ahead of what is in flight; packed: a used
 * descriptor where nothing was posted, AVAIL/USED flags that are neither available nor used
 * for the current wrap counter). out->len is
 * the device's claim, not clamped: a driver must bound it by out->in_len itself. IRQ-safe.
 */
int vio_vq_get_used(struct vio_vq *vq, struct vio_vq_used *out);

/*
 * True when vio_vq_get_used would not return VIO_EAGAIN: a completion is pending, or the
 * queue is broken (so pollers go on to see VIO_EIO instead of spinning). IRQ-safe.
 */
bool vio_vq_has_used(struct vio_vq *vq);

/*
 * Ask the device not to interrupt for this queue: sets VRING_AVAIL_F_NO_INTERRUPT, or with
 * EVENT_IDX stops advancing used_event (packed: driver event flags DISABLE). Only a hint: interrupts may still arrive. IRQ-safe.
 */
void vio_vq_disable_cb(struct vio_vq *vq);

/*
 * Re-arm interrupts (clear NO_INTERRUPT, or used_event = next entry we will consume; packed:
 * ENABLE, or DESC at the next used descriptor with EVENT_IDX), then a
 * full barrier and a look at used->idx. Returns false when completions are already pending,
 * which the device may not interrupt for: the caller must poll again and then re-enable. The
 * usual loop is
 *
 *	do { vio_vq_disable_cb(vq); while (vio_vq_get_used(vq, &u) == 0) ...; }
 *	while (!vio_vq_enable_cb(vq));
 *
 * A broken queue returns true (nothing more will come). A polled queue
 * (VIO_VQ_F_NO_INTERRUPTS) is not re-armed: only the look at used->idx is done. IRQ-safe.
 */
bool vio_vq_enable_cb(struct vio_vq *vq);

/* Set the driver's completion callback (NULL for none), run by vio_vq_interrupt. */
void vio_vq_set_callback(struct vio_vq *vq, vio_vq_callback cb, void *arg);

/*
 * Set what runs, once, when the device breaks one of this queue's rules (NULL for nothing):
 * fault(vq, arg) is called right after the queue is marked broken, by the call that found
 * the violation (so possibly in IRQ context), not by vio_vq_break. The core uses it to read
 * the device's status (vio_dev_check): a device that has gone wrong often says so with
 * DEVICE_NEEDS_RESET. Set before the queue is used.
 */
void vio_vq_set_fault_callback(struct vio_vq *vq, vio_vq_fault_fn fault, void *arg);

/*
 * The core calls this from its interrupt handler for this queue (or, with a shared vector,
 * for every queue of the device): runs the callback if one is set and vio_vq_has_used.
 * IRQ-safe.
 */
void vio_vq_interrupt(struct vio_vq *vq);

/* Descriptors on the free list (a request takes one, or one per segment). IRQ-safe. */
unsigned vio_vq_num_free(const struct vio_vq *vq);

/* True once the device broke a rule or the core called vio_vq_break. IRQ-safe. */
bool vio_vq_is_broken(const struct vio_vq *vq);

/*
 * Mark the queue broken (vio_vq_add and vio_vq_get_used then return VIO_EIO) and log `why`
 * once, on the first call (NULL: no line, for a caller that says it once for all of a
 * device's queues). The core uses it when the device sets DEVICE_NEEDS_RESET. IRQ-safe.
 */
void vio_vq_break(struct vio_vq *vq, const char *why);

/*
 * After the device has been reset (it no longer touches the ring): return the cookie of one
 * request still posted, freeing its descriptors, or NULL when none is left. Works on broken
 * queues. Not IRQ-safe.
 */
void *vio_vq_detach_unused(struct vio_vq *vq);

/*
 * For a queue whose device did not confirm its reset (vio_dev_teardown of a dead device):
 * the device may still read and write the ring and the indirect tables, so they are never
 * freed. The queue forgets them (they leak, on purpose), frees its own bookkeeping, which
 * the device cannot reach, and is left broken: its calls return VIO_EIO and
 * vio_vq_detach_unused NULL (detach the cookies still posted first), and vio_vq_destroy
 * frees nothing more. Not IRQ-safe.
 */
void vio_vq_abandon(struct vio_vq *vq);

/* True when the queue is a packed ring (VIO_VQ_F_PACKED), false for a split one. IRQ-safe. */
bool vio_vq_is_packed(const struct vio_vq *vq);

/* Log the queue's state (indexes, flags, free count, heads in flight, counters). */
void vio_vq_dump(const struct vio_vq *vq);

#endif
