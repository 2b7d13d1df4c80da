/*
 * devices.c: find the PCI functions, probe the virtio ones with the vio core, and bind each
 * to its vio driver in the order the devices depend on each other: entropy first (it seeds
 * the kernel's PRNG, which gives a NIC without a MAC its random one), then the console (so
 * the rest of the boot log reaches port 0), block, net, and last the memory balloon (it
 * takes pages away, so everything that needs memory to come up has had its share). Each
 * driver logs its device line; a device the core or its driver refuses is reported and left
 * alone, never trusted.
 *
 * It also runs the kernel's small device services from devices_poll(): the virtio-console
 * log mirror and second shell on port 0, an echo on ports named org.vio.echo*, the
 * Ethernet frame echo used by the network tests, and the balloon's inflate and deflate
 * work. The balloon also hooks the page allocator's out-of-memory path (pmm_set_oom_handler)
 * so that, with DEFLATE_ON_OOM, an allocation that would fail gets balloon pages instead.
 *
 *   ./run-qemu.sh    (the default device set: rng, serial with a console, blk, net)
 *   -device virtio-balloon-pci,deflate-on-oom=on   and QMP `balloon` to move it
 */
#include <kernel/acpi.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/random.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <kernel/vio_port.h>
#include <string.h>
#include <vio/err.h>
#include <vio/log.h>

#include "net/net_stack.h"

struct vio_pci_bus pci_bus;
struct vio_pci_dev pci_functions[MAX_PCI_FUNCTIONS];
int n_pci_functions;
struct kvirtio virtio_devices[MAX_VIRTIO_DEVICES];
int n_virtio_devices;

static struct vio_rng rngs[MAX_PER_DRIVER];
static struct vio_console consoles[MAX_PER_DRIVER];
static struct vio_blk blks[MAX_PER_DRIVER];
static struct vio_net nets[MAX_PER_DRIVER];
static struct vio_balloon balloons[MAX_PER_DRIVER];
static int n_rng, n_cons, n_blk, n_net, n_balloon;

/* --- console services ------------------------------------------------------------------- */

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
};
static struct kconsole kcons[MAX_PER_DRIVER];

static const char *const console_event_names[] = {
	"added", "removed", "named", "is a console", "opened by the host", "closed by the host",
	"has data", "writable", "resized"};

static void console_event(struct vio_console *con, uint32_t port, enum vio_console_event ev,
			  void *arg)
{
	struct kconsole *kc = arg;
	(void)con;
	if (ev != VIO_CONSOLE_EV_DATA && ev != VIO_CONSOLE_EV_WRITABLE)
		kprintf("console: port %u %s\n", port, console_event_names[ev]);
	if (ev != VIO_CONSOLE_EV_DATA && ev != VIO_CONSOLE_EV_WRITABLE)
		kc->changed = true;
}

/* Open the console port and every echo port; called when ports change. */
static void console_rescan(struct vio_console *con, struct kconsole *kc)
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

static void console_service(int i)
{
	struct vio_console *con = &consoles[i];
	struct kconsole *kc = &kcons[i];
	vio_console_poll(con);
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
	 * 50 ms (a slow host); only a host that takes nothing for that long loses bytes, and
	 * those are counted. */
	if (!n_cons || kcons[0].port0 < 0 || in_interrupt() || mirroring)
		return;
	mirroring = true;
	uint64_t flags = irq_save(), deadline = clock_ns() + 50000000ull;
	while (n) {
		int w = vio_console_write(&consoles[0], (uint32_t)kcons[0].port0, s, n, false);
		if (w > 0) {
			s += w;
			n -= (size_t)w;
			continue;
		}
		if (w != VIO_EAGAIN || clock_ns() > deadline) {
			mirror_dropped += n;
			break;
		}
		vio_console_poll(&consoles[0]);
	}
	irq_restore(flags);
	mirroring = false;
}

/* --- net services ----------------------------------------------------------------------- */

static bool net_echo[MAX_PER_DRIVER];

void net_echo_enable(int unit, bool on)
{
	if (unit >= 0 && unit < n_net)
		net_echo[unit] = on;
	net_stack_set_rx(unit, !on); /* one consumer of RX at a time: the echo, or lwIP */
}

static void net_link(struct vio_net *net, bool up, void *arg)
{
	(void)net;
	kprintf("net%d: link %s\n", (int)(intptr_t)arg, up ? "up" : "down");
}

/* Send every received frame back with source and destination swapped. */
static void net_echo_service(struct vio_net *net)
{
	static uint8_t frame[VIO_NET_MAX_MTU + VIO_NET_ETH_HLEN + VIO_NET_VLAN_HLEN];
	for (int budget = 0; budget < 64; budget++) {
		int n = vio_net_recv_copy(net, frame, sizeof(frame), NULL);
		if (n < VIO_NET_ETH_HLEN)
			return;
		uint8_t tmp[6];
		memcpy(tmp, frame, 6);
		memcpy(frame, frame + 6, 6);
		memcpy(frame + 6, tmp, 6);
		for (int tries = 0; vio_net_send(net, frame, (uint32_t)n, NULL) == VIO_ENOSPC; tries++) {
			if (tries > 1000)
				return; /* counted by the driver as tx_full */
			vio_net_poll(net);
		}
	}
}

/* --- balloon services -------------------------------------------------------------------- */

/*
 * The balloon's pages come from, and go back to, the kernel's page allocator one at a time.
 * The driver keeps the PFNs; the kernel only counts what it lent (pmm_free_pages() goes
 * down by every page the balloon holds, which `mem` shows).
 *
 * The driver takes no locks and must not be re-entered, and pmm_alloc may call back into it
 * (the OOM handler below). `busy` is set around every call into a balloon so that an
 * allocation made from inside the driver (page_take, or a bookkeeping page from
 * port->dma_alloc) fails plainly instead of deflating the balloon that is asking.
 */
struct kballoon {
	volatile bool woken; /* set in IRQ context by ops->wake: the host changed something */
	bool busy;	     /* a vio_balloon_* call is running on this device */
	bool stopped;	     /* the driver reported a broken device; logged once */
	uint64_t next_poll;  /* clock_ns() of the next unprompted poll (about once a second) */
};
static struct kballoon kballoons[MAX_PER_DRIVER];

/* Extra pages deflated on OOM beyond the request, as Linux does (VIRTIO_BALLOON_OOM_NR_PAGES):
 * one host round trip per 1 MiB rather than per page. */
#define BALLOON_OOM_PAGES 256
#define BALLOON_TICK_NS	  1000000000ull

static int balloon_page_take(void *arg, uint32_t *pfn)
{
	(void)arg;
	uint64_t pa = pmm_alloc(1, 1);
	if (!pa)
		return VIO_ENOMEM;
	if (pa / PAGE_SIZE > UINT32_MAX) { /* the spec's PFNs are 32 bits: not this page */
		pmm_free(pa, 1);
		return VIO_ENOMEM;
	}
	*pfn = (uint32_t)(pa / PAGE_SIZE);
	return 0;
}

static void balloon_page_give(void *arg, uint32_t pfn)
{
	(void)arg;
	pmm_free((uint64_t)pfn * PAGE_SIZE, 1);
}

/*
 * What the host sees in `guest-stats`. Only what is true: this kernel has no swap, no
 * demand paging and no page cache, so those counters are honestly zero, and memory that is
 * free is all the memory a new program could get.
 */
static unsigned balloon_stats(void *arg, struct vio_balloon_stat_val *out, unsigned max)
{
	(void)arg;
	const uint64_t free = pmm_free_pages() * PAGE_SIZE;
	const struct vio_balloon_stat_val vals[] = {
		{VIRTIO_BALLOON_S_SWAP_IN, 0},	   {VIRTIO_BALLOON_S_SWAP_OUT, 0},
		{VIRTIO_BALLOON_S_MAJFLT, 0},	   {VIRTIO_BALLOON_S_MINFLT, 0},
		{VIRTIO_BALLOON_S_MEMFREE, free},
		{VIRTIO_BALLOON_S_MEMTOT, pmm_total_pages() * PAGE_SIZE},
		{VIRTIO_BALLOON_S_AVAIL, free},	   {VIRTIO_BALLOON_S_CACHES, 0},
	};
	unsigned n = 0;
	for (; n < ARRAY_SIZE(vals) && n < max; n++)
		out[n] = vals[n];
	return n;
}

/* IRQ context: a new target or a stats request. devices_poll does the work. */
static void balloon_wake(void *arg)
{
	((struct kballoon *)arg)->woken = true;
}

static const struct vio_balloon_ops balloon_ops = {
	.page_take = balloon_page_take,
	.page_give = balloon_page_give,
	.stats = balloon_stats,
	.wake = balloon_wake,
};

/*
 * One bounded step (at most VIO_BALLOON_BATCHES_PER_POLL batches) when the host asked for
 * something, when the driver has work, or once a second anyway: after the allocator ran
 * short the driver waits VIO_BALLOON_RETRY_NS, and only a later poll notices that time is up.
 */
static void balloon_service(int i)
{
	struct vio_balloon *b = &balloons[i];
	struct kballoon *kb = &kballoons[i];
	uint64_t t = clock_ns();

	if (kb->stopped || kb->busy)
		return;
	if (!kb->woken && !vio_balloon_pending(b) && t < kb->next_poll)
		return;
	kb->woken = false;
	kb->next_poll = t + BALLOON_TICK_NS;
	kb->busy = true;
	int err = vio_balloon_poll(b);
	kb->busy = false;
	if (err < 0) {
		kb->stopped = true;
		kprintf("balloon%d: stopped (%s), holding %u pages until shutdown\n", i,
			vio_strerror(err), vio_balloon_actual(b));
	}
}

/*
 * pmm's out-of-memory handler: give back at least what was asked for (plus a little, see
 * BALLOON_OOM_PAGES) from balloons that negotiated DEFLATE_ON_OOM. Never from an interrupt
 * handler (the driver may be mid-call underneath) and never from a balloon that is itself
 * the caller (busy).
 */
static bool balloon_oom(size_t npages)
{
	uint64_t want = npages + BALLOON_OOM_PAGES;
	bool freed = false;

	if (in_interrupt())
		return false;
	for (int i = 0; i < n_balloon && want; i++) {
		struct vio_balloon *b = &balloons[i];
		struct kballoon *kb = &kballoons[i];
		if (kb->busy || kb->stopped || !b->oom || !vio_balloon_actual(b))
			continue;
		kb->busy = true;
		int got = DEV_CALL(vio_balloon_deflate_for_oom(
		    b, want > UINT32_MAX ? UINT32_MAX : (uint32_t)want));
		kb->busy = false;
		if (got > 0) {
			freed = true;
			want -= (uint64_t)got < want ? (uint64_t)got : want;
		}
	}
	return freed;
}

uint64_t balloon_pages_held(void)
{
	uint64_t held = 0;
	for (int i = 0; i < n_balloon; i++)
		held += vio_balloon_actual(&balloons[i]);
	return held;
}

/* --- binding ---------------------------------------------------------------------------- */

static int bind(struct kvirtio *kv)
{
	int err;
	switch (kv->dev.device_id) {
	case VIRTIO_ID_RNG:
		if (n_rng == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_rng;
		if ((err = vio_rng_init(&rngs[n_rng], &kv->dev)))
			return err;
		kv->drv = &rngs[n_rng++];
		return 0;
	case VIRTIO_ID_CONSOLE:
		if (n_cons == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_cons;
		kcons[n_cons].port0 = -1;
		if ((err = vio_console_init(&consoles[n_cons], &kv->dev)))
			return err;
		vio_console_set_event_callback(&consoles[n_cons], console_event, &kcons[n_cons]);
		console_rescan(&consoles[n_cons], &kcons[n_cons]);
		kv->drv = &consoles[n_cons++];
		return 0;
	case VIRTIO_ID_BLOCK:
		if (n_blk == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_blk;
		if ((err = vio_blk_init(&blks[n_blk], &kv->dev)))
			return err;
		kv->drv = &blks[n_blk++];
		return 0;
	case VIRTIO_ID_NET: {
		if (n_net == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_net;
		struct vio_net_config_opts opts = {
			.link_cb = net_link,
			.tx_done = net_stack_tx_done,
			.arg = (void *)(intptr_t)n_net,
		};
		opts.mac_seed = random_u64() | 1; /* a NIC without a MAC gets a random one */
		if ((err = vio_net_init(&nets[n_net], &kv->dev, &opts)))
			return err;
		net_stack_attach(&nets[n_net], n_net);
		kv->drv = &nets[n_net++];
		return 0;
	}
	case VIRTIO_ID_BALLOON:
		if (n_balloon == MAX_PER_DRIVER)
			return VIO_ENOSPC;
		kv->unit = n_balloon;
		kballoons[n_balloon] = (struct kballoon){.woken = true};
		if ((err = vio_balloon_init(&balloons[n_balloon], &kv->dev, &balloon_ops,
					    &kballoons[n_balloon])))
			return err;
		kv->drv = &balloons[n_balloon++];
		pmm_set_oom_handler(balloon_oom);
		return 0;
	default:
		return VIO_ENOTSUP;
	}
}

static void probe_all(void)
{
	struct vio_pci_ecam ecam;
	const struct vio_pci_ecam *use = NULL;
	if (acpi.n_mcfg) {
		ecam = (struct vio_pci_ecam){acpi.mcfg[0].base, acpi.mcfg[0].segment,
					     acpi.mcfg[0].start_bus, acpi.mcfg[0].end_bus};
		use = &ecam;
	}
	int err = vio_pci_bus_init(&pci_bus, &kernel_vio_port, use);
	if (err && use) {
		kprintf("pci: ECAM unusable (%s), falling back to port I/O\n", vio_strerror(err));
		err = vio_pci_bus_init(&pci_bus, &kernel_vio_port, NULL);
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

void devices_init(void)
{
	static const uint32_t order[] = {VIRTIO_ID_RNG, VIRTIO_ID_CONSOLE, VIRTIO_ID_BLOCK,
					 VIRTIO_ID_NET, VIRTIO_ID_BALLOON};
	probe_all();
	for (size_t o = 0; o < ARRAY_SIZE(order); o++) {
		for (int i = 0; i < n_virtio_devices; i++) {
			struct kvirtio *kv = &virtio_devices[i];
			if (kv->err || kv->dev.device_id != order[o])
				continue;
			kv->err = bind(kv);
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
		char bdf[16];
		if (!kv->drv)
			kprintf("vio: %s %s: %s\n", vio_pci_bdf(kv->pci, bdf, sizeof(bdf)),
				vio_device_type_name(kv->dev.device_id),
				kv->err == VIO_ENOTSUP ? "no driver" : vio_strerror(kv->err));
	}
	if (n_rng && !random_seeded())
		kprintf("random: virtio-rng gave no seed; PRNG seeded from the TSC\n");
}

void devices_poll(void)
{
	for (int i = 0; i < n_cons; i++)
		DEV_DO(console_service(i));
	for (int i = 0; i < n_blk; i++)
		DEV_DO(vio_blk_poll(&blks[i]));
	for (int i = 0; i < n_net; i++) {
		DEV_DO(vio_net_poll(&nets[i]));
		if (net_echo[i])
			DEV_DO(net_echo_service(&nets[i]));
	}
	for (int i = 0; i < n_balloon; i++)
		DEV_DO(balloon_service(i));
	lwip_poll();
}

/* --- lookup and listing ----------------------------------------------------------------- */

struct vio_rng *dev_rng(int n) { return n >= 0 && n < n_rng ? &rngs[n] : NULL; }
struct vio_console *dev_console(int n) { return n >= 0 && n < n_cons ? &consoles[n] : NULL; }
struct vio_blk *dev_blk(int n) { return n >= 0 && n < n_blk ? &blks[n] : NULL; }
struct vio_net *dev_net(int n) { return n >= 0 && n < n_net ? &nets[n] : NULL; }
struct vio_balloon *dev_balloon(int n) { return n >= 0 && n < n_balloon ? &balloons[n] : NULL; }

static const char *unit_prefix(uint32_t id)
{
	switch (id) {
	case VIRTIO_ID_RNG: return "rng";
	case VIRTIO_ID_CONSOLE: return "cons";
	case VIRTIO_ID_BLOCK: return "blk";
	case VIRTIO_ID_NET: return "net";
	case VIRTIO_ID_BALLOON: return "balloon";
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
	char line[160], bdf[16], unit[16];
	for (int i = 0; i < n_virtio_devices; i++) {
		const struct kvirtio *kv = &virtio_devices[i];
		if (!kv->drv) {
			kprintf("  -      %s %s: %s\n", vio_pci_bdf(kv->pci, bdf, sizeof(bdf)),
				vio_device_type_name(kv->dev.device_id),
				kv->err == VIO_ENOTSUP ? "no driver" : vio_strerror(kv->err));
			continue;
		}
		vio_dev_describe(&kv->dev, line, sizeof(line));
		kprintf("  %-6s %s\n", dev_unit_name(kv, unit, sizeof(unit)), line);
	}
	if (!n_virtio_devices)
		kprintf("  no virtio devices\n");
}

void lspci_print(void)
{
	char line[160];
	for (int i = 0; i < n_pci_functions; i++) {
		const struct vio_pci_dev *d = &pci_functions[i];
		vio_pci_describe(d, line, sizeof(line));
		kprintf("%s\n", line);
		for (int b = 0; b < VIO_PCI_MAX_BARS; b++) {
			const struct vio_pci_bar *bar = &d->bars[b];
			if (!bar->size)
				continue;
			kprintf("    BAR%d %s %#llx size %#llx%s%s\n", b, bar->is_io ? "io " : "mem",
				(unsigned long long)bar->phys, (unsigned long long)bar->size,
				bar->is64 ? " 64-bit" : "", bar->prefetch ? " prefetchable" : "");
		}
	}
}
