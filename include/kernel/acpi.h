/* ACPI tables the kernel reads: RSDP, RSDT/XSDT, MADT (interrupt controllers), MCFG (ECAM),
 * FADT (power-off, through PM1 or the hardware-reduced sleep control register), DSDT (\_S5
 * and virtio-mmio devices, found by pattern). No AML interpreter. */
#ifndef KERNEL_ACPI_H
#define KERNEL_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#define ACPI_MAX_IOAPICS 4
#define ACPI_MAX_ISOS 16
#define ACPI_MAX_MCFG 4
#define ACPI_MAX_MMIO 16

struct acpi_ioapic {
	uint8_t id;
	uint32_t addr, gsi_base;
};
struct acpi_iso { /* interrupt source override: ISA IRQ -> GSI */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags: polarity bits 0-1, trigger bits 2-3 */
};
struct acpi_mcfg {
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus, end_bus;
};

struct acpi_mmio { /* a virtio-mmio device in the DSDT (_HID "LNRO0005") */
	uint64_t base;
	uint32_t len;
	uint32_t gsi;    /* its interrupt, when has_irq */
	bool has_irq;
	bool level_high; /* the interrupt is level-triggered and active high */
};

struct acpi_info {
	bool found;
	uint64_t rsdp_phys;
	uint8_t revision;
	char oem[7];
	bool xsdt;
	int n_tables;
	uint64_t lapic_addr;
	int n_cpus;
	struct acpi_ioapic ioapic[ACPI_MAX_IOAPICS];
	int n_ioapics;
	struct acpi_iso iso[ACPI_MAX_ISOS];
	int n_isos;
	struct acpi_mcfg mcfg[ACPI_MAX_MCFG];
	int n_mcfg;
	bool have_madt;
	uint32_t pm1a_cnt, pm1b_cnt; /* FADT power-management control ports */
	uint64_t sleep_ctl;          /* hardware-reduced ACPI: the sleep control register */
	bool sleep_ctl_io;           /* ... in I/O space, not memory */
	uint16_t slp_typa, slp_typb; /* from \_S5 in the DSDT (best effort) */
	bool have_s5;
	struct acpi_mmio mmio[ACPI_MAX_MMIO];
	int n_mmio;
};
extern struct acpi_info acpi;

/* Find and parse the tables; false (and acpi.found false) when there is no valid RSDP. */
bool acpi_init(void);
void acpi_print_summary(void);

#endif
