/*
 * virtio-console: the console and serial-port driver (virtio 1.2 section 5.3).
 *
 * Context: completions are reaped by vio_console_poll, which every queue's interrupt handler
 * runs when the device interrupts, and the owner runs from its loop (or a timer) when it
 * does not; read and blocking write poll too. So opts.on_event runs in interrupt context,
 * or inside the owner's calls.
 *
 * A console device carries byte streams, "ports", between the guest and the host. Port 0 is
 * normally a console (QEMU's virtconsole); with VIRTIO_CONSOLE_F_MULTIPORT the device adds
 * more (virtserialport, each with a name such as "org.vio.echo"), removes them, and says
 * when the host side of each is opened or closed, through a pair of control queues.
 *
 *	struct vio_console con;                         caller-owned, like the vio_dev
 *	vio_pci_probe(&dev, &pcidev);                   a VIRTIO_ID_CONSOLE function
 *	vio_console_init(&con, &dev, &opts);            queues, buffers, multiport handshake
 *	int echo = vio_console_find_port(&con, "org.vio.echo");
 *	vio_console_open(&con, echo);                   tell the host we are listening
 *	vio_console_write(&con, echo, "hi", 2, true);
 *	n = vio_console_read(&con, echo, buf, sizeof(buf));
 *
 * No byte is lost on the driver's side, whichever side is slow. Writes copy into driver-owned
 * TX buffers and are refused (VIO_EAGAIN, or a bounded wait when blocking) when none is free
 * or the host side of the port is closed (QEMU discards data for a closed port). Received
 * bytes stay in the RX buffer the device filled until the caller reads them, and only then
 * is that buffer posted again: a caller that stops reading makes the host wait.
 *
 * Every DMA buffer is allocated at init for every port the driver will ever serve, so that a
 * port the host hot-plugs later (handled in vio_console_poll, perhaps in an interrupt) needs
 * no allocation.
 *
 * The device is untrusted: control messages naming unknown ports or events, names longer
 * than VIO_CONSOLE_NAME_MAX, lengths beyond what was posted are counted, logged (at most
 * VIO_CONSOLE_LOG_BURST lines a second) and ignored. Port names keep printable ASCII only.
 * A device that hands every receive buffer back the moment it is posted cannot keep
 * vio_console_poll looping: each call reaps at most the buffers that were with the device.
 *
 * Concurrency (include/vio/port.h): no locks. One caller at a time per device. The queue
 * callbacks run vio_console_poll in interrupt context, so a kernel taking this device's
 * interrupts must mask them (or disable interrupts) around its thread-context calls. The
 * event callback runs inside vio_console_poll; it may call the IRQ-safe functions (read, a
 * non-blocking write, open, close, the lookups) but not block or call fini.
 */
#ifndef VIO_CONSOLE_H
#define VIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_console.h>
#include <vio/virtio.h>

/* Most ports served: queues for min(max_nr_ports, this) ports are set up; later ids refused. */
#ifndef VIO_CONSOLE_MAX_PORTS
#define VIO_CONSOLE_MAX_PORTS 8
#endif
/* Per port: RX buffers kept posted, TX buffers, and the bytes in each. */
#ifndef VIO_CONSOLE_RX_BUFS
#define VIO_CONSOLE_RX_BUFS 8
#endif
#ifndef VIO_CONSOLE_TX_BUFS
#define VIO_CONSOLE_TX_BUFS 8
#endif
#ifndef VIO_CONSOLE_BUF_SIZE
#define VIO_CONSOLE_BUF_SIZE 512
#endif
/* Control receive buffers: a message header plus a port name. */
#ifndef VIO_CONSOLE_CTRL_BUFS
#define VIO_CONSOLE_CTRL_BUFS 16
#endif
#ifndef VIO_CONSOLE_CTRL_BUF_SIZE
#define VIO_CONSOLE_CTRL_BUF_SIZE 128
#endif
/* Control messages the driver may have waiting for the device to take (PORT_READY, ...). */
#ifndef VIO_CONSOLE_CTRL_TX_BUFS
#define VIO_CONSOLE_CTRL_TX_BUFS 16
#endif

/*
 * DMA pages the buffers take at most: each page is a separate dma_alloc, and a buffer never
 * straddles two. Every port's buffers, then the control buffers and messages (with the
 * defaults: 2 pages a port, 1 for the control queues).
 */
#define VIO_CONSOLE_PAGE 4096u
#define VIO_CONSOLE_PAGES_FOR(n, size)                                                             \
	(((n) + (VIO_CONSOLE_PAGE / (size)) - 1) / (VIO_CONSOLE_PAGE / (size)))
#define VIO_CONSOLE_DMA_PAGES                                                                      \
	(VIO_CONSOLE_MAX_PORTS * VIO_CONSOLE_PAGES_FOR(VIO_CONSOLE_RX_BUFS + VIO_CONSOLE_TX_BUFS,  \
						       VIO_CONSOLE_BUF_SIZE) +                     \
	 VIO_CONSOLE_PAGES_FOR(VIO_CONSOLE_CTRL_BUFS, VIO_CONSOLE_CTRL_BUF_SIZE) +                 \
	 VIO_CONSOLE_PAGES_FOR(VIO_CONSOLE_CTRL_TX_BUFS, sizeof(struct virtio_console_control)))
/* Port names are kept up to this many bytes, NUL included; longer ones are cut. */
#ifndef VIO_CONSOLE_NAME_MAX
#define VIO_CONSOLE_NAME_MAX 64
#endif
/* A blocking write gives up when the device took nothing for this long (the default of
 * vio_console_opts.timeout_ns; it also bounds the multiport handshake). */
#ifndef VIO_CONSOLE_TIMEOUT_NS
#define VIO_CONSOLE_TIMEOUT_NS 1000000000ull
#endif
/* A blocking write gives up when it has taken this long in all, however slowly the device
 * takes the bytes (the default of vio_console_opts.deadline_ns). */
#ifndef VIO_CONSOLE_DEADLINE_NS
#define VIO_CONSOLE_DEADLINE_NS 5000000000ull
#endif
/* Blocking calls poll for at most this long between calls of opts.wait (1 ms): the longest
 * they spin in whatever interrupt state their caller gave them. */
#ifndef VIO_CONSOLE_SPIN_NS
#define VIO_CONSOLE_SPIN_NS 1000000ull
#endif
/* Log lines about what the device sent (bad or refused control messages, cut names): at most
 * this many per second; the rest are counted and summed up in one line. */
#ifndef VIO_CONSOLE_LOG_BURST
#define VIO_CONSOLE_LOG_BURST 16
#endif
/* Multiport init waits until the control queue has been quiet this long (handshake). */
#ifndef VIO_CONSOLE_SETTLE_NS
#define VIO_CONSOLE_SETTLE_NS 20000000ull
#endif

#define VIO_CONSOLE_NVQS (2 + 2 * VIO_CONSOLE_MAX_PORTS)

struct vio_console;

/* What the event callback reports; `port` says which port (0 for a config resize). */
enum vio_console_event {
	VIO_CONSOLE_EV_PORT_ADDED = 0,	 /* the device added it (after init: hot-plug) */
	VIO_CONSOLE_EV_PORT_REMOVED = 1, /* gone: its unread bytes were dropped */
	VIO_CONSOLE_EV_PORT_NAMED = 2,	 /* it got its name */
	VIO_CONSOLE_EV_CONSOLE = 3,	 /* the device marked it as a console */
	VIO_CONSOLE_EV_HOST_OPENED = 4,	 /* the host side connected: writes go through now */
	VIO_CONSOLE_EV_HOST_CLOSED = 5,	 /* the host side went away: writes get VIO_EAGAIN */
	VIO_CONSOLE_EV_DATA = 6,	 /* bytes arrived for vio_console_read */
	VIO_CONSOLE_EV_WRITABLE = 7,	 /* TX buffers came back: retry a refused write */
	VIO_CONSOLE_EV_RESIZE = 8	 /* cols/rows changed */
};

/* Runs inside vio_console_poll, so perhaps in interrupt context. */
typedef void (*vio_console_event_fn)(struct vio_console *con, uint32_t port,
				     enum vio_console_event ev, void *arg);

/* Options for vio_console_init. NULL, or a member left 0, means the default. */
struct vio_console_opts {
	/* A port changed or has data (see enum vio_console_event); NULL: no events. The
	 * events of init's own handshake are not reported: look at the ports after init. */
	vio_console_event_fn on_event;
	void *arg; /* passed to on_event */
	/* Blocking writes give up when the device took nothing for this long
	 * (0: VIO_CONSOLE_TIMEOUT_NS). */
	uint64_t timeout_ns;
	/* ... and when they have taken this long in all (0: VIO_CONSOLE_DEADLINE_NS). */
	uint64_t deadline_ns;
	/*
	 * Optional: a blocking write (and init's handshake) calls wait(con, arg) after every
	 * VIO_CONSOLE_SPIN_NS of polling, at a point where the driver's state is whole. A
	 * kernel that calls with interrupts off lets them in here (this device's interrupt
	 * handlers may then run vio_console_poll), or yields the CPU; it may return at once.
	 * NULL: those calls spin until done or given up, in whatever interrupt state their
	 * caller gave them. Not called from vio_console_poll or any non-blocking call.
	 */
	void (*wait)(struct vio_console *con, void *arg);
};

/* A port as vio_console_port_info reports it (a copy). */
struct vio_console_port_info {
	uint32_t id;
	char name[VIO_CONSOLE_NAME_MAX]; /* "" until named; printable ASCII only */
	bool present;	     /* the device has added it (port 0 without MULTIPORT: always) */
	bool is_console;     /* the device marked it a console (port 0 without MULTIPORT: always) */
	bool host_open;	     /* the host side is connected (always true without MULTIPORT) */
	bool guest_open;     /* we sent PORT_OPEN 1 (always true without MULTIPORT) */
	uint16_t cols, rows; /* 0 until known (F_SIZE config for port 0, RESIZE messages) */
	uint32_t rx_pending; /* bytes received and not yet read */
};

/* Counters, free-running. */
struct vio_console_stats {
	uint64_t rx_bytes;	/* bytes handed to vio_console_read callers */
	uint64_t tx_bytes;	/* bytes queued by vio_console_write */
	uint64_t tx_full;	/* writes that could not queue it all at once */
	uint64_t ctrl_rx;	/* control messages received */
	uint64_t ctrl_tx;	/* control messages sent */
	uint64_t ctrl_bad;	/* ... received and ignored: short, unknown id or event */
	uint64_t bad_len;	/* completions claiming more bytes than posted: discarded */
	uint64_t ports_refused; /* PORT_ADD beyond the ports served: answered PORT_READY 0 */
	uint64_t log_dropped;	/* log lines about the device over VIO_CONSOLE_LOG_BURST a second */
};

/* One DMA buffer and the cookie vio_vq_add carries. Private to virtio_console.c as a whole. */
struct vio_console_buf {
	struct vio_console_port *port; /* owner; NULL for control buffers */
	uint8_t *data;
	uint32_t len; /* RX: bytes the device wrote; TX: bytes queued */
	uint32_t pos; /* RX: next byte to hand to the reader */
};

/* A port's state. Private to virtio_console.c as a whole: read it through
 * vio_console_port_info. */
struct vio_console_port {
	uint32_t id;
	bool present, is_console, host_open, guest_open;
	uint16_t cols, rows;
	char name[VIO_CONSOLE_NAME_MAX];
	struct vio_vq *rxq, *txq;
	struct vio_console_buf rx[VIO_CONSOLE_RX_BUFS];
	struct vio_console_buf tx[VIO_CONSOLE_TX_BUFS];
	uint16_t nrx, ntx;			/* buffers in use (the queues may be smaller) */
	uint16_t rx_ready[VIO_CONSOLE_RX_BUFS]; /* filled RX buffers, FIFO */
	uint16_t rx_head, rx_count;
	uint16_t tx_free[VIO_CONSOLE_TX_BUFS]; /* stack of idle TX buffers */
	uint16_t tx_nfree;
};

/*
 * The device. Caller-owned; vio_console_init fills it. `dev`, `stats`, `multiport` and
 * `nports` are read-only for the caller; the rest is private.
 */
struct vio_console {
	struct vio_dev *dev;
	struct vio_console_stats stats;
	bool multiport;	 /* VIRTIO_CONSOLE_F_MULTIPORT: ports come and go by control messages */
	uint32_t nports; /* ports served: ids 0..nports-1 */

	/* --- private to virtio_console.c -------------------------------------------------- */
	struct vio_console_opts con_opts;
	bool con_live; /* init's handshake is over: events are reported */
	struct vio_vq con_vqs[VIO_CONSOLE_NVQS];
	struct vio_console_port con_ports[VIO_CONSOLE_MAX_PORTS];

	struct vio_console_buf con_ctrl_rx[VIO_CONSOLE_CTRL_BUFS];
	struct vio_console_buf con_ctrl_tx[VIO_CONSOLE_CTRL_TX_BUFS];
	uint16_t con_nctrl_rx, con_nctrl_tx;
	uint16_t con_ctrl_tx_free[VIO_CONSOLE_CTRL_TX_BUFS];
	uint16_t con_ctrl_tx_nfree;
	struct virtio_console_control con_ctrl_pending[VIO_CONSOLE_CTRL_TX_BUFS]; /* FIFO */
	uint16_t con_pending_head, con_pending_count;
	bool con_polling;	       /* inside vio_console_poll: a nested call returns at once */
	uint64_t con_log_since;	       /* now_ns when the current second of log lines began */
	uint32_t con_log_lines;	       /* lines about the device logged in it */
	uint64_t con_log_dropped_seen; /* stats.log_dropped when last reported */

	void *con_pages[VIO_CONSOLE_DMA_PAGES]; /* the buffers' DMA pages, one at a time */
	uint16_t con_npages;
};

/*
 * Bring up a console device `dev` has been probed into: negotiate SIZE, MULTIPORT and
 * EMERG_WRITE when offered, set up the queues (port 0, and with MULTIPORT the control queues
 * and min(max_nr_ports, VIO_CONSOLE_MAX_PORTS) ports), post every RX buffer, set DRIVER_OK
 * (dev->name becomes "virtio-console"), then with MULTIPORT send DEVICE_READY and poll until
 * the control queue has been quiet for VIO_CONSOLE_SETTLE_NS, so that the ports the device
 * announces at once (QEMU: all of them) are present, named and open when init returns.
 * Events of that handshake are not reported: opts->on_event hears of what happens after, and
 * the ports are there to look at. `opts` may be NULL. Returns 0; VIO_ENODEV (not a console
 * device); VIO_ENOMEM; or the core's error. On failure the device is torn down and marked
 * FAILED, and nothing stays allocated. Not IRQ-safe.
 */
int vio_console_init(struct vio_console *con, struct vio_dev *dev,
		     const struct vio_console_opts *opts);

/*
 * Reap every completion: control messages (acting on them and answering PORT_READY), received
 * data (kept for vio_console_read), finished TX buffers (freed for writes); then send control
 * messages that were waiting for room. The queue callbacks call it; poll-mode kernels call it
 * from their loop or a timer. A call nested inside another (an interrupt during a blocking
 * call's poll) returns at once. Returns 0, or VIO_EIO when a queue is broken (the device broke
 * a ring rule), or VIO_ENEEDRESET (a queue is broken and the device needs a reset, 2.1.2).
 * Each call reaps at most the buffers that were with the device when it began (one handed
 * back empty goes back to the device after the reaping). IRQ-safe.
 */
int vio_console_poll(struct vio_console *con);

/*
 * The id of the port named `name` (exact match), or VIO_ENODEV. IRQ-safe.
 */
int vio_console_find_port(const struct vio_console *con, const char *name);

/*
 * The id of the console port: the lowest present port the device marked as a console (port 0
 * without MULTIPORT), or VIO_ENODEV. IRQ-safe.
 */
int vio_console_find_console(const struct vio_console *con);

/*
 * Copy port `id`'s state into *info. Returns 0; VIO_EINVAL (id not served); VIO_ENODEV (not
 * present now; *info is still filled). IRQ-safe.
 */
int vio_console_port_info(const struct vio_console *con, uint32_t id,
			  struct vio_console_port_info *info);

/*
 * Open or close the guest side of port `id`: send PORT_OPEN with value 1 or 0 (QEMU passes
 * host data to a port only while the guest has it open). Without MULTIPORT there is nothing
 * to send and port 0 is always open. Returns 0; VIO_EINVAL (id not served); VIO_ENODEV (not
 * present); VIO_ENOSPC (too many control messages waiting). IRQ-safe.
 */
int vio_console_open(struct vio_console *con, uint32_t id);
int vio_console_close(struct vio_console *con, uint32_t id);

/*
 * Copy up to `len` received bytes of port `id` into buf and post the emptied RX buffers
 * again. Returns 1..len; VIO_EAGAIN when none is waiting; VIO_EINVAL (id not served, len 0 or
 * above INT32_MAX, buf NULL); VIO_ENODEV (port not present); VIO_EIO (queue broken and
 * nothing left to read), VIO_ENEEDRESET (the same, and the device needs a reset). Never
 * waits. IRQ-safe.
 */
int vio_console_read(struct vio_console *con, uint32_t id, void *buf, size_t len);

/*
 * Queue up to `len` bytes for port `id`, copied into free TX buffers (so buf may be reused at
 * once). Non-blocking: returns the bytes queued, 1..len, or VIO_EAGAIN when no TX buffer is
 * free or the host side is closed. Blocking: polls for completions (calling opts.wait every
 * VIO_CONSOLE_SPIN_NS) until all len bytes are queued and returns len, or returns fewer
 * when the device took nothing for opts.timeout_ns or the write took opts.deadline_ns in
 * all (those bytes are queued and will go out: do not resend them), or VIO_ETIMEDOUT when
 * it could queue none. VIO_EINVAL (id not served, len 0 or above INT32_MAX, buf NULL);
 * VIO_ENODEV (port not present); VIO_EIO (queue broken); VIO_ENEEDRESET in place of
 * VIO_EIO or VIO_ETIMEDOUT when the device says it needs a reset (2.1.2). Non-blocking:
 * IRQ-safe. Blocking: not IRQ-safe, but works with interrupts disabled.
 */
int vio_console_write(struct vio_console *con, uint32_t id, const void *buf, size_t len,
		      bool block);

/*
 * Emergency write (VIRTIO_CONSOLE_F_EMERG_WRITE): one byte to port 0 through config space,
 * with no queue, buffer or interrupt involved, for panic paths. Returns 0 or VIO_ENOTSUP
 * (not negotiated). IRQ-safe.
 */
int vio_console_emerg_write(struct vio_console *con, char c);

/*
 * Reset the device, free queues, buffers and vectors. Unread bytes are dropped and queued TX
 * bytes may not have gone out. The vio_dev may then be probed again. Returns 0, or
 * VIO_EDEAD when the device did not confirm the reset: it may still write the buffers, so
 * they are kept (leaked), the device is marked FAILED and the error is logged. Safe after a
 * failed init and twice (the second call returns 0). Not IRQ-safe.
 */
int vio_console_fini(struct vio_console *con);

#endif
