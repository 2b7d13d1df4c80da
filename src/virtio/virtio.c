/*
 * The virtio core: device initialisation in the spec's order (virtio 1.2, 3.1.1), feature
 * negotiation, config space reads that respect the generation count (2.5.1), queue setup and
 * teardown. Written once here; the transports (pci_modern.c, pci_legacy.c, mmio.c) know how
 * to reach registers and how their devices interrupt (pci_irq.c, mmio.c), and report
 * interrupts back through vio_dev_interrupt. Names and the device line are in describe.c.
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/log.h>
#include <vio/spec/virtio_config.h>
#include <vio/transport.h>
#include <vio/virtio.h>

/* --- 3.1.1 steps 1-6: reset, acknowledge, negotiate the features ------------------------ */

/*
 * Transport and ring feature bits (6) the core itself knows how to honour. Bits in the
 * reserved range that are not here (in-order, notification data, ring reset, SR-IOV, ...)
 * are never accepted, whatever the driver asks for. The packed ring is the core's own choice,
 * below: drivers see only the verbs, whatever the layout.
 */
#define CORE_RING_FEATURES                                                                      \
	(VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX) |        \
	 VIRTIO_BIT(VIRTIO_F_ANY_LAYOUT) | VIRTIO_BIT(VIRTIO_F_VERSION_1) |                      \
	 VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM))

/* Feature bits 0-23 and 41-63 belong to the device type (6); the driver decides those. */
static uint64_t device_type_bits(void)
{
	uint64_t transport = 0;
	for (unsigned b = VIRTIO_TRANSPORT_F_START; b <= VIRTIO_TRANSPORT_F_END; b++)
		transport |= VIRTIO_BIT(b);
	return ~transport;
}

static const char *dev_name(const struct vio_dev *dev)
{
	return dev->name ? dev->name : vio_device_type_name(dev->device_id);
}

static void add_status(struct vio_dev *dev, uint8_t bit)
{
	dev->status = (uint8_t)(dev->ops->get_status(dev) | bit);
	dev->ops->set_status(dev, dev->status);
}

void vio_dev_fail(struct vio_dev *dev)
{
	add_status(dev, VIRTIO_CONFIG_S_FAILED);
}

bool vio_dev_is_dead(const struct vio_dev *dev)
{
	return dev->dead;
}

int vio_dev_reset(struct vio_dev *dev)
{
	const struct vio_port *port = dev->port;

	if (dev->dead)
		return VIO_EDEAD;
	dev->ops->reset(dev);
	dev->status = 0;
	dev->needs_reset = false;
	/*
	 * 4.1.4.3.2: the device may take a while to finish a reset; the driver must wait for
	 * device_status to read 0 before touching it again (also on MMIO v2, 4.2.2.2).
	 */
	uint64_t start = port->now_ns(port->ctx);
	while (dev->ops->get_status(dev) != 0) {
		if (port->now_ns(port->ctx) - start > VIO_RESET_TIMEOUT_NS) {
			/*
			 * The device may still be using every ring, table and buffer it was
			 * given, and may go on doing so at any time: none of that memory may
			 * be freed or reused, ever. Give up on the device for good.
			 */
			dev->dead = true;
			vio_logf(port, VIO_LOG_ERR,
				 "%s: reset did not complete: device dead, its memory is kept",
				 dev_name(dev));
			return VIO_EDEAD;
		}
		if (port->delay_us)
			port->delay_us(port->ctx, 10);
	}
	return 0;
}

int vio_dev_begin(struct vio_dev *dev, uint64_t wanted)
{
	const struct vio_port *port = dev->port;
	const char *name = dev_name(dev);

	/* 1. Reset. 2. ACKNOWLEDGE: we noticed it. 3. DRIVER: we can drive it. */
	int err = vio_dev_reset(dev);
	if (err)
		return err;
	add_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	add_status(dev, VIRTIO_CONFIG_S_DRIVER);

	/*
	 * 4. Read the device's features and write the subset we understand. Offering bits we
	 * do not take is normal; the device must cope with any subset of what it offered.
	 */
	dev->device_features = dev->ops->get_features(dev);
	uint64_t accept = (wanted & device_type_bits()) | (wanted & CORE_RING_FEATURES);
	accept |= VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM);
	if (dev->modern) {
		if (!(dev->device_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
			vio_logf(port, VIO_LOG_ERR, "%s: modern interface without VERSION_1",
				 name);
			vio_dev_fail(dev);
			return VIO_ENOTSUP;
		}
		accept |= VIRTIO_BIT(VIRTIO_F_VERSION_1);
		/* 2.8: a packed ring whenever the device offers one and the caller allows it. */
		if (!dev->split_only)
			accept |= VIRTIO_BIT(VIRTIO_F_RING_PACKED);
	} else {
		/* Legacy devices have 32 feature bits and know nothing of VERSION_1. */
		accept &= 0xffffffffull;
	}
	dev->features = dev->device_features & accept;
	dev->ops->set_features(dev, dev->features);
	if (!dev->modern)
		return 0; /* legacy devices have no FEATURES_OK step (3.1.2) */

	/* 5. FEATURES_OK. 6. Re-read it: a device that cannot live with our subset clears it. */
	add_status(dev, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(dev->ops->get_status(dev) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		vio_logf(port, VIO_LOG_ERR, "%s: device refused features 0x%llx", name,
			 (unsigned long long)dev->features);
		vio_dev_fail(dev);
		return VIO_EFEATURES;
	}
	if (dev->ops->get_driver_features) {
		uint64_t back = dev->ops->get_driver_features(dev);
		if (back & ~dev->features) {
			vio_logf(port, VIO_LOG_ERR,
				 "%s: device reports features 0x%llx we did not accept", name,
				 (unsigned long long)(back & ~dev->features));
			vio_dev_fail(dev);
			return VIO_EFEATURES;
		}
	}
	return 0;
}

bool vio_dev_has_feature(const struct vio_dev *dev, unsigned bit)
{
	return bit < 64 && (dev->features & VIRTIO_BIT(bit));
}

/* --- device configuration space (2.5) --------------------------------------------------- */

/* Copy config bytes with accesses as wide as the field: 1, 2, 4, or 8 as two 4-byte reads. */
static void config_copy_in(struct vio_dev *dev, uint32_t offset, uint8_t *buf, uint32_t len)
{
	if ((len == 2 || len == 4) && offset % len == 0) {
		uint32_t v = dev->ops->config_read(dev, offset, len);
		for (uint32_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(v >> (8 * i));
		return;
	}
	if (len == 8 && offset % 4 == 0) {
		config_copy_in(dev, offset, buf, 4);
		config_copy_in(dev, offset + 4, buf + 4, 4);
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)dev->ops->config_read(dev, offset + i, 1);
}

static bool config_range_ok(const struct vio_dev *dev, uint32_t offset, uint32_t len)
{
	return offset <= dev->config_len && len <= dev->config_len - offset;
}

int vio_dev_config_read(struct vio_dev *dev, uint32_t offset, void *buf, uint32_t len)
{
	if (dev->dead)
		return VIO_EDEAD;
	if (!config_range_ok(dev, offset, len))
		return VIO_EINVAL;
	/*
	 * 2.5.1: a field wider than one access may change between our accesses. The device
	 * bumps config_generation on every change, so read until it is the same before and
	 * after. A device whose generation never settles is broken.
	 */
	for (int tries = 0; tries < VIO_CONFIG_READ_TRIES; tries++) {
		uint32_t before = dev->ops->config_generation(dev);
		config_copy_in(dev, offset, buf, len);
		if (dev->ops->config_generation(dev) == before)
			return 0;
	}
	vio_logf(dev->port, VIO_LOG_ERR, "%s: config generation never settles",
		 vio_device_type_name(dev->device_id));
	return VIO_EIO;
}

int vio_dev_config_write(struct vio_dev *dev, uint32_t offset, const void *buf, uint32_t len)
{
	const uint8_t *b = buf;

	if (dev->dead)
		return VIO_EDEAD;
	if (!config_range_ok(dev, offset, len))
		return VIO_EINVAL;
	if ((len == 2 || len == 4) && offset % len == 0) {
		uint32_t v = 0;
		for (uint32_t i = 0; i < len; i++)
			v |= (uint32_t)b[i] << (8 * i);
		dev->ops->config_write(dev, offset, len, v);
		return 0;
	}
	for (uint32_t i = 0; i < len; i++)
		dev->ops->config_write(dev, offset + i, 1, b[i]);
	return 0;
}

/* --- 3.1.1 step 7: how the device interrupts, then its queues --------------------------- */

static bool vq_live(const struct vio_vq *vq)
{
	return vq->size != 0;
}

int vio_dev_setup_irqs(struct vio_dev *dev, struct vio_vq *vqs, uint16_t nvqs)
{
	if (dev->dead)
		return VIO_EDEAD;
	if (!vqs || nvqs == 0 || nvqs > VIO_MAX_QUEUES)
		return VIO_EINVAL;
	/* A reset clears the device's vectors: program them after vio_dev_begin's reset. */
	if (!(dev->status & VIRTIO_CONFIG_S_DRIVER))
		return VIO_EINVAL;
	/* Queues set up hold rings the device knows: vio_dev_teardown gives them back first. */
	for (uint16_t i = 0; dev->vqs && i < dev->nvqs; i++)
		if (vq_live(&dev->vqs[i]))
			return VIO_EINVAL;
	for (uint16_t i = 0; i < nvqs; i++)
		vqs[i] = (struct vio_vq){0};
	dev->vqs = vqs;
	dev->nvqs = nvqs;
	dev->irq_mode = VIO_IRQ_POLL;
	dev->ops->setup_irqs(dev);
	return 0;
}

static void notify_trampoline(struct vio_vq *vq, void *arg)
{
	struct vio_dev *dev = arg;

	dev->ops->notify(dev, vq);
}

/* A queue broke because the device broke a rule: perhaps it says why (2.1.2). */
static void queue_fault(struct vio_vq *vq, void *arg)
{
	(void)vq;
	vio_dev_check(arg);
}

static uint32_t round_down_pow2(uint32_t n)
{
	while (n & (n - 1))
		n &= n - 1;
	return n;
}

uint32_t vio_dev_queue_max_size(struct vio_dev *dev, uint16_t index)
{
	if (dev->dead)
		return 0;
	uint32_t max = dev->ops->queue_max_size(dev, index);
	return max > VIRTIO_QUEUE_SIZE_MAX ? VIRTIO_QUEUE_SIZE_MAX : max;
}

/* The size to use for a queue, or a negative vio_err (logged). */
static int choose_queue_size(struct vio_dev *dev, uint16_t index, uint16_t max_size)
{
	uint32_t dev_max = dev->ops->queue_max_size(dev, index); /* unclamped: legacy sizes */

	if (dev_max == 0)
		return VIO_ENODEV;
	if (dev->ops->fixed_queue_size) {
		/* Legacy: the device decides, and split rings need a power of two (2.7). */
		if ((dev_max & (dev_max - 1)) || dev_max > VIRTIO_QUEUE_SIZE_MAX) {
			vio_logf(dev->port, VIO_LOG_ERR, "%s: queue %u has a bad size",
				 dev_name(dev), index);
			return VIO_EPROTO;
		}
		/* Legal up to 32768, but we cannot ask for less: refuse what we will not hold. */
		if (dev_max > VIO_LEGACY_MAX_QUEUE_SIZE) {
			vio_logf(dev->port, VIO_LOG_ERR,
				 "%s: legacy queue %u has %u entries, above "
				 "VIO_LEGACY_MAX_QUEUE_SIZE (%u)",
				 dev_name(dev), index, dev_max, VIO_LEGACY_MAX_QUEUE_SIZE);
			return VIO_ENOTSUP;
		}
		return (int)dev_max;
	}
	/* Modern devices may offer any size up to 32768; our rings use powers of two. */
	if (dev_max > VIRTIO_QUEUE_SIZE_MAX)
		dev_max = VIRTIO_QUEUE_SIZE_MAX;
	uint32_t size = round_down_pow2(dev_max);
	if (max_size && max_size < size)
		size = round_down_pow2(max_size);
	return (int)size;
}

int vio_dev_setup_vq(struct vio_dev *dev, uint16_t index, uint16_t max_size, vio_vq_callback cb,
		     void *arg)
{
	struct vio_vq_opts opts = {.max_size = max_size};

	return vio_dev_setup_vq_opts(dev, index, &opts, cb, arg);
}

int vio_dev_setup_vq_opts(struct vio_dev *dev, uint16_t index, const struct vio_vq_opts *opts,
			  vio_vq_callback cb, void *arg)
{
	if (dev->dead)
		return VIO_EDEAD;
	if (!dev->vqs || index >= dev->nvqs)
		return VIO_EINVAL;
	struct vio_vq *vq = &dev->vqs[index];
	const char *name = dev_name(dev);
	if (vq_live(vq))
		return VIO_EINVAL;
	int size = choose_queue_size(dev, index, opts ? opts->max_size : 0);
	if (size < 0)
		return size;

	uint32_t flags = 0;
	if (vio_dev_has_feature(dev, VIRTIO_F_RING_EVENT_IDX))
		flags |= VIO_VQ_F_EVENT_IDX;
	if (vio_dev_has_feature(dev, VIRTIO_F_RING_INDIRECT_DESC) && !(opts && opts->direct_only))
		flags |= VIO_VQ_F_INDIRECT;
	/* Modern transports place each ring area on its own; legacy ones need one piece. */
	if (dev->modern)
		flags |= VIO_VQ_F_SEPARATE_AREAS;
	if (vio_dev_has_feature(dev, VIRTIO_F_RING_PACKED))
		flags |= VIO_VQ_F_PACKED;
	/* Polled: the device must not raise interrupts nobody acknowledges. */
	if (dev->irq_mode == VIO_IRQ_POLL)
		flags |= VIO_VQ_F_NO_INTERRUPTS;
	int err = vio_vq_init(vq, dev->port, index, (uint16_t)size, flags, opts, notify_trampoline,
			      dev);
	if (err)
		return err;
	vio_vq_set_callback(vq, cb, arg);
	vio_vq_set_fault_callback(vq, queue_fault, dev);
	err = dev->ops->queue_setup(dev, vq);
	if (err) {
		vio_logf(dev->port, VIO_LOG_ERR, "%s: queue %u setup failed: %s", name, index,
			 vio_strerror(err));
		vio_vq_destroy(vq);
		*vq = (struct vio_vq){0};
		return err;
	}
	return 0;
}

/* --- step 8: the device is live --------------------------------------------------------- */

void vio_dev_set_config_callback(struct vio_dev *dev, vio_config_callback cb, void *arg)
{
	dev->config_cb = cb;
	dev->config_arg = arg;
}

int vio_dev_driver_ok(struct vio_dev *dev)
{
	char line[160];

	if (dev->dead)
		return VIO_EDEAD;
	add_status(dev, VIRTIO_CONFIG_S_DRIVER_OK);
	int err = vio_dev_check(dev);
	if (err)
		return err;
	vio_dev_describe(dev, line, sizeof(line));
	vio_logf(dev->port, VIO_LOG_INFO, "%s", line);
	return 0;
}

int vio_dev_check(struct vio_dev *dev)
{
	if (dev->dead)
		return VIO_EDEAD;
	uint8_t status = dev->ops->get_status(dev);

	if (!(status & VIRTIO_CONFIG_S_NEEDS_RESET))
		return dev->needs_reset ? VIO_ENEEDRESET : 0;
	if (!dev->needs_reset) {
		dev->needs_reset = true;
		/* One line for the device, not one per queue: a device may have dozens. */
		unsigned broken = 0;
		for (uint16_t i = 0; i < dev->nvqs; i++)
			if (vq_live(&dev->vqs[i]) && !vio_vq_is_broken(&dev->vqs[i])) {
				vio_vq_break(&dev->vqs[i], NULL);
				broken++;
			}
		vio_logf(dev->port, VIO_LOG_ERR,
			 "%s: device needs reset (status 0x%02x): %u queue(s) broken", dev_name(dev),
			 status, broken);
	}
	return VIO_ENEEDRESET;
}

int vio_dev_poll(struct vio_dev *dev)
{
	const struct vio_port *port = dev->port;

	if (dev->dead)
		return VIO_EDEAD;
	if (dev->needs_reset)
		return VIO_ENEEDRESET;
	/*
	 * A polled device interrupts nobody, and a device with one MSI-X entry has no vector
	 * for configuration changes: DEVICE_NEEDS_RESET (2.1.2) would go unseen. One status
	 * read per interval is cheap, so it is done in every mode.
	 */
	uint64_t now = port->now_ns(port->ctx);
	if (now < dev->status_check_ns)
		return 0;
	dev->status_check_ns = now + VIO_POLL_STATUS_NS;
	/*
	 * A polled queue asks for no notifications, but a device may still send one (QEMU
	 * signals the first used buffer of an EVENT_IDX queue whatever used_event says), and on
	 * a wired line nobody would ever read the ISR that lowers it. Reading it here keeps the
	 * line down within an interval.
	 */
	if (dev->irq_mode == VIO_IRQ_POLL)
		vio_dev_ack_interrupt(dev);
	return vio_dev_check(dev);
}

int vio_dev_on_timeout(struct vio_dev *dev)
{
	return vio_dev_error(dev, VIO_ETIMEDOUT);
}

int vio_dev_error(struct vio_dev *dev, int err)
{
	if (err != VIO_EIO && err != VIO_ETIMEDOUT)
		return err;
	int why = vio_dev_check(dev);

	return why ? why : err;
}

/* Called by the transports' interrupt handlers (pci_irq.c, mmio.c). */
void vio_dev_interrupt(struct vio_dev *dev, uint32_t isr)
{
	/* A dead device's line is still acknowledged (by the caller), and nothing else. */
	if (dev->dead)
		return;
	if (isr & VIO_ISR_QUEUE) {
		for (uint16_t i = 0; i < dev->nvqs; i++)
			if (vq_live(&dev->vqs[i]))
				vio_vq_interrupt(&dev->vqs[i]);
	}
	/* 4.1.5.4, 4.2.3.4: a configuration change; 2.1.2: perhaps DEVICE_NEEDS_RESET. */
	if ((isr & VIO_ISR_CONFIG) && vio_dev_check(dev) == 0 && dev->config_cb)
		dev->config_cb(dev, dev->config_arg);
}

uint32_t vio_dev_ack_interrupt(struct vio_dev *dev)
{
	uint32_t isr = dev->ops->ack_interrupt(dev);

	/* Completions are the poller's; a configuration change is handled here, as in IRQs. */
	vio_dev_interrupt(dev, isr & VIO_ISR_CONFIG);
	return isr;
}

/* --- giving the device back: teardown, and the one failure path ------------------------- */

int vio_dev_abort(struct vio_dev *dev)
{
	int err = vio_dev_teardown(dev);

	vio_dev_fail(dev);
	return err;
}

int vio_dev_teardown(struct vio_dev *dev)
{
	int err = vio_dev_reset(dev);
	for (uint16_t i = 0; i < dev->nvqs; i++) {
		struct vio_vq *vq = &dev->vqs[i];
		if (!vq_live(vq))
			continue;
		if (err == VIO_EDEAD) {
			vio_vq_abandon(vq); /* rings and tables kept: the device may still write */
			continue;
		}
		vio_vq_destroy(vq);
		*vq = (struct vio_vq){0};
	}
	if (dev->ops->release_irqs)
		dev->ops->release_irqs(dev);
	return err;
}
