/*
 * apic.c: the interrupt controllers.
 *
 * The 8259 PICs come up delivering IRQs on vectors 0x08-0x0f, which collide with CPU
 * exceptions. We remap them to 0x20-0x2f anyway (a spurious PIC interrupt then lands on a
 * harmless vector) and mask every line: the local APIC and the IOAPIC do the real work.
 * The IOAPIC has one redirection entry per global system interrupt (GSI); the MADT's
 * interrupt source overrides say which GSI an ISA IRQ arrived on (IRQ 0 is usually GSI 2)
 * and its polarity/trigger. PCI INTx lines are level-triggered; MSI/MSI-X bypass the
 * IOAPIC entirely by writing straight to the LAPIC (msi_message()).
 *
 * Which input a PCI function interrupts on is what its Interrupt Line register says, and
 * that is only as good as whoever wrote it: ioapic_pci_line() checks it against what ACPI
 * declares before anything is routed (a line of 4 would take COM1's input away).
 */
#include <kernel/acpi.h>
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define LAPIC_ID 0x20
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_SELF (1u << 18) /* destination shorthand: this CPU; fixed, edge */
#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOAPIC_VER 0x01
#define IOAPIC_REDTBL(n) (0x10 + 2 * (n))
#define RED_MASKED (1u << 16)
#define RED_LEVEL (1u << 15)
#define RED_ACTIVE_LOW (1u << 13)
/* Without a MADT (QEMU's microvm with acpi=off has no ACPI at all), the one IOAPIC of a PC
 * sits at this fixed address with GSI base 0: the MP specification's default configuration. */
#define IOAPIC_PC_ADDR 0xfec00000u

static volatile uint32_t *lapic;
struct ioapic {
	volatile uint32_t *regs;
	uint32_t gsi_base, n_pins;
};
static struct ioapic ioapics[ACPI_MAX_IOAPICS];
static int n_ioapics;
/* GSIs routed for the kernel's own ISA devices (COM1): never a PCI function's. */
static uint32_t isa_routed[16];
static int n_isa_routed;

static void pic_disable(void)
{
	outb(PIC1_CMD, 0x11); /* ICW1: init, expect ICW4 */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, 0x20); /* ICW2: vector offsets */
	outb(PIC2_DATA, 0x28);
	outb(PIC1_DATA, 4); /* ICW3: slave on IRQ2 */
	outb(PIC2_DATA, 2);
	outb(PIC1_DATA, 1); /* ICW4: 8086 mode */
	outb(PIC2_DATA, 1);
	outb(PIC1_DATA, 0xff); /* mask everything */
	outb(PIC2_DATA, 0xff);
}

uint32_t lapic_read(uint32_t reg) { return lapic[reg / 4]; }
void lapic_write(uint32_t reg, uint32_t val) { lapic[reg / 4] = val; }
void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
void lapic_self_ipi(uint8_t vector) { lapic_write(LAPIC_ICR_LO, LAPIC_ICR_SELF | vector); }
uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

/* A register is a select then a window access: no interrupt handler (a storm's silencer
 * masks an entry) may come between the two. */
static uint32_t ioapic_read(struct ioapic *io, uint32_t reg)
{
	uint64_t flags = irq_save();
	io->regs[IOREGSEL / 4] = reg;
	uint32_t val = io->regs[IOWIN / 4];
	irq_restore(flags);
	return val;
}

static void ioapic_write(struct ioapic *io, uint32_t reg, uint32_t val)
{
	uint64_t flags = irq_save();
	io->regs[IOREGSEL / 4] = reg;
	io->regs[IOWIN / 4] = val;
	irq_restore(flags);
}

/* The IOAPIC with input `gsi`, and the pin on it; NULL when there is none. */
static struct ioapic *ioapic_of(uint32_t gsi, uint32_t *pin)
{
	for (int i = 0; i < n_ioapics; i++) {
		struct ioapic *io = &ioapics[i];
		if (gsi >= io->gsi_base && gsi < io->gsi_base + io->n_pins) {
			*pin = gsi - io->gsi_base;
			return io;
		}
	}
	return NULL;
}

/*
 * Map an IOAPIC and mask all its inputs. Its version register must look like one (version
 * 0x1x or 0x2x, fewer than 240 inputs), or nothing is there.
 */
static bool add_ioapic(uint32_t addr, uint32_t gsi_base)
{
	struct ioapic *io = &ioapics[n_ioapics];
	if (n_ioapics == ACPI_MAX_IOAPICS || !(io->regs = mmio_map(addr, 4096)))
		return false;
	uint32_t ver = ioapic_read(io, IOAPIC_VER);
	if ((ver & 0xff) < 0x10 || (ver & 0xff) > 0x2f || ((ver >> 16) & 0xff) >= 240)
		return false;
	io->gsi_base = gsi_base;
	io->n_pins = ((ver >> 16) & 0xff) + 1;
	for (uint32_t pin = 0; pin < io->n_pins; pin++) {
		ioapic_write(io, IOAPIC_REDTBL(pin), RED_MASKED);
		ioapic_write(io, IOAPIC_REDTBL(pin) + 1, 0);
	}
	n_ioapics++;
	return true;
}

void apic_init(void)
{
	pic_disable();
	uint64_t base = acpi.lapic_addr ? acpi.lapic_addr : (rdmsr(0x1b) & ~0xfffull);
	lapic = mmio_map(base, 4096);
	if (!lapic)
		panic("apic: cannot map the local APIC at %#llx", (unsigned long long)base);
	wrmsr(0x1b, rdmsr(0x1b) | (1u << 11)); /* IA32_APIC_BASE: global enable */
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100 | APIC_SPURIOUS_VECTOR); /* software enable */

	for (int i = 0; i < acpi.n_ioapics; i++)
		add_ioapic(acpi.ioapic[i].addr, acpi.ioapic[i].gsi_base);
	if (!acpi.have_madt && add_ioapic(IOAPIC_PC_ADDR, 0))
		kprintf("apic: no MADT; the IOAPIC at the PC's address %#x answers (GSI 0-%u)\n",
			IOAPIC_PC_ADDR, ioapics[0].n_pins - 1);
	if (!n_ioapics)
		kprintf("apic: no IOAPIC; only MSI/MSI-X interrupts will work\n");
}

int ioapic_route_gsi(uint32_t gsi, uint8_t vector, bool level, bool active_low)
{
	uint32_t pin;
	struct ioapic *io = ioapic_of(gsi, &pin);
	if (!io)
		return -1;
	ioapic_write(io, IOAPIC_REDTBL(pin) + 1, lapic_id() << 24);
	ioapic_write(io, IOAPIC_REDTBL(pin),
		     vector | (level ? RED_LEVEL : 0) | (active_low ? RED_ACTIVE_LOW : 0));
	return 0;
}

static void set_gsi_masked(uint32_t gsi, bool masked)
{
	uint32_t pin;
	struct ioapic *io = ioapic_of(gsi, &pin);
	if (!io)
		return;
	uint64_t flags = irq_save();
	uint32_t red = ioapic_read(io, IOAPIC_REDTBL(pin));
	ioapic_write(io, IOAPIC_REDTBL(pin), masked ? red | RED_MASKED : red & ~RED_MASKED);
	irq_restore(flags);
}

void ioapic_mask_gsi(uint32_t gsi) { set_gsi_masked(gsi, true); }
void ioapic_unmask_gsi(uint32_t gsi) { set_gsi_masked(gsi, false); }

bool ioapic_gsi_masked(uint32_t gsi)
{
	uint32_t pin;
	struct ioapic *io = ioapic_of(gsi, &pin);
	return !io || (ioapic_read(io, IOAPIC_REDTBL(pin)) & RED_MASKED);
}

/* Where ISA IRQ `irq` arrives: its override's GSI and flags, else the same number, edge,
 * active high (the ISA default). True when an override names it. */
static bool isa_gsi(uint8_t irq, uint32_t *gsi, bool *level, bool *active_low)
{
	*gsi = irq;
	*level = *active_low = false;
	for (int i = 0; i < acpi.n_isos; i++) {
		if (acpi.iso[i].source != irq)
			continue;
		*gsi = acpi.iso[i].gsi;
		uint16_t pol = acpi.iso[i].flags & 3, trig = (acpi.iso[i].flags >> 2) & 3;
		*active_low = pol == 3;
		*level = trig == 3;
		return true;
	}
	return false;
}

int ioapic_route_isa(uint8_t irq, uint8_t vector)
{
	uint32_t gsi;
	bool level, active_low;
	isa_gsi(irq, &gsi, &level, &active_low);
	if (ioapic_route_gsi(gsi, vector, level, active_low))
		return -1;
	if (n_isa_routed < (int)ARRAY_SIZE(isa_routed))
		isa_routed[n_isa_routed++] = gsi;
	return 0;
}

/*
 * NULL, or why `gsi` is the kernel's own input and no device may have it: COM1's, where the
 * timer (ISA IRQ 0) arrives, and the two a PC wires whatever the MADT says: input 0 to the
 * 8259 PIC, input 2 to the timer (QEMU's override of IRQ 0 says so too).
 */
static const char *kernel_input(uint32_t gsi)
{
	uint32_t timer;
	bool level, active_low;
	for (int i = 0; i < n_isa_routed; i++)
		if (isa_routed[i] == gsi)
			return "the kernel's own ISA device (COM1) is on that input";
	isa_gsi(0, &timer, &level, &active_low);
	if (gsi == timer)
		return "the timer (ISA IRQ 0) arrives on that input";
	if (gsi == 0 || gsi == 2)
		return "a PC wires the 8259 PIC (input 0) or the timer (input 2) there";
	return NULL;
}

/*
 * Without an AML interpreter the kernel cannot read the _PRT, ACPI's table of where each
 * PCI pin is wired, so it goes by what the MADT declares:
 *  - a line below 16 is an ISA IRQ, and PCI may share one only when an interrupt source
 *    override declares it level-triggered: that is how firmware marks the ISA IRQs its PCI
 *    interrupt routers use (QEMU's pc and q35 declare 5, 9, 10 and 11);
 *  - a line of 16 or more is a GSI as such (APIC-mode routing: q35's PCI lines are 16-23),
 *    level-triggered and active high as QEMU's PCI link devices declare, unless an
 *    override gave it to an ISA IRQ;
 * and in both cases an IOAPIC must have the input and the kernel's own ISA devices must
 * not be on it.
 */
const char *ioapic_pci_line(uint8_t line, uint32_t *gsi, bool *active_low)
{
	bool level = true;
	bool declared = line < 16 && isa_gsi(line, gsi, &level, active_low);
	if (line >= 16) {
		*gsi = line;
		*active_low = false;
	}
	for (int i = 0; i < n_isa_routed; i++)
		if (isa_routed[i] == *gsi)
			return "the kernel's own ISA device (COM1) is on that input";
	for (int i = 0; i < acpi.n_isos; i++)
		if (acpi.iso[i].gsi == *gsi && acpi.iso[i].source != line)
			return "ACPI routes another ISA IRQ to that input";
	if (line < 16 && (!declared || !level))
		return "ACPI does not declare that ISA IRQ level-triggered, as it does the ones PCI "
		       "shares";
	uint32_t pin;
	if (!ioapic_of(*gsi, &pin))
		return "no IOAPIC has that input";
	return NULL;
}

/*
 * A platform device's line (virtio-mmio: the DSDT's GSI, or virtio_mmio.device='s IRQ made a
 * GSI) is checked as a PCI line is, less the rule on ISA IRQs that PCI shares (QEMU's microvm
 * without ACPI puts virtio-mmio on inputs 5-12, which no override declares): an IOAPIC must
 * have the input, and it must not be one of the kernel's own.
 */
const char *ioapic_platform_line(uint32_t gsi)
{
	uint32_t pin;
	const char *own = kernel_input(gsi);
	if (own)
		return own;
	if (!ioapic_of(gsi, &pin))
		return "no IOAPIC has that input";
	return NULL;
}

void msi_message(uint8_t vector, uint64_t *addr, uint32_t *data)
{
	*addr = 0xfee00000u | (lapic_id() << 12); /* fixed destination, physical mode */
	*data = vector;                            /* fixed delivery, edge */
}
