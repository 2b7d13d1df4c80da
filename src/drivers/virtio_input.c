/*
 * virtio-input: keyboards, mice and tablets (virtio 1.2 section 5.8). See include/vio/input.h.
 *
 * Exercised by QEMU with
 *
 *	-device virtio-keyboard-pci -device virtio-tablet-pci   (or virtio-mouse-pci)
 *
 * The device speaks Linux evdev: each event is a type (EV_KEY, EV_REL, EV_ABS, ...), a code
 * (KEY_A, REL_X, ABS_Y, ...) and a value, and an EV_SYN/SYN_REPORT closes a group that
 * belongs together (a pointer's x and y). What it can send it announces in its config space
 * (5.8.4): the driver writes a select (and a subsel) and reads the answer's size and bytes.
 * Events come on the eventq in buffers of one event each, which the driver keeps posted;
 * the driver's own events (LED state) go to the device on the statusq.
 *
 * Follow one request (a key press):
 *	vio_input_init   post_event puts every buffer on the eventq
 *	vio_input_poll   takes at most opts.budget used buffers off the ring
 *	event_ok         length, type, code and value against what the device announced
 *	opts.on_event    the owner's handler; then post_event gives the buffer back
 */
#include <vio/input.h>

#include "driver.h"

#define IN_PAGE	       4096u
#define IN_STATUS_OFF  2048u /* the status slots, after the event buffers */
#define IN_STATUS_SLOT 8u    /* one event: the device reads one per buffer */

_Static_assert(VIO_INPUT_EVENT_BUFS * sizeof(struct virtio_input_event) <= IN_STATUS_OFF,
	       "event buffers must fit before the status slots");
_Static_assert(IN_STATUS_OFF + VIO_INPUT_STATUS_SLOTS * IN_STATUS_SLOT <= IN_PAGE, "one page");
_Static_assert(VIO_INPUT_EVENT_BUFS <= 65535, "VIO_INPUT_EVENT_BUFS out of range");

static const char in_name[] = "virtio-input";

static struct virtio_input_event *event_buf(struct vio_input *in, uint16_t i)
{
	return (struct virtio_input_event *)in->in_dma + i;
}

static int post_event(struct vio_input *in, uint16_t i)
{
	struct vio_sg sg = {event_buf(in, i), sizeof(struct virtio_input_event)};

	return vio_vq_add(&in->in_vq[VIRTIO_INPUT_Q_EVENT], &sg, 0, 1, event_buf(in, i));
}

/* --- config (5.8.4) --------------------------------------------------------------------- */

int vio_input_config(struct vio_input *in, uint8_t select, uint8_t subsel, void *buf, uint32_t len)
{
	const uint32_t u_off = offsetof(struct virtio_input_config, u);
	struct vio_dev *dev = in->dev;
	uint8_t size;
	int err;

	if (!dev || (!buf && len))
		return VIO_EINVAL;
	err = vio_dev_config_write(dev, offsetof(struct virtio_input_config, select), &select, 1);
	if (!err)
		err = vio_dev_config_write(dev, offsetof(struct virtio_input_config, subsel),
					   &subsel, 1);
	if (!err)
		err =
		    vio_dev_config_read(dev, offsetof(struct virtio_input_config, size), &size, 1);
	if (err)
		return err;
	/* The device's size is bounded by the union, by the config space it really has, and by
	 * the caller's buffer. */
	uint32_t n = size;
	if (n > VIO_INPUT_STR_MAX)
		n = VIO_INPUT_STR_MAX;
	if (dev->config_len <= u_off)
		n = 0;
	else if (n > dev->config_len - u_off)
		n = dev->config_len - u_off;
	if (n > len)
		n = len;
	if (n) {
		err = vio_dev_config_read(dev, u_off, buf, n);
		if (err)
			return err;
	}
	return (int)n;
}

/* A string select into a NUL-terminated buffer of VIO_INPUT_STR_MAX + 1 bytes; a NUL or a
 * byte that is not printable ASCII ends it (the device's string is not terminated). */
static void read_string(struct vio_input *in, uint8_t select, char *out)
{
	int n = vio_input_config(in, select, 0, out, VIO_INPUT_STR_MAX);
	int i = 0;

	while (i < n && out[i] >= 0x20 && out[i] < 0x7f)
		i++;
	out[i] = '\0';
}

static void read_config(struct vio_input *in)
{
	uint8_t bits[VIO_INPUT_STR_MAX];

	read_string(in, VIRTIO_INPUT_CFG_ID_NAME, in->name);
	read_string(in, VIRTIO_INPUT_CFG_ID_SERIAL, in->serial);
	if (vio_input_config(in, VIRTIO_INPUT_CFG_ID_DEVIDS, 0, &in->ids, sizeof(in->ids)) !=
	    (int)sizeof(in->ids))
		in->ids = (struct virtio_input_devids){0};
	/* EV_BITS per type: a type the device sends has a non-empty bitmap of codes. */
	for (uint8_t t = 1; t <= VIRTIO_INPUT_EV_MAX; t++) {
		int n = vio_input_config(in, VIRTIO_INPUT_CFG_EV_BITS, t, bits, sizeof(bits));
		bool any = false;
		for (int k = 0; k < n; k++)
			any |= bits[k] != 0;
		if (!any)
			continue;
		in->ev_types |= 1u << t;
		if (t < VIO_INPUT_CHECKED_TYPES)
			for (int k = 0; k < n; k++)
				in->in_bits[t][k] = bits[k];
	}
	for (uint8_t axis = 0; axis < 2; axis++) {
		struct virtio_input_absinfo *a = &in->abs[axis];
		if (!vio_input_has_code(in, VIRTIO_INPUT_EV_ABS, axis) ||
		    vio_input_config(in, VIRTIO_INPUT_CFG_ABS_INFO, axis, a, sizeof(*a)) !=
			(int)sizeof(*a) ||
		    (int32_t)a->min > (int32_t)a->max)
			*a = (struct virtio_input_absinfo){0};
	}
}

bool vio_input_has_code(const struct vio_input *in, uint16_t type, uint16_t code)
{
	if (type > VIRTIO_INPUT_EV_MAX || !(in->ev_types & (1u << type)))
		return false;
	if (type >= VIO_INPUT_CHECKED_TYPES)
		return true;
	return code < VIO_INPUT_STR_MAX * 8 && (in->in_bits[type][code / 8] & (1u << code % 8));
}

/* --- events (5.8.6) ----------------------------------------------------------------------- */

static bool event_ok(const struct vio_input *in, const struct virtio_input_event *ev)
{
	if (ev->type == VIRTIO_INPUT_EV_SYN)
		return true;
	if (!vio_input_has_code(in, ev->type, ev->code))
		return false;
	if (ev->type == VIRTIO_INPUT_EV_KEY)
		return ev->value <= 2; /* release, press, autorepeat */
	if (ev->type == VIRTIO_INPUT_EV_ABS && ev->code < 2) {
		const struct virtio_input_absinfo *a = &in->abs[ev->code];
		return (int32_t)ev->value >= (int32_t)a->min &&
		       (int32_t)ev->value <= (int32_t)a->max;
	}
	return true;
}

static void bad_event(struct vio_input *in, const char *why, uint32_t a, uint32_t b)
{
	in->stats.bad_events++;
	if (!in->in_warned)
		vio_logf(in->dev->port, VIO_LOG_ERR, "%s: %s (%u, %u): event dropped", in_name, why,
			 a, b);
	in->in_warned = true;
}

static void status_reap(struct vio_input *in)
{
	struct vio_vq_used u;

	while (vio_vq_get_used(&in->in_vq[VIRTIO_INPUT_Q_STATUS], &u) == 0) {
		uint32_t slot =
		    (uint32_t)((uint8_t *)u.cookie - (in->in_dma + IN_STATUS_OFF)) / IN_STATUS_SLOT;
		VIO_ASSERT(slot < VIO_INPUT_STATUS_SLOTS &&
			   in->in_status_nfree < VIO_INPUT_STATUS_SLOTS);
		in->in_status_free[in->in_status_nfree++] = (uint8_t)slot;
	}
}

int vio_input_poll(struct vio_input *in)
{
	struct vio_vq *vq;
	struct vio_vq_used u;
	uint16_t done[VIO_INPUT_EVENT_BUFS];
	uint32_t ndone = 0, delivered = 0;
	int err;

	if (!in->dev)
		return VIO_EINVAL;
	vq = &in->in_vq[VIRTIO_INPUT_Q_EVENT];
	err = vio_dev_poll(in->dev);
	if (err)
		return err;
	status_reap(in);
	/*
	 * At most `budget` events, and each buffer goes back only after the loop: a device
	 * that floods, or answers every buffer the moment it is posted, cannot keep the owner
	 * here.
	 */
	while (ndone < in->in_opts.budget && ndone < in->in_nbufs &&
	       (err = vio_vq_get_used(vq, &u)) == 0) {
		struct virtio_input_event *b = u.cookie;
		uint16_t i = (uint16_t)(b - event_buf(in, 0));
		VIO_ASSERT(i < in->in_nbufs); /* the core checked it was in flight */
		done[ndone++] = i;
		/* Copied once: the device could still rewrite the buffer under us. */
		struct virtio_input_event ev = *(volatile struct virtio_input_event *)b;
		if (u.len != sizeof(ev)) {
			bad_event(in, "event length (length, expected)", u.len, sizeof(ev));
			continue;
		}
		if (!event_ok(in, &ev)) {
			bad_event(in, "event not announced or out of range (type, code)", ev.type,
				  ev.code);
			continue;
		}
		in->stats.events++;
		delivered++;
		if (in->in_opts.on_event)
			in->in_opts.on_event(in, &ev, in->in_opts.arg);
	}
	for (uint32_t k = 0; k < ndone; k++)
		post_event(in, done[k]);
	vio_vq_kick(vq);
	if (err != 0 && err != VIO_EAGAIN)
		return err;
	return (int)delivered;
}

int vio_input_set_led(struct vio_input *in, uint16_t code, bool on)
{
	struct vio_vq *vq;

	if (!in->dev)
		return VIO_EINVAL;
	if (code >= 32)
		return VIO_ENOTSUP;
	vq = &in->in_vq[VIRTIO_INPUT_Q_STATUS];
	status_reap(in);
	if (!in->in_status_nfree) {
		in->stats.status_busy++;
		return VIO_EAGAIN;
	}
	/*
	 * One EV_LED event in a buffer of its own: the device takes one event per buffer
	 * (5.8.6). No SYN_REPORT follows it: QEMU 7.2 rejects any status event but EV_LED
	 * ("unknown type 0"), and the LED state is whole in the one event.
	 */
	uint8_t slot = in->in_status_free[--in->in_status_nfree];
	struct virtio_input_event *ev =
	    (struct virtio_input_event *)(in->in_dma + IN_STATUS_OFF + slot * IN_STATUS_SLOT);
	*ev = (struct virtio_input_event){VIRTIO_INPUT_EV_LED, code, on ? 1u : 0u};
	struct vio_sg sg = {ev, sizeof(*ev)};
	int err = vio_vq_add(vq, &sg, 1, 0, ev);
	if (err) {
		in->in_status_free[in->in_status_nfree++] = slot;
		return err;
	}
	vio_vq_kick(vq);
	in->stats.status_sent++;
	in->leds = on ? in->leds | (1u << code) : in->leds & ~(1u << code);
	return 0;
}

/* --- init and fini ------------------------------------------------------------------------ */

static void free_dma(struct vio_input *in)
{
	if (in->in_dma)
		in->dev->port->dma_free(in->dev->port->ctx, in->in_dma, IN_PAGE);
	in->in_dma = NULL;
}

int vio_input_init(struct vio_input *in, struct vio_dev *dev, const struct vio_input_opts *opts)
{
	const struct vio_port *port = dev->port;
	int err;

	*in = (struct vio_input){0};
	if (dev->device_id != VIRTIO_ID_INPUT)
		return VIO_ENODEV;
	if (opts)
		in->in_opts = *opts;
	if (!in->in_opts.budget)
		in->in_opts.budget = VIO_INPUT_BUDGET;
	in->dev = dev;
	dev->name = in_name;

	/* 3.1.1 steps 1-6: the input device has no feature bits (5.8.3). */
	err = vio_dev_begin(dev, 0);
	if (err)
		goto fail;
	/* 5.8.5: the driver reads what the device announces before it uses the queues. */
	read_config(in);

	/* Step 7: the eventq and the statusq (5.8.2). */
	err = vio_dev_setup_irqs(dev, in->in_vq, VIRTIO_INPUT_NUM_QUEUES);
	if (!err)
		err = vio_dev_setup_vq(dev, VIRTIO_INPUT_Q_EVENT, VIO_INPUT_EVENT_BUFS, NULL, in);
	if (!err)
		err =
		    vio_dev_setup_vq(dev, VIRTIO_INPUT_Q_STATUS, VIO_INPUT_STATUS_SLOTS, NULL, in);
	if (err)
		goto fail;
	vio_vq_disable_cb(&in->in_vq[VIRTIO_INPUT_Q_STATUS]);
	in->in_dma = port->dma_alloc(port->ctx, IN_PAGE, &in->in_dma_phys);
	if (!in->in_dma) {
		err = VIO_ENOMEM;
		goto fail;
	}
	uint16_t qsize = in->in_vq[VIRTIO_INPUT_Q_EVENT].size;
	in->in_nbufs = qsize < VIO_INPUT_EVENT_BUFS ? qsize : VIO_INPUT_EVENT_BUFS;
	for (uint16_t i = 0; i < in->in_nbufs; i++) {
		err = post_event(in, i);
		if (err)
			goto fail;
	}
	uint16_t ssize = in->in_vq[VIRTIO_INPUT_Q_STATUS].size;
	in->in_status_nfree =
	    ssize < VIO_INPUT_STATUS_SLOTS ? (uint8_t)ssize : VIO_INPUT_STATUS_SLOTS;
	for (uint8_t i = 0; i < in->in_status_nfree; i++)
		in->in_status_free[i] = i;

	/* Step 8; the device may be notified only after DRIVER_OK (3.1.1). */
	err = vio_dev_driver_ok(dev);
	if (err)
		goto fail;
	vio_vq_kick(&in->in_vq[VIRTIO_INPUT_Q_EVENT]);
	return 0;

fail:
	driver_abort(dev, in_name, err);
	if (!vio_dev_is_dead(dev))
		free_dma(in);
	in->dev = NULL;
	return err;
}

int vio_input_fini(struct vio_input *in)
{
	if (!in->dev)
		return 0;
	int err = vio_dev_teardown(in->dev);
	if (err) {
		vio_logf(in->dev->port, VIO_LOG_ERR,
			 "%s: reset not confirmed: keeping the buffers, device failed", in_name);
		vio_dev_fail(in->dev);
		in->in_dma = NULL;
	}
	free_dma(in);
	in->dev = NULL;
	return err;
}
