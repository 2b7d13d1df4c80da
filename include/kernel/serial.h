/* COM1 (16550 UART at 0x3f8): polled output, interrupt-driven input. */
#ifndef KERNEL_SERIAL_H
#define KERNEL_SERIAL_H

#include <stddef.h>

void serial_init(void);                 /* 115200 8N1, FIFOs on; output works at once */
void serial_enable_rx_irq(void);        /* after the IOAPIC is up: receive by interrupt */
void serial_write(const char *s, size_t n); /* polled; safe in exception handlers */
int serial_getc(void);                  /* next received byte, or -1 when none */
/* Read one line with echo and backspace editing, up to size-1 bytes; waits at most
 * timeout_ms (0 = forever). Returns the length, or -1 on timeout. */
int serial_readline(char *buf, size_t size, unsigned timeout_ms);
/* Bytes dropped because the receive buffer was full. */
unsigned long serial_rx_overruns(void);

#endif
