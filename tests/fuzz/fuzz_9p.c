/*
 * libFuzzer target: the fuzzer plays a hostile 9P server behind virtio-9p against the
 * client (src/drivers/virtio_9p.c). Every answer is fuzz bytes: by default a well-framed
 * header (the right size, type and tag, so the parse goes deep) followed by a body from the
 * input, or, when the input says so, any header at all, any used length, or no answer.
 * After init, each op byte makes the client do one call (walk, open, read, readdir, getattr,
 * write, create, clunk ...) on fids it holds.
 *
 * Checked: nothing crashes or reads/writes outside its buffers (ASan), a read never returns
 * more than asked nor writes past len in the caller's buffer (a canary), readdir names are
 * NUL-terminated and free of '/', and fini leaves no DMA or private memory behind.
 *
 *   make build/fuzz/fuzz_9p && build/fuzz/fuzz_9p -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vio/err.h>
#include <vio/p9.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define TIMEOUT_NS 100000

struct state {
	struct fake_env *e;
	struct vio_9p fs;
	const uint8_t *p, *end;
	struct fake_req req;
	uint8_t t[4096], r[8192];
};

FUZZ_INPUT_READERS(struct state)

static void model(struct fake_env *e)
{
	struct state *s = e->model_arg;

	if (e->nrings == 0) {
		if (!e->dev.vqs || !e->dev.vqs[0].size)
			return;
		fake_env_rings(e);
	}
	struct fake_vring *fv = &e->ring[0];
	if (!fake_vring_avail_pending(fv)) {
		e->fp.now += TIMEOUT_NS / FUZZ_LOOKS_PER_TIMEOUT; /* nothing to do: time flies */
		return;
	}
	uint8_t how = byte(s);
	if (how >= 0xf8)
		return; /* no answer (yet): the client times out */
	if (!fake_vring_pop(fv, &s->req))
		return;
	fake_vring_gather(&s->req, s->t, sizeof(s->t));
	uint32_t body = half(s) % (sizeof(s->r) - P9_HDR);
	uint32_t len = P9_HDR + body;
	for (uint32_t i = P9_HDR; i < len; i++)
		s->r[i] = byte(s);
	if (how & 1) {
		/* A well-framed answer of the right type (or Rlerror). */
		uint32_t size = len;
		memcpy(s->r, &size, 4);
		s->r[4] = how & 2 ? P9_RLERROR : (uint8_t)(s->t[4] + 1);
		s->r[5] = s->t[5];
		s->r[6] = s->t[6];
	} else {
		for (int i = 0; i < P9_HDR; i++)
			s->r[i] = byte(s);
	}
	uint32_t done = 0;
	for (unsigned i = 0; i < s->req.n_out + s->req.n_in && done < len; i++) {
		struct fake_seg *g = &s->req.seg[i];
		if (!g->write)
			continue;
		uint32_t n = len - done < g->len ? len - done : g->len;
		memcpy((void *)(uintptr_t)g->addr, s->r + done, n);
		done += n;
	}
	fake_vring_complete(fv, s->req.head, how & 4 ? word(s) : done);
}

static uint32_t pick(struct state *s, const uint32_t *fids, unsigned n)
{
	return n ? fids[byte(s) % n] : byte(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	struct state *s = &st;
	uint32_t fids[8];
	unsigned nfids = 0;

	if (size < 2)
		return 0;
	memset(s, 0, offsetof(struct state, t));
	s->p = data;
	s->end = data + size;

	uint8_t cfg[128] = {0};
	cfg[0] = byte(s);
	cfg[1] = byte(s) & 1;
	for (int i = 2; i < 12; i++)
		cfg[i] = byte(s);
	s->e = fake_env_new(VIRTIO_ID_9P, 1ull << VIRTIO_9P_MOUNT_TAG, cfg, sizeof(cfg), 1, 64);
	s->e->model = model;
	s->e->model_arg = s;
	struct vio_9p_opts opts = {.msize = 4096u * (1 + byte(s) % 4), .timeout_ns = TIMEOUT_NS};
	if (vio_9p_init(&s->fs, &s->e->dev, &opts) != 0) {
		s->e->model = NULL;
		check(s->e->fp.dma_live_allocs == 0 && s->e->fp.priv_live_allocs == 0);
		fake_env_free(s->e);
		return 0;
	}
	check(strlen(s->fs.tag) <= VIO_9P_TAG_MAX);

	while (s->p < s->end) {
		uint8_t buf[256 + 16];
		struct vio_9p_dirent ents[4];
		struct vio_9p_attr a;
		uint64_t cookie = byte(s);
		uint32_t fid;
		int r;

		switch (byte(s) % 12) {
		case 0:
			if (nfids < 8 && vio_9p_attach(&s->fs, "root", &fid) == 0)
				fids[nfids++] = fid;
			break;
		case 1:
			if (nfids < 8 && vio_9p_walk(&s->fs, pick(s, fids, nfids),
						     byte(s) & 1 ? "a/b/c" : "", &fid) == 0)
				fids[nfids++] = fid;
			break;
		case 2:
			vio_9p_open(&s->fs, pick(s, fids, nfids), P9_O_RDONLY);
			break;
		case 3: {
			uint32_t len = byte(s);
			memset(buf, 0xa5, sizeof(buf));
			r = vio_9p_read(&s->fs, pick(s, fids, nfids), word(s), buf, len);
			check(r <= (int)len);
			for (size_t i = len; i < sizeof(buf); i++)
				check(buf[i] == 0xa5);
			break;
		}
		case 4:
			r = vio_9p_readdir(&s->fs, pick(s, fids, nfids), &cookie, ents,
					   1 + byte(s) % 4);
			for (int i = 0; i < r; i++)
				check(strlen(ents[i].name) <= VIO_9P_NAME_MAX &&
				      !strchr(ents[i].name, '/'));
			break;
		case 5:
			vio_9p_getattr(&s->fs, pick(s, fids, nfids), &a);
			break;
		case 6:
			memset(buf, byte(s), sizeof(buf));
			r = vio_9p_write(&s->fs, pick(s, fids, nfids), 0, buf, byte(s));
			break;
		case 7:
			vio_9p_create(&s->fs, pick(s, fids, nfids), "new", P9_O_WRONLY, 0644);
			break;
		case 8:
			if (nfids) {
				unsigned k = byte(s) % nfids;
				vio_9p_clunk(&s->fs, fids[k]);
				fids[k] = fids[--nfids];
			}
			break;
		case 9:
			vio_9p_mkdir(&s->fs, pick(s, fids, nfids), "d", 0755);
			vio_9p_unlinkat(&s->fs, pick(s, fids, nfids), "d", P9_AT_REMOVEDIR);
			break;
		case 10:
			vio_9p_renameat(&s->fs, pick(s, fids, nfids), "a", pick(s, fids, nfids),
					"b");
			vio_9p_truncate(&s->fs, pick(s, fids, nfids), word(s));
			vio_9p_fsync(&s->fs, pick(s, fids, nfids));
			break;
		case 11:
			vio_9p_poll(&s->fs);
			break;
		}
	}
	int err = vio_9p_fini(&s->fs);
	s->e->model = NULL;
	if (err)
		fake_env_reclaim_leaks(s->e);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e);
	return 0;
}
