/*
 * virtio-balloon: the traditional memory balloon (virtio 1.2 section 5.5). See
 * include/vio/balloon.h for the API and the kernel's side of the contract.
 *
 * Exercised by QEMU with
 *
 *	-device virtio-balloon-pci,deflate-on-oom=on,free-page-reporting=on
 *
 * and driven from the QEMU monitor: `balloon` with the guest RAM size wanted sets num_pages
 * to (ram_size - value) / 4096 and raises a config interrupt; `query-balloon` reports
 * ram_size - actual * 4096, so it only moves when we write `actual`; `qom-get` of the
 * device's `guest-stats` shows what we last sent on the statsq, once
 * `guest-stats-polling-interval` is set (QEMU then returns our stats buffer every interval,
 * which is how it asks for fresh numbers).
 *
 * The device's side of the conversation (5.5.6):
 *
 *	inflateq   we send an array of 32-bit PFNs; once the device returns the buffer it has
 *	           taken those pages (it may have discarded their contents).
 *	deflateq   the same array format for pages we take back. With MUST_TELL_HOST we may
 *	           not touch them until the device returned the buffer (5.5.6.1).
 *	statsq     we keep one buffer of statistics with the device; it returns it when it
 *	           wants fresh numbers, and we refill and post it again (5.5.6.3).
 *	reporting  one device-writable buffer covering a free run; while the device holds it,
 *	           the memory is the host's (5.5.6.7).
 *	config     num_pages is the target the host sets; `actual` is ours to write, after each
 *	           request the device completed, so that it always tells the truth.
 *
 * One inflate or deflate request at a time: post, kick, poll the used ring for it. That keeps
 * one PFN array (in DMA memory) enough for both queues, and makes the order of "tell the
 * host" and "give the page back" plain to see. A call spins at most VIO_BALLOON_SPIN_NS for
 * the answer (its caller may have interrupts off): a slower device keeps the request in
 * flight (bal_req), and a later call collects it, until opts.timeout_ns since it was posted.
 * Used lengths on the inflate, deflate and reporting queues mean nothing (the device writes
 * no data) and are ignored; the core already refuses completions of requests that are not in
 * flight.
 *
 * Which pages the balloon holds is kept in "chunks": pages of private memory (vio_priv_alloc)
 * holding a link and an array of PFNs, newest first, used as a stack. The device can neither
 * reach nor rewrite them, so what the kernel gets back is exactly what it lent: the PFN array
 * posted to the device is only ever written by the driver, never read back.
 *
 * Follow one request (an inflate batch):
 *	config_changed    the host raised num_pages: note it, opts.on_wake (interrupt context)
 *	vio_balloon_poll  in the owner's thread: step() re-reads the target (read_target)
 *	inflate_batch     page_take per page; push_pfn records it; its PFN goes into the array
 *	post_pfns         posts the array on the inflateq, kicks, and collect()s the answer
 *	request_done      once the device returned it: write_actual tells the device how many
 *	                  pages the balloon now holds
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/alloc.h>
#include <vio/balloon.h>
#include <vio/spec/virtio_balloon.h>
#include <vio/virtqueue.h>

#include "driver.h"

#define PAGE	     4096u
#define CHUNK_PFNS   ((PAGE - 16) / sizeof(uint32_t))
#define STATS_OFFSET 2048u /* the stats buffer shares the PFN array's DMA page */

_Static_assert(VIO_BALLOON_ARRAY_PFNS_MAX >= 1 &&
		   VIO_BALLOON_ARRAY_PFNS_MAX * sizeof(uint32_t) <= STATS_OFFSET,
	       "the PFN array must fit in front of the stats buffer");
_Static_assert(STATS_OFFSET + VIRTIO_BALLOON_S_NR * sizeof(struct virtio_balloon_stat) <= PAGE,
	       "the stats buffer must fit in the DMA page");
_Static_assert(VIO_BALLOON_BATCHES_PER_POLL >= 1, "VIO_BALLOON_BATCHES_PER_POLL out of range");
_Static_assert(VIO_BALLOON_REPORT_MIN_ORDER <= 19, "a reported run must stay below 4 GiB");

/* One page of the driver's record of held PFNs. */
struct vio_balloon_chunk {
	struct vio_balloon_chunk *next; /* older chunk, always full */
	uint32_t count;			/* pfn[0..count) are held */
	uint32_t pad;
	uint32_t pfn[CHUNK_PFNS];
};
_Static_assert(sizeof(struct vio_balloon_chunk) <= PAGE, "a chunk is one page");

/* bal_req: the inflate or deflate request the device holds (they share the PFN array). */
enum { BAL_REQ_NONE, BAL_REQ_INFLATE, BAL_REQ_DEFLATE };

/* The balloon has few requests in flight (one per queue): small rings are plenty. */
#define QUEUE_SIZE 8

static const char balloon_name[] = "virtio-balloon";

static const struct vio_port *port_of(const struct vio_balloon *b)
{
	return b->dev->port;
}

static uint64_t now(const struct vio_balloon *b)
{
	return port_of(b)->now_ns(port_of(b)->ctx);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* --- the record of held pages ---------------------------------------------------------------- */

/* Make sure one more PFN can be recorded: a new chunk when the newest is full. */
static bool make_room(struct vio_balloon *b)
{
	struct vio_balloon_chunk *c;

	if (b->bal_chunks && b->bal_chunks->count < CHUNK_PFNS)
		return true;
	c = vio_priv_alloc(port_of(b), PAGE);
	if (!c)
		return false;
	c->next = b->bal_chunks;
	c->count = 0;
	b->bal_chunks = c;
	return true;
}

/* Record pfn as held. make_room() must have succeeded. */
static void push_pfn(struct vio_balloon *b, uint32_t pfn)
{
	VIO_ASSERT(b->bal_chunks && b->bal_chunks->count < CHUNK_PFNS);
	b->bal_chunks->pfn[b->bal_chunks->count++] = pfn;
	b->bal_held++;
}

/* Forget the newest held PFN and return it; a chunk that empties goes back to the port. */
static uint32_t pop_pfn(struct vio_balloon *b)
{
	struct vio_balloon_chunk *c = b->bal_chunks;

	VIO_ASSERT(b->bal_held > 0 && c && c->count > 0);
	uint32_t pfn = c->pfn[--c->count];

	b->bal_held--;
	if (c->count == 0) {
		b->bal_chunks = c->next;
		vio_priv_free(port_of(b), c, PAGE);
	}
	return pfn;
}

/* Copy the n newest held PFNs, newest first (the order pop_pfn will return them). */
static void peek_pfns(const struct vio_balloon *b, uint32_t n, uint32_t *out)
{
	const struct vio_balloon_chunk *c = b->bal_chunks;
	uint32_t i = c->count;

	VIO_ASSERT(n <= b->bal_held);
	for (uint32_t k = 0; k < n; k++) {
		if (i == 0) {
			c = c->next;
			i = c->count;
		}
		out[k] = c->pfn[--i];
	}
}

/* --- talking to the device ------------------------------------------------------------------- */

/*
 * The device broke a rule or kept a request: the balloon stops, fini cleans up. A request
 * that timed out or a broken queue may be the device asking for a reset (2.1.2): that is
 * what the caller hears then.
 */
static int stop(struct vio_balloon *b, int err)
{
	err = vio_dev_error(b->dev, err);
	if (!b->bal_broken)
		vio_logf(port_of(b), VIO_LOG_ERR, "%s: %s, balloon stopped (holds %u pages)",
			 balloon_name, vio_strerror(err), b->bal_held);
	b->bal_broken = true;
	return err;
}

/*
 * Post one request, kick, and poll until the device returns it (vio_balloon_report_free only,
 * which the caller calls where it may wait). The interrupts of these queues are switched
 * off: nothing else would look at the completion anyway.
 */
static int send_and_wait(struct vio_balloon *b, struct vio_vq *vq, const void *buf, uint32_t len,
			 bool device_writes)
{
	struct vio_sg sg = {buf, len};
	struct vio_vq_used u;
	int err;

	err = vio_vq_add(vq, &sg, device_writes ? 0 : 1, device_writes ? 1 : 0, (void *)buf);
	if (err)
		return stop(b, err);
	vio_vq_kick(vq);

	uint64_t deadline = now(b) + b->bal_opts.timeout_ns;
	while ((err = vio_vq_get_used(vq, &u)) == VIO_EAGAIN) {
		if (now(b) > deadline)
			return stop(b, VIO_ETIMEDOUT);
	}
	return err ? stop(b, err) : 0;
}

/* 5.5.6: the driver updates `actual` after it processed a request, so it always tells the
 * truth about what the host may take. */
static void write_actual(struct vio_balloon *b)
{
	uint32_t v = b->bal_held;

	vio_dev_config_write(b->dev, offsetof(struct virtio_balloon_config, actual), &v, sizeof(v));
}

/*
 * The device returned the request in flight: what it allows now. A deflate with
 * MUST_TELL_HOST gives its pages back only here (5.5.6.1); the others moved their pages
 * when they were posted. Returns the pages the request moved.
 */
static int request_done(struct vio_balloon *b)
{
	uint32_t n = b->bal_req_pfns;

	if (b->bal_req == BAL_REQ_INFLATE) {
		b->stats.inflated += n;
	} else if (b->tell_host) {
		for (uint32_t i = 0; i < n; i++)
			b->bal_opts.page_give(b, pop_pfn(b), b->bal_opts.arg);
		b->stats.deflated += n;
	}
	b->bal_req = BAL_REQ_NONE;
	write_actual(b);
	return (int)n;
}

/* A public call begins: it may spin for the device until `spin` ns from now, in all. */
static void begin_call(struct vio_balloon *b, uint64_t spin)
{
	b->bal_spin_end = now(b) + spin;
}

/*
 * Poll for the request in flight until the call's spin budget is spent (begin_call).
 * Returns what request_done returns, VIO_EAGAIN when the device still holds it (within
 * opts.timeout_ns of its posting: ask again later), or the error that stopped the balloon.
 */
static int collect(struct vio_balloon *b)
{
	struct vio_vq *vq = b->bal_req == BAL_REQ_INFLATE ? b->bal_inflate_vq : b->bal_deflate_vq;
	struct vio_vq_used u;
	int err;

	VIO_ASSERT(b->bal_req != BAL_REQ_NONE);
	while ((err = vio_vq_get_used(vq, &u)) == VIO_EAGAIN) {
		uint64_t t = now(b);

		if (t - b->bal_req_posted > b->bal_opts.timeout_ns)
			return stop(b, VIO_ETIMEDOUT);
		if (t >= b->bal_spin_end)
			return VIO_EAGAIN;
	}
	return err ? stop(b, err) : request_done(b);
}

/* Post the first n PFNs of the array as an inflate or deflate request and collect it. */
static int post_pfns(struct vio_balloon *b, uint8_t kind, uint32_t n)
{
	struct vio_vq *vq = kind == BAL_REQ_INFLATE ? b->bal_inflate_vq : b->bal_deflate_vq;
	struct vio_sg sg = {b->bal_pfns, n * (uint32_t)sizeof(uint32_t)};
	int err;

	VIO_ASSERT(b->bal_req == BAL_REQ_NONE); /* the array is the request's until it is back */
	err = vio_vq_add(vq, &sg, 1, 0, b->bal_pfns);
	if (err)
		return stop(b, err);
	vio_vq_kick(vq);
	b->bal_req = kind;
	b->bal_req_pfns = n;
	b->bal_req_posted = now(b);
	return collect(b);
}

static int read_target(struct vio_balloon *b)
{
	uint32_t v;
	int err = vio_dev_config_read(b->dev, offsetof(struct virtio_balloon_config, num_pages), &v,
				      sizeof(v));

	if (err)
		return stop(b, err);
	b->bal_target = v;
	return 0;
}

static bool backing_off(const struct vio_balloon *b)
{
	return b->bal_retry_at && now(b) < b->bal_retry_at;
}

static void back_off(struct vio_balloon *b)
{
	b->bal_retry_at = now(b) + VIO_BALLOON_RETRY_NS;
}

/* --- inflate and deflate (5.5.6) ---------------------------------------------------------- */

/*
 * Of n pages the host wants, how many the kernel can give without falling below the floor:
 * a host asking for everything must not leave the kernel without memory. Logged once.
 */
static uint32_t above_floor(struct vio_balloon *b, uint32_t n)
{
	uint64_t free, room;

	if (!b->bal_opts.free_pages)
		return n;
	free = b->bal_opts.free_pages(b, b->bal_opts.arg);
	room = free > b->bal_opts.floor_pages ? free - b->bal_opts.floor_pages : 0;
	if (room >= n)
		return n;
	if (!b->bal_warned_floor)
		vio_logf(port_of(b), VIO_LOG_WARN,
			 "%s: host wants %u pages, keeping the floor of %u pages free (holds %u)",
			 balloon_name, b->bal_target, b->bal_opts.floor_pages, b->bal_held);
	b->bal_warned_floor = true;
	return (uint32_t)room;
}

/*
 * Take up to n pages from the kernel and give them to the host. Returns how many went, 0
 * when the kernel (or the port, for a bookkeeping page) had none to spare, or an error.
 */
static int inflate_batch(struct vio_balloon *b, uint32_t n)
{
	uint32_t got = 0;
	int err = 0;

	while (got < n) {
		uint32_t pfn;

		if (!make_room(b)) {
			err = VIO_ENOMEM;
			break;
		}
		err = b->bal_opts.page_take(b, &pfn, b->bal_opts.arg);
		if (err)
			break;
		push_pfn(b, pfn);
		b->bal_pfns[got++] = pfn;
	}
	if (err) {
		b->stats.take_failures++;
		if (!b->bal_warned_short)
			vio_logf(port_of(b), VIO_LOG_WARN,
				 "%s: out of memory at %u of %u pages, keeping what we have",
				 balloon_name, b->bal_held, b->bal_target);
		b->bal_warned_short = true;
		back_off(b);
	}
	if (got == 0)
		return 0;

	/* The pages are recorded as held before the host hears of them: if the request never
	 * completes they stay the balloon's until fini resets the device. */
	return post_pfns(b, BAL_REQ_INFLATE, got);
}

/*
 * Give n held pages back to the kernel. With MUST_TELL_HOST the host must have returned the
 * deflate request before the kernel may touch them (5.5.6.1: request_done gives them back);
 * without it we may give them back first, and do, so that the kernel has them as early as
 * possible.
 */
static int deflate_batch(struct vio_balloon *b, uint32_t n)
{
	if (b->tell_host) {
		peek_pfns(b, n, b->bal_pfns);
	} else {
		for (uint32_t i = 0; i < n; i++) {
			/* The array is the device's to read: never read a PFN back from it. */
			uint32_t pfn = pop_pfn(b);

			b->bal_pfns[i] = pfn;
			b->bal_opts.page_give(b, pfn, b->bal_opts.arg);
		}
		b->stats.deflated += n;
	}
	return post_pfns(b, BAL_REQ_DEFLATE, n);
}

/* One batch toward the target: returns pages moved (0: nothing to do now) or an error. */
static int toward_target(struct vio_balloon *b)
{
	int err = read_target(b);

	if (err)
		return err;
	if (b->bal_held > b->bal_target)
		return deflate_batch(
		    b, min_u32(b->bal_held - b->bal_target, VIO_BALLOON_ARRAY_PFNS_MAX));
	if (b->bal_held < b->bal_target && !backing_off(b)) {
		uint32_t n = above_floor(
		    b, min_u32(b->bal_target - b->bal_held, VIO_BALLOON_ARRAY_PFNS_MAX));
		if (n)
			return inflate_batch(b, n);
		back_off(b); /* at the floor: look again later, do not spin */
	}
	return 0;
}

/*
 * One step: collect the request in flight, or start the next batch. Returns pages moved, 0
 * (nothing to do now, or the device still holds the request: vio_balloon_pending says so)
 * or an error.
 */
static int step(struct vio_balloon *b)
{
	int err = b->bal_req != BAL_REQ_NONE ? collect(b) : toward_target(b);

	return err == VIO_EAGAIN ? 0 : err;
}

/* --- statistics (5.5.6.3) ----------------------------------------------------------------- */

/* Fill the stats buffer from the kernel and give it to the device. */
static int post_stats(struct vio_balloon *b)
{
	struct vio_balloon_stat_val vals[VIRTIO_BALLOON_S_NR];
	unsigned n = b->bal_opts.guest_stats(b, vals, VIRTIO_BALLOON_S_NR, b->bal_opts.arg);
	struct vio_sg sg;
	int err;

	if (n == 0)
		return 0;
	n = n > VIRTIO_BALLOON_S_NR ? VIRTIO_BALLOON_S_NR : n;
	for (unsigned i = 0; i < n; i++) {
		b->bal_stats_buf[i].tag = vals[i].tag;
		b->bal_stats_buf[i].val = vals[i].val;
	}
	sg = (struct vio_sg){b->bal_stats_buf, (uint32_t)(n * sizeof(struct virtio_balloon_stat))};
	err = vio_vq_add(b->bal_stats_vq, &sg, 1, 0, b->bal_stats_buf);
	if (err)
		return stop(b, err);
	b->bal_stats_posted = true;
	vio_vq_kick(b->bal_stats_vq);
	return 0;
}

/* The device returning our buffer is its request for fresh statistics. */
static int answer_stats(struct vio_balloon *b)
{
	struct vio_vq_used u;
	int err;

	while ((err = vio_vq_get_used(b->bal_stats_vq, &u)) == 0) {
		/* The core checked the id was in flight: our one stats buffer came back. */
		VIO_ASSERT(u.cookie == b->bal_stats_buf && b->bal_stats_posted);
		b->bal_stats_posted = false;
		b->stats.stats_requests++;
	}
	if (err != VIO_EAGAIN)
		return stop(b, err);
	return b->bal_stats_posted ? 0 : post_stats(b);
}

/* --- the public calls ---------------------------------------------------------------------- */

bool vio_balloon_pending(const struct vio_balloon *b)
{
	if (!b->dev || b->bal_broken)
		return false;
	if (b->bal_config_changed || (b->stats_vq && vio_vq_has_used(b->bal_stats_vq)))
		return true;
	if (b->bal_req != BAL_REQ_NONE)
		return true;
	if (b->bal_held > b->bal_target)
		return true;
	return b->bal_held < b->bal_target && !backing_off(b);
}

int vio_balloon_poll(struct vio_balloon *b)
{
	int err = 0;

	if (!b->dev || b->bal_broken)
		return VIO_EIO;
	/* A device may ask for a reset in its status alone (2.1.2): the core looks now and then. */
	err = vio_dev_poll(b->dev);
	if (err)
		return stop(b, err);
	b->bal_config_changed = false;
	begin_call(b, VIO_BALLOON_SPIN_NS);
	if (b->stats_vq) {
		err = answer_stats(b);
		if (err)
			return err;
	}
	/* Re-read the target before every batch: it may move while we work. */
	for (int i = 0; i < VIO_BALLOON_BATCHES_PER_POLL; i++) {
		err = step(b);
		if (err <= 0)
			break;
	}
	if (err < 0)
		return err;
	return vio_balloon_pending(b) ? 1 : 0;
}

uint32_t vio_balloon_target(const struct vio_balloon *b)
{
	return b->bal_target;
}

uint32_t vio_balloon_actual(const struct vio_balloon *b)
{
	return b->bal_held;
}

int vio_balloon_deflate_for_oom(struct vio_balloon *b, uint32_t npages)
{
	uint64_t before;
	uint32_t done = 0;
	int err = 0;

	if (!b->dev || !b->oom)
		return VIO_ENOTSUP;
	if (b->bal_broken)
		return VIO_EIO;
	/* A request in flight is collected first (an inflate moves no page back: done counts
	 * only what reached the kernel). */
	before = b->stats.deflated;
	begin_call(b, VIO_BALLOON_SPIN_NS);
	while (done < npages && b->bal_held) {
		err = b->bal_req != BAL_REQ_NONE
			  ? collect(b)
			  : deflate_batch(b, min_u32(min_u32(npages - done, b->bal_held),
						     VIO_BALLOON_ARRAY_PFNS_MAX));
		done = (uint32_t)(b->stats.deflated - before);
		if (err < 0)
			break;
	}
	b->stats.oom_deflated += done;
	/* The target has not moved: without a pause the next poll would take these pages
	 * straight back from a kernel that just ran out of memory. */
	if (done)
		back_off(b);
	return done || err >= 0 ? (int)done : err;
}

int vio_balloon_report_free(struct vio_balloon *b, const void *addr, uint32_t npages)
{
	uint64_t bytes = (uint64_t)npages * PAGE;
	int err;

	if (!b->dev || !b->reporting)
		return VIO_ENOTSUP;
	if (npages < (1u << VIO_BALLOON_REPORT_MIN_ORDER) || npages >= (1u << 20) ||
	    (npages & (npages - 1)) || !addr)
		return VIO_EINVAL;
	if (port_of(b)->virt_to_phys(port_of(b)->ctx, addr) & (bytes - 1))
		return VIO_EINVAL;
	if (b->bal_broken)
		return VIO_EIO;
	/* Device-writable, as Linux posts it: the host may replace the memory's contents. */
	err = send_and_wait(b, b->bal_report_vq, addr, (uint32_t)bytes, true);
	if (err)
		return err;
	b->stats.reports++;
	b->stats.reported_pages += npages;
	return 0;
}

/* --- interrupts --------------------------------------------------------------------------- */

/* Config-change interrupt (IRQ context): note it, and leave the work to vio_balloon_poll. */
static void config_changed(struct vio_dev *dev, void *arg)
{
	struct vio_balloon *b = arg;

	(void)dev;
	b->bal_config_changed = true;
	b->stats.config_changes++;
	if (b->bal_opts.on_wake)
		b->bal_opts.on_wake(b, b->bal_opts.arg);
}

/* statsq interrupt (IRQ context): the host wants statistics; vio_balloon_poll answers. */
static void stats_requested(struct vio_vq *vq, void *arg)
{
	struct vio_balloon *b = arg;

	(void)vq;
	if (b->bal_opts.on_wake)
		b->bal_opts.on_wake(b, b->bal_opts.arg);
}

/* --- bring-up and teardown ------------------------------------------------------------------ */

/*
 * Negotiate. PAGE_REPORTING's queue index is the next free one after the queues of the
 * negotiated features (5.5.2), but QEMU numbers them by the features it offers. They agree
 * unless the device offers a lower queue feature we do not take, and then we go without
 * reporting (a second negotiation: vio_dev_begin starts with a reset).
 */
static int negotiate(struct vio_balloon *b)
{
	struct vio_dev *dev = b->dev;
	uint64_t wanted = VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING);
	uint64_t lower = VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	int err;

	if (b->bal_opts.guest_stats)
		wanted |= VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ);
	else
		lower |= VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ);
	err = vio_dev_begin(dev, wanted);
	if (err == 0 && vio_dev_has_feature(dev, VIRTIO_BALLOON_F_PAGE_REPORTING) &&
	    (dev->device_features & lower)) {
		vio_logf(dev->port, VIO_LOG_WARN,
			 "%s: queue numbering ambiguous (features 0x%llx), no page reporting",
			 balloon_name, (unsigned long long)dev->device_features);
		err = vio_dev_begin(dev, wanted & ~VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING));
	}
	if (err)
		return err;
	b->tell_host = vio_dev_has_feature(dev, VIRTIO_BALLOON_F_MUST_TELL_HOST);
	b->oom = vio_dev_has_feature(dev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	b->stats_vq = vio_dev_has_feature(dev, VIRTIO_BALLOON_F_STATS_VQ);
	b->reporting = vio_dev_has_feature(dev, VIRTIO_BALLOON_F_PAGE_REPORTING);
	return 0;
}

/* Every request is one buffer (a PFN array, the stats): no indirect tables. */
static const struct vio_vq_opts balloon_vq_opts = {.max_size = QUEUE_SIZE, .direct_only = true};

/* A queue we only poll: no callback, and ask the device not to interrupt for it. */
static int setup_polled_vq(struct vio_balloon *b, uint16_t index, struct vio_vq **out)
{
	int err = vio_dev_setup_vq_opts(b->dev, index, &balloon_vq_opts, NULL, NULL);

	if (err)
		return err;
	*out = &b->bal_vqs[index];
	vio_vq_disable_cb(*out);
	return 0;
}

/* 5.5.2: inflateq, deflateq, then statsq and reporting_vq only if negotiated, in that order. */
static int setup_queues(struct vio_balloon *b)
{
	uint16_t nvqs = (uint16_t)(2 + b->stats_vq + b->reporting);
	uint16_t next = 2;
	int err;

	err = vio_dev_setup_irqs(b->dev, b->bal_vqs, nvqs);
	if (!err)
		err = setup_polled_vq(b, VIRTIO_BALLOON_VQ_INFLATE, &b->bal_inflate_vq);
	if (!err)
		err = setup_polled_vq(b, VIRTIO_BALLOON_VQ_DEFLATE, &b->bal_deflate_vq);
	if (!err && b->stats_vq) {
		err = vio_dev_setup_vq_opts(b->dev, next, &balloon_vq_opts, stats_requested, b);
		b->bal_stats_vq = &b->bal_vqs[next++];
	}
	if (!err && b->reporting)
		err = setup_polled_vq(b, next, &b->bal_report_vq);
	return err;
}

static void free_memory(struct vio_balloon *b)
{
	const struct vio_port *port = port_of(b);

	if (b->bal_dma)
		port->dma_free(port->ctx, b->bal_dma, PAGE);
	b->bal_dma = NULL;
}

int vio_balloon_init(struct vio_balloon *b, struct vio_dev *dev,
		     const struct vio_balloon_opts *opts)
{
	const struct vio_port *port = dev->port;
	uint64_t phys;
	int err;

	/* Cleared in place: clang builds a struct literal this large on the stack first. */
	__builtin_memset(b, 0, sizeof(*b));
	if (dev->device_id != VIRTIO_ID_BALLOON)
		return VIO_ENODEV;
	if (!opts || !opts->page_take || !opts->page_give)
		return VIO_EINVAL;
	b->bal_opts = *opts;
	if (!b->bal_opts.timeout_ns)
		b->bal_opts.timeout_ns = VIO_BALLOON_TIMEOUT_NS;
	if (!b->bal_opts.floor_pages)
		b->bal_opts.floor_pages = VIO_BALLOON_FLOOR_PAGES;
	b->dev = dev;
	dev->name = balloon_name;

	/* 3.1.1 steps 1-6. */
	err = negotiate(b);
	if (err)
		goto fail;
	if (dev->config_len < offsetof(struct virtio_balloon_config, actual) + sizeof(uint32_t)) {
		err = VIO_EPROTO; /* no room for num_pages and actual */
		goto fail;
	}

	/* Step 7: queues, the DMA page for the PFN array and stats, the first stats buffer
	 * (5.5.6.3: the driver makes one available at init), the config callback. */
	err = setup_queues(b);
	if (err)
		goto fail;
	b->bal_dma = port->dma_alloc(port->ctx, PAGE, &phys);
	if (!b->bal_dma) {
		err = VIO_ENOMEM;
		goto fail;
	}
	b->bal_pfns = b->bal_dma;
	b->bal_stats_buf = (struct virtio_balloon_stat *)((uint8_t *)b->bal_dma + STATS_OFFSET);
	if (b->stats_vq) {
		err = post_stats(b);
		if (err)
			goto fail;
	}
	vio_dev_set_config_callback(dev, config_changed, b);

	/* Step 8, then the first target. Inflating waits for the first vio_balloon_poll. */
	err = vio_dev_driver_ok(dev);
	if (err)
		goto fail;
	if (b->stats_vq)
		vio_vq_kick(b->bal_stats_vq);
	err = read_target(b);
	if (err)
		goto fail;
	return 0;

fail:
	driver_abort(dev, balloon_name, err);
	free_memory(b);
	b->dev = NULL;
	return err;
}

/* Forget the record of held pages without giving them back: the device may still hold them. */
static void forget_pages(struct vio_balloon *b)
{
	while (b->bal_chunks) {
		struct vio_balloon_chunk *c = b->bal_chunks;

		b->bal_chunks = c->next;
		vio_priv_free(port_of(b), c, PAGE);
	}
}

int vio_balloon_fini(struct vio_balloon *b)
{
	int err;

	if (!b->dev)
		return 0;
	/* Deflate through the device while it works, so the host hears of every page. fini may
	 * wait (as the reset does): a request in flight gets its whole timeout. */
	begin_call(b, b->bal_opts.timeout_ns);
	while ((b->bal_held || b->bal_req != BAL_REQ_NONE) && !b->bal_broken) {
		if (b->bal_req != BAL_REQ_NONE)
			collect(b);
		else
			deflate_batch(b, min_u32(b->bal_held, VIO_BALLOON_ARRAY_PFNS_MAX));
	}

	/* Reset: from here the device holds no page of ours and reads no PFN array. */
	vio_dev_set_config_callback(b->dev, NULL, NULL);
	err = vio_dev_teardown(b->dev);
	if (err) {
		/*
		 * Unless the reset did not happen: then the device may still write the pages it
		 * was given and read the request page. The kernel never gets them back (a leak,
		 * not a corruption), and the device is given up on.
		 */
		vio_logf(port_of(b), VIO_LOG_ERR,
			 "%s: reset not confirmed: keeping %u pages and the request page, device "
			 "failed",
			 balloon_name, b->bal_held);
		vio_dev_fail(b->dev);
		forget_pages(b);
		b->bal_dma = NULL;
		b->bal_broken = true;
		b->dev = NULL;
		return err;
	}
	while (b->bal_held) {
		b->bal_opts.page_give(b, pop_pfn(b), b->bal_opts.arg);
		b->stats.deflated++;
	}
	free_memory(b);
	b->dev = NULL;
	return 0;
}
