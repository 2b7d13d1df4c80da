/*
 * Library logging: one formatted line handed to the port, which decides where it goes.
 */
#include <stdarg.h>
#include <vio/format.h>
#include <vio/log.h>

void vio_logf(const struct vio_port *port, enum vio_log_level level, const char *fmt, ...)
{
	char line[160];
	va_list ap;

	if (!port || !port->log)
		return;
	va_start(ap, fmt);
	vio_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	port->log(port->ctx, level, line);
}
