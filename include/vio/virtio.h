/*
 * The virtio core: a device, its transport, feature negotiation, config space, queues and
 * interrupts (virtio 1.2 chapters 2-4).
 *
 * A driver brings a device up in the spec's order (3.1.1), one call per step:
 *
 *	struct vio_dev dev;           caller-owned, like the queues
 *	struct vio_vq vqs[2];
 *	vio_pci_probe(&dev, &pcidev);            or vio_mmio_probe(&dev, port, phys, len, irq)
 *	vio_dev_begin(&dev, wanted_features);   reset, ACKNOWLEDGE, DRIVER, negotiate, FEATURES_OK
 *	vio_dev_config_read(&dev, off, &v, sizeof(v));    device-specific setup
 *	vio_dev_setup_irqs(&dev, vqs, 2);       the transport picks MSI-X, INTx, a line or polling
 *	vio_dev_setup_vq(&dev, 0, 256, rx_done, drv);     each queue
 *	vio_dev_driver_ok(&dev);                DRIVER_OK and the "vio: ..." line
 *
 * Transports (PCI modern 4.1, PCI legacy 4.1.4.10, MMIO 4.2 versions 1 and 2) sit behind
 * `struct vio_transport_ops` (vio/transport.h), which also choose how a device interrupts;
 * the sequencing above is written once, in src/virtio/virtio.c.
 *
 * The device is untrusted: register values are bounds-checked, a device that refuses the
 * features or sets DEVICE_NEEDS_RESET is reported with an error, never a crash. A device whose
 * reset is not confirmed is dead: its memory is kept, and every later vio_dev_* call on it
 * returns VIO_EDEAD (vio_dev_is_dead).
 *
 * Concurrency: one caller at a time per device (include/vio/port.h). Only the calls marked
 * IRQ-safe may run in an interrupt handler.
 */
#ifndef VIO_VIRTIO_H
#define VIO_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/pci.h>
#include <vio/port.h>
#include <vio/spec/virtio_config.h>
#include <vio/transport.h>
#include <vio/virtqueue.h>

/* VIO_MAX_QUEUES, the most queues a device may have (default 64), is set in vio/transport.h
 * beside the per-queue tables it sizes. */

/* How long a reset may take before vio_dev_reset gives up (the spec sets no limit). */
#ifndef VIO_RESET_TIMEOUT_NS
#define VIO_RESET_TIMEOUT_NS 1000000000ull
#endif

/* How often, at most, vio_dev_poll reads the device status. */
#ifndef VIO_POLL_STATUS_NS
#define VIO_POLL_STATUS_NS 10000000ull /* 10 ms */
#endif

/*
 * The largest queue a legacy PCI device may impose. Its size is fixed: the driver cannot ask
 * for fewer entries (4.1.4.10). Up to 32768 is legal, but that is 840 KiB of ring and, for a
 * driver that posts a buffer per entry, far more: a larger queue is refused (VIO_ENOTSUP).
 */
#ifndef VIO_LEGACY_MAX_QUEUE_SIZE
#define VIO_LEGACY_MAX_QUEUE_SIZE 1024
#endif

/* How often vio_dev_config_read retries when the config generation keeps changing. */
#ifndef VIO_CONFIG_READ_TRIES
#define VIO_CONFIG_READ_TRIES 16
#endif

struct vio_dev;

/*
 * How the device's queues signal completions. A PCI device gets the best its function and
 * the port allow (MSI-X per queue, shared MSI-X, INTx), a virtio-mmio device its line; a
 * device with none of these is polled.
 */
enum vio_irq_mode {
	VIO_IRQ_POLL = 0,	 /* no interrupts: the driver polls its queues */
	VIO_IRQ_INTX = 1,	 /* PCI: the function's legacy line, ISR read-to-ack */
	VIO_IRQ_MSIX_SHARED = 2, /* PCI: one MSI-X vector for all queues (+ one for config) */
	VIO_IRQ_MSIX = 3,	 /* PCI: one MSI-X vector per queue plus one for config changes */
	VIO_IRQ_LINE = 4	 /* virtio-mmio: its platform line, InterruptStatus + ACK */
};

/* Called on a configuration change interrupt (after the core checked DEVICE_NEEDS_RESET). */
typedef void (*vio_config_callback)(struct vio_dev *dev, void *arg);

/*
 * A virtio device. Caller-owned; a probe call fills it. Fields are read-only for drivers
 * except `name`, which a driver may set before vio_dev_driver_ok (e.g. "virtio-blk"), and
 * `split_only`, which the kernel may set after the probe.
 */
struct vio_dev {
	const struct vio_port *port;
	const char *name;		/* for logs; NULL: the device type's name */
	uint32_t device_id;		/* VIRTIO_ID_* */
	bool modern;			/* VERSION_1 transport (PCI modern, MMIO v2) */
	uint32_t config_len;		/* bytes of device-specific config reachable */
	uint64_t device_features;	/* what the device offered */
	uint64_t features;		/* what was negotiated */
	uint8_t status;			/* last status written */
	bool needs_reset;		/* DEVICE_NEEDS_RESET seen (latched until reset) */
	bool dead;			/* a reset was not confirmed: see vio_dev_is_dead */
	uint64_t status_check_ns;	/* vio_dev_poll reads the status again from then */
	bool split_only;		/* the caller's, set between probe and vio_dev_begin:
					 * never negotiate the packed ring (vio.ring=split) */

	struct vio_vq *vqs;		/* the caller's queue array (vio_dev_setup_irqs) */
	uint16_t nvqs;
	enum vio_irq_mode irq_mode;	/* chosen by vio_dev_setup_irqs */
	uint32_t irq_line;		/* VIO_IRQ_LINE: the platform line (port's numbering) */
	vio_config_callback config_cb;
	void *config_arg;

	/* The transport's own; drivers never touch these (vio/transport.h). */
	const struct vio_transport_ops *ops;
	union vio_dev_transport t;
};

/* --- probing: fill a vio_dev from a PCI function or an MMIO window ------------------------ */

/*
 * The virtio device id of a PCI function, or -1 when it is not a virtio device: vendor
 * 0x1af4 with device id 0x1040-0x107f (modern: id - 0x1040) or 0x1000-0x103f (transitional:
 * the subsystem id).
 */
int vio_pci_virtio_id(const struct vio_pci_dev *pci);

/*
 * Probe a virtio PCI function: the modern interface when the function has the virtio
 * capabilities, else the legacy one for transitional ids. Enables memory/I/O decoding and bus
 * mastering. Returns 0; VIO_ENODEV (not virtio, or neither interface present);
 * VIO_EPROTO (malformed capabilities: the device is refused); VIO_ENOMEM / VIO_ENOTSUP (a
 * register block that cannot be reached through this port). Not IRQ-safe.
 */
int vio_pci_probe(struct vio_dev *dev, const struct vio_pci_dev *pci);
/* The same, forcing one interface (tests, and drivers that must avoid one). */
int vio_pci_probe_modern(struct vio_dev *dev, const struct vio_pci_dev *pci);
int vio_pci_probe_legacy(struct vio_dev *dev, const struct vio_pci_dev *pci);

/*
 * Probe a virtio-mmio device of `len` bytes at `phys` (4.2). `irq` is its platform interrupt
 * line as the port numbers it (port->platform_irq_attach: a GSI, PLIC source or GIC INTID),
 * or VIO_NO_IRQ when the kernel knows none; vio_dev_setup_irqs attaches it. Returns 0;
 * VIO_ENODEV (bad magic, or device id 0: an empty slot); VIO_ENOTSUP (a version other than
 * 1 or 2); VIO_EINVAL (len below 0x100); VIO_ENOMEM (cannot map). Not IRQ-safe.
 */
int vio_mmio_probe(struct vio_dev *dev, const struct vio_port *port, uint64_t phys, size_t len,
		   uint32_t irq);

/* --- bringing a device up (3.1.1) ---------------------------------------------------------- */

/*
 * Steps 1-6 of 3.1.1: reset and wait for status 0, ACKNOWLEDGE, DRIVER, read the offered
 * features, accept offered & (wanted + what the core itself handles: VERSION_1 on modern
 * transports, ACCESS_PLATFORM, and on modern transports RING_PACKED unless dev->split_only),
 * set FEATURES_OK and check the device kept it. Ring features the core cannot do (in-order,
 * notification data, ...) are never accepted. Returns 0;
 * VIO_EDEAD (reset never completed: vio_dev_is_dead); VIO_ENOTSUP (a modern transport without
 * VERSION_1); VIO_EFEATURES (FEATURES_OK cleared, or the device reports driver features we
 * did not write). On failure the status is FAILED. Not IRQ-safe.
 */
int vio_dev_begin(struct vio_dev *dev, uint64_t wanted);

/* True when feature `bit` (VIRTIO_F_* / device bit number) was negotiated. IRQ-safe. */
bool vio_dev_has_feature(const struct vio_dev *dev, unsigned bit);

/*
 * Read `len` bytes of device config at `offset`, with accesses as wide as the field (1, 2,
 * 4, or 8 as two 4-byte reads) and retried while the config generation changes (2.5.1).
 * Returns 0; VIO_EINVAL (outside dev->config_len); VIO_EIO (the generation never settled
 * within VIO_CONFIG_READ_TRIES). IRQ-safe.
 */
int vio_dev_config_read(struct vio_dev *dev, uint32_t offset, void *buf, uint32_t len);
/* Write device config (same widths). Returns 0 or VIO_EINVAL. IRQ-safe. */
int vio_dev_config_write(struct vio_dev *dev, uint32_t offset, const void *buf, uint32_t len);

/*
 * Tell the core about the caller's queue array (nvqs entries, zeroed here) and let the
 * transport choose how the device interrupts, the best first. PCI: one MSI-X vector per
 * queue plus one for config changes (the port has msix_alloc and the function enough table
 * entries); one shared MSI-X vector for all queues (plus a config one if there is room);
 * INTx through port->intx_attach; a device that reads a vector back as VIRTIO_MSI_NO_VECTOR
 * makes it fall to the next mode. virtio-mmio: its line through port->platform_irq_attach.
 * Else polling. A line handler (INTx, MMIO) reads why the device interrupted, which acks it,
 * returns at once when the reason is 0 (the line is shared), runs every queue on a used
 * buffer notification and config handling on a config change. Sets dev->irq_mode.
 * Call it after vio_dev_begin (whose reset clears the device's vectors) and before the first
 * vio_dev_setup_vq. Returns 0 or VIO_EINVAL (nvqs is 0 or above VIO_MAX_QUEUES,
 * vio_dev_begin has not run, or queues are still set up: vio_dev_teardown first). Not
 * IRQ-safe.
 */
int vio_dev_setup_irqs(struct vio_dev *dev, struct vio_vq *vqs, uint16_t nvqs);

/*
 * Set up queue `index` of the array given to vio_dev_setup_irqs: size = the device's
 * maximum, clamped to 32768, rounded down to a power of two, and to max_size (legacy PCI:
 * exactly the device's size, which must be a power of two); ring features from the
 * negotiated ones; `cb(vq, arg)` runs on completions (in IRQ context). With indirect
 * descriptors the queue gets VIO_VQ_INDIRECT_TABLES tables (16: 16 KiB of DMA memory, in
 * single pages); vio_dev_setup_vq_opts chooses another number, or none. Returns 0;
 * VIO_EINVAL (bad index, vio_dev_setup_irqs not called); VIO_ENODEV (the device has no such
 * queue: max size 0); VIO_EPROTO (legacy size not a power of two, a notify offset outside
 * the region or odd); VIO_ENOTSUP (a legacy size above VIO_LEGACY_MAX_QUEUE_SIZE);
 * VIO_ENOMEM; VIO_EIO (the device refused the MSI-X vector or a value). Not IRQ-safe.
 */
int vio_dev_setup_vq(struct vio_dev *dev, uint16_t index, uint16_t max_size, vio_vq_callback cb,
		     void *arg);

/*
 * vio_dev_setup_vq with the queue's knobs (vio/virtqueue.h): opts->max_size as max_size above,
 * opts->indirect_tables the indirect pool's size (default VIO_VQ_INDIRECT_TABLES, 16: 16 KiB;
 * once they are taken, requests go as direct chains), opts->direct_only no pool at all even
 * when INDIRECT_DESC was negotiated. opts may be NULL. On a modern
 * transport the ring's three areas are separate allocations (no more than one page, or the
 * descriptor table's own size, in one piece); a legacy transport needs the whole ring in one
 * (VIO_VQ_F_SEPARATE_AREAS). Same returns. Not IRQ-safe.
 */
int vio_dev_setup_vq_opts(struct vio_dev *dev, uint16_t index, const struct vio_vq_opts *opts,
			  vio_vq_callback cb, void *arg);

/*
 * The largest size the device allows for queue `index`, at most 32768 (a larger claim is
 * cut to it), or 0 when it has no such queue: a driver asks before it sets up optional
 * queues (console ports past the first, say). Call it after vio_dev_begin. Not IRQ-safe.
 */
uint32_t vio_dev_queue_max_size(struct vio_dev *dev, uint16_t index);

/* Run cb(dev, arg) on config-change interrupts. Set before vio_dev_driver_ok. */
void vio_dev_set_config_callback(struct vio_dev *dev, vio_config_callback cb, void *arg);

/*
 * Step 8: set DRIVER_OK; the device is live. Logs the device line (vio_dev_describe; the
 * port's log adds the "vio: " prefix).
 * Returns 0 or VIO_ENEEDRESET. Not IRQ-safe.
 */
int vio_dev_driver_ok(struct vio_dev *dev);

/*
 * Look at the status: when the device set DEVICE_NEEDS_RESET (2.1.2), log it once, break
 * every queue (their calls then return VIO_EIO) and return VIO_ENEEDRESET; else 0. The core
 * calls it on every config-change interrupt and whenever the device breaks a queue's rule
 * (so a VIO_EIO from a queue has already been looked into). IRQ-safe.
 *
 * The rule for drivers: a device can ask for a reset without an interrupt saying so (it is
 * polled, or its one MSI-X entry leaves no vector for configuration changes). So every
 * driver's _poll calls vio_dev_poll, and a driver that is about to report a broken queue
 * (VIO_EIO) or a wait that timed out reports what vio_dev_error returns instead.
 */
int vio_dev_check(struct vio_dev *dev);

/*
 * For a driver's _poll, every time: vio_dev_check at most every VIO_POLL_STATUS_NS (one
 * status read), in every interrupt mode; a polled device (VIO_IRQ_POLL) also has its ISR
 * read then (vio_dev_ack_interrupt), so a notification it sends anyway cannot leave a wired
 * line asserted. Returns 0, VIO_ENEEDRESET (the device needs a reset; every queue is broken)
 * or VIO_EDEAD. IRQ-safe.
 */
int vio_dev_poll(struct vio_dev *dev);

/*
 * For a driver whose wait for the device timed out: read the status now (vio_dev_check) and
 * return the error to report: VIO_ENEEDRESET (the device asked for a reset; its queues are
 * broken), VIO_EDEAD, or VIO_ETIMEDOUT (it just did not answer). IRQ-safe.
 */
int vio_dev_on_timeout(struct vio_dev *dev);

/*
 * For a driver about to report err: a queue that broke (VIO_EIO) or a wait that timed out
 * (VIO_ETIMEDOUT) may be the device asking for a reset without an interrupt saying so. For
 * those two, read the status now (vio_dev_check) and return VIO_ENEEDRESET or VIO_EDEAD when
 * that is why; otherwise, and for any other code, err unchanged. IRQ-safe.
 */
int vio_dev_error(struct vio_dev *dev, int err);

/*
 * For a port that takes a polled device's wired line itself (INTx, or an MMIO line it
 * attached on its own): read why the device interrupted and acknowledge it, which deasserts
 * the line (4.1.4.5, 4.2.2). Returns the reasons, VIO_ISR_QUEUE | VIO_ISR_CONFIG (vio/transport.h),
 * or 0 when the device did not interrupt (on a shared line, another device did). A
 * configuration change is handled as an interrupt would be (vio_dev_check, then the config
 * callback); completions are left for the driver's poll. A polled device's queues ask for no
 * used-buffer notifications (VIO_VQ_F_NO_INTERRUPTS), so this is needed only for what the
 * spec lets a device raise anyway, such as configuration changes. IRQ-safe.
 */
uint32_t vio_dev_ack_interrupt(struct vio_dev *dev);

/* Give up on the device: set FAILED in its status (3.1.1 step 8's alternative). */
void vio_dev_fail(struct vio_dev *dev);

/*
 * The one failure path of a driver's init: tear the device down (vio_dev_teardown: reset,
 * queues destroyed, vectors released), then set FAILED, in that order, so that the reset
 * does not erase FAILED (3.1.1: "the driver SHOULD set the FAILED status bit" when it gives
 * up). Free the driver's own memory after it, but none the device may touch when it returns
 * VIO_EDEAD (the reset was not confirmed: see vio_dev_teardown). Returns 0 or VIO_EDEAD.
 * Not IRQ-safe.
 */
int vio_dev_abort(struct vio_dev *dev);

/*
 * Reset the device and wait (VIO_RESET_TIMEOUT_NS) for its status to read 0. After it the
 * device touches no queue memory. Returns 0, or VIO_EDEAD when the status never read 0: the
 * device may still read and write every ring, table and buffer posted to it, so it is dead
 * (vio_dev_is_dead), logged once. Not IRQ-safe.
 */
int vio_dev_reset(struct vio_dev *dev);

/*
 * True once a reset of this device was not confirmed. Its queues are broken and their memory
 * is kept (leaked on purpose: the device may still write it), and every vio_dev_* call on it
 * returns VIO_EDEAD (vio_dev_queue_max_size 0) without touching it. A driver must not free or
 * reuse any buffer it posted to it: it completes such requests with VIO_EDEAD and keeps them.
 * Only a new probe of the function starts over. IRQ-safe.
 */
bool vio_dev_is_dead(const struct vio_dev *dev);

/*
 * Reset the device, destroy the queues set up, release the MSI-X vectors and disable MSI-X.
 * The queues' posted cookies are lost: reclaim them with vio_vq_detach_unused between
 * vio_dev_reset and this call if needed. A line handler (INTx, MMIO) stays attached (the
 * port has no way to detach one) and keeps `dev` as its argument: keep the vio_dev alive,
 * and irq_mode keeps naming that line. Returns 0, or VIO_EDEAD when the reset was not
 * confirmed: then each queue is abandoned (vio_vq_abandon): broken, its ring and indirect
 * tables never freed, only its private bookkeeping. Not IRQ-safe.
 */
int vio_dev_teardown(struct vio_dev *dev);

/* --- describing ---------------------------------------------------------------------------- */

/* "virtio-net", "virtio-blk", ...; "virtio" for ids vio has no name for. */
const char *vio_device_type_name(uint32_t device_id);
/* The name of feature `bit` for a device of type `device_id` ("VERSION_1", "MRG_RXBUF"),
 * or NULL when vio has no name for it. IRQ-safe. */
const char *vio_feature_name(uint32_t device_id, unsigned bit);
/* "poll", "intx", "msix-shared", "msix", "line". */
const char *vio_irq_mode_name(enum vio_irq_mode mode);
/* The transport's name ("pci-modern", ...). */
const char *vio_dev_transport_name(const struct vio_dev *dev);
/* Where the device is, from its transport: "0000:00:03.0" or "mmio@0xfeb00000". Returns the
 * length wanted (as snprintf). */
int vio_dev_location(const struct vio_dev *dev, char *buf, size_t size);
/*
 * "<name> <location> <transport> features=0x<hex> queues=<n> irq=<mode>", the mode of an
 * MMIO line with its number ("irq=line:5"): the line the kernel's device table shows.
 * Returns the length wanted (as snprintf).
 */
int vio_dev_describe(const struct vio_dev *dev, char *buf, size_t size);

#endif
