/*
 * BAR assignment: give every BAR on a host bridge's first bus an address in the bridge's
 * windows, as a PC's firmware does before the kernel runs (and U-Boot and Linux do on boards
 * where nothing did). QEMU virt on riscv64 exercises it: OpenSBI leaves every PCIe function
 * as reset left it, BARs at 0 and decoding off.
 *
 *   qemu-system-riscv64 -M virt -device virtio-rng-pci -device virtio-blk-pci,...
 *
 * A BAR decodes a power-of-two range aligned to its size (PCI 3.0 6.2.5.1). Placing the
 * largest BARs first makes every later, smaller one land aligned right after the previous,
 * so nothing is lost between them. Sorting needs a list of every BAR, which we would have to
 * keep somewhere; instead we walk the bus once per BAR size present, largest size first,
 * placing that size's BARs each time. A bus has a handful of sizes, so a handful of walks.
 *
 * The walks reuse vio_pci_enumerate, which sizes every BAR (bar.c). The sizes come from the
 * functions and are not trusted: one claiming 2^63 bytes must fail to fit, not wrap an
 * address around to a small number, so every cursor counts the bytes left in its window and
 * is never moved past them.
 *
 *   survey   every function of the first bus: decoding off, note which BAR sizes exist
 *   place    once per size, largest first: that size's BARs get an address each
 *   enable   decoding on (where every BAR fitted) and the Interrupt Line written
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/log.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>

#define HDR(field) offsetof(struct pci_header_type0, field)

/* I/O ports below this are the ISA devices' on a PC; no BAR is put there. */
#define ISA_IO_END 0x1000

#define FOUR_GIB (1ull << 32)

/* Where the next BAR goes in one window. */
struct cursor {
	uint64_t next; /* lowest free bus address */
	uint64_t left; /* bytes from next to the end of the window */
};

enum stage { SURVEY, PLACE, ENABLE };

/* What became of one function of the first bus: bit i, BAR i got an address; FAILED. */
#define FAILED 0x80

struct assign {
	const struct vio_port *port;
	uint8_t root; /* the host bridge's first bus */
	enum stage stage;
	uint64_t size;	/* PLACE: the BAR size this walk places */
	uint64_t sizes; /* SURVEY: every BAR size seen, OR-ed (bar.c makes each a power of two) */
	struct cursor io, mem32, mem64;
	uint8_t fns[PCI_MAX_DEVICES * PCI_MAX_FUNCTIONS];
	int assigned;
	int nfailed;
	vio_pci_intx_fn intx_line;
	void *arg;
};

static uint8_t *state_of(struct assign *a, const struct vio_pci_dev *dev)
{
	return &a->fns[dev->dev * PCI_MAX_FUNCTIONS + dev->fn];
}

/* The part of window `w` at or above bus address `lowest`. */
static struct cursor cursor_for(const struct vio_pci_window *w, uint64_t lowest)
{
	uint64_t skip = lowest > w->base ? lowest - w->base : 0;

	if (skip >= w->size)
		return (struct cursor){0};
	return (struct cursor){w->base + skip, w->size - skip};
}

/* Take `size` bytes (a power of two) aligned to `size`; false when the window has no room. */
static bool take(struct cursor *c, uint64_t size, uint64_t *at)
{
	uint64_t pad = (size - (c->next & (size - 1))) & (size - 1);

	if (pad > c->left || size > c->left - pad)
		return false;
	*at = c->next + pad;
	c->next = *at + size;
	c->left -= pad + size;
	return true;
}

static const char *bar_kind(const struct vio_pci_bar *b)
{
	return b->is_io ? "I/O" : b->is64 ? "64-bit memory" : "32-bit memory";
}

/* Give up on the function: it keeps decoding off (the survey turned it off). */
static void fail(struct assign *a, const struct vio_pci_dev *dev, unsigned i, const char *why)
{
	char bdf[16];
	const struct vio_pci_bar *b = &dev->bars[i];

	vio_logf(a->port, VIO_LOG_ERR,
		 "pci %s: BAR %u (%s, %llu bytes) %s; the function stays "
		 "disabled",
		 vio_pci_bdf(dev, bdf, sizeof(bdf)), i, bar_kind(b), (unsigned long long)b->size,
		 why);
	*state_of(a, dev) |= FAILED;
	a->nfailed++;
}

static void place(struct assign *a, struct vio_pci_dev *dev, unsigned i)
{
	const struct vio_pci_bar *b = &dev->bars[i];
	uint16_t reg = (uint16_t)(HDR(bar) + 4 * i);
	uint64_t at;
	bool ok;

	if (b->is_io)
		ok = take(&a->io, b->size, &at);
	else if (b->is64)
		ok = take(&a->mem64, b->size, &at) || take(&a->mem32, b->size, &at);
	else
		ok = take(&a->mem32, b->size, &at);
	if (!ok) {
		fail(a, dev, i, "fits in no host bridge window");
		return;
	}
	vio_pci_write32(dev, reg, (uint32_t)at);
	if (b->is64)
		vio_pci_write32(dev, (uint16_t)(reg + 4), (uint32_t)(at >> 32));
	*state_of(a, dev) |= (uint8_t)(1u << i);
	a->assigned++;
}

static void enable(struct assign *a, struct vio_pci_dev *dev)
{
	uint16_t decode = 0;

	for (unsigned i = 0; i < VIO_PCI_MAX_BARS; i++) {
		if (!dev->bars[i].size)
			continue;
		/* Sized anew on every walk: a BAR may now claim a size no walk placed. */
		if (!(*state_of(a, dev) & (1u << i))) {
			fail(a, dev, i, "changed its size while being assigned");
			return;
		}
		decode |= dev->bars[i].is_io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
	}
	vio_pci_set_command(dev, decode, 0);
	if (a->intx_line && dev->irq_pin)
		vio_pci_write8(dev, HDR(interrupt_line), a->intx_line(a->arg, dev));
}

static int visit(struct vio_pci_dev *dev, void *arg)
{
	struct assign *a = arg;
	char bdf[16];

	if (dev->busno != a->root)
		return 0;
	if (dev->header_type == PCI_HEADER_TYPE_BRIDGE) {
		if (a->stage == SURVEY)
			vio_logf(a->port, VIO_LOG_WARN,
				 "pci %s: a bridge; the buses behind it are left unassigned",
				 vio_pci_bdf(dev, bdf, sizeof(bdf)));
		return 0;
	}
	if (dev->header_type != PCI_HEADER_TYPE_NORMAL || (*state_of(a, dev) & FAILED))
		return 0;
	switch (a->stage) {
	case SURVEY:
		/* No half-programmed BAR may decode while we work (PCI 3.0 6.2.2). */
		vio_pci_set_command(dev, 0, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
		for (unsigned i = 0; i < VIO_PCI_MAX_BARS; i++)
			a->sizes |= dev->bars[i].size;
		break;
	case PLACE:
		for (unsigned i = 0; i < VIO_PCI_MAX_BARS && !(*state_of(a, dev) & FAILED); i++)
			if (dev->bars[i].size == a->size && !(*state_of(a, dev) & (1u << i)))
				place(a, dev, i);
		break;
	case ENABLE:
		enable(a, dev);
		break;
	}
	return 0;
}

/* A window wraps past 2^64, or one that must stay below 4 GiB does not. */
static bool window_bad(const struct vio_pci_window *w, bool below_4g)
{
	if (!w->size)
		return false;
	if (w->size - 1 > UINT64_MAX - w->base)
		return true;
	return below_4g && w->base + (w->size - 1) >= FOUR_GIB;
}

int vio_pci_assign(struct vio_pci_bus *bus, const struct vio_pci_windows *win,
		   vio_pci_intx_fn intx_line, void *arg)
{
	if (!bus || !win || window_bad(&win->io, true) || window_bad(&win->mem32, true) ||
	    window_bad(&win->mem64, false))
		return VIO_EINVAL;
	struct assign a = {
	    .port = bus->port,
	    .root = bus->use_ecam ? bus->ecam.bus_start : 0,
	    .stage = SURVEY,
	    .io = cursor_for(&win->io, ISA_IO_END),
	    .mem32 = cursor_for(&win->mem32, 0),
	    .mem64 = cursor_for(&win->mem64, 0),
	    .intx_line = intx_line,
	    .arg = arg,
	};
	bus->windows = *win;

	vio_pci_enumerate(bus, visit, &a);
	a.stage = PLACE;
	for (uint64_t size = 1ull << 63; size; size >>= 1) {
		if (!(a.sizes & size))
			continue;
		a.size = size;
		vio_pci_enumerate(bus, visit, &a);
	}
	a.stage = ENABLE;
	vio_pci_enumerate(bus, visit, &a);
	return a.nfailed ? VIO_ENOSPC : a.assigned;
}
