/*
 * trap.c: the GDT, the TSS, the IDT, and what happens on every interrupt or exception.
 *
 * In long mode segmentation is nearly gone, but the CPU still needs a GDT with a 64-bit code
 * segment and a TSS, whose Interrupt Stack Table gives the double-fault, NMI and machine-check
 * handlers a known-good stack: a double fault is usually a kernel stack overflow, and
 * handling it on the overflowed stack would triple-fault and reset the machine silently.
 *
 * An exception prints its name, error code, RIP, CR2, the registers and a frame-pointer
 * backtrace on COM1, writes a crash dump when vio.dump= names a disk (dump.c), then ends
 * the run with a failure status (qemu_exit(false)).
 * Device interrupts go to handlers registered per vector, then the LAPIC gets its EOI.
 *
 * A vector that fires far more often than any device has work for is an interrupt storm: a
 * level-triggered line something holds asserted fires again the moment its handler
 * returns, a device can send MSI messages as fast as it likes, and either way the CPU does
 * little else. Each vector's interrupts are counted per STORM_WINDOW_NS; one that takes more
 * than STORM_LIMIT in a window stops being dispatched, the silencer its owner registered
 * (irq_set_silencer: mask the IOAPIC entry, the MSI-X table entry) stops the source, and
 * one line says so. The devices behind it lose nothing but their wake-ups: the kernel's
 * main loop polls every device (devices_poll) whether it interrupts or not. A device that
 * storms below that rate, interrupting with nothing to do, is devices.c's to catch.
 *
 * The cut-off is not for good: a device may storm for a while (a reset, a host hiccup) and
 * then behave. A vector whose owner can unmask its source again (irq_set_resumer) gets it
 * back after STORM_BACKOFF_NS, from irq_storms_retry in the main loop; one that storms again
 * waits twice as long the next time, up to STORM_BACKOFF_MAX_NS, and one that stays calm for
 * STORM_CALM_FACTOR back-offs starts from the first again. Each change of state, masked or
 * unmasked, is one log line. A vector freed while it is cut off (its device set up again)
 * hands its state to the next vector allocated for the same handler, so that the owner's
 * re-setup does not undo the cut-off (the vio port asks irq_stormed before it unmasks).
 */
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/dump.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <vio/format.h>

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define TSS_SEL 0x18
#define IST_STACK_SIZE (16 * 1024)
#define FIRST_DYNAMIC_VECTOR 0x30
#define LAST_DYNAMIC_VECTOR 0xef
#define MAX_CHAIN 8
#define STORM_WINDOW_NS 100000000ull /* 100 ms */
/* 2,000 in one window, 20,000 a second: four times what the QEMU scenarios' busiest vector
 * takes, and a tenth of what a storm reaches under TCG (a storm slows with a loaded host,
 * so the margin is on this side). A device taken for a storm loses only its wake-ups. */
#define STORM_LIMIT 2000
#define STORM_BACKOFF_NS 1000000000ull /* 1 s, the first time */
#define STORM_BACKOFF_MAX_NS 64000000000ull /* doubled up to 64 s */
#define STORM_CALM_FACTOR 4

struct __attribute__((packed)) tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap_base;
};
_Static_assert(sizeof(struct tss) == 104, "TSS is 104 bytes (SDM vol. 3 7.7)");

struct __attribute__((packed)) idt_entry {
	uint16_t offset_lo, selector;
	uint8_t ist, type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi, zero;
};

struct __attribute__((packed)) desc_ptr {
	uint16_t limit;
	uint64_t base;
};

static uint64_t gdt[5]; /* null, code, data, TSS (two slots) */
static struct tss tss;
static struct idt_entry idt[256];
static uint8_t ist_stacks[3][IST_STACK_SIZE] __attribute__((aligned(16)));
extern const uint64_t isr_stub_table[256];

struct handler {
	irq_handler_fn fn;
	void *arg;
};
static struct handler handlers[256][MAX_CHAIN];
static uint64_t counts[256];
static struct storm {
	uint64_t window_start; /* clock_ns() */
	uint32_t in_window;
	bool stormed; /* over the limit: handlers no longer called */
	void (*silence)(int vector, void *arg);
	void (*resume)(int vector, void *arg); /* NULL: the cut-off is for good */
	void *arg;
	uint64_t backoff_ns; /* the last back-off; 0: none yet, or calm since */
	uint64_t retry_at;   /* cut off: when it may fire again; else when it last was let */
} storms[256];

/* The storm state of vectors freed while cut off, by handler: the next vector allocated for
 * the same handler takes it over (irq_alloc_vector). */
#define STORM_HANDOVERS 16
static struct handover {
	irq_handler_fn fn;
	void *arg;
	uint64_t backoff_ns, retry_at;
} handovers[STORM_HANDOVERS];
static volatile int irq_depth;

bool in_interrupt(void)
{
	return irq_depth > 0;
}

static const char *const exception_names[32] = {
	"divide error", "debug", "NMI", "breakpoint", "overflow", "bound range exceeded",
	"invalid opcode", "device not available", "double fault", "coprocessor segment overrun",
	"invalid TSS", "segment not present", "stack-segment fault", "general protection fault",
	"page fault", "reserved (15)", "x87 floating-point error", "alignment check",
	"machine check", "SIMD floating-point error", "virtualization exception",
	"control protection", "reserved (22)", "reserved (23)", "reserved (24)",
	"reserved (25)", "reserved (26)", "reserved (27)", "hypervisor injection",
	"VMM communication", "security exception", "reserved (31)"};

static void set_gate(int vec, uint64_t addr, uint8_t ist)
{
	idt[vec] = (struct idt_entry){
		.offset_lo = (uint16_t)addr,
		.selector = KERNEL_CS,
		.ist = ist,
		.type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate (IF cleared on entry) */
		.offset_mid = (uint16_t)(addr >> 16),
		.offset_hi = (uint32_t)(addr >> 32),
	};
}

void trap_init(void)
{
	uint64_t tss_base = (uint64_t)(uintptr_t)&tss;

	for (int i = 0; i < 3; i++)
		tss.ist[i] = (uint64_t)(uintptr_t)&ist_stacks[i][IST_STACK_SIZE];
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */

	gdt[1] = 0x00af9a000000ffffull; /* 64-bit code, DPL 0 */
	gdt[2] = 0x00cf92000000ffffull; /* data */
	gdt[3] = (sizeof(tss) - 1) | ((tss_base & 0xffffff) << 16) | (0x89ull << 40) |
		 ((tss_base >> 24 & 0xff) << 56); /* available 64-bit TSS */
	gdt[4] = tss_base >> 32;
	struct desc_ptr gp = {sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt};
	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "mov %2, %%ds\n\t"
			 "mov %2, %%es\n\t"
			 "mov %2, %%ss\n\t"
			 "ltr %w3"
			 :
			 : "m"(gp), "i"(KERNEL_CS), "r"(KERNEL_DS), "r"(TSS_SEL)
			 : "rax", "memory");

	for (int v = 0; v < 256; v++)
		set_gate(v, isr_stub_table[v], 0);
	set_gate(2, isr_stub_table[2], 2);   /* NMI */
	set_gate(8, isr_stub_table[8], 1);   /* double fault */
	set_gate(18, isr_stub_table[18], 3); /* machine check */
	struct desc_ptr ip = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" ::"m"(ip));
}

/* Is [addr, addr+8) mapped RAM we can read during a backtrace? */
static int readable(uint64_t addr)
{
	uint64_t pte, size;
	return addr >= PAGE_SIZE && !(addr & 7) && paging_lookup(addr, &pte, &size) &&
	       !(pte & PTE_PCD);
}

int backtrace_collect(uint64_t rip, uint64_t rbp, uint64_t *out, int max)
{
	int n = 0;
	if (max > 0)
		out[n++] = rip;
	while (n < max && rbp && readable(rbp) && readable(rbp + 8)) {
		const uint64_t *frame = (const uint64_t *)(uintptr_t)rbp;
		if (!frame[1])
			break;
		out[n++] = frame[1];
		if (frame[0] <= rbp) /* frames must move up the stack */
			break;
		rbp = frame[0];
	}
	return n;
}

void backtrace_print(uint64_t rip, uint64_t rbp)
{
	uint64_t pcs[17];
	int n = backtrace_collect(rip, rbp, pcs, ARRAY_SIZE(pcs));
	kprintf("backtrace:");
	for (int i = 0; i < n; i++)
		kprintf(" %#llx", (unsigned long long)pcs[i]);
	kprintf("\n(addr2line -e build/vio.elf <addresses> names them)\n");
}

static __attribute__((noreturn)) void exception(const struct trap_frame *f)
{
	kprintf("\n*** EXCEPTION %llu: %s, error code %#llx\n", (unsigned long long)f->vector,
		exception_names[f->vector & 31], (unsigned long long)f->error);
	kprintf("RIP %#018llx  CS %#llx  RFLAGS %#llx  CR2 %#018llx\n",
		(unsigned long long)f->rip, (unsigned long long)f->cs,
		(unsigned long long)f->rflags, (unsigned long long)read_cr2());
	kprintf("RAX %#018llx RBX %#018llx RCX %#018llx RDX %#018llx\n",
		(unsigned long long)f->rax, (unsigned long long)f->rbx,
		(unsigned long long)f->rcx, (unsigned long long)f->rdx);
	kprintf("RSI %#018llx RDI %#018llx RBP %#018llx RSP %#018llx\n",
		(unsigned long long)f->rsi, (unsigned long long)f->rdi,
		(unsigned long long)f->rbp, (unsigned long long)f->rsp);
	kprintf("R8  %#018llx R9  %#018llx R10 %#018llx R11 %#018llx\n",
		(unsigned long long)f->r8, (unsigned long long)f->r9,
		(unsigned long long)f->r10, (unsigned long long)f->r11);
	kprintf("R12 %#018llx R13 %#018llx R14 %#018llx R15 %#018llx\n",
		(unsigned long long)f->r12, (unsigned long long)f->r13,
		(unsigned long long)f->r14, (unsigned long long)f->r15);
	backtrace_print(f->rip, f->rbp);
	char reason[128];
	vio_snprintf(reason, sizeof(reason), "exception %llu: %s, error code %#llx, RIP %#llx",
		     (unsigned long long)f->vector, exception_names[f->vector & 31],
		     (unsigned long long)f->error, (unsigned long long)f->rip);
	dump_write(f, 0, 0, reason);
	qemu_exit(false);
}

uint64_t irq_storm_backoff(uint64_t last_ns)
{
	if (!last_ns)
		return STORM_BACKOFF_NS;
	return last_ns >= STORM_BACKOFF_MAX_NS / 2 ? STORM_BACKOFF_MAX_NS : last_ns * 2;
}

bool irq_storm_calm(uint64_t backoff_ns, uint64_t since_ns, uint64_t now)
{
	return backoff_ns && now > since_ns && now - since_ns > STORM_CALM_FACTOR * backoff_ns;
}

/* Count one interrupt on `v`; true when it is (now) a storm and must not be dispatched. */
static bool storming(int v)
{
	struct storm *st = &storms[v];
	if (st->stormed)
		return true;
	uint64_t now = clock_ns();
	if (now - st->window_start >= STORM_WINDOW_NS) {
		st->window_start = now;
		st->in_window = 0;
	}
	if (++st->in_window <= STORM_LIMIT)
		return false;
	st->stormed = true;
	st->backoff_ns = irq_storm_backoff(st->backoff_ns);
	st->retry_at = now + st->backoff_ns;
	if (st->resume)
		kprintf("irq: vector %#x: an interrupt storm (%u in %llu ms); %s, its devices are "
			"polled; tried again in %llu s\n", v, st->in_window,
			(unsigned long long)((now - st->window_start) / 1000000),
			st->silence ? "source masked" : "handlers detached",
			(unsigned long long)(st->backoff_ns / 1000000000));
	else
		kprintf("irq: vector %#x: an interrupt storm (%u in %llu ms); %s, its devices are "
			"polled from now on\n", v, st->in_window,
			(unsigned long long)((now - st->window_start) / 1000000),
			st->silence ? "source masked"
				    : "no way to mask its source, handlers detached");
	if (st->silence)
		st->silence(v, st->arg);
	return true;
}

void trap_dispatch(struct trap_frame *f)
{
	uint64_t v = f->vector;

	if (v < 32)
		exception(f);
	counts[v]++;
	irq_depth++;
	if (v != APIC_SPURIOUS_VECTOR && !storming((int)v))
		for (int i = 0; i < MAX_CHAIN && handlers[v][i].fn; i++)
			handlers[v][i].fn(handlers[v][i].arg);
	irq_depth--;
	if (v != APIC_SPURIOUS_VECTOR)
		lapic_eoi();
}

int irq_add_handler(int vector, irq_handler_fn fn, void *arg)
{
	if (vector < 32 || vector > 255)
		return -1;
	for (int i = 0; i < MAX_CHAIN; i++) {
		if (!handlers[vector][i].fn) {
			handlers[vector][i].arg = arg;
			__atomic_store_n(&handlers[vector][i].fn, fn, __ATOMIC_RELEASE);
			return 0;
		}
	}
	return -1;
}

/* A new vector for fn(arg): if a vector of the same handler was freed while cut off, this
 * one is cut off until that one would have been tried again. */
static void take_over_storm(int v, irq_handler_fn fn, void *arg)
{
	for (int i = 0; i < STORM_HANDOVERS; i++) {
		struct handover *h = &handovers[i];
		if (h->fn != fn || h->arg != arg)
			continue;
		if (h->retry_at > clock_ns()) {
			storms[v].stormed = true;
			storms[v].backoff_ns = h->backoff_ns;
			storms[v].retry_at = h->retry_at;
		}
		*h = (struct handover){0};
	}
}

int irq_alloc_vector(irq_handler_fn fn, void *arg)
{
	uint64_t flags = irq_save();
	for (int v = FIRST_DYNAMIC_VECTOR; v <= LAST_DYNAMIC_VECTOR; v++) {
		if (!handlers[v][0].fn) {
			irq_add_handler(v, fn, arg);
			take_over_storm(v, fn, arg);
			irq_restore(flags);
			return v;
		}
	}
	irq_restore(flags);
	return -1;
}

void irq_free_vector(int vector)
{
	if (vector < FIRST_DYNAMIC_VECTOR || vector > LAST_DYNAMIC_VECTOR)
		return;
	uint64_t flags = irq_save();
	const struct storm *st = &storms[vector];
	for (int i = 0; st->stormed && st->resume && i < STORM_HANDOVERS; i++) {
		if (!handovers[i].fn) {
			handovers[i] = (struct handover){handlers[vector][0].fn, handlers[vector][0].arg,
							 st->backoff_ns, st->retry_at};
			break;
		}
	}
	for (int i = 0; i < MAX_CHAIN; i++)
		handlers[vector][i] = (struct handler){0};
	storms[vector] = (struct storm){0};
	irq_restore(flags);
}

void irq_set_silencer(int vector, void (*silence)(int vector, void *arg), void *arg)
{
	if (vector < 32 || vector > 255)
		return;
	uint64_t flags = irq_save();
	storms[vector].silence = silence;
	storms[vector].arg = arg;
	irq_restore(flags);
}

void irq_set_resumer(int vector, void (*resume)(int vector, void *arg))
{
	if (vector < 32 || vector > 255)
		return;
	uint64_t flags = irq_save();
	storms[vector].resume = resume;
	irq_restore(flags);
}

void irq_storms_retry(void)
{
	static uint64_t next;
	uint64_t now = clock_ns();
	if (now < next)
		return;
	next = now + STORM_WINDOW_NS;
	for (int v = FIRST_DYNAMIC_VECTOR; v <= LAST_DYNAMIC_VECTOR; v++) {
		struct storm *st = &storms[v];
		uint64_t flags = irq_save();
		if (!st->stormed) {
			/* Calm long enough since it was let back: the next storm starts afresh. */
			if (irq_storm_calm(st->backoff_ns, st->retry_at, now))
				st->backoff_ns = 0;
		} else if (st->resume && now >= st->retry_at) {
			st->stormed = false;
			st->window_start = now;
			st->in_window = 0;
			st->retry_at = now;
			st->resume(v, st->arg);
			kprintf("irq: vector %#x: source unmasked after %llu s; its devices interrupt "
				"again\n", v, (unsigned long long)(st->backoff_ns / 1000000000));
		}
		irq_restore(flags);
	}
}

bool irq_stormed(int vector)
{
	return vector >= 0 && vector < 256 && storms[vector].stormed;
}

uint64_t irq_count(int vector)
{
	return vector >= 0 && vector < 256 ? counts[vector] : 0;
}
