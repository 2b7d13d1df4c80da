/*
 * PCI configuration space access: mechanism #1 and ECAM behind one set of calls.
 *
 * Mechanism #1 (PCI 3.0 3.2.2.3.2): write 0x80000000 | bus << 16 | dev << 11 | fn << 8 |
 * (offset & 0xfc) to port 0xcf8, then access the addressed dword at port 0xcfc; a narrower
 * access picks its bytes with 0xcfc + (offset & 3). Only the first 256 bytes are reachable.
 *
 * ECAM (PCIe 7.2.2): each function's 4 KiB of config space is memory at
 * base + (bus - bus_start) << 20 | dev << 15 | fn << 12, accessed like any MMIO register.
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/io.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>

int vio_pci_bus_init(struct vio_pci_bus *bus, const struct vio_port *port,
		     const struct vio_pci_ecam *ecam)
{
	if (!bus || !port)
		return VIO_EINVAL;
	*bus = (struct vio_pci_bus){.port = port};
	if (!ecam) {
		if (!port->inl || !port->outl || !port->inw || !port->outw || !port->inb ||
		    !port->outb)
			return VIO_ENOTSUP;
		return 0;
	}
	if (ecam->bus_end < ecam->bus_start || !port->map_mmio)
		return VIO_EINVAL;
	size_t len = (size_t)(ecam->bus_end - ecam->bus_start + 1) << PCI_ECAM_BUS_SHIFT;
	volatile void *base = port->map_mmio(port->ctx, ecam->phys, len);
	if (!base)
		return VIO_ENOMEM;
	bus->use_ecam = true;
	bus->ecam = *ecam;
	bus->ecam_base = base;
	return 0;
}

/* The mapped address of a config register, or NULL when ECAM does not reach it. */
static volatile void *ecam_addr(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
				uint16_t off)
{
	if (b < bus->ecam.bus_start || b > bus->ecam.bus_end || d >= PCI_MAX_DEVICES ||
	    f >= PCI_MAX_FUNCTIONS || off >= PCI_CFG_SPACE_EXP_SIZE)
		return NULL;
	uint64_t at = (uint64_t)(b - bus->ecam.bus_start) << PCI_ECAM_BUS_SHIFT |
		      (uint64_t)d << PCI_ECAM_DEV_SHIFT | (uint64_t)f << PCI_ECAM_FN_SHIFT | off;
	return bus->ecam_base + at;
}

/* Select a dword for mechanism #1; false when the address cannot be expressed. */
static bool cf8_select(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
		       uint16_t off)
{
	if (d >= PCI_MAX_DEVICES || f >= PCI_MAX_FUNCTIONS || off >= PCI_CFG_SPACE_SIZE)
		return false;
	uint32_t addr = PCI_CONFIG_ENABLE | (uint32_t)b << 16 | (uint32_t)d << 11 |
			(uint32_t)f << 8 | (off & 0xfc);
	bus->port->outl(bus->port->ctx, PCI_CONFIG_ADDRESS, addr);
	return true;
}

uint8_t vio_pci_bus_read8(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			  uint16_t off)
{
	if (bus->use_ecam) {
		volatile void *p = ecam_addr(bus, b, d, f, off);
		return p ? vio_mmio_read8(p) : 0xff;
	}
	if (!cf8_select(bus, b, d, f, off))
		return 0xff;
	return bus->port->inb(bus->port->ctx, PCI_CONFIG_DATA + (off & 3));
}

uint16_t vio_pci_bus_read16(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			    uint16_t off)
{
	if (off & 1)
		return 0xffff;
	if (bus->use_ecam) {
		volatile void *p = ecam_addr(bus, b, d, f, off);
		return p ? vio_mmio_read16(p) : 0xffff;
	}
	if (!cf8_select(bus, b, d, f, off))
		return 0xffff;
	return bus->port->inw(bus->port->ctx, PCI_CONFIG_DATA + (off & 2));
}

uint32_t vio_pci_bus_read32(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			    uint16_t off)
{
	if (off & 3)
		return 0xffffffffu;
	if (bus->use_ecam) {
		volatile void *p = ecam_addr(bus, b, d, f, off);
		return p ? vio_mmio_read32(p) : 0xffffffffu;
	}
	if (!cf8_select(bus, b, d, f, off))
		return 0xffffffffu;
	return bus->port->inl(bus->port->ctx, PCI_CONFIG_DATA);
}

void vio_pci_bus_write8(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			uint16_t off, uint8_t val)
{
	if (bus->use_ecam) {
		volatile void *p = ecam_addr(bus, b, d, f, off);
		if (p)
			vio_mmio_write8(p, val);
		return;
	}
	if (cf8_select(bus, b, d, f, off))
		bus->port->outb(bus->port->ctx, PCI_CONFIG_DATA + (off & 3), val);
}

void vio_pci_bus_write16(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			 uint16_t off, uint16_t val)
{
	if (off & 1)
		return;
	if (bus->use_ecam) {
		volatile void *p = ecam_addr(bus, b, d, f, off);
		if (p)
			vio_mmio_write16(p, val);
		return;
	}
	if (cf8_select(bus, b, d, f, off))
		bus->port->outw(bus->port->ctx, PCI_CONFIG_DATA + (off & 2), val);
}

void vio_pci_bus_write32(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			 uint16_t off, uint32_t val)
{
	if (off & 3)
		return;
	if (bus->use_ecam) {
		volatile void *p = ecam_addr(bus, b, d, f, off);
		if (p)
			vio_mmio_write32(p, val);
		return;
	}
	if (cf8_select(bus, b, d, f, off))
		bus->port->outl(bus->port->ctx, PCI_CONFIG_DATA, val);
}

uint8_t vio_pci_read8(const struct vio_pci_dev *dev, uint16_t off)
{
	return vio_pci_bus_read8(dev->bus, dev->busno, dev->dev, dev->fn, off);
}

uint16_t vio_pci_read16(const struct vio_pci_dev *dev, uint16_t off)
{
	return vio_pci_bus_read16(dev->bus, dev->busno, dev->dev, dev->fn, off);
}

uint32_t vio_pci_read32(const struct vio_pci_dev *dev, uint16_t off)
{
	return vio_pci_bus_read32(dev->bus, dev->busno, dev->dev, dev->fn, off);
}

void vio_pci_write8(const struct vio_pci_dev *dev, uint16_t off, uint8_t val)
{
	vio_pci_bus_write8(dev->bus, dev->busno, dev->dev, dev->fn, off, val);
}

void vio_pci_write16(const struct vio_pci_dev *dev, uint16_t off, uint16_t val)
{
	vio_pci_bus_write16(dev->bus, dev->busno, dev->dev, dev->fn, off, val);
}

void vio_pci_write32(const struct vio_pci_dev *dev, uint16_t off, uint32_t val)
{
	vio_pci_bus_write32(dev->bus, dev->busno, dev->dev, dev->fn, off, val);
}

uint16_t vio_pci_cfg_size(const struct vio_pci_dev *dev)
{
	return dev->bus->use_ecam ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
}

void vio_pci_set_command(const struct vio_pci_dev *dev, uint16_t set, uint16_t clear)
{
	uint16_t off = offsetof(struct pci_header_common, command);
	uint16_t cmd = vio_pci_read16(dev, off);

	vio_pci_write16(dev, off, (uint16_t)((cmd & ~clear) | set));
}
