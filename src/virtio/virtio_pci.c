/*
 * Which PCI functions are virtio devices, which interface to drive them through, and what
 * the two interfaces share besides their interrupts (those are in pci_irq.c).
 *
 * Vendor 0x1af4 with device id 0x1040-0x107f is a modern-only device (virtio id = device id -
 * 0x1040). 0x1000-0x103f is transitional: legacy I/O registers, usually the modern
 * capabilities as well, and the virtio id in the subsystem id (4.1.2). We prefer the modern
 * interface and fall back to legacy only when the function has no virtio capabilities
 * (QEMU's disable-modern=on).
 */
#include <vio/err.h>
#include <vio/log.h>
#include <vio/spec/virtio_pci.h>
#include <vio/transport.h>
#include <vio/virtio.h>

int vio_pci_virtio_id(const struct vio_pci_dev *pci)
{
	if (pci->vendor_id != VIRTIO_PCI_VENDOR_ID)
		return -1;
	if (pci->device_id >= VIRTIO_PCI_DEVICE_ID_MODERN_BASE &&
	    pci->device_id <= VIRTIO_PCI_DEVICE_ID_MODERN_MAX)
		return pci->device_id - VIRTIO_PCI_DEVICE_ID_MODERN_BASE;
	if (pci->device_id >= VIRTIO_PCI_DEVICE_ID_TRANS_MIN &&
	    pci->device_id <= VIRTIO_PCI_DEVICE_ID_TRANS_MAX)
		return pci->subsystem_id;
	return -1;
}

int vio_pci_probe(struct vio_dev *dev, const struct vio_pci_dev *pci)
{
	int err = vio_pci_probe_modern(dev, pci);

	if (err != VIO_ENODEV || vio_pci_virtio_id(pci) < 0)
		return err;
	return vio_pci_probe_legacy(dev, pci);
}

int vio_pci_location(const struct vio_dev *dev, char *buf, size_t size)
{
	char bdf[16];

	return vio_snprintf(buf, size, "%s", vio_pci_bdf(&dev->t.pci.pdev, bdf, sizeof(bdf)));
}
