/*
 * A fake virtio PCI device for host tests: a transitional or modern-only function on a
 * fake_pci segment that behaves like a device, with register semantics (feature select,
 * status with reset, queue select/size/vector/enable, read-to-clear ISR, config generation).
 *
 * Its registers are reachable in ways the library supports, all with full semantics:
 *   - legacy registers in I/O BAR 0 (transitional devices);
 *   - modern registers in I/O BAR 1, or in 64-bit memory BAR 2 that map_mmio cannot map (a
 *     test makes map_mmio fail for it) so the library must use the PCI_CFG window.
 * MSI-X (when msix_entries > 0) has its table in 64-bit memory BAR 4: plain host memory.
 *
 * Modern layout inside the register BAR: common 0x00, ISR 0x40, device config 0x80,
 * notify 0x100 (queue q's doorbell at 0x100 + q * notify_mult).
 *
 * A fake virtio-mmio register block is at the end: plain memory the test pre-fills.
 */
#ifndef FAKE_VIRTIO_DEV_H
#define FAKE_VIRTIO_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_pci.h"

#define FAKE_VDEV_QUEUES 18 /* a console with 8 ports: 2 + 2 x 8 */
#define FAKE_VDEV_COMMON 0x00
#define FAKE_VDEV_ISR 0x40
#define FAKE_VDEV_DEVICE 0x80
#define FAKE_VDEV_NOTIFY 0x100
#define FAKE_VDEV_BAR_SIZE 0x200
#define FAKE_VDEV_IO_LEGACY 0xc000 /* BAR 0 */
#define FAKE_VDEV_IO_MODERN 0xd000 /* BAR 1 */
#define FAKE_VDEV_MEM_MODERN 0x8000000000ull /* BAR 2 (64-bit, above 4 GiB), never mapped */

enum fake_vdev_kind {
	FAKE_VDEV_TRANSITIONAL, /* legacy BAR 0 + modern caps (QEMU's default) */
	FAKE_VDEV_LEGACY_ONLY,	/* disable-modern=on: no virtio caps */
	FAKE_VDEV_MODERN_ONLY,	/* disable-legacy=on: id 0x1040 + n */
};

struct fake_vq {
	uint16_t max;	/* what queue_size / QueueNumMax reports; 0 = no such queue */
	uint16_t size;
	uint16_t vector;
	uint16_t enable;
	uint16_t notify_off;
	uint64_t desc, driver, device;
	uint32_t pfn; /* legacy */
	int notified;
};

struct fake_vdev {
	enum fake_vdev_kind kind;
	uint32_t device_id;
	struct fake_pci_fn *fn;
	bool modern_in_mem; /* modern registers in memory BAR 2 (reached via PCI_CFG window) */

	/* Device behaviour knobs. */
	uint64_t features;	   /* offered */
	bool refuse_features_ok;   /* clear FEATURES_OK when the driver sets it */
	uint64_t sticky_driver_features; /* bits driver_feature always reads back with */
	uint16_t msix_entries;	   /* table size; 0 = no MSI-X capability */
	bool reject_msix;	   /* every vector write reads back 0xffff */
	uint32_t notify_mult;
	int gen_bump_reads;	   /* bump config_generation on this many config reads */
	bool gen_always_bumps;
	bool reset_stuck;	   /* writing status 0 does not reset: status keeps reading back */

	/* Device state. */
	uint64_t driver_features;
	uint32_t dfsel, gfsel;
	uint8_t status;
	uint8_t isr;
	uint8_t generation;
	uint16_t config_vector;
	uint16_t num_queues;
	uint16_t queue_sel;
	struct fake_vq q[FAKE_VDEV_QUEUES];
	uint8_t config[128];
	uint32_t config_len;
	int resets;

	/* BAR 4: table, then PBA. Its address is the BAR's, whose low 4 bits are flags: it must
	 * be 16-byte aligned, wherever the struct holding it puts it. */
	_Alignas(16) uint8_t msix_mem[4096];
};

/*
 * Put a device on `pci` at bus/dev/fn. Set knobs (features, msix_entries, q[i].max, config,
 * kind, ...) in *vd BEFORE calling; defaults: 2 queues of 256, notify_mult 4.
 */
void fake_vdev_attach(struct fake_vdev *vd, struct fake_pci *pci, uint8_t bus, uint8_t dev,
		      uint8_t fn);

/* Register access as the library's port I/O or the PCI_CFG window reach it. */
uint32_t fake_vdev_modern_read(struct fake_vdev *vd, uint32_t off, int size);
void fake_vdev_modern_write(struct fake_vdev *vd, uint32_t off, int size, uint32_t val);

/* Is MSI-X enabled in the function's capability? */
bool fake_vdev_msix_enabled(const struct fake_vdev *vd);

/* A virtio-mmio register window: plain memory, pre-filled by the test. */
struct fake_mmio {
	uint32_t regs[0x200 / 4];
};
/* Fill magic, version, device id, vendor, features (both selects read `features32`) and
 * queue_num_max. */
void fake_mmio_init(struct fake_mmio *m, uint32_t version, uint32_t device_id,
		    uint32_t features32, uint32_t queue_num_max);
uint32_t fake_mmio_reg(const struct fake_mmio *m, uint32_t off);
void fake_mmio_set(struct fake_mmio *m, uint32_t off, uint32_t val);

#endif
