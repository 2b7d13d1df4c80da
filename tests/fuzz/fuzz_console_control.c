/*
 * libFuzzer target: the fuzzer plays a hostile virtio-console device (MULTIPORT) against the
 * driver (src/drivers/virtio_console.c), through the whole-device fake of the host tests.
 *
 * The first byte picks how many ports the device allows and whether it offers SIZE. After
 * init, every op byte makes the device send a control message of any length and content
 * (and claim any used length for it), fill a port's receive buffer, take the driver's
 * transmit buffers, write garbage over the driver's DMA memory, change the console size or
 * ask for a reset; or makes the driver act: poll, read, write, open, close, look ports up.
 *
 * After every op the harness checks what must hold whatever the device did:
 *   - no port id at or beyond nports is present; a port name is printable ASCII, shorter
 *     than VIO_CONSOLE_NAME_MAX and NUL-terminated;
 *   - read and write return an error or a count within what was asked;
 *   - one poll reaps at most the buffers that were posted (nothing loops on the device);
 *   - the device's log lines stay within VIO_CONSOLE_LOG_BURST a second;
 * and at the end vio_console_fini leaves no DMA or private memory allocated. ASan and
 * UBSan catch any access outside the driver's buffers, and VIO_DEBUG's VIO_ASSERTs abort
 * the run if a device value makes the driver break its own bookkeeping.
 *
 *   make build/fuzz/fuzz_console_control && build/fuzz/fuzz_console_control -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vio/console.h>
#include <vio/err.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define TIMEOUT_NS 100000

struct state {
	struct fake_env *e;
	struct vio_console con;
	const uint8_t *p, *end;
	struct fake_req req;
	int events;
};

FUZZ_INPUT_READERS(struct state)

static bool ring_ok(struct state *s, unsigned q)
{
	return (int)q < s->e->nrings && s->e->ring[q].vq;
}

static void on_event(struct vio_console *con, uint32_t port, enum vio_console_event ev, void *arg)
{
	struct state *s = arg;

	check(port < con->nports && ev <= VIO_CONSOLE_EV_RESIZE);
	s->events++;
}

/* The device sends one control message: any bytes, any length, any used length claimed. */
static void op_control(struct state *s)
{
	struct fake_vring *fv = &s->e->ring[VIRTIO_CONSOLE_Q_CTRL_RX];
	uint8_t how = byte(s);
	uint32_t len = byte(s) % (VIO_CONSOLE_CTRL_BUF_SIZE + 1);
	uint8_t msg[VIO_CONSOLE_CTRL_BUF_SIZE];

	/* Mostly a well-formed header with a fuzzed id, event and value. */
	memset(msg, 0, sizeof(msg));
	for (uint32_t i = 0; i < len; i++)
		msg[i] = byte(s);
	if ((how & 3) != 0 && len >= sizeof(struct virtio_console_control)) {
		struct virtio_console_control c = {
		    .id = byte(s) % 12u, .event = (uint16_t)(byte(s) % 10u), .value = byte(s) & 1};
		memcpy(msg, &c, sizeof(c));
	}
	if (!ring_ok(s, VIRTIO_CONSOLE_Q_CTRL_RX) || !fake_vring_pop(fv, &s->req))
		return;
	uint32_t n = len < s->req.in_len ? len : s->req.in_len;
	memcpy((void *)(uintptr_t)s->req.seg[0].addr, msg, n);
	uint32_t claim = (how & 0x80) ? word(s) : n;
	fake_vring_complete(fv, s->req.head, claim);
}

/* The device fills one receive buffer of a port with any length claimed. */
static void op_port_rx(struct state *s)
{
	uint32_t id = byte(s) % VIO_CONSOLE_MAX_PORTS;
	uint8_t how = byte(s);

	/* Only ports whose queues exist: the fake has fewer rings than the spec's maximum. */
	if (!ring_ok(s, VIRTIO_CONSOLE_Q_RX(id)))
		return;
	struct fake_vring *fv = &s->e->ring[VIRTIO_CONSOLE_Q_RX(id)];
	if (!fake_vring_pop(fv, &s->req))
		return;
	uint32_t n = fake_vring_fill(&s->req, how);
	uint32_t claim = (how & 0x80) ? word(s) : (how & 0x40 ? 0 : n);
	fake_vring_complete(fv, s->req.head, claim);
}

/* The device takes a port's (or the control queue's) transmit buffers. */
static void op_tx(struct state *s)
{
	/* The transmit queues are the odd ones: port 0's, the control one, then port 1's ... */
	uint32_t q = 1 + 2 * (byte(s) % (1 + VIO_CONSOLE_MAX_PORTS));
	unsigned k = byte(s) % 8;

	if (!ring_ok(s, q))
		return;
	while (k-- && fake_vring_pop(&s->e->ring[q], &s->req))
		fake_vring_complete(&s->e->ring[q], s->req.head, byte(s));
}

static void time_flies(void *arg)
{
	struct fake_port *fp = arg;
	fp->now += TIMEOUT_NS / FUZZ_LOOKS_PER_TIMEOUT;
}

static void check_ports(struct state *s)
{
	struct vio_console_port_info info;

	check(s->con.nports >= 1 && s->con.nports <= VIO_CONSOLE_MAX_PORTS);
	for (uint32_t id = 0; id < VIO_CONSOLE_MAX_PORTS + 2; id++) {
		int r = vio_console_port_info(&s->con, id, &info);
		if (id >= s->con.nports) {
			check(r == VIO_EINVAL);
			continue;
		}
		check(r == 0 || r == VIO_ENODEV);
		size_t n = strnlen(info.name, sizeof(info.name));
		check(n < sizeof(info.name));
		for (size_t i = 0; i < n; i++)
			check(info.name[i] >= 0x20 && info.name[i] < 0x7f);
	}
	int c = vio_console_find_console(&s->con);
	check(c == VIO_ENODEV || (c >= 0 && (uint32_t)c < s->con.nports));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	struct state *s = &st;

	if (size < 1)
		return 0;
	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;

	uint8_t cfg = byte(s);
	uint32_t ports = 1 + cfg % VIO_CONSOLE_MAX_PORTS;
	struct virtio_console_config vc = {.cols = 80, .rows = 25, .max_nr_ports = ports};
	uint64_t features =
	    (1ull << VIRTIO_CONSOLE_F_MULTIPORT) | (cfg & 0x80 ? 1ull << VIRTIO_CONSOLE_F_SIZE : 0);
	s->e = fake_env_new(VIRTIO_ID_CONSOLE, features, &vc, sizeof(vc), FAKE_VDEV_QUEUES, 32);
	fake_env_no_irqs(s->e);
	/* No device model runs while the driver waits: time flies (fuzz_input.h). */
	s->e->fp.on_wait = time_flies;
	s->e->fp.on_wait_arg = &s->e->fp;
	/* A short timeout: init's handshake and blocking calls end quickly. */
	struct vio_console_opts opts = {.on_event = on_event, .arg = s, .timeout_ns = TIMEOUT_NS};
	check(vio_console_init(&s->con, &s->e->dev, &opts) == 0);
	fake_env_rings(s->e);
	for (int q = 0; q < s->e->nrings; q++)
		s->e->ring[q].deliver_irqs = false;

	while (s->p < s->end) {
		uint8_t buf[VIO_CONSOLE_BUF_SIZE * 2];
		uint32_t id;
		int r;
		uint64_t reaped;

		switch (byte(s) % 12) {
		case 0:
		case 1:
		case 2:
			op_control(s);
			break;
		case 3:
			op_port_rx(s);
			break;
		case 4:
			op_tx(s);
			break;
		case 5:
			reaped = s->e->dev.vqs[0].stats.completions;
			vio_console_poll(&s->con);
			/* One poll reaps at most what was posted on the control receiveq. */
			check(s->e->dev.vqs[0].stats.completions - reaped <= VIO_CONSOLE_CTRL_BUFS);
			break;
		case 6:
			id = byte(s) % (VIO_CONSOLE_MAX_PORTS + 1);
			r = vio_console_read(&s->con, id, buf, 1 + byte(s) % sizeof(buf));
			check(r < 0 || r <= (int)sizeof(buf));
			break;
		case 7:
			id = byte(s) % (VIO_CONSOLE_MAX_PORTS + 1);
			r = vio_console_write(&s->con, id, "fuzz", 4, byte(s) & 1);
			check(r < 0 || r <= 4);
			break;
		case 8:
			id = byte(s) % (VIO_CONSOLE_MAX_PORTS + 1);
			if (byte(s) & 1)
				vio_console_open(&s->con, id);
			else
				vio_console_close(&s->con, id);
			break;
		case 9:
			fake_env_scribble(s->e, byte(s));
			break;
		case 10: {
			uint16_t cr[2] = {(uint16_t)word(s), (uint16_t)word(s)};
			fake_env_set_config(s->e, offsetof(struct virtio_console_config, cols), cr,
					    sizeof(cr));
			vio_console_poll(&s->con);
			break;
		}
		case 11:
			if (byte(s) == 0x5a)
				s->e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
			vio_console_find_port(&s->con, "org.vio.echo");
			break;
		}
		check_ports(s);
		/* The fake keeps every line it was given: none may come faster than the limit
		 * allows (plus the device-independent lines of init). */
		check(s->e->fp.log_count <= 16 + (int)(VIO_CONSOLE_LOG_BURST + 1) *
						     (int)(1 + s->e->fp.now / 1000000000ull));
	}
	s->e->model = NULL;
	check(vio_console_fini(&s->con) == 0);
	check(s->e->fp.dma_live_allocs == 0);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e);
	return 0;
}
