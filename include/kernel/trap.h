/* Interrupts and exceptions: the GDT/TSS/IDT (idt.c) and the dispatcher (trap.c). */
#ifndef KERNEL_TRAP_H
#define KERNEL_TRAP_H

#include <stdbool.h>
#include <stdint.h>

/* What isr.S pushes, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

typedef void (*irq_handler_fn)(void *arg);

void trap_init(void); /* GDT with TSS (IST stacks), IDT; interrupts stay off */
/* A free vector (0x30..0xef) that calls handler(arg), then sends the LAPIC EOI.
 * Returns the vector or -1 when all are taken. */
int irq_alloc_vector(irq_handler_fn handler, void *arg);
void irq_free_vector(int vector);
/* Add handler(arg) to a vector's chain (a shared level-triggered line); 0 or -1. */
int irq_add_handler(int vector, irq_handler_fn handler, void *arg);
/* How to stop the source of `vector` when it storms (trap.c): mask its IOAPIC entry, its
 * MSI-X table entry. Called once, in interrupt context. */
void irq_set_silencer(int vector, void (*silence)(int vector, void *arg), void *arg);
/* How to let `vector`'s source fire again after a storm (unmask what the silencer masked).
 * Without one, a storm cuts the vector off for good; with one, trap.c retries it after a
 * back-off (1 s, doubling on each new storm). Called in thread context, interrupts off. */
void irq_set_resumer(int vector, void (*resume)(int vector, void *arg));
/* The back-off after a storm, given the last one (0: none): 1 s, then doubling, up to 64 s. */
uint64_t irq_storm_backoff(uint64_t last_ns);
/* True when a source let fire again at since_ns has been calm long enough (four back-offs)
 * for its next storm to start from the first back-off again. */
bool irq_storm_calm(uint64_t backoff_ns, uint64_t since_ns, uint64_t now);
/* From the main loop: let every cut-off vector whose back-off is over fire again. */
void irq_storms_retry(void);
/* True while `vector` is cut off for a storm (it fired more often than any device has work
 * for). */
bool irq_stormed(int vector);
/* True while a device interrupt handler runs. */
bool in_interrupt(void);
/* Print the return addresses up the frame-pointer chain from (rip, rbp), for addr2line. */
void backtrace_print(uint64_t rip, uint64_t rbp);
/* Interrupts taken since boot, per vector. */
uint64_t irq_count(int vector);

#endif
