/*
 * trap.c: every trap in supervisor mode comes to kernelvec (entry.S), which calls trap().
 * Interrupts go to the PLIC (devices) or the timer; an exception is a kernel bug, so it
 * panics with what the hart reports: scause, the faulting pc (sepc) and address (stval).
 */
#include "kernel.h"
#include "riscv.h"

void kernelvec(void);

void trap_init(void)
{
	csr_write(stvec, (unsigned long)kernelvec); /* direct mode: every trap at kernelvec */
}

void trap(void)
{
	unsigned long cause = csr_read(scause);

	if (cause == (SCAUSE_INTR | IRQ_S_EXT))
		plic_intr();
	else if (cause == (SCAUSE_INTR | IRQ_S_TIMER))
		timer_intr();
	else
		panic("trap: scause %#lx sepc %#lx stval %#lx", cause, csr_read(sepc),
		      csr_read(stval));
}
