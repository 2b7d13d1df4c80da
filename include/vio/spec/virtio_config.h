/*
 * The transport-independent parts of virtio 1.2 (https://docs.oasis-open.org/virtio/virtio/
 * v1.2/virtio-v1.2.html): the device status bits (2.1), the reserved feature bits (6) and
 * the device ids (5). Feature bits are 64-bit: VIRTIO_F_VERSION_1 is bit 32.
 */
#ifndef VIO_SPEC_VIRTIO_CONFIG_H
#define VIO_SPEC_VIRTIO_CONFIG_H

#include <stdint.h>

/* Device status field (2.1). The driver sets bits in this order; writing 0 resets. */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE 0x01 /* the guest noticed the device */
#define VIRTIO_CONFIG_S_DRIVER 0x02	 /* the guest knows how to drive it */
#define VIRTIO_CONFIG_S_DRIVER_OK 0x04	 /* the driver is ready: the device may go live */
#define VIRTIO_CONFIG_S_FEATURES_OK 0x08 /* feature negotiation is complete */
#define VIRTIO_CONFIG_S_NEEDS_RESET 0x40 /* the device hit an error it cannot recover from */
#define VIRTIO_CONFIG_S_FAILED 0x80	 /* the guest gave up on the device */

/* Feature bit helpers: bits are numbered 0..63 across the two 32-bit feature words. */
#define VIRTIO_BIT(n) (1ULL << (n))

/* Reserved feature bits (6): the ones the transport and ring layers own. */
#define VIRTIO_TRANSPORT_F_START 24
#define VIRTIO_TRANSPORT_F_END 41
#define VIRTIO_F_NOTIFY_ON_EMPTY 24	/* legacy only */
#define VIRTIO_F_ANY_LAYOUT 27		/* legacy only: any descriptor split is fine */
#define VIRTIO_F_RING_INDIRECT_DESC 28	/* 2.7.5.3 indirect descriptors */
#define VIRTIO_F_RING_EVENT_IDX 29	/* 2.7.7 used_event / avail_event */
#define VIRTIO_F_UNUSED 30		/* legacy BAD_FEATURE: never negotiate */
#define VIRTIO_F_VERSION_1 32		/* compliant with virtio 1.x (not legacy) */
#define VIRTIO_F_ACCESS_PLATFORM 33	/* DMA goes through the platform IOMMU rules */
#define VIRTIO_F_RING_PACKED 34		/* 2.8 packed virtqueue layout */
#define VIRTIO_F_IN_ORDER 35		/* buffers are used in the order made available */
#define VIRTIO_F_ORDER_PLATFORM 36	/* needs platform memory barriers */
#define VIRTIO_F_SR_IOV 37		/* single root I/O virtualization */
#define VIRTIO_F_NOTIFICATION_DATA 38	/* driver passes extra data in notifications */
#define VIRTIO_F_NOTIF_CONFIG_DATA 39	/* notifications carry a device-provided value */
#define VIRTIO_F_RING_RESET 40		/* individual queues may be reset */

/* Device ids (5). 0 is reserved: on virtio-mmio it means "no device here". */
#define VIRTIO_ID_RESERVED 0
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_IOMEM 6
#define VIRTIO_ID_RPMSG 7
#define VIRTIO_ID_SCSI 8
#define VIRTIO_ID_9P 9
#define VIRTIO_ID_MAC80211_WLAN 10
#define VIRTIO_ID_RPROC_SERIAL 11
#define VIRTIO_ID_CAIF 12
#define VIRTIO_ID_MEMORY_BALLOON 13
#define VIRTIO_ID_GPU 16
#define VIRTIO_ID_CLOCK 17
#define VIRTIO_ID_INPUT 18
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_CRYPTO 20
#define VIRTIO_ID_SIGNAL_DIST 21
#define VIRTIO_ID_PSTORE 22
#define VIRTIO_ID_IOMMU 23
#define VIRTIO_ID_MEM 24
#define VIRTIO_ID_SOUND 25
#define VIRTIO_ID_FS 26
#define VIRTIO_ID_PMEM 27
#define VIRTIO_ID_RPMB 28
#define VIRTIO_ID_MAC80211_HWSIM 29
#define VIRTIO_ID_VIDEO_ENCODER 30
#define VIRTIO_ID_VIDEO_DECODER 31
#define VIRTIO_ID_SCMI 32
#define VIRTIO_ID_NITRO_SEC_MOD 33
#define VIRTIO_ID_I2C_ADAPTER 34
#define VIRTIO_ID_WATCHDOG 35
#define VIRTIO_ID_CAN 36
#define VIRTIO_ID_PARAM_SERV 38
#define VIRTIO_ID_AUDIO_POLICY 39
#define VIRTIO_ID_BT 40
#define VIRTIO_ID_GPIO 41
#define VIRTIO_ID_RDMA 42

/* The largest split queue (2.7: Queue Size is at most 32768). */
#define VIRTIO_QUEUE_SIZE_MAX 32768

#endif
