/*
 * Unit tests for the virtio-console driver (src/drivers/virtio_console.c) against a whole fake
 * console device (fake_env.h) whose model behaves like QEMU's virtio-serial: it answers
 * DEVICE_READY with DEVICE_ADD per port, PORT_READY with CONSOLE_PORT / PORT_NAME /
 * PORT_OPEN, keeps what the guest writes per port (echoing it back when asked), and feeds
 * the guest what the test queues for it, as fast or as slowly as the test says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/console.h>
#include <vio/err.h>

#include "fake_env.h"

#define F(bit)	    (1ull << (bit))
#define HOSTQ	    (4u << 20) /* bytes each direction of each host port can hold */
#define MAX_SENT    4096
#define MAX_PENDING 64

struct hostport {
	bool exists; /* the device has this port and announces it on DEVICE_READY */
	bool console;
	const char *name;
	bool connected;	  /* something on the host has the port open */
	bool echo;	  /* whatever the guest writes comes straight back */
	bool guest_ready; /* the guest answered PORT_READY 1 */
	bool guest_open;  /* the guest sent PORT_OPEN 1 */
	uint8_t *in;	  /* host -> guest bytes, [in_head, in_tail) still to deliver */
	size_t in_head, in_tail;
	uint8_t *out; /* guest -> host bytes received */
	size_t out_len;
};

struct pending_ctrl {
	uint8_t data[512];
	uint32_t len;	/* bytes the device writes (cut to the buffer) */
	uint32_t claim; /* used len it reports; 0: the bytes written */
};

struct cmodel {
	struct hostport hp[VIO_CONSOLE_MAX_PORTS];
	bool irqs;		 /* deliver interrupts (else the driver must poll) */
	bool handshake;		 /* answer DEVICE_READY and PORT_READY like QEMU */
	int tx_rate;		 /* transmit buffers the host takes per time slice; < 0: all */
	int rx_rate;		 /* receive buffers the host fills per time slice; < 0: all */
	uint32_t rx_chunk;	 /* most bytes per receive buffer; 0: as many as fit */
	uint32_t rx_claim_extra; /* next receive completion claims this many more bytes */
	uint64_t tx_period_ns;	 /* > 0: the host takes one transmit buffer per period */
	uint64_t tx_next_ns;
	uint32_t seed;

	struct virtio_console_control sent[MAX_SENT]; /* control messages from the guest */
	int nsent;
	struct pending_ctrl pending[MAX_PENDING];
	int npending;
	struct fake_req req;
};

struct t {
	struct fake_env *e;
	struct cmodel m;
	struct vio_console con;
	uint64_t timeout_ns;  /* vio_console_opts.timeout_ns for t_init */
	uint64_t deadline_ns; /* ... deadline_ns */
	bool count_waits;     /* ... wait: count_wait, recording into waits */
	struct {
		unsigned calls;
		uint64_t last, longest;
	} waits;
	struct {
		uint32_t port;
		enum vio_console_event ev;
	} events[256];
	int nevents;
};

static uint32_t rnd(struct cmodel *m)
{
	m->seed = m->seed * 1103515245u + 12345u;
	return (m->seed >> 8) & 0xffffff;
}

static bool ring_ok(struct fake_env *e, unsigned q)
{
	return (int)q < e->nrings && e->ring[q].vq;
}

/* --- the device model ----------------------------------------------------------------------- */

static void dev_send_raw(struct cmodel *m, const void *data, uint32_t len, uint32_t claim)
{
	assert_true(m->npending < MAX_PENDING && len <= sizeof(m->pending[0].data));
	struct pending_ctrl *p = &m->pending[m->npending++];
	memcpy(p->data, data, len);
	p->len = len;
	p->claim = claim;
}

static void dev_send(struct cmodel *m, uint32_t id, uint16_t event, uint16_t value,
		     const void *payload, uint32_t plen)
{
	uint8_t buf[512];
	struct virtio_console_control c = {id, event, value};

	memcpy(buf, &c, sizeof(c));
	if (plen)
		memcpy(buf + sizeof(c), payload, plen);
	dev_send_raw(m, buf, (uint32_t)sizeof(c) + plen, 0);
}

static void dev_announce_details(struct cmodel *m, uint32_t id)
{
	struct hostport *hp = &m->hp[id];

	if (hp->console)
		dev_send(m, id, VIRTIO_CONSOLE_CONSOLE_PORT, 1, NULL, 0);
	if (hp->name)
		dev_send(m, id, VIRTIO_CONSOLE_PORT_NAME, 1, hp->name, (uint32_t)strlen(hp->name));
	if (hp->connected)
		dev_send(m, id, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0);
}

static void model_ctrl_tx(struct fake_env *e, struct cmodel *m)
{
	struct fake_vring *fv = &e->ring[VIRTIO_CONSOLE_Q_CTRL_TX];
	struct virtio_console_control c;

	while (fake_vring_pop(fv, &m->req)) {
		assert_int_equal(m->req.n_in, 0);
		assert_int_equal(fake_vring_gather(&m->req, &c, sizeof(c)), sizeof(c));
		assert_true(m->nsent < MAX_SENT);
		m->sent[m->nsent++] = c;
		fake_vring_complete(fv, m->req.head, 0);
		if (!m->handshake)
			continue;
		if (c.event == VIRTIO_CONSOLE_DEVICE_READY) {
			for (uint32_t id = 0; id < VIO_CONSOLE_MAX_PORTS; id++)
				if (m->hp[id].exists)
					dev_send(m, id, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL, 0);
		} else if (c.event == VIRTIO_CONSOLE_PORT_READY && c.value == 1 &&
			   c.id < VIO_CONSOLE_MAX_PORTS) {
			m->hp[c.id].guest_ready = true;
			dev_announce_details(m, c.id);
		} else if (c.event == VIRTIO_CONSOLE_PORT_OPEN && c.id < VIO_CONSOLE_MAX_PORTS) {
			m->hp[c.id].guest_open = c.value;
		}
	}
}

static void model_ctrl_rx(struct fake_env *e, struct cmodel *m)
{
	struct fake_vring *fv = &e->ring[VIRTIO_CONSOLE_Q_CTRL_RX];
	int done = 0;

	while (done < m->npending && fake_vring_pop(fv, &m->req)) {
		struct pending_ctrl *p = &m->pending[done++];
		uint32_t n = p->len < m->req.in_len ? p->len : m->req.in_len;
		memcpy((void *)(uintptr_t)m->req.seg[0].addr, p->data, n);
		fake_vring_complete(fv, m->req.head, p->claim ? p->claim : n);
	}
	memmove(m->pending, m->pending + done,
		(size_t)(m->npending - done) * sizeof(m->pending[0]));
	m->npending -= done;
}

static void model_port_tx(struct fake_env *e, struct cmodel *m, uint32_t id)
{
	struct fake_vring *fv = &e->ring[VIRTIO_CONSOLE_Q_TX(id)];
	struct hostport *hp = &m->hp[id];

	if (m->tx_period_ns) {
		if (e->fp.now < m->tx_next_ns)
			return;
		m->tx_next_ns = e->fp.now + m->tx_period_ns;
	}
	for (int k = 0; m->tx_rate < 0 || k < m->tx_rate; k++) {
		if (m->tx_period_ns && k == 1)
			break;
		/* An echoing host with a full inbox stops reading: back-pressure both ways. */
		if (hp->echo && HOSTQ - hp->in_tail < 4096)
			break;
		if (!fake_vring_pop(fv, &m->req))
			break;
		assert_int_equal(m->req.n_in, 0);
		uint32_t n = fake_vring_gather(&m->req, hp->out + hp->out_len, m->req.out_len);
		assert_int_equal(n, m->req.out_len);
		if (hp->echo) {
			memcpy(hp->in + hp->in_tail, hp->out + hp->out_len, n);
			hp->in_tail += n;
		}
		hp->out_len += n;
		fake_vring_complete(fv, m->req.head, 0);
	}
}

static void model_port_rx(struct fake_env *e, struct cmodel *m, uint32_t id)
{
	struct fake_vring *fv = &e->ring[VIRTIO_CONSOLE_Q_RX(id)];
	struct hostport *hp = &m->hp[id];

	/* QEMU holds host data back until the guest opened the port. */
	if (e->dev.features & F(VIRTIO_CONSOLE_F_MULTIPORT) && !hp->guest_open)
		return;
	for (int k = 0; m->rx_rate < 0 || k < m->rx_rate; k++) {
		if (hp->in_head == hp->in_tail || !fake_vring_pop(fv, &m->req))
			break;
		uint32_t n = m->req.in_len;
		uint32_t r = m->rx_chunk ? 1 + rnd(m) % m->rx_chunk : n;
		if (r < n)
			n = r;
		if (n > hp->in_tail - hp->in_head)
			n = (uint32_t)(hp->in_tail - hp->in_head);
		memcpy((void *)(uintptr_t)m->req.seg[0].addr, hp->in + hp->in_head, n);
		uint32_t claim = n + m->rx_claim_extra;
		if (m->rx_claim_extra) {
			m->rx_claim_extra =
			    0; /* the lie loses its bytes; the host sends them again */
		} else {
			hp->in_head += n;
		}
		fake_vring_complete(fv, m->req.head, claim);
	}
}

static void console_model(struct fake_env *e)
{
	struct cmodel *m = e->model_arg;

	if (e->nrings == 0) {
		if (!(e->vd.status & VIRTIO_CONFIG_S_DRIVER_OK))
			return;
		fake_env_rings(e);
		for (int q = 0; q < e->nrings; q++)
			e->ring[q].deliver_irqs = m->irqs;
	}
	if (ring_ok(e, VIRTIO_CONSOLE_Q_CTRL_TX)) {
		model_ctrl_tx(e, m);
		model_ctrl_rx(e, m);
	}
	for (uint32_t id = 0; id < VIO_CONSOLE_MAX_PORTS; id++) {
		if (!ring_ok(e, VIRTIO_CONSOLE_Q_TX(id)))
			continue;
		model_port_tx(e, m, id);
		model_port_rx(e, m, id);
	}
}

/* --- test scaffolding ------------------------------------------------------------------------ */

static void record_event(struct vio_console *con, uint32_t port, enum vio_console_event ev,
			 void *arg)
{
	struct t *t = arg;
	(void)con;
	if (t->nevents < 256) {
		t->events[t->nevents].port = port;
		t->events[t->nevents].ev = ev;
		t->nevents++;
	}
}

static int count_events(const struct t *t, uint32_t port, enum vio_console_event ev)
{
	int n = 0;
	for (int i = 0; i < t->nevents; i++)
		n += t->events[i].port == port && t->events[i].ev == ev;
	return n;
}

static int count_sent(const struct cmodel *m, uint32_t id, uint16_t event, uint16_t value)
{
	int n = 0;
	for (int i = 0; i < m->nsent; i++)
		n += m->sent[i].id == id && m->sent[i].event == event && m->sent[i].value == value;
	return n;
}

/*
 * A console device offering `features` with max_nr_ports `ports` and `nqueues` queues.
 * Host port 0 is a connected console; configure more in t->m.hp before t_init.
 */
static struct t *t_new(uint64_t features, uint32_t ports, int nqueues)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	struct virtio_console_config cfg = {.cols = 80, .rows = 25, .max_nr_ports = ports};
	t->e = fake_env_new(VIRTIO_ID_CONSOLE, features, &cfg, sizeof(cfg), nqueues, 64);
	t->e->model = console_model;
	t->e->model_arg = &t->m;
	t->m.irqs = true;
	t->m.handshake = true;
	t->m.tx_rate = -1;
	t->m.rx_rate = -1;
	t->m.seed = 12345;
	for (int i = 0; i < VIO_CONSOLE_MAX_PORTS; i++) {
		t->m.hp[i].in = malloc(HOSTQ);
		t->m.hp[i].out = malloc(HOSTQ);
	}
	t->m.hp[0] = (struct hostport){
	    .exists = true,
	    .console = true,
	    .connected = true,
	    .in = t->m.hp[0].in,
	    .out = t->m.hp[0].out,
	};
	return t;
}

static void count_wait(struct vio_console *con, void *arg)
{
	struct t *t = arg;
	(void)con;
	t->waits.calls++;
	if (t->e->fp.now - t->waits.last > t->waits.longest)
		t->waits.longest = t->e->fp.now - t->waits.last;
	t->waits.last = t->e->fp.now;
}

static void t_init(struct t *t)
{
	if (!t->m.irqs)
		fake_env_no_irqs(t->e);
	struct vio_console_opts opts = {.on_event = record_event,
					.arg = t,
					.timeout_ns = t->timeout_ns,
					.deadline_ns = t->deadline_ns,
					.wait = t->count_waits ? count_wait : NULL};
	assert_int_equal(vio_console_init(&t->con, &t->e->dev, &opts), 0);
	fake_env_run(t->e);
}

/* The usual device: MULTIPORT with port 0 a console and port 1 "org.vio.echo". */
static struct t *t_multiport_new(bool irqs)
{
	struct t *t = t_new(F(VIRTIO_CONSOLE_F_MULTIPORT), 3, 8);
	t->m.irqs = irqs;
	t->m.hp[1].exists = true;
	t->m.hp[1].name = "org.vio.echo";
	t->m.hp[1].connected = true;
	t->m.hp[1].echo = true;
	return t;
}

static struct t *t_multiport(bool irqs)
{
	struct t *t = t_multiport_new(irqs);
	t_init(t);
	return t;
}

static void t_free(struct t *t)
{
	t->e->model = NULL; /* the rings go away with the queues */
	vio_console_fini(&t->con);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	fake_env_free(t->e);
	for (int i = 0; i < VIO_CONSOLE_MAX_PORTS; i++) {
		free(t->m.hp[i].in);
		free(t->m.hp[i].out);
	}
	free(t);
}

static void host_push(struct t *t, uint32_t id, const void *data, size_t n)
{
	struct hostport *hp = &t->m.hp[id];
	assert_true(hp->in_tail + n <= HOSTQ);
	memcpy(hp->in + hp->in_tail, data, n);
	hp->in_tail += n;
}

/* --- tests ------------------------------------------------------------------------------------ */

static void test_single_port_console_write_and_read(void **state)
{
	(void)state;
	struct t *t = t_new(0, 0, 2);
	struct vio_console_port_info info;
	uint8_t buf[16];

	t_init(t);
	assert_false(t->con.multiport);
	assert_int_equal(t->e->dev.nvqs, 2);
	assert_string_equal(t->e->dev.name, "virtio-console");
	assert_int_equal(vio_console_port_info(&t->con, 0, &info), 0);
	assert_true(info.present && info.is_console && info.host_open && info.guest_open);
	assert_int_equal(vio_console_find_console(&t->con), 0);
	assert_int_equal(vio_console_port_info(&t->con, 1, &info), VIO_EINVAL);

	assert_int_equal(vio_console_write(&t->con, 0, "hello", 5, true), 5);
	fake_env_run(t->e);
	assert_int_equal(t->m.hp[0].out_len, 5);
	assert_memory_equal(t->m.hp[0].out, "hello", 5);

	host_push(t, 0, "world", 5);
	fake_env_run(t->e);
	assert_int_equal(vio_console_port_info(&t->con, 0, &info), 0);
	assert_int_equal(info.rx_pending, 5);
	assert_int_equal(vio_console_read(&t->con, 0, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(vio_console_read(&t->con, 0, buf, sizeof(buf)), VIO_EAGAIN);
	assert_int_equal(count_events(t, 0, VIO_CONSOLE_EV_DATA), 1);
	assert_int_equal(vio_console_open(&t->con, 0), 0); /* nothing to send without MULTIPORT */
	t_free(t);
}

static void test_init_rejects_other_device_types(void **state)
{
	(void)state;
	struct fake_env *e = fake_env_new(VIRTIO_ID_RNG, 0, NULL, 0, 1, 64);
	struct vio_console con;

	assert_int_equal(vio_console_init(&con, &e->dev, NULL), VIO_ENODEV);
	vio_console_fini(&con);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_env_free(e);
}

static void test_init_failing_allocation_leaves_nothing_allocated(void **state)
{
	(void)state;
	bool succeeded = false;

	for (int fail_at = 0; fail_at < 64 && !succeeded; fail_at++) {
		struct t *t = t_new(F(VIRTIO_CONSOLE_F_MULTIPORT), 3, 8);
		t->e->fp.dma_fail_after = t->e->fp.dma_allocs + fail_at;
		int err = vio_console_init(&t->con, &t->e->dev, NULL);
		if (err == 0) {
			succeeded = true;
		} else {
			assert_int_equal(err, VIO_ENOMEM);
			assert_true(t->e->vd.status & VIRTIO_CONFIG_S_FAILED);
		}
		t_free(t);
	}
	assert_true(succeeded);
}

static void test_multiport_handshake(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	struct vio_console_port_info info;

	assert_true(t->con.multiport);
	assert_int_equal(t->con.nports, 3);
	assert_int_equal(count_sent(&t->m, 0, VIRTIO_CONSOLE_DEVICE_READY, 1), 1);
	assert_int_equal(t->m.sent[0].event, VIRTIO_CONSOLE_DEVICE_READY);
	assert_int_equal(count_sent(&t->m, 0, VIRTIO_CONSOLE_PORT_READY, 1), 1);
	assert_int_equal(count_sent(&t->m, 1, VIRTIO_CONSOLE_PORT_READY, 1), 1);

	/* CONSOLE_PORT marks port 0, and the driver opens a console by itself. */
	assert_int_equal(vio_console_find_console(&t->con), 0);
	assert_int_equal(count_sent(&t->m, 0, VIRTIO_CONSOLE_PORT_OPEN, 1), 1);
	assert_int_equal(vio_console_port_info(&t->con, 0, &info), 0);
	assert_true(info.is_console && info.host_open && info.guest_open);

	/* PORT_NAME names port 1; it is not open on our side until we say so. */
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.echo"), 1);
	assert_int_equal(vio_console_find_port(&t->con, "org.vio"), VIO_ENODEV);
	assert_int_equal(vio_console_port_info(&t->con, 1, &info), 0);
	assert_string_equal(info.name, "org.vio.echo");
	assert_false(info.is_console);
	assert_true(info.host_open);
	assert_false(info.guest_open);
	assert_int_equal(vio_console_open(&t->con, 1), 0);
	fake_env_run(t->e);
	assert_true(t->m.hp[1].guest_open);
	assert_int_equal(vio_console_port_info(&t->con, 2, &info), VIO_ENODEV);

	/* PORT_OPEN from the host toggles host_open. */
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL, 0);
	fake_env_run(t->e);
	vio_console_port_info(&t->con, 1, &info);
	assert_false(info.host_open);
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_HOST_CLOSED), 1);
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0);
	fake_env_run(t->e);
	vio_console_port_info(&t->con, 1, &info);
	assert_true(info.host_open);
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_HOST_OPENED), 1);

	assert_int_equal(vio_console_close(&t->con, 1), 0);
	fake_env_run(t->e);
	assert_false(t->m.hp[1].guest_open);
	assert_int_equal(t->con.stats.ctrl_bad, 0);
	t_free(t);
}

static void test_handshake_events_are_not_reported_later_ones_are(void **state)
{
	(void)state;
	struct t *t = t_multiport_new(true);
	struct vio_console_opts opts = {.on_event = record_event, .arg = t};

	/* The handshake adds, names and opens two ports: none of it is an event... */
	assert_int_equal(vio_console_init(&t->con, &t->e->dev, &opts), 0);
	assert_int_equal(t->nevents, 0);
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.echo"), 1);

	/* ...but what the host does afterwards is. */
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL, 0);
	fake_env_run(t->e);
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_HOST_CLOSED), 1);
	t_free(t);
}

static void test_hotplug_after_init(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);

	assert_int_equal(vio_console_find_port(&t->con, "org.vio.late"), VIO_ENODEV);
	t->m.hp[2] = (struct hostport){.exists = true,
				       .name = "org.vio.late",
				       .connected = true,
				       .in = t->m.hp[2].in,
				       .out = t->m.hp[2].out};
	dev_send(&t->m, 2, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL, 0);
	fake_env_run(t->e); /* ADD -> PORT_READY */
	fake_env_run(t->e); /* PORT_READY -> name, open */
	fake_env_run(t->e);
	assert_int_equal(count_sent(&t->m, 2, VIRTIO_CONSOLE_PORT_READY, 1), 1);
	assert_int_equal(count_events(t, 2, VIO_CONSOLE_EV_PORT_ADDED), 1);
	assert_int_equal(count_events(t, 2, VIO_CONSOLE_EV_PORT_NAMED), 1);
	assert_int_equal(count_events(t, 2, VIO_CONSOLE_EV_HOST_OPENED), 1);
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.late"), 2);

	/* And it carries data. */
	assert_int_equal(vio_console_open(&t->con, 2), 0);
	assert_int_equal(vio_console_write(&t->con, 2, "late", 4, true), 4);
	fake_env_run(t->e);
	assert_int_equal(t->m.hp[2].out_len, 4);
	t_free(t);
}

static void test_port_remove(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	struct vio_console_port_info info;
	uint8_t buf[8];

	vio_console_open(&t->con, 1);
	fake_env_run(t->e);
	host_push(t, 1, "unread", 6);
	fake_env_run(t->e);
	assert_int_equal(vio_console_port_info(&t->con, 1, &info), 0);
	assert_int_equal(info.rx_pending, 6);

	dev_send(&t->m, 1, VIRTIO_CONSOLE_DEVICE_REMOVE, 0, NULL, 0);
	fake_env_run(t->e);
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_PORT_REMOVED), 1);
	assert_int_equal(vio_console_port_info(&t->con, 1, &info), VIO_ENODEV);
	assert_false(info.present || info.host_open || info.guest_open);
	assert_int_equal(info.rx_pending, 0);
	assert_string_equal(info.name, "");
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.echo"), VIO_ENODEV);
	assert_int_equal(vio_console_read(&t->con, 1, buf, sizeof(buf)), VIO_ENODEV);
	assert_int_equal(vio_console_write(&t->con, 1, "x", 1, false), VIO_ENODEV);
	assert_int_equal(vio_console_open(&t->con, 1), VIO_ENODEV);
	/* Every receive buffer is back with the device. */
	assert_int_equal(fake_vring_avail_pending(&t->e->ring[VIRTIO_CONSOLE_Q_RX(1)]),
			 VIO_CONSOLE_RX_BUFS);

	/* Removing it again is a malformed message, counted. */
	dev_send(&t->m, 1, VIRTIO_CONSOLE_DEVICE_REMOVE, 0, NULL, 0);
	fake_env_run(t->e);
	assert_int_equal(t->con.stats.ctrl_bad, 1);

	/* Re-adding works. */
	dev_send(&t->m, 1, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL, 0);
	for (int i = 0; i < 3; i++)
		fake_env_run(t->e);
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.echo"), 1);
	t_free(t);
}

static void echo_megabyte(struct t *t)
{
	const size_t total = 1u << 20;
	uint8_t *src = malloc(total), *dst = malloc(total), chunk[4096];
	size_t sent = 0, got = 0;
	int id = vio_console_find_port(&t->con, "org.vio.echo");

	assert_int_equal(id, 1);
	assert_int_equal(vio_console_open(&t->con, (uint32_t)id), 0);
	for (size_t i = 0; i < total; i++)
		src[i] = (uint8_t)(rnd(&t->m) >> 3);
	t->m.tx_rate = 1;
	t->m.rx_rate = 2;
	t->m.rx_chunk = 700;
	for (int spins = 0; got < total; spins++) {
		if (spins >= 1000000)
			fail_msg("stuck: sent %zu got %zu host out %zu in %zu/%zu", sent, got,
				 t->m.hp[1].out_len, t->m.hp[1].in_head, t->m.hp[1].in_tail);
		if (sent < total) {
			size_t n = 1 + rnd(&t->m) % 3000;
			if (n > total - sent)
				n = total - sent;
			int w = vio_console_write(&t->con, (uint32_t)id, src + sent, n,
						  (rnd(&t->m) & 3) == 0);
			if (w > 0)
				sent += (size_t)w;
			else
				assert_int_equal(w, VIO_EAGAIN);
		}
		size_t want = 1 + rnd(&t->m) % sizeof(chunk);
		int r = vio_console_read(&t->con, (uint32_t)id, chunk, want);
		if (r > 0) {
			memcpy(dst + got, chunk, (size_t)r);
			got += (size_t)r;
		} else {
			assert_int_equal(r, VIO_EAGAIN);
		}
		fake_env_run(t->e);
	}
	assert_int_equal(sent, total);
	assert_int_equal(t->m.hp[1].out_len, total);
	assert_memory_equal(t->m.hp[1].out, src, total);
	assert_memory_equal(dst, src, total);
	assert_int_equal(t->con.stats.tx_bytes, total);
	assert_int_equal(t->con.stats.bad_len, 0);
	assert_true(t->con.stats.tx_full > 0); /* the slow host made writers wait */
	free(src);
	free(dst);
}

static void test_echo_megabyte_through_named_port_interrupts(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);

	assert_true(t->e->dev.irq_mode != VIO_IRQ_POLL);
	echo_megabyte(t);
	t_free(t);
}

static void test_echo_megabyte_through_named_port_polling(void **state)
{
	(void)state;
	struct t *t = t_multiport(false);

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.echo"), 1);
	echo_megabyte(t);
	t_free(t);
}

static void test_tx_full_is_eagain_and_nothing_is_lost(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	static uint8_t src[64 * 1024];
	size_t queued = 0;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 3);
	t->m.tx_rate = 0; /* the host reads nothing */
	int w = vio_console_write(&t->con, 0, src, sizeof(src), false);
	assert_int_equal(w, VIO_CONSOLE_TX_BUFS * VIO_CONSOLE_BUF_SIZE);
	queued += (size_t)w;
	assert_int_equal(vio_console_write(&t->con, 0, src + queued, 100, false), VIO_EAGAIN);
	assert_true(t->con.stats.tx_full >= 1);
	/* Blocking on a host that never reads ends, with nothing queued. */
	assert_int_equal(vio_console_write(&t->con, 0, src + queued, 100, true), VIO_ETIMEDOUT);

	/* The host drains slowly; a blocking write finishes, every byte once, in order. */
	t->m.tx_rate = 1;
	w = vio_console_write(&t->con, 0, src + queued, sizeof(src) - queued, true);
	assert_int_equal(w, sizeof(src) - queued);
	for (int i = 0; i < 100; i++)
		fake_env_run(t->e);
	assert_int_equal(t->m.hp[0].out_len, sizeof(src));
	assert_memory_equal(t->m.hp[0].out, src, sizeof(src));
	assert_true(count_events(t, 0, VIO_CONSOLE_EV_WRITABLE) > 0);
	t_free(t);
}

static void test_write_to_closed_host_port_waits(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);

	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL, 0);
	fake_env_run(t->e);
	assert_int_equal(vio_console_write(&t->con, 1, "abc", 3, false), VIO_EAGAIN);
	assert_int_equal(vio_console_write(&t->con, 1, "abc", 3, true), VIO_ETIMEDOUT);
	assert_int_equal(t->m.hp[1].out_len, 0);
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0);
	fake_env_run(t->e);
	assert_int_equal(vio_console_write(&t->con, 1, "abc", 3, false), 3);
	fake_env_run(t->e);
	assert_int_equal(t->m.hp[1].out_len, 3);
	t_free(t);
}

static void test_timeout_option_shortens_a_blocking_write(void **state)
{
	(void)state;
	struct t *t = t_multiport_new(true);

	t->timeout_ns = VIO_CONSOLE_TIMEOUT_NS / 10;
	t_init(t);
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL, 0);
	fake_env_run(t->e);
	uint64_t start = t->e->fp.now;
	assert_int_equal(vio_console_write(&t->con, 1, "abc", 3, true), VIO_ETIMEDOUT);
	assert_true(t->e->fp.now - start >= t->timeout_ns);
	assert_true(t->e->fp.now - start < VIO_CONSOLE_TIMEOUT_NS);
	t_free(t);
}

static void test_rx_backpressure_loses_nothing(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	static uint8_t src[100 * 1024], dst[sizeof(src)];

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 13 + 1);
	vio_console_open(&t->con, 1);
	t->m.hp[1].echo = false;
	host_push(t, 1, src, sizeof(src));

	/* Nobody reads: the device fills what it was given, then the host has to wait. */
	for (int i = 0; i < 1000; i++)
		fake_env_run(t->e);
	struct vio_console_port_info info;
	vio_console_port_info(&t->con, 1, &info);
	assert_int_equal(info.rx_pending, VIO_CONSOLE_RX_BUFS * VIO_CONSOLE_BUF_SIZE);
	assert_int_equal(t->m.hp[1].in_head, VIO_CONSOLE_RX_BUFS * VIO_CONSOLE_BUF_SIZE);
	assert_int_equal(fake_vring_avail_pending(&t->e->ring[VIRTIO_CONSOLE_Q_RX(1)]), 0);

	/* A slow reader, a few bytes at a time, still gets every byte in order. */
	size_t got = 0;
	for (int spins = 0; got < sizeof(dst); spins++) {
		assert_true(spins < 1000000);
		int n = vio_console_read(&t->con, 1, dst + got, 37);
		if (n > 0)
			got += (size_t)n;
		else
			fake_env_run(t->e);
	}
	assert_memory_equal(dst, src, sizeof(src));
	assert_int_equal(t->con.stats.rx_bytes, sizeof(src));
	t_free(t);
}

static void test_malformed_control_messages_survive(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	struct vio_console_port_info info;
	char huge[300];

	memset(huge, 'n', sizeof(huge));
	/* A bad id, a name for a port never added, an unknown event, a guest-only event. */
	dev_send(&t->m, 1000, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0);
	dev_send(&t->m, 2, VIRTIO_CONSOLE_PORT_NAME, 0, "ghost", 5);
	dev_send(&t->m, 0, 99, 0, NULL, 0);
	dev_send(&t->m, 0, VIRTIO_CONSOLE_PORT_READY, 1, NULL, 0);
	/* A resize without a size, a second add, a short message, a length beyond posted. */
	dev_send(&t->m, 1, VIRTIO_CONSOLE_RESIZE, 0, "x", 1);
	dev_send(&t->m, 0, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL, 0);
	dev_send_raw(&t->m, "abcd", 4, 0);
	dev_send_raw(&t->m, "abcdefgh", 8, VIO_CONSOLE_CTRL_BUF_SIZE + 1);
	/* A name longer than any buffer, a port beyond those served. */
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_NAME, 0, huge, sizeof(huge));
	dev_send(&t->m, 3000000000u, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL, 0);
	fake_env_run(t->e);
	fake_env_run(t->e);

	assert_int_equal(t->con.stats.ctrl_bad, 7);
	assert_int_equal(t->con.stats.bad_len, 1);
	assert_int_equal(t->con.stats.ports_refused, 1);
	assert_int_equal(count_sent(&t->m, 3000000000u, VIRTIO_CONSOLE_PORT_READY, 0), 1);
	assert_true(fake_port_logged(&t->e->fp, "no such port"));
	assert_true(fake_port_logged(&t->e->fp, "unknown event"));

	/* The device cut the name to its buffer; we cut it to ours, NUL-terminated. */
	vio_console_port_info(&t->con, 1, &info);
	assert_int_equal(strlen(info.name), VIO_CONSOLE_NAME_MAX - 1);
	assert_true(fake_port_logged(&t->e->fp, "name cut"));

	/* Still works. */
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_NAME, 0, "org.vio.echo", 12);
	fake_env_run(t->e);
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.echo"), 1);
	assert_int_equal(vio_console_write(&t->con, 0, "ok", 2, true), 2);
	assert_int_equal(vio_console_poll(&t->con), 0);
	t_free(t);
}

static void test_ports_beyond_the_served_ones_are_refused(void **state)
{
	(void)state;
	/* max_nr_ports 4 but only 8 queues: ports 0-2 get queues, port 3 cannot. */
	struct t *t = t_new(F(VIRTIO_CONSOLE_F_MULTIPORT), 4, 8);

	t->m.hp[3].exists = true;
	t_init(t);
	assert_int_equal(t->con.nports, 3);
	assert_true(fake_port_logged(&t->e->fp, "no queues for port 3"));
	assert_int_equal(count_sent(&t->m, 3, VIRTIO_CONSOLE_PORT_READY, 0), 1);
	assert_int_equal(t->con.stats.ports_refused, 1);
	assert_int_equal(vio_console_find_console(&t->con), 0);
	t_free(t);
}

static void test_rx_used_len_beyond_posted_is_dropped(void **state)
{
	(void)state;
	struct t *t = t_new(0, 0, 2);
	uint8_t buf[8];

	t_init(t);
	t->m.rx_claim_extra = VIO_CONSOLE_BUF_SIZE;
	host_push(t, 0, "data", 4);
	fake_env_run(t->e); /* the lie: dropped, the buffer goes back */
	fake_env_run(t->e); /* the honest resend */
	assert_int_equal(t->con.stats.bad_len, 1);
	assert_int_equal(vio_console_read(&t->con, 0, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "data", 4);
	t_free(t);
}

static void test_emerg_write_reaches_config(void **state)
{
	(void)state;
	struct t *t = t_new(F(VIRTIO_CONSOLE_F_EMERG_WRITE), 0, 2);

	t_init(t);
	assert_int_equal(vio_console_emerg_write(&t->con, '!'), 0);
	assert_int_equal(t->e->vd.config[offsetof(struct virtio_console_config, emerg_wr)], '!');
	t_free(t);

	t = t_new(0, 0, 2);
	t_init(t);
	assert_int_equal(vio_console_emerg_write(&t->con, '!'), VIO_ENOTSUP);
	t_free(t);
}

static void test_size_and_resize(void **state)
{
	(void)state;
	struct t *t = t_new(F(VIRTIO_CONSOLE_F_SIZE) | F(VIRTIO_CONSOLE_F_MULTIPORT), 3, 8);
	struct vio_console_port_info info;

	t->m.hp[1].exists = true;
	t_init(t);
	vio_console_port_info(&t->con, 0, &info);
	assert_int_equal(info.cols, 80);
	assert_int_equal(info.rows, 25);

	/* A config-space change for port 0, delivered as a config interrupt. */
	struct virtio_console_config cfg = {.cols = 132, .rows = 50};
	fake_env_set_config(t->e, 0, &cfg, 4);
	fake_env_config_irq(t->e);
	vio_console_port_info(&t->con, 0, &info);
	assert_int_equal(info.cols, 132);
	assert_int_equal(info.rows, 50);
	assert_int_equal(count_events(t, 0, VIO_CONSOLE_EV_RESIZE), 1);

	/* A RESIZE control message for port 1. */
	struct virtio_console_resize rs = {.cols = 100, .rows = 40};
	dev_send(&t->m, 1, VIRTIO_CONSOLE_RESIZE, 0, &rs, sizeof(rs));
	fake_env_run(t->e);
	vio_console_port_info(&t->con, 1, &info);
	assert_int_equal(info.cols, 100);
	assert_int_equal(info.rows, 40);
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_RESIZE), 1);
	t_free(t);
}

static void test_interrupts_reap_without_polling(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	struct vio_console_port_info info;

	vio_console_open(&t->con, 1);
	t->m.hp[1].echo = false;
	fake_env_run(t->e);
	host_push(t, 1, "irq", 3);
	t->e->model(t->e); /* the device alone: only its interrupt can tell the driver */
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_DATA), 1);
	assert_int_equal(vio_console_port_info(&t->con, 1, &info), 0);
	assert_int_equal(info.rx_pending, 3);
	t_free(t);
}

static void test_polling_mode_needs_no_interrupts(void **state)
{
	(void)state;
	struct t *t = t_multiport(false);
	uint8_t buf[8];

	assert_int_equal(t->e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_console_find_console(&t->con), 0);
	vio_console_open(&t->con, 1);
	assert_int_equal(vio_console_write(&t->con, 1, "poll", 4, true), 4);
	t->e->model(t->e);
	t->e->model(t->e);
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_DATA), 0); /* nobody told us yet */
	assert_int_equal(vio_console_poll(&t->con), 0);
	assert_int_equal(count_events(t, 1, VIO_CONSOLE_EV_DATA), 1);
	assert_int_equal(vio_console_read(&t->con, 1, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "poll", 4);
	t_free(t);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	uint8_t buf[4];

	assert_int_equal(vio_console_read(&t->con, 7, buf, sizeof(buf)), VIO_EINVAL);
	assert_int_equal(vio_console_read(&t->con, 0, NULL, 4), VIO_EINVAL);
	assert_int_equal(vio_console_read(&t->con, 0, buf, 0), VIO_EINVAL);
	assert_int_equal(vio_console_write(&t->con, 99, "x", 1, false), VIO_EINVAL);
	assert_int_equal(vio_console_write(&t->con, 2, "x", 1, false), VIO_ENODEV);
	assert_int_equal(vio_console_open(&t->con, 99), VIO_EINVAL);
	t_free(t);
}

static void test_fini_releases_everything_and_twice_is_harmless(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	uint8_t buf[4];

	host_push(t, 0, "left", 4);
	fake_env_run(t->e);
	t->e->model = NULL;
	vio_console_fini(&t->con);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	assert_int_equal(vio_console_read(&t->con, 0, buf, sizeof(buf)), VIO_EINVAL);
	assert_int_equal(vio_console_poll(&t->con), 0);
	t_free(t);
}

/* --- a hostile device ------------------------------------------------------------------------ */

static void test_device_scribbling_dma_cannot_forge_a_control_message_or_crash(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	struct vio_console_port_info info;
	uint8_t buf[64];

	vio_console_open(&t->con, 1);
	host_push(t, 1, "hello", 5);
	fake_env_run(t->e);
	uint64_t ctrl = t->con.stats.ctrl_rx + t->con.stats.ctrl_bad;
	int events = t->nevents;
	assert_true(fake_env_scribble(t->e, 0xff) > 0);
	/* Posted buffers rewritten mean nothing until the device completes them; the rest holds
	 * only bytes, never a length, an index or a pointer the driver follows. */
	assert_int_equal(vio_console_poll(&t->con), 0);
	assert_int_equal(t->con.stats.ctrl_rx + t->con.stats.ctrl_bad, ctrl);
	assert_int_equal(t->nevents, events);
	assert_int_equal(vio_console_read(&t->con, 1, buf, sizeof(buf)), 5);
	assert_int_equal(vio_console_port_info(&t->con, 1, &info), 0);
	assert_string_equal(info.name, "org.vio.echo");
	assert_false(fake_port_is_dma(&t->e->fp, &t->con, sizeof(t->con)));
	assert_int_equal(vio_console_write(&t->con, 0, "ok", 2, true), 2);
	t_free(t);
}

/* Complete one buffer posted on queue q with used length len, as the device. */
static void complete_one(struct t *t, unsigned q, uint32_t len)
{
	struct fake_vring *fv = &t->e->ring[q];

	assert_true(fake_vring_pop(fv, &t->m.req));
	fv->deliver_irqs = false;
	fake_vring_complete(fv, t->m.req.head, len);
}

static void test_control_loop_is_bounded_against_a_device_completing_every_repost(void **state)
{
	(void)state;
	struct t *t = t_multiport(false);

	t->e->model = NULL;
	complete_one(t, VIRTIO_CONSOLE_Q_CTRL_RX, 0);
	fake_env_instant_completions(t->e, VIRTIO_CONSOLE_Q_CTRL_RX, t->con.con_ctrl_rx[0].data,
				     (size_t)VIO_CONSOLE_CTRL_BUFS * VIO_CONSOLE_CTRL_BUF_SIZE, 0,
				     100000);
	for (int call = 0; call < 3; call++) {
		uint64_t before = t->con.stats.ctrl_bad;
		assert_int_equal(vio_console_poll(&t->con), 0);
		assert_true(t->con.stats.ctrl_bad - before <= VIO_CONSOLE_CTRL_BUFS);
	}
	assert_true(t->e->instant_done < 100000);
	fake_env_instant_completions(t->e, -1, NULL, 0, 0, 0);
	t_free(t);
}

static void test_port_rx_loop_is_bounded_against_a_device_completing_every_repost(void **state)
{
	(void)state;
	struct t *t = t_multiport(false);
	struct vio_console_port *p = &t->con.con_ports[1];

	vio_console_open(&t->con, 1);
	t->e->model = NULL;
	for (uint32_t len = 0; len <= VIO_CONSOLE_BUF_SIZE + 1; len += VIO_CONSOLE_BUF_SIZE + 1) {
		complete_one(t, VIRTIO_CONSOLE_Q_RX(1), len);
		fake_env_instant_completions(t->e, VIRTIO_CONSOLE_Q_RX(1), p->rx[0].data,
					     (size_t)VIO_CONSOLE_RX_BUFS * VIO_CONSOLE_BUF_SIZE,
					     len, 100000);
		for (int call = 0; call < 3; call++)
			assert_int_equal(vio_console_poll(&t->con), 0);
		assert_true(t->e->instant_done <= 3 * VIO_CONSOLE_RX_BUFS);
		fake_env_instant_completions(t->e, -1, NULL, 0, 0, 0);
		for (int call = 0; call < 2; call++) /* reap what the device completed last */
			assert_int_equal(vio_console_poll(&t->con), 0);
	}
	t_free(t);
}

static void test_a_slow_host_cannot_stretch_a_write_past_its_deadline(void **state)
{
	(void)state;
	struct t *t = t_multiport_new(true);
	static uint8_t data[16 * 1024];

	t->deadline_ns = 2 * VIO_CONSOLE_TIMEOUT_NS;
	t_init(t);
	/* One buffer every 0.3 s: never silent for the timeout, 7 s for the whole write. */
	t->m.tx_period_ns = VIO_CONSOLE_TIMEOUT_NS * 3 / 10;
	t->m.tx_next_ns = t->e->fp.now + t->m.tx_period_ns;
	uint64_t start = t->e->fp.now;
	int n = vio_console_write(&t->con, 0, data, sizeof(data), true);
	assert_true(n > 0 && n < (int)sizeof(data));
	assert_true(t->e->fp.now - start >= t->deadline_ns);
	assert_true(t->e->fp.now - start < t->deadline_ns + VIO_CONSOLE_TIMEOUT_NS / 10);
	t->m.tx_period_ns = 0;
	t_free(t);
}

static void test_deadline_defaults_to_vio_console_deadline_ns(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);

	assert_int_equal(t->con.con_opts.deadline_ns, VIO_CONSOLE_DEADLINE_NS);
	assert_int_equal(t->con.con_opts.timeout_ns, VIO_CONSOLE_TIMEOUT_NS);
	t_free(t);
}

static void test_a_blocking_write_lets_the_caller_take_interrupts_every_millisecond(void **state)
{
	(void)state;
	struct t *t = t_multiport_new(true);

	t->count_waits = true;
	t_init(t);
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL, 0);
	fake_env_run(t->e);
	t->waits.calls = 0;
	t->waits.longest = 0;
	t->waits.last = t->e->fp.now;
	assert_int_equal(vio_console_write(&t->con, 1, "abc", 3, true), VIO_ETIMEDOUT);
	assert_true(t->waits.calls >= 900);
	assert_true(t->waits.longest <= VIO_CONSOLE_SPIN_NS + 100000);
	t_free(t);
}

/* No config interrupt says so (2.1.2): a working device's status alone asks for the reset. */
static void test_polling_notices_a_device_that_needs_reset(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	uint8_t buf[4];
	int err = 0;

	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	for (int i = 0; i < 200000 && err == 0; i++)
		err = vio_console_poll(&t->con);
	assert_int_equal(err, VIO_ENEEDRESET);
	assert_true(t->e->dev.needs_reset);
	assert_int_equal(vio_console_read(&t->con, 0, buf, sizeof(buf)), VIO_ENEEDRESET);
	t_free(t);
}

static void test_device_needing_reset_is_reported_on_timeout_and_on_a_broken_queue(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	uint8_t buf[4];

	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL, 0);
	fake_env_run(t->e);
	t->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_console_write(&t->con, 1, "abc", 3, true), VIO_ENEEDRESET);
	assert_true(fake_port_logged(&t->e->fp, "needs reset"));
	/* Every queue is broken now: each call says why. */
	assert_int_equal(vio_console_poll(&t->con), VIO_ENEEDRESET);
	assert_int_equal(vio_console_read(&t->con, 0, buf, sizeof(buf)), VIO_ENEEDRESET);
	assert_int_equal(vio_console_write(&t->con, 0, "x", 1, false), VIO_ENEEDRESET);
	t_free(t);
}

static void test_fini_after_an_unconfirmed_reset_keeps_the_buffers(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);

	t->e->model = NULL;
	t->e->vd.reset_stuck = true;
	assert_int_equal(vio_console_fini(&t->con), VIO_EDEAD);
	assert_true(t->e->fp.dma_live_allocs >= 1);
	assert_true(fake_port_logged(&t->e->fp, "reset not confirmed"));
	assert_true(t->e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(vio_console_fini(&t->con), 0); /* twice is harmless */
	t->e->vd.reset_stuck = false;
	assert_true(fake_env_reclaim_leaks(t->e) >= 1);
	t_free(t);
}

static void test_port_names_are_cut_to_printable_ascii(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	struct vio_console_port_info info;
	const char evil[] = "\x1b]0;owned\x07\x1b[2Jorg.vio\xff\r\n";
	const char nul[] = "org.vio.rng\0\x1b[2J"; /* QEMU ends a name with a NUL */

	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_NAME, 0, evil, sizeof(evil) - 1);
	fake_env_run(t->e);
	assert_int_equal(vio_console_port_info(&t->con, 1, &info), 0);
	assert_string_equal(info.name, "?]0;owned??[2Jorg.vio???");
	for (const char *c = info.name; *c; c++)
		assert_true(*c >= 0x20 && *c < 0x7f);
	assert_int_equal(vio_console_find_port(&t->con, "?]0;owned??[2Jorg.vio???"), 1);
	dev_send(&t->m, 1, VIRTIO_CONSOLE_PORT_NAME, 0, nul, sizeof(nul) - 1);
	fake_env_run(t->e);
	assert_int_equal(vio_console_find_port(&t->con, "org.vio.rng"), 1);
	t_free(t);
}

static int log_lines(const struct t *t)
{
	return t->e->fp.log_count;
}

static void test_a_control_message_flood_is_logged_at_a_bounded_rate(void **state)
{
	(void)state;
	struct t *t = t_multiport(true);
	int before = log_lines(t);

	/* 1000 ports the driver does not serve, 1000 messages for no port, all in a moment. */
	for (int round = 0; round < 50; round++) {
		for (uint32_t k = 0; k < 20; k++) {
			dev_send(&t->m, 100 + k, VIRTIO_CONSOLE_DEVICE_ADD, 0, NULL, 0);
			dev_send(&t->m, 5000 + k, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0);
		}
		while (t->m.npending)
			fake_env_run(t->e);
	}
	assert_int_equal(t->con.stats.ports_refused, 1000);
	assert_true(t->con.stats.ctrl_bad >= 1000);
	assert_true(log_lines(t) - before <= 2 * VIO_CONSOLE_LOG_BURST + 2);
	assert_true(t->con.stats.log_dropped > 0);
	/* A second later the driver speaks again, and says how much it kept back. */
	t->e->fp.now += 2000000000ull;
	dev_send(&t->m, 7000, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0);
	fake_env_run(t->e);
	assert_true(fake_port_logged(&t->e->fp, "log lines about the device dropped"));
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_port_console_write_and_read),
	    cmocka_unit_test(test_init_rejects_other_device_types),
	    cmocka_unit_test(test_init_failing_allocation_leaves_nothing_allocated),
	    cmocka_unit_test(test_multiport_handshake),
	    cmocka_unit_test(test_handshake_events_are_not_reported_later_ones_are),
	    cmocka_unit_test(test_hotplug_after_init),
	    cmocka_unit_test(test_port_remove),
	    cmocka_unit_test(test_echo_megabyte_through_named_port_interrupts),
	    cmocka_unit_test(test_echo_megabyte_through_named_port_polling),
	    cmocka_unit_test(test_tx_full_is_eagain_and_nothing_is_lost),
	    cmocka_unit_test(test_write_to_closed_host_port_waits),
	    cmocka_unit_test(test_timeout_option_shortens_a_blocking_write),
	    cmocka_unit_test(test_rx_backpressure_loses_nothing),
	    cmocka_unit_test(test_malformed_control_messages_survive),
	    cmocka_unit_test(test_ports_beyond_the_served_ones_are_refused),
	    cmocka_unit_test(test_rx_used_len_beyond_posted_is_dropped),
	    cmocka_unit_test(test_emerg_write_reaches_config),
	    cmocka_unit_test(test_size_and_resize),
	    cmocka_unit_test(test_interrupts_reap_without_polling),
	    cmocka_unit_test(test_polling_mode_needs_no_interrupts),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_fini_releases_everything_and_twice_is_harmless),
	    cmocka_unit_test(test_device_scribbling_dma_cannot_forge_a_control_message_or_crash),
	    cmocka_unit_test(test_control_loop_is_bounded_against_a_device_completing_every_repost),
	    cmocka_unit_test(test_port_rx_loop_is_bounded_against_a_device_completing_every_repost),
	    cmocka_unit_test(test_a_slow_host_cannot_stretch_a_write_past_its_deadline),
	    cmocka_unit_test(test_deadline_defaults_to_vio_console_deadline_ns),
	    cmocka_unit_test(
		test_a_blocking_write_lets_the_caller_take_interrupts_every_millisecond),
	    cmocka_unit_test(
		test_device_needing_reset_is_reported_on_timeout_and_on_a_broken_queue),
	    cmocka_unit_test(test_polling_notices_a_device_that_needs_reset),
	    cmocka_unit_test(test_fini_after_an_unconfirmed_reset_keeps_the_buffers),
	    cmocka_unit_test(test_port_names_are_cut_to_printable_ascii),
	    cmocka_unit_test(test_a_control_message_flood_is_logged_at_a_bounded_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
