/* A fake PCI segment: see fake_pci.h. */
#include "fake_pci.h"

#include <stdlib.h>
#include <string.h>
#include <vio/spec/pci.h>

static struct fake_pci_fn *find(struct fake_pci *pci, uint8_t bus, uint8_t dev, uint8_t fn)
{
	for (int i = 0; i < pci->nfns; i++) {
		struct fake_pci_fn *f = &pci->fns[i];
		if (f->present && f->bus == bus && f->dev == dev && f->fn == fn)
			return f;
	}
	return NULL;
}

void fake_pci_w8(struct fake_pci_fn *f, uint16_t off, uint8_t v)
{
	f->cfg[off] = v;
}

void fake_pci_w16(struct fake_pci_fn *f, uint16_t off, uint16_t v)
{
	memcpy(&f->cfg[off], &v, 2);
}

void fake_pci_w32(struct fake_pci_fn *f, uint16_t off, uint32_t v)
{
	memcpy(&f->cfg[off], &v, 4);
}

uint16_t fake_pci_r16(const struct fake_pci_fn *f, uint16_t off)
{
	uint16_t v;
	memcpy(&v, &f->cfg[off], 2);
	return v;
}

static uint32_t r32(const struct fake_pci_fn *f, uint16_t off)
{
	uint32_t v;
	memcpy(&v, &f->cfg[off], 4);
	return v;
}

static int bar_count(const struct fake_pci_fn *f)
{
	int type = f->cfg[0x0e] & 0x7f;
	return type == 0 ? 6 : type == 1 ? 2 : 0;
}

/* A 32-bit write to BAR slot i: keep only the address bits the BAR decodes. */
static void write_bar(struct fake_pci_fn *f, int i, uint32_t val)
{
	uint16_t off = (uint16_t)(0x10 + 4 * i);
	uint16_t cmd = fake_pci_r16(f, 0x04);

	f->bar_writes++;
	if (cmd & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)) {
		if (val == 0xffffffffu)
			f->sized_while_decoding = true;
		else
			f->moved_while_decoding = true;
	}
	if (f->bar_upper[i]) {
		uint64_t mask = ~(f->bar_size[i - 1] - 1);
		fake_pci_w32(f, off, val & (uint32_t)(mask >> 32));
		return;
	}
	uint64_t size = f->bar_size[i];
	if (!size) {
		fake_pci_w32(f, off, 0);
		return;
	}
	uint32_t flags = r32(f, off) & ((r32(f, off) & 1) ? 0x3 : 0xf);
	uint32_t keep = (uint32_t)~(size - 1) & ((flags & 1) ? ~0x3u : ~0xfu);
	fake_pci_w32(f, off, (val & keep) | flags);
}

static uint32_t cfg_read(struct fake_pci_fn *f, uint16_t off, int size)
{
	uint32_t v = 0;

	if (f->hooks.cfg_before_read)
		f->hooks.cfg_before_read(f->hooks.ctx, f, off, size);
	memcpy(&v, &f->cfg[off], (size_t)size);
	return v;
}

static void cfg_write(struct fake_pci_fn *f, uint16_t off, int size, uint32_t val)
{
	int nbars = bar_count(f);

	if (size == 4 && off >= 0x10 && off < 0x10 + 4 * nbars) {
		write_bar(f, (off - 0x10) / 4, val);
	} else if (off < 4 || (off >= 6 && off < 0x10 && off != 0x0c && off != 0x0d)) {
		/* ids, status, class and header type are read-only */
	} else {
		memcpy(&f->cfg[off], &val, (size_t)size);
	}
	if (f->hooks.cfg_after_write)
		f->hooks.cfg_after_write(f->hooks.ctx, f, off, size);
}

/* The function and I/O BAR a port number falls in. */
static struct fake_pci_fn *io_owner(struct fake_pci *pci, uint16_t port, int *bar, uint32_t *off)
{
	for (int i = 0; i < pci->nfns; i++) {
		struct fake_pci_fn *f = &pci->fns[i];
		for (int b = 0; f->present && b < 6; b++) {
			uint32_t raw = r32(f, (uint16_t)(0x10 + 4 * b));
			if (!f->bar_size[b] || f->bar_upper[b] || !(raw & 1))
				continue;
			uint32_t base = raw & 0xfffc;
			if (port >= base && port < base + f->bar_size[b]) {
				*bar = b;
				*off = port - base;
				return f;
			}
		}
	}
	return NULL;
}

static uint32_t all_ones(int size)
{
	return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffffu;
}

static uint32_t pci_io_in(void *ctx, uint16_t port, int size)
{
	struct fake_pci *pci = ctx;

	if (port == PCI_CONFIG_ADDRESS && size == 4)
		return pci->cf8;
	if (port >= PCI_CONFIG_DATA && port < PCI_CONFIG_DATA + 4) {
		if (!(pci->cf8 & PCI_CONFIG_ENABLE))
			return all_ones(size);
		struct fake_pci_fn *f = find(pci, (uint8_t)(pci->cf8 >> 16), (pci->cf8 >> 11) & 31,
					     (pci->cf8 >> 8) & 7);
		if (!f)
			return all_ones(size);
		return cfg_read(f, (uint16_t)((pci->cf8 & 0xfc) + (port - PCI_CONFIG_DATA)), size);
	}
	int bar;
	uint32_t off;
	struct fake_pci_fn *f = io_owner(pci, port, &bar, &off);
	if (f && f->hooks.io_read)
		return f->hooks.io_read(f->hooks.ctx, bar, off, size);
	return all_ones(size);
}

static void pci_io_out(void *ctx, uint16_t port, int size, uint32_t val)
{
	struct fake_pci *pci = ctx;

	if (port == PCI_CONFIG_ADDRESS && size == 4) {
		pci->cf8 = val;
		return;
	}
	if (port >= PCI_CONFIG_DATA && port < PCI_CONFIG_DATA + 4) {
		if (!(pci->cf8 & PCI_CONFIG_ENABLE))
			return;
		struct fake_pci_fn *f = find(pci, (uint8_t)(pci->cf8 >> 16), (pci->cf8 >> 11) & 31,
					     (pci->cf8 >> 8) & 7);
		if (f)
			cfg_write(f, (uint16_t)((pci->cf8 & 0xfc) + (port - PCI_CONFIG_DATA)), size,
				  val);
		return;
	}
	int bar;
	uint32_t off;
	struct fake_pci_fn *f = io_owner(pci, port, &bar, &off);
	if (f && f->hooks.io_write)
		f->hooks.io_write(f->hooks.ctx, bar, off, size, val);
}

void fake_pci_init(struct fake_pci *pci, struct fake_port *fp)
{
	/* No functions yet: fake_pci_add clears each one as it hands it out (4 KiB apiece). */
	pci->fp = fp;
	pci->cf8 = 0;
	pci->nfns = 0;
	pci->ecam = NULL;
	pci->ecam_len = 0;
	fp->io_ctx = pci;
	fp->io_in = pci_io_in;
	fp->io_out = pci_io_out;
}

void fake_pci_free(struct fake_pci *pci)
{
	free(pci->ecam);
	pci->ecam = NULL;
}

struct fake_pci_fn *fake_pci_add(struct fake_pci *pci, uint8_t bus, uint8_t dev, uint8_t fn,
				 uint16_t vendor, uint16_t device)
{
	if (pci->nfns >= FAKE_PCI_MAX_FNS)
		abort();
	struct fake_pci_fn *f = &pci->fns[pci->nfns++];
	memset(f, 0, sizeof(*f));
	f->present = true;
	f->bus = bus;
	f->dev = dev;
	f->fn = fn;
	fake_pci_w16(f, 0x00, vendor);
	fake_pci_w16(f, 0x02, device);
	fake_pci_w16(f, 0x04, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	return f;
}

void fake_pci_make_bridge(struct fake_pci_fn *f, uint8_t secondary, uint8_t subordinate)
{
	f->cfg[0x0e] = (f->cfg[0x0e] & 0x80) | PCI_HEADER_TYPE_BRIDGE;
	f->cfg[0x0b] = PCI_CLASS_BRIDGE;
	f->cfg[0x0a] = PCI_SUBCLASS_BRIDGE_PCI;
	f->cfg[0x18] = f->bus;
	f->cfg[0x19] = secondary;
	f->cfg[0x1a] = subordinate;
}

void fake_pci_set_multifunction(struct fake_pci_fn *f)
{
	f->cfg[0x0e] |= PCI_HEADER_TYPE_MULTIFUNCTION;
}

void fake_pci_set_bar(struct fake_pci_fn *f, int i, uint64_t phys, uint64_t size,
		      uint32_t flags)
{
	f->bar_size[i] = size;
	fake_pci_w32(f, (uint16_t)(0x10 + 4 * i), (uint32_t)phys | flags);
	if (flags & FAKE_BAR_MEM64) {
		f->bar_upper[i + 1] = true;
		fake_pci_w32(f, (uint16_t)(0x14 + 4 * i), (uint32_t)(phys >> 32));
	}
}

void fake_pci_add_cap(struct fake_pci_fn *f, uint8_t off, uint8_t id, uint8_t len)
{
	uint16_t status = fake_pci_r16(f, 0x06);
	uint8_t ptr_off = 0x34; /* Capabilities Pointer, same place in both header types */

	fake_pci_w16(f, 0x06, status | PCI_STATUS_CAP_LIST);
	memset(&f->cfg[off], 0, len);
	f->cfg[off] = id;
	f->cfg[off + 1] = 0;
	if (!f->cfg[ptr_off]) {
		f->cfg[ptr_off] = off;
		return;
	}
	uint8_t p = f->cfg[ptr_off];
	for (int n = 0; f->cfg[p + 1] && n < 64; n++)
		p = f->cfg[p + 1];
	f->cfg[p + 1] = off;
}

void fake_pci_build_ecam(struct fake_pci *pci, uint8_t last_bus)
{
	free(pci->ecam);
	pci->ecam_len = ((size_t)last_bus + 1) << 20;
	pci->ecam = malloc(pci->ecam_len);
	memset(pci->ecam, 0xff, pci->ecam_len);
	for (int i = 0; i < pci->nfns; i++) {
		struct fake_pci_fn *f = &pci->fns[i];
		if (!f->present || f->bus > last_bus)
			continue;
		size_t at = (size_t)f->bus << 20 | (size_t)f->dev << 15 | (size_t)f->fn << 12;
		memcpy(pci->ecam + at, f->cfg, 4096);
	}
}
