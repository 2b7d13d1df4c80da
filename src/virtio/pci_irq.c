/*
 * Interrupts for both PCI transports, modern and legacy (virtio 1.2, 4.1.4.5 and 4.1.5.1.2),
 * chosen the way Linux's vp_find_vqs chooses them, best first:
 *
 *   1. MSI-X, one vector per queue plus one for configuration changes;
 *   2. MSI-X, one vector all queues share (plus one for configuration changes when the
 *      table has room for two);
 *   3. INTx, the function's legacy line: level-triggered and shared with other devices;
 *      reading the ISR byte tells why and deasserts it;
 *   4. none: the driver polls.
 *
 * MSI-X table entry i holds the port's vector i: entry 0 serves configuration changes, the
 * queues follow (all of them on entry 1 when shared). The device learns the entry for its
 * configuration changes and for each queue through two registers and reads back
 * VIRTIO_MSI_NO_VECTOR when it cannot use one (4.1.5.1.2); then we fall to the next mode.
 *
 * QEMU: -device virtio-rng-pci,vectors=0 (no MSI-X: INTx), vectors=2 (shared MSI-X).
 */
#include <vio/err.h>
#include <vio/log.h>
#include <vio/spec/virtio_pci.h>
#include <vio/transport.h>
#include <vio/virtio.h>

/* MSI-X: one vector per queue. */
static void msix_queue_handler(void *arg)
{
	vio_vq_interrupt(arg);
}

/* MSI-X: the vector all queues share. */
static void msix_shared_handler(void *arg)
{
	vio_dev_interrupt(arg, VIO_ISR_QUEUE);
}

static void msix_config_handler(void *arg)
{
	vio_dev_interrupt(arg, VIO_ISR_CONFIG);
}

_Static_assert(VIRTIO_PCI_ISR_QUEUE == VIO_ISR_QUEUE && VIRTIO_PCI_ISR_CONFIG == VIO_ISR_CONFIG,
	       "the ISR byte's bits (4.1.4.5)");

/*
 * INTx: level-triggered and possibly shared with other devices. Reading the ISR both tells
 * us why and deasserts the line (4.1.4.5); 0 means it was someone else.
 */
static void intx_handler(void *arg)
{
	struct vio_dev *dev = arg;

	vio_dev_interrupt(dev, dev->ops->ack_interrupt(dev));
}

/* Mask and give back every MSI-X vector held, and turn MSI-X off. */
static void release_msix(struct vio_dev *dev)
{
	struct vio_pci_transport *t = &dev->t.pci;
	const struct vio_port *port = dev->port;

	if (t->pdev.msix.enabled)
		vio_pci_msix_enable(&t->pdev, false);
	for (uint16_t i = 0; i < t->nvectors; i++) {
		vio_pci_msix_mask_entry(&t->pdev, i, true);
		if (port->msix_free)
			port->msix_free(port->ctx, t->vectors[i].addr, t->vectors[i].data);
	}
	t->nvectors = 0;
}

/* Allocate a CPU vector from the port and program it into the next free table entry. */
static int add_vector(struct vio_dev *dev, vio_irq_handler handler, void *arg)
{
	struct vio_pci_transport *t = &dev->t.pci;
	const struct vio_port *port = dev->port;
	struct vio_pci_vector *v = &t->vectors[t->nvectors];

	int err = port->msix_alloc(port->ctx, handler, arg, &v->addr, &v->data);
	if (err < 0)
		return err;
	/* The port may be holding this vector masked (a storm): ask before unmasking it. */
	bool held = port->msix_may_unmask && !port->msix_may_unmask(port->ctx, v->addr, v->data);
	if (held)
		vio_logf(port, VIO_LOG_WARN,
			 "%s: MSI-X entry %u left masked: the port holds its vector (an interrupt "
			 "storm); polled until the port lets it fire",
			 dev->name ? dev->name : vio_device_type_name(dev->device_id), t->nvectors);
	err = vio_pci_msix_set_entry(&t->pdev, t->nvectors, v->addr, v->data, held);
	t->nvectors++;
	return err;
}

uint16_t vio_pci_queue_vector(const struct vio_dev *dev, uint16_t index)
{
	switch (dev->irq_mode) {
	case VIO_IRQ_MSIX:
		return (uint16_t)(index + 1);
	case VIO_IRQ_MSIX_SHARED:
		return dev->t.pci.nvectors > 1 ? 1 : 0;
	default:
		return VIRTIO_MSI_NO_VECTOR;
	}
}

/* Tell the device its config and queue vectors for the current mode; false if it refuses. */
static bool program_vectors(struct vio_dev *dev, uint16_t config_vec)
{
	if (dev->ops->set_config_vector(dev, config_vec) != config_vec)
		return false;
	for (uint16_t i = 0; i < dev->nvqs; i++) {
		if (dev->ops->queue_max_size(dev, i) == 0)
			continue; /* absent queue: vio_dev_setup_vq will report it */
		uint16_t want = vio_pci_queue_vector(dev, i);
		if (dev->ops->set_queue_vector(dev, i, want) != want)
			return false;
	}
	return true;
}

static int try_msix(struct vio_dev *dev, bool per_queue)
{
	struct vio_pci_msix *m = &dev->t.pci.pdev.msix;
	uint32_t need = per_queue ? dev->nvqs + 1u : 1u;

	if (!dev->port->msix_alloc || !m->cap || m->table_size < need ||
	    vio_pci_msix_map(&dev->t.pci.pdev) < 0)
		return VIO_ENOTSUP;

	dev->irq_mode = per_queue ? VIO_IRQ_MSIX : VIO_IRQ_MSIX_SHARED;
	int err = 0;
	uint16_t config_vec = VIRTIO_MSI_NO_VECTOR;
	if (per_queue || m->table_size >= 2) {
		/* Entry 0: configuration changes. */
		err = add_vector(dev, msix_config_handler, dev);
		config_vec = 0;
	}
	if (per_queue) {
		for (uint16_t i = 0; i < dev->nvqs && !err; i++)
			err = add_vector(dev, msix_queue_handler, &dev->vqs[i]);
	} else if (!err) {
		err = add_vector(dev, msix_shared_handler, dev);
	}
	if (!err) {
		/* Legacy devices grow two vector registers now (4.1.4.10): enable first. */
		vio_pci_msix_enable(&dev->t.pci.pdev, true);
		if (!program_vectors(dev, config_vec))
			err = VIO_ENOTSUP;
	}
	if (err) {
		if (m->enabled) {
			dev->irq_mode = VIO_IRQ_POLL;
			program_vectors(dev, VIRTIO_MSI_NO_VECTOR);
		}
		release_msix(dev);
		dev->irq_mode = VIO_IRQ_POLL;
	}
	return err;
}

static int try_intx(struct vio_dev *dev)
{
	struct vio_pci_transport *t = &dev->t.pci;
	const struct vio_port *port = dev->port;

	if (!port->intx_attach || !t->pdev.irq_pin)
		return VIO_ENOTSUP;
	const struct vio_pci_dev *p = &t->pdev;
	int err = port->intx_attach(port->ctx, p->segment, p->busno, p->dev, p->fn, p->irq_pin,
				    p->irq_line, intx_handler, dev);
	if (err < 0)
		return err;
	t->intx_attached = true;
	dev->irq_mode = VIO_IRQ_INTX;
	return 0;
}

void vio_pci_setup_irqs(struct vio_dev *dev)
{
	struct vio_pci_transport *t = &dev->t.pci;

	release_msix(dev);
	if (try_msix(dev, true) == 0 || try_msix(dev, false) == 0)
		return;
	if (t->pdev.msix.cap && dev->port->msix_alloc)
		vio_logf(dev->port, VIO_LOG_WARN, "%s: MSI-X unusable, falling back",
			 dev->name ? dev->name : vio_device_type_name(dev->device_id));
	/* An INTx handler stays attached for the device's life: the port cannot detach it. */
	if (t->intx_attached)
		dev->irq_mode = VIO_IRQ_INTX;
	else
		try_intx(dev); /* or polling, which always works */
}

void vio_pci_release_irqs(struct vio_dev *dev)
{
	release_msix(dev);
	/* An INTx handler stays attached and keeps serving (nothing, until queues return). */
	if (dev->irq_mode != VIO_IRQ_INTX)
		dev->irq_mode = VIO_IRQ_POLL;
}
