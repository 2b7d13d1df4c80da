/*
 * A whole fake virtio device for driver tests: fake port + fake PCI segment + a modern-only
 * fake virtio function (tests/host/fake_virtio_dev.h) probed into a struct vio_dev, ready
 * for a driver's init. After the driver set its queues up, fake_env_rings() attaches a
 * fake_vring (the device side of each ring) so the test's device model can pop requests and
 * complete them.
 *
 *   struct fake_env *e = fake_env_new(VIRTIO_ID_BLOCK, features, &cfg, sizeof(cfg), 1, 128);
 *   e->model = my_blk_model;           runs whenever the driver waits (now_ns/delay_us)
 *   my_driver_init(&drv, &e->dev);     the driver negotiates and sets its queues up
 *   fake_env_rings(e);                 device side of every queue the driver set up
 *   ...                                drive the driver; the model answers
 *   fake_env_free(e);                  checks no DMA memory leaked after teardown
 */
#ifndef FAKE_ENV_H
#define FAKE_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/virtio.h>

#include "fake_pci.h"
#include "fake_port.h"
#include "fake_virtio_dev.h"
#include "fake_vring.h"

struct fake_env {
	struct fake_port fp;
	struct fake_pci pci;
	struct fake_vdev vd;
	struct vio_pci_bus bus;
	struct vio_pci_dev pdev;
	struct vio_dev dev; /* probed, not yet begun: the driver's to initialise */

	/* The device side of each queue, valid after fake_env_rings(). */
	struct fake_vring ring[FAKE_VDEV_QUEUES];
	int nrings;

	/* The test's device model: called whenever the library waits. */
	void (*model)(struct fake_env *e);
	void *model_arg;
	bool in_model; /* guards against the model re-entering itself */

	/* fake_env_instant_completions: the queue, the buffers it watches, what it answers. */
	int instant_q;
	const uint8_t *instant_lo;
	size_t instant_len;
	uint32_t instant_used_len;
	unsigned instant_done, instant_max;
	uint64_t (*instant_v2p)(void *ctx, const void *virt);
};

/*
 * The ring layout the fake devices offer: VIRTIO_F_RING_PACKED when the environment has
 * VIO_TEST_RING=packed (tests/runner.py runs every driver test so a second time), else 0.
 */
uint64_t fake_env_ring_features(void);

/*
 * A modern-only device of virtio type `device_id` offering `features` (VERSION_1 is added,
 * and the ring layout of fake_env_ring_features),
 * with `config` as its device-config space, `nqueues` queues of up to `qsize` entries and an
 * MSI-X table (so the core uses MSI-X; the test fires vectors with fake_env_irq). The device
 * is probed into e->dev. Aborts the test on failure.
 */
struct fake_env *fake_env_new(uint32_t device_id, uint64_t features, const void *config,
			      size_t config_len, int nqueues, uint16_t qsize);
/* Without interrupt hooks in the port: the core must poll. Call before the driver's init. */
void fake_env_no_irqs(struct fake_env *e);
/* Attach a fake_vring to every queue the driver set up (dev.vqs[0..nvqs)). */
void fake_env_rings(struct fake_env *e);
/* Device-config bytes as the driver will read them next (sets the config-change ISR bit
 * and bumps the generation; call fake_env_config_irq to deliver the interrupt). */
void fake_env_set_config(struct fake_env *e, uint32_t off, const void *val, size_t len);
void fake_env_config_irq(struct fake_env *e);
/* Run the device model once now (as if the device got a time slice). */
void fake_env_run(struct fake_env *e);
/*
 * A device that writes garbage over every DMA allocation the driver made (all but the
 * queues' own rings, indirect tables and bookkeeping, which the core's tests cover), as a
 * device that may write anywhere it can reach would. Returns the bytes written.
 */
size_t fake_env_scribble(struct fake_env *e, uint8_t byte);
/*
 * A device that completes, with used length `used_len`, every buffer the driver posts on
 * queue q that lies in [lo, lo + len), the moment the driver posts it: before the add even
 * returns, so a driver that re-posts inside its reap loop meets a new completion on every
 * turn. It stops after `max` completions (so a test of an unbounded loop fails rather than
 * hangs); fake_env_instant_completions(e, -1, ...) switches it off. Counts in instant_done.
 */
void fake_env_instant_completions(struct fake_env *e, int q, const void *lo, size_t len,
				  uint32_t used_len, unsigned max);
/* Free every DMA allocation still live (what a driver kept after an unconfirmed reset), so
 * that fake_env_free's leak check holds; returns how many there were. */
int fake_env_reclaim_leaks(struct fake_env *e);
/* Tear the driver's device down if the test did not, check for leaks, free. */
void fake_env_free(struct fake_env *e);

#endif
