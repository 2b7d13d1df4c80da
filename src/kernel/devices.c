/*
 * devices.c: find the PCI functions and the virtio-mmio windows (mmio_probe.c), probe the
 * virtio devices on them with the vio core, and bind each to its vio driver in the order the
 * devices depend on each other: entropy first (it seeds
 * the kernel's PRNG, which gives a NIC without a MAC its random one), then the console (so
 * the rest of the boot log reaches port 0), block, net, SCSI, 9p, the screen (virtio-gpu) and
 * input (keyboards, tablets: fbcon.c, kbd.c), and last the memory balloon (it
 * takes pages away, so everything that needs memory to come up has had its share). Each
 * driver logs its device line; a device the core or its driver refuses is reported and left
 * alone, never trusted.
 *
 * This file is the part every driver shares: the device table, bind(), and devices_poll(),
 * the loop that lets each driver and its kernel service make progress. What one driver
 * needs from this kernel beyond that, its glue, is in a file of its own:
 *
 *   glue_console.c   the log mirror and second shell on port 0, echo on org.vio.echo* ports
 *   glue_net.c       link messages and the Ethernet frame echo (lwIP is in net/)
 *   glue_balloon.c   pages from the page allocator, guest stats, deflate on OOM
 *
 * rng (its one piece of glue seeds the PRNG, in devices_init) and blk need no file of their
 * own: the shell and the tests call them directly (and rng_wait and blk_wait, below, let
 * interrupts in while they wait).
 *
 *   ./run-qemu.sh                     (the default device set: rng, serial with a console,
 *                                      blk, net, on PCI)
 *   ./run-qemu.sh --machine microvm   (the same devices on virtio-mmio)
 */
#include <kernel/acpi.h>
#include <kernel/apic.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/random.h>
#include <kernel/screen.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <kernel/vio_port.h>
#include <string.h>
#include <vio/err.h>
#include <vio/log.h>

#include "glue.h"
#include "net/net_stack.h"

struct vio_pci_bus pci_bus;
struct vio_pci_dev pci_functions[MAX_PCI_FUNCTIONS];
int n_pci_functions;
struct kvirtio virtio_devices[MAX_VIRTIO_DEVICES];
int n_virtio_devices;

struct vio_rng rngs[MAX_PER_DRIVER];
struct vio_console consoles[MAX_PER_DRIVER];
struct vio_blk blks[MAX_PER_DRIVER];
struct vio_net nets[MAX_PER_DRIVER];
struct vio_balloon balloons[MAX_PER_DRIVER];
static struct vio_scsi scsis[MAX_PER_DRIVER];
struct vio_9p p9s[MAX_PER_DRIVER];
static uint32_t p9_roots[MAX_PER_DRIVER];
int n_rng, n_cons, n_blk, n_net, n_balloon, n_9p, n_scsi;
struct vio_gpu gpus[MAX_PER_DRIVER];
struct vio_input inputs[MAX_PER_DRIVER];
int n_gpu, n_input;

/* --- binding ---------------------------------------------------------------------------- */

void dev_irq_window(void)
{
	if (in_interrupt())
		return;
	uint64_t flags = irq_save();
	sti();
	__asm__ volatile("nop"); /* sti takes effect after the next instruction */
	cli();
	irq_restore(flags);
}

bool dev_may_wait(void)
{
	return irqs_enabled() && !in_interrupt();
}

static void rng_wait(struct vio_rng *rng, void *arg)
{
	(void)rng;
	(void)arg;
	dev_irq_window();
}

/*
 * vio_blk_opts.wait: a synchronous disk call is polling for its answer, with interrupts off
 * (DEV_CALL), and calls this every VIO_BLK_SPIN_NS: the tick, the serial port and the disk's
 * own completion come in here, however slow the disk.
 */
static void blk_wait(struct vio_blk *blk, void *arg)
{
	(void)blk;
	(void)arg;
	dev_irq_window();
}

/* vio_scsi_opts.wait: like blk_wait, for a SCSI command waiting for its target. */
static void scsi_wait(struct vio_scsi *s, void *arg)
{
	(void)s;
	(void)arg;
	dev_irq_window();
}

/* Find the units behind a SCSI adapter (at boot, and again when it reports a hot-plug). */
static int scsi_scan(int unit)
{
	int n = DEV_CALL(vio_scsi_scan(&scsis[unit]));
	if (n < 0)
		kprintf("scsi%d: scan failed: %s\n", unit, vio_strerror(n));
	else
		kprintf("scsi%d: %d unit(s)\n", unit, n);
	scsi_print_luns(&scsis[unit]);
	return n;
}

/* vio_9p_opts.wait: like blk_wait, for a 9p request waiting for the host. */
static void p9_wait(struct vio_9p *fs, void *arg)
{
	(void)fs;
	(void)arg;
	dev_irq_window();
}

/* vio_gpu_opts.wait: a screen command waits for its answer with interrupts off. */
static void gpu_wait(struct vio_gpu *gpu, void *arg)
{
	(void)gpu;
	(void)arg;
	dev_irq_window();
}

static int bind(struct kvirtio *kv)
{
	int err;
	switch (kv->dev.device_id) {
	case VIRTIO_ID_RNG: {
		if (n_rng == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_rng;
		struct vio_rng_opts opts = {.wait = rng_wait};
		if ((err = vio_rng_init(&rngs[n_rng], &kv->dev, &opts)))
			return err;
		kv->drv = &rngs[n_rng++];
		return 0;
	}
	case VIRTIO_ID_CONSOLE: {
		if (n_cons == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_cons;
		kcons[n_cons].port0 = -1;
		struct vio_console_opts opts = console_opts(n_cons);
		if ((err = vio_console_init(&consoles[n_cons], &kv->dev, &opts)))
			return err;
		console_rescan(&consoles[n_cons], &kcons[n_cons]);
		kv->drv = &consoles[n_cons++];
		return 0;
	}
	case VIRTIO_ID_BLOCK:
		if (n_blk == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_blk;
		if ((err = vio_blk_init(&blks[n_blk], &kv->dev,
					&(struct vio_blk_opts){.wait = blk_wait})))
			return err;
		kv->drv = &blks[n_blk++];
		return 0;
	case VIRTIO_ID_NET: {
		if (n_net == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_net;
		struct vio_net_opts opts = net_opts(n_net);
		if ((err = vio_net_init(&nets[n_net], &kv->dev, &opts)))
			return err;
		net_rss_start(n_net);
		net_stack_attach(&nets[n_net], n_net);
		kv->drv = &nets[n_net++];
		return 0;
	}
	case VIRTIO_ID_SCSI: {
		if (n_scsi == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_scsi;
		struct vio_scsi_opts opts = {.wait = scsi_wait};
		if ((err = DEV_CALL(vio_scsi_init(&scsis[n_scsi], &kv->dev, &opts))))
			return err;
		kv->drv = &scsis[n_scsi];
		scsi_scan(n_scsi++);
		return 0;
	}
	case VIRTIO_ID_9P: {
		if (n_9p == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_9p;
		struct vio_9p_opts opts = {.wait = p9_wait};
		if ((err = DEV_CALL(vio_9p_init(&p9s[n_9p], &kv->dev, &opts))))
			return err;
		/* The export's root, for the shell's paths. */
		if ((err = DEV_CALL(vio_9p_attach(&p9s[n_9p], "root", &p9_roots[n_9p])))) {
			kprintf("9p%d: attach refused: %s (errno %s)\n", n_9p, vio_strerror(err),
				vio_9p_errno_name(p9s[n_9p].last_errno));
			DEV_CALL(vio_9p_fini(&p9s[n_9p]));
			return err;
		}
		kv->drv = &p9s[n_9p++];
		return 0;
	}
	case VIRTIO_ID_BALLOON: {
		if (n_balloon == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_balloon;
		kballoons[n_balloon] = (struct kballoon){.woken = true};
		struct vio_balloon_opts opts = balloon_opts(n_balloon);
		if ((err = vio_balloon_init(&balloons[n_balloon], &kv->dev, &opts)))
			return err;
		kv->drv = &balloons[n_balloon++];
		pmm_set_oom_handler(balloon_oom);
		return 0;
	}
	case VIRTIO_ID_GPU: {
		if (n_gpu == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_gpu;
		struct vio_gpu_opts opts = {.on_display = screen_display_changed, .wait = gpu_wait};
		if ((err = vio_gpu_init(&gpus[n_gpu], &kv->dev, &opts)))
			return err;
		screen_attach(&gpus[n_gpu]);
		kv->drv = &gpus[n_gpu++];
		return 0;
	}
	case VIRTIO_ID_INPUT: {
		if (n_input == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_input;
		struct vio_input_opts opts = input_opts(n_input);
		if ((err = vio_input_init(&inputs[n_input], &kv->dev, &opts)))
			return err;
		kv->drv = &inputs[n_input++];
		return 0;
	}
	default:
		return VIO_ENOTSUP;
	}
}

/*
 * vio.irq=poll: the library gets this kernel's port without its interrupt hooks (MSI-X, INTx,
 * platform lines), so no device is given an interrupt and every driver is polled, on PCI and
 * virtio-mmio alike.
 */
static const struct vio_port *choose_port(void)
{
	static struct vio_port polled;
	char v[8];
	if (!cmdline_get("vio.irq", v, sizeof(v)))
		return &kernel_vio_port;
	if (strcmp(v, "poll")) {
		kprintf("vio: unknown vio.irq=%s (only poll), interrupts stay on\n", v);
		return &kernel_vio_port;
	}
	polled = kernel_vio_port;
	polled.msix_alloc = NULL;
	polled.msix_free = NULL;
	polled.intx_attach = NULL;
	polled.platform_irq_attach = NULL;
	kprintf("vio: vio.irq=poll: no device gets an interrupt\n");
	return &polled;
}

/*
 * vio.ring=split: no device gets a packed ring (virtio 1.2 section 2.8), even when it offers
 * one (QEMU's packed=on): for comparing the two layouts on the same device set.
 */
static bool ring_split_only(void)
{
	char v[8];
	if (!cmdline_get("vio.ring", v, sizeof(v)))
		return false;
	if (!strcmp(v, "split")) {
		kprintf("vio: vio.ring=split: split rings only, even where packed is offered\n");
		return true;
	}
	kprintf("vio: unknown vio.ring=%s (only split), packed rings stay allowed\n", v);
	return false;
}

/* The ring layout a bound device's queues use. */
static const char *ring_layout(const struct vio_dev *dev)
{
	return vio_dev_has_feature(dev, VIRTIO_F_RING_PACKED) ? "packed" : "split";
}

/* Where a device is: its PCI address or its virtio-mmio window. */
static const char *where(const struct kvirtio *kv, char *buf, size_t size)
{
	if (kv->pci)
		return vio_pci_bdf(kv->pci, buf, size);
	vio_snprintf(buf, size, "mmio@%#llx", (unsigned long long)kv->mmio_base);
	return buf;
}

static void probe_pci(const struct vio_port *port)
{
	struct vio_pci_ecam ecam;
	const struct vio_pci_ecam *use = NULL;
	if (acpi.n_mcfg) {
		ecam = (struct vio_pci_ecam){acpi.mcfg[0].base, acpi.mcfg[0].segment,
					     acpi.mcfg[0].start_bus, acpi.mcfg[0].end_bus};
		use = &ecam;
	}
	int err = vio_pci_bus_init(&pci_bus, port, use);
	if (err && use) {
		kprintf("pci: ECAM unusable (%s), falling back to port I/O\n", vio_strerror(err));
		err = vio_pci_bus_init(&pci_bus, port, NULL);
	}
	if (err) {
		kprintf("pci: no config access (%s)\n", vio_strerror(err));
		return;
	}
	int found = vio_pci_enumerate_into(&pci_bus, pci_functions, MAX_PCI_FUNCTIONS);
	n_pci_functions = found < MAX_PCI_FUNCTIONS ? found : MAX_PCI_FUNCTIONS;
	kprintf("pci: %d function(s) via %s\n", found, pci_bus.use_ecam ? "ECAM" : "port I/O");

	for (int i = 0; i < n_pci_functions && n_virtio_devices < MAX_VIRTIO_DEVICES; i++) {
		if (vio_pci_virtio_id(&pci_functions[i]) < 0)
			continue;
		struct kvirtio *kv = &virtio_devices[n_virtio_devices++];
		kv->pci = &pci_functions[i];
		kv->err = vio_pci_probe(&kv->dev, kv->pci);
	}
}

/* An empty slot (device id 0) or a window without the virtio magic is no device: it gets no
 * row. Any other refusal (an unknown version, a window that cannot be mapped) does. */
static void probe_mmio(const struct vio_port *port)
{
	struct mmio_window w[MAX_MMIO_WINDOWS];
	int n = mmio_windows(w, MAX_MMIO_WINDOWS);
	for (int i = 0; i < n && n_virtio_devices < MAX_VIRTIO_DEVICES; i++) {
		struct kvirtio *kv = &virtio_devices[n_virtio_devices];
		*kv = (struct kvirtio){.mmio_base = w[i].base};
		kv->err = vio_mmio_probe(&kv->dev, port, w[i].base, w[i].size, w[i].irq);
		if (kv->err == VIO_ENODEV)
			kprintf("virtio-mmio: mmio@%#llx: no device there (no virtio magic, or an "
				"empty slot)\n",
				(unsigned long long)w[i].base);
		else
			n_virtio_devices++;
	}
}

void devices_init(void)
{
	static const uint32_t order[] = {VIRTIO_ID_RNG, VIRTIO_ID_CONSOLE, VIRTIO_ID_BLOCK,
					 VIRTIO_ID_NET, VIRTIO_ID_SCSI, VIRTIO_ID_9P, VIRTIO_ID_GPU,
					 VIRTIO_ID_INPUT,
					 VIRTIO_ID_BALLOON};
	const struct vio_port *port = choose_port();
	probe_pci(port);
	probe_mmio(port);
	bool split_only = ring_split_only();
	for (int i = 0; i < n_virtio_devices; i++)
		virtio_devices[i].dev.split_only = split_only;
	for (size_t o = 0; o < ARRAY_SIZE(order); o++) {
		for (int i = 0; i < n_virtio_devices; i++) {
			struct kvirtio *kv = &virtio_devices[i];
			if (kv->err || kv->dev.device_id != order[o])
				continue;
			/* Masked like every other call: a device's interrupt handler is attached
			 * during its init, and must not run in the middle of it (DEV_CALL). The
			 * drivers' wait hooks let interrupts in where they poll. */
			kv->err = DEV_CALL(bind(kv));
			if (kv->dev.device_id == VIRTIO_ID_RNG && !kv->err && kv->unit == 0) {
				uint8_t seed[32];
				if (DEV_CALL(vio_rng_read(kv->drv, seed, sizeof(seed), true)) ==
				    (int)sizeof(seed))
					random_seed(seed, sizeof(seed));
			}
		}
	}
	for (int i = 0; i < n_virtio_devices; i++) {
		struct kvirtio *kv = &virtio_devices[i];
		char loc[32];
		if (!kv->drv)
			kprintf("vio: %s %s: %s\n", where(kv, loc, sizeof(loc)),
				vio_device_type_name(kv->dev.device_id),
				kv->err == VIO_ENOTSUP ? "no driver" : vio_strerror(kv->err));
	}
	if (n_rng && !random_seeded())
		kprintf("random: virtio-rng gave no seed; PRNG seeded from the TSC\n");
}

/*
 * Interrupts that bring no work. trap.c cuts off a vector that fires faster than any device
 * could have work for; a device can also storm more slowly, interrupting again and again
 * with nothing in its queues, and that costs the kernel all the same. So, ten times a
 * second, each device's interrupts (the busiest queue's count: a shared vector or INTx line
 * counts every interrupt on every queue) are held against the requests its queues returned.
 * At least STORM_IRQS interrupts with fewer than one in ten bringing a completion is a
 * storm: the port masks the device's interrupts at the source and devices_poll, which runs
 * every device whether it interrupts or not, serves it. (A device that does have work never
 * looks like that; were one taken for a storm, it would lose only its wake-ups.) After a
 * back-off (trap.c's: 1 s, doubling on each new storm) its interrupts are unmasked again.
 */
#define STORM_PERIOD_NS 100000000ull
#define STORM_IRQS 200

/* Mask a device's interrupts at the source for a storm, or unmask them after the back-off
 * (not those trap.c holds cut off). */
static void set_silenced(struct kvirtio *kv, bool silenced, uint64_t now)
{
	if (kv->pci)
		vio_port_set_silenced(kv->pci, kv->dev.t.pci.nvectors, silenced);
	else
		vio_port_set_line_silenced(kv->dev.irq_line, silenced); /* virtio-mmio: its line */
	kv->irq_silenced = silenced;
	if (!silenced)
		kv->irq_retry_at = now;
}

static void check_idle_interrupts(void)
{
	static uint64_t next;
	uint64_t now = clock_ns();
	if (now < next)
		return;
	next = now + STORM_PERIOD_NS;
	for (int i = 0; i < n_virtio_devices; i++) {
		struct kvirtio *kv = &virtio_devices[i];
		char unit[16];
		if (kv->irq_silenced && now >= kv->irq_retry_at) {
			set_silenced(kv, false, now);
			kprintf("vio: %s: interrupts unmasked after %llu s\n",
				dev_unit_name(kv, unit, sizeof(unit)),
				(unsigned long long)(kv->irq_backoff_ns / 1000000000));
		}
		if (!kv->drv || kv->irq_silenced || kv->dev.irq_mode == VIO_IRQ_POLL)
			continue;
		if (irq_storm_calm(kv->irq_backoff_ns, kv->irq_retry_at, now))
			kv->irq_backoff_ns = 0;
		uint64_t irqs = 0, done = 0;
		for (uint16_t q = 0; q < kv->dev.nvqs; q++) {
			const struct vio_vq_stats *st = &kv->dev.vqs[q].stats;
			irqs = st->interrupts > irqs ? st->interrupts : irqs;
			done += st->completions;
		}
		uint64_t d_irqs = irqs - kv->irqs_seen, d_done = done - kv->done_seen;
		kv->irqs_seen = irqs;
		kv->done_seen = done;
		if (d_irqs < STORM_IRQS || d_done * 10 >= d_irqs)
			continue;
		kv->irq_backoff_ns = irq_storm_backoff(kv->irq_backoff_ns);
		kv->irq_retry_at = now + kv->irq_backoff_ns;
		kprintf("vio: %s: %llu interrupts in %llu ms brought %llu completions: an interrupt "
			"storm; masked, the device is polled; tried again in %llu s\n",
			dev_unit_name(kv, unit, sizeof(unit)), (unsigned long long)d_irqs,
			(unsigned long long)(STORM_PERIOD_NS / 1000000), (unsigned long long)d_done,
			(unsigned long long)(kv->irq_backoff_ns / 1000000000));
		set_silenced(kv, true, now);
	}
}

void devices_poll(void)
{
	irq_storms_retry();
	check_idle_interrupts();
	for (int i = 0; i < n_cons; i++)
		DEV_DO(console_service(i));
	for (int i = 0; i < n_blk; i++)
		DEV_DO(vio_blk_poll(&blks[i]));
	for (int i = 0; i < n_net; i++)
		DEV_DO(net_service(i));
	for (int i = 0; i < n_scsi; i++) {
		/* Events come in here; a hot-plug asks for the targets to be asked again. */
		DEV_DO(vio_scsi_poll(&scsis[i]));
		if (scsis[i].rescan)
			scsi_scan(i);
	}
	for (int i = 0; i < n_balloon; i++)
		DEV_DO(balloon_service(i));
	for (int i = 0; i < n_gpu; i++)
		DEV_DO(vio_gpu_poll(&gpus[i]));
	for (int i = 0; i < n_input; i++)
		DEV_DO(input_service(i));
	lwip_poll();
}

/* --- lookup and listing ----------------------------------------------------------------- */

struct vio_rng *dev_rng(int n) { return n >= 0 && n < n_rng ? &rngs[n] : NULL; }
struct vio_console *dev_console(int n) { return n >= 0 && n < n_cons ? &consoles[n] : NULL; }
struct vio_blk *dev_blk(int n) { return n >= 0 && n < n_blk ? &blks[n] : NULL; }
struct vio_net *dev_net(int n) { return n >= 0 && n < n_net ? &nets[n] : NULL; }
struct vio_balloon *dev_balloon(int n) { return n >= 0 && n < n_balloon ? &balloons[n] : NULL; }
struct vio_9p *dev_9p(int n) { return n >= 0 && n < n_9p ? &p9s[n] : NULL; }
struct vio_scsi *dev_scsi(int n) { return n >= 0 && n < n_scsi ? &scsis[n] : NULL; }
uint32_t p9_root(int n) { return n >= 0 && n < n_9p ? p9_roots[n] : P9_NOFID; }
struct vio_gpu *dev_gpu(int n) { return n >= 0 && n < n_gpu ? &gpus[n] : NULL; }
struct vio_input *dev_input(int n) { return n >= 0 && n < n_input ? &inputs[n] : NULL; }

static const char *unit_prefix(uint32_t id)
{
	switch (id) {
	case VIRTIO_ID_RNG: return "rng";
	case VIRTIO_ID_CONSOLE: return "cons";
	case VIRTIO_ID_BLOCK: return "blk";
	case VIRTIO_ID_NET: return "net";
	case VIRTIO_ID_BALLOON: return "balloon";
	case VIRTIO_ID_9P: return "9p";
	case VIRTIO_ID_GPU: return "gpu";
	case VIRTIO_ID_INPUT: return "input";
	case VIRTIO_ID_SCSI: return "scsi";
	default: return "virtio";
	}
}

const char *dev_unit_name(const struct kvirtio *kv, char *buf, size_t size)
{
	vio_snprintf(buf, size, "%s%d", unit_prefix(kv->dev.device_id), kv->drv ? kv->unit : -1);
	return buf;
}

struct kvirtio *dev_by_name(const char *name)
{
	char unit[16];
	for (int i = 0; i < n_virtio_devices; i++)
		if (virtio_devices[i].drv &&
		    !strcmp(dev_unit_name(&virtio_devices[i], unit, sizeof(unit)), name))
			return &virtio_devices[i];
	return NULL;
}

void devices_print_table(void)
{
	char line[160], loc[32], unit[16];
	for (int i = 0; i < n_virtio_devices; i++) {
		const struct kvirtio *kv = &virtio_devices[i];
		if (!kv->drv) {
			kprintf("  -      %s %s: %s\n", where(kv, loc, sizeof(loc)),
				vio_device_type_name(kv->dev.device_id),
				kv->err == VIO_ENOTSUP ? "no driver" : vio_strerror(kv->err));
			continue;
		}
		vio_dev_describe(&kv->dev, line, sizeof(line));
		kprintf("  %-6s %s ring=%s\n", dev_unit_name(kv, unit, sizeof(unit)), line,
			ring_layout(&kv->dev));
	}
	if (!n_virtio_devices)
		kprintf("  no virtio devices\n");
}
