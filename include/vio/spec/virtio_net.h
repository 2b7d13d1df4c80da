/*
 * The virtio network device as the spec defines it: virtio 1.2 section 5.1 ("Network
 * Device"). Names follow the spec (and Linux's uapi/linux/virtio_net.h). Multi-byte fields
 * are little-endian (le16/le32 in the spec); vio runs on little-endian CPUs only
 * (include/vio/barrier.h refuses others), so these are plain integers.
 *
 * Queues (5.1.2): receiveq1 = 0, transmitq1 = 1, ... receiveqN = 2(N-1), transmitqN =
 * 2(N-1)+1, and the control queue after the last pair: index 2 without VIRTIO_NET_F_MQ.
 */
#ifndef VIO_SPEC_VIRTIO_NET_H
#define VIO_SPEC_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_ring.h>

/* 5.1.3 Feature bits: numbers, as every feature in vio (the mask is VIRTIO_BIT(n)). */
#define VIRTIO_NET_F_CSUM		 0  /* device handles packets with partial checksum */
#define VIRTIO_NET_F_GUEST_CSUM		 1  /* driver handles packets with partial checksum */
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2  /* offloads reconfigurable over the ctrl queue */
#define VIRTIO_NET_F_MTU		 3  /* config.mtu is valid: the device's maximum MTU */
#define VIRTIO_NET_F_MAC		 5  /* config.mac is valid */
#define VIRTIO_NET_F_GUEST_TSO4		 7  /* driver can receive TSOv4 */
#define VIRTIO_NET_F_GUEST_TSO6		 8  /* driver can receive TSOv6 */
#define VIRTIO_NET_F_GUEST_ECN		 9  /* driver can receive TSO with ECN */
#define VIRTIO_NET_F_GUEST_UFO		 10 /* driver can receive UFO */
#define VIRTIO_NET_F_HOST_TSO4		 11 /* device can receive TSOv4 */
#define VIRTIO_NET_F_HOST_TSO6		 12 /* device can receive TSOv6 */
#define VIRTIO_NET_F_HOST_ECN		 13 /* device can receive TSO with ECN */
#define VIRTIO_NET_F_HOST_UFO		 14 /* device can receive UFO */
#define VIRTIO_NET_F_MRG_RXBUF		 15 /* a received packet may span several buffers */
#define VIRTIO_NET_F_STATUS		 16 /* config.status is valid */
#define VIRTIO_NET_F_CTRL_VQ		 17 /* the control queue exists */
#define VIRTIO_NET_F_CTRL_RX		 18 /* RX mode control (promiscuous, all-multicast) */
#define VIRTIO_NET_F_CTRL_VLAN		 19 /* VLAN filtering */
#define VIRTIO_NET_F_CTRL_RX_EXTRA	 20 /* extra RX mode control (no broadcast, ...) */
#define VIRTIO_NET_F_GUEST_ANNOUNCE	 21 /* driver sends gratuitous packets on request */
#define VIRTIO_NET_F_MQ			 22 /* several queue pairs with automatic steering */
#define VIRTIO_NET_F_CTRL_MAC_ADDR	 23 /* MAC address settable over the ctrl queue */
#define VIRTIO_NET_F_SPEED_DUPLEX	 63 /* config.speed and config.duplex are valid */

/* 5.1.4 config.status bits (valid with VIRTIO_NET_F_STATUS). */
#define VIRTIO_NET_S_LINK_UP  1 /* the link is up */
#define VIRTIO_NET_S_ANNOUNCE 2 /* the device asks for a gratuitous announcement */

/* 5.1.4 Device configuration layout. Fields past `mac` are valid only with their feature. */
struct virtio_net_config {
	uint8_t mac[6];		      /* VIRTIO_NET_F_MAC */
	vio_le16 status;	      /* VIRTIO_NET_F_STATUS: VIRTIO_NET_S_* */
	vio_le16 max_virtqueue_pairs; /* VIRTIO_NET_F_MQ */
	vio_le16 mtu;		      /* VIRTIO_NET_F_MTU: at least 68 */
	vio_le32 speed;		      /* VIRTIO_NET_F_SPEED_DUPLEX: Mbit/s, -1 unknown */
	uint8_t duplex;		      /* VIRTIO_NET_F_SPEED_DUPLEX: 0 half, 1 full */
	uint8_t rss_max_key_size;     /* VIRTIO_NET_F_RSS */
	vio_le16 rss_max_indirection_table_length;
	vio_le32 supported_hash_types;
};
_Static_assert(offsetof(struct virtio_net_config, status) == 6, "virtio 5.1.4");
_Static_assert(offsetof(struct virtio_net_config, mtu) == 10, "virtio 5.1.4");
_Static_assert(offsetof(struct virtio_net_config, speed) == 12, "virtio 5.1.4");
_Static_assert(sizeof(struct virtio_net_config) == 24, "virtio 5.1.4");

/* 5.1.6 virtio_net_hdr.flags */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1 /* checksum from csum_start to the end still to do */
#define VIRTIO_NET_HDR_F_DATA_VALID 2 /* RX: the device checked the checksum(s) */
#define VIRTIO_NET_HDR_F_RSC_INFO   4 /* RX: coalesced segments (VIRTIO_NET_F_RSC_EXT) */

/* 5.1.6 virtio_net_hdr.gso_type */
#define VIRTIO_NET_HDR_GSO_NONE	  0
#define VIRTIO_NET_HDR_GSO_TCPV4  1
#define VIRTIO_NET_HDR_GSO_UDP	  3
#define VIRTIO_NET_HDR_GSO_TCPV6  4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#define VIRTIO_NET_HDR_GSO_ECN	  0x80

/*
 * 5.1.6 Device Operation: the header in front of every packet, both directions.
 *
 * Its size depends on the interface (5.1.6.1 and its legacy note): a modern (VERSION_1)
 * device always uses all 12 bytes; a legacy device has num_buffers only when
 * VIRTIO_NET_F_MRG_RXBUF was negotiated, and otherwise a 10-byte header.
 */
struct virtio_net_hdr {
	uint8_t flags;	      /* VIRTIO_NET_HDR_F_* */
	uint8_t gso_type;     /* VIRTIO_NET_HDR_GSO_* */
	vio_le16 hdr_len;     /* GSO: length of the headers to copy into each segment */
	vio_le16 gso_size;    /* GSO: payload bytes per segment */
	vio_le16 csum_start;  /* NEEDS_CSUM: where checksumming starts */
	vio_le16 csum_offset; /* NEEDS_CSUM: where, from csum_start, to store it */
	vio_le16 num_buffers; /* RX with MRG_RXBUF (and every modern RX): buffers used */
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio 5.1.6");
#define VIRTIO_NET_HDR_SIZE	   12 /* modern, or legacy with VIRTIO_NET_F_MRG_RXBUF */
#define VIRTIO_NET_HDR_LEGACY_SIZE 10 /* legacy without VIRTIO_NET_F_MRG_RXBUF */
_Static_assert(offsetof(struct virtio_net_hdr, num_buffers) == VIRTIO_NET_HDR_LEGACY_SIZE,
	       "virtio 5.1.6.1: legacy header ends before num_buffers");

/*
 * 5.1.6.5 Control Virtqueue. A command is one chain: the device-readable class/command
 * header and command data, then one device-writable ack byte (VIRTIO_NET_OK / _ERR).
 */
struct virtio_net_ctrl_hdr {
	uint8_t class; /* VIRTIO_NET_CTRL_* */
	uint8_t cmd;
};
_Static_assert(sizeof(struct virtio_net_ctrl_hdr) == 2, "virtio 5.1.6.5");

typedef uint8_t virtio_net_ctrl_ack;
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1

/* 5.1.6.5.1 Packet Receive Filtering (VIRTIO_NET_F_CTRL_RX): data is one byte, 0 off / 1 on. */
#define VIRTIO_NET_CTRL_RX	    0
#define VIRTIO_NET_CTRL_RX_PROMISC  0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_RX_ALLUNI   2 /* VIRTIO_NET_F_CTRL_RX_EXTRA */
#define VIRTIO_NET_CTRL_RX_NOMULTI  3 /* VIRTIO_NET_F_CTRL_RX_EXTRA */
#define VIRTIO_NET_CTRL_RX_NOUNI    4 /* VIRTIO_NET_F_CTRL_RX_EXTRA */
#define VIRTIO_NET_CTRL_RX_NOBCAST  5 /* VIRTIO_NET_F_CTRL_RX_EXTRA */

/*
 * 5.1.6.5.2 Setting MAC Address Filtering. VIRTIO_NET_CTRL_MAC_TABLE_SET (with
 * VIRTIO_NET_F_CTRL_RX) takes two of these back to back: the unicast table, then the
 * multicast one. VIRTIO_NET_CTRL_MAC_ADDR_SET (VIRTIO_NET_F_CTRL_MAC_ADDR) takes 6 bytes.
 */
struct virtio_net_ctrl_mac {
	vio_le32 entries;
	uint8_t macs[][6];
};
_Static_assert(sizeof(struct virtio_net_ctrl_mac) == 4, "virtio 5.1.6.5.2");
#define VIRTIO_NET_CTRL_MAC	      1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET  1

/* 5.1.6.5.3 VLAN Filtering (VIRTIO_NET_F_CTRL_VLAN): data is a le16 VLAN id. */
#define VIRTIO_NET_CTRL_VLAN	 2
#define VIRTIO_NET_CTRL_VLAN_ADD 0
#define VIRTIO_NET_CTRL_VLAN_DEL 1

/* 5.1.6.5.4 Gratuitous Packet Sending (VIRTIO_NET_F_GUEST_ANNOUNCE). */
#define VIRTIO_NET_CTRL_ANNOUNCE     3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0

/*
 * 5.1.6.5.6 Automatic receive steering in multiqueue mode (VIRTIO_NET_F_MQ): the data of
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET is the number of pairs to use, 1 .. max_virtqueue_pairs.
 */
struct virtio_net_ctrl_mq {
	vio_le16 virtqueue_pairs;
};
_Static_assert(sizeof(struct virtio_net_ctrl_mq) == 2, "virtio 5.1.6.5.6");
#define VIRTIO_NET_CTRL_MQ		4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN 1
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX 0x8000

#endif
