/*
 * virtio-input: keyboards, mice, tablets (virtio 1.2 section 5.8).
 *
 * Context: events are delivered by vio_input_poll, inside the owner's call, to
 * opts.on_event. The driver has no interrupt-time work; an owner that sleeps until an
 * interrupt is woken by the eventq's and then polls.
 *
 *	struct vio_input in;                      caller-owned, like the vio_dev
 *	vio_input_init(&in, &dev, &opts);         config (name, serial, ids, event bits,
 *	                                          axes), every event buffer posted, DRIVER_OK
 *	vio_input_poll(&in);                      up to opts.budget events to opts.on_event
 *	vio_input_set_led(&in, LED_CAPSL, true);  the LED state, on the statusq
 *
 * The eventq is kept full: a buffer goes back to the device as soon as its event has been
 * handed on. Every event is checked before it is: its length must be one event, its type
 * one the device announced (EV_BITS), its code one of that type's announced codes, a key's
 * value 0, 1 or 2, an absolute axis' value inside the ABS_INFO range. Config strings are
 * read with their announced size bounded by the union and by the config space there is.
 *
 * Concurrency (include/vio/port.h): no locks, one caller at a time; nothing here is
 * IRQ-safe.
 */
#ifndef VIO_INPUT_H
#define VIO_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_input.h>
#include <vio/virtio.h>

/* Event buffers kept posted on the eventq (one DMA page holds them). */
#ifndef VIO_INPUT_EVENT_BUFS
#define VIO_INPUT_EVENT_BUFS 64
#endif
/* Events one vio_input_poll hands on at most (the default of opts.budget). */
#ifndef VIO_INPUT_BUDGET
#define VIO_INPUT_BUDGET 32
#endif
/* Status events (LED changes) that may be with the device at once. */
#define VIO_INPUT_STATUS_SLOTS 32
/* The longest config string: the union's size (5.8.4). */
#define VIO_INPUT_STR_MAX 128
/* Event types whose codes the driver checks against the device's EV_BITS: EV_SYN to EV_MSC. */
#define VIO_INPUT_CHECKED_TYPES 5

struct vio_input;

struct vio_input_stats {
	uint64_t events;      /* events handed to on_event */
	uint64_t bad_events;  /* events refused: wrong length, type, code or value */
	uint64_t status_sent; /* status events posted (LED changes) */
	uint64_t status_busy; /* ... refused: every status slot with the device */
};

struct vio_input_opts {
	/* One event, checked (see above). Called from vio_input_poll. */
	void (*on_event)(struct vio_input *in, const struct virtio_input_event *ev, void *arg);
	void *arg;
	uint32_t budget; /* events per vio_input_poll (0: VIO_INPUT_BUDGET) */
};

/* The device. Caller-owned; vio_input_init fills it. Public fields are read-only. */
struct vio_input {
	struct vio_dev *dev;
	struct vio_input_stats stats;
	char name[VIO_INPUT_STR_MAX + 1];   /* ID_NAME, NUL-terminated ("" when none) */
	char serial[VIO_INPUT_STR_MAX + 1]; /* ID_SERIAL */
	struct virtio_input_devids ids;	    /* ID_DEVIDS (zero when none) */
	uint32_t ev_types;		    /* bit t: the device sends events of type t */
	struct virtio_input_absinfo abs[2]; /* ABS_X, ABS_Y, when EV_ABS has them */
	uint32_t leds;			    /* LED state last sent, bit per LED code */

	/* --- private to virtio_input.c ---------------------------------------------------- */
	struct vio_input_opts in_opts;
	struct vio_vq in_vq[VIRTIO_INPUT_NUM_QUEUES];
	uint8_t *in_dma; /* one DMA page: the event buffers, then the status slots */
	uint64_t in_dma_phys;
	uint16_t in_nbufs;
	uint8_t in_bits[VIO_INPUT_CHECKED_TYPES][VIO_INPUT_STR_MAX]; /* EV_BITS per type */
	uint8_t in_status_free[VIO_INPUT_STATUS_SLOTS];
	uint8_t in_status_nfree;
	bool in_warned;
};

/*
 * Bring up an input device `dev` has been probed into: read its name, serial, ids, event
 * types and their codes, and the X/Y axes' ranges; set up the eventq and statusq; post every
 * event buffer; DRIVER_OK. opts may be NULL (events are then counted and dropped). Returns
 * 0; VIO_ENODEV (not an input device); VIO_ENOMEM; or the core's error. On failure the
 * device is torn down and nothing stays allocated.
 */
int vio_input_init(struct vio_input *in, struct vio_dev *dev, const struct vio_input_opts *opts);

/*
 * Hand up to opts.budget events to opts.on_event and give their buffers back, and take
 * back the status slots the device is done with. Returns the events handed on, or
 * VIO_EIO / VIO_ENEEDRESET / VIO_EDEAD for a device that is gone.
 */
int vio_input_poll(struct vio_input *in);

/*
 * Read config select/subsel (5.8.4) into buf: up to len bytes of the union, as many as
 * the device says it has (size), bounded by the union and the config space. Returns the
 * bytes copied (0: the device has nothing for it), or VIO_EINVAL / VIO_EIO.
 */
int vio_input_config(struct vio_input *in, uint8_t select, uint8_t subsel, void *buf, uint32_t len);

/* True when the device announced events of `type` with `code` (EV_BITS). */
bool vio_input_has_code(const struct vio_input *in, uint16_t type, uint16_t code);

/*
 * Tell the device an LED's state (one EV_LED event on the statusq: 5.8.6),
 * e.g. VIRTIO_INPUT_LED_CAPSL. Returns 0; VIO_ENOTSUP (the device has no such LED);
 * VIO_EAGAIN (the status slots are with the device); or the queue's error.
 */
int vio_input_set_led(struct vio_input *in, uint16_t code, bool on);

/* Reset the device and free what init allocated. Returns 0 or VIO_EDEAD (memory kept).
 * Safe after a failed init and twice. */
int vio_input_fini(struct vio_input *in);

#endif
