/*
 * Virtio over PCI (virtio 1.2, 4.1): device ids, the vendor-specific capabilities that locate
 * a modern device's register blocks (4.1.4), the common configuration block (4.1.4.3), and
 * the legacy (virtio 0.9.5) register layout at the start of I/O BAR 0 (4.1.4.10).
 */
#ifndef VIO_SPEC_VIRTIO_PCI_H
#define VIO_SPEC_VIRTIO_PCI_H

#include <stdint.h>

/* PCI ids (4.1.2). */
#define VIRTIO_PCI_VENDOR_ID 0x1af4
#define VIRTIO_PCI_DEVICE_ID_TRANS_MIN 0x1000 /* transitional: id from subsystem_id */
#define VIRTIO_PCI_DEVICE_ID_TRANS_MAX 0x103f
#define VIRTIO_PCI_DEVICE_ID_MODERN_BASE 0x1040 /* modern: virtio id = device_id - 0x1040 */
#define VIRTIO_PCI_DEVICE_ID_MODERN_MAX 0x107f

/* cfg_type of a virtio capability (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5
#define VIRTIO_PCI_CAP_SHARED_MEMORY_CFG 8
#define VIRTIO_PCI_CAP_VENDOR_CFG 9

/* A vendor-specific PCI capability (cap_vndr = 0x09) that points into a BAR (4.1.4). */
struct virtio_pci_cap {
	uint8_t cap_vndr;   /* PCI_CAP_ID_VNDR */
	uint8_t cap_next;   /* next capability */
	uint8_t cap_len;    /* length of this capability structure, including these fields */
	uint8_t cfg_type;   /* VIRTIO_PCI_CAP_* */
	uint8_t bar;	    /* 0..5; other values are reserved and the driver ignores the cap */
	uint8_t id;	    /* distinguishes several caps of one type (shared memory) */
	uint8_t padding[2];
	uint32_t offset;    /* where the structure starts within the BAR */
	uint32_t length;    /* length of the structure in bytes */
};
_Static_assert(sizeof(struct virtio_pci_cap) == 16, "virtio 1.2 4.1.4");

/* 64-bit variant used by shared memory regions (4.1.4). */
struct virtio_pci_cap64 {
	struct virtio_pci_cap cap;
	uint32_t offset_hi;
	uint32_t length_hi;
};
_Static_assert(sizeof(struct virtio_pci_cap64) == 24, "virtio 1.2 4.1.4");

/*
 * Notification capability (4.1.4.4). Queue q is notified by writing its index (16 bits) at
 * cap.offset + queue_notify_off(q) * notify_off_multiplier within cap.bar.
 */
struct virtio_pci_notify_cap {
	struct virtio_pci_cap cap;
	uint32_t notify_off_multiplier;
};
_Static_assert(sizeof(struct virtio_pci_notify_cap) == 20, "virtio 1.2 4.1.4.4");

/*
 * PCI configuration access capability (4.1.4.9): a window in config space through which the
 * driver reaches any BAR register. Write cap.bar, cap.offset and cap.length (1, 2 or 4),
 * then read or write pci_cfg_data.
 */
struct virtio_pci_cfg_cap {
	struct virtio_pci_cap cap;
	uint8_t pci_cfg_data[4];
};
_Static_assert(sizeof(struct virtio_pci_cfg_cap) == 20, "virtio 1.2 4.1.4.9");

/* Common configuration structure (4.1.4.3), in the BAR the COMMON_CFG cap names. */
struct virtio_pci_common_cfg {
	/* About the whole device. */
	uint32_t device_feature_select; /* read-write: which 32 feature bits device_feature shows */
	uint32_t device_feature;	/* read-only for driver */
	uint32_t driver_feature_select; /* read-write */
	uint32_t driver_feature;	/* read-write */
	uint16_t config_msix_vector;	/* read-write; reads VIRTIO_MSI_NO_VECTOR if refused */
	uint16_t num_queues;		/* read-only for driver */
	uint8_t device_status;		/* read-write */
	uint8_t config_generation;	/* read-only for driver */

	/* About a specific virtqueue: the one queue_select names. */
	uint16_t queue_select;	    /* read-write */
	uint16_t queue_size;	    /* read-write: max on reset, the driver may lower it */
	uint16_t queue_msix_vector; /* read-write */
	uint16_t queue_enable;	    /* read-write */
	uint16_t queue_notify_off;  /* read-only for driver */
	/*
	 * The spec's le64 queue_desc, queue_driver (the available ring) and queue_device (the
	 * used ring), split as 4.1.3.1 says drivers access them: two 32-bit halves, low first.
	 */
	uint32_t queue_desc_lo;
	uint32_t queue_desc_hi;
	uint32_t queue_driver_lo;
	uint32_t queue_driver_hi;
	uint32_t queue_device_lo;
	uint32_t queue_device_hi;
	uint16_t queue_notify_data; /* read-only for driver (NOTIF_CONFIG_DATA) */
	uint16_t queue_reset;	    /* read-write (RING_RESET) */
};
_Static_assert(sizeof(struct virtio_pci_common_cfg) == 60, "virtio 1.2 4.1.4.3");

/* The part every modern device has; queue_notify_data and queue_reset came with 1.2. */
#define VIRTIO_PCI_COMMON_CFG_MIN_LEN 56

/* ISR status bits (4.1.4.5): reading the ISR byte returns these and clears them. */
#define VIRTIO_PCI_ISR_QUEUE 0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

/* "No MSI-X vector" for config_msix_vector / queue_msix_vector (4.1.5.1.2). */
#define VIRTIO_MSI_NO_VECTOR 0xffff

/*
 * Legacy interface (4.1.4.10): registers at the start of I/O BAR 0 of a transitional or
 * legacy device. Features are 32 bits only. The queue lives at a guest page frame number in
 * 4096-byte pages, with the used ring aligned to 4096 (2.7.2 legacy layout).
 */
struct virtio_pci_legacy_common {
	uint32_t host_features;	 /* read-only: device features 0..31 */
	uint32_t guest_features; /* read-write: driver features 0..31 */
	uint32_t queue_address;	 /* read-write: queue page frame number, 0 disables it */
	uint16_t queue_size;	 /* read-only: the size is fixed by the device */
	uint16_t queue_select;	 /* read-write */
	uint16_t queue_notify;	 /* write: the index of the queue to notify */
	uint8_t device_status;	 /* read-write */
	uint8_t isr_status;	 /* read: ISR, cleared by the read */
};
_Static_assert(sizeof(struct virtio_pci_legacy_common) == 20, "virtio 1.2 4.1.4.10");

/* Present, right after the common part, only while MSI-X is enabled in the PCI function. */
struct virtio_pci_legacy_msix {
	uint16_t config_msix_vector;
	uint16_t queue_msix_vector;
};
_Static_assert(sizeof(struct virtio_pci_legacy_msix) == 4, "virtio 1.2 4.1.4.10");

#define VIRTIO_PCI_LEGACY_CONFIG_OFF 20	     /* device config without MSI-X */
#define VIRTIO_PCI_LEGACY_CONFIG_OFF_MSIX 24 /* device config with MSI-X enabled */
#define VIRTIO_PCI_LEGACY_PFN_SHIFT 12	     /* queue_address is in 4096-byte pages */
#define VIRTIO_PCI_LEGACY_VRING_ALIGN 4096

_Static_assert(VIRTIO_PCI_LEGACY_CONFIG_OFF == sizeof(struct virtio_pci_legacy_common),
	       "legacy device config follows the common registers");
_Static_assert(VIRTIO_PCI_LEGACY_CONFIG_OFF_MSIX == sizeof(struct virtio_pci_legacy_common) +
							   sizeof(struct virtio_pci_legacy_msix),
	       "with MSI-X the device config moves by 4 bytes");

#endif
