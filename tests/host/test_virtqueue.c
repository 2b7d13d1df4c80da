/*
 * Unit tests for the virtqueue (src/virtio/virtqueue.c, virtqueue_packed.c) against a fake
 * device that plays the other side of the ring (fake_vring.c) in host memory. The queues of
 * env_new are split rings, or packed ones when VIO_TEST_RING=packed (tests/runner.py runs the
 * file both ways); a test of one layout's own structures skips the other's run, and the
 * packed ring's own tests are at the end.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <vio/err.h>
#include <vio/spec/virtio_ring.h>
#include <vio/virtqueue.h>

#include "fake_env.h"
#include "fake_port.h"
#include "fake_vring.h"

/* The layout env_new gives: VIO_VQ_F_PACKED (with the separate areas it needs) or split. */
static uint32_t ring_flags(void)
{
	return fake_env_ring_features() ? VIO_VQ_F_PACKED | VIO_VQ_F_SEPARATE_AREAS : 0;
}

/* For a test of the split ring's own structures: skipped in the packed run. */
#define SPLIT_ONLY()                                                                            \
	do {                                                                                    \
		if (ring_flags())                                                               \
			skip();                                                                 \
	} while (0)

struct env {
	struct fake_port fp;
	struct vio_vq vq;
	struct fake_vring fv;
	struct fake_req req;
	uint8_t buf[64][64]; /* backing for requests in most tests */
};

static struct env *env_new_opts(uint16_t size, uint32_t flags, const struct vio_vq_opts *opts)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	fake_port_init(&e->fp);
	assert_int_equal(vio_vq_init(&e->vq, &e->fp.port, 0, size, flags | ring_flags(), opts,
				     fake_vring_notify, &e->fv),
			 0);
	fake_vring_attach(&e->fv, &e->vq, flags & VIO_VQ_F_EVENT_IDX);
	return e;
}

static struct env *env_new(uint16_t size, uint32_t flags)
{
	return env_new_opts(size, flags, NULL);
}

static void env_free(struct env *e)
{
	vio_vq_destroy(&e->vq);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	assert_int_equal(e->fp.priv_live_allocs, 0);
	assert_int_equal(e->fv.chain_errors, 0);
	free(e);
}

/* Cookies are just distinct non-NULL pointers. */
static void *cookie(uintptr_t n)
{
	return (void *)(0x1000 + n * 8);
}

static int add1(struct env *e, void *buf, uint32_t len, bool writable, void *c)
{
	struct vio_sg sg = {buf, len};
	return vio_vq_add(&e->vq, &sg, writable ? 0 : 1, writable ? 1 : 0, c);
}

/* Device: pop one request, write into it, complete it with the bytes it wrote. */
static uint16_t device_serve_one(struct env *e)
{
	assert_true(fake_vring_pop(&e->fv, &e->req));
	uint32_t n = fake_vring_fill(&e->req, (uint8_t)e->req.head);
	fake_vring_complete(&e->fv, e->req.head, n);
	return e->req.head;
}

/* Device: pop one request and return its head, leaving it to the test to complete. */
static uint16_t pop_head(struct env *e)
{
	assert_true(fake_vring_pop(&e->fv, &e->req));
	return e->req.head;
}

/* --- init and layout -------------------------------------------------------------------- */

static void test_init_rejects_size_zero_non_power_of_two_and_too_big(void **state)
{
	struct fake_port fp;
	struct vio_vq vq;
	const uint16_t bad[] = {0, 3, 6, 100, 32767, 40000, 65535};
	(void)state;

	fake_port_init(&fp);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vio_vq_init(&vq, &fp.port, 0, bad[i], 0, NULL, NULL, NULL),
				 VIO_EINVAL);
		vio_vq_destroy(&vq);
	}
	assert_int_equal(fp.dma_live_allocs, 0);

	const uint16_t good[] = {1, 2, 256, 32768};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(vio_vq_init(&vq, &fp.port, 0, good[i], VIO_VQ_F_INDIRECT, NULL,
					     NULL, NULL),
				 0);
		assert_int_equal(vio_vq_num_free(&vq), good[i]);
		vio_vq_destroy(&vq);
		assert_int_equal(fp.dma_live_allocs, 0);
	}
	assert_int_equal(vio_vq_init(&vq, NULL, 0, 8, 0, NULL, NULL, NULL), VIO_EINVAL);
}

static void test_init_returns_enomem_without_leaking_when_dma_fails(void **state)
{
	const uint32_t flags[] = {0, VIO_VQ_F_INDIRECT | VIO_VQ_F_EVENT_IDX};
	(void)state;

	for (size_t f = 0; f < 2; f++) {
		/* As many DMA allocations as a queue that comes up makes: each may fail. */
		struct fake_port fp;
		struct vio_vq vq;
		fake_port_init(&fp);
		assert_int_equal(vio_vq_init(&vq, &fp.port, 1, 64, flags[f], NULL, NULL, NULL), 0);
		int allocs = fp.dma_allocs;
		assert_true(allocs >= (flags[f] & VIO_VQ_F_INDIRECT ? 2 : 1));
		vio_vq_destroy(&vq);
		for (int fail = 0; fail < allocs; fail++) {
			fake_port_init(&fp);
			fp.dma_fail_after = fail;
			assert_int_equal(
				vio_vq_init(&vq, &fp.port, 1, 64, flags[f], NULL, NULL, NULL),
				VIO_ENOMEM);
			assert_int_equal(fp.dma_live_allocs, 0);
			assert_int_equal(fp.priv_live_allocs, 0);
			assert_true(fake_port_logged(&fp, "vq1: no DMA memory"));
			vio_vq_destroy(&vq); /* harmless after a failed init */
			assert_int_equal(fp.dma_live_allocs, 0);
		}
	}
}

static void *no_priv_memory(void *ctx, size_t bytes)
{
	(void)ctx;
	(void)bytes;
	return NULL;
}

static void test_init_returns_enomem_without_leaking_when_private_memory_fails(void **state)
{
	struct fake_port fp;
	struct vio_vq vq;
	(void)state;

	fake_port_init(&fp);
	fp.port.priv_alloc = no_priv_memory;
	assert_int_equal(vio_vq_init(&vq, &fp.port, 2, 64, VIO_VQ_F_INDIRECT, NULL, NULL, NULL),
			 VIO_ENOMEM);
	assert_int_equal(fp.dma_live_allocs, 0);
	assert_true(fake_port_logged(&fp, "vq2: no memory for the queue's bookkeeping"));
	vio_vq_destroy(&vq);
}

static void test_ring_uses_the_legacy_contiguous_layout(void **state)
{
	SPLIT_ONLY(); /* legacy transports have no packed ring */
	struct env *e = env_new(256, 0);
	(void)state;

	assert_int_equal(e->vq.ring_phys % 4096, 0);
	assert_int_equal(e->vq.desc_phys, e->vq.ring_phys);
	assert_int_equal(e->vq.avail_phys, e->vq.ring_phys + 16 * 256);
	/* 4096 + 6 + 512 = 4614 bytes of desc + avail, so used starts at 8192. */
	assert_int_equal(e->vq.used_phys, e->vq.ring_phys + 8192);
	assert_int_equal(e->vq.msix_vector, VIO_VQ_NO_VECTOR);
	assert_int_equal(vring_legacy_bytes(256), 8192 + 6 + 8 * 256);
	env_free(e);
}

/* --- add, kick, get ---------------------------------------------------------------------- */

static void test_add_then_get_round_trips_cookie_data_and_lengths(void **state)
{
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	memcpy(e->buf[0], "hello", 5);
	struct vio_sg sg[2] = {{e->buf[0], 5}, {e->buf[1], 32}};
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(7)), 0);
	assert_int_equal(vio_vq_num_free(&e->vq), 6);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EAGAIN);

	assert_true(vio_vq_kick(&e->vq));
	assert_int_equal(e->fv.notifications, 1);

	assert_true(fake_vring_pop(&e->fv, &e->req));
	assert_int_equal(e->req.n_out, 1);
	assert_int_equal(e->req.n_in, 1);
	assert_false(e->req.indirect);
	assert_ptr_equal((void *)(uintptr_t)e->req.seg[0].addr, e->buf[0]);
	assert_ptr_equal((void *)(uintptr_t)e->req.seg[1].addr, e->buf[1]);
	char out[8] = {0};
	assert_int_equal(fake_vring_gather(&e->req, out, sizeof(out)), 5);
	assert_string_equal(out, "hello");
	assert_int_equal(fake_vring_fill(&e->req, 0x40), 32);
	fake_vring_complete(&e->fv, e->req.head, 32);

	assert_true(vio_vq_has_used(&e->vq));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_ptr_equal(u.cookie, cookie(7));
	assert_int_equal(u.len, 32);
	assert_int_equal(u.in_len, 32);
	assert_int_equal(e->buf[1][0], 0x40);
	assert_int_equal(e->buf[1][31], 0x40 + 31);
	assert_false(vio_vq_has_used(&e->vq));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EAGAIN);
	assert_int_equal(vio_vq_num_free(&e->vq), 8);
	assert_int_equal(e->vq.stats.adds, 1);
	assert_int_equal(e->vq.stats.completions, 1);
	env_free(e);
}

static void test_device_sees_nothing_until_kick_publishes(void **state)
{
	SPLIT_ONLY(); /* a packed head is published by add */
	struct env *e = env_new(8, 0);
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(1)), 0);
	assert_int_equal(fake_vring_avail_pending(&e->fv), 0);
	assert_true(vio_vq_kick_prepare(&e->vq));
	assert_int_equal(fake_vring_avail_pending(&e->fv), 1);
	assert_int_equal(e->fv.notifications, 0); /* prepare alone never notifies */
	vio_vq_notify(&e->vq);
	assert_int_equal(e->fv.notifications, 1);
	device_serve_one(e);
	struct vio_vq_used u;
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	env_free(e);
}

static void test_kick_with_nothing_new_does_not_notify(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	assert_false(vio_vq_kick(&e->vq));
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(1)), 0);
	assert_true(vio_vq_kick(&e->vq));
	assert_false(vio_vq_kick(&e->vq));
	assert_int_equal(e->fv.notifications, 1);
	assert_int_equal(e->vq.stats.kicks, 1);
	env_free(e);
}

static void test_add_rejects_malformed_requests_without_changing_the_ring(void **state)
{
	struct env *e = env_new(8, VIO_VQ_F_INDIRECT);
	struct vio_sg sg[9];
	(void)state;

	for (int i = 0; i < 9; i++)
		sg[i] = (struct vio_sg){e->buf[i], 8};
	assert_int_equal(vio_vq_add(&e->vq, sg, 0, 0, cookie(1)), VIO_EINVAL);
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 0, NULL), VIO_EINVAL);
	assert_int_equal(vio_vq_add(&e->vq, NULL, 1, 0, cookie(1)), VIO_EINVAL);
	assert_int_equal(vio_vq_add(&e->vq, sg, 5, 4, cookie(1)), VIO_EINVAL); /* > size */
	assert_int_equal(vio_vq_add(&e->vq, sg, 0xffffffffu, 2, cookie(1)), VIO_EINVAL);
	sg[1].len = 0;
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 2, cookie(1)), VIO_EINVAL);
	sg[1] = (struct vio_sg){e->buf[1], 0x80000000u};
	sg[2] = (struct vio_sg){e->buf[2], 0x80000000u};
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 2, cookie(1)), VIO_EINVAL); /* 4 GiB in */
	assert_int_equal(vio_vq_num_free(&e->vq), 8);
	assert_int_equal(e->vq.stats.adds, 0);
	assert_false(vio_vq_kick(&e->vq));
	env_free(e);
}

static void test_full_ring_returns_enospc_and_recovers(void **state)
{
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	for (int i = 0; i < 8; i++)
		assert_int_equal(add1(e, e->buf[i], 8, true, cookie(i)), 0);
	assert_int_equal(vio_vq_num_free(&e->vq), 0);
	assert_int_equal(add1(e, e->buf[8], 8, true, cookie(8)), VIO_ENOSPC);
	assert_int_equal(e->vq.stats.full, 1);
	vio_vq_kick(&e->vq);

	device_serve_one(e);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_ptr_equal(u.cookie, cookie(0));
	assert_int_equal(vio_vq_num_free(&e->vq), 1);

	/* A two-segment chain needs two descriptors: still no room, and nothing changes. */
	struct vio_sg sg[2] = {{e->buf[9], 4}, {e->buf[10], 4}};
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(9)), VIO_ENOSPC);
	assert_int_equal(vio_vq_num_free(&e->vq), 1);
	assert_int_equal(add1(e, e->buf[8], 8, true, cookie(8)), 0);
	vio_vq_kick(&e->vq);

	for (int i = 1; i <= 8; i++) {
		device_serve_one(e);
		assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
		assert_ptr_equal(u.cookie, cookie(i));
	}
	assert_int_equal(vio_vq_num_free(&e->vq), 8);
	env_free(e);
}

/* Run `count` requests through the ring keeping up to `depth` in flight, checking order. */
static void pump(struct env *e, unsigned count, unsigned depth, unsigned segs)
{
	struct vio_vq_used u;
	unsigned posted = 0, done = 0;
	struct vio_sg sg[4];

	for (unsigned s = 0; s < segs; s++)
		sg[s] = (struct vio_sg){e->buf[s], 16};
	while (done < count) {
		while (posted < count && posted - done < depth)
			assert_int_equal(vio_vq_add(&e->vq, sg, 1, segs - 1,
						    cookie(posted++ & 0xffffff)),
					 0);
		vio_vq_kick(&e->vq);
		while (fake_vring_avail_pending(&e->fv))
			device_serve_one(e);
		while (vio_vq_get_used(&e->vq, &u) == 0) {
			assert_ptr_equal(u.cookie, cookie(done++ & 0xffffff));
			assert_int_equal(u.len, 16 * (segs - 1));
		}
	}
	assert_false(vio_vq_is_broken(&e->vq));
	assert_int_equal(vio_vq_num_free(&e->vq), e->vq.size);
}

static void test_16bit_indexes_wrap_after_65536_requests(void **state)
{
	struct env *e = env_new(4, 0);
	(void)state;

	pump(e, 70000, 2, 2);
	/* A packed ring counts slots: each request is a chain of two. */
	assert_int_equal(e->vq.vq_last_used, (uint16_t)(70000 * (ring_flags() ? 2 : 1)));
	assert_int_equal(e->vq.stats.completions, 70000);
	env_free(e);
}

static void test_out_of_order_completion_across_the_wrap(void **state)
{
	struct env *e = env_new(32, 0);
	struct vio_vq_used u;
	(void)state;

	pump(e, 0xfff0, 1, 2); /* indexes now just below the wrap */
	for (int round = 0; round < 4; round++) {
		uint16_t heads[10];
		for (int i = 0; i < 10; i++) {
			struct vio_sg sg[3] = {{e->buf[0], 4}, {e->buf[1], 8}, {e->buf[2], 8}};
			unsigned n_in = (unsigned)(i % 3);
			assert_int_equal(vio_vq_add(&e->vq, sg, 1, n_in, cookie(i)), 0);
		}
		vio_vq_kick(&e->vq);
		for (int i = 0; i < 10; i++) {
			assert_true(fake_vring_pop(&e->fv, &e->req));
			heads[i] = e->req.head;
		}
		/* Complete in the order 9, 7, 5, ... then 8, 6, 4, ...: len encodes the request. */
		const int order[10] = {9, 7, 5, 3, 1, 8, 6, 4, 2, 0};
		for (int k = 0; k < 10; k++)
			fake_vring_push(&e->fv, heads[order[k]], (uint32_t)order[k]);
		fake_vring_publish(&e->fv);
		for (int k = 0; k < 10; k++) {
			assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
			assert_ptr_equal(u.cookie, cookie(order[k]));
			assert_int_equal(u.len, order[k]);
			assert_int_equal(u.in_len, 8 * (order[k] % 3));
		}
		assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EAGAIN);
		assert_int_equal(vio_vq_num_free(&e->vq), 32);
	}
	/* The free list survived the shuffling: the whole ring is usable again. */
	pump(e, 100, 32, 1);
	env_free(e);
}

static void test_direct_chain_carries_many_segments(void **state)
{
	struct env *e = env_new(256, 0);
	static uint8_t data[200][8];
	struct vio_sg sg[200];
	struct vio_vq_used u;
	(void)state;

	for (int i = 0; i < 200; i++)
		sg[i] = (struct vio_sg){data[i], 8};
	assert_int_equal(vio_vq_add(&e->vq, sg, 120, 80, cookie(1)), 0);
	assert_int_equal(vio_vq_num_free(&e->vq), 56);
	vio_vq_kick(&e->vq);
	assert_true(fake_vring_pop(&e->fv, &e->req));
	assert_false(e->req.indirect);
	assert_int_equal(e->req.n_out, 120);
	assert_int_equal(e->req.n_in, 80);
	for (int i = 0; i < 200; i++)
		assert_ptr_equal((void *)(uintptr_t)e->req.seg[i].addr, data[i]);
	fake_vring_complete(&e->fv, e->req.head, fake_vring_fill(&e->req, 0));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(u.len, 640);
	assert_int_equal(u.in_len, 640);
	assert_int_equal(vio_vq_num_free(&e->vq), 256);
	env_free(e);
}

static void test_indirect_ring_of_128_carries_128_requests_of_8_segments(void **state)
{
	struct vio_vq_opts opts = {.indirect_tables = 128};
	struct env *e = env_new_opts(128, VIO_VQ_F_INDIRECT, &opts);
	static uint8_t data[128][8][16];
	struct vio_vq_used u;
	(void)state;

	for (int r = 0; r < 128; r++) {
		struct vio_sg sg[8];
		for (int s = 0; s < 8; s++)
			sg[s] = (struct vio_sg){data[r][s], 16};
		assert_int_equal(vio_vq_add(&e->vq, sg, 3, 5, cookie(r)), 0);
	}
	assert_int_equal(vio_vq_num_free(&e->vq), 0);
	assert_int_equal(e->vq.stats.adds_indirect, 128);
	struct vio_sg one = {data[0][0], 1};
	assert_int_equal(vio_vq_add(&e->vq, &one, 1, 0, cookie(999)), VIO_ENOSPC);
	vio_vq_kick(&e->vq);

	uint16_t heads[128];
	for (int r = 0; r < 128; r++) {
		assert_true(fake_vring_pop(&e->fv, &e->req));
		assert_true(e->req.indirect);
		assert_int_equal(e->req.n_out, 3);
		assert_int_equal(e->req.n_in, 5);
		assert_ptr_equal((void *)(uintptr_t)e->req.seg[7].addr, data[r][7]);
		heads[r] = e->req.head;
		fake_vring_fill(&e->req, (uint8_t)r);
	}
	for (int r = 127; r >= 0; r--)
		fake_vring_complete(&e->fv, heads[r], 80);
	for (int r = 127; r >= 0; r--) {
		assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
		assert_ptr_equal(u.cookie, cookie(r));
		assert_int_equal(u.in_len, 80);
		assert_int_equal(data[r][3][0], (uint8_t)r);
	}
	assert_int_equal(vio_vq_num_free(&e->vq), 128);
	env_free(e);
}

static void test_indirect_pool_exhaustion_falls_back_to_direct_chains(void **state)
{
	struct env *e = env_new(512, VIO_VQ_F_INDIRECT); /* pool: VIO_VQ_INDIRECT_TABLES */
	struct vio_sg sg[2] = {{e->buf[0], 8}, {e->buf[1], 8}};
	(void)state;

	for (int r = 0; r < VIO_VQ_INDIRECT_TABLES; r++)
		assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(r)), 0);
	assert_int_equal(vio_vq_num_free(&e->vq), 512 - VIO_VQ_INDIRECT_TABLES);
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(1000)), 0);
	assert_int_equal(vio_vq_num_free(&e->vq), 512 - VIO_VQ_INDIRECT_TABLES - 2);
	assert_int_equal(e->vq.stats.adds_indirect, VIO_VQ_INDIRECT_TABLES);

	/* One segment never needs a table, and neither fits a request longer than a table. */
	static uint8_t many[VIO_VQ_INDIRECT_SEGS + 1][4];
	struct vio_sg big[VIO_VQ_INDIRECT_SEGS + 1];
	for (int i = 0; i <= VIO_VQ_INDIRECT_SEGS; i++)
		big[i] = (struct vio_sg){many[i], 4};
	assert_int_equal(vio_vq_add(&e->vq, big, 1, 0, cookie(1001)), 0);
	assert_int_equal(vio_vq_add(&e->vq, big, 1, VIO_VQ_INDIRECT_SEGS, cookie(1002)), 0);
	assert_int_equal(e->vq.stats.adds_indirect, VIO_VQ_INDIRECT_TABLES);
	vio_vq_kick(&e->vq);

	struct vio_vq_used u;
	unsigned direct = 0, total = 0;
	while (fake_vring_pop(&e->fv, &e->req)) {
		direct += !e->req.indirect;
		total++;
		fake_vring_complete(&e->fv, e->req.head, 0);
	}
	assert_int_equal(total, VIO_VQ_INDIRECT_TABLES + 3);
	assert_int_equal(direct, 3);
	while (vio_vq_get_used(&e->vq, &u) == 0)
		;
	assert_int_equal(vio_vq_num_free(&e->vq), 512);
	/* Tables came back: the next request is indirect again. */
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(2000)), 0);
	assert_int_equal(e->vq.stats.adds_indirect, VIO_VQ_INDIRECT_TABLES + 1);
	assert_non_null(vio_vq_detach_unused(&e->vq));
	env_free(e);
}

static void test_indirect_pool_is_allocated_a_page_at_a_time(void **state)
{
	const uint16_t tables[] = {0, 1, 5, 64, 300};
	(void)state;

	for (size_t k = 0; k < sizeof(tables) / sizeof(tables[0]); k++) {
		struct vio_vq_opts opts = {.indirect_tables = tables[k]};
		struct env *e = env_new_opts(256, VIO_VQ_F_INDIRECT | VIO_VQ_F_SEPARATE_AREAS,
					     &opts);
		unsigned want = tables[k] ? (tables[k] < 256 ? tables[k] : 256)
					  : VIO_VQ_INDIRECT_TABLES;
		assert_int_equal(e->vq.vq_ntables, want);
		/* 1 KiB tables, four to a page: one dma_alloc per page, none bigger. */
		unsigned pages = (want + 3) / 4;
		assert_int_equal(e->fp.dma_live_allocs, 2 + pages);
		for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++)
			assert_true(e->fp.dma[i].bytes <= 4096);

		/* Every table is usable, then requests go direct. */
		struct vio_sg sg[2] = {{e->buf[0], 8}, {e->buf[1], 8}};
		for (unsigned r = 0; r < want; r++)
			assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(r)), 0);
		assert_int_equal(e->vq.stats.adds_indirect, want);
		unsigned extra = want < 256; /* a pool as big as the ring fills it */
		if (extra)
			assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(want)), 0);
		assert_int_equal(e->vq.stats.adds_indirect, want);
		vio_vq_kick(&e->vq);
		while (fake_vring_pop(&e->fv, &e->req)) {
			assert_int_equal(e->req.n_out + e->req.n_in, 2);
			assert_ptr_equal((void *)(uintptr_t)e->req.seg[1].addr, e->buf[1]);
			fake_vring_complete(&e->fv, e->req.head, 8);
		}
		struct vio_vq_used u;
		for (unsigned r = 0; r < want + extra; r++)
			assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
		env_free(e);
	}
}

static void test_separate_areas_need_no_more_than_their_own_size(void **state)
{
	const uint16_t sizes[] = {1, 8, 128, 256, 1024, 32768};
	const size_t largest[] = {4096, 4096, 4096, 4096, 16384, 524288};
	(void)state;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct env *e = env_new(sizes[k], VIO_VQ_F_SEPARATE_AREAS | VIO_VQ_F_EVENT_IDX);
		size_t most = 0;
		for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++)
			most = e->fp.dma[i].bytes > most ? e->fp.dma[i].bytes : most;
		assert_int_equal(most, largest[k]);
		/* 2.7: each area on its own alignment; no legacy page frame to give. */
		assert_int_equal(e->vq.desc_phys % 16, 0);
		assert_int_equal(e->vq.avail_phys % 2, 0);
		assert_int_equal(e->vq.used_phys % 4, 0);
		assert_int_equal(e->vq.ring_phys, 0);
		/* The areas do not overlap: a full ring's worth of traffic goes through. */
		pump(e, 3u * sizes[k], sizes[k] < 4 ? 1 : 4, sizes[k] < 2 ? 1 : 2);
		env_free(e);
	}
}

/* --- notification suppression ------------------------------------------------------------ */

static void test_event_idx_driver_kicks_only_when_avail_event_is_crossed(void **state)
{
	SPLIT_ONLY(); /* avail_event; packed: test_packed_* */
	struct env *e = env_new(32, VIO_VQ_F_EVENT_IDX);
	struct vio_vq_used u;
	(void)state;

	/* avail_event starts at 0: the device wants to hear about entry 0. */
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(0)), 0);
	assert_true(vio_vq_kick(&e->vq));
	/* It still says 0, which lies behind us now: no more notifications. */
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(1)), 0);
	assert_false(vio_vq_kick(&e->vq));
	assert_int_equal(e->vq.stats.suppressed, 1);

	fake_vring_set_avail_event(&e->fv, 5);
	for (int i = 2; i < 5; i++)
		assert_int_equal(add1(e, e->buf[0], 4, false, cookie(i)), 0);
	assert_false(vio_vq_kick(&e->vq)); /* published 2..4 */
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(5)), 0);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(6)), 0);
	assert_true(vio_vq_kick(&e->vq)); /* published 5..6: covers 5 */
	assert_int_equal(e->fv.notifications, 2);
	while (fake_vring_avail_pending(&e->fv))
		device_serve_one(e);
	while (vio_vq_get_used(&e->vq, &u) == 0)
		;

	/* Near the wrap: a device asking for entry 2 is notified once avail->idx passes it. */
	e->fv.auto_avail_event = true;
	pump(e, 0xfff0 - 7, 1, 1);
	assert_int_equal(e->vq.vq_avail_idx, 0xfff0);
	fake_vring_set_avail_event(&e->fv, 2);
	e->fv.auto_avail_event = false;
	unsigned before = e->fv.notifications;
	for (int batch = 0; batch < 3; batch++) {
		for (int i = 0; i < 8; i++)
			assert_int_equal(add1(e, e->buf[0], 4, false, cookie(i)), 0);
		/* 0xfff0..0xfff7 and 0xfff8..0xffff are before entry 2; 0..7 contains it. */
		assert_int_equal(vio_vq_kick(&e->vq), batch == 2);
		while (fake_vring_avail_pending(&e->fv))
			device_serve_one(e);
		while (vio_vq_get_used(&e->vq, &u) == 0)
			;
	}
	assert_int_equal(e->fv.notifications, before + 1);
	env_free(e);
}

static void test_event_idx_used_event_follows_enable_and_stops_on_disable(void **state)
{
	SPLIT_ONLY(); /* used_event; packed: test_packed_* */
	struct env *e = env_new(16, VIO_VQ_F_EVENT_IDX);
	struct vio_vq_used u;
	(void)state;

	for (int i = 0; i < 6; i++)
		assert_int_equal(add1(e, e->buf[i], 8, true, cookie(i)), 0);
	vio_vq_kick(&e->vq);

	/* used_event 0: the device interrupts for the first entry, not the second. */
	assert_true(fake_vring_complete(&e->fv, pop_head(e), 0));
	assert_false(fake_vring_complete(&e->fv, pop_head(e), 0));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(fake_vring_used_event(&e->fv), 1); /* consumed 1: wants entry 1 */
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(fake_vring_used_event(&e->fv), 2);
	assert_true(fake_vring_complete(&e->fv, pop_head(e), 0));

	/* Disabled: used_event stays put while we keep consuming. */
	vio_vq_disable_cb(&e->vq);
	assert_false(fake_vring_no_interrupt(&e->fv)); /* EVENT_IDX never uses the flag */
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(fake_vring_used_event(&e->fv), 2);
	assert_false(fake_vring_complete(&e->fv, pop_head(e), 0));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(fake_vring_used_event(&e->fv), 2);

	/* Re-enabled: used_event = next entry we will consume, and the device interrupts. */
	assert_true(vio_vq_enable_cb(&e->vq));
	assert_int_equal(fake_vring_used_event(&e->fv), 4);
	assert_true(fake_vring_complete(&e->fv, pop_head(e), 0));
	assert_int_equal(e->fv.interrupts, 3);
	assert_int_equal(e->fv.irqs_suppressed, 2);
	assert_non_null(vio_vq_detach_unused(&e->vq));
	env_free(e);
}

static void test_no_interrupt_flag_set_by_disable_cb_without_event_idx(void **state)
{
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	for (int i = 0; i < 3; i++)
		assert_int_equal(add1(e, e->buf[i], 8, true, cookie(i)), 0);
	vio_vq_kick(&e->vq);
	assert_false(fake_vring_no_interrupt(&e->fv));
	vio_vq_disable_cb(&e->vq);
	assert_true(fake_vring_no_interrupt(&e->fv));
	device_serve_one(e);
	assert_int_equal(e->fv.interrupts, 0);
	assert_true(vio_vq_enable_cb(&e->vq) == false); /* one is pending */
	assert_false(fake_vring_no_interrupt(&e->fv));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_true(vio_vq_enable_cb(&e->vq));
	device_serve_one(e);
	assert_int_equal(e->fv.interrupts, 1);
	assert_int_equal(fake_vring_used_event(&e->fv), 0); /* no EVENT_IDX: untouched */
	assert_non_null(vio_vq_detach_unused(&e->vq));
	assert_non_null(vio_vq_detach_unused(&e->vq));
	env_free(e);
}

static void test_no_notify_flag_suppresses_kicks_without_event_idx(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	fake_vring_set_no_notify(&e->fv, true);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(0)), 0);
	assert_false(vio_vq_kick(&e->vq));
	assert_int_equal(fake_vring_avail_pending(&e->fv), 1); /* published all the same */
	assert_int_equal(e->fv.notifications, 0);
	assert_int_equal(e->vq.stats.suppressed, 1);

	fake_vring_set_no_notify(&e->fv, false);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(1)), 0);
	assert_true(vio_vq_kick(&e->vq));
	assert_int_equal(e->fv.notifications, 1);
	assert_int_equal(e->vq.stats.notifies, 1);
	/* With EVENT_IDX not negotiated, avail_event means nothing. */
	fake_vring_set_avail_event(&e->fv, 100);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(2)), 0);
	assert_true(vio_vq_kick(&e->vq));
	while (vio_vq_detach_unused(&e->vq))
		;
	env_free(e);
}

static void test_enable_cb_returns_false_when_used_entries_are_pending(void **state)
{
	for (int mode = 0; mode < 2; mode++) {
		struct env *e = env_new(8, mode ? VIO_VQ_F_EVENT_IDX : 0);
		struct vio_vq_used u;
		(void)state;

		assert_true(vio_vq_enable_cb(&e->vq));
		assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
		vio_vq_kick(&e->vq);
		vio_vq_disable_cb(&e->vq);
		device_serve_one(e);
		assert_false(vio_vq_enable_cb(&e->vq));
		assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
		assert_true(vio_vq_enable_cb(&e->vq));
		env_free(e);
	}
}

static unsigned callback_runs;

static void count_callback(struct vio_vq *vq, void *arg)
{
	struct vio_vq_used u;
	(void)arg;
	callback_runs++;
	while (vio_vq_get_used(vq, &u) == 0)
		;
}

static void test_interrupt_runs_callback_only_when_used_pending(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	callback_runs = 0;
	e->fv.deliver_irqs = true;
	vio_vq_interrupt(&e->vq); /* no callback yet */
	vio_vq_set_callback(&e->vq, count_callback, NULL);
	vio_vq_interrupt(&e->vq); /* nothing pending (shared line) */
	assert_int_equal(callback_runs, 0);
	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	vio_vq_kick(&e->vq);
	device_serve_one(e); /* interrupts, callback drains */
	assert_int_equal(callback_runs, 1);
	assert_int_equal(vio_vq_num_free(&e->vq), 8);
	assert_int_equal(e->vq.stats.interrupts, 3);
	env_free(e);
}

/* A callback that leaves the completion where it is: has_used stays true. */
static void leave_it_callback(struct vio_vq *vq, void *arg)
{
	(void)vq;
	(*(int *)arg)++;
}

/* A device that completes every request again as soon as the driver re-posts it. */
static void repost_callback(struct vio_vq *vq, void *arg)
{
	struct env *e = arg;
	struct vio_vq_used u;

	callback_runs++;
	for (int budget = 4; budget > 0 && vio_vq_get_used(vq, &u) == 0; budget--) {
		assert_int_equal(add1(e, e->buf[0], 8, true, u.cookie), 0);
		vio_vq_kick(vq);
		device_serve_one(e);
	}
}

static void test_interrupt_calls_the_callback_once_whatever_the_device_publishes(void **state)
{
	struct env *e = env_new(8, 0);
	int calls = 0;
	(void)state;

	/* Completions left pending: one call per interrupt, not a loop while has_used. */
	vio_vq_set_callback(&e->vq, leave_it_callback, &calls);
	for (int i = 0; i < 8; i++)
		assert_int_equal(add1(e, e->buf[i], 8, true, cookie(i)), 0);
	vio_vq_kick(&e->vq);
	for (int i = 0; i < 8; i++)
		device_serve_one(e);
	vio_vq_interrupt(&e->vq);
	assert_int_equal(calls, 1);
	assert_true(vio_vq_has_used(&e->vq));

	/* The device can hand back no more than was posted: used->idx running on breaks. */
	fake_vring_set_used_idx(&e->fv, (uint16_t)(e->fv.used_idx + 1));
	struct vio_vq_used u;
	unsigned got = 0;
	while (vio_vq_get_used(&e->vq, &u) == 0)
		got++;
	assert_true(got <= 8);
	assert_true(vio_vq_is_broken(&e->vq));
	while (vio_vq_detach_unused(&e->vq))
		;
	env_free(e);

	/* A callback re-posting what completes, against a device completing each at once. */
	e = env_new(8, 0);
	callback_runs = 0;
	vio_vq_set_callback(&e->vq, repost_callback, e);
	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	vio_vq_kick(&e->vq);
	device_serve_one(e);
	vio_vq_interrupt(&e->vq);
	assert_int_equal(callback_runs, 1);
	assert_true(vio_vq_has_used(&e->vq)); /* the rest waits for the next call */
	vio_vq_get_used(&e->vq, &u);
	env_free(e);
}

/* --- an untrusted device ----------------------------------------------------------------- */

static void assert_broken_for_good(struct env *e, const char *logged)
{
	struct vio_vq_used u;

	assert_true(vio_vq_is_broken(&e->vq));
	assert_true(fake_port_logged(&e->fp, logged));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(50)), VIO_EIO);
	assert_true(vio_vq_has_used(&e->vq)); /* so pollers go on to see the error */
	assert_false(vio_vq_kick(&e->vq));
	int lines = e->fp.log_count;
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_int_equal(e->fp.log_count, lines); /* logged once */
	while (vio_vq_detach_unused(&e->vq))
		;
	assert_int_equal(vio_vq_num_free(&e->vq), e->vq.size);
}

static void test_used_id_out_of_range_breaks_queue(void **state)
{
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	vio_vq_kick(&e->vq);
	fake_vring_complete(&e->fv, 8, 4);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "vq0: broken: used id 8 out of range");
	env_free(e);

	e = env_new(8, 0);
	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	fake_vring_complete(&e->fv, 0xffffffffu, 4);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	/* A packed descriptor's id is 16 bits wide. */
	assert_broken_for_good(e, ring_flags() ? "used id 65535 out of range"
					       : "used id 4294967295 out of range");
	env_free(e);
}

static int faults;
static void on_fault(struct vio_vq *vq, void *arg)
{
	assert_true(vio_vq_is_broken(vq));
	assert_ptr_equal(arg, cookie(5));
	faults++;
}

static void test_fault_callback_runs_once_when_the_device_breaks_a_rule(void **state)
{
	SPLIT_ONLY(); /* used->idx; packed: test_packed_* */
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	faults = 0;
	vio_vq_set_fault_callback(&e->vq, on_fault, cookie(5));
	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	vio_vq_kick(&e->vq);
	fake_vring_set_used_idx(&e->fv, 1000);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_int_equal(faults, 1);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_int_equal(faults, 1);
	env_free(e);

	/* A break the core asks for is no device fault. */
	e = env_new(8, 0);
	vio_vq_set_fault_callback(&e->vq, on_fault, cookie(5));
	vio_vq_break(&e->vq, "test");
	assert_int_equal(faults, 1);
	env_free(e);
}

static void test_used_id_not_in_flight_breaks_queue(void **state)
{
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	assert_int_equal(add1(e, e->buf[1], 8, true, cookie(1)), 0);
	vio_vq_kick(&e->vq);
	uint16_t head = device_serve_one(e);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	/* Completing the same chain twice: its head is no longer in flight. */
	fake_vring_complete(&e->fv, head, 8);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "used id 0 not in flight");
	env_free(e);

	/* An id inside the ring that was never a head (the middle of a chain). */
	e = env_new(8, 0);
	struct vio_sg sg[3] = {{e->buf[0], 4}, {e->buf[1], 4}, {e->buf[2], 4}};
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 2, cookie(0)), 0);
	fake_vring_complete(&e->fv, 1, 8);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "used id 1 not in flight");
	env_free(e);
}

static void test_used_idx_running_ahead_breaks_queue(void **state)
{
	SPLIT_ONLY(); /* used->idx; packed: test_packed_* */
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	assert_int_equal(add1(e, e->buf[1], 8, true, cookie(1)), 0);
	vio_vq_kick(&e->vq);
	fake_vring_set_used_idx(&e->fv, 3);
	assert_true(vio_vq_has_used(&e->vq));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "used idx 3 is 3 ahead of 0, only 2 in flight");
	env_free(e);

	/* Running backwards is running ahead by almost 65536. */
	e = env_new(8, 0);
	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	fake_vring_set_used_idx(&e->fv, 0xffff);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "only 1 in flight");
	env_free(e);
}

static void test_used_len_larger_than_posted_is_reported_unclamped(void **state)
{
	struct env *e = env_new(8, 0);
	struct vio_vq_used u;
	(void)state;

	struct vio_sg sg[3] = {{e->buf[0], 4}, {e->buf[1], 10}, {e->buf[2], 6}};
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 2, cookie(0)), 0);
	assert_int_equal(add1(e, e->buf[3], 8, false, cookie(1)), 0);
	vio_vq_kick(&e->vq);
	assert_true(fake_vring_pop(&e->fv, &e->req));
	fake_vring_complete(&e->fv, e->req.head, 100000);
	assert_true(fake_vring_pop(&e->fv, &e->req));
	fake_vring_complete(&e->fv, e->req.head, 7);

	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(u.len, 100000);
	assert_int_equal(u.in_len, 16);
	assert_true(fake_port_logged(&e->fp, "vq0: used id 0 len 100000 > 16 posted"));
	/* A read-only request has nothing writable: any len is "too long", and still reported. */
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_ptr_equal(u.cookie, cookie(1));
	assert_int_equal(u.len, 7);
	assert_int_equal(u.in_len, 0);
	assert_false(vio_vq_is_broken(&e->vq));
	assert_int_equal(e->fp.log_count, 1); /* warned once per queue */
	env_free(e);
}

static void test_break_marks_broken_and_logs_once(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	vio_vq_break(&e->vq, "device needs reset");
	vio_vq_break(&e->vq, "again");
	assert_int_equal(e->fp.log_count, 1);
	assert_false(fake_port_logged(&e->fp, "again"));
	assert_broken_for_good(e, "vq0: broken: device needs reset");
	env_free(e);
}

static void test_break_without_a_reason_logs_nothing(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	vio_vq_break(&e->vq, NULL);
	assert_true(vio_vq_is_broken(&e->vq));
	assert_int_equal(e->fp.log_count, 0);
	env_free(e);
}

/* --- teardown ---------------------------------------------------------------------------- */

static void test_detach_unused_returns_every_posted_cookie_once(void **state)
{
	struct env *e = env_new(64, VIO_VQ_F_INDIRECT);
	struct vio_vq_used u;
	bool seen[40] = {false};
	(void)state;

	for (int r = 0; r < 40; r++) {
		struct vio_sg sg[3] = {{e->buf[0], 4}, {e->buf[1], 4}, {e->buf[2], 4}};
		assert_int_equal(vio_vq_add(&e->vq, sg, 1, (unsigned)(r % 3), cookie(r)), 0);
	}
	vio_vq_kick(&e->vq);
	for (int r = 0; r < 5; r++)
		device_serve_one(e);
	for (int r = 0; r < 5; r++) {
		assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
		seen[((uintptr_t)u.cookie - 0x1000) / 8] = true;
	}

	void *c;
	int detached = 0;
	while ((c = vio_vq_detach_unused(&e->vq)) != NULL) {
		uintptr_t r = ((uintptr_t)c - 0x1000) / 8;
		assert_true(r < 40);
		assert_false(seen[r]);
		seen[r] = true;
		detached++;
	}
	assert_int_equal(detached, 35);
	for (int r = 0; r < 40; r++)
		assert_true(seen[r]);
	assert_int_equal(vio_vq_num_free(&e->vq), 64);
	assert_null(vio_vq_detach_unused(&e->vq));
	env_free(e);
}

static void test_dump_does_not_crash_in_any_state(void **state)
{
	struct env *e = env_new(8, VIO_VQ_F_INDIRECT | VIO_VQ_F_EVENT_IDX);
	(void)state;

	vio_vq_dump(&e->vq);
	struct vio_sg sg[3] = {{e->buf[0], 4}, {e->buf[1], 4}, {e->buf[2], 4}};
	for (int r = 0; r < 6; r++)
		assert_int_equal(vio_vq_add(&e->vq, sg, 1, (unsigned)(r % 3), cookie(r)), 0);
	vio_vq_kick(&e->vq);
	vio_vq_dump(&e->vq);
	assert_true(fake_port_logged(&e->fp, ring_flags() ? "vq0: size 8 event-idx indirect packed free"
							 : "vq0: size 8 event-idx indirect free"));
	assert_true(fake_port_logged(&e->fp, "in flight head"));
	vio_vq_break(&e->vq, "test");
	vio_vq_dump(&e->vq);
	assert_true(fake_port_logged(&e->fp, "BROKEN"));
	while (vio_vq_detach_unused(&e->vq))
		;
	vio_vq_destroy(&e->vq);
	vio_vq_dump(&e->vq);
	assert_true(fake_port_logged(&e->fp, "vq0: not set up"));
	env_free(e);
}

static void test_destroy_frees_every_allocation(void **state)
{
	const uint32_t flags[] = {0, VIO_VQ_F_INDIRECT, VIO_VQ_F_EVENT_IDX | VIO_VQ_F_INDIRECT};
	(void)state;

	for (size_t f = 0; f < 3; f++) {
		struct env *e = env_new(1024, flags[f]);
		assert_true(e->fp.dma_live_allocs >= 1 && e->fp.priv_live_allocs >= 1);
		pump(e, 100, 4, 2);
		env_free(e); /* asserts dma_live_allocs == priv_live_allocs == 0 */
	}
}

/* --- what the device can reach (docs/design.md, threat model B) ------------------------- */

static void test_queue_bookkeeping_is_not_in_dma_memory(void **state)
{
	const uint32_t flags[] = {0, VIO_VQ_F_INDIRECT | VIO_VQ_F_EVENT_IDX};
	(void)state;

	for (size_t f = 0; f < 2; f++) {
		struct env *e = env_new(64, flags[f]);
		struct vio_vq *vq = &e->vq;
		assert_non_null(vq->vq_priv);
		assert_false(fake_port_is_dma(&e->fp, vq->vq_priv, vq->vq_priv_bytes));
		assert_false(fake_port_is_dma(&e->fp, vq->vq_heads, 1));
		assert_false(fake_port_is_dma(&e->fp, vq->vq_next, 64 * sizeof(uint16_t)));
		if (vq->vq_ntables)
			assert_false(fake_port_is_dma(&e->fp, vq->vq_table_free,
						      vq->vq_ntables * sizeof(uint16_t)));
		assert_true(e->fp.priv_live_allocs > 0);
		/* The ring itself is DMA memory, of course. */
		assert_true(fake_port_is_dma(&e->fp, (void *)(uintptr_t)vq->desc_phys, 16));
		env_free(e);
	}
}

/* The device's scribble: every byte of DMA memory it can write, except the used ring. */
static void scribble_all_dma_but_the_used_ring(struct env *e)
{
	/* A packed ring's used descriptors are in its one descriptor ring. */
	uintptr_t used = (uintptr_t)(ring_flags() ? e->vq.desc_phys : e->vq.used_phys);
	uintptr_t used_end = used + (ring_flags() ? vring_packed_desc_bytes(e->vq.size)
						  : vring_used_bytes(e->vq.size));

	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++) {
		uintptr_t p = (uintptr_t)e->fp.dma[i].p, end = p + e->fp.dma[i].bytes;
		if (!p)
			continue;
		if (used >= p && used < end) {
			memset((void *)p, 0xff, used - p);
			memset((void *)used_end, 0xff, end - used_end);
		} else {
			memset((void *)p, 0xff, end - p);
		}
	}
}

static void test_device_rewriting_dma_cannot_forge_a_completion(void **state)
{
	const uint32_t flags[] = {0, VIO_VQ_F_INDIRECT, VIO_VQ_F_INDIRECT | VIO_VQ_F_EVENT_IDX};
	(void)state;

	for (size_t f = 0; f < 3; f++) {
		struct env *e = env_new(8, flags[f]);
		struct vio_vq_used u;
		uint16_t heads[4];

		/* Four requests of one and of three segments, popped by the device. */
		for (int r = 0; r < 4; r++) {
			struct vio_sg sg[3] = {{e->buf[3 * r], 8}, {e->buf[3 * r + 1], 8},
					       {e->buf[3 * r + 2], 8}};
			unsigned n = r % 2 ? 3 : 1;
			assert_int_equal(vio_vq_add(&e->vq, sg, 1, n - 1, cookie(r)), 0);
		}
		vio_vq_kick(&e->vq);
		for (int r = 0; r < 4; r++)
			heads[r] = pop_head(e);

		/*
		 * Now the device rewrites the descriptor table, the available ring (idx, flags,
		 * used_event), the indirect tables and anything else it can reach, all 0xff, and
		 * only then completes the four, in reverse order.
		 */
		scribble_all_dma_but_the_used_ring(e);
		for (int r = 3; r >= 0; r--)
			fake_vring_complete(&e->fv, heads[r], 0);
		for (int r = 3; r >= 0; r--) {
			assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
			assert_ptr_equal(u.cookie, cookie(r));
			assert_int_equal(u.in_len, r % 2 ? 16 : 0);
		}
		assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EAGAIN);
		assert_int_equal(vio_vq_num_free(&e->vq), 8);
		assert_false(vio_vq_is_broken(&e->vq));

		/* The free list is intact: the queue carries on, every descriptor rewritten. */
		pump(e, 100, 2, 3);
		env_free(e);
	}
}

static void test_abandon_keeps_the_ring_and_tables_and_frees_the_bookkeeping(void **state)
{
	struct env *e = env_new(16, VIO_VQ_F_INDIRECT | VIO_VQ_F_EVENT_IDX);
	struct vio_sg sg[2] = {{e->buf[0], 8}, {e->buf[1], 8}};
	struct vio_vq_used u;
	(void)state;

	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(1)), 0);
	vio_vq_kick(&e->vq);
	assert_non_null(vio_vq_detach_unused(&e->vq)); /* what a driver does first */
	int dma = e->fp.dma_live_allocs;

	/* The device did not reset: it may still read the tables and write the used ring. */
	vio_vq_abandon(&e->vq);
	assert_int_equal(e->fp.dma_live_allocs, dma);
	assert_int_equal(e->fp.priv_live_allocs, 0);
	assert_true(vio_vq_is_broken(&e->vq));
	assert_true(fake_port_logged(&e->fp, "device did not reset: ring and tables kept"));
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 1, cookie(2)), VIO_EIO);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_null(vio_vq_detach_unused(&e->vq));
	vio_vq_disable_cb(&e->vq);
	assert_true(vio_vq_enable_cb(&e->vq));
	vio_vq_interrupt(&e->vq);
	vio_vq_dump(&e->vq);
	vio_vq_abandon(&e->vq);
	vio_vq_destroy(&e->vq); /* frees nothing more */
	assert_int_equal(e->fp.dma_live_allocs, dma);

	/* The test gives the memory back itself, so that env_free's books balance. */
	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++)
		if (e->fp.dma[i].p)
			e->fp.port.dma_free(e->fp.port.ctx, e->fp.dma[i].p, e->fp.dma[i].bytes);
	env_free(e);
}

/* --- vio's own invariants (VIO_ASSERT) ---------------------------------------------------- */

/*
 * The library cannot break these through its API, and no device can: each test below plays a
 * bug in vio by corrupting the queue's private bookkeeping, then runs one call in a child
 * process, which must die of SIGABRT in fake_port.c's vio_assert_failed, after it printed
 * the assertion `expr`. The parent's queue is put right again before it is destroyed.
 */
static void expect_vio_assert(struct env *e, void (*call)(struct env *), const char *expr)
{
	int fds[2];
	char out[1024] = "";
	size_t n = 0;
	ssize_t r;
	int status;

	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* No cmocka here: a failing check would unwind into the parent's test loop. */
		setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		call(e);
		_exit(0); /* nothing fired */
	}
	close(fds[1]);
	while (n < sizeof(out) - 1 && (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(out, "vio assertion failed"));
	assert_non_null(strstr(out, expr));
}

static void add_two_segments(struct env *e)
{
	struct vio_sg sg[2] = {{e->buf[0], 4}, {e->buf[1], 4}};
	vio_vq_add(&e->vq, sg, 1, 1, cookie(99));
}

static void get_one_used(struct env *e)
{
	struct vio_vq_used u;
	vio_vq_get_used(&e->vq, &u);
}

static void detach_one(struct env *e)
{
	vio_vq_detach_unused(&e->vq);
}

static void destroy(struct env *e)
{
	vio_vq_destroy(&e->vq);
}

static void test_taking_an_indirect_table_a_request_holds_asserts(void **state)
{
	struct env *e = env_new(8, VIO_VQ_F_INDIRECT);
	(void)state;

	add_two_segments(e);
	assert_int_equal(e->vq.stats.adds_indirect, 1);
	/* The bug: the held table goes back on the free stack (it is still in its slot). */
	e->vq.vq_tables_free++;
	expect_vio_assert(e, add_two_segments, "table_held(vq, t)");
	e->vq.vq_tables_free--;
	env_free(e);
}

static void test_free_list_handing_out_a_head_in_flight_asserts(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(1)), 0);
	uint16_t free_head = e->vq.vq_free_head;
	e->vq.vq_free_head = 0; /* the bug: the free list points at the head just posted */
	expect_vio_assert(e, add_two_segments, "!vq->vq_heads[vq->vq_free_head].in_flight");
	e->vq.vq_free_head = free_head;
	env_free(e);
}

static void test_chain_walk_leaving_the_ring_asserts(void **state)
{
	SPLIT_ONLY(); /* packed ids are not linked */
	struct env *e = env_new(8, 0);
	(void)state;

	add_two_segments(e);
	vio_vq_kick(&e->vq);
	uint16_t head = device_serve_one(e);
	uint16_t next = e->vq.vq_next[head];
	e->vq.vq_next[head] = 8; /* the bug: our private link points past the ring */
	expect_vio_assert(e, get_one_used, "last < vq->size");
	e->vq.vq_next[head] = next;
	env_free(e);
}

static void test_in_flight_count_without_a_head_in_flight_asserts(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	e->vq.vq_in_flight = 1; /* the bug: counted, but no head is marked */
	expect_vio_assert(e, detach_one, "vq->vq_in_flight == 0");
	e->vq.vq_in_flight = 0;
	env_free(e);
}

static void test_destroy_with_a_descriptor_unaccounted_for_asserts(void **state)
{
	struct env *e = env_new(8, 0);
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 4, true, cookie(1)), 0);
	e->vq.vq_num_free--; /* the bug: a descriptor leaked */
	expect_vio_assert(e, destroy, "vq->vq_num_free == vq->size");
	e->vq.vq_num_free++;
	env_free(e);
}

static void test_destroy_with_requests_still_posted_balances_the_books(void **state)
{
	struct env *e = env_new(16, VIO_VQ_F_INDIRECT);
	(void)state;

	for (int r = 0; r < 6; r++)
		add_two_segments(e);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(1)), 0);
	vio_vq_kick(&e->vq);
	device_serve_one(e); /* completed by the device, never collected */
	env_free(e); /* destroys: with VIO_DEBUG the books must balance, or this aborts */
}

/* --- the packed ring's own rules (2.8) ------------------------------------------------ */

static struct env *env_packed(uint16_t size, uint32_t flags)
{
	return env_new(size, flags | VIO_VQ_F_PACKED | VIO_VQ_F_SEPARATE_AREAS);
}

/* The AVAIL/USED pair of the descriptor in slot i. */
static uint16_t slot_wrap_bits(const struct env *e, unsigned i)
{
	return e->fv.pdesc[i].flags & (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED);
}

static void test_packed_ring_needs_separate_areas(void **state)
{
	struct fake_port fp;
	struct vio_vq vq;
	(void)state;

	fake_port_init(&fp);
	assert_int_equal(vio_vq_init(&vq, &fp.port, 0, 8, VIO_VQ_F_PACKED, NULL, NULL, NULL),
			 VIO_EINVAL);
	assert_int_equal(fp.dma_live_allocs, 0);
	assert_int_equal(fp.priv_live_allocs, 0);
}

static void test_packed_chain_crossing_the_end_takes_each_slots_wrap_bits(void **state)
{
	struct env *e = env_packed(4, 0);
	struct vio_vq_used u;
	struct vio_sg sg[3] = {{e->buf[0], 4}, {e->buf[1], 4}, {e->buf[2], 4}};
	(void)state;

	/* Slots 0-2 as one chain, used and returned: the next chain starts at slot 3. */
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 2, cookie(0)), 0);
	vio_vq_kick(&e->vq);
	device_serve_one(e);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(vio_vq_num_free(&e->vq), 4);

	/* Slot 3 on the first lap (AVAIL 1, USED 0), slots 0-1 on the second (AVAIL 0, USED 1). */
	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 2, cookie(1)), 0);
	assert_int_equal(slot_wrap_bits(e, 3), VRING_PACKED_DESC_F_AVAIL);
	assert_int_equal(slot_wrap_bits(e, 0), VRING_PACKED_DESC_F_USED);
	assert_int_equal(slot_wrap_bits(e, 1), VRING_PACKED_DESC_F_USED);
	assert_true(e->fv.pdesc[3].flags & VRING_DESC_F_NEXT);
	assert_false(e->fv.pdesc[1].flags & VRING_DESC_F_NEXT);
	/* 2.8.6: the id is in the last descriptor (here in every one). */
	assert_int_equal(e->fv.pdesc[1].id, e->fv.pdesc[3].id);
	vio_vq_kick(&e->vq);
	assert_true(fake_vring_pop(&e->fv, &e->req));
	assert_int_equal(e->req.n_out + e->req.n_in, 3);
	fake_vring_complete(&e->fv, e->req.head, 8);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_ptr_equal(u.cookie, cookie(1));
	assert_int_equal(u.len, 8);
	assert_int_equal(e->vq.vq_last_used, 6);
	env_free(e);
}

static void test_packed_indirect_descriptor_is_alone_and_its_table_carries_only_write(void **state)
{
	struct env *e = env_packed(8, VIO_VQ_F_INDIRECT);
	struct vio_sg sg[3] = {{e->buf[0], 4}, {e->buf[1], 4}, {e->buf[2], 4}};
	struct vio_vq_used u;
	(void)state;

	assert_int_equal(vio_vq_add(&e->vq, sg, 1, 2, cookie(0)), 0);
	assert_int_equal(vio_vq_num_free(&e->vq), 7);
	const struct vring_packed_desc *d = &e->fv.pdesc[0];
	assert_int_equal(d->flags & ~(VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED),
			 VRING_DESC_F_INDIRECT);
	assert_int_equal(d->len, 3 * sizeof(struct vring_packed_desc));
	const struct vring_packed_desc *table = (const void *)(uintptr_t)d->addr;
	assert_int_equal(table[0].flags, 0);
	assert_int_equal(table[1].flags, VRING_DESC_F_WRITE);
	assert_int_equal(table[2].flags, VRING_DESC_F_WRITE);
	vio_vq_kick(&e->vq);
	assert_true(fake_vring_pop(&e->fv, &e->req));
	assert_true(e->req.indirect);
	assert_int_equal(e->req.in_len, 8);
	fake_vring_complete(&e->fv, e->req.head, 8);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(e->vq.stats.adds_indirect, 1);
	env_free(e);
}

static void test_packed_used_id_not_in_flight_breaks_queue(void **state)
{
	struct env *e = env_packed(8, 0);
	struct vio_vq_used u;
	(void)state;

	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	assert_int_equal(add1(e, e->buf[1], 8, true, cookie(1)), 0);
	vio_vq_kick(&e->vq);
	fake_vring_complete(&e->fv, 5, 4); /* id 5 is free: never posted */
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "vq0: broken: used id 5 not in flight");
	env_free(e);
}

static void test_packed_descriptor_marked_used_with_nothing_posted_breaks_queue(void **state)
{
	struct env *e = env_packed(8, 0);
	struct vio_vq_used u;
	(void)state;

	/* Before anything was posted: the device runs ahead of the driver. */
	fake_vring_packed_write(&e->fv, 0, 0, 4, fake_vring_packed_used_flags(&e->fv, 0));
	assert_true(vio_vq_has_used(&e->vq));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "descriptor 0 marked used with nothing posted");
	env_free(e);

	/* After a request came back, the next slot marked used for this lap, id and all. */
	e = env_packed(8, 0);
	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	vio_vq_kick(&e->vq);
	uint16_t id = device_serve_one(e);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	fake_vring_packed_write(&e->fv, 1, id, 4, fake_vring_packed_used_flags(&e->fv, 1));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
	assert_broken_for_good(e, "descriptor 1 marked used with nothing posted");
	env_free(e);

	/* A whole lap later the old used descriptors are not new ones. */
	e = env_packed(4, 0);
	pump(e, 4, 1, 1);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EAGAIN);
	assert_false(vio_vq_has_used(&e->vq));
	assert_false(vio_vq_is_broken(&e->vq));
	env_free(e);
}

static void test_packed_used_flags_fitting_neither_state_break_queue(void **state)
{
	const uint16_t bad[] = {VRING_PACKED_DESC_F_USED, 0};
	(void)state;

	/* Slot 0 was made available on the first lap (AVAIL 1, USED 0): the device may only
	 * mark it used (both 1); USED alone, or neither, is no state of this lap. */
	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		struct env *e = env_packed(8, 0);
		struct vio_vq_used u;
		assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
		vio_vq_kick(&e->vq);
		fake_vring_packed_write(&e->fv, 0, e->fv.pdesc[0].id, 4, bad[b]);
		assert_true(vio_vq_has_used(&e->vq));
		assert_int_equal(vio_vq_get_used(&e->vq, &u), VIO_EIO);
		assert_broken_for_good(e, "descriptor 0 flags");
		assert_true(fake_port_logged(&e->fp, "neither available nor used"));
		env_free(e);
	}
}

static void test_packed_device_event_suppresses_and_asks_for_one_descriptor(void **state)
{
	struct env *e = env_packed(32, VIO_VQ_F_EVENT_IDX);
	struct vio_vq_used u;
	(void)state;

	/* A zeroed device event structure is ENABLE: every kick notifies. */
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(0)), 0);
	assert_true(vio_vq_kick(&e->vq));
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(1)), 0);
	assert_true(vio_vq_kick(&e->vq));
	/* DISABLE: none. */
	fake_vring_set_no_notify(&e->fv, true);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(2)), 0);
	assert_false(vio_vq_kick(&e->vq));
	assert_int_equal(e->vq.stats.suppressed, 1);
	/* DESC at slot 5: not for slots 3-4, yes for 5-6. */
	fake_vring_set_avail_event(&e->fv, 5);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(3)), 0);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(4)), 0);
	assert_false(vio_vq_kick(&e->vq));
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(5)), 0);
	assert_int_equal(add1(e, e->buf[0], 4, false, cookie(6)), 0);
	assert_true(vio_vq_kick(&e->vq));
	assert_int_equal(e->fv.notifications, 3);
	while (fake_vring_avail_pending(&e->fv))
		device_serve_one(e);
	while (vio_vq_get_used(&e->vq, &u) == 0)
		;

	/* Across the end of the ring: slot 2 of the next lap is after 24..31, within 0..7. */
	fake_vring_set_avail_event(&e->fv, 32 + 2);
	unsigned before = e->fv.notifications;
	for (int batch = 0; batch < 4; batch++) {
		for (int i = 0; i < 8; i++)
			assert_int_equal(add1(e, e->buf[0], 4, false, cookie(i)), 0);
		/* Slots 7..14, 15..22, 23..30, 31 and 0..6 (the next lap). */
		assert_int_equal(vio_vq_kick(&e->vq), batch == 3);
		while (fake_vring_avail_pending(&e->fv))
			device_serve_one(e);
		while (vio_vq_get_used(&e->vq, &u) == 0)
			;
	}
	assert_int_equal(e->fv.notifications, before + 1);
	env_free(e);
}

static void test_packed_driver_event_follows_enable_and_disable(void **state)
{
	struct env *e = env_packed(16, 0);
	struct vio_vq_used u;
	(void)state;

	/* Without EVENT_IDX: ENABLE and DISABLE only. */
	vio_vq_disable_cb(&e->vq);
	assert_true(fake_vring_no_interrupt(&e->fv));
	assert_int_equal(add1(e, e->buf[0], 8, true, cookie(0)), 0);
	vio_vq_kick(&e->vq);
	assert_false(fake_vring_complete(&e->fv, pop_head(e), 0));
	assert_false(vio_vq_enable_cb(&e->vq)); /* one is pending */
	assert_false(fake_vring_no_interrupt(&e->fv));
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_true(vio_vq_enable_cb(&e->vq));
	env_free(e);

	/* With it: DESC at the next used descriptor, moved along as they are consumed. */
	e = env_packed(16, VIO_VQ_F_EVENT_IDX);
	for (int i = 0; i < 4; i++)
		assert_int_equal(add1(e, e->buf[i], 8, true, cookie(i)), 0);
	vio_vq_kick(&e->vq);
	assert_true(vio_vq_enable_cb(&e->vq));
	assert_int_equal(e->fv.driver_event->flags, VRING_PACKED_EVENT_FLAG_DESC);
	assert_int_equal(fake_vring_used_event(&e->fv), VRING_PACKED_EVENT_WRAP | 0);
	assert_true(fake_vring_complete(&e->fv, pop_head(e), 0));  /* slot 0: asked for */
	assert_false(fake_vring_complete(&e->fv, pop_head(e), 0)); /* slot 1: not */
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(fake_vring_used_event(&e->fv), VRING_PACKED_EVENT_WRAP | 1);
	assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
	assert_int_equal(fake_vring_used_event(&e->fv), VRING_PACKED_EVENT_WRAP | 2);
	assert_true(fake_vring_complete(&e->fv, pop_head(e), 0)); /* slot 2: asked for */
	vio_vq_disable_cb(&e->vq);
	assert_true(fake_vring_no_interrupt(&e->fv));
	assert_false(fake_vring_complete(&e->fv, pop_head(e), 0));
	assert_int_equal(e->fv.interrupts, 2);
	while (vio_vq_get_used(&e->vq, &u) == 0)
		;
	env_free(e);
}

static void test_packed_polled_queue_never_asks_for_interrupts(void **state)
{
	const uint32_t flags[] = {VIO_VQ_F_NO_INTERRUPTS,
				  VIO_VQ_F_NO_INTERRUPTS | VIO_VQ_F_EVENT_IDX};
	(void)state;

	for (size_t f = 0; f < 2; f++) {
		struct env *e = env_packed(8, flags[f]);
		struct vio_vq_used u;
		assert_true(fake_vring_no_interrupt(&e->fv));
		for (int r = 0; r < 20; r++) {
			assert_int_equal(add1(e, e->buf[0], 8, true, cookie(r)), 0);
			vio_vq_kick(&e->vq);
			assert_false(fake_vring_complete(&e->fv, pop_head(e), 8));
			assert_false(vio_vq_enable_cb(&e->vq)); /* pending, and still polled */
			assert_int_equal(vio_vq_get_used(&e->vq, &u), 0);
		}
		assert_true(fake_vring_no_interrupt(&e->fv));
		assert_int_equal(e->fv.interrupts, 0);
		env_free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_size_zero_non_power_of_two_and_too_big),
		cmocka_unit_test(test_init_returns_enomem_without_leaking_when_dma_fails),
		cmocka_unit_test(
			test_init_returns_enomem_without_leaking_when_private_memory_fails),
		cmocka_unit_test(test_ring_uses_the_legacy_contiguous_layout),
		cmocka_unit_test(test_add_then_get_round_trips_cookie_data_and_lengths),
		cmocka_unit_test(test_device_sees_nothing_until_kick_publishes),
		cmocka_unit_test(test_kick_with_nothing_new_does_not_notify),
		cmocka_unit_test(test_add_rejects_malformed_requests_without_changing_the_ring),
		cmocka_unit_test(test_full_ring_returns_enospc_and_recovers),
		cmocka_unit_test(test_16bit_indexes_wrap_after_65536_requests),
		cmocka_unit_test(test_out_of_order_completion_across_the_wrap),
		cmocka_unit_test(test_direct_chain_carries_many_segments),
		cmocka_unit_test(test_indirect_ring_of_128_carries_128_requests_of_8_segments),
		cmocka_unit_test(test_indirect_pool_exhaustion_falls_back_to_direct_chains),
		cmocka_unit_test(test_indirect_pool_is_allocated_a_page_at_a_time),
		cmocka_unit_test(test_separate_areas_need_no_more_than_their_own_size),
		cmocka_unit_test(test_event_idx_driver_kicks_only_when_avail_event_is_crossed),
		cmocka_unit_test(test_event_idx_used_event_follows_enable_and_stops_on_disable),
		cmocka_unit_test(test_no_interrupt_flag_set_by_disable_cb_without_event_idx),
		cmocka_unit_test(test_no_notify_flag_suppresses_kicks_without_event_idx),
		cmocka_unit_test(test_enable_cb_returns_false_when_used_entries_are_pending),
		cmocka_unit_test(test_interrupt_runs_callback_only_when_used_pending),
		cmocka_unit_test(
			test_interrupt_calls_the_callback_once_whatever_the_device_publishes),
		cmocka_unit_test(test_used_id_out_of_range_breaks_queue),
		cmocka_unit_test(test_fault_callback_runs_once_when_the_device_breaks_a_rule),
		cmocka_unit_test(test_used_id_not_in_flight_breaks_queue),
		cmocka_unit_test(test_used_idx_running_ahead_breaks_queue),
		cmocka_unit_test(test_used_len_larger_than_posted_is_reported_unclamped),
		cmocka_unit_test(test_break_marks_broken_and_logs_once),
		cmocka_unit_test(test_break_without_a_reason_logs_nothing),
		cmocka_unit_test(test_detach_unused_returns_every_posted_cookie_once),
		cmocka_unit_test(test_dump_does_not_crash_in_any_state),
		cmocka_unit_test(test_destroy_frees_every_allocation),
		cmocka_unit_test(test_queue_bookkeeping_is_not_in_dma_memory),
		cmocka_unit_test(test_device_rewriting_dma_cannot_forge_a_completion),
		cmocka_unit_test(
			test_abandon_keeps_the_ring_and_tables_and_frees_the_bookkeeping),
		cmocka_unit_test(test_taking_an_indirect_table_a_request_holds_asserts),
		cmocka_unit_test(test_free_list_handing_out_a_head_in_flight_asserts),
		cmocka_unit_test(test_chain_walk_leaving_the_ring_asserts),
		cmocka_unit_test(test_in_flight_count_without_a_head_in_flight_asserts),
		cmocka_unit_test(test_destroy_with_a_descriptor_unaccounted_for_asserts),
		cmocka_unit_test(test_destroy_with_requests_still_posted_balances_the_books),
		cmocka_unit_test(test_packed_ring_needs_separate_areas),
		cmocka_unit_test(test_packed_chain_crossing_the_end_takes_each_slots_wrap_bits),
		cmocka_unit_test(
			test_packed_indirect_descriptor_is_alone_and_its_table_carries_only_write),
		cmocka_unit_test(test_packed_used_id_not_in_flight_breaks_queue),
		cmocka_unit_test(test_packed_descriptor_marked_used_with_nothing_posted_breaks_queue),
		cmocka_unit_test(test_packed_used_flags_fitting_neither_state_break_queue),
		cmocka_unit_test(test_packed_device_event_suppresses_and_asks_for_one_descriptor),
		cmocka_unit_test(test_packed_driver_event_follows_enable_and_disable),
		cmocka_unit_test(test_packed_polled_queue_never_asks_for_interrupts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
