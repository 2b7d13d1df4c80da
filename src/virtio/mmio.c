/*
 * Virtio over MMIO (virtio 1.2, 4.2): a block of 32-bit registers at a fixed physical
 * address, found from the device tree, ACPI or the kernel command line
 * (virtio_mmio.device=<size>@<addr>:<irq>), with the device config at offset 0x100.
 *
 * Version 2 places each queue with three 64-bit addresses and QueueReady (4.2.3.2).
 * Version 1, the legacy layout (4.2.4), takes a page frame number instead: the driver first
 * tells the device its page size (GuestPageSize) and the used ring alignment (QueueAlign),
 * both 4096 here, matching the legacy contiguous ring layout vio_vq_init builds.
 *
 * QEMU: -M microvm ... -device virtio-rng-device (version 2; add
 * -global virtio-mmio.force-legacy=on for version 1).
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/io.h>
#include <vio/log.h>
#include <vio/spec/virtio_mmio.h>
#include <vio/transport.h>
#include <vio/virtio.h>

#define REG(dev, field) VIO_REG((dev)->t.mmio.regs, struct virtio_mmio_regs, field)

#define RD(dev, field) vio_mmio_read32(REG(dev, field))
#define WR(dev, field, v) vio_mmio_write32(REG(dev, field), (v))

static uint8_t mmio_get_status(struct vio_dev *dev)
{
	return (uint8_t)RD(dev, status);
}

static void mmio_set_status(struct vio_dev *dev, uint8_t status)
{
	WR(dev, status, status);
}

static void mmio_reset(struct vio_dev *dev)
{
	WR(dev, status, 0);
}

static uint64_t mmio_get_features(struct vio_dev *dev)
{
	WR(dev, device_features_sel, 0);
	uint64_t lo = RD(dev, device_features);
	if (!dev->modern)
		return lo; /* legacy: 32 feature bits */
	WR(dev, device_features_sel, 1);
	uint64_t hi = RD(dev, device_features);
	return hi << 32 | lo;
}

static void mmio_set_features(struct vio_dev *dev, uint64_t features)
{
	WR(dev, driver_features_sel, 0);
	WR(dev, driver_features, (uint32_t)features);
	WR(dev, driver_features_sel, 1);
	WR(dev, driver_features, (uint32_t)(features >> 32));
}

static uint32_t mmio_config_read(struct vio_dev *dev, uint32_t offset, unsigned width)
{
	volatile uint8_t *p = dev->t.mmio.regs + VIRTIO_MMIO_CONFIG_OFF + offset;

	return vio_mmio_read(p, width);
}

static void mmio_config_write(struct vio_dev *dev, uint32_t offset, unsigned width, uint32_t val)
{
	volatile uint8_t *p = dev->t.mmio.regs + VIRTIO_MMIO_CONFIG_OFF + offset;

	vio_mmio_write(p, width, val);
}

static uint32_t mmio_config_generation(struct vio_dev *dev)
{
	return dev->modern ? RD(dev, config_generation) : 0;
}

static uint32_t mmio_queue_max_size(struct vio_dev *dev, uint16_t index)
{
	WR(dev, queue_sel, index);
	return RD(dev, queue_num_max);
}

static int mmio_queue_setup(struct vio_dev *dev, struct vio_vq *vq)
{
	WR(dev, queue_sel, vq->index);
	if (!dev->modern) {
		uint64_t pfn = vq->ring_phys / VIRTIO_MMIO_LEGACY_PAGE_SIZE;
		if (vq->ring_phys % VIRTIO_MMIO_LEGACY_PAGE_SIZE || pfn == 0 || pfn >> 32)
			return VIO_ERANGE;
		if (RD(dev, queue_pfn) != 0)
			return VIO_EIO; /* in use: the device was not reset */
		WR(dev, guest_page_size, VIRTIO_MMIO_LEGACY_PAGE_SIZE);
		WR(dev, queue_num, vq->size);
		WR(dev, queue_align, VIRTIO_MMIO_LEGACY_QUEUE_ALIGN);
		WR(dev, queue_pfn, (uint32_t)pfn);
		return 0;
	}
	if (RD(dev, queue_ready) != 0)
		return VIO_EIO;
	WR(dev, queue_num, vq->size);
	WR(dev, queue_desc_low, (uint32_t)vq->desc_phys);
	WR(dev, queue_desc_high, (uint32_t)(vq->desc_phys >> 32));
	WR(dev, queue_driver_low, (uint32_t)vq->avail_phys);
	WR(dev, queue_driver_high, (uint32_t)(vq->avail_phys >> 32));
	WR(dev, queue_device_low, (uint32_t)vq->used_phys);
	WR(dev, queue_device_high, (uint32_t)(vq->used_phys >> 32));
	WR(dev, queue_ready, 1);
	return 0;
}

static void mmio_notify(struct vio_dev *dev, struct vio_vq *vq)
{
	WR(dev, queue_notify, vq->index);
}

_Static_assert(VIRTIO_MMIO_INT_VRING == VIO_ISR_QUEUE && VIRTIO_MMIO_INT_CONFIG == VIO_ISR_CONFIG,
	       "InterruptStatus carries the reasons in the ISR's bits (4.2.2)");

/*
 * MMIO has no read-to-clear ISR: InterruptStatus says why the device interrupted, and writing
 * the same bits to InterruptACK deasserts its line (4.2.2).
 */
static inline __attribute__((always_inline)) uint8_t read_and_ack(struct vio_dev *dev)
{
	uint32_t isr = RD(dev, interrupt_status) & (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);

	if (isr)
		WR(dev, interrupt_ack, isr);
	return (uint8_t)isr;
}

static uint8_t mmio_ack_interrupt(struct vio_dev *dev)
{
	return read_and_ack(dev);
}

/* The device's one interrupt line (4.2.3.4). It may be shared: 0 means another device. */
static void mmio_line_handler(void *arg)
{
	struct vio_dev *dev = arg;

	vio_dev_interrupt(dev, read_and_ack(dev));
}

/* Attach the line once; its handler stays for the device's life (the port cannot detach). */
static void mmio_setup_irqs(struct vio_dev *dev)
{
	struct vio_mmio_transport *m = &dev->t.mmio;
	const struct vio_port *port = dev->port;

	if (!m->irq_attached) {
		if (m->irq == VIO_NO_IRQ || !port->platform_irq_attach)
			return; /* polling, as the port or the discovery asked */
		int err = port->platform_irq_attach(port->ctx, m->irq, mmio_line_handler, dev);
		if (err < 0) {
			/* A fallback the owner did not choose: say so (port.h). */
			vio_logf(port, VIO_LOG_WARN,
				 "mmio@0x%llx: the port refused interrupt line %u (%s), polling",
				 (unsigned long long)m->phys, m->irq, vio_strerror(err));
			return;
		}
		m->irq_attached = true;
	}
	dev->irq_mode = VIO_IRQ_LINE;
	dev->irq_line = m->irq;
}

static int mmio_location(const struct vio_dev *dev, char *buf, size_t size)
{
	return vio_snprintf(buf, size, "mmio@0x%llx", (unsigned long long)dev->t.mmio.phys);
}

#define MMIO_OPS(transport_name)                                                               \
	{                                                                                       \
		.name = transport_name, .get_status = mmio_get_status,                          \
		.set_status = mmio_set_status, .reset = mmio_reset,                             \
		.get_features = mmio_get_features, .set_features = mmio_set_features,           \
		.config_read = mmio_config_read, .config_write = mmio_config_write,             \
		.config_generation = mmio_config_generation,                                    \
		.queue_max_size = mmio_queue_max_size, .queue_setup = mmio_queue_setup,         \
		.notify = mmio_notify, .setup_irqs = mmio_setup_irqs,                           \
		.ack_interrupt = mmio_ack_interrupt, .location = mmio_location,                 \
	}

static const struct vio_transport_ops mmio_ops = MMIO_OPS("mmio");
static const struct vio_transport_ops mmio_legacy_ops = MMIO_OPS("mmio-legacy");

int vio_mmio_probe(struct vio_dev *dev, const struct vio_port *port, uint64_t phys, size_t len,
		   uint32_t irq)
{
	if (!dev || !port || !port->map_mmio || len < sizeof(struct virtio_mmio_regs))
		return VIO_EINVAL;
	volatile uint8_t *regs = port->map_mmio(port->ctx, phys, len);
	if (!regs)
		return VIO_ENOMEM;
	/* Cleared in place: clang builds a struct literal this large on the stack first. */
	__builtin_memset(dev, 0, sizeof(*dev));
	dev->port = port;
	dev->t.mmio.regs = regs;
	dev->t.mmio.phys = phys;
	dev->t.mmio.len = len;
	dev->t.mmio.irq = irq;

	if (RD(dev, magic_value) != VIRTIO_MMIO_MAGIC)
		return VIO_ENODEV;
	uint32_t version = RD(dev, version);
	if (version != VIRTIO_MMIO_VERSION && version != VIRTIO_MMIO_VERSION_LEGACY)
		return VIO_ENOTSUP;
	/* 4.2.3.1.1: device id 0 is a placeholder slot with no device behind it. */
	dev->device_id = RD(dev, device_id);
	if (dev->device_id == 0)
		return VIO_ENODEV;
	dev->t.mmio.version = version;
	dev->modern = version == VIRTIO_MMIO_VERSION;
	dev->ops = dev->modern ? &mmio_ops : &mmio_legacy_ops;
	size_t config = len - VIRTIO_MMIO_CONFIG_OFF;
	dev->config_len = config > 0xffffffffu ? 0xffffffffu : (uint32_t)config;
	return 0;
}
