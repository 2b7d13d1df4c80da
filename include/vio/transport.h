/*
 * The transport side of the virtio core: the operations a transport implements and the state
 * each one keeps inside struct vio_dev (virtio 1.2 chapter 4).
 *
 * Drivers never need this header; they see a device through <vio/virtio.h> alone. Its readers
 * are the transports (src/virtio/pci_modern.c, pci_legacy.c, pci_irq.c, mmio.c), the core
 * (src/virtio/virtio.c) and the host tests that check what landed in the registers.
 *
 * Why <vio/virtio.h> includes it: the caller allocates struct vio_dev, so its size, and with
 * it the transports' state, must be known wherever a device is declared. We keep that state a
 * complete type here rather than an opaque byte array in virtio.h: a byte array would need a
 * hand-kept size that grows with VIO_MAX_QUEUES, plus a cast from bytes to a struct that C's
 * aliasing rules do not bless; a complete type costs nothing, is checked by the compiler and
 * shows in a debugger. Drivers simply do not touch `dev->ops` or `dev->t`.
 */
#ifndef VIO_TRANSPORT_H
#define VIO_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/pci.h>
#include <vio/port.h>
#include <vio/virtqueue.h>

/* Most queues a device may have (sizes the per-queue tables in the transport state). */
#ifndef VIO_MAX_QUEUES
#define VIO_MAX_QUEUES 64
#endif

struct vio_dev;

/*
 * A transport: how to reach one kind of device's registers, and how it interrupts. Every
 * member takes the device and may assume the probe that installed the table succeeded.
 * Members the core may call from an interrupt handler are marked IRQ-safe.
 */
struct vio_transport_ops {
	/* Short name for logs: "pci-modern", "pci-legacy", "mmio", "mmio-legacy". */
	const char *name;
	/* Legacy PCI only: the device fixes each queue's size; the driver cannot lower it. */
	bool fixed_queue_size;

	/* Read the device status byte (2.1). IRQ-safe. */
	uint8_t (*get_status)(struct vio_dev *dev);
	/* Write the device status byte. Writing 0 resets the device: use reset for that. */
	void (*set_status)(struct vio_dev *dev, uint8_t status);
	/* Start a device reset (write 0 to status). The core then waits for status to read 0. */
	void (*reset)(struct vio_dev *dev);

	/* The 64 feature bits the device offers (two 32-bit reads through a select register;
	 * legacy transports have only bits 0-31). */
	uint64_t (*get_features)(struct vio_dev *dev);
	/* Write the features the driver accepts (legacy: the low 32 bits). */
	void (*set_features)(struct vio_dev *dev, uint64_t features);
	/* Optional (NULL where the register is write-only): read back the driver features. */
	uint64_t (*get_driver_features)(struct vio_dev *dev);

	/* One device-config access of `width` 1, 2 or 4 bytes at `offset`; the core has already
	 * checked that it lies inside dev->config_len. IRQ-safe. */
	uint32_t (*config_read)(struct vio_dev *dev, uint32_t offset, unsigned width);
	void (*config_write)(struct vio_dev *dev, uint32_t offset, unsigned width, uint32_t val);
	/* Config generation (4.1.4.3, 4.2.2); transports without one return 0. IRQ-safe. */
	uint32_t (*config_generation)(struct vio_dev *dev);

	/* Largest size the device allows for queue `index`; 0 means the queue does not exist. */
	uint32_t (*queue_max_size)(struct vio_dev *dev, uint16_t index);
	/*
	 * Program queue vq->index: size vq->size, the ring addresses (or the legacy page frame
	 * of vq->ring_phys), on PCI the MSI-X vector setup_irqs chose for it (recorded in
	 * vq->msix_vector and read back: a mismatch is VIO_EIO), then enable it. Returns 0,
	 * VIO_EIO (the device refused a value), VIO_EPROTO (its notify location lies outside
	 * the notify region) or VIO_ERANGE (an address the transport cannot express, e.g. a
	 * legacy PFN above 2^44).
	 */
	int (*queue_setup)(struct vio_dev *dev, struct vio_vq *vq);
	/* Tell the device queue vq has new buffers. IRQ-safe. */
	void (*notify)(struct vio_dev *dev, struct vio_vq *vq);

	/*
	 * Choose how the device interrupts, attach the handlers through the port and set
	 * dev->irq_mode: the best the transport and the port allow, else VIO_IRQ_POLL, which
	 * always works (Linux's vp_find_vqs does the same for PCI). Called by
	 * vio_dev_setup_irqs after vio_dev_begin's reset (which clears a device's vectors),
	 * with dev->vqs and dev->nvqs set and no queue set up yet. The handlers report to the
	 * core through vio_dev_interrupt (or vio_vq_interrupt for a queue's own vector).
	 */
	void (*setup_irqs)(struct vio_dev *dev);
	/*
	 * Optional (NULL: nothing to give back). After vio_dev_teardown's reset, give back what
	 * setup_irqs took that can be given back (MSI-X vectors) and leave dev->irq_mode
	 * naming what still runs. A line handler stays: the port cannot detach it.
	 */
	void (*release_irqs)(struct vio_dev *dev);

	/* Where the device is, for the device line: "0000:00:03.0", "mmio@0xfeb00000".
	 * Returns the length wanted (as snprintf). */
	int (*location)(const struct vio_dev *dev, char *buf, size_t size);

	/*
	 * Read why the device interrupted and acknowledge it, which deasserts a wired line:
	 * PCI's read-to-clear ISR byte (4.1.4.5), MMIO's InterruptStatus written back to
	 * InterruptACK (4.2.2). Returns VIO_ISR_* bits; 0 when the device did not interrupt.
	 * IRQ-safe.
	 */
	uint8_t (*ack_interrupt)(struct vio_dev *dev);

	/*
	 * PCI only (NULL elsewhere), for the interrupt code both PCI transports share
	 * (src/virtio/pci_irq.c). set_config_vector / set_queue_vector write the config / queue
	 * `index` MSI-X vector and return what the device reads back: VIRTIO_MSI_NO_VECTOR
	 * when it cannot use that vector (4.1.5.1.2).
	 */
	uint16_t (*set_config_vector)(struct vio_dev *dev, uint16_t vector);
	uint16_t (*set_queue_vector)(struct vio_dev *dev, uint16_t index, uint16_t vector);
};

/* --- what the core offers the transports -------------------------------------------------- */

/* Why a device interrupted: PCI's ISR byte (4.1.4.5) and MMIO's InterruptStatus (4.2.2)
 * encode the two reasons alike. */
#define VIO_ISR_QUEUE 0x1  /* used buffer notification: some queue has used buffers */
#define VIO_ISR_CONFIG 0x2 /* configuration change notification */

/*
 * For the transports' interrupt handlers: act on the reasons in `isr`. VIO_ISR_QUEUE runs
 * every queue set up (vio_vq_interrupt); VIO_ISR_CONFIG checks DEVICE_NEEDS_RESET
 * (vio_dev_check) and, when it is clear, runs the driver's config callback. 0 does nothing:
 * on a shared line another device raised it. IRQ-safe.
 */
void vio_dev_interrupt(struct vio_dev *dev, uint32_t isr);

/* --- PCI (4.1) ---------------------------------------------------------------------------- */

/* Where a modern PCI register block is and how we reach it (see src/virtio/pci_modern.c). */
struct vio_pci_region {
	uint8_t bar;		  /* BAR the capability names */
	uint32_t offset;	  /* start within the BAR */
	uint32_t length;	  /* bytes */
	volatile uint8_t *virt;	  /* mapped memory; NULL: I/O port or the PCI_CFG window */
	uint16_t io_port;	  /* first I/O port when is_io */
	bool is_io;		  /* reached through port I/O (the BAR is I/O space) */
	bool present;
};

/* The result of parsing a modern device's virtio capabilities (4.1.4). */
struct vio_pci_modern_caps {
	struct vio_pci_region common;
	struct vio_pci_region notify;
	struct vio_pci_region isr;
	struct vio_pci_region device; /* present == false for devices without config */
	uint32_t notify_off_multiplier;
	uint8_t pci_cfg_cap; /* config offset of the VIRTIO_PCI_CAP_PCI_CFG window, 0 = none */
};

/* An MSI-X vector the port allocated for this device, to give back on teardown. */
struct vio_pci_vector {
	uint64_t addr;
	uint32_t data;
};

/* The state of both PCI transports: the function, its interrupts, then each interface's own. */
struct vio_pci_transport {
	struct vio_pci_dev pdev; /* the function (a copy) */
	/* MSI-X vectors held: vectors[i] is in table entry i (0: config changes, then queues). */
	struct vio_pci_vector vectors[VIO_MAX_QUEUES + 1];
	uint16_t nvectors;
	bool intx_attached; /* an INTx handler is attached, for good (the port cannot detach) */
	union {
		struct {
			struct vio_pci_modern_caps caps;
			uint16_t num_queues;
			uint32_t notify_off[VIO_MAX_QUEUES]; /* byte offset in the notify region */
		} modern;
		struct {
			uint16_t iobase; /* I/O BAR 0 */
			uint32_t iolen;
		} legacy;
	};
};

/*
 * Parse and validate the virtio vendor capabilities of `pci` (4.1.4), taking the first usable
 * capability of each type and ignoring those naming a reserved or unimplemented BAR, and
 * unknown types. Returns 0; VIO_ENODEV (common, notify or ISR capability missing); VIO_EPROTO
 * (a capability too short, not inside config space, a region overflowing or outside its BAR,
 * a notify_off_multiplier that is not 0 or a power of two, a malformed capability list).
 * Maps nothing. Not IRQ-safe.
 */
int vio_pci_modern_parse_caps(const struct vio_pci_dev *pci, struct vio_pci_modern_caps *caps);

/* What both PCI transports share: their location and interrupt ops. */

/* location: the function's "ssss:bb:dd.f" (src/virtio/virtio_pci.c). */
int vio_pci_location(const struct vio_dev *dev, char *buf, size_t size);
/* setup_irqs: MSI-X per queue, shared MSI-X, INTx, else polling (src/virtio/pci_irq.c). */
void vio_pci_setup_irqs(struct vio_dev *dev);
/* release_irqs: mask and give back the MSI-X vectors, turn MSI-X off. */
void vio_pci_release_irqs(struct vio_dev *dev);
/* The MSI-X vector queue `index` uses in the mode setup_irqs chose, or VIRTIO_MSI_NO_VECTOR. */
uint16_t vio_pci_queue_vector(const struct vio_dev *dev, uint16_t index);

/* --- MMIO (4.2) --------------------------------------------------------------------------- */

struct vio_mmio_transport {
	volatile uint8_t *regs;
	uint64_t phys;
	size_t len;
	uint32_t version;
	uint32_t irq;	   /* its platform interrupt line (port numbering), VIO_NO_IRQ = none */
	bool irq_attached; /* the line's handler is attached, for good (the port cannot detach) */
};

/* Per-transport state in struct vio_dev, one member used at a time. */
union vio_dev_transport {
	struct vio_pci_transport pci;
	struct vio_mmio_transport mmio;
};

#endif
