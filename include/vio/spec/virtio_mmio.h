/*
 * Virtio over MMIO (virtio 1.2, 4.2): the register block of a memory-mapped device, for
 * version 2 (4.2.2) and the legacy version 1 (4.2.4), which differs only in how queues are
 * placed (GuestPageSize, QueueAlign, QueuePFN instead of QueueDesc/Driver/Device + QueueReady).
 * All registers are 32 bits wide and little-endian; device config starts at 0x100.
 */
#ifndef VIO_SPEC_VIRTIO_MMIO_H
#define VIO_SPEC_VIRTIO_MMIO_H

#include <stdint.h>

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" little-endian */
#define VIRTIO_MMIO_VERSION_LEGACY 1
#define VIRTIO_MMIO_VERSION 2

/* Register names follow the spec's table in 4.2.2 (and 4.2.4 for the legacy ones). */
struct virtio_mmio_regs {
	uint32_t magic_value;	      /* 0x000 R: 0x74726976 */
	uint32_t version;	      /* 0x004 R: 2 (1 for legacy) */
	uint32_t device_id;	      /* 0x008 R: virtio device id; 0 = placeholder, no device */
	uint32_t vendor_id;	      /* 0x00c R */
	uint32_t device_features;     /* 0x010 R: 32 bits chosen by device_features_sel */
	uint32_t device_features_sel; /* 0x014 W */
	uint32_t reserved0[2];
	uint32_t driver_features;     /* 0x020 W */
	uint32_t driver_features_sel; /* 0x024 W */
	uint32_t guest_page_size;     /* 0x028 W, legacy only: page size for queue_pfn */
	uint32_t reserved1;
	uint32_t queue_sel;	      /* 0x030 W */
	uint32_t queue_num_max;	      /* 0x034 R: 0 = queue not available */
	uint32_t queue_num;	      /* 0x038 W */
	uint32_t queue_align;	      /* 0x03c W, legacy only: used ring alignment */
	uint32_t queue_pfn;	      /* 0x040 RW, legacy only: queue page frame, 0 = stop */
	uint32_t queue_ready;	      /* 0x044 RW, version 2 */
	uint32_t reserved2[2];
	uint32_t queue_notify;	      /* 0x050 W */
	uint32_t reserved3[3];
	uint32_t interrupt_status;    /* 0x060 R */
	uint32_t interrupt_ack;	      /* 0x064 W */
	uint32_t reserved4[2];
	uint32_t status;	      /* 0x070 RW */
	uint32_t reserved5[3];
	uint32_t queue_desc_low;      /* 0x080 W */
	uint32_t queue_desc_high;     /* 0x084 W */
	uint32_t reserved6[2];
	uint32_t queue_driver_low;    /* 0x090 W: the available ring */
	uint32_t queue_driver_high;   /* 0x094 W */
	uint32_t reserved7[2];
	uint32_t queue_device_low;    /* 0x0a0 W: the used ring */
	uint32_t queue_device_high;   /* 0x0a4 W */
	uint32_t reserved8;
	uint32_t shm_sel;	      /* 0x0ac W */
	uint32_t shm_len_low;	      /* 0x0b0 R */
	uint32_t shm_len_high;	      /* 0x0b4 R */
	uint32_t shm_base_low;	      /* 0x0b8 R */
	uint32_t shm_base_high;	      /* 0x0bc R */
	uint32_t queue_reset;	      /* 0x0c0 RW */
	uint32_t reserved9[14];
	uint32_t config_generation;   /* 0x0fc R */
};
_Static_assert(sizeof(struct virtio_mmio_regs) == 0x100, "virtio 1.2 4.2.2");

#define VIRTIO_MMIO_CONFIG_OFF 0x100 /* device-specific configuration starts here */

/* interrupt_status / interrupt_ack bits (4.2.2). */
#define VIRTIO_MMIO_INT_VRING 0x1
#define VIRTIO_MMIO_INT_CONFIG 0x2

/* What the legacy driver programs into guest_page_size and queue_align (4.2.4). */
#define VIRTIO_MMIO_LEGACY_PAGE_SIZE 4096
#define VIRTIO_MMIO_LEGACY_QUEUE_ALIGN 4096

#endif
