/*
 * Unit tests for the virtio-9p driver and its 9P2000.L client (src/drivers/virtio_9p.c)
 * against a whole fake device (fake_env.h) running a small 9P server: one file "hello" of
 * HELLO_LEN bytes (byte i is i % 251) in the root, and nothing else. Each test can make the
 * server lie in one way, and checks the client reports it with the named error and writes
 * nothing it should not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/err.h>
#include <vio/p9.h>

#include "fake_env.h"

#define HELLO_LEN 100000u

enum lie {
	HONEST,
	BIG_MSIZE,     /* Rversion raises msize */
	OLD_VERSION,   /* Rversion "9P2000" */
	WRONG_TAG,     /* the next answer carries another tag */
	WRONG_TYPE,    /* ... another type */
	SIZE_PAST_LEN, /* ... a size field larger than the bytes written */
	USED_TOO_LONG, /* ... a used length larger than the buffers posted */
	READ_TOO_MUCH, /* Rread count larger than asked */
	DIR_SLASH,     /* a directory entry named "a/b" */
	DIR_SHORT,     /* Rreaddir count cutting an entry in half */
	SILENT,	       /* never answer */
};

struct server {
	enum lie lie;
	bool holding; /* SILENT kept a request: answer it when released */
	struct fake_req req;
	uint8_t t[70000], r[140000];
	uint32_t rlen;
	unsigned requests;
	uint32_t msize;
};

static void le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void r_put(struct server *s, uint64_t v, int n)
{
	le(s->r + s->rlen, v, n);
	s->rlen += (uint32_t)n;
}

static void r_str(struct server *s, const char *str)
{
	uint16_t n = (uint16_t)strlen(str);
	r_put(s, n, 2);
	memcpy(s->r + s->rlen, str, n);
	s->rlen += n;
}

static void r_qid(struct server *s, uint8_t type, uint64_t path)
{
	r_put(s, type, 1);
	r_put(s, 0, 4);
	r_put(s, path, 8);
}

static void r_error(struct server *s, uint32_t e)
{
	s->r[4] = P9_RLERROR;
	s->rlen = P9_HDR;
	r_put(s, e, 4);
}

/* The answer to the T-message in s->t. */
static void serve(struct server *s)
{
	uint8_t type = s->t[4];
	const uint8_t *b = s->t + P9_HDR;

	s->rlen = P9_HDR;
	s->r[4] = (uint8_t)(type + 1);
	memcpy(s->r + 5, s->t + 5, 2); /* the tag */
	switch (type) {
	case P9_TVERSION:
		r_put(s, s->lie == BIG_MSIZE ? rd(b, 4) + 4096 : s->msize, 4);
		r_str(s, s->lie == OLD_VERSION ? "9P2000" : "9P2000.L");
		break;
	case P9_TATTACH:
		r_qid(s, P9_QTDIR, 1);
		break;
	case P9_TWALK: {
		uint16_t nw = (uint16_t)rd(b + 8, 2);
		const uint8_t *p = b + 10;
		uint16_t ok = 0;
		for (; ok < nw; ok++) {
			uint16_t n = (uint16_t)rd(p, 2);
			if (!(n == 5 && !memcmp(p + 2, "hello", 5)) && !(n == 1 && p[2] == '.'))
				break;
			p += 2 + n;
		}
		if (nw && ok == 0) {
			r_error(s, 2);
			break;
		}
		r_put(s, ok, 2);
		for (uint16_t i = 0; i < ok; i++)
			r_qid(s, 0, 2);
		break;
	}
	case P9_TLOPEN:
		r_qid(s, 0, 2);
		r_put(s, 0, 4);
		break;
	case P9_TREAD: {
		uint64_t off = rd(b + 4, 8);
		uint32_t count = (uint32_t)rd(b + 12, 4);
		uint32_t n = off >= HELLO_LEN	       ? 0
			     : HELLO_LEN - off < count ? (uint32_t)(HELLO_LEN - off)
						       : count;
		if (s->lie == READ_TOO_MUCH)
			n = count + 1;
		r_put(s, n, 4);
		for (uint32_t i = 0; i < n; i++)
			s->r[s->rlen++] = (uint8_t)((off + i) % 251);
		break;
	}
	case P9_TREADDIR: {
		uint32_t at = s->rlen;
		r_put(s, 0, 4);
		uint64_t off = rd(b + 4, 8);
		const char *names[] = {".", "..", "hello", s->lie == DIR_SLASH ? "a/b" : "world"};
		for (uint64_t i = off; i < 4; i++) {
			r_qid(s, 0, 10 + i);
			r_put(s, i + 1, 8);
			r_put(s, 8, 1);
			r_str(s, names[i]);
		}
		uint32_t count = s->rlen - at - 4;
		if (s->lie == DIR_SHORT && count)
			count -= 3, s->rlen -= 3;
		le(s->r + at, count, 4);
		break;
	}
	case P9_TCLUNK:
		break;
	case P9_TLCREATE:
		r_error(s, 30); /* a read-only export */
		break;
	default:
		r_error(s, 95);
	}
	le(s->r, s->rlen, 4);
}

/* Scatter s->r over the request's writable segments. */
static uint32_t scatter(struct server *s)
{
	uint32_t done = 0;
	for (unsigned i = 0; i < s->req.n_out + s->req.n_in && done < s->rlen; i++) {
		const struct fake_seg *g = &s->req.seg[i];
		if (!g->write)
			continue;
		uint32_t n = s->rlen - done < g->len ? s->rlen - done : g->len;
		memcpy((void *)(uintptr_t)g->addr, s->r + done, n);
		done += n;
	}
	return done;
}

static void model(struct fake_env *e)
{
	struct server *s = e->model_arg;

	if (e->nrings == 0) {
		if (!e->dev.vqs || !e->dev.vqs[0].size)
			return;
		fake_env_rings(e); /* init talks (Tversion) before the test could attach them */
	}
	struct fake_vring *fv = &e->ring[0];
	if (s->holding || !fake_vring_pop(fv, &s->req))
		return;
	if (s->lie == SILENT) {
		s->holding = true;
		return;
	}
	uint32_t n = fake_vring_gather(&s->req, s->t, sizeof(s->t));
	assert_int_equal(n, rd(s->t, 4)); /* the client's size field is right */
	s->requests++;
	serve(s);
	uint32_t len = scatter(s);
	enum lie lie = s->lie;
	if (lie == WRONG_TAG || lie == WRONG_TYPE || lie == SIZE_PAST_LEN || lie == USED_TOO_LONG)
		s->lie = HONEST; /* once */
	if (lie == WRONG_TAG)
		((uint8_t *)(uintptr_t)s->req.seg[s->req.n_out].addr)[5] ^= 1;
	if (lie == WRONG_TYPE)
		((uint8_t *)(uintptr_t)s->req.seg[s->req.n_out].addr)[4] += 2;
	if (lie == SIZE_PAST_LEN)
		len -= 1;
	if (lie == USED_TOO_LONG)
		len = s->req.in_len + 1;
	fake_vring_complete(fv, s->req.head, len);
}

/* Release a SILENT server's held request, answered honestly. */
static void release(struct fake_env *e, struct server *s)
{
	s->lie = HONEST;
	s->holding = false;
	fake_vring_gather(&s->req, s->t, sizeof(s->t));
	serve(s);
	fake_vring_complete(&e->ring[0], s->req.head, scatter(s));
}

struct fixture {
	struct fake_env *e;
	struct server s;
	struct vio_9p fs;
};

static struct fixture *setup(const char *tag, enum lie lie, uint32_t server_msize)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t cfg[128] = {0}; /* tag_len[2], then up to 126 bytes */
	size_t n = strlen(tag);
	le(cfg, n, 2);
	memcpy(cfg + 2, tag, n);
	f->e = fake_env_new(VIRTIO_ID_9P, 1ull << VIRTIO_9P_MOUNT_TAG, cfg, sizeof(cfg), 1, 128);
	f->s.lie = lie;
	f->s.msize = server_msize;
	f->e->model = model;
	f->e->model_arg = &f->s;
	return f;
}

static void teardown(struct fixture *f)
{
	assert_int_equal(vio_9p_fini(&f->fs), 0);
	f->e->model = NULL; /* its rings are gone */
	fake_env_free(f->e);
	free(f);
}

static uint32_t fids_in_use(const struct vio_9p *fs)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < sizeof(fs->p9_fids); i++)
		n += (uint32_t)__builtin_popcount(fs->p9_fids[i]);
	return n;
}

static void test_init_reads_the_tag_and_agrees_on_msize(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 16384);
	assert_int_equal(vio_9p_init(&f->fs, &f->e->dev, NULL), 0);
	assert_string_equal(f->fs.tag, "host");
	assert_int_equal(f->fs.msize, 16384); /* the server lowered it */
	teardown(f);
}

static void test_a_tag_longer_than_kept_is_cut(void **state)
{
	(void)state;
	char tag[101];
	memset(tag, 't', 100);
	tag[100] = 0;
	struct fixture *f = setup(tag, HONEST, 65536);
	assert_int_equal(vio_9p_init(&f->fs, &f->e->dev, NULL), 0);
	assert_int_equal(strlen(f->fs.tag), VIO_9P_TAG_MAX);
	teardown(f);
}

static void test_a_server_raising_msize_is_refused(void **state)
{
	(void)state;
	struct fixture *f = setup("host", BIG_MSIZE, 65536);
	assert_int_equal(vio_9p_init(&f->fs, &f->e->dev, NULL), VIO_EPROTO);
	assert_null(f->fs.dev);
	teardown(f);
}

static void test_a_server_without_9p2000L_is_not_supported(void **state)
{
	(void)state;
	struct fixture *f = setup("host", OLD_VERSION, 65536);
	assert_int_equal(vio_9p_init(&f->fs, &f->e->dev, NULL), VIO_ENOTSUP);
	teardown(f);
}

/* Init, then attach: the root fid. */
static uint32_t attached(struct fixture *f)
{
	uint32_t root;
	assert_int_equal(vio_9p_init(&f->fs, &f->e->dev, NULL), 0);
	assert_int_equal(vio_9p_attach(&f->fs, "root", &root), 0);
	return root;
}

/* Attach, walk to "hello" and open it: the fid. */
static uint32_t open_hello(struct fixture *f, uint32_t *root)
{
	uint32_t fid;
	*root = attached(f);
	assert_int_equal(vio_9p_walk(&f->fs, *root, "/hello", &fid), 0);
	assert_int_equal(vio_9p_open(&f->fs, fid, P9_O_RDONLY), 0);
	return fid;
}

static void test_a_file_reads_whole_across_pages_and_requests(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root, fid = open_hello(f, &root);
	static uint8_t buf[HELLO_LEN + 10];
	uint64_t off = 0;
	int n;
	while ((n = vio_9p_read(&f->fs, fid, off, buf + off, sizeof(buf) - (uint32_t)off)) > 0)
		off += (uint64_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(off, HELLO_LEN);
	for (uint32_t i = 0; i < HELLO_LEN; i++)
		if (buf[i] != i % 251)
			fail_msg("byte %u is %u", i, buf[i]);
	assert_int_equal(f->fs.stats.bytes_read, HELLO_LEN);
	assert_int_equal(vio_9p_clunk(&f->fs, fid), 0);
	assert_int_equal(vio_9p_clunk(&f->fs, root), 0);
	assert_int_equal(fids_in_use(&f->fs), 0);
	teardown(f);
}

static void test_rread_longer_than_asked_is_malformed_and_copies_nothing_past_len(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root, fid = open_hello(f, &root);
	uint8_t buf[64];
	memset(buf, 0xaa, sizeof(buf));
	f->s.lie = READ_TOO_MUCH;
	assert_int_equal(vio_9p_read(&f->fs, fid, 0, buf, 32), VIO_EPROTO);
	for (int i = 32; i < 64; i++)
		assert_int_equal(buf[i], 0xaa);
	assert_int_equal(f->fs.stats.bad_replies, 1);
	teardown(f);
}

static void check_one_lie(enum lie lie, int want)
{
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root, fid = open_hello(f, &root);
	uint8_t buf[16];
	f->s.lie = lie;
	assert_int_equal(vio_9p_read(&f->fs, fid, 0, buf, sizeof(buf)), want);
	/* The next, honest answer is taken again. */
	assert_int_equal(vio_9p_read(&f->fs, fid, 0, buf, sizeof(buf)), (int)sizeof(buf));
	assert_int_equal(buf[5], 5);
	teardown(f);
}

static void test_an_answer_with_another_tag_is_refused(void **state)
{
	(void)state;
	check_one_lie(WRONG_TAG, VIO_EPROTO);
}

static void test_an_answer_of_another_type_is_refused(void **state)
{
	(void)state;
	check_one_lie(WRONG_TYPE, VIO_EPROTO);
}

static void test_a_size_field_past_the_written_bytes_is_refused(void **state)
{
	(void)state;
	check_one_lie(SIZE_PAST_LEN, VIO_EPROTO);
}

static void test_a_used_length_past_the_posted_buffers_is_an_io_error(void **state)
{
	(void)state;
	check_one_lie(USED_TOO_LONG, VIO_EIO);
}

static void test_rlerror_is_eremote_with_the_servers_errno(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root, fid;
	root = attached(f);
	assert_int_equal(vio_9p_walk(&f->fs, root, "nothere", &fid), VIO_EREMOTE);
	assert_int_equal(f->fs.last_errno, 2);
	assert_string_equal(vio_9p_errno_name(f->fs.last_errno), "ENOENT");
	assert_int_equal(vio_9p_create(&f->fs, root, "new", P9_O_WRONLY, 0644), VIO_EREMOTE);
	assert_string_equal(vio_9p_errno_name(f->fs.last_errno), "EROFS");
	assert_int_equal(fids_in_use(&f->fs), 1); /* the root only: the failed walk gave its back */
	teardown(f);
}

static void test_a_walk_stopping_short_leaks_no_fid(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root, fid;
	root = attached(f);
	for (int i = 0; i < 3 * VIO_9P_MAX_FIDS; i++) {
		assert_int_equal(vio_9p_walk(&f->fs, root, "hello/deeper", &fid), VIO_EREMOTE);
		/* 17 names: two Twalks, the second one fails and the first's fid is clunked. */
		assert_int_equal(
		    vio_9p_walk(&f->fs, root, "././././././././././././././././x", &fid),
		    VIO_EREMOTE);
	}
	assert_int_equal(fids_in_use(&f->fs), 1);
	assert_int_equal(vio_9p_walk(&f->fs, root, "hello", &fid), 0);
	teardown(f);
}

static void test_names_longer_than_255_bytes_never_reach_the_device(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root, fid;
	char name[300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	root = attached(f);
	unsigned before = f->s.requests;
	assert_int_equal(vio_9p_walk(&f->fs, root, name, &fid), VIO_EINVAL);
	assert_int_equal(vio_9p_mkdir(&f->fs, root, name, 0755), VIO_EINVAL);
	assert_int_equal(f->s.requests, before);
	teardown(f);
}

static void test_readdir_returns_entries_and_moves_the_cookie(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root;
	struct vio_9p_dirent ents[3];
	uint64_t cookie = 0;
	root = attached(f);
	assert_int_equal(vio_9p_readdir(&f->fs, root, &cookie, ents, 3), 3);
	assert_string_equal(ents[2].name, "hello");
	assert_int_equal(cookie, 3);
	assert_int_equal(vio_9p_readdir(&f->fs, root, &cookie, ents, 3), 1);
	assert_string_equal(ents[0].name, "world");
	assert_int_equal(vio_9p_readdir(&f->fs, root, &cookie, ents, 3), 0);
	teardown(f);
}

static void test_a_directory_entry_with_a_slash_is_malformed(void **state)
{
	(void)state;
	struct fixture *f = setup("host", DIR_SLASH, 65536);
	uint32_t root;
	struct vio_9p_dirent ents[8];
	uint64_t cookie = 0;
	root = attached(f);
	assert_int_equal(vio_9p_readdir(&f->fs, root, &cookie, ents, 8), VIO_EPROTO);
	assert_int_equal(cookie, 0);
	teardown(f);
}

static void test_a_directory_entry_cut_in_half_is_malformed(void **state)
{
	(void)state;
	struct fixture *f = setup("host", DIR_SHORT, 65536);
	uint32_t root;
	struct vio_9p_dirent ents[8];
	uint64_t cookie = 0;
	root = attached(f);
	assert_int_equal(vio_9p_readdir(&f->fs, root, &cookie, ents, 8), VIO_EPROTO);
	teardown(f);
}

static void test_an_unanswered_request_times_out_and_blocks_until_answered(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	uint32_t root, fid = open_hello(f, &root);
	uint8_t buf[16];
	f->s.lie = SILENT;
	assert_int_equal(vio_9p_read(&f->fs, fid, 0, buf, sizeof(buf)), VIO_ETIMEDOUT);
	assert_int_equal(f->fs.stats.timeouts, 1);
	/* Its buffers are still the device's: nothing new is posted. */
	assert_int_equal(vio_9p_read(&f->fs, fid, 0, buf, sizeof(buf)), VIO_ETIMEDOUT);
	assert_int_equal(vio_9p_poll(&f->fs), VIO_ETIMEDOUT);
	/* The late answer is taken and dropped; then the client works again. */
	release(f->e, &f->s);
	assert_int_equal(vio_9p_poll(&f->fs), 0);
	assert_int_equal(vio_9p_read(&f->fs, fid, 8, buf, sizeof(buf)), (int)sizeof(buf));
	assert_int_equal(buf[0], 8);
	teardown(f);
}

static void test_fini_after_an_unconfirmed_reset_keeps_the_pages(void **state)
{
	(void)state;
	struct fixture *f = setup("host", HONEST, 65536);
	assert_int_equal(vio_9p_init(&f->fs, &f->e->dev, NULL), 0);
	f->e->vd.reset_stuck = true;
	assert_int_equal(vio_9p_fini(&f->fs), VIO_EDEAD);
	f->e->model = NULL;
	assert_true(fake_env_reclaim_leaks(f->e) >= 2 * (int)(f->fs.msize / 4096));
	fake_env_free(f->e);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_reads_the_tag_and_agrees_on_msize),
	    cmocka_unit_test(test_a_tag_longer_than_kept_is_cut),
	    cmocka_unit_test(test_a_server_raising_msize_is_refused),
	    cmocka_unit_test(test_a_server_without_9p2000L_is_not_supported),
	    cmocka_unit_test(test_a_file_reads_whole_across_pages_and_requests),
	    cmocka_unit_test(test_rread_longer_than_asked_is_malformed_and_copies_nothing_past_len),
	    cmocka_unit_test(test_an_answer_with_another_tag_is_refused),
	    cmocka_unit_test(test_an_answer_of_another_type_is_refused),
	    cmocka_unit_test(test_a_size_field_past_the_written_bytes_is_refused),
	    cmocka_unit_test(test_a_used_length_past_the_posted_buffers_is_an_io_error),
	    cmocka_unit_test(test_rlerror_is_eremote_with_the_servers_errno),
	    cmocka_unit_test(test_a_walk_stopping_short_leaks_no_fid),
	    cmocka_unit_test(test_names_longer_than_255_bytes_never_reach_the_device),
	    cmocka_unit_test(test_readdir_returns_entries_and_moves_the_cookie),
	    cmocka_unit_test(test_a_directory_entry_with_a_slash_is_malformed),
	    cmocka_unit_test(test_a_directory_entry_cut_in_half_is_malformed),
	    cmocka_unit_test(test_an_unanswered_request_times_out_and_blocks_until_answered),
	    cmocka_unit_test(test_fini_after_an_unconfirmed_reset_keeps_the_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
