/*
 * kernel.h: everything one file of this small kernel offers the others. The kernel runs on
 * one hart, in supervisor mode, with paging off (satp = 0): every address is physical.
 */
#ifndef KERNEL_H
#define KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE 4096ul

/* uart.c: the 16550 at 0x10000000, polled; the console of this kernel. */
void uart_init(void);
void uart_putc(char c);
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Leave QEMU through the SiFive test device: exit status 0 when passed, else 1. */
__attribute__((noreturn)) void qemu_exit(bool passed);

/* fdt.c: what the kernel learns from the flattened device tree QEMU hands it. */
#define MAX_MMIO_SLOTS 16
struct mmio_slot {
	uint64_t base, size;
	uint32_t irq; /* PLIC source number */
};
#define MAX_INTMAP 32
struct pci_window {
	uint64_t bus, cpu, size; /* bus addresses bus.. appear to the CPU at cpu.. */
};
struct pci_intmap {
	uint32_t hi, pin, irq; /* PCI phys.hi (device bits) and pin 1..4 -> PLIC source */
};
struct pci_host {
	bool present;
	uint64_t ecam, ecam_size;
	uint8_t bus_start, bus_end;
	struct pci_window io, mem32, mem64;
	uint32_t imask_hi, imask_pin;
	struct pci_intmap intmap[MAX_INTMAP];
	int nintmap;
};
struct machine {
	uint64_t ram_base, ram_size;
	uint64_t timebase_hz;
	char bootargs[128];
	struct mmio_slot mmio[MAX_MMIO_SLOTS];
	int nmmio;
	struct pci_host pci;
};
extern struct machine machine;
void fdt_scan(const void *dtb);

/* pci.c: assign BARs and Interrupt Lines, as a PC's firmware would, before vio enumerates. */
struct vio_pci_bus;
int pci_assign(struct vio_pci_bus *bus);

/* kalloc.c: runs of physically contiguous 4 KiB pages over the RAM after the kernel. */
void kalloc_init(uint64_t start, uint64_t end);
void *kalloc_pages(size_t npages); /* zeroed; NULL when no run is long enough */
void kfree_pages(void *p, size_t npages);
size_t kalloc_free_pages(void);

/* plic.c: the platform-level interrupt controller at 0x0c000000, hart 0's S-mode context. */
typedef void (*irq_handler)(void *arg);
void plic_init(void);
int plic_attach(uint32_t irq, irq_handler handler, void *arg); /* 0 or -1 */
uint64_t plic_count(uint32_t irq);			       /* times source `irq` was claimed */
void plic_intr(void);					       /* from trap.c */

/* timer.c: the time CSR for clocks, SBI for a 100 Hz tick that bounds every wfi. */
void timer_init(void);
uint64_t now_ns(void);
void delay_us(uint32_t us);
void timer_intr(void); /* from trap.c */

/* trap.c */
void trap_init(void);

/* vio_port.c */
struct vio_port;
extern const struct vio_port kernel_vio_port;

#endif
