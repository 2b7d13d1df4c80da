/*
 * The machine: QEMU `virt` with a Cortex-A57 at EL1. An identity map with the MMU on (RAM
 * normal write-back, the low GiB of devices Device-nGnRE), the PL011 UART, the generic
 * timer, a GICv2, and power-off through PSCI. Addresses are virt's fixed memory map
 * (hw/arm/virt.c in QEMU; the device tree QEMU passes says the same).
 */
#include <vio/err.h>
#include <vio/format.h>
#include <vio/io.h>

#include "kernel.h"

#define UART		0x09000000ul /* PL011: data register at 0, flag register at 0x18 */
#define UART_FR_TXFF	(1u << 5)
#define GICD		0x08000000ul /* GICv2 distributor ... */
#define GICC		0x08010000ul /* ... and CPU interface */
#define PSCI_SYSTEM_OFF 0x84000008u

/*
 * Translation: 4 KiB granule, 32-bit input addresses (T0SZ = 32), so the walk starts at
 * level 1 with four 1 GiB blocks. MAIR index 0 is Device-nGnRE (0x04), index 1 normal
 * memory, write-back read/write-allocate inside and out (0xff).
 */
static uint64_t l1[4] __attribute__((aligned(4096)));

void mmu_init(void)
{
	const uint64_t block = 1, af = 1ull << 10, ish = 3ull << 8, xn = 3ull << 53;
	l1[0] = 0x00000000ull | block | af | (0ull << 2) | xn; /* devices, attr 0 */
	for (uint64_t i = 1; i < 4; i++)
		l1[i] = (i << 30) | block | af | ish | (1ull << 2); /* RAM, attr 1 */
	uint64_t tcr = 32 | (1ull << 8) | (1ull << 10) | (3ull << 12) | (1ull << 23);
	uint64_t sctlr;
	__asm__ volatile("msr mair_el1, %0" ::"r"(0xff04ull));
	__asm__ volatile("msr tcr_el1, %0" ::"r"(tcr)); /* IRGN0/ORGN0 WBWA, SH0 inner, EPD1 */
	__asm__ volatile("msr ttbr0_el1, %0" ::"r"((uint64_t)l1));
	__asm__ volatile("dsb ish; tlbi vmalle1; dsb ish; isb" ::: "memory");
	__asm__ volatile("mrs %0, sctlr_el1" : "=r"(sctlr));
	sctlr |= 1 | (1 << 2) | (1 << 12); /* M, C, I */
	sctlr &= ~(uint64_t)(1 << 1);	   /* no alignment faults */
	__asm__ volatile("msr sctlr_el1, %0; isb" ::"r"(sctlr) : "memory");
}

void uart_putc(char c)
{
	while (vio_mmio_read32((volatile void *)(UART + 0x18)) & UART_FR_TXFF)
		;
	vio_mmio_write32((volatile void *)UART, (uint8_t)c);
}

void kprintf(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vio_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (const char *p = line; *p; p++)
		uart_putc(*p);
}

/* The generic timer's virtual count, at CNTFRQ_EL0 ticks a second (62.5 MHz on QEMU). */
uint64_t now_ns(void)
{
	uint64_t cnt, frq;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(cnt));
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(frq));
	return cnt / frq * 1000000000ull + cnt % frq * 1000000000ull / frq;
}

void delay_us(uint32_t us)
{
	uint64_t end = now_ns() + us * 1000ull;
	while (now_ns() < end)
		;
}

/* --- interrupts: a GICv2, every SPI level-triggered, to CPU 0 -------------------------- */

#define MAX_HANDLERS 64
#define MAX_INTID    1020
static struct {
	uint32_t intid;
	vio_irq_handler fn;
	void *arg;
} handlers[MAX_HANDLERS];
static unsigned nhandlers;
static uint64_t counts[MAX_INTID];

static volatile void *reg(uint64_t base, uint64_t off)
{
	return (volatile void *)(base + off);
}

/*
 * MSI through the GICv2m frame QEMU virt puts beside a GICv2: a device writes an SPI's INTID
 * to MSI_SETSPI_NS (frame + 0x40) and that SPI fires once, edge-triggered. MSI_TYPER (frame
 * + 8) says which SPIs the frame owns: the first INTID in bits 25:16, the count in 9:0.
 */
#define GICV2M 0x08020000ul
static uint32_t msi_next, msi_end;

void gic_init(void)
{
	uint32_t typer = vio_mmio_read32(reg(GICV2M, 0x008));
	msi_next = typer >> 16 & 0x3ff;
	msi_end = msi_next + (typer & 0x3ff);
	vio_mmio_write32(reg(GICD, 0x000), 1);	  /* GICD_CTLR: forward interrupts */
	vio_mmio_write32(reg(GICC, 0x004), 0xff); /* GICC_PMR: let every priority through */
	vio_mmio_write32(reg(GICC, 0x000), 1);	  /* GICC_CTLR: signal them to the CPU */
}

static int attach(uint32_t intid, vio_irq_handler fn, void *arg, bool edge)
{
	if (intid < 32 || intid >= MAX_INTID || nhandlers == MAX_HANDLERS)
		return VIO_ENOTSUP; /* not an SPI this GIC has, or no room */
	handlers[nhandlers].intid = intid;
	handlers[nhandlers].fn = fn;
	handlers[nhandlers].arg = arg;
	nhandlers++;
	uint64_t cfg = 0xc00 + intid / 16 * 4; /* GICD_ICFGR: bit 1 of the field set: edge */
	uint32_t bit = 2u << (intid % 16 * 2);
	uint32_t v = vio_mmio_read32(reg(GICD, cfg));
	vio_mmio_write32(reg(GICD, cfg), edge ? v | bit : v & ~bit);
	vio_mmio_write8(reg(GICD, 0x400 + intid), 0xa0); /* GICD_IPRIORITYR */
	vio_mmio_write8(reg(GICD, 0x800 + intid), 1);	 /* GICD_ITARGETSR: CPU 0 */
	vio_mmio_write32(reg(GICD, 0x100 + intid / 32 * 4), 1u << (intid % 32)); /* ISENABLER */
	return 0;
}

int irq_attach(uint32_t intid, vio_irq_handler fn, void *arg)
{
	return attach(intid, fn, arg, false);
}

int msi_alloc(vio_irq_handler fn, void *arg, uint64_t *addr, uint32_t *data)
{
	if (msi_next >= msi_end)
		return VIO_ENOSPC;
	int err = attach(msi_next, fn, arg, true);
	if (err)
		return err;
	*addr = GICV2M + 0x040;
	*data = msi_next++;
	return 0;
}

/* Disable the SPI and forget its handler; the INTID is not handed out again. */
void msi_free(uint32_t intid)
{
	vio_mmio_write32(reg(GICD, 0x180 + intid / 32 * 4), 1u << (intid % 32)); /* ICENABLER */
	for (unsigned i = 0; i < nhandlers; i++)
		if (handlers[i].intid == intid)
			handlers[i] = handlers[--nhandlers];
}

uint32_t msi_next_intid(void)
{
	return msi_next;
}

uint64_t irq_count(uint32_t intid)
{
	return intid < MAX_INTID ? counts[intid] : 0;
}

/* Whether a device holds its line asserted now (GICD_ISPENDR shows a level-triggered
 * line's state whether or not the line is enabled). */
bool irq_pending(uint32_t intid)
{
	return vio_mmio_read32(reg(GICD, 0x200 + intid / 32 * 4)) >> (intid % 32) & 1;
}

/* Called from start.S with IRQs masked: acknowledge, run every handler on the line, EOI. */
void irq_dispatch(void)
{
	uint32_t iar = vio_mmio_read32(reg(GICC, 0x00c)); /* GICC_IAR */
	uint32_t intid = iar & 0x3ff;
	if (intid >= MAX_INTID)
		return; /* spurious */
	counts[intid]++;
	for (unsigned i = 0; i < nhandlers; i++)
		if (handlers[i].intid == intid)
			handlers[i].fn(handlers[i].arg);
	vio_mmio_write32(reg(GICC, 0x010), iar); /* GICC_EOIR */
}

void irq_window(void)
{
	__asm__ volatile("msr daifclr, #2; isb; nop; nop; msr daifset, #2" ::: "memory");
}

/* An exception the kernel did not expect: say what and where, and stop. */
void trap_fatal(uint64_t kind, const uint64_t *frame)
{
	uint64_t esr, far;
	__asm__ volatile("mrs %0, esr_el1" : "=r"(esr));
	__asm__ volatile("mrs %0, far_el1" : "=r"(far));
	kprintf("panic: exception %s esr=0x%lx elr=0x%lx far=0x%lx\n",
		kind == 0 ? "sync" : "unexpected", (unsigned long)esr, (unsigned long)frame[21],
		(unsigned long)far);
	power_off();
}

void power_off(void)
{
	register uint64_t x0 __asm__("x0") = PSCI_SYSTEM_OFF;
	__asm__ volatile("hvc #0" : "+r"(x0)::"memory");
	for (;;)
		__asm__ volatile("wfi");
}
