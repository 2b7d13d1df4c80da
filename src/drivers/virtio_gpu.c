/*
 * virtio-gpu, 2D: a framebuffer and a cursor (virtio 1.2 section 5.7). See include/vio/gpu.h.
 *
 * Exercised by QEMU with
 *
 *	-device virtio-gpu-pci,xres=1024,yres=768 -display none   (or a window: -display gtk)
 *
 * The device knows "resources": images it keeps on the host side. A 2D resource gets its
 * pixels from guest pages we attach to it as backing; TRANSFER_TO_HOST_2D copies a rectangle
 * of those pages into the resource, and RESOURCE_FLUSH shows it on every scanout the resource
 * is set on (SET_SCANOUT). So the guest draws into plain memory, and tells the host which
 * rectangles changed: nothing is copied that was not drawn. The cursor is a 64x64 resource
 * of its own that the cursorq places over the scanout (5.7.6.10).
 *
 * Every command here is synchronous: one request page holds the command and its response,
 * one command is with the device at a time, and the call waits (bounded) for the answer.
 * Each command carries VIRTIO_GPU_FLAG_FENCE with a new fence id, which the device must
 * echo; an answer that is short, of another type or of another fence is refused
 * (VIO_EPROTO). Cursor commands have no answer: they go in their own slots and come back
 * with the next look at the cursorq.
 *
 * Follow one request (show a rectangle the kernel drew):
 *	vio_gpu_flush    clips the rectangle, TRANSFER_TO_HOST_2D then RESOURCE_FLUSH
 *	cmd_start        writes the header (type, FENCE, fence id) in the request page
 *	cmd_run          posts command + response, kicks, waits for the used entry
 *	check_resp       length, type (device errors by their name), fence
 */
#include <vio/alloc.h>
#include <vio/gpu.h>

#include "driver.h"

#define GPU_PAGE 4096u
/* The request page: the command (and a short memory-entry list) first, the response after. */
#define GPU_CMD_MAX	1024u
#define GPU_RESP_OFF	1024u
#define GPU_CURSOR_SLOT 64u
/* Pages of memory entries an ATTACH_BACKING may take: 256 entries (1 MiB of backing) each. */
#define GPU_MAX_LISTS VIO_GPU_MAX_LISTS
/* How often vio_gpu_poll reads events_read without a config interrupt telling it to. */
#define GPU_EVENT_POLL_NS 50000000ull
#define GPU_WAIT_SPIN_NS  1000000ull

_Static_assert(GPU_RESP_OFF + sizeof(struct virtio_gpu_resp_edid) <= GPU_PAGE, "request page");
_Static_assert(VIO_GPU_CURSOR_SIZE * VIO_GPU_CURSOR_SIZE * 4 % GPU_PAGE == 0,
	       "the cursor image fills its pages exactly");
_Static_assert((uint64_t)VIO_GPU_MAX_WIDTH *VIO_GPU_MAX_HEIGHT * 4 <=
		   GPU_MAX_LISTS * 256ull * GPU_PAGE,
	       "the largest framebuffer's page list must fit GPU_MAX_LISTS pages");
_Static_assert(VIO_GPU_CURSOR_SLOTS *GPU_CURSOR_SLOT <= GPU_PAGE, "cursor page");
_Static_assert(sizeof(struct virtio_gpu_update_cursor) <= GPU_CURSOR_SLOT, "cursor slot");

static const char gpu_name[] = "virtio-gpu";

static void zero(void *p, size_t n)
{
	__builtin_memset(p, 0, n);
}

const char *vio_gpu_resp_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_GPU_RESP_OK_NODATA:
		return "OK_NODATA";
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO:
		return "OK_DISPLAY_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO:
		return "OK_CAPSET_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET:
		return "OK_CAPSET";
	case VIRTIO_GPU_RESP_OK_EDID:
		return "OK_EDID";
	case VIRTIO_GPU_RESP_ERR_UNSPEC:
		return "ERR_UNSPEC";
	case VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY:
		return "ERR_OUT_OF_MEMORY";
	case VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID:
		return "ERR_INVALID_SCANOUT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID:
		return "ERR_INVALID_RESOURCE_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID:
		return "ERR_INVALID_CONTEXT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER:
		return "ERR_INVALID_PARAMETER";
	default:
		return "unknown";
	}
}

/* --- one command ------------------------------------------------------------------------ */

/* Start a command of `len` bytes in the request page: zeroed, with its type and a new fence. */
static void *cmd_start(struct vio_gpu *gpu, uint32_t type, uint32_t len)
{
	struct virtio_gpu_ctrl_hdr *h = (struct virtio_gpu_ctrl_hdr *)gpu->gpu_req;

	VIO_ASSERT(len <= GPU_CMD_MAX);
	zero(gpu->gpu_req, GPU_PAGE);
	h->type = type;
	h->flags = VIRTIO_GPU_FLAG_FENCE;
	h->fence_id = ++gpu->gpu_fence;
	return h;
}

static void gpu_complain(struct vio_gpu *gpu, const char *what, uint32_t a, uint32_t b)
{
	vio_logf(gpu->dev->port, VIO_LOG_ERR, "%s: %s (%u, %u)", gpu_name, what, a, b);
}

/*
 * The answer in the request page, for a command that expects `expect` of at least
 * `min_len` bytes (5.7.6.7). The device's word is checked, never trusted: a used length
 * beyond what we posted, or short of a header; an error type, logged by name; another type;
 * a missing or wrong fence.
 */
static int check_resp(struct vio_gpu *gpu, const struct vio_vq_used *u, uint32_t expect,
		      uint32_t min_len)
{
	const struct virtio_gpu_ctrl_hdr *r =
	    (const struct virtio_gpu_ctrl_hdr *)(gpu->gpu_req + GPU_RESP_OFF);
	const struct virtio_gpu_ctrl_hdr *c = (const struct virtio_gpu_ctrl_hdr *)gpu->gpu_req;
	uint32_t type = r->type, flags = r->flags;
	uint64_t fence = r->fence_id;

	gpu->stats.commands++;
	if (u->len > u->in_len || u->len < sizeof(*r)) {
		gpu->stats.bad_responses++;
		gpu_complain(gpu, "response length out of range (length, posted)", u->len,
			     u->in_len);
		return VIO_EPROTO;
	}
	if (type >= VIRTIO_GPU_RESP_ERR_UNSPEC && type < VIRTIO_GPU_RESP_ERR_UNSPEC + 0x100) {
		gpu->stats.device_errors++;
		vio_logf(gpu->dev->port, VIO_LOG_ERR, "%s: command 0x%x: %s", gpu_name, c->type,
			 vio_gpu_resp_name(type));
		if (type == VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY)
			return VIO_ENOMEM;
		if (type == VIRTIO_GPU_RESP_ERR_UNSPEC ||
		    type > VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER)
			return VIO_EIO;
		return VIO_EINVAL;
	}
	if (type != expect || u->len < min_len) {
		gpu->stats.bad_responses++;
		gpu_complain(gpu, "unexpected response (type, length)", type, u->len);
		return VIO_EPROTO;
	}
	if (!(flags & VIRTIO_GPU_FLAG_FENCE) || fence != c->fence_id) {
		gpu->stats.bad_responses++;
		gpu_complain(gpu, "response for another fence (ours, its)", (uint32_t)c->fence_id,
			     (uint32_t)fence);
		return VIO_EPROTO;
	}
	return 0;
}

/* A command that timed out may still come back: take it, and the request page is ours. */
static void reap_lost(struct vio_gpu *gpu)
{
	struct vio_vq_used u;

	while (gpu->gpu_req_lost && vio_vq_get_used(&gpu->gpu_vq[VIRTIO_GPU_Q_CONTROL], &u) == 0)
		if (u.cookie == gpu->gpu_req)
			gpu->gpu_req_lost = false;
}

/*
 * Post the command in the request page (cmd_len bytes, then `nextra` device-readable pages
 * of `extra`, whole but for `last_len` bytes of the last) with a response of resp_len bytes,
 * and wait for the answer. Returns 0 or the error check_resp, the queue or the wait found.
 */
static int cmd_run(struct vio_gpu *gpu, uint32_t cmd_len, const struct vio_gpu_page *extra,
		   unsigned nextra, uint32_t last_len, uint32_t expect, uint32_t resp_len)
{
	const struct vio_port *port = gpu->dev->port;
	struct vio_vq *vq = &gpu->gpu_vq[VIRTIO_GPU_Q_CONTROL];
	struct vio_sg sg[2 + GPU_MAX_LISTS];
	struct vio_vq_used u;
	unsigned n = 0;
	int err;

	if (gpu->gpu_req_lost)
		reap_lost(gpu);
	if (gpu->gpu_req_lost)
		return VIO_ETIMEDOUT;
	VIO_ASSERT(nextra <= GPU_MAX_LISTS);
	sg[n++] = (struct vio_sg){gpu->gpu_req, cmd_len};
	for (unsigned i = 0; i < nextra; i++)
		sg[n++] = (struct vio_sg){extra[i].virt, i + 1 < nextra ? GPU_PAGE : last_len};
	sg[n++] = (struct vio_sg){gpu->gpu_req + GPU_RESP_OFF, resp_len};
	err = vio_vq_add(vq, sg, n - 1, 1, gpu->gpu_req);
	if (err)
		return err;
	vio_vq_kick(vq);

	uint64_t start = port->now_ns(port->ctx), spun = start;
	for (;;) {
		err = vio_vq_get_used(vq, &u);
		if (err == 0) {
			/* One command at a time: the only cookie on this queue is the page. */
			VIO_ASSERT(u.cookie == gpu->gpu_req);
			return check_resp(gpu, &u, expect, resp_len);
		}
		if (err != VIO_EAGAIN)
			return err;
		uint64_t now = port->now_ns(port->ctx);
		if (now - start > gpu->gpu_opts.timeout_ns) {
			gpu->stats.timeouts++;
			gpu->gpu_req_lost = true;
			gpu_complain(gpu, "command not answered in time (type, fence)",
				     ((struct virtio_gpu_ctrl_hdr *)gpu->gpu_req)->type,
				     (uint32_t)gpu->gpu_fence);
			return vio_dev_on_timeout(gpu->dev);
		}
		if (gpu->gpu_opts.wait && now - spun >= GPU_WAIT_SPIN_NS) {
			gpu->gpu_opts.wait(gpu, gpu->gpu_opts.arg);
			spun = port->now_ns(port->ctx);
		}
		if (port->delay_us)
			port->delay_us(port->ctx, 10);
	}
}

/* A command whose answer is OK_NODATA. */
static int cmd_nodata(struct vio_gpu *gpu, uint32_t cmd_len)
{
	return cmd_run(gpu, cmd_len, NULL, 0, 0, VIRTIO_GPU_RESP_OK_NODATA,
		       sizeof(struct virtio_gpu_ctrl_hdr));
}

/* --- display info and EDID --------------------------------------------------------------- */

int vio_gpu_display_info(struct vio_gpu *gpu)
{
	const struct virtio_gpu_resp_display_info *r =
	    (const struct virtio_gpu_resp_display_info *)(gpu->gpu_req + GPU_RESP_OFF);
	int err;

	if (!gpu->dev)
		return VIO_EINVAL;
	cmd_start(gpu, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, sizeof(struct virtio_gpu_ctrl_hdr));
	err = cmd_run(gpu, sizeof(struct virtio_gpu_ctrl_hdr), NULL, 0, 0,
		      VIRTIO_GPU_RESP_OK_DISPLAY_INFO, sizeof(*r));
	if (err)
		return err;
	for (uint32_t i = 0; i < gpu->num_scanouts; i++) {
		/* Read once, then clamp: the page is the device's to rewrite. */
		uint32_t w = r->pmodes[i].r.width, h = r->pmodes[i].r.height;
		struct vio_gpu_display *d = &gpu->display[i];

		d->enabled = r->pmodes[i].enabled != 0 && w && h;
		d->width = w > gpu->gpu_opts.max_width ? gpu->gpu_opts.max_width : w;
		d->height = h > gpu->gpu_opts.max_height ? gpu->gpu_opts.max_height : h;
	}
	return 0;
}

static int get_edid(struct vio_gpu *gpu)
{
	const struct virtio_gpu_resp_edid *r =
	    (const struct virtio_gpu_resp_edid *)(gpu->gpu_req + GPU_RESP_OFF);
	struct virtio_gpu_get_edid *c = cmd_start(gpu, VIRTIO_GPU_CMD_GET_EDID, sizeof(*c));
	int err;

	c->scanout = 0;
	err = cmd_run(gpu, sizeof(*c), NULL, 0, 0, VIRTIO_GPU_RESP_OK_EDID, sizeof(*r));
	if (err)
		return err;
	uint32_t n = r->size;
	if (n > sizeof(r->edid)) {
		gpu->stats.bad_responses++;
		gpu_complain(gpu, "EDID size out of range (size, max)", n, sizeof(r->edid));
		return VIO_EPROTO;
	}
	if (n > VIO_GPU_EDID_MAX)
		n = VIO_GPU_EDID_MAX;
	for (uint32_t i = 0; i < n; i++)
		gpu->edid[i] = r->edid[i];
	gpu->edid_len = n;
	return 0;
}

/* --- resources and their backing pages ---------------------------------------------------- */

static void free_pages(struct vio_gpu *gpu, struct vio_gpu_page *pages, uint32_t n)
{
	const struct vio_port *port = gpu->dev->port;

	for (uint32_t i = 0; i < n; i++)
		if (pages[i].virt) {
			port->dma_free(port->ctx, pages[i].virt, GPU_PAGE);
			pages[i].virt = NULL;
		}
}

static int alloc_pages(struct vio_gpu *gpu, struct vio_gpu_page *pages, uint32_t n)
{
	const struct vio_port *port = gpu->dev->port;

	for (uint32_t i = 0; i < n; i++) {
		pages[i].virt = port->dma_alloc(port->ctx, GPU_PAGE, &pages[i].phys);
		if (!pages[i].virt) {
			free_pages(gpu, pages, i);
			return VIO_ENOMEM;
		}
	}
	return 0;
}

static int resource_create(struct vio_gpu *gpu, uint32_t format, uint32_t w, uint32_t h,
			   uint32_t *res)
{
	struct virtio_gpu_resource_create_2d *c =
	    cmd_start(gpu, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, sizeof(*c));
	uint32_t id = ++gpu->gpu_next_res;

	c->resource_id = id;
	c->format = format;
	c->width = w;
	c->height = h;
	int err = cmd_nodata(gpu, sizeof(*c));
	if (!err)
		*res = id; /* a resource the device refused is none to take back */
	return err;
}

static int resource_unref(struct vio_gpu *gpu, uint32_t res)
{
	struct virtio_gpu_resource_unref *c =
	    cmd_start(gpu, VIRTIO_GPU_CMD_RESOURCE_UNREF, sizeof(*c));

	c->resource_id = res;
	return cmd_nodata(gpu, sizeof(*c));
}

static int detach_backing(struct vio_gpu *gpu, uint32_t res)
{
	struct virtio_gpu_resource_detach_backing *c =
	    cmd_start(gpu, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, sizeof(*c));

	c->resource_id = res;
	return cmd_nodata(gpu, sizeof(*c));
}

/*
 * RESOURCE_ATTACH_BACKING with one memory entry per page (5.7.6.8). A short list follows
 * the command in the request page; a long one (a framebuffer's) is written into pages of
 * its own, which go as further device-readable segments and are freed once the device has
 * answered (it has then taken the list).
 */
static int attach_backing(struct vio_gpu *gpu, uint32_t res, const struct vio_gpu_page *pages,
			  uint32_t n)
{
	const uint32_t per_page = GPU_PAGE / sizeof(struct virtio_gpu_mem_entry);
	struct virtio_gpu_resource_attach_backing *c;
	uint32_t inline_max = (GPU_CMD_MAX - sizeof(*c)) / sizeof(struct virtio_gpu_mem_entry);
	struct vio_gpu_page lists[GPU_MAX_LISTS];
	uint32_t nlists = 0;
	int err;

	if (n > inline_max) {
		nlists = (n + per_page - 1) / per_page;
		if (nlists > GPU_MAX_LISTS)
			return VIO_EINVAL;
		err = alloc_pages(gpu, lists, nlists);
		if (err)
			return err;
	}
	c = cmd_start(gpu, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, sizeof(*c));
	c->resource_id = res;
	c->nr_entries = n;
	struct virtio_gpu_mem_entry *inl = (struct virtio_gpu_mem_entry *)(c + 1);
	for (uint32_t i = 0; i < n; i++) {
		struct virtio_gpu_mem_entry *e =
		    nlists ? (struct virtio_gpu_mem_entry *)lists[i / per_page].virt + i % per_page
			   : &inl[i];
		e->addr = pages[i].phys;
		e->length = GPU_PAGE;
	}
	uint32_t last_len = (n - (nlists ? nlists - 1 : 0) * per_page) *
			    (uint32_t)sizeof(struct virtio_gpu_mem_entry);
	uint32_t cmd_len = sizeof(*c) + (nlists ? 0 : n * (uint32_t)sizeof(*inl));
	err = cmd_run(gpu, cmd_len, lists, nlists, last_len, VIRTIO_GPU_RESP_OK_NODATA,
		      sizeof(struct virtio_gpu_ctrl_hdr));
	if (!gpu->gpu_req_lost) {
		free_pages(gpu, lists, nlists);
	} else if (!gpu->gpu_lost_nlists) {
		/* The device may still read the list: it goes after the reset (free_all). */
		for (uint32_t k = 0; k < nlists; k++)
			gpu->gpu_lost_lists[k] = lists[k];
		gpu->gpu_lost_nlists = nlists;
	}
	return err;
}

static int set_scanout(struct vio_gpu *gpu, uint32_t scanout, uint32_t res, uint32_t w, uint32_t h)
{
	struct virtio_gpu_set_scanout *c = cmd_start(gpu, VIRTIO_GPU_CMD_SET_SCANOUT, sizeof(*c));

	c->r = (struct virtio_gpu_rect){0, 0, w, h};
	c->scanout_id = scanout;
	c->resource_id = res;
	return cmd_nodata(gpu, sizeof(*c));
}

static int transfer(struct vio_gpu *gpu, uint32_t res, uint32_t stride, uint32_t x, uint32_t y,
		    uint32_t w, uint32_t h)
{
	struct virtio_gpu_transfer_to_host_2d *c =
	    cmd_start(gpu, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, sizeof(*c));

	c->r = (struct virtio_gpu_rect){x, y, w, h};
	c->offset = (uint64_t)y * stride + (uint64_t)x * 4;
	c->resource_id = res;
	return cmd_nodata(gpu, sizeof(*c));
}

static int resource_flush(struct vio_gpu *gpu, uint32_t res, uint32_t x, uint32_t y, uint32_t w,
			  uint32_t h)
{
	struct virtio_gpu_resource_flush *c =
	    cmd_start(gpu, VIRTIO_GPU_CMD_RESOURCE_FLUSH, sizeof(*c));

	c->r = (struct virtio_gpu_rect){x, y, w, h};
	c->resource_id = res;
	return cmd_nodata(gpu, sizeof(*c));
}

/* Take a resource back from the device: detach its pages, forget it. True when the pages
 * are ours again: the device answered the detach (an unanswered one leaves them to it). */
static bool resource_drop(struct vio_gpu *gpu, uint32_t res)
{
	detach_backing(gpu, res);
	if (gpu->gpu_req_lost)
		return false;
	resource_unref(gpu, res);
	return true;
}

/* --- the framebuffer ---------------------------------------------------------------------- */

/*
 * Pages the device may still use (it never answered the command that would have given them
 * back) wait here for the reset in vio_gpu_fini, after which they are freed. One list is
 * kept; the pages of a second are leaked, as a dead device's are.
 */
static void orphan(struct vio_gpu *gpu, struct vio_gpu_page *pages, uint32_t n)
{
	if (!gpu->gpu_orphan) {
		gpu->gpu_orphan = pages;
		gpu->gpu_orphan_npages = n;
		return;
	}
	vio_logf(gpu->dev->port, VIO_LOG_WARN, "%s: %u pages left to the device", gpu_name, n);
	vio_priv_free(gpu->dev->port, pages, n * sizeof(*pages));
}

static void free_orphan(struct vio_gpu *gpu, bool pages_too)
{
	if (!gpu->gpu_orphan)
		return;
	if (pages_too)
		free_pages(gpu, gpu->gpu_orphan, gpu->gpu_orphan_npages);
	vio_priv_free(gpu->dev->port, gpu->gpu_orphan,
		      gpu->gpu_orphan_npages * sizeof(struct vio_gpu_page));
	gpu->gpu_orphan = NULL;
	gpu->gpu_orphan_npages = 0;
}

static void fb_release(struct vio_gpu *gpu)
{
	if (gpu->gpu_fb) {
		free_pages(gpu, gpu->gpu_fb, gpu->gpu_fb_npages);
		vio_priv_free(gpu->dev->port, gpu->gpu_fb,
			      gpu->gpu_fb_npages * sizeof(struct vio_gpu_page));
	}
	gpu->gpu_fb = NULL;
	gpu->gpu_fb_npages = 0;
	gpu->gpu_fb_res = 0;
	gpu->width = gpu->height = gpu->stride = 0;
}

int vio_gpu_fb_create(struct vio_gpu *gpu, uint32_t scanout, uint32_t width, uint32_t height)
{
	const struct vio_port *port;
	struct vio_gpu_page *pages;
	uint32_t res = 0, npages;
	int err;

	if (!gpu->dev || scanout >= gpu->num_scanouts)
		return VIO_EINVAL;
	port = gpu->dev->port;
	if (!width || !height) {
		const struct vio_gpu_display *d = &gpu->display[scanout];
		width = d->enabled ? d->width : VIO_GPU_DEFAULT_WIDTH;
		height = d->enabled ? d->height : VIO_GPU_DEFAULT_HEIGHT;
	}
	if (width > gpu->gpu_opts.max_width || height > gpu->gpu_opts.max_height)
		return VIO_EINVAL;
	npages = (width * height * 4 + GPU_PAGE - 1) / GPU_PAGE;
	pages = vio_priv_alloc(port, npages * sizeof(*pages));
	if (!pages)
		return VIO_ENOMEM;
	err = alloc_pages(gpu, pages, npages);
	if (err) {
		vio_priv_free(port, pages, npages * sizeof(*pages));
		return err;
	}

	/* held: the device has the pages (it took the list), or may have (it never answered). */
	bool held = false;
	err = resource_create(gpu, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, width, height, &res);
	if (!err) {
		err = attach_backing(gpu, res, pages, npages);
		held = !err || gpu->gpu_req_lost;
	}
	if (!err)
		err = set_scanout(gpu, scanout, res, width, height);
	if (!err)
		err = transfer(gpu, res, width * 4, 0, 0, width, height);
	if (!err)
		err = resource_flush(gpu, res, 0, 0, width, height);
	if (err) {
		vio_logf(port, VIO_LOG_ERR, "%s: framebuffer %ux%u: %s", gpu_name, width, height,
			 vio_strerror(err));
		if (gpu->gpu_fb_res && !gpu->gpu_req_lost)
			set_scanout(gpu, gpu->scanout, gpu->gpu_fb_res, gpu->width, gpu->height);
		if (held && !gpu->gpu_req_lost)
			held = !resource_drop(gpu, res);
		else if (res && !gpu->gpu_req_lost)
			resource_unref(gpu, res);
		if (held) {
			orphan(gpu, pages, npages);
		} else {
			free_pages(gpu, pages, npages);
			vio_priv_free(port, pages, npages * sizeof(*pages));
		}
		return err;
	}

	/* The new one is on screen: the old one can go. */
	if (gpu->gpu_fb_res) {
		if (resource_drop(gpu, gpu->gpu_fb_res))
			fb_release(gpu);
		else
			orphan(gpu, gpu->gpu_fb, gpu->gpu_fb_npages);
	}
	gpu->gpu_fb = pages;
	gpu->gpu_fb_npages = npages;
	gpu->gpu_fb_res = res;
	gpu->width = width;
	gpu->height = height;
	gpu->stride = width * 4;
	gpu->scanout = scanout;
	return 0;
}

int vio_gpu_fb_destroy(struct vio_gpu *gpu)
{
	int err;

	if (!gpu->dev || !gpu->gpu_fb_res)
		return 0;
	err = set_scanout(gpu, gpu->scanout, 0, 0, 0);
	if (!gpu->gpu_req_lost && resource_drop(gpu, gpu->gpu_fb_res)) {
		fb_release(gpu);
		return err;
	}
	/* The device may still read the pages: keep them for the reset, forget the framebuffer. */
	orphan(gpu, gpu->gpu_fb, gpu->gpu_fb_npages);
	gpu->gpu_fb = NULL;
	gpu->gpu_fb_npages = 0;
	gpu->gpu_fb_res = 0;
	gpu->width = gpu->height = gpu->stride = 0;
	return err ? err : VIO_ETIMEDOUT;
}

/* Pixel (x, y) of the framebuffer, which the caller clipped: a pixel never straddles pages
 * (4-byte pixels, a stride of 4-byte pixels). */
static uint32_t *pixel(const struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t *left)
{
	uint32_t off = y * gpu->stride + x * 4;
	uint32_t in = off % GPU_PAGE;

	VIO_ASSERT(off / GPU_PAGE < gpu->gpu_fb_npages);
	*left = (GPU_PAGE - in) / 4;
	return (uint32_t *)(gpu->gpu_fb[off / GPU_PAGE].virt + in);
}

/* Clip a span of row y: how many pixels from x on lie inside. */
static uint32_t clip_span(const struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t n)
{
	if (!gpu->gpu_fb || y >= gpu->height || x >= gpu->width)
		return 0;
	return n > gpu->width - x ? gpu->width - x : n;
}

void vio_gpu_write_span(struct vio_gpu *gpu, uint32_t x, uint32_t y, const uint32_t *px, uint32_t n)
{
	n = clip_span(gpu, x, y, n);
	while (n) {
		uint32_t left, *p = pixel(gpu, x, y, &left);
		uint32_t k = left < n ? left : n;
		for (uint32_t i = 0; i < k; i++)
			p[i] = px[i];
		px += k;
		x += k;
		n -= k;
	}
}

void vio_gpu_read_span(const struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t *px, uint32_t n)
{
	uint32_t m = clip_span(gpu, x, y, n);

	for (uint32_t i = m; i < n; i++)
		px[i] = 0;
	while (m) {
		uint32_t left, *p = pixel(gpu, x, y, &left);
		uint32_t k = left < m ? left : m;
		for (uint32_t i = 0; i < k; i++)
			px[i] = p[i];
		px += k;
		x += k;
		m -= k;
	}
}

void vio_gpu_fill(struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		  uint32_t color)
{
	for (uint32_t row = y; row < y + h && row < gpu->height; row++) {
		uint32_t n = clip_span(gpu, x, row, w), cx = x;
		while (n) {
			uint32_t left, *p = pixel(gpu, cx, row, &left);
			uint32_t k = left < n ? left : n;
			for (uint32_t i = 0; i < k; i++)
				p[i] = color;
			cx += k;
			n -= k;
		}
	}
}

int vio_gpu_flush(struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	int err;

	if (!gpu->dev || !gpu->gpu_fb_res)
		return VIO_EINVAL;
	if (x >= gpu->width || y >= gpu->height || !w || !h)
		return 0;
	if (w > gpu->width - x)
		w = gpu->width - x;
	if (h > gpu->height - y)
		h = gpu->height - y;
	err = transfer(gpu, gpu->gpu_fb_res, gpu->stride, x, y, w, h);
	if (!err)
		err = resource_flush(gpu, gpu->gpu_fb_res, x, y, w, h);
	if (!err)
		gpu->stats.flushes++;
	return err;
}

/* --- the cursor --------------------------------------------------------------------------- */

static void cursor_reap(struct vio_gpu *gpu)
{
	struct vio_vq_used u;

	while (vio_vq_get_used(&gpu->gpu_vq[VIRTIO_GPU_Q_CURSOR], &u) == 0) {
		uint32_t slot =
		    (uint32_t)((uint8_t *)u.cookie - gpu->gpu_cursor_cmds) / GPU_CURSOR_SLOT;
		/* The core checked the cookie was in flight: one of our slots. */
		VIO_ASSERT(slot < VIO_GPU_CURSOR_SLOTS &&
			   gpu->gpu_cursor_nfree < VIO_GPU_CURSOR_SLOTS);
		gpu->gpu_cursor_free[gpu->gpu_cursor_nfree++] = (uint8_t)slot;
	}
}

static int cursor_cmd(struct vio_gpu *gpu, uint32_t type, uint32_t x, uint32_t y)
{
	struct vio_vq *vq = &gpu->gpu_vq[VIRTIO_GPU_Q_CURSOR];

	cursor_reap(gpu);
	if (!gpu->gpu_cursor_nfree) {
		gpu->stats.cursor_busy++;
		return VIO_EAGAIN;
	}
	uint8_t slot = gpu->gpu_cursor_free[--gpu->gpu_cursor_nfree];
	struct virtio_gpu_update_cursor *c =
	    (struct virtio_gpu_update_cursor *)(gpu->gpu_cursor_cmds + slot * GPU_CURSOR_SLOT);
	zero(c, sizeof(*c));
	c->hdr.type = type;
	c->pos = (struct virtio_gpu_cursor_pos){gpu->scanout, x, y, 0};
	c->resource_id = gpu->gpu_cursor_res;
	struct vio_sg sg = {c, sizeof(*c)};
	int err = vio_vq_add(vq, &sg, 1, 0, c);
	if (err) {
		gpu->gpu_cursor_free[gpu->gpu_cursor_nfree++] = slot;
		return err;
	}
	vio_vq_kick(vq);
	gpu->stats.cursor_cmds++;
	gpu->cursor_x = x;
	gpu->cursor_y = y;
	return 0;
}

int vio_gpu_cursor_set(struct vio_gpu *gpu, const uint32_t *image, uint32_t hot_x, uint32_t hot_y)
{
	const uint32_t n = sizeof(gpu->gpu_cursor_pages) / sizeof(gpu->gpu_cursor_pages[0]);
	const uint32_t side = VIO_GPU_CURSOR_SIZE;
	int err;

	if (!gpu->dev || !gpu->gpu_fb_res || hot_x >= side || hot_y >= side)
		return VIO_EINVAL;
	if (!gpu->gpu_cursor_res) {
		uint32_t res = 0;
		bool held = false; /* as in vio_gpu_fb_create */
		err = alloc_pages(gpu, gpu->gpu_cursor_pages, n);
		if (err)
			return err;
		err = resource_create(gpu, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, side, side, &res);
		if (!err) {
			err = attach_backing(gpu, res, gpu->gpu_cursor_pages, n);
			held = !err || gpu->gpu_req_lost;
		}
		if (err) {
			if (held && !gpu->gpu_req_lost)
				held = !resource_drop(gpu, res);
			else if (res && !gpu->gpu_req_lost)
				resource_unref(gpu, res);
			if (held)
				gpu->gpu_cursor_res = res; /* its pages stay until the reset */
			else
				free_pages(gpu, gpu->gpu_cursor_pages, n);
			return err;
		}
		gpu->gpu_cursor_res = res;
	}
	/* The image, a page at a time: it fills its pages exactly. */
	for (uint32_t p = 0; p < n; p++)
		__builtin_memcpy(gpu->gpu_cursor_pages[p].virt,
				 (const uint8_t *)image + (size_t)p * GPU_PAGE, GPU_PAGE);
	err = transfer(gpu, gpu->gpu_cursor_res, side * 4, 0, 0, side, side);
	if (err)
		return err;
	err = cursor_cmd(gpu, VIRTIO_GPU_CMD_UPDATE_CURSOR, gpu->cursor_x, gpu->cursor_y);
	if (err)
		return err;
	gpu->cursor_shown = true;
	return 0;
}

int vio_gpu_cursor_move(struct vio_gpu *gpu, uint32_t x, uint32_t y)
{
	if (!gpu->dev || !gpu->cursor_shown)
		return VIO_EINVAL;
	return cursor_cmd(gpu, VIRTIO_GPU_CMD_MOVE_CURSOR, x, y);
}

/* --- events, poll, init, fini ------------------------------------------------------------- */

/* The config interrupt: only note it; vio_gpu_poll does the work in the owner's context. */
static void gpu_config_changed(struct vio_dev *dev, void *arg)
{
	(void)dev;
	((struct vio_gpu *)arg)->gpu_config_changed = true;
}

int vio_gpu_poll(struct vio_gpu *gpu)
{
	const struct vio_port *port;
	uint32_t events = 0;
	int err;

	if (!gpu->dev)
		return VIO_EINVAL;
	port = gpu->dev->port;
	err = vio_dev_poll(gpu->dev);
	if (err)
		return err;
	cursor_reap(gpu);
	reap_lost(gpu);

	/* 5.7.4: events_read holds pending events until the driver writes them to
	 * events_clear. Without a config interrupt (polled, or no vector left) look now and
	 * then. */
	uint64_t now = port->now_ns(port->ctx);
	if (gpu->gpu_config_changed || gpu->gpu_event_next_ns <= now) {
		gpu->gpu_event_next_ns = now + GPU_EVENT_POLL_NS;
		gpu->gpu_config_changed = false;
		err = vio_dev_config_read(gpu->dev, offsetof(struct virtio_gpu_config, events_read),
					  &events, sizeof(events));
		if (err)
			return err;
	}
	if (!(events & VIRTIO_GPU_EVENT_DISPLAY))
		return 0;
	vio_dev_config_write(gpu->dev, offsetof(struct virtio_gpu_config, events_clear), &events,
			     sizeof(events));
	gpu->stats.display_events++;
	err = vio_gpu_display_info(gpu);
	if (err)
		return err;
	if (gpu->gpu_opts.on_display)
		gpu->gpu_opts.on_display(gpu, gpu->gpu_opts.arg);
	return 0;
}

static void free_all(struct vio_gpu *gpu)
{
	const struct vio_port *port = gpu->dev->port;
	const uint32_t n = sizeof(gpu->gpu_cursor_pages) / sizeof(gpu->gpu_cursor_pages[0]);

	fb_release(gpu);
	free_orphan(gpu, true);
	free_pages(gpu, gpu->gpu_lost_lists, gpu->gpu_lost_nlists);
	gpu->gpu_lost_nlists = 0;
	free_pages(gpu, gpu->gpu_cursor_pages, n);
	gpu->gpu_cursor_res = 0;
	if (gpu->gpu_req)
		port->dma_free(port->ctx, gpu->gpu_req, GPU_PAGE);
	if (gpu->gpu_cursor_cmds)
		port->dma_free(port->ctx, gpu->gpu_cursor_cmds, GPU_PAGE);
	gpu->gpu_req = gpu->gpu_cursor_cmds = NULL;
}

int vio_gpu_init(struct vio_gpu *gpu, struct vio_dev *dev, const struct vio_gpu_opts *opts)
{
	const struct vio_port *port = dev->port;
	uint32_t scanouts;
	int err;

	zero(gpu, sizeof(*gpu)); /* not a compound literal: that would be a 3 KiB stack copy */
	if (dev->device_id != VIRTIO_ID_GPU)
		return VIO_ENODEV;
	if (opts)
		gpu->gpu_opts = *opts;
	if (!gpu->gpu_opts.timeout_ns)
		gpu->gpu_opts.timeout_ns = VIO_GPU_TIMEOUT_NS;
	if (!gpu->gpu_opts.max_width || gpu->gpu_opts.max_width > VIO_GPU_MAX_WIDTH)
		gpu->gpu_opts.max_width = VIO_GPU_MAX_WIDTH;
	if (!gpu->gpu_opts.max_height || gpu->gpu_opts.max_height > VIO_GPU_MAX_HEIGHT)
		gpu->gpu_opts.max_height = VIO_GPU_MAX_HEIGHT;
	gpu->dev = dev;
	dev->name = gpu_name;

	/* 3.1.1 steps 1-6; 5.7.3: of the features only EDID is for a 2D driver. */
	err = vio_dev_begin(dev, 1ull << VIRTIO_GPU_F_EDID);
	if (err)
		goto fail;
	/* 5.7.4: num_scanouts is 1..16. */
	err = vio_dev_config_read(dev, offsetof(struct virtio_gpu_config, num_scanouts), &scanouts,
				  sizeof(scanouts));
	if (err)
		goto fail;
	if (scanouts < 1 || scanouts > VIRTIO_GPU_MAX_SCANOUTS) {
		vio_logf(port, VIO_LOG_ERR, "%s: num_scanouts %u out of 1..16", gpu_name, scanouts);
		err = VIO_ERANGE;
		goto fail;
	}
	gpu->num_scanouts = scanouts;

	/* Step 7: the controlq and the cursorq (5.7.2). Both are polled by their callers. */
	err = vio_dev_setup_irqs(dev, gpu->gpu_vq, VIRTIO_GPU_NUM_QUEUES);
	if (!err)
		err = vio_dev_setup_vq(dev, VIRTIO_GPU_Q_CONTROL, 64, NULL, gpu);
	if (!err)
		err = vio_dev_setup_vq(dev, VIRTIO_GPU_Q_CURSOR, VIO_GPU_CURSOR_SLOTS, NULL, gpu);
	if (err)
		goto fail;
	vio_vq_disable_cb(&gpu->gpu_vq[VIRTIO_GPU_Q_CONTROL]);
	vio_vq_disable_cb(&gpu->gpu_vq[VIRTIO_GPU_Q_CURSOR]);
	gpu->gpu_req = port->dma_alloc(port->ctx, GPU_PAGE, &gpu->gpu_req_phys);
	gpu->gpu_cursor_cmds = port->dma_alloc(port->ctx, GPU_PAGE, &gpu->gpu_cursor_cmds_phys);
	if (!gpu->gpu_req || !gpu->gpu_cursor_cmds) {
		err = VIO_ENOMEM;
		goto fail;
	}
	/* QEMU's cursorq has 16 entries: no more slots than the ring holds. */
	uint32_t slots = gpu->gpu_vq[VIRTIO_GPU_Q_CURSOR].size;
	if (slots > VIO_GPU_CURSOR_SLOTS)
		slots = VIO_GPU_CURSOR_SLOTS;
	for (uint32_t i = 0; i < slots; i++)
		gpu->gpu_cursor_free[i] = (uint8_t)i;
	gpu->gpu_cursor_nfree = (uint8_t)slots;
	vio_dev_set_config_callback(dev, gpu_config_changed, gpu);

	/* Step 8, then what the device shows (5.7.5: the driver asks for the display info). */
	err = vio_dev_driver_ok(dev);
	if (!err)
		err = vio_gpu_display_info(gpu);
	if (!err && vio_dev_has_feature(dev, VIRTIO_GPU_F_EDID))
		err = get_edid(gpu);
	if (err)
		goto fail;
	return 0;

fail:
	driver_abort(dev, gpu_name, err);
	if (!vio_dev_is_dead(dev))
		free_all(gpu);
	gpu->dev = NULL;
	return err;
}

int vio_gpu_fini(struct vio_gpu *gpu)
{
	if (!gpu->dev)
		return 0;
	vio_dev_set_config_callback(gpu->dev, NULL, NULL);
	int err = vio_dev_teardown(gpu->dev);
	if (err) {
		vio_logf(gpu->dev->port, VIO_LOG_ERR,
			 "%s: reset not confirmed: keeping the pages, device failed", gpu_name);
		vio_dev_fail(gpu->dev);
		if (gpu->gpu_fb)
			vio_priv_free(gpu->dev->port, gpu->gpu_fb,
				      gpu->gpu_fb_npages * sizeof(struct vio_gpu_page));
		free_orphan(gpu, false);
	} else {
		free_all(gpu);
	}
	gpu->dev = NULL;
	return err;
}
