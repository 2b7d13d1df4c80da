/*
 * main.c: kmain(), where boot.S lands in 64-bit mode, and the ways a run ends.
 *
 * Bring-up order matters: the serial port first (so everything after can report), the
 * trap table (so a fault is explained rather than a silent reset), memory (allocator,
 * page tables, heap), ACPI (which says where the interrupt controllers are), the APICs and
 * the timer, interrupts on, and only then the mode the command line asked for.
 *
 *   qemu-system-x86_64 -kernel build/vio.elf -serial stdio -append vio.mode=shell
 */
#include <kernel/acpi.h>
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/devices.h>
#include <kernel/dump.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/serial.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <stdio.h>
#include <string.h>
#include <vio/format.h>

#define DEBUG_EXIT_PORT 0xf4

void qemu_exit(bool pass)
{
	cli();
	outl(DEBUG_EXIT_PORT, pass ? 0x10 : 0x11);
	/* No isa-debug-exit device: stop here. */
	kprintf("vio: halted (%s)\n", pass ? "pass" : "FAIL");
	for (;;)
		hlt();
}

void poweroff(void)
{
	kprintf("vio: power off\n");
	if (acpi.sleep_ctl && acpi.have_s5) {
		/* Hardware-reduced ACPI: SLP_TYP in bits 2-4, SLP_EN bit 5 (ACPI 4.8.3.7) */
		uint8_t v = (uint8_t)((acpi.slp_typa & 7) << 2 | 1u << 5);
		if (acpi.sleep_ctl_io)
			outb((uint16_t)acpi.sleep_ctl, v);
		else if (paging_map(acpi.sleep_ctl, 1, true))
			*(volatile uint8_t *)(uintptr_t)acpi.sleep_ctl = v;
		sleep_us(3000000);
	}
	if (acpi.pm1a_cnt && acpi.have_s5) {
		/* PM1 control: SLP_TYP in bits 10-12, SLP_EN bit 13 (ACPI 4.8.3.2.1) */
		outw((uint16_t)acpi.pm1a_cnt, (uint16_t)(acpi.slp_typa << 10 | 1u << 13));
		if (acpi.pm1b_cnt)
			outw((uint16_t)acpi.pm1b_cnt, (uint16_t)(acpi.slp_typb << 10 | 1u << 13));
		/* QEMU powers off from its main loop, which a loaded host may not run for a
		 * while: wait long enough that the fallback below is only for a machine without
		 * S5, not a busy one. */
		sleep_us(3000000);
	}
	qemu_exit(true);
}

void panic(const char *fmt, ...)
{
	static char reason[160];
	va_list ap;
	cli();
	va_start(ap, fmt);
	int n = vio_snprintf(reason, sizeof(reason), "panic: ");
	vio_vsnprintf(reason + n, sizeof(reason) - (size_t)n, fmt, ap);
	va_end(ap);
	kprintf("\n*** PANIC: %s\n", reason + n);
	/* As if the caller had faulted where it called us: its address, its frame. */
	dump_write(NULL, (uint64_t)(uintptr_t)__builtin_return_address(0),
		   *(const uint64_t *)__builtin_frame_address(0), reason);
	qemu_exit(false);
}

static const char *const mem_type_names[] = {"?", "usable", "reserved", "ACPI", "NVS", "bad"};

static void print_memory(void)
{
	uint64_t usable = 0;
	for (int i = 0; i < boot.n_mem; i++) {
		const struct mem_region *r = &boot.mem[i];
		kprintf("mem: [%#012llx-%#012llx] %s\n", (unsigned long long)r->base,
			(unsigned long long)(r->base + r->len - 1), mem_type_names[r->type]);
		if (r->type == MEM_USABLE)
			usable += r->len;
	}
	kprintf("mem: %llu MiB usable, %llu MiB free, heap %zu MiB, highest RAM %#llx\n",
		(unsigned long long)(usable / MiB),
		(unsigned long long)(pmm_free_pages() * PAGE_SIZE / MiB), (size_t)(heap_size() / MiB),
		(unsigned long long)pmm_highest_ram());
}

static void parse_cmdline(void)
{
	char v[16];
	if (cmdline_get("vio.mode", v, sizeof(v))) {
		if (!strcmp(v, "test"))
			kernel_mode = MODE_TEST;
		else if (!strcmp(v, "bench"))
			kernel_mode = MODE_BENCH;
		else if (strcmp(v, "shell"))
			kprintf("vio: unknown vio.mode=%s, using shell\n", v);
	}
	if (cmdline_get("vio.log", v, sizeof(v))) {
		static const char *const levels[] = {"err", "warn", "info", "debug"};
		int found = -1;
		for (int i = 0; i < 4; i++)
			if (!strcmp(v, levels[i]))
				found = i;
		if (found < 0)
			kprintf("vio: unknown vio.log=%s (err|warn|info|debug), using info\n", v);
		else
			kernel_log_level = found;
	}
}

void kmain(uint32_t magic, uint32_t info)
{
	serial_init();
	trap_init();
	kprintf("\nvio: booting\n");
	if (!bootinfo_parse(magic, info))
		panic("unknown boot protocol (magic %#x): boot through GRUB multiboot2 or QEMU -kernel",
		      magic);
	parse_cmdline();
	kprintf("vio: teaching kernel for the vio virtio library; booted by %s (%s)\n",
		boot.loader[0] ? boot.loader : "?", boot.path);
	kprintf("vio: command line: '%s'\n", boot.cmdline);
	bootinfo_print();

	pmm_init();
	paging_init();
	heap_init();
	setvbuf(stdout, NULL, _IONBF, 0);
	print_memory();

	if (!acpi_init())
		kprintf("acpi: no usable ACPI tables; interrupts limited\n");
	acpi_print_summary();
	apic_init();
	timer_init();
	timer_start_tick();
	sti();
	serial_enable_rx_irq();
	kprintf("timer: TSC %llu MHz, LAPIC timer %u MHz, tick %u Hz\n",
		(unsigned long long)(tsc_hz() / 1000000), lapic_timer_hz() / 1000000, TICK_HZ);

	devices_init();
	kprintf("vio: device table\n");
	devices_print_table();
	dump_init();

	switch (kernel_mode) {
	case MODE_TEST:
		selftest_run();
		break;
	case MODE_BENCH:
		bench_run();
		break;
	case MODE_SHELL:
		shell_run();
		break;
	}
	poweroff();
}
