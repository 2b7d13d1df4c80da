/* A fake virtio PCI device and MMIO window: see fake_virtio_dev.h. */
#include "fake_virtio_dev.h"

#include <stddef.h>
#include <string.h>
#include <vio/spec/pci.h>
#include <vio/spec/virtio_config.h>
#include <vio/spec/virtio_mmio.h>
#include <vio/spec/virtio_pci.h>

#define MSIX_CAP 0x40
#define CAP_COMMON 0x50
#define CAP_NOTIFY 0x60
#define CAP_ISR 0x78
#define CAP_DEVICE 0x88
#define CAP_PCI_CFG 0x98
#define CF(field) offsetof(struct virtio_pci_common_cfg, field)
#define LG(field) offsetof(struct virtio_pci_legacy_common, field)

bool fake_vdev_msix_enabled(const struct fake_vdev *vd)
{
	return vd->msix_entries && (fake_pci_r16(vd->fn, MSIX_CAP + 2) & PCI_MSIX_CTRL_ENABLE);
}

static void device_reset(struct fake_vdev *vd)
{
	vd->driver_features = 0;
	vd->status = 0;
	vd->isr = 0;
	vd->config_vector = VIRTIO_MSI_NO_VECTOR;
	vd->dfsel = vd->gfsel = 0;
	vd->queue_sel = 0;
	for (int i = 0; i < FAKE_VDEV_QUEUES; i++) {
		struct fake_vq *q = &vd->q[i];
		q->size = q->max;
		q->vector = VIRTIO_MSI_NO_VECTOR;
		q->enable = 0;
		q->desc = q->driver = q->device = 0;
		q->pfn = 0;
	}
	vd->resets++;
}

static void write_status(struct fake_vdev *vd, uint8_t val)
{
	if (val == 0 && vd->reset_stuck)
		return;
	if (val == 0) {
		device_reset(vd);
		return;
	}
	if (vd->refuse_features_ok)
		val &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	vd->status = val;
}

static uint16_t accept_vector(struct fake_vdev *vd, uint16_t v)
{
	if (v == VIRTIO_MSI_NO_VECTOR)
		return v;
	if (vd->reject_msix || v >= vd->msix_entries || !fake_vdev_msix_enabled(vd))
		return VIRTIO_MSI_NO_VECTOR;
	return v;
}

static struct fake_vq *sel(struct fake_vdev *vd)
{
	static struct fake_vq none;
	if (vd->queue_sel >= FAKE_VDEV_QUEUES) {
		memset(&none, 0, sizeof(none));
		return &none;
	}
	return &vd->q[vd->queue_sel];
}

static uint32_t config_read(struct fake_vdev *vd, uint32_t off, int size)
{
	uint32_t v = 0;

	if (vd->gen_always_bumps) {
		vd->generation++;
	} else if (vd->gen_bump_reads > 0) {
		vd->generation++;
		vd->gen_bump_reads--;
	}
	if (off + (uint32_t)size <= sizeof(vd->config))
		memcpy(&v, &vd->config[off], (size_t)size);
	return v;
}

static void set64(uint64_t *r, uint32_t off_in, uint32_t val)
{
	if (off_in == 0)
		*r = (*r & ~0xffffffffull) | val;
	else
		*r = (*r & 0xffffffffull) | (uint64_t)val << 32;
}

static uint32_t common_read(struct fake_vdev *vd, uint32_t off)
{
	struct fake_vq *q = sel(vd);

	switch (off) {
	case CF(device_feature_select):
		return vd->dfsel;
	case CF(device_feature):
		return vd->dfsel < 2 ? (uint32_t)(vd->features >> (32 * vd->dfsel)) : 0;
	case CF(driver_feature_select):
		return vd->gfsel;
	case CF(driver_feature): {
		uint64_t f = vd->driver_features | vd->sticky_driver_features;
		return vd->gfsel < 2 ? (uint32_t)(f >> (32 * vd->gfsel)) : 0;
	}
	case CF(config_msix_vector):
		return vd->config_vector;
	case CF(num_queues):
		return vd->num_queues;
	case CF(device_status):
		return vd->status;
	case CF(config_generation):
		return vd->generation;
	case CF(queue_select):
		return vd->queue_sel;
	case CF(queue_size):
		return q->max ? q->size : 0;
	case CF(queue_msix_vector):
		return q->vector;
	case CF(queue_enable):
		return q->enable;
	case CF(queue_notify_off):
		return q->notify_off;
	case CF(queue_desc_lo):
		return (uint32_t)q->desc;
	case CF(queue_desc_hi):
		return (uint32_t)(q->desc >> 32);
	case CF(queue_driver_lo):
		return (uint32_t)q->driver;
	case CF(queue_driver_hi):
		return (uint32_t)(q->driver >> 32);
	case CF(queue_device_lo):
		return (uint32_t)q->device;
	case CF(queue_device_hi):
		return (uint32_t)(q->device >> 32);
	default:
		return 0;
	}
}

static void common_write(struct fake_vdev *vd, uint32_t off, uint32_t val)
{
	struct fake_vq *q = sel(vd);

	switch (off) {
	case CF(device_feature_select):
		vd->dfsel = val;
		break;
	case CF(driver_feature_select):
		vd->gfsel = val;
		break;
	case CF(driver_feature):
		if (vd->gfsel < 2)
			set64(&vd->driver_features, vd->gfsel, val);
		break;
	case CF(config_msix_vector):
		vd->config_vector = accept_vector(vd, (uint16_t)val);
		break;
	case CF(device_status):
		write_status(vd, (uint8_t)val);
		break;
	case CF(queue_select):
		vd->queue_sel = (uint16_t)val;
		break;
	case CF(queue_size):
		q->size = (uint16_t)val;
		break;
	case CF(queue_msix_vector):
		q->vector = accept_vector(vd, (uint16_t)val);
		break;
	case CF(queue_enable):
		q->enable = (uint16_t)val;
		break;
	case CF(queue_desc_lo):
	case CF(queue_desc_hi):
		set64(&q->desc, off - CF(queue_desc_lo), val);
		break;
	case CF(queue_driver_lo):
	case CF(queue_driver_hi):
		set64(&q->driver, off - CF(queue_driver_lo), val);
		break;
	case CF(queue_device_lo):
	case CF(queue_device_hi):
		set64(&q->device, off - CF(queue_device_lo), val);
		break;
	default:
		break;
	}
}

uint32_t fake_vdev_modern_read(struct fake_vdev *vd, uint32_t off, int size)
{
	if (off < FAKE_VDEV_ISR)
		return common_read(vd, off - FAKE_VDEV_COMMON) & (size == 1   ? 0xffu
								: size == 2 ? 0xffffu
									    : 0xffffffffu);
	if (off < FAKE_VDEV_DEVICE) {
		uint8_t isr = vd->isr;
		vd->isr = 0; /* read to clear */
		return isr;
	}
	if (off < FAKE_VDEV_NOTIFY)
		return config_read(vd, off - FAKE_VDEV_DEVICE, size);
	return 0;
}

void fake_vdev_modern_write(struct fake_vdev *vd, uint32_t off, int size, uint32_t val)
{
	if (off < FAKE_VDEV_ISR) {
		common_write(vd, off - FAKE_VDEV_COMMON, val);
	} else if (off >= FAKE_VDEV_DEVICE && off < FAKE_VDEV_NOTIFY) {
		uint32_t c = off - FAKE_VDEV_DEVICE;
		if (c + (uint32_t)size <= sizeof(vd->config))
			memcpy(&vd->config[c], &val, (size_t)size);
		if (vd->on_config_write)
			vd->on_config_write(vd, c, size, vd->on_config_write_arg);
	} else if (off >= FAKE_VDEV_NOTIFY) {
		if (val < FAKE_VDEV_QUEUES)
			vd->q[val].notified++;
	}
}

/* Legacy registers in I/O BAR 0 (4.1.4.10). */
static uint32_t legacy_read(struct fake_vdev *vd, uint32_t off, int size)
{
	struct fake_vq *q = sel(vd);
	bool msix = fake_vdev_msix_enabled(vd);
	uint32_t cfg = msix ? VIRTIO_PCI_LEGACY_CONFIG_OFF_MSIX : VIRTIO_PCI_LEGACY_CONFIG_OFF;

	if (off >= cfg)
		return config_read(vd, off - cfg, size);
	switch (off) {
	case LG(host_features):
		return (uint32_t)vd->features;
	case LG(guest_features):
		return (uint32_t)vd->driver_features;
	case LG(queue_address):
		return q->pfn;
	case LG(queue_size):
		return q->max;
	case LG(queue_select):
		return vd->queue_sel;
	case LG(device_status):
		return vd->status;
	case LG(isr_status): {
		uint8_t isr = vd->isr;
		vd->isr = 0;
		return isr;
	}
	case 20:
		return vd->config_vector;
	case 22:
		return q->vector;
	default:
		return 0;
	}
}

static void legacy_write(struct fake_vdev *vd, uint32_t off, int size, uint32_t val)
{
	struct fake_vq *q = sel(vd);
	bool msix = fake_vdev_msix_enabled(vd);
	uint32_t cfg = msix ? VIRTIO_PCI_LEGACY_CONFIG_OFF_MSIX : VIRTIO_PCI_LEGACY_CONFIG_OFF;

	if (off >= cfg) {
		uint32_t c = off - cfg;
		if (c + (uint32_t)size <= sizeof(vd->config))
			memcpy(&vd->config[c], &val, (size_t)size);
		if (vd->on_config_write)
			vd->on_config_write(vd, c, size, vd->on_config_write_arg);
		return;
	}
	switch (off) {
	case LG(guest_features):
		vd->driver_features = val;
		break;
	case LG(queue_address):
		q->pfn = val;
		break;
	case LG(queue_select):
		vd->queue_sel = (uint16_t)val;
		break;
	case LG(queue_notify):
		if (val < FAKE_VDEV_QUEUES)
			vd->q[val].notified++;
		break;
	case LG(device_status):
		write_status(vd, (uint8_t)val);
		break;
	case 20:
		vd->config_vector = accept_vector(vd, (uint16_t)val);
		break;
	case 22:
		q->vector = accept_vector(vd, (uint16_t)val);
		break;
	default:
		break;
	}
}

static uint32_t io_read(void *ctx, int bar, uint32_t off, int size)
{
	struct fake_vdev *vd = ctx;
	return bar == 0 ? legacy_read(vd, off, size) : fake_vdev_modern_read(vd, off, size);
}

static void io_write(void *ctx, int bar, uint32_t off, int size, uint32_t val)
{
	struct fake_vdev *vd = ctx;
	if (bar == 0)
		legacy_write(vd, off, size, val);
	else
		fake_vdev_modern_write(vd, off, size, val);
}

/* The PCI_CFG window (4.1.4.9): reads and writes of pci_cfg_data reach the named BAR. */
static bool window_target(struct fake_vdev *vd, struct fake_pci_fn *fn, uint16_t off,
			  uint32_t *reg, int *len)
{
	uint16_t data = CAP_PCI_CFG + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint32_t bar_off, length;

	if (vd->kind == FAKE_VDEV_LEGACY_ONLY || off < data || off >= data + 4)
		return false;
	memcpy(&bar_off, &fn->cfg[CAP_PCI_CFG + offsetof(struct virtio_pci_cap, offset)], 4);
	memcpy(&length, &fn->cfg[CAP_PCI_CFG + offsetof(struct virtio_pci_cap, length)], 4);
	uint8_t bar = fn->cfg[CAP_PCI_CFG + offsetof(struct virtio_pci_cap, bar)];
	if (bar != (vd->modern_in_mem ? 2 : 1) || (length != 1 && length != 2 && length != 4))
		return false;
	*reg = bar_off;
	*len = (int)length;
	return true;
}

static void cfg_before_read(void *ctx, struct fake_pci_fn *fn, uint16_t off, int size)
{
	struct fake_vdev *vd = ctx;
	uint32_t reg;
	int len;

	(void)size;
	if (!window_target(vd, fn, off, &reg, &len))
		return;
	uint32_t v = fake_vdev_modern_read(vd, reg, len);
	memcpy(&fn->cfg[CAP_PCI_CFG + 16], &v, 4);
}

static void cfg_after_write(void *ctx, struct fake_pci_fn *fn, uint16_t off, int size)
{
	struct fake_vdev *vd = ctx;
	uint32_t reg, v = 0;
	int len;

	(void)size;
	if (!window_target(vd, fn, off, &reg, &len))
		return;
	memcpy(&v, &fn->cfg[CAP_PCI_CFG + 16], (size_t)len);
	fake_vdev_modern_write(vd, reg, len, v);
}

static void add_virtio_cap(struct fake_pci_fn *f, uint8_t at, uint8_t type, uint8_t len,
			   uint8_t bar, uint32_t offset, uint32_t length)
{
	fake_pci_add_cap(f, at, PCI_CAP_ID_VNDR, len);
	f->cfg[at + offsetof(struct virtio_pci_cap, cap_len)] = len;
	f->cfg[at + offsetof(struct virtio_pci_cap, cfg_type)] = type;
	f->cfg[at + offsetof(struct virtio_pci_cap, bar)] = bar;
	fake_pci_w32(f, at + offsetof(struct virtio_pci_cap, offset), offset);
	fake_pci_w32(f, at + offsetof(struct virtio_pci_cap, length), length);
}

void fake_vdev_attach(struct fake_vdev *vd, struct fake_pci *pci, uint8_t bus, uint8_t dev,
		      uint8_t fn)
{
	uint16_t devid = vd->kind == FAKE_VDEV_MODERN_ONLY
				 ? (uint16_t)(VIRTIO_PCI_DEVICE_ID_MODERN_BASE + vd->device_id)
				 : (uint16_t)(VIRTIO_PCI_DEVICE_ID_TRANS_MIN + vd->device_id);
	struct fake_pci_fn *f = fake_pci_add(pci, bus, dev, fn, VIRTIO_PCI_VENDOR_ID, devid);

	vd->fn = f;
	if (!vd->notify_mult)
		vd->notify_mult = 4;
	bool any_queue = false;
	for (int i = 0; i < FAKE_VDEV_QUEUES; i++)
		any_queue |= vd->q[i].max != 0;
	if (!any_queue) {
		vd->q[0].max = vd->q[1].max = 256;
		vd->num_queues = 2;
	}
	if (!vd->num_queues)
		for (int i = 0; i < FAKE_VDEV_QUEUES; i++)
			if (vd->q[i].max)
				vd->num_queues = (uint16_t)(i + 1);
	for (int i = 0; i < FAKE_VDEV_QUEUES; i++)
		vd->q[i].notify_off = (uint16_t)i;
	if (!vd->config_len)
		vd->config_len = 64;
	device_reset(vd);
	vd->resets = 0;

	fake_pci_w16(f, 0x2c, VIRTIO_PCI_VENDOR_ID);
	fake_pci_w16(f, 0x2e, (uint16_t)vd->device_id);
	f->cfg[0x08] = vd->kind == FAKE_VDEV_MODERN_ONLY ? 1 : 0;
	f->cfg[0x3c] = 11;
	f->cfg[0x3d] = 1;
	f->hooks = (struct fake_pci_hooks){.ctx = vd,
					   .cfg_before_read = cfg_before_read,
					   .cfg_after_write = cfg_after_write,
					   .io_read = io_read,
					   .io_write = io_write};

	if (vd->kind != FAKE_VDEV_MODERN_ONLY)
		fake_pci_set_bar(f, 0, FAKE_VDEV_IO_LEGACY, 0x80, FAKE_BAR_IO);
	if (vd->msix_entries) {
		fake_pci_set_bar(f, 4, (uint64_t)(uintptr_t)vd->msix_mem, sizeof(vd->msix_mem),
				 FAKE_BAR_MEM64);
		fake_pci_add_cap(f, MSIX_CAP, PCI_CAP_ID_MSIX, sizeof(struct pci_msix_cap));
		fake_pci_w16(f, MSIX_CAP + 2, (uint16_t)(vd->msix_entries - 1));
		fake_pci_w32(f, MSIX_CAP + 4, 4 | 0);
		fake_pci_w32(f, MSIX_CAP + 8, 4 | 2048);
	}
	if (vd->kind == FAKE_VDEV_LEGACY_ONLY)
		return;
	uint8_t bar = vd->modern_in_mem ? 2 : 1;
	if (vd->modern_in_mem)
		fake_pci_set_bar(f, 2, FAKE_VDEV_MEM_MODERN, FAKE_VDEV_BAR_SIZE, FAKE_BAR_MEM64);
	else
		fake_pci_set_bar(f, 1, FAKE_VDEV_IO_MODERN, FAKE_VDEV_BAR_SIZE, FAKE_BAR_IO);
	add_virtio_cap(f, CAP_COMMON, VIRTIO_PCI_CAP_COMMON_CFG, 16, bar, FAKE_VDEV_COMMON, 0x40);
	add_virtio_cap(f, CAP_NOTIFY, VIRTIO_PCI_CAP_NOTIFY_CFG, 20, bar, FAKE_VDEV_NOTIFY, 0x100);
	fake_pci_w32(f, CAP_NOTIFY + 16, vd->notify_mult);
	add_virtio_cap(f, CAP_ISR, VIRTIO_PCI_CAP_ISR_CFG, 16, bar, FAKE_VDEV_ISR, 4);
	add_virtio_cap(f, CAP_DEVICE, VIRTIO_PCI_CAP_DEVICE_CFG, 16, bar, FAKE_VDEV_DEVICE,
		       vd->config_len);
	add_virtio_cap(f, CAP_PCI_CFG, VIRTIO_PCI_CAP_PCI_CFG, 20, 0, 0, 0);
}

void fake_mmio_init(struct fake_mmio *m, uint32_t version, uint32_t device_id,
		    uint32_t features32, uint32_t queue_num_max)
{
	memset(m, 0, sizeof(*m));
	fake_mmio_set(m, offsetof(struct virtio_mmio_regs, magic_value), VIRTIO_MMIO_MAGIC);
	fake_mmio_set(m, offsetof(struct virtio_mmio_regs, version), version);
	fake_mmio_set(m, offsetof(struct virtio_mmio_regs, device_id), device_id);
	fake_mmio_set(m, offsetof(struct virtio_mmio_regs, vendor_id), 0x554d4551);
	fake_mmio_set(m, offsetof(struct virtio_mmio_regs, device_features), features32);
	fake_mmio_set(m, offsetof(struct virtio_mmio_regs, queue_num_max), queue_num_max);
}

uint32_t fake_mmio_reg(const struct fake_mmio *m, uint32_t off)
{
	return m->regs[off / 4];
}

void fake_mmio_set(struct fake_mmio *m, uint32_t off, uint32_t val)
{
	m->regs[off / 4] = val;
}
