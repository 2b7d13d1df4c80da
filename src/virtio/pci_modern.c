/*
 * Virtio over PCI, the modern interface (virtio 1.2, 4.1.4).
 *
 * A modern device describes where its registers are with vendor-specific PCI capabilities:
 * the common configuration (features, status, queue setup), the notification area (one
 * 16-bit doorbell per queue at cap.offset + queue_notify_off * notify_off_multiplier), the
 * ISR byte (read to acknowledge INTx), and the device-specific config. Each names a BAR, an
 * offset and a length. We validate every one against the BAR it names before use, since a
 * hostile device could point us anywhere.
 *
 * Registers are usually reached through the mapped BAR. When a BAR cannot be mapped, the
 * VIRTIO_PCI_CAP_PCI_CFG capability offers a window in config space to any BAR register
 * (4.1.4.9); a BAR in I/O space is reached through port I/O. Every access goes through
 * region_read/region_write below, which pick the way.
 *
 * QEMU: -device virtio-rng-pci,disable-legacy=on (or a transitional device: the default).
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/io.h>
#include <vio/log.h>
#include <vio/spec/pci.h>
#include <vio/spec/virtio_pci.h>
#include <vio/transport.h>
#include <vio/virtio.h>

#define COMMON(field) offsetof(struct virtio_pci_common_cfg, field)
#define CAP(field) offsetof(struct virtio_pci_cap, field)

/* Cap notify_off_multiplier: QEMU uses 4 (or 4096 with page-per-vq); the spec sets no limit. */
#define MAX_NOTIFY_MULTIPLIER (1u << 20)

/* --- register access ------------------------------------------------------------------- */

/* Access through the PCI_CFG window: point it at the register, then use pci_cfg_data. */
static uint32_t cfg_window(struct vio_dev *dev, const struct vio_pci_region *r, uint32_t off,
			   unsigned width, bool write, uint32_t val)
{
	const struct vio_pci_dev *pci = &dev->t.pci.pdev;
	uint16_t cap = dev->t.pci.modern.caps.pci_cfg_cap;
	uint16_t data = (uint16_t)(cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data));

	vio_pci_write8(pci, (uint16_t)(cap + CAP(bar)), r->bar);
	vio_pci_write32(pci, (uint16_t)(cap + CAP(offset)), r->offset + off);
	vio_pci_write32(pci, (uint16_t)(cap + CAP(length)), width);
	if (write) {
		if (width == 1)
			vio_pci_write8(pci, data, (uint8_t)val);
		else if (width == 2)
			vio_pci_write16(pci, data, (uint16_t)val);
		else
			vio_pci_write32(pci, data, val);
		return 0;
	}
	if (width == 1)
		return vio_pci_read8(pci, data);
	if (width == 2)
		return vio_pci_read16(pci, data);
	return vio_pci_read32(pci, data);
}

static uint32_t region_read(struct vio_dev *dev, const struct vio_pci_region *r, uint32_t off,
			    unsigned width)
{
	const struct vio_port *port = dev->port;

	if (off > r->length || width > r->length - off)
		return 0xffffffffu; /* our own bug; never reach outside the region */
	if (r->virt) {
		return vio_mmio_read(r->virt + off, width);
	}
	if (r->is_io) {
		uint16_t p = (uint16_t)(r->io_port + off);
		return width == 1 ? port->inb(port->ctx, p) : width == 2 ? port->inw(port->ctx, p)
									 : port->inl(port->ctx, p);
	}
	return cfg_window(dev, r, off, width, false, 0);
}

static void region_write(struct vio_dev *dev, const struct vio_pci_region *r, uint32_t off,
			 unsigned width, uint32_t val)
{
	const struct vio_port *port = dev->port;

	if (off > r->length || width > r->length - off)
		return;
	if (r->virt) {
		vio_mmio_write(r->virt + off, width, val);
		return;
	}
	if (r->is_io) {
		uint16_t p = (uint16_t)(r->io_port + off);
		if (width == 1)
			port->outb(port->ctx, p, (uint8_t)val);
		else if (width == 2)
			port->outw(port->ctx, p, (uint16_t)val);
		else
			port->outl(port->ctx, p, val);
		return;
	}
	cfg_window(dev, r, off, width, true, val);
}

static uint32_t common_read(struct vio_dev *dev, uint32_t off, unsigned width)
{
	return region_read(dev, &dev->t.pci.modern.caps.common, off, width);
}

static void common_write(struct vio_dev *dev, uint32_t off, unsigned width, uint32_t val)
{
	region_write(dev, &dev->t.pci.modern.caps.common, off, width, val);
}

/* --- transport ops ---------------------------------------------------------------------- */

static uint8_t modern_get_status(struct vio_dev *dev)
{
	return (uint8_t)common_read(dev, COMMON(device_status), 1);
}

static void modern_set_status(struct vio_dev *dev, uint8_t status)
{
	common_write(dev, COMMON(device_status), 1, status);
}

static void modern_reset(struct vio_dev *dev)
{
	common_write(dev, COMMON(device_status), 1, 0);
}

static uint64_t modern_get_features(struct vio_dev *dev)
{
	common_write(dev, COMMON(device_feature_select), 4, 0);
	uint64_t lo = common_read(dev, COMMON(device_feature), 4);
	common_write(dev, COMMON(device_feature_select), 4, 1);
	uint64_t hi = common_read(dev, COMMON(device_feature), 4);
	return hi << 32 | lo;
}

static void modern_set_features(struct vio_dev *dev, uint64_t features)
{
	common_write(dev, COMMON(driver_feature_select), 4, 0);
	common_write(dev, COMMON(driver_feature), 4, (uint32_t)features);
	common_write(dev, COMMON(driver_feature_select), 4, 1);
	common_write(dev, COMMON(driver_feature), 4, (uint32_t)(features >> 32));
}

static uint64_t modern_get_driver_features(struct vio_dev *dev)
{
	common_write(dev, COMMON(driver_feature_select), 4, 0);
	uint64_t lo = common_read(dev, COMMON(driver_feature), 4);
	common_write(dev, COMMON(driver_feature_select), 4, 1);
	uint64_t hi = common_read(dev, COMMON(driver_feature), 4);
	return hi << 32 | lo;
}

static uint32_t modern_config_read(struct vio_dev *dev, uint32_t offset, unsigned width)
{
	return region_read(dev, &dev->t.pci.modern.caps.device, offset, width);
}

static void modern_config_write(struct vio_dev *dev, uint32_t offset, unsigned width,
				uint32_t val)
{
	region_write(dev, &dev->t.pci.modern.caps.device, offset, width, val);
}

static uint32_t modern_config_generation(struct vio_dev *dev)
{
	return common_read(dev, COMMON(config_generation), 1);
}

/*
 * num_queues is read again each time: QEMU's virtio-net has three queues until MQ is
 * negotiated and 2 * max_virtqueue_pairs + 1 after (it changes them at FEATURES_OK), so the
 * count read at probe may be short of the queues the negotiated features give.
 */
static uint32_t modern_queue_max_size(struct vio_dev *dev, uint16_t index)
{
	dev->t.pci.modern.num_queues = (uint16_t)common_read(dev, COMMON(num_queues), 2);
	if (index >= dev->t.pci.modern.num_queues)
		return 0;
	common_write(dev, COMMON(queue_select), 2, index);
	return common_read(dev, COMMON(queue_size), 2);
}

static void write64(struct vio_dev *dev, uint32_t lo_off, uint64_t val)
{
	/* 4.1.3.1: 64-bit fields are written as two 32-bit halves. */
	common_write(dev, lo_off, 4, (uint32_t)val);
	common_write(dev, lo_off + 4, 4, (uint32_t)(val >> 32));
}

static int modern_queue_setup(struct vio_dev *dev, struct vio_vq *vq)
{
	const struct vio_pci_region *notify = &dev->t.pci.modern.caps.notify;

	if (vq->index >= VIO_MAX_QUEUES)
		return VIO_EINVAL;
	common_write(dev, COMMON(queue_select), 2, vq->index);
	if (common_read(dev, COMMON(queue_enable), 2))
		return VIO_EIO; /* 4.1.4.3.2: a queue must not be enabled twice without reset */

	/*
	 * Where this queue's doorbell is (4.1.4.4). The device chooses queue_notify_off; the
	 * doorbell is 2 bytes and must lie inside the notify region.
	 */
	uint64_t notify_off = (uint64_t)common_read(dev, COMMON(queue_notify_off), 2) *
			      dev->t.pci.modern.caps.notify_off_multiplier;
	if (notify_off + 2 > notify->length) {
		vio_logf(dev->port, VIO_LOG_ERR,
			 "queue %u notify offset 0x%llx outside notify region (%u bytes)",
			 vq->index, (unsigned long long)notify_off, notify->length);
		return VIO_EPROTO;
	}
	/*
	 * The doorbell is written with one 16-bit access, which must be aligned (4.1.4.4: the
	 * multiplier is an even power of 2 for that reason). A BAR is aligned to its size, so
	 * it is the offset in the BAR that counts.
	 */
	if ((notify->offset + notify_off) & 1) {
		vio_logf(dev->port, VIO_LOG_ERR, "queue %u doorbell at odd offset 0x%llx in BAR %u",
			 vq->index, (unsigned long long)(notify->offset + notify_off), notify->bar);
		return VIO_EPROTO;
	}
	dev->t.pci.modern.notify_off[vq->index] = (uint32_t)notify_off;

	common_write(dev, COMMON(queue_size), 2, vq->size);
	vq->msix_vector = vio_pci_queue_vector(dev, vq->index);
	common_write(dev, COMMON(queue_msix_vector), 2, vq->msix_vector);
	if (common_read(dev, COMMON(queue_msix_vector), 2) != vq->msix_vector)
		return VIO_EIO;
	write64(dev, COMMON(queue_desc_lo), vq->desc_phys);
	write64(dev, COMMON(queue_driver_lo), vq->avail_phys);
	write64(dev, COMMON(queue_device_lo), vq->used_phys);
	common_write(dev, COMMON(queue_enable), 2, 1);
	return 0;
}

static void modern_notify(struct vio_dev *dev, struct vio_vq *vq)
{
	region_write(dev, &dev->t.pci.modern.caps.notify,
		     dev->t.pci.modern.notify_off[vq->index], 2, vq->index);
}

/* The ISR byte: reading it returns and clears the interrupt reasons (4.1.4.5). */
static uint8_t modern_isr_read(struct vio_dev *dev)
{
	return (uint8_t)region_read(dev, &dev->t.pci.modern.caps.isr, 0, 1);
}

static uint16_t modern_set_config_vector(struct vio_dev *dev, uint16_t vector)
{
	common_write(dev, COMMON(config_msix_vector), 2, vector);
	return (uint16_t)common_read(dev, COMMON(config_msix_vector), 2);
}

static uint16_t modern_set_queue_vector(struct vio_dev *dev, uint16_t index, uint16_t vector)
{
	common_write(dev, COMMON(queue_select), 2, index);
	common_write(dev, COMMON(queue_msix_vector), 2, vector);
	return (uint16_t)common_read(dev, COMMON(queue_msix_vector), 2);
}

static const struct vio_transport_ops modern_ops = {
	.name = "pci-modern",
	.get_status = modern_get_status,
	.set_status = modern_set_status,
	.reset = modern_reset,
	.get_features = modern_get_features,
	.set_features = modern_set_features,
	.get_driver_features = modern_get_driver_features,
	.config_read = modern_config_read,
	.config_write = modern_config_write,
	.config_generation = modern_config_generation,
	.queue_max_size = modern_queue_max_size,
	.queue_setup = modern_queue_setup,
	.notify = modern_notify,
	.setup_irqs = vio_pci_setup_irqs,
	.release_irqs = vio_pci_release_irqs,
	.location = vio_pci_location,
	.ack_interrupt = modern_isr_read,
	.set_config_vector = modern_set_config_vector,
	.set_queue_vector = modern_set_queue_vector,
};

/* --- capability parsing ----------------------------------------------------------------- */

/* The smallest length the spec lets each region have. */
static uint32_t min_region_length(uint8_t type)
{
	switch (type) {
	case VIRTIO_PCI_CAP_COMMON_CFG:
		return VIRTIO_PCI_COMMON_CFG_MIN_LEN;
	case VIRTIO_PCI_CAP_NOTIFY_CFG:
		return 2;
	case VIRTIO_PCI_CAP_ISR_CFG:
		return 1;
	default:
		return 0;
	}
}

static struct vio_pci_region *region_for(struct vio_pci_modern_caps *caps, uint8_t type)
{
	switch (type) {
	case VIRTIO_PCI_CAP_COMMON_CFG:
		return &caps->common;
	case VIRTIO_PCI_CAP_NOTIFY_CFG:
		return &caps->notify;
	case VIRTIO_PCI_CAP_ISR_CFG:
		return &caps->isr;
	case VIRTIO_PCI_CAP_DEVICE_CFG:
		return &caps->device;
	default:
		return NULL;
	}
}

/* Validate one virtio capability at config offset `at` and record it. */
static int parse_one(const struct vio_pci_dev *pci, uint8_t at, struct vio_pci_modern_caps *caps)
{
	uint8_t cap_len = vio_pci_read8(pci, (uint16_t)(at + CAP(cap_len)));
	uint8_t type = vio_pci_read8(pci, (uint16_t)(at + CAP(cfg_type)));

	if (type == VIRTIO_PCI_CAP_PCI_CFG) {
		if (cap_len < sizeof(struct virtio_pci_cfg_cap) ||
		    at + sizeof(struct virtio_pci_cfg_cap) > PCI_CFG_SPACE_SIZE)
			return VIO_EPROTO;
		if (!caps->pci_cfg_cap)
			caps->pci_cfg_cap = at;
		return 0;
	}
	struct vio_pci_region *r = region_for(caps, type);
	if (!r || r->present)
		return 0; /* unknown or vendor types are skipped; the first of each type wins */

	size_t want = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? sizeof(struct virtio_pci_notify_cap)
							: sizeof(struct virtio_pci_cap);
	if (cap_len < want || at + want > PCI_CFG_SPACE_SIZE)
		return VIO_EPROTO;
	uint8_t bar = vio_pci_read8(pci, (uint16_t)(at + CAP(bar)));
	uint32_t offset = vio_pci_read32(pci, (uint16_t)(at + CAP(offset)));
	uint32_t length = vio_pci_read32(pci, (uint16_t)(at + CAP(length)));

	/* 4.1.4.1: a capability naming a reserved BAR is ignored; so is an unimplemented BAR. */
	if (bar >= VIO_PCI_MAX_BARS || pci->bars[bar].size == 0)
		return 0;
	if ((uint64_t)offset + length > pci->bars[bar].size || length < min_region_length(type))
		return VIO_EPROTO;
	if (type == VIRTIO_PCI_CAP_DEVICE_CFG && length == 0)
		return 0;
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
		uint32_t mult = vio_pci_read32(
			pci, (uint16_t)(at + offsetof(struct virtio_pci_notify_cap,
						     notify_off_multiplier)));
		/* 4.1.4.4: "an even power of 2, or 0"; anything else aims doorbells anywhere. */
		if ((mult & (mult - 1)) || mult > MAX_NOTIFY_MULTIPLIER)
			return VIO_EPROTO;
		caps->notify_off_multiplier = mult;
	}
	*r = (struct vio_pci_region){
		.bar = bar, .offset = offset, .length = length, .present = true};
	return 0;
}

int vio_pci_modern_parse_caps(const struct vio_pci_dev *pci, struct vio_pci_modern_caps *caps)
{
	struct vio_pci_capref list[VIO_PCI_MAX_CAPS];

	*caps = (struct vio_pci_modern_caps){0};
	int n = vio_pci_cap_walk(pci, list, VIO_PCI_MAX_CAPS);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (list[i].id != PCI_CAP_ID_VNDR)
			continue;
		int err = parse_one(pci, list[i].offset, caps);
		if (err)
			return err;
	}
	if (!caps->common.present || !caps->notify.present || !caps->isr.present)
		return VIO_ENODEV;
	return 0;
}

/* Decide how to reach a region: mapped memory, port I/O, or the PCI_CFG window. */
static int reach_region(struct vio_dev *dev, struct vio_pci_region *r)
{
	const struct vio_pci_dev *pci = &dev->t.pci.pdev;
	const struct vio_pci_bar *bar = &pci->bars[r->bar];
	const struct vio_port *port = dev->port;
	bool window = dev->t.pci.modern.caps.pci_cfg_cap != 0;

	if (!r->present)
		return 0;
	if (bar->is_io) {
		/* Registers are 8, 16 and 32 bits wide: the port must do all three widths. */
		bool io = port->inb && port->inw && port->inl && port->outb && port->outw &&
			  port->outl;
		if (io && bar->phys + r->offset + r->length <= 0x10000) {
			r->is_io = true;
			r->io_port = (uint16_t)(bar->phys + r->offset);
			return 0;
		}
		return window ? 0 : VIO_ENOTSUP;
	}
	r->virt = vio_pci_map_bar(pci, r->bar, r->offset, r->length);
	if (r->virt || window)
		return 0;
	return VIO_ENOMEM;
}

int vio_pci_probe_modern(struct vio_dev *dev, const struct vio_pci_dev *pci)
{
	int id = vio_pci_virtio_id(pci);

	if (id < 0)
		return VIO_ENODEV;
	/* Cleared in place: clang builds a struct literal this large on the stack first. */
	__builtin_memset(dev, 0, sizeof(*dev));
	dev->port = pci->bus->port;
	dev->device_id = (uint32_t)id;
	dev->t.pci.pdev = *pci;
	int err = vio_pci_modern_parse_caps(pci, &dev->t.pci.modern.caps);
	if (err)
		return err;
	struct vio_pci_modern_caps *caps = &dev->t.pci.modern.caps;
	struct vio_pci_region *regions[] = {&caps->common, &caps->notify, &caps->isr,
					    &caps->device};
	for (unsigned i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		err = reach_region(dev, regions[i]);
		if (err)
			return err;
	}
	if (!caps->common.virt && !caps->common.is_io)
		vio_logf(dev->port, VIO_LOG_WARN,
			 "%s: BAR %u not mappable, using the PCI config window",
			 vio_device_type_name(dev->device_id), caps->common.bar);
	/* Decode the BARs and let the device DMA (and send MSI-X messages). */
	vio_pci_set_command(pci, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_MASTER, 0);
	dev->ops = &modern_ops;
	dev->modern = true;
	dev->config_len = caps->device.present ? caps->device.length : 0;
	dev->t.pci.modern.num_queues = (uint16_t)common_read(dev, COMMON(num_queues), 2);
	return 0;
}
