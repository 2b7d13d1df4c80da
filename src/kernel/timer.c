/*
 * timer.c: time keeping.
 *
 * The TSC counts CPU cycles at a rate nobody tells us, so we measure it against the one
 * clock with a known rate, the 8254 PIT (1.193182 MHz): let channel 0 count down, and read
 * its count and the TSC together at the start and at the end of a window. Each reading
 * brackets the PIT's count between two TSC reads and keeps the tightest of five brackets,
 * so a pause of the CPU (a TCG vCPU thread waiting for a host core) between starting the
 * window and looking at the clocks is not taken for time; only a pause inside a bracket
 * could be. clock_ns() is then a multiply and a shift. The LAPIC timer's rate is unknown too; we measure it against the
 * calibrated TSC and run it periodically at TICK_HZ as the kernel tick.
 *
 * Why channel 0: many PC kernels count on channel 2, whose gate and output a PC wires to
 * port 0x61 (the speaker port). QEMU's microvm has a PIT but no port 0x61 (it reads 0xff),
 * so we use the channel that is always gated on and read its output with the PIT's own
 * read-back command, which works on every machine with a PIT. Its IRQ 0 stays masked.
 */
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/kernel.h>
#include <kernel/timer.h>
#include <kernel/trap.h>

#define PIT_HZ 1193182u
#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_CH0_MODE0 0x30     /* channel 0, low then high byte, mode 0, binary */
#define PIT_LATCH_CH0 0x00     /* counter latch: channel 0's count, read low then high byte */
#define PIT_READBACK_CH0 0xe2  /* read-back: latch channel 0's status, not its count */
#define PIT_STATUS_OUT 0x80    /* read-back status: the channel's output pin */
#define PIT_CALIBRATE_MS 10

static uint64_t tsc0, tsc_freq, ns_mult; /* ns = (tsc - tsc0) * ns_mult >> 32 */
static uint32_t lapic_freq;
static volatile uint64_t tick_count;

static bool pit_ch0_out(void)
{
	outb(PIT_CMD, PIT_READBACK_CH0);
	return inb(PIT_CH0) & PIT_STATUS_OUT;
}

/* Channel 0's count now, between two TSC reads: the tightest pair of five, *tsc its middle. */
static uint16_t pit_sample(uint64_t *tsc)
{
	uint64_t best = ~0ull;
	uint16_t count = 0;

	for (int i = 0; i < 5; i++) {
		uint64_t a = rdtsc();
		outb(PIT_CMD, PIT_LATCH_CH0);
		uint16_t c = inb(PIT_CH0);
		c |= (uint16_t)(inb(PIT_CH0) << 8);
		uint64_t b = rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			count = c;
		}
	}
	return count;
}

uint64_t pit_measure_tsc(unsigned ms)
{
	uint32_t want = PIT_HZ / 1000 * ms;
	if (want > 0xc000)
		want = 0xc000; /* the count starts at 0xffff: leave room before it wraps */
	for (int attempt = 0; attempt < 5; attempt++) {
		/* Mode 0 from 0xffff: the output drives low now and goes high at zero (55 ms). */
		outb(PIT_CMD, PIT_CH0_MODE0);
		outb(PIT_CH0, 0xff);
		outb(PIT_CH0, 0xff);
		uint64_t t0, t1;
		uint16_t c0 = pit_sample(&t0), c1 = c0;
		if (pit_ch0_out())
			return 0; /* high already: nothing answers at the PIT's ports */
		for (uint32_t spins = 0; (uint16_t)(c0 - c1) < want; spins++) {
			if (spins > 50000000)
				return 0; /* the count never moves: no PIT */
			outb(PIT_CMD, PIT_LATCH_CH0);
			c1 = inb(PIT_CH0);
			c1 |= (uint16_t)(inb(PIT_CH0) << 8);
		}
		c1 = pit_sample(&t1);
		if (pit_ch0_out())
			continue; /* away so long that it reached zero: the elapsed count is lost */
		uint32_t ticks = (uint16_t)(c0 - c1);
		/* The TSC cycles of exactly `ms` of PIT time. */
		return (t1 - t0) * (PIT_HZ / 1000 * ms) / ticks;
	}
	return 0;
}

/*
 * The median of five PIT windows. Under TCG on a busy host a window can come out far too
 * long or, seen more rarely, too short (a pause between the PIT's start and our TSC read); the
 * median ignores two bad windows either way.
 */
uint64_t pit_measure_tsc_median(unsigned ms)
{
	uint64_t d[5];
	int n = 0;

	for (int i = 0; i < 5; i++) {
		uint64_t v = pit_measure_tsc(ms);
		if (!v)
			return 0;
		int j = n++;
		for (; j > 0 && d[j - 1] > v; j--)
			d[j] = d[j - 1];
		d[j] = v;
	}
	return d[2];
}

void timer_init(void)
{
	uint64_t best = pit_measure_tsc_median(PIT_CALIBRATE_MS);
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
