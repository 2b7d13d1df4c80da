/* Time: the TSC calibrated against the PIT, and a periodic LAPIC timer tick. */
#ifndef KERNEL_TIMER_H
#define KERNEL_TIMER_H

#include <stdint.h>

#define TICK_HZ 1000

void timer_init(void);       /* calibrate the TSC; usable before interrupts are on */
void timer_start_tick(void); /* needs apic_init(): periodic TICK_HZ interrupt */
uint64_t clock_ns(void);     /* monotonic ns since timer_init(); also the vio port's now_ns */
void sleep_us(uint64_t us);  /* busy-waits; works with interrupts off */
uint64_t ticks(void);        /* timer interrupts since timer_start_tick() */
uint64_t tsc_hz(void);
uint32_t lapic_timer_hz(void);
/* The LAPIC timer's count rate (divide-by-16) measured now; it restarts the counter. */
uint32_t lapic_counter_hz(void);
/* Measure `ms` milliseconds of PIT time with the TSC (for the calibration self-test). */
uint64_t pit_measure_tsc(unsigned ms);
/* The median of five pit_measure_tsc windows: what calibration and the self-test use. */
uint64_t pit_measure_tsc_median(unsigned ms);

#endif
