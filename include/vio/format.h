/*
 * A freestanding snprintf for the library (src/common/format.c), which may not use libc.
 * Supports %s %c %d %i %u %x %X %p %% with the l/ll/z length modifiers, a width and the
 * 0, - and # flags; anything else is copied through as written. IRQ-safe: no state, no locks.
 */
#ifndef VIO_FORMAT_H
#define VIO_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

/* Format into buf (always NUL-terminated when size > 0); returns the length it wanted. */
int vio_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int vio_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
