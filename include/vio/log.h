/*
 * Library logging: a tiny printf-style formatter that hands finished lines to the port.
 * Supports %s %c %d %i %u %x %X %p %% with the l/ll/z length modifiers, a width and the
 * 0, - and # flags. Lines longer than 160 characters are cut. IRQ-safe when port->log is.
 */
#ifndef VIO_LOG_H
#define VIO_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <vio/port.h>

/* Format into buf (always NUL-terminated when size > 0); returns the length it wanted. */
int vio_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int vio_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Format one line and give it to port->log (nothing when port or port->log is NULL). */
void vio_logf(const struct vio_port *port, enum vio_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
