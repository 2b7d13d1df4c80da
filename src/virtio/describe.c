/*
 * How a device is named in logs and in the kernel's device table: its type, its transport
 * and where it sits, how it interrupts, and the one device line vio_dev_driver_ok logs
 * (feature names are in features.c).
 */
#include <vio/log.h>
#include <vio/spec/virtio_config.h>
#include <vio/transport.h>
#include <vio/virtio.h>

const char *vio_device_type_name(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return "virtio-net";
	case VIRTIO_ID_BLOCK:
		return "virtio-blk";
	case VIRTIO_ID_CONSOLE:
		return "virtio-console";
	case VIRTIO_ID_RNG:
		return "virtio-rng";
	case VIRTIO_ID_BALLOON:
		return "virtio-balloon";
	case VIRTIO_ID_SCSI:
		return "virtio-scsi";
	case VIRTIO_ID_9P:
		return "virtio-9p";
	case VIRTIO_ID_GPU:
		return "virtio-gpu";
	case VIRTIO_ID_INPUT:
		return "virtio-input";
	case VIRTIO_ID_VSOCK:
		return "virtio-vsock";
	case VIRTIO_ID_FS:
		return "virtio-fs";
	default:
		return "virtio";
	}
}

const char *vio_irq_mode_name(enum vio_irq_mode mode)
{
	switch (mode) {
	case VIO_IRQ_MSIX:
		return "msix";
	case VIO_IRQ_MSIX_SHARED:
		return "msix-shared";
	case VIO_IRQ_INTX:
		return "intx";
	case VIO_IRQ_LINE:
		return "line";
	default:
		return "poll";
	}
}

const char *vio_dev_transport_name(const struct vio_dev *dev)
{
	return dev->ops ? dev->ops->name : "none";
}

int vio_dev_location(const struct vio_dev *dev, char *buf, size_t size)
{
	if (!dev->ops)
		return vio_snprintf(buf, size, "none");
	return dev->ops->location(dev, buf, size);
}

int vio_dev_describe(const struct vio_dev *dev, char *buf, size_t size)
{
	char where[32], irq[24];

	vio_dev_location(dev, where, sizeof(where));
	if (dev->irq_mode == VIO_IRQ_LINE)
		vio_snprintf(irq, sizeof(irq), "line:%u", (unsigned)dev->irq_line);
	else
		vio_snprintf(irq, sizeof(irq), "%s", vio_irq_mode_name(dev->irq_mode));
	return vio_snprintf(buf, size, "%s %s %s features=0x%llx queues=%u irq=%s",
			    dev->name ? dev->name : vio_device_type_name(dev->device_id), where,
			    vio_dev_transport_name(dev), (unsigned long long)dev->features,
			    dev->nvqs, irq);
}
