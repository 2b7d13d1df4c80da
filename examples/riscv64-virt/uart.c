/*
 * uart.c: the console, a 16550 at 0x10000000 (QEMU virt's "ns16550a", one byte per
 * register), driven by polling: output only, which is all the self-tests need. QEMU's
 * -serial stdio (or -nographic) shows it on the terminal.
 *
 * printf formats with the vio library's own vio_vsnprintf, so the kernel needs no libc.
 */
#include "kernel.h"
#include <stdarg.h>
#include <vio/format.h>

#define UART0		 0x10000000ul
#define THR		 0	  /* transmit holding register (write) */
#define IER		 1	  /* interrupt enable */
#define FCR		 2	  /* FIFO control (write) */
#define LCR		 3	  /* line control */
#define LSR		 5	  /* line status */
#define LSR_THRE	 (1 << 5) /* THR empty: room for one more byte */
#define LCR_8N1		 0x03
#define FCR_ENABLE_CLEAR 0x07

#define SIFIVE_TEST   0x100000ul /* the "sifive,test" finisher: write to end the machine */
#define FINISHER_PASS 0x5555
#define FINISHER_FAIL 0x3333 /* exit status in the upper 16 bits */

static volatile uint8_t *const uart = (volatile uint8_t *)UART0;

void uart_init(void)
{
	uart[IER] = 0; /* no UART interrupts: we poll */
	uart[LCR] = LCR_8N1;
	uart[FCR] = FCR_ENABLE_CLEAR;
}

void uart_putc(char c)
{
	if (c == '\n')
		uart_putc('\r');
	while (!(uart[LSR] & LSR_THRE))
		;
	uart[THR] = (uint8_t)c;
}

static void vprintf(const char *fmt, va_list ap)
{
	char line[256];

	vio_vsnprintf(line, sizeof(line), fmt, ap);
	for (const char *p = line; *p; p++)
		uart_putc(*p);
}

void printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

void panic(const char *fmt, ...)
{
	va_list ap;

	printf("panic: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	qemu_exit(false);
}

void qemu_exit(bool passed)
{
	*(volatile uint32_t *)SIFIVE_TEST = passed ? FINISHER_PASS : 1u << 16 | FINISHER_FAIL;
	for (;;)
		;
}
