/*
 * Unit tests for the virtio-blk driver (src/drivers/virtio_blk.c) against fake_env, with a
 * RAM-disk device model written here: it pops each request off the ring, checks it is a
 * well-formed virtio-blk chain (5.2.6: header, data, status), does the I/O on a host buffer,
 * writes the status byte and completes it, in order or not, now or when the test says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/blk.h>
#include <vio/err.h>
#include <vio/spec/virtio_blk.h>

#include "fake_env.h"

#define QSIZE	     64
#define DISK_SECTORS 4096

struct pend {
	int ring;
	uint16_t head;
	uint32_t len;
};

/* The device model. Knobs first, then what it observed. */
struct model {
	uint8_t *disk;
	uint64_t sectors;
	char id[VIRTIO_BLK_ID_BYTES];
	uint32_t seg_max; /* the limits the config advertised, checked on every request */
	uint32_t size_max;

	bool silent;	       /* never looks at the ring: a device that does not answer */
	bool hold;	       /* pops and does the I/O but completes only when the test says */
	bool shuffle;	       /* completes in random order */
	int64_t ioerr_sector;  /* reads/writes touching this sector fail with IOERR (-1: none) */
	uint32_t unsupp_types; /* bit per VIRTIO_BLK_T_*: answered UNSUPP */
	int bad_status;	       /* >= 0: write this status byte instead */
	int len_delta;	       /* added to the used length it reports */
	bool id_unwritten;     /* GET_ID: answers OK without writing the id bytes */
	/* Last word on each answer: may rewrite the request, its status byte and used length. */
	void (*tamper)(struct model *m, const struct fake_req *r, uint8_t *status, uint32_t *len);

	struct pend pend[4 * 256];
	unsigned npend;
	unsigned by_type[16];
	unsigned by_ring[4];
	unsigned requests;
	unsigned max_data_segs;
	uint32_t max_seg_len;
	unsigned indirect;
	struct virtio_blk_discard_write_zeroes dwz[64];
	unsigned ndwz;
	uint32_t rng;
	struct fake_req req;
};

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void *seg_ptr(const struct fake_seg *seg)
{
	return (void *)(uintptr_t)seg->addr;
}

/* Do one popped request; returns the status byte to write and sets *len. */
static uint8_t model_do(struct model *m, const struct fake_req *r, uint32_t *len)
{
	unsigned n = r->n_out + r->n_in;
	assert_true(n >= 2);
	assert_int_equal(r->seg[0].len, sizeof(struct virtio_blk_outhdr));
	assert_false(r->seg[0].write);
	assert_int_equal(r->seg[n - 1].len, 1);
	assert_true(r->seg[n - 1].write);
	const struct virtio_blk_outhdr *h = seg_ptr(&r->seg[0]);
	assert_true(h->type < 16);
	m->by_type[h->type]++;
	m->requests++;
	m->indirect += r->indirect;
	*len = r->in_len;
	if (m->unsupp_types & (1u << h->type))
		return VIRTIO_BLK_S_UNSUPP;

	switch (h->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = h->type == VIRTIO_BLK_T_IN;
		uint64_t off = h->sector * 512, total = 0;
		unsigned nd = n - 2;
		if (nd > m->max_data_segs)
			m->max_data_segs = nd;
		if (m->seg_max)
			assert_true(nd <= m->seg_max);
		for (unsigned i = 1; i + 1 < n; i++) {
			assert_int_equal(r->seg[i].write, in);
			assert_int_equal(r->seg[i].len % 512, 0);
			if (m->size_max)
				assert_true(r->seg[i].len <= m->size_max);
			if (r->seg[i].len > m->max_seg_len)
				m->max_seg_len = r->seg[i].len;
			total += r->seg[i].len;
		}
		if (off + total > m->sectors * 512)
			return VIRTIO_BLK_S_IOERR;
		if (m->ioerr_sector >= 0 && (uint64_t)m->ioerr_sector >= h->sector &&
		    (uint64_t)m->ioerr_sector < h->sector + total / 512)
			return VIRTIO_BLK_S_IOERR;
		for (unsigned i = 1; i + 1 < n; i++) {
			if (in)
				memcpy(seg_ptr(&r->seg[i]), m->disk + off, r->seg[i].len);
			else
				memcpy(m->disk + off, seg_ptr(&r->seg[i]), r->seg[i].len);
			off += r->seg[i].len;
		}
		return VIRTIO_BLK_S_OK;
	}
	case VIRTIO_BLK_T_FLUSH:
		assert_int_equal(n, 2);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		assert_int_equal(n, 3);
		assert_int_equal(r->seg[1].len, VIRTIO_BLK_ID_BYTES);
		if (!m->id_unwritten)
			memcpy(seg_ptr(&r->seg[1]), m->id, VIRTIO_BLK_ID_BYTES);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		assert_int_equal(n, 3);
		assert_false(r->seg[1].write);
		assert_int_equal(r->seg[1].len % sizeof(struct virtio_blk_discard_write_zeroes), 0);
		const struct virtio_blk_discard_write_zeroes *d = seg_ptr(&r->seg[1]);
		for (unsigned i = 0; i < r->seg[1].len / sizeof(*d); i++) {
			if (d[i].sector + d[i].num_sectors > m->sectors)
				return VIRTIO_BLK_S_IOERR;
			if (m->ndwz < 64)
				m->dwz[m->ndwz++] = d[i];
			memset(m->disk + d[i].sector * 512, 0, (size_t)d[i].num_sectors * 512);
		}
		return VIRTIO_BLK_S_OK;
	}
	}
	return VIRTIO_BLK_S_UNSUPP;
}

static void model_pop_all(struct fake_env *e)
{
	struct model *m = e->model_arg;

	for (int q = 0; q < e->nrings; q++) {
		while (fake_vring_pop(&e->ring[q], &m->req)) {
			uint32_t len;
			uint8_t st = model_do(m, &m->req, &len);
			if (m->bad_status >= 0)
				st = (uint8_t)m->bad_status;
			if (m->tamper)
				m->tamper(m, &m->req, &st, &len);
			const struct fake_seg *status = &m->req.seg[m->req.n_out + m->req.n_in - 1];
			*(uint8_t *)seg_ptr(status) = st;
			m->by_ring[q]++;
			assert_true(m->npend < sizeof(m->pend) / sizeof(m->pend[0]));
			m->pend[m->npend++] =
			    (struct pend){q, m->req.head, (uint32_t)((int)len + m->len_delta)};
		}
		assert_int_equal(e->ring[q].chain_errors, 0);
	}
}

/* Complete up to `count` held requests, in random order when shuffling, one publish per ring. */
static void model_complete(struct fake_env *e, unsigned count)
{
	struct model *m = e->model_arg;
	bool touched[FAKE_VDEV_QUEUES] = {false};

	while (count-- && m->npend) {
		unsigned i = m->shuffle ? rnd(&m->rng) % m->npend : 0;
		struct pend p = m->pend[i];
		memmove(&m->pend[i], &m->pend[i + 1], (m->npend - i - 1) * sizeof(p));
		m->npend--;
		fake_vring_push(&e->ring[p.ring], p.head, p.len);
		touched[p.ring] = true;
	}
	for (int q = 0; q < e->nrings; q++)
		if (touched[q])
			fake_vring_publish(&e->ring[q]);
}

/* e->model: runs whenever the driver waits, like a device getting CPU time. */
static void model_run(struct fake_env *e)
{
	struct model *m = e->model_arg;

	/* A reset device touches no ring (the fake rings would not stop by themselves). */
	if (m->silent || !(e->vd.status & VIRTIO_CONFIG_S_DRIVER_OK))
		return;
	model_pop_all(e);
	if (!m->hold)
		model_complete(e, m->npend);
}

/* --- fixture ------------------------------------------------------------------------------- */

struct t {
	struct fake_env *e;
	struct model m;
	struct vio_blk blk;
};

static struct virtio_blk_config default_config(void)
{
	return (struct virtio_blk_config){.capacity = DISK_SECTORS, .seg_max = 8, .size_max = 4096};
}

#define BASE_FEATURES                                                                              \
	(VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |                    \
	 VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC))

/* A device with `features` and `cfg`, nq queues; init the driver with `opts` unless
 * want_init_err says what init must return (then the caller finishes). */
static struct t *setup_opts(uint64_t features, const struct virtio_blk_config *cfg, int nq,
			    bool irqs, int want_init_err, const struct vio_blk_opts *opts)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->e = fake_env_new(VIRTIO_ID_BLOCK, features, cfg, sizeof(*cfg), nq, QSIZE);
	if (!irqs)
		fake_env_no_irqs(t->e);
	t->m.sectors = cfg->capacity < DISK_SECTORS ? cfg->capacity : DISK_SECTORS;
	t->m.disk = calloc(DISK_SECTORS, 512);
	assert_non_null(t->m.disk);
	t->m.ioerr_sector = -1;
	t->m.bad_status = -1;
	t->m.rng = 12345;
	if (features & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX))
		t->m.seg_max = cfg->seg_max;
	if (features & VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX))
		t->m.size_max = cfg->size_max;
	memcpy(t->m.id, "vio-serial-0001", 16);
	t->e->model = model_run;
	t->e->model_arg = &t->m;
	assert_int_equal(vio_blk_init(&t->blk, &t->e->dev, opts), want_init_err);
	if (want_init_err == 0) {
		fake_env_rings(t->e);
		for (int i = 0; i < t->e->nrings; i++)
			t->e->ring[i].deliver_irqs = t->e->dev.irq_mode != VIO_IRQ_POLL;
	}
	return t;
}

/* A table per ring entry: every request of a few segments takes one entry, and the whole
 * ring (QSIZE parts) can be in flight. The driver's own default is smaller (test_small_*). */
static struct t *setup_full(uint64_t features, const struct virtio_blk_config *cfg, int nq,
			    bool irqs, int want_init_err)
{
	const struct vio_blk_opts opts = {.indirect_tables = QSIZE};

	return setup_opts(features, cfg, nq, irqs, want_init_err, &opts);
}

static struct t *setup(uint64_t features, const struct virtio_blk_config *cfg)
{
	return setup_full(features, cfg, 1, true, 0);
}

static struct t *setup_default(void)
{
	struct virtio_blk_config cfg = default_config();
	return setup(BASE_FEATURES, &cfg);
}

/* The default device, with synchronous calls giving up after timeout_ns. */
static struct t *setup_timeout(uint64_t timeout_ns)
{
	struct virtio_blk_config cfg = default_config();
	struct vio_blk_opts opts = {.timeout_ns = timeout_ns, .indirect_tables = QSIZE};
	return setup_opts(BASE_FEATURES, &cfg, 1, true, 0, &opts);
}

static void teardown(struct t *t)
{
	vio_blk_fini(&t->blk);
	fake_env_free(t->e);
	free(t->m.disk);
	free(t);
}

/* An async request's outcome. */
struct done {
	int calls;
	int status;
};

static void on_done(struct vio_blk_req *req, int status, void *arg)
{
	struct done *d = arg;
	(void)req;
	d->calls++;
	d->status = status;
}

/* An async one-segment read of `sector` into `sg`, on any queue, reporting to `d`. */
static struct vio_blk_req read_req(uint64_t sector, struct vio_sg *sg, struct done *d)
{
	return (struct vio_blk_req){.op = VIO_BLK_OP_READ,
				    .sector = sector,
				    .sg = sg,
				    .nsg = 1,
				    .queue = VIO_BLK_ANY_QUEUE,
				    .on_done = on_done,
				    .arg = d};
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7 + i / 512);
}

/* --- config --------------------------------------------------------------------------------- */

static void test_init_reads_capacity_limits_geometry_topology_and_queues(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = {
	    .capacity = 2048,
	    .size_max = 65536,
	    .seg_max = 30,
	    .geometry = {.cylinders = 16, .heads = 4, .sectors = 32},
	    .blk_size = 4096,
	    .topology = {.physical_block_exp = 3,
			 .alignment_offset = 1,
			 .min_io_size = 8,
			 .opt_io_size = 256},
	    .writeback = 1,
	    .num_queues = 3,
	    .max_discard_sectors = 1000,
	    .max_discard_seg = 4,
	    .discard_sector_alignment = 8,
	    .max_write_zeroes_sectors = 2000,
	    .max_write_zeroes_seg = 2,
	    .write_zeroes_may_unmap = 1,
	};
	uint64_t f = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
		     VIRTIO_BIT(VIRTIO_BLK_F_GEOMETRY) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		     VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) |
		     VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE) | VIRTIO_BIT(VIRTIO_BLK_F_MQ) |
		     VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |
		     VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC);
	struct t *t = setup_full(f, &cfg, 3, true, 0);
	const struct vio_blk_info *in = &t->blk.info;

	assert_int_equal(in->capacity, 2048);
	assert_int_equal(in->blk_size, 4096);
	assert_int_equal(in->size_max, 65536);
	assert_int_equal(in->seg_max, 30);
	assert_int_equal(in->max_transfer, VIO_BLK_MAX_TRANSFER);
	assert_true(in->has_geometry);
	assert_int_equal(in->geometry.cylinders, 16);
	assert_int_equal(in->geometry.heads, 4);
	assert_int_equal(in->geometry.sectors, 32);
	assert_true(in->has_topology);
	assert_int_equal(in->topology.physical_block_exp, 3);
	assert_int_equal(in->topology.alignment_offset, 1);
	assert_int_equal(in->topology.min_io_size, 8);
	assert_int_equal(in->topology.opt_io_size, 256);
	assert_true(in->flush);
	assert_true(in->config_wce);
	assert_true(in->writeback);
	assert_false(in->ro);
	assert_true(in->discard);
	assert_int_equal(in->max_discard_sectors, 1000);
	assert_int_equal(in->max_discard_seg, 4);
	assert_int_equal(in->discard_sector_alignment, 8);
	assert_true(in->write_zeroes);
	assert_int_equal(in->max_write_zeroes_sectors, 2000);
	assert_int_equal(in->max_write_zeroes_seg, 2);
	assert_true(in->write_zeroes_may_unmap);
	assert_int_equal(in->device_queues, 3);
	assert_int_equal(in->num_queues, 3);
	assert_int_equal(in->queue_depth, QSIZE);
	assert_int_equal(t->e->dev.nvqs, 3);
	assert_string_equal(t->e->dev.name, "virtio-blk");
	assert_true(t->e->vd.status & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(vio_dev_has_feature(&t->e->dev, VIRTIO_F_RING_INDIRECT_DESC));
	teardown(t);
}

static void test_absurd_config_values_are_sanitised_and_logged(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = {
	    .capacity = 64, .size_max = 100, .seg_max = 0, .blk_size = 1000, .num_queues = 0};
	uint64_t f = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
		     VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_MQ);
	struct t *t = setup(f, &cfg);

	assert_int_equal(t->blk.info.blk_size, 512);
	assert_true(fake_port_logged(&t->e->fp, "absurd blk_size 1000"));
	assert_int_equal(t->blk.info.size_max, 512);
	assert_int_equal(t->blk.info.seg_max, 1);
	assert_int_equal(t->blk.info.num_queues, 1);
	t->m.size_max = 512; /* what the driver settled for */
	/* Still a working disk, just with small device requests. */
	uint8_t buf[2048], back[2048];
	fill(buf, sizeof(buf), 3);
	assert_int_equal(vio_blk_write(&t->blk, 10, buf, sizeof(buf)), 0);
	assert_int_equal(vio_blk_read(&t->blk, 10, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(t->m.max_data_segs, 1);
	assert_int_equal(t->m.max_seg_len, 512);
	teardown(t);
}

static void test_blk_size_not_offered_is_512_and_no_limits_means_one_segment(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = {.capacity = 100, .blk_size = 4096};
	struct t *t = setup(0, &cfg);

	assert_int_equal(t->blk.info.blk_size, 512);
	assert_int_equal(t->blk.info.seg_max, 1);
	assert_int_equal(t->blk.info.size_max, VIO_BLK_MAX_TRANSFER);
	assert_false(t->blk.info.writeback);
	assert_false(t->blk.info.has_geometry);
	assert_false(t->blk.info.has_topology);
	teardown(t);
}

static void test_capacity_zero_is_an_empty_disk(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = {.capacity = 0};
	struct t *t = setup(BASE_FEATURES, &cfg);
	uint8_t buf[512];

	assert_int_equal(t->blk.info.capacity, 0);
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_EINVAL);
	assert_int_equal(vio_blk_flush(&t->blk), 0);
	assert_int_equal(t->m.by_type[VIRTIO_BLK_T_IN], 0);
	teardown(t);
}

static void test_init_refuses_a_device_that_is_not_a_disk(void **state)
{
	(void)state;
	struct fake_env *e = fake_env_new(VIRTIO_ID_NET, 0, NULL, 0, 1, QSIZE);
	struct vio_blk blk;

	assert_int_equal(vio_blk_init(&blk, &e->dev, NULL), VIO_ENODEV);
	vio_blk_fini(&blk);
	fake_env_free(e);
}

static void test_init_failure_leaves_nothing_allocated(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct fake_env *e =
	    fake_env_new(VIRTIO_ID_BLOCK, BASE_FEATURES, &cfg, sizeof(cfg), 1, QSIZE);
	struct vio_blk blk;

	/* The ring allocations succeed, the slots' do not. */
	e->fp.dma_fail_after = e->fp.dma_allocs + 3;
	assert_int_equal(vio_blk_init(&blk, &e->dev, NULL), VIO_ENOMEM);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	assert_int_equal(e->fp.priv_live_allocs, 0);
	vio_blk_fini(&blk);
	fake_env_free(e);
}

static void test_mq_uses_at_most_max_queues_round_robin_or_by_hint(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.num_queues = 6;
	struct t *t = setup_full(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_MQ), &cfg, 6, true, 0);
	uint8_t buf[512];

	assert_int_equal(t->blk.info.device_queues, 6);
	assert_int_equal(t->blk.info.num_queues, VIO_BLK_MAX_QUEUES);
	for (int i = 0; i < 2 * VIO_BLK_MAX_QUEUES; i++)
		assert_int_equal(vio_blk_read(&t->blk, (uint64_t)i, buf, sizeof(buf)), 0);
	for (int q = 0; q < VIO_BLK_MAX_QUEUES; q++)
		assert_int_equal(t->m.by_ring[q], 2);

	struct vio_sg sg = {buf, sizeof(buf)};
	struct done d = {0};
	struct vio_blk_req req = {
	    .op = VIO_BLK_OP_READ, .sg = &sg, .nsg = 1, .queue = 2, .on_done = on_done, .arg = &d};
	assert_int_equal(vio_blk_submit(&t->blk, &req), 0);
	fake_env_run(t->e);
	assert_int_equal(d.calls, 1);
	assert_int_equal(t->m.by_ring[2], 3);
	teardown(t);
}

/* --- synchronous I/O ----------------------------------------------------------------------- */

static void test_sync_write_then_read_round_trip(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t buf[64 * 1024], back[64 * 1024];

	fill(buf, sizeof(buf), 1);
	assert_int_equal(vio_blk_write(&t->blk, 100, buf, sizeof(buf)), 0);
	assert_memory_equal(t->m.disk + 100 * 512, buf, sizeof(buf));
	assert_int_equal(vio_blk_read(&t->blk, 100, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(t->blk.stats.reads, 1);
	assert_int_equal(t->blk.stats.writes, 1);
	assert_int_equal(t->blk.stats.bytes_read, sizeof(buf));
	assert_int_equal(t->blk.stats.bytes_written, sizeof(buf));
	assert_int_equal(vio_blk_in_flight(&t->blk), 0);
	teardown(t);
}

static void test_sync_io_works_by_polling_without_interrupts(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct t *t = setup_full(BASE_FEATURES, &cfg, 1, false, 0);
	uint8_t buf[4096], back[4096];

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	fill(buf, sizeof(buf), 9);
	assert_int_equal(vio_blk_write(&t->blk, 7, buf, sizeof(buf)), 0);
	assert_int_equal(vio_blk_read(&t->blk, 7, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(t->blk.stats.interrupts, 0);
	teardown(t);
}

static void test_async_completes_by_interrupt_without_poll(void **state)
{
	(void)state;
	struct t *t = setup_default();
	uint8_t buf[1024];
	struct vio_sg sg = {buf, sizeof(buf)};
	struct done d = {0};
	struct vio_blk_req req = {.op = VIO_BLK_OP_READ,
				  .sector = 1,
				  .sg = &sg,
				  .nsg = 1,
				  .queue = VIO_BLK_ANY_QUEUE,
				  .on_done = on_done,
				  .arg = &d};

	assert_int_not_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	memset(t->m.disk + 512, 0x5a, 1024);
	assert_int_equal(vio_blk_submit(&t->blk, &req), 0);
	assert_int_equal(d.calls, 0);
	fake_env_run(t->e); /* the device answers and interrupts */
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, 0);
	assert_int_equal(buf[0], 0x5a);
	assert_true(t->blk.stats.interrupts >= 1);
	teardown(t);
}

static void test_async_polling_mode_completes_only_on_poll(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct t *t = setup_full(BASE_FEATURES, &cfg, 1, false, 0);
	uint8_t buf[512];
	struct vio_sg sg = {buf, sizeof(buf)};
	struct done d = {0};
	struct vio_blk_req req = {.op = VIO_BLK_OP_WRITE,
				  .sg = &sg,
				  .nsg = 1,
				  .queue = VIO_BLK_ANY_QUEUE,
				  .on_done = on_done,
				  .arg = &d};

	assert_int_equal(vio_blk_submit(&t->blk, &req), 0);
	fake_env_run(t->e);
	assert_int_equal(d.calls, 0);
	assert_int_equal(vio_blk_poll(&t->blk), 1);
	assert_int_equal(d.calls, 1);
	assert_int_equal(vio_blk_poll(&t->blk), 0);
	teardown(t);
}

/* --- async: depth, ENOSPC, splitting ------------------------------------------------------ */

static void test_async_full_queue_depth_in_flight_completes_out_of_order(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t bufs[QSIZE][512];
	struct vio_sg sg[QSIZE];
	struct vio_blk_req req[QSIZE];
	struct done d[QSIZE];

	for (int i = 0; i < QSIZE; i++)
		memset(t->m.disk + i * 512, i, 512);
	t->m.hold = true;
	t->m.shuffle = true;
	for (int i = 0; i < QSIZE; i++) {
		sg[i] = (struct vio_sg){bufs[i], 512};
		d[i] = (struct done){0};
		req[i] = read_req((uint64_t)i, &sg[i], &d[i]);
		assert_int_equal(vio_blk_submit(&t->blk, &req[i]), 0);
	}
	assert_int_equal(vio_blk_in_flight(&t->blk), QSIZE);
	fake_env_run(t->e);
	assert_int_equal(t->m.npend, QSIZE);
	assert_int_equal(t->m.indirect, QSIZE); /* one descriptor each: the whole ring in flight */
	model_complete(t->e, QSIZE / 2);
	model_complete(t->e, QSIZE);
	for (int i = 0; i < QSIZE; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].status, 0);
		assert_int_equal(bufs[i][0], i);
		assert_int_equal(bufs[i][511], i);
	}
	assert_int_equal(vio_blk_in_flight(&t->blk), 0);
	teardown(t);
}

/* Few tables on a small ring: the rest go direct, the depth says so, nothing is lost. */
static void test_blk_with_4_tables_and_depth_32_completes_1000_requests(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	const struct vio_blk_opts opts = {.queue_size = 32, .indirect_tables = 4};
	struct t *t = setup_opts(BASE_FEATURES, &cfg, 1, true, 0, &opts);
	enum { N = 1000 };
	static uint8_t bufs[N][512];
	static struct vio_sg sg[N];
	static struct vio_blk_req req[N];
	static struct done d[N];

	assert_int_equal(t->blk.blk_vqs[0].size, 32);
	/* 4 parts with a table, then (32 - 4) / 2: a direct chain takes two entries or more. */
	assert_int_equal(t->blk.info.queue_depth, 4 + (32 - 4) / 2);
	for (int s = 0; s < DISK_SECTORS; s++)
		memset(t->m.disk + s * 512, (uint8_t)s, 512);
	int full = 0;
	for (int i = 0; i < N;) {
		sg[i] = (struct vio_sg){bufs[i], 512};
		req[i] = read_req((uint64_t)(i * 7 % DISK_SECTORS), &sg[i], &d[i]);
		int err = vio_blk_submit(&t->blk, &req[i]);
		if (err == 0) {
			i++;
			continue;
		}
		assert_int_equal(err, VIO_ENOSPC); /* full: let the device answer some */
		assert_true(++full < 100 * N);
		fake_env_run(t->e);
	}
	for (int spins = 0; vio_blk_in_flight(&t->blk); spins++) {
		assert_true(spins < 1000);
		fake_env_run(t->e);
	}
	assert_true(full > 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].status, 0);
		assert_int_equal(bufs[i][0], (uint8_t)(i * 7 % DISK_SECTORS));
	}
	assert_int_equal(t->m.requests, N);
	assert_true(t->m.indirect > 0 && t->m.indirect < N); /* tables, and direct chains too */
	assert_int_equal(t->blk.blk_vqs[0].vq_ntables, 4);
	/* Ring, 4 tables, 18 slots: every DMA allocation a page at most. */
	assert_true(t->e->fp.dma_largest <= 4096);
	teardown(t);
}

/* The defaults: 16 tables and slots for what the ring holds, no piece above a page. */
static void test_blk_default_pool_is_small_and_page_sized(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->e = fake_env_new(VIRTIO_ID_BLOCK, BASE_FEATURES, &cfg, sizeof(cfg), 1, 256);
	t->e->fp.dma_limit = 4096; /* a page allocator: nothing larger, ever */
	t->m.disk = calloc(DISK_SECTORS, 512);
	assert_non_null(t->m.disk);
	assert_int_equal(vio_blk_init(&t->blk, &t->e->dev, NULL), 0);
	assert_int_equal(t->blk.blk_vqs[0].size, VIO_BLK_QUEUE_SIZE);
	assert_int_equal(t->blk.blk_vqs[0].vq_ntables, VIO_BLK_INDIRECT_TABLES);
	assert_int_equal(t->blk.info.queue_depth,
			 VIO_BLK_INDIRECT_TABLES +
			     (VIO_BLK_QUEUE_SIZE - VIO_BLK_INDIRECT_TABLES) / 2);
	assert_int_equal(t->e->fp.dma_refused, 0);
	assert_true(t->e->fp.dma_largest <= 4096);
	/* Ring (desc 4 KiB, avail + used 4 KiB), 4 table pages, 136 slots in 3 pages. */
	assert_int_equal(t->e->fp.dma_live_bytes, (2 + 4 + 3) * 4096);
	teardown(t);
}

static void test_plugged_submits_notify_the_device_once_at_unplug(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t bufs[8][512];
	struct vio_sg sg[8];
	struct vio_blk_req req[8];
	struct done d[8];

	t->m.hold = true;
	int before = t->e->vd.q[0].notified;
	vio_blk_plug(&t->blk);
	for (int i = 0; i < 8; i++) {
		sg[i] = (struct vio_sg){bufs[i], 512};
		d[i] = (struct done){0};
		req[i] = read_req((uint64_t)i, &sg[i], &d[i]);
		assert_int_equal(vio_blk_submit(&t->blk, &req[i]), 0);
	}
	assert_int_equal(t->e->vd.q[0].notified, before); /* nothing told yet */
	vio_blk_unplug(&t->blk);
	assert_int_equal(t->e->vd.q[0].notified, before + 1);
	fake_env_run(t->e);
	assert_int_equal(t->m.npend, 8);
	model_complete(t->e, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(d[i].calls, 1);
	/* A synchronous call inside a plug still reaches the device. */
	vio_blk_plug(&t->blk);
	t->m.hold = false;
	assert_int_equal(vio_blk_read(&t->blk, 0, bufs[0], 512), 0);
	vio_blk_unplug(&t->blk);
	teardown(t);
}

static void test_submit_returns_enospc_when_full_then_recovers(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t buf[512];
	struct vio_sg sg = {buf, 512};
	struct vio_blk_req req[QSIZE + 1];
	struct done d[QSIZE + 1] = {{0}};

	t->m.hold = true;
	for (int i = 0; i <= QSIZE; i++)
		req[i] = read_req(0, &sg, &d[i]);
	for (int i = 0; i < QSIZE; i++)
		assert_int_equal(vio_blk_submit(&t->blk, &req[i]), 0);
	assert_int_equal(vio_blk_submit(&t->blk, &req[QSIZE]), VIO_ENOSPC);
	assert_int_equal(t->blk.stats.full, 1);
	assert_int_equal(d[QSIZE].calls, 0);

	fake_env_run(t->e);
	model_complete(t->e, 1);
	assert_int_equal(vio_blk_submit(&t->blk, &req[QSIZE]), 0);
	t->m.hold = false;
	fake_env_run(t->e);
	for (int i = 0; i <= QSIZE; i++)
		assert_int_equal(d[i].calls, 1);
	teardown(t);
}

static void
test_request_larger_than_seg_max_times_size_max_is_split_and_completes_once(void **state)
{
	(void)state;
	struct t *t = setup_default(); /* seg_max 8 x size_max 4096 = 32 KiB per part */
	static uint8_t a[40 * 1024], b[100 * 1024], back[140 * 1024];
	struct vio_sg sg[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct done d = {0};
	struct vio_blk_req req = {.op = VIO_BLK_OP_WRITE,
				  .sector = 30,
				  .sg = sg,
				  .nsg = 2,
				  .queue = VIO_BLK_ANY_QUEUE,
				  .on_done = on_done,
				  .arg = &d};

	fill(a, sizeof(a), 4);
	fill(b, sizeof(b), 77);
	t->m.hold = true;
	t->m.shuffle = true;
	assert_int_equal(vio_blk_submit(&t->blk, &req), 0);
	fake_env_run(t->e);
	assert_int_equal(t->m.npend, 5); /* 140 KiB / 32 KiB */
	model_complete(t->e, 4);
	assert_int_equal(d.calls, 0);
	model_complete(t->e, 1);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, 0);
	assert_int_equal(t->m.max_data_segs, 8);
	assert_int_equal(t->m.max_seg_len, 4096);
	assert_memory_equal(t->m.disk + 30 * 512, a, sizeof(a));
	assert_memory_equal(t->m.disk + 30 * 512 + sizeof(a), b, sizeof(b));
	assert_int_equal(t->blk.stats.splits, 1);
	assert_int_equal(t->blk.stats.parts, 5);

	t->m.hold = false;
	assert_int_equal(vio_blk_read(&t->blk, 30, back, sizeof(back)), 0);
	assert_memory_equal(back, a, sizeof(a));
	assert_memory_equal(back + sizeof(a), b, sizeof(b));
	teardown(t);
}

static void test_request_longer_than_the_ring_trickles_in_as_parts_complete(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.seg_max = 1;
	cfg.size_max = 512;
	struct t *t = setup(BASE_FEATURES, &cfg);
	static uint8_t buf[3 * QSIZE * 512];
	struct vio_sg sg = {buf, sizeof(buf)};
	struct done d = {0}, d2 = {0};
	struct vio_blk_req req = {.op = VIO_BLK_OP_WRITE,
				  .sector = 0,
				  .sg = &sg,
				  .nsg = 1,
				  .queue = VIO_BLK_ANY_QUEUE,
				  .on_done = on_done,
				  .arg = &d};
	struct vio_blk_req req2 = req;
	req2.arg = &d2;

	fill(buf, sizeof(buf), 21);
	t->m.hold = true;
	assert_int_equal(vio_blk_submit(&t->blk, &req), 0);
	assert_int_equal(vio_blk_in_flight(&t->blk), QSIZE);
	/* The queue is busy with a request still trickling in: others wait. */
	assert_int_equal(vio_blk_submit(&t->blk, &req2), VIO_ENOSPC);
	t->m.hold = false;
	fake_env_run(t->e);
	fake_env_run(t->e);
	fake_env_run(t->e);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, 0);
	assert_int_equal(t->m.by_type[VIRTIO_BLK_T_OUT], 3 * QSIZE);
	assert_memory_equal(t->m.disk, buf, sizeof(buf));
	teardown(t);
}

/* --- errors from the device ---------------------------------------------------------------- */

static void test_ioerr_fails_only_that_request(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t bufs[3][512];
	struct vio_sg sg[3];
	struct vio_blk_req req[3];
	struct done d[3] = {{0}};

	t->m.ioerr_sector = 11;
	t->m.hold = true;
	for (int i = 0; i < 3; i++) {
		sg[i] = (struct vio_sg){bufs[i], 512};
		req[i] = read_req((uint64_t)(10 + i), &sg[i], &d[i]);
		assert_int_equal(vio_blk_submit(&t->blk, &req[i]), 0);
	}
	fake_env_run(t->e);
	model_complete(t->e, 3);
	assert_int_equal(d[0].status, 0);
	assert_int_equal(d[1].status, VIO_EIO);
	assert_int_equal(d[2].status, 0);
	assert_int_equal(t->blk.stats.ioerr, 1);
	assert_int_equal(t->blk.stats.errors, 1);
	/* The device stays usable. */
	t->m.hold = false;
	assert_int_equal(vio_blk_read(&t->blk, 12, bufs[0], 512), 0);
	assert_int_equal(vio_blk_read(&t->blk, 11, bufs[0], 512), VIO_EIO);
	teardown(t);
}

static void test_ioerr_in_one_part_fails_the_split_request_once(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t buf[128 * 1024];
	struct vio_sg sg = {buf, sizeof(buf)};
	struct done d = {0};
	struct vio_blk_req req = {.op = VIO_BLK_OP_READ,
				  .sector = 0,
				  .sg = &sg,
				  .nsg = 1,
				  .queue = VIO_BLK_ANY_QUEUE,
				  .on_done = on_done,
				  .arg = &d};

	t->m.ioerr_sector = 100; /* inside the 2nd of 4 parts */
	assert_int_equal(vio_blk_submit(&t->blk, &req), 0);
	fake_env_run(t->e);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, VIO_EIO);
	assert_int_equal(t->blk.stats.errors, 1);
	teardown(t);
}

static void test_unsupp_status_maps_to_enotsup(void **state)
{
	(void)state;
	struct t *t = setup_default();

	t->m.unsupp_types = 1u << VIRTIO_BLK_T_FLUSH;
	assert_int_equal(vio_blk_flush(&t->blk), VIO_ENOTSUP);
	assert_int_equal(t->blk.stats.unsupp, 1);
	t->m.unsupp_types = 1u << VIRTIO_BLK_T_GET_ID;
	assert_int_equal(vio_blk_get_id(&t->blk, NULL, 0), VIO_ENOTSUP);
	assert_false(t->blk.info.has_serial);
	teardown(t);
}

static void test_bad_status_byte_is_eio(void **state)
{
	(void)state;
	struct t *t = setup_default();
	uint8_t buf[512];

	t->m.bad_status = 7;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_EIO);
	assert_int_equal(t->blk.stats.bad_answers, 1);
	assert_true(fake_port_logged(&t->e->fp, "bad status byte 0x07"));
	t->m.bad_status = -1;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), 0);
	teardown(t);
}

static void test_used_len_beyond_posted_or_short_read_is_eio(void **state)
{
	(void)state;
	struct t *t = setup_default();
	uint8_t buf[1024];

	t->m.len_delta = 1;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_EIO);
	t->m.len_delta = -1;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_EIO);
	assert_int_equal(t->blk.stats.bad_answers, 2);
	t->m.len_delta = 0;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), 0);
	teardown(t);
}

static void test_completion_for_request_not_in_flight_breaks_device(void **state)
{
	(void)state;
	struct t *t = setup_default();
	uint8_t buf[512];

	fake_vring_complete(&t->e->ring[0], 5, 1); /* nothing was posted */
	assert_int_equal(vio_blk_poll(&t->blk), VIO_EIO);
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_EIO);
	teardown(t);
}

/* --- checks before the device ------------------------------------------------------------- */

static void test_read_only_device_refuses_writes_without_touching_device(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.max_discard_sectors = 100;
	cfg.max_write_zeroes_sectors = 100;
	struct t *t =
	    setup(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
		      VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES),
		  &cfg);
	uint8_t buf[512] = {0};

	assert_true(t->blk.info.ro);
	assert_int_equal(vio_blk_write(&t->blk, 0, buf, sizeof(buf)), VIO_EROFS);
	assert_int_equal(vio_blk_discard(&t->blk, 0, 8), VIO_EROFS);
	assert_int_equal(vio_blk_write_zeroes(&t->blk, 0, 8, false), VIO_EROFS);
	assert_int_equal(t->m.requests, 0);
	assert_int_equal(t->e->ring[0].notifications, 0);
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), 0);
	teardown(t);
}

static void test_requests_beyond_capacity_or_not_whole_sectors_are_einval(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t buf[1024];
	struct vio_sg sg[2] = {{buf, 512}, {buf + 512, 100}};
	struct done d = {0};
	struct vio_blk_req req = {
	    .op = VIO_BLK_OP_READ, .sg = sg, .nsg = 2, .on_done = on_done, .arg = &d};

	assert_int_equal(vio_blk_read(&t->blk, DISK_SECTORS - 1, buf, 1024), VIO_EINVAL);
	assert_int_equal(vio_blk_read(&t->blk, DISK_SECTORS, buf, 512), VIO_EINVAL);
	assert_int_equal(vio_blk_read(&t->blk, UINT64_MAX, buf, 512), VIO_EINVAL);
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, 0), VIO_EINVAL);
	assert_int_equal(vio_blk_write(&t->blk, 0, buf, 700), VIO_EINVAL);
	assert_int_equal(vio_blk_submit(&t->blk, &req), VIO_EINVAL);
	req.op = 99;
	assert_int_equal(vio_blk_submit(&t->blk, &req), VIO_EINVAL);
	req = (struct vio_blk_req){.op = VIO_BLK_OP_FLUSH};
	assert_int_equal(vio_blk_submit(&t->blk, &req), VIO_EINVAL); /* no callback */
	assert_int_equal(d.calls, 0);
	assert_int_equal(t->m.requests, 0);
	assert_int_equal(vio_blk_read(&t->blk, DISK_SECTORS - 2, buf, 1024), 0);
	teardown(t);
}

/* --- flush, discard, write zeroes, get id, cache mode ------------------------------------- */

static void test_flush_reaches_device_when_negotiated(void **state)
{
	(void)state;
	struct t *t = setup_default();

	assert_true(t->blk.info.flush);
	assert_true(t->blk.info.writeback);
	assert_int_equal(vio_blk_flush(&t->blk), 0);
	assert_int_equal(t->m.by_type[VIRTIO_BLK_T_FLUSH], 1);
	assert_int_equal(t->blk.stats.flushes, 1);
	teardown(t);
}

static void test_flush_without_feature_is_immediate_success(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct t *t = setup(VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX), &cfg);
	struct done d = {0};
	struct vio_blk_req req = {
	    .op = VIO_BLK_OP_FLUSH, .queue = VIO_BLK_ANY_QUEUE, .on_done = on_done, .arg = &d};

	assert_false(t->blk.info.flush);
	assert_false(t->blk.info.writeback);
	assert_int_equal(vio_blk_flush(&t->blk), 0);
	assert_int_equal(vio_blk_submit(&t->blk, &req), 0);
	assert_int_equal(d.calls, 1); /* before submit returned */
	assert_int_equal(d.status, 0);
	assert_int_equal(t->m.requests, 0);
	teardown(t);
}

static void test_discard_sends_split_segments_and_zeroes_data(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.max_discard_sectors = 100;
	cfg.max_discard_seg = 1;
	struct t *t = setup(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD), &cfg);

	memset(t->m.disk, 0xee, DISK_SECTORS * 512);
	assert_int_equal(vio_blk_discard(&t->blk, 50, 250), 0);
	assert_int_equal(t->m.by_type[VIRTIO_BLK_T_DISCARD], 3);
	assert_int_equal(t->m.ndwz, 3);
	assert_int_equal(t->m.dwz[0].sector, 50);
	assert_int_equal(t->m.dwz[0].num_sectors, 100);
	assert_int_equal(t->m.dwz[1].sector, 150);
	assert_int_equal(t->m.dwz[2].sector, 250);
	assert_int_equal(t->m.dwz[2].num_sectors, 50);
	assert_int_equal(t->m.dwz[0].flags, 0);
	assert_int_equal(t->m.disk[50 * 512 - 1], 0xee);
	assert_int_equal(t->m.disk[50 * 512], 0);
	assert_int_equal(t->m.disk[300 * 512 - 1], 0);
	assert_int_equal(t->m.disk[300 * 512], 0xee);
	assert_int_equal(t->blk.stats.discards, 1);
	assert_int_equal(vio_blk_discard(&t->blk, DISK_SECTORS - 1, 2), VIO_EINVAL);
	assert_int_equal(vio_blk_discard(&t->blk, 0, 0), VIO_EINVAL);
	teardown(t);
}

static void test_write_zeroes_carries_unmap_flag_and_zeroes_data(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.max_write_zeroes_sectors = 0; /* no limit */
	cfg.write_zeroes_may_unmap = 1;
	struct t *t = setup(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES), &cfg);

	memset(t->m.disk, 0xaa, DISK_SECTORS * 512);
	assert_int_equal(t->blk.info.max_write_zeroes_sectors, UINT32_MAX);
	assert_int_equal(vio_blk_write_zeroes(&t->blk, 8, 16, true), 0);
	assert_int_equal(vio_blk_write_zeroes(&t->blk, 100, 1, false), 0);
	assert_int_equal(t->m.by_type[VIRTIO_BLK_T_WRITE_ZEROES], 2);
	assert_int_equal(t->m.dwz[0].sector, 8);
	assert_int_equal(t->m.dwz[0].num_sectors, 16);
	assert_int_equal(t->m.dwz[0].flags, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	assert_int_equal(t->m.dwz[1].flags, 0);
	assert_int_equal(t->m.disk[8 * 512 - 1], 0xaa);
	assert_int_equal(t->m.disk[8 * 512], 0);
	assert_int_equal(t->m.disk[24 * 512 - 1], 0);
	assert_int_equal(t->m.disk[24 * 512], 0xaa);
	assert_int_equal(t->m.disk[100 * 512 + 511], 0);
	teardown(t);
}

static void test_discard_and_write_zeroes_without_feature_are_enotsup(void **state)
{
	(void)state;
	struct t *t = setup_default();

	assert_int_equal(vio_blk_discard(&t->blk, 0, 8), VIO_ENOTSUP);
	assert_int_equal(vio_blk_write_zeroes(&t->blk, 0, 8, true), VIO_ENOTSUP);
	assert_int_equal(t->m.requests, 0);
	teardown(t);
}

static void test_get_id_returns_serial(void **state)
{
	(void)state;
	struct t *t = setup_default();
	char id[32], small[5];

	assert_int_equal(vio_blk_get_id(&t->blk, id, sizeof(id)), 0);
	assert_string_equal(id, "vio-serial-0001");
	assert_true(t->blk.info.has_serial);
	assert_string_equal(t->blk.info.serial, "vio-serial-0001");
	assert_int_equal(vio_blk_get_id(&t->blk, small, sizeof(small)), 0);
	assert_string_equal(small, "vio-");
	/* A 20-byte id has no NUL: the driver adds one. */
	memcpy(t->m.id, "ABCDEFGHIJKLMNOPQRST", 20);
	assert_int_equal(vio_blk_get_id(&t->blk, id, sizeof(id)), 0);
	assert_string_equal(id, "ABCDEFGHIJKLMNOPQRST");
	assert_int_equal(t->blk.stats.get_ids, 3);
	teardown(t);
}

static void test_writeback_can_be_toggled_with_config_wce(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.writeback = 0;
	struct t *t = setup(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE), &cfg);

	assert_false(t->blk.info.writeback);
	assert_int_equal(vio_blk_set_writeback(&t->blk, true), 0);
	assert_true(t->blk.info.writeback);
	assert_int_equal(t->e->vd.config[offsetof(struct virtio_blk_config, writeback)], 1);
	assert_int_equal(vio_blk_set_writeback(&t->blk, false), 0);
	assert_false(t->blk.info.writeback);
	teardown(t);

	t = setup_default();
	assert_int_equal(vio_blk_set_writeback(&t->blk, false), VIO_ENOTSUP);
	teardown(t);
}

static void test_config_change_interrupt_updates_capacity(void **state)
{
	(void)state;
	struct t *t = setup_default();
	uint64_t cap = 8192;

	fake_env_set_config(t->e, offsetof(struct virtio_blk_config, capacity), &cap, sizeof(cap));
	fake_env_config_irq(t->e);
	assert_int_equal(t->blk.info.capacity, 8192);
	assert_true(fake_port_logged(&t->e->fp, "capacity now 8192"));
	teardown(t);
}

/* --- bounded work per call ----------------------------------------------------------------- */

/* A device that answers each request the moment its doorbell rings: whatever the driver
 * posts while it reaps is done before the driver looks at the ring again. */
static struct fake_env *eager_env;
static void (*eager_io_out)(void *ctx, uint16_t port, int size, uint32_t val);

static void eager_out(void *ctx, uint16_t port, int size, uint32_t val)
{
	eager_io_out(ctx, port, size, val);
	if (port >= FAKE_VDEV_IO_MODERN + FAKE_VDEV_NOTIFY &&
	    port < FAKE_VDEV_IO_MODERN + FAKE_VDEV_BAR_SIZE)
		fake_env_run(eager_env);
}

static void make_eager(struct t *t)
{
	eager_env = t->e;
	eager_io_out = t->e->fp.io_out;
	t->e->fp.io_out = eager_out;
	for (int i = 0; i < t->e->nrings; i++)
		t->e->ring[i].deliver_irqs = false; /* the test says when an interrupt comes */
}

/* A caller that keeps the disk busy: each completion submits the same read again. */
struct busy {
	struct t *t;
	struct vio_blk_req req;
	struct vio_sg sg;
	uint8_t buf[512];
	unsigned *calls;
	bool stop;
};

static void busy_done(struct vio_blk_req *req, int status, void *arg)
{
	struct busy *b = arg;

	assert_int_equal(status, 0);
	(*b->calls)++;
	/* 100000: where a driver without a budget is stopped, so the test can fail, not hang. */
	if (!b->stop && *b->calls < 100000)
		assert_int_equal(vio_blk_submit(&b->t->blk, req), 0);
}

static void start_busy(struct t *t, struct busy *b, unsigned n, unsigned *calls)
{
	for (unsigned i = 0; i < n; i++) {
		b[i] = (struct busy){.t = t, .calls = calls};
		b[i].sg = (struct vio_sg){b[i].buf, sizeof(b[i].buf)};
		b[i].req = (struct vio_blk_req){.op = VIO_BLK_OP_READ,
						.sector = i,
						.sg = &b[i].sg,
						.nsg = 1,
						.queue = VIO_BLK_ANY_QUEUE,
						.on_done = busy_done,
						.arg = &b[i]};
		assert_int_equal(vio_blk_submit(&t->blk, &b[i].req), 0);
	}
}

/* Stop the busy callers and reap what is left, a ring's worth per call at most. */
static void stop_busy(struct t *t, struct busy *b, unsigned n, unsigned *calls)
{
	for (unsigned i = 0; i < n; i++)
		b[i].stop = true;
	for (int k = 0; k < 4 && vio_blk_in_flight(&t->blk); k++) {
		*calls = 0;
		assert_true(vio_blk_poll(&t->blk) >= 0);
		assert_true(*calls <= QSIZE);
	}
	assert_int_equal(vio_blk_in_flight(&t->blk), 0);
}

static void test_poll_takes_at_most_a_ring_of_completions_from_an_eager_device(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct t *t = setup_full(BASE_FEATURES, &cfg, 1, false, 0);
	struct busy b[4];
	unsigned calls = 0;

	make_eager(t);
	start_busy(t, b, 4, &calls);
	for (int k = 0; k < 3; k++) {
		calls = 0;
		int n = vio_blk_poll(&t->blk);
		assert_true(calls > 0);
		assert_true(calls <= QSIZE);
		assert_int_equal(n, (int)calls);
	}
	stop_busy(t, b, 4, &calls);
	teardown(t);
}

static void test_one_interrupt_takes_at_most_a_ring_of_completions(void **state)
{
	(void)state;
	struct t *t = setup_default();
	struct busy b[4];
	unsigned calls = 0;

	make_eager(t);
	start_busy(t, b, 4, &calls);
	assert_int_equal(calls, 0);
	vio_vq_interrupt(&t->blk.blk_vqs[0]);
	assert_true(calls > 0);
	assert_true(calls <= QSIZE);
	/* What the interrupt left is still there for vio_blk_poll. */
	stop_busy(t, b, 4, &calls);
	teardown(t);
}

/* --- answers read back from shared memory ------------------------------------------------ */

/* A read answered as if it were a write: type rewritten, status OK, only the status byte. */
static void answer_read_as_write(struct model *m, const struct fake_req *r, uint8_t *status,
				 uint32_t *len)
{
	struct virtio_blk_outhdr *h = seg_ptr(&r->seg[0]);
	(void)m;
	if (h->type != VIRTIO_BLK_T_IN)
		return;
	h->type = VIRTIO_BLK_T_OUT;
	*status = VIRTIO_BLK_S_OK;
	*len = 1;
}

static void test_device_rewriting_the_header_cannot_pass_off_a_short_read(void **state)
{
	(void)state;
	struct t *t = setup_default();
	uint8_t buf[1024];

	t->m.tamper = answer_read_as_write;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_EIO);
	assert_int_equal(t->blk.stats.bad_answers, 1);
	assert_true(fake_port_logged(&t->e->fp, "device wrote 1 of 1025 bytes"));
	t->m.tamper = NULL;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), 0);
	teardown(t);
}

/* GET_ID answered OK with fewer than the 20 id bytes. */
static void short_id(struct model *m, const struct fake_req *r, uint8_t *status, uint32_t *len)
{
	const struct virtio_blk_outhdr *h = seg_ptr(&r->seg[0]);
	(void)m, (void)status;
	if (h->type == VIRTIO_BLK_T_GET_ID)
		*len = 8;
}

static void test_get_id_short_answer_is_eio(void **state)
{
	(void)state;
	struct t *t = setup_default();
	char id[32] = "untouched";

	t->m.tamper = short_id;
	assert_int_equal(vio_blk_get_id(&t->blk, id, sizeof(id)), VIO_EIO);
	assert_string_equal(id, "untouched");
	assert_false(t->blk.info.has_serial);
	assert_int_equal(t->blk.stats.bad_answers, 1);
	teardown(t);
}

static void test_second_get_id_never_returns_the_previous_serial(void **state)
{
	(void)state;
	struct t *t = setup_default();
	char id[32];

	assert_int_equal(vio_blk_get_id(&t->blk, id, sizeof(id)), 0);
	assert_string_equal(id, "vio-serial-0001");
	/* The device answers OK, but writes no id this time. */
	t->m.id_unwritten = true;
	assert_int_equal(vio_blk_get_id(&t->blk, id, sizeof(id)), 0);
	assert_string_equal(id, "");
	assert_string_equal(t->blk.info.serial, "");
	teardown(t);
}

/*
 * A device that rewrites a slot's header and range while the driver is still posting it
 * (model B: it learnt where the slots are from earlier requests), and puts the driver's
 * values back before it reads them itself. Whatever the driver reads back in between is the
 * device's: a part's length and type must come from the driver's own record.
 */
struct flipper {
	struct t *t;
	uint64_t (*virt_to_phys)(void *ctx, const void *virt);
	struct virtio_blk_outhdr *hdr[16]; /* learnt from the chains the device took */
	struct virtio_blk_discard_write_zeroes *dwz[16];
	unsigned nhdr, ndwz;
	uint32_t *undo[32]; /* what it changed, and what was there */
	uint32_t was[32];
	unsigned nundo;
};

static struct flipper flipper;

static void flip(uint32_t *field, uint32_t v)
{
	assert_true(flipper.nundo < 32);
	flipper.undo[flipper.nundo] = field;
	flipper.was[flipper.nundo++] = *field;
	*field = v;
}

static uint64_t flipping_virt_to_phys(void *ctx, const void *virt)
{
	for (unsigned i = 0; i < flipper.nhdr; i++)
		if (virt == flipper.hdr[i])
			flip(&flipper.hdr[i]->type, VIRTIO_BLK_T_GET_ID);
	for (unsigned i = 0; i < flipper.ndwz; i++)
		if (virt == flipper.dwz[i])
			flip(&flipper.dwz[i]->num_sectors, 1);
	return flipper.virt_to_phys(ctx, virt);
}

static void learn_slots(struct model *m, const struct fake_req *r, uint8_t *status, uint32_t *len)
{
	(void)m, (void)status, (void)len;
	if (flipper.nhdr < 16)
		flipper.hdr[flipper.nhdr++] = seg_ptr(&r->seg[0]);
	if (r->n_out == 2 && flipper.ndwz < 16)
		flipper.dwz[flipper.ndwz++] = seg_ptr(&r->seg[1]);
}

static void model_after_flips(struct fake_env *e)
{
	while (flipper.nundo) {
		flipper.nundo--;
		*flipper.undo[flipper.nundo] = flipper.was[flipper.nundo];
	}
	model_run(e);
}

static void test_device_rewriting_a_slot_while_it_is_posted_misleads_nothing(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.max_discard_sectors = 100;
	struct t *t = setup(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD), &cfg);

	flipper = (struct flipper){.t = t, .virt_to_phys = t->e->fp.port.virt_to_phys};
	t->m.tamper = learn_slots;
	assert_int_equal(vio_blk_discard(&t->blk, 50, 250), 0); /* the device learns the slots */
	assert_int_equal(flipper.ndwz, 3);

	t->m.tamper = NULL;
	t->m.ndwz = 0;
	t->e->fp.port.virt_to_phys = flipping_virt_to_phys;
	t->e->model = model_after_flips;
	assert_int_equal(vio_blk_discard(&t->blk, 50, 250), 0);
	assert_int_equal(t->m.ndwz, 3);
	assert_int_equal(t->m.dwz[0].sector, 50);
	assert_int_equal(t->m.dwz[1].sector, 150);
	assert_int_equal(t->m.dwz[2].sector, 250);
	assert_int_equal(t->m.dwz[2].num_sectors, 50);
	assert_int_equal(t->m.by_type[VIRTIO_BLK_T_DISCARD], 6);
	t->e->fp.port.virt_to_phys = flipper.virt_to_phys;
	teardown(t);
}

/* --- a device that writes where it should not ------------------------------------------- */

/*
 * Threat model B: the device reaches every byte of DMA memory, not only the buffers it was
 * given, and may rewrite it at any time. What the driver trusts must not be there.
 */

/* The fake port's live DMA region that holds address a, or -1. */
static int dma_region(const struct fake_port *fp, uintptr_t a)
{
	for (int k = 0; k < FAKE_PORT_DMA_REGIONS; k++) {
		uintptr_t r = (uintptr_t)fp->dma[k].p;
		if (r && a >= r && a < r + fp->dma[k].bytes)
			return k;
	}
	return -1;
}

/*
 * Is DMA region k the virtqueue's own (its rings, indirect tables, and its bookkeeping while
 * that is DMA memory)? The core's own tests scribble over those. The regions are numbered in
 * the order init allocated them: queue i's start with its first ring part and end where
 * blk's slots for it, allocated right after the queue, begin.
 */
static bool queue_memory(const struct t *t, int k)
{
	const struct fake_port *fp = &t->e->fp;

	for (int i = 0; i < t->blk.info.num_queues; i++) {
		const struct vio_vq *vq = &t->blk.blk_vqs[i];
		int first = dma_region(fp, (uintptr_t)vq->desc_phys);
		int avail = dma_region(fp, (uintptr_t)vq->avail_phys);
		int used = dma_region(fp, (uintptr_t)vq->used_phys);
		first = avail < first ? avail : first;
		first = used < first ? used : first;
		if (k >= first && k < dma_region(fp, (uintptr_t)t->blk.blk_q[i].q_slot_pages[0]))
			return true;
	}
	return false;
}

/* The device writes `word` over every 8 bytes of DMA memory outside the virtqueue's own. */
static void scribble_dma(struct t *t, uint64_t word)
{
	for (int k = 0; k < FAKE_PORT_DMA_REGIONS; k++) {
		const struct fake_dma_region *r = &t->e->fp.dma[k];
		if (!r->p || queue_memory(t, k))
			continue;
		for (size_t off = 0; off + sizeof(word) <= r->bytes; off += sizeof(word))
			memcpy((uint8_t *)r->p + off, &word, sizeof(word));
	}
}

static void test_blk_bookkeeping_lives_in_private_memory(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.num_queues = 2;
	struct t *t = setup_full(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_MQ), &cfg, 2, true, 0);

	for (int i = 0; i < 2; i++) {
		const struct vio_blk_queue *q = &t->blk.blk_q[i];
		for (uint16_t p = 0; p < q->q_nslot_pages; p++)
			assert_true(fake_port_is_dma(&t->e->fp, q->q_slot_pages[p], 4096));
		assert_false(fake_port_is_dma(&t->e->fp, q->q_parts, 1));
		assert_false(fake_port_is_dma(&t->e->fp, q->q_free, 1));
	}
	assert_true(t->e->fp.priv_live_allocs > 0);
	vio_blk_fini(&t->blk);
	assert_int_equal(t->e->fp.priv_live_allocs, 0);
	teardown(t);
}

static struct done forged;

static void forged_done(struct vio_blk_req *req, int status, void *arg)
{
	(void)req, (void)status, (void)arg;
	forged.calls++;
}

static void test_device_rewriting_dma_cannot_forge_a_completion(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t bufs[8][512];
	struct vio_sg sg[8];
	struct vio_blk_req req[8];
	struct done d[8] = {{0}};
	/* What a device would like the driver to call: a request it made up. */
	struct vio_blk_req fake = {.op = VIO_BLK_OP_READ, .on_done = forged_done, .blk_parts = 1};

	forged = (struct done){0};
	t->m.hold = true;
	for (int i = 0; i < 8; i++) {
		sg[i] = (struct vio_sg){bufs[i], 512};
		req[i] = (struct vio_blk_req){.op = i % 2 ? VIO_BLK_OP_WRITE : VIO_BLK_OP_READ,
					      .sector = (uint64_t)i,
					      .sg = &sg[i],
					      .nsg = 1,
					      .queue = VIO_BLK_ANY_QUEUE,
					      .on_done = on_done,
					      .arg = &d[i]};
	}
	/* One request: every word of DMA memory now points at the forged request. */
	assert_int_equal(vio_blk_submit(&t->blk, &req[0]), 0);
	fake_env_run(t->e);
	scribble_dma(t, (uint64_t)(uintptr_t)&fake);
	model_complete(t->e, 1);
	assert_int_equal(forged.calls, 0);
	assert_int_equal(d[0].calls, 1);

	/* Many, then all ones over everything: each completes once, whatever it says. */
	for (int i = 1; i < 8; i++)
		assert_int_equal(vio_blk_submit(&t->blk, &req[i]), 0);
	fake_env_run(t->e);
	scribble_dma(t, UINT64_MAX);
	t->m.shuffle = true;
	model_complete(t->e, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(d[i].calls, 1);
	assert_int_equal(forged.calls, 0);
	assert_int_equal(vio_blk_in_flight(&t->blk), 0);
	teardown(t);
}

/* Log lines kept by the fake port that contain `needle`. */
static int logged_lines(const struct fake_port *fp, const char *needle)
{
	int n = fp->log_count < FAKE_PORT_LOG_LINES ? fp->log_count : FAKE_PORT_LOG_LINES, k = 0;
	for (int i = 0; i < n; i++)
		k += strstr(fp->log[i], needle) != NULL;
	return k;
}

static void set_capacity(struct t *t, uint64_t cap)
{
	fake_env_set_config(t->e, offsetof(struct virtio_blk_config, capacity), &cap, sizeof(cap));
	fake_env_config_irq(t->e);
}

static void test_config_change_storm_is_logged_once_a_second_with_a_count(void **state)
{
	(void)state;
	struct t *t = setup_default();

	/* A device that flips the capacity without end, far faster than once a second. */
	for (int i = 0; i < 1000; i++)
		set_capacity(t, i % 2 ? DISK_SECTORS : DISK_SECTORS - 1);
	assert_int_equal(t->blk.info.capacity, DISK_SECTORS);
	assert_int_equal(logged_lines(&t->e->fp, "capacity now"), 1);
	assert_true(fake_port_logged(&t->e->fp, "capacity now 4095 sectors"));

	t->e->fp.now += 1000000000ull; /* a second later */
	set_capacity(t, 8192);
	assert_int_equal(t->blk.info.capacity, 8192);
	assert_int_equal(logged_lines(&t->e->fp, "capacity now"), 2);
	assert_true(fake_port_logged(&t->e->fp, "capacity now 8192 sectors (1000 changes"));
	teardown(t);
}

/* --- synchronous calls give the owner its moments ----------------------------------------- */

/* The owner's wait: what a kernel does there is let interrupts in. */
struct waiter {
	struct t *t;
	unsigned calls;
	unsigned answer_after; /* the device answers (and interrupts) on this call; 0: never */
	uint64_t last;	       /* fake time of the last call (or of the start) */
	uint64_t max_gap;      /* longest stretch between two calls */
};

static void owner_wait(struct vio_blk *blk, void *arg)
{
	struct waiter *w = arg;
	uint64_t now = w->t->e->fp.now;

	assert_ptr_equal(blk, &w->t->blk);
	if (now - w->last > w->max_gap)
		w->max_gap = now - w->last;
	w->last = now;
	if (++w->calls == w->answer_after)
		model_complete(w->t->e, w->t->m.npend); /* its interrupt runs here */
}

static struct t *setup_waiter(struct waiter *w, uint64_t timeout_ns)
{
	struct virtio_blk_config cfg = default_config();
	struct vio_blk_opts opts = {
	    .timeout_ns = timeout_ns, .indirect_tables = QSIZE, .wait = owner_wait, .arg = w};
	struct t *t = setup_opts(BASE_FEATURES, &cfg, 1, true, 0, &opts);
	w->t = t;
	w->last = t->e->fp.now;
	return t;
}

static void test_sync_call_lets_the_owner_take_interrupts_while_it_waits(void **state)
{
	(void)state;
	struct waiter w = {.answer_after = 50};
	struct t *t = setup_waiter(&w, 0);
	uint8_t buf[512];

	t->m.hold = true; /* the device does the read, but answers only on the 50th wait */
	memset(t->m.disk, 0x3c, 512);
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0x3c);
	assert_int_equal(w.calls, 50);
	assert_true(w.max_gap <= VIO_BLK_SPIN_NS + 10000);
	teardown(t);
}

static void test_sync_timeout_and_full_queue_waits_call_the_owner_too(void **state)
{
	(void)state;
	struct waiter w = {0};
	struct t *t = setup_waiter(&w, 5000000);
	static uint8_t buf[512];
	struct vio_sg sg = {buf, 512};
	struct vio_blk_req req[QSIZE];
	struct done d[QSIZE] = {{0}};

	t->m.silent = true;
	for (int i = 0; i < QSIZE; i++) {
		req[i] = read_req(0, &sg, &d[i]);
		assert_int_equal(vio_blk_submit(&t->blk, &req[i]), 0);
	}
	/* The queue is full and stays full: 5 ms of waiting for room. */
	assert_int_equal(vio_blk_flush(&t->blk), VIO_ETIMEDOUT);
	assert_true(w.calls >= 5000000 / VIO_BLK_SPIN_NS - 1);
	assert_true(w.max_gap <= VIO_BLK_SPIN_NS + 10000);
	/* Room, then no answer: 5 ms of waiting for it. */
	t->m.silent = false;
	t->m.hold = true;
	fake_env_run(t->e);
	model_complete(t->e, QSIZE);
	w.calls = 0;
	w.last = t->e->fp.now;
	t->m.silent = true;
	assert_int_equal(vio_blk_flush(&t->blk), VIO_ETIMEDOUT);
	assert_true(w.calls >= 5000000 / VIO_BLK_SPIN_NS - 1);
	assert_true(w.max_gap <= VIO_BLK_SPIN_NS + 10000);
	teardown(t);
}

/* --- a device that needs a reset ------------------------------------------------------------ */

static void test_timeout_notices_a_device_that_needs_a_reset(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct vio_blk_opts opts = {.timeout_ns = 1000000, .indirect_tables = QSIZE};
	struct t *t = setup_opts(BASE_FEATURES, &cfg, 1, false, 0, &opts);
	uint8_t buf[512];

	/* Polled: no config interrupt tells the driver; the device just stops answering. */
	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	t->m.silent = true;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_true(fake_port_logged(&t->e->fp, "needs reset"));
	assert_true(vio_vq_is_broken(&t->blk.blk_vqs[0]));
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_ENEEDRESET);
	teardown(t);
}

static void test_poll_notices_a_device_that_needs_a_reset(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct t *t = setup_full(BASE_FEATURES, &cfg, 1, false, 0);

	/* Polled, nothing in flight: only the status says it. */
	assert_int_equal(vio_blk_poll(&t->blk), 0);
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	t->e->fp.now += VIO_POLL_STATUS_NS;
	assert_int_equal(vio_blk_poll(&t->blk), VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_int_equal(vio_blk_poll(&t->blk), VIO_ENEEDRESET);
	teardown(t);
}

static void test_broken_queue_notices_a_device_that_needs_a_reset(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	struct t *t = setup_full(BASE_FEATURES, &cfg, 1, false, 0);

	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	fake_vring_complete(&t->e->ring[0], 5, 1); /* nothing was posted: the queue breaks */
	assert_int_equal(vio_blk_poll(&t->blk), VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_true(fake_port_logged(&t->e->fp, "needs reset"));
	teardown(t);
}

/* --- timeouts and teardown ---------------------------------------------------------------- */

static void test_device_that_never_answers_times_out_then_fini_cleans_up(void **state)
{
	(void)state;
	struct t *t = setup_timeout(5000000); /* fake time moves 1 us per now_ns() */
	uint8_t buf[512];

	t->m.silent = true;
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_ETIMEDOUT);
	assert_int_equal(t->blk.stats.timeouts, 1);
	assert_true(fake_port_logged(&t->e->fp, "timed out"));
	/* The request is still the device's: nothing more until a reset. */
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, sizeof(buf)), VIO_EIO);
	assert_int_equal(vio_blk_in_flight(&t->blk), 1);
	teardown(t); /* fini must not call back into the abandoned request */
}

static void test_sync_call_times_out_when_queue_stays_full(void **state)
{
	(void)state;
	struct t *t = setup_timeout(1000000);
	static uint8_t buf[512];
	struct vio_sg sg = {buf, 512};
	struct vio_blk_req req[QSIZE];
	struct done d[QSIZE] = {{0}};

	t->m.silent = true;
	for (int i = 0; i < QSIZE; i++) {
		req[i] = read_req(0, &sg, &d[i]);
		assert_int_equal(vio_blk_submit(&t->blk, &req[i]), 0);
	}
	assert_int_equal(vio_blk_flush(&t->blk), VIO_ETIMEDOUT);
	/* Nothing of the flush was posted, so the device is still usable. */
	t->m.silent = false;
	assert_int_equal(vio_blk_flush(&t->blk), 0);
	for (int i = 0; i < QSIZE; i++)
		assert_int_equal(d[i].calls, 1);
	teardown(t);
}

static void test_fini_fails_requests_in_flight_and_leaks_nothing(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t buf[256 * 1024];
	struct vio_sg sg = {buf, sizeof(buf)};
	struct done d[3] = {{0}};
	struct vio_blk_req big = {.op = VIO_BLK_OP_READ,
				  .sg = &sg,
				  .nsg = 1,
				  .queue = 0,
				  .on_done = on_done,
				  .arg = &d[0]};
	struct vio_blk_req small = {.op = VIO_BLK_OP_READ,
				    .sg = &sg,
				    .nsg = 1,
				    .queue = 0,
				    .on_done = on_done,
				    .arg = &d[1]};
	struct vio_blk_req flush = {
	    .op = VIO_BLK_OP_FLUSH, .queue = 0, .on_done = on_done, .arg = &d[2]};

	sg.len = 512;
	t->m.hold = true;
	assert_int_equal(vio_blk_submit(&t->blk, &small), 0);
	assert_int_equal(vio_blk_submit(&t->blk, &flush), 0);
	fake_env_run(t->e); /* popped, never answered */
	struct vio_sg bigsg = {buf, sizeof(buf)};
	big.sg = &bigsg;
	assert_int_equal(vio_blk_submit(&t->blk, &big), 0);
	vio_blk_fini(&t->blk);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].status, VIO_EIO);
	}
	vio_blk_fini(&t->blk); /* twice is fine */
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, 512), VIO_EIO);
	teardown(t);
}

static void test_unconfirmed_reset_keeps_the_slots_and_fails_requests_with_edead(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t buf[256 * 1024];
	struct vio_sg small_sg = {buf, 512}, big_sg = {buf, sizeof(buf)};
	struct done d[3] = {{0}};
	struct vio_blk_req small = {.op = VIO_BLK_OP_READ,
				    .sg = &small_sg,
				    .nsg = 1,
				    .queue = 0,
				    .on_done = on_done,
				    .arg = &d[0]};
	struct vio_blk_req flush = {
	    .op = VIO_BLK_OP_FLUSH, .queue = 0, .on_done = on_done, .arg = &d[1]};
	struct vio_blk_req big = {.op = VIO_BLK_OP_WRITE,
				  .sg = &big_sg,
				  .nsg = 1,
				  .queue = 0,
				  .on_done = on_done,
				  .arg = &d[2]};

	t->m.hold = true;
	assert_int_equal(vio_blk_submit(&t->blk, &small), 0);
	assert_int_equal(vio_blk_submit(&t->blk, &flush), 0);
	fake_env_run(t->e); /* taken by the device, never answered */
	assert_int_equal(vio_blk_submit(&t->blk, &big), 0); /* 8 parts, never seen */
	const void *slots = t->blk.blk_q[0].q_slot_pages[0];

	/* The device ignores the reset: it may go on writing whatever it was given. */
	t->e->vd.reset_stuck = true;
	t->m.silent = true;
	assert_int_equal(vio_blk_fini(&t->blk), VIO_EDEAD);
	assert_true(t->e->vd.status & VIRTIO_CONFIG_S_FAILED);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].status, VIO_EDEAD);
	}
	assert_true(fake_port_is_dma(&t->e->fp, slots, 1)); /* kept, not freed */
	assert_true(fake_port_logged(&t->e->fp, "reset not confirmed"));
	assert_int_equal(vio_blk_read(&t->blk, 0, buf, 512), VIO_EDEAD);
	assert_int_equal(vio_blk_poll(&t->blk), VIO_EDEAD);
	assert_int_equal(vio_blk_fini(&t->blk), 0); /* twice is still fine */

	t->e->vd.reset_stuck = false;
	fake_env_reclaim_leaks(t->e);
	teardown(t);
}

static void test_no_dma_leak_after_fini_with_mq_and_polling(void **state)
{
	(void)state;
	struct virtio_blk_config cfg = default_config();
	cfg.num_queues = 2;
	struct t *t = setup_full(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_MQ), &cfg, 2, false, 0);
	uint8_t buf[512];

	assert_int_equal(vio_blk_write(&t->blk, 1, buf, sizeof(buf)), 0);
	vio_blk_fini(&t->blk);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	teardown(t);
}

/* --- randomized model test ----------------------------------------------------------------- */

#define RAND_OPS	 20000
#define RAND_MAX_SECTORS 160

struct rslot {
	struct vio_blk_req req;
	struct vio_sg sg[4];
	uint8_t *buf;
	bool busy;
	struct t *t;
	uint8_t *shadow;
	unsigned *completed;
};

static void rand_done(struct vio_blk_req *req, int status, void *arg)
{
	struct rslot *s = arg;
	size_t off = req->sector * 512;

	assert_int_equal(status, 0);
	assert_true(s->busy);
	if (req->op == VIO_BLK_OP_READ) {
		size_t at = 0;
		for (unsigned i = 0; i < req->nsg; i++) {
			assert_memory_equal(req->sg[i].addr, s->shadow + off + at, req->sg[i].len);
			at += req->sg[i].len;
		}
	} else if (req->op == VIO_BLK_OP_WRITE) {
		size_t at = 0;
		for (unsigned i = 0; i < req->nsg; i++) {
			memcpy(s->shadow + off + at, req->sg[i].addr, req->sg[i].len);
			at += req->sg[i].len;
		}
	} else if (req->op != VIO_BLK_OP_FLUSH) {
		memset(s->shadow + off, 0, req->nsectors * 512);
	}
	s->busy = false;
	(*s->completed)++;
}

static bool overlaps_busy(const struct rslot *slots, unsigned n, uint64_t sector, uint64_t count)
{
	for (unsigned i = 0; i < n; i++) {
		const struct vio_blk_req *r = &slots[i].req;
		if (!slots[i].busy || r->op == VIO_BLK_OP_FLUSH)
			continue;
		uint64_t rs = r->sector;
		uint64_t rn = r->op <= VIO_BLK_OP_WRITE ? 0 : r->nsectors;
		for (unsigned k = 0; r->op <= VIO_BLK_OP_WRITE && k < r->nsg; k++)
			rn += r->sg[k].len / 512;
		if (sector < rs + rn && rs < sector + count)
			return true;
	}
	return false;
}

/* Fill slot s with a random request; false when it would overlap one in flight. */
static bool random_request(struct rslot *slots, unsigned n, struct rslot *s, uint32_t *rng)
{
	uint32_t kind = rnd(rng) % 100;
	/* Mostly small, sometimes large enough to be split. */
	uint64_t count = 1 + rnd(rng) % (rnd(rng) % 4 ? 16 : RAND_MAX_SECTORS);
	uint64_t sector = rnd(rng) % (DISK_SECTORS - count + 1);

	s->req = (struct vio_blk_req){
	    .sector = sector, .queue = VIO_BLK_ANY_QUEUE, .on_done = rand_done, .arg = s};
	if (kind < 2) {
		s->req.op = VIO_BLK_OP_FLUSH;
		return true;
	}
	if (overlaps_busy(slots, n, sector, count))
		return false;
	if (kind < 5) {
		s->req.op = kind < 4 ? VIO_BLK_OP_DISCARD : VIO_BLK_OP_WRITE_ZEROES;
		s->req.nsectors = count;
		return true;
	}
	s->req.op = kind < 50 ? VIO_BLK_OP_READ : VIO_BLK_OP_WRITE;
	unsigned nsg = 1 + rnd(rng) % 4;
	if (nsg > count)
		nsg = (unsigned)count;
	uint64_t left = count, at = 0;
	for (unsigned i = 0; i < nsg; i++) {
		uint64_t take = i + 1 == nsg ? left : 1 + rnd(rng) % (left - (nsg - i - 1));
		s->sg[i] = (struct vio_sg){s->buf + at * 512, (uint32_t)(take * 512)};
		left -= take;
		at += take;
	}
	s->req.sg = s->sg;
	s->req.nsg = nsg;
	if (s->req.op == VIO_BLK_OP_WRITE)
		for (uint64_t i = 0; i < count * 512; i++)
			s->buf[i] = (uint8_t)rnd(rng);
	return true;
}

static void run_random(bool irqs, unsigned nq)
{
	struct virtio_blk_config cfg = default_config();
	cfg.max_discard_sectors = 64;
	cfg.max_write_zeroes_sectors = 48;
	cfg.num_queues = (uint16_t)nq;
	struct t *t =
	    setup_full(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
			   VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | VIRTIO_BIT(VIRTIO_BLK_F_MQ) |
			   VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX),
		       &cfg, (int)nq, irqs, 0);
	unsigned nslots = 2 * QSIZE * nq, completed = 0, submitted = 0, max_in_flight = 0;
	struct rslot *slots = calloc(nslots, sizeof(*slots));
	uint8_t *shadow = calloc(DISK_SECTORS, 512);
	uint32_t rng = 0xC0FFEE ^ (irqs ? 1u : 0u);

	assert_non_null(slots);
	assert_non_null(shadow);
	for (unsigned i = 0; i < nslots; i++) {
		slots[i].buf = malloc(RAND_MAX_SECTORS * 512);
		assert_non_null(slots[i].buf);
		slots[i].t = t;
		slots[i].shadow = shadow;
		slots[i].completed = &completed;
	}
	t->m.hold = true;
	t->m.shuffle = true;
	while (submitted < RAND_OPS) {
		unsigned i = rnd(&rng) % nslots;
		struct rslot *s = &slots[i];
		if (!s->busy && random_request(slots, nslots, s, &rng)) {
			s->busy = true;
			int err = vio_blk_submit(&t->blk, &s->req);
			if (err == 0) {
				submitted++;
				if (vio_blk_in_flight(&t->blk) > max_in_flight)
					max_in_flight = vio_blk_in_flight(&t->blk);
			} else {
				assert_int_equal(err, VIO_ENOSPC);
				s->busy = false;
			}
		}
		if (rnd(&rng) % 32 == 0) {
			fake_env_run(t->e);
			model_complete(t->e, rnd(&rng) % (t->m.npend / 3 + 2));
			if (!irqs)
				assert_true(vio_blk_poll(&t->blk) >= 0);
		}
	}
	t->m.hold = false;
	while (completed < submitted) {
		fake_env_run(t->e);
		assert_true(vio_blk_poll(&t->blk) >= 0);
	}
	assert_memory_equal(t->m.disk, shadow, DISK_SECTORS * 512);
	assert_int_equal(vio_blk_in_flight(&t->blk), 0);
	assert_true(t->blk.stats.splits > 0);
	assert_int_equal(max_in_flight, QSIZE * nq); /* every ring was full at some point */
	assert_true(t->blk.stats.full > 0);
	assert_int_equal(t->blk.stats.errors, 0);
	for (unsigned i = 0; i < nslots; i++)
		free(slots[i].buf);
	free(slots);
	free(shadow);
	teardown(t);
}

static void test_randomized_20000_ops_match_shadow_copy_with_interrupts(void **state)
{
	(void)state;
	run_random(true, 1);
}

static void test_randomized_20000_ops_match_shadow_copy_polling_two_queues(void **state)
{
	(void)state;
	run_random(false, 2);
}

/* --- logical blocks and panic writes ------------------------------------------------------ */

static struct t *setup_4k(void)
{
	struct virtio_blk_config cfg = default_config();
	cfg.blk_size = 4096;
	return setup(BASE_FEATURES | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE), &cfg);
}

static void test_io_not_whole_logical_blocks_is_refused_with_ealign(void **state)
{
	(void)state;
	struct t *t = setup_4k();
	static uint8_t buf[8192];

	assert_int_equal(t->blk.info.blk_size, 4096);
	assert_int_equal(t->blk.info.size_max, 4096);
	assert_int_equal(vio_blk_read(&t->blk, 1, buf, 4096), VIO_EALIGN);
	assert_int_equal(vio_blk_read(&t->blk, 8, buf, 512), VIO_EALIGN);
	assert_int_equal(vio_blk_write(&t->blk, 4, buf, 4096), VIO_EALIGN);
	assert_int_equal(t->m.requests, 0); /* nothing reached the device */
	fill(buf, sizeof(buf), 9);
	assert_int_equal(vio_blk_write(&t->blk, 16, buf, 8192), 0);
	assert_memory_equal(t->m.disk + 16 * 512, buf, 8192);
	assert_int_equal(vio_blk_read(&t->blk, 16, buf, 8192), 0);
	teardown(t);
}

/* Fill queue 0 with held reads; returns how many went in. */
static int fill_queue_with_held_reads(struct t *t, struct vio_blk_req *req, struct vio_sg *sg,
				      struct done *d, uint8_t (*bufs)[512], int max)
{
	int n = 0;

	t->m.hold = true;
	for (; n < max; n++) {
		sg[n] = (struct vio_sg){bufs[n], 512};
		d[n] = (struct done){0};
		req[n] = (struct vio_blk_req){.op = VIO_BLK_OP_READ,
					      .sector = (uint64_t)n,
					      .sg = &sg[n],
					      .nsg = 1,
					      .queue = 0,
					      .on_done = on_done,
					      .arg = &d[n]};
		int err = vio_blk_submit(&t->blk, &req[n]);
		if (err == VIO_ENOSPC)
			break;
		assert_int_equal(err, 0);
	}
	fake_env_run(t->e);
	return n;
}

static void test_panic_reserve_keeps_descriptors_free_on_a_full_queue(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t bufs[QSIZE][512];
	struct vio_sg sg[QSIZE];
	struct vio_blk_req req[QSIZE];
	struct done d[QSIZE];
	void *buf = NULL;

	assert_int_equal(vio_blk_panic_reserve(&t->blk, 8192, &buf), 4096); /* size_max */
	assert_non_null(buf);
	assert_int_equal(vio_blk_panic_reserve(&t->blk, 8192, &buf), VIO_EINVAL);
	int n = fill_queue_with_held_reads(t, req, sg, d, bufs, QSIZE);
	assert_true(n > QSIZE / 2 && n < QSIZE);
	assert_true(vio_vq_num_free(&t->blk.blk_vqs[0]) >= VIO_BLK_PANIC_DESCS);
	model_complete(t->e, QSIZE);
	vio_blk_poll(&t->blk);
	for (int i = 0; i < n; i++)
		assert_int_equal(d[i].calls, 1);
	teardown(t);
	/* the reservation went with fini: nothing leaked (fake_env_free checks) */
}

static void test_panic_write_abandons_requests_in_flight_and_lands_on_disk(void **state)
{
	(void)state;
	struct t *t = setup_default();
	static uint8_t bufs[QSIZE][512];
	struct vio_sg sg[QSIZE];
	struct vio_blk_req req[QSIZE];
	struct done d[QSIZE];
	uint8_t *buf = NULL;

	assert_int_equal(vio_blk_panic_reserve(&t->blk, 4096, (void **)&buf), 4096);
	int n = fill_queue_with_held_reads(t, req, sg, d, bufs, QSIZE);
	assert_int_equal(t->m.npend, (unsigned)n); /* the device holds every one */
	fill(buf, 4096, 3);
	t->m.hold = false; /* the device answers again: the old reads first, then ours */
	assert_int_equal(vio_blk_panic_write(&t->blk, 200, 4096), 0);
	assert_memory_equal(t->m.disk + 200 * 512, buf, 4096);
	for (int i = 0; i < n; i++)
		assert_int_equal(d[i].calls, 0); /* abandoned: nobody hears */
	fill(buf, 1024, 4);
	assert_int_equal(vio_blk_panic_write(&t->blk, 300, 1024), 0); /* and again */
	assert_memory_equal(t->m.disk + 300 * 512, buf, 1024);
	assert_int_equal(vio_blk_read(&t->blk, 0, bufs[0], 512), VIO_EIO);
	unsigned flushes = t->m.by_type[VIRTIO_BLK_T_FLUSH];
	assert_int_equal(vio_blk_panic_flush(&t->blk), 0);
	assert_int_equal(t->m.by_type[VIRTIO_BLK_T_FLUSH], flushes + 1);
	vio_blk_fini(&t->blk);
	for (int i = 0; i < n; i++)
		assert_int_equal(d[i].calls, 0);
	teardown(t);
}

static void test_panic_write_checks_its_range_and_alignment(void **state)
{
	(void)state;
	struct t *t = setup_4k();
	void *buf = NULL;

	assert_int_equal(vio_blk_panic_write(&t->blk, 0, 4096), VIO_EINVAL); /* no reservation */
	assert_int_equal(vio_blk_panic_reserve(&t->blk, 100, &buf), VIO_EINVAL);
	assert_int_equal(vio_blk_panic_reserve(&t->blk, 65536, &buf), 4096);
	assert_int_equal(vio_blk_panic_write(&t->blk, 8, 512), VIO_EALIGN);
	assert_int_equal(vio_blk_panic_write(&t->blk, 4, 4096), VIO_EALIGN);
	assert_int_equal(vio_blk_panic_write(&t->blk, 0, 8192), VIO_EINVAL);
	assert_int_equal(vio_blk_panic_write(&t->blk, DISK_SECTORS, 4096), VIO_EINVAL);
	assert_int_equal(t->m.requests, 0);
	assert_int_equal(vio_blk_panic_write(&t->blk, DISK_SECTORS - 8, 4096), 0);
	teardown(t);
}

static void test_panic_write_to_a_silent_device_times_out_once(void **state)
{
	(void)state;
	struct t *t = setup_timeout(1000000);
	void *buf = NULL;

	assert_int_equal(vio_blk_panic_reserve(&t->blk, 4096, &buf), 4096);
	t->m.silent = true;
	assert_int_equal(vio_blk_panic_write(&t->blk, 0, 4096), VIO_ETIMEDOUT);
	uint64_t adds = t->blk.blk_vqs[0].stats.adds;
	assert_int_equal(vio_blk_panic_write(&t->blk, 0, 4096), VIO_ETIMEDOUT);
	assert_int_equal(t->blk.blk_vqs[0].stats.adds, adds); /* the slot is still the device's */
	teardown(t);
}

static void test_panic_write_error_status_is_eio(void **state)
{
	(void)state;
	struct t *t = setup_default();
	void *buf = NULL;

	assert_int_equal(vio_blk_panic_reserve(&t->blk, 4096, &buf), 4096);
	t->m.ioerr_sector = 10;
	assert_int_equal(vio_blk_panic_write(&t->blk, 8, 4096), VIO_EIO);
	assert_int_equal(vio_blk_panic_write(&t->blk, 16, 4096), 0);
	teardown(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_reads_capacity_limits_geometry_topology_and_queues),
	    cmocka_unit_test(test_absurd_config_values_are_sanitised_and_logged),
	    cmocka_unit_test(test_blk_size_not_offered_is_512_and_no_limits_means_one_segment),
	    cmocka_unit_test(test_capacity_zero_is_an_empty_disk),
	    cmocka_unit_test(test_init_refuses_a_device_that_is_not_a_disk),
	    cmocka_unit_test(test_init_failure_leaves_nothing_allocated),
	    cmocka_unit_test(test_mq_uses_at_most_max_queues_round_robin_or_by_hint),
	    cmocka_unit_test(test_sync_write_then_read_round_trip),
	    cmocka_unit_test(test_sync_io_works_by_polling_without_interrupts),
	    cmocka_unit_test(test_async_completes_by_interrupt_without_poll),
	    cmocka_unit_test(test_async_polling_mode_completes_only_on_poll),
	    cmocka_unit_test(test_async_full_queue_depth_in_flight_completes_out_of_order),
	    cmocka_unit_test(test_blk_with_4_tables_and_depth_32_completes_1000_requests),
	    cmocka_unit_test(test_blk_default_pool_is_small_and_page_sized),
	    cmocka_unit_test(test_plugged_submits_notify_the_device_once_at_unplug),
	    cmocka_unit_test(test_submit_returns_enospc_when_full_then_recovers),
	    cmocka_unit_test(
		test_request_larger_than_seg_max_times_size_max_is_split_and_completes_once),
	    cmocka_unit_test(test_request_longer_than_the_ring_trickles_in_as_parts_complete),
	    cmocka_unit_test(test_ioerr_fails_only_that_request),
	    cmocka_unit_test(test_ioerr_in_one_part_fails_the_split_request_once),
	    cmocka_unit_test(test_unsupp_status_maps_to_enotsup),
	    cmocka_unit_test(test_bad_status_byte_is_eio),
	    cmocka_unit_test(test_used_len_beyond_posted_or_short_read_is_eio),
	    cmocka_unit_test(test_completion_for_request_not_in_flight_breaks_device),
	    cmocka_unit_test(test_read_only_device_refuses_writes_without_touching_device),
	    cmocka_unit_test(test_requests_beyond_capacity_or_not_whole_sectors_are_einval),
	    cmocka_unit_test(test_flush_reaches_device_when_negotiated),
	    cmocka_unit_test(test_flush_without_feature_is_immediate_success),
	    cmocka_unit_test(test_discard_sends_split_segments_and_zeroes_data),
	    cmocka_unit_test(test_write_zeroes_carries_unmap_flag_and_zeroes_data),
	    cmocka_unit_test(test_discard_and_write_zeroes_without_feature_are_enotsup),
	    cmocka_unit_test(test_get_id_returns_serial),
	    cmocka_unit_test(test_writeback_can_be_toggled_with_config_wce),
	    cmocka_unit_test(test_config_change_interrupt_updates_capacity),
	    cmocka_unit_test(test_config_change_storm_is_logged_once_a_second_with_a_count),
	    cmocka_unit_test(test_poll_takes_at_most_a_ring_of_completions_from_an_eager_device),
	    cmocka_unit_test(test_one_interrupt_takes_at_most_a_ring_of_completions),
	    cmocka_unit_test(test_device_rewriting_the_header_cannot_pass_off_a_short_read),
	    cmocka_unit_test(test_get_id_short_answer_is_eio),
	    cmocka_unit_test(test_second_get_id_never_returns_the_previous_serial),
	    cmocka_unit_test(test_device_rewriting_a_slot_while_it_is_posted_misleads_nothing),
	    cmocka_unit_test(test_blk_bookkeeping_lives_in_private_memory),
	    cmocka_unit_test(test_device_rewriting_dma_cannot_forge_a_completion),
	    cmocka_unit_test(test_sync_call_lets_the_owner_take_interrupts_while_it_waits),
	    cmocka_unit_test(test_sync_timeout_and_full_queue_waits_call_the_owner_too),
	    cmocka_unit_test(test_timeout_notices_a_device_that_needs_a_reset),
	    cmocka_unit_test(test_broken_queue_notices_a_device_that_needs_a_reset),
	    cmocka_unit_test(test_poll_notices_a_device_that_needs_a_reset),
	    cmocka_unit_test(test_device_that_never_answers_times_out_then_fini_cleans_up),
	    cmocka_unit_test(test_sync_call_times_out_when_queue_stays_full),
	    cmocka_unit_test(test_fini_fails_requests_in_flight_and_leaks_nothing),
	    cmocka_unit_test(test_unconfirmed_reset_keeps_the_slots_and_fails_requests_with_edead),
	    cmocka_unit_test(test_no_dma_leak_after_fini_with_mq_and_polling),
	    cmocka_unit_test(test_randomized_20000_ops_match_shadow_copy_with_interrupts),
	    cmocka_unit_test(test_randomized_20000_ops_match_shadow_copy_polling_two_queues),
	    cmocka_unit_test(test_io_not_whole_logical_blocks_is_refused_with_ealign),
	    cmocka_unit_test(test_panic_reserve_keeps_descriptors_free_on_a_full_queue),
	    cmocka_unit_test(test_panic_write_abandons_requests_in_flight_and_lands_on_disk),
	    cmocka_unit_test(test_panic_write_checks_its_range_and_alignment),
	    cmocka_unit_test(test_panic_write_to_a_silent_device_times_out_once),
	    cmocka_unit_test(test_panic_write_error_status_is_eio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
