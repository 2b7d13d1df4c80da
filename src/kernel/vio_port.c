/*
 * vio_port.c: how this kernel gives the vio library what include/vio/port.h asks for.
 * It is the only file that knows both sides, and a template for porting vio elsewhere
 * (docs/porting.md walks through it).
 *
 *   DMA memory     contiguous runs from the page allocator; identity mapping, so the
 *                  physical address is the pointer
 *   private memory the kernel heap (newlib's calloc)
 *   MMIO           mmio_map: uncached, and never over RAM (a BAR can say anything)
 *   interrupts     MSI-X: a free IDT vector and the LAPIC message for it;
 *                  INTx: the IOAPIC input named by the Interrupt Line register (what the
 *                  firmware programmed), once ioapic_pci_line has checked it against ACPI;
 *                  platform lines (virtio-mmio): the IOAPIC input (GSI) the kernel found
 *                  the device with. Both level-triggered, active high, one IDT vector per
 *                  input shared by every device on it
 *   storms         each vector gets a silencer (trap.c calls it when the vector fires far
 *                  more often than any device has work for): MSI-X masks the table entry
 *                  that sends it, a line masks its IOAPIC input; and a resumer, which
 *                  unmasks it when trap.c's back-off is over. msix_may_unmask tells the
 *                  library not to unmask an entry whose vector is still cut off
 */
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <kernel/vio_port.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>

static unsigned long dma_pages;

/* A broken invariant of the library's own (built with `make DEBUG=1`): a bug, so panic. */
void vio_assert_failed(const char *expr, const char *file, unsigned line)
{
	panic("vio assertion failed: %s (%s:%u)", expr, file, line);
}

static void *port_dma_alloc(void *ctx, size_t bytes, uint64_t *phys)
{
	(void)ctx;
	size_t pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
	uint64_t pa = pmm_alloc(pages ? pages : 1, 1);
	if (!pa)
		return NULL;
	memset((void *)(uintptr_t)pa, 0, pages * PAGE_SIZE);
	dma_pages += pages;
	*phys = pa;
	return (void *)(uintptr_t)pa;
}

static void port_dma_free(void *ctx, void *virt, size_t bytes)
{
	(void)ctx;
	size_t pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
	if (!virt)
		return;
	pmm_free((uint64_t)(uintptr_t)virt, pages ? pages : 1);
	dma_pages -= pages;
}

/*
 * vio's bookkeeping comes from the kernel heap, apart from the DMA pages. Every page of RAM
 * is reachable by a device here (no IOMMU), so this only keeps the two kinds apart in the
 * accounting; in a confidential guest this is where memory not shared with the host would
 * come from.
 */
static void *port_priv_alloc(void *ctx, size_t bytes)
{
	(void)ctx;
	return calloc(1, bytes ? bytes : 1);
}

static void port_priv_free(void *ctx, void *p, size_t bytes)
{
	(void)ctx, (void)bytes;
	free(p);
}

/*
 * This kernel's half of the library's concurrency rule (include/vio/port.h): it completes
 * requests in interrupt handlers, so every call it makes from thread context runs with
 * interrupts off (DEV_CALL), and a device's handler never runs in the middle of a call on the
 * same device. Every buffer the library posts passes through virt_to_phys, so a thread call
 * made with interrupts on is caught here: the first one is logged with a backtrace (the
 * QEMU tests fail on that line). Breaking the rule corrupts a driver only when the interrupt
 * lands inside the call: the console's control FIFO count once wrapped that way and the
 * device was fed the same messages 47,000 times.
 */
static bool unmasked_seen;

static void check_masked_call(uint64_t rip, uint64_t rbp)
{
	if (!irqs_enabled() || in_interrupt() || unmasked_seen)
		return;
	unmasked_seen = true;
	kprintf("vio: kernel bug: a vio call from thread context with interrupts on\n");
	backtrace_print(rip, rbp);
}

static uint64_t port_virt_to_phys(void *ctx, const void *virt)
{
	(void)ctx;
	/* Our caller's return address and frame (the kernel builds with frame pointers). */
	const uint64_t *frame = __builtin_frame_address(0);
	check_masked_call((uint64_t)(uintptr_t)__builtin_return_address(0), frame[0]);
	return (uint64_t)(uintptr_t)virt;
}

static volatile void *port_map_mmio(void *ctx, uint64_t phys, size_t len)
{
	(void)ctx;
	return mmio_map(phys, len);
}

static uint8_t port_inb(void *c, uint16_t p) { (void)c; return inb(p); }
static uint16_t port_inw(void *c, uint16_t p) { (void)c; return inw(p); }
static uint32_t port_inl(void *c, uint16_t p) { (void)c; return inl(p); }
static void port_outb(void *c, uint16_t p, uint8_t v) { (void)c; outb(p, v); }
static void port_outw(void *c, uint16_t p, uint16_t v) { (void)c; outw(p, v); }
static void port_outl(void *c, uint16_t p, uint32_t v) { (void)c; outl(p, v); }

static uint64_t port_now_ns(void *ctx)
{
	(void)ctx;
	return clock_ns();
}

static void port_delay_us(void *ctx, uint32_t us)
{
	(void)ctx;
	sleep_us(us);
}

static void port_log(void *ctx, enum vio_log_level level, const char *line)
{
	static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
	(void)ctx;
	if ((int)level <= kernel_log_level)
		kprintf("vio: %s%s\n", prefix[level & 3], line);
}

/*
 * Entry `i` of a function's MSI-X table, where the library mapped it (identity), or NULL.
 * An entry is four words: message address low and high, data, vector control (PCI 3.0
 * 6.8.2). This kernel's messages go to 0xfee00000 with the IDT vector in the data's low
 * byte (msi_message).
 */
static volatile uint32_t *msix_entry(const struct vio_pci_dev *f, uint16_t i)
{
	const struct vio_pci_msix *m = &f->msix;
	if (!m->cap || i >= m->table_size || m->table_bar >= VIO_PCI_MAX_BARS)
		return NULL;
	const struct vio_pci_bar *bar = &f->bars[m->table_bar];
	uint64_t off = m->table_offset + (uint64_t)i * 16, pte, size;
	if (bar->is_io || off + 16 > bar->size || !paging_lookup(bar->phys + off, &pte, &size))
		return NULL;
	return (volatile uint32_t *)(uintptr_t)(bar->phys + off);
}

#define MSIX_CTRL_MASKED 1u /* vector control: this entry sends nothing */

static bool msix_targets(volatile uint32_t *e, int vector)
{
	return (e[0] & 0xfff00000u) == 0xfee00000u && (e[2] & 0xff) == (uint32_t)vector;
}

/* Mask or unmask every table entry that sends `vector`, on whichever function. */
static void msix_set_masked(int vector, bool masked)
{
	for (int i = 0; i < n_pci_functions; i++) {
		const struct vio_pci_dev *f = &pci_functions[i];
		for (uint16_t e = 0; e < f->msix.table_size; e++) {
			volatile uint32_t *ent = msix_entry(f, e);
			if (ent && msix_targets(ent, vector))
				ent[3] = masked ? ent[3] | MSIX_CTRL_MASKED : ent[3] & ~MSIX_CTRL_MASKED;
		}
	}
}

/* A storm on an MSI-X vector: mask the table entry that sends it; its back-off over, unmask. */
static void msix_silence(int vector, void *arg)
{
	(void)arg;
	msix_set_masked(vector, true);
}

static void msix_resume(int vector, void *arg)
{
	(void)arg;
	msix_set_masked(vector, false);
}

/* The library asks before it unmasks an entry: not while trap.c holds its vector cut off. */
static bool port_msix_may_unmask(void *ctx, uint64_t addr, uint32_t data)
{
	(void)ctx, (void)addr;
	return !irq_stormed((int)(data & 0xff));
}

static int port_msix_alloc(void *ctx, vio_irq_handler handler, void *arg, uint64_t *addr,
			   uint32_t *data)
{
	(void)ctx;
	int vec = irq_alloc_vector(handler, arg);
	if (vec < 0)
		return VIO_ENOSPC; /* out of IDT vectors */
	irq_set_silencer(vec, msix_silence, NULL);
	irq_set_resumer(vec, msix_resume);
	msi_message((uint8_t)vec, addr, data);
	return 0;
}

static void port_msix_free(void *ctx, uint64_t addr, uint32_t data)
{
	(void)ctx, (void)addr;
	irq_free_vector((int)(data & 0xff));
}

/*
 * Interrupt lines routed so far: IOAPIC input (GSI) -> IDT vector. Both kinds of line vio
 * asks for, PCI INTx and virtio-mmio, are level-triggered and active high on the machines
 * we run on (QEMU's PCI link devices and microvm's virtio-mmio slots declare them so), and
 * may be shared: devices on one GSI share its vector's handler chain.
 */
#define MAX_LINES 32
static struct {
	uint32_t gsi;
	int vector;
} lines[MAX_LINES];
static int nlines;

/* A storm on a line: mask its IOAPIC input; every device on it is polled until trap.c's
 * back-off is over and line_resume unmasks it. */
static void line_silence(int vector, void *arg)
{
	(void)vector;
	ioapic_mask_gsi((uint32_t)(uintptr_t)arg);
}

static void line_resume(int vector, void *arg)
{
	(void)vector;
	ioapic_unmask_gsi((uint32_t)(uintptr_t)arg);
}

static int attach_level_line(uint32_t gsi, bool active_low, vio_irq_handler handler, void *arg)
{
	for (int i = 0; i < nlines; i++)
		if (lines[i].gsi == gsi)
			return irq_add_handler(lines[i].vector, handler, arg) ? VIO_ENOSPC : 0;
	if (nlines == MAX_LINES)
		return VIO_ENOSPC;
	int vec = irq_alloc_vector(handler, arg);
	if (vec < 0)
		return VIO_ENOSPC;
	irq_set_silencer(vec, line_silence, (void *)(uintptr_t)gsi);
	irq_set_resumer(vec, line_resume);
	if (ioapic_route_gsi(gsi, (uint8_t)vec, true, active_low)) {
		irq_free_vector(vec);
		return VIO_ENOTSUP; /* no IOAPIC input with that number */
	}
	lines[nlines].gsi = gsi;
	lines[nlines].vector = vec;
	nlines++;
	return 0;
}

/*
 * Test hook, for QEMU scenarios only: vio.test.intx_line=N[,N...] makes the k-th INTx
 * attach see line N instead of the function's Interrupt Line register (the last N repeats),
 * so a scenario can play firmware or a device that names a bad line.
 */
static uint8_t test_intx_line(uint8_t line)
{
	static char list[64];
	static bool read;
	static char *next;
	if (!read) {
		read = true;
		next = cmdline_get("vio.test.intx_line", list, sizeof(list)) ? list : NULL;
	}
	if (!next)
		return line;
	char *end;
	unsigned long v = strtoul(next, &end, 0);
	if (*end == ',')
		next = end + 1;
	return (uint8_t)v;
}

/* INTx: the firmware wrote the input the function's pin is wired to in Interrupt Line. A
 * line ACPI does not allow for PCI is refused: the device is then polled. */
static int port_intx_attach(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
			    uint8_t pin, uint8_t line, vio_irq_handler handler, void *arg)
{
	(void)ctx;
	if (pin == 0 || pin > 4 || line == 0 || line == 0xff)
		return VIO_ENOTSUP; /* no legacy interrupt routed by the firmware */
	line = test_intx_line(line);
	uint32_t gsi;
	bool active_low;
	const char *why = ioapic_pci_line(line, &gsi, &active_low);
	if (why) {
		kprintf("vio: %04x:%02x:%02x.%x: INTx line %u refused: %s; the device is polled\n",
			seg, bus, dev, fn, line, why);
		return VIO_ENOTSUP;
	}
	return attach_level_line(gsi, active_low, handler, arg);
}

/* A platform line (virtio-mmio on microvm): the number is the GSI. */
static int port_platform_irq_attach(void *ctx, uint32_t irq, vio_irq_handler handler, void *arg)
{
	(void)ctx;
	return attach_level_line(irq, false, handler, arg);
}

const struct vio_port kernel_vio_port = {
	.ctx = NULL,
	.dma_alloc = port_dma_alloc,
	.dma_free = port_dma_free,
	.priv_alloc = port_priv_alloc,
	.priv_free = port_priv_free,
	.virt_to_phys = port_virt_to_phys,
	.map_mmio = port_map_mmio,
	.inb = port_inb,
	.inw = port_inw,
	.inl = port_inl,
	.outb = port_outb,
	.outw = port_outw,
	.outl = port_outl,
	.now_ns = port_now_ns,
	.delay_us = port_delay_us,
	.log = port_log,
	.msix_alloc = port_msix_alloc,
	.msix_free = port_msix_free,
	.msix_may_unmask = port_msix_may_unmask,
	.intx_attach = port_intx_attach,
	.platform_irq_attach = port_platform_irq_attach,
};

unsigned long vio_port_dma_pages(void)
{
	return dma_pages;
}

/* The vector routed to `gsi`, or -1. */
static int line_vector(uint32_t gsi)
{
	for (int i = 0; i < nlines; i++)
		if (lines[i].gsi == gsi)
			return lines[i].vector;
	return -1;
}

void vio_port_set_silenced(const struct vio_pci_dev *f, uint16_t nentries, bool silenced)
{
	if (f->msix.cap && (vio_pci_read16(f, f->msix.cap + 2) & 0x8000)) { /* MSI-X Enable */
		for (uint16_t e = 0; e < f->msix.table_size && e < nentries; e++) {
			volatile uint32_t *ent = msix_entry(f, e);
			if (!ent || (ent[0] & 0xfff00000u) != 0xfee00000u)
				continue;
			if (silenced)
				ent[3] |= MSIX_CTRL_MASKED;
			else if (!irq_stormed((int)(ent[2] & 0xff))) /* trap.c's to unmask */
				ent[3] &= ~MSIX_CTRL_MASKED;
		}
		return;
	}
	uint32_t gsi;
	bool active_low;
	if (!ioapic_pci_line(f->irq_line, &gsi, &active_low))
		vio_port_set_line_silenced(gsi, silenced);
}

void vio_port_set_line_silenced(uint32_t gsi, bool silenced)
{
	if (silenced)
		ioapic_mask_gsi(gsi);
	else if (!irq_stormed(line_vector(gsi))) /* trap.c's to unmask */
		ioapic_unmask_gsi(gsi);
}

int vio_port_irq_vector(const struct vio_pci_dev *f, bool *masked)
{
	if (f->msix.cap && (vio_pci_read16(f, f->msix.cap + 2) & 0x8000)) { /* MSI-X Enable */
		for (uint16_t e = f->msix.table_size; e-- > 0;) {
			volatile uint32_t *ent = msix_entry(f, e);
			if (ent && (ent[0] & 0xfff00000u) == 0xfee00000u && (ent[2] & 0xff)) {
				*masked = ent[3] & MSIX_CTRL_MASKED;
				return (int)(ent[2] & 0xff);
			}
		}
		return -1;
	}
	uint32_t gsi;
	bool active_low;
	if (ioapic_pci_line(f->irq_line, &gsi, &active_low))
		return -1;
	*masked = ioapic_gsi_masked(gsi);
	return line_vector(gsi);
}
