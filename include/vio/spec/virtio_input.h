/*
 * The input device: virtio 1.2 section 5.8 ("Input Device").
 *
 * Two queues (5.8.2): the device fills the driver's empty buffers on the eventq with
 * evdev-style events (Linux input-event-codes: EV_KEY, EV_REL, EV_ABS, SYN_REPORT ends a
 * group); the driver posts events for the device on the statusq (LED state, EV_LED).
 * The configuration (5.8.4) is a window: the driver writes select and subsel, then reads
 * size and as many bytes of the union. Everything is little-endian.
 */
#ifndef VIO_SPEC_VIRTIO_INPUT_H
#define VIO_SPEC_VIRTIO_INPUT_H

#include <stdint.h>

/* 5.8.2 Virtqueues. */
#define VIRTIO_INPUT_Q_EVENT	0
#define VIRTIO_INPUT_Q_STATUS	1
#define VIRTIO_INPUT_NUM_QUEUES 2

/* 5.8.4 Device configuration layout: what select (and subsel) ask for. */
enum virtio_input_config_select {
	VIRTIO_INPUT_CFG_UNSET = 0x00,
	VIRTIO_INPUT_CFG_ID_NAME = 0x01,   /* u.string, not NUL-terminated */
	VIRTIO_INPUT_CFG_ID_SERIAL = 0x02, /* u.string */
	VIRTIO_INPUT_CFG_ID_DEVIDS = 0x03, /* u.ids */
	VIRTIO_INPUT_CFG_PROP_BITS = 0x10, /* u.bitmap */
	VIRTIO_INPUT_CFG_EV_BITS = 0x11,   /* subsel: the event type; u.bitmap of its codes */
	VIRTIO_INPUT_CFG_ABS_INFO = 0x12,  /* subsel: the axis; u.abs */
};

struct virtio_input_absinfo {
	uint32_t min;
	uint32_t max;
	uint32_t fuzz;
	uint32_t flat;
	uint32_t res;
};

struct virtio_input_devids {
	uint16_t bustype;
	uint16_t vendor;
	uint16_t product;
	uint16_t version;
};

struct virtio_input_config {
	uint8_t select;
	uint8_t subsel;
	uint8_t size; /* bytes of u valid for this select/subsel; 0: nothing */
	uint8_t reserved[5];
	union {
		char string[128];
		uint8_t bitmap[128];
		struct virtio_input_absinfo abs;
		struct virtio_input_devids ids;
	} u;
};
_Static_assert(sizeof(struct virtio_input_config) == 136, "5.8.4");

/* 5.8.6 Device Operation: one event, as evdev's struct input_event without the time. */
struct virtio_input_event {
	uint16_t type;
	uint16_t code;
	uint32_t value;
};
_Static_assert(sizeof(struct virtio_input_event) == 8, "5.8.6");

/* The evdev event types and codes the driver and the kernel use (Linux
 * input-event-codes.h, which 5.8.6 refers to). */
#define VIRTIO_INPUT_EV_SYN 0x00
#define VIRTIO_INPUT_EV_KEY 0x01
#define VIRTIO_INPUT_EV_REL 0x02
#define VIRTIO_INPUT_EV_ABS 0x03
#define VIRTIO_INPUT_EV_MSC 0x04
#define VIRTIO_INPUT_EV_LED 0x11
#define VIRTIO_INPUT_EV_REP 0x14
#define VIRTIO_INPUT_EV_MAX 0x1f

#define VIRTIO_INPUT_SYN_REPORT	 0
#define VIRTIO_INPUT_REL_X	 0x00
#define VIRTIO_INPUT_REL_Y	 0x01
#define VIRTIO_INPUT_ABS_X	 0x00
#define VIRTIO_INPUT_ABS_Y	 0x01
#define VIRTIO_INPUT_LED_NUML	 0x00
#define VIRTIO_INPUT_LED_CAPSL	 0x01
#define VIRTIO_INPUT_LED_SCROLLL 0x02

#endif
