/*
 * virtio-balloon: the traditional memory balloon driver (virtio 1.2 section 5.5).
 *
 * Context: in interrupt context the driver only notes what happened and calls opts.on_wake
 * (a config change: the host set a new target; a statsq completion: it wants statistics).
 * Everything else, page_take, page_give and guest_stats included, runs inside the owner's
 * calls (vio_balloon_poll, _deflate_for_oom, _report_free, _fini), in thread context.
 *
 * The host sets a target ("num_pages": how many 4 KiB pages it wants the guest to give up);
 * the driver takes that many pages from the kernel's page allocator and tells the host their
 * page frame numbers, which lets the host reuse the memory behind them. When the target
 * falls, the driver gives pages back to the kernel. The driver never reads or writes the
 * contents of a balloon page: the host may have thrown them away.
 *
 * The driver does not know the kernel's allocator. The kernel hands it callbacks in
 * struct vio_balloon_opts: take one 4 KiB page, give one back, fill statistics.
 * Which pages the balloon holds is recorded in private memory the driver gets from
 * port->priv_alloc (pages of PFN arrays, grown and freed as the balloon changes size), never
 * in DMA memory and never in the balloon pages themselves.
 *
 *	struct vio_balloon b;                          caller-owned, like the vio_dev
 *	vio_pci_probe(&dev, &pcidev);                  a VIRTIO_ID_BALLOON function
 *	vio_balloon_init(&b, &dev, &opts);             negotiate, queues, DRIVER_OK
 *	...
 *	if (vio_balloon_pending(&b))                   (or on_wake fired, or a timer ticked)
 *		while (vio_balloon_poll(&b) > 0)       inflate / deflate / answer stats, in
 *			yield();                       bounded steps
 *	...
 *	vio_balloon_fini(&b);                          every page back to the kernel (unless
 *	                                               the reset is not confirmed)
 *
 * The kernel answers on_wake by calling vio_balloon_poll from thread context, which does at
 * most VIO_BALLOON_BATCHES_PER_POLL
 * batches of VIO_BALLOON_ARRAY_PFNS_MAX pages per call so that a shell stays responsive.
 * The kernel should also call it now and then (say once a second): when the allocator ran
 * short, the driver backs off for VIO_BALLOON_RETRY_NS and tries again on a later poll.
 *
 * Features (5.5.3) the driver asks for: MUST_TELL_HOST, STATS_VQ (when guest_stats is set),
 * DEFLATE_ON_OOM, PAGE_REPORTING. It never takes FREE_PAGE_HINT or PAGE_POISON.
 *
 * Concurrency (include/vio/port.h): no locks. One caller at a time per struct vio_balloon:
 * vio_balloon_poll, _deflate_for_oom, _report_free and _fini must not run concurrently with
 * each other. In interrupt context the driver only sets flags and calls on_wake (config
 * change, statsq), and the core's queue handler only peeks at used indexes and counts
 * interrupts; all ring work happens in those four calls. So the kernel need not mask the
 * device's interrupts around them.
 *
 * QEMU: -device virtio-balloon-pci,deflate-on-oom=on,free-page-reporting=on
 * and in the monitor (QMP): `balloon` (value = the guest RAM size wanted, in bytes),
 * `query-balloon` (the guest size QEMU derives from `actual`), `qom-get` of `guest-stats`
 * (after setting `guest-stats-polling-interval`) for what guest_stats filled in.
 */
#ifndef VIO_BALLOON_H
#define VIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_balloon.h>
#include <vio/virtio.h>
#include <vio/virtqueue.h>

/* PFNs sent in one inflate or deflate request (Linux uses the same batch). At most 1024. */
#ifndef VIO_BALLOON_ARRAY_PFNS_MAX
#define VIO_BALLOON_ARRAY_PFNS_MAX 256
#endif

/* Batches one vio_balloon_poll call does at most (8 x 256 pages = 8 MiB). */
#ifndef VIO_BALLOON_BATCHES_PER_POLL
#define VIO_BALLOON_BATCHES_PER_POLL 8
#endif

/* How long the driver waits for the device to return one request before giving up (the
 * default of vio_balloon_opts.timeout_ns). */
#ifndef VIO_BALLOON_TIMEOUT_NS
#define VIO_BALLOON_TIMEOUT_NS 5000000000ull
#endif

/* The longest one call spins for the device to return a request (its caller may have
 * interrupts off); a slower device's request stays in flight for a later call to collect. */
#ifndef VIO_BALLOON_SPIN_NS
#define VIO_BALLOON_SPIN_NS 1000000ull
#endif

/* After the kernel ran out of pages (or deflated for OOM): no inflating for this long. */
#ifndef VIO_BALLOON_RETRY_NS
#define VIO_BALLOON_RETRY_NS 1000000000ull
#endif

/* Smallest free run vio_balloon_report_free accepts, as a power of two of 4 KiB pages
 * (9: 2 MiB, the run Linux reports; smaller runs cost a host exit for little memory). */
#ifndef VIO_BALLOON_REPORT_MIN_ORDER
#define VIO_BALLOON_REPORT_MIN_ORDER 9
#endif

/* The floor: the balloon never inflates so far that the kernel would have fewer free pages
 * than this (the default of vio_balloon_opts.floor_pages; 8192 pages = 32 MiB). */
#ifndef VIO_BALLOON_FLOOR_PAGES
#define VIO_BALLOON_FLOOR_PAGES 8192u
#endif

/* One guest statistic as the kernel reports it (tag: VIRTIO_BALLOON_S_*; sizes in bytes). */
struct vio_balloon_stat_val {
	uint16_t tag;
	uint64_t val;
};

struct vio_balloon;

/*
 * Options for vio_balloon_init. Not optional: the driver needs the kernel's page allocator.
 * Every callback gets the balloon first and `arg` last. page_take, page_give and guest_stats
 * are called from vio_balloon_poll, _deflate_for_oom and _fini, so in thread context, one at
 * a time.
 */
struct vio_balloon_opts {
	/*
	 * Required. Take one 4 KiB page from the kernel's allocator for the balloon and store
	 * its page frame number (physical address >> 12) in *pfn. Return 0, or a negative
	 * vio_err (VIO_ENOMEM) when memory is short: the driver then stops inflating for now.
	 * The PFN must fit in 32 bits (the spec's PFNs do: memory below 16 TiB). The kernel
	 * must not touch the page until page_give returns it.
	 */
	int (*page_take)(struct vio_balloon *b, uint32_t *pfn, void *arg);
	/* Required. Give back a page page_take returned earlier: the kernel owns it again. Its
	 * contents are undefined (the host may have replaced it with a zeroed page). */
	void (*page_give)(struct vio_balloon *b, uint32_t pfn, void *arg);
	/*
	 * Optional (NULL: STATS_VQ is not negotiated). Fill up to `max` statistics into out
	 * and return how many; the driver sends them to the host (5.5.6.3). Called at init and
	 * from vio_balloon_poll when the host asks for fresh numbers. Return 0 when nothing is
	 * available yet: the driver then asks again on the next poll.
	 */
	unsigned (*guest_stats)(struct vio_balloon *b, struct vio_balloon_stat_val *out,
				unsigned max, void *arg);
	/* Optional: vio_balloon_poll has new work. Runs in INTERRUPT context (config change or
	 * statsq interrupt): it should only wake whatever calls vio_balloon_poll. */
	void (*on_wake)(struct vio_balloon *b, void *arg);
	void *arg; /* passed to every callback above */
	/* How long one request may stay with the device (0: VIO_BALLOON_TIMEOUT_NS). */
	uint64_t timeout_ns;
	/*
	 * Optional (NULL: no floor). The kernel's free 4 KiB pages now. Before each inflate
	 * batch the driver asks, and takes no page that would leave fewer than floor_pages
	 * free, whatever the host's target: a host asking for everything gets what is above
	 * the floor (logged once), and the driver tries again after VIO_BALLOON_RETRY_NS.
	 */
	uint64_t (*free_pages)(struct vio_balloon *b, void *arg);
	uint32_t floor_pages; /* 0: VIO_BALLOON_FLOOR_PAGES */
};

/* Counters, free-running, in 4 KiB pages unless said otherwise. */
struct vio_balloon_stats {
	uint64_t inflated;	 /* pages given to the host */
	uint64_t deflated;	 /* pages given back to the kernel (including OOM and fini) */
	uint64_t oom_deflated;	 /* ... of which by vio_balloon_deflate_for_oom */
	uint64_t take_failures;	 /* times page_take said no (the driver backed off) */
	uint64_t config_changes; /* config-change interrupts */
	uint64_t stats_requests; /* stats buffers the host returned asking for fresh numbers */
	uint64_t reports;	 /* free runs reported (vio_balloon_report_free) */
	uint64_t reported_pages; /* ... and their pages */
};

/* The driver's record of the pages it holds (private pages of PFNs). Private to the driver. */
struct vio_balloon_chunk;

/*
 * The device. Caller-owned; vio_balloon_init fills it. The fields above the line may be read
 * (not written) by the kernel; the bal_ fields are private to src/drivers/virtio_balloon.c.
 */
struct vio_balloon {
	struct vio_dev *dev;
	struct vio_balloon_stats stats;
	bool tell_host; /* MUST_TELL_HOST: the host hears of a deflate before the kernel */
	bool oom;	/* DEFLATE_ON_OOM: vio_balloon_deflate_for_oom works */
	bool stats_vq;	/* STATS_VQ: the statsq is in use */
	bool reporting; /* PAGE_REPORTING: vio_balloon_report_free works */

	/* --- private to virtio_balloon.c ------------------------------------------------- */
	struct vio_balloon_opts bal_opts;
	struct vio_vq bal_vqs[4]; /* inflateq, deflateq, then statsq and reporting_vq if used */
	struct vio_vq *bal_inflate_vq, *bal_deflate_vq, *bal_stats_vq, *bal_report_vq;
	uint32_t bal_target;		      /* num_pages as last read */
	uint32_t bal_held;		      /* pages the driver holds (recorded in bal_chunks) */
	struct vio_balloon_chunk *bal_chunks; /* newest first; only the newest may be partly full */
	uint32_t *bal_pfns;		      /* DMA: the PFN array of the request in flight */
	struct virtio_balloon_stat *bal_stats_buf; /* DMA: the statsq buffer */
	void *bal_dma;				   /* one DMA page holding both */
	volatile bool bal_config_changed;	   /* set in IRQ context, cleared by poll */
	bool bal_stats_posted;			   /* the statsq buffer is with the device */
	bool bal_broken;			   /* a request timed out or the queue broke */
	bool bal_warned_short;			   /* logged "kernel out of pages" already */
	bool bal_warned_floor;			   /* logged "stopped at the floor" already */
	uint64_t bal_retry_at;			   /* no inflating before this now_ns */
	uint8_t bal_req;			   /* the request in flight: BAL_REQ_* */
	uint32_t bal_req_pfns;			   /* ... the PFNs it carries */
	uint64_t bal_req_posted;		   /* ... and when it was posted (now_ns) */
	uint64_t bal_spin_end;			   /* this call waits for the device until then */
};

/*
 * Bring up a balloon device `dev` has been probed into (vio_pci_probe / vio_mmio_probe):
 * negotiate, choose interrupts, set up the queues at the indices the negotiated features
 * give them (5.5.2), post the first stats buffer, set DRIVER_OK (dev->name becomes
 * "virtio-balloon") and read the first target. Inflating starts on the first
 * vio_balloon_poll. opts, opts->page_take and opts->page_give are required.
 *
 * PAGE_REPORTING is only asked for when every queue feature numbered before it that the
 * device offers is negotiated too (it offers FREE_PAGE_HINT, which we never take, or STATS_VQ
 * without guest_stats: no reporting), because QEMU numbers queues by the features it offers
 * while the spec numbers them by those negotiated; this way both agree.
 *
 * Returns 0; VIO_ENODEV (not a balloon); VIO_EINVAL (opts or a required member NULL);
 * VIO_EPROTO (config space too short for num_pages and actual); VIO_ENOMEM; or the core's
 * error. On failure the device is torn down and marked FAILED, and nothing stays allocated.
 * Not IRQ-safe.
 */
int vio_balloon_init(struct vio_balloon *b, struct vio_dev *dev,
		     const struct vio_balloon_opts *opts);

/*
 * Do the pending work, bounded: re-read the target after a config change, answer a stats
 * request (guest_stats, then post the buffer again), and move at most
 * VIO_BALLOON_BATCHES_PER_POLL batches toward the target, writing `actual` after each batch
 * the device completed. Inflating stops when page_take fails (logged once; the driver keeps
 * what it has and retries after VIO_BALLOON_RETRY_NS), and at the floor (opts.free_pages).
 * One call waits for the device at most VIO_BALLOON_SPIN_NS in all: a request the device
 * holds longer stays in flight, and later calls collect it, up to opts.timeout_ns.
 * Returns 1 when more work is pending (call again soon), 0 when there is none for now,
 * VIO_ETIMEDOUT (the device kept a request: the balloon stops working, pages in it stay
 * held until vio_balloon_fini), VIO_EIO (the device broke a queue rule) or VIO_ENEEDRESET
 * (either, and the device says it needs a reset, 2.1.2). Thread context only (calls
 * page_take, page_give); not IRQ-safe.
 */
int vio_balloon_poll(struct vio_balloon *b);

/* True when vio_balloon_poll has something to do now. IRQ-safe. */
bool vio_balloon_pending(const struct vio_balloon *b);

/* The host's target: pages it wants in the balloon (config num_pages). IRQ-safe. */
uint32_t vio_balloon_target(const struct vio_balloon *b);
/* Pages the balloon holds now (what `actual` says once the device completed the batch). */
uint32_t vio_balloon_actual(const struct vio_balloon *b);

/*
 * The kernel is out of memory: give up to `npages` balloon pages back to it now (through
 * opts.page_give; with MUST_TELL_HOST the host hears of them first), update `actual`, and
 * back off inflating for VIO_BALLOON_RETRY_NS (5.5.6.1 lets a DEFLATE_ON_OOM driver use
 * balloon pages for the system's stability). It waits for the host at most
 * VIO_BALLOON_SPIN_NS (the allocator may have interrupts masked): a request the host holds
 * longer stays in flight, and a later call (this one or vio_balloon_poll) collects it.
 * Returns how many pages it gave back (0 when the balloon is empty); VIO_EAGAIN when none
 * came back yet because the host still holds a request (call again, with interrupts let in
 * between, if the caller may wait); VIO_ENOTSUP when DEFLATE_ON_OOM was not negotiated;
 * VIO_ETIMEDOUT, VIO_EIO or VIO_ENEEDRESET as vio_balloon_poll.
 *
 * Meant for the allocator's failure path, in thread context. Re-entrancy: it calls
 * page_give from inside whatever allocator call failed, so the allocator must accept
 * a free while it is in the middle of an allocation (drop its lock first, or call this
 * after unwinding). It allocates no memory itself (the PFN array exists already; a
 * bookkeeping page that empties is freed through port->priv_free). Must not run
 * concurrently with another vio_balloon_* call on the same device. Not IRQ-safe.
 */
int vio_balloon_deflate_for_oom(struct vio_balloon *b, uint32_t npages);

/*
 * Free page reporting (5.5.6.7): tell the host that the `npages` pages at `addr` (a kernel
 * virtual address, translated by port->virt_to_phys like any buffer) are free, so it may
 * reclaim the memory behind them, and wait until the device is done with the run. The run
 * is sent as one device-writable descriptor. npages must be a power of two of at least
 * 2^VIO_BALLOON_REPORT_MIN_ORDER and below 2^20 (4 GiB), and addr aligned to the run's size.
 * The kernel must keep the pages free (not hand them out, not touch them) until this call
 * returns; afterwards their contents are undefined and the host faults fresh memory in on
 * the next access. Optional: a kernel may never call it. It waits for the host up to
 * opts.timeout_ns: call it where a wait is allowed (interrupts on), never from the OOM path.
 * Returns 0; VIO_ENOTSUP (PAGE_REPORTING not negotiated); VIO_EINVAL (a bad run);
 * VIO_ETIMEDOUT, VIO_EIO or VIO_ENEEDRESET as vio_balloon_poll: then the device may still
 * hold the run, and the pages stay the host's until vio_balloon_fini returned 0 (after an
 * unconfirmed reset, for good). Thread context; not IRQ-safe.
 */
int vio_balloon_report_free(struct vio_balloon *b, const void *addr, uint32_t npages);

/*
 * Empty the balloon and shut the device down: tell the host (MUST_TELL_HOST, when the device
 * still works) and give every held page back to the kernel, write `actual`, reset the
 * device, free the queues, the vectors and the driver's DMA memory. After a timeout or a
 * broken queue the device is reset first, and then the pages are given back (a reset device
 * holds nothing). Returns 0, or VIO_EDEAD when the device did not confirm the reset:
 * then it may still write the pages it holds and read the driver's DMA page, so neither is
 * given back (the pages stay counted in vio_balloon_actual and are lost to the kernel), the
 * device is marked FAILED, and the error is logged. Safe on a balloon whose init failed, and
 * twice (the second call returns 0). Not IRQ-safe.
 */
int vio_balloon_fini(struct vio_balloon *b);

#endif
