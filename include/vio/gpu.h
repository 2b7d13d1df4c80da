/*
 * virtio-gpu: the 2D part of the GPU device (virtio 1.2 section 5.7): a framebuffer in guest
 * memory that the host shows on a scanout, and a hardware cursor.
 *
 * Context: the driver has no interrupt-time work. Every command waits for its answer inside
 * the call that sent it, and vio_gpu_poll, which the owner calls from its loop, takes the
 * host's display-change event and runs opts.on_display there. The queue interrupts are left
 * off (the waits poll).
 *
 *	struct vio_gpu gpu;                       caller-owned, like the vio_dev
 *	vio_gpu_init(&gpu, &dev, &opts);          negotiate (EDID), queues, DRIVER_OK,
 *	                                          GET_DISPLAY_INFO, GET_EDID when offered
 *	vio_gpu_fb_create(&gpu, 0, 0);            a framebuffer at the display's size, shown
 *	vio_gpu_fill(&gpu, x, y, w, h, 0xff0000); draw into it (or vio_gpu_write_span)
 *	vio_gpu_flush(&gpu, x, y, w, h);          TRANSFER_TO_HOST_2D + RESOURCE_FLUSH of a
 *rectangle vio_gpu_cursor_set(&gpu, img, hx, hy);    a 64x64 ARGB cursor, then vio_gpu_cursor_move
 *
 * The framebuffer is never one big block: it is a list of 4 KiB pages from port->dma_alloc,
 * handed to the device with RESOURCE_ATTACH_BACKING as one memory entry per page (5.7.6.8).
 * Pixels are 32-bit B8G8R8X8 (0x00RRGGBB as a little-endian word).
 *
 * The device is untrusted: every response is checked for its length, its type (a device
 * error is logged by its spec name and becomes a VIO_E* code) and the fence the command
 * carried; display sizes are clamped to opts.max_width/max_height.
 *
 * Concurrency (include/vio/port.h): no locks, one caller at a time; nothing here is IRQ-safe.
 */
#ifndef VIO_GPU_H
#define VIO_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_gpu.h>
#include <vio/virtio.h>

/* A command gives up when the device has not answered for this long (opts.timeout_ns). */
#ifndef VIO_GPU_TIMEOUT_NS
#define VIO_GPU_TIMEOUT_NS 1000000000ull
#endif
/* The largest framebuffer the driver makes, whatever the host asks for (opts.max_*). */
#ifndef VIO_GPU_MAX_WIDTH
#define VIO_GPU_MAX_WIDTH 2560
#endif
#ifndef VIO_GPU_MAX_HEIGHT
#define VIO_GPU_MAX_HEIGHT 1600
#endif
/* The size the framebuffer takes when the display reports none (a disabled scanout). */
#define VIO_GPU_DEFAULT_WIDTH  1024
#define VIO_GPU_DEFAULT_HEIGHT 768
/* The cursor image: the device's cursor planes are 64x64 (5.7.6.10). */
#define VIO_GPU_CURSOR_SIZE 64
/* Cursor commands that may be in the device's hands at once. */
#define VIO_GPU_CURSOR_SLOTS 32
/* Pages of memory entries one ATTACH_BACKING may take (256 entries each): enough for the
 * largest framebuffer. */
#define VIO_GPU_MAX_LISTS 16
/* EDID bytes kept from GET_EDID (a base block and one extension). */
#define VIO_GPU_EDID_MAX 256

struct vio_gpu;

struct vio_gpu_stats {
	uint64_t commands;	 /* control commands answered */
	uint64_t device_errors;	 /* ... with a VIRTIO_GPU_RESP_ERR_* */
	uint64_t bad_responses;	 /* ... too short, of the wrong type or fence: VIO_EPROTO */
	uint64_t timeouts;	 /* commands the device did not answer in time */
	uint64_t display_events; /* VIRTIO_GPU_EVENT_DISPLAY seen */
	uint64_t flushes;	 /* rectangles transferred and flushed */
	uint64_t cursor_cmds;	 /* UPDATE_CURSOR / MOVE_CURSOR posted */
	uint64_t cursor_busy;	 /* cursor moves refused: every slot with the device */
};

struct vio_gpu_opts {
	/* The host changed the display configuration (a window resized): called from
	 * vio_gpu_poll after the driver re-read the display info (gpu->display). The owner
	 * typically calls vio_gpu_fb_create(gpu, 0, 0) to follow the new size. */
	void (*on_display)(struct vio_gpu *gpu, void *arg);
	/* Optional: called about every millisecond while a command waits for its answer; a
	 * kernel that waits with interrupts off lets them in here. */
	void (*wait)(struct vio_gpu *gpu, void *arg);
	void *arg;
	uint64_t timeout_ns; /* 0: VIO_GPU_TIMEOUT_NS */
	uint32_t max_width;  /* 0 (or more than VIO_GPU_MAX_WIDTH): VIO_GPU_MAX_WIDTH */
	uint32_t max_height; /* 0 (or more than VIO_GPU_MAX_HEIGHT): VIO_GPU_MAX_HEIGHT */
};

/* One scanout as GET_DISPLAY_INFO last reported it (sizes already clamped). */
struct vio_gpu_display {
	uint32_t width, height;
	bool enabled;
};

/* One 4 KiB page of a resource's backing. Private to virtio_gpu.c. */
struct vio_gpu_page {
	uint8_t *virt;
	uint64_t phys;
};

/* The device. Caller-owned; vio_gpu_init fills it. Public fields are read-only. */
struct vio_gpu {
	struct vio_dev *dev;
	struct vio_gpu_stats stats;
	uint32_t num_scanouts;
	struct vio_gpu_display display[VIRTIO_GPU_MAX_SCANOUTS];
	uint8_t edid[VIO_GPU_EDID_MAX];
	uint32_t edid_len; /* 0: no EDID (not offered, or the device gave none) */
	/* The framebuffer: 0 x 0 when there is none. stride = width * 4. */
	uint32_t width, height, stride;
	uint32_t scanout;
	/* The cursor as last sent. */
	bool cursor_shown;
	uint32_t cursor_x, cursor_y;

	/* --- private to virtio_gpu.c ------------------------------------------------------ */
	struct vio_gpu_opts gpu_opts;
	struct vio_vq gpu_vq[VIRTIO_GPU_NUM_QUEUES];
	uint8_t *gpu_req; /* one DMA page: the command at 0, the response at GPU_RESP_OFF */
	uint64_t gpu_req_phys;
	bool gpu_req_lost;  /* a command timed out: the page is still the device's */
	uint64_t gpu_fence; /* fence id of the last command */
	uint32_t gpu_next_res;
	uint32_t gpu_fb_res;	     /* the framebuffer's resource id, 0: none */
	struct vio_gpu_page *gpu_fb; /* [gpu_fb_npages], private memory */
	uint32_t gpu_fb_npages;
	struct vio_gpu_page *gpu_orphan; /* pages the device may still use, freed after reset */
	uint32_t gpu_orphan_npages;
	struct vio_gpu_page gpu_lost_lists[VIO_GPU_MAX_LISTS]; /* an unanswered attach's list */
	uint32_t gpu_lost_nlists;
	uint32_t gpu_cursor_res;
	struct vio_gpu_page gpu_cursor_pages[VIO_GPU_CURSOR_SIZE * VIO_GPU_CURSOR_SIZE * 4 / 4096];
	uint8_t *gpu_cursor_cmds; /* one DMA page of VIO_GPU_CURSOR_SLOTS commands */
	uint64_t gpu_cursor_cmds_phys;
	uint8_t gpu_cursor_free[VIO_GPU_CURSOR_SLOTS]; /* stack of free slot numbers */
	uint8_t gpu_cursor_nfree;
	volatile bool gpu_config_changed; /* set by the config interrupt */
	uint64_t gpu_event_next_ns;	  /* vio_gpu_poll reads events_read from then on */
};

/*
 * Bring up a GPU device `dev` has been probed into: negotiate (VIRTIO_GPU_F_EDID when
 * offered), read num_scanouts, set up the controlq and cursorq, DRIVER_OK, then
 * GET_DISPLAY_INFO and, with EDID, GET_EDID for scanout 0. No framebuffer yet. opts may be
 * NULL. Returns 0; VIO_ENODEV (not a GPU); VIO_ERANGE (num_scanouts 0 or above 16);
 * VIO_ENOMEM; VIO_ETIMEDOUT / VIO_EIO / VIO_EPROTO (a first command failed); or the core's
 * error. On failure the device is torn down and nothing stays allocated.
 */
int vio_gpu_init(struct vio_gpu *gpu, struct vio_dev *dev, const struct vio_gpu_opts *opts);

/*
 * Create a framebuffer of width x height (0 x 0: scanout's size from gpu->display, or
 * VIO_GPU_DEFAULT_* when it reports none), cleared to black, and show it on `scanout`
 * (RESOURCE_CREATE_2D, ATTACH_BACKING over its pages, SET_SCANOUT, a full flush). A
 * framebuffer already there is replaced only once the new one is shown, then detached,
 * unreferenced and freed. Returns 0; VIO_EINVAL (scanout out of range, a size above
 * opts.max_*); VIO_ENOMEM (the old framebuffer stays); the command's error.
 */
int vio_gpu_fb_create(struct vio_gpu *gpu, uint32_t scanout, uint32_t width, uint32_t height);

/* Take the framebuffer off the scanout, detach its backing, unreference it and free its
 * pages. Returns 0 or the command's error (the pages are then kept: the device may use them). */
int vio_gpu_fb_destroy(struct vio_gpu *gpu);

/* Fill a rectangle of the framebuffer (clipped to it) with `color` (0x00RRGGBB). */
void vio_gpu_fill(struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		  uint32_t color);
/* Write n pixels of row y from x on (clipped). */
void vio_gpu_write_span(struct vio_gpu *gpu, uint32_t x, uint32_t y, const uint32_t *px,
			uint32_t n);
/* Read n pixels of row y from x on (clipped; pixels outside read as 0). */
void vio_gpu_read_span(const struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t *px, uint32_t n);

/*
 * Show what was drawn in a rectangle (clipped): TRANSFER_TO_HOST_2D of it, then
 * RESOURCE_FLUSH. Returns 0, VIO_EINVAL (no framebuffer) or the command's error.
 */
int vio_gpu_flush(struct vio_gpu *gpu, uint32_t x, uint32_t y, uint32_t w, uint32_t h);

/*
 * Give the cursor a 64x64 image (0xAARRGGBB pixels, row after row) with its hot spot, and
 * show it at (cursor_x, cursor_y) on the framebuffer's scanout. Returns 0, VIO_EINVAL (no
 * framebuffer, hot spot outside), VIO_ENOMEM or a command's error.
 */
int vio_gpu_cursor_set(struct vio_gpu *gpu, const uint32_t *image, uint32_t hot_x, uint32_t hot_y);
/*
 * Move the cursor (MOVE_CURSOR on the cursorq; the device sends no answer). Returns 0,
 * VIO_EINVAL (no cursor image yet) or VIO_EAGAIN (every cursor slot is still with the
 * device: the move is counted in cursor_busy and dropped; the next one catches up).
 */
int vio_gpu_cursor_move(struct vio_gpu *gpu, uint32_t x, uint32_t y);

/* GET_DISPLAY_INFO again into gpu->display. Returns 0 or the command's error. */
int vio_gpu_display_info(struct vio_gpu *gpu);

/*
 * The owner's loop: the core's status check, the cursor slots the device gave back, a late
 * answer to a command that timed out, and a display-change event (read from the config
 * space; acknowledged with events_clear, display info re-read, opts.on_display run).
 * Returns 0, or VIO_ENEEDRESET / VIO_EDEAD / VIO_EIO for a device that is gone.
 */
int vio_gpu_poll(struct vio_gpu *gpu);

/* The spec's name of a response type ("ERR_INVALID_RESOURCE_ID", "OK_NODATA"). */
const char *vio_gpu_resp_name(uint32_t type);

/*
 * Reset the device and free the framebuffer, the cursor and the queues. Returns 0, or
 * VIO_EDEAD when the reset was not confirmed (the pages are then kept). Safe after a failed
 * init and twice.
 */
int vio_gpu_fini(struct vio_gpu *gpu);

#endif
