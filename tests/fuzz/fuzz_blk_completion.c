/*
 * libFuzzer target: the fuzzer plays a hostile virtio-blk device against the driver's
 * completion path (src/drivers/virtio_blk.c), on the whole fake device of tests/host
 * (fake_env: fake PCI function, fake port, the device side of each ring).
 *
 * The first byte picks the device: one or two request queues of 8 or 16 entries, indirect
 * descriptors and EVENT_IDX or not, interrupts or polling. Every following op byte either
 * makes the driver act (submit a read, write, flush, GET_ID, discard or write-zeroes of a
 * few sectors; poll; take a queue interrupt; plug and unplug) or lets the device act as it
 * likes: take requests off the ring, answer one (which one, in any order, any status byte,
 * any used length, the GET_ID bytes written or not), answer with an id that is not in
 * flight, publish or not, move used->idx, or scribble over the driver's DMA slots (headers,
 * status bytes, GET_ID bytes) at any time.
 *
 * What must hold whatever the device did:
 *   - a callback runs only for a request that was submitted, at most once, with 0, VIO_EIO
 *     or VIO_ENOTSUP (VIO_EDEAD from a fini whose reset the device never confirmed);
 *   - a read that completes with 0 was answered with exactly its data and the status byte
 *     OK, a GET_ID with all 20 id bytes and OK (checked while the device answered only
 *     through the ring entries it took, without lies or scribbles since the submit);
 *   - no more parts in flight than the rings hold;
 *   - vio_blk_fini completes every request still outstanding, exactly once, and frees
 *     everything (or, when the reset is not confirmed, keeps the DMA the device may use).
 * ASan and UBSan catch any access outside what the driver owns, and the library is built
 * with VIO_DEBUG: a VIO_ASSERT that device input can reach aborts the run.
 *
 *   make build/fuzz/fuzz_blk_completion && build/fuzz/fuzz_blk_completion -max_total_time=60
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/blk.h>
#include <vio/err.h>
#include <vio/spec/virtio_blk.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define MAX_REQS    24
#define MAX_SECTORS 4
#define CAPACITY    64
#define MAX_PEND    64

struct freq {
	struct vio_blk_req req;
	struct vio_sg sg;
	uint8_t buf[MAX_SECTORS * 512];
	bool live;	     /* submitted, callback not yet run */
	uint32_t last_len;   /* used length the device last answered this request's chain with */
	uint8_t last_status; /* status byte it wrote then */
	bool tainted;	     /* the device lied or scribbled since: its answer is not known */
};

/* A chain the device took off a ring and has not answered yet. */
struct pend {
	int ring;
	uint16_t head;
	struct freq *r; /* the request whose buffer it carries, when it carries one */
	uint32_t in_len;
	uint8_t *status;
	uint8_t *id; /* GET_ID: where the 20 bytes go */
};

struct state {
	struct fake_env *e;
	struct vio_blk blk;
	struct freq req[MAX_REQS];
	struct pend pend[MAX_PEND];
	unsigned npend;
	struct fake_req fr;
	bool lied; /* the device wrote used entries of its own: no oracle from then on */
	const uint8_t *p, *end;
};

static struct state st;

FUZZ_INPUT_READERS(struct state)

static void on_done(struct vio_blk_req *req, int status, void *arg)
{
	struct freq *r = arg;

	check(r >= st.req && r < st.req + MAX_REQS && req == &r->req);
	check(r->live);
	check(status == 0 || status == VIO_EIO || status == VIO_ENOTSUP || status == VIO_EDEAD);
	bool known = !r->tainted && !st.lied;
	if (status == 0 && req->op == VIO_BLK_OP_READ && known)
		check(r->last_len == r->sg.len + 1 && r->last_status == VIRTIO_BLK_S_OK);
	if (status == 0 && req->op == VIO_BLK_OP_GET_ID && known)
		check(r->last_len == VIRTIO_BLK_ID_BYTES + 1 && r->last_status == VIRTIO_BLK_S_OK);
	r->live = false;
}

/* The device did something no request's record follows: no oracle for those in flight. */
static void taint(struct state *s)
{
	for (unsigned k = 0; k < MAX_REQS; k++)
		s->req[k].tainted = true;
}

static void op_submit(struct state *s)
{
	struct freq *r = &s->req[byte(s) % MAX_REQS];
	uint8_t how = byte(s);
	uint64_t n = 1 + byte(s) % MAX_SECTORS;

	if (r->live)
		return;
	*r = (struct freq){0};
	r->sg = (struct vio_sg){r->buf, (uint32_t)(n * 512)};
	r->req = (struct vio_blk_req){.op = (enum vio_blk_op)(how % 6),
				      .sector = byte(s) % (CAPACITY - MAX_SECTORS),
				      .nsectors = n,
				      .sg = &r->sg,
				      .nsg = 1,
				      .queue = how & 0x80 ? VIO_BLK_ANY_QUEUE : (how >> 3) & 1,
				      .flags = (how >> 4) & VIO_BLK_REQ_UNMAP,
				      .on_done = on_done,
				      .arg = r};
	r->live = true;
	int err = vio_blk_submit(&s->blk, &r->req);
	if (err) {
		check(r->live); /* no callback for a request refused */
		check(err == VIO_ENOSPC || err == VIO_EIO || err == VIO_ENEEDRESET);
		r->live = false;
	}
}

/* The device takes every published request off its rings. */
static void op_pop(struct state *s)
{
	for (int q = 0; q < s->e->nrings; q++) {
		while (s->npend < MAX_PEND && fake_vring_pop(&s->e->ring[q], &s->fr)) {
			struct fake_req *fr = &s->fr;
			unsigned n = fr->n_out + fr->n_in;
			struct pend *p = &s->pend[s->npend++];
			*p = (struct pend){.ring = q, .head = fr->head, .in_len = fr->in_len};
			/*
			 * A device that used a head it never took (a lie, or an old used entry
			 * shown again) can hand the same head back once more while the
			 * driver's next request on it is still in the avail ring. The driver
			 * rightly completes that request and reuses its descriptors, so when
			 * the device later reads the stale avail entry the head may now be the
			 * middle or tail of another chain (seen: a lone 1-byte status
			 * descriptor). Such a chain carries no request the oracle can follow:
			 * it stays pending without status, data or id pointers.
			 */
			bool whole = n >= 2 && fr->seg[n - 1].write && fr->seg[n - 1].len == 1;
			check(whole || s->lied);
			if (!whole)
				continue;
			p->status = (uint8_t *)(uintptr_t)fr->seg[n - 1].addr;
			for (unsigned k = 0; k < MAX_REQS; k++) {
				uintptr_t a = (uintptr_t)fr->seg[1].addr,
					  b = (uintptr_t)s->req[k].buf;
				if (n > 2 && a >= b && a < b + sizeof(s->req[k].buf))
					p->r = &s->req[k];
			}
			if (n == 3 && fr->seg[1].write && fr->seg[1].len == VIRTIO_BLK_ID_BYTES)
				p->id = (uint8_t *)(uintptr_t)fr->seg[1].addr;
		}
	}
}

/* The device answers one chain it took: any one, any status, any length. */
static void op_answer(struct state *s)
{
	if (!s->npend)
		return;
	unsigned i = byte(s) % s->npend;
	struct pend p = s->pend[i];
	uint8_t how = byte(s);
	uint8_t status = how & 0x40 ? byte(s) : (how >> 4) & 3;
	uint32_t len = p.in_len;

	switch (how & 7) {
	case 5:
		len = p.in_len - 1;
		break;
	case 6:
		len = 1;
		break;
	case 7:
		len = word(s);
		break;
	}
	if (!(how & 0x80) && p.status)
		*p.status = status;
	if (p.id && (how & 8))
		memset(p.id, byte(s), VIRTIO_BLK_ID_BYTES);
	if (p.r) {
		p.r->last_len = len;
		p.r->last_status = *p.status;
	}
	if (p.id) {
		/* Its id bytes are the driver's: which GET_ID it is, only a lone one tells. */
		struct freq *id_req = NULL;
		unsigned n = 0;
		for (unsigned k = 0; k < MAX_REQS; k++)
			if (s->req[k].live && s->req[k].req.op == VIO_BLK_OP_GET_ID) {
				id_req = &s->req[k];
				n++;
			}
		for (unsigned k = 0; n > 1 && k < MAX_REQS; k++)
			if (s->req[k].req.op == VIO_BLK_OP_GET_ID)
				s->req[k].tainted = true;
		if (n == 1) {
			id_req->last_len = len;
			id_req->last_status = *p.status;
		}
	}
	memmove(&s->pend[i], &s->pend[i + 1], (s->npend - i - 1) * sizeof(p));
	s->npend--;
	fake_vring_push(&s->e->ring[p.ring], p.head, len);
	if (byte(s) & 1)
		fake_vring_publish(&s->e->ring[p.ring]);
}

static void op_device_lies(struct state *s)
{
	struct fake_vring *fv = &s->e->ring[byte(s) % s->e->nrings];
	uint8_t how = byte(s);

	if (how & 1) {
		s->lied = true;
		fake_vring_push(fv, how & 2 ? word(s) : byte(s) % (fv->size + 2u), word(s));
		fake_vring_publish(fv);
	} else if (how & 2) {
		s->lied = true; /* old entries, naming heads that may be in flight again */
		fake_vring_set_used_idx(fv, (uint16_t)(fv->used_published + byte(s) % 4));
	} else {
		fake_vring_publish(fv);
	}
}

/* The device writes anywhere in the driver's slots: headers, ranges, id bytes, status. */
static void op_scribble(struct state *s)
{
	const struct vio_blk_queue *q = &s->blk.blk_q[byte(s) % s->blk.info.num_queues];
	uint32_t off = word(s) % (q->q_nslot_pages * 4096u);
	uint8_t v = byte(s);

	taint(s);
	((uint8_t *)q->q_slot_pages[off / 4096u])[off % 4096u] = v;
}

static void op_interrupt(struct state *s)
{
	vio_vq_interrupt(&s->blk.blk_vqs[byte(s) % s->blk.info.num_queues]);
}

/* While fini waits for a reset that never comes, time flies (fuzz_input.h). */
static void time_flies(void *arg)
{
	struct fake_port *fp = arg;
	fp->now += VIO_RESET_TIMEOUT_NS / FUZZ_LOOKS_PER_TIMEOUT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state *s = &st;

	if (size < 1)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;

	uint8_t cfg = byte(s);
	int nq = cfg & 1 ? 2 : 1;
	uint16_t qsize = cfg & 2 ? 16 : 8;
	uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
			    VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
			    VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |
			    (nq > 1 ? VIRTIO_BIT(VIRTIO_BLK_F_MQ) : 0) |
			    (cfg & 4 ? VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) : 0) |
			    (cfg & 8 ? VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX) : 0);
	struct virtio_blk_config bc = {.capacity = CAPACITY,
				       .seg_max = 4,
				       .size_max = 4096,
				       .num_queues = (uint16_t)nq,
				       .max_discard_sectors = 2,
				       .max_write_zeroes_sectors = 3};
	s->e = fake_env_new(VIRTIO_ID_BLOCK, features, &bc, sizeof(bc), nq, qsize);
	if (cfg & 0x10)
		fake_env_no_irqs(s->e);
	check(vio_blk_init(&s->blk, &s->e->dev, NULL) == 0);
	fake_env_rings(s->e);
	for (int i = 0; i < s->e->nrings; i++)
		s->e->ring[i].deliver_irqs = s->e->dev.irq_mode != VIO_IRQ_POLL && (cfg & 0x20);

	while (s->p < s->end) {
		switch (byte(s) % 12) {
		case 0:
		case 1:
		case 2:
			op_submit(s);
			break;
		case 3:
			op_pop(s);
			break;
		case 4:
		case 5:
		case 6:
			op_answer(s);
			break;
		case 7:
			op_device_lies(s);
			break;
		case 8:
			op_scribble(s);
			break;
		case 9:
			vio_blk_poll(&s->blk);
			break;
		case 10:
			op_interrupt(s);
			break;
		case 11:
			if (byte(s) & 1)
				vio_blk_plug(&s->blk);
			else
				vio_blk_unplug(&s->blk);
			break;
		}
		check(vio_blk_in_flight(&s->blk) <= (unsigned)(nq * qsize));
	}

	s->e->vd.reset_stuck = cfg & 0x40;
	s->e->fp.on_wait = time_flies;
	s->e->fp.on_wait_arg = &s->e->fp;
	vio_blk_fini(&s->blk);
	for (unsigned k = 0; k < MAX_REQS; k++)
		check(!s->req[k].live);
	if (cfg & 0x40) {
		s->e->vd.reset_stuck = false;
		fake_env_reclaim_leaks(s->e);
	} else {
		check(s->e->fp.priv_live_allocs == 0);
	}
	fake_env_free(s->e);
	return 0;
}
