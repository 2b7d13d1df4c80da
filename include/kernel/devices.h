/*
 * The kernel's devices: PCI functions, virtio-mmio windows, and the virtio devices on them,
 * each bound to its vio driver in the order the brief gives (entropy, console, block, net,
 * the GPU and input devices, then the balloon).
 *
 * Concurrency: the vio library takes no locks. This kernel has one CPU, so it keeps a
 * driver's interrupt handler and thread code apart by calling every driver function from
 * thread context with interrupts disabled (DEV_CALL below).
 */
#ifndef KERNEL_DEVICES_H
#define KERNEL_DEVICES_H

#include <kernel/arch.h>
#include <vio/balloon.h>
#include <vio/blk.h>
#include <vio/console.h>
#include <vio/gpu.h>
#include <vio/input.h>
#include <vio/net.h>
#include <vio/p9.h>
#include <vio/pci.h>
#include <vio/rng.h>
#include <vio/scsi.h>
#include <vio/virtio.h>

#define MAX_PCI_FUNCTIONS 64
#define MAX_MMIO_WINDOWS 16
#define MAX_VIRTIO_DEVICES 16
#define MAX_PER_DRIVER 4

/* Run `expr` with interrupts off (see above) and give its value. */
#define DEV_CALL(expr)                                                                             \
	({                                                                                         \
		uint64_t dev_call_flags_ = irq_save();                                             \
		__typeof__(expr) dev_call_ret_ = (expr);                                           \
		irq_restore(dev_call_flags_);                                                      \
		dev_call_ret_;                                                                     \
	})
/* The same for a statement; the network commands run lwIP (no locks either) this way too. */
#define DEV_DO(stmt)                                                                               \
	do {                                                                                       \
		uint64_t dev_call_flags_ = irq_save();                                             \
		stmt;                                                                              \
		irq_restore(dev_call_flags_);                                                      \
	} while (0)

struct kvirtio {
	const struct vio_pci_dev *pci; /* the function it was probed from, or NULL: */
	uint64_t mmio_base;            /* virtio-mmio: the window it was probed from */
	struct vio_dev dev;
	int err;   /* 0 when a driver has it, else the vio_err that stopped it */
	void *drv; /* struct vio_rng / _console / _blk / _net / _gpu / _input / _balloon, or NULL */
	int unit;  /* index among devices of its type: rng0, blk1, ... */
	uint64_t irqs_seen, done_seen; /* queue counters at the last storm check (devices.c) */
	bool irq_silenced;	       /* its interrupts were masked for a storm */
	uint64_t irq_backoff_ns;       /* the last storm's back-off (0: none, or calm since) */
	uint64_t irq_retry_at;	       /* silenced: when to unmask; else when it was unmasked */
};

extern struct vio_pci_bus pci_bus;
extern struct vio_pci_dev pci_functions[MAX_PCI_FUNCTIONS];
extern int n_pci_functions;
extern struct kvirtio virtio_devices[MAX_VIRTIO_DEVICES];
extern int n_virtio_devices;

/* Enumerate PCI (ECAM when ACPI has an MCFG, else port I/O), probe every virtio function and
 * every virtio-mmio window (mmio_windows), bind drivers (entropy, console, block, net, GPU,
 * input, balloon), seed the PRNG, print the device table. A balloon also becomes the page
 * allocator's out-of-memory handler; the first GPU becomes the screen (fbcon.c). vio.irq=poll on the command line gives the library a
 * port without interrupt hooks: every device is then polled. */
void devices_init(void);
/* One line per virtio device: its unit name and what the core says of it, or why no driver
 * has it. */
void devices_print_table(void);
/* Let the drivers and the kernel's services (console echo, net echo, balloon inflate and
 * deflate) make progress. */
void devices_poll(void);

/* The n-th bound device of a type, or NULL. */
struct vio_rng *dev_rng(int n);
struct vio_console *dev_console(int n);
struct vio_blk *dev_blk(int n);
struct vio_net *dev_net(int n);
struct vio_balloon *dev_balloon(int n);
struct vio_gpu *dev_gpu(int n);
struct vio_input *dev_input(int n);
struct vio_9p *dev_9p(int n);
struct vio_scsi *dev_scsi(int n);
/* cmd_scsi.c: the LUN table of a SCSI adapter, one line per unit. */
void scsi_print_luns(const struct vio_scsi *s);
/* The fid of 9p device n's export root (attached at boot), or P9_NOFID. */
uint32_t p9_root(int n);
/* A device by its unit name ("blk0", "net1", "rng0", "cons0", "balloon0", "9p0", "gpu0",
 * "input0") or NULL. */
struct kvirtio *dev_by_name(const char *name);
/* "blk0" etc. for a device. */
const char *dev_unit_name(const struct kvirtio *kv, char *buf, size_t size);

/* mmio_probe.c: a virtio-mmio device's register window and line, as the platform gave them. */
struct mmio_window {
	uint64_t base, size;
	uint32_t irq;     /* GSI, or VIO_NO_IRQ */
	const char *from; /* "DSDT" or "command line" */
};
/* The virtio-mmio windows the DSDT and the command line (virtio_mmio.device=) name, each
 * checked and logged; a refused one is logged with the reason. Returns how many it stored. */
int mmio_windows(struct mmio_window *out, int max);

/* glue_console.c: console port 0 (the second shell and the log mirror). */
int console_read_port0(void); /* next byte typed on port 0, or -1 */
void console_mirror(const char *s, size_t n);
/* glue_net.c: frame echo on a net device: every frame received goes back with the MACs
 * swapped. Returns how many frames too large to echo (coalesced by the host) it dropped
 * since the last call. */
uint64_t net_echo_enable(int unit, bool on);
/* ... and with the report on, each frame's last 8 bytes become the pair it came in on, the
 * hash report and the hash value (big-endian), for the RSS test. */
void net_echo_report(int unit, bool on);
/* glue_balloon.c: pages all balloons hold now (taken from the page allocator and lent to the
 * host). */
uint64_t balloon_pages_held(void);

#endif
