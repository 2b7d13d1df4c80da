/*
 * Library logging: one line, formatted as vio_snprintf does (vio/format.h), handed to
 * port->log. Lines longer than 160 characters are cut. IRQ-safe when port->log is.
 */
#ifndef VIO_LOG_H
#define VIO_LOG_H

#include <vio/format.h>
#include <vio/port.h>

/* Format one line and give it to port->log (nothing when port or port->log is NULL). */
void vio_logf(const struct vio_port *port, enum vio_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
