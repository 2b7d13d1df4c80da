/*
 * The GPU device: virtio 1.2 section 5.7 ("GPU Device"), the 2D part.
 *
 * Two queues (5.7.2): the controlq takes every command but the cursor's, the cursorq takes
 * UPDATE_CURSOR and MOVE_CURSOR. Each request is a device-readable command that starts with
 * struct virtio_gpu_ctrl_hdr, and a device-writable response that starts with one too
 * (5.7.6.7). Everything is little-endian.
 */
#ifndef VIO_SPEC_VIRTIO_GPU_H
#define VIO_SPEC_VIRTIO_GPU_H

#include <stdint.h>

/* 5.7.2 Virtqueues. */
#define VIRTIO_GPU_Q_CONTROL  0
#define VIRTIO_GPU_Q_CURSOR   1
#define VIRTIO_GPU_NUM_QUEUES 2

/* 5.7.3 Feature bits (bit numbers). */
#define VIRTIO_GPU_F_VIRGL	   0
#define VIRTIO_GPU_F_EDID	   1
#define VIRTIO_GPU_F_RESOURCE_UUID 2
#define VIRTIO_GPU_F_RESOURCE_BLOB 3
#define VIRTIO_GPU_F_CONTEXT_INIT  4

/* 5.7.4 Device configuration layout. */
#define VIRTIO_GPU_EVENT_DISPLAY (1u << 0) /* the display configuration changed */
struct virtio_gpu_config {
	uint32_t events_read;  /* pending events (read-only) */
	uint32_t events_clear; /* write a bit to clear it in events_read */
	uint32_t num_scanouts; /* 1..16 */
	uint32_t num_capsets;
};
_Static_assert(sizeof(struct virtio_gpu_config) == 16, "5.7.4");

/* 5.7.6.7 Request header: the command types. */
enum virtio_gpu_ctrl_type {
	/* 2D commands */
	VIRTIO_GPU_CMD_GET_DISPLAY_INFO = 0x0100,
	VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
	VIRTIO_GPU_CMD_RESOURCE_UNREF,
	VIRTIO_GPU_CMD_SET_SCANOUT,
	VIRTIO_GPU_CMD_RESOURCE_FLUSH,
	VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
	VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
	VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING,
	VIRTIO_GPU_CMD_GET_CAPSET_INFO,
	VIRTIO_GPU_CMD_GET_CAPSET,
	VIRTIO_GPU_CMD_GET_EDID,
	/* cursor commands */
	VIRTIO_GPU_CMD_UPDATE_CURSOR = 0x0300,
	VIRTIO_GPU_CMD_MOVE_CURSOR,
	/* success responses */
	VIRTIO_GPU_RESP_OK_NODATA = 0x1100,
	VIRTIO_GPU_RESP_OK_DISPLAY_INFO,
	VIRTIO_GPU_RESP_OK_CAPSET_INFO,
	VIRTIO_GPU_RESP_OK_CAPSET,
	VIRTIO_GPU_RESP_OK_EDID,
	/* error responses */
	VIRTIO_GPU_RESP_ERR_UNSPEC = 0x1200,
	VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY,
	VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID,
	VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
	VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID,
	VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
};

/* The device signals the fence (echoes fence_id) only once the command is done. */
#define VIRTIO_GPU_FLAG_FENCE (1u << 0)

struct virtio_gpu_ctrl_hdr {
	uint32_t type;
	uint32_t flags;
	uint64_t fence_id;
	uint32_t ctx_id;
	uint8_t ring_idx;
	uint8_t padding[3];
};
_Static_assert(sizeof(struct virtio_gpu_ctrl_hdr) == 24, "5.7.6.7");

struct virtio_gpu_rect {
	uint32_t x, y, width, height;
};

/* 5.7.6.8 VIRTIO_GPU_CMD_GET_DISPLAY_INFO: the response. */
#define VIRTIO_GPU_MAX_SCANOUTS 16
struct virtio_gpu_resp_display_info {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_display_one {
		struct virtio_gpu_rect r;
		uint32_t enabled;
		uint32_t flags;
	} pmodes[VIRTIO_GPU_MAX_SCANOUTS];
};
_Static_assert(sizeof(struct virtio_gpu_resp_display_info) == 24 + 16 * 24, "5.7.6.8");

/* VIRTIO_GPU_CMD_GET_EDID (with VIRTIO_GPU_F_EDID). */
struct virtio_gpu_get_edid {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t scanout;
	uint32_t padding;
};
struct virtio_gpu_resp_edid {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t size;
	uint32_t padding;
	uint8_t edid[1024];
};
_Static_assert(sizeof(struct virtio_gpu_resp_edid) == 24 + 8 + 1024, "5.7.6.8");

/* VIRTIO_GPU_CMD_RESOURCE_CREATE_2D and its formats. */
enum virtio_gpu_formats {
	VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM = 1,
	VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM = 2,
	VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM = 3,
	VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM = 4,
	VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM = 67,
	VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM = 68,
	VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM = 121,
	VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM = 134,
};
struct virtio_gpu_resource_create_2d {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t resource_id;
	uint32_t format;
	uint32_t width;
	uint32_t height;
};
_Static_assert(sizeof(struct virtio_gpu_resource_create_2d) == 40, "5.7.6.8");

/* VIRTIO_GPU_CMD_RESOURCE_UNREF. */
struct virtio_gpu_resource_unref {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t resource_id;
	uint32_t padding;
};

/* VIRTIO_GPU_CMD_SET_SCANOUT: resource_id 0 disables the scanout. */
struct virtio_gpu_set_scanout {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_rect r;
	uint32_t scanout_id;
	uint32_t resource_id;
};
_Static_assert(sizeof(struct virtio_gpu_set_scanout) == 48, "5.7.6.8");

/* VIRTIO_GPU_CMD_RESOURCE_FLUSH. */
struct virtio_gpu_resource_flush {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_rect r;
	uint32_t resource_id;
	uint32_t padding;
};
_Static_assert(sizeof(struct virtio_gpu_resource_flush) == 48, "5.7.6.8");

/* VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: offset is where r starts in the backing. */
struct virtio_gpu_transfer_to_host_2d {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_rect r;
	uint64_t offset;
	uint32_t resource_id;
	uint32_t padding;
};
_Static_assert(sizeof(struct virtio_gpu_transfer_to_host_2d) == 56, "5.7.6.8");

/* VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, followed by nr_entries memory entries. */
struct virtio_gpu_resource_attach_backing {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t resource_id;
	uint32_t nr_entries;
};
struct virtio_gpu_mem_entry {
	uint64_t addr;
	uint32_t length;
	uint32_t padding;
};
_Static_assert(sizeof(struct virtio_gpu_mem_entry) == 16, "5.7.6.8");

/* VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING. */
struct virtio_gpu_resource_detach_backing {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t resource_id;
	uint32_t padding;
};

/* 5.7.6.10 cursorq: UPDATE_CURSOR sets the image (a 64x64 resource) and the position,
 * MOVE_CURSOR only the position (resource_id and hot spot are ignored). */
struct virtio_gpu_cursor_pos {
	uint32_t scanout_id;
	uint32_t x;
	uint32_t y;
	uint32_t padding;
};
struct virtio_gpu_update_cursor {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_cursor_pos pos;
	uint32_t resource_id;
	uint32_t hot_x;
	uint32_t hot_y;
	uint32_t padding;
};
_Static_assert(sizeof(struct virtio_gpu_update_cursor) == 56, "5.7.6.10");

#endif
