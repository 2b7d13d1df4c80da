/*
 * examples/aarch64-virt: a minimal aarch64 kernel on QEMU `virt` that embeds vio the way
 * any kernel would (Makefile: include src/virtio/vio.mk; vio_port.c: the port), finds the
 * virtio-mmio devices (or the PCIe functions), brings up an entropy device, a disk, a console
 * and a NIC with vio's drivers and checks each against a host peer
 * (tests/qemu/scn_aarch64.py), printing TAP.
 *
 *   qemu-system-aarch64 -M virt -cpu cortex-a57 -m 256M -nographic -kernel kernel.bin \
 *       -global virtio-mmio.force-legacy=false -device virtio-rng-device [-append poll]
 *
 * `-append poll` (found in the device tree's /chosen/bootargs) polls every device instead
 * of taking its interrupt line; `-append pci` takes the devices from PCIe instead (pci.c:
 * -M virt,highmem=off -device virtio-rng-pci ...), with MSI-X through the GICv2m frame, or
 * INTx with `-append "pci nomsi"`.
 */
#include <stdbool.h>
#include <vio/blk.h>
#include <vio/console.h>
#include <vio/err.h>
#include <vio/net.h>
#include <vio/pci.h>
#include <vio/rng.h>
#include <vio/virtio.h>

#include "kernel.h"

/*
 * virt's 32 virtio-mmio slots: 0x200 bytes each from 0x0a000000, slot n wired to SPI 16 + n,
 * GIC INTID 48 + n (QEMU hw/arm/virt.c; the device tree lists the same as "virtio,mmio"
 * nodes with interrupts = <0 16+n 1>). An empty slot answers device id 0 (VIO_ENODEV).
 */
#define MMIO_BASE   0x0a000000ull
#define MMIO_SLOT   0x200u
#define MMIO_SLOTS  32
#define MMIO_INTID0 48u
#define RAM_END	    0x50000000ull /* QEMU -m 256M */

#define BLK_OFFSET    (1u << 20) /* the disk range whose SHA-256 the host checks */
#define BLK_LENGTH    (3u << 20)
#define CONSOLE_BYTES 65536
#define NET_FRAMES    32
#define ETHERTYPE     0x88b5 /* IEEE local experimental */
static const uint8_t stop_word[8] = {0xff, 0xff, 0xff, 0xff, 's', 't', 'o', 'p'};

static bool poll_mode, pci_mode, msi_mode;
static struct vio_dev devs[MMIO_SLOTS];
static uint32_t dev_intid[MMIO_SLOTS];	/* the GIC line each device's interrupts come on */
static uint32_t dev_msi[MMIO_SLOTS][2]; /* or the INTIDs of its MSI-X vectors: [first, end) */
static struct vio_rng rng;
static struct vio_blk blk;
static struct vio_console con;
static struct vio_net net;
static struct vio_dev *rng_dev, *blk_dev, *con_dev, *net_dev;
static int test_no;
static uint8_t buf[65536] __attribute__((aligned(4096)));

static void tap(bool ok, const char *name)
{
	kprintf("%s %d - %s\n", ok ? "ok" : "not ok", ++test_no, name);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* Whether /chosen/bootargs in the device tree holds `word` (a flattened tree, v17). */
static bool bootargs_have(const uint8_t *fdt, const char *word)
{
	if (!fdt || be32(fdt) != 0xd00dfeed)
		return false;
	const uint8_t *p = fdt + be32(fdt + 8), *strings = fdt + be32(fdt + 12);
	for (;;) {
		uint32_t token = be32(p);
		p += 4;
		if (token == 1) { /* BEGIN_NODE: a name, NUL, padded to 4 */
			size_t n = 0;
			while (p[n])
				n++;
			p += (n + 4) & ~3ul;
		} else if (token == 3) { /* PROP: length, name offset, value padded to 4 */
			uint32_t len = be32(p), name = be32(p + 4);
			const char *v = (const char *)p + 8;
			if (strcmp((const char *)strings + name, "bootargs") == 0)
				for (uint32_t i = 0; i + 1 < len; i++) {
					size_t j = 0;
					while (word[j] && v[i + j] == word[j])
						j++;
					if (!word[j])
						return true;
				}
			p += 8 + ((len + 3) & ~3u);
		} else if (token != 2 && token != 4) {
			return false; /* END, or a token we do not know */
		}
	}
}

/* Blocking calls let the device's interrupt in while they wait (everything else runs with
 * IRQs masked: vio wants one caller at a time per device, port.h). */
static void rng_wait(struct vio_rng *r, void *arg)
{
	irq_window();
}
static void blk_wait(struct vio_blk *b, void *arg)
{
	irq_window();
}
static void con_wait(struct vio_console *c, void *arg)
{
	irq_window();
}

/* Bring `dev`, just probed, up with its driver: the first of each kind is tested. */
static void bind(struct vio_dev *dev)
{
	int err = 0;
	if (dev->device_id == VIRTIO_ID_RNG && !rng_dev) {
		struct vio_rng_opts o = {.wait = rng_wait};
		err = vio_rng_init(&rng, dev, &o);
		rng_dev = err ? NULL : dev;
	} else if (dev->device_id == VIRTIO_ID_BLOCK && !blk_dev) {
		struct vio_blk_opts o = {.wait = blk_wait};
		err = vio_blk_init(&blk, dev, &o);
		blk_dev = err ? NULL : dev;
	} else if (dev->device_id == VIRTIO_ID_CONSOLE && !con_dev) {
		struct vio_console_opts o = {.wait = con_wait};
		err = vio_console_init(&con, dev, &o);
		con_dev = err ? NULL : dev;
	} else if (dev->device_id == VIRTIO_ID_NET && !net_dev) {
		err = vio_net_init(&net, dev, NULL);
		net_dev = err ? NULL : dev;
	}
	if (err)
		kprintf("%s init failed: %s\n", vio_device_type_name(dev->device_id),
			vio_strerror(err));
	irq_window();
}

static void probe_mmio(void)
{
	for (unsigned n = 0; n < MMIO_SLOTS; n++) {
		uint32_t irq = poll_mode ? VIO_NO_IRQ : MMIO_INTID0 + n;
		dev_intid[n] = MMIO_INTID0 + n;
		if (vio_mmio_probe(&devs[n], &port, MMIO_BASE + n * MMIO_SLOT, MMIO_SLOT, irq) == 0)
			bind(&devs[n]);
	}
}

/* Polled, the port has no intx_attach (kmain): vio then polls every PCI device. */
static void probe_pci(void)
{
	struct vio_pci_dev *fns[MMIO_SLOTS];
	int n = pci_find(fns, MMIO_SLOTS);
	for (int i = 0; i < n; i++) {
		dev_intid[i] = fns[i]->irq_line;
		dev_msi[i][0] = msi_next_intid();
		int err = vio_pci_probe(&devs[i], fns[i]);
		if (err)
			kprintf("pci %02x.%x: %s\n", fns[i]->dev, fns[i]->fn, vio_strerror(err));
		else
			bind(&devs[i]);
		dev_msi[i][1] = msi_next_intid();
	}
}

static bool test_rng(void)
{
	int n = rng_dev ? vio_rng_read(&rng, buf, 4096, true) : VIO_ENODEV;
	irq_window();
	if (n != 4096) {
		kprintf("rng: read %d\n", n);
		return false;
	}
	unsigned same = 0;
	for (unsigned i = 1; i < 4096; i++)
		same += buf[i] == buf[0];
	return same < 4095;
}

static bool test_blk(void)
{
	struct sha256 s;
	uint8_t d[32];
	if (!blk_dev)
		return false;
	sha256_init(&s);
	for (uint32_t off = 0; off < BLK_LENGTH; off += sizeof(buf)) {
		int err = vio_blk_read(&blk, (BLK_OFFSET + off) / 512, buf, sizeof(buf));
		irq_window();
		if (err) {
			kprintf("blk: read at %u: %s\n", BLK_OFFSET + off, vio_strerror(err));
			return false;
		}
		sha256_update(&s, buf, sizeof(buf));
	}
	sha256_final(&s, d);
	kprintf("blk: sha256 ");
	for (int i = 0; i < 32; i++)
		kprintf("%02x", d[i]);
	kprintf(" offset %u length %u\n", BLK_OFFSET, BLK_LENGTH);
	return true;
}

static bool test_console(void)
{
	int id = con_dev ? vio_console_find_port(&con, "org.vio.echo") : VIO_ENODEV;
	if (id < 0 || vio_console_open(&con, (uint32_t)id) != 0)
		return false;
	kprintf("console: port %d (org.vio.echo) echoes %d bytes\n", id, CONSOLE_BYTES);
	uint64_t end = now_ns() + 60000000000ull;
	for (uint32_t echoed = 0; echoed < CONSOLE_BYTES;) {
		if (now_ns() > end) {
			kprintf("console: echoed %u bytes before the timeout\n", echoed);
			return false;
		}
		vio_console_poll(&con);
		int n = vio_console_read(&con, (uint32_t)id, buf, 4096);
		if (n > 0 && vio_console_write(&con, (uint32_t)id, buf, (size_t)n, true) != n)
			return false;
		if (n == VIO_EIO || n == VIO_ENEEDRESET)
			return false;
		echoed += n > 0 ? (uint32_t)n : 0;
		irq_window();
	}
	return true;
}

static bool test_net(void)
{
	if (!net_dev)
		return false;
	const uint8_t *m = net.mac;
	kprintf("net: mac=%02x:%02x:%02x:%02x:%02x:%02x ready\n", m[0], m[1], m[2], m[3], m[4],
		m[5]);
	uint8_t f[2048] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const char hello[] = "vio aarch64-virt hello";
	memcpy(f + 6, m, 6);
	f[12] = ETHERTYPE >> 8, f[13] = ETHERTYPE & 0xff;
	memcpy(f + 14, hello, sizeof(hello));
	if (vio_net_send(&net, f, 60, NULL) != 0)
		return false;
	/*
	 * Echo until the stop frame, then a second more: the device may not have sent the last
	 * echo when its buffer is posted, and powering off would lose it. The host resends the
	 * stop frame until one comes back; those are echoed too.
	 */
	uint64_t end = now_ns() + 120000000000ull;
	unsigned echoed = 0;
	bool stopped = false;
	while (now_ns() < end) {
		vio_net_poll(&net);
		int len = vio_net_recv_copy(&net, f, sizeof(f), NULL);
		irq_window();
		if (len == VIO_EIO || len == VIO_ENEEDRESET)
			return false;
		if (len < 22 || f[12] != ETHERTYPE >> 8 || f[13] != (ETHERTYPE & 0xff))
			continue;
		uint8_t t[6];
		memcpy(t, f, 6), memcpy(f, f + 6, 6), memcpy(f + 6, t, 6);
		while (vio_net_send(&net, f, (uint32_t)len, NULL) == VIO_ENOSPC)
			vio_net_poll(&net);
		if (memcmp(f + 14, stop_word, sizeof(stop_word)) != 0)
			echoed++;
		else if (!stopped)
			stopped = true, end = now_ns() + 1000000000ull;
	}
	if (!stopped)
		kprintf("net: no stop frame\n");
	return stopped && echoed >= NET_FRAMES;
}

/*
 * Each device interrupted on its line; or, polled, took no interrupt. The log also shows
 * whether a polled device holds its line high at the end. It is reported, not checked: QEMU
 * signals an EVENT_IDX queue's first used buffer even when polled, and the line stays up until
 * the driver's next poll reads the ISR (vio_dev_poll, at most every VIO_POLL_STATUS_NS).
 */
static bool test_interrupts(void)
{
	struct vio_dev *all[] = {rng_dev, blk_dev, con_dev, net_dev};
	bool ok = true;
	for (unsigned i = 0; i < 4; i++) {
		if (!all[i])
			return false;
		uint32_t intid = dev_intid[all[i] - devs];
		uint64_t n = irq_count(intid);
		const uint32_t *msi = dev_msi[all[i] - devs];
		for (uint32_t v = msi[0]; v < msi[1]; v++)
			n += irq_count(v);
		bool raised = irq_pending(intid);
		kprintf("irq: %s %s intid %u msi %u-%u interrupts %lu line %s\n", all[i]->name,
			vio_irq_mode_name(all[i]->irq_mode), intid, msi[0], msi[1],
			(unsigned long)n, raised ? "high" : "low");
		/* A PCI function whose MSI-X table is too small for a vector per queue (the
		 * console's 18 queues) shares one: vio's cascade, docs/porting.md. */
		enum vio_irq_mode mode = all[i]->irq_mode;
		if (mode == VIO_IRQ_MSIX_SHARED)
			mode = VIO_IRQ_MSIX;
		enum vio_irq_mode want = poll_mode   ? VIO_IRQ_POLL
					 : !pci_mode ? VIO_IRQ_LINE
					 : msi_mode  ? VIO_IRQ_MSIX
						     : VIO_IRQ_INTX;
		ok &= mode == want && (n > 0) == !poll_mode;
	}
	return ok;
}

void kmain(const uint8_t *fdt)
{
	mmu_init();
	kprintf("aarch64-virt: vio example kernel, device tree at %p\n", (const void *)fdt);
	/* Read before the page allocator may reuse the device tree's RAM. */
	poll_mode = bootargs_have(fdt, "poll");
	pci_mode = bootargs_have(fdt, "pci");
	msi_mode = !bootargs_have(fdt, "nomsi");
	if (poll_mode)
		port.intx_attach = NULL;
	if (poll_mode || !msi_mode)
		port.msix_alloc = NULL, port.msix_free = NULL;
	pages_init(RAM_END);
	gic_init();
	if (pci_mode)
		probe_pci();
	else
		probe_mmio();
	kprintf("1..5\n");
	tap(test_rng(), "rng");
	tap(test_blk(), "blk sha256");
	tap(test_console(), "console echo");
	tap(test_net(), "net frame exchange");
	tap(test_interrupts(), "interrupts");
	power_off();
}
