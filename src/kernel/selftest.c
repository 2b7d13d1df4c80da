/*
 * selftest.c: vio.mode=test. The kernel checks its own foundations and prints TAP on COM1;
 * the host runner (tests/runner.py) reads it and the isa-debug-exit status.
 *
 * Extra knobs a QEMU scenario may put on the command line:
 *   vio.fault=pf|ud|de    raise that exception before any test (the harness must see a
 *                         failure, not a hang)
 *   vio.expect_input=WORD wait up to 20 s for WORD on COM1 (proves interrupt-driven input)
 */
#include <kernel/acpi.h>
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/serial.h>
#include <kernel/sha256.h>
#include <kernel/tap.h>
#include <kernel/timer.h>
#include <kernel/vio_port.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>
#include <vio/log.h>

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		vio_snprintf(why, size, __VA_ARGS__);                                              \
		return false;                                                                      \
	} while (0)

#define SKIP(...)                                                                                  \
	do {                                                                                       \
		vio_snprintf(why, size, "SKIP " __VA_ARGS__);                                      \
		return true;                                                                       \
	} while (0)

bool tap_run(const struct ktest *tests, size_t n)
{
	size_t failed = 0;
	kprintf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		char why[160] = "";
		bool ok = tests[i].run(why, sizeof(why));
		if (ok && !strncmp(why, "SKIP", 4))
			kprintf("ok %zu - %s # %s\n", i + 1, tests[i].name, why);
		else if (ok)
			kprintf("ok %zu - %s\n", i + 1, tests[i].name);
		else
			kprintf("not ok %zu - %s # %s\n", i + 1, tests[i].name, why);
		failed += !ok;
	}
	kprintf("# %zu of %zu self-tests failed\n", failed, n);
	return failed == 0;
}

static bool test_pmm_single_pages(char *why, size_t size)
{
	uint64_t pages[100], before = pmm_free_pages();
	for (int i = 0; i < 100; i++) {
		pages[i] = pmm_alloc(1, 1);
		if (!pages[i] || pages[i] % PAGE_SIZE)
			FAIL("allocation %d returned %#llx", i, (unsigned long long)pages[i]);
		memset((void *)(uintptr_t)pages[i], i, PAGE_SIZE);
	}
	for (int i = 0; i < 100; i++)
		if (*(uint8_t *)(uintptr_t)pages[i] != (uint8_t)i)
			FAIL("page %d overlaps another allocation", i);
	if (pmm_free_pages() != before - 100)
		FAIL("free count %llu, expected %llu", (unsigned long long)pmm_free_pages(),
		     (unsigned long long)(before - 100));
	for (int i = 0; i < 100; i++)
		pmm_free(pages[i], 1);
	if (pmm_free_pages() != before)
		FAIL("free count not restored");
	return true;
}

static bool test_pmm_contiguous_aligned_runs(char *why, size_t size)
{
	uint64_t before = pmm_free_pages();
	uint64_t a = pmm_alloc(64, 64), b = pmm_alloc(3, 8), c = pmm_alloc(512, 512);
	if (!a || a % (64 * PAGE_SIZE) || !b || b % (8 * PAGE_SIZE) || !c || c % (2 * MiB))
		FAIL("misaligned run: %#llx %#llx %#llx", (unsigned long long)a,
		     (unsigned long long)b, (unsigned long long)c);
	if ((b >= a && b < a + 64 * PAGE_SIZE) || (c >= a && c < a + 64 * PAGE_SIZE))
		FAIL("runs overlap");
	if (pmm_alloc(0, 1) || pmm_alloc(1, 3))
		FAIL("zero-length or non-power-of-two alignment accepted");
	if (pmm_alloc(pmm_total_pages() + 1, 1))
		FAIL("a run larger than RAM was granted");
	uint64_t low = pmm_alloc_below(1, 1, 4 * GiB);
	if (!low || low >= 4 * GiB)
		FAIL("no page below 4 GiB (%#llx)", (unsigned long long)low);
	pmm_free(low, 1);
	pmm_free(a, 64);
	pmm_free(b, 3);
	pmm_free(c, 512);
	if (pmm_free_pages() != before)
		FAIL("free count not restored");
	return true;
}

static bool test_heap_malloc_free(char *why, size_t size)
{
	void *p[64];
	for (int i = 0; i < 64; i++) {
		size_t n = (size_t)1 << (i % 17);
		p[i] = malloc(n);
		if (!p[i])
			FAIL("malloc(%zu) failed", n);
		memset(p[i], i, n);
	}
	for (int i = 0; i < 64; i++) {
		size_t n = (size_t)1 << (i % 17);
		if (((uint8_t *)p[i])[0] != (uint8_t)i || ((uint8_t *)p[i])[n - 1] != (uint8_t)i)
			FAIL("block %d was overwritten", i);
		free(p[i]);
	}
	char *r = malloc(16);
	strcpy(r, "vio heap");
	r = realloc(r, 100000);
	if (!r || strcmp(r, "vio heap"))
		FAIL("realloc lost the contents");
	free(r);
	uint32_t *z = calloc(1000, sizeof(*z));
	for (int i = 0; z && i < 1000; i++)
		if (z[i])
			FAIL("calloc memory not zeroed");
	free(z);
	if (malloc(heap_size() + 1))
		FAIL("malloc larger than the heap succeeded");
	return true;
}

static bool test_timer_monotonic(char *why, size_t size)
{
	uint64_t prev = clock_ns();
	for (int i = 0; i < 100000; i++) {
		uint64_t t = clock_ns();
		if (t < prev)
			FAIL("clock_ns went back from %llu to %llu", (unsigned long long)prev,
			     (unsigned long long)t);
		prev = t;
	}
	return true;
}

static bool test_timer_calibration_sane(char *why, size_t size)
{
	if (tsc_hz() < 50000000ull || tsc_hz() > 20000000000ull)
		FAIL("TSC %llu Hz is implausible", (unsigned long long)tsc_hz());
	/*
	 * 20 ms of PIT time, measured again with the calibrated TSC. Under TCG on a host with
	 * more runnable threads than cores, whole runs of windows come out stretched (the vCPU
	 * sees the PIT's end late) or shortened (it starts the TSC late): 6 to 84 ms were seen
	 * at a load of 13 on two cores. A calibration that is wrong is wrong in every window, so
	 * one window of nine within 10-40 ms shows it is right.
	 */
	uint64_t ns = 0;
	for (int i = 0; i < 9; i++) {
		ns = pit_measure_tsc(20) * 1000000000ull / tsc_hz();
		if (ns >= 10000000 && ns <= 40000000)
			break;
	}
	if (ns < 10000000 || ns > 40000000)
		FAIL("20 ms of PIT time measured as %llu ns, nine times out of nine",
		     (unsigned long long)ns);
	/*
	 * The tick runs off the LAPIC timer, calibrated separately: its counter still runs at the
	 * calibrated rate. That is read off the counter, not from ticks delivered, which TCG on a
	 * loaded host drops when the vCPU thread waits for a core. Measuring restarts the
	 * counter, so put the tick's period back after.
	 */
	uint32_t period = lapic_read(LAPIC_TIMER_INIT);
	uint32_t want = lapic_timer_hz() / 16, got = lapic_counter_hz();
	lapic_write(LAPIC_TIMER_INIT, period);
	if (got < want - want / 4 || got > want + want / 4)
		FAIL("LAPIC timer counts at %u Hz, calibrated %u Hz", got, want);
	/* And ticks arrive: some within 200 ms, never more than the clock allows. */
	uint64_t t0 = ticks();
	sleep_us(200000);
	uint64_t d = ticks() - t0;
	if (d == 0 || d > 200 * TICK_HZ / 1000 * 3 / 2)
		FAIL("%llu ticks in 200 ms at %u Hz", (unsigned long long)d, TICK_HZ);
	return true;
}

static bool test_mmio_map_above_4g(char *why, size_t size)
{
	uint64_t pte, psize;
	if (paging_lookup(0, &pte, &psize))
		FAIL("page 0 is mapped (NULL dereferences would not fault)");
	/* With RAM above 4 GiB, map a real page there uncached and use it; otherwise map an
	 * empty address above 4 GiB (a 64-bit BAR's kind of address) and check the tables. */
	uint64_t ram = pmm_highest_ram() > 4 * GiB ? pmm_alloc_above(1, 1, 4 * GiB) : 0;
	uint64_t phys = ram ? ram : 0x8000000000ull + 0x1000; /* 512 GiB + 4 KiB */
	volatile uint32_t *p = paging_map(phys, 8192, true);
	if (p != (volatile uint32_t *)(uintptr_t)phys)
		FAIL("paging_map(%#llx) returned %p", (unsigned long long)phys, (void *)p);
	if (!paging_lookup(phys, &pte, &psize) || !(pte & PTE_PCD) || psize != PAGE_SIZE ||
	    (pte & 0x000ffffffffff000ull) != phys)
		FAIL("%#llx not mapped 4 KiB uncached identity (pte %#llx)",
		     (unsigned long long)phys, (unsigned long long)pte);
	if (ram) {
		p[0] = 0xdeadbeef;
		p[1023] = 0x600df00d;
		if (p[0] != 0xdeadbeef || p[1023] != 0x600df00d)
			FAIL("uncached RAM above 4 GiB did not read back");
		pmm_free(ram, 1);
	}
	if (paging_map(1ull << 47, 4096, true))
		FAIL("a non-canonical address was mapped");
	return true;
}

/* A BAR is whatever the device's config space says. One that claims RAM must not be mapped
 * through the port: that would make RAM uncached and register writes land in memory. */
static bool test_port_refuses_mmio_over_ram(char *why, size_t size)
{
	uint64_t ram = pmm_alloc(1, 1), pte, psize;
	if (!ram)
		FAIL("no page to try with");
	volatile void *p = kernel_vio_port.map_mmio(kernel_vio_port.ctx, ram, 4096);
	bool cached = paging_lookup(ram, &pte, &psize) && !(pte & PTE_PCD);
	pmm_free(ram, 1);
	if (p)
		FAIL("the port mapped RAM at %#llx as device memory", (unsigned long long)ram);
	if (!cached)
		FAIL("RAM at %#llx is no longer mapped write-back", (unsigned long long)ram);
	uint64_t lapic = acpi.lapic_addr ? acpi.lapic_addr : 0xfee00000u;
	if (kernel_vio_port.map_mmio(kernel_vio_port.ctx, lapic, 4096) !=
	    (volatile void *)(uintptr_t)lapic)
		FAIL("the port refused the LAPIC's page at %#llx", (unsigned long long)lapic);
	return true;
}

static bool test_acpi_tables_found(char *why, size_t size)
{
	/* The host bridge tells the machine: Q35 (8086:29c0) has ECAM, i440FX (8086:1237) not,
	 * and microvm has no PCI at all (the config ports read all ones). */
	outl(0xcf8, 0x80000000u);
	uint32_t id = inl(0xcfc);
	if (!acpi.found && id == 0xffffffff)
		SKIP("no ACPI and no PCI host bridge: microvm with acpi=off");
	if (!acpi.found || !acpi.have_madt)
		FAIL("no RSDP/MADT");
	if (acpi.n_cpus < 1 || acpi.n_ioapics < 1 || !acpi.lapic_addr)
		FAIL("MADT lists %d CPUs, %d IOAPICs", acpi.n_cpus, acpi.n_ioapics);
	if (id == 0x29c08086 && (acpi.n_mcfg < 1 || acpi.mcfg[0].base % (1 * MiB)))
		FAIL("q35 without a sane MCFG");
	if (id == 0x12378086 && acpi.n_mcfg)
		FAIL("i440fx with an MCFG?");
	/* A PC powers off through PM1a; hardware-reduced ACPI (microvm) through its sleep
	 * control register. */
	if (!acpi.have_s5 || !(acpi.pm1a_cnt || acpi.sleep_ctl))
		FAIL("no \\_S5, or neither a PM1a control block nor a sleep control register");
	return true;
}

static bool test_sha256_known_answers(char *why, size_t size)
{
	static const struct {
		const char *msg, *digest;
	} kat[] = { /* FIPS 180-4 examples */
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(kat); i++) {
		struct sha256 s;
		uint8_t d[32];
		char hex[65];
		sha256_init(&s);
		/* feed byte by byte and in one go: both must agree with the standard */
		for (const char *p = kat[i].msg; *p; p++)
			sha256_update(&s, p, 1);
		sha256_final(&s, d);
		sha256_hex(d, hex);
		if (strcmp(hex, kat[i].digest))
			FAIL("sha256(\"%s\") = %s", kat[i].msg, hex);
	}
	return true;
}

static bool test_serial_line_input(char *why, size_t size)
{
	char want[64], line[64];
	if (!cmdline_get("vio.expect_input", want, sizeof(want)))
		return true; /* this scenario does not drive input */
	kprintf("# READY FOR INPUT\n");
	int n = serial_readline(line, sizeof(line), 20000);
	if (n < 0)
		FAIL("no line within 20 s");
	if (strcmp(line, want))
		FAIL("read '%s', expected '%s'", line, want);
	return true;
}

/*
 * The virtio core and the entropy driver against QEMU's real virtio-rng: 64 KiB in reads of
 * every size from 1 byte up, many times round the ring, on whatever transport and interrupt
 * mode the scenario gave the device. The bytes must look random (every byte value seen, no
 * long run of zeroes), and with interrupts on, the device must have raised some.
 */
static bool test_virtio_rng_reads(char *why, size_t size)
{
	static uint8_t buf[4096];
	struct vio_rng *rng = dev_rng(0);
	if (!rng)
		SKIP("no virtio-rng device");
	uint32_t seen[256] = {0};
	size_t total = 0;
	for (size_t len = 1; total < 64 * 1024; len = len * 2 + 1 > sizeof(buf) ? 1 : len * 2 + 1) {
		int n = DEV_CALL(vio_rng_read(rng, buf, len, true));
		if (n != (int)len)
			FAIL("read of %zu returned %d (%s)", len, n, n < 0 ? vio_strerror(n) : "short");
		for (int i = 0; i < n; i++)
			seen[buf[i]]++;
		total += len;
	}
	for (int v = 0; v < 256; v++)
		if (!seen[v])
			FAIL("byte value %d never seen in %zu random bytes", v, total);
	int n = DEV_CALL(vio_rng_read(rng, buf, 16, false));
	if (n < 0 && n != VIO_EAGAIN)
		FAIL("non-blocking read: %s", vio_strerror(n));
	if (rng->dev->irq_mode != VIO_IRQ_POLL && rng->dev->vqs[0].stats.interrupts == 0)
		FAIL("irq=%s but no interrupt arrived", vio_irq_mode_name(rng->dev->irq_mode));
	return true;
}

static bool test_virtio_bar_above_4g(char *why, size_t size)
{
	char v[4];
	if (!cmdline_get("vio.expect_bar_above_4g", v, sizeof(v)))
		SKIP("scenario does not place BARs above 4 GiB");
	for (int i = 0; i < n_virtio_devices; i++) {
		const struct kvirtio *kv = &virtio_devices[i];
		for (int b = 0; kv->drv && kv->pci && b < VIO_PCI_MAX_BARS; b++)
			if (!kv->pci->bars[b].is_io && kv->pci->bars[b].phys >= 4 * GiB)
				return true;
	}
	FAIL("no virtio device that came up has a BAR above 4 GiB");
}

static void deliberate_fault(const char *kind)
{
	kprintf("selftest: raising a deliberate %s\n", kind);
	if (!strcmp(kind, "pf"))
		*(volatile int *)(uintptr_t)0 = 1;
	else if (!strcmp(kind, "ud"))
		__asm__ volatile("ud2");
	else if (!strcmp(kind, "de")) {
		volatile int zero = 0;
		kprintf("%d\n", 1 / zero);
	}
}

void selftest_run(void)
{
	static const struct ktest tests[] = {
		{"pmm single pages", test_pmm_single_pages},
		{"pmm contiguous aligned runs", test_pmm_contiguous_aligned_runs},
		{"heap malloc/realloc/calloc/free", test_heap_malloc_free},
		{"timer monotonic", test_timer_monotonic},
		{"timer calibration sane", test_timer_calibration_sane},
		{"mmio map above 4 GiB", test_mmio_map_above_4g},
		{"port refuses mmio over RAM", test_port_refuses_mmio_over_ram},
		{"acpi tables found", test_acpi_tables_found},
		{"sha256 known answers", test_sha256_known_answers},
		{"serial line input", test_serial_line_input},
		{"virtio-rng reads through the driver", test_virtio_rng_reads},
		{"virtio BAR above 4 GiB in use", test_virtio_bar_above_4g},
	};
	struct ktest all[ARRAY_SIZE(tests) + 16];
	size_t n = ARRAY_SIZE(tests);
	char fault[8];
	if (cmdline_get("vio.fault", fault, sizeof(fault)))
		deliberate_fault(fault);
	memcpy(all, tests, sizeof(tests));
	n += devtests_select(all + n, ARRAY_SIZE(all) - n);
	qemu_exit(tap_run(all, n));
}
