/*
 * The console device: virtio 1.2 section 5.3 ("Console Device").
 *
 * A console device carries byte streams ("ports") between guest and host. Each port has a
 * receiveq (host to guest, device-writable buffers) and a transmitq (guest to host,
 * device-readable buffers). Without VIRTIO_CONSOLE_F_MULTIPORT there is one port, queues 0
 * and 1. With it, queues 2 and 3 carry control messages (struct virtio_console_control) in
 * both directions and port n > 0 lives on queues 2 + 2n and 3 + 2n (5.3.2):
 *
 *	0 port 0 rx | 1 port 0 tx | 2 control rx | 3 control tx | 4 port 1 rx | 5 port 1 tx ...
 *
 * The spec types are little-endian; vio runs on little-endian CPUs only (include/vio/barrier.h
 * refuses others), so these are plain integers.
 */
#ifndef VIO_SPEC_VIRTIO_CONSOLE_H
#define VIO_SPEC_VIRTIO_CONSOLE_H

#include <stdint.h>

/* 5.3.3 Feature bits. */
#define VIRTIO_CONSOLE_F_SIZE	     0 /* cols and rows in config are valid */
#define VIRTIO_CONSOLE_F_MULTIPORT   1 /* max_nr_ports is valid; control queues exist */
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2 /* emerg_wr in config is writable */

/* 5.3.2 Virtqueues. */
#define VIRTIO_CONSOLE_Q_PORT0_RX 0
#define VIRTIO_CONSOLE_Q_PORT0_TX 1
#define VIRTIO_CONSOLE_Q_CTRL_RX  2
#define VIRTIO_CONSOLE_Q_CTRL_TX  3
/* The receiveq / transmitq of port `n` (any n, including 0). */
#define VIRTIO_CONSOLE_Q_RX(n) ((n) == 0 ? 0u : 2u + 2u * (n))
#define VIRTIO_CONSOLE_Q_TX(n) ((n) == 0 ? 1u : 3u + 2u * (n))

/* 5.3.4 Device configuration layout. */
struct virtio_console_config {
	uint16_t cols;	       /* VIRTIO_CONSOLE_F_SIZE: console width */
	uint16_t rows;	       /* VIRTIO_CONSOLE_F_SIZE: console height */
	uint32_t max_nr_ports; /* VIRTIO_CONSOLE_F_MULTIPORT: most ports the device may add */
	uint32_t emerg_wr;     /* VIRTIO_CONSOLE_F_EMERG_WRITE: write a byte to port 0 here */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_console_config) == 12, "virtio_console_config is 12 bytes");

/* 5.3.6.2 Multiport Device Operation: one control message, both directions. */
struct virtio_console_control {
	uint32_t id;	/* port number */
	uint16_t event; /* VIRTIO_CONSOLE_* below */
	uint16_t value; /* extra information, per event */
};
_Static_assert(sizeof(struct virtio_console_control) == 8, "virtio_console_control is 8 bytes");

/* The control events (5.3.6.2). "D->G" the device sends it, "G->D" the driver does. */
#define VIRTIO_CONSOLE_DEVICE_READY  0 /* G->D: driver ready, value 1 (0: init failed) */
#define VIRTIO_CONSOLE_DEVICE_ADD    1 /* D->G: port `id` was added */
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2 /* D->G: port `id` was removed */
#define VIRTIO_CONSOLE_PORT_READY    3 /* G->D: port `id` is ready, value 1 (0: failed) */
#define VIRTIO_CONSOLE_CONSOLE_PORT  4 /* D->G: port `id` is a console */
#define VIRTIO_CONSOLE_RESIZE	     5 /* D->G: a struct virtio_console_resize follows */
#define VIRTIO_CONSOLE_PORT_OPEN     6 /* both: value 1 = that side opened port `id`, 0 closed */
#define VIRTIO_CONSOLE_PORT_NAME     7 /* D->G: the port's name follows (not NUL-terminated) */

/* The payload after a VIRTIO_CONSOLE_RESIZE message (5.3.6.2). */
struct virtio_console_resize {
	uint16_t cols;
	uint16_t rows;
};
_Static_assert(sizeof(struct virtio_console_resize) == 4, "virtio_console_resize is 4 bytes");

#endif
