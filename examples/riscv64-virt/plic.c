/*
 * plic.c: the RISC-V platform-level interrupt controller (the PLIC spec; QEMU virt's is at
 * 0x0c000000 with 95 sources). Devices raise numbered sources; the PLIC forwards the
 * highest-priority pending one to each hart context whose enable bit is set and whose
 * threshold it exceeds. The hart claims it (a read that names the source and hides it from
 * other claims), runs its handlers, and completes it (a write of the same number). A source
 * that is still asserted after completion, as a level-triggered virtio line is until its
 * driver acks the device, is forwarded again.
 *
 * Context 1 is hart 0 in supervisor mode (context 0 is machine mode: OpenSBI's).
 */
#include "kernel.h"
#include "riscv.h"

#define PLIC		      0x0c000000ul
#define PLIC_PRIORITY(src)    (PLIC + 4 * (src))
#define PLIC_ENABLE(ctx, src) (PLIC + 0x2000 + 0x80 * (ctx) + 4 * ((src) / 32))
#define PLIC_THRESHOLD(ctx)   (PLIC + 0x200000 + 0x1000 * (ctx))
#define PLIC_CLAIM(ctx)	      (PLIC + 0x200004 + 0x1000 * (ctx))
#define CONTEXT		      1 /* hart 0, S-mode */

#define MAX_SOURCES 1024 /* the PLIC's limit: source numbers are 10 bits */
#define HANDLERS    32	 /* handlers in all; a line may have several (it may be shared) */

#define REG(a) (*(volatile uint32_t *)(a))

static struct {
	uint32_t irq;
	irq_handler fn;
	void *arg;
} handlers[HANDLERS];
static int nhandlers;
static uint64_t claims[MAX_SOURCES];

void plic_init(void)
{
	REG(PLIC_THRESHOLD(CONTEXT)) = 0; /* let every priority above 0 through */
	csr_set(sie, SIE_SEIE);
}

/* Add fn(arg) to the handlers of source `irq` and enable the source. */
int plic_attach(uint32_t irq, irq_handler fn, void *arg)
{
	if (irq == 0 || irq >= MAX_SOURCES || nhandlers == HANDLERS)
		return -1;
	handlers[nhandlers++] = (typeof(handlers[0])){irq, fn, arg};
	REG(PLIC_PRIORITY(irq)) = 1;
	REG(PLIC_ENABLE(CONTEXT, irq)) |= 1u << (irq % 32);
	return 0;
}

uint64_t plic_count(uint32_t irq)
{
	return irq < MAX_SOURCES ? claims[irq] : 0;
}

/* A supervisor external interrupt: claim every pending source and run its handlers. */
void plic_intr(void)
{
	uint32_t irq;

	while ((irq = REG(PLIC_CLAIM(CONTEXT))) != 0) {
		claims[irq % MAX_SOURCES]++;
		for (int i = 0; i < nhandlers; i++)
			if (handlers[i].irq == irq)
				handlers[i].fn(handlers[i].arg);
		REG(PLIC_CLAIM(CONTEXT)) = irq; /* complete */
	}
}
