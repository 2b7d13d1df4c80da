/*
 * Unit tests for the virtio core (src/virtio/virtio.c) and its transports (pci_modern.c,
 * pci_legacy.c, mmio.c): probing, capability validation, the init sequence and feature
 * negotiation, config generation, queue setup, interrupt mode choice and DEVICE_NEEDS_RESET,
 * against the fake device in fake_virtio_dev.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fake_pci.h"
#include "fake_port.h"
#include "fake_virtio_dev.h"
#include "fake_vring.h"
#include <vio/err.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>
#include <vio/spec/virtio_config.h>
#include <vio/spec/virtio_mmio.h>
#include <vio/spec/virtio_pci.h>
#include <vio/transport.h>
#include <vio/virtio.h>

#define BIT(n) VIRTIO_BIT(n)
#define MMIO(field) offsetof(struct virtio_mmio_regs, field)

struct env {
	struct fake_port fp;
	struct fake_pci pci;
	struct fake_vdev vd;
	struct vio_pci_bus bus;
	struct vio_pci_dev pdev;
	struct vio_dev dev;
	struct vio_vq vqs[4];
	struct fake_mmio mmio;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	fake_port_init(&e->fp);
	fake_pci_init(&e->pci, &e->fp);
	e->vd.kind = FAKE_VDEV_TRANSITIONAL;
	e->vd.device_id = VIRTIO_ID_RNG;
	e->vd.features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_EVENT_IDX) | 0x1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (e->dev.ops)
		vio_dev_teardown(&e->dev);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	fake_pci_free(&e->pci);
	free(e);
	return 0;
}

static void use_low_dma(struct env *e)
{
	fake_port_low_dma(&e->fp);
}

/* Attach the fake device at 00:04.0 and read it like enumeration would. */
static void attach(struct env *e)
{
	fake_vdev_attach(&e->vd, &e->pci, 0, 4, 0);
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, NULL), 0);
	assert_int_equal(vio_pci_dev_init(&e->pdev, &e->bus, 0, 4, 0), 0);
}

static void probe(struct env *e)
{
	attach(e);
	assert_int_equal(vio_pci_probe(&e->dev, &e->pdev), 0);
}

/* --- probing ---------------------------------------------------------------------------- */

static void test_transitional_device_is_driven_through_modern_interface(void **state)
{
	struct env *e = *state;
	probe(e);
	assert_string_equal(vio_dev_transport_name(&e->dev), "pci-modern");
	assert_true(e->dev.modern);
	assert_int_equal(e->dev.device_id, VIRTIO_ID_RNG);
	assert_int_equal(e->dev.config_len, 64);
	assert_int_equal(e->dev.t.pci.modern.num_queues, 2);
}

static void test_device_without_virtio_caps_falls_back_to_legacy(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	probe(e);
	assert_string_equal(vio_dev_transport_name(&e->dev), "pci-legacy");
	assert_false(e->dev.modern);
	assert_int_equal(e->dev.device_id, VIRTIO_ID_RNG);
}

static void test_modern_only_id_maps_to_virtio_id_and_has_no_legacy(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_MODERN_ONLY;
	e->vd.device_id = VIRTIO_ID_BLOCK;
	attach(e);
	assert_int_equal(e->pdev.device_id, 0x1042);
	assert_int_equal(vio_pci_virtio_id(&e->pdev), VIRTIO_ID_BLOCK);
	assert_int_equal(vio_pci_probe_legacy(&e->dev, &e->pdev), VIO_ENODEV);
	assert_int_equal(vio_pci_probe(&e->dev, &e->pdev), 0);
	assert_int_equal(e->dev.device_id, VIRTIO_ID_BLOCK);
}

static void test_non_virtio_function_is_enodev(void **state)
{
	struct env *e = *state;
	fake_pci_add(&e->pci, 0, 4, 0, 0x8086, 0x100e);
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, NULL), 0);
	assert_int_equal(vio_pci_dev_init(&e->pdev, &e->bus, 0, 4, 0), 0);
	assert_int_equal(vio_pci_probe(&e->dev, &e->pdev), VIO_ENODEV);
}

#define CAP_COMMON 0x50
#define CAP_NOTIFY 0x60
#define CAP_DEVICE 0x88

static void test_cap_whose_region_overflows_its_bar_is_refused(void **state)
{
	struct env *e = *state;
	attach(e);
	struct vio_pci_modern_caps caps;
	/* length past the end of the 0x200-byte BAR */
	fake_pci_w32(e->vd.fn, CAP_DEVICE + 12, 0x1000);
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), VIO_EPROTO);
	/* offset + length wrapping around 32 bits */
	fake_pci_w32(e->vd.fn, CAP_DEVICE + 8, 0xfffffff0u);
	fake_pci_w32(e->vd.fn, CAP_DEVICE + 12, 0x20);
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), VIO_EPROTO);
	assert_int_equal(vio_pci_probe(&e->dev, &e->pdev), VIO_EPROTO);
}

static void test_bad_notify_off_multiplier_is_refused(void **state)
{
	struct env *e = *state;
	e->vd.notify_mult = 3;
	attach(e);
	struct vio_pci_modern_caps caps;
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), VIO_EPROTO);
}

static void test_notify_region_at_an_odd_offset_refuses_every_queue(void **state)
{
	struct env *e = *state;
	attach(e);
	/* The notify capability starts one byte into its place: every doorbell is odd. */
	fake_pci_w32(e->vd.fn, CAP_NOTIFY + 8, FAKE_VDEV_NOTIFY + 1);
	fake_pci_w32(e->vd.fn, CAP_NOTIFY + 12, 0xfe);
	assert_int_equal(vio_pci_probe(&e->dev, &e->pdev), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), VIO_EPROTO);
	assert_int_equal(e->fp.dma_live_allocs, 0);
}

/* Config space as ECAM: plain memory, so the BARs are set as enumeration would find them. */
static void attach_ecam(struct env *e)
{
	fake_vdev_attach(&e->vd, &e->pci, 0, 4, 0);
	fake_pci_build_ecam(&e->pci, 0);
	struct vio_pci_ecam ecam = {.phys = (uint64_t)(uintptr_t)e->pci.ecam};
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, &ecam), 0);
	assert_int_equal(vio_pci_dev_init(&e->pdev, &e->bus, 0, 4, 0), 0);
	e->pdev.bars[0] = (struct vio_pci_bar){.phys = FAKE_VDEV_IO_LEGACY, .size = 0x80,
					       .is_io = true};
	e->pdev.bars[1] = (struct vio_pci_bar){.phys = FAKE_VDEV_IO_MODERN,
					       .size = FAKE_VDEV_BAR_SIZE, .is_io = true};
}

static void test_io_bar_is_not_used_without_16_and_32_bit_port_io(void **state)
{
	struct env *e = *state;
	/* A port with byte port I/O only: the registers' 16- and 32-bit fields are out. */
	e->fp.port.inw = NULL;
	e->fp.port.inl = NULL;
	e->fp.port.outw = NULL;
	e->fp.port.outl = NULL;
	attach_ecam(e);
	assert_int_equal(vio_pci_probe_modern(&e->dev, &e->pdev), 0);
	/* The PCI_CFG window reaches the I/O BAR instead (4.1.4.9). */
	assert_false(e->dev.t.pci.modern.caps.common.is_io);
	assert_false(e->dev.t.pci.modern.caps.notify.is_io);
	assert_int_equal(vio_pci_probe_legacy(&e->dev, &e->pdev), VIO_ENOTSUP);
	e->dev = (struct vio_dev){0};

	/* Without the window, the device cannot be reached here: refused, not a NULL call. */
	e->pci.ecam[(4u << 15) + 0x98 + 3] = 0x7f; /* the PCI_CFG cap becomes an unknown type */
	assert_int_equal(vio_pci_probe_modern(&e->dev, &e->pdev), VIO_ENOTSUP);
	e->dev = (struct vio_dev){0};
}

static void test_common_cfg_too_short_is_refused(void **state)
{
	struct env *e = *state;
	attach(e);
	fake_pci_w32(e->vd.fn, CAP_COMMON + 12, 0x20);
	struct vio_pci_modern_caps caps;
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), VIO_EPROTO);
}

static void test_cap_naming_a_reserved_bar_is_ignored(void **state)
{
	struct env *e = *state;
	attach(e);
	e->vd.fn->cfg[CAP_DEVICE + 4] = 7;
	struct vio_pci_modern_caps caps;
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), 0);
	assert_false(caps.device.present);
	e->vd.fn->cfg[CAP_COMMON + 4] = 6;
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), VIO_ENODEV);
}

static void test_virtio_cap_running_past_config_space_is_refused(void **state)
{
	struct env *e = *state;
	attach(e);
	/* Move the notify cap to 0xf8: its 20 bytes would end past 256. */
	struct fake_pci_fn *f = e->vd.fn;
	memcpy(&f->cfg[0xf8], &f->cfg[CAP_NOTIFY], 8);
	f->cfg[0xf9] = 0;
	f->cfg[0x51] = 0xf8; /* common -> (notify at 0xf8) */
	struct vio_pci_modern_caps caps;
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), VIO_EPROTO);
}

static void test_first_cap_of_each_type_wins(void **state)
{
	struct env *e = *state;
	attach(e);
	struct fake_pci_fn *f = e->vd.fn;
	/* A second device-config cap after the first one, pointing elsewhere. */
	fake_pci_add_cap(f, 0xb0, 0x09, 16);
	f->cfg[0xb2] = 16;
	f->cfg[0xb3] = VIRTIO_PCI_CAP_DEVICE_CFG;
	f->cfg[0xb4] = 1;
	fake_pci_w32(f, 0xb8, 0x180);
	fake_pci_w32(f, 0xbc, 0x10);
	struct vio_pci_modern_caps caps;
	assert_int_equal(vio_pci_modern_parse_caps(&e->pdev, &caps), 0);
	assert_int_equal(caps.device.offset, FAKE_VDEV_DEVICE);
	assert_int_equal(caps.notify_off_multiplier, 4);
	assert_int_equal(caps.pci_cfg_cap, 0x98);
}

/* --- negotiation ------------------------------------------------------------------------ */

static void test_negotiation_accepts_only_offered_and_wanted_bits(void **state)
{
	struct env *e = *state;
	e->vd.features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_PACKED) |
			 BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(0) | BIT(5) | BIT(50);
	probe(e);
	e->dev.split_only = true; /* the packed ring is the core's choice: see the next tests */
	uint64_t wanted = BIT(0) | BIT(1) | BIT(50) | BIT(VIRTIO_F_RING_PACKED) |
			  BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(VIRTIO_F_RING_INDIRECT_DESC);
	assert_int_equal(vio_dev_begin(&e->dev, wanted), 0);
	uint64_t want = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(0) | BIT(50);
	assert_int_equal(e->dev.features, want);
	assert_int_equal(e->vd.driver_features, want);
	assert_int_equal(e->dev.device_features, e->vd.features);
	assert_true(vio_dev_has_feature(&e->dev, VIRTIO_F_RING_EVENT_IDX));
	assert_false(vio_dev_has_feature(&e->dev, VIRTIO_F_RING_PACKED));
	assert_false(vio_dev_has_feature(&e->dev, 99));
	assert_int_equal(e->vd.status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
					       VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(e->vd.resets, 1);
}

static void test_reset_that_never_completes_times_out(void **state)
{
	struct env *e = *state;
	probe(e);
	e->vd.status = VIRTIO_CONFIG_S_DRIVER_OK;
	e->vd.reset_stuck = true;
	/* Not VIO_ETIMEDOUT any more: a device that did not reset is dead (VIO_EDEAD). */
	assert_int_equal(vio_dev_begin(&e->dev, 0), VIO_EDEAD);
	assert_true(vio_dev_is_dead(&e->dev));
	assert_true(e->fp.now >= VIO_RESET_TIMEOUT_NS);
	assert_true(fake_port_logged(&e->fp, "reset did not complete"));
	e->vd.reset_stuck = false;
}

static void test_device_refusing_features_ok_fails_with_efeatures(void **state)
{
	struct env *e = *state;
	e->vd.refuse_features_ok = true;
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(0)), VIO_EFEATURES);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_true(fake_port_logged(&e->fp, "refused features"));
}

static void test_device_reporting_unwritten_driver_features_is_refused(void **state)
{
	struct env *e = *state;
	e->vd.sticky_driver_features = BIT(3);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(0)), VIO_EFEATURES);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
}

static void test_modern_device_without_version_1_is_refused(void **state)
{
	struct env *e = *state;
	e->vd.features = BIT(0);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(0)), VIO_ENOTSUP);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
}

static void test_legacy_negotiation_is_32_bit_without_features_ok(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	e->vd.features = BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(0) | BIT(2);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(0) | BIT(VIRTIO_F_RING_EVENT_IDX)), 0);
	assert_int_equal(e->dev.features, BIT(0) | BIT(VIRTIO_F_RING_EVENT_IDX));
	assert_int_equal(e->vd.driver_features, e->dev.features);
	assert_int_equal(e->vd.status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
}

/* --- config space ----------------------------------------------------------------------- */

static void test_config_read_uses_field_widths(void **state)
{
	struct env *e = *state;
	for (int i = 0; i < 64; i++)
		e->vd.config[i] = (uint8_t)i;
	probe(e);
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;
	uint8_t bytes[3];
	assert_int_equal(vio_dev_config_read(&e->dev, 8, &v64, 8), 0);
	assert_int_equal(v64, 0x0f0e0d0c0b0a0908ull);
	assert_int_equal(vio_dev_config_read(&e->dev, 4, &v32, 4), 0);
	assert_int_equal(v32, 0x07060504);
	assert_int_equal(vio_dev_config_read(&e->dev, 2, &v16, 2), 0);
	assert_int_equal(v16, 0x0302);
	assert_int_equal(vio_dev_config_read(&e->dev, 61, bytes, 3), 0);
	assert_int_equal(bytes[2], 63);
	v16 = 0xbeef;
	assert_int_equal(vio_dev_config_write(&e->dev, 20, &v16, 2), 0);
	assert_int_equal(e->vd.config[20], 0xef);
	assert_int_equal(e->vd.config[21], 0xbe);
}

static void test_config_access_outside_device_config_is_einval(void **state)
{
	struct env *e = *state;
	probe(e);
	uint32_t v;
	assert_int_equal(vio_dev_config_read(&e->dev, 62, &v, 4), VIO_EINVAL);
	assert_int_equal(vio_dev_config_read(&e->dev, 0xfffffffe, &v, 4), VIO_EINVAL);
	assert_int_equal(vio_dev_config_write(&e->dev, 64, &v, 1), VIO_EINVAL);
}

static void test_config_read_retries_until_generation_is_stable(void **state)
{
	struct env *e = *state;
	e->vd.config[0] = 0x42;
	e->vd.gen_bump_reads = 3;
	probe(e);
	uint8_t v = 0;
	assert_int_equal(vio_dev_config_read(&e->dev, 0, &v, 1), 0);
	assert_int_equal(v, 0x42);
	assert_int_equal(e->vd.gen_bump_reads, 0);
}

static void test_config_generation_that_never_settles_is_eio(void **state)
{
	struct env *e = *state;
	e->vd.gen_always_bumps = true;
	probe(e);
	uint32_t v;
	assert_int_equal(vio_dev_config_read(&e->dev, 0, &v, 4), VIO_EIO);
}

static void test_legacy_config_moves_from_20_to_24_with_msix(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	e->vd.msix_entries = 4;
	e->vd.config[0] = 0x5a;
	use_low_dma(e);
	probe(e);
	uint8_t v = 0;
	/* MSI-X off: config at BAR0 + 20. */
	assert_int_equal(vio_dev_config_read(&e->dev, 0, &v, 1), 0);
	assert_int_equal(v, 0x5a);
	assert_int_equal(e->fp.port.inb(e->fp.port.ctx, FAKE_VDEV_IO_LEGACY + 20), 0x5a);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_MSIX);
	assert_true(fake_vdev_msix_enabled(&e->vd));
	/* MSI-X on: the vectors sit at 20/22 and config moved to 24. */
	assert_int_equal(e->vd.config_vector, 0);
	assert_int_equal(e->vd.q[0].vector, 1);
	assert_int_equal(e->fp.port.inb(e->fp.port.ctx, FAKE_VDEV_IO_LEGACY + 24), 0x5a);
	v = 0;
	assert_int_equal(vio_dev_config_read(&e->dev, 0, &v, 1), 0);
	assert_int_equal(v, 0x5a);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(e->vd.q[0].vector, 1);
}

/* --- queues ----------------------------------------------------------------------------- */

static void bring_up(struct env *e, uint16_t nvqs)
{
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(VIRTIO_F_RING_EVENT_IDX)), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, nvqs), 0);
}

static void test_packed_ring_is_taken_when_offered_without_drivers_asking(void **state)
{
	struct env *e = *state;
	e->vd.features |= BIT(VIRTIO_F_RING_PACKED) | BIT(VIRTIO_F_RING_INDIRECT_DESC);
	bring_up(e, 2);
	assert_true(vio_dev_has_feature(&e->dev, VIRTIO_F_RING_PACKED));
	assert_true(e->vd.driver_features & BIT(VIRTIO_F_RING_PACKED));
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_true(vio_vq_is_packed(&e->vqs[0]));
	/* 2.8: the three addresses are the descriptor ring and the two event structures. */
	assert_int_equal(e->vd.q[0].desc, e->vqs[0].desc_phys);
	assert_int_equal(e->vd.q[0].driver, e->vqs[0].avail_phys);
	assert_int_equal(e->vd.q[0].device, e->vqs[0].used_phys);
	assert_int_equal(e->vqs[0].desc_phys % VRING_PACKED_DESC_ALIGN, 0);
	assert_int_equal(e->vqs[0].avail_phys % VRING_PACKED_EVENT_ALIGN, 0);
	assert_int_equal(e->vqs[0].used_phys % VRING_PACKED_EVENT_ALIGN, 0);
	assert_int_equal(e->vd.q[0].enable, 1);
}

static void test_split_only_device_keeps_the_split_ring(void **state)
{
	struct env *e = *state;
	e->vd.features |= BIT(VIRTIO_F_RING_PACKED);
	probe(e);
	e->dev.split_only = true;
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_false(vio_dev_has_feature(&e->dev, VIRTIO_F_RING_PACKED));
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_false(vio_vq_is_packed(&e->vqs[0]));
}

static void test_legacy_interface_never_negotiates_the_packed_ring(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	e->vd.features |= BIT(VIRTIO_F_RING_PACKED);
	use_low_dma(e);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_false(vio_dev_has_feature(&e->dev, VIRTIO_F_RING_PACKED));
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_false(vio_vq_is_packed(&e->vqs[0]));
}

static void test_doorbell_at_an_odd_address_refuses_the_queue(void **state)
{
	struct env *e = *state;
	/* 4.1.4.4: a multiplier of 1 puts queue 1's 16-bit doorbell at an odd offset. */
	e->vd.notify_mult = 1;
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), VIO_EPROTO);
	assert_true(fake_port_logged(&e->fp, "queue 1 doorbell at odd offset"));
	assert_int_equal(e->vd.q[1].enable, 0);
	vio_vq_notify(&e->vqs[0]);
	assert_int_equal(e->vd.q[0].notified, 1);
}

static void test_modern_queue_setup_programs_ring_addresses_and_enables(void **state)
{
	struct env *e = *state;
	e->vd.q[0].max = 128;
	e->vd.q[1].max = 64;
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 16, NULL, NULL), 0);
	struct fake_vq *q = &e->vd.q[0];
	assert_int_equal(q->size, 128);
	assert_int_equal(q->enable, 1);
	assert_int_equal(q->desc, e->vqs[0].desc_phys);
	assert_int_equal(q->driver, e->vqs[0].avail_phys);
	assert_int_equal(q->device, e->vqs[0].used_phys);
	assert_int_equal(e->vd.q[1].size, 16);
	assert_int_equal(e->vqs[1].size, 16);
	vio_vq_notify(&e->vqs[1]);
	assert_int_equal(e->vd.q[1].notified, 1);
	assert_int_equal(e->vd.q[0].notified, 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_DRIVER_OK);
	/* Setting a queue up twice is refused. */
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), VIO_EINVAL);
}

/* The largest DMA allocation live now, in bytes. */
static size_t largest_dma(const struct env *e)
{
	size_t most = 0;
	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++)
		if (e->fp.dma[i].p && e->fp.dma[i].bytes > most)
			most = e->fp.dma[i].bytes;
	return most;
}

static void test_modern_queue_of_256_needs_no_dma_allocation_above_a_page(void **state)
{
	struct env *e = *state;
	e->vd.features |= BIT(VIRTIO_F_RING_INDIRECT_DESC);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(VIRTIO_F_RING_INDIRECT_DESC)), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	const struct vio_vq_opts opts = {.indirect_tables = 256};
	assert_int_equal(vio_dev_setup_vq_opts(&e->dev, 0, &opts, NULL, NULL), 0);
	assert_int_equal(e->vqs[0].size, 256);
	/* Ring areas apart (2.7), a table per entry page by page: nothing above 4 KiB. */
	assert_int_equal(largest_dma(e), 4096);
	assert_int_equal(e->fp.dma_live_bytes, 2 * 4096 + 256 * 1024);
	assert_int_equal(e->vqs[0].vq_ntables, 256);
	struct fake_vq *q = &e->vd.q[0];
	assert_int_equal(q->desc, e->vqs[0].desc_phys);
	assert_int_equal(q->driver, e->vqs[0].avail_phys);
	assert_int_equal(q->device, e->vqs[0].used_phys);
	assert_int_equal(q->desc % 16, 0);
	assert_int_equal(q->device % 4, 0);
}

static void test_driver_sets_the_indirect_pool_size_per_queue(void **state)
{
	struct env *e = *state;
	e->vd.features |= BIT(VIRTIO_F_RING_INDIRECT_DESC);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(VIRTIO_F_RING_INDIRECT_DESC)), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), 0);
	struct vio_vq_opts opts = {.max_size = 64};
	assert_int_equal(vio_dev_setup_vq_opts(&e->dev, 0, &opts, NULL, NULL), 0);
	assert_int_equal(e->vqs[0].size, 64);
	assert_int_equal(e->vqs[0].vq_ntables, VIO_VQ_INDIRECT_TABLES); /* the small default */
	vio_vq_destroy(&e->vqs[0]);
	e->vqs[0] = (struct vio_vq){0};
	e->vd.q[0].enable = 0;
	opts.indirect_tables = 6;
	assert_int_equal(vio_dev_setup_vq_opts(&e->dev, 0, &opts, NULL, NULL), 0);
	assert_int_equal(e->vqs[0].vq_ntables, 6);
	size_t before = e->fp.dma_live_bytes;
	opts = (struct vio_vq_opts){.indirect_tables = 1000}; /* at most the queue's size */
	assert_int_equal(vio_dev_setup_vq_opts(&e->dev, 1, &opts, NULL, NULL), 0);
	assert_int_equal(e->vqs[1].vq_ntables, 256);
	assert_int_equal(e->fp.dma_live_bytes - before, 2 * 4096 + 256 * 1024);
	assert_int_equal(largest_dma(e), 4096);
}

static void test_setup_vq_takes_the_small_pool_and_direct_only_takes_none(void **state)
{
	struct env *e = *state;
	e->vd.features |= BIT(VIRTIO_F_RING_INDIRECT_DESC);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(VIRTIO_F_RING_INDIRECT_DESC)), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(e->vqs[0].size, 256);
	assert_int_equal(e->vqs[0].vq_ntables, VIO_VQ_INDIRECT_TABLES);
	/* Two ring pages, and 16 one-KiB tables in four pages. */
	assert_int_equal(e->fp.dma_live_bytes, 2 * 4096 + 4 * 4096);
	size_t before = e->fp.dma_live_bytes;
	const struct vio_vq_opts direct = {.direct_only = true};
	assert_int_equal(vio_dev_setup_vq_opts(&e->dev, 1, &direct, NULL, NULL), 0);
	assert_int_equal(e->vqs[1].vq_ntables, 0);
	assert_false(e->vqs[1].vq_flags & VIO_VQ_F_INDIRECT);
	assert_int_equal(e->fp.dma_live_bytes - before, 2 * 4096);
	assert_int_equal(largest_dma(e), 4096);
}

static void test_legacy_queue_is_one_contiguous_ring(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	e->vd.q[0].max = 256;
	use_low_dma(e);
	bring_up(e, 1);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	/* 4.1.4.10: the device knows one page frame; the used ring on the next 4 KiB. */
	struct vio_vq *vq = &e->vqs[0];
	assert_int_equal(vq->desc_phys, vq->ring_phys);
	assert_int_equal(vq->avail_phys, vq->ring_phys + 4096);
	assert_int_equal(vq->used_phys, vq->ring_phys + 8192);
	assert_int_equal(largest_dma(e), 12288);
}

static void test_queue_with_max_size_zero_is_absent(void **state)
{
	struct env *e = *state;
	e->vd.q[0].max = 64;
	e->vd.q[1].max = 0;
	e->vd.num_queues = 2;
	bring_up(e, 3);
	assert_int_equal(vio_dev_queue_max_size(&e->dev, 0), 64);
	assert_int_equal(vio_dev_queue_max_size(&e->dev, 1), 0);
	assert_int_equal(vio_dev_queue_max_size(&e->dev, 2), 0); /* past num_queues */
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), VIO_ENODEV);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 2, 0, NULL, NULL), VIO_ENODEV);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 3, 0, NULL, NULL), VIO_EINVAL);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
}

static void test_queue_size_is_rounded_down_to_a_power_of_two_and_clamped(void **state)
{
	struct env *e = *state;
	e->vd.q[0].max = 300;
	e->vd.q[1].max = 40000;
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(e->vqs[0].size, 256);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 1000, NULL, NULL), 0);
	assert_int_equal(e->vqs[1].size, 512);
}

static void test_legacy_queue_size_must_be_a_power_of_two(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	e->vd.q[0].max = 100;
	e->vd.q[1].max = 64;
	use_low_dma(e);
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), VIO_EPROTO);
	/* Legacy sizes are the device's: max_size cannot lower them. */
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 16, NULL, NULL), 0);
	assert_int_equal(e->vqs[1].size, 64);
	assert_int_equal(e->vd.q[1].pfn, e->vqs[1].ring_phys >> 12);
	vio_vq_notify(&e->vqs[1]);
	assert_int_equal(e->vd.q[1].notified, 1);
}

static void test_legacy_queue_above_the_cap_is_refused(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	e->vd.q[0].max = 32768; /* the legacy device fixes the size: the driver cannot lower it */
	e->vd.q[1].max = VIO_LEGACY_MAX_QUEUE_SIZE;
	use_low_dma(e);
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 256, NULL, NULL), VIO_ENOTSUP);
	assert_true(fake_port_logged(&e->fp, "legacy queue 0 has 32768 entries, above "
					     "VIO_LEGACY_MAX_QUEUE_SIZE"));
	assert_int_equal(e->fp.dma_live_allocs, 0);
	assert_int_equal(e->vd.q[0].pfn, 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), 0);
	assert_int_equal(e->vqs[1].size, VIO_LEGACY_MAX_QUEUE_SIZE);
}

static void test_legacy_ring_above_16_tib_is_erange(void **state)
{
	struct env *e = *state;
	e->vd.kind = FAKE_VDEV_LEGACY_ONLY;
	bring_up(e, 1);
	/* Host heap memory is the "physical" memory here, and it lies above 2^44. */
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), VIO_ERANGE);
	assert_int_equal(e->vd.q[0].pfn, 0);
	assert_int_equal(e->fp.dma_live_allocs, 0);
}

static void test_notify_location_outside_notify_region_fails_queue_setup(void **state)
{
	struct env *e = *state;
	probe(e);
	e->vd.q[1].notify_off = 0x4000; /* * 4 is far past the 0x100-byte region */
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), VIO_EPROTO);
	assert_int_equal(e->vd.q[1].enable, 0);
}

static volatile void *no_map_above_4g(void *ctx, uint64_t phys, size_t len)
{
	(void)ctx;
	(void)len;
	if (phys >= FAKE_VDEV_MEM_MODERN && phys < FAKE_VDEV_MEM_MODERN + FAKE_VDEV_BAR_SIZE)
		return NULL;
	return (volatile void *)(uintptr_t)phys;
}

static void test_unmappable_bar_is_reached_through_pci_cfg_window(void **state)
{
	struct env *e = *state;
	e->vd.modern_in_mem = true;
	e->vd.config[4] = 0x99;
	e->fp.port.map_mmio = no_map_above_4g;
	probe(e);
	assert_null(e->dev.t.pci.modern.caps.common.virt);
	assert_true(fake_port_logged(&e->fp, "PCI config window"));
	assert_int_equal(vio_dev_begin(&e->dev, BIT(0)), 0);
	assert_int_equal(e->vd.driver_features, BIT(0) | BIT(VIRTIO_F_VERSION_1));
	uint8_t v;
	assert_int_equal(vio_dev_config_read(&e->dev, 4, &v, 1), 0);
	assert_int_equal(v, 0x99);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(e->vd.q[0].desc, e->vqs[0].desc_phys);
	vio_vq_notify(&e->vqs[0]);
	assert_int_equal(e->vd.q[0].notified, 1);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
}

/* --- interrupts ------------------------------------------------------------------------- */

static void test_msix_gives_one_vector_per_queue_plus_config(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 8;
	bring_up(e, 2);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_MSIX);
	assert_int_equal(e->dev.t.pci.nvectors, 3);
	assert_int_equal(e->vd.config_vector, 0);
	assert_int_equal(e->vd.q[0].vector, 1);
	assert_int_equal(e->vd.q[1].vector, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), 0);
	assert_int_equal(e->vqs[1].msix_vector, 2);
	/* Table entry 2 carries the message the port gave for queue 1's handler. */
	struct pci_msix_entry ent;
	memcpy(&ent, e->vd.msix_mem + 2 * 16, sizeof(ent));
	assert_int_equal(ent.msg_addr_lo, 0xfee00000u);
	assert_int_equal(ent.vector_control & 1, 0);
	uint64_t before = e->vqs[1].stats.interrupts;
	fake_port_fire_msix(&e->fp, ent.msg_data);
	assert_int_equal(e->vqs[1].stats.interrupts, before + 1);
	assert_int_equal(e->vqs[0].stats.interrupts, 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	assert_true(fake_port_logged(&e->fp, "virtio-rng 0000:00:04.0 pci-modern "
					     "features=0x120000000 queues=2 irq=msix"));
}

/* The port's answer to msix_may_unmask: it holds message data 1 masked (a storm). */
static bool port_holds_message_1(void *ctx, uint64_t addr, uint32_t data)
{
	(void)ctx, (void)addr;
	return data != 1;
}

static uint32_t msix_vector_control(const struct env *e, unsigned entry)
{
	struct pci_msix_entry ent;
	memcpy(&ent, e->vd.msix_mem + entry * 16, sizeof(ent));
	return ent.vector_control;
}

/* A re-setup must not undo a mask the port applied for an interrupt storm: it asks first. */
static void test_msix_entry_the_port_holds_stays_masked_across_a_re_setup(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 8;
	e->fp.port.msix_may_unmask = port_holds_message_1;
	bring_up(e, 2);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_MSIX);
	assert_int_equal(msix_vector_control(e, 0) & 1, 0);
	assert_int_equal(msix_vector_control(e, 1) & 1, 1); /* queue 0's: held */
	assert_int_equal(msix_vector_control(e, 2) & 1, 0);
	assert_true(fake_port_logged(&e->fp, "MSI-X entry 1 left masked"));
	/* Set up again (as after a reset): the port is asked again, and still says no. */
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), 0);
	assert_int_equal(msix_vector_control(e, 1) & 1, 1);
	/* Once the port lets the vector fire, the next setup unmasks it. */
	e->fp.port.msix_may_unmask = NULL;
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), 0);
	assert_int_equal(msix_vector_control(e, 1) & 1, 0);
}

static void test_small_msix_table_shares_one_vector(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 2;
	e->vd.q[0].max = e->vd.q[1].max = e->vd.q[2].max = 64;
	bring_up(e, 3);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_MSIX_SHARED);
	assert_int_equal(e->vd.config_vector, 0);
	assert_int_equal(e->vd.q[0].vector, 1);
	assert_int_equal(e->vd.q[2].vector, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vio_dev_setup_vq(&e->dev, (uint16_t)i, 0, NULL, NULL), 0);
	struct pci_msix_entry ent;
	memcpy(&ent, e->vd.msix_mem + 16, sizeof(ent));
	fake_port_fire_msix(&e->fp, ent.msg_data);
	for (int i = 0; i < 3; i++)
		assert_int_equal(e->vqs[i].stats.interrupts, 1);
}

static void test_device_rejecting_msix_vectors_falls_back_to_intx(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 8;
	e->vd.reject_msix = true;
	bring_up(e, 2);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_INTX);
	assert_int_equal(e->fp.intx_count, 1);
	assert_false(fake_vdev_msix_enabled(&e->vd));
	assert_int_equal(e->dev.t.pci.nvectors, 0);
	for (int i = 0; i < FAKE_PORT_MSIX_MAX; i++)
		assert_false(e->fp.msix[i].live);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(e->vd.q[0].vector, VIRTIO_MSI_NO_VECTOR);
}

static int config_changes;
static void on_config(struct vio_dev *dev, void *arg)
{
	(void)dev;
	(void)arg;
	config_changes++;
}

static void test_intx_handler_reads_isr_to_ack_and_ignores_other_devices(void **state)
{
	struct env *e = *state;
	bring_up(e, 2);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_INTX);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), 0);
	config_changes = 0;
	vio_dev_set_config_callback(&e->dev, on_config, NULL);

	fake_port_fire_intx(&e->fp); /* ISR 0: someone else's interrupt */
	assert_int_equal(e->vqs[0].stats.interrupts, 0);
	e->vd.isr = VIRTIO_PCI_ISR_QUEUE;
	fake_port_fire_intx(&e->fp);
	assert_int_equal(e->vd.isr, 0); /* the read acknowledged it */
	assert_int_equal(e->vqs[0].stats.interrupts, 1);
	assert_int_equal(e->vqs[1].stats.interrupts, 1);
	assert_int_equal(config_changes, 0);
	e->vd.isr = VIRTIO_PCI_ISR_CONFIG;
	fake_port_fire_intx(&e->fp);
	assert_int_equal(config_changes, 1);
	assert_int_equal(e->vqs[0].stats.interrupts, 1);
}

static void test_port_without_interrupt_hooks_polls(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 8;
	fake_port_no_irqs(&e->fp);
	bring_up(e, 1);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(e->vqs[0].msix_vector, VIO_VQ_NO_VECTOR);
	char line[160];
	vio_dev_describe(&e->dev, line, sizeof(line));
	assert_string_equal(line, "virtio-rng 0000:00:04.0 pci-modern features=0x120000000 "
				  "queues=1 irq=poll");
}

static void test_needs_reset_breaks_queues_and_is_reported(void **state)
{
	struct env *e = *state;
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	assert_int_equal(vio_dev_check(&e->dev), 0);

	e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_dev_check(&e->dev), VIO_ENEEDRESET);
	assert_true(vio_vq_is_broken(&e->vqs[0]));
	assert_true(vio_vq_is_broken(&e->vqs[1]));
	assert_true(fake_port_logged(&e->fp, "needs reset"));
	int lines = e->fp.log_count;
	assert_int_equal(vio_dev_check(&e->dev), VIO_ENEEDRESET);
	assert_int_equal(e->fp.log_count, lines); /* logged once */
}

static void test_polled_device_needing_reset_is_noticed_by_the_next_poll(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_dev_poll(&e->dev), 0);

	/* No interrupt will say so: the poll reads the status, at most every interval. */
	e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_dev_poll(&e->dev), 0);
	assert_false(vio_vq_is_broken(&e->vqs[0]));
	e->fp.now += VIO_POLL_STATUS_NS;
	assert_int_equal(vio_dev_poll(&e->dev), VIO_ENEEDRESET);
	assert_true(vio_vq_is_broken(&e->vqs[0]));
	assert_true(vio_vq_is_broken(&e->vqs[1]));
	assert_true(fake_port_logged(&e->fp, "needs reset"));
	int lines = e->fp.log_count;
	assert_int_equal(vio_dev_poll(&e->dev), VIO_ENEEDRESET);
	assert_int_equal(e->fp.log_count, lines);
}

static void test_queue_the_device_breaks_makes_the_core_read_the_status(void **state)
{
	struct env *e = *state;
	static uint8_t buf[16];
	struct fake_vring fv;
	struct fake_req req;
	struct vio_vq_used u;
	/* One MSI-X entry: the queues share it and config changes have no vector. */
	e->vd.msix_entries = 1;
	bring_up(e, 2);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_MSIX_SHARED);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);

	/* The device sets NEEDS_RESET, and then writes nonsense into queue 0's used ring. */
	e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	fake_vring_attach(&fv, &e->vqs[0], true);
	struct vio_sg sg = {buf, sizeof(buf)};
	assert_int_equal(vio_vq_add(&e->vqs[0], &sg, 0, 1, buf), 0);
	vio_vq_kick(&e->vqs[0]);
	assert_true(fake_vring_pop(&fv, &req));
	fake_vring_complete(&fv, 999, 1);
	assert_int_equal(vio_vq_get_used(&e->vqs[0], &u), VIO_EIO);
	/* The break made the core look: the device as a whole needs a reset. */
	assert_true(e->dev.needs_reset);
	assert_true(vio_vq_is_broken(&e->vqs[1]));
	assert_true(fake_port_logged(&e->fp, "needs reset"));
	assert_int_equal(vio_dev_check(&e->dev), VIO_ENEEDRESET);
}

static void test_driver_timeout_reads_the_status(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 1;
	bring_up(e, 1);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	assert_int_equal(vio_dev_on_timeout(&e->dev), VIO_ETIMEDOUT);
	assert_false(vio_vq_is_broken(&e->vqs[0]));
	e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	assert_int_equal(vio_dev_on_timeout(&e->dev), VIO_ENEEDRESET);
	assert_true(vio_vq_is_broken(&e->vqs[0]));
}

static void test_needs_reset_is_noticed_on_a_config_interrupt(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 4;
	bring_up(e, 1);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	config_changes = 0;
	vio_dev_set_config_callback(&e->dev, on_config, NULL);
	struct pci_msix_entry ent;
	memcpy(&ent, e->vd.msix_mem, sizeof(ent)); /* entry 0: config */
	fake_port_fire_msix(&e->fp, ent.msg_data);
	assert_int_equal(config_changes, 1);
	e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	fake_port_fire_msix(&e->fp, ent.msg_data);
	assert_int_equal(config_changes, 1);
	assert_true(vio_vq_is_broken(&e->vqs[0]));
	assert_true(e->dev.needs_reset);
}

/* --- a polled device (issue 11) ---------------------------------------------------------- */

/* Run n one-segment requests through queue vq as the device; returns its interrupts. */
static unsigned run_requests(struct vio_vq *vq, bool event_idx, unsigned n)
{
	static uint8_t buf[64];
	struct fake_vring fv;
	struct fake_req req;
	struct vio_vq_used u;

	fake_vring_attach(&fv, vq, event_idx);
	for (unsigned i = 0; i < n; i++) {
		struct vio_sg sg = {buf, sizeof(buf)};
		assert_int_equal(vio_vq_add(vq, &sg, 0, 1, buf), 0);
		vio_vq_kick(vq);
		assert_true(fake_vring_pop(&fv, &req));
		fake_vring_complete(&fv, req.head, 1);
		assert_int_equal(vio_vq_get_used(vq, &u), 0);
		if (i % 3 == 0) /* the usual re-arm dance does not arm a polled queue */
			assert_true(vio_vq_enable_cb(vq));
	}
	assert_int_equal(fv.chain_errors, 0);
	return fv.interrupts;
}

static void test_polled_queues_ask_the_device_not_to_interrupt(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0); /* no EVENT_IDX */
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	/* 2.7.7: NO_INTERRUPT from the start, before the device sees the ring. */
	const struct vring_avail *avail = (const void *)(uintptr_t)e->vqs[0].avail_phys;
	assert_int_equal(avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(run_requests(&e->vqs[0], false, 300), 0);
	assert_int_equal(avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
}

static void test_polled_queues_keep_used_event_out_of_reach(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	e->vd.q[0].max = 8;
	bring_up(e, 1); /* EVENT_IDX */
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	/* 2.7.10: flags stay 0; used_event one behind the next entry, past the 16-bit wrap. */
	const struct vring_avail *avail = (const void *)(uintptr_t)e->vqs[0].avail_phys;
	assert_int_equal(avail->flags, 0);
	assert_int_equal(avail->ring[8], 0xffff);
	assert_int_equal(run_requests(&e->vqs[0], true, 70000), 0);
	assert_int_equal(avail->ring[8], (uint16_t)(70000 - 1));
}

static void test_port_acks_a_polled_devices_wired_line(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	bring_up(e, 1);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	config_changes = 0;
	vio_dev_set_config_callback(&e->dev, on_config, NULL);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);

	assert_int_equal(vio_dev_ack_interrupt(&e->dev), 0); /* not this device */
	e->vd.isr = VIRTIO_PCI_ISR_QUEUE | VIRTIO_PCI_ISR_CONFIG;
	assert_int_equal(vio_dev_ack_interrupt(&e->dev), VIO_ISR_QUEUE | VIO_ISR_CONFIG);
	assert_int_equal(e->vd.isr, 0); /* the read deasserted INTx (4.1.4.5) */
	assert_int_equal(config_changes, 1);
	assert_int_equal(e->vqs[0].stats.interrupts, 0); /* completions are the poller's */

	e->vd.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	e->vd.isr = VIRTIO_PCI_ISR_CONFIG;
	assert_int_equal(vio_dev_ack_interrupt(&e->dev), VIO_ISR_CONFIG);
	assert_true(vio_vq_is_broken(&e->vqs[0]));
	assert_int_equal(config_changes, 1);
}

static void test_polling_lowers_a_line_the_device_raised_anyway(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	bring_up(e, 1); /* EVENT_IDX: QEMU signals a polled queue's first used buffer anyway */
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	e->vd.isr = VIRTIO_PCI_ISR_QUEUE; /* the line is up */
	e->fp.now += VIO_POLL_STATUS_NS;
	assert_int_equal(vio_dev_poll(&e->dev), 0);
	assert_int_equal(e->vd.isr, 0); /* read, so deasserted (4.1.4.5) */
	assert_int_equal(e->vqs[0].stats.interrupts, 0); /* completions are still the poller's */
}

static void test_setup_irqs_with_queues_set_up_is_refused(void **state)
{
	struct env *e = *state;
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	uint64_t ring = e->vqs[0].desc_phys;
	/* The queue's rings are the device's: forgetting them would leak them, or worse. */
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), VIO_EINVAL);
	assert_int_equal(e->vqs[0].desc_phys, ring);
	assert_int_equal(vio_dev_teardown(&e->dev), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), 0);
}

static void test_teardown_resets_and_releases_everything(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 4;
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 1, 0, NULL, NULL), 0);
	vio_dev_teardown(&e->dev);
	assert_int_equal(e->vd.status, 0);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	assert_false(fake_vdev_msix_enabled(&e->vd));
	for (int i = 0; i < FAKE_PORT_MSIX_MAX; i++)
		assert_false(e->fp.msix[i].live);
	/* and it can come up again */
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 2), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_MSIX);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
}

static void test_abort_leaves_failed_after_the_reset(void **state)
{
	struct env *e = *state;
	e->vd.msix_entries = 4;
	bring_up(e, 2);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	int resets = e->vd.resets;
	assert_int_equal(vio_dev_abort(&e->dev), 0);
	assert_int_equal(e->vd.resets, resets + 1);
	/* 3.1.1: FAILED is set after the reset, so the reset does not erase it. */
	assert_int_equal(e->vd.status, VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(e->fp.dma_live_allocs, 0);
	assert_false(fake_vdev_msix_enabled(&e->vd));
	for (int i = 0; i < FAKE_PORT_MSIX_MAX; i++)
		assert_false(e->fp.msix[i].live);
}

/* Give back every DMA allocation still live: what the library kept for a dead device. */
static void free_all_dma(struct env *e)
{
	for (int i = 0; i < FAKE_PORT_DMA_REGIONS; i++)
		if (e->fp.dma[i].p)
			e->fp.port.dma_free(e->fp.port.ctx, e->fp.dma[i].p, e->fp.dma[i].bytes);
}

static int dead_callbacks;
static void count_dead_callback(struct vio_vq *vq, void *arg)
{
	(void)vq;
	(void)arg;
	dead_callbacks++;
}

static void test_unconfirmed_reset_keeps_the_rings_and_the_device_is_dead(void **state)
{
	struct env *e = *state;
	e->vd.features |= BIT(VIRTIO_F_RING_INDIRECT_DESC);
	probe(e);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(VIRTIO_F_RING_INDIRECT_DESC)), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_INTX);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, count_dead_callback, NULL), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	assert_false(vio_dev_is_dead(&e->dev));
	int rings = e->fp.dma_live_allocs;
	assert_true(rings > 0);

	/* The device ignores the reset: it may still write the rings and the tables. */
	e->vd.reset_stuck = true;
	assert_int_equal(vio_dev_teardown(&e->dev), VIO_EDEAD);
	assert_int_equal(e->fp.dma_live_allocs, rings); /* kept, on purpose */
	assert_int_equal(e->fp.priv_live_allocs, 0);    /* the device never saw that */
	assert_true(vio_dev_is_dead(&e->dev));
	assert_true(vio_vq_is_broken(&e->vqs[0]));
	assert_true(fake_port_logged(&e->fp, "reset did not complete"));
	assert_string_equal(vio_strerror(VIO_EDEAD), "VIO_EDEAD");
	int lines = e->fp.log_count;

	/* Every later call says so, and touches nothing; the log line was the only one. */
	uint8_t b;
	assert_int_equal(vio_dev_abort(&e->dev), VIO_EDEAD);
	assert_true(e->vd.status & VIRTIO_CONFIG_S_FAILED);
	assert_int_equal(vio_dev_reset(&e->dev), VIO_EDEAD);
	assert_int_equal(vio_dev_teardown(&e->dev), VIO_EDEAD);
	e->vd.reset_stuck = false; /* even if it came to its senses: the memory stays kept */
	assert_int_equal(vio_dev_begin(&e->dev, 0), VIO_EDEAD);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), VIO_EDEAD);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), VIO_EDEAD);
	assert_int_equal(vio_dev_driver_ok(&e->dev), VIO_EDEAD);
	assert_int_equal(vio_dev_check(&e->dev), VIO_EDEAD);
	assert_int_equal(vio_dev_config_read(&e->dev, 0, &b, 1), VIO_EDEAD);
	assert_int_equal(vio_dev_config_write(&e->dev, 0, &b, 1), VIO_EDEAD);
	assert_int_equal(vio_dev_queue_max_size(&e->dev, 0), 0);
	assert_int_equal(e->fp.dma_live_allocs, rings);
	assert_int_equal(e->fp.log_count, lines);

	/* Its INTx line is still acknowledged, and nothing runs. */
	e->vd.isr = VIRTIO_PCI_ISR_QUEUE | VIRTIO_PCI_ISR_CONFIG;
	fake_port_fire_intx(&e->fp);
	assert_int_equal(e->vd.isr, 0);
	assert_int_equal(dead_callbacks, 0);

	/* The test gives back what the library kept, so that the fixture's books balance. */
	vio_vq_destroy(&e->vqs[0]);
	assert_int_equal(e->fp.dma_live_allocs, rings); /* an abandoned queue frees nothing */
	free_all_dma(e);
}

/* --- virtio-mmio ------------------------------------------------------------------------ */

static uint64_t mmio_phys(struct env *e)
{
	return (uint64_t)(uintptr_t)&e->mmio;
}

static void test_mmio_v2_probe_negotiate_and_queue_setup(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	/* Plain memory: both feature selects read the same word, so bit 32 comes with bit 0. */
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 1024);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ), 0);
	assert_string_equal(vio_dev_transport_name(&e->dev), "mmio");
	assert_int_equal(e->dev.config_len, 0x100);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(0)), 0);
	assert_int_equal(e->dev.features, BIT(0) | BIT(VIRTIO_F_VERSION_1));
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(status)),
			 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				 VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 256, NULL, NULL), 0);
	struct vio_vq *vq = &e->vqs[0];
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_num)), 256);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_desc_low)), (uint32_t)vq->desc_phys);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_desc_high)),
			 (uint32_t)(vq->desc_phys >> 32));
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_driver_low)),
			 (uint32_t)vq->avail_phys);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_device_low)), (uint32_t)vq->used_phys);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_ready)), 1);
	fake_mmio_set(&e->mmio, MMIO(queue_notify), 0xff);
	vio_vq_notify(vq);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_notify)), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	char where[32];
	vio_dev_location(&e->dev, where, sizeof(where));
	assert_true(strncmp(where, "mmio@0x", 7) == 0);
}

static void test_mmio_v1_uses_page_frame_and_alignment(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	use_low_dma(e);
	fake_mmio_init(&e->mmio, 1, VIRTIO_ID_CONSOLE, 0x3, 128);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ), 0);
	assert_string_equal(vio_dev_transport_name(&e->dev), "mmio-legacy");
	assert_false(e->dev.modern);
	assert_int_equal(vio_dev_begin(&e->dev, BIT(0) | BIT(VIRTIO_F_VERSION_1)), 0);
	assert_int_equal(e->dev.features, BIT(0));
	/* Legacy: no FEATURES_OK. */
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(status)),
			 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(guest_page_size)), 4096);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_align)), 4096);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_num)), 128);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(queue_pfn)), e->vqs[0].ring_phys >> 12);
}

static void test_port_acks_a_polled_mmio_devices_line(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ),
			 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_ack_interrupt(&e->dev), 0);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(interrupt_ack)), 0);
	fake_mmio_set(&e->mmio, MMIO(interrupt_status), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(vio_dev_ack_interrupt(&e->dev), VIO_ISR_QUEUE);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(interrupt_ack)), VIRTIO_MMIO_INT_VRING);
}

static void test_mmio_queue_size_above_32768_is_bounded(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	/* QueueNumMax is a 32-bit register: a device may claim anything. */
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 0x10000000);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ),
			 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_queue_max_size(&e->dev, 0), 32768);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 64, NULL, NULL), 0);
	assert_int_equal(e->vqs[0].size, 64);
}

static void test_mmio_irq_line_is_attached_and_acked(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, 5), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_LINE);
	assert_int_equal(e->fp.line_count, 1);
	assert_int_equal(e->fp.intx_count, 0); /* a platform line, not a PCI pin */
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	fake_mmio_set(&e->mmio, MMIO(interrupt_status), VIRTIO_MMIO_INT_VRING);
	fake_port_fire_line(&e->fp, 5);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(interrupt_ack)), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(e->vqs[0].stats.interrupts, 1);
}

static void test_mmio_line_number_wider_than_8_bits_reaches_port_and_device_line(void **state)
{
	struct env *e = *state;
	const uint32_t gic_spi = 0x1234; /* PLIC and GIC numbers exceed 255 */
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, gic_spi), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->fp.line_count, 1);
	assert_int_equal(e->fp.lines[0].irq, gic_spi);
	assert_int_equal(e->dev.irq_line, gic_spi);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	assert_int_equal(vio_dev_driver_ok(&e->dev), 0);
	char want[96];
	snprintf(want, sizeof(want), "virtio-rng mmio@0x%llx mmio features=0x100000000 queues=1 "
		 "irq=line:4660", (unsigned long long)mmio_phys(e));
	assert_true(fake_port_logged(&e->fp, want));
}

static void test_mmio_line_handler_ignores_other_devices_and_handles_config(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, 7), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), 0);
	config_changes = 0;
	vio_dev_set_config_callback(&e->dev, on_config, NULL);

	fake_mmio_set(&e->mmio, MMIO(interrupt_ack), 0);
	fake_port_fire_line(&e->fp, 7); /* InterruptStatus 0: another device on the line */
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(interrupt_ack)), 0);
	assert_int_equal(e->vqs[0].stats.interrupts, 0);
	assert_int_equal(config_changes, 0);
	fake_mmio_set(&e->mmio, MMIO(interrupt_status), VIRTIO_MMIO_INT_CONFIG);
	fake_port_fire_line(&e->fp, 7);
	assert_int_equal(fake_mmio_reg(&e->mmio, MMIO(interrupt_ack)), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(config_changes, 1);
	assert_int_equal(e->vqs[0].stats.interrupts, 0);
	/* A config interrupt with DEVICE_NEEDS_RESET breaks the queues instead. */
	fake_mmio_set(&e->mmio, MMIO(status),
		      fake_mmio_reg(&e->mmio, MMIO(status)) | VIRTIO_CONFIG_S_NEEDS_RESET);
	fake_port_fire_line(&e->fp, 7);
	assert_int_equal(config_changes, 1);
	assert_true(vio_vq_is_broken(&e->vqs[0]));
}

static void test_mmio_line_stays_attached_across_teardown(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, 9), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_teardown(&e->dev), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_LINE); /* the handler is still there */
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_LINE);
	assert_int_equal(e->fp.line_count, 1); /* attached once, not twice */
}

static void test_mmio_line_the_port_refuses_polls_and_says_so(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, 5), 0);
	e->fp.line_count = 8; /* the fake port's table is full: it answers VIO_ENOSPC */
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_true(fake_port_logged(&e->fp, "the port refused interrupt line 5 (VIO_ENOSPC), "
					     "polling"));
}

static void test_mmio_without_a_line_or_port_hook_polls(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ),
			 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	assert_int_equal(e->fp.line_count, 0);

	e->fp.port.platform_irq_attach = NULL;
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, 5), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(e->dev.irq_mode, VIO_IRQ_POLL);
	char line[160];
	vio_dev_describe(&e->dev, line, sizeof(line));
	assert_non_null(strstr(line, " irq=poll"));
}

static void test_mmio_bad_magic_is_enodev(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0, 64);
	fake_mmio_set(&e->mmio, MMIO(magic_value), 0x12345678);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ),
			 VIO_ENODEV);
	e->dev.ops = NULL;
}

static void test_mmio_placeholder_device_id_zero_is_enodev(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 2, 0, 0, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ),
			 VIO_ENODEV);
	e->dev.ops = NULL;
}

static void test_mmio_unknown_version_is_enotsup(void **state)
{
	struct env *e = *state;
	fake_mmio_init(&e->mmio, 3, VIRTIO_ID_RNG, 0, 64);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ),
			 VIO_ENOTSUP);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x80, VIO_NO_IRQ),
			 VIO_EINVAL);
	e->dev.ops = NULL;
}

static void test_mmio_queue_with_max_zero_is_absent(void **state)
{
	struct env *e = *state;
	fake_port_no_irqs(&e->fp);
	fake_mmio_init(&e->mmio, 2, VIRTIO_ID_RNG, 0x1, 0);
	assert_int_equal(vio_mmio_probe(&e->dev, &e->fp.port, mmio_phys(e), 0x200, VIO_NO_IRQ), 0);
	assert_int_equal(vio_dev_begin(&e->dev, 0), 0);
	assert_int_equal(vio_dev_setup_irqs(&e->dev, e->vqs, 1), 0);
	assert_int_equal(vio_dev_setup_vq(&e->dev, 0, 0, NULL, NULL), VIO_ENODEV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_transitional_device_is_driven_through_modern_interface),
		T(test_device_without_virtio_caps_falls_back_to_legacy),
		T(test_modern_only_id_maps_to_virtio_id_and_has_no_legacy),
		T(test_non_virtio_function_is_enodev),
		T(test_cap_whose_region_overflows_its_bar_is_refused),
		T(test_bad_notify_off_multiplier_is_refused),
		T(test_doorbell_at_an_odd_address_refuses_the_queue),
		T(test_notify_region_at_an_odd_offset_refuses_every_queue),
		T(test_io_bar_is_not_used_without_16_and_32_bit_port_io),
		T(test_common_cfg_too_short_is_refused),
		T(test_cap_naming_a_reserved_bar_is_ignored),
		T(test_virtio_cap_running_past_config_space_is_refused),
		T(test_first_cap_of_each_type_wins),
		T(test_negotiation_accepts_only_offered_and_wanted_bits),
		T(test_packed_ring_is_taken_when_offered_without_drivers_asking),
		T(test_split_only_device_keeps_the_split_ring),
		T(test_legacy_interface_never_negotiates_the_packed_ring),
		T(test_reset_that_never_completes_times_out),
		T(test_device_refusing_features_ok_fails_with_efeatures),
		T(test_device_reporting_unwritten_driver_features_is_refused),
		T(test_modern_device_without_version_1_is_refused),
		T(test_legacy_negotiation_is_32_bit_without_features_ok),
		T(test_config_read_uses_field_widths),
		T(test_config_access_outside_device_config_is_einval),
		T(test_config_read_retries_until_generation_is_stable),
		T(test_config_generation_that_never_settles_is_eio),
		T(test_legacy_config_moves_from_20_to_24_with_msix),
		T(test_modern_queue_setup_programs_ring_addresses_and_enables),
		T(test_modern_queue_of_256_needs_no_dma_allocation_above_a_page),
		T(test_driver_sets_the_indirect_pool_size_per_queue),
		T(test_setup_vq_takes_the_small_pool_and_direct_only_takes_none),
		T(test_legacy_queue_is_one_contiguous_ring),
		T(test_queue_with_max_size_zero_is_absent),
		T(test_queue_size_is_rounded_down_to_a_power_of_two_and_clamped),
		T(test_legacy_queue_size_must_be_a_power_of_two),
		T(test_legacy_queue_above_the_cap_is_refused),
		T(test_legacy_ring_above_16_tib_is_erange),
		T(test_notify_location_outside_notify_region_fails_queue_setup),
		T(test_unmappable_bar_is_reached_through_pci_cfg_window),
		T(test_msix_gives_one_vector_per_queue_plus_config),
		T(test_msix_entry_the_port_holds_stays_masked_across_a_re_setup),
		T(test_small_msix_table_shares_one_vector),
		T(test_device_rejecting_msix_vectors_falls_back_to_intx),
		T(test_intx_handler_reads_isr_to_ack_and_ignores_other_devices),
		T(test_port_without_interrupt_hooks_polls),
		T(test_needs_reset_breaks_queues_and_is_reported),
		T(test_needs_reset_is_noticed_on_a_config_interrupt),
		T(test_polled_device_needing_reset_is_noticed_by_the_next_poll),
		T(test_queue_the_device_breaks_makes_the_core_read_the_status),
		T(test_driver_timeout_reads_the_status),
		T(test_polled_queues_ask_the_device_not_to_interrupt),
		T(test_polled_queues_keep_used_event_out_of_reach),
		T(test_port_acks_a_polled_devices_wired_line),
		T(test_polling_lowers_a_line_the_device_raised_anyway),
		T(test_setup_irqs_with_queues_set_up_is_refused),
		T(test_teardown_resets_and_releases_everything),
		T(test_abort_leaves_failed_after_the_reset),
		T(test_unconfirmed_reset_keeps_the_rings_and_the_device_is_dead),
		T(test_mmio_v2_probe_negotiate_and_queue_setup),
		T(test_mmio_v1_uses_page_frame_and_alignment),
		T(test_port_acks_a_polled_mmio_devices_line),
		T(test_mmio_queue_size_above_32768_is_bounded),
		T(test_mmio_irq_line_is_attached_and_acked),
		T(test_mmio_line_number_wider_than_8_bits_reaches_port_and_device_line),
		T(test_mmio_line_handler_ignores_other_devices_and_handles_config),
		T(test_mmio_line_stays_attached_across_teardown),
		T(test_mmio_line_the_port_refuses_polls_and_says_so),
		T(test_mmio_without_a_line_or_port_hook_polls),
		T(test_mmio_bad_magic_is_enodev),
		T(test_mmio_placeholder_device_id_zero_is_enodev),
		T(test_mmio_unknown_version_is_enotsup),
		T(test_mmio_queue_with_max_zero_is_absent),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
