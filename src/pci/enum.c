/*
 * PCI enumeration: find every function on a segment and read its header (BARs: bar.c).
 *
 * A bus is scanned by reading the vendor id of function 0 of each of its 32 devices: an
 * absent device reads all ones. Header Type bit 7 says functions 1-7 exist too. A type 1
 * header is a PCI-to-PCI bridge; the firmware has programmed its secondary bus number, and
 * the devices behind it are on that bus. We trust none of it: a bus is scanned once, however
 * many bridges claim it (so a bridge loop ends), and recursion stops at MAX_BRIDGE_DEPTH.
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/format.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>

/*
 * How deep bridges may nest before we stop following them. Buses deeper than this are still
 * found by the sweep over every bus number at the end; the bound only caps stack use.
 */
#define MAX_BRIDGE_DEPTH 16

#define HDR(field) offsetof(struct pci_header_type0, field)
#define COMMON(field) offsetof(struct pci_header_common, field)
#define BRIDGE(field) offsetof(struct pci_header_type1, field)
#define MSIX(field) offsetof(struct pci_msix_cap, field)

/* Read the MSI-X capability's location fields (validated later by vio_pci_msix_map). */
static void read_msix_info(struct vio_pci_dev *dev)
{
	int cap = vio_pci_find_cap(dev, PCI_CAP_ID_MSIX);

	dev->msix = (struct vio_pci_msix){0};
	if (cap <= 0)
		return;
	uint16_t ctrl = vio_pci_read16(dev, (uint16_t)(cap + MSIX(message_control)));
	uint32_t table = vio_pci_read32(dev, (uint16_t)(cap + MSIX(table)));
	uint32_t pba = vio_pci_read32(dev, (uint16_t)(cap + MSIX(pba)));
	dev->msix.cap = (uint8_t)cap;
	dev->msix.table_size = (uint16_t)((ctrl & PCI_MSIX_CTRL_TABLE_SIZE) + 1);
	dev->msix.table_bar = table & PCI_MSIX_BIR_MASK;
	dev->msix.table_offset = table & PCI_MSIX_OFFSET_MASK;
	dev->msix.pba_bar = pba & PCI_MSIX_BIR_MASK;
	dev->msix.pba_offset = pba & PCI_MSIX_OFFSET_MASK;
	dev->msix.enabled = (ctrl & PCI_MSIX_CTRL_ENABLE) != 0;
}

int vio_pci_dev_init(struct vio_pci_dev *dev, struct vio_pci_bus *bus, uint8_t b, uint8_t d,
		     uint8_t f)
{
	*dev = (struct vio_pci_dev){.bus = bus, .busno = b, .dev = d, .fn = f};
	dev->segment = bus->use_ecam ? bus->ecam.segment : 0;
	dev->vendor_id = vio_pci_read16(dev, COMMON(vendor_id));
	if (dev->vendor_id == PCI_VENDOR_NONE || dev->vendor_id == 0)
		return VIO_ENODEV;
	dev->device_id = vio_pci_read16(dev, COMMON(device_id));
	dev->revision = vio_pci_read8(dev, COMMON(revision_id));
	dev->prog_if = vio_pci_read8(dev, COMMON(prog_if));
	dev->subclass = vio_pci_read8(dev, COMMON(subclass));
	dev->class_code = vio_pci_read8(dev, COMMON(class_code));
	uint8_t ht = vio_pci_read8(dev, COMMON(header_type));
	dev->header_type = ht & PCI_HEADER_TYPE_MASK;
	dev->multifunction = (ht & PCI_HEADER_TYPE_MULTIFUNCTION) != 0;
	dev->irq_line = vio_pci_read8(dev, HDR(interrupt_line));
	dev->irq_pin = vio_pci_read8(dev, HDR(interrupt_pin));
	if (dev->irq_pin > 4)
		dev->irq_pin = 0;
	if (dev->header_type == PCI_HEADER_TYPE_NORMAL) {
		dev->subsystem_vendor_id = vio_pci_read16(dev, HDR(subsystem_vendor_id));
		dev->subsystem_id = vio_pci_read16(dev, HDR(subsystem_id));
	} else if (dev->header_type == PCI_HEADER_TYPE_BRIDGE) {
		dev->secondary_bus = vio_pci_read8(dev, BRIDGE(secondary_bus));
		dev->subordinate_bus = vio_pci_read8(dev, BRIDGE(subordinate_bus));
	}
	vio_pci_read_bars(dev);
	read_msix_info(dev);
	return 0;
}

/* The state of one enumeration: which buses have been scanned, what to call. */
struct walk {
	struct vio_pci_bus *bus;
	vio_pci_enum_fn cb;
	void *arg;
	uint8_t scanned[PCI_MAX_BUSES / 8];
	int count;
	int stop; /* nonzero: the callback asked to stop (> 0) or failed (< 0) */
};

static bool bus_in_range(const struct walk *w, unsigned b)
{
	if (!w->bus->use_ecam)
		return b < PCI_MAX_BUSES;
	return b >= w->bus->ecam.bus_start && b <= w->bus->ecam.bus_end;
}

static void scan_bus(struct walk *w, uint8_t b, unsigned depth);

static void visit_function(struct walk *w, struct vio_pci_dev *dev, unsigned depth)
{
	w->count++;
	int r = w->cb ? w->cb(dev, w->arg) : 0;
	if (r) {
		w->stop = r;
		return;
	}
	if (dev->header_type == PCI_HEADER_TYPE_BRIDGE && dev->secondary_bus != 0)
		scan_bus(w, dev->secondary_bus, depth + 1);
}

static void scan_device(struct walk *w, uint8_t b, uint8_t d, unsigned depth)
{
	struct vio_pci_dev dev;

	if (vio_pci_dev_init(&dev, w->bus, b, d, 0) < 0)
		return;
	bool multi = dev.multifunction;
	visit_function(w, &dev, depth);
	for (uint8_t f = 1; multi && f < PCI_MAX_FUNCTIONS && !w->stop; f++)
		if (vio_pci_dev_init(&dev, w->bus, b, d, f) == 0)
			visit_function(w, &dev, depth);
}

static void scan_bus(struct walk *w, uint8_t b, unsigned depth)
{
	/* Each bus once: a bridge naming an already scanned bus (a loop) is ignored. */
	if (w->stop || depth > MAX_BRIDGE_DEPTH || !bus_in_range(w, b) ||
	    (w->scanned[b / 8] & (1u << (b % 8))))
		return;
	w->scanned[b / 8] |= (uint8_t)(1u << (b % 8));
	for (uint8_t d = 0; d < PCI_MAX_DEVICES && !w->stop; d++)
		scan_device(w, b, d, depth);
}

int vio_pci_enumerate(struct vio_pci_bus *bus, vio_pci_enum_fn cb, void *arg)
{
	struct walk w = {.bus = bus, .cb = cb, .arg = arg};
	unsigned first = bus->use_ecam ? bus->ecam.bus_start : 0;
	unsigned last = bus->use_ecam ? bus->ecam.bus_end : PCI_MAX_BUSES - 1;

	for (unsigned b = first; b <= last && !w.stop; b++)
		scan_bus(&w, (uint8_t)b, 0);
	if (w.stop < 0)
		return w.stop;
	return w.count;
}

struct into {
	struct vio_pci_dev *out;
	size_t max;
	size_t n;
};

static int store_dev(struct vio_pci_dev *dev, void *arg)
{
	struct into *in = arg;

	if (in->n < in->max)
		in->out[in->n] = *dev;
	in->n++;
	return 0;
}

int vio_pci_enumerate_into(struct vio_pci_bus *bus, struct vio_pci_dev *out, size_t max)
{
	struct into in = {.out = out, .max = max};

	return vio_pci_enumerate(bus, store_dev, &in);
}

char *vio_pci_bdf(const struct vio_pci_dev *dev, char *buf, size_t size)
{
	vio_snprintf(buf, size, "%04x:%02x:%02x.%u", dev->segment, dev->busno, dev->dev,
		     dev->fn);
	return buf;
}

int vio_pci_describe(const struct vio_pci_dev *dev, char *buf, size_t size)
{
	char bdf[16];
	static const char pins[] = "-ABCD";

	vio_pci_bdf(dev, bdf, sizeof(bdf));
	return vio_snprintf(buf, size,
			    "%s %02x%02x: %04x:%04x (%04x:%04x) rev %02x irq %u pin %c msix %u",
			    bdf, dev->class_code, dev->subclass, dev->vendor_id, dev->device_id,
			    dev->subsystem_vendor_id, dev->subsystem_id, dev->revision,
			    dev->irq_line, pins[dev->irq_pin <= 4 ? dev->irq_pin : 0],
			    dev->msix.cap ? dev->msix.table_size : 0);
}
