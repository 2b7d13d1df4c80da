/*
 * serial.c: COM1, the kernel's console.
 *
 * Output is polled: wait (bounded) until the transmit holding register is empty, then
 * write the byte. No locks, no buffers, so an exception handler can print even if it
 * interrupted a print. Input arrives by interrupt (ISA IRQ 4 through the IOAPIC) into a
 * ring buffer that serial_getc() drains; before interrupts are on, serial_getc() polls.
 * QEMU: -serial stdio (or -serial file:..., -chardev ...) connects COM1.
 */
#include <kernel/apic.h>
#include <kernel/devices.h>
#include <kernel/arch.h>
#include <kernel/dump.h>
#include <kernel/kernel.h>
#include <kernel/serial.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <vio/log.h>

#define COM1 0x3f8
#define UART_DATA 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20
#define IER_RX_AVAILABLE 0x01
#define COM1_ISA_IRQ 4

#define RX_SIZE 4096 /* power of two */
static volatile char rx_buf[RX_SIZE];
static volatile unsigned rx_head, rx_tail; /* head: written by the IRQ; tail: by readers */
static volatile unsigned long rx_overruns;
static volatile bool rx_irq_on; /* cleared by serial_silence, in an interrupt */

void serial_init(void)
{
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, 0x80); /* DLAB: the next two registers are the divisor */
	outb(COM1 + 0, 1);           /* 115200 / 1 */
	outb(COM1 + 1, 0);
	outb(COM1 + UART_LCR, 0x03); /* 8 data bits, no parity, 1 stop bit */
	outb(COM1 + UART_FCR, 0xc7); /* FIFOs on and cleared, 14-byte receive threshold */
	outb(COM1 + UART_MCR, 0x0b); /* DTR, RTS, OUT2 (OUT2 gates the IRQ line on PCs) */
}

static void putc_polled(char c)
{
	for (int spins = 0; spins < 100000; spins++)
		if (inb(COM1 + UART_LSR) & LSR_THR_EMPTY)
			break;
	outb(COM1 + UART_DATA, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			putc_polled('\r');
		putc_polled(s[i]);
	}
}

static void rx_drain_uart(void)
{
	while (inb(COM1 + UART_LSR) & LSR_DATA_READY) {
		char c = (char)inb(COM1 + UART_DATA);
		if (rx_head - rx_tail >= RX_SIZE) {
			rx_overruns++;
			continue;
		}
		rx_buf[rx_head % RX_SIZE] = c;
		rx_head++;
	}
}

static void serial_irq(void *arg)
{
	(void)arg;
	rx_drain_uart();
}

/* An interrupt storm on COM1's vector (trap.c): the UART stops interrupting and its input
 * is polled, as before interrupts were on. */
static void serial_silence(int vector, void *arg)
{
	(void)vector, (void)arg;
	outb(COM1 + UART_IER, 0);
	rx_irq_on = false;
}

void serial_enable_rx_irq(void)
{
	int vec = irq_alloc_vector(serial_irq, NULL);
	if (vec < 0 || ioapic_route_isa(COM1_ISA_IRQ, (uint8_t)vec) != 0) {
		kprintf("serial: no IRQ for COM1, input is polled\n");
		return;
	}
	irq_set_silencer(vec, serial_silence, NULL);
	rx_irq_on = true;
	outb(COM1 + UART_IER, IER_RX_AVAILABLE);
	rx_drain_uart(); /* bytes that arrived before the interrupt was enabled */
}

int serial_getc(void)
{
	if (!rx_irq_on) {
		rx_drain_uart();
	}
	if (rx_tail == rx_head)
		return -1;
	char c = rx_buf[rx_tail % RX_SIZE];
	rx_tail++;
	return (unsigned char)c;
}

unsigned long serial_rx_overruns(void)
{
	return rx_overruns;
}

int serial_readline(char *buf, size_t size, unsigned timeout_ms)
{
	size_t len = 0;
	uint64_t deadline = timeout_ms ? clock_ns() + (uint64_t)timeout_ms * 1000000 : 0;

	while (size > 0) {
		int c = serial_getc();
		if (c < 0) {
			if (deadline && clock_ns() > deadline)
				return -1;
			if (rx_irq_on)
				hlt(); /* the next byte or timer tick wakes us */
			continue;
		}
		if (c == '\r' || c == '\n') {
			serial_write("\n", 1);
			break;
		}
		if (c == 0x7f || c == '\b') {
			if (len > 0) {
				len--;
				serial_write("\b \b", 3);
			}
			continue;
		}
		if (c < 0x20 || len + 1 >= size)
			continue;
		buf[len++] = (char)c;
		serial_write((char *)&buf[len - 1], 1);
	}
	if (size > 0)
		buf[len] = '\0';
	return (int)len;
}

void kvprintf(const char *fmt, va_list ap)
{
	char line[512];
	int n = vio_vsnprintf(line, sizeof(line), fmt, ap);
	size_t len = n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1;
	serial_write(line, len);
	console_mirror(line, len);
	klog_append(line, len);
}

void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

void kputs_raw(const char *s, size_t n)
{
	serial_write(s, n);
}
