/* Interrupt controllers: the legacy PIC (remapped, masked), the local APIC, the IOAPIC. */
#ifndef KERNEL_APIC_H
#define KERNEL_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define APIC_SPURIOUS_VECTOR 0xff

void apic_init(void); /* needs acpi_init(); masks the PIC, enables the LAPIC, masks the IOAPIC */
void lapic_eoi(void);
uint32_t lapic_id(void);
/* Raise `vector` on this CPU, as a device's MSI would (the storm self-test). */
void lapic_self_ipi(uint8_t vector);
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t val);
#define LAPIC_TIMER_LVT 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0

/* Route ISA IRQ `irq` (after MADT overrides) to `vector` on this CPU; 0 or -1. */
int ioapic_route_isa(uint8_t irq, uint8_t vector);
/* Route global system interrupt `gsi` to `vector`; level/active_low as given. 0 or -1. */
int ioapic_route_gsi(uint32_t gsi, uint8_t vector, bool level, bool active_low);
/* Mask GSI `gsi`'s redirection entry (an interrupt storm); IRQ-safe. */
void ioapic_mask_gsi(uint32_t gsi);
/* Unmask it again (the storm's back-off is over); IRQ-safe. */
void ioapic_unmask_gsi(uint32_t gsi);
/* True when `gsi` is masked, or on no IOAPIC. */
bool ioapic_gsi_masked(uint32_t gsi);
/* Check a PCI function's Interrupt Line against what ACPI declares (apic.c says how): NULL
 * and the GSI and polarity to route it with, or why it must not be used. Level-triggered. */
const char *ioapic_pci_line(uint8_t line, uint32_t *gsi, bool *active_low);
/* The same for a platform device's GSI (a virtio-mmio line): NULL, or why it must not be used. */
const char *ioapic_platform_line(uint32_t gsi);
/* The MSI address/data that delivers `vector` to this CPU (Intel SDM 10.11). */
void msi_message(uint8_t vector, uint64_t *addr, uint32_t *data);

#endif
