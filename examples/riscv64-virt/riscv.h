/*
 * riscv.h: the few RISC-V privileged-architecture pieces this kernel touches, all in
 * supervisor mode (OpenSBI runs below us in machine mode). Names follow the privileged spec.
 */
#ifndef RISCV_H
#define RISCV_H

#include <stdint.h>

#define SSTATUS_SIE (1ul << 1) /* interrupts enabled in S-mode */
#define SIE_STIE    (1ul << 5) /* supervisor timer interrupt */
#define SIE_SEIE    (1ul << 9) /* supervisor external interrupt (from the PLIC) */

#define SCAUSE_INTR (1ul << 63)
#define IRQ_S_TIMER 5
#define IRQ_S_EXT   9

#define csr_read(csr)                                                                              \
	({                                                                                         \
		unsigned long __v;                                                                 \
		__asm__ __volatile__("csrr %0, " #csr : "=r"(__v));                                \
		__v;                                                                               \
	})
/* The writes are compiler barriers too: memory accesses stay on their side of an intr_on. */
#define csr_write(csr, v) __asm__ __volatile__("csrw " #csr ", %0" ::"r"(v) : "memory")
#define csr_set(csr, v)	  __asm__ __volatile__("csrs " #csr ", %0" ::"r"(v) : "memory")
#define csr_clear(csr, v) __asm__ __volatile__("csrc " #csr ", %0" ::"r"(v) : "memory")

static inline void intr_on(void)
{
	csr_set(sstatus, SSTATUS_SIE);
}

static inline void intr_off(void)
{
	csr_clear(sstatus, SSTATUS_SIE);
}

/* Sleep until an interrupt is pending: it wakes even with SIE off (then nothing is taken). */
static inline void wfi(void)
{
	__asm__ __volatile__("wfi" ::: "memory");
}

/* The `time` CSR: ticks at the timebase frequency the device tree gives (10 MHz on virt). */
static inline uint64_t rdtime(void)
{
	uint64_t t;
	__asm__ __volatile__("rdtime %0" : "=r"(t));
	return t;
}

#endif
