/*
 * The split virtqueue as the device sees it: virtio 1.2 section 2.7 ("Split Virtqueues").
 *
 * A split virtqueue is three areas of shared memory:
 *
 *   descriptor table  (2.7.5)  `size` struct vring_desc; the driver writes, the device reads.
 *   available ring    (2.7.6)  struct vring_avail + ring[size] + used_event; driver-written.
 *   used ring         (2.7.8)  struct vring_used + ring[size] + avail_event; device-written.
 *
 * Names follow the spec (and Linux's uapi/linux/virtio_ring.h). The spec types le16, le32 and
 * le64 are little-endian. vio runs on little-endian CPUs only (include/vio/barrier.h refuses
 * others), so these are plain integers.
 */
#ifndef VIO_SPEC_VIRTIO_RING_H
#define VIO_SPEC_VIRTIO_RING_H

#include <stdint.h>

/* Little-endian on the wire; identical to the CPU's integers (see above). */
typedef uint16_t vio_le16;
typedef uint32_t vio_le32;
typedef uint64_t vio_le64;

/*
 * Feature bit numbers for the ring itself (6 "Reserved Feature Bits"; the spec calls them
 * VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX). The mask is 1ULL << n, like every feature.
 */
#define VIRTIO_F_RING_INDIRECT_DESC 28 /* VRING_DESC_F_INDIRECT may be used (2.7.5.3) */
#define VIRTIO_F_RING_EVENT_IDX 29     /* used_event / avail_event replace the flags (2.7.10) */

/* 2.7.5 The Virtqueue Descriptor Table. */
#define VRING_DESC_F_NEXT 1     /* the chain continues in `next` */
#define VRING_DESC_F_WRITE 2    /* the device writes this buffer (otherwise it only reads) */
#define VRING_DESC_F_INDIRECT 4 /* the buffer is a table of struct vring_desc (2.7.5.3) */

struct vring_desc {
	vio_le64 addr;  /* guest-physical address of the buffer */
	vio_le32 len;   /* its length in bytes */
	vio_le16 flags; /* VRING_DESC_F_* */
	vio_le16 next;  /* index of the next descriptor when flags has VRING_DESC_F_NEXT */
};
_Static_assert(sizeof(struct vring_desc) == 16, "virtio 1.2 2.7.5: descriptor is 16 bytes");

/* 2.7.6 The Virtqueue Available Ring. */
#define VRING_AVAIL_F_NO_INTERRUPT 1 /* driver to device: do not interrupt me (a hint) */

struct vring_avail {
	vio_le16 flags; /* VRING_AVAIL_F_NO_INTERRUPT (only without EVENT_IDX) */
	vio_le16 idx;   /* where the driver puts the next entry, modulo size; free-running */
	vio_le16 ring[]; /* [size] heads of chains, then vio_le16 used_event (EVENT_IDX only) */
};
_Static_assert(sizeof(struct vring_avail) == 4, "virtio 1.2 2.7.6: avail header is 4 bytes");

/* 2.7.8 The Virtqueue Used Ring. */
#define VRING_USED_F_NO_NOTIFY 1 /* device to driver: do not notify me (a hint) */

struct vring_used_elem {
	vio_le32 id;  /* head of the chain the device finished; the device writes it: untrusted */
	vio_le32 len; /* bytes the device wrote into the chain's writable buffers; untrusted */
};
_Static_assert(sizeof(struct vring_used_elem) == 8, "virtio 1.2 2.7.8: used element is 8 bytes");

struct vring_used {
	vio_le16 flags; /* VRING_USED_F_NO_NOTIFY (only without EVENT_IDX) */
	vio_le16 idx;   /* where the device puts the next entry, modulo size; free-running */
	struct vring_used_elem ring[]; /* [size], then vio_le16 avail_event (EVENT_IDX only) */
};
_Static_assert(sizeof(struct vring_used) == 4, "virtio 1.2 2.7.8: used header is 4 bytes");

/* Alignment of each area for modern transports (2.7, table "Virtqueue Part Alignment"). */
#define VRING_DESC_ALIGN 16
#define VRING_AVAIL_ALIGN 2
#define VRING_USED_ALIGN 4

/*
 * Legacy transports (legacy PCI, MMIO version 1) know only one address: the queue's page
 * frame. They require the three areas to be contiguous, with the used ring starting on the
 * next 4096-byte boundary after the available ring (2.7.2 "Legacy Interfaces: A Note on
 * Virtqueue Layout"). These give each area's byte offset and size in that layout.
 */
#define VRING_LEGACY_ALIGN 4096u

static inline uint32_t vring_desc_bytes(uint32_t size)
{
	return 16u * size;
}

static inline uint32_t vring_avail_bytes(uint32_t size)
{
	return 2u * (3u + size); /* flags, idx, ring[size], used_event */
}

static inline uint32_t vring_used_bytes(uint32_t size)
{
	return 2u * 3u + 8u * size; /* flags, idx, ring[size], avail_event */
}

static inline uint32_t vring_legacy_used_offset(uint32_t size)
{
	uint32_t end = vring_desc_bytes(size) + vring_avail_bytes(size);
	return (end + VRING_LEGACY_ALIGN - 1) & ~(VRING_LEGACY_ALIGN - 1);
}

static inline uint32_t vring_legacy_bytes(uint32_t size)
{
	return vring_legacy_used_offset(size) + vring_used_bytes(size);
}

/*
 * 2.7.10 / 2.7.7.2: with EVENT_IDX, the other side wants a notification when its event index
 * lies in the window of entries just published, [old, new_idx). All three are free-running
 * 16-bit counters, so the comparison is done in wrapping 16-bit arithmetic: "how far past old
 * is the event" must be less than "how far past old is new_idx".
 */
static inline int vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/*
 * The packed virtqueue (2.8, "Packed Virtqueues"), negotiated with VIRTIO_F_RING_PACKED (bit
 * 34, vio/spec/virtio_config.h). One ring of descriptors that both sides write, and two small
 * event suppression structures:
 *
 *   descriptor ring    (2.8.13)  `size` struct vring_packed_desc; the driver writes available
 *                                descriptors, the device overwrites them with used ones.
 *   driver event area  (2.8.14)  struct vring_packed_desc_event; driver-written: when the
 *                                device may send used buffer notifications (interrupts).
 *   device event area  (2.8.14)  the same structure; device-written: when the driver should
 *                                send available buffer notifications.
 *
 * A descriptor is available when its AVAIL bit equals the driver's ring wrap counter and its
 * USED bit does not; used when both equal the device's wrap counter (2.8.1). Each counter
 * starts at 1 and flips every time its side passes the end of the ring.
 */
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED (1u << 15)

struct vring_packed_desc {
	vio_le64 addr;  /* buffer address (available); unused in a used descriptor */
	vio_le32 len;   /* buffer length (available); bytes written (used): untrusted */
	vio_le16 id;    /* buffer id: the driver's, echoed by the device in the used one */
	vio_le16 flags; /* VRING_DESC_F_{NEXT,WRITE,INDIRECT} | VRING_PACKED_DESC_F_{AVAIL,USED} */
};
_Static_assert(sizeof(struct vring_packed_desc) == 16, "virtio 1.2 2.8.13: descriptor is 16 bytes");

/* 2.8.10: desc_event_flags. DESC is only valid with VIRTIO_F_RING_EVENT_IDX. */
#define VRING_PACKED_EVENT_FLAG_ENABLE 0x0
#define VRING_PACKED_EVENT_FLAG_DISABLE 0x1
#define VRING_PACKED_EVENT_FLAG_DESC 0x2
#define VRING_PACKED_EVENT_WRAP (1u << 15) /* in off_wrap: the wrap counter; bits 0-14: offset */

struct vring_packed_desc_event {
	vio_le16 off_wrap; /* with FLAG_DESC: the descriptor (offset | wrap << 15) to signal at */
	vio_le16 flags;    /* VRING_PACKED_EVENT_FLAG_*, bits 2-15 reserved */
};
_Static_assert(sizeof(struct vring_packed_desc_event) == 4,
	       "virtio 1.2 2.8.14: event suppression structure is 4 bytes");

/* Alignment of each part (2.8.10.1 "Structure Size and Alignment"). */
#define VRING_PACKED_DESC_ALIGN 16
#define VRING_PACKED_EVENT_ALIGN 4

static inline uint32_t vring_packed_desc_bytes(uint32_t size)
{
	return 16u * size;
}

#endif
