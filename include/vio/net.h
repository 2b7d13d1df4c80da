/*
 * virtio-net: the network device driver (virtio 1.2 section 5.1), raw Ethernet frames in and
 * out. Exercised in QEMU by `-netdev user,id=n0 -device virtio-net-pci,netdev=n0`.
 *
 * Context: in interrupt context the driver only calls opts.on_irq (RX frames arrived or TX
 * buffers came back) and opts.on_link (a config change moved the link); it touches no ring
 * there. Everything else, opts.on_tx_done included, runs inside the owner's calls:
 * vio_net_poll, vio_net_recv, vio_net_send*.
 *
 *	struct vio_net net;                         caller-owned, like the vio_dev
 *	vio_pci_probe(&dev, &pcidev);               a VIRTIO_ID_NET function
 *	vio_net_init(&net, &dev, &opts);            negotiate, queues, fill the RX ring, DRIVER_OK
 *	vio_net_poll(&net);                         once per pass: reap TX, notify, look for RX
 *	while (vio_net_recv(&net, &frame) == 0)     one frame, in place, in driver RX buffers...
 *		vio_net_frame_release(&net, &frame);  ...given back (the device hears per batch)
 *	vio_net_send(&net, frame, len, NULL);       copy a frame into a driver TX buffer and post it
 *	vio_net_send_sg(&net, sg, n, cookie, NULL); zero-copy: cookie comes back via on_tx_done
 *
 * The worked example is polling. Our kernel's main loop calls vio_net_poll and then
 * vio_net_recv once per pass and halts until the next interrupt; any interrupt, this device's
 * included, ends the halt, so it leaves opts.on_irq NULL. A kernel with threads sets on_irq to
 * wake its network thread instead (examples/riscv64-virt sets it to skip its idle wait).
 * Without interrupts at all the same loop works as it is, and vio_net_poll re-reads the link
 * status every VIO_NET_LINK_POLL_NS.
 *
 * Queue pairs. One by default; with VIRTIO_NET_F_MQ and opts.queue_pairs, up to
 * VIO_NET_MAX_PAIRS, for a kernel that spreads flows over CPUs (the calls below still take one
 * caller at a time per vio_net).
 *
 * Receive-side scaling and hash report. With opts.rss (VIRTIO_NET_F_RSS) the caller decides
 * which pair each received flow lands on: vio_net_set_rss gives the device a Toeplitz key and
 * an indirection table, and the device puts a frame of hash h on pair table[h % table_len].
 * With opts.hash_report (VIRTIO_NET_F_HASH_REPORT) every header grows to 20 bytes and each
 * frame carries the device's hash of it (frame.hash_value, frame.hash_report), so that a
 * stack need not hash flows again; without RSS, vio_net_set_rss then only says what to hash.
 * A frame whose report names a type never asked for is a bad frame (rx_errors).
 *
 * Receive. The device always holds the driver's RX buffers (opts.rx_buffers of them, DMA
 * memory, none larger than a page) but those the caller holds. vio_net_recv hands out one
 * frame as it lies in those buffers (one segment, or several: with VIRTIO_NET_F_MRG_RXBUF,
 * or for a frame larger than a page) and the caller gives each buffer back with
 * vio_net_rx_release: an lwIP netif can wrap each segment in a custom pbuf with no copy.
 * Buffers given back go back on the ring at once, but the device hears of them once per
 * batch: when vio_net_recv finds nothing more to return, and in vio_net_poll (one
 * notification, not one per buffer: under emulation each is a trap). A buffer the caller
 * holds is a buffer the device cannot fill, so holding is bounded: when the next frame would
 * take the caller past rx_hold_max buffers, vio_net_recv drops it (its buffers go straight
 * back to the device), counts it in stats.rx_drops and returns VIO_ENOSPC; a caller that
 * holds none always gets the frame. vio_net_recv_copy is the copying convenience for
 * callers that hold nothing.
 *
 * Transmit. Every frame goes out behind a virtio_net_hdr the driver owns. vio_net_send copies
 * the frame into one of the driver's TX buffers; vio_net_send_sg posts the caller's buffers
 * as they are (they must be DMA-reachable and stay untouched until on_tx_done returns their
 * cookie). At most opts.tx_buffers frames are in flight. A full ring, or no free TX slot, is
 * reported (VIO_ENOSPC, counted in stats.tx_full), never dropped silently: reap with
 * vio_net_poll and send again. With HOST_TSO4/6 a TCP frame of up to 64 KiB goes out through
 * vio_net_send_sg with VIO_NET_TX_GSO, and the device cuts it into MTU-sized segments.
 *
 * Receive segmentation offload. With GUEST_TSO4, GUEST_TSO6 (and GUEST_ECN) or GUEST_UFO the
 * device may coalesce what the sender cut into MTU-sized segments and hand over one frame of
 * up to 64 KiB (net->max_rx_frame), over many RX buffers: the driver takes these features
 * only with MRG_RXBUF (and GUEST_CSUM, which the spec requires), and then posts page-sized
 * RX buffers. frame.gso_type says a frame is one; opts.disable_features turns each off.
 *
 * The device is untrusted: a used length beyond what was posted or short of a header, a runt
 * (< 14 bytes) or oversized frame (> mtu + 18, or > max_rx_frame for a GSO frame), a
 * num_buffers of 0, above the RX buffers there are or above what the largest frame takes,
 * header flags or a GSO type that were not negotiated, a GSO frame without NEEDS_CSUM or with
 * a gso_size of 0, a hdr_len or NEEDS_CSUM checksum field beyond the frame: the frame is
 * counted in stats.rx_errors and dropped, never handed up, and its buffers go back to the
 * device; reception goes on. The first one is logged.
 *
 * Concurrency (include/vio/port.h): no locks. One caller at a time per vio_net: every call
 * here is thread-context and the kernel must not make two at once. The interrupt-context
 * paths only call on_irq and on_link, so the kernel need not mask this device's interrupts
 * around its calls; on_irq and on_link must themselves be IRQ-safe (set a flag, wake a
 * thread) and must not call into vio_net.
 */
#ifndef VIO_NET_H
#define VIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_net.h>
#include <vio/virtio.h>

/* Largest RX/TX ring used (the device's maximum, clamped); opts may ask for less. */
#ifndef VIO_NET_QUEUE_SIZE
#define VIO_NET_QUEUE_SIZE 256
#endif
/*
 * RX buffers posted, and TX frames in flight at once (vio_net_opts.rx_buffers, tx_buffers):
 * the driver's DMA memory is about rx_buffers * 2 KiB + tx_buffers * (mtu + 18), whatever
 * the ring size. Never more than the ring holds.
 */
#ifndef VIO_NET_RX_BUFFERS
#define VIO_NET_RX_BUFFERS 64
#endif
#ifndef VIO_NET_TX_BUFFERS
#define VIO_NET_TX_BUFFERS 32
#endif
/* Indirect tables on the transmitq (vio_net_opts.indirect_tables). */
#ifndef VIO_NET_INDIRECT_TABLES
#define VIO_NET_INDIRECT_TABLES 16
#endif
/* Largest MTU the driver uses, whatever the device offers (it may always use less, 5.1.4.2). */
#ifndef VIO_NET_MAX_MTU
#define VIO_NET_MAX_MTU 9000
#endif
/* The MTU without VIRTIO_NET_F_MTU. */
#define VIO_NET_DEFAULT_MTU 1500
/* Ethernet header, and what a frame may carry beyond mtu + header: one 802.1Q tag. */
#define VIO_NET_ETH_HLEN  14
#define VIO_NET_VLAN_HLEN 4
/* RX buffer size with VIRTIO_NET_F_MRG_RXBUF (header + frame fit in one at MTU 1500; at most
 * a page). */
#ifndef VIO_NET_RX_BUF_SIZE
#define VIO_NET_RX_BUF_SIZE 2048
#endif
/*
 * Largest frame with segmentation offload (GUEST_TSO4/6, GUEST_UFO on receive, HOST_TSO4/6 on
 * transmit): 64 KiB of IP packet behind an Ethernet header and one 802.1Q tag. 5.1.6.3.1 asks
 * for receive buffers of 65562 bytes (this and a 12-byte header, less the tag) in that case.
 */
#define VIO_NET_GSO_MAX_FRAME (65536u + VIO_NET_ETH_HLEN + VIO_NET_VLAN_HLEN)
/*
 * Most RX buffers one frame may span (MRG_RXBUF), so most segments a vio_net_frame has: a
 * 64 KiB frame in page-sized buffers. A smaller RX buffer size (vio_net_opts.rx_buf_size) is
 * raised until the largest frame fits in this many.
 */
#ifndef VIO_NET_RX_MAX_SEGS
#define VIO_NET_RX_MAX_SEGS 17
#endif
/* Most caller segments vio_net_send_sg takes (the driver adds one for the header). */
#ifndef VIO_NET_TX_MAX_SEGS
#define VIO_NET_TX_MAX_SEGS 32
#endif
/*
 * Most RX/TX queue pairs the driver drives (VIRTIO_NET_F_MQ, vio_net_opts.queue_pairs). A
 * device offering more than this many is driven without MQ: its control queue sits after all
 * of its pairs (5.1.2), and the queue array is sized by this.
 */
#ifndef VIO_NET_MAX_PAIRS
#define VIO_NET_MAX_PAIRS 8
#endif
/*
 * Longest RSS indirection table vio_net_set_rss takes, whatever the device offers (QEMU
 * offers 128); it bounds the command's size in the ctrl area.
 */
#ifndef VIO_NET_RSS_MAX_TABLE
#define VIO_NET_RSS_MAX_TABLE 256
#endif
/* Most entries (unicast + multicast) vio_net_set_mac_filter takes. */
#ifndef VIO_NET_MAC_TABLE_MAX
#define VIO_NET_MAC_TABLE_MAX 64
#endif
/*
 * How long a control-queue command may spin for the device's answer before VIO_ETIMEDOUT
 * (vio_net_opts.timeout_ns): the longest any vio_net call waits, perhaps with interrupts
 * masked, but init and fini (the core's reset wait, VIO_RESET_TIMEOUT_NS).
 */
#ifndef VIO_NET_CTRL_TIMEOUT_NS
#define VIO_NET_CTRL_TIMEOUT_NS 1000000ull
#endif
/* Polling mode: how often vio_net_poll re-reads the link and device status. */
#ifndef VIO_NET_LINK_POLL_NS
#define VIO_NET_LINK_POLL_NS 100000000ull
#endif

struct vio_net;

/* Options for vio_net_init. NULL, or a member left 0, means the default. */
struct vio_net_opts {
	/* Device features (VIRTIO_BIT(VIRTIO_NET_F_*)) not to negotiate even if offered. */
	uint64_t disable_features;
	/*
	 * RX/TX queue pairs to use (0, 1: one). More need VIRTIO_NET_F_MQ (and CTRL_VQ): at most
	 * VIO_NET_MAX_PAIRS and what the device offers (max_virtqueue_pairs); the device then
	 * steers each flow it receives to one pair's RX queue (5.1.6.5.6), vio_net_recv reads
	 * them all, and each send picks its TX queue by vio_net_tx_opts.flow.
	 */
	uint16_t queue_pairs;
	/*
	 * Negotiate VIRTIO_NET_F_RSS (receive-side scaling: vio_net_set_rss steers flows to
	 * pairs) and VIRTIO_NET_F_HASH_REPORT (each received frame carries its hash; the
	 * virtio header becomes 20 bytes) when the device offers them. Both need CTRL_VQ.
	 */
	bool rss;
	bool hash_report;
	/* Ring sizes at most this (0: VIO_NET_QUEUE_SIZE). */
	uint16_t rx_queue_size;
	uint16_t tx_queue_size;
	/* Indirect tables on the transmitq, when offered: that many frames in flight take one
	 * ring entry each (0: VIO_NET_INDIRECT_TABLES; 1 KiB of DMA memory each, 4 a page). */
	uint16_t indirect_tables;
	/*
	 * RX buffers to post: frames the device can hold for us (0: VIO_NET_RX_BUFFERS; never
	 * fewer than the largest frame takes), and TX frames in flight at once (0:
	 * VIO_NET_TX_BUFFERS). At most the ring size.
	 */
	uint16_t rx_buffers; /* per RX queue */
	uint16_t tx_buffers; /* shared by the TX queues */
	/*
	 * With VIRTIO_NET_F_MRG_RXBUF, bytes per RX buffer, header included (0:
	 * VIO_NET_RX_BUF_SIZE, or a page when a receive segmentation offload was negotiated).
	 * Rounded up to 64 bytes, at most a page, and raised until the largest frame fits in
	 * VIO_NET_RX_MAX_SEGS buffers. Smaller than a frame, frames span buffers (rx_merged).
	 */
	uint16_t rx_buf_size;
	/* Most RX buffers the caller may hold before frames are dropped (0: half of them). */
	uint16_t rx_hold_max;
	/* How long a control-queue command may take (0: VIO_NET_CTRL_TIMEOUT_NS). */
	uint64_t timeout_ns;
	/*
	 * Without VIRTIO_NET_F_MAC, or when the device's MAC is a multicast or all-zero one (a
	 * station cannot have it: logged), the driver makes up a locally administered unicast
	 * MAC from mac_seed when it is not 0, else from get_entropy() when set, else from
	 * port->now_ns.
	 */
	uint64_t mac_seed;
	uint64_t (*get_entropy)(struct vio_net *net, void *arg);
	/* Interrupt context: RX frames arrived or TX buffers completed. Call vio_net_poll soon. */
	void (*on_irq)(struct vio_net *net, void *arg);
	/* Interrupt context (inside vio_net_poll without interrupts): the link went up or down. */
	void (*on_link)(struct vio_net *net, bool up, void *arg);
	/*
	 * Inside vio_net_poll/send/fini: the device is done with a send_sg cookie. It may send
	 * again (that send does not reap: the reap under way goes on, within its budget).
	 */
	void (*on_tx_done)(struct vio_net *net, void *cookie, void *arg);
	/*
	 * Inside vio_net_poll: the device asks the driver to announce itself to the network
	 * (VIRTIO_NET_F_GUEST_ANNOUNCE, 5.1.6.5.4: after a migration, or QMP announce-self).
	 * Send a gratuitous ARP or the like; the driver acknowledges once it returns. Set, it makes
	 * vio_net_init negotiate GUEST_ANNOUNCE (else QEMU announces for us, with RARP frames).
	 */
	void (*on_announce)(struct vio_net *net, void *arg);
	void *arg; /* passed to every callback above */
};

/* Per-frame transmit options (NULL: none). */
struct vio_net_tx_opts {
	uint32_t flags;	      /* VIO_NET_TX_* */
	uint16_t csum_start;  /* VIO_NET_TX_CSUM: checksum from this frame offset to the end... */
	uint16_t csum_offset; /* ...stored (16 bits) at csum_start + csum_offset */
	/* VIO_NET_TX_GSO: the device cuts the frame into segments (5.1.6.2) */
	uint8_t gso_type;  /* VIRTIO_NET_HDR_GSO_TCPV4 or _TCPV6, | VIRTIO_NET_HDR_GSO_ECN */
	uint16_t gso_size; /* payload bytes per segment: the MSS */
	uint16_t hdr_len;  /* Ethernet + IP + TCP header bytes, copied in front of each segment */
	/*
	 * With several queue pairs: the frame's flow hash (of its addresses and ports, say). It
	 * goes out on TX queue flow % net->queue_pairs, so one flow's frames keep their order.
	 */
	uint32_t flow;
};
/* Let the device compute the checksum (needs VIRTIO_NET_F_CSUM: else VIO_ENOTSUP). */
#define VIO_NET_TX_CSUM (1u << 0)
/*
 * Let the device cut a large TCP frame into segments of hdr_len + gso_size bytes, each with
 * the headers copied and fixed up (HOST_TSO4 / HOST_TSO6 for the gso_type, HOST_ECN for its
 * ECN bit: else VIO_ENOTSUP). Needs VIO_NET_TX_CSUM too, on the TCP checksum, which the
 * spec requires (5.1.6.2.1): the checksum field inside the headers, the headers inside the
 * frame, a gso_size of at least 1, each segment at most net->max_frame and the frame at most
 * net->max_tx_frame: else VIO_EINVAL. Frames above max_frame go through vio_net_send_sg.
 */
#define VIO_NET_TX_GSO (1u << 1)

/*
 * What vio_net_recv says about a frame's checksum (only with VIRTIO_NET_F_GUEST_CSUM).
 * PARTIAL (NEEDS_CSUM) comes from a sender on the same host: the checksum field was never
 * filled in (csum_start/csum_offset say where it is), but the data is trustworthy.
 */
#define VIO_NET_RX_CSUM_VALID	(1u << 0) /* DATA_VALID: the device verified it */
#define VIO_NET_RX_CSUM_PARTIAL (1u << 1) /* NEEDS_CSUM: not computed, data intact */

/* One driver-owned RX buffer; opaque, private to src/drivers/virtio_net.c. */
struct vio_net_rxbuf;

/* One segment of a received frame: `len` bytes at `data`, inside RX buffer `buf`. */
struct vio_net_rx_seg {
	uint8_t *data;
	uint32_t len;
	struct vio_net_rxbuf *buf; /* give back with vio_net_rx_release */
};

/* One received frame, as vio_net_recv fills it. */
struct vio_net_frame {
	uint32_t len;	     /* whole frame, all segments, without the virtio header */
	uint16_t nsegs;	     /* 1, or up to VIO_NET_RX_MAX_SEGS with MRG_RXBUF */
	uint16_t flags;	     /* VIO_NET_RX_* */
	uint16_t csum_start; /* VIO_NET_RX_CSUM_PARTIAL only */
	uint16_t csum_offset;
	/*
	 * A coalesced frame (receive segmentation offload: GUEST_TSO4/6, GUEST_UFO): gso_type is
	 * VIRTIO_NET_HDR_GSO_TCPV4, _TCPV6 or _UDP (| _ECN), gso_size the segment size the sender
	 * used, and the frame is up to net->max_rx_frame bytes, always CSUM_PARTIAL. hdr_len is
	 * the device's hint of the headers' length. VIRTIO_NET_HDR_GSO_NONE (0) otherwise.
	 */
	uint8_t gso_type;
	/*
	 * With VIRTIO_NET_F_HASH_REPORT: which hash hash_value is (VIRTIO_NET_HASH_REPORT_*:
	 * one of the types vio_net_set_rss asked for, or NONE, and then hash_value is 0). NONE
	 * without the feature. (The fields are ordered to leave no padding: the struct lives on
	 * callers' stacks.)
	 */
	uint8_t hash_report;
	uint16_t gso_size;
	uint16_t hdr_len;
	uint16_t pair; /* the queue pair whose RX queue the frame came in on */
	uint32_t hash_value;
	struct vio_net_rx_seg seg[VIO_NET_RX_MAX_SEGS];
};

/*
 * A receive-side scaling / hash configuration for vio_net_set_rss (5.1.6.5.6.4). The key is
 * the Toeplitz key (5.1.6.4.3); frames of a type in hash_types are hashed over the fields
 * that type names (addresses, and ports for TCP/UDP), and with RSS a frame of hash h goes to
 * queue pair table[h & (table_len - 1)]; one of no type in hash_types to pair `unclassified`.
 */
struct vio_net_rss {
	uint32_t hash_types; /* VIRTIO_NET_RSS_HASH_TYPE_*, within net->rss_hash_types_supported;
				0 (with key_len 0) turns hashing off */
	const uint8_t *key;
	uint8_t key_len;       /* 1 .. net->rss_max_key_size when hash_types is not 0 */
	const uint16_t *table; /* RSS only: table_len queue pairs, each < net->queue_pairs */
	uint16_t table_len;    /* RSS: a power of two, 1 .. net->rss_max_table_len; hash report
				  alone (no RSS): 0 */
	uint16_t unclassified; /* RSS: the pair for frames not hashed, < net->queue_pairs */
};

/* Counters, free-running; read them from net->stats. */
struct vio_net_stats {
	uint64_t rx_frames; /* frames handed to the caller */
	uint64_t rx_bytes;
	uint64_t rx_drops;  /* good frames dropped: caller held too many buffers / copy too small */
	uint64_t rx_errors; /* bad frames from the device: runt, oversized, bad num_buffers,
			       used len beyond what was posted, bad header fields */
	uint64_t rx_merged; /* frames handed up that spanned more than one RX buffer */
	uint64_t rx_gso;    /* coalesced frames (gso_type not NONE) handed up */
	uint64_t tx_frames; /* frames posted to the device */
	uint64_t tx_bytes;
	uint64_t tx_errors; /* sends refused: bad length or segments, queue broken */
	uint64_t tx_full;   /* sends refused because the ring was full (VIO_ENOSPC) */
	uint64_t tx_gso;    /* frames posted for the device to segment (VIO_NET_TX_GSO) */
	uint64_t announces; /* announcements the device asked for and on_announce made */
	uint64_t rx_pair_frames[VIO_NET_MAX_PAIRS]; /* rx_frames by the pair they came in on */
	uint64_t tx_pair_frames[VIO_NET_MAX_PAIRS]; /* tx_frames by the pair they went out on */
};

/* Driver bookkeeping for one TX request; private to src/drivers/virtio_net.c. */
struct vio_net_txslot;

/*
 * The device. Caller-owned; vio_net_init fills it. Read-only for callers: dev, mac, mtu, hdr_len,
 * max_frame, max_rx_frame, max_tx_frame, link_up, queue_pairs, the rss_ fields, stats (and
 * dev->features for what was negotiated). The rest is private.
 */
struct vio_net {
	struct vio_dev *dev;
	uint8_t mac[6];
	uint16_t mtu;	       /* payload bytes per frame, without the Ethernet header */
	uint16_t hdr_len;      /* virtio_net_hdr bytes in front of every frame: 10, 12 or 20 */
	uint32_t max_frame;    /* largest frame either way without GSO: mtu + 14 + 4 (VLAN) */
	uint32_t max_rx_frame; /* largest frame vio_net_recv hands out: max_frame, or
				  VIO_NET_GSO_MAX_FRAME with a receive segmentation offload */
	uint32_t max_tx_frame; /* largest VIO_NET_TX_GSO frame vio_net_send_sg takes: max_frame,
				  or VIO_NET_GSO_MAX_FRAME with HOST_TSO4 or HOST_TSO6 */
	volatile bool link_up; /* true without VIRTIO_NET_F_STATUS */
	uint16_t queue_pairs;  /* RX/TX queue pairs in use: 1, more with VIRTIO_NET_F_MQ */
	/* With RSS or HASH_REPORT (5.1.4): what the device takes (0 without). */
	uint8_t rss_max_key_size;
	uint16_t rss_max_table_len; /* RSS only; at most VIO_NET_RSS_MAX_TABLE */
	uint32_t rss_hash_types_supported;
	/* What the last vio_net_set_rss set (0 before): types hashed, key and table lengths. */
	uint32_t rss_hash_types;
	uint8_t rss_key_len;
	uint16_t rss_table_len;
	uint16_t rss_unclassified;
	struct vio_net_stats stats;

	/* --- private to virtio_net.c ------------------------------------------------------ */
	struct vio_net_opts net_opts;
	/* receiveqN = 2(N-1), transmitqN = 2(N-1)+1, the controlq after the device's last pair */
	struct vio_vq net_vqs[2 * VIO_NET_MAX_PAIRS + 1];
	uint16_t net_nvqs;
	uint16_t net_ctrl_index; /* the controlq's index; 0 without one */
	uint16_t net_max_pairs;	 /* the device's max_virtqueue_pairs: 1 without MQ */
	uint16_t net_rx_next;	 /* the RX queue vio_net_recv looks at first */

	struct vio_net_rxbuf *net_rx_bufs; /* [net_nrx] */
	uint16_t net_nrx;		   /* RX buffers, each at most a page of DMA memory */
	uint16_t net_rx_chain;		   /* buffers posted together: 1, more for big frames
					      without MRG_RXBUF */
	uint32_t net_rx_buf_size;
	uint16_t net_rx_max_bufs; /* most buffers the largest frame takes (num_buffers bound) */
	uint16_t net_rx_held;	  /* buffers handed to the caller, not yet released */
	uint16_t net_rx_hold_max;

	struct vio_net_txslot *net_tx_slots; /* [net_ntx] */
	uint16_t *net_tx_free;		     /* stack of free slot numbers */
	uint16_t net_ntx;
	uint16_t net_tx_nfree;
	uint32_t net_tx_copy_size; /* bytes per piece of a slot's copy buffer, at most a page */
	struct vio_sg *net_tx_sg;  /* [VIO_NET_TX_MAX_SEGS + 1] vio_net_send_sg's list */

	void **net_pages; /* [net_npages] the DMA pages every buffer above is cut from */
	uint32_t net_npages;
	void *net_priv; /* rx_bufs, tx_slots, pages, tx_free: private memory (vio_priv_alloc) */
	uint32_t net_priv_bytes;

	uint8_t *net_ctrl;     /* CTRL_BYTES of DMA memory: command header, data, ack */
	bool net_ctrl_pending; /* a command is on the ctrl queue (one that timed out, outside
				  ctrl_cmd) */
	bool net_ctrl_set_mac; /* it is a MAC_ADDR_SET of net_ctrl_mac */
	uint8_t net_ctrl_mac[6];
	bool net_tx_reaping;	    /* inside tx_reap: an on_tx_done that sends does not reap */
	volatile bool net_announce; /* VIRTIO_NET_S_ANNOUNCE seen, on_announce not yet run */
	uint64_t net_link_checked_ns;
	uint32_t net_hash_types_asked; /* every hash type vio_net_set_rss asked for since init */
	bool net_warned_hold;
	bool net_warned_bad;
};

/*
 * Bring up a network device `dev` has been probed into: negotiate (MAC, STATUS, MTU,
 * MRG_RXBUF, CSUM, GUEST_CSUM, GUEST_TSO4, GUEST_TSO6, GUEST_ECN, GUEST_UFO, HOST_TSO4,
 * HOST_TSO6, HOST_ECN, CTRL_VQ, CTRL_RX, CTRL_MAC_ADDR, MQ when opts->queue_pairs asks for
 * more than one, RSS and HASH_REPORT when opts asks, and the ring features; less
 * opts->disable_features, less any whose prerequisite is missing: 5.1.3.1, and MRG_RXBUF for
 * the receive offloads), read the config, choose interrupts, set up the queue pairs and the
 * controlq, fill the RX rings, set DRIVER_OK and, with several pairs, tell the device how many
 * (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET; a device that refuses leaves us with one); dev->name
 * becomes "virtio-net". `opts` may be NULL. Returns 0; VIO_ENODEV (not a network device);
 * VIO_ERANGE (the device's mtu is below 68, or its max_virtqueue_pairs outside 1..0x8000);
 * VIO_ENOMEM; or the core's error. On failure the device is torn down and marked FAILED, and
 * nothing stays allocated. Not IRQ-safe.
 */
int vio_net_init(struct vio_net *net, struct vio_dev *dev, const struct vio_net_opts *opts);

/*
 * Reset the device and free everything: rings, buffers, vectors. Cookies of send_sg frames
 * still posted are given to on_tx_done first. Frames the caller still holds become invalid:
 * release or forget them before calling. Returns 0; or VIO_EDEAD when the device did not
 * confirm the reset: it may still read what was posted and write its buffers, so its DMA
 * memory and rings are kept (leaked) for good, the cookies of frames posted to it are never
 * returned (do not reuse those buffers), the device is dead (vio_dev_is_dead) and marked
 * FAILED, and the struct vio_net and its vio_dev must stay allocated (a wired interrupt line's
 * handler, which cannot be detached, still points at them). Safe after
 * a failed init and twice (0). Not IRQ-safe.
 */
int vio_net_fini(struct vio_net *net);

/*
 * Send one frame of `len` bytes (14 .. net->max_frame, Ethernet header included), copied into a
 * driver TX buffer: `frame` may be reused at once. Reaps TX completions first. Returns 0;
 * VIO_ENOSPC (ring full, counted in tx_full: try after vio_net_poll); VIO_EINVAL (bad length, or
 * bad checksum or GSO fields in `opts`); VIO_ENOTSUP (checksum offload asked for without
 * VIRTIO_NET_F_CSUM, a GSO type without its HOST_ feature); VIO_EIO (the queue is broken);
 * VIO_ENEEDRESET (it broke because the device set DEVICE_NEEDS_RESET: fini and init it again). Not
 * IRQ-safe.
 */
int vio_net_send(struct vio_net *net, const void *frame, uint32_t len,
		 const struct vio_net_tx_opts *opts);

/*
 * Send one frame made of `n` (1..VIO_NET_TX_MAX_SEGS) caller buffers, without copying. The buffers
 * must be device-reachable (port->virt_to_phys) and unchanged until opts.on_tx_done(net, cookie,
 * arg) reports the device done with them, exactly once. Same limits and errors as vio_net_send, but
 * a VIO_NET_TX_GSO frame may be up to net->max_tx_frame bytes (64 KiB of TCP over pages: one
 * segment each); plus VIO_EINVAL for a NULL cookie or no on_tx_done callback. On error nothing was
 * posted and on_tx_done will not be called. Not IRQ-safe.
 */
int vio_net_send_sg(struct vio_net *net, const struct vio_sg *sg, unsigned n, void *cookie,
		    const struct vio_net_tx_opts *opts);

/*
 * Take the next received frame, in place (see the top of this file). The caller owns
 * frame->seg[i].buf until it releases them. Returns 0; VIO_EAGAIN (nothing yet); VIO_ENOSPC
 * (the caller holds rx_hold_max buffers: one frame was dropped, release some); VIO_EIO (the
 * RX queue is broken); VIO_ENEEDRESET (as vio_net_send). Bad frames from the device are counted and
 * skipped, never returned. Bounded work: one call looks at the ring at most once per RX buffer
 * posted; a device that keeps it busy past that gets VIO_EAGAIN, and vio_net_poll says the next
 * call is due. Every return but 0 ends a batch: the buffers given back since the last notification
 * are published to the device, which is notified once. Not IRQ-safe.
 */
int vio_net_recv(struct vio_net *net, struct vio_net_frame *frame);

/*
 * Give one RX buffer back to the ring. The device is not notified here: the next vio_net_recv
 * that returns no frame, or the next vio_net_poll, tells it of the whole batch at once. A
 * buffer given back twice is ignored. Not IRQ-safe.
 */
void vio_net_rx_release(struct vio_net *net, struct vio_net_rxbuf *buf);
/* Give back every buffer of a frame vio_net_recv returned, as vio_net_rx_release. */
void vio_net_frame_release(struct vio_net *net, const struct vio_net_frame *frame);

/*
 * Copy the next frame into buf (size bytes) and give its buffers back at once. Returns the
 * frame length; *flags (may be NULL) gets VIO_NET_RX_*. VIO_EAGAIN, VIO_ENOSPC, VIO_EIO,
 * VIO_ENEEDRESET as vio_net_recv; VIO_EINVAL when the frame does not fit (it is dropped and counted
 * in rx_drops: pass at least net->max_rx_frame bytes). Not IRQ-safe.
 */
int vio_net_recv_copy(struct vio_net *net, void *buf, uint32_t size, uint16_t *flags);

/*
 * Once per pass of the owner's loop: reap TX completions (calling on_tx_done for send_sg
 * cookies) and re-enable their interrupt, tell the device of RX buffers given back since the
 * last notification, and in polling mode re-read the link status and the device status
 * every VIO_NET_LINK_POLL_NS. Returns 1 when work is waiting (RX frames for vio_net_recv,
 * or TX completions beyond this call's budget of one per TX buffer): call again soon; 0
 * when none; VIO_EIO when a queue is broken; VIO_ENEEDRESET when the device set
 * DEVICE_NEEDS_RESET (fini and init it again). Not IRQ-safe.
 */
int vio_net_poll(struct vio_net *net);

/*
 * Control queue commands (5.1.6.5). Each is synchronous: it posts the command and polls
 * for the device's answer for up to opts.timeout_ns (1 ms by default). A command that timed
 * out stays posted: the device may still carry it out, and its late answer is collected by
 * vio_net_poll or the next command (a late OK to vio_net_set_mac updates net->mac then).
 * They return 0; VIO_ENOTSUP
 * (the feature was not negotiated); VIO_EIO (the device answered VIRTIO_NET_ERR, or the
 * queue is broken); VIO_ETIMEDOUT (no answer); VIO_ENEEDRESET (no answer, or a broken
 * queue, because the device set DEVICE_NEEDS_RESET); VIO_EAGAIN (an earlier command that
 * timed out is still on the queue); VIO_EINVAL (bad arguments). Not IRQ-safe.
 */
/* Receive every frame, whatever its destination (VIRTIO_NET_F_CTRL_RX). */
int vio_net_set_promisc(struct vio_net *net, bool on);
/* Receive every multicast frame (VIRTIO_NET_F_CTRL_RX). */
int vio_net_set_allmulti(struct vio_net *net, bool on);
/*
 * Replace the device's MAC filter (VIRTIO_NET_F_CTRL_RX): receive frames for these unicast
 * and multicast addresses besides our own; n_uc + n_mc <= VIO_NET_MAC_TABLE_MAX.
 */
int vio_net_set_mac_filter(struct vio_net *net, const uint8_t (*uc)[6], uint32_t n_uc,
			   const uint8_t (*mc)[6], uint32_t n_mc);
/* Change the device's own address (VIRTIO_NET_F_CTRL_MAC_ADDR); net->mac follows. A
 * multicast or all-zero address is VIO_EINVAL. */
int vio_net_set_mac(struct vio_net *net, const uint8_t mac[6]);
/*
 * Configure hashing (see struct vio_net_rss): with VIRTIO_NET_F_RSS, steering and hashing
 * (VIRTIO_NET_CTRL_MQ_RSS_CONFIG, keeping net->queue_pairs); with HASH_REPORT alone, only
 * the hashing (VIRTIO_NET_CTRL_MQ_HASH_CONFIG). The net->rss_ fields follow. Besides the
 * errors above: VIO_ENOTSUP (neither feature, a table without RSS, a hash type the device
 * does not support); VIO_EINVAL (no key, or one longer than rss_max_key_size, while a type
 * is on; with RSS a table length that is 0, not a power of two or beyond rss_max_table_len,
 * an entry or the unclassified pair not below net->queue_pairs).
 */
int vio_net_set_rss(struct vio_net *net, const struct vio_net_rss *rss);

/*
 * "virtio-net mac=52:54:00:12:34:56 mtu=1500 link=up hdr=12 features=0x<hex>" for the
 * shell's `net info`. Returns the length wanted (as snprintf). IRQ-safe.
 */
int vio_net_describe(const struct vio_net *net, char *buf, size_t size);

#endif
