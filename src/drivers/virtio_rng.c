/*
 * virtio-rng: the entropy device (virtio 1.2 section 5.4). See include/vio/rng.h.
 *
 * Exercised by QEMU with
 *
 *	-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0
 *
 * (or plain -device virtio-rng-pci, which reads the host's /dev/urandom the same way).
 *
 * The device has one queue and no configuration. We give it VIO_RNG_BUFS empty buffers at
 * once; it fills them as the host's entropy source allows and hands each back with the count
 * of bytes it wrote, which may be anything from 0 to the buffer's size (5.4.6.1). A filled
 * buffer joins a FIFO of ready buffers; readers drain the FIFO front to back, wiping every
 * byte they take so the same entropy is never handed out twice, and a buffer goes back to the
 * device as soon as it is empty. So while nobody reads, all the buffers sit full and ready;
 * while someone reads fast, the device is always working on the rest.
 *
 * Follow one request:
 *	vio_rng_init    post_buf puts every empty buffer on the requestq, then one kick
 *	rng_vq_done     the requestq's interrupt runs vio_rng_poll (without one, a read polls)
 *	vio_rng_poll    takes each used buffer off the ring (vio_vq_get_used) to buf_done;
 *	                an empty one goes back to the device after the loop, so it ends
 *	buf_done        checks the length the device claims and queues the buffer as ready
 *	vio_rng_read    take() copies and wipes the bytes; post_buf gives the buffer back
 */
#include <vio/rng.h>
#include <vio/spec/virtio_rng.h>

#include "driver.h"

_Static_assert(VIO_RNG_BUFS >= 1 && VIO_RNG_BUFS <= 1024, "VIO_RNG_BUFS out of range");
_Static_assert(VIO_RNG_BUF_SIZE >= 1, "VIO_RNG_BUF_SIZE out of range");

/* How long a blocking read waits between looks at the used ring. */
#define VIO_RNG_POLL_US 10

static const char rng_name[] = "virtio-rng";

static void wipe(volatile uint8_t *p, size_t n)
{
	/* volatile: these stores must happen even though nobody reads the bytes again. */
	for (size_t i = 0; i < n; i++)
		p[i] = 0;
}

/* Give buffer i back to the device, empty. Its descriptor was freed when it completed. */
static int post_buf(struct vio_rng *rng, uint16_t i)
{
	struct vio_rng_buf *b = &rng->rng_buf[i];
	struct vio_sg sg = {b->data, VIO_RNG_BUF_SIZE};

	b->len = 0;
	b->pos = 0;
	int err = vio_vq_add(&rng->rng_vq, &sg, 0, 1, b);
	if (err == 0)
		rng->stats.requests++;
	return err;
}

/*
 * One completed buffer. A device may write fewer bytes than we offered, but never more: a
 * larger count means it scribbled past our buffer or lies, and either way the bytes cannot
 * be trusted as entropy. We count it, log it once, and treat the buffer as empty. Returns
 * true when the buffer came back empty and should go back to the device.
 */
static bool buf_done(struct vio_rng *rng, const struct vio_vq_used *u, uint16_t *i)
{
	struct vio_rng_buf *b = u->cookie;

	*i = (uint16_t)(b - rng->rng_buf);
	/* The core checked the id was in flight, so the cookie is one of ours. */
	VIO_ASSERT(*i < rng->rng_nbufs);
	rng->stats.completions++;
	if (u->len > u->in_len) {
		rng->stats.bad_len++;
		if (!rng->rng_warned_len)
			vio_logf(rng->dev->port, VIO_LOG_ERR,
				 "%s: device returned %u bytes for a %u-byte buffer, discarded",
				 rng_name, u->len, u->in_len);
		rng->rng_warned_len = true;
		return true;
	}
	if (u->len < u->in_len)
		rng->stats.short_fills++;
	if (u->len == 0)
		return true;
	b->len = u->len;
	VIO_ASSERT(rng->rng_ready_count < rng->rng_nbufs); /* it was with the device, not ready */
	rng->rng_ready[(rng->rng_ready_head + rng->rng_ready_count) % VIO_RNG_BUFS] = *i;
	rng->rng_ready_count++;
	return false;
}

static uint32_t ready_bytes(const struct vio_rng *rng)
{
	uint32_t n = 0;

	for (uint16_t k = 0; k < rng->rng_ready_count; k++) {
		const struct vio_rng_buf *b =
		    &rng->rng_buf[rng->rng_ready[(rng->rng_ready_head + k) % VIO_RNG_BUFS]];
		n += b->len - b->pos;
	}
	return n;
}

int vio_rng_poll(struct vio_rng *rng)
{
	struct vio_vq_used u;
	uint16_t empty[VIO_RNG_BUFS], nempty = 0, i;
	int err;

	/* A device may ask for a reset in its status alone (2.1.2): the core looks now and then. */
	err = vio_dev_poll(rng->dev);
	if (err)
		return err;
	/*
	 * A buffer that came back empty goes back to the device only after the reaping: posted
	 * at once, a device that completes every buffer the moment it sees it would keep this
	 * loop (and the interrupt handler it runs in) going forever. So the loop sees each
	 * buffer that was with the device at most once.
	 */
	while ((err = vio_vq_get_used(&rng->rng_vq, &u)) == 0) {
		if (buf_done(rng, &u, &i)) {
			VIO_ASSERT(nempty < rng->rng_nbufs);
			empty[nempty++] = i;
		}
	}
	for (uint16_t k = 0; k < nempty; k++)
		post_buf(rng, empty[k]);
	vio_vq_kick(&rng->rng_vq);
	if (err != VIO_EAGAIN)
		return vio_dev_error(rng->dev, err);
	return (int)ready_bytes(rng);
}

/* Move up to n ready bytes to out, wiping them and re-posting emptied buffers. */
static size_t take(struct vio_rng *rng, uint8_t *out, size_t n)
{
	size_t got = 0;

	while (got < n && rng->rng_ready_count) {
		uint16_t i = rng->rng_ready[rng->rng_ready_head];
		struct vio_rng_buf *b = &rng->rng_buf[i];
		size_t chunk = b->len - b->pos;

		VIO_ASSERT(b->pos < b->len); /* an emptied buffer leaves the FIFO at once */
		if (chunk > n - got)
			chunk = n - got;
		for (size_t k = 0; k < chunk; k++)
			out[got + k] = b->data[b->pos + k];
		wipe(b->data + b->pos, chunk);
		b->pos += (uint32_t)chunk;
		got += chunk;
		if (b->pos == b->len) {
			rng->rng_ready_head = (uint16_t)((rng->rng_ready_head + 1) % VIO_RNG_BUFS);
			rng->rng_ready_count--;
			post_buf(rng, i);
		}
	}
	rng->stats.bytes += got;
	return got;
}

int vio_rng_read(struct vio_rng *rng, void *buf, size_t len, bool block)
{
	const struct vio_port *port = rng->dev->port;
	const struct vio_rng_opts *o = &rng->rng_opts;
	uint8_t *out = buf;
	size_t got = 0;
	uint64_t start = 0, last_byte = 0, spun_since = 0;

	if (!buf || len == 0 || len > INT32_MAX)
		return VIO_EINVAL;
	for (;;) {
		int err = vio_rng_poll(rng);
		if (err < 0)
			return err;
		size_t n = take(rng, out + got, len - got);
		got += n;
		vio_vq_kick(&rng->rng_vq);
		if (got == len)
			break;
		if (!block)
			return got ? (int)got : VIO_EAGAIN;

		/* Two bounds: on silence (a dead source), and on the whole read (a trickle). */
		uint64_t now = port->now_ns(port->ctx);
		if (!start)
			start = last_byte = spun_since = now;
		if (n)
			last_byte = now;
		if (now - last_byte > o->timeout_ns || now - start > o->deadline_ns) {
			rng->stats.timeouts++;
			/* In ns: a 64-bit division would need libgcc on 32-bit machines. */
			vio_logf(port, VIO_LOG_WARN, "%s: %zu of %zu bytes in %llu ns, gave up",
				 rng_name, got, len, (unsigned long long)(now - start));
			return vio_dev_error(rng->dev, VIO_ETIMEDOUT);
		}
		/* Never spin longer than VIO_RNG_SPIN_NS without letting the caller in. */
		if (o->wait && now - spun_since >= VIO_RNG_SPIN_NS) {
			o->wait(rng, o->arg);
			spun_since = port->now_ns(port->ctx);
		}
		if (port->delay_us)
			port->delay_us(port->ctx, VIO_RNG_POLL_US);
	}
	return (int)got;
}

/* Called by the core when the requestq interrupts: in IRQ context. */
static void rng_vq_done(struct vio_vq *vq, void *arg)
{
	(void)vq;
	vio_rng_poll(arg);
}

static void free_bufs(struct vio_rng *rng)
{
	if (!rng->rng_dma)
		return;
	wipe(rng->rng_dma, (size_t)VIO_RNG_BUFS * VIO_RNG_BUF_SIZE);
	rng->dev->port->dma_free(rng->dev->port->ctx, rng->rng_dma,
				 (size_t)VIO_RNG_BUFS * VIO_RNG_BUF_SIZE);
	rng->rng_dma = NULL;
}

int vio_rng_init(struct vio_rng *rng, struct vio_dev *dev, const struct vio_rng_opts *opts)
{
	const struct vio_port *port = dev->port;
	int err;

	*rng = (struct vio_rng){0};
	if (dev->device_id != VIRTIO_ID_RNG)
		return VIO_ENODEV;
	if (opts)
		rng->rng_opts = *opts;
	if (!rng->rng_opts.timeout_ns)
		rng->rng_opts.timeout_ns = VIO_RNG_TIMEOUT_NS;
	if (!rng->rng_opts.deadline_ns)
		rng->rng_opts.deadline_ns = VIO_RNG_DEADLINE_NS;
	rng->dev = dev;
	dev->name = rng_name;

	/* 3.1.1 steps 1-6. The entropy device defines no feature bits (5.4.3). */
	err = vio_dev_begin(dev, 0);
	if (err)
		goto fail;

	/* Step 7: the requestq (5.4.2), sized to the buffers we keep posted. */
	err = vio_dev_setup_irqs(dev, &rng->rng_vq, VIRTIO_RNG_NUM_QUEUES);
	if (err)
		goto fail;
	/* One buffer per request: no indirect tables. */
	const struct vio_vq_opts vq_opts = {.max_size = VIO_RNG_BUFS, .direct_only = true};
	err = vio_dev_setup_vq_opts(dev, VIRTIO_RNG_Q_REQUEST, &vq_opts, rng_vq_done, rng);
	if (err)
		goto fail;
	rng->rng_nbufs = rng->rng_vq.size < VIO_RNG_BUFS ? rng->rng_vq.size : VIO_RNG_BUFS;

	rng->rng_dma =
	    port->dma_alloc(port->ctx, (size_t)VIO_RNG_BUFS * VIO_RNG_BUF_SIZE, &rng->rng_dma_phys);
	if (!rng->rng_dma) {
		err = VIO_ENOMEM;
		goto fail;
	}
	for (uint16_t i = 0; i < rng->rng_nbufs; i++) {
		rng->rng_buf[i].data = rng->rng_dma + (size_t)i * VIO_RNG_BUF_SIZE;
		err = post_buf(rng, i);
		if (err)
			goto fail;
	}

	/* Step 8. The device may not be notified before DRIVER_OK (3.1.1), so kick after it. */
	err = vio_dev_driver_ok(dev);
	if (err)
		goto fail;
	vio_vq_kick(&rng->rng_vq);
	return 0;

fail:
	driver_abort(dev, rng_name, err);
	free_bufs(rng);
	rng->dev = NULL;
	return err;
}

int vio_rng_fini(struct vio_rng *rng)
{
	if (!rng->dev)
		return 0;
	/* Reset first: after it the device no longer writes into our buffers. */
	int err = vio_dev_teardown(rng->dev);
	if (err) {
		/* Unless the reset did not happen: then it still may. Keep them, give up on it. */
		vio_logf(rng->dev->port, VIO_LOG_ERR,
			 "%s: reset not confirmed: keeping the buffers, device failed", rng_name);
		vio_dev_fail(rng->dev);
		rng->rng_dma = NULL;
	}
	free_bufs(rng);
	rng->rng_ready_count = 0;
	rng->dev = NULL;
	return err;
}
