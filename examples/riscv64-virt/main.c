/*
 * main.c: boot, then the self-tests. Devices are looked for on virtio-mmio (every slot the
 * device tree lists) and on PCIe (after pci.c has assigned the BARs); the first entropy,
 * block, console and network device each get vio's driver and one check, printed as TAP
 * ("ok N - name" or "not ok N - name # why") on the UART. Then QEMU is left through the
 * SiFive test device, with exit status 0 only when all passed.
 *
 * By default each device interrupts through its PLIC line (INTx for PCI: QEMU virt has no
 * MSI controller unless it is given an IMSIC). With `-append poll` vio gets a port without
 * intx_attach and platform_irq_attach, no line is attached, and every device is polled. Either way the
 * thread-context code below calls into vio with interrupts off: the library takes no locks,
 * and its interrupt handlers touch the same queues (include/vio/port.h). Interrupts are taken
 * only inside idle().
 *
 * The checks, and what the host peer (tests/qemu/scn_riscv64.py) does about them:
 *   rng        read 4 KiB of entropy: not all one byte value
 *   blk        read BLK_LEN bytes at BLK_OFF and print their SHA-256 for the host to compare
 *   console    echo CONSOLE_BYTES through the port named org.vio.echo (the host sends them)
 *   net        send a hello frame to the broadcast address, then echo every frame of ether
 *              type 0x88b5 back to its sender, MACs swapped, until one whose payload starts
 *              with NET_STOP: at least NET_FRAMES frames and that one
 *   interrupts each device ran in the mode asked for, and took interrupts only if it should
 *
 * QEMU: make -C examples/riscv64-virt run
 */
#include "kernel.h"
#include "riscv.h"
#include <kernel/sha256.h>
#include <string.h>
#include <vio/blk.h>
#include <vio/console.h>
#include <vio/err.h>
#include <vio/format.h>
#include <vio/net.h>
#include <vio/pci.h>
#include <vio/rng.h>

#define BLK_OFF	       (1024 * 1024 + 512)
#define BLK_LEN	       (3 * 1024 * 1024)
#define CONSOLE_BYTES  65536
#define NET_FRAMES     32
#define NET_STOP       "\xff\xff\xff\xffstop"
#define ETHERTYPE_TEST 0x88b5 /* IEEE 802 local experimental */
#define WAIT_NS	       (60 * 1000000000ull)

extern char __kernel_end[], stack_top[];

static bool polled;
/* The port vio gets: ours, less the interrupt hooks when polled, so that no line is attached. */
static struct vio_port port;
static int tests_run, tests_failed;

/* --- helpers ------------------------------------------------------------------------- */

static void tap(bool ok, const char *name, const char *why)
{
	tests_run++;
	if (ok) {
		printf("ok %d - %s\n", tests_run, name);
	} else {
		tests_failed++;
		printf("not ok %d - %s # %s\n", tests_run, name, why);
	}
}

/*
 * Let time pass until something may have happened. With interrupts, sleep until one is
 * pending (a device's, or the 100 Hz tick), take it, and turn them off again: wfi wakes for
 * a pending interrupt even while SIE is off, so none is missed between the caller's check
 * and the wfi. Polled, return at once: the caller polls its device.
 */
static void idle(void)
{
	if (polled)
		return;
	wfi();
	intr_on();
	intr_off();
}

static bool expired(uint64_t deadline)
{
	return now_ns() > deadline;
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		vio_snprintf(why, 96, __VA_ARGS__);                                                \
		return false;                                                                      \
	} while (0)

/* --- rng ----------------------------------------------------------------------------- */

static bool test_rng(struct vio_dev *dev, char *why)
{
	static struct vio_rng rng;
	static uint8_t buf[4096];
	int err = vio_rng_init(&rng, dev, NULL);
	if (err)
		FAIL("vio_rng_init: %s", vio_strerror(err));
	/* With interrupts, the buffers posted at init come back through the handler alone. */
	uint64_t deadline = now_ns() + WAIT_NS;
	while (!polled && rng.stats.completions < rng.stats.requests && !expired(deadline))
		idle();
	err = vio_rng_read(&rng, buf, sizeof(buf), true);
	if (err != (int)sizeof(buf))
		FAIL("vio_rng_read: %s", vio_strerror(err));
	size_t same = 0;
	for (size_t i = 1; i < sizeof(buf); i++)
		same += buf[i] == buf[0];
	if (same == sizeof(buf) - 1)
		FAIL("4096 bytes of %#x", buf[0]);
	printf("rng: %u bytes, first %02x%02x%02x%02x\n", (unsigned)sizeof(buf), buf[0], buf[1],
	       buf[2], buf[3]);
	return true;
}

/* --- blk ----------------------------------------------------------------------------- */

static void blk_done(struct vio_blk_req *req, int status, void *arg)
{
	(void)req;
	*(int *)arg = status;
}

static bool test_blk(struct vio_dev *dev, char *why)
{
	static struct vio_blk blk;
	int err = vio_blk_init(&blk, dev, NULL);
	if (err)
		FAIL("vio_blk_init: %s", vio_strerror(err));
	if (blk.info.capacity * 512 < BLK_OFF + BLK_LEN)
		FAIL("disk of %llu sectors is too small", (unsigned long long)blk.info.capacity);
	uint8_t *buf = kalloc_pages(BLK_LEN / PAGE_SIZE);
	if (!buf)
		FAIL("no memory for %u bytes", BLK_LEN);

	/* One request; the driver splits it into device requests as the disk's limits say. */
	int status = 1;
	struct vio_sg sg = {buf, BLK_LEN};
	struct vio_blk_req req = {.op = VIO_BLK_OP_READ,
				  .sector = BLK_OFF / 512,
				  .sg = &sg,
				  .nsg = 1,
				  .queue = VIO_BLK_ANY_QUEUE,
				  .on_done = blk_done,
				  .arg = &status};
	if ((err = vio_blk_submit(&blk, &req)) != 0)
		FAIL("vio_blk_submit: %s", vio_strerror(err));
	uint64_t deadline = now_ns() + WAIT_NS;
	while (status == 1 && !expired(deadline)) {
		if (polled)
			vio_blk_poll(&blk);
		idle();
	}
	if (status != 0)
		FAIL("read: %s", status == 1 ? "no completion in 60 s" : vio_strerror(status));

	struct sha256 s;
	uint8_t digest[32];
	char hex[65];
	sha256_init(&s);
	sha256_update(&s, buf, BLK_LEN);
	sha256_final(&s, digest);
	sha256_hex(digest, hex);
	printf("blk: sha256 %s offset %u length %u (%llu parts)\n", hex, BLK_OFF, BLK_LEN,
	       (unsigned long long)blk.stats.parts);
	kfree_pages(buf, BLK_LEN / PAGE_SIZE);
	return true;
}

/* --- console ------------------------------------------------------------------------- */

static struct {
	uint8_t buf[512];
	size_t len, off; /* bytes in buf, and how many of them went back out */
	size_t echoed;
} echo;

/* Write back what was read before reading more; a full TX ring leaves it for WRITABLE. */
static void echo_step(struct vio_console *con, uint32_t port)
{
	for (;;) {
		if (echo.off == echo.len) {
			int n = vio_console_read(con, port, echo.buf, sizeof(echo.buf));
			if (n <= 0)
				return;
			echo.len = (size_t)n, echo.off = 0;
		}
		int n =
		    vio_console_write(con, port, echo.buf + echo.off, echo.len - echo.off, false);
		if (n <= 0)
			return;
		echo.off += (size_t)n, echo.echoed += (size_t)n;
	}
}

/* Runs inside vio_console_poll: from the interrupt handler, or from our polling loop. */
static void console_event(struct vio_console *con, uint32_t port, enum vio_console_event ev,
			  void *arg)
{
	(void)arg;
	if (ev == VIO_CONSOLE_EV_DATA || ev == VIO_CONSOLE_EV_WRITABLE)
		echo_step(con, port);
}

static bool test_console(struct vio_dev *dev, char *why)
{
	static struct vio_console con;
	struct vio_console_opts opts = {.on_event = console_event};
	int err = vio_console_init(&con, dev, &opts);
	if (err)
		FAIL("vio_console_init: %s", vio_strerror(err));
	int port = vio_console_find_port(&con, "org.vio.echo");
	if (port < 0)
		FAIL("no port named org.vio.echo");
	if ((err = vio_console_open(&con, (uint32_t)port)) != 0)
		FAIL("vio_console_open: %s", vio_strerror(err));
	printf("console: port %d (org.vio.echo) echoes %u bytes\n", port, CONSOLE_BYTES);
	uint64_t deadline = now_ns() + WAIT_NS;
	while (echo.echoed < CONSOLE_BYTES && !expired(deadline)) {
		if (polled)
			vio_console_poll(&con);
		idle();
	}
	if (echo.echoed != CONSOLE_BYTES)
		FAIL("echoed %u of %u bytes", (unsigned)echo.echoed, CONSOLE_BYTES);
	return true;
}

/* --- net ----------------------------------------------------------------------------- */

static volatile bool net_kick;
static bool net_stop_sent;

/* IRQ context: frames arrived or TX buffers came back. vio_net wants thread context. */
static void net_irq(struct vio_net *net, void *arg)
{
	(void)net, (void)arg;
	net_kick = true;
}

/* From vio_net_poll: the device is done with the frame we sent zero-copy. */
static void net_tx_done(struct vio_net *net, void *cookie, void *arg)
{
	(void)net, (void)cookie, (void)arg;
	net_stop_sent = true;
}

/*
 * Echo frames of our ether type until the stop frame. That one goes back zero-copy, so that
 * we hear (on_tx_done) when the device has sent it: QEMU transmits from a bottom half after
 * our notify, and a kernel that left QEMU at once could take the frame with it.
 */
static int net_echo(struct vio_net *net, uint8_t *frame, size_t size, bool *stop)
{
	int n, err, echoed = 0;

	while (!*stop && (n = vio_net_recv_copy(net, frame, (uint32_t)size, NULL)) > 0) {
		if (n < 14 || memcmp(frame, net->mac, 6) != 0 || frame[12] != ETHERTYPE_TEST >> 8 ||
		    frame[13] != (ETHERTYPE_TEST & 0xff))
			continue; /* not ours */
		memcpy(frame, frame + 6, 6);
		memcpy(frame + 6, net->mac, 6);
		*stop = n >= 22 && memcmp(frame + 14, NET_STOP, 8) == 0;
		struct vio_sg sg = {frame, (uint32_t)n};
		err = *stop ? vio_net_send_sg(net, &sg, 1, frame, NULL)
			    : vio_net_send(net, frame, (uint32_t)n, NULL);
		if (err)
			return err;
		echoed++;
	}
	return echoed;
}

static bool test_net(struct vio_dev *dev, char *why)
{
	static struct vio_net net;
	static uint8_t frame[1536];
	struct vio_net_opts opts = {.on_irq = net_irq, .on_tx_done = net_tx_done};
	int err = vio_net_init(&net, dev, &opts);
	if (err)
		FAIL("vio_net_init: %s", vio_strerror(err));
	const uint8_t *m = net.mac;
	printf("net: mac=%02x:%02x:%02x:%02x:%02x:%02x ready\n", m[0], m[1], m[2], m[3], m[4],
	       m[5]);

	static const char hello[] = "vio riscv64-virt hello";
	memset(frame, 0, 60);
	memset(frame, 0xff, 6);
	memcpy(frame + 6, net.mac, 6);
	frame[12] = ETHERTYPE_TEST >> 8, frame[13] = ETHERTYPE_TEST & 0xff;
	memcpy(frame + 14, hello, sizeof(hello));
	if ((err = vio_net_send(&net, frame, 60, NULL)) != 0)
		FAIL("vio_net_send: %s", vio_strerror(err));

	int echoed = 0;
	bool stop = false;
	uint64_t deadline = now_ns() + WAIT_NS;
	while (!net_stop_sent && !expired(deadline)) {
		net_kick = false;
		vio_net_poll(&net); /* reaps TX: calls net_tx_done */
		if ((err = net_echo(&net, frame, sizeof(frame), &stop)) < 0)
			FAIL("echo %d: %s", echoed, vio_strerror(err));
		echoed += err;
		if (!net_kick)
			idle();
	}
	if (!net_stop_sent || echoed <= NET_FRAMES)
		FAIL("echoed %d frames, %s the stop frame", echoed,
		     net_stop_sent ? "with"
		     : stop	   ? "not yet sent"
				   : "without");
	return true;
}

/* --- the run ------------------------------------------------------------------------- */

struct dut {
	const char *name;
	uint32_t id;
	bool (*test)(struct vio_dev *dev, char *why);
	struct vio_dev dev;
	uint32_t irq; /* its PLIC source */
	bool found;
};

static struct dut duts[] = {
    {.name = "rng", .id = VIRTIO_ID_RNG, .test = test_rng},
    {.name = "blk sha256", .id = VIRTIO_ID_BLOCK, .test = test_blk},
    {.name = "console echo", .id = VIRTIO_ID_CONSOLE, .test = test_console},
    {.name = "net frame exchange", .id = VIRTIO_ID_NET, .test = test_net},
};
#define NDUTS (int)(sizeof(duts) / sizeof(duts[0]))

/* Each device interrupted through its line when it should, and never when polled. */
static bool test_interrupts(char *why)
{
	for (int i = 0; i < NDUTS; i++) {
		struct dut *d = &duts[i];
		if (!d->found)
			continue;
		uint64_t n = plic_count(d->irq);
		/* virtio-mmio interrupts on its platform line, a PCI function on INTx. */
		bool mmio = strncmp(vio_dev_transport_name(&d->dev), "mmio", 4) == 0;
		enum vio_irq_mode wired = mmio ? VIO_IRQ_LINE : VIO_IRQ_INTX;
		enum vio_irq_mode want = polled ? VIO_IRQ_POLL : wired;
		printf("interrupts: %s line %u: %llu (irq=%s)\n", vio_device_type_name(d->id),
		       d->irq, (unsigned long long)n, vio_irq_mode_name(d->dev.irq_mode));
		if (d->dev.irq_mode != want)
			FAIL("%s runs irq=%s", d->name, vio_irq_mode_name(d->dev.irq_mode));
		if (polled ? n != 0 : n == 0)
			FAIL("%s took %llu interrupts", d->name, (unsigned long long)n);
	}
	return true;
}

/* The dut that wants a device of type `id` and has none yet, or NULL. */
static struct dut *wanted(int id)
{
	for (int k = 0; k < NDUTS; k++)
		if ((int)duts[k].id == id && !duts[k].found)
			return &duts[k];
	return NULL;
}

/* The virtio-mmio slots the tree lists; most are empty. */
static void probe_mmio(void)
{
	for (int i = 0; i < machine.nmmio; i++) {
		struct mmio_slot *s = &machine.mmio[i];
		struct vio_dev dev;
		if (vio_mmio_probe(&dev, &port, s->base, s->size, s->irq) != 0)
			continue;
		struct dut *d = wanted((int)dev.device_id);
		if (!d)
			continue;
		/* Probe again into its place: a vio_dev is filled where it will live. */
		vio_mmio_probe(&d->dev, &port, s->base, s->size, s->irq);
		d->irq = s->irq, d->found = true;
	}
}

/* The PCIe root bus behind virt's ECAM host bridge, once pci.c has assigned the BARs. */
static void probe_pci(void)
{
	static struct vio_pci_bus bus;
	static struct vio_pci_dev fns[32];
	const struct pci_host *h = &machine.pci;
	struct vio_pci_ecam ecam = {h->ecam, 0, h->bus_start, h->bus_end};

	if (!h->present || vio_pci_bus_init(&bus, &port, &ecam) != 0)
		return;
	int placed = pci_assign(&bus);
	int n = vio_pci_enumerate_into(&bus, fns, 32);
	printf("pci: ecam %#llx, %d functions, %d BARs placed\n", (unsigned long long)h->ecam, n,
	       placed);
	for (int i = 0; i < n && i < 32; i++) {
		struct dut *d = wanted(vio_pci_virtio_id(&fns[i]));
		if (d && vio_pci_probe(&d->dev, &fns[i]) == 0)
			d->irq = fns[i].irq_line, d->found = true;
	}
}

/* Fill the unused part of the stack with a pattern, to find later how deep it went. The
 * 512 bytes below sp stay unpainted: memset's own frame is there. */
static char *stack_paint(void)
{
	char *bottom = stack_top - 16384, *sp;
	__asm__ __volatile__("mv %0, sp" : "=r"(sp));
	memset(bottom, 0x5a, (size_t)(sp - 512 - bottom));
	return bottom;
}

static size_t stack_used(const char *bottom)
{
	const char *p = bottom;
	while (*p == 0x5a)
		p++;
	return (size_t)(stack_top - p);
}

void kmain(unsigned long hartid, const void *dtb)
{
	char why[96];

	uart_init();
	fdt_scan(dtb);
	trap_init();
	uint64_t ram_end = machine.ram_base + machine.ram_size;
	uint64_t dtb_at = (uint64_t)(uintptr_t)dtb;
	kalloc_init((uint64_t)(uintptr_t)__kernel_end, dtb_at < ram_end ? dtb_at : ram_end);
	plic_init();
	timer_init();
	polled = strstr(machine.bootargs, "poll") != NULL;
	char *stack_bottom = stack_paint();
	printf("riscv64-virt: hart %lu, %llu MiB of RAM, %d virtio-mmio slots, %s\n", hartid,
	       (unsigned long long)(machine.ram_size >> 20), machine.nmmio,
	       polled ? "polled" : "interrupts through the PLIC");

	port = kernel_vio_port;
	if (polled)
		port.intx_attach = NULL, port.platform_irq_attach = NULL;
	probe_mmio();
	probe_pci();
	int plan = 1;
	for (int i = 0; i < NDUTS; i++)
		plan += duts[i].found;
	printf("1..%d\n", plan);
	for (int i = 0; i < NDUTS; i++) {
		if (!duts[i].found)
			continue;
		size_t free_before = kalloc_free_pages();
		why[0] = 0;
		tap(duts[i].test(&duts[i].dev, why), duts[i].name, why);
		printf("memory: %s holds %lu KiB of DMA memory\n", vio_device_type_name(duts[i].id),
		       (unsigned long)((free_before - kalloc_free_pages()) * PAGE_SIZE / 1024));
	}
	tap(test_interrupts(why), "interrupts", why);
	printf("stack: %lu bytes at the deepest\n", (unsigned long)stack_used(stack_bottom));
	printf("%d of %d tests passed\n", tests_run - tests_failed, tests_run);
	qemu_exit(tests_failed == 0);
}
