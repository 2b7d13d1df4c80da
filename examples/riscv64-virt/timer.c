/*
 * timer.c: time from the `time` CSR, which counts at the device tree's timebase-frequency
 * (10 MHz on QEMU virt), and a 100 Hz tick. Supervisor mode cannot program the timer
 * comparator itself: it asks the SBI firmware (the TIME extension, sbi_set_timer), which
 * raises a supervisor timer interrupt when `time` passes the value. The tick does nothing
 * but wake the hart, so that a wfi waiting for a device can also notice a timeout.
 */
#include "kernel.h"
#include "riscv.h"

#define SBI_EXT_TIME 0x54494d45 /* "TIME" */
#define TICK_HZ	     100

static void sbi_set_timer(uint64_t when)
{
	register unsigned long a0 __asm__("a0") = when;
	register unsigned long a6 __asm__("a6") = 0; /* function 0: set_timer */
	register unsigned long a7 __asm__("a7") = SBI_EXT_TIME;
	__asm__ __volatile__("ecall" : "+r"(a0) : "r"(a6), "r"(a7) : "a1", "memory");
}

void timer_init(void)
{
	sbi_set_timer(rdtime() + machine.timebase_hz / TICK_HZ);
	csr_set(sie, SIE_STIE);
}

void timer_intr(void)
{
	sbi_set_timer(rdtime() + machine.timebase_hz / TICK_HZ); /* also clears the pending bit */
}

uint64_t now_ns(void)
{
	uint64_t t = rdtime(), hz = machine.timebase_hz;
	return t / hz * 1000000000ull + t % hz * 1000000000ull / hz;
}

void delay_us(uint32_t us)
{
	uint64_t end = rdtime() + machine.timebase_hz * us / 1000000;
	while (rdtime() < end)
		;
}
