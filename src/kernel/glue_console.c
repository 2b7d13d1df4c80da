/*
 * glue_console.c: what this kernel does with a virtio-console (see include/vio/console.h).
 *
 * The driver moves bytes on numbered ports and reports port events; the kernel decides what
 * the ports are for. Here, on the first console: port 0 (the one the host marked as the
 * console) gets a copy of the kernel log and is a second shell (shell.c reads it with
 * console_read_port0; serial.c writes the log with console_mirror). On every console, a port
 * whose name starts with org.vio.echo sends back whatever the host writes to it. Ports come
 * and go at run time, so the driver's event callback only notes that something changed,
 * and console_service, from devices_poll, opens the new ports and moves the echo bytes.
 *
 *   ./run-qemu.sh    then port 0 is a shell: socat - UNIX-CONNECT:build/vcon.sock
 *   ./run-qemu.sh -- -chardev socket,id=echo,path=echo.sock,server=on,wait=off \
 *       -device virtserialport,bus=vser.0,chardev=echo,name=org.vio.echo
 */
#include <kernel/kernel.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <string.h>
#include <vio/err.h>

#include "glue.h"

struct kconsole kcons[MAX_PER_DRIVER];

static const char *const console_event_names[] = {
	"added", "removed", "named", "is a console", "opened by the host", "closed by the host",
	"has data", "writable", "resized"};

/*
 * A host can add, remove and rename ports in a loop (QMP device_add / device_del of a
 * virtserialport): the log shows at most one line per event type per second, and once that
 * second is over, how many it did not show.
 */
#define EVENT_LOG_NS 1000000000ull

/* Say how many `ev` lines were not shown, once their second is over. */
static void event_log_flush(struct kconsole *kc, unsigned ev, uint64_t now)
{
	if (!kc->event_suppressed[ev] || now - kc->event_logged_ns[ev] < EVENT_LOG_NS)
		return;
	kprintf("console: %u more 'port %s' events not shown (at most one a second)\n",
		kc->event_suppressed[ev], console_event_names[ev]);
	kc->event_suppressed[ev] = 0;
}

/* The driver's event callback: in interrupt context, or inside console_service's poll (both
 * with interrupts off, so console_service's flush never runs in the middle of it). */
static void console_event(struct vio_console *con, uint32_t port, enum vio_console_event ev,
			  void *arg)
{
	struct kconsole *kc = arg;
	(void)con;
	if (ev == VIO_CONSOLE_EV_DATA || ev == VIO_CONSOLE_EV_WRITABLE ||
	    (unsigned)ev >= ARRAY_SIZE(kc->event_suppressed))
		return;
	kc->changed = true;
	uint64_t now = clock_ns();
	event_log_flush(kc, ev, now);
	if (kc->event_logged_ns[ev] && now - kc->event_logged_ns[ev] < EVENT_LOG_NS) {
		kc->event_suppressed[ev]++;
		return;
	}
	kc->event_logged_ns[ev] = now;
	kprintf("console: port %u %s\n", port, console_event_names[ev]);
}

/* A blocking write (under DEV_CALL, interrupts off) lets interrupts in every millisecond. */
static void console_wait(struct vio_console *con, void *arg)
{
	(void)con;
	(void)arg;
	dev_irq_window();
}

struct vio_console_opts console_opts(int unit)
{
	return (struct vio_console_opts){
	    .on_event = console_event, .arg = &kcons[unit], .wait = console_wait};
}

/* Open the console port and every echo port; called when ports change. */
void console_rescan(struct vio_console *con, struct kconsole *kc)
{
	struct vio_console_port_info info;
	kc->changed = false;
	int c = vio_console_find_console(con);
	if (c >= 0 && c != kc->port0) {
		kc->port0 = c;
		vio_console_open(con, (uint32_t)c);
	}
	for (uint32_t id = 0; id < con->nports; id++) {
		struct echo_port *e = &kc->echo[id];
		bool echo = vio_console_port_info(con, id, &info) == 0 && info.present &&
			    !strncmp(info.name, "org.vio.echo", 12);
		if (echo && !e->active) {
			*e = (struct echo_port){.id = id, .active = true};
			vio_console_open(con, id);
			kprintf("console: port %u (%s) echoes\n", id, info.name);
		} else if (!echo && e->active) {
			e->active = false;
		}
	}
}

static void console_echo(struct vio_console *con, struct echo_port *e)
{
	for (int rounds = 0; rounds < 16; rounds++) {
		if (e->len < ECHO_BUF) {
			int n = vio_console_read(con, e->id, e->buf + e->len, ECHO_BUF - e->len);
			if (n > 0)
				e->len += (size_t)n;
		}
		if (!e->len)
			return;
		int w = vio_console_write(con, e->id, e->buf, e->len, false);
		if (w <= 0)
			return; /* VIO_EAGAIN: the host is slow; keep the bytes, try again later */
		memmove(e->buf, e->buf + w, e->len - (size_t)w);
		e->len -= (size_t)w;
	}
}

void console_service(int i)
{
	struct vio_console *con = &consoles[i];
	struct kconsole *kc = &kcons[i];
	vio_console_poll(con);
	for (unsigned ev = 0; ev < ARRAY_SIZE(kc->event_suppressed); ev++)
		event_log_flush(kc, ev, clock_ns());
	if (kc->changed)
		console_rescan(con, kc);
	for (uint32_t id = 0; id < con->nports; id++)
		if (kc->echo[id].active)
			console_echo(con, &kc->echo[id]);
}

int console_read_port0(void)
{
	uint8_t c;
	if (!n_cons || kcons[0].port0 < 0)
		return -1;
	int n = DEV_CALL(vio_console_read(&consoles[0], (uint32_t)kcons[0].port0, &c, 1));
	return n == 1 ? c : -1;
}

static bool mirroring;
static unsigned long mirror_dropped;

void console_mirror(const char *s, size_t n)
{
	/* Never from an interrupt handler (the driver may be mid-call) and never recursively.
	 * When the TX buffers are full, reap the device's completions and retry for up to
	 * 50 ms (a slow host), each driver call masked and interrupts let in between; from a
	 * caller that has them off (a kprintf inside a driver call) for DEV_MASKED_SPIN_NS.
	 * Only a host that takes nothing for that long loses bytes, and those are counted. */
	if (!n_cons || kcons[0].port0 < 0 || in_interrupt() || mirroring)
		return;
	mirroring = true;
	uint64_t deadline = clock_ns() + (dev_may_wait() ? 50000000ull : DEV_MASKED_SPIN_NS);
	while (n) {
		int w = DEV_CALL(
		    vio_console_write(&consoles[0], (uint32_t)kcons[0].port0, s, n, false));
		if (w > 0) {
			s += w;
			n -= (size_t)w;
			continue;
		}
		if (w != VIO_EAGAIN || clock_ns() > deadline) {
			mirror_dropped += n;
			break;
		}
		DEV_CALL(vio_console_poll(&consoles[0]));
	}
	mirroring = false;
}
