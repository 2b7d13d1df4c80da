/*
 * The entropy device: virtio 1.2 section 5.4 ("Entropy Device").
 *
 * The simplest virtio device there is. It has no feature bits (5.4.3), no device-specific
 * configuration (5.4.4) and exactly one virtqueue, the requestq (5.4.2). The driver posts
 * device-writable buffers; the device fills each with random bytes and returns it with the
 * number of bytes it wrote, which may be fewer than the buffer holds (5.4.6.1: it MUST NOT
 * write more, and a driver must accept any amount from 0 up).
 */
#ifndef VIO_SPEC_VIRTIO_RNG_H
#define VIO_SPEC_VIRTIO_RNG_H

/* 5.4.2 Virtqueues: the only one. */
#define VIRTIO_RNG_Q_REQUEST  0
#define VIRTIO_RNG_NUM_QUEUES 1

#endif
