/*
 * Unit tests for the virtio-rng driver (src/drivers/virtio_rng.c) against a whole fake
 * entropy device (fake_env.h). The device model writes a running byte counter into the
 * buffers it fills, so a reader must see 0, 1, 2, ... in order: any byte lost, repeated or
 * taken from a discarded buffer shows up as a break in the sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/err.h>
#include <vio/rng.h>

#include "fake_env.h"

/* How the fake device answers. */
enum behaviour {
	DEV_FILL,     /* fill every buffer completely */
	DEV_SHORT,    /* write `short_len` bytes per buffer */
	DEV_SILENT,   /* never answer */
	DEV_OVERLONG, /* the next answer claims in_len + 100 bytes, then DEV_FILL */
	DEV_BAD_ID,   /* answer with a descriptor id that is not in flight */
};

struct model {
	enum behaviour how;
	uint32_t short_len;
	int budget;	    /* requests the device may still answer; < 0: unlimited */
	uint8_t next;	    /* next byte of the running counter */
	uint64_t period_ns; /* > 0: answer one request per period, starting at next_ns */
	uint64_t next_ns;
	unsigned answered;
	struct fake_req req;
};

static void rng_model(struct fake_env *e)
{
	struct model *m = e->model_arg;
	struct fake_vring *fv = &e->ring[0];

	if (e->nrings == 0 || m->how == DEV_SILENT)
		return;
	if (m->period_ns) {
		if (e->fp.now < m->next_ns)
			return;
		m->next_ns += m->period_ns;
		m->budget = 1;
	}
	/* Only what was posted before this slice: the driver re-posts from the interrupt. */
	for (unsigned k = fake_vring_avail_pending(fv);
	     k && m->budget != 0 && fake_vring_pop(fv, &m->req); k--) {
		uint32_t n = m->req.in_len;
		assert_int_equal(m->req.n_in, 1);
		assert_int_equal(m->req.n_out, 0);
		if (m->how == DEV_BAD_ID) {
			fake_vring_complete(fv, fv->size + 3u, 1);
			return;
		}
		if (m->how == DEV_OVERLONG) {
			fake_vring_complete(fv, m->req.head, n + 100);
			m->how = DEV_FILL;
			continue;
		}
		if (m->how == DEV_SHORT)
			n = m->short_len < n ? m->short_len : n;
		uint8_t *p = (uint8_t *)(uintptr_t)m->req.seg[0].addr;
		for (uint32_t i = 0; i < n; i++)
			p[i] = m->next++;
		fake_vring_complete(fv, m->req.head, n);
		m->answered++;
		if (m->budget > 0)
			m->budget--;
	}
}

struct t {
	struct fake_env *e;
	struct model m;
	struct vio_rng rng;
};

static struct t *setup(enum behaviour how, bool irqs)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->e = fake_env_new(VIRTIO_ID_RNG, 0, NULL, 0, 1, 64);
	if (!irqs)
		fake_env_no_irqs(t->e);
	t->m.how = how;
	t->m.budget = -1;
	t->e->model = rng_model;
	t->e->model_arg = &t->m;
	assert_int_equal(vio_rng_init(&t->rng, &t->e->dev, NULL), 0);
	fake_env_rings(t->e);
	t->e->ring[0].deliver_irqs = irqs;
	return t;
}

static void teardown(struct t *t)
{
	t->e->model = NULL; /* the rings go away with the queue */
	vio_rng_fini(&t->rng);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	fake_env_free(t->e);
	free(t);
}

/* The bytes must continue the counter from *expect. */
static void check_stream(const uint8_t *buf, size_t n, uint8_t *expect)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] != *expect)
			fail_msg("byte %zu is %u, expected %u", i, buf[i], *expect);
		(*expect)++;
	}
}

static void test_init_posts_every_buffer_and_goes_live(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SILENT, true);

	assert_string_equal(t->e->dev.name, "virtio-rng");
	assert_true(t->e->vd.status & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(t->e->dev.nvqs, 1);
	assert_int_equal(fake_vring_avail_pending(&t->e->ring[0]), VIO_RNG_BUFS);
	assert_int_equal(t->rng.stats.requests, VIO_RNG_BUFS);
	assert_true(t->e->vd.q[0].notified > 0);
	teardown(t);
}

static void test_init_rejects_other_device_types(void **state)
{
	(void)state;
	struct fake_env *e = fake_env_new(VIRTIO_ID_NET, 0, NULL, 0, 1, 64);
	struct vio_rng rng;

	assert_int_equal(vio_rng_init(&rng, &e->dev, NULL), VIO_ENODEV);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_env_free(e);
}

static void test_init_failing_allocation_leaves_nothing_allocated(void **state)
{
	(void)state;
	bool succeeded = false;

	for (int fail_at = 0; fail_at < 16 && !succeeded; fail_at++) {
		struct fake_env *e = fake_env_new(VIRTIO_ID_RNG, 0, NULL, 0, 1, 64);
		struct vio_rng rng;
		e->fp.dma_fail_after = e->fp.dma_allocs + fail_at;
		int err = vio_rng_init(&rng, &e->dev, NULL);
		if (err == 0) {
			succeeded = true;
			vio_rng_fini(&rng);
		} else {
			assert_int_equal(err, VIO_ENOMEM);
			assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
		}
		assert_int_equal(e->fp.dma_live_allocs, 0);
		fake_env_free(e);
	}
	assert_true(succeeded);
}

static void test_short_blocking_read_gets_exact_bytes(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);
	uint8_t buf[16], expect = 0;

	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), sizeof(buf));
	check_stream(buf, sizeof(buf), &expect);
	assert_int_equal(vio_rng_read(&t->rng, buf, 3, true), 3);
	check_stream(buf, 3, &expect);
	assert_int_equal(t->rng.stats.bytes, 19);
	teardown(t);
}

static void test_long_read_spans_many_requests(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);
	size_t len = 100 * 1024 + 17;
	uint8_t *buf = malloc(len), expect = 0;

	assert_int_equal(vio_rng_read(&t->rng, buf, len, true), (int)len);
	check_stream(buf, len, &expect);
	assert_true(t->rng.stats.requests > len / VIO_RNG_BUF_SIZE);
	assert_int_equal(t->rng.stats.bytes, len);
	free(buf);
	teardown(t);
}

static void test_nonblocking_with_nothing_ready_is_eagain(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SILENT, true);
	uint8_t buf[8];

	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), VIO_EAGAIN);
	assert_int_equal(vio_rng_poll(&t->rng), 0);
	teardown(t);
}

static void test_nonblocking_returns_what_is_ready(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SHORT, true);
	uint8_t buf[100], expect = 0;

	t->m.short_len = 10;
	t->m.budget = 1;
	fake_env_run(t->e);
	assert_int_equal(vio_rng_poll(&t->rng), 10);
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), 10);
	check_stream(buf, 10, &expect);
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), VIO_EAGAIN);
	teardown(t);
}

static void test_prefilled_buffers_serve_nonblocking_reads(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);
	uint8_t buf[VIO_RNG_BUFS * VIO_RNG_BUF_SIZE], expect = 0;

	fake_env_run(t->e); /* the device fills everything posted at init */
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), sizeof(buf));
	check_stream(buf, sizeof(buf), &expect);
	/* Every buffer went straight back to the device. */
	assert_int_equal(fake_vring_avail_pending(&t->e->ring[0]), VIO_RNG_BUFS);
	teardown(t);
}

static void test_device_returning_fewer_bytes_than_posted(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SHORT, true);
	uint8_t buf[1000], expect = 0;

	t->m.short_len = 7;
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), sizeof(buf));
	check_stream(buf, sizeof(buf), &expect);
	assert_true(t->rng.stats.short_fills >= sizeof(buf) / 7);
	teardown(t);
}

static void test_device_returning_zero_bytes_times_out(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SHORT, true);
	uint8_t buf[4];

	t->m.short_len = 0;
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), VIO_ETIMEDOUT);
	assert_true(t->rng.stats.completions > VIO_RNG_BUFS);
	teardown(t);
}

static void test_used_len_beyond_posted_is_discarded(void **state)
{
	(void)state;
	struct t *t = setup(DEV_OVERLONG, true);
	uint8_t buf[600], expect = 0;

	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), sizeof(buf));
	/* The over-long buffer was not handed out: the stream starts at 0. */
	check_stream(buf, sizeof(buf), &expect);
	assert_int_equal(t->rng.stats.bad_len, 1);
	assert_true(fake_port_logged(&t->e->fp, "discarded"));
	teardown(t);
}

static void test_timeout_when_device_never_answers(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SILENT, true);
	uint8_t buf[32];
	uint64_t start = t->e->fp.now;

	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), VIO_ETIMEDOUT);
	assert_true(t->e->fp.now - start >= VIO_RNG_TIMEOUT_NS);
	assert_int_equal(t->rng.stats.timeouts, 1);
	teardown(t);
}

static void test_timeout_option_shortens_a_blocking_read(void **state)
{
	(void)state;
	struct fake_env *e = fake_env_new(VIRTIO_ID_RNG, 0, NULL, 0, 1, 64);
	struct vio_rng_opts opts = {.timeout_ns = VIO_RNG_TIMEOUT_NS / 10};
	struct vio_rng rng;
	uint8_t buf[32];

	assert_int_equal(vio_rng_init(&rng, &e->dev, &opts), 0);
	uint64_t start = e->fp.now;
	assert_int_equal(vio_rng_read(&rng, buf, sizeof(buf), true), VIO_ETIMEDOUT);
	assert_true(e->fp.now - start >= opts.timeout_ns);
	assert_true(e->fp.now - start < VIO_RNG_TIMEOUT_NS);
	assert_int_equal(rng.stats.timeouts, 1);
	vio_rng_fini(&rng);
	fake_env_free(e);
}

static void test_slow_device_finishes_a_blocking_read(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SHORT, true);
	uint8_t buf[64], expect = 0;

	/*
	 * 16 bytes every 0.6 s: the read takes longer than VIO_RNG_TIMEOUT_NS in all, but the
	 * device is never silent that long, and the bound is on silence.
	 */
	t->m.short_len = 16;
	t->m.period_ns = VIO_RNG_TIMEOUT_NS * 6 / 10;
	t->m.next_ns = t->e->fp.now + t->m.period_ns;
	uint64_t start = t->e->fp.now;
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), sizeof(buf));
	check_stream(buf, sizeof(buf), &expect);
	assert_true(t->e->fp.now - start > VIO_RNG_TIMEOUT_NS);
	teardown(t);
}

static void test_broken_queue_is_eio(void **state)
{
	(void)state;
	struct t *t = setup(DEV_BAD_ID, true);
	uint8_t buf[8];

	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), VIO_EIO);
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), VIO_EIO);
	assert_int_equal(vio_rng_poll(&t->rng), VIO_EIO);
	teardown(t);
}

static void test_consumed_bytes_are_wiped(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);
	uint8_t buf[10];

	fake_env_run(t->e);
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), sizeof(buf));
	const struct vio_rng_buf *b = &t->rng.rng_buf[t->rng.rng_ready[t->rng.rng_ready_head]];
	assert_int_equal(b->pos, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(b->data[i], 0);
	assert_int_equal(b->data[10], 10); /* the rest is still there for the next reader */
	teardown(t);
}

static void test_works_in_polling_mode(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, false);
	uint8_t buf[3000], expect = 0;

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), sizeof(buf));
	check_stream(buf, sizeof(buf), &expect);
	teardown(t);
}

static void test_interrupt_reaps_completions(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_MSIX);
	fake_env_run(t->e); /* completes and interrupts: the callback reaps into the ready list */
	assert_true(t->e->ring[0].interrupts > 0);
	assert_int_equal(t->rng.rng_ready_count, VIO_RNG_BUFS);
	teardown(t);
}

static void test_bad_arguments_are_einval(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);
	uint8_t buf[4];

	assert_int_equal(vio_rng_read(&t->rng, NULL, 4, true), VIO_EINVAL);
	assert_int_equal(vio_rng_read(&t->rng, buf, 0, true), VIO_EINVAL);
	assert_int_equal(vio_rng_read(&t->rng, buf, (size_t)INT32_MAX + 1, false), VIO_EINVAL);
	teardown(t);
}

static void test_fini_twice_is_harmless(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);

	t->e->model = NULL;
	vio_rng_fini(&t->rng);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	teardown(t);
}

/* --- a hostile device ------------------------------------------------------------------------ */

static void test_device_scribbling_dma_cannot_forge_a_completion_or_crash(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);
	uint8_t buf[3 * VIO_RNG_BUF_SIZE];

	fake_env_run(t->e); /* every buffer filled and reaped into the ready list */
	uint64_t completions = t->rng.stats.completions;
	assert_true(fake_env_scribble(t->e, 0xa5) >= (size_t)VIO_RNG_BUFS * VIO_RNG_BUF_SIZE);
	/* What the device wrote is only ever entropy: no length, index or pointer came from it. */
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), sizeof(buf));
	assert_int_equal(t->rng.stats.completions, completions);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), sizeof(buf));
	assert_false(fake_port_is_dma(&t->e->fp, &t->rng, sizeof(t->rng)));
	teardown(t);
}

static void device_completing_every_repost_at_once(uint32_t used_len)
{
	struct t *t = setup(DEV_SHORT, false);

	/* One empty buffer comes back; every buffer posted from then on comes back at once. */
	t->m.short_len = 0;
	t->m.budget = 1;
	fake_env_run(t->e);
	t->e->model = NULL;
	fake_env_instant_completions(t->e, 0, t->rng.rng_dma,
				     (size_t)VIO_RNG_BUFS * VIO_RNG_BUF_SIZE, used_len, 100000);
	for (int call = 0; call < 3; call++) {
		uint64_t before = t->rng.stats.completions;
		int r = vio_rng_poll(&t->rng);
		assert_true(r >= 0);
		assert_true(t->rng.stats.completions - before <= VIO_RNG_BUFS);
	}
	assert_true(t->e->instant_done < 100000);
	fake_env_instant_completions(t->e, -1, NULL, 0, 0, 0);
	teardown(t);
}

static void test_poll_is_bounded_against_a_device_completing_every_repost(void **state)
{
	(void)state;
	device_completing_every_repost_at_once(0);		      /* empty: re-posted */
	device_completing_every_repost_at_once(VIO_RNG_BUF_SIZE + 1); /* too long: re-posted */
}

static void test_a_trickling_device_cannot_stretch_a_read_past_its_deadline(void **state)
{
	(void)state;
	struct fake_env *e = fake_env_new(VIRTIO_ID_RNG, 0, NULL, 0, 1, 64);
	struct vio_rng_opts opts = {.deadline_ns = 2 * VIO_RNG_TIMEOUT_NS};
	struct model m = {.how = DEV_SHORT, .short_len = 1, .budget = -1};
	struct vio_rng rng;
	uint8_t buf[64];

	/* One byte every 0.3 s: never silent for the timeout, 19 s for the whole read. */
	m.period_ns = VIO_RNG_TIMEOUT_NS * 3 / 10;
	e->model = rng_model;
	e->model_arg = &m;
	assert_int_equal(vio_rng_init(&rng, &e->dev, &opts), 0);
	fake_env_rings(e);
	m.next_ns = e->fp.now + m.period_ns;
	uint64_t start = e->fp.now;
	assert_int_equal(vio_rng_read(&rng, buf, sizeof(buf), true), VIO_ETIMEDOUT);
	assert_true(e->fp.now - start >= opts.deadline_ns);
	assert_true(e->fp.now - start < opts.deadline_ns + VIO_RNG_TIMEOUT_NS / 10);
	assert_int_equal(rng.stats.timeouts, 1);
	e->model = NULL;
	assert_int_equal(vio_rng_fini(&rng), 0);
	fake_env_free(e);
}

static void test_deadline_defaults_to_vio_rng_deadline_ns(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SILENT, true);

	assert_int_equal(t->rng.rng_opts.deadline_ns, VIO_RNG_DEADLINE_NS);
	assert_int_equal(t->rng.rng_opts.timeout_ns, VIO_RNG_TIMEOUT_NS);
	teardown(t);
}

struct waits {
	struct fake_port *fp;
	unsigned calls;
	uint64_t last, longest;
};

static void count_wait(struct vio_rng *rng, void *arg)
{
	struct waits *w = arg;
	(void)rng;
	w->calls++;
	if (w->fp->now - w->last > w->longest)
		w->longest = w->fp->now - w->last;
	w->last = w->fp->now;
}

static void test_a_blocking_read_lets_the_caller_take_interrupts_every_millisecond(void **state)
{
	(void)state;
	struct fake_env *e = fake_env_new(VIRTIO_ID_RNG, 0, NULL, 0, 1, 64);
	struct waits w = {.fp = &e->fp};
	struct vio_rng_opts opts = {.wait = count_wait, .arg = &w};
	struct model m = {.how = DEV_SHORT, .short_len = 16, .budget = -1};
	struct vio_rng rng;
	uint8_t buf[64], expect = 0;

	/* 16 bytes every 0.6 s: the read takes 2.4 s, all of it waiting for the device. */
	m.period_ns = VIO_RNG_TIMEOUT_NS * 6 / 10;
	e->model = rng_model;
	e->model_arg = &m;
	assert_int_equal(vio_rng_init(&rng, &e->dev, &opts), 0);
	fake_env_rings(e);
	m.next_ns = e->fp.now + m.period_ns;
	w.last = e->fp.now;
	assert_int_equal(vio_rng_read(&rng, buf, sizeof(buf), true), sizeof(buf));
	check_stream(buf, sizeof(buf), &expect);
	assert_true(w.calls >= 2000);
	/* Never more than the spin limit (and one look at the device) without a wait. */
	assert_true(w.longest <= VIO_RNG_SPIN_NS + 100000);
	e->model = NULL;
	assert_int_equal(vio_rng_fini(&rng), 0);
	fake_env_free(e);
}

/* No config interrupt says so (2.1.2): a working device's status alone asks for the reset. */
static void test_polling_notices_a_device_that_needs_reset(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);
	uint8_t buf[8];
	int err = 0;

	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	for (int i = 0; i < 200000 && err >= 0; i++)
		err = vio_rng_poll(&t->rng);
	assert_int_equal(err, VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), false), VIO_ENEEDRESET);
	teardown(t);
}

static void test_device_needing_reset_is_reported_on_timeout_and_on_a_broken_queue(void **state)
{
	(void)state;
	struct t *t = setup(DEV_SILENT, true);
	uint8_t buf[8];

	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), VIO_ENEEDRESET);
	assert_true(fake_port_logged(&t->e->fp, "needs reset"));
	teardown(t);

	t = setup(DEV_BAD_ID, true);
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_rng_read(&t->rng, buf, sizeof(buf), true), VIO_ENEEDRESET);
	assert_int_equal(vio_rng_poll(&t->rng), VIO_ENEEDRESET);
	teardown(t);
}

static void test_fini_after_an_unconfirmed_reset_keeps_the_buffers(void **state)
{
	(void)state;
	struct t *t = setup(DEV_FILL, true);

	t->e->model = NULL;
	t->e->vd.reset_stuck = true;
	assert_int_equal(vio_rng_fini(&t->rng), VIO_EDEAD);
	/* The device may still write the buffers: they were not given back. */
	assert_true(t->e->fp.dma_live_allocs >= 1);
	assert_true(fake_port_logged(&t->e->fp, "reset not confirmed"));
	assert_true(t->e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(vio_rng_fini(&t->rng), 0); /* twice is harmless */
	t->e->vd.reset_stuck = false;
	assert_true(fake_env_reclaim_leaks(t->e) >= 1);
	fake_env_free(t->e);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_posts_every_buffer_and_goes_live),
	    cmocka_unit_test(test_init_rejects_other_device_types),
	    cmocka_unit_test(test_init_failing_allocation_leaves_nothing_allocated),
	    cmocka_unit_test(test_short_blocking_read_gets_exact_bytes),
	    cmocka_unit_test(test_long_read_spans_many_requests),
	    cmocka_unit_test(test_nonblocking_with_nothing_ready_is_eagain),
	    cmocka_unit_test(test_nonblocking_returns_what_is_ready),
	    cmocka_unit_test(test_prefilled_buffers_serve_nonblocking_reads),
	    cmocka_unit_test(test_device_returning_fewer_bytes_than_posted),
	    cmocka_unit_test(test_device_returning_zero_bytes_times_out),
	    cmocka_unit_test(test_used_len_beyond_posted_is_discarded),
	    cmocka_unit_test(test_timeout_when_device_never_answers),
	    cmocka_unit_test(test_timeout_option_shortens_a_blocking_read),
	    cmocka_unit_test(test_slow_device_finishes_a_blocking_read),
	    cmocka_unit_test(test_broken_queue_is_eio),
	    cmocka_unit_test(test_consumed_bytes_are_wiped),
	    cmocka_unit_test(test_works_in_polling_mode),
	    cmocka_unit_test(test_interrupt_reaps_completions),
	    cmocka_unit_test(test_bad_arguments_are_einval),
	    cmocka_unit_test(test_fini_twice_is_harmless),
	    cmocka_unit_test(test_device_scribbling_dma_cannot_forge_a_completion_or_crash),
	    cmocka_unit_test(test_poll_is_bounded_against_a_device_completing_every_repost),
	    cmocka_unit_test(test_a_trickling_device_cannot_stretch_a_read_past_its_deadline),
	    cmocka_unit_test(test_deadline_defaults_to_vio_rng_deadline_ns),
	    cmocka_unit_test(
		test_a_blocking_read_lets_the_caller_take_interrupts_every_millisecond),
	    cmocka_unit_test(
		test_device_needing_reset_is_reported_on_timeout_and_on_a_broken_queue),
	    cmocka_unit_test(test_polling_notices_a_device_that_needs_reset),
	    cmocka_unit_test(test_fini_after_an_unconfirmed_reset_keeps_the_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
