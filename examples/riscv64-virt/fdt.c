/*
 * fdt.c: read what this kernel needs from the flattened device tree (the devicetree spec,
 * chapter 5, "Flattened Devicetree (DTB) Format") QEMU builds for `virt` and OpenSBI passes
 * on in a1:
 *
 *   /memory@...        reg: where RAM is and how large (-m)
 *   /cpus              timebase-frequency: the rate of the time CSR
 *   /chosen            bootargs: QEMU's -append string
 *   .../virtio_mmio@*  compatible "virtio,mmio": reg (a 0x1000-byte window) and interrupts
 *                      (one PLIC source). QEMU virt always has 8 at 0x10001000 + 0x1000 * i,
 *                      PLIC sources 1..8; most are empty (device id 0).
 *
 * The tree is a stream of big-endian 32-bit tokens: BEGIN_NODE name, PROP len nameoff value,
 * END_NODE, END. A node's `reg` is read with the #address-cells and #size-cells of its
 * parent. The blob is trusted: it comes from our own firmware.
 */
#include "kernel.h"
#include <string.h>

#define FDT_MAGIC      0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE   2
#define FDT_PROP       3
#define FDT_NOP	       4
#define FDT_END	       9
#define MAX_DEPTH      8

struct fdt_header {
	uint32_t magic, totalsize, off_dt_struct, off_dt_strings, off_mem_rsvmap, version;
	uint32_t last_comp_version, boot_cpuid_phys, size_dt_strings, size_dt_struct;
};

struct machine machine;

static uint32_t be32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* A number of `cells` 32-bit cells (1 or 2), big-endian. */
static uint64_t cells(const uint8_t *p, uint32_t n)
{
	return n == 2 ? (uint64_t)be32(p) << 32 | be32(p + 4) : be32(p);
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void fdt_scan(const void *dtb)
{
	const struct fdt_header *h = dtb;
	if (be32(&h->magic) != FDT_MAGIC)
		panic("fdt: no device tree at %p", dtb);
	const uint8_t *p = (const uint8_t *)dtb + be32(&h->off_dt_struct);
	const char *strings = (const char *)dtb + be32(&h->off_dt_strings);
	const char *node[MAX_DEPTH] = {""};
	uint32_t acells[MAX_DEPTH] = {2}, scells[MAX_DEPTH] = {1}; /* the spec's defaults */
	struct mmio_slot slot = {0};
	bool is_virtio = false;
	int depth = 0;

	for (;;) {
		uint32_t tok = be32(p);
		p += 4;
		if (tok == FDT_BEGIN_NODE) {
			const char *name = (const char *)p;
			p += (strlen(name) + 4) & ~3ul; /* the name, its NUL, padding to 4 */
			if (++depth >= MAX_DEPTH)
				panic("fdt: nodes nest too deep");
			node[depth] = name;
			acells[depth] = 2, scells[depth] = 1;
			slot = (struct mmio_slot){0}, is_virtio = false;
		} else if (tok == FDT_PROP) {
			uint32_t len = be32(p), nameoff = be32(p + 4);
			const uint8_t *v = p + 8;
			const char *prop = strings + nameoff, *in = node[depth];
			uint32_t ac = acells[depth - 1], sc = scells[depth - 1];
			p += 8 + ((len + 3) & ~3u);
			if (strcmp(prop, "#address-cells") == 0)
				acells[depth] = be32(v);
			else if (strcmp(prop, "#size-cells") == 0)
				scells[depth] = be32(v);
			else if (starts(in, "memory") && strcmp(prop, "reg") == 0) {
				machine.ram_base = cells(v, ac);
				machine.ram_size = cells(v + 4 * ac, sc);
			} else if (strcmp(in, "cpus") == 0 &&
				   strcmp(prop, "timebase-frequency") == 0)
				machine.timebase_hz = be32(v);
			else if (strcmp(in, "chosen") == 0 && strcmp(prop, "bootargs") == 0)
				strncpy(machine.bootargs, (const char *)v,
					sizeof(machine.bootargs) - 1);
			else if (strcmp(prop, "compatible") == 0)
				is_virtio = strcmp((const char *)v, "virtio,mmio") == 0;
			else if (strcmp(prop, "reg") == 0) {
				slot.base = cells(v, ac);
				slot.size = cells(v + 4 * ac, sc);
			} else if (strcmp(prop, "interrupts") == 0)
				slot.irq = be32(v);
		} else if (tok == FDT_END_NODE) {
			if (is_virtio && machine.nmmio < MAX_MMIO_SLOTS)
				machine.mmio[machine.nmmio++] = slot;
			is_virtio = false;
			depth--;
		} else if (tok == FDT_END) {
			break;
		} else if (tok != FDT_NOP) {
			panic("fdt: bad token %u", tok);
		}
	}
	if (!machine.ram_size || !machine.timebase_hz)
		panic("fdt: no memory or timebase-frequency");
}
