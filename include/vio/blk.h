/*
 * virtio-blk: a block device driver (virtio 1.2 section 5.2) over the vio core.
 *
 * Context: completions are reaped, and req->on_done runs, in the queue's interrupt handler
 * when the device interrupts, and inside the owner's calls (vio_blk_poll, or a synchronous
 * call polling for its answer) when it does not. One interrupt or one vio_blk_poll takes at
 * most a ring's worth (info.queue_depth) of completions from each queue: a device that
 * answers as fast as callbacks submit cannot keep the CPU there. What is left waits on the
 * ring for the next call, so a kernel that takes interrupts still calls vio_blk_poll from
 * its idle loop now and then.
 *
 * Two ways to do I/O on one device:
 *
 *   - Synchronous: vio_blk_read, _write, _flush, _discard, _write_zeroes, _get_id. Each posts
 *     a request and polls the device until it answers or opts.timeout_ns passes. They never
 *     wait for an interrupt, so they also work with interrupts disabled (a panic path).
 *     While they poll they call opts.wait at least every VIO_BLK_SPIN_NS: a kernel
 *     that disables interrupts around driver calls enables them there for a moment, so that
 *     a slow disk never holds them off for longer than a slice and one poll.
 *
 *   - Asynchronous: the caller fills a `struct vio_blk_req` it owns (operation, sector, a
 *     scatter-gather list of its own buffers, a callback) and hands it to vio_blk_submit.
 *     Its callback, req->on_done, runs once, when the whole request is done. A request
 *     larger than the device accepts in one go (SIZE_MAX, SEG_MAX, VIO_BLK_MAX_TRANSFER, the
 *     discard and write-zeroes limits) is split into several device requests transparently.
 *
 * Data moves directly between the device and the caller's buffers (they must be memory the
 * device can reach: port->virt_to_phys). Each device request's header and status byte live
 * in DMA memory the driver allocates at init, a slot per request the ring can hold, never on a
 * caller's stack; what the driver remembers about them (which request, how long) is in
 * private memory (port->priv_alloc), where the device cannot rewrite it.
 *
 * Units: sectors are always 512 bytes (5.2.6), whatever info.blk_size says. Read and write
 * buffers must be whole logical blocks: the first sector a multiple of info.blk_size / 512,
 * every segment a multiple of info.blk_size bytes (512 unless the device offers BLK_SIZE),
 * no memory alignment needed. A device fails smaller I/O (QEMU's logical_block_size does),
 * so the driver refuses it first with VIO_EALIGN.
 *
 * Concurrency (include/vio/port.h): one caller at a time per struct vio_blk. The library
 * takes no locks. Completions may run in the interrupt handler (Context, above), so the
 * kernel must keep its thread-context calls apart from it, for example by disabling
 * interrupts around every vio_blk_* call. Functions marked IRQ-safe
 * may themselves be called from an interrupt handler (a callback may submit the next
 * request).
 *
 * QEMU: -drive file=disk.img,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0
 */
#ifndef VIO_BLK_H
#define VIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_blk.h>
#include <vio/virtio.h>
#include <vio/virtqueue.h>

/* Request queues used at most when the device offers VIRTIO_BLK_F_MQ. */
#ifndef VIO_BLK_MAX_QUEUES
#define VIO_BLK_MAX_QUEUES 4
#endif

/* Ring entries asked for per request queue (the device's maximum if that is smaller). */
#ifndef VIO_BLK_QUEUE_SIZE
#define VIO_BLK_QUEUE_SIZE 256
#endif

/*
 * Indirect tables per request queue, when the device offers them (2.7.5.3): that many parts
 * in flight take one ring entry each, the rest a direct chain of one entry per segment. A
 * table is 1 KiB of DMA memory (vio/virtqueue.h), four to a page.
 */
#ifndef VIO_BLK_INDIRECT_TABLES
#define VIO_BLK_INDIRECT_TABLES 16
#endif

/* Default limit for the synchronous calls (vio_blk_opts.timeout_ns). */
#ifndef VIO_BLK_TIMEOUT_NS
#define VIO_BLK_TIMEOUT_NS 30000000000ull
#endif

/* A synchronous call polls for at most this long between calls of opts.wait (100 us, well
 * inside a 1 ms tick): the longest it spins in whatever interrupt state its caller gave it. */
#ifndef VIO_BLK_SPIN_NS
#define VIO_BLK_SPIN_NS 100000ull
#endif

/* Most data segments in one device request (also lower than the device's SEG_MAX). 62 + the
 * header and status segments fill one indirect table (VIO_VQ_INDIRECT_SEGS). */
#ifndef VIO_BLK_MAX_SEGS
#define VIO_BLK_MAX_SEGS 62
#endif

/* Most data bytes in one device request; larger reads and writes are split. */
#ifndef VIO_BLK_MAX_TRANSFER
#define VIO_BLK_MAX_TRANSFER (1u << 20)
#endif

/* What a request asks for. */
enum vio_blk_op {
	VIO_BLK_OP_READ = 0,	     /* device -> sg, starting at `sector` */
	VIO_BLK_OP_WRITE = 1,	     /* sg -> device, starting at `sector` */
	VIO_BLK_OP_FLUSH = 2,	     /* make completed writes durable */
	VIO_BLK_OP_GET_ID = 3,	     /* the device's id string (serial): its first bytes into sg */
	VIO_BLK_OP_DISCARD = 4,	     /* `nsectors` at `sector` may be deallocated */
	VIO_BLK_OP_WRITE_ZEROES = 5, /* `nsectors` at `sector` read back as zeroes */
};

/* vio_blk_req.flags */
#define VIO_BLK_REQ_UNMAP 0x1 /* WRITE_ZEROES: the device may deallocate the range */

/* vio_blk_req.queue: let the driver choose (round-robin over the request queues). */
#define VIO_BLK_ANY_QUEUE 0xffff

struct vio_blk_req;
struct vio_blk;

/*
 * Completion callback: `status` is 0, VIO_EIO (the device reported an I/O error, or broke
 * a rule answering), VIO_ENOTSUP (the device does not support the request) or, from
 * vio_blk_fini, VIO_EIO for requests the device never answered. Runs where completions run
 * (the top of this file). The request and its buffers belong to the caller again, except
 * with VIO_EDEAD (from a vio_blk_fini whose reset the device never confirmed): the device
 * may still write the buffers, so they must be kept, never freed or reused.
 */
typedef void (*vio_blk_done_fn)(struct vio_blk_req *req, int status, void *arg);

/*
 * An asynchronous request. The caller owns it and its buffers until the callback ran; it
 * fills the fields above the line and leaves the blk_ fields to the driver.
 */
struct vio_blk_req {
	enum vio_blk_op op;
	uint32_t flags;		 /* VIO_BLK_REQ_* */
	uint64_t sector;	 /* READ, WRITE, DISCARD, WRITE_ZEROES: first 512-byte sector */
	uint64_t nsectors;	 /* DISCARD, WRITE_ZEROES: how many sectors */
	const struct vio_sg *sg; /* READ, WRITE, GET_ID: the caller's buffers, in order (GET_ID
				    copies up to 20 bytes into any memory) */
	unsigned nsg;
	uint16_t queue;		 /* a request queue index (taken modulo the count) or
				    VIO_BLK_ANY_QUEUE */
	vio_blk_done_fn on_done; /* must not be NULL */
	void *arg;		 /* passed to on_done */

	/* --- private to virtio_blk.c --------------------------------------------------- */
	uint64_t blk_sector; /* where the next part starts */
	uint64_t blk_left;   /* sectors still to post (or 1 for FLUSH / GET_ID) */
	unsigned blk_seg;    /* READ/WRITE: next part starts in sg[blk_seg] ... */
	uint32_t blk_off;    /* ... at this byte offset */
	uint32_t blk_parts;  /* device requests posted and not yet completed */
	uint32_t blk_nparts; /* device requests posted in all */
	int blk_status;	     /* first error of any part */
	uint16_t blk_queue;  /* the request queue it went to */
};

/* Options for vio_blk_init. NULL, or a member left 0, means the default. */
struct vio_blk_opts {
	/* How long a synchronous call waits for its answer (0: VIO_BLK_TIMEOUT_NS). */
	uint64_t timeout_ns;
	/* Ring entries per request queue at most (0: VIO_BLK_QUEUE_SIZE; a legacy device
	 * fixes its own). */
	uint16_t queue_size;
	/* Indirect tables per request queue (0: VIO_BLK_INDIRECT_TABLES; at most the ring). */
	uint16_t indirect_tables;
	/*
	 * Optional: a synchronous call (and its wait for room in a full queue) calls wait(blk,
	 * arg) after every VIO_BLK_SPIN_NS of polling, at a point where the driver's state is
	 * whole. A kernel that calls with interrupts off lets them in here (this device's
	 * interrupt handler may then complete requests and run their callbacks), or yields the
	 * CPU; it may return at once. NULL: the call spins until the answer or the timeout, in
	 * whatever interrupt state its caller gave it (a panic path).
	 */
	void (*wait)(struct vio_blk *blk, void *arg);
	void *arg; /* passed to wait */
};

/* What the device is and what the driver will do with it. Filled by vio_blk_init. */
struct vio_blk_info {
	uint64_t capacity;     /* in 512-byte sectors (updated on a config change) */
	uint32_t blk_size;     /* optimal block size in bytes (512 when not offered or absurd) */
	bool ro;	       /* VIRTIO_BLK_F_RO: writes fail with VIO_EROFS */
	bool flush;	       /* VIRTIO_BLK_F_FLUSH: the device has a FLUSH command */
	bool config_wce;       /* VIRTIO_BLK_F_CONFIG_WCE: vio_blk_set_writeback works */
	bool writeback;	       /* the cache is write-back (flush needed for durability) */
	uint32_t size_max;     /* bytes per data segment the driver posts (multiple of 512) */
	uint32_t seg_max;      /* data segments per device request the driver posts */
	uint32_t max_transfer; /* data bytes per device request the driver posts */
	bool has_geometry;     /* VIRTIO_BLK_F_GEOMETRY: geometry is valid */
	struct virtio_blk_geometry geometry;
	bool has_topology; /* VIRTIO_BLK_F_TOPOLOGY: topology is valid */
	struct virtio_blk_topology topology;
	bool discard;		      /* VIRTIO_BLK_F_DISCARD */
	uint32_t max_discard_sectors; /* per device request (device's 0 taken as no limit) */
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	bool write_zeroes;		   /* VIRTIO_BLK_F_WRITE_ZEROES */
	uint32_t max_write_zeroes_sectors; /* per device request (0 taken as no limit) */
	uint32_t max_write_zeroes_seg;
	bool write_zeroes_may_unmap;
	uint16_t device_queues; /* request queues the device has (1 without MQ) */
	uint16_t num_queues;	/* request queues in use: min(device_queues, VIO_BLK_MAX_QUEUES) */
	uint16_t queue_depth;	/* device requests in flight at most, per queue: one per
				   indirect table, and one per two other ring entries */
	bool has_serial;	/* serial was fetched (vio_blk_get_id succeeded) */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
};

/* Counters, free-running. A "part" is one device request; a caller's request has >= 1. */
struct vio_blk_stats {
	uint64_t reads; /* caller requests completed, by operation */
	uint64_t writes;
	uint64_t flushes;
	uint64_t discards;
	uint64_t write_zeroes;
	uint64_t get_ids;
	uint64_t bytes_read; /* by successful reads and writes */
	uint64_t bytes_written;
	uint64_t parts;	      /* device requests posted */
	uint64_t splits;      /* caller requests that took more than one device request */
	uint64_t errors;      /* caller requests completed with an error */
	uint64_t ioerr;	      /* parts the device answered VIRTIO_BLK_S_IOERR */
	uint64_t unsupp;      /* parts the device answered VIRTIO_BLK_S_UNSUPP */
	uint64_t bad_answers; /* parts with an unknown status byte or an impossible length */
	uint64_t full;	      /* vio_blk_submit calls refused with VIO_ENOSPC */
	uint64_t timeouts;    /* synchronous calls that timed out */
	uint64_t interrupts;  /* queue interrupts handled */
};

/* Driver state per request queue: private to virtio_blk.c as a whole. */
struct vio_blk_slot;
struct vio_blk_part;
struct vio_blk_queue {
	/* One private allocation (vio_priv_alloc), never device-visible: the segment list the
	 * next part is built in; the DMA pages of slots (headers and status bytes, 64 a page:
	 * device-visible); what each slot's part is; the stack of free slot numbers. */
	struct vio_sg *q_sg;
	struct vio_blk_slot **q_slot_pages; /* [q_nslot_pages] */
	struct vio_blk_part *q_parts;	    /* [depth] */
	uint16_t *q_free;		    /* [depth] */
	uint32_t q_priv_bytes;
	uint16_t q_nslot_pages; /* slot pages allocated */
	uint16_t q_nfree;
	uint16_t q_depth;
	uint32_t q_seg_max;	       /* data segments per part on this queue */
	struct vio_blk_req *q_waiting; /* the request with parts still to post: while there is
					  one, the queue takes no new request */
};

/*
 * One virtio-blk device. Caller-owned; vio_blk_init fills it. `dev`, `info` and `stats` are
 * read-only for the caller; the rest is private.
 */
struct vio_blk {
	struct vio_dev *dev;
	struct vio_blk_info info;
	struct vio_blk_stats stats;

	/* --- private to virtio_blk.c ----------------------------------------------------- */
	struct vio_blk_opts blk_opts; /* as given to init, with the defaults filled in */
	struct vio_vq blk_vqs[VIO_BLK_MAX_QUEUES];
	struct vio_blk_queue blk_q[VIO_BLK_MAX_QUEUES];
	uint16_t blk_next_queue;   /* round-robin cursor */
	bool blk_broken;	   /* a queue broke or a request timed out: only fini is left */
	bool blk_dead;		   /* fini's reset was not confirmed: calls return VIO_EDEAD */
	unsigned blk_plugged;	   /* vio_blk_plug depth: submits do not notify the device */
	bool blk_cap_logged;	   /* a capacity change was logged ... */
	uint64_t blk_cap_log_ns;   /* ... at this time (port->now_ns) */
	uint32_t blk_cap_unlogged; /* changes seen since, not logged */
	/* vio_blk_panic_reserve: one slot and one buffer in a DMA allocation of their own */
	struct vio_blk_slot *blk_panic_slot;
	uint8_t *blk_panic_buf;
	uint32_t blk_panic_bytes; /* the buffer's size */
	uint32_t blk_panic_alloc; /* the allocation's size */
	bool blk_panic_stuck;	  /* a panic write timed out: its slot is still the device's */
};

/*
 * Bring up `dev` (probed by vio_pci_probe or vio_mmio_probe, nothing else done yet) as a
 * block device: negotiate features, read the config, set up interrupts and up to
 * VIO_BLK_MAX_QUEUES request queues with their DMA slots, name it "virtio-blk", DRIVER_OK.
 * `opts` may be NULL. Keep `blk` and `dev` alive and in place until vio_blk_fini. Returns
 * 0; VIO_ENODEV (not a block device); VIO_ENOTSUP (a queue too small to carry a request);
 * VIO_ENOMEM; or the core's error (VIO_EFEATURES, VIO_ETIMEDOUT, VIO_EIO, VIO_ENEEDRESET,
 * ...), with the device marked FAILED and nothing left allocated. Not IRQ-safe.
 */
int vio_blk_init(struct vio_blk *blk, struct vio_dev *dev, const struct vio_blk_opts *opts);

/*
 * Reset the device and free everything init allocated. Requests still in flight complete
 * with VIO_EIO (their callbacks run here, in the caller's context), except a synchronous
 * request that timed out, whose caller has already been told. Returns 0; or VIO_EDEAD when
 * the device did not confirm the reset: it may go on writing what it was given, so the DMA
 * slots and the rings are kept (leaked on purpose), the requests it holds complete with
 * VIO_EDEAD (keep their buffers), the device is dead (vio_dev_is_dead) and marked FAILED,
 * it is logged, every later call on `blk` returns VIO_EDEAD, and `blk` and its vio_dev must
 * stay allocated (a wired interrupt line's handler still points at the device). Safe after
 * a failed init and twice (the second call returns 0). Not IRQ-safe.
 */
int vio_blk_fini(struct vio_blk *blk);

/*
 * Start an asynchronous request. Checks it first, without touching the device:
 * VIO_EINVAL (unknown op, NULL callback, no or zero-sized data, a segment that is not whole
 * sectors, a range beyond the capacity), VIO_EALIGN (a READ or WRITE whose first sector or
 * any segment's length is not a multiple of info.blk_size, the device's logical block),
 * VIO_EROFS (WRITE/DISCARD/WRITE_ZEROES on a read-only device), VIO_ENOTSUP (DISCARD or
 * WRITE_ZEROES the device did not offer), VIO_EIO (the device is broken; VIO_ENEEDRESET
 * when it said it needs a reset). A FLUSH on a
 * device without a write-back cache has nothing to do: its callback runs with 0 before this
 * returns. Otherwise posts as many device requests as fit now and notifies the device;
 * parts that do not fit are posted by later completions. Returns 0 (the callback will run
 * exactly once), or VIO_ENOSPC when not even the first part fits: nothing was posted, retry
 * after completions. On any negative return the callback does not run. IRQ-safe.
 */
int vio_blk_submit(struct vio_blk *blk, struct vio_blk_req *req);

/*
 * Reap the completions of every request queue, at most a ring's worth from each, running
 * the callbacks of the requests that finished, and post waiting parts into the room they
 * left. Needed when the device has no interrupts (dev->irq_mode == VIO_IRQ_POLL), and now
 * and then otherwise (see Context). It also has the core look at the device's status now
 * and then (vio_dev_poll): a polled device may ask for a reset there alone. Returns how many
 * caller requests completed; VIO_EIO when a queue is broken (those requests complete only
 * in vio_blk_fini); VIO_ENEEDRESET when the device set DEVICE_NEEDS_RESET (2.1.2; every
 * queue is then broken). IRQ-safe.
 */
int vio_blk_poll(struct vio_blk *blk);

/*
 * Batch submissions: between vio_blk_plug and the matching vio_blk_unplug, vio_blk_submit
 * posts requests without notifying the device; unplug notifies every queue that got new
 * requests, once. Under emulation each notification is a trap into the hypervisor, so a
 * caller with many requests ready (a queue depth of 32) saves all but one. Plugs nest.
 * Synchronous calls notify regardless. IRQ-safe (but pair them in one context).
 */
void vio_blk_plug(struct vio_blk *blk);
void vio_blk_unplug(struct vio_blk *blk);

/* Device requests posted and not yet completed, over all queues. IRQ-safe. */
unsigned vio_blk_in_flight(const struct vio_blk *blk);

/*
 * Submit `req` (its on_done/arg are ignored and overwritten) and poll until it completes,
 * calling opts.wait once every VIO_BLK_SPIN_NS of polling (a full queue is waited
 * for the same way). Returns its status, a vio_blk_submit error (VIO_ENOSPC only when the
 * queue stays full until the timeout), VIO_ETIMEDOUT after opts.timeout_ns, or VIO_EIO
 * (a broken queue); on a timeout or a broken queue the device's status is read and
 * VIO_ENEEDRESET returned instead when it sets DEVICE_NEEDS_RESET (2.1.2: a polled device
 * has no config interrupt to say so). A broken queue, a device that needs a reset, and a
 * timeout once the request was posted leave the device unusable: the request may still be
 * in the device's hands, so its buffers must not be reused before vio_blk_fini reset the
 * device. Completions of other requests found meanwhile run their callbacks. Works with
 * interrupts disabled; not IRQ-safe (it may spin for the timeout).
 */
int vio_blk_submit_wait(struct vio_blk *blk, struct vio_blk_req *req);

/*
 * Synchronous I/O: vio_blk_submit_wait on a request built from the arguments. `len` is a
 * non-zero multiple of 512 below 4 GiB. Same errors as vio_blk_submit and
 * vio_blk_submit_wait. Not IRQ-safe.
 */
int vio_blk_read(struct vio_blk *blk, uint64_t sector, void *buf, size_t len);
int vio_blk_write(struct vio_blk *blk, uint64_t sector, const void *buf, size_t len);
/* Flush the write-back cache; 0 at once when the device has none. Not IRQ-safe. */
int vio_blk_flush(struct vio_blk *blk);
int vio_blk_discard(struct vio_blk *blk, uint64_t sector, uint64_t nsectors);
int vio_blk_write_zeroes(struct vio_blk *blk, uint64_t sector, uint64_t nsectors, bool unmap);

/*
 * Fetch the device's id string (serial) into info.serial and, NUL-terminated and cut to
 * fit, into buf[size] (buf may be NULL). Returns 0, VIO_ENOTSUP (the device has no id), or
 * the errors of vio_blk_submit_wait. Not IRQ-safe.
 */
int vio_blk_get_id(struct vio_blk *blk, char *buf, size_t size);

/*
 * Choose the cache mode (VIRTIO_BLK_F_CONFIG_WCE, 5.2.5): write-back (on) or write-through,
 * and read back what the device kept into info.writeback. Returns 0, VIO_ENOTSUP (no
 * CONFIG_WCE) or VIO_EIO (the device did not take the value). Not IRQ-safe.
 */
int vio_blk_set_writeback(struct vio_blk *blk, bool on);

/*
 * Panic-safe polled writes, for a crash dump: a kernel that has panicked writes through
 * these with interrupts off, without allocating and without waiting for anything but the
 * one request it posts.
 *
 * Reserve at init time (not IRQ-safe): vio_blk_panic_reserve sets aside, in one DMA
 * allocation, a request slot and a buffer of up to `bytes` (rounded down to whole logical
 * blocks and to what one segment may carry: info.size_max, info.max_transfer), and keeps
 * VIO_BLK_PANIC_DESCS descriptors of request queue 0 free from then on (ordinary requests
 * on queue 0 wait for room one descriptor chain earlier). Returns the buffer's size and sets
 * *buf; VIO_EINVAL (bytes below one block, or a reservation already made), VIO_ENOTSUP
 * (queue 0 has fewer than 8 entries), VIO_EROFS, VIO_ENOMEM, or the errors of a device given
 * up on (VIO_EIO, VIO_ENEEDRESET, VIO_EDEAD). vio_blk_fini frees the reservation.
 *
 * vio_blk_panic_write(blk, sector, len) writes the first `len` bytes of that buffer at
 * `sector`: it posts one request on queue 0 with the reserved slot, notifies the device and
 * polls queue 0 until that request comes back or opts.timeout_ns passes. Requests in flight
 * are abandoned, never waited for: their completions are taken off the ring and dropped,
 * their callbacks never run (not even from vio_blk_fini), their owners never hear again.
 * The first call ends ordinary
 * service: every other call on `blk` then returns VIO_EIO, only more panic writes work. It
 * calls neither opts.wait nor any callback, allocates nothing and takes no lock.
 * Returns 0; VIO_EINVAL (nothing reserved, len 0 or above the buffer, a range beyond the
 * capacity); VIO_EALIGN (sector or len not whole logical blocks); VIO_EROFS; VIO_EIO (the
 * device answered an error, or queue 0 is broken); VIO_ETIMEDOUT (the device kept the
 * request: the slot stays its, and later panic writes return VIO_ETIMEDOUT at once);
 * VIO_EDEAD / VIO_ENEEDRESET for a device given up on.
 *
 * vio_blk_panic_flush(blk) then makes what was written durable (FLUSH, 5.2.6.2) the same
 * way, and returns 0 at once on a device without a write-back cache; same errors.
 *
 * Preconditions, which only the caller can know: the code the panic interrupted was not
 * inside a vio_blk_* or vio_vq_* call on this device's queue 0 (the queue's books would be
 * half written; a kernel tells by its own bookkeeping, for example a per-device "busy"
 * flag, and writes its dump elsewhere or not at all), no other CPU uses the device, and
 * interrupts are off (a completion interrupt must not reap the panic request). IRQ-safe.
 */
#ifndef VIO_BLK_PANIC_DESCS
#define VIO_BLK_PANIC_DESCS 3 /* header, one data segment, status: a direct chain */
#endif
int vio_blk_panic_reserve(struct vio_blk *blk, uint32_t bytes, void **buf);
int vio_blk_panic_write(struct vio_blk *blk, uint64_t sector, uint32_t len);
int vio_blk_panic_flush(struct vio_blk *blk);

#endif
