/*
 * devices.c: find the PCI functions, probe the virtio ones with the vio core and bring each
 * up: negotiate the ring features the core handles (indirect descriptors, EVENT_IDX), pick
 * the best interrupt mode (MSI-X per queue, shared MSI-X, INTx, polling), set up queue 0
 * and set DRIVER_OK. The core logs one line per device; a device the core refuses (a
 * malformed capability list, a refused feature set) is reported and skipped, never trusted.
 *
 *   qemu-system-x86_64 -M q35 -kernel build/vio.elf -serial stdio \
 *       -device virtio-rng-pci -device virtio-blk-pci,drive=d0,disable-modern=on ...
 */
#include <kernel/acpi.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/vio_port.h>
#include <vio/err.h>
#include <vio/log.h>

struct vio_pci_bus pci_bus;
struct vio_pci_dev pci_functions[MAX_PCI_FUNCTIONS];
int n_pci_functions;
struct kvirtio virtio_devices[MAX_VIRTIO_DEVICES];
int n_virtio_devices;

static void queue0_done(struct vio_vq *vq, void *arg)
{
	(void)vq;
	struct kvirtio *kv = arg;
	kv->irqs++;
}

static int bring_up(struct kvirtio *kv, const struct vio_pci_dev *pci)
{
	int err = vio_pci_probe(&kv->dev, pci);
	if (err)
		return err;
	uint64_t ring = (1ull << VIRTIO_F_RING_INDIRECT_DESC) | (1ull << VIRTIO_F_RING_EVENT_IDX);
	if ((err = vio_dev_begin(&kv->dev, ring)) ||
	    (err = vio_dev_setup_irqs(&kv->dev, kv->vqs, 1)) ||
	    (err = vio_dev_setup_vq(&kv->dev, 0, 256, queue0_done, kv)) ||
	    (err = vio_dev_driver_ok(&kv->dev))) {
		vio_dev_fail(&kv->dev);
		return err;
	}
	return 0;
}

void devices_init(void)
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
		kv->err = bring_up(kv, kv->pci);
		if (kv->err) {
			char bdf[16];
			kprintf("vio: %s refused: %s\n",
				vio_pci_bdf(&pci_functions[i], bdf, sizeof(bdf)),
				vio_strerror(kv->err));
		}
	}
}

struct kvirtio *virtio_find(uint32_t id)
{
	for (int i = 0; i < n_virtio_devices; i++)
		if (!virtio_devices[i].err && virtio_devices[i].dev.device_id == id)
			return &virtio_devices[i];
	return NULL;
}

void devices_print_table(void)
{
	char line[160];
	for (int i = 0; i < n_virtio_devices; i++) {
		const struct kvirtio *kv = &virtio_devices[i];
		if (kv->err) {
			char bdf[16];
			kprintf("  %s: %s\n", vio_pci_bdf(kv->pci, bdf, sizeof(bdf)),
				vio_strerror(kv->err));
			continue;
		}
		vio_dev_describe(&kv->dev, line, sizeof(line));
		kprintf("  %s\n", line);
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
