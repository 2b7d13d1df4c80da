/*
 * libFuzzer target: the fuzzer plays a hostile virtio-gpu device against the driver
 * (src/drivers/virtio_gpu.c), through the whole-device fake of the host tests.
 *
 * The device answers every controlq command from the fuzz input: mostly the answer a real
 * device would give, then with any type, flags, fence, used length, display modes (any
 * size, enabled or not) and EDID size, or no answer at all. Op bytes make the driver create
 * a framebuffer of any size, draw and flush any rectangle, set and move the cursor, read the
 * display info, and take a display-change event; or make the device write garbage over the
 * driver's DMA memory or ask for a reset.
 *
 * After every op the harness checks what must hold whatever the device did:
 *   - every display size is within the driver's maximum (opts.max_*), a framebuffer is none
 *     (0 x 0) or within it, with stride = width * 4;
 *   - drawing and reading anywhere stays inside the framebuffer's pages (ASan);
 * and at the end vio_gpu_fini leaves no DMA or private memory allocated, but for the pages
 * of a command the device never answered (the driver must keep those). UBSan, ASan and
 * VIO_DEBUG's VIO_ASSERTs catch the rest.
 *
 *   make build/fuzz/fuzz_gpu && build/fuzz/fuzz_gpu -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vio/err.h>
#include <vio/gpu.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define MAX_W 320
#define MAX_H 240

struct state {
	struct fake_env *e;
	struct vio_gpu gpu;
	const uint8_t *p, *end;
	struct fake_req req;
	uint8_t cmd[65536];
};

FUZZ_INPUT_READERS(struct state)

static void answer(struct state *s, struct fake_vring *fv)
{
	const struct fake_req *r = &s->req;
	uint8_t how = byte(s);
	uint32_t n = fake_vring_gather(r, s->cmd, sizeof(s->cmd));
	const struct virtio_gpu_ctrl_hdr *c = (const void *)s->cmd;

	if (how == 0xee || r->n_in != 1 || n < sizeof(*c))
		return; /* silence */
	struct virtio_gpu_ctrl_hdr *resp = (void *)(uintptr_t)r->seg[r->n_out].addr;
	uint32_t len = r->in_len;
	memset(resp, 0, len);
	resp->type = c->type == VIRTIO_GPU_CMD_GET_DISPLAY_INFO ? VIRTIO_GPU_RESP_OK_DISPLAY_INFO
		     : c->type == VIRTIO_GPU_CMD_GET_EDID	? VIRTIO_GPU_RESP_OK_EDID
								: VIRTIO_GPU_RESP_OK_NODATA;
	resp->flags = VIRTIO_GPU_FLAG_FENCE;
	resp->fence_id = c->fence_id;
	if (c->type == VIRTIO_GPU_CMD_GET_DISPLAY_INFO &&
	    len >= sizeof(struct virtio_gpu_resp_display_info)) {
		struct virtio_gpu_resp_display_info *d = (void *)resp;
		d->pmodes[0].r.width = how & 0x40 ? word(s) : 64 + byte(s) * 4u;
		d->pmodes[0].r.height = how & 0x40 ? word(s) : 64 + byte(s) * 4u;
		d->pmodes[0].enabled = byte(s) & 1;
	}
	if (c->type == VIRTIO_GPU_CMD_GET_EDID && len >= sizeof(struct virtio_gpu_resp_edid))
		((struct virtio_gpu_resp_edid *)resp)->size = how & 0x20 ? word(s) : 128;
	if (how & 0x80) {
		uint32_t v = word(s);
		switch (how & 7) {
		case 0:
			resp->type = v;
			break;
		case 1:
			resp->flags = v;
			break;
		case 2:
			resp->fence_id = v;
			break;
		case 3:
			len = v;
			break;
		case 4:
			len = v % (len + 1);
			break;
		case 5:
			resp->type = 0x1200 + (v & 0xff);
			break;
		}
	}
	fake_vring_complete(fv, r->head, len);
}

static void gpu_model(struct fake_env *e)
{
	struct state *s = e->model_arg;

	if (!e->nrings && e->dev.nvqs == 2 && e->dev.vqs[1].size) {
		fake_env_rings(e);
		for (int q = 0; q < e->nrings; q++)
			e->ring[q].deliver_irqs = false;
	}
	if (!e->nrings)
		return;
	while (fake_vring_pop(&e->ring[0], &s->req))
		answer(s, &e->ring[0]);
	if (byte(s) & 1)
		while (fake_vring_pop(&e->ring[1], &s->req))
			fake_vring_complete(&e->ring[1], s->req.head, byte(s) & 1 ? word(s) : 0);
}

static void check_sizes(struct state *s)
{
	const struct vio_gpu *g = &s->gpu;

	for (uint32_t i = 0; i < g->num_scanouts; i++)
		check(g->display[i].width <= MAX_W && g->display[i].height <= MAX_H);
	check(g->width <= MAX_W && g->height <= MAX_H);
	check((g->width == 0) == (g->height == 0) && g->stride == g->width * 4);
	check(g->edid_len <= VIO_GPU_EDID_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	static uint32_t img[VIO_GPU_CURSOR_SIZE * VIO_GPU_CURSOR_SIZE];
	static uint32_t line[VIO_GPU_MAX_WIDTH + 64];
	struct state *s = &st;

	if (size < 1)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;

	uint8_t cfg_byte = byte(s);
	struct virtio_gpu_config cfg = {.num_scanouts = cfg_byte & 0x80 ? cfg_byte : 1};
	s->e = fake_env_new(VIRTIO_ID_GPU, 1ull << VIRTIO_GPU_F_EDID, &cfg, sizeof(cfg), 2, 64);
	fake_env_no_irqs(s->e);
	s->e->model = gpu_model;
	s->e->model_arg = s;
	/* Framebuffers up to 320x240 (300 pages): the fake port tracks 1024 live allocations. */
	struct vio_gpu_opts opts = {.timeout_ns = 50000, .max_width = MAX_W, .max_height = MAX_H};
	if (vio_gpu_init(&s->gpu, &s->e->dev, &opts) != 0) {
		s->e->model = NULL;
		fake_env_reclaim_leaks(s->e);
		fake_env_free(s->e);
		return 0;
	}

	while (s->p < s->end) {
		uint32_t x, y, w, h;
		switch (byte(s) % 9) {
		case 0:
			w = byte(s) & 1 ? word(s) : byte(s) * 2u;
			h = byte(s) & 1 ? word(s) : byte(s) * 2u;
			vio_gpu_fb_create(&s->gpu, byte(s) % 3, w, h);
			break;
		case 1:
			x = half(s), y = half(s), w = half(s), h = half(s);
			vio_gpu_fill(&s->gpu, x % 4096, y % 4096, w, h, word(s));
			vio_gpu_write_span(&s->gpu, x % 4096, y % 4096, line,
					   w % (VIO_GPU_MAX_WIDTH + 64));
			vio_gpu_read_span(&s->gpu, x % 4096, y % 4096, line,
					  w % (VIO_GPU_MAX_WIDTH + 64));
			vio_gpu_flush(&s->gpu, x, y, w, h);
			break;
		case 2:
			vio_gpu_display_info(&s->gpu);
			break;
		case 3: {
			uint32_t ev = byte(s);
			fake_env_set_config(s->e, offsetof(struct virtio_gpu_config, events_read),
					    &ev, sizeof(ev));
			vio_gpu_poll(&s->gpu);
			break;
		}
		case 4:
			vio_gpu_cursor_set(&s->gpu, img, byte(s) % 70, byte(s) % 70);
			break;
		case 5:
			vio_gpu_cursor_move(&s->gpu, half(s), half(s));
			break;
		case 6:
			fake_env_scribble(s->e, byte(s));
			break;
		case 7:
			vio_gpu_fb_destroy(&s->gpu);
			break;
		case 8:
			if (byte(s) == 0x5a)
				s->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
			vio_gpu_poll(&s->gpu);
			break;
		}
		check_sizes(s);
	}
	s->e->model = NULL;
	bool lost = s->gpu.stats.timeouts != 0;
	check(vio_gpu_fini(&s->gpu) == 0);
	/* Pages a silent device may still hold are kept, on purpose: give them back here. */
	int kept = fake_env_reclaim_leaks(s->e);
	check(lost || kept == 0);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e);
	return 0;
}
