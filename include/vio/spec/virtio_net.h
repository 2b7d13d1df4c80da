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
#define VIRTIO_NET_F_HASH_REPORT	 57 /* the device reports each received packet's hash */
#define VIRTIO_NET_F_RSS		 60 /* receive-side scaling: the driver steers by hash */
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
	uint8_t rss_max_key_size;     /* VIRTIO_NET_F_RSS or _HASH_REPORT: at least 40 */
	vio_le16 rss_max_indirection_table_length; /* VIRTIO_NET_F_RSS: at least 128 */
	vio_le32 supported_hash_types;		   /* _RSS or _HASH_REPORT: VIRTIO_NET_RSS_HASH_* */
};
_Static_assert(offsetof(struct virtio_net_config, status) == 6, "virtio 5.1.4");
_Static_assert(offsetof(struct virtio_net_config, mtu) == 10, "virtio 5.1.4");
_Static_assert(offsetof(struct virtio_net_config, speed) == 12, "virtio 5.1.4");
_Static_assert(offsetof(struct virtio_net_config, rss_max_key_size) == 17, "virtio 5.1.4");
_Static_assert(offsetof(struct virtio_net_config, rss_max_indirection_table_length) == 18,
	       "virtio 5.1.4");
_Static_assert(offsetof(struct virtio_net_config, supported_hash_types) == 20, "virtio 5.1.4");
_Static_assert(sizeof(struct virtio_net_config) == 24, "virtio 5.1.4");

/*
 * 5.1.6.4.3.1 Supported/enabled hash types: which packets the device hashes, and over which
 * fields (5.1.6.4.3.4 ff.): IPv4/IPv6 over the source and destination addresses, TCP/UDP
 * over those and the ports; the _EX types take the addresses from IPv6 extension headers.
 * The same bits are supported_hash_types and the hash_types of the configuration commands.
 */
#define VIRTIO_NET_RSS_HASH_TYPE_IPv4	(1u << 0)
#define VIRTIO_NET_RSS_HASH_TYPE_TCPv4	(1u << 1)
#define VIRTIO_NET_RSS_HASH_TYPE_UDPv4	(1u << 2)
#define VIRTIO_NET_RSS_HASH_TYPE_IPv6	(1u << 3)
#define VIRTIO_NET_RSS_HASH_TYPE_TCPv6	(1u << 4)
#define VIRTIO_NET_RSS_HASH_TYPE_UDPv6	(1u << 5)
#define VIRTIO_NET_RSS_HASH_TYPE_IP_EX	(1u << 6)
#define VIRTIO_NET_RSS_HASH_TYPE_TCP_EX (1u << 7)
#define VIRTIO_NET_RSS_HASH_TYPE_UDP_EX (1u << 8)
#define VIRTIO_NET_RSS_HASH_TYPE_ALL	0x1ffu

/*
 * 5.1.6.4 hash_report of a received packet (VIRTIO_NET_F_HASH_REPORT): which hash
 * hash_value is. Report r is the hash type of bit r - 1 above; NONE: no hash computed.
 */
#define VIRTIO_NET_HASH_REPORT_NONE	0
#define VIRTIO_NET_HASH_REPORT_IPv4	1
#define VIRTIO_NET_HASH_REPORT_TCPv4	2
#define VIRTIO_NET_HASH_REPORT_UDPv4	3
#define VIRTIO_NET_HASH_REPORT_IPv6	4
#define VIRTIO_NET_HASH_REPORT_TCPv6	5
#define VIRTIO_NET_HASH_REPORT_UDPv6	6
#define VIRTIO_NET_HASH_REPORT_IPv6_EX	7
#define VIRTIO_NET_HASH_REPORT_TCPv6_EX 8
#define VIRTIO_NET_HASH_REPORT_UDPv6_EX 9

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
 * 5.1.6: with VIRTIO_NET_F_HASH_REPORT (a modern device only) the header grows by the hash
 * fields, in both directions (the driver leaves them 0 on transmit); the spec folds them into
 * struct virtio_net_hdr, Linux names the longer one virtio_net_hdr_v1_hash.
 */
struct virtio_net_hdr_v1_hash {
	struct virtio_net_hdr hdr;
	vio_le32 hash_value;	   /* RX: the packet's hash, valid unless hash_report is NONE */
	vio_le16 hash_report;	   /* RX: VIRTIO_NET_HASH_REPORT_* */
	vio_le16 padding_reserved; /* 0 */
};
_Static_assert(sizeof(struct virtio_net_hdr_v1_hash) == 20, "virtio 5.1.6");
#define VIRTIO_NET_HDR_HASH_SIZE 20 /* with VIRTIO_NET_F_HASH_REPORT */

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

/*
 * 5.1.6.5.6.4 Receive-side scaling (VIRTIO_NET_F_RSS): VIRTIO_NET_CTRL_MQ_RSS_CONFIG. The
 * device hashes each packet of an enabled type with the Toeplitz function and `hash_key`,
 * and places it on receiveq indirection_table[hash & indirection_table_mask] + 1; a packet
 * of no enabled type goes to receiveq unclassified_queue + 1 (both count receive queues
 * from 0). The table has indirection_table_mask + 1 entries, a power of two. After the
 * table come le16 max_tx_vq (the queue pairs to use, as VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET's
 * data), u8 hash_key_length and the key's bytes: the command is laid out byte by byte.
 */
struct virtio_net_rss_config {
	vio_le32 hash_types; /* VIRTIO_NET_RSS_HASH_TYPE_* to hash */
	vio_le16 indirection_table_mask;
	vio_le16 unclassified_queue;
	vio_le16 indirection_table[];
	/* vio_le16 max_tx_vq; uint8_t hash_key_length; uint8_t hash_key_data[]; */
};
_Static_assert(sizeof(struct virtio_net_rss_config) == 8, "virtio 5.1.6.5.6.4");

/*
 * 5.1.6.5.6.4 Hash calculation for incoming packets (VIRTIO_NET_F_HASH_REPORT without
 * steering): VIRTIO_NET_CTRL_MQ_HASH_CONFIG. Which types to hash and report, and the key.
 */
struct virtio_net_hash_config {
	vio_le32 hash_types;
	vio_le16 reserved[4];
	uint8_t hash_key_length;
	uint8_t hash_key_data[];
};
_Static_assert(offsetof(struct virtio_net_hash_config, hash_key_data) == 13, "virtio 5.1.6.5.6.4");

#define VIRTIO_NET_CTRL_MQ_RSS_CONFIG  1
#define VIRTIO_NET_CTRL_MQ_HASH_CONFIG 2

#endif
