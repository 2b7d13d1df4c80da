/*
 * glue.h: what devices.c shares with the glue files, and nobody else sees. devices.c owns
 * the bound drivers and hands each one its glue when it binds it (callbacks, ops, the
 * argument they get back); devices_poll() runs each glue's service. The rest of the kernel
 * uses devices.h.
 */
#ifndef KERNEL_GLUE_H
#define KERNEL_GLUE_H

#include <kernel/devices.h>

/* devices.c: the bound drivers of each type, units 0 .. n_<type> - 1, in bind order. */
extern struct vio_rng rngs[MAX_PER_DRIVER];
extern struct vio_console consoles[MAX_PER_DRIVER];
extern struct vio_blk blks[MAX_PER_DRIVER];
extern struct vio_net nets[MAX_PER_DRIVER];
extern struct vio_balloon balloons[MAX_PER_DRIVER];
extern int n_rng, n_cons, n_blk, n_net, n_balloon, n_9p;
/* The screen and the keyboard (fbcon.c, kbd.c; include/kernel/screen.h). */
extern struct vio_gpu gpus[MAX_PER_DRIVER];
extern struct vio_input inputs[MAX_PER_DRIVER];
extern int n_gpu, n_input;

/*
 * The wait hook of the blocking rng and console calls (their opts.wait): they run under
 * DEV_CALL, with interrupts off, and call it every millisecond they spin; it lets pending
 * interrupts in (the timer, COM1, other devices) and returns. Not in an interrupt handler.
 */
void dev_irq_window(void);

/*
 * The kernel's limit on spinning with interrupts masked (docs/design.md 4): no wait holds
 * them off longer. A caller that runs with interrupts on may wait longer, in driver calls of
 * at most this long with interrupts let in between: dev_may_wait says whether it does (and
 * is not an interrupt handler).
 */
#define DEV_MASKED_SPIN_NS 1000000ull
bool dev_may_wait(void);

/* --- glue_console.c: port 0 and the echo ports, per console ------------------------------- */

#define ECHO_BUF 4096
struct echo_port {
	uint32_t id;
	bool active;
	uint8_t buf[ECHO_BUF]; /* bytes read and not yet written back */
	size_t len;
};
struct kconsole {
	int port0; /* the console port, or -1 */
	struct echo_port echo[VIO_CONSOLE_MAX_PORTS];
	volatile bool changed; /* a port event arrived: look at the ports again */
	/* Port event lines, per event type: when the last was printed, and how many were not
	 * since (glue_console.c: one a second at most). */
	uint64_t event_logged_ns[VIO_CONSOLE_EV_RESIZE + 1];
	uint32_t event_suppressed[VIO_CONSOLE_EV_RESIZE + 1];
};
extern struct kconsole kcons[MAX_PER_DRIVER];

/* Console unit's options: its event callback, with its struct kconsole. */
struct vio_console_opts console_opts(int unit);
/* Open the console port and every echo port; called when ports change. */
void console_rescan(struct vio_console *con, struct kconsole *kc);
/* Poll console i, rescan its ports if they changed, and echo what the echo ports got. */
void console_service(int i);

/* --- glue_net.c: the net driver's wiring: options, the one poll per pass, RX ------------- */

/* Net unit's options: link messages, lwIP's on_tx_done, a MAC seed; arg is the unit. */
struct vio_net_opts net_opts(int unit);
/* One pass for net unit: vio_net_poll once, then its received frames to lwIP or the echo. */
void net_service(int unit);
/* After vio_net_init: with vio.net.rss=on, configure RSS / hash report; 0 or the error. */
int net_rss_start(int unit);

/* --- glue_balloon.c: the page allocator's side of a balloon ------------------------------- */

struct kballoon {
	volatile bool woken; /* set in IRQ context by on_wake: the host changed something */
	bool busy;	     /* a vio_balloon_* call is running on this device */
	bool stopped;	     /* the driver reported a broken device; logged once */
	uint64_t next_poll;  /* clock_ns() of the next unprompted poll (about once a second) */
};
extern struct kballoon kballoons[MAX_PER_DRIVER];

/* Balloon unit's options: the page source, stats and wake-up, with its struct kballoon. */
struct vio_balloon_opts balloon_opts(int unit);
/* One bounded step of balloon i's inflate or deflate work, when there is any. */
void balloon_service(int i);
/* The page allocator's out-of-memory handler (pmm_set_oom_handler). */
bool balloon_oom(size_t npages);

#endif
