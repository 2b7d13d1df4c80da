/*
 * libFuzzer target: the fuzzer plays a hostile virtio-net device against the driver's
 * control queue (src/drivers/virtio_net.c): how and when it answers a command.
 *
 * Op bytes make the owner run a command (promiscuous, all-multicast, a MAC filter table,
 * set_mac with an address from the input, good or not) or vio_net_poll, or let the device
 * answer the command it holds at once: with any ack byte, written or not, any used length,
 * its own id or another one. While a command waits, each look at the clock lets the device
 * act too, as the input says: nothing yet, or answer now; it may also set
 * DEVICE_NEEDS_RESET.
 *
 * After every op the harness checks what must hold whatever the device did:
 *   - a command returns one of its documented codes, and 0 only when the device wrote
 *     VIRTIO_NET_OK for it and completed it with its own id and a length of at least 1;
 *   - no command spins longer than its timeout (the fake clock ticks 1 us a look);
 *   - net->mac is always a station's address: the device's, or one set_mac asked for and
 *     the device acknowledged with VIRTIO_NET_OK;
 *   - after the run, fini leaves no DMA or private memory behind.
 * ASan, UBSan and VIO_DEBUG's VIO_ASSERTs catch the rest.
 *
 *   make build/fuzz/fuzz_net_ctrl && build/fuzz/fuzz_net_ctrl -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vio/err.h>
#include <vio/net.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define TIMEOUT_NS 20000 /* short, so that a silent device costs the fuzzer little */

struct state {
	struct fake_env *e;
	struct vio_net net;
	struct fake_req req; /* the command the device holds */
	bool holding;
	bool acked_ok;	      /* it answered the last command it completed with VIRTIO_NET_OK */
	uint8_t asked_mac[6]; /* the address of the last set_mac the device took */
	bool mac_asked;
	uint8_t ok_macs[16][6]; /* the last addresses the device acknowledged: net->mac may */
	unsigned n_ok_macs;	/* be one of them (all acknowledged: ok_macs[n % 16]) */
	const uint8_t *p, *end;
};

static struct state st;

FUZZ_INPUT_READERS(struct state)

static void *ptr(uint64_t phys)
{
	return (void *)(uintptr_t)phys; /* fake_port: physical == virtual */
}

/* The device takes the command the driver published, if any. */
static void device_pop(struct state *s)
{
	if (s->holding || !fake_vring_pop(&s->e->ring[2], &s->req))
		return;
	s->holding = true;
	/* Every command carries the class/command header; is it a MAC_ADDR_SET? */
	const uint8_t *h = ptr(s->req.seg[0].addr);
	s->mac_asked = s->req.n_out == 2 && s->req.seg[0].len == 2 && h[0] == VIRTIO_NET_CTRL_MAC &&
		       h[1] == VIRTIO_NET_CTRL_MAC_ADDR_SET && s->req.seg[1].len == 6;
	if (s->mac_asked)
		memcpy(s->asked_mac, ptr(s->req.seg[1].addr), 6);
}

/* Answer the command the device holds, every detail from the input. */
static void device_answer(struct state *s)
{
	device_pop(s);
	if (!s->holding)
		return;
	uint8_t how = byte(s), ack = how & 0x10 ? byte(s) : VIRTIO_NET_OK;
	uint32_t len = how & 0x20 ? byte(s) : 1;
	uint32_t id = how & 0x40 ? byte(s) : s->req.head;
	const struct fake_seg *a = &s->req.seg[s->req.n_out];

	if (!(how & 0x80))
		*(uint8_t *)ptr(a->addr) = ack;
	fake_vring_complete(&s->e->ring[2], id, len);
	s->holding = false;
	/* What the driver may take as a yes: its own id, the ack written, OK, a length. */
	s->acked_ok = id == s->req.head && !(how & 0x80) && ack == VIRTIO_NET_OK && len >= 1;
	if (s->acked_ok && s->mac_asked)
		memcpy(s->ok_macs[s->n_ok_macs++ % 16], s->asked_mac, 6);
}

/* Called whenever the driver looks at the clock: the device gets a turn. */
static void device_model(struct fake_env *e)
{
	struct state *s = &st;
	uint8_t b = byte(s);

	(void)e;
	if (b < 8)
		device_answer(s);
	else if (b == 8)
		s->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
}

static bool mac_is(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 6) == 0;
}

static void check_mac(const struct state *s, const uint8_t *device_mac)
{
	const uint8_t *m = s->net.mac;
	bool known = mac_is(m, device_mac);

	for (unsigned i = 0; i < s->n_ok_macs && i < 16; i++)
		known |= mac_is(m, s->ok_macs[i]);
	check(known);
	check(!(m[0] & 1));
}

static void op_command(struct state *s)
{
	static const uint8_t uc[2][6] = {{2, 1, 2, 3, 4, 5}, {2, 6, 7, 8, 9, 10}};
	uint8_t which = byte(s) % 4, mac[6];
	uint64_t before = s->e->fp.now;
	int err;

	for (int i = 0; i < 6; i++)
		mac[i] = byte(s);
	s->acked_ok = false;
	switch (which) {
	case 0:
		err = vio_net_set_promisc(&s->net, byte(s) & 1);
		break;
	case 1:
		err = vio_net_set_allmulti(&s->net, byte(s) & 1);
		break;
	case 2:
		err = vio_net_set_mac_filter(&s->net, uc, byte(s) % 3, uc, byte(s) % 3);
		break;
	default:
		err = vio_net_set_mac(&s->net, mac);
		break;
	}
	check(err == 0 || err == VIO_EIO || err == VIO_ETIMEDOUT || err == VIO_EAGAIN ||
	      err == VIO_ENEEDRESET || err == VIO_EINVAL);
	check(err != 0 || s->acked_ok);
	check(err != 0 || which != 3 || mac_is(s->net.mac, mac));
	/* One look at the clock per turn of the wait, and a few around it. */
	check(s->e->fp.now - before <= TIMEOUT_NS + 5000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state *s = &st;
	struct virtio_net_config c = {.mac = {0x52, 0x54, 0, 1, 2, 3}};

	if (size < 1)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;

	uint8_t cfg = byte(s);
	uint64_t features = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
			    VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
			    VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
	if (cfg & 1)
		features |= VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC);
	if (cfg & 2)
		features |= VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
	struct vio_net_opts o = {.rx_buffers = 2, .tx_buffers = 2, .timeout_ns = TIMEOUT_NS};

	s->e = fake_env_new(VIRTIO_ID_NET, features, &c, sizeof(c), 3, 8);
	if (cfg & 4)
		fake_env_no_irqs(s->e);
	check(vio_net_init(&s->net, &s->e->dev, &o) == 0);
	fake_env_rings(s->e);
	s->e->model = device_model;

	while (s->p < s->end) {
		switch (byte(s) % 4) {
		case 0:
		case 1:
			op_command(s);
			break;
		case 2:
			device_answer(s);
			break;
		case 3:
			check(vio_net_poll(&s->net) <= 1);
			break;
		}
		check_mac(s, c.mac);
	}

	s->e->model = NULL;
	s->e->vd.status &= (uint8_t)~VIRTIO_CONFIG_S_NEEDS_RESET;
	check(vio_net_fini(&s->net) == 0);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e); /* and no DMA memory left */
	return 0;
}
