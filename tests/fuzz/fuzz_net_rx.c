/*
 * libFuzzer target: the fuzzer plays a hostile virtio-net device against the driver's
 * receive path (src/drivers/virtio_net.c), on the whole-device fake of the host tests.
 *
 * The first bytes pick the features (MRG_RXBUF, GUEST_CSUM, an MTU that makes RX buffers
 * chains of pages, the receive segmentation offloads GUEST_TSO4/6, GUEST_ECN, GUEST_UFO,
 * HASH_REPORT with its 20-byte header and the hash types asked for),
 * how many RX buffers the driver posts, their size and how many it lets the caller hold.
 * Every following op byte either lets the "device" act (fill a buffer it took with a header
 * and a frame, every field and the used length from the input; push any used id and length;
 * publish; rewrite a buffer it holds) or makes the owner act (vio_net_recv, keeping the frame
 * or not; give a frame back; vio_net_recv_copy; vio_net_poll).
 *
 * After every op the harness checks what must hold whatever the device did:
 *   - a frame handed up is 14 .. max_frame bytes, made of 1 .. VIO_NET_RX_MAX_SEGS segments
 *     whose lengths add up, each inside one of the driver's own DMA pages, none a buffer the
 *     caller already holds; a PARTIAL checksum lies inside the frame; a GSO frame (up to
 *     max_rx_frame) has a negotiated type, a gso_size and a PARTIAL checksum; a hash report
 *     is NONE (hash 0) or a type asked for;
 *   - the caller never holds more than rx_hold_max buffers, or one frame of more when it held
 *     none before;
 *   - one vio_net_recv takes at most one look at the ring per buffer posted (the device here
 *     completes nothing while the driver runs, so every call returns);
 *   - after the run, fini leaves no DMA or private memory behind.
 * ASan and UBSan catch any access outside what was allocated, and the library is built with
 * VIO_DEBUG: its own VIO_ASSERTs abort the run if device input breaks its bookkeeping.
 *
 *   make build/fuzz/fuzz_net_rx && build/fuzz/fuzz_net_rx -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vio/err.h>
#include <vio/net.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define QSIZE	 32
#define DEV_HOLD 32 /* buffers the device took and has not completed */
#define DEV_SEGS 4  /* segments of one: a chain of pages at most */
#define MAX_HELD 16 /* frames the owner keeps at once */
#define PAGE	 4096u

/* One buffer the device took. */
struct devbuf {
	uint16_t head;
	unsigned nseg;
	uint8_t *mem[DEV_SEGS];
	uint32_t len[DEV_SEGS];
};

struct state {
	struct fake_env *e;
	struct vio_net net;
	struct devbuf dev[DEV_HOLD]; /* what the device popped, oldest first */
	unsigned ndev;
	struct vio_net_frame held[MAX_HELD];
	unsigned nheld;
	const uint8_t *p, *end;
	uint32_t hash_types; /* asked for with HASH_REPORT */
};

FUZZ_INPUT_READERS(struct state)

static void *ptr(uint64_t phys)
{
	return (void *)(uintptr_t)phys; /* fake_port: physical == virtual */
}

/* The device takes every buffer the driver published. */
static void device_pop(struct state *s)
{
	static struct fake_req r;

	while (s->ndev < DEV_HOLD && fake_vring_pop(&s->e->ring[0], &r)) {
		struct devbuf *b = &s->dev[s->ndev++];
		check(r.n_out == 0 && r.n_in >= 1 && r.n_in <= DEV_SEGS);
		b->head = r.head;
		b->nseg = r.n_in;
		for (unsigned k = 0; k < r.n_in; k++) {
			b->mem[k] = ptr(r.seg[k].addr);
			b->len[k] = r.seg[k].len;
		}
	}
}

static struct devbuf device_take(struct state *s, unsigned k)
{
	struct devbuf b = s->dev[k];

	memmove(&s->dev[k], &s->dev[k + 1], (s->ndev - k - 1) * sizeof(b));
	s->ndev--;
	return b;
}

/* Write n bytes (the header first, then input) into the buffer; returns bytes written. */
static uint32_t device_write(struct state *s, const struct devbuf *b, const uint8_t *hdr,
			     uint32_t hlen, uint32_t n)
{
	uint32_t done = 0;

	for (unsigned k = 0; k < b->nseg && done < n; k++)
		for (uint32_t i = 0; i < b->len[k] && done < n; i++, done++)
			b->mem[k][i] = done < hlen ? hdr[done] : byte(s);
	return done;
}

/* Mostly none, often a real GSO type (ECN or not), now and then any byte. */
static uint8_t gso_type(struct state *s)
{
	static const uint8_t types[] = {
	    VIRTIO_NET_HDR_GSO_TCPV4,
	    VIRTIO_NET_HDR_GSO_TCPV6,
	    VIRTIO_NET_HDR_GSO_UDP,
	    VIRTIO_NET_HDR_GSO_UDP_L4,
	    VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
	    VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN,
	    VIRTIO_NET_HDR_GSO_UDP | VIRTIO_NET_HDR_GSO_ECN,
	    VIRTIO_NET_HDR_GSO_ECN,
	};
	uint8_t how = byte(s);

	if (how & 3)
		return VIRTIO_NET_HDR_GSO_NONE;
	if (how & 4)
		return types[byte(s) % sizeof(types)];
	return byte(s);
}

/* Complete one buffer the device holds with a header and frame of the input's choosing. */
static void op_fill(struct state *s)
{
	device_pop(s);
	if (!s->ndev)
		return;
	struct devbuf r = device_take(s, byte(s) % s->ndev);
	/* Mostly plausible values, now and then anything at all. */
	struct virtio_net_hdr_v1_hash hh = {0};
	struct virtio_net_hdr h = {0};
	h.flags = byte(s) & 7 ? byte(s) & 3 : byte(s);
	h.gso_type = gso_type(s);
	h.gso_size = byte(s) & 7 ? 1448 : half(s);
	h.hdr_len = byte(s) & 3 ? 0 : half(s);
	h.csum_start = half(s);
	h.csum_offset = byte(s);
	h.num_buffers = byte(s) % 4 ? (uint16_t)(1 + byte(s) % 4) : half(s);
	if (s->net.hdr_len == VIRTIO_NET_HDR_HASH_SIZE) {
		hh.hash_report = byte(s) & 7 ? byte(s) % 10 : half(s);
		hh.hash_value = half(s);
	}
	hh.hdr = h;
	uint8_t how = byte(s);
	uint32_t n = half(s) % (PAGE + 1);	      /* a buffer holds at most a page */
	uint32_t hlen = how & 1 ? 0 : s->net.hdr_len; /* a continuation has no header */
	uint32_t written = device_write(s, &r, (const uint8_t *)&hh, hlen, hlen + n);
	uint32_t len = written;
	if (how & 2) {
		len = half(s);
		if (how & 4)
			len |= (uint32_t)byte(s) << 16;
	}

	fake_vring_push(&s->e->ring[0], r.head, len);
	if (!(how & 8))
		fake_vring_publish(&s->e->ring[0]);
}

/* A used element with any id and length, not published. */
static void op_raw_used(struct state *s)
{
	uint16_t id = half(s);
	uint16_t len = half(s);
	fake_vring_push(&s->e->ring[0], byte(s) & 1 ? id : id % QSIZE, len);
}

/* Model B: the device rewrites a buffer it holds (no completion). */
static void op_scribble(struct state *s)
{
	device_pop(s);
	if (!s->ndev)
		return;
	const struct devbuf *b = &s->dev[byte(s) % s->ndev];
	uint32_t at = byte(s) % b->len[0];
	b->mem[0][at] = byte(s);
}

static bool in_driver_pages(const struct vio_net *net, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < net->net_npages; i++) {
		const uint8_t *page = net->net_pages[i];
		if (p >= page && p + len <= page + PAGE)
			return true;
	}
	return false;
}

static bool held_by_caller(const struct state *s, const struct vio_net_rxbuf *buf)
{
	for (unsigned i = 0; i < s->nheld; i++)
		for (unsigned k = 0; k < s->held[i].nsegs; k++)
			if (s->held[i].seg[k].buf == buf)
				return true;
	return false;
}

static void check_frame(const struct state *s, const struct vio_net_frame *f)
{
	uint32_t sum = 0;

	check(f->len >= VIO_NET_ETH_HLEN && f->len <= s->net.max_rx_frame);
	if (f->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
		check(f->len <= s->net.max_frame && f->gso_size == 0);
	} else {
		unsigned bit = VIRTIO_NET_F_GUEST_UFO;
		if ((f->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4)
			bit = VIRTIO_NET_F_GUEST_TSO4;
		else if ((f->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV6)
			bit = VIRTIO_NET_F_GUEST_TSO6;
		else
			check(f->gso_type == VIRTIO_NET_HDR_GSO_UDP);
		check(vio_dev_has_feature(s->net.dev, bit));
		check(!(f->gso_type & VIRTIO_NET_HDR_GSO_ECN) ||
		      vio_dev_has_feature(s->net.dev, VIRTIO_NET_F_GUEST_ECN));
		check(f->gso_size != 0 && (f->flags & VIO_NET_RX_CSUM_PARTIAL));
	}
	check(f->nsegs >= 1 && f->nsegs <= VIO_NET_RX_MAX_SEGS);
	for (unsigned k = 0; k < f->nsegs; k++) {
		check(in_driver_pages(&s->net, f->seg[k].data, f->seg[k].len));
		check(!held_by_caller(s, f->seg[k].buf));
		for (unsigned j = 0; j < k; j++)
			check(f->seg[j].buf != f->seg[k].buf);
		sum += f->seg[k].len;
	}
	check(sum == f->len);
	if (f->flags & VIO_NET_RX_CSUM_PARTIAL)
		check((uint32_t)f->csum_start + f->csum_offset + 2 <= f->len);
	check(!(f->flags & ~(VIO_NET_RX_CSUM_VALID | VIO_NET_RX_CSUM_PARTIAL)));
	if (f->hash_report == VIRTIO_NET_HASH_REPORT_NONE)
		check(f->hash_value == 0);
	else
		check(f->hash_report <= VIRTIO_NET_HASH_REPORT_UDPv6_EX &&
		      (s->hash_types >> (f->hash_report - 1) & 1));
}

/* The device's controlq: every command is answered VIRTIO_NET_OK (the hash configuration). */
static void ctrl_answer_ok(struct fake_env *e)
{
	static struct fake_req r;

	while (fake_vring_pop(&e->ring[2], &r)) {
		*(uint8_t *)ptr(r.seg[r.n_out].addr) = VIRTIO_NET_OK;
		fake_vring_complete(&e->ring[2], r.head, 1);
	}
}

static void op_recv(struct state *s)
{
	struct vio_net_frame f;
	uint64_t errors = s->net.stats.rx_errors, drops = s->net.stats.rx_drops;
	int err = vio_net_recv(&s->net, &f);

	check(err == 0 || err == VIO_EAGAIN || err == VIO_ENOSPC || err == VIO_EIO ||
	      err == VIO_ENEEDRESET);
	/* Bounded work: one look per posted chain, and each look drops at most one frame. */
	check(s->net.stats.rx_errors + s->net.stats.rx_drops - errors - drops <=
	      s->net.net_nrx / s->net.net_rx_chain);
	if (err)
		return;
	check_frame(s, &f);
	if (s->nheld < MAX_HELD && byte(s) & 1)
		s->held[s->nheld++] = f;
	else
		vio_net_frame_release(&s->net, &f);
	/* At most rx_hold_max buffers, or one frame of more when the caller held none. */
	check(s->net.net_rx_held <= s->net.net_rx_hold_max || s->net.net_rx_held == f.nsegs);
}

static void op_release(struct state *s)
{
	if (!s->nheld)
		return;
	unsigned k = byte(s) % s->nheld;
	vio_net_frame_release(&s->net, &s->held[k]);
	s->held[k] = s->held[--s->nheld];
}

static void op_recv_copy(struct state *s)
{
	static uint8_t buf[10000];
	uint32_t size = half(s) % sizeof(buf);
	int n = vio_net_recv_copy(&s->net, buf, size, NULL);

	check(n < 0 || ((uint32_t)n <= size && (uint32_t)n >= VIO_NET_ETH_HLEN));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	struct state *s = &st;

	if (size < 4)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;

	uint8_t cfg = byte(s);
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 1, 2, 3}, .mtu = 1500};
	uint64_t features = VIRTIO_BIT(VIRTIO_NET_F_MAC);
	if (cfg & 1)
		features |= VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (cfg & 2)
		features |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
	if (cfg & 4) {
		features |= VIRTIO_BIT(VIRTIO_NET_F_MTU);
		c.mtu = (uint16_t)(68 + half(s) % 9000); /* above a page: chains without MRG */
	}
	if (cfg & 8)
		features |= VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC);
	if (cfg & 16)
		features |= VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
	if (cfg & 64)
		features |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
			    VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |
			    VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO);
	struct vio_net_opts o = {.tx_buffers = 2};
	o.rx_buffers = (uint16_t)(1 + byte(s) % 24); /* a 64 KiB frame takes 17 */
	uint8_t hold = byte(s);
	o.rx_hold_max = hold % 8;
	if (hold & 8) {
		features |= VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_HASH_REPORT);
		o.hash_report = true;
		c.rss_max_key_size = 40;
		c.supported_hash_types = VIRTIO_NET_RSS_HASH_TYPE_ALL;
	}
	if (cfg & 128)
		o.rx_buf_size = half(s) % (PAGE + 64);

	s->e = fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 3, QSIZE);
	if (cfg & 32)
		fake_env_no_irqs(s->e);
	check(vio_net_init(&s->net, &s->e->dev, &o) == 0);
	fake_env_rings(s->e);
	if (o.hash_report) {
		static const uint8_t key[40] = {1};
		struct vio_net_rss r = {.hash_types = half(s) & VIRTIO_NET_RSS_HASH_TYPE_ALL,
					.key = key,
					.key_len = 40};
		s->e->model = ctrl_answer_ok;
		check(vio_net_set_rss(&s->net, &r) == 0);
		s->e->model = NULL;
		s->hash_types = r.hash_types;
	}

	while (s->p < s->end) {
		switch (byte(s) % 10) {
		case 0:
		case 1:
		case 2:
			op_fill(s);
			break;
		case 3:
			op_raw_used(s);
			break;
		case 4:
			fake_vring_publish(&s->e->ring[0]);
			break;
		case 5:
			op_scribble(s);
			break;
		case 6:
		case 7:
			op_recv(s);
			break;
		case 8:
			op_release(s);
			break;
		case 9:
			if (byte(s) & 1)
				op_recv_copy(s);
			else
				vio_net_poll(&s->net);
			break;
		}
	}

	while (s->nheld)
		vio_net_frame_release(&s->net, &s->held[--s->nheld]);
	check(s->net.net_rx_held == 0);
	check(vio_net_fini(&s->net) == 0);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e); /* and no DMA memory left */
	return 0;
}
