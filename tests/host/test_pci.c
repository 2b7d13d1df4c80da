/*
 * Unit tests for src/pci: config access through mechanism #1 and ECAM, enumeration through
 * bridges and multi-function devices, BAR decoding and sizing, BAR assignment, the
 * capability walk and MSI-X, against the fake PCI segment in fake_pci.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_pci.h"
#include "fake_port.h"
#include <vio/err.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>

struct env {
	struct fake_port fp;
	struct fake_pci pci;
	struct vio_pci_bus bus;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	fake_port_init(&e->fp);
	fake_pci_init(&e->pci, &e->fp);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	fake_pci_free(&e->pci);
	free(e);
	return 0;
}

static void init_cf8(struct env *e)
{
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, NULL), 0);
}

static void init_ecam(struct env *e, uint8_t last_bus)
{
	fake_pci_build_ecam(&e->pci, last_bus);
	struct vio_pci_ecam ecam = {.phys = (uint64_t)(uintptr_t)e->pci.ecam,
				    .segment = 0,
				    .bus_start = 0,
				    .bus_end = last_bus};
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, &ecam), 0);
}

static void test_config_reads_through_mechanism_1(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 0x5678);
	fake_pci_w8(f, 0x3c, 0x0b);
	init_cf8(e);

	assert_int_equal(vio_pci_bus_read16(&e->bus, 0, 3, 0, 0), 0x1234);
	assert_int_equal(vio_pci_bus_read16(&e->bus, 0, 3, 0, 2), 0x5678);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 0, 3, 0, 0), 0x56781234);
	assert_int_equal(vio_pci_bus_read8(&e->bus, 0, 3, 0, 0x3c), 0x0b);
	assert_int_equal(vio_pci_bus_read8(&e->bus, 0, 3, 0, 1), 0x12);
	/* Absent functions and unreachable offsets read all ones. */
	assert_int_equal(vio_pci_bus_read16(&e->bus, 0, 4, 0, 0), 0xffff);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 0, 3, 0, 0x100), 0xffffffffu);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 0, 32, 0, 0), 0xffffffffu);
}

static void test_config_writes_through_mechanism_1(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 0x5678);
	init_cf8(e);

	vio_pci_bus_write32(&e->bus, 0, 3, 0, 0x40, 0xdeadbeef);
	vio_pci_bus_write16(&e->bus, 0, 3, 0, 0x46, 0xcafe);
	vio_pci_bus_write8(&e->bus, 0, 3, 0, 0x45, 0x77);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 0, 3, 0, 0x40), 0xdeadbeef);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 0, 3, 0, 0x44), 0xcafe7700);
	assert_int_equal(f->cfg[0x45], 0x77);
	/* Vendor id is read-only in the fake: writes must not land elsewhere either. */
	vio_pci_bus_write16(&e->bus, 0, 3, 0, 0, 0);
	assert_int_equal(vio_pci_bus_read16(&e->bus, 0, 3, 0, 0), 0x1234);
}

static void test_config_access_through_ecam_reaches_extended_space(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 1, 2, 3, 0xabcd, 0x0001);
	fake_pci_w32(f, 0x100, 0x11223344);
	init_ecam(e, 1);

	assert_true(e->bus.use_ecam);
	assert_int_equal(vio_pci_bus_read16(&e->bus, 1, 2, 3, 0), 0xabcd);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 1, 2, 3, 0x100), 0x11223344);
	vio_pci_bus_write32(&e->bus, 1, 2, 3, 0x200, 0x55667788);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 1, 2, 3, 0x200), 0x55667788);
	vio_pci_bus_write8(&e->bus, 1, 2, 3, 0x201, 0x99);
	assert_int_equal(vio_pci_bus_read16(&e->bus, 1, 2, 3, 0x200), 0x9988);
	/* Outside the window: bus 2 is beyond bus_end, offset 4096 beyond the function. */
	assert_int_equal(vio_pci_bus_read16(&e->bus, 2, 0, 0, 0), 0xffff);
	assert_int_equal(vio_pci_bus_read32(&e->bus, 1, 2, 3, 4096), 0xffffffffu);
	assert_int_equal(vio_pci_bus_read16(&e->bus, 0, 0, 0, 0), 0xffff);
}

static void test_bus_init_refuses_inverted_ecam_range(void **state)
{
	struct env *e = *state;
	struct vio_pci_ecam ecam = {.phys = 0x1000, .bus_start = 5, .bus_end = 4};
	assert_int_equal(vio_pci_bus_init(&e->bus, &e->fp.port, &ecam), VIO_EINVAL);
}

/* Records the b/d/f of each function enumeration reports. */
struct seen {
	int n;
	char bdf[32][16];
	struct vio_pci_dev last;
	int stop_after;
};

static int record(struct vio_pci_dev *dev, void *arg)
{
	struct seen *s = arg;
	if (s->n < 32)
		snprintf(s->bdf[s->n], sizeof(s->bdf[0]), "%02x:%02x.%u", dev->busno, dev->dev,
			 dev->fn);
	s->n++;
	s->last = *dev;
	return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static void build_tree(struct env *e)
{
	fake_pci_add(&e->pci, 0, 0, 0, 0x8086, 0x29c0); /* host bridge */
	struct fake_pci_fn *br = fake_pci_add(&e->pci, 0, 1, 0, 0x1b36, 0x0001);
	fake_pci_make_bridge(br, 1, 1);
	struct fake_pci_fn *mf = fake_pci_add(&e->pci, 0, 2, 0, 0x8086, 0x2918);
	fake_pci_set_multifunction(mf);
	fake_pci_add(&e->pci, 0, 2, 1, 0x8086, 0x2922);
	fake_pci_add(&e->pci, 0, 2, 3, 0x8086, 0x2930);
	fake_pci_add(&e->pci, 1, 0, 0, 0x1af4, 0x1041);
	/* Function 1 of a single-function device must not be looked for. */
	fake_pci_add(&e->pci, 0, 5, 0, 0x1234, 0x1111);
	fake_pci_add(&e->pci, 0, 5, 1, 0x1234, 0x2222);
}

static void test_enumeration_follows_bridges_and_multifunction_devices(void **state)
{
	struct env *e = *state;
	struct seen s = {0};
	build_tree(e);
	init_cf8(e);

	assert_int_equal(vio_pci_enumerate(&e->bus, record, &s), 7);
	const char *want[] = {"00:00.0", "00:01.0", "01:00.0", "00:02.0",
			      "00:02.1", "00:02.3", "00:05.0"};
	for (int i = 0; i < 7; i++)
		assert_string_equal(s.bdf[i], want[i]);
}

static void test_enumeration_through_ecam_finds_the_same_tree(void **state)
{
	struct env *e = *state;
	struct seen s = {0};
	build_tree(e);
	init_ecam(e, 3);

	assert_int_equal(vio_pci_enumerate(&e->bus, record, &s), 7);
	assert_string_equal(s.bdf[2], "01:00.0");
}

static void test_enumeration_survives_a_bridge_loop(void **state)
{
	struct env *e = *state;
	struct seen s = {0};
	struct fake_pci_fn *a = fake_pci_add(&e->pci, 0, 1, 0, 0x1b36, 1);
	fake_pci_make_bridge(a, 1, 1);
	struct fake_pci_fn *b = fake_pci_add(&e->pci, 1, 0, 0, 0x1b36, 1);
	fake_pci_make_bridge(b, 0, 0); /* points back at bus 0 */
	struct fake_pci_fn *c = fake_pci_add(&e->pci, 1, 1, 0, 0x1b36, 1);
	fake_pci_make_bridge(c, 1, 1); /* points at its own bus */
	init_cf8(e);

	assert_int_equal(vio_pci_enumerate(&e->bus, record, &s), 3);
}

static void test_enumeration_reads_ids_class_and_irq(void **state)
{
	struct env *e = *state;
	struct seen s = {0};
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 4, 0, 0x1af4, 0x1000);
	fake_pci_w16(f, 0x2c, 0x1af4);
	fake_pci_w16(f, 0x2e, 0x0001);
	f->cfg[0x08] = 0x02;
	f->cfg[0x0b] = 0x02;
	f->cfg[0x0a] = 0x00;
	f->cfg[0x3c] = 11;
	f->cfg[0x3d] = 1;
	init_cf8(e);

	assert_int_equal(vio_pci_enumerate(&e->bus, record, &s), 1);
	assert_int_equal(s.last.vendor_id, 0x1af4);
	assert_int_equal(s.last.device_id, 0x1000);
	assert_int_equal(s.last.subsystem_vendor_id, 0x1af4);
	assert_int_equal(s.last.subsystem_id, 1);
	assert_int_equal(s.last.class_code, 2);
	assert_int_equal(s.last.revision, 2);
	assert_int_equal(s.last.irq_line, 11);
	assert_int_equal(s.last.irq_pin, 1);
	char line[128];
	vio_pci_describe(&s.last, line, sizeof(line));
	assert_string_equal(line,
			    "0000:00:04.0 0200: 1af4:1000 (1af4:0001) rev 02 irq 11 pin A msix 0");
}

static void test_enumeration_stops_when_callback_asks(void **state)
{
	struct env *e = *state;
	struct seen s = {.stop_after = 2};
	build_tree(e);
	init_cf8(e);

	assert_int_equal(vio_pci_enumerate(&e->bus, record, &s), 2);
	assert_int_equal(s.n, 2);
}

static int fail_cb(struct vio_pci_dev *dev, void *arg)
{
	(void)dev;
	(void)arg;
	return VIO_ENOMEM;
}

static void test_enumeration_returns_callback_error(void **state)
{
	struct env *e = *state;
	build_tree(e);
	init_cf8(e);
	assert_int_equal(vio_pci_enumerate(&e->bus, fail_cb, NULL), VIO_ENOMEM);
}

static void test_enumerate_into_counts_beyond_the_array(void **state)
{
	struct env *e = *state;
	struct vio_pci_dev devs[3];
	build_tree(e);
	init_cf8(e);

	assert_int_equal(vio_pci_enumerate_into(&e->bus, devs, 3), 7);
	assert_int_equal(devs[2].busno, 1);
	assert_int_equal(devs[2].device_id, 0x1041);
}

static void test_bar_sizing_decodes_io_mem32_mem64_and_prefetchable(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 1);
	fake_pci_set_bar(f, 0, 0xc040, 0x40, FAKE_BAR_IO);
	fake_pci_set_bar(f, 1, 0xfebf1000, 0x1000, FAKE_BAR_MEM32);
	fake_pci_set_bar(f, 2, 0x800000000ull, 0x4000, FAKE_BAR_MEM64 | FAKE_BAR_PREFETCH);
	fake_pci_set_bar(f, 5, 0xe0000000, 0x10000000, FAKE_BAR_MEM32 | FAKE_BAR_PREFETCH);
	uint8_t before[64];
	memcpy(before, f->cfg, 64);
	init_cf8(e);

	struct vio_pci_dev d;
	assert_int_equal(vio_pci_dev_init(&d, &e->bus, 0, 3, 0), 0);
	assert_true(d.bars[0].is_io);
	assert_int_equal(d.bars[0].phys, 0xc040);
	assert_int_equal(d.bars[0].size, 0x40);
	assert_false(d.bars[1].is_io);
	assert_false(d.bars[1].is64);
	assert_int_equal(d.bars[1].phys, 0xfebf1000);
	assert_int_equal(d.bars[1].size, 0x1000);
	assert_true(d.bars[2].is64);
	assert_true(d.bars[2].prefetch);
	assert_int_equal(d.bars[2].phys, 0x800000000ull);
	assert_int_equal(d.bars[2].size, 0x4000);
	assert_int_equal(d.bars[3].size, 0); /* upper half */
	assert_int_equal(d.bars[4].size, 0); /* unimplemented */
	assert_true(d.bars[5].prefetch);
	assert_int_equal(d.bars[5].size, 0x10000000);
	/* Sizing disabled decoding first and put every register back. */
	assert_false(f->sized_while_decoding);
	assert_true(f->bar_writes > 0);
	assert_memory_equal(before, f->cfg, 64);
}

static void test_64bit_bar_in_the_last_slot_is_ignored(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 1);
	f->bar_size[5] = 0x1000;
	fake_pci_w32(f, 0x24, 0xfe000000 | FAKE_BAR_MEM64);
	init_cf8(e);

	struct vio_pci_dev d;
	assert_int_equal(vio_pci_dev_init(&d, &e->bus, 0, 3, 0), 0);
	assert_int_equal(d.bars[5].size, 0);
}

static void test_bridge_has_two_bars_and_bus_numbers(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1b36, 1);
	fake_pci_make_bridge(f, 2, 5);
	fake_pci_set_bar(f, 0, 0xfe800000, 0x1000, FAKE_BAR_MEM32);
	init_cf8(e);

	struct vio_pci_dev d;
	assert_int_equal(vio_pci_dev_init(&d, &e->bus, 0, 1, 0), 0);
	assert_int_equal(d.header_type, PCI_HEADER_TYPE_BRIDGE);
	assert_int_equal(d.secondary_bus, 2);
	assert_int_equal(d.subordinate_bus, 5);
	assert_int_equal(d.bars[0].size, 0x1000);
	/* 0x18 (bus numbers) must not have been treated as a BAR. */
	assert_int_equal(f->cfg[0x19], 2);
}

static void test_map_bar_reaches_above_4g_and_checks_bounds(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 1);
	fake_pci_set_bar(f, 2, 0x800000000ull, 0x4000, FAKE_BAR_MEM64);
	fake_pci_set_bar(f, 0, 0xc000, 0x20, FAKE_BAR_IO);
	init_cf8(e);
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);

	assert_ptr_equal(vio_pci_map_bar(&d, 2, 0x100, 0x100), (void *)0x800000100ull);
	assert_null(vio_pci_map_bar(&d, 2, 0x3f00, 0x200));
	assert_null(vio_pci_map_bar(&d, 2, 0xffffffffffffff00ull, 0x200));
	assert_null(vio_pci_map_bar(&d, 0, 0, 4)); /* I/O */
	assert_null(vio_pci_map_bar(&d, 4, 0, 4)); /* absent */
	assert_null(vio_pci_map_bar(&d, 6, 0, 4));
}

static void test_bar_contains_only_ranges_inside_an_implemented_memory_bar(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 1);
	fake_pci_set_bar(f, 2, 0x800000000ull, 0x4000, FAKE_BAR_MEM64);
	fake_pci_set_bar(f, 0, 0xc000, 0x20, FAKE_BAR_IO);
	init_cf8(e);
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);

	assert_true(vio_pci_bar_contains(&d, 2, 0, 0x4000));
	assert_true(vio_pci_bar_contains(&d, 2, 0x3ff0, 0x10)); /* ends exactly at the end */
	assert_true(vio_pci_bar_contains(&d, 2, 0x4000, 0));
	assert_false(vio_pci_bar_contains(&d, 2, 0x3ff0, 0x11));
	assert_false(vio_pci_bar_contains(&d, 2, 0x4001, 0));
	assert_false(vio_pci_bar_contains(&d, 2, 0x10, UINT64_MAX)); /* no wrap-around */
	assert_false(vio_pci_bar_contains(&d, 3, 0, 4)); /* upper half of the 64-bit BAR */
	assert_false(vio_pci_bar_contains(&d, 0, 0, 4)); /* I/O */
	assert_false(vio_pci_bar_contains(&d, 6, 0, 4));
}

static struct fake_pci_fn *fn_with_caps(struct env *e)
{
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 1);
	fake_pci_add_cap(f, 0x40, PCI_CAP_ID_PM, 8);
	fake_pci_add_cap(f, 0x50, PCI_CAP_ID_VNDR, 16);
	fake_pci_add_cap(f, 0x60, PCI_CAP_ID_MSIX, 12);
	init_cf8(e);
	return f;
}

static void test_capability_walk_lists_every_cap_in_order(void **state)
{
	struct env *e = *state;
	fn_with_caps(e);
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);

	struct vio_pci_capref caps[8];
	assert_int_equal(vio_pci_cap_walk(&d, caps, 8), 3);
	assert_int_equal(caps[0].id, PCI_CAP_ID_PM);
	assert_int_equal(caps[0].offset, 0x40);
	assert_int_equal(caps[2].id, PCI_CAP_ID_MSIX);
	assert_int_equal(vio_pci_find_cap(&d, PCI_CAP_ID_VNDR), 0x50);
	assert_int_equal(vio_pci_find_cap(&d, PCI_CAP_ID_EXP), VIO_ENODEV);
}

static void test_cyclic_capability_list_terminates_with_eproto(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fn_with_caps(e);
	f->cfg[0x61] = 0x40; /* last cap points back to the first */
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);

	assert_int_equal(vio_pci_cap_walk(&d, NULL, 0), VIO_EPROTO);
	assert_int_equal(vio_pci_find_cap(&d, PCI_CAP_ID_EXP), VIO_EPROTO);
	f->cfg[0x41] = 0x40; /* a cap pointing at itself */
	assert_int_equal(vio_pci_cap_walk(&d, NULL, 0), VIO_EPROTO);
}

static void test_cap_pointer_into_the_header_is_rejected(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fn_with_caps(e);
	f->cfg[0x51] = 0x10; /* inside the standard header */
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);
	assert_int_equal(vio_pci_cap_walk(&d, NULL, 0), VIO_EPROTO);
}

static void test_cap_pointer_low_bits_are_masked_and_the_walk_stays_in_256_bytes(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fn_with_caps(e);
	f->cfg[0x61] = 0xff; /* masked to 0xfc: the last dword of the header space */
	f->cfg[0xfc] = 0x99;
	f->cfg[0xfd] = 0x00;
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);

	struct vio_pci_capref caps[8];
	assert_int_equal(vio_pci_cap_walk(&d, caps, 8), 4);
	assert_int_equal(caps[3].offset, 0xfc);
}

static void test_long_capability_chain_is_bounded(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 1);
	fake_pci_w16(f, 0x06, PCI_STATUS_CAP_LIST);
	f->cfg[0x34] = 0x40;
	for (int off = 0x40; off < 0x100; off += 4) {
		f->cfg[off] = PCI_CAP_ID_VNDR;
		f->cfg[off + 1] = (uint8_t)(off + 4 < 0x100 ? off + 4 : 0);
	}
	init_cf8(e);
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);
	/* 48 caps, every dword used, is the most there can be: allowed. */
	assert_int_equal(vio_pci_cap_walk(&d, NULL, 0), VIO_PCI_MAX_CAPS);
}

static void test_no_capability_list_bit_means_no_caps(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fn_with_caps(e);
	fake_pci_w16(f, 0x06, 0);
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);
	assert_int_equal(vio_pci_cap_walk(&d, NULL, 0), 0);
}

struct msix_env {
	uint8_t mem[8192];
};

static struct fake_pci_fn *fn_with_msix(struct env *e, struct msix_env *m, uint16_t entries,
					uint32_t table, uint32_t pba)
{
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 3, 0, 0x1234, 1);
	fake_pci_set_bar(f, 2, (uint64_t)(uintptr_t)m->mem, sizeof(m->mem), FAKE_BAR_MEM64);
	fake_pci_add_cap(f, 0x40, PCI_CAP_ID_MSIX, 12);
	fake_pci_w16(f, 0x42, (uint16_t)(entries - 1));
	fake_pci_w32(f, 0x44, table);
	fake_pci_w32(f, 0x48, pba);
	init_cf8(e);
	return f;
}

static void test_msix_entries_masks_and_enable(void **state)
{
	struct env *e = *state;
	struct msix_env *m = calloc(1, sizeof(*m));
	struct fake_pci_fn *f = fn_with_msix(e, m, 4, 2 | 0x1000, 2 | 0x1800);
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);

	assert_int_equal(d.msix.cap, 0x40);
	assert_int_equal(d.msix.table_size, 4);
	assert_int_equal(d.msix.table_bar, 2);
	assert_int_equal(d.msix.table_offset, 0x1000);
	assert_int_equal(vio_pci_msix_map(&d), 0);
	assert_ptr_equal(d.msix.table, m->mem + 0x1000);

	assert_int_equal(vio_pci_msix_set_entry(&d, 2, 0x1fee00000ull, 0x41, false), 0);
	struct pci_msix_entry ent;
	memcpy(&ent, m->mem + 0x1000 + 2 * 16, sizeof(ent));
	assert_int_equal(ent.msg_addr_lo, 0xfee00000);
	assert_int_equal(ent.msg_addr_hi, 1);
	assert_int_equal(ent.msg_data, 0x41);
	assert_int_equal(ent.vector_control & 1, 0);
	vio_pci_msix_mask_entry(&d, 2, true);
	memcpy(&ent, m->mem + 0x1000 + 2 * 16, sizeof(ent));
	assert_int_equal(ent.vector_control & 1, 1);
	assert_int_equal(vio_pci_msix_set_entry(&d, 4, 0, 0, false), VIO_EINVAL);

	/* Firmware may leave Function Mask set: enabling must clear it. */
	fake_pci_w16(f, 0x42, (uint16_t)(fake_pci_r16(f, 0x42) | PCI_MSIX_CTRL_FUNCTION_MASK));
	vio_pci_msix_enable(&d, true);
	assert_true(fake_pci_r16(f, 0x42) & PCI_MSIX_CTRL_ENABLE);
	assert_false(fake_pci_r16(f, 0x42) & PCI_MSIX_CTRL_FUNCTION_MASK);
	assert_true(fake_pci_r16(f, 0x04) & PCI_COMMAND_INTX_DISABLE);
	assert_true(d.msix.enabled);
	vio_pci_msix_enable(&d, false);
	assert_false(fake_pci_r16(f, 0x42) & PCI_MSIX_CTRL_ENABLE);
	assert_false(fake_pci_r16(f, 0x04) & PCI_COMMAND_INTX_DISABLE);
	free(m);
}

static void test_msix_table_outside_its_bar_is_rejected(void **state)
{
	struct env *e = *state;
	struct msix_env *m = calloc(1, sizeof(*m));
	fn_with_msix(e, m, 2048, 2 | 0x1000, 2 | 0x1800); /* 32 KiB table in an 8 KiB BAR */
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);
	assert_int_equal(vio_pci_msix_map(&d), VIO_EPROTO);
	assert_null(d.msix.table);
	free(m);
}

static void test_msix_table_in_a_missing_bar_is_rejected(void **state)
{
	struct env *e = *state;
	struct msix_env *m = calloc(1, sizeof(*m));
	fn_with_msix(e, m, 4, 5 | 0x0, 2 | 0x1800);
	struct vio_pci_dev d;
	vio_pci_dev_init(&d, &e->bus, 0, 3, 0);
	assert_int_equal(vio_pci_msix_map(&d), VIO_EPROTO);
	free(m);
}

/* --- BAR assignment ------------------------------------------------------------------------ */

/* QEMU virt's windows: I/O at bus 0 (CPU 0x3000000), 1 GiB of 32-bit and 16 GiB of 64-bit. */
static const struct vio_pci_windows virt_windows = {
    .io = {.base = 0, .size = 0x10000, .cpu_offset = 0x3000000},
    .mem32 = {.base = 0x40000000, .size = 0x40000000},
    .mem64 = {.base = 0x400000000ull, .size = 0x400000000ull},
};

/* The bus address BAR i of `f` holds now (both halves of a 64-bit one). */
static uint64_t bar_at(const struct fake_pci_fn *f, int i)
{
	uint32_t lo, hi = 0;
	memcpy(&lo, &f->cfg[0x10 + 4 * i], 4);
	if (lo & PCI_BAR_IO)
		return lo & PCI_BAR_IO_MASK;
	if ((lo & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64)
		memcpy(&hi, &f->cfg[0x14 + 4 * i], 4);
	return (uint64_t)hi << 32 | (lo & PCI_BAR_MEM_MASK);
}

static uint16_t decoding(const struct fake_pci_fn *f)
{
	return fake_pci_r16(f, 0x04) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
}

static void test_assign_places_bars_largest_first_aligned_and_without_gaps(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *a = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1042);
	fake_pci_set_bar(a, 0, 0, 0x1000, FAKE_BAR_MEM32);
	fake_pci_set_bar(a, 1, 0, 0x100000, FAKE_BAR_MEM32);
	struct fake_pci_fn *b = fake_pci_add(&e->pci, 0, 2, 0, 0x1af4, 0x1044);
	fake_pci_set_bar(b, 0, 0, 0x10, FAKE_BAR_MEM32);
	fake_pci_set_bar(b, 2, 0, 0x4000, FAKE_BAR_MEM32);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), 4);
	assert_int_equal(bar_at(a, 1), 0x40000000);
	assert_int_equal(bar_at(b, 2), 0x40100000);
	assert_int_equal(bar_at(a, 0), 0x40104000);
	assert_int_equal(bar_at(b, 0), 0x40105000);
	/* Memory decoding on, I/O decoding off: neither function has an I/O BAR. */
	assert_int_equal(decoding(a), PCI_COMMAND_MEMORY);
	assert_int_equal(decoding(b), PCI_COMMAND_MEMORY);
	/* Enumeration now finds what a PC's firmware would have left. */
	struct vio_pci_dev d;
	assert_int_equal(vio_pci_dev_init(&d, &e->bus, 0, 2, 0), 0);
	assert_int_equal(d.bars[2].phys, 0x40100000);
	assert_int_equal(d.bars[2].size, 0x4000);
}

static void test_assign_aligns_from_a_window_base_that_is_not_aligned(void **state)
{
	struct env *e = *state;
	struct vio_pci_windows w = {.mem32 = {.base = 0x40001000, .size = 0x1000000}};
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1234, 1);
	fake_pci_set_bar(f, 0, 0, 0x100000, FAKE_BAR_MEM32);
	fake_pci_set_bar(f, 1, 0, 0x1000, FAKE_BAR_MEM32);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), 2);
	assert_int_equal(bar_at(f, 0), 0x40100000);
	assert_int_equal(bar_at(f, 1), 0x40200000);
}

static void test_assign_programs_bars_with_decoding_off(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1234, 1);
	fake_pci_set_bar(f, 0, 0, 0x1000, FAKE_BAR_MEM32);
	fake_pci_set_bar(f, 2, 0, 0x4000, FAKE_BAR_MEM64);
	assert_int_not_equal(decoding(f), 0); /* as reset may leave it */
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), 2);
	assert_false(f->moved_while_decoding);
	assert_false(f->sized_while_decoding);
	assert_int_equal(decoding(f), PCI_COMMAND_MEMORY);
}

static void test_assign_puts_io_bars_above_the_isa_ports(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *a = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1000);
	fake_pci_set_bar(a, 0, 0, 0x40, FAKE_BAR_IO);
	fake_pci_set_bar(a, 1, 0, 0x100, FAKE_BAR_IO);
	struct fake_pci_fn *b = fake_pci_add(&e->pci, 0, 2, 0, 0x1af4, 0x1005);
	fake_pci_set_bar(b, 0, 0, 0x20, FAKE_BAR_IO);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), 3);
	assert_int_equal(bar_at(a, 1), 0x1000);
	assert_int_equal(bar_at(a, 0), 0x1100);
	assert_int_equal(bar_at(b, 0), 0x1140);
	assert_int_equal(decoding(a), PCI_COMMAND_IO);
	assert_int_equal(decoding(b), PCI_COMMAND_IO);
}

static void test_assign_finds_no_io_room_in_a_window_below_the_isa_end(void **state)
{
	struct env *e = *state;
	struct vio_pci_windows w = {.io = {.base = 0, .size = 0x1000}};
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1000);
	fake_pci_set_bar(f, 0, 0, 0x40, FAKE_BAR_IO);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), VIO_ENOSPC);
	assert_int_equal(decoding(f), 0);
}

static void test_assign_puts_64bit_bars_in_the_64bit_window(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1041);
	fake_pci_set_bar(f, 0, 0, 0x1000, FAKE_BAR_MEM32);
	fake_pci_set_bar(f, 2, 0, 0x4000, FAKE_BAR_MEM64 | FAKE_BAR_PREFETCH);
	fake_pci_set_bar(f, 4, 0, 0x800000, FAKE_BAR_MEM64);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), 3);
	assert_int_equal(bar_at(f, 4), 0x400000000ull);
	assert_int_equal(bar_at(f, 2), 0x400800000ull);
	assert_int_equal(bar_at(f, 0), 0x40000000);
	/* The upper halves were written, not left for the flags to decide. */
	assert_int_equal(f->cfg[0x1c], 0x04);
	assert_int_equal(f->cfg[0x24], 0x04);
}

static void test_64bit_bar_goes_in_the_32bit_window_when_there_is_no_64bit_one(void **state)
{
	struct env *e = *state;
	struct vio_pci_windows w = virt_windows;
	w.mem64.size = 0;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1041);
	fake_pci_set_bar(f, 0, 0, 0x1000, FAKE_BAR_MEM32);
	fake_pci_set_bar(f, 2, 0, 0x4000, FAKE_BAR_MEM64 | FAKE_BAR_PREFETCH);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), 2);
	assert_int_equal(bar_at(f, 2), 0x40000000);
	assert_int_equal(bar_at(f, 0), 0x40004000);
}

static void test_64bit_bar_goes_in_the_32bit_window_when_the_64bit_one_is_full(void **state)
{
	struct env *e = *state;
	struct vio_pci_windows w = virt_windows;
	w.mem64.size = 0x4000;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1041);
	fake_pci_set_bar(f, 0, 0, 0x8000, FAKE_BAR_MEM64);
	fake_pci_set_bar(f, 2, 0, 0x4000, FAKE_BAR_MEM64);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), 2);
	assert_int_equal(bar_at(f, 0), 0x40000000); /* 32 KiB: no room in 16 KiB */
	assert_int_equal(bar_at(f, 2), 0x400000000ull);
}

static void test_assign_fills_a_window_exactly(void **state)
{
	struct env *e = *state;
	struct vio_pci_windows w = {.mem32 = {.base = 0x40000000, .size = 0x3000}};
	struct fake_pci_fn *a = fake_pci_add(&e->pci, 0, 1, 0, 0x1234, 1);
	fake_pci_set_bar(a, 0, 0, 0x2000, FAKE_BAR_MEM32);
	struct fake_pci_fn *b = fake_pci_add(&e->pci, 0, 2, 0, 0x1234, 1);
	fake_pci_set_bar(b, 0, 0, 0x1000, FAKE_BAR_MEM32);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), 2);
	assert_int_equal(bar_at(a, 0), 0x40000000);
	assert_int_equal(bar_at(b, 0), 0x40002000);
	assert_int_equal(decoding(b), PCI_COMMAND_MEMORY);
}

static uint8_t line_from_slot(void *arg, const struct vio_pci_dev *dev)
{
	(void)arg;
	return (uint8_t)(32 + dev->dev);
}

static void test_exhausted_window_leaves_only_the_function_that_missed_disabled(void **state)
{
	struct env *e = *state;
	struct vio_pci_windows w = {.mem32 = {.base = 0x40000000, .size = 0x3000}};
	struct fake_pci_fn *a = fake_pci_add(&e->pci, 0, 1, 0, 0x1234, 1);
	fake_pci_set_bar(a, 0, 0, 0x2000, FAKE_BAR_MEM32);
	struct fake_pci_fn *b = fake_pci_add(&e->pci, 0, 2, 0, 0x1234, 1);
	fake_pci_set_bar(b, 0, 0, 0x1000, FAKE_BAR_MEM32);
	fake_pci_set_bar(b, 1, 0, 0x10, FAKE_BAR_MEM32); /* one BAR too many */
	fake_pci_w8(b, 0x3d, 1);
	fake_pci_w8(b, 0x3c, 0xff);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, line_from_slot, NULL), VIO_ENOSPC);
	assert_int_equal(decoding(a), PCI_COMMAND_MEMORY);
	assert_int_equal(decoding(b), 0);
	assert_int_equal(b->cfg[0x3c], 0xff); /* no Interrupt Line for a disabled function */
	assert_true(fake_port_logged(&e->fp, "pci 0000:00:02.0: BAR 1 (32-bit memory, 16 bytes) "
					     "fits in no host bridge window"));
}

static void test_bar_larger_than_every_window_is_refused(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *big = fake_pci_add(&e->pci, 0, 1, 0, 0x1234, 1);
	fake_pci_set_bar(big, 0, 0, 0x80000000, FAKE_BAR_MEM32); /* 2 GiB in a 1 GiB window */
	struct fake_pci_fn *ok = fake_pci_add(&e->pci, 0, 2, 0, 0x1234, 1);
	fake_pci_set_bar(ok, 0, 0, 0x1000, FAKE_BAR_MEM32);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), VIO_ENOSPC);
	assert_int_equal(decoding(big), 0);
	assert_int_equal(bar_at(ok, 0), 0x40000000);
	assert_int_equal(decoding(ok), PCI_COMMAND_MEMORY);
}

static void test_bar_claiming_2_to_the_63_bytes_does_not_wrap_the_allocator(void **state)
{
	struct env *e = *state;
	/* A 64-bit window that ends at the very top of the address space. */
	struct vio_pci_windows w = {
	    .mem32 = {.base = 0x40000000, .size = 0x40000000},
	    .mem64 = {.base = 0xffffffff00000000ull, .size = 0x100000000ull},
	};
	struct fake_pci_fn *liar = fake_pci_add(&e->pci, 0, 1, 0, 0x1234, 1);
	fake_pci_set_bar(liar, 0, 0, 1ull << 63, FAKE_BAR_MEM64);
	struct fake_pci_fn *ok = fake_pci_add(&e->pci, 0, 2, 0, 0x1af4, 0x1041);
	fake_pci_set_bar(ok, 0, 0, 0x80000000, FAKE_BAR_MEM64);
	fake_pci_set_bar(ok, 2, 0, 0x80000000, FAKE_BAR_MEM64);
	fake_pci_set_bar(ok, 4, 0, 0x4000, FAKE_BAR_MEM32);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), VIO_ENOSPC);
	assert_true(fake_port_logged(&e->fp, "9223372036854775808 bytes"));
	assert_int_equal(decoding(liar), 0);
	/* The window filled to its last byte, and nothing wrapped round to low addresses. */
	assert_int_equal(bar_at(ok, 0), 0xffffffff00000000ull);
	assert_int_equal(bar_at(ok, 2), 0xffffffff80000000ull);
	assert_int_equal(bar_at(ok, 4), 0x40000000);
	assert_int_equal(decoding(ok), PCI_COMMAND_MEMORY);
}

/* Counts sizing writes to BAR 0 and doubles its size once the first sizing is over. */
static void grow_after_first_sizing(void *ctx, struct fake_pci_fn *fn, uint16_t off, int size)
{
	int *writes = ctx;
	if (off == 0x10 && size == 4 && ++*writes == 2)
		fn->bar_size[0] *= 2;
}

static void test_bar_that_changes_size_between_walks_leaves_its_function_disabled(void **state)
{
	struct env *e = *state;
	int writes = 0;
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1234, 1);
	fake_pci_set_bar(f, 0, 0, 0x1000, FAKE_BAR_MEM32);
	f->hooks =
	    (struct fake_pci_hooks){.ctx = &writes, .cfg_after_write = grow_after_first_sizing};
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), VIO_ENOSPC);
	assert_int_equal(decoding(f), 0);
	assert_true(fake_port_logged(&e->fp, "changed its size while being assigned"));
}

static void test_assign_refuses_windows_that_wrap_or_reach_past_4g(void **state)
{
	struct env *e = *state;
	init_cf8(e);
	struct vio_pci_windows w = {.mem32 = {.base = 0xc0000000, .size = 0x80000000}};
	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), VIO_EINVAL);
	w = (struct vio_pci_windows){.io = {.base = 0xffff0000, .size = 0x20000}};
	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), VIO_EINVAL);
	w = (struct vio_pci_windows){.mem64 = {.base = 0xffffffffffff0000ull, .size = 0x20000}};
	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), VIO_EINVAL);
	assert_int_equal(vio_pci_assign(&e->bus, NULL, NULL, NULL), VIO_EINVAL);
	/* Up to the last byte is fine: a 32-bit window ending at 4 GiB, a 64-bit one at 2^64. */
	w = (struct vio_pci_windows){.mem32 = {.base = 0xc0000000, .size = 0x40000000},
				     .mem64 = {.base = 0xffffffffffff0000ull, .size = 0x10000}};
	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), 0);
}

static void test_assign_writes_the_interrupt_line_the_kernel_chooses(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *a = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1042);
	fake_pci_set_bar(a, 0, 0, 0x1000, FAKE_BAR_MEM32);
	fake_pci_w8(a, 0x3d, 1);
	struct fake_pci_fn *b = fake_pci_add(&e->pci, 0, 4, 0, 0x1af4, 0x1044);
	fake_pci_w8(b, 0x3d, 2);
	struct fake_pci_fn *nopin = fake_pci_add(&e->pci, 0, 5, 0, 0x1234, 1);
	fake_pci_w8(nopin, 0x3c, 0x77);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, line_from_slot, NULL), 1);
	assert_int_equal(a->cfg[0x3c], 33);
	assert_int_equal(b->cfg[0x3c], 36);
	assert_int_equal(nopin->cfg[0x3c], 0x77);
}

static void test_assign_leaves_bridges_and_the_buses_behind_them_alone(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *br = fake_pci_add(&e->pci, 0, 1, 0, 0x1b36, 0x000c);
	fake_pci_make_bridge(br, 1, 1);
	fake_pci_set_bar(br, 0, 0xfe000000, 0x1000, FAKE_BAR_MEM32);
	struct fake_pci_fn *behind = fake_pci_add(&e->pci, 1, 0, 0, 0x1af4, 0x1041);
	fake_pci_set_bar(behind, 0, 0xfd000000, 0x4000, FAKE_BAR_MEM32);
	struct fake_pci_fn *root = fake_pci_add(&e->pci, 0, 2, 0, 0x1af4, 0x1041);
	fake_pci_set_bar(root, 0, 0, 0x4000, FAKE_BAR_MEM32);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), 1);
	assert_int_equal(bar_at(root, 0), 0x40000000);
	assert_int_equal(bar_at(br, 0), 0xfe000000);
	assert_int_equal(bar_at(behind, 0), 0xfd000000);
	assert_int_equal(decoding(br), PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	assert_true(fake_port_logged(&e->fp, "pci 0000:00:01.0: a bridge"));
}

static void test_assign_reaches_every_function_of_a_multifunction_device(void **state)
{
	struct env *e = *state;
	struct fake_pci_fn *f0 = fake_pci_add(&e->pci, 0, 3, 0, 0x1af4, 0x1041);
	fake_pci_set_multifunction(f0);
	fake_pci_set_bar(f0, 0, 0, 0x1000, FAKE_BAR_MEM32);
	struct fake_pci_fn *f5 = fake_pci_add(&e->pci, 0, 3, 5, 0x1af4, 0x1042);
	fake_pci_set_bar(f5, 0, 0, 0x2000, FAKE_BAR_MEM32);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &virt_windows, NULL, NULL), 2);
	assert_int_equal(bar_at(f5, 0), 0x40000000);
	assert_int_equal(bar_at(f0, 0), 0x40002000);
	assert_int_equal(decoding(f5), PCI_COMMAND_MEMORY);
}

static void test_map_bar_moves_bus_addresses_by_the_window_cpu_offset(void **state)
{
	struct env *e = *state;
	struct vio_pci_windows w = {
	    .mem32 = {.base = 0x40000000, .size = 0x10000000, .cpu_offset = 0x1000000000ull},
	    .mem64 = {.base = 0x400000000ull,
		      .size = 0x100000000ull,
		      .cpu_offset = (uint64_t)-0x100000000ll},
	};
	struct fake_pci_fn *f = fake_pci_add(&e->pci, 0, 1, 0, 0x1af4, 0x1041);
	fake_pci_set_bar(f, 0, 0, 0x1000, FAKE_BAR_MEM32);
	fake_pci_set_bar(f, 2, 0, 0x4000, FAKE_BAR_MEM64);
	init_cf8(e);

	assert_int_equal(vio_pci_assign(&e->bus, &w, NULL, NULL), 2);
	struct vio_pci_dev d;
	assert_int_equal(vio_pci_dev_init(&d, &e->bus, 0, 1, 0), 0);
	assert_int_equal(d.bars[0].phys, 0x40000000); /* the BAR holds the bus address */
	assert_ptr_equal(vio_pci_map_bar(&d, 0, 0x10, 4), (void *)0x1040000010ull);
	assert_ptr_equal(vio_pci_map_bar(&d, 2, 0x20, 4), (void *)0x300000020ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_config_reads_through_mechanism_1),
		T(test_config_writes_through_mechanism_1),
		T(test_config_access_through_ecam_reaches_extended_space),
		T(test_bus_init_refuses_inverted_ecam_range),
		T(test_enumeration_follows_bridges_and_multifunction_devices),
		T(test_enumeration_through_ecam_finds_the_same_tree),
		T(test_enumeration_survives_a_bridge_loop),
		T(test_enumeration_reads_ids_class_and_irq),
		T(test_enumeration_stops_when_callback_asks),
		T(test_enumeration_returns_callback_error),
		T(test_enumerate_into_counts_beyond_the_array),
		T(test_bar_sizing_decodes_io_mem32_mem64_and_prefetchable),
		T(test_64bit_bar_in_the_last_slot_is_ignored),
		T(test_bridge_has_two_bars_and_bus_numbers),
		T(test_map_bar_reaches_above_4g_and_checks_bounds),
		T(test_bar_contains_only_ranges_inside_an_implemented_memory_bar),
		T(test_capability_walk_lists_every_cap_in_order),
		T(test_cyclic_capability_list_terminates_with_eproto),
		T(test_cap_pointer_into_the_header_is_rejected),
		T(test_cap_pointer_low_bits_are_masked_and_the_walk_stays_in_256_bytes),
		T(test_long_capability_chain_is_bounded),
		T(test_no_capability_list_bit_means_no_caps),
		T(test_msix_entries_masks_and_enable),
		T(test_msix_table_outside_its_bar_is_rejected),
		T(test_msix_table_in_a_missing_bar_is_rejected),
		T(test_assign_places_bars_largest_first_aligned_and_without_gaps),
		T(test_assign_aligns_from_a_window_base_that_is_not_aligned),
		T(test_assign_programs_bars_with_decoding_off),
		T(test_assign_puts_io_bars_above_the_isa_ports),
		T(test_assign_finds_no_io_room_in_a_window_below_the_isa_end),
		T(test_assign_puts_64bit_bars_in_the_64bit_window),
		T(test_64bit_bar_goes_in_the_32bit_window_when_there_is_no_64bit_one),
		T(test_64bit_bar_goes_in_the_32bit_window_when_the_64bit_one_is_full),
		T(test_assign_fills_a_window_exactly),
		T(test_exhausted_window_leaves_only_the_function_that_missed_disabled),
		T(test_bar_larger_than_every_window_is_refused),
		T(test_bar_claiming_2_to_the_63_bytes_does_not_wrap_the_allocator),
		T(test_bar_that_changes_size_between_walks_leaves_its_function_disabled),
		T(test_assign_refuses_windows_that_wrap_or_reach_past_4g),
		T(test_assign_writes_the_interrupt_line_the_kernel_chooses),
		T(test_assign_leaves_bridges_and_the_buses_behind_them_alone),
		T(test_assign_reaches_every_function_of_a_multifunction_device),
		T(test_map_bar_moves_bus_addresses_by_the_window_cpu_offset),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
