/*
 * PCI configuration space as the PCI Local Bus Specification 3.0 (chapter 6) and the PCI
 * Express Base Specification (7.2.2 ECAM) lay it out: the 64-byte type 0 and type 1 headers,
 * the COMMAND and STATUS bits vio uses, BAR encoding, capability ids, and the MSI-X
 * capability with its table entries (PCI 3.0 6.8.2).
 *
 * All fields are little-endian. Offsets are taken with offsetof() on these structs; config
 * space is always accessed with a width matching the field.
 */
#ifndef VIO_SPEC_PCI_H
#define VIO_SPEC_PCI_H

#include <stdint.h>

/* Mechanism #1 (PCI 3.0 3.2.2.3.2): write an address to CONFIG_ADDRESS, then access CONFIG_DATA. */
#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_CONFIG_ENABLE (1u << 31)

#define PCI_CFG_SPACE_SIZE 256	   /* conventional config space */
#define PCI_CFG_SPACE_EXP_SIZE 4096 /* PCI Express extended config space (ECAM only) */
#define PCI_STD_HEADER_SIZE 64	   /* capabilities live at or after this offset */
#define PCI_MAX_DEVICES 32
#define PCI_MAX_FUNCTIONS 8
#define PCI_MAX_BUSES 256

/* ECAM (PCIe 7.2.2): one 4 KiB page of config space per function, 1 MiB per bus. */
#define PCI_ECAM_BUS_SHIFT 20
#define PCI_ECAM_DEV_SHIFT 15
#define PCI_ECAM_FN_SHIFT 12

#define PCI_VENDOR_NONE 0xffff /* what a read of an absent function returns */

/* Fields both header types share (PCI 3.0 6.1). */
struct pci_header_common {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t command;
	uint16_t status;
	uint8_t revision_id;
	uint8_t prog_if;
	uint8_t subclass;
	uint8_t class_code;
	uint8_t cache_line_size;
	uint8_t latency_timer;
	uint8_t header_type;
	uint8_t bist;
};
_Static_assert(sizeof(struct pci_header_common) == 16, "PCI 3.0 6.1");

/* Type 0: an ordinary function (PCI 3.0 6.1, figure 6-1). */
struct pci_header_type0 {
	struct pci_header_common common;
	uint32_t bar[6];
	uint32_t cardbus_cis;
	uint16_t subsystem_vendor_id;
	uint16_t subsystem_id;
	uint32_t rom_address;
	uint8_t capabilities_pointer;
	uint8_t reserved[7];
	uint8_t interrupt_line;
	uint8_t interrupt_pin;
	uint8_t min_gnt;
	uint8_t max_lat;
};
_Static_assert(sizeof(struct pci_header_type0) == PCI_STD_HEADER_SIZE, "PCI 3.0 6.1");

/* Type 1: a PCI-to-PCI bridge (PCI-to-PCI Bridge Architecture Specification 1.2, 3.2). */
struct pci_header_type1 {
	struct pci_header_common common;
	uint32_t bar[2];
	uint8_t primary_bus;
	uint8_t secondary_bus;
	uint8_t subordinate_bus;
	uint8_t secondary_latency_timer;
	uint8_t io_base;
	uint8_t io_limit;
	uint16_t secondary_status;
	uint16_t memory_base;
	uint16_t memory_limit;
	uint16_t prefetchable_memory_base;
	uint16_t prefetchable_memory_limit;
	uint32_t prefetchable_base_upper32;
	uint32_t prefetchable_limit_upper32;
	uint16_t io_base_upper16;
	uint16_t io_limit_upper16;
	uint8_t capabilities_pointer;
	uint8_t reserved[3];
	uint32_t rom_address;
	uint8_t interrupt_line;
	uint8_t interrupt_pin;
	uint16_t bridge_control;
};
_Static_assert(sizeof(struct pci_header_type1) == PCI_STD_HEADER_SIZE, "PCI-PCI bridge 3.2");

/* header_type: bit 7 says the device has functions 1-7; the low bits name the layout. */
#define PCI_HEADER_TYPE_MASK 0x7f
#define PCI_HEADER_TYPE_MULTIFUNCTION 0x80
#define PCI_HEADER_TYPE_NORMAL 0
#define PCI_HEADER_TYPE_BRIDGE 1
#define PCI_HEADER_TYPE_CARDBUS 2

/* COMMAND register (PCI 3.0 6.2.2). */
#define PCI_COMMAND_IO (1u << 0)	       /* respond to I/O BARs */
#define PCI_COMMAND_MEMORY (1u << 1)	       /* respond to memory BARs */
#define PCI_COMMAND_MASTER (1u << 2)	       /* may issue DMA (and MSI writes) */
#define PCI_COMMAND_INTX_DISABLE (1u << 10) /* do not assert INTx# */

/* STATUS register (PCI 3.0 6.2.3). */
#define PCI_STATUS_INTERRUPT (1u << 3) /* INTx# is asserted */
#define PCI_STATUS_CAP_LIST (1u << 4)  /* capabilities_pointer is valid */

/* Base Address Registers (PCI 3.0 6.2.5.1). */
#define PCI_BAR_IO (1u << 0)
#define PCI_BAR_MEM_TYPE_MASK (3u << 1)
#define PCI_BAR_MEM_TYPE_32 (0u << 1)
#define PCI_BAR_MEM_TYPE_1M (1u << 1) /* legacy "below 1 MiB": decoded as 32-bit */
#define PCI_BAR_MEM_TYPE_64 (2u << 1)
#define PCI_BAR_MEM_PREFETCH (1u << 3)
#define PCI_BAR_MEM_MASK (~0xfu)
#define PCI_BAR_IO_MASK (~0x3u)

/* Class codes vio names in logs (PCI Code and ID Assignment Specification). */
#define PCI_CLASS_BRIDGE 0x06
#define PCI_SUBCLASS_BRIDGE_PCI 0x04

/* Capability header (PCI 3.0 6.7): every capability starts with an id and a next pointer. */
struct pci_cap_header {
	uint8_t cap_id;
	uint8_t cap_next; /* offset of the next capability; 0 ends the list; low 2 bits reserved */
};
_Static_assert(sizeof(struct pci_cap_header) == 2, "PCI 3.0 6.7");

#define PCI_CAP_PTR_MASK 0xfc
#define PCI_CAP_ID_PM 0x01
#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_VNDR 0x09 /* vendor specific: virtio's capabilities */
#define PCI_CAP_ID_EXP 0x10
#define PCI_CAP_ID_MSIX 0x11

/* MSI-X capability (PCI 3.0 6.8.2). */
struct pci_msix_cap {
	uint8_t cap_id;
	uint8_t cap_next;
	uint16_t message_control;
	uint32_t table;	 /* BIR in bits 2:0, offset into that BAR in 31:3 (8-byte aligned) */
	uint32_t pba;	 /* the same for the pending bit array */
};
_Static_assert(sizeof(struct pci_msix_cap) == 12, "PCI 3.0 6.8.2");

#define PCI_MSIX_CTRL_TABLE_SIZE 0x07ff	   /* entries - 1 */
#define PCI_MSIX_CTRL_FUNCTION_MASK (1u << 14) /* masks every vector at once */
#define PCI_MSIX_CTRL_ENABLE (1u << 15)
#define PCI_MSIX_BIR_MASK 0x7u
#define PCI_MSIX_OFFSET_MASK (~0x7u)

/* One MSI-X table entry (PCI 3.0 6.8.2.6-9), in the BAR memory the table lives in. */
struct pci_msix_entry {
	uint32_t msg_addr_lo;
	uint32_t msg_addr_hi;
	uint32_t msg_data;
	uint32_t vector_control;
};
_Static_assert(sizeof(struct pci_msix_entry) == 16, "PCI 3.0 6.8.2.6");

#define PCI_MSIX_ENTRY_CTRL_MASKED (1u << 0)

#endif
