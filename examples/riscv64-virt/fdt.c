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
 *   .../pci@30000000   compatible "pci-host-ecam-generic": the PCIe host bridge. reg is its
 *                      ECAM window, bus-range the buses it decodes, ranges the windows
 *                      through which the CPU reaches I/O and memory BARs, interrupt-map
 *                      which PLIC source each device's INTA..INTD reaches (pci.c).
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

/* The properties of the node being read that are only understood at its end. */
struct props {
	const char *compatible;
	const uint8_t *reg, *ranges, *imap, *imask, *bus_range;
	uint32_t ranges_len, imap_len;
	uint32_t irq;
	uint32_t ac, sc; /* the parent's #address-cells and #size-cells, for reg */
	uint32_t own_ac; /* this node's #address-cells, for ranges and interrupt-map */
};

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

/*
 * A PCI host bridge (the PCI bus binding of Open Firmware, and Linux's
 * Documentation/devicetree/bindings/pci/host-generic-pci.yaml). A PCI address is 3 cells:
 * phys.hi holds the space (bits 24-25: 1 I/O, 2 32-bit memory, 3 64-bit memory) and the
 * device/function (bits 8-15), then 64 bits of address. Each ranges entry is a PCI address,
 * a CPU address (2 cells here) and a size (2 cells). Each interrupt-map entry is a PCI
 * address and pin, the interrupt controller's phandle, and its source number: 6 cells,
 * because the PLIC has #address-cells 0 and #interrupt-cells 1 (assumed, not looked up).
 */
static void pci_host(const struct props *n)
{
	struct pci_host *h = &machine.pci;
	if (!n->reg || n->own_ac != 3)
		return;
	h->ecam = cells(n->reg, n->ac);
	h->ecam_size = cells(n->reg + 4 * n->ac, n->sc);
	h->bus_start = n->bus_range ? (uint8_t)be32(n->bus_range) : 0;
	h->bus_end = n->bus_range ? (uint8_t)be32(n->bus_range + 4) : 255;
	for (uint32_t off = 0; off + 28 <= n->ranges_len; off += 28) {
		const uint8_t *r = n->ranges + off;
		uint32_t space = be32(r) >> 24 & 3;
		struct pci_window w = {cells(r + 4, 2), cells(r + 12, 2), cells(r + 20, 2)};
		if (space == 1)
			h->io = w;
		else if (space == 2)
			h->mem32 = w;
		else if (space == 3)
			h->mem64 = w;
	}
	h->imask_hi = n->imask ? be32(n->imask) : 0;
	h->imask_pin = n->imask ? be32(n->imask + 12) : 0;
	for (uint32_t off = 0; off + 24 <= n->imap_len && h->nintmap < MAX_INTMAP; off += 24) {
		const uint8_t *e = n->imap + off;
		h->intmap[h->nintmap++] = (struct pci_intmap){be32(e), be32(e + 12), be32(e + 20)};
	}
	h->present = true;
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
	struct props n = {0};
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
			n = (struct props){.ac = acells[depth - 1], .sc = scells[depth - 1]};
		} else if (tok == FDT_PROP) {
			uint32_t len = be32(p), nameoff = be32(p + 4);
			const uint8_t *v = p + 8;
			const char *prop = strings + nameoff, *in = node[depth];
			uint32_t ac = n.ac, sc = n.sc;
			p += 8 + ((len + 3) & ~3u);
			if (strcmp(prop, "#address-cells") == 0)
				acells[depth] = n.own_ac = be32(v);
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
				n.compatible = (const char *)v;
			else if (strcmp(prop, "reg") == 0)
				n.reg = v;
			else if (strcmp(prop, "interrupts") == 0)
				n.irq = be32(v);
			else if (strcmp(prop, "ranges") == 0)
				n.ranges = v, n.ranges_len = len;
			else if (strcmp(prop, "interrupt-map") == 0)
				n.imap = v, n.imap_len = len;
			else if (strcmp(prop, "interrupt-map-mask") == 0)
				n.imask = v;
			else if (strcmp(prop, "bus-range") == 0)
				n.bus_range = v;
		} else if (tok == FDT_END_NODE) {
			if (n.compatible && strcmp(n.compatible, "virtio,mmio") == 0 && n.reg &&
			    machine.nmmio < MAX_MMIO_SLOTS)
				machine.mmio[machine.nmmio++] = (struct mmio_slot){
				    cells(n.reg, n.ac), cells(n.reg + 4 * n.ac, n.sc), n.irq};
			else if (n.compatible && strcmp(n.compatible, "pci-host-ecam-generic") == 0)
				pci_host(&n);
			n = (struct props){0};
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
