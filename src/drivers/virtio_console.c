/*
 * virtio-console: consoles and serial ports (virtio 1.2 section 5.3). See include/vio/console.h.
 *
 * Exercised by QEMU with
 *
 *	-device virtio-serial-pci -chardev stdio,id=c0 -device virtconsole,chardev=c0
 *	-chardev socket,id=c1,path=echo.sock,server=on,wait=off
 *	-device virtserialport,chardev=c1,name=org.vio.echo
 *
 * and, for the single-port device, -device virtio-serial-pci,max_ports=1 -device virtconsole,...
 * (QEMU offers MULTIPORT only when more than one port is allowed).
 *
 * Every port has two queues (5.3.2): its receiveq, where we keep empty device-writable
 * buffers the host fills with what it sends us, and its transmitq, where we put buffers the
 * host reads. With MULTIPORT a control receiveq/transmitq pair tells us which ports exist
 * (5.3.6.2): we say DEVICE_READY, the device answers DEVICE_ADD per port, we answer
 * PORT_READY, the device says what it knows about the port (CONSOLE_PORT, PORT_NAME,
 * PORT_OPEN) and from then on ports come and go and open and close whenever the host likes.
 *
 * Nothing is dropped on our side. A received buffer stays out of the device's hands until the
 * reader has emptied it, so an absent reader throttles the host instead of losing its data;
 * and a write only ever copies into a free transmit buffer, so a slow host makes writes wait
 * (or fail with VIO_EAGAIN) rather than vanish.
 *
 * Follow one request (bytes the host sends to a port):
 *	setup_buffers     post_rx puts every receive buffer of the port on its receiveq
 *	vq_done           the queue's interrupt (or the owner's call) runs vio_console_poll
 *	poll_port         takes the filled buffer off the ring, checks its length (used_len_ok),
 *	                  queues it on the port's rx_ready FIFO and reports VIO_CONSOLE_EV_DATA
 *	vio_console_read  copies the bytes out; only an emptied buffer goes back through post_rx
 */
#include <vio/console.h>

#include "driver.h"

_Static_assert(VIO_CONSOLE_MAX_PORTS >= 1 && 2 + 2 * VIO_CONSOLE_MAX_PORTS <= VIO_MAX_QUEUES,
	       "VIO_CONSOLE_MAX_PORTS needs 2 + 2n queues within VIO_MAX_QUEUES");
_Static_assert(VIO_CONSOLE_NAME_MAX >= 2, "VIO_CONSOLE_NAME_MAX too small");
_Static_assert(VIO_CONSOLE_CTRL_BUF_SIZE > sizeof(struct virtio_console_control),
	       "a control buffer must hold a message header and some payload");
_Static_assert(VIO_CONSOLE_BUF_SIZE <= VIO_CONSOLE_PAGE &&
		   VIO_CONSOLE_CTRL_BUF_SIZE <= VIO_CONSOLE_PAGE,
	       "a buffer must fit in one DMA page");

/* How long blocking calls wait between looks at the used rings. */
#define CON_POLL_US 10
/* The window VIO_CONSOLE_LOG_BURST counts lines in. */
#define CON_LOG_PERIOD_NS 1000000000ull

static const char con_name[] = "virtio-console";

static void copy_bytes(void *dst, const void *src, size_t n)
{
	__builtin_memcpy(dst, src, n);
}

static uint16_t min_u16(uint16_t a, uint16_t b)
{
	return a < b ? a : b;
}

static void emit(struct vio_console *con, uint32_t id, enum vio_console_event ev)
{
	if (con->con_live && con->con_opts.on_event)
		con->con_opts.on_event(con, id, ev, con->con_opts.arg);
}

static struct vio_console_port *port_of(struct vio_console *con, uint32_t id)
{
	return id < con->nports ? &con->con_ports[id] : NULL;
}

static struct vio_vq *ctrl_rxq(struct vio_console *con)
{
	return &con->con_vqs[VIRTIO_CONSOLE_Q_CTRL_RX];
}

static struct vio_vq *ctrl_txq(struct vio_console *con)
{
	return &con->con_vqs[VIRTIO_CONSOLE_Q_CTRL_TX];
}

/*
 * May we log one more line about what the device did? The host chooses how many control
 * messages it sends, so lines about them are limited to VIO_CONSOLE_LOG_BURST a second; the
 * rest are counted (stats.log_dropped), and the first line of a later second says how many.
 */
static bool device_log_ok(struct vio_console *con)
{
	const struct vio_port *port = con->dev->port;
	uint64_t now = port->now_ns(port->ctx);

	if (!con->con_log_lines || now - con->con_log_since >= CON_LOG_PERIOD_NS) {
		con->con_log_since = now;
		con->con_log_lines = 0;
		if (con->stats.log_dropped != con->con_log_dropped_seen)
			vio_logf(port, VIO_LOG_WARN, "%s: %llu log lines about the device dropped",
				 con_name,
				 (unsigned long long)(con->stats.log_dropped -
						      con->con_log_dropped_seen));
		con->con_log_dropped_seen = con->stats.log_dropped;
	}
	if (con->con_log_lines < VIO_CONSOLE_LOG_BURST) {
		con->con_log_lines++;
		return true;
	}
	con->stats.log_dropped++;
	return false;
}

/* A device that claims to have written more than we posted is lying; its data is dropped. */
static bool used_len_ok(struct vio_console *con, const struct vio_vq_used *u, const char *what)
{
	if (u->len <= u->in_len)
		return true;
	con->stats.bad_len++;
	if (device_log_ok(con))
		vio_logf(con->dev->port, VIO_LOG_ERR,
			 "%s: %s: device wrote %u bytes into %u, dropped", con_name, what, u->len,
			 u->in_len);
	return false;
}

/* --- control messages we send ------------------------------------------------------------- */

/* Move waiting messages into free control transmit buffers, then kick. */
static void ctrl_flush(struct vio_console *con)
{
	while (con->con_pending_count && con->con_ctrl_tx_nfree) {
		uint16_t slot = con->con_ctrl_tx_free[--con->con_ctrl_tx_nfree];
		struct vio_console_buf *b = &con->con_ctrl_tx[slot];
		const struct virtio_console_control *msg =
		    &con->con_ctrl_pending[con->con_pending_head];
		struct vio_sg sg = {b->data, sizeof(*msg)};

		copy_bytes(b->data, msg, sizeof(*msg));
		if (vio_vq_add(ctrl_txq(con), &sg, 1, 0, b) != 0) {
			con->con_ctrl_tx_free[con->con_ctrl_tx_nfree++] = slot;
			break;
		}
		con->con_pending_head =
		    (uint16_t)((con->con_pending_head + 1) % VIO_CONSOLE_CTRL_TX_BUFS);
		con->con_pending_count--;
		con->stats.ctrl_tx++;
	}
	vio_vq_kick(ctrl_txq(con));
}

/*
 * Queue one message for the device. Messages wait in a small FIFO when every control
 * transmit buffer is still with the device; the FIFO overflowing means the device stopped
 * reading its control queue altogether.
 */
static int ctrl_send(struct vio_console *con, uint32_t id, uint16_t event, uint16_t value)
{
	if (con->con_pending_count == VIO_CONSOLE_CTRL_TX_BUFS) {
		if (device_log_ok(con))
			vio_logf(con->dev->port, VIO_LOG_ERR,
				 "%s: control queue stuck, message %u for port %u not sent",
				 con_name, event, id);
		return VIO_ENOSPC;
	}
	uint16_t tail =
	    (uint16_t)((con->con_pending_head + con->con_pending_count) % VIO_CONSOLE_CTRL_TX_BUFS);
	con->con_ctrl_pending[tail] = (struct virtio_console_control){id, event, value};
	con->con_pending_count++;
	ctrl_flush(con);
	return 0;
}

/* --- control messages we receive (5.3.6.2) ------------------------------------------------ */

static void read_size(struct vio_console *con);

static void ctrl_bad(struct vio_console *con, const struct virtio_console_control *m,
		     const char *why)
{
	con->stats.ctrl_bad++;
	if (device_log_ok(con))
		vio_logf(con->dev->port, VIO_LOG_WARN,
			 "%s: ignored control message id=%u event=%u value=%u: %s", con_name, m->id,
			 m->event, m->value, why);
}

/* Hand emptied receive buffer i of port p back to the device (without kicking). */
static void post_rx(struct vio_console_port *p, uint16_t i)
{
	struct vio_console_buf *b = &p->rx[i];
	struct vio_sg sg = {b->data, VIO_CONSOLE_BUF_SIZE};

	b->len = 0;
	b->pos = 0;
	vio_vq_add(p->rxq, &sg, 0, 1, b);
}

/* Forget what the port held and post its filled receive buffers again. */
static void drop_rx(struct vio_console_port *p)
{
	while (p->rx_count) {
		post_rx(p, p->rx_ready[p->rx_head]);
		p->rx_head = (uint16_t)((p->rx_head + 1) % VIO_CONSOLE_RX_BUFS);
		p->rx_count--;
	}
	vio_vq_kick(p->rxq);
}

static void port_reset_state(struct vio_console_port *p)
{
	p->is_console = false;
	p->host_open = false;
	p->guest_open = false;
	p->cols = 0;
	p->rows = 0;
	p->name[0] = '\0';
}

static int set_guest_open(struct vio_console *con, struct vio_console_port *p, bool open)
{
	int err = ctrl_send(con, p->id, VIRTIO_CONSOLE_PORT_OPEN, open ? 1 : 0);
	if (err == 0)
		p->guest_open = open;
	return err;
}

static void port_add(struct vio_console *con, const struct virtio_console_control *m)
{
	struct vio_console_port *p = port_of(con, m->id);

	/* A port we have no queues for: tell the device it failed, as 5.3.6.2 asks. */
	if (!p) {
		con->stats.ports_refused++;
		if (device_log_ok(con))
			vio_logf(con->dev->port, VIO_LOG_WARN,
				 "%s: port %u beyond the %u served, refused", con_name, m->id,
				 con->nports);
		ctrl_send(con, m->id, VIRTIO_CONSOLE_PORT_READY, 0);
		return;
	}
	if (p->present) {
		ctrl_bad(con, m, "port already added");
		return;
	}
	port_reset_state(p);
	p->present = true;
	ctrl_send(con, m->id, VIRTIO_CONSOLE_PORT_READY, 1);
	emit(con, p->id, VIO_CONSOLE_EV_PORT_ADDED);
	if (p->id == 0)
		read_size(con);
}

static void port_remove(struct vio_console *con, struct vio_console_port *p)
{
	p->present = false;
	port_reset_state(p);
	drop_rx(p);
	emit(con, p->id, VIO_CONSOLE_EV_PORT_REMOVED);
}

/*
 * The name follows the header, up to the message's end or a NUL (QEMU sends one); keep what
 * fits. The host chooses it and kernels print it, so only printable ASCII is kept: every
 * other byte (a terminal escape, a newline) becomes '?'.
 */
static void port_name(struct vio_console *con, struct vio_console_port *p, const uint8_t *name,
		      uint32_t len)
{
	uint32_t keep;

	for (uint32_t i = 0; i < len; i++) {
		if (name[i] == 0) {
			len = i;
			break;
		}
	}
	keep = len < VIO_CONSOLE_NAME_MAX - 1 ? len : VIO_CONSOLE_NAME_MAX - 1;
	for (uint32_t i = 0; i < keep; i++) {
		uint8_t c = name[i];
		p->name[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	p->name[keep] = '\0';
	if (keep < len && device_log_ok(con))
		vio_logf(con->dev->port, VIO_LOG_WARN, "%s: port %u name cut to %u bytes", con_name,
			 p->id, keep);
	emit(con, p->id, VIO_CONSOLE_EV_PORT_NAMED);
}

static void handle_ctrl(struct vio_console *con, const uint8_t *data, uint32_t len)
{
	struct virtio_console_control m;

	if (len < sizeof(m)) {
		m = (struct virtio_console_control){0};
		ctrl_bad(con, &m, "shorter than a header");
		return;
	}
	copy_bytes(&m, data, sizeof(m));
	con->stats.ctrl_rx++;
	if (m.event == VIRTIO_CONSOLE_DEVICE_ADD) {
		port_add(con, &m);
		return;
	}

	struct vio_console_port *p = port_of(con, m.id);
	if (!p || !p->present) {
		ctrl_bad(con, &m, "no such port");
		return;
	}
	const uint8_t *payload = data + sizeof(m);
	uint32_t plen = len - (uint32_t)sizeof(m);

	switch (m.event) {
	case VIRTIO_CONSOLE_DEVICE_REMOVE:
		port_remove(con, p);
		break;
	case VIRTIO_CONSOLE_CONSOLE_PORT:
		/* A console is open from the start: say so, or QEMU keeps its input from us. */
		p->is_console = true;
		if (!p->guest_open)
			set_guest_open(con, p, true);
		emit(con, p->id, VIO_CONSOLE_EV_CONSOLE);
		break;
	case VIRTIO_CONSOLE_RESIZE: {
		struct virtio_console_resize size;
		if (plen < sizeof(size)) {
			ctrl_bad(con, &m, "resize without a size");
			break;
		}
		copy_bytes(&size, payload, sizeof(size));
		p->cols = size.cols;
		p->rows = size.rows;
		emit(con, p->id, VIO_CONSOLE_EV_RESIZE);
		break;
	}
	case VIRTIO_CONSOLE_PORT_OPEN:
		p->host_open = m.value != 0;
		emit(con, p->id,
		     p->host_open ? VIO_CONSOLE_EV_HOST_OPENED : VIO_CONSOLE_EV_HOST_CLOSED);
		break;
	case VIRTIO_CONSOLE_PORT_NAME:
		port_name(con, p, payload, plen);
		break;
	default:
		ctrl_bad(con, &m, "unknown event");
		break;
	}
}

static void post_ctrl_rx(struct vio_console *con, struct vio_console_buf *b)
{
	struct vio_sg sg = {b->data, VIO_CONSOLE_CTRL_BUF_SIZE};

	vio_vq_add(ctrl_rxq(con), &sg, 0, 1, b);
}

/*
 * Reap the control queues. Returns VIO_EIO when either is broken. A message's buffer goes
 * back to the device only after the reaping: posted at once, a device that answers every
 * buffer the moment it sees it would keep this loop going forever. So the loop sees each
 * buffer that was with the device at most once.
 */
static int poll_ctrl(struct vio_console *con)
{
	struct vio_vq_used u;
	struct vio_console_buf *done[VIO_CONSOLE_CTRL_BUFS];
	uint16_t ndone = 0;
	int err, ret = 0;

	while ((err = vio_vq_get_used(ctrl_rxq(con), &u)) == 0) {
		struct vio_console_buf *b = u.cookie;
		/* The core checked the id was in flight: the cookie is one of our buffers. */
		VIO_ASSERT(b >= con->con_ctrl_rx && b < con->con_ctrl_rx + con->con_nctrl_rx &&
			   ndone < con->con_nctrl_rx);
		if (used_len_ok(con, &u, "control message"))
			handle_ctrl(con, b->data, u.len);
		done[ndone++] = b;
	}
	if (err != VIO_EAGAIN)
		ret = err;
	for (uint16_t k = 0; k < ndone; k++)
		post_ctrl_rx(con, done[k]);
	vio_vq_kick(ctrl_rxq(con));

	while ((err = vio_vq_get_used(ctrl_txq(con), &u)) == 0) {
		struct vio_console_buf *b = u.cookie;
		uint16_t slot = (uint16_t)(b - con->con_ctrl_tx);
		VIO_ASSERT(slot < con->con_nctrl_tx && con->con_ctrl_tx_nfree < con->con_nctrl_tx);
		con->con_ctrl_tx_free[con->con_ctrl_tx_nfree++] = slot;
	}
	if (err != VIO_EAGAIN)
		ret = err;
	ctrl_flush(con);
	return ret;
}

/* --- port data ------------------------------------------------------------------------------ */

/*
 * Reap one port's queues. Returns VIO_EIO when either is broken. As for the control queue,
 * an empty (or lying) receive buffer goes back only after the reaping, so the loop ends.
 */
static int poll_port(struct vio_console *con, struct vio_console_port *p)
{
	struct vio_vq_used u;
	uint16_t empty[VIO_CONSOLE_RX_BUFS], nempty = 0;
	int err, ret = 0;
	bool got_data = false, freed = false;

	while ((err = vio_vq_get_used(p->rxq, &u)) == 0) {
		struct vio_console_buf *b = u.cookie;
		uint16_t i = (uint16_t)(b - p->rx);
		/* The core checked the id was in flight: the cookie is one of this port's. */
		VIO_ASSERT(i < p->nrx);
		if (!used_len_ok(con, &u, "receive") || u.len == 0) {
			VIO_ASSERT(nempty < p->nrx);
			empty[nempty++] = i;
			continue;
		}
		b->len = u.len;
		b->pos = 0;
		VIO_ASSERT(p->rx_count < p->nrx); /* it was with the device, not in the FIFO */
		p->rx_ready[(p->rx_head + p->rx_count) % VIO_CONSOLE_RX_BUFS] = i;
		p->rx_count++;
		got_data = true;
	}
	if (err != VIO_EAGAIN)
		ret = err;
	for (uint16_t k = 0; k < nempty; k++)
		post_rx(p, empty[k]);
	vio_vq_kick(p->rxq);

	while ((err = vio_vq_get_used(p->txq, &u)) == 0) {
		struct vio_console_buf *b = u.cookie;
		uint16_t slot = (uint16_t)(b - p->tx);
		VIO_ASSERT(slot < p->ntx && p->tx_nfree < p->ntx);
		p->tx_free[p->tx_nfree++] = slot;
		freed = true;
	}
	if (err != VIO_EAGAIN)
		ret = err;

	if (got_data)
		emit(con, p->id, VIO_CONSOLE_EV_DATA);
	if (freed)
		emit(con, p->id, VIO_CONSOLE_EV_WRITABLE);
	return ret;
}

int vio_console_poll(struct vio_console *con)
{
	int err, ret = 0;

	/* Nested (from an event callback, or the kernel broke the one-caller rule): the outer
	 * call is already reaping and will see everything. */
	if (con->con_polling || !con->dev)
		return 0;
	/* A device may ask for a reset in its status alone (2.1.2): the core looks now and then. */
	err = vio_dev_poll(con->dev);
	if (err)
		return err;
	con->con_polling = true;
	if (con->multiport && (err = poll_ctrl(con)) != 0)
		ret = err;
	for (uint32_t id = 0; id < con->nports; id++)
		if ((err = poll_port(con, &con->con_ports[id])) != 0)
			ret = err;
	con->con_polling = false;
	return vio_dev_error(con->dev, ret);
}

static uint32_t rx_pending(const struct vio_console_port *p)
{
	uint32_t n = 0;

	for (uint16_t k = 0; k < p->rx_count; k++) {
		const struct vio_console_buf *b =
		    &p->rx[p->rx_ready[(p->rx_head + k) % VIO_CONSOLE_RX_BUFS]];
		n += b->len - b->pos;
	}
	return n;
}

/* The checks read and write share: a served, present port and a sane buffer. */
static int port_for_io(struct vio_console *con, uint32_t id, const void *buf, size_t len,
		       struct vio_console_port **out)
{
	struct vio_console_port *p = port_of(con, id);

	if (!p || !buf || len == 0 || len > INT32_MAX)
		return VIO_EINVAL;
	if (!p->present)
		return VIO_ENODEV;
	*out = p;
	return 0;
}

int vio_console_read(struct vio_console *con, uint32_t id, void *buf, size_t len)
{
	struct vio_console_port *p;
	uint8_t *out = buf;
	size_t got = 0;
	int err = port_for_io(con, id, buf, len, &p);

	if (err)
		return err;
	vio_console_poll(con);
	while (got < len && p->rx_count) {
		uint16_t i = p->rx_ready[p->rx_head];
		struct vio_console_buf *b = &p->rx[i];
		size_t chunk = b->len - b->pos;

		if (chunk > len - got)
			chunk = len - got;
		copy_bytes(out + got, b->data + b->pos, chunk);
		b->pos += (uint32_t)chunk;
		got += chunk;
		if (b->pos == b->len) {
			/* Only now does the device get this buffer back: that is the back-pressure.
			 */
			p->rx_head = (uint16_t)((p->rx_head + 1) % VIO_CONSOLE_RX_BUFS);
			p->rx_count--;
			post_rx(p, i);
		}
	}
	vio_vq_kick(p->rxq);
	con->stats.rx_bytes += got;
	if (got)
		return (int)got;
	return vio_vq_is_broken(p->rxq) ? vio_dev_error(con->dev, VIO_EIO) : VIO_EAGAIN;
}

/* Copy as much of src as there are free transmit buffers for, post them, kick. */
static size_t tx_fill(struct vio_console *con, struct vio_console_port *p, const uint8_t *src,
		      size_t n)
{
	size_t done = 0;

	while (done < n && p->tx_nfree) {
		uint16_t slot = p->tx_free[--p->tx_nfree];
		struct vio_console_buf *b = &p->tx[slot];
		size_t chunk = n - done < VIO_CONSOLE_BUF_SIZE ? n - done : VIO_CONSOLE_BUF_SIZE;
		struct vio_sg sg = {b->data, (uint32_t)chunk};

		copy_bytes(b->data, src + done, chunk);
		b->len = (uint32_t)chunk;
		if (vio_vq_add(p->txq, &sg, 1, 0, b) != 0) {
			p->tx_free[p->tx_nfree++] = slot;
			break;
		}
		done += chunk;
	}
	vio_vq_kick(p->txq);
	con->stats.tx_bytes += done;
	return done;
}

/*
 * A blocking call spun another VIO_CONSOLE_SPIN_NS since *since: let the caller in (opts.wait)
 * and start counting again.
 */
static void maybe_wait(struct vio_console *con, uint64_t now, uint64_t *since)
{
	const struct vio_port *port = con->dev->port;

	if (!con->con_opts.wait || now - *since < VIO_CONSOLE_SPIN_NS)
		return;
	con->con_opts.wait(con, con->con_opts.arg);
	*since = port->now_ns(port->ctx);
}

int vio_console_write(struct vio_console *con, uint32_t id, const void *buf, size_t len, bool block)
{
	struct vio_console_port *p;
	size_t queued = 0;
	uint64_t start = 0, last_taken = 0, spun_since = 0;
	bool counted_full = false;
	int err = port_for_io(con, id, buf, len, &p);

	if (err)
		return err;
	const struct vio_port *port = con->dev->port;
	for (;;) {
		size_t n = 0;

		vio_console_poll(con);
		if (vio_vq_is_broken(p->txq))
			return queued ? (int)queued : vio_dev_error(con->dev, VIO_EIO);
		if (!p->present)
			return queued ? (int)queued : VIO_ENODEV;
		/* QEMU throws away what reaches a port nobody on the host has open. */
		if (p->host_open)
			n = tx_fill(con, p, (const uint8_t *)buf + queued, len - queued);
		queued += n;
		if (queued == len)
			return (int)queued;
		if (!counted_full) {
			con->stats.tx_full++;
			counted_full = true;
		}
		if (!block)
			return queued ? (int)queued : VIO_EAGAIN;

		/* Two bounds: on the device taking nothing, and on the whole write. */
		uint64_t now = port->now_ns(port->ctx);
		if (!start)
			start = last_taken = spun_since = now;
		if (n)
			last_taken = now;
		if (now - last_taken > con->con_opts.timeout_ns ||
		    now - start > con->con_opts.deadline_ns)
			return queued ? (int)queued : vio_dev_error(con->dev, VIO_ETIMEDOUT);
		maybe_wait(con, now, &spun_since);
		if (port->delay_us)
			port->delay_us(port->ctx, CON_POLL_US);
	}
}

/* --- lookups -------------------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

int vio_console_find_port(const struct vio_console *con, const char *name)
{
	for (uint32_t id = 0; id < con->nports; id++)
		if (con->con_ports[id].present && str_eq(con->con_ports[id].name, name))
			return (int)id;
	return VIO_ENODEV;
}

int vio_console_find_console(const struct vio_console *con)
{
	for (uint32_t id = 0; id < con->nports; id++)
		if (con->con_ports[id].present && con->con_ports[id].is_console)
			return (int)id;
	return VIO_ENODEV;
}

int vio_console_port_info(const struct vio_console *con, uint32_t id,
			  struct vio_console_port_info *info)
{
	if (id >= con->nports)
		return VIO_EINVAL;
	const struct vio_console_port *p = &con->con_ports[id];

	*info = (struct vio_console_port_info){
	    .id = id,
	    .present = p->present,
	    .is_console = p->is_console,
	    .host_open = p->host_open,
	    .guest_open = p->guest_open,
	    .cols = p->cols,
	    .rows = p->rows,
	    .rx_pending = rx_pending(p),
	};
	copy_bytes(info->name, p->name, sizeof(info->name));
	return p->present ? 0 : VIO_ENODEV;
}

static int open_close(struct vio_console *con, uint32_t id, bool open)
{
	struct vio_console_port *p = port_of(con, id);

	if (!p)
		return VIO_EINVAL;
	if (!p->present)
		return VIO_ENODEV;
	if (!con->multiport)
		return 0;
	return set_guest_open(con, p, open);
}

int vio_console_open(struct vio_console *con, uint32_t id)
{
	return open_close(con, id, true);
}

int vio_console_close(struct vio_console *con, uint32_t id)
{
	return open_close(con, id, false);
}

int vio_console_emerg_write(struct vio_console *con, char c)
{
	uint32_t v = (uint8_t)c;

	if (!con->dev || !vio_dev_has_feature(con->dev, VIRTIO_CONSOLE_F_EMERG_WRITE))
		return VIO_ENOTSUP;
	/* 5.3.4: a write to emerg_wr sends its low byte to port 0, no queue involved. */
	return vio_dev_config_write(con->dev, offsetof(struct virtio_console_config, emerg_wr), &v,
				    sizeof(v));
}

/* --- bring-up and teardown -------------------------------------------------------------- */

/* F_SIZE: port 0's size lives in config space; a change comes as a config interrupt. */
static void read_size(struct vio_console *con)
{
	struct vio_console_port *p0 = &con->con_ports[0];
	uint16_t cols, rows;

	if (!vio_dev_has_feature(con->dev, VIRTIO_CONSOLE_F_SIZE))
		return;
	if (vio_dev_config_read(con->dev, offsetof(struct virtio_console_config, cols), &cols,
				sizeof(cols)) ||
	    vio_dev_config_read(con->dev, offsetof(struct virtio_console_config, rows), &rows,
				sizeof(rows)))
		return;
	if (cols == p0->cols && rows == p0->rows)
		return;
	p0->cols = cols;
	p0->rows = rows;
	emit(con, 0, VIO_CONSOLE_EV_RESIZE);
}

/* The core calls this on a configuration change interrupt (IRQ context). */
static void config_changed(struct vio_dev *dev, void *arg)
{
	(void)dev;
	read_size(arg);
}

/* Any queue's interrupt: reap everything (IRQ context). */
static void vq_done(struct vio_vq *vq, void *arg)
{
	(void)vq;
	vio_console_poll(arg);
}

/* How many ports to serve: 1 without MULTIPORT, else what the device allows, capped. */
static int count_ports(struct vio_console *con)
{
	uint32_t max;
	int err;

	con->nports = 1;
	if (!con->multiport)
		return 0;
	err = vio_dev_config_read(con->dev, offsetof(struct virtio_console_config, max_nr_ports),
				  &max, sizeof(max));
	if (err)
		return err;
	if (max > VIO_CONSOLE_MAX_PORTS)
		vio_logf(con->dev->port, VIO_LOG_INFO,
			 "%s: device allows %u ports, serving the first %u", con_name, max,
			 VIO_CONSOLE_MAX_PORTS);
	if (max > 1)
		con->nports = max < VIO_CONSOLE_MAX_PORTS ? max : VIO_CONSOLE_MAX_PORTS;

	/* A device whose max_nr_ports promises more queues than it has gets the ports it has. */
	uint32_t have = con->nports;
	while (have > 1 &&
	       (!con->dev->ops->queue_max_size(con->dev, VIRTIO_CONSOLE_Q_RX(have - 1)) ||
		!con->dev->ops->queue_max_size(con->dev, VIRTIO_CONSOLE_Q_TX(have - 1))))
		have--;
	if (have < con->nports)
		vio_logf(con->dev->port, VIO_LOG_WARN,
			 "%s: no queues for port %u, serving %u ports", con_name, have, have);
	con->nports = have;
	return 0;
}

/* Step 7 for the queues: the control pair, then every port's pair. */
static int setup_queues(struct vio_console *con)
{
	struct vio_dev *dev = con->dev;
	int err;

	err = vio_dev_setup_irqs(dev, con->con_vqs,
				 (uint16_t)(con->multiport ? 2 + 2 * con->nports : 2));
	if (err)
		return err;
	/* Each queue sized to the buffers it carries, every one a single segment: no tables. */
	struct vio_vq_opts ctrl_rx = {.max_size = VIO_CONSOLE_CTRL_BUFS, .direct_only = true};
	struct vio_vq_opts ctrl_tx = {.max_size = VIO_CONSOLE_CTRL_TX_BUFS, .direct_only = true};
	struct vio_vq_opts rx = {.max_size = VIO_CONSOLE_RX_BUFS, .direct_only = true};
	struct vio_vq_opts tx = {.max_size = VIO_CONSOLE_TX_BUFS, .direct_only = true};
	if (con->multiport) {
		err = vio_dev_setup_vq_opts(dev, VIRTIO_CONSOLE_Q_CTRL_RX, &ctrl_rx, vq_done, con);
		if (!err)
			err = vio_dev_setup_vq_opts(dev, VIRTIO_CONSOLE_Q_CTRL_TX, &ctrl_tx,
						    vq_done, con);
		if (err)
			return err;
	}
	for (uint32_t id = 0; id < con->nports; id++) {
		err = vio_dev_setup_vq_opts(dev, (uint16_t)VIRTIO_CONSOLE_Q_RX(id), &rx, vq_done,
					    con);
		if (!err)
			err = vio_dev_setup_vq_opts(dev, (uint16_t)VIRTIO_CONSOLE_Q_TX(id), &tx,
						    vq_done, con);
		if (err)
			return err;
	}
	return 0;
}

/* Buffers are cut out of DMA pages taken one at a time: none needs more than its page. */
struct carver {
	uint8_t *next;
	uint32_t left;
};

static uint8_t *carve(struct vio_console *con, struct carver *c, uint32_t bytes)
{
	const struct vio_port *port = con->dev->port;
	uint64_t phys;

	if (bytes > c->left) {
		VIO_ASSERT(con->con_npages < VIO_CONSOLE_DMA_PAGES);
		uint8_t *page = port->dma_alloc(port->ctx, VIO_CONSOLE_PAGE, &phys);
		if (!page)
			return NULL;
		con->con_pages[con->con_npages++] = page;
		c->next = page;
		c->left = VIO_CONSOLE_PAGE;
	}
	uint8_t *p = c->next;
	c->next += bytes;
	c->left -= bytes;
	return p;
}

/* Cut the buffers out of DMA pages and post every receive buffer. */
static int setup_buffers(struct vio_console *con)
{
	struct carver c = {0};
	uint8_t *mem;

	for (uint32_t id = 0; id < con->nports; id++) {
		struct vio_console_port *p = &con->con_ports[id];
		p->id = id;
		p->rxq = &con->con_vqs[VIRTIO_CONSOLE_Q_RX(id)];
		p->txq = &con->con_vqs[VIRTIO_CONSOLE_Q_TX(id)];
		p->nrx = min_u16(VIO_CONSOLE_RX_BUFS, p->rxq->size);
		p->ntx = min_u16(VIO_CONSOLE_TX_BUFS, p->txq->size);
		for (uint16_t i = 0; i < VIO_CONSOLE_RX_BUFS; i++) {
			if (!(mem = carve(con, &c, VIO_CONSOLE_BUF_SIZE)))
				return VIO_ENOMEM;
			p->rx[i] = (struct vio_console_buf){p, mem, 0, 0};
		}
		for (uint16_t i = 0; i < VIO_CONSOLE_TX_BUFS; i++) {
			if (!(mem = carve(con, &c, VIO_CONSOLE_BUF_SIZE)))
				return VIO_ENOMEM;
			p->tx[i] = (struct vio_console_buf){p, mem, 0, 0};
		}
		for (uint16_t i = 0; i < p->nrx; i++)
			post_rx(p, i);
		for (uint16_t i = 0; i < p->ntx; i++)
			p->tx_free[p->tx_nfree++] = i;
	}
	if (!con->multiport)
		return 0;

	con->con_nctrl_rx = min_u16(VIO_CONSOLE_CTRL_BUFS, ctrl_rxq(con)->size);
	con->con_nctrl_tx = min_u16(VIO_CONSOLE_CTRL_TX_BUFS, ctrl_txq(con)->size);
	for (uint16_t i = 0; i < VIO_CONSOLE_CTRL_BUFS; i++) {
		if (!(mem = carve(con, &c, VIO_CONSOLE_CTRL_BUF_SIZE)))
			return VIO_ENOMEM;
		con->con_ctrl_rx[i] = (struct vio_console_buf){NULL, mem, 0, 0};
	}
	for (uint16_t i = 0; i < VIO_CONSOLE_CTRL_TX_BUFS; i++) {
		if (!(mem = carve(con, &c, sizeof(struct virtio_console_control))))
			return VIO_ENOMEM;
		con->con_ctrl_tx[i] = (struct vio_console_buf){NULL, mem, 0, 0};
	}
	for (uint16_t i = 0; i < con->con_nctrl_rx; i++)
		post_ctrl_rx(con, &con->con_ctrl_rx[i]);
	for (uint16_t i = 0; i < con->con_nctrl_tx; i++)
		con->con_ctrl_tx_free[con->con_ctrl_tx_nfree++] = i;
	return 0;
}

/*
 * After DEVICE_READY the device announces its ports, we answer each, and it follows up with
 * names and open states: two round trips. Poll until the control queue has been quiet for
 * VIO_CONSOLE_SETTLE_NS (bounded by the timeout against a chatty device).
 */
static void settle(struct vio_console *con)
{
	const struct vio_port *port = con->dev->port;
	uint64_t start = port->now_ns(port->ctx), quiet_since = start, spun_since = start;
	uint64_t seen = con->stats.ctrl_rx + con->stats.ctrl_bad;

	for (;;) {
		vio_console_poll(con);
		uint64_t now = port->now_ns(port->ctx);
		maybe_wait(con, now, &spun_since);
		if (con->stats.ctrl_rx + con->stats.ctrl_bad != seen) {
			seen = con->stats.ctrl_rx + con->stats.ctrl_bad;
			quiet_since = now;
		}
		if (now - quiet_since > VIO_CONSOLE_SETTLE_NS ||
		    now - start > con->con_opts.timeout_ns)
			return;
		if (port->delay_us)
			port->delay_us(port->ctx, CON_POLL_US);
	}
}

static void free_buffers(struct vio_console *con)
{
	const struct vio_port *port = con->dev->port;

	for (uint16_t i = 0; i < con->con_npages; i++)
		port->dma_free(port->ctx, con->con_pages[i], VIO_CONSOLE_PAGE);
	con->con_npages = 0;
}

int vio_console_init(struct vio_console *con, struct vio_dev *dev,
		     const struct vio_console_opts *opts)
{
	int err;

	*con = (struct vio_console){0};
	if (dev->device_id != VIRTIO_ID_CONSOLE)
		return VIO_ENODEV;
	if (opts)
		con->con_opts = *opts;
	if (!con->con_opts.timeout_ns)
		con->con_opts.timeout_ns = VIO_CONSOLE_TIMEOUT_NS;
	if (!con->con_opts.deadline_ns)
		con->con_opts.deadline_ns = VIO_CONSOLE_DEADLINE_NS;
	con->dev = dev;
	dev->name = con_name;

	/* 3.1.1 steps 1-6: every feature of 5.3.3 is optional and we take all three. */
	err = vio_dev_begin(dev, VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE) |
				     VIRTIO_BIT(VIRTIO_CONSOLE_F_MULTIPORT) |
				     VIRTIO_BIT(VIRTIO_CONSOLE_F_EMERG_WRITE));
	if (err)
		goto fail;
	con->multiport = vio_dev_has_feature(dev, VIRTIO_CONSOLE_F_MULTIPORT);

	/* Step 7: queues and buffers. Without MULTIPORT port 0 simply exists and is open. */
	err = count_ports(con);
	if (!err)
		err = setup_queues(con);
	if (!err)
		err = setup_buffers(con);
	if (err)
		goto fail;
	if (!con->multiport) {
		struct vio_console_port *p0 = &con->con_ports[0];
		p0->present = p0->is_console = p0->host_open = p0->guest_open = true;
	}
	read_size(con);
	vio_dev_set_config_callback(dev, config_changed, con);

	/* Step 8, then the first notifications: none may precede DRIVER_OK (3.1.1). */
	err = vio_dev_driver_ok(dev);
	if (err)
		goto fail;
	for (uint32_t id = 0; id < con->nports; id++)
		vio_vq_kick(con->con_ports[id].rxq);
	if (con->multiport) {
		vio_vq_kick(ctrl_rxq(con));
		ctrl_send(con, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
		settle(con);
	}
	con->con_live = true; /* from here on, events reach opts.on_event */
	return 0;

fail:
	driver_abort(dev, con_name, err);
	free_buffers(con);
	con->dev = NULL;
	return err;
}

int vio_console_fini(struct vio_console *con)
{
	if (!con->dev)
		return 0;
	/* Reset first: after it the device no longer touches our buffers or raises interrupts. */
	vio_dev_set_config_callback(con->dev, NULL, NULL);
	int err = vio_dev_teardown(con->dev);
	if (err) {
		/* Unless the reset did not happen: then it still may. Keep them, give up on it. */
		vio_logf(con->dev->port, VIO_LOG_ERR,
			 "%s: reset not confirmed: keeping the buffers, device failed", con_name);
		vio_dev_fail(con->dev);
		con->con_npages = 0;
	}
	free_buffers(con);
	for (uint32_t id = 0; id < con->nports; id++)
		con->con_ports[id].present = false;
	con->nports = 0;
	con->dev = NULL;
	return err;
}
