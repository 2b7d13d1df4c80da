/*
 * virtio-blk driver (virtio 1.2 section 5.2): sectors in and out of a virtual disk.
 *
 * Every device request is one descriptor chain of three kinds of segment (5.2.6):
 *
 *	header  (device-readable)   struct virtio_blk_outhdr: type, ioprio, sector
 *	data    (either direction)  the caller's buffers, or a discard/write-zeroes range
 *	status  (device-writable)   one byte the device writes last: OK, IOERR or UNSUPP
 *
 * The header, the range and the status byte live in a "slot" of DMA memory this driver owns,
 * a slot per part the ring can hold, so a request never points the device at a caller's stack.
 * Slots are cut from DMA pages taken one at a time (64 to a page): no allocation is larger.
 * The data segments point straight at the caller's buffers: no copy. Everything else the
 * driver keeps about a part (its request, its length, the free slots) is private memory
 * (vio_priv_alloc) that the device never reaches.
 *
 * A caller's request (struct vio_blk_req) becomes one or more device requests ("parts"):
 * the device limits the bytes per segment (SIZE_MAX), the segments per request (SEG_MAX) and
 * the sectors per discard, and we limit the bytes per request (VIO_BLK_MAX_TRANSFER). Parts
 * that do not fit into the ring now are posted as earlier ones complete; the caller hears
 * once, when the last part is back, with the first error any part saw.
 *
 * The device is untrusted: the status byte and the length it claims to have written are
 * checked for every part against the driver's own record of what it posted, never against
 * what is in the slot (the device may have rewritten that), and the core checks that each
 * completion is one we posted.
 *
 * QEMU: -drive file=disk.img,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0
 * (add num-queues=4 for MQ, discard=unmap for DISCARD/WRITE_ZEROES, readonly=on for RO).
 *
 * Follow one request (vio_blk_read of a few sectors):
 *	vio_blk_read     wraps the buffer in a vio_blk_req; vio_blk_submit_wait submits, then polls
 *	vio_blk_submit   checks it (check_req), picks a queue, and post_parts posts it
 *	post_parts       takes a slot; build_part lays out header, data and status; vio_vq_add
 *	reap             (interrupt, or vio_blk_poll) takes the chain back: part_status reads the
 *	                 status byte, part_done counts the part, finish runs req->on_done
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/alloc.h>
#include <vio/blk.h>
#include <vio/spec/virtio_blk.h>
#include <vio/virtqueue.h>

#include "driver.h"

#define SECTOR VIRTIO_BLK_SECTOR_SIZE

/* The features this driver understands (5.2.3), plus the ring features the core handles. */
#define BLK_FEATURES                                                                               \
	(VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |                    \
	 VIRTIO_BIT(VIRTIO_BLK_F_GEOMETRY) | VIRTIO_BIT(VIRTIO_BLK_F_RO) |                         \
	 VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |                      \
	 VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) | VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE) |                 \
	 VIRTIO_BIT(VIRTIO_BLK_F_MQ) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |                          \
	 VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) |         \
	 VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX))

/*
 * What the device sees of one part. The device reads hdr (and dwz for discard and write
 * zeroes) and writes id (GET_ID) and status. 64 bytes keeps slots on cache-line boundaries.
 */
struct vio_blk_slot {
	struct virtio_blk_outhdr hdr;
	struct virtio_blk_discard_write_zeroes dwz;
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	uint8_t status;
	uint8_t pad[11];
};
_Static_assert(sizeof(struct vio_blk_slot) == 64, "slot layout");

/* dma_alloc hands out 4 KiB pages (vio/port.h); slots are allocated a page at a time. */
#define PAGE	       4096u
#define SLOTS_PER_PAGE (PAGE / (uint32_t)sizeof(struct vio_blk_slot))

/* What the driver remembers about one part: private memory, the device never reaches it. */
struct vio_blk_part {
	struct vio_blk_req *req; /* NULL: its request was abandoned after a timeout */
	uint32_t bytes;		 /* data bytes of a read or write part */
	uint32_t in_len;	 /* bytes the device must write for a full answer (5.2.6) */
	uint32_t type;		 /* VIRTIO_BLK_T_* as posted */
};

/* A part as the ring carries it: header, data or range, status (5.2.6). */
#define PART_SEGS (VIO_BLK_MAX_SEGS + 2)

static const char *const blk_name = "virtio-blk";

/* --- small helpers -------------------------------------------------------------------------- */

static const struct vio_port *port_of(const struct vio_blk *blk)
{
	return blk->dev->port;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* Read one field of struct virtio_blk_config. */
#define CFG_READ(blk, field, dst)                                                                  \
	vio_dev_config_read((blk)->dev, offsetof(struct virtio_blk_config, field), &(dst),         \
			    sizeof(dst))

/* --- configuration (5.2.4, 5.2.5) -------------------------------------------------------- */

static uint32_t sane_blk_size(struct vio_blk *blk, uint32_t v)
{
	if (is_pow2(v) && v >= SECTOR && v <= 65536)
		return v;
	vio_logf(port_of(blk), VIO_LOG_WARN, "%s: absurd blk_size %u, using 512", blk_name, v);
	return SECTOR;
}

/* The cache mode (5.2.5.1): with CONFIG_WCE the writeback field says; without it, a device
 * that offers FLUSH has a write-back cache and one that does not is write-through. */
static void read_writeback(struct vio_blk *blk)
{
	uint8_t wb = 0;

	if (blk->info.config_wce && CFG_READ(blk, writeback, wb) == 0)
		blk->info.writeback = wb != 0;
	else
		blk->info.writeback = blk->info.flush;
}

static int read_capacity(struct vio_blk *blk)
{
	uint64_t cap;
	int err = CFG_READ(blk, capacity, cap);

	if (err == 0)
		blk->info.capacity = cap;
	return err;
}

/* Segment limits: what the device allows, tightened by ours. */
static void read_limits(struct vio_blk *blk)
{
	struct vio_blk_info *in = &blk->info;
	uint32_t v;

	in->max_transfer = VIO_BLK_MAX_TRANSFER / SECTOR * SECTOR;
	in->size_max = in->max_transfer;
	if (vio_dev_has_feature(blk->dev, VIRTIO_BLK_F_SIZE_MAX) &&
	    CFG_READ(blk, size_max, v) == 0) {
		/* Whole sectors per segment keep every split on a sector boundary. */
		if (v < SECTOR)
			vio_logf(port_of(blk), VIO_LOG_WARN, "%s: size_max %u below a sector",
				 blk_name, v);
		in->size_max = min_u32(in->size_max, v < SECTOR ? SECTOR : v / SECTOR * SECTOR);
	}
	/* Without SEG_MAX the device promised nothing: one data segment is always safe. */
	in->seg_max = 1;
	if (vio_dev_has_feature(blk->dev, VIRTIO_BLK_F_SEG_MAX) && CFG_READ(blk, seg_max, v) == 0)
		in->seg_max = min_u32(v ? v : 1, VIO_BLK_MAX_SEGS);
}

/* A device's 0 limit on discard or write-zeroes sectors means it set none (Linux reads it so). */
static uint32_t sector_limit(uint32_t v)
{
	return v ? v : UINT32_MAX;
}

static void read_optional(struct vio_blk *blk)
{
	struct vio_blk_info *in = &blk->info;
	struct vio_dev *dev = blk->dev;
	uint32_t v;
	uint8_t b;

	/* Field by field: 4.1.3.1 wants each access as wide as the field it reads. */
	in->has_geometry = vio_dev_has_feature(dev, VIRTIO_BLK_F_GEOMETRY) &&
			   CFG_READ(blk, geometry.cylinders, in->geometry.cylinders) == 0 &&
			   CFG_READ(blk, geometry.heads, in->geometry.heads) == 0 &&
			   CFG_READ(blk, geometry.sectors, in->geometry.sectors) == 0;
	struct virtio_blk_topology *t = &in->topology;
	in->has_topology = vio_dev_has_feature(dev, VIRTIO_BLK_F_TOPOLOGY) &&
			   CFG_READ(blk, topology.physical_block_exp, t->physical_block_exp) == 0 &&
			   CFG_READ(blk, topology.alignment_offset, t->alignment_offset) == 0 &&
			   CFG_READ(blk, topology.min_io_size, t->min_io_size) == 0 &&
			   CFG_READ(blk, topology.opt_io_size, t->opt_io_size) == 0;
	in->blk_size = SECTOR;
	if (vio_dev_has_feature(dev, VIRTIO_BLK_F_BLK_SIZE) && CFG_READ(blk, blk_size, v) == 0)
		in->blk_size = sane_blk_size(blk, v);
	/* Parts are cut at size_max: keep every cut on a logical block (blk_size, 5.2.4). */
	if (in->size_max >= in->blk_size)
		in->size_max -= in->size_max % in->blk_size;

	in->discard = vio_dev_has_feature(dev, VIRTIO_BLK_F_DISCARD);
	if (in->discard) {
		if (CFG_READ(blk, max_discard_sectors, v) == 0)
			in->max_discard_sectors = sector_limit(v);
		if (CFG_READ(blk, max_discard_seg, v) == 0)
			in->max_discard_seg = v;
		if (CFG_READ(blk, discard_sector_alignment, v) == 0)
			in->discard_sector_alignment = v;
		in->discard = in->max_discard_sectors != 0;
	}
	in->write_zeroes = vio_dev_has_feature(dev, VIRTIO_BLK_F_WRITE_ZEROES);
	if (in->write_zeroes) {
		if (CFG_READ(blk, max_write_zeroes_sectors, v) == 0)
			in->max_write_zeroes_sectors = sector_limit(v);
		if (CFG_READ(blk, max_write_zeroes_seg, v) == 0)
			in->max_write_zeroes_seg = v;
		if (CFG_READ(blk, write_zeroes_may_unmap, b) == 0)
			in->write_zeroes_may_unmap = b != 0;
		in->write_zeroes = in->max_write_zeroes_sectors != 0;
	}

	in->ro = vio_dev_has_feature(dev, VIRTIO_BLK_F_RO);
	in->flush = vio_dev_has_feature(dev, VIRTIO_BLK_F_FLUSH);
	in->config_wce = vio_dev_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE);
	read_writeback(blk);
}

static uint16_t read_num_queues(struct vio_blk *blk)
{
	uint16_t n = 1;

	if (vio_dev_has_feature(blk->dev, VIRTIO_BLK_F_MQ) && CFG_READ(blk, num_queues, n) == 0 &&
	    n == 0) {
		vio_logf(port_of(blk), VIO_LOG_WARN, "%s: MQ with num_queues 0, using 1", blk_name);
		n = 1;
	}
	blk->info.device_queues = n;
	return n < VIO_BLK_MAX_QUEUES ? n : VIO_BLK_MAX_QUEUES;
}

/*
 * Say that the capacity changed: the first time, then at most once a second with how many
 * changes there were. A device may send config changes without end, and each one arrives in
 * an interrupt handler: one log line each would drown the console.
 */
#define CAPACITY_LOG_INTERVAL_NS 1000000000ull

static void log_capacity(struct vio_blk *blk)
{
	const struct vio_port *port = port_of(blk);
	uint64_t now = port->now_ns(port->ctx);

	blk->blk_cap_unlogged++;
	if (blk->blk_cap_logged && now - blk->blk_cap_log_ns < CAPACITY_LOG_INTERVAL_NS)
		return;
	if (blk->blk_cap_unlogged == 1)
		vio_logf(port, VIO_LOG_INFO, "%s: capacity now %llu sectors", blk_name,
			 (unsigned long long)blk->info.capacity);
	else
		vio_logf(port, VIO_LOG_INFO,
			 "%s: capacity now %llu sectors (%u changes since the last line)", blk_name,
			 (unsigned long long)blk->info.capacity, blk->blk_cap_unlogged);
	blk->blk_cap_logged = true;
	blk->blk_cap_log_ns = now;
	blk->blk_cap_unlogged = 0;
}

/* A config change interrupt: the disk may have been resized or its cache mode changed. */
static void config_changed(struct vio_dev *dev, void *arg)
{
	struct vio_blk *blk = arg;
	uint64_t old = blk->info.capacity;

	(void)dev;
	if (read_capacity(blk) == 0 && blk->info.capacity != old)
		log_capacity(blk);
	read_writeback(blk);
}

/* --- slots ------------------------------------------------------------------------------- */

/*
 * Per queue: the slots in DMA memory, and in private memory the segment list a part is built
 * in (one part is built at a time, and the list is too large for a stack that may be an
 * interrupt handler's), the slot pages' list, the parts and the stack of free slot numbers.
 */
static uint32_t priv_bytes(uint16_t depth, uint16_t npages)
{
	return PART_SEGS * (uint32_t)sizeof(struct vio_sg) +
	       npages * (uint32_t)sizeof(struct vio_blk_slot *) +
	       depth * (uint32_t)(sizeof(struct vio_blk_part) + sizeof(uint16_t));
}

/*
 * How many parts a ring of `size` entries holds at once: one entry each for the parts with
 * an indirect table (2.7.5.3), at least two (header, status) for each other one. No more
 * slots than that: a slot no part can reach is DMA memory for nothing.
 */
static uint16_t parts_in_flight(const struct vio_blk *blk, uint16_t size)
{
	uint32_t tables = 0;

	if (vio_dev_has_feature(blk->dev, VIRTIO_F_RING_INDIRECT_DESC))
		tables = min_u32(blk->blk_opts.indirect_tables, size);
	return (uint16_t)(tables + (size - tables) / 2);
}

static struct vio_blk_slot *slot_at(const struct vio_blk_queue *q, uint16_t i)
{
	return &q->q_slot_pages[i / SLOTS_PER_PAGE][i % SLOTS_PER_PAGE];
}

static int alloc_slots(struct vio_blk *blk, uint16_t qi)
{
	const struct vio_port *port = port_of(blk);
	struct vio_blk_queue *q = &blk->blk_q[qi];
	uint16_t size = blk->blk_vqs[qi].size;
	uint64_t phys;

	/* Header + status need two descriptors even with an indirect table to fall back from. */
	if (size < 4) {
		vio_logf(port, VIO_LOG_ERR, "%s: queue %u has only %u entries", blk_name, qi, size);
		return VIO_ENOTSUP;
	}
	uint16_t depth = parts_in_flight(blk, size);
	uint16_t npages = (uint16_t)((depth + SLOTS_PER_PAGE - 1) / SLOTS_PER_PAGE);
	q->q_priv_bytes = priv_bytes(depth, npages);
	q->q_sg = vio_priv_alloc(port, q->q_priv_bytes);
	if (!q->q_sg)
		return VIO_ENOMEM;
	/* Largest alignment first: the segment list, the page list, the parts, the free stack. */
	q->q_slot_pages = (struct vio_blk_slot **)(q->q_sg + PART_SEGS);
	q->q_parts = (struct vio_blk_part *)(q->q_slot_pages + npages);
	q->q_free = (uint16_t *)(q->q_parts + depth);
	for (; q->q_nslot_pages < npages; q->q_nslot_pages++) {
		q->q_slot_pages[q->q_nslot_pages] = port->dma_alloc(port->ctx, PAGE, &phys);
		if (!q->q_slot_pages[q->q_nslot_pages])
			return VIO_ENOMEM;
	}
	for (uint16_t i = 0; i < depth; i++)
		q->q_free[i] = (uint16_t)(depth - 1 - i);
	q->q_nfree = depth;
	q->q_depth = depth;
	/* Without indirect tables a part takes one descriptor per segment: it must fit the ring. */
	q->q_seg_max = min_u32(blk->info.seg_max, size - 2u);
	return 0;
}

/* Free the queues' memory; with keep_dma the slots stay: the device may still use them. */
static void free_slots(struct vio_blk *blk, bool keep_dma)
{
	const struct vio_port *port = port_of(blk);

	for (unsigned i = 0; i < VIO_BLK_MAX_QUEUES; i++) {
		struct vio_blk_queue *q = &blk->blk_q[i];
		/* No part in flight once the device is reset; one that was not may hold some. */
		VIO_ASSERT(keep_dma || q->q_nfree == q->q_depth);
		for (uint16_t p = 0; p < q->q_nslot_pages && !keep_dma; p++)
			port->dma_free(port->ctx, q->q_slot_pages[p], PAGE);
		vio_priv_free(port, q->q_sg, q->q_priv_bytes);
		*q = (struct vio_blk_queue){0};
	}
}

/* --- requests ------------------------------------------------------------------------------ */

static bool has_data(enum vio_blk_op op)
{
	return op == VIO_BLK_OP_READ || op == VIO_BLK_OP_WRITE;
}

static bool writes_disk(enum vio_blk_op op)
{
	return op == VIO_BLK_OP_WRITE || op == VIO_BLK_OP_DISCARD || op == VIO_BLK_OP_WRITE_ZEROES;
}

/* More parts to post? A failed part stops the rest: the caller gets the error anyway. */
static bool has_more(const struct vio_blk_req *req)
{
	if (req->blk_status)
		return false;
	return has_data(req->op) ? req->blk_seg < req->nsg : req->blk_left > 0;
}

static bool in_capacity(const struct vio_blk *blk, uint64_t sector, uint64_t n)
{
	return n <= blk->info.capacity && sector <= blk->info.capacity - n;
}

/* Sectors of a read/write's buffers, 0 when they are not all whole non-empty sectors. */
static uint64_t sg_sectors(const struct vio_blk_req *req)
{
	uint64_t n = 0;

	if (!req->sg || !req->nsg)
		return 0;
	for (unsigned i = 0; i < req->nsg; i++) {
		if (!req->sg[i].len || req->sg[i].len % SECTOR)
			return 0;
		n += req->sg[i].len / SECTOR;
	}
	return n;
}

/*
 * A read or write starts on a logical block and every segment is whole blocks: blk_size is
 * the device's logical block size (5.2.4), and a device such as QEMU with
 * logical_block_size=4096 fails anything smaller with an I/O error. Whole-block segments
 * also keep every part the request is split into whole blocks (size_max is rounded to them).
 */
static bool blocks_aligned(const struct vio_blk *blk, const struct vio_blk_req *req)
{
	uint32_t bs = blk->info.blk_size;

	if (req->sector & (bs / SECTOR - 1)) /* blk_size is a power of two */
		return false;
	for (unsigned i = 0; i < req->nsg; i++)
		if (req->sg[i].len % bs)
			return false;
	return true;
}

/*
 * What calls on a device given up on return: it broke a rule (VIO_EIO), asked for a reset
 * (VIO_ENEEDRESET: the core reads the status when a queue breaks, on a timeout and from
 * vio_blk_poll, so a polled device that says so only in its status is heard too), or never
 * confirmed the reset of vio_blk_fini (VIO_EDEAD).
 */
static int broken_err(const struct vio_blk *blk)
{
	if (blk->blk_dead || (blk->dev && vio_dev_is_dead(blk->dev)))
		return VIO_EDEAD;
	return blk->dev && blk->dev->needs_reset ? VIO_ENEEDRESET : VIO_EIO;
}

static int check_req(const struct vio_blk *blk, const struct vio_blk_req *req)
{
	const struct vio_blk_info *in = &blk->info;
	uint64_t n;

	if (!req->on_done)
		return VIO_EINVAL;
	if (blk->blk_broken || !blk->dev)
		return broken_err(blk);
	if (writes_disk(req->op) && in->ro)
		return VIO_EROFS;
	switch (req->op) {
	case VIO_BLK_OP_READ:
	case VIO_BLK_OP_WRITE:
		n = sg_sectors(req);
		if (!n || !in_capacity(blk, req->sector, n))
			return VIO_EINVAL;
		return blocks_aligned(blk, req) ? 0 : VIO_EALIGN;
	case VIO_BLK_OP_FLUSH:
		return 0;
	case VIO_BLK_OP_GET_ID:
		return req->sg && req->nsg ? 0 : VIO_EINVAL;
	case VIO_BLK_OP_DISCARD:
	case VIO_BLK_OP_WRITE_ZEROES:
		if (!(req->op == VIO_BLK_OP_DISCARD ? in->discard : in->write_zeroes))
			return VIO_ENOTSUP;
		return req->nsectors && in_capacity(blk, req->sector, req->nsectors) ? 0
										     : VIO_EINVAL;
	}
	return VIO_EINVAL;
}

static void count_finished(struct vio_blk *blk, const struct vio_blk_req *req)
{
	struct vio_blk_stats *s = &blk->stats;

	uint64_t *by_op[] = {
	    [VIO_BLK_OP_READ] = &s->reads,	 [VIO_BLK_OP_WRITE] = &s->writes,
	    [VIO_BLK_OP_FLUSH] = &s->flushes,	 [VIO_BLK_OP_GET_ID] = &s->get_ids,
	    [VIO_BLK_OP_DISCARD] = &s->discards, [VIO_BLK_OP_WRITE_ZEROES] = &s->write_zeroes,
	};
	(*by_op[req->op])++;
	if (req->blk_status)
		s->errors++;
	if (req->blk_nparts > 1)
		s->splits++;
}

/* The last part is back: give the request to its owner. */
static void finish(struct vio_blk *blk, struct vio_blk_req *req)
{
	struct vio_blk_queue *q = &blk->blk_q[req->blk_queue];

	VIO_ASSERT(req->blk_parts == 0); /* no part of it is still with the device */
	if (q->q_waiting == req)
		q->q_waiting = NULL;
	count_finished(blk, req);
	req->on_done(req, req->blk_status, req->arg);
}

/* How a part built into its queue's segment list (q_sg) splits, and the data it moves. */
struct chain {
	unsigned n_out;	  /* device-readable segments, first */
	unsigned n_in;	  /* device-writable segments, after them */
	uint32_t bytes;	  /* data a read or write part moves */
	uint32_t sectors; /* sectors a discard or write-zeroes part covers */
	uint32_t type;	  /* VIRTIO_BLK_T_* in its header */
};

/* A read or write part: as many of the caller's segments as the limits allow, from its cursor. */
static unsigned build_data(const struct vio_blk *blk, const struct vio_blk_queue *q,
			   const struct vio_blk_req *req, struct chain *c)
{
	const struct vio_blk_info *in = &blk->info;
	struct vio_sg *sg = q->q_sg;
	unsigned seg = req->blk_seg, n = 1;
	uint32_t off = req->blk_off;

	while (seg < req->nsg && n - 1 < q->q_seg_max && c->bytes < in->max_transfer) {
		uint32_t take = min_u32(req->sg[seg].len - off,
					min_u32(in->size_max, in->max_transfer - c->bytes));
		sg[n++] = (struct vio_sg){(const uint8_t *)req->sg[seg].addr + off, take};
		c->bytes += take;
		off += take;
		if (off == req->sg[seg].len) {
			seg++;
			off = 0;
		}
	}
	c->n_out = req->op == VIO_BLK_OP_WRITE ? n : 1;
	c->n_in = req->op == VIO_BLK_OP_WRITE ? 1 : n;
	return n;
}

/*
 * Fill slot `s` for the next part of `req` and lay out the segments that carry it in q->q_sg.
 * Nothing in req changes: advance() does that once the part is posted. What the slot says is
 * the device's to read, and to rewrite: the driver goes by the chain returned, never by what
 * it reads back from the slot.
 */
static struct chain build_part(const struct vio_blk *blk, const struct vio_blk_queue *q,
			       const struct vio_blk_req *req, struct vio_blk_slot *s)
{
	const struct vio_blk_info *in = &blk->info;
	struct vio_sg *sg = q->q_sg;
	struct chain c = {.n_out = 1, .n_in = 1}; /* header out, status in: every operation */
	unsigned n = 1;

	/* A clean slot: nothing an earlier part's answer left (a serial) can pass for this one's.
	 * 0xff is not a status the device may write: it catches a device that wrote none. */
	*s = (struct vio_blk_slot){.status = 0xff};
	sg[0] = (struct vio_sg){&s->hdr, sizeof(s->hdr)};

	switch (req->op) {
	case VIO_BLK_OP_READ:
	case VIO_BLK_OP_WRITE:
		c.type = req->op == VIO_BLK_OP_READ ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
		s->hdr.sector = req->blk_sector;
		n = build_data(blk, q, req, &c);
		break;
	case VIO_BLK_OP_DISCARD:
	case VIO_BLK_OP_WRITE_ZEROES: {
		bool discard = req->op == VIO_BLK_OP_DISCARD;
		uint32_t max = discard ? in->max_discard_sectors : in->max_write_zeroes_sectors;
		c.type = discard ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES;
		c.sectors = req->blk_left < max ? (uint32_t)req->blk_left : max;
		s->dwz.sector = req->blk_sector;
		s->dwz.num_sectors = c.sectors;
		s->dwz.flags = !discard && (req->flags & VIO_BLK_REQ_UNMAP)
				   ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
				   : 0;
		sg[n++] = (struct vio_sg){&s->dwz, sizeof(s->dwz)};
		c.n_out = 2;
		break;
	}
	case VIO_BLK_OP_FLUSH:
		c.type = VIRTIO_BLK_T_FLUSH;
		break;
	case VIO_BLK_OP_GET_ID:
		c.type = VIRTIO_BLK_T_GET_ID;
		sg[n++] = (struct vio_sg){s->id, sizeof(s->id)};
		c.n_in = 2;
		break;
	}
	s->hdr.type = c.type;
	sg[n] = (struct vio_sg){&s->status, 1};
	VIO_ASSERT(n < PART_SEGS && c.n_out + c.n_in == n + 1);
	return c;
}

/* The part `c` was posted: move the request's cursor past it. */
static void advance(struct vio_blk_req *req, const struct chain *c)
{
	uint32_t bytes = c->bytes;

	if (has_data(req->op)) {
		req->blk_sector += bytes / SECTOR;
		while (bytes) {
			uint32_t take = min_u32(bytes, req->sg[req->blk_seg].len - req->blk_off);
			bytes -= take;
			req->blk_off += take;
			if (req->blk_off == req->sg[req->blk_seg].len) {
				req->blk_seg++;
				req->blk_off = 0;
			}
		}
	} else if (req->op == VIO_BLK_OP_DISCARD || req->op == VIO_BLK_OP_WRITE_ZEROES) {
		req->blk_sector += c->sectors;
		req->blk_left -= c->sectors;
	} else {
		req->blk_left = 0;
	}
}

/*
 * What the device writes for a full answer (5.2.6): the data of a read, the 20 id bytes of
 * GET_ID (a NUL-padded string, all 20 written), then the status byte; only the status byte
 * for the rest.
 */
static uint32_t answer_len(uint32_t type, uint32_t bytes)
{
	if (type == VIRTIO_BLK_T_IN)
		return bytes + 1;
	if (type == VIRTIO_BLK_T_GET_ID)
		return VIRTIO_BLK_ID_BYTES + 1;
	return 1;
}

/*
 * With a panic reservation, queue 0 keeps VIO_BLK_PANIC_DESCS descriptors free for
 * vio_blk_panic_write: counted as if the part went as a direct chain, its worst case.
 */
static bool leaves_panic_room(struct vio_blk *blk, uint16_t qi, const struct chain *c)
{
	return qi != 0 || !blk->blk_panic_slot ||
	       vio_vq_num_free(&blk->blk_vqs[0]) >= c->n_out + c->n_in + VIO_BLK_PANIC_DESCS;
}

/*
 * Post parts of `req` on queue qi until it has none left or the ring is full. Returns 0,
 * VIO_ENOSPC (ring or slots full: the rest waits) or VIO_EIO (queue broken). Does not kick.
 */
static int post_parts(struct vio_blk *blk, uint16_t qi, struct vio_blk_req *req)
{
	struct vio_blk_queue *q = &blk->blk_q[qi];

	while (has_more(req)) {
		if (!q->q_nfree)
			return VIO_ENOSPC;
		uint16_t i = q->q_free[q->q_nfree - 1];
		VIO_ASSERT(i < q->q_depth);
		struct vio_blk_slot *s = slot_at(q, i);
		struct vio_blk_part *p = &q->q_parts[i];
		struct chain c = build_part(blk, q, req, s);
		if (!leaves_panic_room(blk, qi, &c))
			return VIO_ENOSPC;
		int err = vio_vq_add(&blk->blk_vqs[qi], q->q_sg, c.n_out, c.n_in, p);
		if (err)
			return err;
		q->q_nfree--;
		*p = (struct vio_blk_part){.req = req,
					   .bytes = c.bytes,
					   .in_len = answer_len(c.type, c.bytes),
					   .type = c.type};
		advance(req, &c);
		req->blk_parts++;
		req->blk_nparts++;
		blk->stats.parts++;
	}
	return 0;
}

/* Room came free on queue qi: post what its waiting request still has. */
static void post_waiting(struct vio_blk *blk, uint16_t qi)
{
	struct vio_blk_queue *q = &blk->blk_q[qi];
	struct vio_blk_req *req = q->q_waiting;

	if (!req)
		return;
	int err = post_parts(blk, qi, req);
	if (err && err != VIO_ENOSPC)
		req->blk_status = err;
	if (!has_more(req)) {
		q->q_waiting = NULL;
		if (!req->blk_parts)
			finish(blk, req);
	}
	vio_vq_kick(&blk->blk_vqs[qi]);
}

int vio_blk_submit(struct vio_blk *blk, struct vio_blk_req *req)
{
	int err = check_req(blk, req);
	if (err)
		return err;

	uint16_t n = blk->info.num_queues;
	uint16_t qi = req->queue == VIO_BLK_ANY_QUEUE ? blk->blk_next_queue++ % n : req->queue % n;
	struct vio_blk_queue *q = &blk->blk_q[qi];

	req->blk_sector = req->sector;
	req->blk_left = has_data(req->op) ? 0 : req->nsectors;
	req->blk_seg = 0;
	req->blk_off = 0;
	req->blk_parts = 0;
	req->blk_nparts = 0;
	req->blk_status = 0;
	req->blk_queue = qi;

	if (req->op == VIO_BLK_OP_FLUSH && !blk->info.flush) {
		/* 5.2.6.2: without FLUSH the device is write-through; nothing to wait for. */
		finish(blk, req);
		return 0;
	}
	if (req->op == VIO_BLK_OP_FLUSH || req->op == VIO_BLK_OP_GET_ID)
		req->blk_left = 1;

	/* One request at a time may trickle into a full ring; the others wait for room. */
	err = q->q_waiting ? VIO_ENOSPC : post_parts(blk, qi, req);
	if (!req->blk_nparts) {
		if (err == VIO_ENOSPC)
			blk->stats.full++;
		return err;
	}
	if (err && err != VIO_ENOSPC)
		req->blk_status = err; /* broken after some parts went: they fail in fini */
	else if (has_more(req))
		q->q_waiting = req;
	if (!blk->blk_plugged)
		vio_vq_kick(&blk->blk_vqs[qi]);
	return 0;
}

void vio_blk_plug(struct vio_blk *blk)
{
	blk->blk_plugged++;
}

void vio_blk_unplug(struct vio_blk *blk)
{
	if (blk->blk_plugged && --blk->blk_plugged == 0)
		for (uint16_t i = 0; i < blk->info.num_queues; i++)
			vio_vq_kick(&blk->blk_vqs[i]); /* a no-op for queues with nothing new */
}

/* --- completions ----------------------------------------------------------------------------- */

/*
 * What one part's answer means. The status byte is the last byte of the chain, so OK counts
 * only when the device says it wrote everything the part needs (answer_len): a read that
 * claims success with fewer bytes left part of the caller's buffer unwritten, a short GET_ID
 * part of the serial. An error status is believed whatever the length. What is compared is
 * the driver's own record of the part: the header in the slot is the device's to rewrite.
 */
static int part_status(struct vio_blk *blk, uint16_t qi, const struct vio_blk_part *p,
		       const struct vio_blk_slot *s, uint32_t len)
{
	uint8_t status = *(const volatile uint8_t *)&s->status; /* read once */

	if (len > p->in_len || len == 0 || (status == VIRTIO_BLK_S_OK && len != p->in_len)) {
		blk->stats.bad_answers++;
		vio_logf(port_of(blk), VIO_LOG_ERR, "%s: queue %u: device wrote %u of %u bytes",
			 blk_name, qi, len, p->in_len);
		return VIO_EIO;
	}
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return 0;
	case VIRTIO_BLK_S_IOERR:
		blk->stats.ioerr++;
		return VIO_EIO;
	case VIRTIO_BLK_S_UNSUPP:
		blk->stats.unsupp++;
		return VIO_ENOTSUP;
	}
	blk->stats.bad_answers++;
	vio_logf(port_of(blk), VIO_LOG_ERR, "%s: queue %u: bad status byte 0x%02x", blk_name, qi,
		 status);
	return VIO_EIO;
}

/* GET_ID answered into the slot: copy it once, as much as the caller's buffers hold. */
static void copy_id(const struct vio_blk_slot *s, const struct vio_blk_req *req)
{
	unsigned k = 0;

	for (unsigned i = 0; i < req->nsg && k < sizeof(s->id); i++) {
		uint8_t *dst = (uint8_t *)req->sg[i].addr;
		for (uint32_t j = 0; j < req->sg[i].len && k < sizeof(s->id); j++)
			dst[j] = s->id[k++];
	}
}

static void release_slot(struct vio_blk_queue *q, struct vio_blk_part *p)
{
	uint16_t i = (uint16_t)(p - q->q_parts);

	VIO_ASSERT(i < q->q_depth && q->q_nfree < q->q_depth);
	*p = (struct vio_blk_part){.req = NULL}; /* a free slot belongs to no request */
	q->q_free[q->q_nfree++] = i;
}

/* One part is done with `status`; returns 1 when that finished its caller's request. */
static int part_done(struct vio_blk *blk, struct vio_blk_queue *q, struct vio_blk_part *p,
		     int status)
{
	struct vio_blk_req *req = p->req;
	uint32_t bytes = p->bytes;

	release_slot(q, p);
	if (!req)
		return 0;
	VIO_ASSERT(req->blk_parts > 0);
	if (status && !req->blk_status)
		req->blk_status = status;
	if (!status && req->op == VIO_BLK_OP_READ)
		blk->stats.bytes_read += bytes;
	if (!status && req->op == VIO_BLK_OP_WRITE)
		blk->stats.bytes_written += bytes;
	if (--req->blk_parts || has_more(req))
		return 0;
	finish(blk, req);
	return 1;
}

/*
 * Take completions off queue qi, then refill it from the waiting request. Interrupts are off
 * while we drain and re-armed after; vio_vq_enable_cb says when something slipped in
 * between, which the device may not interrupt for, so we go round again.
 *
 * At most a ring's worth of completions per call: a device that answers each part as soon
 * as it is posted, and callbacks that submit again, could otherwise keep us here forever
 * (in an interrupt handler). What is left stays on the ring for the next call. Each round
 * costs one from the same budget: a device that moves used->idx back and forth can have
 * vio_vq_enable_cb see an entry that vio_vq_get_used then does not.
 */
static int reap(struct vio_blk *blk, uint16_t qi)
{
	struct vio_vq *vq = &blk->blk_vqs[qi];
	struct vio_blk_queue *q = &blk->blk_q[qi];
	unsigned budget = q->q_depth;
	struct vio_vq_used u;
	int done = 0, err = 0;

	for (;;) {
		vio_vq_disable_cb(vq);
		while (budget && (err = vio_vq_get_used(vq, &u)) == 0) {
			budget--;
			/* The core checked the id was in flight: the cookie is one of our parts. */
			struct vio_blk_part *p = u.cookie;
			VIO_ASSERT(p >= q->q_parts && p < q->q_parts + q->q_depth);
			struct vio_blk_slot *s = slot_at(q, (uint16_t)(p - q->q_parts));
			int status = part_status(blk, qi, p, s, u.len);
			if (!status && p->req && p->type == VIRTIO_BLK_T_GET_ID)
				copy_id(s, p->req);
			done += part_done(blk, q, p, status);
		}
		if (err == VIO_EIO) {
			blk->blk_broken = true;
			return broken_err(blk);
		}
		post_waiting(blk, qi);
		if (vio_vq_enable_cb(vq) || !budget)
			break;
		budget--;
	}
	return done;
}

/* The core's queue callback: runs in the queue's interrupt handler. */
static void queue_interrupt(struct vio_vq *vq, void *arg)
{
	struct vio_blk *blk = arg;

	blk->stats.interrupts++;
	reap(blk, vq->index);
}

int vio_blk_poll(struct vio_blk *blk)
{
	int done = 0;

	if (!blk->dev || blk->blk_broken)
		return broken_err(blk);
	/* A device may ask for a reset in its status alone: the core looks now and then. */
	int err = vio_dev_poll(blk->dev);
	if (err) {
		blk->blk_broken = true;
		return err;
	}
	for (uint16_t i = 0; i < blk->info.num_queues; i++) {
		int n = reap(blk, i);
		if (n < 0)
			return n;
		done += n;
	}
	return done;
}

unsigned vio_blk_in_flight(const struct vio_blk *blk)
{
	unsigned n = 0;

	for (uint16_t i = 0; i < blk->info.num_queues; i++)
		n += blk->blk_q[i].q_depth - blk->blk_q[i].q_nfree;
	return n;
}

/* --- synchronous calls ------------------------------------------------------------------- */

/* A synchronous call's request: done may be set in an interrupt handler (opts.wait). */
struct sync_wait {
	volatile bool done;
	volatile int status;
};

static void sync_done(struct vio_blk_req *req, int status, void *arg)
{
	struct sync_wait *w = arg;

	(void)req;
	w->done = true;
	w->status = status;
}

/*
 * Give up on a request the device still holds. Its parts stay posted, so the device may
 * still write the caller's buffers: nothing is safe until a reset, which only fini does.
 * Forget the request (its completion, if it ever comes, must not touch the caller's stack)
 * and refuse further work.
 */
static void abandon(struct vio_blk *blk, struct vio_blk_req *req)
{
	struct vio_blk_queue *q = &blk->blk_q[req->blk_queue];

	for (uint16_t i = 0; i < q->q_depth; i++)
		if (q->q_parts[i].req == req)
			q->q_parts[i].req = NULL;
	if (q->q_waiting == req)
		q->q_waiting = NULL;
	blk->blk_broken = true;
}

/* The clock of one synchronous call: when it began, and when the owner last had a turn. */
struct sync_clock {
	uint64_t start;
	uint64_t turn;
};

/*
 * Between two polls: false when the call has run out of time. Otherwise, once a slice
 * (VIO_BLK_SPIN_NS), give the owner its turn (opts.wait): a kernel that called us
 * with interrupts off takes them there, so that a slow device does not hold them off for
 * the whole timeout. Nothing of the driver's is half done at this point.
 */
static bool may_wait(struct vio_blk *blk, struct sync_clock *c)
{
	const struct vio_port *port = port_of(blk);
	uint64_t now = port->now_ns(port->ctx);

	if (now - c->start > blk->blk_opts.timeout_ns)
		return false;
	if (blk->blk_opts.wait && now - c->turn >= VIO_BLK_SPIN_NS) {
		blk->blk_opts.wait(blk, blk->blk_opts.arg);
		c->turn = port->now_ns(port->ctx);
	}
	return true;
}

int vio_blk_submit_wait(struct vio_blk *blk, struct vio_blk_req *req)
{
	struct sync_wait w = {false, 0};
	struct sync_clock clock;
	int err;

	if (!blk->dev)
		return broken_err(blk);
	clock.start = clock.turn = port_of(blk)->now_ns(port_of(blk)->ctx);
	req->on_done = sync_done;
	req->arg = &w;
	/* A full queue is a wait, not an error: others' completions will make room. */
	while ((err = vio_blk_submit(blk, req)) == VIO_ENOSPC) {
		if ((err = vio_blk_poll(blk)) < 0)
			return err;
		if (!may_wait(blk, &clock)) {
			blk->stats.timeouts++;
			return vio_dev_on_timeout(blk->dev);
		}
	}
	if (err)
		return err;
	if (blk->blk_plugged) /* a caller's plug must not hold back the request we wait for */
		vio_vq_kick(&blk->blk_vqs[req->blk_queue]);
	while (!w.done) {
		err = vio_blk_poll(blk);
		if (w.done)
			break;
		if (err < 0) {
			abandon(blk, req);
			return err;
		}
		if (!may_wait(blk, &clock)) {
			abandon(blk, req);
			blk->stats.timeouts++;
			vio_logf(port_of(blk), VIO_LOG_ERR,
				 "%s: request timed out; device unusable until reset", blk_name);
			return vio_dev_on_timeout(blk->dev);
		}
	}
	return w.status;
}

/* One buffer as a request's only segment; a length that cannot be one is refused. */
static int sync_io(struct vio_blk *blk, enum vio_blk_op op, uint64_t sector, const void *buf,
		   size_t len)
{
	if (!len || len > UINT32_MAX / SECTOR * SECTOR)
		return VIO_EINVAL;
	struct vio_sg sg = {buf, (uint32_t)len};
	struct vio_blk_req req = {
	    .op = op, .sector = sector, .sg = &sg, .nsg = 1, .queue = VIO_BLK_ANY_QUEUE};
	return vio_blk_submit_wait(blk, &req);
}

int vio_blk_read(struct vio_blk *blk, uint64_t sector, void *buf, size_t len)
{
	return sync_io(blk, VIO_BLK_OP_READ, sector, buf, len);
}

int vio_blk_write(struct vio_blk *blk, uint64_t sector, const void *buf, size_t len)
{
	return sync_io(blk, VIO_BLK_OP_WRITE, sector, buf, len);
}

static int sync_range(struct vio_blk *blk, enum vio_blk_op op, uint64_t sector, uint64_t nsectors,
		      uint32_t flags)
{
	struct vio_blk_req req = {.op = op,
				  .flags = flags,
				  .sector = sector,
				  .nsectors = nsectors,
				  .queue = VIO_BLK_ANY_QUEUE};
	return vio_blk_submit_wait(blk, &req);
}

int vio_blk_flush(struct vio_blk *blk)
{
	return sync_range(blk, VIO_BLK_OP_FLUSH, 0, 0, 0);
}

int vio_blk_discard(struct vio_blk *blk, uint64_t sector, uint64_t nsectors)
{
	return sync_range(blk, VIO_BLK_OP_DISCARD, sector, nsectors, 0);
}

int vio_blk_write_zeroes(struct vio_blk *blk, uint64_t sector, uint64_t nsectors, bool unmap)
{
	return sync_range(blk, VIO_BLK_OP_WRITE_ZEROES, sector, nsectors,
			  unmap ? VIO_BLK_REQ_UNMAP : 0);
}

int vio_blk_get_id(struct vio_blk *blk, char *buf, size_t size)
{
	char id[VIRTIO_BLK_ID_BYTES];
	struct vio_sg sg = {id, sizeof(id)};
	struct vio_blk_req req = {
	    .op = VIO_BLK_OP_GET_ID, .sg = &sg, .nsg = 1, .queue = VIO_BLK_ANY_QUEUE};

	int err = vio_blk_submit_wait(blk, &req);
	if (err)
		return err;
	/* The id is NUL-terminated only when shorter than 20 bytes (5.2.6). */
	size_t n = 0;
	while (n < sizeof(id) && id[n])
		n++;
	for (size_t i = 0; i < n; i++)
		blk->info.serial[i] = id[i];
	blk->info.serial[n] = '\0';
	blk->info.has_serial = true;
	if (buf && size) {
		size_t k = n < size - 1 ? n : size - 1;
		for (size_t i = 0; i < k; i++)
			buf[i] = id[i];
		buf[k] = '\0';
	}
	return 0;
}

int vio_blk_set_writeback(struct vio_blk *blk, bool on)
{
	uint8_t want = on ? 1 : 0;

	if (!blk->dev || !blk->info.config_wce)
		return VIO_ENOTSUP;
	/* 5.2.5.1: the driver writes writeback; the device reports what it actually does. */
	int err = vio_dev_config_write(blk->dev, offsetof(struct virtio_blk_config, writeback),
				       &want, sizeof(want));
	if (err)
		return VIO_EIO;
	read_writeback(blk);
	return blk->info.writeback == on ? 0 : VIO_EIO;
}

/* --- bring-up and teardown -------------------------------------------------------------- */

/* Free the panic reservation; with keep_dma it stays: the device may still write its slot. */
static void free_panic(struct vio_blk *blk, bool keep_dma)
{
	const struct vio_port *port = port_of(blk);

	if (blk->blk_panic_slot && !keep_dma)
		port->dma_free(port->ctx, blk->blk_panic_slot, blk->blk_panic_alloc);
	blk->blk_panic_slot = NULL;
	blk->blk_panic_buf = NULL;
	blk->blk_panic_bytes = 0;
	blk->blk_panic_alloc = 0;
}

static int setup_queues(struct vio_blk *blk)
{
	struct vio_dev *dev = blk->dev;
	uint16_t n = blk->info.num_queues;

	const struct vio_vq_opts vq_opts = {.max_size = blk->blk_opts.queue_size,
					    .indirect_tables = blk->blk_opts.indirect_tables};
	int err = vio_dev_setup_irqs(dev, blk->blk_vqs, n);
	for (uint16_t i = 0; i < n && !err; i++) {
		err = vio_dev_setup_vq_opts(dev, i, &vq_opts, queue_interrupt, blk);
		if (!err)
			err = alloc_slots(blk, i);
	}
	if (err)
		return err;
	blk->info.queue_depth = blk->blk_q[0].q_depth;
	for (uint16_t i = 1; i < n; i++)
		if (blk->blk_q[i].q_depth < blk->info.queue_depth)
			blk->info.queue_depth = blk->blk_q[i].q_depth;
	return 0;
}

int vio_blk_init(struct vio_blk *blk, struct vio_dev *dev, const struct vio_blk_opts *opts)
{
	int err;

	*blk = (struct vio_blk){0};
	if (dev->device_id != VIRTIO_ID_BLOCK)
		return VIO_ENODEV;
	if (opts)
		blk->blk_opts = *opts;
	if (!blk->blk_opts.timeout_ns)
		blk->blk_opts.timeout_ns = VIO_BLK_TIMEOUT_NS;
	if (!blk->blk_opts.queue_size)
		blk->blk_opts.queue_size = VIO_BLK_QUEUE_SIZE;
	if (!blk->blk_opts.indirect_tables)
		blk->blk_opts.indirect_tables = VIO_BLK_INDIRECT_TABLES;
	blk->dev = dev;
	dev->name = blk_name;

	/* 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. */
	err = vio_dev_begin(dev, BLK_FEATURES);
	if (err)
		goto fail;

	/* Step 7: device-specific setup: read the config, then the queues. */
	err = read_capacity(blk);
	if (err)
		goto fail;
	read_limits(blk);
	read_optional(blk);
	blk->info.num_queues = read_num_queues(blk);
	err = setup_queues(blk);
	if (err)
		goto fail;
	vio_dev_set_config_callback(dev, config_changed, blk);

	/* Step 8: DRIVER_OK; from here the device may use the queues. */
	err = vio_dev_driver_ok(dev);
	if (err)
		goto fail;
	vio_logf(port_of(blk), VIO_LOG_INFO, "%s: %llu sectors, blk_size %u%s%s, %u queue(s) of %u",
		 blk_name, (unsigned long long)blk->info.capacity, blk->info.blk_size,
		 blk->info.ro ? ", read-only" : "", blk->info.writeback ? ", write-back" : "",
		 blk->info.num_queues, blk->info.queue_depth);
	return 0;

fail:
	driver_abort(dev, blk_name, err);
	free_slots(blk, false); /* nothing was posted: the device never learnt where they are */
	blk->dev = NULL;
	return err;
}

/*
 * After the reset no part still posted will be answered. `err` is VIO_EIO when the device
 * confirmed the reset: the queue gives the parts back (vio_vq_detach_unused) and the buffers
 * are their owners' again. It is VIO_EDEAD when the device did not: the queue is left as it
 * is, the driver's own record says which parts the device still holds, and their requests
 * end with VIO_EDEAD whatever else happened to them, so that their owners keep the buffers.
 */
static void fail_unanswered(struct vio_blk *blk, uint16_t qi, int err)
{
	struct vio_blk_queue *q = &blk->blk_q[qi];
	struct vio_blk_part *p;

	if (q->q_waiting)
		q->q_waiting->blk_status = VIO_EIO; /* post nothing more of it */
	if (err == VIO_EDEAD) {
		for (uint16_t i = 0; i < q->q_depth; i++) {
			p = &q->q_parts[i];
			if (p->req) {
				p->req->blk_status = VIO_EDEAD;
				part_done(blk, q, p, VIO_EDEAD);
			}
		}
	} else {
		while ((p = vio_vq_detach_unused(&blk->blk_vqs[qi])))
			if ((void *)p != blk->blk_panic_slot) /* a panic write the device kept */
				part_done(blk, q, p, VIO_EIO);
	}
	if (q->q_waiting && !q->q_waiting->blk_parts)
		finish(blk, q->q_waiting);
}

int vio_blk_fini(struct vio_blk *blk)
{
	struct vio_dev *dev = blk->dev;

	if (!dev)
		return 0;
	blk->blk_broken = true; /* callbacks run below must not start new requests */
	vio_dev_set_config_callback(dev, NULL, NULL);
	/*
	 * After a confirmed reset the device touches no ring and no buffer (and interrupts no
	 * more). Without one it may still write every slot and every buffer posted to it
	 * (design.md, "Freeing"): the slots are kept for it, and the queues lose their callback,
	 * so that a late interrupt finds no driver.
	 */
	int err = vio_dev_reset(dev) ? VIO_EDEAD : 0;
	for (uint16_t i = 0; i < blk->info.num_queues; i++) {
		if (err)
			vio_vq_set_callback(&blk->blk_vqs[i], NULL, NULL);
		if (blk->blk_q[i].q_depth)
			fail_unanswered(blk, i, err ? VIO_EDEAD : VIO_EIO);
	}
	if (err) {
		vio_logf(port_of(blk), VIO_LOG_ERR,
			 "%s: reset not confirmed: requests it holds fail with VIO_EDEAD, their "
			 "buffers and the driver's slots are left to it",
			 blk_name);
		vio_dev_abort(dev); /* the core keeps a dead device's rings; then FAILED */
	} else {
		vio_dev_teardown(dev);
	}
	free_slots(blk, err != 0);
	free_panic(blk, err != 0);
	blk->blk_dead = err != 0;
	blk->dev = NULL;
	return err;
}

/* --- panic-safe polled writes --------------------------------------------------------------- */

/*
 * The slot and the buffer share one DMA allocation: the slot first, the buffer on the next
 * 512-byte boundary. The ring room comes from leaves_panic_room, and queue 0's parts are made
 * short enough that an ordinary request still fits beside the reservation.
 */
#define PANIC_BUF_OFFSET 512u

int vio_blk_panic_reserve(struct vio_blk *blk, uint32_t bytes, void **buf)
{
	const struct vio_blk_info *in = &blk->info;

	if (!blk->dev || blk->blk_broken)
		return broken_err(blk);
	if (in->ro)
		return VIO_EROFS;
	uint32_t max = min_u32(bytes, min_u32(in->size_max, in->max_transfer));
	max -= max % in->blk_size;
	if (!max || blk->blk_panic_slot)
		return VIO_EINVAL;
	if (blk->blk_vqs[0].size < 8)
		return VIO_ENOTSUP;

	const struct vio_port *port = port_of(blk);
	uint64_t phys;
	uint32_t alloc = PANIC_BUF_OFFSET + max;
	uint8_t *mem = port->dma_alloc(port->ctx, alloc, &phys);
	if (!mem)
		return VIO_ENOMEM;
	struct vio_blk_queue *q = &blk->blk_q[0];
	q->q_seg_max = min_u32(q->q_seg_max, blk->blk_vqs[0].size - 2u - VIO_BLK_PANIC_DESCS);
	blk->blk_panic_slot = (struct vio_blk_slot *)mem;
	blk->blk_panic_buf = mem + PANIC_BUF_OFFSET;
	blk->blk_panic_bytes = max;
	blk->blk_panic_alloc = alloc;
	*buf = blk->blk_panic_buf;
	return (int)max;
}

static int panic_check(const struct vio_blk *blk, uint64_t sector, uint32_t len)
{
	const struct vio_blk_info *in = &blk->info;

	if (!blk->dev || blk->blk_dead || vio_dev_is_dead(blk->dev) || blk->dev->needs_reset)
		return broken_err(blk);
	if (!blk->blk_panic_slot || !len || len > blk->blk_panic_bytes || len % SECTOR ||
	    !in_capacity(blk, sector, len / SECTOR))
		return VIO_EINVAL;
	if (len % in->blk_size || (sector & (in->blk_size / SECTOR - 1)))
		return VIO_EALIGN;
	if (in->ro)
		return VIO_EROFS;
	if (blk->blk_panic_stuck)
		return VIO_ETIMEDOUT;
	return vio_vq_is_broken(&blk->blk_vqs[0]) ? VIO_EIO : 0;
}

/*
 * Forget every request in flight, on every queue: their parts stay with the device, but no
 * completion will reach a request again (not even vio_blk_fini's), so no callback runs and
 * no owner's memory is touched from here on. The queues lose their interrupt callback: a
 * late interrupt must not take the panic request off the ring. Private memory only: no
 * allocation, no lock.
 */
static void abandon_all(struct vio_blk *blk)
{
	for (uint16_t qi = 0; qi < blk->info.num_queues; qi++) {
		struct vio_blk_queue *q = &blk->blk_q[qi];
		vio_vq_set_callback(&blk->blk_vqs[qi], NULL, NULL);
		for (uint16_t i = 0; i < q->q_depth; i++)
			q->q_parts[i].req = NULL;
		q->q_waiting = NULL;
	}
	blk->blk_broken = true; /* ordinary service is over */
}

/*
 * Our one request is back: believe OK only with the one status byte written (5.2.6), as
 * part_status does for ordinary parts. Anything else that comes back is an abandoned part
 * (the core checked it was in flight): its slot is free again, nobody hears.
 */
static int panic_poll(struct vio_blk *blk)
{
	const struct vio_port *port = port_of(blk);
	struct vio_vq *vq = &blk->blk_vqs[0];
	struct vio_blk_queue *q = &blk->blk_q[0];
	uint64_t start = port->now_ns(port->ctx);
	struct vio_vq_used u;

	for (;;) {
		int err = vio_vq_get_used(vq, &u);
		if (err == VIO_EIO)
			return VIO_EIO;
		if (!err && u.cookie == blk->blk_panic_slot) {
			uint8_t status = *(const volatile uint8_t *)&blk->blk_panic_slot->status;
			return u.len == 1 && status == VIRTIO_BLK_S_OK ? 0 : VIO_EIO;
		}
		if (!err) {
			struct vio_blk_part *p = u.cookie;
			VIO_ASSERT(p >= q->q_parts && p < q->q_parts + q->q_depth);
			release_slot(q, p);
			continue;
		}
		if (err && port->now_ns(port->ctx) - start > blk->blk_opts.timeout_ns) {
			blk->blk_panic_stuck = true;
			return VIO_ETIMEDOUT;
		}
	}
}

/* Post one request in the reserved slot (a write of `len` buffer bytes, or a flush), wait. */
static int panic_request(struct vio_blk *blk, uint32_t type, uint64_t sector, uint32_t len)
{
	abandon_all(blk);

	struct vio_blk_slot *s = blk->blk_panic_slot;
	*s = (struct vio_blk_slot){.status = 0xff};
	s->hdr.type = type;
	s->hdr.sector = sector;
	const struct vio_sg write[3] = {
	    {&s->hdr, sizeof(s->hdr)}, {blk->blk_panic_buf, len}, {&s->status, 1}};
	const struct vio_sg flush[2] = {{&s->hdr, sizeof(s->hdr)}, {&s->status, 1}};
	struct vio_vq *vq = &blk->blk_vqs[0];
	int err = type == VIRTIO_BLK_T_OUT ? vio_vq_add(vq, write, 2, 1, s)
					   : vio_vq_add(vq, flush, 1, 1, s);
	if (err)
		return err;
	/* Notify whatever the suppression state says: the device may be stuck on what we
	 * abandoned, and an extra notification is always allowed (2.7.13.4). */
	vio_vq_kick_prepare(vq);
	vio_vq_notify(vq);
	return panic_poll(blk);
}

int vio_blk_panic_write(struct vio_blk *blk, uint64_t sector, uint32_t len)
{
	int err = panic_check(blk, sector, len);
	return err ? err : panic_request(blk, VIRTIO_BLK_T_OUT, sector, len);
}

int vio_blk_panic_flush(struct vio_blk *blk)
{
	/* One block at sector 0 passes every check a flush needs. */
	int err = panic_check(blk, 0, blk->info.blk_size);
	if (err)
		return err;
	/* 5.2.6.2: without FLUSH the device is write-through: nothing to wait for. */
	return blk->info.flush ? panic_request(blk, VIRTIO_BLK_T_FLUSH, 0, 0) : 0;
}
