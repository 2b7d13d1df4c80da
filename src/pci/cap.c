/*
 * PCI capabilities (PCI 3.0 6.7) and MSI-X (6.8.2).
 *
 * The capability list is a linked list inside config space: Capabilities Pointer (0x34)
 * names the first entry, each entry starts with its id and the offset of the next, and 0
 * ends it. The device writes these bytes, so we bound the walk: every pointer must lie past
 * the standard header (>= 0x40), the entry must fit inside the first 256 bytes, no offset may
 * come twice, and there can be at most 48 entries ((256 - 64) / 4).
 *
 * MSI-X: the capability names a BAR (BIR) and offset for a table of 16-byte entries, one per
 * vector, each holding the message address and data the function writes to interrupt, and
 * a mask bit. The function uses them once Enable is set in Message Control.
 */
#include <stddef.h>
#include <vio/err.h>
#include <vio/io.h>
#include <vio/pci.h>
#include <vio/spec/pci.h>

#define CAP(field) offsetof(struct pci_cap_header, field)
#define MSIX(field) offsetof(struct pci_msix_cap, field)
#define ENTRY(field) offsetof(struct pci_msix_entry, field)

int vio_pci_cap_walk(const struct vio_pci_dev *dev, struct vio_pci_capref *caps, int max)
{
	uint8_t seen[PCI_CFG_SPACE_SIZE / 32] = {0}; /* one bit per dword offset */
	int n = 0;

	uint16_t status = vio_pci_read16(dev, offsetof(struct pci_header_common, status));
	if (status == 0xffff || !(status & PCI_STATUS_CAP_LIST))
		return 0;
	uint8_t ptr_off = dev->header_type == PCI_HEADER_TYPE_BRIDGE
				  ? offsetof(struct pci_header_type1, capabilities_pointer)
				  : offsetof(struct pci_header_type0, capabilities_pointer);
	uint8_t ptr = vio_pci_read8(dev, ptr_off) & PCI_CAP_PTR_MASK;

	while (ptr) {
		if (ptr < PCI_STD_HEADER_SIZE ||
		    ptr + sizeof(struct pci_cap_header) > PCI_CFG_SPACE_SIZE)
			return VIO_EPROTO;
		if (seen[ptr / 32] & (1u << (ptr / 4 % 8)))
			return VIO_EPROTO; /* a cycle */
		if (n >= VIO_PCI_MAX_CAPS)
			return VIO_EPROTO;
		seen[ptr / 32] |= (uint8_t)(1u << (ptr / 4 % 8));
		uint8_t id = vio_pci_read8(dev, (uint16_t)(ptr + CAP(cap_id)));
		if (caps && n < max)
			caps[n] = (struct vio_pci_capref){.id = id, .offset = ptr};
		n++;
		ptr = vio_pci_read8(dev, (uint16_t)(ptr + CAP(cap_next))) & PCI_CAP_PTR_MASK;
	}
	return n;
}

int vio_pci_find_cap(const struct vio_pci_dev *dev, uint8_t id)
{
	struct vio_pci_capref caps[VIO_PCI_MAX_CAPS];
	int n = vio_pci_cap_walk(dev, caps, VIO_PCI_MAX_CAPS);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		if (caps[i].id == id)
			return caps[i].offset;
	return VIO_ENODEV;
}

int vio_pci_msix_map(struct vio_pci_dev *dev)
{
	struct vio_pci_msix *m = &dev->msix;
	uint64_t bytes = (uint64_t)m->table_size * sizeof(struct pci_msix_entry);

	if (!m->cap)
		return VIO_ENODEV;
	if (m->table)
		return 0;
	if (!vio_pci_bar_contains(dev, m->table_bar, m->table_offset, bytes) ||
	    !vio_pci_bar_contains(dev, m->pba_bar, m->pba_offset, (m->table_size + 63u) / 64 * 8))
		return VIO_EPROTO;
	m->table = vio_pci_map_bar(dev, m->table_bar, m->table_offset, bytes);
	return m->table ? 0 : VIO_ENOMEM;
}

static volatile uint8_t *entry_at(struct vio_pci_dev *dev, uint16_t entry)
{
	if (!dev->msix.table || entry >= dev->msix.table_size)
		return NULL;
	return dev->msix.table + (size_t)entry * sizeof(struct pci_msix_entry);
}

int vio_pci_msix_set_entry(struct vio_pci_dev *dev, uint16_t entry, uint64_t addr,
			   uint32_t data, bool masked)
{
	volatile uint8_t *e = entry_at(dev, entry);

	if (!e)
		return VIO_EINVAL;
	/* Mask while the message is half written, so the function never uses a torn one. */
	vio_pci_msix_mask_entry(dev, entry, true);
	vio_mmio_write32(e + ENTRY(msg_addr_lo), (uint32_t)addr);
	vio_mmio_write32(e + ENTRY(msg_addr_hi), (uint32_t)(addr >> 32));
	vio_mmio_write32(e + ENTRY(msg_data), data);
	vio_pci_msix_mask_entry(dev, entry, masked);
	return 0;
}

void vio_pci_msix_mask_entry(struct vio_pci_dev *dev, uint16_t entry, bool masked)
{
	volatile uint8_t *e = entry_at(dev, entry);

	if (!e)
		return;
	uint32_t ctrl = vio_mmio_read32(e + ENTRY(vector_control));
	ctrl = masked ? ctrl | PCI_MSIX_ENTRY_CTRL_MASKED : ctrl & ~PCI_MSIX_ENTRY_CTRL_MASKED;
	vio_mmio_write32(e + ENTRY(vector_control), ctrl);
}

static void update_msix_control(struct vio_pci_dev *dev, uint16_t set, uint16_t clear)
{
	uint16_t off = (uint16_t)(dev->msix.cap + MSIX(message_control));
	uint16_t ctrl = vio_pci_read16(dev, off);

	vio_pci_write16(dev, off, (uint16_t)((ctrl & ~clear) | set));
}

void vio_pci_msix_enable(struct vio_pci_dev *dev, bool enable)
{
	if (!dev->msix.cap)
		return;
	if (enable) {
		vio_pci_set_command(dev, PCI_COMMAND_INTX_DISABLE, 0);
		update_msix_control(dev, PCI_MSIX_CTRL_ENABLE, PCI_MSIX_CTRL_FUNCTION_MASK);
	} else {
		update_msix_control(dev, 0, PCI_MSIX_CTRL_ENABLE);
		vio_pci_set_command(dev, 0, PCI_COMMAND_INTX_DISABLE);
	}
	dev->msix.enabled = enable;
}
