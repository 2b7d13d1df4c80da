/*
 * Virtio over PCI, the legacy interface (virtio 1.2, 4.1.4.10; virtio 0.9.5).
 *
 * A legacy or transitional device has its registers at the start of I/O BAR 0: 32 feature
 * bits each way, a queue placed by one page frame number (the ring in the legacy contiguous
 * layout, used ring aligned to 4096), a read-only queue size the driver must accept, the
 * status byte and the ISR. While MSI-X is enabled in the PCI function two 16-bit vector
 * registers follow at offset 20 and the device config moves from offset 20 to 24; we read
 * the enable bit we set (dev->t.pci.pdev.msix.enabled) to know which.
 *
 * QEMU: -device virtio-blk-pci,disable-modern=on,drive=...
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/spec/pci.h>
#include <vio/spec/virtio_pci.h>
#include <vio/transport.h>
#include <vio/virtio.h>

#define REG(field) offsetof(struct virtio_pci_legacy_common, field)
#define MSIXREG(field) \
	(sizeof(struct virtio_pci_legacy_common) + offsetof(struct virtio_pci_legacy_msix, field))

static uint16_t io(const struct vio_dev *dev, uint32_t off)
{
	return (uint16_t)(dev->t.pci.legacy.iobase + off);
}

static uint8_t in8(struct vio_dev *dev, uint32_t off)
{
	return dev->port->inb(dev->port->ctx, io(dev, off));
}

static uint16_t in16(struct vio_dev *dev, uint32_t off)
{
	return dev->port->inw(dev->port->ctx, io(dev, off));
}

static uint32_t in32(struct vio_dev *dev, uint32_t off)
{
	return dev->port->inl(dev->port->ctx, io(dev, off));
}

static void out8(struct vio_dev *dev, uint32_t off, uint8_t v)
{
	dev->port->outb(dev->port->ctx, io(dev, off), v);
}

static void out16(struct vio_dev *dev, uint32_t off, uint16_t v)
{
	dev->port->outw(dev->port->ctx, io(dev, off), v);
}

static void out32(struct vio_dev *dev, uint32_t off, uint32_t v)
{
	dev->port->outl(dev->port->ctx, io(dev, off), v);
}

/* Where the device-specific config starts right now. */
static uint32_t config_base(const struct vio_dev *dev)
{
	return dev->t.pci.pdev.msix.enabled ? VIRTIO_PCI_LEGACY_CONFIG_OFF_MSIX
				     : VIRTIO_PCI_LEGACY_CONFIG_OFF;
}

static uint8_t legacy_get_status(struct vio_dev *dev)
{
	return in8(dev, REG(device_status));
}

static void legacy_set_status(struct vio_dev *dev, uint8_t status)
{
	out8(dev, REG(device_status), status);
}

static void legacy_reset(struct vio_dev *dev)
{
	out8(dev, REG(device_status), 0);
}

static uint64_t legacy_get_features(struct vio_dev *dev)
{
	return in32(dev, REG(host_features));
}

static void legacy_set_features(struct vio_dev *dev, uint64_t features)
{
	out32(dev, REG(guest_features), (uint32_t)features);
}

static uint32_t legacy_config_read(struct vio_dev *dev, uint32_t offset, unsigned width)
{
	uint32_t off = config_base(dev) + offset;

	return width == 1 ? in8(dev, off) : width == 2 ? in16(dev, off) : in32(dev, off);
}

static void legacy_config_write(struct vio_dev *dev, uint32_t offset, unsigned width,
				uint32_t val)
{
	uint32_t off = config_base(dev) + offset;

	if (width == 1)
		out8(dev, off, (uint8_t)val);
	else if (width == 2)
		out16(dev, off, (uint16_t)val);
	else
		out32(dev, off, val);
}

/* Legacy devices have no generation count: config reads are not protected (2.4.4). */
static uint32_t legacy_config_generation(struct vio_dev *dev)
{
	(void)dev;
	return 0;
}

static uint32_t legacy_queue_max_size(struct vio_dev *dev, uint16_t index)
{
	out16(dev, REG(queue_select), index);
	return in16(dev, REG(queue_size));
}

static uint16_t legacy_set_queue_vector(struct vio_dev *dev, uint16_t index, uint16_t vector)
{
	if (!dev->t.pci.pdev.msix.enabled)
		return VIRTIO_MSI_NO_VECTOR;
	out16(dev, REG(queue_select), index);
	out16(dev, MSIXREG(queue_msix_vector), vector);
	return in16(dev, MSIXREG(queue_msix_vector));
}

static uint16_t legacy_set_config_vector(struct vio_dev *dev, uint16_t vector)
{
	if (!dev->t.pci.pdev.msix.enabled)
		return VIRTIO_MSI_NO_VECTOR;
	out16(dev, MSIXREG(config_msix_vector), vector);
	return in16(dev, MSIXREG(config_msix_vector));
}

static int legacy_queue_setup(struct vio_dev *dev, struct vio_vq *vq)
{
	uint64_t pfn = vq->ring_phys >> VIRTIO_PCI_LEGACY_PFN_SHIFT;

	/* The register holds a 32-bit page number: rings must sit below 2^44. */
	if ((vq->ring_phys & (VIRTIO_PCI_LEGACY_VRING_ALIGN - 1)) || pfn == 0 || pfn >> 32)
		return VIO_ERANGE;
	out16(dev, REG(queue_select), vq->index);
	if (in16(dev, REG(queue_size)) != vq->size)
		return VIO_EIO;
	if (in32(dev, REG(queue_address)) != 0)
		return VIO_EIO; /* already in use: the device was not reset */
	vq->msix_vector = vio_pci_queue_vector(dev, vq->index);
	if (dev->t.pci.pdev.msix.enabled) {
		out16(dev, MSIXREG(queue_msix_vector), vq->msix_vector);
		if (in16(dev, MSIXREG(queue_msix_vector)) != vq->msix_vector)
			return VIO_EIO;
	}
	out32(dev, REG(queue_address), (uint32_t)pfn);
	return 0;
}

static void legacy_notify(struct vio_dev *dev, struct vio_vq *vq)
{
	out16(dev, REG(queue_notify), vq->index);
}

static uint8_t legacy_isr_read(struct vio_dev *dev)
{
	return in8(dev, REG(isr_status));
}

static const struct vio_transport_ops legacy_ops = {
	.name = "pci-legacy",
	.fixed_queue_size = true,
	.get_status = legacy_get_status,
	.set_status = legacy_set_status,
	.reset = legacy_reset,
	.get_features = legacy_get_features,
	.set_features = legacy_set_features,
	.config_read = legacy_config_read,
	.config_write = legacy_config_write,
	.config_generation = legacy_config_generation,
	.queue_max_size = legacy_queue_max_size,
	.queue_setup = legacy_queue_setup,
	.notify = legacy_notify,
	.setup_irqs = vio_pci_setup_irqs,
	.release_irqs = vio_pci_release_irqs,
	.location = vio_pci_location,
	.ack_interrupt = legacy_isr_read,
	.set_config_vector = legacy_set_config_vector,
	.set_queue_vector = legacy_set_queue_vector,
};

int vio_pci_probe_legacy(struct vio_dev *dev, const struct vio_pci_dev *pci)
{
	const struct vio_port *port = pci->bus->port;
	const struct vio_pci_bar *bar0 = &pci->bars[0];

	/* Only transitional ids have a legacy interface (4.1.2.3). */
	if (pci->vendor_id != VIRTIO_PCI_VENDOR_ID ||
	    pci->device_id < VIRTIO_PCI_DEVICE_ID_TRANS_MIN ||
	    pci->device_id > VIRTIO_PCI_DEVICE_ID_TRANS_MAX)
		return VIO_ENODEV;
	if (!bar0->is_io || bar0->size < VIRTIO_PCI_LEGACY_CONFIG_OFF_MSIX ||
	    bar0->phys + bar0->size > 0x10000)
		return VIO_ENODEV;
	if (!port->inb || !port->inw || !port->inl || !port->outb || !port->outw || !port->outl)
		return VIO_ENOTSUP;
	/* Cleared in place: clang builds a struct literal this large on the stack first. */
	__builtin_memset(dev, 0, sizeof(*dev));
	dev->port = port;
	dev->t.pci.pdev = *pci;
	dev->device_id = pci->subsystem_id;
	dev->ops = &legacy_ops;
	dev->t.pci.legacy.iobase = (uint16_t)bar0->phys;
	dev->t.pci.legacy.iolen = (uint32_t)bar0->size;
	/*
	 * The config ends where BAR 0 does. Count it from the MSI-X offset (24), the later
	 * start, so that a field read with MSI-X on never runs past the BAR; QEMU pads the BAR
	 * to a power of two, so nothing real is lost.
	 */
	dev->config_len = dev->t.pci.legacy.iolen - VIRTIO_PCI_LEGACY_CONFIG_OFF_MSIX;
	vio_pci_set_command(pci, PCI_COMMAND_IO | PCI_COMMAND_MASTER, 0);
	return 0;
}
