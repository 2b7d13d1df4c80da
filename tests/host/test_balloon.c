/*
 * Unit tests for the virtio-balloon driver (src/drivers/virtio_balloon.c) against a whole
 * fake balloon device (fake_env.h).
 *
 * Two referees watch every page. The fake kernel allocator hands out PFNs from a pool and
 * fails the test's checks when a page comes back that the balloon did not take, or twice.
 * The device model plays the host: it pops the inflate and deflate PFN arrays and keeps its
 * own set of pages it holds, counting a page inflated twice or deflated without being held,
 * and, when the kernel gets a page back, whether the host still held it (the MUST_TELL_HOST
 * ordering). PFNs are plain numbers here: nothing ever dereferences a balloon page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/balloon.h>
#include <vio/err.h>

#include "fake_env.h"

#define POOL	 4096	 /* pages the fake kernel has */
#define PFN_BASE 0x40000 /* its first PFN (1 GiB) */
#define BATCH	 VIO_BALLOON_ARRAY_PFNS_MAX

#define ALL_FEATURES                                                                               \
	(VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST) | VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) |     \
	 VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |                                             \
	 VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING))

/* The host side. */
struct host {
	uint8_t holds[POOL];
	uint32_t held;
	unsigned dup_inflates; /* a page inflated while the host already held it */
	unsigned bad_deflates; /* a page deflated that the host did not hold */
	unsigned foreign_pfns; /* a PFN the kernel never handed out */
	unsigned inflate_reqs, deflate_reqs;
	uint32_t inflate_sizes[64];
	uint32_t actual_before_inflate[64]; /* config `actual` when each inflate arrived */
	uint32_t deflate_sizes[64];

	int shrink_at_inflate; /* after this many inflates (1-based), set num_pages = shrink_to */
	uint32_t shrink_to;
	bool stall_inflate;	   /* never answer the inflateq (time jumps ahead instead) */
	bool bogus_inflate_id;	   /* answer the next inflate with an id not in flight */
	uint64_t deflate_delay_ns; /* answer each deflate this long after it arrived */
	bool deflate_held;	   /* ... one is waiting: */
	uint16_t deflate_head;
	uint64_t deflate_due;
	bool scribble; /* after each request, write garbage over the driver's DMA */

	unsigned reports;
	struct fake_seg report_seg;
	unsigned report_segs;
	struct fake_req req;
};

/* The kernel side: a page allocator and the other callbacks. */
struct kernel {
	uint32_t free_stack[POOL];
	uint32_t nfree;
	uint8_t in_balloon[POOL];
	uint32_t limit; /* page_take fails once this many pages are in the balloon */
	uint32_t in_use;
	unsigned bad_gives;		 /* a page given back that was not the balloon's */
	unsigned gives_host_still_holds; /* given back while the host still held it */
	unsigned gives, stats_calls, wakes;
	unsigned nstats; /* entries the stats callback fills */
	struct host *host;
};

struct t {
	struct fake_env *e;
	struct host h;
	struct kernel k;
	struct vio_balloon b;
	struct vio_balloon_opts opts;
	int base_allocs;      /* DMA allocations live right after init */
	int base_priv_allocs; /* private allocations live right after init */
};

static uint32_t idx_of(uint32_t pfn)
{
	return pfn - PFN_BASE;
}

static bool in_pool(uint32_t pfn)
{
	return pfn >= PFN_BASE && pfn < PFN_BASE + POOL;
}

/* --- the fake kernel ------------------------------------------------------------------------ */

static int k_take(struct vio_balloon *b, uint32_t *pfn, void *arg)
{
	struct kernel *k = arg;
	(void)b;

	if (k->in_use >= k->limit || k->nfree == 0)
		return VIO_ENOMEM;
	*pfn = k->free_stack[--k->nfree];
	k->in_balloon[idx_of(*pfn)] = 1;
	k->in_use++;
	return 0;
}

static void k_give(struct vio_balloon *b, uint32_t pfn, void *arg)
{
	struct kernel *k = arg;
	(void)b;

	k->gives++;
	if (!in_pool(pfn) || !k->in_balloon[idx_of(pfn)]) {
		k->bad_gives++;
		return;
	}
	if (k->host->holds[idx_of(pfn)])
		k->gives_host_still_holds++;
	k->in_balloon[idx_of(pfn)] = 0;
	k->in_use--;
	k->free_stack[k->nfree++] = pfn;
}

static const struct vio_balloon_stat_val kstats[] = {
    {VIRTIO_BALLOON_S_MEMFREE, 123456789},
    {VIRTIO_BALLOON_S_MEMTOT, 0x100000000ull},
    {VIRTIO_BALLOON_S_AVAIL, 42},
};

static unsigned k_stats(struct vio_balloon *b, struct vio_balloon_stat_val *out, unsigned max,
			void *arg)
{
	struct kernel *k = arg;
	(void)b;
	unsigned n = k->nstats < max ? k->nstats : max;

	k->stats_calls++;
	for (unsigned i = 0; i < n; i++) {
		out[i] = kstats[i];
		out[i].val += k->stats_calls; /* fresh numbers each time */
	}
	return n;
}

static uint64_t k_free_pages(struct vio_balloon *b, void *arg)
{
	struct kernel *k = arg;
	(void)b;
	return k->nfree;
}

static void k_wake(struct vio_balloon *b, void *arg)
{
	struct kernel *k = arg;
	(void)b;
	k->wakes++;
}

/* --- the fake host ---------------------------------------------------------------------------- */

static uint32_t cfg_u32(struct fake_env *e, uint32_t off)
{
	uint32_t v;
	memcpy(&v, e->vd.config + off, sizeof(v));
	return v;
}

static uint32_t host_actual(struct t *t)
{
	return cfg_u32(t->e, offsetof(struct virtio_balloon_config, actual));
}

static void set_target(struct fake_env *e, uint32_t pages)
{
	fake_env_set_config(e, offsetof(struct virtio_balloon_config, num_pages), &pages,
			    sizeof(pages));
}

/* Read one request's PFN array (a single device-readable segment). */
static uint32_t pfns_of(const struct fake_req *req, uint32_t *pfns)
{
	assert_int_equal(req->n_out, 1);
	assert_int_equal(req->n_in, 0);
	assert_int_equal(req->out_len % 4, 0);
	assert_true(req->out_len <= BATCH * 4);
	return fake_vring_gather(req, pfns, BATCH * 4) / 4;
}

static void host_inflate(struct fake_env *e, struct host *h)
{
	struct fake_vring *fv = &e->ring[VIRTIO_BALLOON_VQ_INFLATE];
	uint32_t pfns[BATCH];

	while (!h->stall_inflate && fake_vring_pop(fv, &h->req)) {
		uint32_t n = pfns_of(&h->req, pfns);

		if (h->inflate_reqs < 64) {
			h->inflate_sizes[h->inflate_reqs] = n;
			h->actual_before_inflate[h->inflate_reqs] =
			    cfg_u32(e, offsetof(struct virtio_balloon_config, actual));
		}
		h->inflate_reqs++;
		for (uint32_t i = 0; i < n; i++) {
			if (!in_pool(pfns[i])) {
				h->foreign_pfns++;
				continue;
			}
			if (h->holds[idx_of(pfns[i])])
				h->dup_inflates++;
			h->holds[idx_of(pfns[i])] = 1;
			h->held++;
		}
		if (h->bogus_inflate_id) {
			fake_vring_complete(fv, (h->req.head + 1u) % fv->size, 0);
			return;
		}
		/* A device writes nothing here; a silly length must not matter. */
		fake_vring_complete(fv, h->req.head, 0xdeadbeef);
		if ((int)h->inflate_reqs == h->shrink_at_inflate)
			set_target(e, h->shrink_to);
	}
	if (h->stall_inflate)
		e->fp.now += 1000000000ull; /* let the driver's timeout expire quickly */
}

static void host_deflate(struct fake_env *e, struct host *h)
{
	struct fake_vring *fv = &e->ring[VIRTIO_BALLOON_VQ_DEFLATE];
	uint32_t pfns[BATCH];

	if (h->deflate_held) {
		if (e->fp.now < h->deflate_due)
			return;
		fake_vring_complete(fv, h->deflate_head, 0);
		h->deflate_held = false;
	}
	while (fake_vring_pop(fv, &h->req)) {
		uint32_t n = pfns_of(&h->req, pfns);

		if (h->deflate_reqs < 64)
			h->deflate_sizes[h->deflate_reqs] = n;
		h->deflate_reqs++;
		for (uint32_t i = 0; i < n; i++) {
			if (!in_pool(pfns[i]) || !h->holds[idx_of(pfns[i])]) {
				h->bad_deflates++;
				continue;
			}
			h->holds[idx_of(pfns[i])] = 0;
			h->held--;
		}
		if (h->deflate_delay_ns) {
			h->deflate_held = true;
			h->deflate_head = h->req.head;
			h->deflate_due = e->fp.now + h->deflate_delay_ns;
			return;
		}
		fake_vring_complete(fv, h->req.head, 0);
	}
}

static void host_report(struct fake_env *e, struct host *h, int q)
{
	struct fake_vring *fv = &e->ring[q];

	while (fake_vring_pop(fv, &h->req)) {
		h->reports++;
		h->report_segs = h->req.n_out + h->req.n_in;
		h->report_seg = h->req.seg[0];
		fake_vring_complete(fv, h->req.head, 0);
	}
}

/* The statsq is not answered by the model: tests inspect and return its buffer. */
static void balloon_model(struct fake_env *e)
{
	struct t *t = e->model_arg;

	if (e->nrings == 0)
		return;
	host_inflate(e, &t->h);
	host_deflate(e, &t->h);
	if (t->b.reporting)
		host_report(e, &t->h, 2 + t->b.stats_vq);
	if (t->h.scribble)
		fake_env_scribble(e, 0x41);
}

/* Private allocations that may still succeed before they fail; < 0: they never fail. */
static int priv_fail_after = -1;
static void *(*real_priv_alloc)(void *ctx, size_t bytes);

static void *failing_priv_alloc(void *ctx, size_t bytes)
{
	if (priv_fail_after == 0)
		return NULL;
	if (priv_fail_after > 0)
		priv_fail_after--;
	return real_priv_alloc(ctx, bytes);
}

static void fail_priv_allocs_after(struct fake_env *e, int n)
{
	if (e->fp.port.priv_alloc != failing_priv_alloc) {
		real_priv_alloc = e->fp.port.priv_alloc;
		e->fp.port.priv_alloc = failing_priv_alloc;
	}
	priv_fail_after = n;
}

/* --- setup ------------------------------------------------------------------------------------ */

/* > 0: the next bring-up reports free pages to the driver and asks for this floor. */
static uint32_t next_floor_pages;

static struct t *bring_up_opts(uint64_t features, bool irqs, uint32_t target, bool stats_cb,
			       uint64_t timeout_ns)
{
	struct t *t = calloc(1, sizeof(*t));
	struct virtio_balloon_config cfg = {.num_pages = target};

	assert_non_null(t);
	t->e = fake_env_new(VIRTIO_ID_BALLOON, features, &cfg, sizeof(cfg), 4, 64);
	t->e->model = balloon_model;
	t->e->model_arg = t;
	if (!irqs)
		fake_env_no_irqs(t->e);
	for (uint32_t i = 0; i < POOL; i++)
		t->k.free_stack[t->k.nfree++] = PFN_BASE + POOL - 1 - i;
	t->k.limit = POOL;
	t->k.nstats = 3;
	t->k.host = &t->h;
	t->opts = (struct vio_balloon_opts){.page_take = k_take,
					    .page_give = k_give,
					    .guest_stats = stats_cb ? k_stats : NULL,
					    .on_wake = k_wake,
					    .arg = &t->k,
					    .timeout_ns = timeout_ns};
	if (next_floor_pages) {
		t->opts.free_pages = k_free_pages;
		t->opts.floor_pages = next_floor_pages;
		next_floor_pages = 0;
	}
	assert_int_equal(vio_balloon_init(&t->b, &t->e->dev, &t->opts), 0);
	fake_env_rings(t->e);
	t->base_allocs = t->e->fp.dma_live_allocs;
	t->base_priv_allocs = t->e->fp.priv_live_allocs;
	return t;
}

static struct t *bring_up_with(uint64_t features, bool irqs, uint32_t target, bool stats_cb)
{
	return bring_up_opts(features, irqs, target, stats_cb, 0);
}

static struct t *bring_up(uint64_t features, bool irqs, uint32_t target)
{
	return bring_up_with(features, irqs, target, true);
}

/* Poll until the driver says there is nothing more to do now. */
static int poll_all(struct t *t)
{
	int r, polls = 0;

	while ((r = vio_balloon_poll(&t->b)) > 0)
		assert_true(++polls < 1000);
	return r;
}

/* After vio_balloon_fini the rings are gone: the model must not look at them again. */
static void free_env(struct t *t)
{
	t->e->model = NULL;
	assert_int_equal(t->e->fp.priv_live_allocs, 0);
	fake_env_free(t->e); /* asserts no DMA memory leaked */
	free(t);
}

/* The referees' verdict, and fini gives every page back. */
static void finish(struct t *t)
{
	assert_int_equal(t->h.dup_inflates, 0);
	assert_int_equal(t->h.bad_deflates, 0);
	assert_int_equal(t->h.foreign_pfns, 0);
	assert_int_equal(t->k.bad_gives, 0);
	vio_balloon_fini(&t->b);
	assert_int_equal(t->k.in_use, 0);
	assert_int_equal(t->k.bad_gives, 0);
	vio_balloon_fini(&t->b); /* twice is harmless */
	free_env(t);
}

/* --- inflating -------------------------------------------------------------------------------- */

static void test_inflate_to_target_in_batches_updating_actual_after_each(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 700);

	assert_int_equal(vio_balloon_target(&t->b), 700);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 700);
	assert_int_equal(host_actual(t), 700);
	assert_int_equal(t->h.held, 700);
	assert_int_equal(t->h.inflate_reqs, 3);
	assert_int_equal(t->h.inflate_sizes[0], BATCH);
	assert_int_equal(t->h.inflate_sizes[1], BATCH);
	assert_int_equal(t->h.inflate_sizes[2], 700 - 2 * BATCH);
	/* `actual` moved after each completed batch, never ahead of the host. */
	assert_int_equal(t->h.actual_before_inflate[0], 0);
	assert_int_equal(t->h.actual_before_inflate[1], BATCH);
	assert_int_equal(t->h.actual_before_inflate[2], 2 * BATCH);
	assert_int_equal(t->b.stats.inflated, 700);
	assert_false(vio_balloon_pending(&t->b));
	finish(t);
}

static void test_poll_is_bounded_per_call(void **state)
{
	(void)state;
	uint32_t big = (VIO_BALLOON_BATCHES_PER_POLL + 2) * BATCH;
	struct t *t = bring_up(ALL_FEATURES, true, big);

	assert_int_equal(vio_balloon_poll(&t->b), 1);
	assert_int_equal(vio_balloon_actual(&t->b), VIO_BALLOON_BATCHES_PER_POLL * BATCH);
	assert_true(vio_balloon_pending(&t->b));
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), big);
	finish(t);
}

static void test_target_above_available_memory_stops_cleanly_with_actual_truthful(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 0xffffffffu);

	t->k.limit = 1000;
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 1000);
	assert_int_equal(host_actual(t), 1000);
	assert_int_equal(t->h.held, 1000);
	assert_int_equal(t->b.stats.take_failures, 1);
	assert_true(fake_port_logged(&t->e->fp, "out of memory"));
	int logs = t->e->fp.log_count;

	/* Backing off: nothing pending, polls do nothing. */
	assert_false(vio_balloon_pending(&t->b));
	assert_int_equal(vio_balloon_poll(&t->b), 0);
	assert_int_equal(t->h.inflate_reqs, 4);

	/* Later, with more memory, it tries again; the shortage is logged only once. */
	t->k.limit = 1300;
	t->e->fp.now += 2 * VIO_BALLOON_RETRY_NS;
	assert_true(vio_balloon_pending(&t->b));
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 1300);
	assert_int_equal(host_actual(t), 1300);
	assert_int_equal(t->e->fp.log_count, logs);
	finish(t);
}

static void test_target_shrinking_mid_inflate_is_handled_at_the_next_batch(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 1024);

	t->h.shrink_at_inflate = 2;
	t->h.shrink_to = 100;
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->h.inflate_reqs, 2); /* no third inflate once the target fell */
	assert_int_equal(t->h.deflate_reqs, 2); /* 512 -> 256 -> 100 */
	assert_int_equal(t->h.deflate_sizes[0], BATCH);
	assert_int_equal(t->h.deflate_sizes[1], 2 * BATCH - 100 - BATCH);
	assert_int_equal(vio_balloon_actual(&t->b), 100);
	assert_int_equal(host_actual(t), 100);
	assert_int_equal(t->h.held, 100);
	assert_int_equal(t->k.in_use, 100);
	finish(t);
}

/* --- deflating -------------------------------------------------------------------------------- */

static void test_deflate_with_must_tell_host_tells_host_before_pages_return(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 600);

	assert_int_equal(poll_all(t), 0);
	assert_true(t->b.tell_host);
	set_target(t->e, 50);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 50);
	assert_int_equal(host_actual(t), 50);
	assert_int_equal(t->h.held, 50);
	assert_int_equal(t->k.in_use, 50);
	assert_int_equal(t->k.gives, 550);
	assert_int_equal(t->k.gives_host_still_holds, 0);
	assert_int_equal(t->b.stats.deflated, 550);
	finish(t);
}

static void test_deflate_without_must_tell_host_may_return_pages_first(void **state)
{
	(void)state;
	struct t *t =
	    bring_up(ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST), true, 600);

	assert_int_equal(poll_all(t), 0);
	assert_false(t->b.tell_host);
	set_target(t->e, 50);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->k.in_use, 50);
	assert_int_equal(t->k.gives_host_still_holds, 550); /* the kernel had them first */
	assert_int_equal(t->h.held, 50);		    /* and the host still heard of all */
	assert_int_equal(host_actual(t), 50);
	finish(t);
}

/* --- config changes --------------------------------------------------------------------------- */

static void test_config_change_interrupt_only_sets_a_flag_until_poll(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 0);

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_MSIX);
	assert_false(vio_balloon_pending(&t->b));
	set_target(t->e, 300);
	fake_env_config_irq(t->e);
	/* The interrupt did no work: no page taken, target not even read yet. */
	assert_int_equal(t->k.wakes, 1);
	assert_int_equal(t->b.stats.config_changes, 1);
	assert_true(vio_balloon_pending(&t->b));
	assert_int_equal(vio_balloon_target(&t->b), 0);
	assert_int_equal(t->k.in_use, 0);
	assert_int_equal(t->h.inflate_reqs, 0);

	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_target(&t->b), 300);
	assert_int_equal(vio_balloon_actual(&t->b), 300);
	assert_int_equal(host_actual(t), 300);
	finish(t);
}

static void test_polling_mode_follows_target_without_interrupts(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, false, 300);

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(host_actual(t), 300);
	set_target(t->e, 20); /* no interrupt: the next poll reads it anyway */
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(host_actual(t), 20);
	assert_int_equal(t->h.held, 20);
	assert_int_equal(t->k.wakes, 0);
	finish(t);
}

/* --- statistics ------------------------------------------------------------------------------- */

static void check_stats_buffer(struct t *t, struct fake_req *req, unsigned call)
{
	struct virtio_balloon_stat s[VIRTIO_BALLOON_S_NR];

	assert_int_equal(req->n_out, 1);
	assert_int_equal(req->n_in, 0);
	assert_int_equal(req->out_len, 3 * sizeof(struct virtio_balloon_stat));
	assert_int_equal(fake_vring_gather(req, s, sizeof(s)), req->out_len);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(s[i].tag, kstats[i].tag);
		assert_int_equal(s[i].val, kstats[i].val + call);
	}
	(void)t;
}

static void test_stats_queue_answered_with_ops_values_and_reposted(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 0);
	struct fake_vring *sq = &t->e->ring[2];
	struct fake_req req;

	/* One buffer posted at init, already filled (5.5.6.3). */
	assert_true(t->b.stats_vq);
	assert_int_equal(t->k.stats_calls, 1);
	assert_true(fake_vring_pop(sq, &req));
	check_stats_buffer(t, &req, 1);

	/* The host returns it: that is its request for fresh numbers. */
	fake_vring_complete(sq, req.head, 0);
	assert_int_equal(t->k.wakes, 1);
	assert_true(vio_balloon_pending(&t->b));
	assert_int_equal(t->k.stats_calls, 1); /* not in the interrupt */
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->k.stats_calls, 2);
	assert_int_equal(t->b.stats.stats_requests, 1);
	assert_true(fake_vring_pop(sq, &req));
	check_stats_buffer(t, &req, 2);
	assert_false(fake_vring_pop(sq, &req));
	fake_vring_complete(sq, req.head, 0);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->k.stats_calls, 3);
	finish(t);
}

static void test_stats_callback_with_nothing_is_asked_again_on_next_poll(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, false, 0);
	struct fake_vring *sq = &t->e->ring[2];
	struct fake_req req;

	assert_true(fake_vring_pop(sq, &req));
	t->k.nstats = 0;
	fake_vring_complete(sq, req.head, 0);
	assert_int_equal(vio_balloon_poll(&t->b), 0);
	assert_int_equal(fake_vring_avail_pending(sq), 0);
	t->k.nstats = 3;
	assert_int_equal(vio_balloon_poll(&t->b), 0);
	assert_int_equal(fake_vring_avail_pending(sq), 1);
	finish(t);
}

/* --- deflate on OOM --------------------------------------------------------------------------- */

static void test_deflate_for_oom_gives_pages_back_and_backs_off(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 600);

	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_deflate_for_oom(&t->b, 300), 300);
	assert_int_equal(t->k.in_use, 300);
	assert_int_equal(t->k.gives_host_still_holds, 0); /* MUST_TELL_HOST: host first */
	assert_int_equal(host_actual(t), 300);
	assert_int_equal(t->b.stats.oom_deflated, 300);
	/* The target still says 600, but the driver does not take the pages right back. */
	assert_false(vio_balloon_pending(&t->b));
	assert_int_equal(vio_balloon_poll(&t->b), 0);
	assert_int_equal(t->k.in_use, 300);
	/* More than it holds: what there is. */
	assert_int_equal(vio_balloon_deflate_for_oom(&t->b, 1000), 300);
	assert_int_equal(vio_balloon_deflate_for_oom(&t->b, 10), 0);
	assert_int_equal(host_actual(t), 0);
	finish(t);
}

/*
 * The OOM path may run with interrupts off: it spins at most VIO_BALLOON_SPIN_NS for the
 * host, gives back nothing the host has not returned (MUST_TELL_HOST), and a later call
 * collects the answer.
 */
static void test_deflate_for_oom_waits_no_longer_than_the_spin_limit(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 600);
	int got, calls = 0;
	uint64_t start;

	assert_int_equal(poll_all(t), 0);
	t->h.deflate_delay_ns = 20 * VIO_BALLOON_SPIN_NS;
	start = t->e->fp.now;
	assert_int_equal(vio_balloon_deflate_for_oom(&t->b, 300), VIO_EAGAIN);
	assert_true(t->e->fp.now - start <= VIO_BALLOON_SPIN_NS + 100000);
	assert_int_equal(t->k.in_use, 600);
	assert_true(vio_balloon_pending(&t->b));
	while ((got = vio_balloon_deflate_for_oom(&t->b, 300)) == VIO_EAGAIN)
		assert_true(++calls < 100);
	assert_int_equal(got, BATCH);
	assert_true(calls >= 10);
	assert_int_equal(t->k.gives_host_still_holds, 0);
	/* The rest of that call's pages are in flight: polls collect them, each call short. */
	while (vio_balloon_pending(&t->b)) {
		start = t->e->fp.now;
		assert_true(vio_balloon_poll(&t->b) >= 0);
		assert_true(t->e->fp.now - start <= VIO_BALLOON_SPIN_NS + 100000);
		assert_true(++calls < 200);
	}
	assert_int_equal(t->k.in_use, 300);
	assert_int_equal(host_actual(t), 300);
	assert_int_equal(t->b.stats.oom_deflated, BATCH);
	finish(t);
}

/* The same for the host's own requests: vio_balloon_poll returns while the device works. */
static void test_poll_waits_no_longer_than_the_spin_limit(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 600);
	int polls = 0, r;

	assert_int_equal(poll_all(t), 0);
	t->h.deflate_delay_ns = 20 * VIO_BALLOON_SPIN_NS;
	set_target(t->e, 0);
	do {
		uint64_t start = t->e->fp.now;
		r = vio_balloon_poll(&t->b);
		assert_true(t->e->fp.now - start <= VIO_BALLOON_SPIN_NS + 100000);
		assert_true(++polls < 1000);
	} while (r > 0);
	assert_int_equal(r, 0);
	assert_true(polls >= 3 * 10);
	assert_int_equal(t->k.in_use, 0);
	assert_int_equal(t->k.gives_host_still_holds, 0);
	assert_int_equal(host_actual(t), 0);
	finish(t);
}

static void test_deflate_for_oom_without_feature_is_not_supported(void **state)
{
	(void)state;
	struct t *t =
	    bring_up(ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM), true, 100);

	assert_int_equal(poll_all(t), 0);
	assert_false(t->b.oom);
	assert_int_equal(vio_balloon_deflate_for_oom(&t->b, 10), VIO_ENOTSUP);
	assert_int_equal(t->k.in_use, 100);
	finish(t);
}

/* --- free page reporting -----------------------------------------------------------------------
 */

#define RUN_PAGES (1u << VIO_BALLOON_REPORT_MIN_ORDER)
#define RUN_BYTES (RUN_PAGES * 4096u)

static void test_free_page_reporting_reaches_the_reporting_queue(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 0);
	uint8_t *run = aligned_alloc(RUN_BYTES, RUN_BYTES);

	assert_non_null(run);
	assert_true(t->b.reporting);
	assert_int_equal(t->e->dev.nvqs, 4); /* reporting is queue 3, after the statsq */
	assert_int_equal(vio_balloon_report_free(&t->b, run, RUN_PAGES), 0);
	assert_int_equal(t->h.reports, 1);
	assert_int_equal(t->h.report_segs, 1);
	assert_int_equal(t->h.report_seg.addr, (uint64_t)(uintptr_t)run);
	assert_int_equal(t->h.report_seg.len, RUN_BYTES);
	assert_true(t->h.report_seg.write);
	assert_int_equal(t->b.stats.reported_pages, RUN_PAGES);

	/* Runs that are too small, not a power of two, or misaligned are refused. */
	assert_int_equal(vio_balloon_report_free(&t->b, run, RUN_PAGES / 2), VIO_EINVAL);
	assert_int_equal(vio_balloon_report_free(&t->b, run, RUN_PAGES + 1), VIO_EINVAL);
	assert_int_equal(vio_balloon_report_free(&t->b, run + 4096, RUN_PAGES), VIO_EINVAL);
	assert_int_equal(t->h.reports, 1);
	free(run);
	finish(t);
}

static void test_reporting_queue_is_index_two_without_stats(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ), true, 0);
	uint8_t *run = aligned_alloc(RUN_BYTES, RUN_BYTES);

	assert_false(t->b.stats_vq);
	assert_true(t->b.reporting);
	assert_int_equal(t->e->dev.nvqs, 3);
	assert_int_equal(vio_balloon_report_free(&t->b, run, RUN_PAGES), 0);
	assert_int_equal(t->h.reports, 1);
	assert_int_equal(t->e->ring[2].last_avail, 1);
	free(run);
	finish(t);
}

static void test_reporting_skipped_when_queue_numbering_would_be_ambiguous(void **state)
{
	(void)state;
	/* No stats callback, but the device offers STATS_VQ: QEMU would still have a statsq
	 * at 2 and reporting at 3, the spec puts reporting at 2. The driver goes without. */
	struct t *t = bring_up_with(ALL_FEATURES, true, 0, false);

	assert_false(t->b.stats_vq);
	assert_false(t->b.reporting);
	assert_int_equal(t->e->dev.nvqs, 2);
	assert_int_equal(vio_balloon_report_free(&t->b, &t, RUN_PAGES), VIO_ENOTSUP);
	assert_true(fake_port_logged(&t->e->fp, "no page reporting"));
	finish(t);
}

static void test_reporting_not_supported_without_feature(void **state)
{
	(void)state;
	struct t *t =
	    bring_up(ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING), true, 0);

	assert_false(t->b.reporting);
	assert_int_equal(vio_balloon_report_free(&t->b, &t, RUN_PAGES), VIO_ENOTSUP);
	finish(t);
}

/* --- bookkeeping ------------------------------------------------------------------------------ */

static void test_bookkeeping_grows_past_one_page_and_shrinks(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 3000);

	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 3000);
	/* 3000 PFNs of 4 bytes need three pages of records (about 1020 PFNs each), in private
	 * memory: the DMA allocations do not grow. */
	assert_int_equal(t->e->fp.priv_live_allocs - t->base_priv_allocs, 3);
	assert_int_equal(t->e->fp.dma_live_allocs, t->base_allocs);
	set_target(t->e, 1000);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->e->fp.priv_live_allocs - t->base_priv_allocs, 1);
	set_target(t->e, 0);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->e->fp.priv_live_allocs, t->base_priv_allocs);
	assert_int_equal(t->e->fp.dma_live_allocs, t->base_allocs);
	assert_int_equal(t->k.in_use, 0);
	assert_int_equal(t->h.held, 0);
	finish(t);
}

static void test_bookkeeping_page_shortage_stops_inflating(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 2000);

	fail_priv_allocs_after(t->e, 1); /* one record page, no second */
	assert_int_equal(poll_all(t), 0);
	assert_true(vio_balloon_actual(&t->b) > 0 && vio_balloon_actual(&t->b) < 2000);
	assert_int_equal(host_actual(t), vio_balloon_actual(&t->b));
	assert_int_equal(t->h.held, vio_balloon_actual(&t->b));
	assert_int_equal(t->k.in_use, vio_balloon_actual(&t->b));
	priv_fail_after = -1;
	finish(t);
}

static void test_page_records_live_in_private_memory(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 2500);

	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 2500);
	assert_non_null(t->b.bal_chunks);
	assert_false(fake_port_is_dma(&t->e->fp, t->b.bal_chunks, 16));
	assert_false(fake_port_is_dma(&t->e->fp, &t->b, sizeof(t->b)));
	finish(t);
}

/*
 * A device that may write any DMA memory it can reach rewrites the driver's DMA page after
 * every request. Whatever it writes, the kernel gets back exactly the pages it lent and the
 * host hears of exactly those: the driver's record of what it took is not in that memory.
 */
static void device_scribbling_dma_cannot_make_the_balloon_give_back_foreign_pages(uint64_t feat)
{
	struct t *t = bring_up(feat, true, 2500);

	t->h.scribble = true;
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 2500);
	set_target(t->e, 700);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 700);
	assert_int_equal(t->k.bad_gives, 0);
	assert_int_equal(t->k.in_use, 700);
	assert_int_equal(t->h.held, 700);
	set_target(t->e, 0);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->k.in_use, 0);
	finish(t);
}

static void test_device_scribbling_dma_cannot_make_the_balloon_give_back_foreign_pages(void **state)
{
	(void)state;
	device_scribbling_dma_cannot_make_the_balloon_give_back_foreign_pages(ALL_FEATURES);
	device_scribbling_dma_cannot_make_the_balloon_give_back_foreign_pages(
	    ALL_FEATURES & ~VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST));
}

/* --- teardown and a misbehaving device ------------------------------------------------------- */

static void test_fini_returns_every_page_telling_the_host(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 900);

	assert_int_equal(poll_all(t), 0);
	assert_int_equal(t->k.in_use, 900);
	vio_balloon_fini(&t->b);
	assert_int_equal(t->k.in_use, 0);
	assert_int_equal(t->h.held, 0); /* every page went through the deflateq */
	assert_int_equal(t->k.gives_host_still_holds, 0);
	finish(t);
}

static void test_completion_not_in_flight_breaks_balloon_and_fini_recovers(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 300);

	t->h.bogus_inflate_id = true;
	assert_int_equal(poll_all(t), VIO_EIO);
	assert_false(vio_balloon_pending(&t->b));
	assert_int_equal(vio_balloon_poll(&t->b), VIO_EIO);
	assert_int_equal(host_actual(t), 0);  /* never completed: actual did not move */
	assert_int_equal(t->k.in_use, BATCH); /* the batch stays the balloon's until reset */
	assert_int_equal(vio_balloon_deflate_for_oom(&t->b, 10), VIO_EIO);
	vio_balloon_fini(&t->b);
	assert_int_equal(t->k.in_use, 0);
	assert_int_equal(t->k.bad_gives, 0);
	free_env(t);
}

static void test_device_that_keeps_a_request_times_out(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 300);

	t->h.stall_inflate = true;
	assert_int_equal(poll_all(t), VIO_ETIMEDOUT);
	assert_true(fake_port_logged(&t->e->fp, "balloon stopped"));
	assert_int_equal(vio_balloon_poll(&t->b), VIO_EIO);
	vio_balloon_fini(&t->b);
	assert_int_equal(t->k.in_use, 0);
	free_env(t);
}

static void test_timeout_option_shortens_the_wait_for_a_kept_request(void **state)
{
	(void)state;
	struct t *t = bring_up_opts(ALL_FEATURES, true, 300, true, VIO_BALLOON_TIMEOUT_NS / 10);

	t->h.stall_inflate = true;
	uint64_t start = t->e->fp.now;
	assert_int_equal(vio_balloon_poll(&t->b), VIO_ETIMEDOUT);
	assert_true(t->e->fp.now - start >= VIO_BALLOON_TIMEOUT_NS / 10);
	assert_true(t->e->fp.now - start < VIO_BALLOON_TIMEOUT_NS);
	vio_balloon_fini(&t->b);
	assert_int_equal(t->k.in_use, 0);
	free_env(t);
}

static void test_fini_after_an_unconfirmed_reset_keeps_every_page_the_device_may_touch(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 300);

	t->h.stall_inflate = true;
	assert_int_equal(poll_all(t), VIO_ETIMEDOUT);
	assert_int_equal(t->k.in_use, BATCH);
	t->e->vd.reset_stuck = true;
	assert_int_equal(vio_balloon_fini(&t->b), VIO_EDEAD);
	/* The device may still hold the pages and read the request page: none comes back. */
	assert_int_equal(t->k.gives, 0);
	assert_int_equal(t->k.in_use, BATCH);
	assert_true(fake_port_logged(&t->e->fp, "reset not confirmed"));
	assert_true(t->e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(vio_balloon_fini(&t->b), 0); /* twice is harmless */
	assert_int_equal(vio_balloon_poll(&t->b), VIO_EIO);
	t->e->vd.reset_stuck = false;
	assert_true(fake_env_reclaim_leaks(t->e) >= 1); /* the PFN array's page was kept */
	free_env(t);
}

/* No config interrupt says so (2.1.2): a working device's status alone asks for the reset. */
static void test_polling_notices_a_device_that_needs_reset(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 0);
	int err, polls = 0;

	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	/* One status read per VIO_POLL_STATUS_NS; the fake clock moves 1 us a reading. */
	while ((err = vio_balloon_poll(&t->b)) >= 0)
		assert_true(++polls < 200000);
	assert_int_equal(err, VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_int_equal(vio_balloon_fini(&t->b), 0);
	free_env(t);
}

static void test_device_needing_reset_is_reported_on_timeout_and_on_a_broken_queue(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 300);

	t->h.stall_inflate = true;
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_balloon_poll(&t->b), VIO_ENEEDRESET);
	assert_true(fake_port_logged(&t->e->fp, "needs reset"));
	assert_int_equal(vio_balloon_fini(&t->b), 0);
	assert_int_equal(t->k.in_use, 0);
	free_env(t);

	t = bring_up(ALL_FEATURES, true, 300);
	t->h.bogus_inflate_id = true;
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_balloon_poll(&t->b), VIO_ENEEDRESET);
	assert_int_equal(vio_balloon_fini(&t->b), 0);
	assert_int_equal(t->k.in_use, 0);
	free_env(t);
}

/* --- the floor ----------------------------------------------------------------------------------
 */

static int log_lines_with(const struct fake_port *fp, const char *needle)
{
	int n = 0;
	int kept = fp->log_count < FAKE_PORT_LOG_LINES ? fp->log_count : FAKE_PORT_LOG_LINES;

	for (int i = 0; i < kept; i++)
		n += strstr(fp->log[i], needle) != NULL;
	return n;
}

static void test_a_host_asking_for_everything_stops_at_the_free_memory_floor(void **state)
{
	(void)state;
	next_floor_pages = 1000;
	struct t *t = bring_up(ALL_FEATURES, true, POOL);

	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), POOL - 1000);
	assert_int_equal(t->k.nfree, 1000);
	assert_int_equal(host_actual(t), POOL - 1000);
	assert_false(vio_balloon_pending(&t->b)); /* it waits, it does not spin */
	t->e->fp.now += 2 * VIO_BALLOON_RETRY_NS;
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), POOL - 1000);
	assert_int_equal(log_lines_with(&t->e->fp, "floor"), 1); /* logged once */
	set_target(t->e, 2000);
	assert_int_equal(poll_all(t), 0);
	assert_int_equal(vio_balloon_actual(&t->b), 2000);
	finish(t);
}

static void test_floor_defaults_to_vio_balloon_floor_pages(void **state)
{
	(void)state;
	struct t *t = bring_up(ALL_FEATURES, true, 0);

	assert_int_equal(t->b.bal_opts.floor_pages, VIO_BALLOON_FLOOR_PAGES);
	finish(t);
}

static void test_init_rejects_other_devices_and_missing_ops(void **state)
{
	(void)state;
	struct vio_balloon b;
	struct vio_balloon_opts none = {0};
	struct fake_env *e = fake_env_new(VIRTIO_ID_RNG, 0, NULL, 0, 1, 64);

	assert_int_equal(vio_balloon_init(&b, &e->dev, &none), VIO_ENODEV);
	vio_balloon_fini(&b);
	fake_env_free(e);

	struct virtio_balloon_config cfg = {0};
	e = fake_env_new(VIRTIO_ID_BALLOON, ALL_FEATURES, &cfg, sizeof(cfg), 4, 64);
	assert_int_equal(vio_balloon_init(&b, &e->dev, &none), VIO_EINVAL);
	assert_int_equal(vio_balloon_init(&b, &e->dev, NULL), VIO_EINVAL);
	assert_int_equal(vio_balloon_poll(&b), VIO_EIO);
	fake_env_free(e);
}

static void test_init_failure_leaves_nothing_allocated(void **state)
{
	(void)state;
	struct virtio_balloon_config cfg = {.num_pages = 5};
	struct kernel k = {.nstats = 1};
	struct vio_balloon_opts opts = {
	    .page_take = k_take, .page_give = k_give, .guest_stats = k_stats, .arg = &k};

	for (int fail = 0; fail < 12; fail++) {
		struct fake_env *e =
		    fake_env_new(VIRTIO_ID_BALLOON, ALL_FEATURES, &cfg, sizeof(cfg), 4, 64);
		struct vio_balloon b;

		e->fp.dma_fail_after = fail;
		int err = vio_balloon_init(&b, &e->dev, &opts);
		if (err == 0) {
			vio_balloon_fini(&b);
		} else {
			assert_int_equal(err, VIO_ENOMEM);
			assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
		}
		fake_env_free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inflate_to_target_in_batches_updating_actual_after_each),
	    cmocka_unit_test(test_poll_is_bounded_per_call),
	    cmocka_unit_test(test_target_above_available_memory_stops_cleanly_with_actual_truthful),
	    cmocka_unit_test(test_target_shrinking_mid_inflate_is_handled_at_the_next_batch),
	    cmocka_unit_test(test_deflate_with_must_tell_host_tells_host_before_pages_return),
	    cmocka_unit_test(test_deflate_without_must_tell_host_may_return_pages_first),
	    cmocka_unit_test(test_config_change_interrupt_only_sets_a_flag_until_poll),
	    cmocka_unit_test(test_polling_mode_follows_target_without_interrupts),
	    cmocka_unit_test(test_stats_queue_answered_with_ops_values_and_reposted),
	    cmocka_unit_test(test_stats_callback_with_nothing_is_asked_again_on_next_poll),
	    cmocka_unit_test(test_deflate_for_oom_gives_pages_back_and_backs_off),
	    cmocka_unit_test(test_deflate_for_oom_waits_no_longer_than_the_spin_limit),
	    cmocka_unit_test(test_poll_waits_no_longer_than_the_spin_limit),
	    cmocka_unit_test(test_deflate_for_oom_without_feature_is_not_supported),
	    cmocka_unit_test(test_free_page_reporting_reaches_the_reporting_queue),
	    cmocka_unit_test(test_reporting_queue_is_index_two_without_stats),
	    cmocka_unit_test(test_reporting_skipped_when_queue_numbering_would_be_ambiguous),
	    cmocka_unit_test(test_reporting_not_supported_without_feature),
	    cmocka_unit_test(test_bookkeeping_grows_past_one_page_and_shrinks),
	    cmocka_unit_test(test_bookkeeping_page_shortage_stops_inflating),
	    cmocka_unit_test(test_page_records_live_in_private_memory),
	    cmocka_unit_test(
		test_device_scribbling_dma_cannot_make_the_balloon_give_back_foreign_pages),
	    cmocka_unit_test(test_fini_returns_every_page_telling_the_host),
	    cmocka_unit_test(test_completion_not_in_flight_breaks_balloon_and_fini_recovers),
	    cmocka_unit_test(test_device_that_keeps_a_request_times_out),
	    cmocka_unit_test(test_timeout_option_shortens_the_wait_for_a_kept_request),
	    cmocka_unit_test(
		test_fini_after_an_unconfirmed_reset_keeps_every_page_the_device_may_touch),
	    cmocka_unit_test(
		test_device_needing_reset_is_reported_on_timeout_and_on_a_broken_queue),
	    cmocka_unit_test(test_polling_notices_a_device_that_needs_reset),
	    cmocka_unit_test(test_a_host_asking_for_everything_stops_at_the_free_memory_floor),
	    cmocka_unit_test(test_floor_defaults_to_vio_balloon_floor_pages),
	    cmocka_unit_test(test_init_rejects_other_devices_and_missing_ops),
	    cmocka_unit_test(test_init_failure_leaves_nothing_allocated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
