/*
 * bench.c: vio.mode=bench. Prints `BENCH <metric> <value> <unit>` lines (DESIGN.md 5) and
 * exits QEMU. Device benchmarks join as the drivers land; for now the kernel's own hot
 * paths that the drivers lean on: reading the clock and allocating DMA pages.
 */
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/timer.h>

void bench_run(void)
{
	const int n = 200000;
	uint64_t t0 = now_ns(), sink = 0;
	for (int i = 0; i < n; i++)
		sink += now_ns();
	uint64_t t1 = now_ns();
	kprintf("BENCH now_ns_cost %llu ns\n", (unsigned long long)((t1 - t0) / n + (sink & 0)));

	const int m = 20000;
	t0 = now_ns();
	for (int i = 0; i < m; i++)
		pmm_free(pmm_alloc(4, 4), 4);
	t1 = now_ns();
	kprintf("BENCH pmm_alloc_free_16k %llu ns\n", (unsigned long long)((t1 - t0) / m));
	qemu_exit(true);
}
