/*
 * timer.c: time keeping.
 *
 * The TSC counts CPU cycles at a rate nobody tells us, so we measure it against the one
 * clock with a known rate, the 8254 PIT (1.193182 MHz): program channel 2 to count down
 * 10 ms, spin until its output goes high, and see how far the TSC moved. clock_ns() is then
 * a multiply and a shift. The LAPIC timer's rate is unknown too; we measure it against the
 * calibrated TSC and run it periodically at TICK_HZ as the kernel tick.
 */
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/kernel.h>
#include <kernel/timer.h>
#include <kernel/trap.h>

#define PIT_HZ 1193182u
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_B 0x61
#define PIT_CALIBRATE_MS 10

static uint64_t tsc0, tsc_freq, ns_mult; /* ns = (tsc - tsc0) * ns_mult >> 32 */
static uint32_t lapic_freq;
static volatile uint64_t tick_count;

uint64_t pit_measure_tsc(unsigned ms)
{
	uint32_t count = PIT_HZ * ms / 1000;
	if (count > 0xffff)
		count = 0xffff;
	outb(PORT_B, (inb(PORT_B) & ~0x02) | 0x01); /* gate channel 2 on, speaker off */
	outb(PIT_CMD, 0xb0);                          /* channel 2, lo/hi byte, mode 0 */
	outb(PIT_CH2, count & 0xff);
	outb(PIT_CH2, count >> 8);
	uint64_t start = rdtsc();
	for (uint32_t spins = 0; !(inb(PORT_B) & 0x20); spins++)
		if (spins > 50000000)
			return 0; /* no PIT */
	return rdtsc() - start;
}

void timer_init(void)
{
	uint64_t best = 0;
	for (int i = 0; i < 3; i++) { /* the smallest of three: least disturbed by the host */
		uint64_t d = pit_measure_tsc(PIT_CALIBRATE_MS);
		if (d && (!best || d < best))
			best = d;
	}
	if (best) {
		tsc_freq = best * 1000 / PIT_CALIBRATE_MS;
	} else {
		tsc_freq = 1000000000ull;
		kprintf("timer: no PIT answer; assuming a 1 GHz TSC\n");
	}
	ns_mult = (uint64_t)(((unsigned __int128)1000000000ull << 32) / tsc_freq);
	tsc0 = rdtsc();
}

uint64_t clock_ns(void)
{
	return (uint64_t)(((unsigned __int128)(rdtsc() - tsc0) * ns_mult) >> 32);
}

void sleep_us(uint64_t us)
{
	uint64_t end = clock_ns() + us * 1000;
	while (clock_ns() < end)
		pause();
}

static void tick(void *arg)
{
	(void)arg;
	tick_count++;
}

/*
 * How fast the LAPIC timer counts (after its divider), against the calibrated TSC. The clock
 * is read just outside the two counter reads, so a pause of the vCPU (TCG on a busy host)
 * can only make a window look slower, never faster: the fastest of five windows is the rate.
 */
uint32_t lapic_counter_hz(void)
{
	uint64_t best = 0;

	for (int i = 0; i < 5; i++) {
		lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
		uint64_t t0 = clock_ns();
		uint32_t c0 = lapic_read(LAPIC_TIMER_CUR);
		sleep_us(2000);
		uint32_t c1 = lapic_read(LAPIC_TIMER_CUR);
		uint64_t hz = (uint64_t)(c0 - c1) * 1000000000ull / (clock_ns() - t0);
		if (hz > best)
			best = hz;
	}
	return (uint32_t)best;
}

void timer_start_tick(void)
{
	int vec = irq_alloc_vector(tick, NULL);
	if (vec < 0)
		panic("timer: no vector");
	lapic_write(LAPIC_TIMER_DIV, 0x3); /* divide by 16 */
	lapic_write(LAPIC_TIMER_LVT, 1u << 16); /* masked, one-shot, while we measure */
	lapic_freq = lapic_counter_hz();
	lapic_write(LAPIC_TIMER_LVT, (uint32_t)vec | (1u << 17)); /* periodic */
	lapic_write(LAPIC_TIMER_INIT, lapic_freq / TICK_HZ ? lapic_freq / TICK_HZ : 1);
}

uint64_t ticks(void) { return tick_count; }
uint64_t tsc_hz(void) { return tsc_freq; }
uint32_t lapic_timer_hz(void) { return lapic_freq * 16u; }
