/*
 * libFuzzer target: the fuzzer plays a hostile virtio-scsi device against the driver and its
 * SCSI layer (src/drivers/virtio_scsi.c). Every command's response header, sense and data-in
 * are fuzz bytes, its used length is the honest one or any word, or it is not answered at
 * all (then the driver times out and sends task management, answered by fuzz bytes too);
 * the eventq gets fuzz events of any used length. After init, each op byte makes the driver
 * scan, read, write, sync, send a raw command or poll for events.
 *
 * Checked: nothing crashes or reads/writes outside its buffers (ASan), a read never writes
 * past the blocks asked for (a canary), the LUN table stays within its size with sane block
 * sizes, and fini leaves no private memory behind.
 *
 *   make build/fuzz/fuzz_scsi && build/fuzz/fuzz_scsi -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vio/err.h>
#include <vio/scsi.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define TIMEOUT_NS 100000

struct state {
	struct fake_env *e;
	struct vio_scsi s;
	const uint8_t *p, *end;
	struct fake_req req;
	uint8_t r[512 + 2048];
};

FUZZ_INPUT_READERS(struct state)

static uint32_t scatter(struct fake_req *q, const uint8_t *src, uint32_t len)
{
	uint32_t done = 0;
	for (unsigned i = 0; i < q->n_out + q->n_in && done < len; i++) {
		struct fake_seg *g = &q->seg[i];
		if (!g->write)
			continue;
		uint32_t n = len - done < g->len ? len - done : g->len;
		memcpy((void *)(uintptr_t)g->addr, src + done, n);
		done += n;
	}
	return done;
}

/* Answer what is pending on queue q with fuzz bytes (or leave it). */
static void answer(struct state *s, int q)
{
	struct fake_vring *fv = &s->e->ring[q];
	while (fake_vring_avail_pending(fv)) {
		uint8_t how = byte(s);
		if (how >= 0xf0)
			return; /* no answer: the driver times out */
		if (!fake_vring_pop(fv, &s->req))
			return;
		uint32_t len = half(s) % sizeof(s->r);
		for (uint32_t i = 0; i < len; i++)
			s->r[i] = byte(s);
		if (how & 1 && len >= 12) {
			/* A plausible response: OK, a status, a small sense_len and residual. */
			s->r[11] = 0;
			s->r[10] = how & 2 ? SCSI_STATUS_CHECK_CONDITION : SCSI_STATUS_GOOD;
			memset(s->r, 0, 8);
			s->r[0] = byte(s) % 40;
		}
		uint32_t done = scatter(&s->req, s->r, len);
		fake_vring_complete(fv, s->req.head, how & 4 ? word(s) : done);
	}
}

static void model(struct fake_env *e)
{
	struct state *s = e->model_arg;

	if (e->nrings == 0) {
		if (!e->dev.vqs || e->dev.nvqs < 3 || !e->dev.vqs[2].size)
			return;
		fake_env_rings(e);
	}
	if (!fake_vring_avail_pending(&e->ring[0]) && !fake_vring_avail_pending(&e->ring[2])) {
		/* Nothing to do: time flies, in steps of the longest wait (a task management
		 * function's 2 s after a command times out), not of the command's 100 us: with
		 * these, waiting out an abort the device never answers was half the fuzzer's time. */
		e->fp.now += VIO_SCSI_TMF_TIMEOUT_NS / FUZZ_LOOKS_PER_TIMEOUT;
		return;
	}
	answer(s, 0);
	answer(s, 2);
}

/* One fuzz event into the eventq. */
static void send_event(struct state *s)
{
	if (!s->e->nrings || !fake_vring_pop(&s->e->ring[1], &s->req))
		return;
	uint8_t ev[32];
	for (unsigned i = 0; i < sizeof(ev); i++)
		ev[i] = byte(s);
	scatter(&s->req, ev, sizeof(ev));
	fake_vring_complete(&s->e->ring[1], s->req.head, byte(s) % 40);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	struct state *s = &st;

	if (size < 2)
		return 0;
	memset(s, 0, offsetof(struct state, r));
	s->p = data;
	s->end = data + size;

	struct virtio_scsi_config cfg = {
		.num_queues = byte(s) % 3, .seg_max = byte(s), .max_sectors = half(s),
		.event_info_size = byte(s), .sense_size = byte(s), .cdb_size = byte(s),
		.max_target = byte(s) % 4, .max_lun = byte(s)};
	s->e = fake_env_new(VIRTIO_ID_SCSI,
			    1ull << VIRTIO_SCSI_F_HOTPLUG | 1ull << VIRTIO_SCSI_F_CHANGE, &cfg,
			    sizeof(cfg), 3, 64);
	s->e->model = model;
	s->e->model_arg = s;
	struct vio_scsi_opts opts = {.timeout_ns = TIMEOUT_NS, .max_luns = 1 + byte(s) % 8};
	if (vio_scsi_init(&s->s, &s->e->dev, &opts) != 0) {
		s->e->model = NULL;
		check(s->e->fp.dma_live_allocs == 0 && s->e->fp.priv_live_allocs == 0);
		fake_env_free(s->e);
		return 0;
	}
	if (!s->e->nrings)
		fake_env_rings(s->e);

	while (s->p < s->end) {
		static uint8_t buf[3 * 4096 + 64];
		uint32_t blocks = 1 + byte(s) % 4;
		unsigned lun = byte(s) % 4;
		int r;

		switch (byte(s) % 7) {
		case 0:
			r = vio_scsi_scan(&s->s);
			check(s->s.n_luns <= opts.max_luns);
			for (unsigned i = 0; i < s->s.n_luns; i++) {
				const struct vio_scsi_lun *l = &s->s.luns[i];
				check(!l->ready || (l->block_size >= 512 && l->block_size <= 65536));
			}
			(void)r;
			break;
		case 1:
			memset(buf, 0xa5, sizeof(buf));
			if (lun < s->s.n_luns && s->s.luns[lun].ready &&
			    blocks * s->s.luns[lun].block_size <= 3 * 4096) {
				uint32_t len = blocks * s->s.luns[lun].block_size;
				vio_scsi_read(&s->s, lun, word(s) % 8, blocks, buf);
				for (size_t i = len; i < sizeof(buf); i++)
					check(buf[i] == 0xa5);
			}
			break;
		case 2:
			if (lun < s->s.n_luns && s->s.luns[lun].ready &&
			    blocks * s->s.luns[lun].block_size <= 3 * 4096)
				vio_scsi_write(&s->s, lun, word(s) % 8, blocks, buf);
			break;
		case 3:
			vio_scsi_sync(&s->s, lun);
			break;
		case 4: {
			uint8_t in[64 + 16];
			memset(in, 0xa5, sizeof(in));
			struct vio_scsi_cmd c = {.target = byte(s), .lun = byte(s),
						 .cdb = {SCSI_INQUIRY, 0, 0, 0, 64}, .cdb_len = 6,
						 .data_in = in, .len = 64};
			r = vio_scsi_command(&s->s, &c);
			check(c.residual <= c.len);
			for (size_t i = 64; i < sizeof(in); i++)
				check(in[i] == 0xa5);
			(void)r;
			break;
		}
		case 5:
			send_event(s);
			break;
		case 6:
			vio_scsi_poll(&s->s);
			break;
		}
	}
	int err = vio_scsi_fini(&s->s);
	s->e->model = NULL;
	if (err)
		fake_env_reclaim_leaks(s->e);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e);
	return 0;
}
