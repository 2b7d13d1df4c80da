/*
 * virtio-rng: the entropy device driver (virtio 1.2 section 5.4).
 *
 * Context: completions are reaped by vio_rng_poll, which runs in the requestq's interrupt
 * handler when the device interrupts, and inside the owner's calls (vio_rng_read, or its
 * own vio_rng_poll from a loop or timer) when it does not. The driver has no callbacks.
 *
 * The driver keeps VIO_RNG_BUFS driver-owned DMA buffers posted on the device's one queue, so
 * that entropy is usually waiting before anyone asks: a non-blocking read then costs a copy.
 * Each buffer is handed out once (and wiped as it is consumed), then posted again.
 *
 *	struct vio_rng rng;                       caller-owned, like the vio_dev
 *	vio_pci_probe(&dev, &pcidev);             a VIRTIO_ID_RNG function
 *	vio_rng_init(&rng, &dev, NULL);           negotiate, queue, pre-fill, DRIVER_OK
 *	n = vio_rng_read(&rng, buf, len, false);  what is ready now, or VIO_EAGAIN
 *	n = vio_rng_read(&rng, buf, len, true);   exactly len, or VIO_ETIMEDOUT / VIO_EIO
 *
 * With interrupts off, or in a panic path, vio_rng_read polls by itself. A blocking read is
 * bounded in all (opts.deadline_ns), and spins at most VIO_RNG_SPIN_NS between calls of
 * opts.wait, where a kernel that called it with interrupts off lets them in.
 *
 * Concurrency (include/vio/port.h): no locks. One caller at a time per device: a kernel that
 * takes this device's interrupts must mask them (or disable interrupts) around its
 * thread-context calls, or the interrupt handler's vio_rng_poll could run in the middle of a
 * vio_rng_read. A blocking read polls, so it also completes with interrupts disabled.
 */
#ifndef VIO_RNG_H
#define VIO_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/virtio.h>

/* Buffers kept posted, and the bytes each asks for. All share one DMA allocation. */
#ifndef VIO_RNG_BUFS
#define VIO_RNG_BUFS 8
#endif
#ifndef VIO_RNG_BUF_SIZE
#define VIO_RNG_BUF_SIZE 256
#endif
/* A blocking read gives up when the device delivered nothing for this long (the default of
 * vio_rng_opts.timeout_ns). */
#ifndef VIO_RNG_TIMEOUT_NS
#define VIO_RNG_TIMEOUT_NS 1000000000ull
#endif
/* A blocking read gives up when it has taken this long in all, however the device trickles
 * (the default of vio_rng_opts.deadline_ns). */
#ifndef VIO_RNG_DEADLINE_NS
#define VIO_RNG_DEADLINE_NS 5000000000ull
#endif
/* A blocking read polls for at most this long between calls of opts.wait (1 ms): the
 * longest it spins in whatever interrupt state its caller gave it. */
#ifndef VIO_RNG_SPIN_NS
#define VIO_RNG_SPIN_NS 1000000ull
#endif

struct vio_rng;

/* Counters, free-running. */
struct vio_rng_stats {
	uint64_t bytes;	      /* bytes delivered to callers */
	uint64_t requests;    /* buffers posted to the device */
	uint64_t completions; /* buffers the device returned */
	uint64_t short_fills; /* ... with fewer bytes than asked (legal, 5.4.6.1) */
	uint64_t bad_len;     /* ... claiming more bytes than posted: discarded (device bug) */
	uint64_t timeouts;    /* blocking reads that gave up */
};

/* Options for vio_rng_init. NULL, or a member left 0, means the default. */
struct vio_rng_opts {
	/* A blocking read gives up when the device delivered nothing for this long
	 * (0: VIO_RNG_TIMEOUT_NS). */
	uint64_t timeout_ns;
	/* ... and when it has taken this long in all (0: VIO_RNG_DEADLINE_NS). */
	uint64_t deadline_ns;
	/*
	 * Optional: a blocking read calls wait(rng, arg) after every VIO_RNG_SPIN_NS of
	 * polling, at a point where the driver's state is whole. A kernel that calls with
	 * interrupts off lets them in here (this device's interrupt handler may then run
	 * vio_rng_poll), or yields the CPU; it may return at once. NULL: the read spins until
	 * it is done or gives up, in whatever interrupt state its caller gave it.
	 */
	void (*wait)(struct vio_rng *rng, void *arg);
	void *arg; /* passed to wait */
};

/* One DMA buffer. Private to src/drivers/virtio_rng.c as a whole. */
struct vio_rng_buf {
	uint8_t *data;
	uint32_t len; /* valid bytes after completion */
	uint32_t pos; /* next byte to hand out */
};

/* The device. Caller-owned; vio_rng_init fills it. `dev` and `stats` are read-only. */
struct vio_rng {
	struct vio_dev *dev;
	struct vio_rng_stats stats;

	/* --- private to virtio_rng.c ------------------------------------------------------ */
	struct vio_rng_opts rng_opts; /* with the defaults filled in */
	struct vio_vq rng_vq;	      /* the requestq: the vio_dev's one-entry queue array */
	uint8_t *rng_dma; /* VIO_RNG_BUFS * VIO_RNG_BUF_SIZE bytes from port->dma_alloc */
	uint64_t rng_dma_phys;
	struct vio_rng_buf rng_buf[VIO_RNG_BUFS];
	uint16_t rng_nbufs;		  /* buffers in use: VIO_RNG_BUFS or the queue size */
	uint16_t rng_ready[VIO_RNG_BUFS]; /* completed buffers, FIFO, in completion order */
	uint16_t rng_ready_head;
	uint16_t rng_ready_count;
	bool rng_warned_len;
};

/*
 * Bring up an entropy device `dev` has been probed into (vio_pci_probe / vio_mmio_probe):
 * negotiate (no device features), choose interrupts, set up the requestq, post every buffer
 * and set DRIVER_OK; dev->name becomes "virtio-rng". `opts` may be NULL. Returns 0;
 * VIO_ENODEV (not an entropy device); VIO_ENOMEM; or the core's error (vio_dev_begin,
 * vio_dev_setup_vq, vio_dev_driver_ok). On failure the device is torn down and marked
 * FAILED, and nothing stays allocated. Not IRQ-safe.
 */
int vio_rng_init(struct vio_rng *rng, struct vio_dev *dev, const struct vio_rng_opts *opts);

/*
 * Copy up to `len` random bytes into buf. Non-blocking (block = false): what is ready now,
 * 1..len bytes, or VIO_EAGAIN when nothing is. Blocking: exactly len bytes, polling the
 * device and calling opts.wait every VIO_RNG_SPIN_NS; VIO_ETIMEDOUT when it delivered nothing
 * for opts.timeout_ns, or the read took opts.deadline_ns in all (bytes already copied into
 * buf are then spent, not returned). VIO_EIO when the queue is broken (the device broke a
 * ring rule); VIO_ENEEDRESET when, on a broken queue or a timeout, the device says it needs a
 * reset (2.1.2); VIO_EINVAL for len 0 or above INT32_MAX, or a NULL buf.
 * Not IRQ-safe when blocking (it waits); a non-blocking read is IRQ-safe.
 */
int vio_rng_read(struct vio_rng *rng, void *buf, size_t len, bool block);

/*
 * Reap the device's completions into the ready list and post consumed buffers again. The
 * queue callback calls it (interrupt mode); poll-mode kernels may call it from a timer so
 * that non-blocking reads find data. Bounded: it reaps at most the buffers that were with
 * the device when it started (one it gives back at once, empty, goes back after the reaping),
 * so a device that completes every buffer the moment it is posted cannot keep it looping.
 * Returns bytes now ready, VIO_EIO when the queue is broken, or VIO_ENEEDRESET when the device
 * also says it needs a reset. IRQ-safe.
 */
int vio_rng_poll(struct vio_rng *rng);

/*
 * Reset the device, free the queue and the buffers (wiping them first) and the interrupt
 * vectors. The vio_dev may then be probed again. Returns 0, or VIO_EDEAD when the device
 * did not confirm the reset: it may still write the buffers, so they are kept (leaked), the
 * device is marked FAILED and the error is logged. Safe after a failed init and twice (the
 * second call returns 0). Not IRQ-safe.
 */
int vio_rng_fini(struct vio_rng *rng);

#endif
