/*
 * What every vio driver has in common: the shape it follows, and its one init-failure path.
 * Private to src/drivers/.
 *
 * The shape. A reader who knows one driver knows where to look in the others, and a new
 * driver copies it:
 *
 *  1. API. include/vio/<x>.h declares
 *	int vio_<x>_init(struct vio_<x> *drv, struct vio_dev *dev,
 *			 const struct vio_<x>_opts *opts);
 *	int vio_<x>_fini(struct vio_<x> *drv);
 *	int vio_<x>_poll(struct vio_<x> *drv);
 *     and the device's own verbs. opts may be NULL, and a zero member means its default;
 *     only the balloon needs opts, for the kernel's page allocator. fini returns 0, or
 *     VIO_EDEAD when the device did not confirm its reset; it is safe after a failed init
 *     and twice.
 *  2. Callbacks. They live in opts and are called with the driver first and opts->arg last.
 *     One that reports an event is named on_<event> (on_irq, on_link, on_tx_done, on_event,
 *     on_wake); one that asks the owner for something is named for what it gets
 *     (get_entropy, page_take, page_give, guest_stats). A request the caller owns carries
 *     its own completion: req->on_done with req->arg.
 *  3. Counters are `struct vio_<x>_stats stats`: free-running, read-only for the caller.
 *  4. Fields. The public ones come first and are read-only for the caller. Below the line
 *     "private to virtio_<x>.c" every field carries the driver's prefix: rng_, con_, blk_,
 *     net_, bal_, gpu_, in_. A struct the header declares only for its size is private as a whole.
 *  5. Context. The top of each header says once where completions and callbacks run: in
 *     the device's interrupt handler, or inside the owner's calls (its _poll).
 *  6. Init reads as the spec's steps (3.1.1). Arguments are checked before the device is
 *     touched; after that every failure jumps to one label that calls driver_abort() and
 *     then frees the driver's own memory.
 *  7. The .c file opens with "Follow one request": the functions one request passes
 *     through, in order.
 *  8. VIO_ASSERT states what the driver trusts itself with (an index it computed, a request
 *     it owns in the state it thinks it is in). What the device wrote is never asserted: it
 *     is checked, logged, and becomes VIO_EIO.
 */
#ifndef VIO_DRIVERS_DRIVER_H
#define VIO_DRIVERS_DRIVER_H

#include <vio/assert.h>
#include <vio/err.h>
#include <vio/log.h>
#include <vio/virtio.h>

/*
 * The one way an init gives up: log why, forget the config callback (an INTx handler
 * outlives the driver's state), then vio_dev_abort: tear the device down, then set FAILED
 * (3.1.1), in that order so that the reset does not erase FAILED. The caller frees its own
 * memory after it and returns err.
 */
static inline void driver_abort(struct vio_dev *dev, const char *name, int err)
{
	vio_logf(dev->port, VIO_LOG_ERR, "%s: init failed: %s", name, vio_strerror(err));
	vio_dev_set_config_callback(dev, NULL, NULL);
	vio_dev_abort(dev);
}

#endif
