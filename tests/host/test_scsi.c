/*
 * Unit tests for the virtio-scsi driver and its SCSI layer (src/drivers/virtio_scsi.c)
 * against a whole fake device (fake_env.h) with a tiny SCSI target model behind it:
 *
 *   0:0  a disk of DISK_BLOCKS blocks of 512 bytes (memory), writable
 *   2:0  a CD of CD_BLOCKS blocks of 2048 bytes, read-only
 *   target 1 and 3 have nothing: BAD_TARGET.
 *
 * Each test can make the device lie or fail in one way, and checks the driver reports it
 * with the named error and writes nothing outside the buffers it was given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/err.h>
#include <vio/scsi.h>

#include "fake_env.h"

#define DISK_BLOCKS 2048u
#define CD_BLOCKS   100u
#define CDB_SIZE    32u
#define PAGE_SIZE   4096u
#define SENSE_SIZE  96u
#define REQ_LEN	    (19u + CDB_SIZE)
#define RESP_LEN    (12u + SENSE_SIZE)

enum lie {
	HONEST,
	SENSE_TOO_LONG, /* the next answer: sense_len above sense_size */
	RESID_TOO_BIG,	/* ... residual above the transfer length */
	USED_TOO_LONG,	/* ... used length above the buffers posted */
	USED_COUNTS_OUT, /* ... used length counting the data-out bytes too, as QEMU's does */
	USED_PAST_OUT,	/* ... used length above everything posted, both ways */
	MEDIUM,		/* ... CHECK CONDITION, MEDIUM ERROR 11/00 (fixed format) */
	NOT_READY_DESC, /* ... CHECK CONDITION, NOT READY 04/01 (descriptor format) */
	UNIT_ATTN,	/* ... UNIT ATTENTION 29/00, once: the layer retries */
	SILENT,		/* keep the next command until ABORT TASK */
	SILENT_ALWAYS,	/* keep it even then: the abort is answered, the command never */
	SUSPENDED,	/* keep the next command and answer no TMF until resume_in model runs
			   pass (QEMU's blkdebug breakpoint, then "resume"); then HONEST */
};

struct target {
	enum lie lie;
	uint8_t disk[DISK_BLOCKS * 512];
	bool holding;
	struct fake_req held;
	unsigned resume_in; /* SUSPENDED: model runs left before it lets go (0: never) */
	unsigned commands, tmfs;
	uint32_t last_tmf;
	bool thin;	    /* disk 0 takes UNMAP (VPD B2 LBPU) ... */
	uint32_t unmap_max; /* ... at most this many blocks per descriptor (VPD B0) */
	unsigned unmaps;    /* UNMAP commands seen */
	uint8_t t[REQ_LEN + VIO_SCSI_MAX_XFER], r[RESP_LEN + VIO_SCSI_MAX_XFER];
};

static void be(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t rbe(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void sense_fixed(uint8_t *r, uint8_t key, uint8_t asc, uint8_t ascq)
{
	uint8_t *sb = r + 12;
	sb[0] = 0x70;
	sb[2] = key;
	sb[7] = 10;
	sb[12] = asc;
	sb[13] = ascq;
	le(r, 18, 4);
	r[10] = SCSI_STATUS_CHECK_CONDITION;
}

/* Run one command (t: header, CDB, data-out) into r (response, then data-in): the bytes of
 * data-in produced, or 0. `inlen` is the data-in room the driver posted. */
static uint32_t execute(struct target *tg, uint32_t inlen, uint32_t outlen)
{
	uint8_t *r = tg->r, *cdb = tg->t + 19, *dout = tg->t + REQ_LEN, *din = r + RESP_LEN;
	uint16_t target = tg->t[1], lun = (uint16_t)(((tg->t[2] & 0x3f) << 8) | tg->t[3]);
	uint32_t n = 0;

	memset(r, 0, RESP_LEN);
	if (target == 1 || target == 3) {
		r[11] = VIRTIO_SCSI_S_BAD_TARGET;
		return 0;
	}
	bool cd = target == 2;
	uint32_t bs = cd ? 2048 : 512, blocks = cd ? CD_BLOCKS : DISK_BLOCKS;
	if (cdb[0] != SCSI_INQUIRY && cdb[0] != SCSI_REPORT_LUNS && lun != 0) {
		r[11] = VIRTIO_SCSI_S_INCORRECT_LUN;
		return 0;
	}
	switch (cdb[0]) {
	case SCSI_INQUIRY:
		if (cdb[1] & 1) { /* EVPD: only a thin disk has the provisioning pages */
			memset(din, 0, 64);
			if (!tg->thin || cd || (cdb[2] != SCSI_VPD_PROVISIONING &&
						cdb[2] != SCSI_VPD_BLOCK_LIMITS)) {
				sense_fixed(r, SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0);
				break;
			}
			din[1] = cdb[2];
			if (cdb[2] == SCSI_VPD_PROVISIONING) {
				n = 8;
				din[5] = 0x80; /* LBPU */
			} else {
				n = 64;
				be(din + 20, tg->unmap_max, 4);
			}
			be(din + 2, n - 4, 2);
			break;
		}
		n = 36;
		memset(din, 0, n);
		din[0] = lun ? 0x7f : cd ? SCSI_TYPE_CDROM : SCSI_TYPE_DISK;
		din[1] = cd ? 0x80 : 0;
		memcpy(din + 8, "QEMU    ", 8);
		memcpy(din + 16, cd ? "QEMU CD-ROM     " : "QEMU HARDDISK   ", 16);
		break;
	case SCSI_REPORT_LUNS:
		n = 16;
		memset(din, 0, n);
		be(din, 8, 4); /* one LUN: 0 */
		break;
	case SCSI_TEST_UNIT_READY:
	case SCSI_SYNCHRONIZE_CACHE_10: break;
	case SCSI_READ_CAPACITY_10:
		n = 8;
		be(din, blocks - 1, 4);
		be(din + 4, bs, 4);
		break;
	case SCSI_MODE_SENSE_6:
		n = 4;
		memset(din, 0, n);
		din[0] = 3;
		break;
	case SCSI_READ_10:
	case SCSI_WRITE_10:
	case SCSI_READ_16:
	case SCSI_WRITE_16: {
		bool ten = cdb[0] == SCSI_READ_10 || cdb[0] == SCSI_WRITE_10;
		uint64_t lba = ten ? rbe(cdb + 2, 4) : rbe(cdb + 2, 8);
		uint32_t cnt = (uint32_t)(ten ? rbe(cdb + 7, 2) : rbe(cdb + 10, 4));
		bool write = cdb[0] == SCSI_WRITE_10 || cdb[0] == SCSI_WRITE_16;
		if (lba + cnt > blocks) {
			sense_fixed(r, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0);
			break;
		}
		if (write && cd) {
			sense_fixed(r, SCSI_SENSE_DATA_PROTECT, 0x27, 0);
			break;
		}
		uint32_t bytes = cnt * bs;
		if (write) {
			assert_int_equal(outlen, bytes);
			memcpy(tg->disk + lba * bs, dout, bytes);
		} else if (cd) {
			for (uint32_t i = 0; i < bytes; i++)
				din[i] = (uint8_t)(lba * bs + i);
			n = bytes;
		} else {
			memcpy(din, tg->disk + lba * bs, bytes);
			n = bytes;
		}
		break;
	}
	case SCSI_UNMAP: {
		if (!tg->thin || cd) {
			sense_fixed(r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
			break;
		}
		/* One descriptor, as vio sends them: its LBA and count, within the unmap limit. */
		assert_int_equal(outlen, 24);
		assert_int_equal(rbe(dout, 2), 22);
		assert_int_equal(rbe(dout + 2, 2), 16);
		uint64_t lba = rbe(dout + 8, 8);
		uint32_t cnt = (uint32_t)rbe(dout + 16, 4);
		assert_true(cnt <= tg->unmap_max && lba + cnt <= blocks);
		memset(tg->disk + lba * bs, 0, (size_t)cnt * bs);
		tg->unmaps++;
		break;
	}
	default: sense_fixed(r, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0);
	}
	if (n > inlen)
		n = inlen;
	le(r + 4, inlen - n, 4); /* residual */
	return n;
}

/* Scatter r over the writable segments; the bytes written. */
static uint32_t scatter(struct fake_req *q, const uint8_t *src, uint32_t len)
{
	uint32_t done = 0;
	for (unsigned i = 0; i < q->n_out + q->n_in && done < len; i++) {
		const struct fake_seg *g = &q->seg[i];
		if (!g->write)
			continue;
		uint32_t n = len - done < g->len ? len - done : g->len;
		memcpy((void *)(uintptr_t)g->addr, src + done, n);
		done += n;
	}
	return done;
}

/* Answer the command in req: honestly, or with the lie of the moment. */
static void answer(struct fake_env *e, struct target *tg, struct fake_req *q, bool aborted)
{
	uint32_t outlen = fake_vring_gather(q, tg->t, sizeof(tg->t));
	assert_true(outlen >= REQ_LEN);
	uint32_t inlen = q->in_len - RESP_LEN;
	enum lie lie = tg->lie;
	if (lie != SILENT_ALWAYS)
		tg->lie = HONEST;
	uint32_t n = 0;
	if (aborted) {
		memset(tg->r, 0, RESP_LEN);
		tg->r[11] = VIRTIO_SCSI_S_ABORTED;
	} else {
		n = execute(tg, inlen, outlen - REQ_LEN);
	}
	switch (lie) {
	case SENSE_TOO_LONG: le(tg->r, SENSE_SIZE + 1, 4); break;
	case RESID_TOO_BIG: le(tg->r + 4, inlen + 1, 4); break;
	case MEDIUM: sense_fixed(tg->r, SCSI_SENSE_MEDIUM_ERROR, 0x11, 0); break;
	case UNIT_ATTN: sense_fixed(tg->r, SCSI_SENSE_UNIT_ATTENTION, 0x29, 0); break;
	case NOT_READY_DESC:
		memset(tg->r + 12, 0, 8);
		tg->r[12] = 0x72;
		tg->r[13] = SCSI_SENSE_NOT_READY;
		tg->r[14] = 0x04;
		tg->r[15] = 0x01;
		le(tg->r, 8, 4);
		tg->r[10] = SCSI_STATUS_CHECK_CONDITION;
		break;
	default: break;
	}
	uint32_t len = scatter(q, tg->r, RESP_LEN + n);
	if (lie == USED_TOO_LONG)
		len = q->in_len + 1;
	if (lie == USED_COUNTS_OUT)
		len += outlen;
	if (lie == USED_PAST_OUT)
		len = q->in_len + outlen + 1;
	fake_vring_complete(&e->ring[2], q->head, len);
}

static void model(struct fake_env *e)
{
	struct target *tg = e->model_arg;
	struct fake_req q;

	if (e->nrings == 0) {
		if (!e->dev.vqs || e->dev.nvqs < 3 || !e->dev.vqs[2].size)
			return;
		fake_env_rings(e);
	}
	if (tg->lie == SUSPENDED && tg->resume_in && --tg->resume_in == 0)
		tg->lie = HONEST;
	/* Task management: ABORT TASK lets a held command go, answered ABORTED. A suspended
	 * target answers none. */
	while (tg->lie != SUSPENDED && fake_vring_pop(&e->ring[0], &q)) {
		uint8_t c[24];
		fake_vring_gather(&q, c, sizeof(c));
		tg->tmfs++;
		tg->last_tmf = c[4];
		uint8_t resp = VIRTIO_SCSI_S_FUNCTION_COMPLETE;
		scatter(&q, &resp, 1);
		fake_vring_complete(&e->ring[0], q.head, 1);
		if (tg->holding && tg->lie != SILENT_ALWAYS) {
			tg->holding = false;
			answer(e, tg, &tg->held, true);
		}
	}
	while (!tg->holding && fake_vring_pop(&e->ring[2], &q)) {
		tg->commands++;
		if (tg->lie == SILENT || tg->lie == SILENT_ALWAYS || tg->lie == SUSPENDED) {
			tg->held = q;
			tg->holding = true;
			break;
		}
		answer(e, tg, &q, false);
	}
}

struct fixture {
	struct fake_env *e;
	struct target tg;
	struct vio_scsi s;
	unsigned events_seen;
	struct vio_scsi_event last;
};

static void on_event(struct vio_scsi *s, const struct vio_scsi_event *ev, void *arg)
{
	struct fixture *f = arg;
	(void)s;
	f->events_seen++;
	f->last = *ev;
}

static struct fake_env *scsi_env(void)
{
	struct virtio_scsi_config cfg = {
		.num_queues = 1, .seg_max = 126, .max_sectors = 0xffff, .cmd_per_lun = 128,
		.event_info_size = 16, .sense_size = SENSE_SIZE, .cdb_size = CDB_SIZE,
		.max_target = 3, .max_lun = 7};
	return fake_env_new(VIRTIO_ID_SCSI,
			    1ull << VIRTIO_SCSI_F_HOTPLUG | 1ull << VIRTIO_SCSI_F_CHANGE, &cfg,
			    sizeof(cfg), 3, 64);
}

static struct fixture *setup(uint64_t timeout_ns)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->e = scsi_env();
	for (uint32_t i = 0; i < sizeof(f->tg.disk); i++)
		f->tg.disk[i] = (uint8_t)(i * 7);
	f->e->model = model;
	f->e->model_arg = &f->tg;
	struct vio_scsi_opts o = {.timeout_ns = timeout_ns, .on_event = on_event, .arg = f};
	assert_int_equal(vio_scsi_init(&f->s, &f->e->dev, &o), 0);
	if (f->e->nrings == 0)
		fake_env_rings(f->e);
	return f;
}

static void teardown(struct fixture *f)
{
	assert_int_equal(vio_scsi_fini(&f->s), 0);
	f->e->model = NULL;
	fake_env_free(f->e);
	free(f);
}

static struct fixture *scanned(void)
{
	struct fixture *f = setup(0);
	assert_int_equal(vio_scsi_scan(&f->s), 2);
	return f;
}

static void test_init_reads_the_config(void **state)
{
	(void)state;
	struct fixture *f = setup(0);
	assert_int_equal(f->s.num_queues, 1);
	assert_int_equal(f->s.cdb_size, CDB_SIZE);
	assert_int_equal(f->s.sense_size, SENSE_SIZE);
	assert_int_equal(f->s.max_target, 3);
	assert_int_equal(f->s.max_lun, 7);
	assert_int_equal(f->s.seg_max, 126);
	teardown(f);
}

static void test_every_dma_allocation_is_one_page_at_most(void **state)
{
	(void)state;
	struct fake_env *e = scsi_env();
	struct vio_scsi s;
	e->fp.dma_limit = PAGE_SIZE;
	assert_int_equal(vio_scsi_init(&s, &e->dev, NULL), 0);
	assert_int_equal(e->fp.dma_refused, 0);
	assert_true(e->fp.dma_largest <= PAGE_SIZE);
	assert_int_equal(vio_scsi_fini(&s), 0);
	fake_env_free(e);
}

static void test_an_init_that_runs_out_of_dma_memory_leaves_nothing_behind(void **state)
{
	(void)state;
	for (int n = 0; n < 40; n++) {
		struct fake_env *e = scsi_env();
		struct vio_scsi s;
		e->fp.dma_fail_after = n;
		int err = vio_scsi_init(&s, &e->dev, NULL);
		if (err == 0) {
			assert_int_equal(vio_scsi_fini(&s), 0);
			fake_env_free(e);
			return;
		}
		assert_int_equal(err, VIO_ENOMEM);
		assert_null(s.dev);
		assert_int_equal(e->fp.dma_live_allocs, 0);
		assert_int_equal(e->fp.priv_live_allocs, 0);
		fake_env_free(e);
	}
	fail_msg("init still ran out of DMA memory after 40 allocations");
}

static void test_a_cdb_size_too_small_for_read16_is_raised_to_the_default(void **state)
{
	(void)state;
	struct virtio_scsi_config cfg = {.num_queues = 1, .sense_size = 4, .cdb_size = 12};
	struct fake_env *e = fake_env_new(VIRTIO_ID_SCSI, 0, &cfg, sizeof(cfg), 3, 64);
	struct vio_scsi s;
	assert_int_equal(vio_scsi_init(&s, &e->dev, NULL), 0);
	assert_int_equal(s.cdb_size, VIRTIO_SCSI_CDB_DEFAULT_SIZE);
	assert_int_equal(s.sense_size, VIRTIO_SCSI_SENSE_DEFAULT_SIZE);
	uint32_t v;
	memcpy(&v, e->vd.config + offsetof(struct virtio_scsi_config, cdb_size), 4);
	assert_int_equal(v, VIRTIO_SCSI_CDB_DEFAULT_SIZE); /* the driver wrote it (5.6.4) */
	assert_int_equal(vio_scsi_fini(&s), 0);
	fake_env_free(e);
}

static void test_scan_finds_the_disk_and_the_cd_with_their_capacity(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	assert_int_equal(f->s.n_luns, 2);
	const struct vio_scsi_lun *d = &f->s.luns[0], *cd = &f->s.luns[1];
	assert_int_equal(d->target, 0);
	assert_int_equal(d->type, SCSI_TYPE_DISK);
	assert_true(d->ready);
	assert_false(d->read_only);
	assert_int_equal(d->blocks, DISK_BLOCKS);
	assert_int_equal(d->block_size, 512);
	assert_string_equal(d->vendor, "QEMU");
	assert_string_equal(d->product, "QEMU HARDDISK");
	assert_int_equal(cd->target, 2);
	assert_int_equal(cd->type, SCSI_TYPE_CDROM);
	assert_true(cd->read_only);
	assert_true(cd->removable);
	assert_int_equal(cd->blocks, CD_BLOCKS);
	assert_int_equal(cd->block_size, 2048);
	teardown(f);
}

static void test_reads_and_writes_reach_the_disk_across_commands(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	static uint8_t buf[300 * 512], back[300 * 512];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(vio_scsi_write(&f->s, 0, 1000, 300, buf), 0);
	assert_memory_equal(f->tg.disk + 1000 * 512, buf, sizeof(buf));
	assert_int_equal(vio_scsi_read(&f->s, 0, 1000, 300, back), 0);
	assert_memory_equal(back, buf, sizeof(buf));
	assert_true(f->tg.commands >= 2 + 2 * 3); /* 150 KiB goes as 64 KiB commands */
	assert_int_equal(f->s.stats.bytes_written, sizeof(buf));
	assert_int_equal(vio_scsi_sync(&f->s, 0), 0);
	teardown(f);
}

static void test_a_read_past_the_end_is_refused_before_the_device(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	uint8_t buf[1024];
	unsigned before = f->tg.commands;
	assert_int_equal(vio_scsi_read(&f->s, 0, DISK_BLOCKS - 1, 2, buf), VIO_EINVAL);
	assert_int_equal(f->tg.commands, before);
	teardown(f);
}

static void test_the_cd_is_read_only_and_readable(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	static uint8_t buf[2 * 2048];
	assert_int_equal(vio_scsi_write(&f->s, 1, 0, 1, buf), VIO_EROFS);
	assert_int_equal(vio_scsi_read(&f->s, 1, 3, 2, buf), 0);
	assert_int_equal(buf[0], (uint8_t)(3 * 2048));
	assert_int_equal(buf[100], (uint8_t)(3 * 2048 + 100));
	teardown(f);
}

static void test_data_protect_from_the_device_is_erofs(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	uint8_t buf[2048] = {0};
	struct vio_scsi_cmd c = {.target = 2, .cdb = {SCSI_WRITE_10, 0, 0, 0, 0, 0, 0, 0, 1},
				 .cdb_len = 10, .data_out = buf, .len = sizeof(buf)};
	assert_int_equal(vio_scsi_command(&f->s, &c), VIO_EROFS);
	assert_int_equal(c.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(f->s.sense.key, SCSI_SENSE_DATA_PROTECT);
	assert_int_equal(f->s.sense.asc, 0x27);
	assert_string_equal(vio_scsi_sense_name(f->s.sense.key), "DATA PROTECT");
	teardown(f);
}

static void test_a_medium_error_is_eio_for_that_request_only(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	uint8_t buf[512];
	f->tg.lie = MEDIUM;
	assert_int_equal(vio_scsi_read(&f->s, 0, 5, 1, buf), VIO_EIO);
	assert_int_equal(f->s.sense.key, SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(f->s.sense.asc, 0x11);
	assert_string_equal(vio_scsi_sense_name(f->s.sense.key), "MEDIUM ERROR");
	assert_int_equal(vio_scsi_read(&f->s, 0, 5, 1, buf), 0);
	assert_memory_equal(buf, f->tg.disk + 5 * 512, 512);
	teardown(f);
}

static void test_descriptor_sense_is_decoded(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	uint8_t buf[512];
	f->tg.lie = NOT_READY_DESC;
	assert_int_equal(vio_scsi_read(&f->s, 0, 0, 1, buf), VIO_EAGAIN);
	assert_true(f->s.sense.valid);
	assert_int_equal(f->s.sense.key, SCSI_SENSE_NOT_READY);
	assert_int_equal(f->s.sense.asc, 0x04);
	assert_int_equal(f->s.sense.ascq, 0x01);
	teardown(f);
}

static void test_unit_attention_is_retried(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	uint8_t buf[512];
	unsigned before = f->tg.commands;
	f->tg.lie = UNIT_ATTN;
	assert_int_equal(vio_scsi_read(&f->s, 0, 7, 1, buf), 0);
	assert_int_equal(f->tg.commands, before + 2);
	assert_memory_equal(buf, f->tg.disk + 7 * 512, 512);
	teardown(f);
}

/* A lie on a read of one block into a canaried buffer: the error, and no byte written. */
static void check_lie(enum lie lie, int want)
{
	struct fixture *f = scanned();
	uint8_t buf[512 + 64];
	memset(buf, 0xaa, sizeof(buf));
	f->tg.lie = lie;
	assert_int_equal(vio_scsi_read(&f->s, 0, 3, 1, buf), want);
	for (size_t i = 512; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xaa);
	assert_int_equal(f->s.stats.bad_answers, 1);
	/* The next, honest answer is taken again. */
	assert_int_equal(vio_scsi_read(&f->s, 0, 3, 1, buf), 0);
	assert_memory_equal(buf, f->tg.disk + 3 * 512, 512);
	teardown(f);
}

static void test_sense_len_above_sense_size_is_malformed(void **state)
{
	(void)state;
	check_lie(SENSE_TOO_LONG, VIO_EPROTO);
}

static void test_residual_above_the_transfer_is_malformed(void **state)
{
	(void)state;
	check_lie(RESID_TOO_BIG, VIO_EPROTO);
}

static void test_a_used_length_past_the_buffers_is_an_io_error(void **state)
{
	(void)state;
	check_lie(USED_TOO_LONG, VIO_EIO);
}

static void test_a_write_whose_used_length_counts_its_data_out_is_taken(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	uint8_t buf[1024];
	memset(buf, 0x5c, sizeof(buf));
	f->tg.lie = USED_COUNTS_OUT;
	assert_int_equal(vio_scsi_write(&f->s, 0, 9, 2, buf), 0);
	assert_memory_equal(f->tg.disk + 9 * 512, buf, sizeof(buf));
	f->tg.lie = USED_PAST_OUT;
	assert_int_equal(vio_scsi_write(&f->s, 0, 9, 2, buf), VIO_EIO);
	assert_int_equal(f->s.stats.bad_answers, 1);
	teardown(f);
}

static void test_a_timeout_sends_abort_task_and_gets_the_buffers_back(void **state)
{
	(void)state;
	struct fixture *f = setup(50000000ull);
	assert_int_equal(vio_scsi_scan(&f->s), 2);
	uint8_t buf[512];
	f->tg.lie = SILENT;
	assert_int_equal(vio_scsi_read(&f->s, 0, 1, 1, buf), VIO_ETIMEDOUT);
	assert_int_equal(f->tg.tmfs, 1);
	assert_int_equal(f->tg.last_tmf, VIRTIO_SCSI_T_TMF_ABORT_TASK);
	assert_int_equal(f->s.stats.aborts, 1);
	assert_int_equal(f->s.stats.timeouts, 1);
	assert_false(f->s.sc_stuck);
	assert_int_equal(vio_scsi_read(&f->s, 0, 1, 1, buf), 0);
	teardown(f);
}

static void test_a_command_kept_after_abort_gets_a_lun_reset_and_blocks_the_queue(void **state)
{
	(void)state;
	struct fixture *f = setup(50000000ull);
	assert_int_equal(vio_scsi_scan(&f->s), 2);
	uint8_t buf[512];
	f->tg.lie = SILENT_ALWAYS;
	assert_int_equal(vio_scsi_read(&f->s, 0, 1, 1, buf), VIO_ETIMEDOUT);
	assert_int_equal(f->tg.tmfs, 2);
	assert_int_equal(f->tg.last_tmf, VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET);
	assert_int_equal(f->s.stats.lun_resets, 1);
	unsigned before = f->tg.commands;
	assert_int_equal(vio_scsi_read(&f->s, 0, 1, 1, buf), VIO_ETIMEDOUT);
	assert_int_equal(f->tg.commands, before); /* nothing posted over the held buffers */
	teardown(f);
}

static void test_a_command_after_a_timeout_waits_for_a_paused_device_to_let_go(void **state)
{
	(void)state;
	struct fixture *f = setup(50000000ull);
	assert_int_equal(vio_scsi_scan(&f->s), 2);
	uint8_t buf[512];
	f->tg.lie = SUSPENDED; /* holds the read and its ABORT TASK */
	assert_int_equal(vio_scsi_read(&f->s, 0, 1, 1, buf), VIO_ETIMEDOUT);
	assert_true(f->s.sc_stuck);
	unsigned before = f->tg.commands;
	/* Resumed, it lets go a little after the next command starts: that command waits for
	 * the old one to come back, then runs. */
	f->tg.resume_in = 5;
	assert_int_equal(vio_scsi_read(&f->s, 0, 1, 1, buf), 0);
	assert_memory_equal(buf, f->tg.disk + 512, sizeof(buf));
	assert_false(f->s.sc_stuck);
	assert_int_equal(f->tg.commands, before + 1);
	assert_int_equal(f->s.stats.timeouts, 1);
	teardown(f);
}

/* The device writes one event into the next posted eventq buffer. */
static void send_event(struct fixture *f, uint32_t event, uint8_t target, uint16_t lun,
		       uint32_t reason, uint32_t len)
{
	struct fake_req q;
	uint8_t ev[16] = {0};
	assert_true(fake_vring_pop(&f->e->ring[1], &q));
	le(ev, event, 4);
	ev[4] = 1;
	ev[5] = target;
	ev[6] = (uint8_t)(0x40 | lun >> 8);
	ev[7] = (uint8_t)lun;
	le(ev + 12, reason, 4);
	scatter(&q, ev, sizeof(ev));
	fake_vring_complete(&f->e->ring[1], q.head, len);
}

static void test_hot_unplug_marks_the_lun_gone_and_its_io_fails(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	uint8_t buf[512];
	send_event(f, VIRTIO_SCSI_T_TRANSPORT_RESET, 0, 0, VIRTIO_SCSI_EVT_RESET_REMOVED, 16);
	assert_int_equal(vio_scsi_poll(&f->s), 0);
	assert_int_equal(f->events_seen, 1);
	assert_int_equal(f->last.event, VIRTIO_SCSI_T_TRANSPORT_RESET);
	assert_int_equal(f->last.reason, VIRTIO_SCSI_EVT_RESET_REMOVED);
	assert_false(f->s.luns[0].present);
	assert_false(f->s.rescan);
	assert_int_equal(vio_scsi_read(&f->s, 0, 0, 1, buf), VIO_ENODEV);
	/* The buffer went back to the device: eight are posted again. */
	assert_int_equal(fake_vring_avail_pending(&f->e->ring[1]), VIO_SCSI_EVENTS);
	teardown(f);
}

static void test_a_rescan_event_asks_for_a_scan_which_keeps_indexes(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	send_event(f, VIRTIO_SCSI_T_TRANSPORT_RESET, 2, 0, VIRTIO_SCSI_EVT_RESET_RESCAN, 16);
	assert_int_equal(vio_scsi_poll(&f->s), 0);
	assert_true(f->s.rescan);
	assert_int_equal(vio_scsi_scan(&f->s), 2);
	assert_false(f->s.rescan);
	assert_int_equal(f->s.luns[1].target, 2);
	teardown(f);
}

static void test_a_short_event_is_counted_and_dropped(void **state)
{
	(void)state;
	struct fixture *f = scanned();
	send_event(f, VIRTIO_SCSI_T_TRANSPORT_RESET, 0, 0, VIRTIO_SCSI_EVT_RESET_REMOVED, 15);
	assert_int_equal(vio_scsi_poll(&f->s), 0);
	assert_int_equal(f->s.stats.bad_events, 1);
	assert_int_equal(f->events_seen, 0);
	assert_true(f->s.luns[0].present);
	teardown(f);
}

static void test_unmap_on_a_thin_disk_frees_the_range_in_steps_the_unit_allows(void **state)
{
	(void)state;
	struct fixture *f = setup(0);
	f->tg.thin = true;
	f->tg.unmap_max = 8;
	assert_int_equal(vio_scsi_scan(&f->s), 2);
	assert_true(f->s.luns[0].unmap);
	assert_int_equal(f->s.luns[0].unmap_max, 8);
	assert_false(f->s.luns[1].unmap); /* the CD */
	assert_int_equal(vio_scsi_unmap(&f->s, 0, 10, 20), 0);
	assert_int_equal(f->tg.unmaps, 3); /* 8 + 8 + 4 */
	for (uint32_t i = 0; i < DISK_BLOCKS * 512; i++) {
		bool gone = i >= 10 * 512 && i < 30 * 512;
		if (f->tg.disk[i] != (gone ? 0 : (uint8_t)(i * 7)))
			fail_msg("byte %u is %u", i, f->tg.disk[i]);
	}
	teardown(f);
}

static void test_unmap_where_the_unit_does_not_take_it_sends_nothing(void **state)
{
	(void)state;
	struct fixture *f = scanned(); /* no provisioning pages */
	assert_false(f->s.luns[0].unmap);
	unsigned before = f->tg.commands;
	assert_int_equal(vio_scsi_unmap(&f->s, 0, 0, 8), VIO_ENOTSUP);
	assert_int_equal(vio_scsi_unmap(&f->s, 1, 0, 1), VIO_EROFS); /* the CD */
	assert_int_equal(vio_scsi_unmap(&f->s, 0, DISK_BLOCKS - 1, 2), VIO_EINVAL);
	assert_int_equal(f->tg.commands, before);
	teardown(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_reads_the_config),
		cmocka_unit_test(test_every_dma_allocation_is_one_page_at_most),
		cmocka_unit_test(test_an_init_that_runs_out_of_dma_memory_leaves_nothing_behind),
		cmocka_unit_test(test_a_cdb_size_too_small_for_read16_is_raised_to_the_default),
		cmocka_unit_test(test_scan_finds_the_disk_and_the_cd_with_their_capacity),
		cmocka_unit_test(test_reads_and_writes_reach_the_disk_across_commands),
		cmocka_unit_test(test_a_read_past_the_end_is_refused_before_the_device),
		cmocka_unit_test(test_the_cd_is_read_only_and_readable),
		cmocka_unit_test(test_data_protect_from_the_device_is_erofs),
		cmocka_unit_test(test_a_medium_error_is_eio_for_that_request_only),
		cmocka_unit_test(test_descriptor_sense_is_decoded),
		cmocka_unit_test(test_unit_attention_is_retried),
		cmocka_unit_test(test_sense_len_above_sense_size_is_malformed),
		cmocka_unit_test(test_residual_above_the_transfer_is_malformed),
		cmocka_unit_test(test_a_used_length_past_the_buffers_is_an_io_error),
		cmocka_unit_test(test_a_write_whose_used_length_counts_its_data_out_is_taken),
		cmocka_unit_test(test_a_timeout_sends_abort_task_and_gets_the_buffers_back),
		cmocka_unit_test(
			test_a_command_kept_after_abort_gets_a_lun_reset_and_blocks_the_queue),
		cmocka_unit_test(
			test_a_command_after_a_timeout_waits_for_a_paused_device_to_let_go),
		cmocka_unit_test(test_hot_unplug_marks_the_lun_gone_and_its_io_fails),
		cmocka_unit_test(test_a_rescan_event_asks_for_a_scan_which_keeps_indexes),
		cmocka_unit_test(test_a_short_event_is_counted_and_dropped),
		cmocka_unit_test(test_unmap_on_a_thin_disk_frees_the_range_in_steps_the_unit_allows),
		cmocka_unit_test(test_unmap_where_the_unit_does_not_take_it_sends_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
