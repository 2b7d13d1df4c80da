/*
 * Unit tests for the virtio-net driver (src/drivers/virtio_net.c) on fake_env: a fake PCI
 * virtio function whose rings a small device model below plays, the way QEMU's virtio-net
 * would. The model captures what the driver transmits (header and frame), fills posted RX
 * buffers with frames the test injects (header first, num_buffers counting the buffers
 * used with MRG_RXBUF), and answers control commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <vio/err.h>
#include <vio/net.h>

#include "fake_env.h"

#define BIT(n)		(1ull << (n))
#define QSIZE		64
#define MAX_FRAME_BYTES 70000
#define RX_FIFO		1024

/* --- the device model ----------------------------------------------------------------------- */

struct inj {
	uint8_t data[MAX_FRAME_BYTES];
	uint32_t len;
	uint8_t hflags; /* virtio_net_hdr.flags */
	uint8_t gso_type;
	uint16_t hdr_len; /* virtio_net_hdr.hdr_len */
	uint16_t csum_start, csum_offset;
	uint16_t gso_size;
	int nbufs_override;  /* >= 0: write this num_buffers whatever was used */
	uint32_t len_extra;  /* claim this many bytes more than written (first buffer) */
	uint32_t per_buf;    /* fill at most this many bytes per buffer (0: as many as fit) */
	uint32_t hash_value; /* the 20-byte header's hash fields (HASH_REPORT) */
	uint16_t hash_report;
};

/* One RX buffer the device took: a chain of up to RX_SEGS device-writable segments. */
#define RX_SEGS 4
struct rxslot {
	uint16_t head;
	unsigned nseg;
	uint8_t *mem[RX_SEGS];
	uint32_t len[RX_SEGS];
	uint32_t room; /* all segments together */
};

struct txcap {
	uint8_t hdr[20];
	uint32_t hdr_seg_len; /* length of the first (header) descriptor */
	uint8_t data[MAX_FRAME_BYTES];
	uint32_t len;
	unsigned n_out;
};

struct model {
	unsigned hdr_len;
	bool mrg;
	int ctrl_ring; /* the controlq: 2, or 2 * max_virtqueue_pairs with MQ */

	struct rxslot rx[RX_FIFO];
	unsigned rx_head, rx_count;
	struct inj inj[16];
	unsigned inj_head, inj_count;

	bool tx_hold;
	bool tx_scribble; /* overwrite each header once read: a slot's next frame must not see it */
	struct txcap tx[16];
	unsigned tx_seen;

	bool ctrl_silent;
	uint8_t ctrl_ack;
	unsigned ctrl_count;
	uint8_t ctrl_class, ctrl_cmd;
	uint8_t ctrl_data[1024];
	uint32_t ctrl_len;
	unsigned ctrl_n_out;
	struct fake_req ctrl_req; /* the last command popped (answered late when silent) */
	bool ctrl_unanswered;
};

static void model_tx(struct fake_env *e, struct model *m)
{
	static struct fake_req req;
	bool any = false;

	while (!m->tx_hold && fake_vring_pop(&e->ring[1], &req)) {
		static uint8_t all[MAX_FRAME_BYTES + 20];
		struct txcap *c = &m->tx[m->tx_seen++ % 16];
		uint32_t n = fake_vring_gather(&req, all, sizeof(all));

		assert_int_equal(req.n_in, 0);
		assert_true(n >= m->hdr_len);
		memset(c->hdr, 0, sizeof(c->hdr));
		memcpy(c->hdr, all, m->hdr_len);
		c->hdr_seg_len = req.seg[0].len;
		if (m->tx_scribble)
			memset((void *)(uintptr_t)req.seg[0].addr, 0xee, req.seg[0].len);
		c->n_out = req.n_out;
		c->len = n - m->hdr_len;
		memcpy(c->data, all + m->hdr_len, c->len);
		fake_vring_push(&e->ring[1], req.head, 0);
		any = true;
	}
	if (any)
		fake_vring_publish(&e->ring[1]);
}

static void model_pop_rx(struct fake_env *e, struct model *m)
{
	static struct fake_req req;

	while (fake_vring_pop(&e->ring[0], &req)) {
		assert_int_equal(req.n_out, 0);
		assert_in_range(req.n_in, 1, RX_SEGS);
		assert_true(m->rx_count < RX_FIFO);
		struct rxslot *s = &m->rx[(m->rx_head + m->rx_count++) % RX_FIFO];
		*s = (struct rxslot){.head = req.head, .nseg = req.n_in};
		for (unsigned i = 0; i < req.n_in; i++) {
			s->mem[i] = (uint8_t *)(uintptr_t)req.seg[i].addr;
			s->len[i] = req.seg[i].len;
			s->room += req.seg[i].len;
		}
	}
}

/* What the device may write into one buffer of a frame (at most per_buf when that is set). */
static uint32_t slot_room(const struct rxslot *s, uint32_t per_buf)
{
	return per_buf && per_buf < s->room ? per_buf : s->room;
}

/* Write n bytes into the buffer's segments, in order. */
static void slot_write(const struct rxslot *s, const uint8_t *p, uint32_t n)
{
	for (unsigned i = 0; i < s->nseg && n; i++) {
		uint32_t k = n < s->len[i] ? n : s->len[i];
		memcpy(s->mem[i], p, k);
		p += k;
		n -= k;
	}
}

/* Put one injected frame into posted buffers; false when too few are posted yet. */
static bool model_deliver(struct fake_env *e, struct model *m, const struct inj *f)
{
	static uint8_t stream[MAX_FRAME_BYTES + 20];
	struct virtio_net_hdr_v1_hash hh = {.hdr = {.flags = f->hflags,
						    .gso_type = f->gso_type,
						    .hdr_len = f->hdr_len,
						    .csum_start = f->csum_start,
						    .csum_offset = f->csum_offset,
						    .gso_size = f->gso_size},
					    .hash_value = f->hash_value,
					    .hash_report = f->hash_report};
	struct virtio_net_hdr *h = &hh.hdr;
	uint32_t total = m->hdr_len + f->len, off = 0;
	unsigned used = 0;

	/* How many buffers the frame takes. */
	for (uint32_t left = total; left; used++) {
		if (used >= m->rx_count)
			return false;
		uint32_t room = slot_room(&m->rx[(m->rx_head + used) % RX_FIFO], f->per_buf);
		if (!m->mrg)
			room = left; /* one buffer, whatever it takes (tests stay within it) */
		left -= left < room ? left : room;
	}
	h->num_buffers = (uint16_t)(f->nbufs_override >= 0 ? (unsigned)f->nbufs_override : used);
	memcpy(stream, &hh, m->hdr_len);
	memcpy(stream + m->hdr_len, f->data, f->len);

	for (unsigned i = 0; i < used; i++) {
		const struct rxslot *s = &m->rx[m->rx_head];
		uint32_t room = slot_room(s, f->per_buf);
		uint32_t n = total - off < room ? total - off : room;
		slot_write(s, stream + off, n);
		off += n;
		fake_vring_push(&e->ring[0], s->head, n + (i == 0 ? f->len_extra : 0));
		m->rx_head = (m->rx_head + 1) % RX_FIFO;
		m->rx_count--;
	}
	fake_vring_publish(&e->ring[0]);
	return true;
}

static void model_ctrl_answer(struct fake_env *e, struct model *m)
{
	const struct fake_seg *ack = &m->ctrl_req.seg[m->ctrl_req.n_out];

	*(uint8_t *)(uintptr_t)ack->addr = m->ctrl_ack;
	fake_vring_complete(&e->ring[m->ctrl_ring], m->ctrl_req.head, 1);
	m->ctrl_unanswered = false;
}

static void model_ctrl(struct fake_env *e, struct model *m)
{
	uint8_t all[1100];

	if (e->nrings <= m->ctrl_ring || !e->dev.vqs[m->ctrl_ring].size)
		return;
	while (!m->ctrl_unanswered && fake_vring_pop(&e->ring[m->ctrl_ring], &m->ctrl_req)) {
		uint32_t n = fake_vring_gather(&m->ctrl_req, all, sizeof(all));
		assert_true(n >= 2);
		assert_int_equal(m->ctrl_req.n_in, 1);
		m->ctrl_count++;
		m->ctrl_class = all[0];
		m->ctrl_cmd = all[1];
		m->ctrl_len = n - 2;
		m->ctrl_n_out = m->ctrl_req.n_out;
		memcpy(m->ctrl_data, all + 2, m->ctrl_len);
		m->ctrl_unanswered = true;
		if (!m->ctrl_silent)
			model_ctrl_answer(e, m);
	}
}

static void model_run(struct fake_env *e)
{
	struct model *m = e->model_arg;

	/* The device plays its part once the driver set DRIVER_OK (a command during init). */
	if (!e->nrings && e->dev.vqs && (e->dev.status & VIRTIO_CONFIG_S_DRIVER_OK))
		fake_env_rings(e);
	if (!e->nrings)
		return;
	model_tx(e, m);
	model_pop_rx(e, m);
	while (m->inj_count && model_deliver(e, m, &m->inj[m->inj_head])) {
		m->inj_head = (m->inj_head + 1) % 16;
		m->inj_count--;
	}
	model_ctrl(e, m);
}

static struct inj *inject(struct model *m, uint32_t len, uint8_t seed)
{
	assert_true(m->inj_count < 16);
	struct inj *f = &m->inj[(m->inj_head + m->inj_count++) % 16];
	memset(f, 0, offsetof(struct inj, data));
	f->len = len;
	f->nbufs_override = -1;
	f->hflags = f->gso_type = 0;
	f->hdr_len = f->csum_start = f->csum_offset = f->gso_size = 0;
	f->len_extra = f->per_buf = 0;
	f->hash_value = f->hash_report = 0;
	for (uint32_t i = 0; i < len; i++)
		f->data[i] = (uint8_t)(seed + i);
	return f;
}

/* --- the test environment ------------------------------------------------------------------- */

struct t {
	struct fake_env *e;
	struct model *m;
	struct vio_net net;
	unsigned irqs, link_calls;
	bool last_up;
	void *cookies[64];
	unsigned ncookies;
	unsigned announces;
	bool fini_done;
};

static void on_irq(struct vio_net *net, void *arg)
{
	struct t *t = arg;
	(void)net;
	t->irqs++;
}

static void on_link(struct vio_net *net, bool up, void *arg)
{
	struct t *t = arg;
	(void)net;
	t->link_calls++;
	t->last_up = up;
}

static void on_tx_done(struct vio_net *net, void *cookie, void *arg)
{
	struct t *t = arg;
	(void)net;
	assert_true(t->ncookies < 64);
	t->cookies[t->ncookies++] = cookie;
}

static uint64_t fixed_entropy(struct vio_net *net, void *arg)
{
	(void)net;
	(void)arg;
	return 0x1234;
}

static void default_opts(struct t *t, struct vio_net_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->on_irq = on_irq;
	o->on_link = on_link;
	o->on_tx_done = on_tx_done;
	o->arg = t;
}

static struct t *t_alloc(struct fake_env *e, uint64_t features)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->m = calloc(1, sizeof(*t->m));
	assert_non_null(t->m);
	t->e = e;
	t->m->hdr_len = 12;
	t->m->mrg = features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	t->m->ctrl_ring = 2;
	e->model = model_run;
	e->model_arg = t->m;
	return t;
}

/* The driver is up and the model attached to its rings. */
static void t_start(struct t *t, const struct vio_net_opts *opts)
{
	struct vio_net_opts o;
	if (!opts) {
		default_opts(t, &o);
		opts = &o;
	}
	assert_int_equal(vio_net_init(&t->net, &t->e->dev, opts), 0);
	if (!t->e->nrings)
		fake_env_rings(t->e);
	fake_env_run(t->e);
}

static struct t *t_new_cfg(uint64_t features, const struct virtio_net_config *cfg, bool irqs,
			   const struct vio_net_opts *opts)
{
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56}};
	if (cfg)
		c = *cfg;
	struct fake_env *e = fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 3, QSIZE);
	if (!irqs)
		fake_env_no_irqs(e);
	struct t *t = t_alloc(e, features);
	t_start(t, opts);
	return t;
}

static struct t *t_new(uint64_t features)
{
	return t_new_cfg(features, NULL, true, NULL);
}

static void t_free(struct t *t)
{
	for (int i = 0; i < t->e->nrings; i++)
		assert_int_equal(t->e->ring[i].chain_errors, 0);
	if (!t->fini_done)
		vio_net_fini(&t->net);
	t->e->model = NULL;  /* the rings are gone */
	fake_env_free(t->e); /* asserts that no DMA memory is left */
	free(t->m);
	free(t);
}

static void env_wait(void *arg)
{
	fake_env_run(arg);
}

/* A transitional device with queues of qsize, driven through its legacy interface. */
static struct t *t_new_legacy_q(uint64_t features, uint16_t qsize)
{
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 0xab, 0xcd, 0xef}};
	struct fake_env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	fake_port_init(&e->fp);
	e->fp.on_wait = env_wait;
	e->fp.on_wait_arg = e;
	fake_port_low_dma(&e->fp);
	fake_pci_init(&e->pci, &e->fp);
	e->vd.kind = FAKE_VDEV_TRANSITIONAL;
	e->vd.device_id = VIRTIO_ID_NET;
	e->vd.features = features;
	e->vd.msix_entries = 4;
	for (int i = 0; i < 3; i++)
		e->vd.q[i].max = qsize;
	memcpy(e->vd.config, &c, sizeof(c));
	e->vd.config_len = sizeof(c);
	fake_vdev_attach(&e->vd, &e->pci, 0, 4, 0);
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, NULL), 0);
	assert_int_equal(vio_pci_dev_init(&e->pdev, &e->bus, 0, 4, 0), 0);
	assert_int_equal(vio_pci_probe_legacy(&e->dev, &e->pdev), 0);
	struct t *t = t_alloc(e, features);
	t_start(t, NULL);
	return t;
}

/* A transitional device driven through its legacy interface (no VERSION_1). */
static struct t *t_new_legacy(uint64_t features)
{
	return t_new_legacy_q(features, QSIZE);
}

static void fill(uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i);
}

static bool is_pattern(const uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed + i))
			return false;
	return true;
}

/* Every RX buffer is either posted to the device or waiting in the model's FIFO. */
static void assert_rx_ring_full(struct t *t)
{
	struct fake_vring *rx = &t->e->ring[0];
	assert_int_equal(vio_vq_num_free(&t->net.net_vqs[0]), 0);
	assert_int_equal(fake_vring_avail_pending(rx) + t->m->rx_count,
			 t->net.net_nrx / t->net.net_rx_chain);
}

/* True when [p, p+len) lies inside one of the DMA pages the driver cut its buffers from. */
static bool in_driver_pages(struct t *t, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < t->net.net_npages; i++) {
		const uint8_t *page = t->net.net_pages[i];
		if (p >= page && p + len <= page + 4096)
			return true;
	}
	return false;
}

static int recv_one(struct t *t, struct vio_net_frame *f)
{
	fake_env_run(t->e);
	return vio_net_recv(&t->net, f);
}

/*
 * A device in threat model B (docs/design.md 4) may write any byte of DMA memory at any time.
 * Write `val` over every DMA byte except the `nkeep` ranges in `keep`: the buffers the
 * device holds, and the virtqueues' own memory, whose rules test_virtqueue.c checks.
 */
struct keep {
	const void *p;
	size_t len;
};

static bool in_keep(const struct keep *keep, int nkeep, const uint8_t *b)
{
	for (int i = 0; i < nkeep; i++)
		if (b >= (const uint8_t *)keep[i].p && b < (const uint8_t *)keep[i].p + keep[i].len)
			return true;
	return false;
}

static void scribble_dma(struct fake_port *fp, const struct keep *keep, int nkeep, uint8_t val)
{
	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++) {
		uint8_t *p = fp->dma[i].p;
		for (size_t j = 0; p && j < fp->dma[i].bytes; j++)
			if (!in_keep(keep, nkeep, p + j))
				p[j] = val;
	}
}

/* Keep the rings and indirect tables of every queue, and the core's own bookkeeping. */
static int keep_queues(struct t *t, struct keep *keep)
{
	int n = 0;
	for (int i = 0; i < 3; i++) {
		struct vio_vq *vq = &t->net.net_vqs[i];
		if (!vq->size)
			continue;
		for (int a = 0; a < VIO_VQ_MAX_AREAS; a++)
			if (vq->vq_area[a])
				keep[n++] = (struct keep){vq->vq_area[a], vq->vq_area_bytes[a]};
		for (uint16_t p = 0; p < vq->vq_ntable_pages; p++)
			keep[n++] = (struct keep){vq->vq_table_pages[p].virt, 4096};
		keep[n++] = (struct keep){vq->vq_priv, vq->vq_priv_bytes};
	}
	return n;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_send_then_receive_round_trip(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MAC));
	uint8_t frame[60], back[2048];
	fill(frame, sizeof(frame), 7);

	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, 1);
	struct txcap *c = &t->m->tx[0];
	assert_int_equal(c->hdr_seg_len, 12);
	assert_int_equal(c->len, sizeof(frame));
	assert_memory_equal(c->data, frame, sizeof(frame));
	static const uint8_t zero[12];
	assert_memory_equal(c->hdr, zero, 12);

	/* The device echoes it back. */
	struct inj *f = inject(t->m, c->len, 0);
	memcpy(f->data, c->data, c->len);
	fake_env_run(t->e);
	assert_true(t->irqs >= 1);
	assert_int_equal(vio_net_poll(&t->net), 1);
	uint16_t flags = 0xffff;
	assert_int_equal(vio_net_recv_copy(&t->net, back, sizeof(back), &flags), sizeof(frame));
	assert_memory_equal(back, frame, sizeof(frame));
	assert_int_equal(flags, 0);
	assert_int_equal(vio_net_recv_copy(&t->net, back, sizeof(back), NULL), VIO_EAGAIN);

	assert_int_equal(t->net.stats.tx_frames, 1);
	assert_int_equal(t->net.stats.tx_bytes, 60);
	assert_int_equal(t->net.stats.rx_frames, 1);
	assert_int_equal(t->net.stats.rx_bytes, 60);
	assert_int_equal(t->net.net_rx_held, 0);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_recv_hands_out_frame_in_place_until_released(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MAC));
	struct vio_net_frame f;

	inject(t->m, 100, 3);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.nsegs, 1);
	assert_int_equal(f.len, 100);
	assert_true(is_pattern(f.seg[0].data, 100, 3));
	assert_true(in_driver_pages(t, f.seg[0].data, f.seg[0].len));
	assert_int_equal(t->net.net_rx_held, 1);
	assert_int_equal(vio_vq_num_free(&t->net.net_vqs[0]), 1);

	vio_net_rx_release(&t->net, f.seg[0].buf);
	assert_int_equal(t->net.net_rx_held, 0);
	vio_net_poll(&t->net); /* the owner's next pass tells the device */
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_released_buffers_reach_the_device_with_one_notification_per_batch(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MAC));
	struct vio_net_frame f[8];
	struct vio_vq *rx = &t->net.net_vqs[0];

	for (int i = 0; i < 8; i++)
		inject(t->m, 60, (uint8_t)i);
	fake_env_run(t->e);
	for (int i = 0; i < 8; i++)
		assert_int_equal(vio_net_recv(&t->net, &f[i]), 0);
	uint64_t kicks = rx->stats.kicks;
	for (int i = 0; i < 8; i++)
		vio_net_frame_release(&t->net, &f[i]);
	assert_int_equal(rx->stats.kicks, kicks); /* back on the ring, not yet published */

	/* An empty receive ends the batch: all eight reach the device at once. */
	assert_int_equal(vio_net_recv(&t->net, &f[0]), VIO_EAGAIN);
	assert_int_equal(rx->stats.kicks, kicks + 1);
	fake_env_run(t->e);
	assert_rx_ring_full(t);

	/* So does the owner's next vio_net_poll. */
	inject(t->m, 60, 9);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv(&t->net, &f[0]), 0);
	vio_net_frame_release(&t->net, &f[0]);
	assert_int_equal(rx->stats.kicks, kicks + 1);
	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_int_equal(rx->stats.kicks, kicks + 2);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_tx_ring_full_is_enospc_then_recovers_after_reclaim(void **state)
{
	(void)state;
	struct vio_net_opts o;
	struct t tmp = {0};
	default_opts(&tmp, &o);
	o.tx_queue_size = 8;
	struct virtio_net_config c = {0};
	struct t *real = t_new_cfg(0, &c, true, &o);
	uint8_t frame[64];
	fill(frame, sizeof(frame), 1);

	real->m->tx_hold = true;
	int sent = 0, err;
	while ((err = vio_net_send(&real->net, frame, sizeof(frame), NULL)) == 0)
		sent++;
	assert_int_equal(err, VIO_ENOSPC);
	assert_int_equal(sent, 4); /* header + frame: two descriptors each, 8 in the ring */
	assert_int_equal(real->net.stats.tx_full, 1);
	assert_int_equal(real->net.stats.tx_frames, 4);

	real->m->tx_hold = false;
	fake_env_run(real->e);
	assert_int_equal(real->m->tx_seen, 4);
	assert_int_equal(vio_net_poll(&real->net), 0);
	assert_int_equal(vio_net_send(&real->net, frame, sizeof(frame), NULL), 0);
	fake_env_run(real->e);
	assert_int_equal(real->m->tx_seen, 5);
	assert_int_equal(real->net.stats.tx_errors, 0);
	t_free(real);
}

static void test_send_sg_sends_without_copy_and_returns_cookie_once(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_F_RING_INDIRECT_DESC));
	uint8_t a[14], b[40], c[6];
	fill(a, sizeof(a), 0);
	fill(b, sizeof(b), 14);
	fill(c, sizeof(c), 54);
	struct vio_sg sg[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
	void *cookie = &sg;

	assert_int_equal(vio_net_send_sg(&t->net, sg, 3, cookie, NULL), 0);
	assert_int_equal(t->ncookies, 0);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, 1);
	assert_int_equal(t->m->tx[0].n_out, 4);
	assert_int_equal(t->m->tx[0].len, 60);
	assert_true(is_pattern(t->m->tx[0].data, 60, 0));

	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_int_equal(t->ncookies, 1);
	assert_ptr_equal(t->cookies[0], cookie);
	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_int_equal(t->ncookies, 1);
	vio_net_fini(&t->net);
	t->fini_done = true;
	assert_int_equal(t->ncookies, 1); /* not again at fini */
	t_free(t);
}

static void test_send_sg_needs_cookie_callback_and_sane_segments(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	uint8_t a[60] = {0};
	struct vio_sg sg = {a, sizeof(a)}, zero = {a, 0};

	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, NULL, NULL), VIO_EINVAL);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 0, a, NULL), VIO_EINVAL);
	assert_int_equal(vio_net_send_sg(&t->net, &zero, 1, a, NULL), VIO_EINVAL);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, VIO_NET_TX_MAX_SEGS + 1, a, NULL),
			 VIO_EINVAL);
	assert_int_equal(t->net.stats.tx_errors, 4);
	t->net.net_opts.on_tx_done = NULL;
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, a, NULL), VIO_EINVAL);
	t_free(t);
}

static void test_fini_returns_posted_sg_cookies_and_leaks_no_dma(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ));
	uint8_t a[60] = {0};
	struct vio_sg sg = {a, sizeof(a)};

	t->m->tx_hold = true;
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, (void *)1, NULL), 0);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, (void *)2, NULL), 0);
	assert_int_equal(vio_net_send(&t->net, a, sizeof(a), NULL), 0);
	vio_net_fini(&t->net);
	t->fini_done = true;
	t->e->model = NULL;
	assert_int_equal(t->ncookies, 2);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	t_free(t);
}

static void test_send_rejects_runt_and_oversized_frames(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	static uint8_t frame[2000];

	assert_int_equal(vio_net_send(&t->net, frame, 13, NULL), VIO_EINVAL);
	assert_int_equal(vio_net_send(&t->net, frame, 1500 + 18 + 1, NULL), VIO_EINVAL);
	assert_int_equal(vio_net_send(&t->net, frame, 1500 + 18, NULL), 0);
	assert_int_equal(t->net.stats.tx_errors, 2);
	t_free(t);
}

static void test_rx_ring_stays_full_after_many_frames(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MAC));
	struct vio_net_frame f;

	for (int i = 0; i < 1000; i++) {
		inject(t->m, 60 + i % 500, (uint8_t)i);
		if (i % 3 == 0)
			inject(t->m, 64, (uint8_t)(i + 1));
		fake_env_run(t->e);
		while (vio_net_recv(&t->net, &f) == 0) {
			assert_int_equal(f.nsegs, 1);
			vio_net_frame_release(&t->net, &f);
		}
	}
	fake_env_run(t->e);
	assert_int_equal(t->net.stats.rx_frames, 1334);
	assert_int_equal(t->net.stats.rx_errors, 0);
	assert_int_equal(t->net.stats.rx_drops, 0);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_mrg_rxbuf_frame_spanning_three_buffers_is_handed_out_in_order(void **state)
{
	(void)state;
	struct virtio_net_config c = {.mtu = 9000};
	struct t *t =
	    t_new_cfg(BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_NET_F_MTU), &c, true, NULL);
	struct vio_net_frame f;
	static uint8_t copy[9100];

	assert_int_equal(t->net.mtu, 9000);
	assert_int_equal(t->net.net_rx_buf_size, VIO_NET_RX_BUF_SIZE);
	inject(t->m, 5000, 9);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.len, 5000);
	assert_int_equal(f.nsegs, 3);
	assert_int_equal(f.seg[0].len, VIO_NET_RX_BUF_SIZE - 12);
	assert_int_equal(f.seg[1].len, VIO_NET_RX_BUF_SIZE);
	assert_int_equal(f.seg[2].len, 5000 - (2 * VIO_NET_RX_BUF_SIZE - 12));
	uint8_t seed = 9;
	for (int i = 0; i < 3; i++) {
		assert_true(is_pattern(f.seg[i].data, f.seg[i].len, seed));
		seed = (uint8_t)(seed + f.seg[i].len);
	}
	assert_int_equal(t->net.net_rx_held, 3);
	vio_net_frame_release(&t->net, &f);
	assert_int_equal(t->net.net_rx_held, 0);

	/* The same through the copying call, split by the device into small pieces. */
	inject(t->m, 3000, 4)->per_buf = 1024;
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv_copy(&t->net, copy, sizeof(copy), NULL), 3000);
	assert_true(is_pattern(copy, 3000, 4));
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_bad_frames_are_counted_dropped_and_the_next_good_frame_arrives(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MRG_RXBUF));
	struct vio_net_frame f;

	inject(t->m, 10, 0);				/* runt */
	inject(t->m, 1500 + 18 + 1, 0)->per_buf = 1024; /* oversized */
	inject(t->m, 100, 0)->len_extra = 5000;		/* used len beyond what was posted */
	inject(t->m, 100, 0)->nbufs_override = 0;	/* num_buffers 0 */
	inject(t->m, 100, 0)->nbufs_override = 1000;	/* more than the driver can take */
	inject(t->m, 64, 42);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(t->net.stats.rx_errors, 5);
	assert_int_equal(f.len, 64);
	assert_true(is_pattern(f.seg[0].data, 64, 42));
	vio_net_frame_release(&t->net, &f);

	/* num_buffers says 3 but the device published only one: dropped, not waited for. */
	inject(t->m, 100, 0)->nbufs_override = 3;
	assert_int_equal(recv_one(t, &f), VIO_EAGAIN);
	assert_int_equal(t->net.stats.rx_errors, 6);
	inject(t->m, 70, 1);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.len, 70);
	vio_net_frame_release(&t->net, &f);

	assert_int_equal(t->net.stats.rx_frames, 2);
	assert_false(vio_vq_is_broken(&t->net.net_vqs[0]));
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_caller_holding_too_many_buffers_gets_enospc_and_frames_are_dropped(void **state)
{
	(void)state;
	struct vio_net_opts o;
	struct t tmp = {0};
	default_opts(&tmp, &o);
	o.rx_hold_max = 2;
	struct t *t = t_new_cfg(0, NULL, true, &o);
	struct vio_net_frame f[3];

	for (int i = 0; i < 4; i++)
		inject(t->m, 60, (uint8_t)i);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv(&t->net, &f[0]), 0);
	assert_int_equal(vio_net_recv(&t->net, &f[1]), 0);
	assert_int_equal(vio_net_recv(&t->net, &f[2]), VIO_ENOSPC);
	assert_int_equal(t->net.stats.rx_drops, 1);
	assert_true(fake_port_logged(&t->e->fp, "dropping frames"));
	vio_net_frame_release(&t->net, &f[0]);
	assert_int_equal(vio_net_recv(&t->net, &f[2]), 0);
	assert_true(is_pattern(f[2].seg[0].data, 60, 3));
	vio_net_frame_release(&t->net, &f[1]);
	vio_net_frame_release(&t->net, &f[2]);
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_recv_copy_too_small_drops_the_frame(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	uint8_t small[32];

	inject(t->m, 60, 0);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv_copy(&t->net, small, sizeof(small), NULL), VIO_EINVAL);
	assert_int_equal(t->net.stats.rx_drops, 1);
	assert_int_equal(t->net.stats.rx_frames, 0);
	assert_int_equal(t->net.net_rx_held, 0);
	t_free(t);
}

static void test_legacy_device_without_mrg_rxbuf_uses_10_byte_header(void **state)
{
	(void)state;
	struct t *t = t_new_legacy(BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_CSUM));
	uint8_t frame[60], back[100];
	fill(frame, sizeof(frame), 5);
	struct vio_net_tx_opts csum = {
	    .flags = VIO_NET_TX_CSUM, .csum_start = 34, .csum_offset = 16};

	t->m->hdr_len = 10;
	assert_false(t->e->dev.modern);
	assert_int_equal(t->net.hdr_len, 10);
	assert_int_equal(t->net.mac[3], 0xab);
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), &csum), 0);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx[0].hdr_seg_len, 10);
	assert_int_equal(t->m->tx[0].len, 60);
	assert_int_equal(t->m->tx[0].hdr[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_memory_equal(t->m->tx[0].data, frame, 60);

	inject(t->m, 60, 5);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv_copy(&t->net, back, sizeof(back), NULL), 60);
	assert_memory_equal(back, frame, 60);
	t_free(t);
}

static void test_legacy_device_with_mrg_rxbuf_uses_12_byte_header(void **state)
{
	(void)state;
	struct t *t = t_new_legacy(BIT(VIRTIO_NET_F_MRG_RXBUF));
	uint8_t back[100];

	assert_int_equal(t->net.hdr_len, 12);
	inject(t->m, 80, 2);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv_copy(&t->net, back, sizeof(back), NULL), 80);
	assert_true(is_pattern(back, 80, 2));
	t_free(t);
}

static void test_modern_device_uses_12_byte_header_even_without_mrg_rxbuf(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	uint8_t frame[60] = {0};

	assert_true(t->e->dev.modern);
	assert_int_equal(t->net.hdr_len, 12);
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx[0].hdr_seg_len, 12);
	t_free(t);
}

static void test_mac_comes_from_config_when_offered(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MAC));
	static const uint8_t want[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
	char line[160];

	assert_memory_equal(t->net.mac, want, 6);
	vio_net_describe(&t->net, line, sizeof(line));
	assert_non_null(strstr(line, "mac=52:54:00:12:34:56 mtu=1500 link=up hdr=12"));
	t_free(t);
}

static void test_random_mac_is_locally_administered_unicast(void **state)
{
	(void)state;
	struct vio_net_opts o;
	struct t tmp = {0};
	uint8_t first[6];

	/* The config holds a MAC, but without VIRTIO_NET_F_MAC it must not be used. */
	default_opts(&tmp, &o);
	o.mac_seed = 99;
	struct t *t = t_new_cfg(0, NULL, true, &o);
	assert_int_equal(t->net.mac[0] & 1, 0);
	assert_int_equal(t->net.mac[0] & 2, 2);
	assert_memory_not_equal(t->net.mac, ((uint8_t[]){0x52, 0x54, 0, 0x12, 0x34, 0x56}), 6);
	memcpy(first, t->net.mac, 6);
	t_free(t);

	o.mac_seed = 0;
	o.get_entropy = fixed_entropy;
	t = t_new_cfg(0, NULL, true, &o);
	assert_int_equal(t->net.mac[0] & 3, 2);
	assert_memory_not_equal(t->net.mac, first, 6);
	t_free(t);

	o.mac_seed = 99; /* the same seed gives the same address */
	t = t_new_cfg(0, NULL, true, &o);
	assert_memory_equal(t->net.mac, first, 6);
	t_free(t);
}

static void test_mtu_comes_from_config_and_one_below_68_is_refused(void **state)
{
	(void)state;
	struct virtio_net_config c = {.mtu = 1400};
	struct t *t = t_new_cfg(BIT(VIRTIO_NET_F_MTU), &c, true, NULL);
	static uint8_t frame[1500];

	assert_int_equal(t->net.mtu, 1400);
	assert_int_equal(t->net.max_frame, 1418);
	assert_int_equal(vio_net_send(&t->net, frame, 1419, NULL), VIO_EINVAL);
	t_free(t);

	c.mtu = 60000;
	t = t_new_cfg(BIT(VIRTIO_NET_F_MTU), &c, true, NULL);
	assert_int_equal(t->net.mtu, VIO_NET_MAX_MTU);
	t_free(t);

	c.mtu = 67;
	struct fake_env *e =
	    fake_env_new(VIRTIO_ID_NET, BIT(VIRTIO_NET_F_MTU), &c, sizeof(c), 3, QSIZE);
	struct vio_net net;
	assert_int_equal(vio_net_init(&net, &e->dev, NULL), VIO_ERANGE);
	fake_env_free(e);
}

static void test_init_refuses_a_device_that_is_not_a_network_device(void **state)
{
	(void)state;
	struct fake_env *e = fake_env_new(VIRTIO_ID_BLOCK, 0, NULL, 0, 1, QSIZE);
	struct vio_net net;

	assert_int_equal(vio_net_init(&net, &e->dev, NULL), VIO_ENODEV);
	fake_env_free(e);
}

static void test_fini_after_failed_init_and_twice_is_harmless(void **state)
{
	(void)state;
	struct virtio_net_config c = {0};
	struct fake_env *e = fake_env_new(VIRTIO_ID_BLOCK, 0, NULL, 0, 1, QSIZE);
	struct vio_net net;

	memset(&net, 0xa5, sizeof(net)); /* whatever the caller's memory held */
	assert_int_equal(vio_net_init(&net, &e->dev, NULL), VIO_ENODEV);
	vio_net_fini(&net);
	fake_env_free(e);

	e = fake_env_new(VIRTIO_ID_NET, BIT(VIRTIO_NET_F_CTRL_VQ), &c, sizeof(c), 3, QSIZE);
	e->fp.dma_fail_after = e->fp.dma_allocs + 5;
	assert_int_equal(vio_net_init(&net, &e->dev, NULL), VIO_ENOMEM);
	int resets = e->vd.resets;
	vio_net_fini(&net);
	assert_int_equal(e->vd.resets, resets); /* the device is not ours to reset again */
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
	e->fp.dma_fail_after = -1;
	assert_int_equal(vio_net_init(&net, &e->dev, NULL), 0);
	vio_net_fini(&net);
	vio_net_fini(&net);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_env_free(e);
}

static void test_init_out_of_dma_memory_fails_cleanly(void **state)
{
	(void)state;
	struct virtio_net_config c = {0};
	struct fake_env *e =
	    fake_env_new(VIRTIO_ID_NET, BIT(VIRTIO_NET_F_CTRL_VQ), &c, sizeof(c), 3, QSIZE);
	struct vio_net net;

	e->fp.dma_fail_after = e->fp.dma_allocs + 5; /* the queues, then some buffers */
	assert_int_equal(vio_net_init(&net, &e->dev, NULL), VIO_ENOMEM);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_env_free(e);
}

static void test_link_change_via_config_interrupt_calls_the_callback(void **state)
{
	(void)state;
	struct virtio_net_config c = {.status = 0};
	struct t *t = t_new_cfg(BIT(VIRTIO_NET_F_STATUS), &c, true, NULL);
	uint16_t up = VIRTIO_NET_S_LINK_UP, down = 0;

	assert_false(t->net.link_up);
	assert_int_equal(t->link_calls, 0);
	fake_env_set_config(t->e, offsetof(struct virtio_net_config, status), &up, 2);
	fake_env_config_irq(t->e);
	assert_true(t->net.link_up);
	assert_int_equal(t->link_calls, 1);
	assert_true(t->last_up);

	fake_env_set_config(t->e, offsetof(struct virtio_net_config, status), &down, 2);
	fake_env_config_irq(t->e);
	assert_false(t->net.link_up);
	assert_int_equal(t->link_calls, 2);
	assert_false(t->last_up);
	t_free(t);
}

static void test_link_is_up_without_the_status_feature(void **state)
{
	(void)state;
	struct virtio_net_config c = {.status = 0};
	struct t *t = t_new_cfg(0, &c, true, NULL);

	assert_true(t->net.link_up);
	t_free(t);
}

static void test_polling_mode_sends_receives_and_notices_link_changes(void **state)
{
	(void)state;
	struct virtio_net_config c = {.status = VIRTIO_NET_S_LINK_UP};
	struct t *t = t_new_cfg(BIT(VIRTIO_NET_F_STATUS), &c, false, NULL);
	uint8_t frame[60], back[100];
	fill(frame, sizeof(frame), 0);

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	for (int i = 0; i < t->e->nrings; i++)
		t->e->ring[i].deliver_irqs = false;
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
	inject(t->m, 60, 0);
	fake_env_run(t->e);
	assert_int_equal(vio_net_poll(&t->net), 1);
	assert_int_equal(vio_net_recv_copy(&t->net, back, sizeof(back), NULL), 60);
	assert_int_equal(t->m->tx_seen, 1);
	assert_int_equal(t->irqs, 0);

	uint16_t down = 0;
	fake_env_set_config(t->e, offsetof(struct virtio_net_config, status), &down, 2);
	for (int i = 0; i < 200000 && t->net.link_up; i++)
		vio_net_poll(&t->net);
	assert_false(t->net.link_up);
	assert_int_equal(t->link_calls, 1);
	t_free(t);
}

static void test_interrupt_mode_calls_irq_cb_for_rx_and_tx(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	uint8_t frame[60] = {0};

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_MSIX);
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
	fake_env_run(t->e);
	assert_int_equal(t->irqs, 1);
	inject(t->m, 60, 0);
	fake_env_run(t->e);
	assert_int_equal(t->irqs, 2);
	t_free(t);
}

static void test_promisc_and_allmulti_reach_the_ctrl_queue(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX));

	assert_int_equal(vio_net_set_promisc(&t->net, true), 0);
	assert_int_equal(t->m->ctrl_count, 1);
	assert_int_equal(t->m->ctrl_class, VIRTIO_NET_CTRL_RX);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_RX_PROMISC);
	assert_int_equal(t->m->ctrl_len, 1);
	assert_int_equal(t->m->ctrl_data[0], 1);
	assert_int_equal(t->m->ctrl_n_out, 2);

	assert_int_equal(vio_net_set_allmulti(&t->net, false), 0);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_RX_ALLMULTI);
	assert_int_equal(t->m->ctrl_data[0], 0);
	t_free(t);
}

static void test_mac_table_command_carries_both_tables(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX));
	const uint8_t uc[1][6] = {{0x02, 1, 2, 3, 4, 5}};
	const uint8_t mc[2][6] = {{0x01, 0, 0x5e, 0, 0, 1}, {0x33, 0x33, 0, 0, 0, 1}};
	uint8_t want[4 + 6 + 4 + 12] = {1, 0, 0, 0, 0x02, 1, 2, 3, 4, 5, 2, 0, 0, 0};
	memcpy(want + 14, mc, 12);

	assert_int_equal(vio_net_set_mac_filter(&t->net, uc, 1, mc, 2), 0);
	assert_int_equal(t->m->ctrl_class, VIRTIO_NET_CTRL_MAC);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_MAC_TABLE_SET);
	assert_int_equal(t->m->ctrl_n_out, 3);
	assert_int_equal(t->m->ctrl_len, sizeof(want));
	assert_memory_equal(t->m->ctrl_data, want, sizeof(want));

	assert_int_equal(vio_net_set_mac_filter(&t->net, NULL, 0, NULL, 0), 0);
	assert_int_equal(t->m->ctrl_len, 8);
	assert_int_equal(vio_net_set_mac_filter(&t->net, uc, VIO_NET_MAC_TABLE_MAX, mc, 1),
			 VIO_EINVAL);
	t_free(t);
}

static void test_set_mac_command_changes_the_address(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) |
			    BIT(VIRTIO_NET_F_MAC));
	const uint8_t mac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};

	assert_int_equal(vio_net_set_mac(&t->net, mac), 0);
	assert_int_equal(t->m->ctrl_class, VIRTIO_NET_CTRL_MAC);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_MAC_ADDR_SET);
	assert_memory_equal(t->m->ctrl_data, mac, 6);
	assert_memory_equal(t->net.mac, mac, 6);
	t_free(t);
}

static void test_ctrl_error_answer_is_eio(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX) |
			    BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) | BIT(VIRTIO_NET_F_MAC));
	const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};

	t->m->ctrl_ack = VIRTIO_NET_ERR;
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_EIO);
	assert_int_equal(vio_net_set_mac(&t->net, mac), VIO_EIO);
	assert_int_equal(t->net.mac[0], 0x52); /* unchanged */
	t->m->ctrl_ack = VIRTIO_NET_OK;
	assert_int_equal(vio_net_set_promisc(&t->net, true), 0);
	t_free(t);
}

static void test_ctrl_commands_not_negotiated_are_enotsup(void **state)
{
	(void)state;
	const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_RX)); /* no ctrl queue: CTRL_RX is moot */

	assert_int_equal(t->net.net_nvqs, 2);
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_ENOTSUP);
	assert_int_equal(vio_net_set_allmulti(&t->net, true), VIO_ENOTSUP);
	assert_int_equal(vio_net_set_mac_filter(&t->net, NULL, 0, NULL, 0), VIO_ENOTSUP);
	assert_int_equal(vio_net_set_mac(&t->net, mac), VIO_ENOTSUP);
	t_free(t);

	t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ)); /* a ctrl queue, but neither command class */
	assert_int_equal(t->net.net_nvqs, 3);
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_ENOTSUP);
	assert_int_equal(vio_net_set_mac(&t->net, mac), VIO_ENOTSUP);
	assert_int_equal(t->m->ctrl_count, 0);
	t_free(t);

	struct vio_net_opts o;
	struct t tmp = {0};
	default_opts(&tmp, &o);
	o.disable_features = BIT(VIRTIO_NET_F_CTRL_RX);
	t = t_new_cfg(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX), NULL, true, &o);
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_ENOTSUP);
	t_free(t);
}

static void test_ctrl_device_never_answering_times_out(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX));

	t->m->ctrl_silent = true;
	uint64_t before = t->e->fp.now;
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_ETIMEDOUT);
	assert_true(t->e->fp.now - before >= VIO_NET_CTRL_TIMEOUT_NS);
	/* Still posted: the page is not reused until the device gives it back. */
	assert_int_equal(vio_net_set_allmulti(&t->net, true), VIO_EAGAIN);
	assert_int_equal(t->m->ctrl_count, 1);

	t->m->ctrl_silent = false;
	model_ctrl_answer(t->e, t->m);
	assert_int_equal(vio_net_set_allmulti(&t->net, true), 0);
	assert_int_equal(t->m->ctrl_count, 2);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_RX_ALLMULTI);
	t_free(t);
}

static void test_timeout_option_shortens_a_ctrl_command(void **state)
{
	(void)state;
	struct vio_net_opts o;
	struct t tmp = {0};

	default_opts(&tmp, &o);
	o.timeout_ns = VIO_NET_CTRL_TIMEOUT_NS / 10;
	struct t *t =
	    t_new_cfg(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX), NULL, true, &o);
	t->m->ctrl_silent = true;
	uint64_t before = t->e->fp.now;
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_ETIMEDOUT);
	assert_true(t->e->fp.now - before >= o.timeout_ns);
	assert_true(t->e->fp.now - before < VIO_NET_CTRL_TIMEOUT_NS);
	t->m->ctrl_silent = false;
	model_ctrl_answer(t->e, t->m);
	t_free(t);
}

static void test_guest_csum_flags_are_passed_up(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_GUEST_CSUM));
	struct vio_net_frame f;
	struct inj *i;

	inject(t->m, 60, 0)->hflags = VIRTIO_NET_HDR_F_DATA_VALID;
	i = inject(t->m, 80, 0);
	i->hflags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	i->csum_start = 34;
	i->csum_offset = 16;

	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.flags, VIO_NET_RX_CSUM_VALID);
	vio_net_frame_release(&t->net, &f);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.flags, VIO_NET_RX_CSUM_PARTIAL);
	assert_int_equal(f.csum_start, 34);
	assert_int_equal(f.csum_offset, 16);
	vio_net_frame_release(&t->net, &f);
	assert_int_equal(t->net.stats.rx_errors, 0);
	t_free(t);
}

static void test_csum_flags_are_not_reported_without_guest_csum(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	struct vio_net_frame f;

	inject(t->m, 60, 0)->hflags = VIRTIO_NET_HDR_F_DATA_VALID;
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.flags, 0);
	vio_net_frame_release(&t->net, &f);
	t_free(t);
}

static void test_tx_checksum_offload_fills_the_header(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CSUM));
	uint8_t frame[80] = {0};
	struct vio_net_tx_opts o = {.flags = VIO_NET_TX_CSUM, .csum_start = 34, .csum_offset = 6};
	struct vio_sg sg = {frame, sizeof(frame)};

	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), &o), 0);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, frame, &o), 0);
	fake_env_run(t->e);
	for (int i = 0; i < 2; i++) {
		struct virtio_net_hdr h;
		memcpy(&h, t->m->tx[i].hdr, sizeof(h));
		assert_int_equal(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
		assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
		assert_int_equal(h.csum_start, 34);
		assert_int_equal(h.csum_offset, 6);
		assert_int_equal(h.num_buffers, 0);
	}
	o.csum_start = 79; /* the checksum field would end past the frame */
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), &o), VIO_EINVAL);
	t_free(t);
}

static void test_tx_checksum_offload_without_the_feature_is_enotsup(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	uint8_t frame[80] = {0};
	struct vio_net_tx_opts o = {.flags = VIO_NET_TX_CSUM, .csum_start = 34, .csum_offset = 6};

	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), &o), VIO_ENOTSUP);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, 0);
	t_free(t);
}

static void test_broken_rx_queue_is_reported_as_eio(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	struct vio_net_frame f;

	fake_vring_push(&t->e->ring[0], 9999, 10); /* id out of range */
	fake_vring_publish(&t->e->ring[0]);
	assert_int_equal(vio_net_recv(&t->net, &f), VIO_EIO);
	assert_int_equal(vio_net_poll(&t->net), VIO_EIO);
	t_free(t);
}

static void test_device_rewriting_dma_cannot_forge_a_tx_completion(void **state)
{
	(void)state;
	struct t *t =
	    t_new(BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX));
	static uint8_t a[60], b[60], frame[60];
	static struct fake_req req[3];
	struct vio_sg sa = {a, sizeof(a)}, sb = {b, sizeof(b)};
	static struct keep keep[RX_FIFO * RX_SEGS + 3 * (VIO_VQ_MAX_AREAS + 64 + 1)];
	struct vio_net_frame f;

	t->m->tx_hold = true;
	assert_int_equal(vio_net_send_sg(&t->net, &sa, 1, a, NULL), 0);
	assert_int_equal(vio_net_send_sg(&t->net, &sb, 1, b, NULL), 0);
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
	fake_env_run(t->e); /* the device takes every RX buffer */

	/* The device holds the three TX requests and every RX buffer: it keeps those... */
	int n = keep_queues(t, keep);
	for (int i = 0; i < 3; i++) {
		assert_true(fake_vring_pop(&t->e->ring[1], &req[i]));
		for (unsigned s = 0; s < req[i].n_out; s++)
			keep[n++] =
			    (struct keep){(void *)(uintptr_t)req[i].seg[s].addr, req[i].seg[s].len};
	}
	for (unsigned i = 0; i < t->m->rx_count; i++) {
		struct rxslot *r = &t->m->rx[(t->m->rx_head + i) % RX_FIFO];
		for (unsigned k = 0; k < r->nseg; k++)
			keep[n++] = (struct keep){r->mem[k], r->len[k]};
	}
	/* ...and writes garbage over every other byte it can reach, then completes them. */
	scribble_dma(&t->e->fp, keep, n, 0xa5);
	for (int i = 0; i < 3; i++)
		fake_vring_push(&t->e->ring[1], req[i].head, 0);
	fake_vring_publish(&t->e->ring[1]);

	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_int_equal(t->ncookies, 2);
	assert_ptr_equal(t->cookies[0], a);
	assert_ptr_equal(t->cookies[1], b);

	/* The driver carries on: it sends, receives and runs a control command. */
	t->m->tx_hold = false;
	fill(frame, sizeof(frame), 3);
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, 1);
	assert_memory_equal(t->m->tx[0].data, frame, sizeof(frame));
	inject(t->m, 70, 1);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.len, 70);
	assert_true(is_pattern(f.seg[0].data, 70, 1));
	vio_net_frame_release(&t->net, &f);
	assert_int_equal(vio_net_set_promisc(&t->net, true), 0);
	assert_int_equal(t->ncookies, 2);
	t_free(t);
}

/*
 * The DMA memory the driver took for its own buffers: every live DMA allocation but the
 * queues' rings, indirect tables and bookkeeping, which are the core's. *largest gets the
 * largest single allocation.
 */
static size_t driver_dma(struct t *t, size_t *largest)
{
	struct keep core[9];
	int n = keep_queues(t, core);
	size_t total = 0;

	*largest = 0;
	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++) {
		const struct fake_dma_region *r = &t->e->fp.dma[i];
		if (!r->p || in_keep(core, n, r->p))
			continue;
		total += r->bytes;
		if (r->bytes > *largest)
			*largest = r->bytes;
	}
	return total;
}

/* Send and receive one frame of the largest size the device takes, byte-exact. */
static void round_trip_largest_frame(struct t *t)
{
	static uint8_t frame[MAX_FRAME_BYTES], back[MAX_FRAME_BYTES];
	uint32_t len = t->net.max_frame;
	unsigned seen = t->m->tx_seen;

	fill(frame, len, 77);
	assert_int_equal(vio_net_send(&t->net, frame, len, NULL), 0);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, seen + 1);
	assert_int_equal(t->m->tx[seen % 16].len, len);
	assert_memory_equal(t->m->tx[seen % 16].data, frame, len);
	inject(t->m, len, 78);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv_copy(&t->net, back, sizeof(back), NULL), (int)len);
	assert_true(is_pattern(back, len, 78));
	assert_int_equal(t->net.stats.rx_errors, 0);
}

static void test_no_driver_buffer_needs_more_than_one_page_of_contiguous_dma(void **state)
{
	(void)state;
	static const struct {
		uint64_t features;
		uint16_t mtu;
	} cases[] = {
	    {0, 1500},
	    {BIT(VIRTIO_NET_F_MRG_RXBUF), 1500},
	    {BIT(VIRTIO_NET_F_MTU), 9000}, /* no MRG_RXBUF: a buffer must hold 9030 bytes */
	    {BIT(VIRTIO_NET_F_MTU) | BIT(VIRTIO_NET_F_MRG_RXBUF), 9000},
	    {BIT(VIRTIO_NET_F_MTU) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX), 4000},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct virtio_net_config c = {.mtu = cases[i].mtu};
		struct t *t = t_new_cfg(cases[i].features, &c, true, NULL);
		size_t largest;

		assert_int_equal(t->net.mtu, cases[i].mtu);
		assert_true(driver_dma(t, &largest) > 0);
		assert_true(largest <= 4096);
		round_trip_largest_frame(t);
		if (cases[i].features & BIT(VIRTIO_NET_F_CTRL_RX))
			assert_int_equal(vio_net_set_promisc(&t->net, true), 0);
		t_free(t);
	}
}

static void test_buffer_counts_are_options_with_a_small_default(void **state)
{
	(void)state;
	struct virtio_net_config c = {0};
	uint64_t features = BIT(VIRTIO_NET_F_MRG_RXBUF);
	struct fake_env *e = fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 3, 256);
	struct t *t = t_alloc(e, features);
	size_t largest;

	/* The rings have 256 entries; the buffers are fewer: 64 RX, 32 TX. */
	t_start(t, NULL);
	assert_int_equal(t->net.net_vqs[0].size, 256);
	assert_int_equal(t->net.net_nrx, VIO_NET_RX_BUFFERS);
	assert_int_equal(t->net.net_ntx, VIO_NET_TX_BUFFERS);
	assert_true(driver_dma(t, &largest) <= 200 * 1024);
	round_trip_largest_frame(t);
	t_free(t);

	/* Fewer on request: 8 RX buffers and 4 TX slots take 6 pages. */
	struct vio_net_opts o;
	default_opts(
	    t = t_alloc(fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 3, 256), features),
	    &o);
	o.rx_buffers = 8;
	o.tx_buffers = 4;
	t_start(t, &o);
	assert_int_equal(t->net.net_nrx, 8);
	assert_int_equal(driver_dma(t, &largest), 6 * 4096);
	t->m->tx_hold = true;
	uint8_t frame[60] = {0};
	for (int i = 0; i < 4; i++)
		assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), VIO_ENOSPC);
	t->m->tx_hold = false;
	for (int i = 0; i < 10; i++)
		inject(t->m, 60, (uint8_t)i);
	fake_env_run(t->e);
	assert_int_equal(t->m->inj_count, 2); /* only 8 buffers were posted */
	struct vio_net_frame f;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(recv_one(t, &f), 0);
		assert_true(is_pattern(f.seg[0].data, 60, (uint8_t)i));
		vio_net_frame_release(&t->net, &f);
		vio_net_poll(&t->net);
	}
	assert_int_equal(vio_net_poll(&t->net), 0);
	t_free(t);
}

static void test_legacy_device_with_large_queues_posts_a_bounded_number_of_buffers(void **state)
{
	(void)state;
	/* The core refuses legacy queues above VIO_LEGACY_MAX_QUEUE_SIZE (32768 would cost
	 * the ring alone 840 KiB); at the cap the buffers posted are still the option's. */
	struct t *t = t_new_legacy_q(BIT(VIRTIO_NET_F_MAC), VIO_LEGACY_MAX_QUEUE_SIZE);
	size_t largest;

	assert_int_equal(t->net.net_vqs[0].size, VIO_LEGACY_MAX_QUEUE_SIZE); /* the device's size */
	assert_int_equal(t->net.net_nrx, VIO_NET_RX_BUFFERS);
	assert_true(driver_dma(t, &largest) <= 200 * 1024);
	t->m->hdr_len = 10;
	round_trip_largest_frame(t);
	t_free(t);
}

/*
 * A device that completes every buffer in the instant the driver posts it: it reads the
 * descriptor the driver is filling (port->virt_to_phys is called then) and pushes a used
 * entry for it, with length `len`, once per request. The driver sees each completion on its
 * next look at the used ring. Armed on one queue; gives up after `limit` completions so that
 * a driver that never stops still returns and the test can fail.
 */
static struct hostile {
	struct t *t;
	int q;
	uint32_t len;
	uint16_t fired_at; /* vq_avail_idx of the last request completed */
	unsigned completions, limit;
	uint64_t (*v2p)(void *ctx, const void *virt);
} hostile;

static uint64_t hostile_v2p(void *ctx, const void *virt)
{
	struct vio_vq *vq = &hostile.t->net.net_vqs[hostile.q];

	if (vq->vq_avail_idx != hostile.fired_at && hostile.completions < hostile.limit) {
		hostile.fired_at = vq->vq_avail_idx;
		hostile.completions++;
		fake_vring_complete(&hostile.t->e->ring[hostile.q], vq->vq_free_head, hostile.len);
	}
	return hostile.v2p(ctx, virt);
}

static void hostile_arm(struct t *t, int q, uint32_t len)
{
	hostile = (struct hostile){.t = t, .q = q, .len = len, .limit = 100000};
	hostile.fired_at = (uint16_t)(t->net.net_vqs[q].vq_avail_idx - 1);
	hostile.v2p = t->e->fp.port.virt_to_phys;
	t->e->fp.port.virt_to_phys = hostile_v2p;
	for (int i = 0; i < t->e->nrings; i++)
		t->e->ring[i].deliver_irqs = false;
}

static void hostile_disarm(struct t *t)
{
	t->e->fp.port.virt_to_phys = hostile.v2p;
}

static void test_device_completing_every_reposted_buffer_at_once_cannot_livelock_recv(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	struct vio_net_frame f;
	unsigned nbufs = t->net.net_nrx;

	/* One runt starts it: dropped and re-posted, completed again at once as a runt... */
	inject(t->m, 10, 0);
	fake_env_run(t->e);
	hostile_arm(t, 0, 0);
	assert_int_equal(vio_net_recv(&t->net, &f), VIO_EAGAIN);
	hostile_disarm(t);
	assert_in_range(hostile.completions, 1, nbufs);
	assert_int_equal(t->net.stats.rx_errors, hostile.completions);
	assert_int_equal(t->net.stats.rx_frames, 0);
	/* ...the rest waits for the next call, which the owner's poll says is due. */
	assert_int_equal(vio_net_poll(&t->net), 1);
	assert_int_equal(vio_net_recv(&t->net, &f), VIO_EAGAIN);
	assert_int_equal(t->net.stats.rx_errors, hostile.completions + 1);
	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_false(vio_vq_is_broken(&t->net.net_vqs[0]));
	t_free(t);
}

static void on_tx_done_send_again(struct vio_net *net, void *cookie, void *arg)
{
	struct t *t = arg;
	static uint8_t frame[60];
	struct vio_sg sg = {frame, sizeof(frame)};

	t->ncookies++;
	vio_net_send_sg(net, &sg, 1, cookie, NULL);
}

static void test_device_completing_every_send_at_once_cannot_livelock_tx_reap(void **state)
{
	(void)state;
	/*
	 * The device of this test completes a buffer while vio_vq_add is still writing it. A
	 * packed ring's used descriptor goes in the very slot being written, so no packed
	 * device can do that: the test is the split ring's (its packed run skips it).
	 */
	if (fake_env_ring_features())
		skip();
	struct vio_net_opts o;
	struct t tmp = {0};
	static uint8_t frame[60];
	struct vio_sg sg = {frame, sizeof(frame)};

	/* The owner sends again from on_tx_done; the device completes each send at once. */
	default_opts(&tmp, &o);
	o.on_tx_done = on_tx_done_send_again;
	struct t *t = t_new_cfg(0, NULL, true, &o);
	o.arg = t;
	t->net.net_opts.arg = t;
	t->m->tx_hold = true;
	hostile_arm(t, 1, 0);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, frame, NULL), 0);
	assert_int_equal(hostile.completions, 1);
	assert_int_equal(vio_net_poll(&t->net), 1); /* more is waiting: call again */
	hostile_disarm(t);
	assert_in_range(t->ncookies, 1, t->net.net_ntx);
	assert_int_equal(t->net.stats.tx_frames, t->ncookies + 1);
	t->m->tx_hold = false;
	t_free(t);
}

/* The device completes the next posted RX buffer with `len`, whatever it wrote there. */
static void model_complete_raw(struct t *t, uint32_t len)
{
	struct model *m = t->m;

	fake_env_run(t->e);
	assert_true(m->rx_count > 0);
	fake_vring_complete(&t->e->ring[0], m->rx[m->rx_head].head, len);
	m->rx_head = (m->rx_head + 1) % RX_FIFO;
	m->rx_count--;
}

static void test_header_with_bad_fields_is_dropped_counted_and_its_buffers_reposted(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_MRG_RXBUF));
	struct vio_net_frame f;
	struct inj *i;
	unsigned bad = 0;

	inject(t->m, 60, 0)->hflags = 0xfc;			 /* flags nobody negotiated */
	inject(t->m, 60, 0)->hflags = VIRTIO_NET_HDR_F_RSC_INFO; /* without VIRTIO_NET_F_RSC_EXT */
	i = inject(t->m, 60, 0); /* NEEDS_CSUM pointing outside the frame */
	i->hflags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	i->csum_start = 0xfff0;
	i->csum_offset = 0x20;
	i = inject(t->m, 60, 0); /* the checksum field's last byte one past the end */
	i->hflags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	i->csum_start = 50;
	i->csum_offset = 9;
	inject(t->m, 60, 0)->gso_type = VIRTIO_NET_HDR_GSO_TCPV4; /* GSO nobody negotiated */
	inject(t->m, 60, 0)->gso_type = VIRTIO_NET_HDR_GSO_ECN;
	inject(t->m, 60, 0)->hdr_len = 61; /* headers longer than the frame */
	bad += 7;
	/* num_buffers above the RX buffers there are; a frame in 11 parts, above
	 * VIO_NET_RX_MAX_SEGS: all its buffers taken and dropped, none parsed as a frame. */
	inject(t->m, 100, 0)->nbufs_override = t->net.net_nrx + 1;
	i = inject(t->m, 1000, 0);
	i->per_buf = 100;
	bad += 2;
	inject(t->m, 64, 42);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv(&t->net, &f), 0);
	assert_int_equal(t->net.stats.rx_errors, bad);
	assert_int_equal(f.len, 64);
	assert_int_equal(f.nsegs, 1);
	assert_true(is_pattern(f.seg[0].data, 64, 42));
	vio_net_frame_release(&t->net, &f);

	/* Used lengths: less than a header; a buffer of a merged frame with nothing in it. */
	model_complete_raw(t, 11);
	bad++;
	inject(t->m, 64, 7)->nbufs_override = 2;
	fake_env_run(t->e);
	model_complete_raw(t, 0);
	bad++;
	inject(t->m, 64, 43);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(t->net.stats.rx_errors, bad);
	assert_true(is_pattern(f.seg[0].data, 64, 43));
	vio_net_frame_release(&t->net, &f);

	/* A checksum field inside the frame, to its last byte, and hdr_len = len are fine. */
	i = inject(t->m, 60, 1);
	i->hflags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	i->csum_start = 50;
	i->csum_offset = 8;
	i->hdr_len = 60;
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.flags, VIO_NET_RX_CSUM_PARTIAL);
	vio_net_frame_release(&t->net, &f);

	assert_int_equal(t->net.stats.rx_errors, bad);
	assert_int_equal(t->net.stats.rx_frames, 3);
	assert_false(vio_vq_is_broken(&t->net.net_vqs[0]));
	assert_true(fake_port_logged(&t->e->fp, "bad frame"));
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_needs_csum_without_guest_csum_is_a_bad_frame(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	struct vio_net_frame f;
	struct inj *i = inject(t->m, 60, 0);

	/* Never negotiated, so the sum was never finished: corrupt data for us. */
	i->hflags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	i->csum_start = 34;
	i->csum_offset = 16;
	inject(t->m, 60, 5);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(t->net.stats.rx_errors, 1);
	assert_true(is_pattern(f.seg[0].data, 60, 5));
	vio_net_frame_release(&t->net, &f);
	t_free(t);
}

static void test_fini_after_an_unconfirmed_reset_keeps_dma_and_returns_no_cookie(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX));
	static uint8_t a[60];
	struct vio_sg sg = {a, sizeof(a)};
	void *pages[128], *rings[3];
	uint32_t npages = t->net.net_npages;

	t->m->tx_hold = true;
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, a, NULL), 0);
	assert_int_equal(vio_net_send(&t->net, a, sizeof(a), NULL), 0);
	assert_true(npages <= 128);
	memcpy(pages, t->net.net_pages, npages * sizeof(void *));
	for (int i = 0; i < 3; i++)
		rings[i] = t->net.net_vqs[i].vq_area[0];

	/* The device never confirms the reset: it may still read `a` and write the buffers. */
	t->e->vd.reset_stuck = true;
	assert_int_equal(vio_net_fini(&t->net), VIO_EDEAD);
	t->e->model = NULL;
	assert_int_equal(t->ncookies, 0); /* `a` is not the caller's to reuse */
	for (uint32_t i = 0; i < npages; i++)
		assert_true(fake_port_is_dma(&t->e->fp, pages[i], 4096));
	for (int i = 0; i < 3; i++)
		assert_true(fake_port_is_dma(&t->e->fp, rings[i], 1));
	assert_true(t->e->dev.status & VIRTIO_CONFIG_S_FAILED);
	assert_true(fake_port_logged(&t->e->fp, "reset not confirmed"));
	assert_int_equal(t->e->fp.priv_live_allocs, 0); /* bookkeeping the device never saw */
	assert_int_equal(vio_net_fini(&t->net), 0);	/* and once more is harmless */
	assert_int_equal(t->ncookies, 0);

	t->e->vd.reset_stuck = false;
	vio_dev_teardown(&t->e->dev);
	assert_true(fake_env_reclaim_leaks(t->e) > 0);
	fake_env_free(t->e);
	free(t->m);
	free(t);
}

static void test_ctrl_timeout_on_a_device_that_needs_reset_says_so(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX));

	/* No config interrupt comes (a one-entry MSI-X table, or polling): only the status. */
	t->m->ctrl_silent = true;
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_true(fake_port_logged(&t->e->fp, "needs reset"));
	assert_true(vio_vq_is_broken(&t->net.net_vqs[2]));
	t->m->ctrl_silent = false;
	t_free(t);
}

static void test_broken_queue_on_a_device_that_needs_reset_says_so(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	struct vio_net_frame f;
	uint8_t frame[60] = {0};

	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	fake_vring_push(&t->e->ring[0], 9999, 10); /* and it breaks a rule on the way */
	fake_vring_publish(&t->e->ring[0]);
	assert_int_equal(vio_net_recv(&t->net, &f), VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_int_equal(vio_net_poll(&t->net), VIO_ENEEDRESET);
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), VIO_ENEEDRESET);
	t_free(t);
}

/* With interrupts too: a one-entry MSI-X table leaves no vector for configuration changes. */
static void test_polling_with_interrupts_on_notices_a_device_that_needs_reset(void **state)
{
	(void)state;
	struct t *t = t_new(0);
	int err = 0;

	assert_int_not_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	for (int i = 0; i < 200000 && err >= 0; i++)
		err = vio_net_poll(&t->net);
	assert_int_equal(err, VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	t_free(t);
}

static void test_polling_notices_a_device_that_needs_reset(void **state)
{
	(void)state;
	struct t *t = t_new_cfg(0, NULL, false, NULL);
	int err = 0;

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	for (int i = 0; i < 200000 && err == 0; i++)
		err = vio_net_poll(&t->net);
	assert_int_equal(err, VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	t_free(t);
}

static void test_multicast_or_zero_mac_from_config_is_refused_for_a_random_one(void **state)
{
	(void)state;
	static const uint8_t bad[][6] = {
	    {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, /* multicast */
	    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* broadcast */
	    {0, 0, 0, 0, 0, 0},
	};
	struct vio_net_opts o;
	struct t tmp = {0};
	uint8_t random_mac[6];

	/* What the driver makes up from this entropy for a device without a MAC. */
	default_opts(&tmp, &o);
	o.get_entropy = fixed_entropy;
	struct t *t = t_new_cfg(0, NULL, true, &o);
	memcpy(random_mac, t->net.mac, 6);
	t_free(t);

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct virtio_net_config c = {0};
		memcpy(c.mac, bad[i], 6);
		t = t_new_cfg(BIT(VIRTIO_NET_F_MAC), &c, true, &o);
		assert_memory_equal(t->net.mac, random_mac, 6);
		assert_int_equal(t->net.mac[0] & 3, 2); /* unicast, locally administered */
		assert_true(fake_port_logged(&t->e->fp, "random"));
		t_free(t);
	}
}

static void test_set_mac_refuses_a_multicast_or_zero_address(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) |
			    BIT(VIRTIO_NET_F_MAC));
	static const uint8_t multicast[6] = {0x01, 0, 0x5e, 0, 0, 1}, zero[6] = {0};

	assert_int_equal(vio_net_set_mac(&t->net, multicast), VIO_EINVAL);
	assert_int_equal(vio_net_set_mac(&t->net, zero), VIO_EINVAL);
	assert_int_equal(t->m->ctrl_count, 0);
	assert_int_equal(t->net.mac[0], 0x52);
	t_free(t);
}

static void test_ctrl_command_spins_at_most_a_millisecond_by_default(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX));

	/* The caller may have interrupts masked: the wait is short, and documented. */
	assert_true(VIO_NET_CTRL_TIMEOUT_NS <= 1000000);
	t->m->ctrl_silent = true;
	uint64_t before = t->e->fp.now;
	assert_int_equal(vio_net_set_promisc(&t->net, true), VIO_ETIMEDOUT);
	assert_in_range(t->e->fp.now - before, VIO_NET_CTRL_TIMEOUT_NS,
			VIO_NET_CTRL_TIMEOUT_NS + 1000);
	t->m->ctrl_silent = false;
	model_ctrl_answer(t->e, t->m);
	t_free(t);
}

static void test_a_late_ctrl_answer_is_collected_and_a_late_set_mac_takes_effect(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) |
			    BIT(VIRTIO_NET_F_MAC));
	const uint8_t mac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};

	t->m->ctrl_silent = true;
	assert_int_equal(vio_net_set_mac(&t->net, mac), VIO_ETIMEDOUT);
	assert_int_equal(t->net.mac[0], 0x52);
	/* The device carries it out after all, and says so; the owner's next pass hears it. */
	t->m->ctrl_silent = false;
	model_ctrl_answer(t->e, t->m);
	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_memory_equal(t->net.mac, mac, 6);
	assert_false(t->net.net_ctrl_pending);
	t_free(t);
}

static uint8_t frame_b[80];

static void on_tx_done_send_b(struct vio_net *net, void *cookie, void *arg)
{
	struct t *t = arg;
	struct vio_sg sg = {frame_b, sizeof(frame_b)};

	t->cookies[t->ncookies++] = cookie;
	if (t->ncookies == 1)
		assert_int_equal(vio_net_send_sg(net, &sg, 1, frame_b, NULL), 0);
}

static void test_send_sg_from_on_tx_done_inside_a_send_keeps_both_frames_intact(void **state)
{
	(void)state;
	struct vio_net_opts o;
	struct t tmp = {0};
	static uint8_t a[60], c[70];
	struct vio_sg sa = {a, sizeof(a)}, sc = {c, sizeof(c)};

	default_opts(&tmp, &o);
	o.on_tx_done = on_tx_done_send_b;
	struct t *t = t_new_cfg(0, NULL, true, &o);
	t->net.net_opts.arg = t;
	fill(a, sizeof(a), 1);
	fill(frame_b, sizeof(frame_b), 2);
	fill(c, sizeof(c), 3);

	/* `a` goes out and comes back; sending `c` reaps it, and on_tx_done sends `b` then. */
	assert_int_equal(vio_net_send_sg(&t->net, &sa, 1, a, NULL), 0);
	fake_env_run(t->e);
	assert_int_equal(vio_net_send_sg(&t->net, &sc, 1, c, NULL), 0);
	assert_int_equal(t->ncookies, 1);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, 3);
	assert_int_equal(t->m->tx[1].len, sizeof(frame_b));
	assert_true(is_pattern(t->m->tx[1].data, sizeof(frame_b), 2));
	assert_int_equal(t->m->tx[2].len, sizeof(c));
	assert_true(is_pattern(t->m->tx[2].data, sizeof(c), 3));
	t_free(t);
}

static void test_a_command_refused_while_one_is_pending_leaves_its_data_alone(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_CTRL_RX) |
			    BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) | BIT(VIRTIO_NET_F_MAC));
	const uint8_t mac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
	const uint8_t uc[1][6] = {{0x02, 1, 2, 3, 4, 5}};

	t->m->ctrl_silent = true;
	assert_int_equal(vio_net_set_mac(&t->net, mac), VIO_ETIMEDOUT);
	/* The device reads the pending command's address only when it gets to it. */
	assert_int_equal(vio_net_set_promisc(&t->net, false), VIO_EAGAIN);
	assert_int_equal(vio_net_set_mac_filter(&t->net, uc, 1, NULL, 0), VIO_EAGAIN);
	assert_int_equal(vio_net_set_mac(&t->net, uc[0]), VIO_EAGAIN);
	const struct fake_seg *data = &t->m->ctrl_req.seg[1];
	assert_int_equal(data->len, 6);
	assert_memory_equal((const void *)(uintptr_t)data->addr, mac, 6);
	t->m->ctrl_silent = false;
	model_ctrl_answer(t->e, t->m);
	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_memory_equal(t->net.mac, mac, 6);
	t_free(t);
}

static void test_the_fewest_rx_buffers_still_take_the_largest_frame(void **state)
{
	(void)state;
	static const uint64_t features[] = {0, BIT(VIRTIO_NET_F_MRG_RXBUF)};
	struct vio_net_opts o;
	struct t tmp = {0};

	/* One RX buffer asked for: enough are posted for the largest frame, and it is taken. */
	default_opts(&tmp, &o);
	o.rx_buffers = 1;
	for (unsigned i = 0; i < 2; i++) {
		struct virtio_net_config c = {.mtu = 9000};
		struct t *t = t_new_cfg(features[i] | BIT(VIRTIO_NET_F_MTU), &c, true, &o);
		round_trip_largest_frame(t);
		assert_int_equal(t->net.stats.rx_drops, 0);
		t_free(t);
	}
	o.rx_hold_max = 1; /* fewer than the largest frame takes: a caller holding none gets it */
	struct virtio_net_config c = {.mtu = 9000};
	struct t *t = t_new_cfg(BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_NET_F_MTU), &c, true, &o);
	round_trip_largest_frame(t);
	assert_int_equal(t->net.stats.rx_drops, 0);
	t_free(t);
}

/* --- receive segmentation offload ----------------------------------------------------------- */

#define GUEST_GSO                                                                                  \
	(BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_MRG_RXBUF) |                              \
	 BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |                             \
	 BIT(VIRTIO_NET_F_GUEST_ECN) | BIT(VIRTIO_NET_F_GUEST_UFO))
#define GSO_ONLY                                                                                   \
	(BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |                             \
	 BIT(VIRTIO_NET_F_GUEST_ECN) | BIT(VIRTIO_NET_F_GUEST_UFO))

/* A coalesced TCP frame as a host's tap hands it over: NEEDS_CSUM on the TCP checksum. */
static struct inj *inject_gso(struct model *m, uint32_t len, uint8_t type, uint8_t seed)
{
	struct inj *i = inject(m, len, seed);
	i->gso_type = type;
	i->gso_size = 1448;
	i->hdr_len = 66;
	i->hflags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	i->csum_start = 34;
	i->csum_offset = 16;
	return i;
}

/* What the device read back as the driver's features. */
static uint64_t negotiated(struct t *t)
{
	return t->e->vd.driver_features & t->net.dev->features;
}

static void test_receive_offloads_are_taken_only_with_their_prerequisites(void **state)
{
	(void)state;
	static const struct {
		uint64_t offered, disabled, expected;
	} cases[] = {
	    {GUEST_GSO, 0, GSO_ONLY},
	    /* 5.1.3.1: none without GUEST_CSUM; ours: none without MRG_RXBUF. */
	    {GUEST_GSO & ~BIT(VIRTIO_NET_F_GUEST_CSUM), 0, 0},
	    {GUEST_GSO & ~BIT(VIRTIO_NET_F_MRG_RXBUF), 0, 0},
	    {GUEST_GSO, BIT(VIRTIO_NET_F_GUEST_CSUM), 0},
	    /* GUEST_ECN needs GUEST_TSO4 or GUEST_TSO6. */
	    {GUEST_GSO & ~(BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6)), 0,
	     BIT(VIRTIO_NET_F_GUEST_UFO)},
	    {GUEST_GSO, BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6),
	     BIT(VIRTIO_NET_F_GUEST_UFO)},
	    /* Each one can be turned off alone. */
	    {GUEST_GSO, BIT(VIRTIO_NET_F_GUEST_TSO6), GSO_ONLY & ~BIT(VIRTIO_NET_F_GUEST_TSO6)},
	    {GUEST_GSO, BIT(VIRTIO_NET_F_GUEST_UFO), GSO_ONLY & ~BIT(VIRTIO_NET_F_GUEST_UFO)},
	    {GUEST_GSO, BIT(VIRTIO_NET_F_GUEST_ECN), GSO_ONLY & ~BIT(VIRTIO_NET_F_GUEST_ECN)},
	};
	struct t tmp = {0};
	struct vio_net_opts o;

	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		default_opts(&tmp, &o);
		o.disable_features = cases[k].disabled;
		struct t *t = t_new_cfg(cases[k].offered, NULL, true, &o);
		assert_int_equal(negotiated(t) & GSO_ONLY, cases[k].expected);
		bool gso = cases[k].expected & (GSO_ONLY & ~BIT(VIRTIO_NET_F_GUEST_ECN));
		assert_int_equal(t->net.max_rx_frame, gso ? VIO_NET_GSO_MAX_FRAME : 1518);
		assert_int_equal(t->net.max_frame, 1518);
		if (negotiated(t) & BIT(VIRTIO_NET_F_MRG_RXBUF))
			assert_int_equal(t->net.net_rx_buf_size, gso ? 4096 : VIO_NET_RX_BUF_SIZE);
		t_free(t);
	}
}

static void test_a_64k_coalesced_tcp_frame_arrives_over_many_buffers_in_order(void **state)
{
	(void)state;
	struct t *t = t_new(GUEST_GSO);
	struct vio_net_frame f;
	uint32_t len = VIO_NET_GSO_MAX_FRAME;

	inject_gso(t->m, len, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 5);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.len, len);
	assert_int_equal(f.nsegs, (len + 12 + 4095) / 4096);
	assert_int_equal(f.gso_type, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN);
	assert_int_equal(f.gso_size, 1448);
	assert_int_equal(f.hdr_len, 66);
	assert_int_equal(f.flags, VIO_NET_RX_CSUM_PARTIAL);
	assert_int_equal(f.csum_start, 34);
	assert_int_equal(f.csum_offset, 16);
	uint8_t seed = 5;
	uint32_t sum = 0;
	for (unsigned i = 0; i < f.nsegs; i++) {
		assert_true(is_pattern(f.seg[i].data, f.seg[i].len, seed));
		seed = (uint8_t)(seed + f.seg[i].len);
		sum += f.seg[i].len;
	}
	assert_int_equal(sum, len);
	vio_net_frame_release(&t->net, &f);

	/* IPv6 and UDP ones, and a plain frame beside them: not counted as GSO. */
	inject_gso(t->m, 30000, VIRTIO_NET_HDR_GSO_TCPV6, 1);
	inject_gso(t->m, 9000, VIRTIO_NET_HDR_GSO_UDP, 2);
	inject(t->m, 60, 3);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(recv_one(t, &f), 0);
		vio_net_frame_release(&t->net, &f);
	}
	assert_int_equal(f.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(f.gso_size, 0);
	assert_int_equal(t->net.stats.rx_errors, 0);
	assert_int_equal(t->net.stats.rx_frames, 4);
	assert_int_equal(t->net.stats.rx_gso, 3);
	assert_int_equal(t->net.stats.rx_merged, 3);
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_gso_header_fields_the_device_gets_wrong_drop_the_frame(void **state)
{
	(void)state;
	struct vio_net_opts o;
	struct t tmp = {0};
	default_opts(&tmp, &o);
	o.disable_features = BIT(VIRTIO_NET_F_GUEST_UFO) | BIT(VIRTIO_NET_F_GUEST_ECN) |
			     BIT(VIRTIO_NET_F_GUEST_TSO6);
	struct t *t = t_new_cfg(GUEST_GSO, NULL, true, &o);
	struct vio_net_frame f;
	unsigned bad = 0;

	/* Types not negotiated, or none at all. */
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV6, 0);
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_UDP, 0);
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 0);
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_UDP_L4, 0);
	inject_gso(t->m, 3000, 2, 0);
	inject_gso(t->m, 3000, 0x7f, 0);
	bad += 6;
	/* 5.1.6.4.1: a GSO frame has NEEDS_CSUM and a gso_size. */
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 0)->hflags = 0;
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 0)->hflags = VIRTIO_NET_HDR_F_DATA_VALID;
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 0)->gso_size = 0;
	bad += 3;
	/* The checksum field or hdr_len beyond the frame. */
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 0)->csum_start = 2999;
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 0)->hdr_len = 3001;
	bad += 2;
	/* Longer than 64 KiB + headers; a plain frame longer than the MTU. */
	inject_gso(t->m, VIO_NET_GSO_MAX_FRAME + 1, VIRTIO_NET_HDR_GSO_TCPV4, 0);
	inject(t->m, 1519, 0);
	bad += 2;
	inject_gso(t->m, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 42);
	int err = VIO_EAGAIN;
	for (unsigned k = 0; k < 20 && err == VIO_EAGAIN; k++)
		err = recv_one(t, &f); /* the device fills buffers as they come back */
	assert_int_equal(err, 0);
	assert_int_equal(t->net.stats.rx_errors, bad);
	assert_int_equal(f.len, 3000);
	assert_int_equal(f.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_true(is_pattern(f.seg[0].data, f.seg[0].len, 42));
	vio_net_frame_release(&t->net, &f);
	assert_int_equal(t->net.stats.rx_frames, 1);
	assert_int_equal(t->net.stats.rx_gso, 1);
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_gso_frame_without_receive_offloads_is_a_bad_frame(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_MRG_RXBUF));
	struct vio_net_frame f;

	inject_gso(t->m, 1000, VIRTIO_NET_HDR_GSO_TCPV4, 0);
	inject_gso(t->m, 1000, VIRTIO_NET_HDR_GSO_UDP, 0);
	inject(t->m, 60, 9);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(t->net.stats.rx_errors, 2);
	assert_true(is_pattern(f.seg[0].data, 60, 9));
	vio_net_frame_release(&t->net, &f);
	t_free(t);
}

static void test_num_buffers_above_what_the_largest_frame_takes_is_a_bad_frame(void **state)
{
	(void)state;
	struct t *t = t_new(BIT(VIRTIO_NET_F_MRG_RXBUF));
	struct vio_net_frame f;

	/* 1518 + 12 bytes fit in one 2 KiB buffer: a device that spreads 100 over two lies
	 * (5.1.6.4.1: it fills every buffer but the last). Both are taken, neither handed up. */
	assert_int_equal(t->net.net_rx_max_bufs, 1);
	inject(t->m, 100, 0)->per_buf = 60;
	inject(t->m, 70, 4);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(t->net.stats.rx_errors, 1);
	assert_int_equal(f.len, 70);
	assert_true(is_pattern(f.seg[0].data, 70, 4));
	vio_net_frame_release(&t->net, &f);
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_rx_ring_full(t);
	t_free(t);
}

static void test_rx_buffer_size_is_an_option_and_frames_span_small_buffers(void **state)
{
	(void)state;
	struct vio_net_opts o;
	struct t tmp = {0};
	struct vio_net_frame f;
	static uint8_t back[2000];

	default_opts(&tmp, &o);
	o.rx_buf_size = 500; /* rounded up to a cache line */
	struct t *t = t_new_cfg(BIT(VIRTIO_NET_F_MRG_RXBUF), NULL, true, &o);
	assert_int_equal(t->net.net_rx_buf_size, 512);
	assert_int_equal(t->net.net_rx_max_bufs, 3);
	inject(t->m, 1514, 6);
	assert_int_equal(recv_one(t, &f), 0);
	assert_int_equal(f.nsegs, 3);
	assert_int_equal(f.seg[0].len, 500);
	vio_net_frame_release(&t->net, &f);
	inject(t->m, 400, 7);
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv_copy(&t->net, back, sizeof(back), NULL), 400);
	assert_int_equal(t->net.stats.rx_merged, 1);
	t_free(t);

	/* Too small for the largest frame in VIO_NET_RX_MAX_SEGS buffers: raised; capped at a
	 * page. */
	o.rx_buf_size = 64;
	struct virtio_net_config c = {.mtu = 9000};
	t = t_new_cfg(BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_NET_F_MTU), &c, true, &o);
	assert_true(t->net.net_rx_buf_size * VIO_NET_RX_MAX_SEGS >= 9018 + 12);
	round_trip_largest_frame(t);
	t_free(t);
	o.rx_buf_size = 60000;
	t = t_new_cfg(BIT(VIRTIO_NET_F_MRG_RXBUF), NULL, true, &o);
	assert_int_equal(t->net.net_rx_buf_size, 4096);
	t_free(t);
}

/* --- transmit segmentation offload ---------------------------------------------------------- */

#define HOST_TSO                                                                                   \
	(BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |      \
	 BIT(VIRTIO_NET_F_HOST_ECN))

/* A TCP/IPv4 frame with 66 bytes of headers: the device segments it at an MSS of 1448. */
static struct vio_net_tx_opts tso_opts(uint8_t type)
{
	return (struct vio_net_tx_opts){.flags = VIO_NET_TX_CSUM | VIO_NET_TX_GSO,
					.csum_start = 34,
					.csum_offset = 16,
					.gso_type = type,
					.gso_size = 1448,
					.hdr_len = 66};
}

/* The frame cut into page-sized pieces, as a stack hands over its buffers. */
static unsigned page_sg(struct vio_sg *sg, uint8_t *frame, uint32_t len)
{
	unsigned n = 0;
	for (uint32_t off = 0; off < len; off += 4096, n++)
		sg[n] = (struct vio_sg){frame + off, len - off < 4096 ? len - off : 4096};
	return n;
}

static void test_tx_tso_sends_a_64k_frame_over_pages_with_the_gso_header(void **state)
{
	(void)state;
	struct t *t = t_new(HOST_TSO);
	static uint8_t frame[VIO_NET_GSO_MAX_FRAME];
	struct vio_sg sg[VIO_NET_TX_MAX_SEGS];
	static const uint8_t types[] = {VIRTIO_NET_HDR_GSO_TCPV4,
					VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN};

	assert_int_equal(negotiated(t) & HOST_TSO, HOST_TSO);
	assert_int_equal(t->net.max_tx_frame, VIO_NET_GSO_MAX_FRAME);
	assert_int_equal(t->net.max_frame, 1518);
	fill(frame, sizeof(frame), 3);
	for (unsigned k = 0; k < 2; k++) {
		struct vio_net_tx_opts o = tso_opts(types[k]);
		unsigned n = page_sg(sg, frame, sizeof(frame));
		assert_int_equal(n, 17);
		assert_int_equal(vio_net_send_sg(&t->net, sg, n, frame + k, &o), 0);
		fake_env_run(t->e);
		struct txcap *c = &t->m->tx[k];
		struct virtio_net_hdr h;
		memcpy(&h, c->hdr, sizeof(h));
		assert_int_equal(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
		assert_int_equal(h.gso_type, types[k]);
		assert_int_equal(h.gso_size, 1448);
		assert_int_equal(h.hdr_len, 66);
		assert_int_equal(h.csum_start, 34);
		assert_int_equal(h.csum_offset, 16);
		assert_int_equal(h.num_buffers, 0);
		assert_int_equal(c->len, sizeof(frame));
		assert_memory_equal(c->data, frame, sizeof(frame));
	}
	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_int_equal(t->ncookies, 2);
	assert_int_equal(t->net.stats.tx_gso, 2);
	assert_int_equal(t->net.stats.tx_bytes, 2 * sizeof(frame));
	/* The copying send keeps to MTU frames: its buffers hold one. */
	struct vio_net_tx_opts o = tso_opts(VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(vio_net_send(&t->net, frame, 1519, &o), VIO_EINVAL);
	assert_int_equal(vio_net_send(&t->net, frame, 1518, &o), 0);
	/* Without VIO_NET_TX_GSO a frame is still at most max_frame. */
	o.flags = VIO_NET_TX_CSUM;
	assert_int_equal(vio_net_send_sg(&t->net, sg, 1, frame, &o), VIO_EINVAL);
	t_free(t);
}

static void test_tx_tso_with_inconsistent_fields_is_einval_and_nothing_is_posted(void **state)
{
	(void)state;
	struct t *t = t_new(HOST_TSO);
	static uint8_t frame[VIO_NET_GSO_MAX_FRAME + 1];
	struct vio_sg sg[VIO_NET_TX_MAX_SEGS];
	struct vio_net_tx_opts bad[12];
	unsigned nbad = 0;

	for (unsigned k = 0; k < 12; k++)
		bad[k] = tso_opts(VIRTIO_NET_HDR_GSO_TCPV4);
	bad[nbad++].flags = VIO_NET_TX_GSO;   /* 5.1.6.2.1: GSO needs NEEDS_CSUM */
	bad[nbad++].gso_size = 0;	      /* no MSS */
	bad[nbad++].csum_start = 60;	      /* the TCP checksum past the headers */
	bad[nbad++].hdr_len = 40;	      /* ... the same, from the other side */
	bad[nbad++].gso_size = 1518 - 66 + 1; /* a segment longer than an MTU frame */
	bad[nbad++].gso_type = VIRTIO_NET_HDR_GSO_NONE;
	bad[nbad++].gso_type = 2; /* no such type */
	bad[nbad++].gso_type = VIRTIO_NET_HDR_GSO_ECN;
	bad[nbad++].flags |= 1u << 7; /* a flag nobody defined */
	for (unsigned k = 0; k < nbad; k++)
		assert_int_equal(
		    vio_net_send_sg(&t->net, sg, page_sg(sg, frame, 4000), frame, &bad[k]),
		    VIO_EINVAL);
	/* Headers as long as the frame: no payload to segment; a frame above 64 KiB. */
	struct vio_net_tx_opts o = tso_opts(VIRTIO_NET_HDR_GSO_TCPV4);
	o.hdr_len = 100;
	assert_int_equal(vio_net_send_sg(&t->net, sg, page_sg(sg, frame, 100), frame, &o),
			 VIO_EINVAL);
	o = tso_opts(VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(vio_net_send_sg(&t->net, sg, page_sg(sg, frame, sizeof(frame)), frame, &o),
			 VIO_EINVAL);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, 0);
	assert_int_equal(t->net.stats.tx_errors, nbad + 2);
	assert_int_equal(t->net.stats.tx_gso, 0);
	t_free(t);
}

static void test_tx_tso_without_its_feature_is_enotsup(void **state)
{
	(void)state;
	static uint8_t frame[4000];
	struct vio_sg sg = {frame, sizeof(frame)};
	struct vio_net_tx_opts o;

	/* Only HOST_TSO4: IPv6, ECN and UDP are refused. */
	struct t *t = t_new(BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4));
	o = tso_opts(VIRTIO_NET_HDR_GSO_TCPV6);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, frame, &o), VIO_ENOTSUP);
	o = tso_opts(VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, frame, &o), VIO_ENOTSUP);
	o = tso_opts(VIRTIO_NET_HDR_GSO_UDP);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, frame, &o), VIO_ENOTSUP);
	o = tso_opts(VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(vio_net_send_sg(&t->net, &sg, 1, frame, &o), 0);
	t_free(t);

	/* 5.1.3.1: HOST_TSO4/6 need CSUM, HOST_ECN needs one of them; or turned off. */
	static const struct {
		uint64_t offered, disabled;
	} cases[] = {
	    {HOST_TSO & ~BIT(VIRTIO_NET_F_CSUM), 0},
	    {HOST_TSO, BIT(VIRTIO_NET_F_CSUM)},
	    {HOST_TSO, BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6)},
	};
	struct t tmp = {0};
	struct vio_net_opts no;
	for (unsigned k = 0; k < 3; k++) {
		default_opts(&tmp, &no);
		no.disable_features = cases[k].disabled;
		t = t_new_cfg(cases[k].offered, NULL, true, &no);
		assert_int_equal(negotiated(t) & (HOST_TSO & ~BIT(VIRTIO_NET_F_CSUM)), 0);
		assert_int_equal(t->net.max_tx_frame, t->net.max_frame);
		o = tso_opts(VIRTIO_NET_HDR_GSO_TCPV4);
		o.flags = VIO_NET_TX_GSO | (k == 0 ? 0 : VIO_NET_TX_CSUM);
		int err = vio_net_send_sg(&t->net, &sg, 1, frame, &o);
		assert_true(err == VIO_ENOTSUP || err == VIO_EINVAL);
		t_free(t);
	}
}

/* --- multiqueue ----------------------------------------------------------------------------- */

/* The device's side of one RX queue: fill one posted buffer with a frame (pattern seed). */
static void deliver_on(struct t *t, int ring, uint32_t len, uint8_t seed)
{
	static struct fake_req req;
	uint8_t buf[2048];
	struct virtio_net_hdr h = {.num_buffers = 1};

	assert_true(fake_vring_pop(&t->e->ring[ring], &req));
	memcpy(buf, &h, 12);
	fill(buf + 12, len, seed);
	assert_true(12 + len <= req.seg[0].len);
	memcpy((void *)(uintptr_t)req.seg[0].addr, buf, 12 + len);
	fake_vring_complete(&t->e->ring[ring], req.head, 12 + len);
}

/* The device's side of one TX queue: take one frame, check its pattern, complete it. */
static void take_sent_on(struct t *t, int ring, uint32_t len, uint8_t seed)
{
	static struct fake_req req;
	static uint8_t all[2048];

	assert_true(fake_vring_pop(&t->e->ring[ring], &req));
	assert_int_equal(fake_vring_gather(&req, all, sizeof(all)), 12 + len);
	assert_true(is_pattern(all + 12, len, seed));
	fake_vring_complete(&t->e->ring[ring], req.head, 0);
	assert_false(fake_vring_pop(&t->e->ring[ring], &req));
}

static void test_multiqueue_sets_the_pairs_sends_by_flow_and_receives_from_every_pair(void **state)
{
	(void)state;
	/* Three pairs offered: queues 0-5, the controlq at 6 (5.1.2). */
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 1, 2, 3}, .max_virtqueue_pairs = 3};
	uint64_t features =
	    BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MQ);
	struct fake_env *e = fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 7, QSIZE);
	struct t *t = t_alloc(e, features);
	struct vio_net_opts o;
	struct vio_net_frame f;
	uint8_t frame[100];

	t->m->ctrl_ring = 6;
	default_opts(t, &o);
	o.queue_pairs = 8; /* more than offered: the device's three */
	t_start(t, &o);
	assert_int_equal(t->net.queue_pairs, 3);
	assert_int_equal(t->net.net_ctrl_index, 6);
	assert_int_equal(t->m->ctrl_count, 1);
	assert_int_equal(t->m->ctrl_class, VIRTIO_NET_CTRL_MQ);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET);
	assert_int_equal(t->m->ctrl_len, 2);
	assert_int_equal(t->m->ctrl_data[0] | t->m->ctrl_data[1] << 8, 3);
	assert_int_equal(t->net.net_nrx, 3 * VIO_NET_RX_BUFFERS);

	/* Flows 0..5 go out on TX queues 0, 1, 2, 0, 1, 2 (rings 1, 3, 5). */
	t->m->tx_hold = true;
	for (uint32_t flow = 0; flow < 3; flow++) {
		struct vio_net_tx_opts to = {.flow = flow};
		fill(frame, sizeof(frame), (uint8_t)flow);
		assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), &to), 0);
	}
	for (int p = 0; p < 3; p++)
		take_sent_on(t, 2 * p + 1, sizeof(frame), (uint8_t)p);
	assert_int_equal(vio_net_poll(&t->net), 0);
	assert_int_equal(t->net.net_tx_nfree, t->net.net_ntx);

	/* A frame on each RX queue, the last pair's first: all come up. The model plays
	 * receiveq1, whose buffers it already took. */
	for (int p = 2; p >= 1; p--)
		deliver_on(t, 2 * p, 60, (uint8_t)(10 + p));
	inject(t->m, 60, 10);
	fake_env_run(t->e);
	unsigned seen = 0;
	while (vio_net_recv(&t->net, &f) == 0) {
		assert_int_equal(f.len, 60);
		uint8_t seed = f.seg[0].data[0];
		assert_true(seed >= 10 && seed < 13 && is_pattern(f.seg[0].data, 60, seed));
		seen |= 1u << (seed - 10);
		vio_net_frame_release(&t->net, &f);
	}
	assert_int_equal(seen, 7);
	assert_int_equal(t->net.stats.rx_frames, 3);
	assert_int_equal(t->net.stats.rx_errors, 0);
	for (int p = 0; p < 3; p++)
		assert_int_equal(t->net.net_vqs[2 * p].stats.completions, 1);
	t_free(t);
}

static void test_one_pair_asked_for_leaves_mq_unnegotiated(void **state)
{
	(void)state;
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 1, 2, 3}, .max_virtqueue_pairs = 3};
	uint64_t features = BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MQ);
	struct t *t = t_new_cfg(features, &c, true, NULL);

	assert_int_equal(negotiated(t) & BIT(VIRTIO_NET_F_MQ), 0);
	assert_int_equal(t->net.queue_pairs, 1);
	assert_int_equal(t->net.net_ctrl_index, 2);
	assert_int_equal(t->m->ctrl_count, 0);
	t_free(t);
}

static void test_a_device_refusing_the_pairs_leaves_one(void **state)
{
	(void)state;
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 1, 2, 3}, .max_virtqueue_pairs = 2};
	uint64_t features = BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MQ);
	struct fake_env *e = fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 5, QSIZE);
	struct t *t = t_alloc(e, features);
	struct vio_net_opts o;
	uint8_t frame[60] = {0};

	t->m->ctrl_ring = 4;
	t->m->ctrl_ack = VIRTIO_NET_ERR;
	default_opts(t, &o);
	o.queue_pairs = 2;
	t_start(t, &o);
	assert_int_equal(t->m->ctrl_count, 1);
	assert_int_equal(t->net.queue_pairs, 1);
	assert_true(fake_port_logged(&t->e->fp, "refused 2 queue pairs"));
	struct vio_net_tx_opts to = {.flow = 1};
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), &to), 0);
	fake_env_run(t->e);
	assert_int_equal(t->m->tx_seen, 1); /* on transmitq1 */
	t_free(t);
}

static void test_bad_max_virtqueue_pairs_fails_init(void **state)
{
	(void)state;
	static const uint16_t bad[] = {0, 0x8001};
	for (unsigned k = 0; k < 2; k++) {
		struct virtio_net_config c = {.max_virtqueue_pairs = bad[k]};
		uint64_t features = BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MQ);
		struct fake_env *e = fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 3, QSIZE);
		struct vio_net net;
		struct vio_net_opts o = {.queue_pairs = 2};
		assert_int_equal(vio_net_init(&net, &e->dev, &o), VIO_ERANGE);
		assert_int_equal(vio_net_fini(&net), 0);
		fake_env_free(e);
	}
}

/* --- receive-side scaling and hash report ----------------------------------------------------- */

#define RSS_FEATURES                                                                               \
	(BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MQ) |                \
	 BIT(VIRTIO_NET_F_RSS) | BIT(VIRTIO_NET_F_HASH_REPORT))

/* The config QEMU's virtio-net-pci,rss=on,hash=on shows: a 40-byte key, 128 entries. */
static struct virtio_net_config rss_config(uint16_t pairs)
{
	return (struct virtio_net_config){.mac = {0x52, 0x54, 0, 1, 2, 3},
					  .max_virtqueue_pairs = pairs,
					  .rss_max_key_size = 40,
					  .rss_max_indirection_table_length = 128,
					  .supported_hash_types = VIRTIO_NET_RSS_HASH_TYPE_ALL};
}

/* A device with `pairs` pairs offering `features`; opts rss / hash_report as given. */
static struct t *t_new_rss(uint64_t features, uint16_t pairs, bool rss, bool hash,
			   const struct virtio_net_config *cfg)
{
	struct virtio_net_config c = cfg ? *cfg : rss_config(pairs);
	struct fake_env *e =
	    fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 2 * pairs + 1, QSIZE);
	struct t *t = t_alloc(e, features);
	struct vio_net_opts o;

	t->m->ctrl_ring = 2 * pairs;
	default_opts(t, &o);
	o.queue_pairs = pairs;
	o.rss = rss;
	o.hash_report = hash;
	t_start(t, &o);
	if (hash && (negotiated(t) & BIT(VIRTIO_NET_F_HASH_REPORT)))
		t->m->hdr_len = 20;
	return t;
}

static const uint8_t test_key[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
				     0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
				     0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
				     0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

static uint16_t le16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32_at(const uint8_t *p)
{
	return le16_at(p) | (uint32_t)le16_at(p + 2) << 16;
}

static void test_rss_and_hash_report_are_off_unless_asked_for(void **state)
{
	(void)state;
	struct t *t = t_new_rss(RSS_FEATURES, 1, false, false, NULL);

	assert_int_equal(negotiated(t) & (BIT(VIRTIO_NET_F_RSS) | BIT(VIRTIO_NET_F_HASH_REPORT)),
			 0);
	assert_int_equal(t->net.hdr_len, 12);
	assert_int_equal(t->net.rss_max_key_size, 0);
	struct vio_net_rss r = {
	    .hash_types = VIRTIO_NET_RSS_HASH_TYPE_IPv4, .key = test_key, .key_len = 40};
	assert_int_equal(vio_net_set_rss(&t->net, &r), VIO_ENOTSUP);
	assert_int_equal(t->m->ctrl_count, 0);
	t_free(t);

	/* Asked for, but never without the ctrl queue they are configured over (5.1.3.1). */
	t = t_new_rss(RSS_FEATURES & ~BIT(VIRTIO_NET_F_CTRL_VQ) & ~BIT(VIRTIO_NET_F_MQ), 1, true,
		      true, NULL);
	assert_int_equal(negotiated(t) & (BIT(VIRTIO_NET_F_RSS) | BIT(VIRTIO_NET_F_HASH_REPORT)),
			 0);
	assert_int_equal(t->net.hdr_len, 12);
	assert_int_equal(vio_net_set_rss(&t->net, &r), VIO_ENOTSUP);
	t_free(t);
}

static void test_hash_report_makes_the_header_20_bytes_both_ways(void **state)
{
	(void)state;
	struct t *t = t_new_rss(RSS_FEATURES & ~BIT(VIRTIO_NET_F_RSS), 1, false, true, NULL);
	uint8_t frame[100];
	struct vio_net_frame f;

	assert_true(negotiated(t) & BIT(VIRTIO_NET_F_HASH_REPORT));
	assert_int_equal(t->net.hdr_len, 20);
	assert_int_equal(t->net.rss_max_key_size, 40);
	assert_int_equal(t->net.rss_hash_types_supported, VIRTIO_NET_RSS_HASH_TYPE_ALL);
	assert_int_equal(t->net.rss_max_table_len, 0); /* no RSS: no table */

	/* Transmit: a 20-byte header alone in its descriptor, the hash fields 0 (all of it,
	 * even in a slot whose last header was scribbled over). */
	t->m->tx_scribble = true;
	fill(frame, sizeof(frame), 3);
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), NULL), 0);
		fake_env_run(t->e);
		assert_int_equal(vio_net_poll(&t->net), 0);
		assert_int_equal(t->m->tx_seen, k + 1);
		assert_int_equal(t->m->tx[k].hdr_seg_len, 20);
		assert_int_equal(t->m->tx[k].len, sizeof(frame));
		assert_true(is_pattern(t->m->tx[k].data, sizeof(frame), 3));
		for (int b = 0; b < 20; b++)
			assert_int_equal(t->m->tx[k].hdr[b], 0);
	}

	/* Receive: the frame starts after 20 bytes; NONE comes up with a hash of 0. */
	struct inj *i = inject(t->m, 80, 7);
	i->hash_value = 0x12345678; /* meaningless with NONE */
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv(&t->net, &f), 0);
	assert_int_equal(f.len, 80);
	assert_true(is_pattern(f.seg[0].data, 80, 7));
	assert_int_equal(f.hash_report, VIRTIO_NET_HASH_REPORT_NONE);
	assert_int_equal(f.hash_value, 0);
	vio_net_frame_release(&t->net, &f);
	t_free(t);
}

static void test_hash_report_alone_sends_hash_config(void **state)
{
	(void)state;
	struct t *t = t_new_rss(RSS_FEATURES & ~BIT(VIRTIO_NET_F_RSS), 1, true, true, NULL);
	uint16_t table[1] = {0};
	struct vio_net_rss r = {.hash_types =
				    VIRTIO_NET_RSS_HASH_TYPE_TCPv4 | VIRTIO_NET_RSS_HASH_TYPE_UDPv4,
				.key = test_key,
				.key_len = 40};

	/* A table asks for steering, which this device does not do. */
	struct vio_net_rss steer = r;
	steer.table = table;
	steer.table_len = 1;
	assert_int_equal(vio_net_set_rss(&t->net, &steer), VIO_ENOTSUP);
	assert_int_equal(t->m->ctrl_count, 0);

	assert_int_equal(vio_net_set_rss(&t->net, &r), 0);
	assert_int_equal(t->m->ctrl_count, 1);
	assert_int_equal(t->m->ctrl_class, VIRTIO_NET_CTRL_MQ);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_MQ_HASH_CONFIG);
	/* struct virtio_net_hash_config: types, reserved[4], the key's length, the key. */
	assert_int_equal(t->m->ctrl_len, 13 + 40);
	assert_int_equal(le32_at(t->m->ctrl_data), r.hash_types);
	for (int k = 4; k < 12; k++)
		assert_int_equal(t->m->ctrl_data[k], 0);
	assert_int_equal(t->m->ctrl_data[12], 40);
	assert_memory_equal(t->m->ctrl_data + 13, test_key, 40);
	assert_int_equal(t->net.rss_hash_types, r.hash_types);
	assert_int_equal(t->net.rss_key_len, 40);
	assert_int_equal(t->net.rss_table_len, 0);
	t_free(t);
}

static void test_set_rss_sends_the_table_the_key_and_the_pairs_in_use(void **state)
{
	(void)state;
	struct t *t = t_new_rss(RSS_FEATURES, 3, true, false, NULL);
	uint16_t table[8] = {0, 1, 2, 0, 1, 2, 0, 1};
	struct vio_net_rss r = {.hash_types =
				    VIRTIO_NET_RSS_HASH_TYPE_IPv4 | VIRTIO_NET_RSS_HASH_TYPE_TCPv4,
				.key = test_key,
				.key_len = 40,
				.table = table,
				.table_len = 8,
				.unclassified = 2};

	assert_true(negotiated(t) & BIT(VIRTIO_NET_F_RSS));
	assert_int_equal(t->net.hdr_len, 12); /* RSS alone leaves the header as it was */
	assert_int_equal(t->net.rss_max_table_len, 128);
	unsigned before = t->m->ctrl_count; /* VQ_PAIRS_SET at init */
	assert_int_equal(vio_net_set_rss(&t->net, &r), 0);
	assert_int_equal(t->m->ctrl_count, before + 1);
	assert_int_equal(t->m->ctrl_class, VIRTIO_NET_CTRL_MQ);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_MQ_RSS_CONFIG);
	/* struct virtio_net_rss_config, then max_tx_vq, the key's length and the key. */
	const uint8_t *d = t->m->ctrl_data;
	assert_int_equal(t->m->ctrl_len, 8 + 2 * 8 + 2 + 1 + 40);
	assert_int_equal(le32_at(d), r.hash_types);
	assert_int_equal(le16_at(d + 4), 7); /* indirection_table_mask */
	assert_int_equal(le16_at(d + 6), 2); /* unclassified_queue */
	for (int k = 0; k < 8; k++)
		assert_int_equal(le16_at(d + 8 + 2 * k), table[k]);
	assert_int_equal(le16_at(d + 24), 3); /* max_tx_vq: the pairs in use */
	assert_int_equal(d[26], 40);
	assert_memory_equal(d + 27, test_key, 40);
	assert_int_equal(t->net.rss_hash_types, r.hash_types);
	assert_int_equal(t->net.rss_table_len, 8);
	assert_int_equal(t->net.rss_unclassified, 2);
	t_free(t);
}

static void test_set_rss_refuses_bad_configurations_before_the_device_sees_them(void **state)
{
	(void)state;
	struct virtio_net_config c = rss_config(2);
	c.supported_hash_types = VIRTIO_NET_RSS_HASH_TYPE_IPv4 | VIRTIO_NET_RSS_HASH_TYPE_TCPv4;
	struct t *t = t_new_rss(RSS_FEATURES, 2, true, false, &c);
	uint16_t table[256] = {0};
	uint8_t key[41] = {0};
	const struct vio_net_rss good = {.hash_types = VIRTIO_NET_RSS_HASH_TYPE_TCPv4,
					 .key = key,
					 .key_len = 40,
					 .table = table,
					 .table_len = 4,
					 .unclassified = 1};
	struct vio_net_rss r;

	unsigned before = t->m->ctrl_count;
#define REFUSED(err, change)                                                                       \
	do {                                                                                       \
		r = good;                                                                          \
		change;                                                                            \
		assert_int_equal(vio_net_set_rss(&t->net, &r), err);                               \
	} while (0)
	REFUSED(VIO_EINVAL, r.key_len = 41); /* beyond rss_max_key_size */
	REFUSED(VIO_EINVAL, r.key_len = 0);  /* a type on, no key */
	REFUSED(VIO_EINVAL, r.key = NULL);
	REFUSED(VIO_EINVAL, r.table_len = 0);
	REFUSED(VIO_EINVAL, r.table_len = 3);	/* not a power of two */
	REFUSED(VIO_EINVAL, r.table_len = 256); /* beyond the device's 128 */
	REFUSED(VIO_EINVAL, r.table = NULL);
	REFUSED(VIO_EINVAL, table[3] = 2); /* a pair not in use */
	table[3] = 0;
	REFUSED(VIO_EINVAL, r.unclassified = 2);
	REFUSED(VIO_ENOTSUP, r.hash_types |= VIRTIO_NET_RSS_HASH_TYPE_UDPv4); /* not supported */
	REFUSED(VIO_ENOTSUP, r.hash_types = 1u << 9);			      /* no such type */
#undef REFUSED
	assert_int_equal(t->m->ctrl_count, before);
	assert_int_equal(t->net.rss_hash_types, 0);

	/* The largest table the device takes, and hashing off (no types, no key), are fine. */
	r = good;
	r.table_len = 128;
	assert_int_equal(vio_net_set_rss(&t->net, &r), 0);
	r.hash_types = 0;
	r.key_len = 0;
	assert_int_equal(vio_net_set_rss(&t->net, &r), 0);
	assert_int_equal(t->m->ctrl_count, before + 2);
	assert_int_equal(t->net.rss_hash_types, 0);
	t_free(t);
}

static void test_a_device_table_longer_than_ours_is_clamped(void **state)
{
	(void)state;
	struct virtio_net_config c = rss_config(1);
	c.rss_max_indirection_table_length = 4096;
	c.supported_hash_types = 0xffffffff; /* bits past UDP_EX mean nothing to us */
	struct t *t = t_new_rss(RSS_FEATURES, 1, true, false, &c);

	assert_int_equal(t->net.rss_max_table_len, VIO_NET_RSS_MAX_TABLE);
	assert_int_equal(t->net.rss_hash_types_supported, VIRTIO_NET_RSS_HASH_TYPE_ALL);
	t_free(t);
}

static void test_a_refused_rss_config_is_eio_and_changes_nothing(void **state)
{
	(void)state;
	struct t *t = t_new_rss(RSS_FEATURES, 1, true, true, NULL);
	uint16_t table[1] = {0};
	struct vio_net_rss r = {.hash_types = VIRTIO_NET_RSS_HASH_TYPE_TCPv4,
				.key = test_key,
				.key_len = 40,
				.table = table,
				.table_len = 1};

	t->m->ctrl_ack = VIRTIO_NET_ERR;
	assert_int_equal(vio_net_set_rss(&t->net, &r), VIO_EIO);
	assert_int_equal(t->net.rss_hash_types, 0);
	assert_int_equal(t->net.rss_table_len, 0);
	t_free(t);
}

static void test_received_hash_comes_up_and_a_report_never_asked_for_is_dropped(void **state)
{
	(void)state;
	struct t *t = t_new_rss(RSS_FEATURES, 1, true, true, NULL);
	uint16_t table[1] = {0};
	struct vio_net_rss r = {.hash_types =
				    VIRTIO_NET_RSS_HASH_TYPE_TCPv4 | VIRTIO_NET_RSS_HASH_TYPE_IPv4,
				.key = test_key,
				.key_len = 40,
				.table = table,
				.table_len = 1};
	struct vio_net_frame f;

	assert_int_equal(t->net.hdr_len, 20);
	/* Before any configuration, any report but NONE is one never asked for. */
	inject(t->m, 60, 1)->hash_report = VIRTIO_NET_HASH_REPORT_IPv4;
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv(&t->net, &f), VIO_EAGAIN);
	assert_int_equal(t->net.stats.rx_errors, 1);

	assert_int_equal(vio_net_set_rss(&t->net, &r), 0);
	struct inj *i = inject(t->m, 60, 2);
	i->hash_report = VIRTIO_NET_HASH_REPORT_TCPv4;
	i->hash_value = 0xdeadbeef;
	inject(t->m, 60, 3)->hash_report = VIRTIO_NET_HASH_REPORT_UDPv4;	/* not asked for */
	inject(t->m, 60, 4)->hash_report = VIRTIO_NET_HASH_REPORT_UDPv6_EX + 1; /* no such */
	i = inject(t->m, 60, 5);
	i->hash_report = VIRTIO_NET_HASH_REPORT_IPv4;
	i->hash_value = 0x01020304;
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv(&t->net, &f), 0);
	assert_true(is_pattern(f.seg[0].data, 60, 2));
	assert_int_equal(f.hash_report, VIRTIO_NET_HASH_REPORT_TCPv4);
	assert_int_equal(f.hash_value, 0xdeadbeef);
	assert_int_equal(f.pair, 0);
	vio_net_frame_release(&t->net, &f);
	assert_int_equal(vio_net_recv(&t->net, &f), 0);
	assert_true(is_pattern(f.seg[0].data, 60, 5));
	assert_int_equal(f.hash_report, VIRTIO_NET_HASH_REPORT_IPv4);
	assert_int_equal(f.hash_value, 0x01020304);
	vio_net_frame_release(&t->net, &f);
	assert_int_equal(vio_net_recv(&t->net, &f), VIO_EAGAIN);
	assert_int_equal(t->net.stats.rx_errors, 3);
	assert_int_equal(t->net.stats.rx_frames, 2);

	/* Types asked for before still count after a new configuration (frames in flight). */
	r.hash_types = VIRTIO_NET_RSS_HASH_TYPE_UDPv4;
	assert_int_equal(vio_net_set_rss(&t->net, &r), 0);
	inject(t->m, 60, 6)->hash_report = VIRTIO_NET_HASH_REPORT_TCPv4;
	inject(t->m, 60, 7)->hash_report = VIRTIO_NET_HASH_REPORT_UDPv4;
	fake_env_run(t->e);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(vio_net_recv(&t->net, &f), 0);
		vio_net_frame_release(&t->net, &f);
	}
	assert_int_equal(t->net.stats.rx_errors, 3);
	assert_int_equal(t->net.stats.rx_pair_frames[0], 4);
	t_free(t);
}

static void test_a_hashed_frame_spans_small_buffers_behind_its_20_byte_header(void **state)
{
	(void)state;
	uint64_t features = (RSS_FEATURES & ~BIT(VIRTIO_NET_F_RSS)) | BIT(VIRTIO_NET_F_MRG_RXBUF);
	struct virtio_net_config c = rss_config(1);
	struct t *t =
	    t_alloc(fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 3, QSIZE), features);
	struct vio_net_opts o;
	struct vio_net_rss r = {
	    .hash_types = VIRTIO_NET_RSS_HASH_TYPE_UDPv6, .key = test_key, .key_len = 40};
	struct vio_net_frame f;

	default_opts(t, &o);
	o.hash_report = true;
	o.rx_buf_size = 500; /* 512: a 1514-byte frame and its header take 3 */
	t_start(t, &o);
	t->m->hdr_len = 20;
	assert_int_equal(t->net.hdr_len, 20);
	/* The largest frame (1518, with a VLAN tag) behind 20 bytes needs 4 (behind 12, 3). */
	assert_int_equal(t->net.net_rx_max_bufs, 4);
	assert_int_equal(vio_net_set_rss(&t->net, &r), 0);
	struct inj *i = inject(t->m, 1514, 9);
	i->hash_report = VIRTIO_NET_HASH_REPORT_UDPv6;
	i->hash_value = 0xcafef00d;
	fake_env_run(t->e);
	assert_int_equal(vio_net_recv(&t->net, &f), 0);
	assert_int_equal(f.len, 1514);
	assert_int_equal(f.nsegs, 3);
	assert_int_equal(f.seg[0].len, 512 - 20);
	uint32_t at = 0;
	for (uint16_t k = 0; k < f.nsegs; at += f.seg[k].len, k++)
		assert_true(is_pattern(f.seg[k].data, f.seg[k].len, (uint8_t)(9 + at)));
	assert_int_equal(f.hash_report, VIRTIO_NET_HASH_REPORT_UDPv6);
	assert_int_equal(f.hash_value, 0xcafef00d);
	vio_net_frame_release(&t->net, &f);
	t_free(t);
}

static void test_frames_are_counted_by_the_pair_they_came_in_and_went_out_on(void **state)
{
	(void)state;
	struct t *t = t_new_rss(RSS_FEATURES, 3, true, false, NULL);
	struct vio_net_frame f;
	uint8_t frame[60] = {0};

	deliver_on(t, 4, 60, 1); /* receiveq3 */
	deliver_on(t, 4, 60, 2);
	inject(t->m, 60, 3); /* receiveq1 */
	fake_env_run(t->e);
	unsigned on_pair[3] = {0};
	while (vio_net_recv(&t->net, &f) == 0) {
		on_pair[f.pair]++;
		assert_int_equal(f.seg[0].data[0], f.pair == 2 ? on_pair[2] : 3);
		vio_net_frame_release(&t->net, &f);
	}
	assert_int_equal(on_pair[0], 1);
	assert_int_equal(on_pair[1], 0);
	assert_int_equal(on_pair[2], 2);
	assert_int_equal(t->net.stats.rx_pair_frames[0], 1);
	assert_int_equal(t->net.stats.rx_pair_frames[1], 0);
	assert_int_equal(t->net.stats.rx_pair_frames[2], 2);

	t->m->tx_hold = true;
	struct vio_net_tx_opts to = {.flow = 4}; /* pair 1 */
	assert_int_equal(vio_net_send(&t->net, frame, sizeof(frame), &to), 0);
	assert_int_equal(t->net.stats.tx_pair_frames[1], 1);
	assert_int_equal(t->net.stats.tx_pair_frames[0], 0);
	t_free(t);
}

/* --- gratuitous announcements ---------------------------------------------------------------- */

static void on_announce(struct vio_net *net, void *arg)
{
	struct t *t = arg;
	uint8_t frame[60] = {0};
	t->announces++;
	assert_int_equal(vio_net_send(net, frame, sizeof(frame), NULL), 0);
}

static void test_announce_request_runs_on_announce_then_acks(void **state)
{
	(void)state;
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 1, 2, 3},
				      .status = VIRTIO_NET_S_LINK_UP};
	uint64_t features =
	    BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_GUEST_ANNOUNCE);
	struct vio_net_opts o;
	struct t tmp = {0};

	/* Without on_announce the driver leaves the feature to QEMU's own RARP frames. */
	struct t *t = t_new_cfg(features, &c, true, NULL);
	assert_int_equal(negotiated(t) & BIT(VIRTIO_NET_F_GUEST_ANNOUNCE), 0);
	t_free(t);

	default_opts(&tmp, &o);
	o.on_announce = on_announce;
	t = t_new_cfg(features, &c, true, &o);
	t->net.net_opts.arg = t;
	assert_int_equal(negotiated(t) & BIT(VIRTIO_NET_F_GUEST_ANNOUNCE),
			 BIT(VIRTIO_NET_F_GUEST_ANNOUNCE));
	uint16_t status = VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE;
	fake_env_set_config(t->e, offsetof(struct virtio_net_config, status), &status, 2);
	fake_env_config_irq(t->e);
	assert_int_equal(t->announces, 0); /* not in the interrupt: in the owner's poll */
	vio_net_poll(&t->net);
	fake_env_run(t->e);
	assert_int_equal(t->announces, 1);
	assert_int_equal(t->net.stats.announces, 1);
	assert_int_equal(t->m->tx_seen, 1);
	assert_int_equal(t->m->ctrl_class, VIRTIO_NET_CTRL_ANNOUNCE);
	assert_int_equal(t->m->ctrl_cmd, VIRTIO_NET_CTRL_ANNOUNCE_ACK);
	assert_int_equal(t->m->ctrl_len, 0);
	vio_net_poll(&t->net);
	assert_int_equal(t->announces, 1); /* once per request */
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_send_then_receive_round_trip),
	    cmocka_unit_test(test_recv_hands_out_frame_in_place_until_released),
	    cmocka_unit_test(
		test_released_buffers_reach_the_device_with_one_notification_per_batch),
	    cmocka_unit_test(test_tx_ring_full_is_enospc_then_recovers_after_reclaim),
	    cmocka_unit_test(test_send_sg_sends_without_copy_and_returns_cookie_once),
	    cmocka_unit_test(test_send_sg_needs_cookie_callback_and_sane_segments),
	    cmocka_unit_test(test_fini_returns_posted_sg_cookies_and_leaks_no_dma),
	    cmocka_unit_test(test_send_rejects_runt_and_oversized_frames),
	    cmocka_unit_test(test_rx_ring_stays_full_after_many_frames),
	    cmocka_unit_test(test_mrg_rxbuf_frame_spanning_three_buffers_is_handed_out_in_order),
	    cmocka_unit_test(test_bad_frames_are_counted_dropped_and_the_next_good_frame_arrives),
	    cmocka_unit_test(
		test_caller_holding_too_many_buffers_gets_enospc_and_frames_are_dropped),
	    cmocka_unit_test(test_recv_copy_too_small_drops_the_frame),
	    cmocka_unit_test(test_legacy_device_without_mrg_rxbuf_uses_10_byte_header),
	    cmocka_unit_test(test_legacy_device_with_mrg_rxbuf_uses_12_byte_header),
	    cmocka_unit_test(test_modern_device_uses_12_byte_header_even_without_mrg_rxbuf),
	    cmocka_unit_test(test_mac_comes_from_config_when_offered),
	    cmocka_unit_test(test_random_mac_is_locally_administered_unicast),
	    cmocka_unit_test(test_mtu_comes_from_config_and_one_below_68_is_refused),
	    cmocka_unit_test(test_init_refuses_a_device_that_is_not_a_network_device),
	    cmocka_unit_test(test_init_out_of_dma_memory_fails_cleanly),
	    cmocka_unit_test(test_fini_after_failed_init_and_twice_is_harmless),
	    cmocka_unit_test(test_link_change_via_config_interrupt_calls_the_callback),
	    cmocka_unit_test(test_link_is_up_without_the_status_feature),
	    cmocka_unit_test(test_polling_mode_sends_receives_and_notices_link_changes),
	    cmocka_unit_test(test_interrupt_mode_calls_irq_cb_for_rx_and_tx),
	    cmocka_unit_test(test_promisc_and_allmulti_reach_the_ctrl_queue),
	    cmocka_unit_test(test_mac_table_command_carries_both_tables),
	    cmocka_unit_test(test_set_mac_command_changes_the_address),
	    cmocka_unit_test(test_ctrl_error_answer_is_eio),
	    cmocka_unit_test(test_ctrl_commands_not_negotiated_are_enotsup),
	    cmocka_unit_test(test_ctrl_device_never_answering_times_out),
	    cmocka_unit_test(test_timeout_option_shortens_a_ctrl_command),
	    cmocka_unit_test(test_guest_csum_flags_are_passed_up),
	    cmocka_unit_test(test_csum_flags_are_not_reported_without_guest_csum),
	    cmocka_unit_test(test_tx_checksum_offload_fills_the_header),
	    cmocka_unit_test(test_tx_checksum_offload_without_the_feature_is_enotsup),
	    cmocka_unit_test(test_broken_rx_queue_is_reported_as_eio),
	    cmocka_unit_test(test_device_rewriting_dma_cannot_forge_a_tx_completion),
	    cmocka_unit_test(test_no_driver_buffer_needs_more_than_one_page_of_contiguous_dma),
	    cmocka_unit_test(test_buffer_counts_are_options_with_a_small_default),
	    cmocka_unit_test(
		test_legacy_device_with_large_queues_posts_a_bounded_number_of_buffers),
	    cmocka_unit_test(
		test_device_completing_every_reposted_buffer_at_once_cannot_livelock_recv),
	    cmocka_unit_test(test_device_completing_every_send_at_once_cannot_livelock_tx_reap),
	    cmocka_unit_test(
		test_header_with_bad_fields_is_dropped_counted_and_its_buffers_reposted),
	    cmocka_unit_test(test_needs_csum_without_guest_csum_is_a_bad_frame),
	    cmocka_unit_test(test_fini_after_an_unconfirmed_reset_keeps_dma_and_returns_no_cookie),
	    cmocka_unit_test(test_ctrl_timeout_on_a_device_that_needs_reset_says_so),
	    cmocka_unit_test(test_broken_queue_on_a_device_that_needs_reset_says_so),
	    cmocka_unit_test(test_polling_notices_a_device_that_needs_reset),
	    cmocka_unit_test(test_polling_with_interrupts_on_notices_a_device_that_needs_reset),
	    cmocka_unit_test(test_multicast_or_zero_mac_from_config_is_refused_for_a_random_one),
	    cmocka_unit_test(test_set_mac_refuses_a_multicast_or_zero_address),
	    cmocka_unit_test(test_ctrl_command_spins_at_most_a_millisecond_by_default),
	    cmocka_unit_test(test_a_late_ctrl_answer_is_collected_and_a_late_set_mac_takes_effect),
	    cmocka_unit_test(test_send_sg_from_on_tx_done_inside_a_send_keeps_both_frames_intact),
	    cmocka_unit_test(test_a_command_refused_while_one_is_pending_leaves_its_data_alone),
	    cmocka_unit_test(test_the_fewest_rx_buffers_still_take_the_largest_frame),
	    cmocka_unit_test(test_receive_offloads_are_taken_only_with_their_prerequisites),
	    cmocka_unit_test(test_a_64k_coalesced_tcp_frame_arrives_over_many_buffers_in_order),
	    cmocka_unit_test(test_gso_header_fields_the_device_gets_wrong_drop_the_frame),
	    cmocka_unit_test(test_gso_frame_without_receive_offloads_is_a_bad_frame),
	    cmocka_unit_test(test_num_buffers_above_what_the_largest_frame_takes_is_a_bad_frame),
	    cmocka_unit_test(test_rx_buffer_size_is_an_option_and_frames_span_small_buffers),
	    cmocka_unit_test(test_tx_tso_sends_a_64k_frame_over_pages_with_the_gso_header),
	    cmocka_unit_test(test_tx_tso_with_inconsistent_fields_is_einval_and_nothing_is_posted),
	    cmocka_unit_test(test_tx_tso_without_its_feature_is_enotsup),
	    cmocka_unit_test(
		test_multiqueue_sets_the_pairs_sends_by_flow_and_receives_from_every_pair),
	    cmocka_unit_test(test_one_pair_asked_for_leaves_mq_unnegotiated),
	    cmocka_unit_test(test_a_device_refusing_the_pairs_leaves_one),
	    cmocka_unit_test(test_bad_max_virtqueue_pairs_fails_init),
	    cmocka_unit_test(test_rss_and_hash_report_are_off_unless_asked_for),
	    cmocka_unit_test(test_hash_report_makes_the_header_20_bytes_both_ways),
	    cmocka_unit_test(test_hash_report_alone_sends_hash_config),
	    cmocka_unit_test(test_set_rss_sends_the_table_the_key_and_the_pairs_in_use),
	    cmocka_unit_test(test_set_rss_refuses_bad_configurations_before_the_device_sees_them),
	    cmocka_unit_test(test_a_device_table_longer_than_ours_is_clamped),
	    cmocka_unit_test(test_a_refused_rss_config_is_eio_and_changes_nothing),
	    cmocka_unit_test(test_received_hash_comes_up_and_a_report_never_asked_for_is_dropped),
	    cmocka_unit_test(test_a_hashed_frame_spans_small_buffers_behind_its_20_byte_header),
	    cmocka_unit_test(test_frames_are_counted_by_the_pair_they_came_in_and_went_out_on),
	    cmocka_unit_test(test_announce_request_runs_on_announce_then_acks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
