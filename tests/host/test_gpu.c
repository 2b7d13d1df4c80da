/*
 * Unit tests for the virtio-gpu driver (src/drivers/virtio_gpu.c) against a fake GPU
 * (fake_env.h) that answers the controlq as QEMU does: the display info it is told, a
 * resource table, and every answer with the command's fence. Each test makes it lie in one
 * way (a short answer, another type, another fence, an error, silence) and checks the driver
 * names the lie and goes on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/err.h>
#include <vio/gpu.h>

#include "fake_env.h"

enum lie {
	LIE_NONE,
	LIE_SHORT,    /* the used length is shorter than a header */
	LIE_OVERLONG, /* the used length is longer than the response buffer */
	LIE_TYPE,     /* OK_DISPLAY_INFO for a command that expects OK_NODATA */
	LIE_FENCE,    /* another fence id */
	LIE_NO_FENCE, /* the FENCE flag dropped */
	LIE_ERROR,    /* ERR_INVALID_PARAMETER */
	LIE_SILENT,   /* no answer at all */
};

struct model {
	enum lie lie;
	int lie_on_type; /* lie only to this command type (0: any) */
	uint32_t width, height, scanouts;
	unsigned commands[0x20]; /* count per command type - 0x100 */
	unsigned cursor_cmds;
	uint32_t last_res, created_w, created_h, attach_entries, attach_bad_entries;
	uint32_t scanout_res, unrefs, detaches;
	struct virtio_gpu_rect last_transfer, last_flush;
	uint64_t last_offset;
	struct fake_req req;
};

static void config_written(struct fake_vdev *vd, uint32_t off, int size, void *arg)
{
	(void)arg;
	(void)size;
	/* events_clear: clears those bits of events_read (5.7.4). */
	if (off == offsetof(struct virtio_gpu_config, events_clear)) {
		uint32_t *rd =
		    (uint32_t *)&vd->config[offsetof(struct virtio_gpu_config, events_read)];
		uint32_t *clr = (uint32_t *)&vd->config[off];
		*rd &= ~*clr;
		*clr = 0;
	}
}

static void answer(struct model *m, struct fake_vring *fv, const struct fake_req *r)
{
	static uint8_t cmd[65536];
	uint32_t n = fake_vring_gather(r, cmd, sizeof(cmd));
	const struct virtio_gpu_ctrl_hdr *c = (const void *)cmd;
	struct virtio_gpu_ctrl_hdr *resp = (void *)(uintptr_t)r->seg[r->n_out].addr;
	uint32_t resp_len = sizeof(*resp);

	assert_true(n >= sizeof(*c));
	assert_int_equal(r->n_in, 1);
	assert_true(c->flags & VIRTIO_GPU_FLAG_FENCE);
	if (c->type >= 0x100 && c->type < 0x120)
		m->commands[c->type - 0x100]++;
	memset(resp, 0, r->in_len);
	resp->type = VIRTIO_GPU_RESP_OK_NODATA;
	switch (c->type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO: {
		struct virtio_gpu_resp_display_info *d = (void *)resp;
		d->hdr.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
		d->pmodes[0].r.width = m->width;
		d->pmodes[0].r.height = m->height;
		d->pmodes[0].enabled = 1;
		resp_len = sizeof(*d);
		break;
	}
	case VIRTIO_GPU_CMD_GET_EDID: {
		struct virtio_gpu_resp_edid *e = (void *)resp;
		e->hdr.type = VIRTIO_GPU_RESP_OK_EDID;
		e->size = 128;
		e->edid[0] = 0x00, e->edid[1] = 0xff;
		resp_len = sizeof(*e);
		break;
	}
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: {
		const struct virtio_gpu_resource_create_2d *cr = (const void *)cmd;
		m->last_res = cr->resource_id;
		m->created_w = cr->width;
		m->created_h = cr->height;
		break;
	}
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: {
		const struct virtio_gpu_resource_attach_backing *ab = (const void *)cmd;
		const struct virtio_gpu_mem_entry *e = (const void *)(ab + 1);
		assert_int_equal(n, sizeof(*ab) + ab->nr_entries * sizeof(*e));
		m->attach_entries = ab->nr_entries;
		m->attach_bad_entries = 0;
		for (uint32_t i = 0; i < ab->nr_entries; i++)
			if (e[i].length != 4096 || (e[i].addr & 4095))
				m->attach_bad_entries++;
		break;
	}
	case VIRTIO_GPU_CMD_SET_SCANOUT:
		m->scanout_res = ((const struct virtio_gpu_set_scanout *)cmd)->resource_id;
		break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: {
		const struct virtio_gpu_transfer_to_host_2d *t = (const void *)cmd;
		m->last_transfer = t->r;
		m->last_offset = t->offset;
		break;
	}
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
		m->last_flush = ((const struct virtio_gpu_resource_flush *)cmd)->r;
		break;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		m->unrefs++;
		break;
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		m->detaches++;
		break;
	}
	resp->flags = VIRTIO_GPU_FLAG_FENCE;
	resp->fence_id = c->fence_id;
	uint32_t used = resp_len;
	if (m->lie && (!m->lie_on_type || (uint32_t)m->lie_on_type == c->type)) {
		switch (m->lie) {
		case LIE_SHORT:
			used = 8;
			break;
		case LIE_OVERLONG:
			used = r->in_len + 64;
			break;
		case LIE_TYPE:
			resp->type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
			break;
		case LIE_FENCE:
			resp->fence_id = c->fence_id + 7;
			break;
		case LIE_NO_FENCE:
			resp->flags = 0;
			break;
		case LIE_ERROR:
			resp->type = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
			break;
		case LIE_SILENT:
			return;
		case LIE_NONE:
			break;
		}
	}
	fake_vring_complete(fv, r->head, used);
}

static void gpu_model(struct fake_env *e)
{
	struct model *m = e->model_arg;

	if (!e->nrings && e->dev.nvqs == 2 && e->dev.vqs[1].size)
		fake_env_rings(e);
	if (!e->nrings)
		return;
	while (fake_vring_pop(&e->ring[0], &m->req))
		answer(m, &e->ring[0], &m->req);
	/* The cursorq: no answer, the buffer comes back as QEMU gives it (length 0). */
	while (fake_vring_pop(&e->ring[1], &m->req)) {
		assert_int_equal(m->req.n_in, 0);
		m->cursor_cmds++;
		fake_vring_complete(&e->ring[1], m->req.head, 0);
	}
}

struct t {
	struct fake_env *e;
	struct model m;
	struct vio_gpu gpu;
	int displays;
	int dma_after_init;
};

static void on_display(struct vio_gpu *gpu, void *arg)
{
	struct t *t = arg;
	t->displays++;
	assert_int_equal(vio_gpu_fb_create(gpu, 0, 0, 0), 0);
}

static struct t *setup_sized(uint32_t w, uint32_t h, uint64_t timeout_ns)
{
	struct t *t = calloc(1, sizeof(*t));
	struct virtio_gpu_config cfg = {.num_scanouts = 1};

	assert_non_null(t);
	t->e = fake_env_new(VIRTIO_ID_GPU, 1ull << VIRTIO_GPU_F_EDID, &cfg, sizeof(cfg), 2, 64);
	t->e->vd.on_config_write = config_written;
	t->m.width = w;
	t->m.height = h;
	t->e->model = gpu_model;
	t->e->model_arg = &t->m;
	struct vio_gpu_opts opts = {.on_display = on_display, .arg = t, .timeout_ns = timeout_ns};
	assert_int_equal(vio_gpu_init(&t->gpu, &t->e->dev, &opts), 0);
	t->dma_after_init = t->e->fp.dma_live_allocs;
	return t;
}

static struct t *setup(void)
{
	return setup_sized(640, 480, 0);
}

static void teardown(struct t *t)
{
	t->e->model = NULL;
	vio_gpu_fini(&t->gpu);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	fake_env_free(t->e);
	free(t);
}

static void test_init_reads_display_info_and_edid(void **state)
{
	(void)state;
	struct t *t = setup();

	assert_string_equal(t->e->dev.name, "virtio-gpu");
	assert_int_equal(t->gpu.num_scanouts, 1);
	assert_true(t->gpu.display[0].enabled);
	assert_int_equal(t->gpu.display[0].width, 640);
	assert_int_equal(t->gpu.display[0].height, 480);
	assert_int_equal(t->gpu.edid_len, 128);
	assert_int_equal(t->gpu.edid[1], 0xff);
	assert_int_equal(t->gpu.width, 0); /* no framebuffer yet */
	teardown(t);
}

static void test_framebuffer_is_a_list_of_pages(void **state)
{
	(void)state;
	struct t *t = setup();
	uint32_t pages = 640 * 480 * 4 / 4096;

	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), 0);
	assert_int_equal(t->gpu.width, 640);
	assert_int_equal(t->gpu.stride, 640 * 4);
	assert_int_equal(t->m.created_w, 640);
	assert_int_equal(t->m.attach_entries, pages);
	assert_int_equal(t->m.attach_bad_entries, 0);
	assert_int_equal(t->m.scanout_res, t->m.last_res);
	/* The page lists of the attach are gone once it was answered: what is left is the
	 * framebuffer's pages beside what init allocated. */
	assert_int_equal(t->e->fp.dma_live_allocs, t->dma_after_init + (int)pages);
	teardown(t);
}

static void test_flush_sends_only_the_damaged_rectangle(void **state)
{
	(void)state;
	struct t *t = setup();
	uint32_t px[3] = {1, 2, 3}, back[5];

	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), 0);
	vio_gpu_write_span(&t->gpu, 1021, 7, px, 3);	       /* outside: nothing written */
	vio_gpu_write_span(&t->gpu, 1020 - 640 + 2, 7, px, 3); /* across a page boundary */
	vio_gpu_read_span(&t->gpu, 1020 - 640 + 2, 7, back, 5);
	assert_int_equal(back[0], 1);
	assert_int_equal(back[2], 3);
	assert_int_equal(back[3], 0);
	vio_gpu_fill(&t->gpu, 630, 470, 100, 100, 0xff); /* clipped at the edges */
	vio_gpu_read_span(&t->gpu, 639, 479, back, 2);
	assert_int_equal(back[0], 0xff);
	assert_int_equal(back[1], 0); /* outside */
	assert_int_equal(vio_gpu_flush(&t->gpu, 16, 32, 8, 16), 0);
	assert_int_equal(t->m.last_transfer.x, 16);
	assert_int_equal(t->m.last_transfer.y, 32);
	assert_int_equal(t->m.last_transfer.width, 8);
	assert_int_equal(t->m.last_transfer.height, 16);
	assert_int_equal(t->m.last_offset, 32 * 640 * 4 + 16 * 4);
	assert_int_equal(t->m.last_flush.width, 8);
	assert_int_equal(vio_gpu_flush(&t->gpu, 600, 400, 1000, 1000), 0);
	assert_int_equal(t->m.last_flush.width, 40);
	assert_int_equal(t->m.last_flush.height, 80);
	teardown(t);
}

static void check_lie(enum lie lie, int on_type, int expect)
{
	struct t *t = setup();

	t->m.lie = lie;
	t->m.lie_on_type = on_type;
	assert_int_equal(vio_gpu_display_info(&t->gpu), expect);
	t->m.lie = LIE_NONE;
	/* The driver goes on: the next command is answered properly. */
	assert_int_equal(vio_gpu_display_info(&t->gpu), 0);
	assert_int_equal(t->gpu.display[0].width, 640);
	teardown(t);
}

static void test_response_shorter_than_a_header_is_refused(void **state)
{
	(void)state;
	check_lie(LIE_SHORT, 0, VIO_EPROTO);
}

static void test_response_longer_than_posted_is_refused(void **state)
{
	(void)state;
	check_lie(LIE_OVERLONG, 0, VIO_EPROTO);
}

static void test_response_of_another_fence_is_refused(void **state)
{
	(void)state;
	check_lie(LIE_FENCE, 0, VIO_EPROTO);
	check_lie(LIE_NO_FENCE, 0, VIO_EPROTO);
}

static void test_device_error_is_named_and_becomes_einval(void **state)
{
	(void)state;
	struct t *t = setup();

	t->m.lie = LIE_ERROR;
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), VIO_EINVAL);
	assert_int_equal(t->gpu.width, 0);
	assert_int_equal(t->gpu.stats.device_errors, 1);
	assert_true(fake_port_logged(&t->e->fp, "ERR_INVALID_PARAMETER"));
	assert_string_equal(vio_gpu_resp_name(VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY),
			    "ERR_OUT_OF_MEMORY");
	teardown(t);
}

static void test_response_of_wrong_type_is_refused(void **state)
{
	(void)state;
	struct t *t = setup();

	t->m.lie = LIE_TYPE;
	t->m.lie_on_type = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D;
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), VIO_EPROTO);
	assert_int_equal(t->gpu.stats.bad_responses, 1);
	t->m.lie = LIE_NONE;
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), 0);
	teardown(t);
}

static void test_silent_device_times_out_and_the_page_stays_its(void **state)
{
	(void)state;
	struct t *t = setup_sized(640, 480, 1000000);

	t->m.lie = LIE_SILENT;
	assert_int_equal(vio_gpu_display_info(&t->gpu), VIO_ETIMEDOUT);
	assert_int_equal(t->gpu.stats.timeouts, 1);
	/* The request page is still with the device: no new command until it comes back. */
	t->m.lie = LIE_NONE;
	assert_int_equal(vio_gpu_display_info(&t->gpu), VIO_ETIMEDOUT);
	teardown(t);
}

static void test_pages_the_device_never_saw_are_freed_at_once(void **state)
{
	(void)state;
	struct t *t = setup_sized(640, 480, 1000000);

	t->m.lie = LIE_SILENT;
	t->m.lie_on_type = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D;
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), VIO_ETIMEDOUT);
	/* Only the create went out, lost: the framebuffer's pages were never offered. */
	assert_int_equal(t->e->fp.dma_live_allocs, t->dma_after_init);
	teardown(t);
}

static void test_pages_of_an_unanswered_attach_wait_for_the_reset(void **state)
{
	(void)state;
	struct t *t = setup_sized(640, 480, 1000000);

	t->m.lie = LIE_SILENT;
	t->m.lie_on_type = VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING;
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), VIO_ETIMEDOUT);
	/* The device may hold them: kept (with the page list), not freed, not reused. */
	assert_true(t->e->fp.dma_live_allocs > t->dma_after_init + 300);
	assert_int_equal(t->gpu.width, 0);
	/* teardown: vio_gpu_fini resets the device, then every page goes (checked there). */
	teardown(t);
}

static void test_display_event_recreates_the_framebuffer(void **state)
{
	(void)state;
	struct t *t = setup();
	uint32_t ev = VIRTIO_GPU_EVENT_DISPLAY;

	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), 0);
	uint32_t old_res = t->m.last_res;
	t->m.width = 800;
	t->m.height = 600;
	fake_env_set_config(t->e, offsetof(struct virtio_gpu_config, events_read), &ev, sizeof(ev));
	fake_env_config_irq(t->e);
	assert_int_equal(vio_gpu_poll(&t->gpu), 0);
	assert_int_equal(t->displays, 1);
	assert_int_equal(t->gpu.stats.display_events, 1);
	assert_int_equal(t->gpu.width, 800);
	assert_int_equal(t->gpu.height, 600);
	assert_int_not_equal(t->m.last_res, old_res);
	assert_int_equal(t->m.scanout_res, t->m.last_res);
	assert_int_equal(t->m.detaches, 1); /* the old one, once the new one was shown */
	assert_int_equal(t->m.unrefs, 1);
	/* Acknowledged: events_clear cleared it, so the next poll sees nothing. */
	assert_int_equal(vio_gpu_poll(&t->gpu), 0);
	assert_int_equal(t->displays, 1);
	teardown(t);
}

static void test_display_size_is_clamped(void **state)
{
	(void)state;
	struct t *t = setup_sized(100000, 100000, 0);

	assert_int_equal(t->gpu.display[0].width, VIO_GPU_MAX_WIDTH);
	assert_int_equal(t->gpu.display[0].height, VIO_GPU_MAX_HEIGHT);
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, VIO_GPU_MAX_WIDTH + 1, 10), VIO_EINVAL);
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 1, 0, 0), VIO_EINVAL); /* one scanout */
	teardown(t);
}

static void test_bad_scanout_count_is_refused(void **state)
{
	(void)state;
	struct virtio_gpu_config cfg = {.num_scanouts = 17};
	struct fake_env *e = fake_env_new(VIRTIO_ID_GPU, 0, &cfg, sizeof(cfg), 2, 64);
	struct vio_gpu gpu;

	assert_int_equal(vio_gpu_init(&gpu, &e->dev, NULL), VIO_ERANGE);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_env_free(e);
}

static void test_cursor_update_and_moves(void **state)
{
	(void)state;
	struct t *t = setup();
	static uint32_t img[64 * 64];

	assert_int_equal(vio_gpu_cursor_move(&t->gpu, 1, 1), VIO_EINVAL); /* no image yet */
	assert_int_equal(vio_gpu_fb_create(&t->gpu, 0, 0, 0), 0);
	assert_int_equal(vio_gpu_cursor_set(&t->gpu, img, 64, 0), VIO_EINVAL);
	assert_int_equal(vio_gpu_cursor_set(&t->gpu, img, 0, 0), 0);
	assert_int_equal(t->m.attach_entries, 4); /* 64x64x4 bytes */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(vio_gpu_cursor_move(&t->gpu, (uint32_t)i, 2), 0);
		fake_env_run(t->e);
	}
	assert_int_equal(t->gpu.cursor_x, 99);
	assert_int_equal(t->m.cursor_cmds, 101);
	teardown(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_reads_display_info_and_edid),
	    cmocka_unit_test(test_framebuffer_is_a_list_of_pages),
	    cmocka_unit_test(test_flush_sends_only_the_damaged_rectangle),
	    cmocka_unit_test(test_response_shorter_than_a_header_is_refused),
	    cmocka_unit_test(test_response_longer_than_posted_is_refused),
	    cmocka_unit_test(test_response_of_another_fence_is_refused),
	    cmocka_unit_test(test_device_error_is_named_and_becomes_einval),
	    cmocka_unit_test(test_response_of_wrong_type_is_refused),
	    cmocka_unit_test(test_silent_device_times_out_and_the_page_stays_its),
	    cmocka_unit_test(test_pages_the_device_never_saw_are_freed_at_once),
	    cmocka_unit_test(test_pages_of_an_unanswered_attach_wait_for_the_reset),
	    cmocka_unit_test(test_display_event_recreates_the_framebuffer),
	    cmocka_unit_test(test_display_size_is_clamped),
	    cmocka_unit_test(test_bad_scanout_count_is_refused),
	    cmocka_unit_test(test_cursor_update_and_moves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
