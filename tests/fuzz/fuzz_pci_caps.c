/*
 * libFuzzer target: a fuzzer-chosen PCI function (config space and BAR sizes) fed to
 * enumeration, BAR sizing, the capability walk, the MSI-X location checks and the modern
 * virtio capability parser and probe. Nothing may crash, hang, or touch memory outside
 * what map_mmio handed out.
 *
 * Input: byte 0 selects the access mechanism (bit 0: ECAM with a 4096-byte config space,
 * else mechanism #1 with 256 bytes) and whether to run a bus enumeration (bit 1; ECAM only:
 * its window is one bus here, while mechanism #1 scans all 256 buses, 8,192 empty slots that
 * cost 98% of an input's time and reach no code the one-bus walk does not);
 * bytes 1-6 give the BAR sizes (log2, 0 = unimplemented); the rest is config space.
 *
 * The ECAM image is all-ones (no function) except function 0 of device 0, which the input
 * fills; only that function is present, so only its 4 KiB can be written, and only those are
 * restored between inputs.
 *
 *   make build/fuzz/fuzz_pci_caps && build/fuzz/fuzz_pci_caps -max_total_time=60
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_pci.h"
#include "fake_port.h"
#include <vio/err.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>
#include <vio/transport.h>
#include <vio/virtio.h>

#define ECAM_BYTES (1u << 20) /* one bus */

static uint8_t ecam[ECAM_BYTES];
static uint8_t bar_memory[1 << 16]; /* what every successful map_mmio points at */
static size_t bar_mapped;	    /* the most of it one input mapped: all it may have written */

/* Hand out the same scratch buffer for any BAR range that fits; the ECAM image for ECAM. */
static volatile void *fuzz_map_mmio(void *ctx, uint64_t phys, size_t len)
{
	(void)ctx;
	if (phys == (uint64_t)(uintptr_t)ecam)
		return len <= ECAM_BYTES ? (volatile void *)ecam : NULL;
	if (len > sizeof(bar_memory))
		return NULL;
	if (len > bar_mapped)
		bar_mapped = len;
	return (volatile void *)bar_memory;
}

static int count_fn(struct vio_pci_dev *dev, void *arg)
{
	(void)dev;
	(*(int *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fake_port fp;
	static struct fake_pci pci;
	struct vio_pci_bus bus;
	struct vio_pci_dev dev;
	struct vio_dev vdev;

	if (size < 7)
		return 0;
	uint8_t mode = data[0];
	bool use_ecam = mode & 1;
	fake_port_init(&fp);
	fp.port.map_mmio = fuzz_map_mmio;
	fake_pci_init(&pci, &fp);
	/* Every input starts from zeroed BAR memory: clear what the last one mapped. */
	memset(bar_memory, 0, bar_mapped);
	bar_mapped = 0;

	struct fake_pci_fn *f = fake_pci_add(&pci, 0, 0, 0, 0, 0);
	size_t cfg_len = use_ecam ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
	size_t n = size - 7 < cfg_len ? size - 7 : cfg_len;
	memset(f->cfg, 0, sizeof(f->cfg));
	memcpy(f->cfg, data + 7, n);
	if (f->cfg[0] == 0xff && f->cfg[1] == 0xff)
		f->cfg[0] = 0; /* keep the function present */
	for (int i = 0; i < 6; i++) {
		uint8_t lg = data[1 + i] & 63;
		f->bar_size[i] = lg ? 1ull << (lg < 4 ? 4 : lg) : 0;
	}
	/* The slot after a 64-bit memory BAR is its upper half. */
	for (int i = 0; i < 5; i++) {
		uint32_t raw;
		memcpy(&raw, &f->cfg[0x10 + 4 * i], 4);
		if (!f->bar_upper[i] && !(raw & 1) && (raw & 6) == 4)
			f->bar_upper[i + 1] = true;
	}

	int err;
	static bool ecam_ready;
	if (!ecam_ready) {
		memset(ecam, 0xff, sizeof(ecam));
		ecam_ready = true;
	}
	if (use_ecam) {
		memcpy(ecam, f->cfg, PCI_CFG_SPACE_EXP_SIZE);
		struct vio_pci_ecam win = {.phys = (uint64_t)(uintptr_t)ecam, .bus_end = 0};
		err = vio_pci_bus_init(&bus, &fp.port, &win);
	} else {
		err = vio_pci_bus_init(&bus, &fp.port, NULL);
	}
	if (err)
		goto out;

	if ((mode & 2) && use_ecam) {
		int count = 0;
		vio_pci_enumerate(&bus, count_fn, &count);
	}
	if (vio_pci_dev_init(&dev, &bus, 0, 0, 0) < 0)
		goto out;
	struct vio_pci_capref caps[VIO_PCI_MAX_CAPS];
	vio_pci_cap_walk(&dev, caps, VIO_PCI_MAX_CAPS);
	vio_pci_find_cap(&dev, PCI_CAP_ID_MSIX);
	if (vio_pci_msix_map(&dev) == 0) {
		vio_pci_msix_set_entry(&dev, (uint16_t)(dev.msix.table_size - 1), 0xfee00000u, 1,
				       false);
		vio_pci_msix_mask_entry(&dev, dev.msix.table_size, true);
	}
	char line[160];
	vio_pci_describe(&dev, line, sizeof(line));

	struct vio_pci_modern_caps mc;
	vio_pci_modern_parse_caps(&dev, &mc);
	/* Make it a virtio device, so the probe goes all the way. */
	dev.vendor_id = 0x1af4;
	dev.device_id = 0x1040 | (dev.device_id & 0x3f);
	if (vio_pci_probe_modern(&vdev, &dev) == 0) {
		uint8_t buf[8];
		vio_dev_config_read(&vdev, 0, buf, sizeof(buf));
		if (vdev.t.pci.modern.caps.common.virt)
			vio_dev_begin(&vdev, ~0ull);
	}
out:
	memset(ecam, 0xff, PCI_CFG_SPACE_EXP_SIZE);
	return 0;
}
