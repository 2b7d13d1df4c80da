/*
 * virtio-net driver: raw Ethernet frames over a virtio network device (virtio 1.2 section
 * 5.1). The API and its contracts are in include/vio/net.h.
 *
 * QEMU: -netdev user,id=n0 -device virtio-net-pci,netdev=n0
 *       (add disable-modern=on for the legacy interface and its 10-byte header,
 *        mrg_rxbuf=off, csum=off, ctrl_vq=off ... to leave a feature out)
 *
 * Three queues (5.1.2): receiveq1 (0) holds empty buffers the device fills with incoming
 * frames, transmitq1 (1) the frames we send, and the controlq (2, when VIRTIO_NET_F_CTRL_VQ)
 * carries commands such as "be promiscuous". With VIRTIO_NET_F_MQ there are up to
 * VIO_NET_MAX_PAIRS receive/transmit pairs (2p, 2p+1) and the controlq after the device's last
 * pair; the device steers each received flow to one pair, we pick the TX queue by the
 * caller's flow hash, and the RX queues are read in turn. Every frame in either direction is
 * preceded by a struct virtio_net_hdr (5.1.6): on transmit it asks for checksum and
 * segmentation offload, on receive it says whether the checksum was verified, whether the
 * frame was coalesced and, with MRG_RXBUF, how many buffers the frame took.
 *
 * Receive-side scaling (VIRTIO_NET_F_RSS) and hash report (VIRTIO_NET_F_HASH_REPORT), when
 * the caller asks. The device hashes each received packet with the Toeplitz function over
 * its addresses and ports (5.1.6.4.3) and, with RSS, puts it on the pair an indirection
 * table names for that hash; vio_net_set_rss sends the key, the hash types and the table
 * over the controlq (5.1.6.5.6.4). With HASH_REPORT the header grows to 20 bytes both ways
 * (hdr_len follows it everywhere: RX parsing, TX slots, buffer sizes), and each frame brings
 * its hash up, checked like every other header field. QEMU: add rss=on,hash=on to
 * virtio-net-pci (with mq=on and a multiqueue tap for several pairs).
 *
 * Memory, allocated once at init. What the device reads or writes is DMA memory, taken from
 * the port one page at a time and cut into buffers that never cross a page: the driver needs
 * no more than one page of physical contiguity, so a kernel whose allocator hands out single
 * 4 KiB pages can run it.
 *   RX buffers  net_nrx, device-writable. A frame lands in one posted chain: a single buffer,
 *               or, for frames larger than a page without MRG_RXBUF (where each chain must
 *               hold a whole frame, 5.1.6.3.1), net_rx_chain page-sized buffers;
 *   TX slots    net_ntx: a header, and the buffer vio_net_send copies a frame into (one
 *               piece, or page-sized pieces for frames larger than a page);
 *   ctrl        the header, data and ack byte of the one control command in flight.
 * The counts are options (vio_net_opts.rx_buffers, tx_buffers) with small defaults, and never
 * the ring size: a legacy device fixes its own ring size, up to 32768 entries. The defaults
 * with MRG_RXBUF and an MTU of 1500 take 48 pages (192 KiB): 64 RX buffers of 2 KiB, 32 TX
 * slots with a 1.5 KiB copy buffer each (and one page more for the ctrl area); the rings
 * and their indirect tables are the core's.
 * What the driver trusts (each buffer's address, the send_sg cookies, the free TX slots) is
 * in private memory (vio_priv_alloc), which the device cannot reach: it could rewrite DMA
 * memory at any time (docs/design.md 4), so nothing is ever read back from there but the
 * values the device is meant to write, each checked before use.
 *
 * Follow one frame in:
 *	vio_net_init     rx_post puts every RX buffer on receiveq1 (5.1.5 step 3)
 *	vio_net_poll     reaps TX, tells the device of re-posted buffers, says whether RX waits
 *	vio_net_recv     rx_gather takes the frame's buffers off the ring (rx_take_buffer),
 *	                 checks num_buffers, lengths and the header (rx_hdr_ok, and
 *	                 rx_hash_ok for a hash report), and rx_csum_flags passes the
 *	                 checksum state on
 *	vio_net_rx_release  rx_give_back posts the buffer again; the next empty vio_net_recv or
 *	                 vio_net_poll publishes the whole batch with one rx_flush
 */
#include <vio/alloc.h>
#include <vio/net.h>

#include "driver.h"

#define PAGE_SIZE	4096u
#define BUF_ALIGN	64u   /* buffers start on a cache line */
#define TX_HDR_ROOM	32u   /* DMA bytes for each TX slot's virtio_net_hdr (12 or 20) */
#define CTRL_QUEUE_SIZE 8     /* one command at a time: header, at most two tables, ack */
#define CTRL_BYTES	1024u /* the ctrl area: header, then data, the ack byte last */
#define CTRL_DATA_OFF	8     /* command data starts here in the ctrl area */
#define CTRL_ACK_OFF	(CTRL_BYTES - 1)
#define MIN_MTU		68 /* 5.1.4.1: the device MUST supply at least 68 */

/* The largest frame the driver ever takes, behind the largest header. */
#define MAX_FRAME_ROOM                                                                             \
	((uint32_t)VIRTIO_NET_HDR_HASH_SIZE + VIO_NET_MAX_MTU + VIO_NET_ETH_HLEN +                 \
	 VIO_NET_VLAN_HLEN)
/* Page-sized pieces it takes: an RX chain without MRG_RXBUF, a TX copy buffer. */
#define MAX_PIECES ((MAX_FRAME_ROOM + PAGE_SIZE - 1) / PAGE_SIZE)

_Static_assert(VIO_NET_RX_BUF_SIZE >= BUF_ALIGN && VIO_NET_RX_BUF_SIZE <= PAGE_SIZE,
	       "an RX buffer with MRG_RXBUF holds a header and fits in a page");
_Static_assert((uint32_t)(VIO_NET_RX_MAX_SEGS *VIO_NET_RX_BUF_SIZE) >= MAX_FRAME_ROOM,
	       "a frame of VIO_NET_MAX_MTU must fit in VIO_NET_RX_MAX_SEGS merged buffers");
_Static_assert((uint32_t)VIO_NET_RX_MAX_SEGS *PAGE_SIZE >=
		   VIRTIO_NET_HDR_HASH_SIZE + VIO_NET_GSO_MAX_FRAME,
	       "a 64 KiB frame must fit in VIO_NET_RX_MAX_SEGS page-sized merged buffers");
_Static_assert(MAX_PIECES <= VIO_NET_RX_MAX_SEGS,
	       "a chain of page-sized RX buffers is at most one frame's segments");
_Static_assert(CTRL_DATA_OFF + 2 * (4 + 6 * VIO_NET_MAC_TABLE_MAX) + 4 <= CTRL_ACK_OFF,
	       "the MAC table command must fit in the ctrl area");
_Static_assert(TX_HDR_ROOM >= VIRTIO_NET_HDR_HASH_SIZE, "a TX slot holds the longest header");
/* The RSS command: 8 bytes, the table, max_tx_vq, the key's length and the key. */
#define RSS_CMD_MAX (8u + 2u * VIO_NET_RSS_MAX_TABLE + 2u + 1u + 255u)
_Static_assert(CTRL_DATA_OFF + RSS_CMD_MAX <= CTRL_ACK_OFF,
	       "the RSS command must fit in the ctrl area");

/* One RX buffer: at most a page, posted alone or in a chain with the buffers after it. */
struct vio_net_rxbuf {
	uint8_t *mem;	/* rx_buf_size bytes of DMA memory: (header,) frame */
	uint16_t chain; /* index of the first buffer of its chain: its own without chains */
	uint16_t pair;	/* the queue pair whose RX queue it is posted to */
	bool held;	/* lent to the caller by vio_net_recv, not yet given back */
	bool posted;	/* first buffer of a chain: the chain is on the ring */
};

struct vio_net_txslot {
	uint8_t *hdr;		   /* TX_HDR_ROOM bytes of DMA memory: the virtio_net_hdr */
	uint8_t *copy[MAX_PIECES]; /* vio_net_send's copy of a frame, tx_copy_size bytes each */
	void *cookie;		   /* send_sg: the caller's cookie; NULL for a copied frame */
	uint16_t index;
	uint16_t pair; /* the queue pair whose TX queue it went out on */
};

/* What we ask for; the core adds VERSION_1 and never takes what it cannot do. */
static const uint64_t wanted_features =
    VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
    VIRTIO_BIT(VIRTIO_NET_F_MTU) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
    VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
    VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
    VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX) |
    VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
    VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) |
    VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
    VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN);

/* The receive segmentation offloads: the device may hand us frames of up to 64 KiB. */
static const uint64_t guest_gso_features = VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
					   VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |
					   VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO);

/*
 * `f` less every feature whose prerequisite is missing from it. 5.1.3.1: the driver MUST
 * NOT negotiate GUEST_TSO4/6 or GUEST_UFO without GUEST_CSUM, GUEST_ECN without GUEST_TSO4 or
 * GUEST_TSO6, HOST_TSO4/6 without CSUM, HOST_ECN without HOST_TSO4 or HOST_TSO6, CTRL_RX,
 * CTRL_MAC_ADDR, GUEST_ANNOUNCE, MQ, RSS or HASH_REPORT without CTRL_VQ (RSS and
 * HASH_REPORT are configured over it). And our own rule: 64 KiB frames
 * without MRG_RXBUF would need chains of 17 pages per posted buffer (5.1.6.3.1), so the
 * receive offloads come only with MRG_RXBUF.
 */
static uint64_t with_prerequisites(uint64_t f)
{
	if (!(f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)) || !(f & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)))
		f &= ~guest_gso_features;
	if (!(f & (VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6))))
		f &= ~VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN);
	if (!(f & VIRTIO_BIT(VIRTIO_NET_F_CSUM)))
		f &= ~(VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6));
	if (!(f & (VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6))))
		f &= ~VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN);
	if (!(f & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)))
		f &= ~(VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR) |
		       VIRTIO_BIT(VIRTIO_NET_F_MQ) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) |
		       VIRTIO_BIT(VIRTIO_NET_F_RSS) | VIRTIO_BIT(VIRTIO_NET_F_HASH_REPORT));
	return f;
}

/*
 * With VIRTIO_NET_F_MQ, the device's max_virtqueue_pairs (5.1.4: 1..0x8000), else 1; 0 when
 * the read fails or the value is out of range.
 */
static uint16_t read_max_pairs(struct vio_net *net)
{
	uint16_t max;

	if (!vio_dev_has_feature(net->dev, VIRTIO_NET_F_MQ))
		return 1;
	if (vio_dev_config_read(net->dev, offsetof(struct virtio_net_config, max_virtqueue_pairs),
				&max, sizeof(max)) ||
	    max < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || max > VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX)
		return 0;
	return max;
}

/*
 * Steps 4-6 of 3.1.1 (in the core): what we want, less what the caller turned off, MQ only
 * when more than one pair is asked for, GUEST_ANNOUNCE only for a caller that announces, RSS
 * and HASH_REPORT only for a caller that asks (the latter lengthens every header). What the
 * device offers decides which prerequisites are there, so when the first round took a feature
 * without its prerequisite, negotiate again without it (the core starts over from a reset); and
 * again without MQ when the device has more pairs than VIO_NET_MAX_PAIRS (its controlq would lie
 * beyond our queue array).
 */
static int negotiate(struct vio_net *net)
{
	struct vio_dev *dev = net->dev;
	uint64_t want = wanted_features & ~net->net_opts.disable_features;
	int err;

	if (net->net_opts.queue_pairs > 1)
		want |= VIRTIO_BIT(VIRTIO_NET_F_MQ);
	if (net->net_opts.on_announce)
		want |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE);
	if (net->net_opts.rss)
		want |= VIRTIO_BIT(VIRTIO_NET_F_RSS) & ~net->net_opts.disable_features;
	if (net->net_opts.hash_report)
		want |= VIRTIO_BIT(VIRTIO_NET_F_HASH_REPORT) & ~net->net_opts.disable_features;
	err = vio_dev_begin(dev, with_prerequisites(want));
	if (!err && with_prerequisites(dev->features) != dev->features)
		err = vio_dev_begin(dev, with_prerequisites(dev->features));
	if (err)
		return err;
	net->net_max_pairs = read_max_pairs(net);
	if (!net->net_max_pairs) {
		vio_logf(dev->port, VIO_LOG_ERR, "virtio-net: bad max_virtqueue_pairs");
		return VIO_ERANGE;
	}
	if (net->net_max_pairs > VIO_NET_MAX_PAIRS) {
		vio_logf(dev->port, VIO_LOG_WARN,
			 "virtio-net: %u queue pairs offered, more than %u: using one",
			 net->net_max_pairs, VIO_NET_MAX_PAIRS);
		err = vio_dev_begin(dev, dev->features & ~VIRTIO_BIT(VIRTIO_NET_F_MQ));
		net->net_max_pairs = 1;
	}
	uint16_t asked = net->net_opts.queue_pairs ? net->net_opts.queue_pairs : 1;
	net->queue_pairs = asked < net->net_max_pairs ? asked : net->net_max_pairs;
	return err;
}

static const char net_name[] = "virtio-net";

static bool has(const struct vio_net *net, unsigned bit)
{
	return vio_dev_has_feature(net->dev, bit);
}

static const struct vio_port *port_of(const struct vio_net *net)
{
	return net->dev->port;
}

/* 5.1.2: receiveqN is queue 2(N-1), transmitqN 2(N-1)+1 (pairs counted from 0 here). */
static struct vio_vq *rxq(struct vio_net *net, uint16_t pair)
{
	return &net->net_vqs[2 * pair];
}

static struct vio_vq *txq(struct vio_net *net, uint16_t pair)
{
	return &net->net_vqs[2 * pair + 1];
}

static struct vio_vq *ctrlq(struct vio_net *net)
{
	return &net->net_vqs[net->net_ctrl_index];
}

static uint32_t round_up(uint32_t n, uint32_t align)
{
	return (n + align - 1) / align * align;
}

static void bytes_zero(void *p, uint32_t n)
{
	uint8_t *b = p;
	while (n--)
		*b++ = 0;
}

static void bytes_copy(void *dst, const void *src, uint32_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (n--)
		*d++ = *s++;
}

/* --- configuration ------------------------------------------------------------------------ */

/* splitmix64: spreads a seed of any quality over all 64 bits. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * No MAC from the device: make one up. Bit 0 of the first octet set would make it a
 * multicast address; bit 1 set marks it locally administered, so it cannot collide with a
 * vendor-assigned one.
 */
static void make_random_mac(struct vio_net *net)
{
	const struct vio_port *port = port_of(net);
	uint64_t seed = net->net_opts.mac_seed;

	if (!seed && net->net_opts.get_entropy)
		seed = net->net_opts.get_entropy(net, net->net_opts.arg);
	if (!seed)
		seed = port->now_ns(port->ctx);
	uint64_t r = mix64(seed);
	for (int i = 0; i < 6; i++)
		net->mac[i] = (uint8_t)(r >> (8 * i));
	net->mac[0] = (uint8_t)((net->mac[0] & ~1u) | 2u);
}

/* A MAC a station may have as its own: not a group (multicast, broadcast) address, not zero. */
static bool mac_usable(const uint8_t mac[6])
{
	uint8_t any = 0;

	for (int i = 0; i < 6; i++)
		any |= mac[i];
	return any && !(mac[0] & 1);
}

/*
 * config.status (5.1.4): LINK_UP, and ANNOUNCE; link up without VIRTIO_NET_F_STATUS, as it
 * was when the read fails.
 */
static uint16_t read_status(struct vio_net *net)
{
	uint16_t status;

	if (!has(net, VIRTIO_NET_F_STATUS))
		return VIRTIO_NET_S_LINK_UP;
	if (vio_dev_config_read(net->dev, offsetof(struct virtio_net_config, status), &status,
				sizeof(status)))
		return net->link_up ? VIRTIO_NET_S_LINK_UP : 0;
	return status;
}

static bool read_link(struct vio_net *net)
{
	return read_status(net) & VIRTIO_NET_S_LINK_UP;
}

/*
 * Re-read the status; tell the caller when the link changed. A request to announce ourselves
 * (VIRTIO_NET_F_GUEST_ANNOUNCE) is noted for vio_net_poll, which runs on_announce.
 */
static void refresh_link(struct vio_net *net)
{
	uint16_t status = read_status(net);
	bool up = status & VIRTIO_NET_S_LINK_UP;

	if ((status & VIRTIO_NET_S_ANNOUNCE) && has(net, VIRTIO_NET_F_GUEST_ANNOUNCE))
		net->net_announce = true;

	if (up == net->link_up)
		return;
	net->link_up = up;
	if (net->net_opts.on_link)
		net->net_opts.on_link(net, up, net->net_opts.arg);
}

/* The core calls this on a configuration-change interrupt (IRQ context). */
static void config_changed(struct vio_dev *dev, void *arg)
{
	(void)dev;
	refresh_link(arg);
}

/*
 * 5.1.4: with RSS or HASH_REPORT, the longest key and the hash types the device takes; with
 * RSS, the longest indirection table (clamped to VIO_NET_RSS_MAX_TABLE, the room the ctrl
 * area has for it). vio_net_set_rss checks the caller's configuration against these.
 */
static int read_rss_config(struct vio_net *net)
{
	struct vio_dev *dev = net->dev;
	uint16_t table = 0;
	int err;

	if (!has(net, VIRTIO_NET_F_RSS) && !has(net, VIRTIO_NET_F_HASH_REPORT))
		return 0;
	err = vio_dev_config_read(dev, offsetof(struct virtio_net_config, rss_max_key_size),
				  &net->rss_max_key_size, sizeof(net->rss_max_key_size));
	if (!err)
		err = vio_dev_config_read(
		    dev, offsetof(struct virtio_net_config, supported_hash_types),
		    &net->rss_hash_types_supported, sizeof(net->rss_hash_types_supported));
	if (!err && has(net, VIRTIO_NET_F_RSS))
		err = vio_dev_config_read(
		    dev, offsetof(struct virtio_net_config, rss_max_indirection_table_length),
		    &table, sizeof(table));
	if (err)
		return err;
	net->rss_hash_types_supported &= VIRTIO_NET_RSS_HASH_TYPE_ALL;
	net->rss_max_table_len = table < VIO_NET_RSS_MAX_TABLE ? table : VIO_NET_RSS_MAX_TABLE;
	return 0;
}

static int read_config(struct vio_net *net)
{
	struct vio_dev *dev = net->dev;
	int err;

	if (has(net, VIRTIO_NET_F_MAC)) {
		uint8_t *m = net->mac;
		err = vio_dev_config_read(dev, offsetof(struct virtio_net_config, mac), m, 6);
		if (err)
			return err;
		if (!mac_usable(m)) {
			vio_logf(dev->port, VIO_LOG_WARN,
				 "virtio-net: device MAC %02x:%02x:%02x:%02x:%02x:%02x is not a "
				 "station's: using a random local one",
				 m[0], m[1], m[2], m[3], m[4], m[5]);
			make_random_mac(net);
		}
	} else {
		make_random_mac(net);
	}

	net->mtu = VIO_NET_DEFAULT_MTU;
	if (has(net, VIRTIO_NET_F_MTU)) {
		uint16_t mtu;
		err = vio_dev_config_read(dev, offsetof(struct virtio_net_config, mtu), &mtu,
					  sizeof(mtu));
		if (err)
			return err;
		if (mtu < MIN_MTU) {
			vio_logf(dev->port, VIO_LOG_ERR, "virtio-net: device mtu %u below %u", mtu,
				 MIN_MTU);
			return VIO_ERANGE;
		}
		/* 5.1.4.2: the mtu is a maximum; a driver may use less. */
		net->mtu = mtu < VIO_NET_MAX_MTU ? mtu : VIO_NET_MAX_MTU;
	}
	net->max_frame = (uint32_t)net->mtu + VIO_NET_ETH_HLEN + VIO_NET_VLAN_HLEN;
	net->max_rx_frame =
	    (dev->features & guest_gso_features) ? VIO_NET_GSO_MAX_FRAME : net->max_frame;
	net->max_tx_frame = has(net, VIRTIO_NET_F_HOST_TSO4) || has(net, VIRTIO_NET_F_HOST_TSO6)
				? VIO_NET_GSO_MAX_FRAME
				: net->max_frame;

	/*
	 * 5.1.6.1: legacy devices drop num_buffers from the header unless MRG_RXBUF; with
	 * HASH_REPORT (modern only: bit 57) it carries the hash fields too.
	 */
	net->hdr_len = (dev->modern || has(net, VIRTIO_NET_F_MRG_RXBUF))
			   ? VIRTIO_NET_HDR_SIZE
			   : VIRTIO_NET_HDR_LEGACY_SIZE;
	if (has(net, VIRTIO_NET_F_HASH_REPORT))
		net->hdr_len = VIRTIO_NET_HDR_HASH_SIZE;

	net->link_up = read_link(net);
	return read_rss_config(net);
}

/* --- memory --------------------------------------------------------------------------------- */

static void *dma_alloc(struct vio_net *net, uint32_t bytes)
{
	const struct vio_port *port = port_of(net);
	uint64_t phys;

	return port->dma_alloc(port->ctx, bytes, &phys);
}

static void dma_free(struct vio_net *net, void *p, uint32_t bytes)
{
	const struct vio_port *port = port_of(net);

	if (p)
		port->dma_free(port->ctx, p, bytes);
}

static void free_buffers(struct vio_net *net)
{
	for (uint32_t i = 0; i < net->net_npages; i++)
		dma_free(net, net->net_pages[i], PAGE_SIZE);
	vio_priv_free(port_of(net), net->net_priv, net->net_priv_bytes);
	net->net_npages = 0;
	net->net_pages = NULL;
	net->net_priv = NULL;
	net->net_ctrl = NULL;
}

/* Buffers are cut out of DMA pages taken one at a time: none needs more than its page. */
struct carver {
	uint8_t *next;
	uint32_t left;
};

static uint8_t *carve(struct vio_net *net, struct carver *c, uint32_t bytes)
{
	VIO_ASSERT(bytes <= PAGE_SIZE);
	if (bytes > c->left) {
		uint8_t *page = dma_alloc(net, PAGE_SIZE);
		if (!page)
			return NULL;
		net->net_pages[net->net_npages++] = page;
		c->next = page;
		c->left = PAGE_SIZE;
	}
	uint8_t *p = c->next;
	c->next += bytes;
	c->left -= bytes;
	return p;
}

/*
 * With MRG_RXBUF: the caller's size (0: VIO_NET_RX_BUF_SIZE, a page with receive offloads,
 * where a 64 KiB frame would take 33 buffers of 2 KiB), on a cache line, at most a page, and
 * at least what lets the largest frame fit in VIO_NET_RX_MAX_SEGS buffers.
 */
static uint32_t rx_merged_size(const struct vio_net *net, uint32_t frame)
{
	uint32_t size = net->net_opts.rx_buf_size;
	uint32_t least =
	    round_up((frame + VIO_NET_RX_MAX_SEGS - 1) / VIO_NET_RX_MAX_SEGS, BUF_ALIGN);

	if (!size)
		size = net->max_rx_frame > net->max_frame ? PAGE_SIZE : VIO_NET_RX_BUF_SIZE;
	size = round_up(size, BUF_ALIGN);
	if (size < least)
		size = least;
	return size < PAGE_SIZE ? size : PAGE_SIZE;
}

/*
 * RX buffer size (5.1.6.3.1): with MRG_RXBUF any size of at least a header will do, and a
 * frame may take several; without it every posted chain must hold the largest frame we
 * accept: one buffer when that fits in a page, else a chain of page-sized ones.
 */
static void rx_buffer_size(struct vio_net *net)
{
	uint32_t frame = net->hdr_len + net->max_rx_frame;

	net->net_rx_chain = 1;
	if (has(net, VIRTIO_NET_F_MRG_RXBUF)) {
		net->net_rx_buf_size = rx_merged_size(net, frame);
	} else if (frame <= PAGE_SIZE) {
		net->net_rx_buf_size = round_up(frame, BUF_ALIGN);
	} else {
		net->net_rx_buf_size = PAGE_SIZE;
		net->net_rx_chain = (uint16_t)((frame + PAGE_SIZE - 1) / PAGE_SIZE);
	}
}

/* `asked` (0: `dflt`), at most `limit`. */
static uint32_t count(uint16_t asked, uint16_t dflt, uint32_t limit)
{
	uint32_t n = asked ? asked : dflt;
	return n < limit ? n : limit;
}

/*
 * Private memory: the TX slots, the RX buffers, the DMA page list, send_sg's segment list
 * (kept here, off the stack), the free TX slot stack.
 */
static int alloc_private(struct vio_net *net, uint32_t max_pages)
{
	net->net_priv_bytes = net->net_ntx * (uint32_t)sizeof(struct vio_net_txslot) +
			      net->net_nrx * (uint32_t)sizeof(struct vio_net_rxbuf) +
			      max_pages * (uint32_t)sizeof(void *) +
			      (VIO_NET_TX_MAX_SEGS + 1) * (uint32_t)sizeof(struct vio_sg) +
			      net->net_ntx * (uint32_t)sizeof(uint16_t);
	net->net_priv = vio_priv_alloc(port_of(net), net->net_priv_bytes);
	if (!net->net_priv)
		return VIO_ENOMEM;
	net->net_tx_slots = net->net_priv;
	net->net_rx_bufs = (struct vio_net_rxbuf *)(net->net_tx_slots + net->net_ntx);
	net->net_pages = (void **)(net->net_rx_bufs + net->net_nrx);
	net->net_tx_sg = (struct vio_sg *)(net->net_pages + max_pages);
	net->net_tx_free = (uint16_t *)(net->net_tx_sg + VIO_NET_TX_MAX_SEGS + 1);
	return 0;
}

/* The smallest ring of the pairs' RX (which 0) or TX (1) queues. */
static uint32_t smallest_ring(struct vio_net *net, unsigned which)
{
	uint32_t least = net->net_vqs[which].size;

	for (uint16_t p = 1; p < net->queue_pairs; p++)
		if (net->net_vqs[2 * p + which].size < least)
			least = net->net_vqs[2 * p + which].size;
	return least;
}

/*
 * How many buffers (the options, never more than the rings take: the ring size is not a
 * count of buffers, a legacy device may make it 32768), then the memory: see the top of
 * the file. RX buffers come first, then the TX copy buffers, so that the small TX headers
 * and the ctrl area fill what is left of the last page.
 */
static int alloc_buffers(struct vio_net *net)
{
	struct carver c = {0};
	int err;

	rx_buffer_size(net);
	/* Never fewer than the largest frame takes: with MRG_RXBUF it may need several. */
	uint32_t least = 1, limit = smallest_ring(net, 0) / net->net_rx_chain;
	if (has(net, VIRTIO_NET_F_MRG_RXBUF))
		least = (net->hdr_len + net->max_rx_frame + net->net_rx_buf_size - 1) /
			net->net_rx_buf_size;
	net->net_rx_max_bufs = (uint16_t)least;
	uint32_t chains = count(net->net_opts.rx_buffers, VIO_NET_RX_BUFFERS, limit);
	if (chains < least)
		chains = least;
	if (chains > limit)
		return VIO_EINVAL; /* a ring too small for the largest frame */
	uint32_t per_pair = chains * net->net_rx_chain;
	net->net_nrx = (uint16_t)(per_pair * net->queue_pairs);
	net->net_ntx =
	    (uint16_t)count(net->net_opts.tx_buffers, VIO_NET_TX_BUFFERS, smallest_ring(net, 1));
	net->net_tx_copy_size = round_up(net->max_frame, BUF_ALIGN);
	if (net->net_tx_copy_size > PAGE_SIZE)
		net->net_tx_copy_size = PAGE_SIZE;
	uint32_t pieces = (net->max_frame + net->net_tx_copy_size - 1) / net->net_tx_copy_size;
	if ((err = alloc_private(net, net->net_nrx + net->net_ntx * (1 + pieces) + 1)))
		return err;

	for (uint16_t i = 0; i < net->net_nrx; i++) {
		struct vio_net_rxbuf *b = &net->net_rx_bufs[i];
		b->chain = (uint16_t)(i - i % net->net_rx_chain);
		b->pair = (uint16_t)(i / per_pair);
		if (!(b->mem = carve(net, &c, net->net_rx_buf_size)))
			return VIO_ENOMEM;
	}
	for (uint16_t i = 0; i < net->net_ntx; i++) {
		struct vio_net_txslot *slot = &net->net_tx_slots[i];
		for (uint32_t k = 0; k < pieces; k++)
			if (!(slot->copy[k] = carve(net, &c, net->net_tx_copy_size)))
				return VIO_ENOMEM;
	}
	for (uint16_t i = 0; i < net->net_ntx; i++) {
		struct vio_net_txslot *slot = &net->net_tx_slots[i];
		if (!(slot->hdr = carve(net, &c, TX_HDR_ROOM)))
			return VIO_ENOMEM;
		slot->index = i;
		net->net_tx_free[i] = i;
	}
	net->net_tx_nfree = net->net_ntx;
	if (net->net_ctrl_index && !(net->net_ctrl = carve(net, &c, CTRL_BYTES)))
		return VIO_ENOMEM;
	return 0;
}

/* --- receive -------------------------------------------------------------------------------- */

/* Hand one chain of buffers (one buffer, usually) to the device. The caller kicks. */
static void rx_post(struct vio_net *net, struct vio_net_rxbuf *first)
{
	struct vio_sg sg[MAX_PIECES];

	for (uint16_t i = 0; i < net->net_rx_chain; i++)
		sg[i] = (struct vio_sg){first[i].mem, net->net_rx_buf_size};
	first->posted = true;
	/* Cannot be full: the ring has room for every chain. Fails only when broken. */
	vio_vq_add(rxq(net, first->pair), sg, 0, net->net_rx_chain, first);
}

/* Put the chain `buf` belongs to back on the ring, once the caller holds none of it. */
static void rx_repost(struct vio_net *net, struct vio_net_rxbuf *buf)
{
	struct vio_net_rxbuf *first = &net->net_rx_bufs[buf->chain];

	if (first->posted)
		return;
	for (uint16_t i = 0; i < net->net_rx_chain; i++)
		if (first[i].held)
			return;
	rx_post(net, first);
}

static void rx_post_frame(struct vio_net *net, struct vio_net_frame *f)
{
	for (uint16_t i = 0; i < f->nsegs; i++)
		rx_repost(net, f->seg[i].buf);
}

/*
 * Take the next used chain off the RX ring as the next segment(s) of f, one per buffer the
 * device wrote into: the data starts after the header in a frame's first buffer, at the
 * start of the others (5.1.6.4). Sets *bad when the device claims to have written more than
 * we posted, less than a header into a frame's first buffer or nothing into a later one, or
 * when f has no room left for the chain: it is then put straight back on the ring. Returns
 * 0, VIO_EAGAIN or VIO_EIO. `pair`: the queue pair whose RX queue to look at.
 */
static int rx_take_buffer(struct vio_net *net, uint16_t pair, struct vio_net_frame *f, bool *bad)
{
	struct vio_vq_used u;
	int err = vio_vq_get_used(rxq(net, pair), &u);

	if (err)
		return err;
	struct vio_net_rxbuf *first = u.cookie;
	uint32_t skip = f->nsegs ? 0 : net->hdr_len;

	/* The core checked the id was in flight: one of our chains, and on the ring. */
	VIO_ASSERT(first >= net->net_rx_bufs && first < net->net_rx_bufs + net->net_nrx);
	VIO_ASSERT(first->chain == first - net->net_rx_bufs && first->posted);
	VIO_ASSERT(first->pair == pair); /* each queue's cookies are its own buffers */
	first->posted = false;
	if (f->nsegs + net->net_rx_chain > VIO_NET_RX_MAX_SEGS) {
		*bad = true; /* more parts than a frame may have: taken, so as not to parse them */
		rx_post(net, first);
		return 0;
	}
	if (u.len > u.in_len || u.len < (f->nsegs ? 1 : skip)) {
		f->seg[f->nsegs++] = (struct vio_net_rx_seg){first->mem, 0, first};
		*bad = true;
		return 0;
	}
	uint32_t left = u.len;
	for (uint16_t i = 0; i < net->net_rx_chain && (i == 0 || left); i++) {
		uint32_t n = left < net->net_rx_buf_size ? left : net->net_rx_buf_size;
		uint32_t from = i ? 0 : skip;
		f->seg[f->nsegs++] =
		    (struct vio_net_rx_seg){first[i].mem + from, n - from, &first[i]};
		f->len += n - from;
		left -= n;
	}
	return 0;
}

/*
 * Copy the header out of the device's buffer, each byte read once (no second look): 10, 12
 * or (HASH_REPORT) 20 bytes; what a shorter header lacks reads as 0.
 */
static void rx_read_hdr(const struct vio_net *net, const struct vio_net_frame *f,
			struct virtio_net_hdr_v1_hash *h)
{
	const volatile uint8_t *from = f->seg[0].buf->mem;
	uint8_t *to = (uint8_t *)h;

	bytes_zero(h, sizeof(*h));
	for (uint16_t i = 0; i < net->hdr_len; i++)
		to[i] = from[i];
}

/* The GSO types the device may use (5.1.6.4.1): each needs its feature; ECN, GUEST_ECN. */
static bool rx_gso_type_ok(const struct vio_net *net, uint8_t type)
{
	bool tcp = false;

	switch (type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		tcp = has(net, VIRTIO_NET_F_GUEST_TSO4);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		tcp = has(net, VIRTIO_NET_F_GUEST_TSO6);
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		return type == VIRTIO_NET_HDR_GSO_UDP && has(net, VIRTIO_NET_F_GUEST_UFO);
	default:
		return false; /* NONE with the ECN bit, UDP_L4 (GUEST_USO4/6, never taken), unknown
			       */
	}
	return tcp && (!(type & VIRTIO_NET_HDR_GSO_ECN) || has(net, VIRTIO_NET_F_GUEST_ECN));
}

/*
 * Is the header right for a frame of f->len bytes (5.1.6.4)? Flags at most DATA_VALID and,
 * with GUEST_CSUM, NEEDS_CSUM, whose checksum field must lie inside the frame. Without
 * GUEST_CSUM, NEEDS_CSUM means a sum never finished, so corrupt data for us; DATA_VALID is let
 * through and ignored there (a tap backend passes it on as it is). gso_type NONE, and the
 * frame at most max_frame; or a negotiated GSO type, and then (5.1.6.4.1) NEEDS_CSUM set, a
 * gso_size (the MSS) not 0 and the frame at most max_rx_frame. hdr_len, a hint, no longer
 * than the frame.
 */
static bool rx_hdr_ok(const struct vio_net *net, const struct virtio_net_hdr *h,
		      const struct vio_net_frame *f)
{
	uint8_t known = VIRTIO_NET_HDR_F_DATA_VALID;
	bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;

	if (has(net, VIRTIO_NET_F_GUEST_CSUM))
		known |= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	if ((h->flags & ~known) || h->hdr_len > f->len)
		return false;
	if (csum && (uint32_t)h->csum_start + h->csum_offset + 2 > f->len)
		return false;
	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return f->len <= net->max_frame;
	return rx_gso_type_ok(net, h->gso_type) && csum && h->gso_size &&
	       f->len <= net->max_rx_frame;
}

/*
 * The hash report (5.1.6.4, VIRTIO_NET_F_HASH_REPORT): NONE, or the report of a hash type
 * vio_net_set_rss asked for (report r is type bit r - 1). The types asked for since init all
 * count: a frame the device hashed just before a new configuration is still a good one. A
 * report of a type never asked for, or beyond UDPv6_EX, is a device breaking the rules.
 */
static bool rx_hash_ok(const struct vio_net *net, uint16_t report)
{
	if (report == VIRTIO_NET_HASH_REPORT_NONE)
		return true;
	return report <= VIRTIO_NET_HASH_REPORT_UDPv6_EX &&
	       (net->net_hash_types_asked >> (report - 1) & 1);
}

/* Checksum state from a header rx_hdr_ok accepted (5.1.6.4.1). */
static void rx_csum_flags(struct vio_net *net, const struct virtio_net_hdr *h,
			  struct vio_net_frame *f)
{
	f->flags = 0;
	f->csum_start = f->csum_offset = 0;
	if (!has(net, VIRTIO_NET_F_GUEST_CSUM))
		return;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		f->flags = VIO_NET_RX_CSUM_PARTIAL;
		f->csum_start = h->csum_start;
		f->csum_offset = h->csum_offset;
	} else if (h->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		f->flags = VIO_NET_RX_CSUM_VALID;
	}
}

/*
 * Gather the next frame from the used ring: one chain, or with MRG_RXBUF the num_buffers
 * buffers the device used for it together (5.1.6.4: it publishes them at once, so all must
 * be there). num_buffers is 1 .. the RX buffers there are, and that many are taken even when
 * the frame is bad, so that none of its parts is parsed as a frame. Returns 0 with *bad
 * telling whether the device broke a rule, VIO_EAGAIN, or VIO_EIO.
 */
static int rx_gather(struct vio_net *net, uint16_t pair, struct vio_net_frame *f, bool *bad)
{
	struct virtio_net_hdr_v1_hash hh;
	const struct virtio_net_hdr *h = &hh.hdr;
	int err;

	f->len = 0;
	f->nsegs = 0;
	*bad = false;
	err = rx_take_buffer(net, pair, f, bad);
	if (err || *bad)
		return err;

	rx_read_hdr(net, f, &hh);
	uint16_t nbufs = has(net, VIRTIO_NET_F_MRG_RXBUF) ? h->num_buffers : 1;
	if (nbufs == 0 || nbufs > net->net_nrx) {
		*bad = true;
		return 0;
	}
	/* All taken even beyond what the largest frame needs: none is parsed as a frame. */
	for (uint16_t taken = 1; taken < nbufs; taken++) {
		err = rx_take_buffer(net, pair, f, bad);
		if (err == VIO_EAGAIN) {
			*bad = true; /* fewer buffers than num_buffers said */
			return 0;
		}
		if (err)
			return err;
	}
	if (*bad || nbufs > net->net_rx_max_bufs || f->len < VIO_NET_ETH_HLEN ||
	    !rx_hdr_ok(net, h, f) || !rx_hash_ok(net, hh.hash_report)) {
		*bad = true;
		return 0;
	}
	rx_csum_flags(net, h, f);
	f->gso_type = h->gso_type;
	f->gso_size = h->gso_type == VIRTIO_NET_HDR_GSO_NONE ? 0 : h->gso_size;
	f->hdr_len = h->hdr_len;
	f->hash_report = (uint8_t)hh.hash_report; /* rx_hash_ok: at most UDPv6_EX (9) */
	f->hash_value = hh.hash_report == VIRTIO_NET_HASH_REPORT_NONE ? 0 : hh.hash_value;
	f->pair = pair;
	return 0;
}

/*
 * The next frame from any RX queue, taking them in turn (one flow cannot starve another
 * pair's): VIO_EAGAIN when every one is empty.
 */
static int rx_gather_any(struct vio_net *net, struct vio_net_frame *f, bool *bad)
{
	for (uint16_t k = 0; k < net->queue_pairs; k++) {
		uint16_t pair = net->net_rx_next;
		net->net_rx_next = (uint16_t)((pair + 1) % net->queue_pairs);
		int err = rx_gather(net, pair, f, bad);
		if (err != VIO_EAGAIN)
			return err;
	}
	return VIO_EAGAIN;
}

/*
 * The RX rings look empty: re-arm their interrupts so the device tells us about the next
 * frame. False when one slipped in meanwhile, which it may not interrupt for: look again.
 */
static bool rx_rearm(struct vio_net *net)
{
	bool empty = true;

	for (uint16_t p = 0; p < net->queue_pairs; p++)
		empty &= vio_vq_enable_cb(rxq(net, p));
	return empty;
}

/*
 * Publish every buffer given back since the last flush and notify the device once (if it
 * wants to hear: EVENT_IDX or NO_NOTIFY may say not). Under emulation each notification is
 * a trap into the hypervisor, so a batch of released buffers costs one, not one each.
 */
static void rx_flush(struct vio_net *net)
{
	for (uint16_t p = 0; p < net->queue_pairs; p++)
		vio_vq_kick(rxq(net, p));
}

/* Count (+1) or uncount (-1) a frame handed up as merged (MRG_RXBUF: over several posted
 * buffers) and as coalesced (GSO). */
static void rx_count_kinds(struct vio_net *net, const struct vio_net_frame *f, int n)
{
	if (f->nsegs > net->net_rx_chain)
		net->stats.rx_merged += (uint64_t)(int64_t)n;
	if (f->gso_type != VIRTIO_NET_HDR_GSO_NONE)
		net->stats.rx_gso += (uint64_t)(int64_t)n;
}

int vio_net_recv(struct vio_net *net, struct vio_net_frame *f)
{
	/*
	 * Bounded work: at most as many looks at the ring as there are posted chains. A device
	 * that completes (with a bad frame) every buffer the moment we post it again would
	 * otherwise keep us here for ever; what it completes beyond this waits for the next
	 * call, which vio_net_poll reports is due.
	 */
	unsigned budget = net->net_nrx / net->net_rx_chain;
	bool bad;
	int err;

	for (unsigned round = 0;; round++) {
		if (round == budget) {
			err = VIO_EAGAIN;
			break;
		}
		err = rx_gather_any(net, f, &bad);
		if (err == VIO_EAGAIN && !rx_rearm(net))
			continue;
		if (err)
			break;
		if (bad) {
			net->stats.rx_errors++;
			if (!net->net_warned_bad) {
				net->net_warned_bad = true;
				vio_logf(port_of(net), VIO_LOG_WARN,
					 "virtio-net: dropped a bad frame from the device (header, "
					 "length or num_buffers); counting them in rx_errors");
			}
		} else if (net->net_rx_held && net->net_rx_held + f->nsegs > net->net_rx_hold_max) {
			net->stats.rx_drops++;
			err = VIO_ENOSPC;
			if (!net->net_warned_hold) {
				net->net_warned_hold = true;
				vio_logf(port_of(net), VIO_LOG_WARN,
					 "virtio-net: caller holds %u RX buffers: dropping frames",
					 net->net_rx_held);
			}
		} else {
			for (uint16_t i = 0; i < f->nsegs; i++)
				f->seg[i].buf->held = true;
			net->net_rx_held += f->nsegs;
			net->stats.rx_frames++;
			net->stats.rx_pair_frames[f->pair]++;
			net->stats.rx_bytes += f->len;
			rx_count_kinds(net, f, 1);
			break;
		}
		rx_post_frame(net, f);
		if (err)
			break;
	}
	/* Not a frame: the caller's batch is over. Buffers it gave back go to the device now. */
	if (err)
		rx_flush(net);
	return vio_dev_error(net->dev, err);
}

/* A buffer the caller held goes back to the ring, unpublished until rx_flush (a second
 * release is ignored). */
static void rx_give_back(struct vio_net *net, struct vio_net_rxbuf *buf)
{
	VIO_ASSERT(buf >= net->net_rx_bufs && buf < net->net_rx_bufs + net->net_nrx);
	if (!buf->held)
		return;
	VIO_ASSERT(net->net_rx_held > 0);
	buf->held = false;
	net->net_rx_held--;
	rx_repost(net, buf);
}

void vio_net_rx_release(struct vio_net *net, struct vio_net_rxbuf *buf)
{
	rx_give_back(net, buf);
}

void vio_net_frame_release(struct vio_net *net, const struct vio_net_frame *f)
{
	for (uint16_t i = 0; i < f->nsegs; i++)
		rx_give_back(net, f->seg[i].buf);
}

int vio_net_recv_copy(struct vio_net *net, void *buf, uint32_t size, uint16_t *flags)
{
	struct vio_net_frame f;
	int err = vio_net_recv(net, &f);

	if (err)
		return err;
	if (f.len > size) {
		net->stats.rx_frames--;
		net->stats.rx_pair_frames[f.pair]--;
		net->stats.rx_bytes -= f.len;
		rx_count_kinds(net, &f, -1);
		net->stats.rx_drops++;
		vio_net_frame_release(net, &f);
		return VIO_EINVAL;
	}
	uint8_t *dst = buf;
	for (uint16_t i = 0; i < f.nsegs; i++) {
		bytes_copy(dst, f.seg[i].data, f.seg[i].len);
		dst += f.seg[i].len;
	}
	if (flags)
		*flags = f.flags;
	vio_net_frame_release(net, &f);
	return (int)f.len;
}

/* --- transmit ------------------------------------------------------------------------------- */

/*
 * The device is done with a TX slot: free it, and hand a send_sg cookie back to its owner.
 * The core checked the id was in flight, so the slot is one of ours and not already free.
 */
static void tx_done(struct vio_net *net, struct vio_net_txslot *slot)
{
	void *cookie = slot->cookie;

	VIO_ASSERT(slot->index < net->net_ntx && &net->net_tx_slots[slot->index] == slot);
	VIO_ASSERT(net->net_tx_nfree < net->net_ntx);
	slot->cookie = NULL;
	net->net_tx_free[net->net_tx_nfree++] = slot->index;
	if (cookie)
		net->net_opts.on_tx_done(net, cookie, net->net_opts.arg);
}

/* One TX queue's part of tx_reap, within what is left of its budget. 0 or VIO_EIO. */
static int tx_reap_queue(struct vio_net *net, struct vio_vq *vq, unsigned *budget)
{
	struct vio_vq_used u;

	while (*budget) {
		int err = vio_vq_get_used(vq, &u);
		if (err == VIO_EAGAIN) {
			if (vio_vq_enable_cb(vq))
				return 0;
			(*budget)--; /* one slipped in as we re-armed: look again */
			continue;
		}
		if (err)
			return err;
		tx_done(net, u.cookie);
		(*budget)--;
	}
	return 0;
}

/*
 * Take back the TX requests the device finished with, on every TX queue; send_sg cookies go
 * to on_tx_done. Bounded work: at most net_ntx looks at the rings, so that an on_tx_done that
 * sends again, to a device that completes every send at once, cannot keep us here. Such a
 * send does not reap itself: the reap under way goes on. Returns 0 when the rings are empty
 * and their interrupts re-armed, 1 when the budget ran out first (call again), or VIO_EIO.
 */
static int tx_reap(struct vio_net *net)
{
	unsigned budget = net->net_ntx;
	int err = 0;

	if (net->net_tx_reaping)
		return 0;
	net->net_tx_reaping = true;
	for (uint16_t p = 0; p < net->queue_pairs && !err; p++)
		err = tx_reap_queue(net, txq(net, p), &budget);
	net->net_tx_reaping = false;
	if (err)
		return err;
	return budget ? 0 : 1;
}

/*
 * A frame the device is to segment (5.1.6.2.1): a TCP type whose HOST_ feature was
 * negotiated, HOST_ECN for the ECN bit, NEEDS_CSUM on the TCP checksum, which lies inside the
 * headers, the headers shorter than the frame, and each segment (headers and gso_size bytes of
 * payload) no longer than an MTU frame.
 */
static int tx_gso_check(const struct vio_net *net, uint32_t len, const struct vio_net_tx_opts *o)
{
	unsigned bit;

	switch (o->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		bit = VIRTIO_NET_F_HOST_TSO4;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		bit = VIRTIO_NET_F_HOST_TSO6;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
	case VIRTIO_NET_HDR_GSO_UDP_L4:
		return VIO_ENOTSUP; /* HOST_UFO and HOST_USO are never negotiated */
	default:
		return VIO_EINVAL;
	}
	if (!has(net, bit) ||
	    ((o->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !has(net, VIRTIO_NET_F_HOST_ECN)))
		return VIO_ENOTSUP;
	if (!(o->flags & VIO_NET_TX_CSUM) || !o->gso_size ||
	    (uint32_t)o->csum_start + o->csum_offset + 2 > o->hdr_len || o->hdr_len >= len ||
	    (uint32_t)o->hdr_len + o->gso_size > net->max_frame)
		return VIO_EINVAL;
	return 0;
}

static int tx_check(const struct vio_net *net, uint32_t len, const struct vio_net_tx_opts *opts)
{
	bool gso = opts && (opts->flags & VIO_NET_TX_GSO);

	if (len < VIO_NET_ETH_HLEN || len > (gso ? net->max_tx_frame : net->max_frame))
		return VIO_EINVAL;
	if (opts && (opts->flags & ~(VIO_NET_TX_CSUM | VIO_NET_TX_GSO)))
		return VIO_EINVAL;
	if (opts && (opts->flags & VIO_NET_TX_CSUM)) {
		if (!has(net, VIRTIO_NET_F_CSUM))
			return VIO_ENOTSUP;
		if ((uint32_t)opts->csum_start + opts->csum_offset + 2 > len)
			return VIO_EINVAL;
	}
	return gso ? tx_gso_check(net, len, opts) : 0;
}

/*
 * 5.1.6.2: checksum offload when asked, segmentation offload when asked (gso_type, the MSS,
 * the headers' length); num_buffers, and the hash fields of a 20-byte header, are 0 on
 * transmit.
 */
static void tx_fill_hdr(const struct vio_net *net, struct vio_net_txslot *slot,
			const struct vio_net_tx_opts *opts)
{
	struct virtio_net_hdr *hdr = (struct virtio_net_hdr *)slot->hdr;

	bytes_zero(hdr, net->hdr_len > sizeof(*hdr) ? net->hdr_len : sizeof(*hdr));
	hdr->gso_type = VIRTIO_NET_HDR_GSO_NONE;
	if (opts && (opts->flags & VIO_NET_TX_CSUM)) {
		hdr->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		hdr->csum_start = opts->csum_start;
		hdr->csum_offset = opts->csum_offset;
	}
	if (opts && (opts->flags & VIO_NET_TX_GSO)) {
		hdr->gso_type = opts->gso_type;
		hdr->gso_size = opts->gso_size;
		hdr->hdr_len = opts->hdr_len;
	}
}

/* A free slot after reaping, or NULL when the ring is full. */
static struct vio_net_txslot *tx_slot_get(struct vio_net *net)
{
	tx_reap(net);
	if (!net->net_tx_nfree)
		return NULL;
	return &net->net_tx_slots[net->net_tx_free[--net->net_tx_nfree]];
}

static void tx_slot_put(struct vio_net *net, struct vio_net_txslot *slot)
{
	VIO_ASSERT(net->net_tx_nfree < net->net_ntx);
	slot->cookie = NULL;
	net->net_tx_free[net->net_tx_nfree++] = slot->index;
}

/*
 * Post sg[0] (the header, alone in its descriptor: legacy devices without ANY_LAYOUT need
 * that, 5.1.6.6) and the frame segments on the flow's TX queue, and kick.
 */
static int tx_post(struct vio_net *net, struct vio_net_txslot *slot, const struct vio_sg *sg,
		   unsigned n, uint32_t len, const struct vio_net_tx_opts *opts)
{
	slot->pair = (uint16_t)(opts ? opts->flow % net->queue_pairs : 0);
	int err = vio_vq_add(txq(net, slot->pair), sg, n, 0, slot);

	if (err) {
		tx_slot_put(net, slot);
		if (err == VIO_ENOSPC)
			net->stats.tx_full++;
		else
			net->stats.tx_errors++;
		return vio_dev_error(net->dev, err);
	}
	net->stats.tx_frames++;
	net->stats.tx_pair_frames[slot->pair]++;
	net->stats.tx_bytes += len;
	net->stats.tx_gso += opts && (opts->flags & VIO_NET_TX_GSO);
	vio_vq_kick(txq(net, slot->pair));
	return 0;
}

/*
 * The start both sends share: `err` is what the caller's own argument checks found. Checks
 * the frame, counts a refusal (tx_errors, or tx_full when no slot is free) and returns a slot
 * with its virtio header filled.
 */
static int tx_begin(struct vio_net *net, int err, uint32_t len, const struct vio_net_tx_opts *opts,
		    struct vio_net_txslot **slot)
{
	if (!err)
		err = tx_check(net, len, opts);
	if (err) {
		net->stats.tx_errors++;
		return err;
	}
	*slot = tx_slot_get(net);
	if (!*slot) {
		net->stats.tx_full++;
		return VIO_ENOSPC;
	}
	tx_fill_hdr(net, *slot, opts);
	return 0;
}

int vio_net_send(struct vio_net *net, const void *frame, uint32_t len,
		 const struct vio_net_tx_opts *opts)
{
	struct vio_net_txslot *slot;
	struct vio_sg sg[1 + MAX_PIECES];
	const uint8_t *from = frame;
	unsigned n = 1;
	/* The copy buffers hold an MTU frame: larger GSO frames go through send_sg. */
	int err = tx_begin(net, len > net->max_frame ? VIO_EINVAL : 0, len, opts, &slot);

	if (err)
		return err;
	sg[0] = (struct vio_sg){slot->hdr, net->hdr_len};
	for (uint32_t left = len; left; n++) {
		uint32_t k = left < net->net_tx_copy_size ? left : net->net_tx_copy_size;
		bytes_copy(slot->copy[n - 1], from, k);
		sg[n] = (struct vio_sg){slot->copy[n - 1], k};
		from += k;
		left -= k;
	}
	return tx_post(net, slot, sg, n, len, opts);
}

int vio_net_send_sg(struct vio_net *net, const struct vio_sg *sg, unsigned n, void *cookie,
		    const struct vio_net_tx_opts *opts)
{
	struct vio_sg *all = net->net_tx_sg; /* private, not the stack: 33 segments are 528 bytes */
	struct vio_net_txslot *slot;
	uint32_t len = 0;
	int err = 0;

	if (!cookie || !net->net_opts.on_tx_done || n == 0 || n > VIO_NET_TX_MAX_SEGS)
		err = VIO_EINVAL;
	for (unsigned i = 0; !err && i < n; i++) {
		if (sg[i].len == 0 || sg[i].len > net->max_tx_frame)
			err = VIO_EINVAL;
		len += sg[i].len;
	}
	/* tx_begin may reap, and an on_tx_done send: fill net_tx_sg only after it. */
	if ((err = tx_begin(net, err, len, opts, &slot)))
		return err;
	slot->cookie = cookie;
	all[0] = (struct vio_sg){slot->hdr, net->hdr_len};
	for (unsigned i = 0; i < n; i++)
		all[i + 1] = sg[i];
	return tx_post(net, slot, all, n + 1, len, opts);
}

/* --- control queue -------------------------------------------------------------------------- */

/*
 * The device's answer to the command in flight (5.1.6.5): 0 for VIRTIO_NET_OK, VIO_EIO for
 * anything else (or an ack it did not write), VIO_EAGAIN while it has not answered. An
 * address set_mac asked for becomes net->mac once the device has taken it, from the driver's
 * own copy: the ctrl area is the device's to rewrite.
 */
static int ctrl_answer(struct vio_net *net)
{
	struct vio_vq_used u;
	int err = vio_vq_get_used(ctrlq(net), &u);

	if (err == VIO_EAGAIN)
		return err;
	bool set_mac = net->net_ctrl_set_mac;
	net->net_ctrl_pending = net->net_ctrl_set_mac = false;
	if (err)
		return err;
	VIO_ASSERT(u.cookie == net->net_ctrl); /* the one command in flight */
	uint8_t ack = *(volatile virtio_net_ctrl_ack *)(net->net_ctrl + CTRL_ACK_OFF);
	if (u.len < sizeof(ack) || ack != VIRTIO_NET_OK)
		return VIO_EIO;
	if (set_mac)
		bytes_copy(net->mac, net->net_ctrl_mac, 6);
	return 0;
}

/*
 * Run one command: the class/command header, `ndata` parts already laid out in the ctrl
 * area, each in its own descriptor as legacy devices expect, then the ack byte the device
 * writes. `mac`: the address a MAC_ADDR_SET asks for, else NULL.
 *
 * The caller wants the result, so we poll for it, for at most opts.timeout_ns (1 ms by
 * default): the longest this driver ever spins, perhaps with interrupts masked. A device
 * slower than that gets VIO_ETIMEDOUT; its command stays posted (the device may yet read
 * its data and write the ack), the next command waits for it (ctrl_idle: VIO_EAGAIN until
 * then), and vio_net_poll collects its late answer.
 */
static int ctrl_cmd(struct vio_net *net, uint8_t class, uint8_t cmd, const struct vio_sg *data,
		    unsigned ndata, const uint8_t *mac)
{
	const struct vio_port *port = port_of(net);
	struct vio_vq *vq = ctrlq(net);
	struct vio_sg sg[4];
	int err;

	VIO_ASSERT(!net->net_ctrl_pending); /* the caller made sure with ctrl_idle */
	struct virtio_net_ctrl_hdr *hdr = (struct virtio_net_ctrl_hdr *)net->net_ctrl;
	volatile virtio_net_ctrl_ack *ack = net->net_ctrl + CTRL_ACK_OFF;
	hdr->class = class;
	hdr->cmd = cmd;
	*ack = 0xff; /* neither VIRTIO_NET_OK nor VIRTIO_NET_ERR until the device answers */

	sg[0] = (struct vio_sg){hdr, sizeof(*hdr)};
	for (unsigned i = 0; i < ndata; i++)
		sg[1 + i] = data[i];
	sg[1 + ndata] = (struct vio_sg){net->net_ctrl + CTRL_ACK_OFF, sizeof(*ack)};
	err = vio_vq_add(vq, sg, 1 + ndata, 1, net->net_ctrl);
	if (err)
		return err == VIO_ENOSPC ? VIO_EAGAIN : vio_dev_error(net->dev, err);
	net->net_ctrl_pending = true;
	if ((net->net_ctrl_set_mac = mac != NULL))
		bytes_copy(net->net_ctrl_mac, mac, 6);
	vio_vq_kick(vq);

	uint64_t deadline = port->now_ns(port->ctx) + net->net_opts.timeout_ns;
	while ((err = ctrl_answer(net)) == VIO_EAGAIN) {
		if (port->now_ns(port->ctx) >= deadline) {
			vio_logf(port, VIO_LOG_ERR, "virtio-net: ctrl command %u.%u timed out",
				 class, cmd);
			return vio_dev_error(net->dev, VIO_ETIMEDOUT);
		}
	}
	return vio_dev_error(net->dev, err);
}

/*
 * Is the ctrl area ours to lay a command out in? Not while one that timed out is still
 * posted: the device may yet read its data and write its ack. VIO_EAGAIN until it answers.
 */
static int ctrl_idle(struct vio_net *net)
{
	if (net->net_ctrl_pending && ctrl_answer(net) == VIO_EAGAIN)
		return VIO_EAGAIN;
	return 0;
}

static bool has_ctrl(const struct vio_net *net, unsigned bit)
{
	return net->net_ctrl_index && has(net, bit);
}

static int ctrl_rx_mode(struct vio_net *net, uint8_t cmd, bool on)
{
	if (!has_ctrl(net, VIRTIO_NET_F_CTRL_RX))
		return VIO_ENOTSUP;
	if (ctrl_idle(net))
		return VIO_EAGAIN;
	uint8_t *data = net->net_ctrl + CTRL_DATA_OFF;
	*data = on;
	struct vio_sg sg = {data, 1};
	return ctrl_cmd(net, VIRTIO_NET_CTRL_RX, cmd, &sg, 1, NULL);
}

int vio_net_set_promisc(struct vio_net *net, bool on)
{
	return ctrl_rx_mode(net, VIRTIO_NET_CTRL_RX_PROMISC, on);
}

int vio_net_set_allmulti(struct vio_net *net, bool on)
{
	return ctrl_rx_mode(net, VIRTIO_NET_CTRL_RX_ALLMULTI, on);
}

/* Lay one struct virtio_net_ctrl_mac out at p; returns its size. */
static uint32_t put_mac_table(uint8_t *p, const uint8_t (*macs)[6], uint32_t n)
{
	struct virtio_net_ctrl_mac *t = (struct virtio_net_ctrl_mac *)p;

	t->entries = n;
	bytes_copy(t->macs, macs, 6 * n);
	return (uint32_t)sizeof(*t) + 6 * n;
}

int vio_net_set_mac_filter(struct vio_net *net, const uint8_t (*uc)[6], uint32_t n_uc,
			   const uint8_t (*mc)[6], uint32_t n_mc)
{
	if (!has_ctrl(net, VIRTIO_NET_F_CTRL_RX))
		return VIO_ENOTSUP;
	if (n_uc > VIO_NET_MAC_TABLE_MAX || n_mc > VIO_NET_MAC_TABLE_MAX - n_uc || (n_uc && !uc) ||
	    (n_mc && !mc))
		return VIO_EINVAL;
	if (ctrl_idle(net))
		return VIO_EAGAIN;
	uint8_t *p = net->net_ctrl + CTRL_DATA_OFF;
	struct vio_sg sg[2];
	sg[0] = (struct vio_sg){p, put_mac_table(p, uc, n_uc)};
	p += round_up(sg[0].len, 4);
	sg[1] = (struct vio_sg){p, put_mac_table(p, mc, n_mc)};
	return ctrl_cmd(net, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, sg, 2, NULL);
}

int vio_net_set_mac(struct vio_net *net, const uint8_t mac[6])
{
	if (!has_ctrl(net, VIRTIO_NET_F_CTRL_MAC_ADDR))
		return VIO_ENOTSUP;
	if (!mac_usable(mac))
		return VIO_EINVAL;
	if (ctrl_idle(net))
		return VIO_EAGAIN;
	uint8_t *p = net->net_ctrl + CTRL_DATA_OFF;
	bytes_copy(p, mac, 6);
	struct vio_sg sg = {p, 6};
	return ctrl_cmd(net, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, &sg, 1, mac);
}

/* Lay a little-endian 16-bit value out at p (the ctrl area is bytes: no alignment). */
static uint8_t *put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *put_le32(uint8_t *p, uint32_t v)
{
	return put_le16(put_le16(p, (uint16_t)v), (uint16_t)(v >> 16));
}

/*
 * The checks of 5.1.6.5.6.4's driver requirements, before the device sees anything: hash
 * types the device supports, a key of 1 .. rss_max_key_size bytes whenever a type is on;
 * with steering, a table whose length is a power of two up to rss_max_indirection_table_length
 * and whose entries, like the unclassified queue, are pairs in use.
 */
static int rss_check(const struct vio_net *net, const struct vio_net_rss *rss)
{
	bool steer = has(net, VIRTIO_NET_F_RSS);

	if (!net->net_ctrl_index || (!steer && !has(net, VIRTIO_NET_F_HASH_REPORT)))
		return VIO_ENOTSUP;
	if (!steer && rss->table_len)
		return VIO_ENOTSUP; /* hash report alone: the device does not steer */
	if (rss->hash_types & ~net->rss_hash_types_supported)
		return VIO_ENOTSUP;
	if ((rss->hash_types && !rss->key_len) || rss->key_len > net->rss_max_key_size ||
	    (rss->key_len && !rss->key))
		return VIO_EINVAL;
	if (!steer)
		return 0;
	uint16_t n = rss->table_len;
	if (!n || (n & (n - 1)) || n > net->rss_max_table_len || !rss->table ||
	    rss->unclassified >= net->queue_pairs)
		return VIO_EINVAL;
	for (uint16_t i = 0; i < n; i++)
		if (rss->table[i] >= net->queue_pairs)
			return VIO_EINVAL;
	return 0;
}

/*
 * 5.1.6.5.6.4: struct virtio_net_rss_config (RSS) or struct virtio_net_hash_config (hash
 * report alone), laid out byte by byte at p, little-endian. Returns its length.
 */
static uint32_t put_rss_config(const struct vio_net *net, uint8_t *p, const struct vio_net_rss *rss)
{
	uint8_t *start = p;

	p = put_le32(p, rss->hash_types);
	if (has(net, VIRTIO_NET_F_RSS)) {
		p = put_le16(p, (uint16_t)(rss->table_len - 1)); /* indirection_table_mask */
		p = put_le16(p, rss->unclassified);
		for (uint16_t i = 0; i < rss->table_len; i++)
			p = put_le16(p, rss->table[i]);
		p = put_le16(p, net->queue_pairs); /* max_tx_vq: the pairs stay as they are */
	} else {
		for (int i = 0; i < 4; i++)
			p = put_le16(p, 0); /* reserved[4] */
	}
	*p++ = rss->key_len;
	bytes_copy(p, rss->key, rss->key_len);
	return (uint32_t)(p + rss->key_len - start);
}

int vio_net_set_rss(struct vio_net *net, const struct vio_net_rss *rss)
{
	int err = rss_check(net, rss);

	if (err)
		return err;
	if (ctrl_idle(net))
		return VIO_EAGAIN;
	uint8_t *p = net->net_ctrl + CTRL_DATA_OFF;
	struct vio_sg sg = {p, put_rss_config(net, p, rss)};
	uint8_t cmd = has(net, VIRTIO_NET_F_RSS) ? VIRTIO_NET_CTRL_MQ_RSS_CONFIG
						 : VIRTIO_NET_CTRL_MQ_HASH_CONFIG;
	/* Asked for from now on: frames the device hashes meanwhile may carry these reports. */
	net->net_hash_types_asked |= rss->hash_types;
	err = ctrl_cmd(net, VIRTIO_NET_CTRL_MQ, cmd, &sg, 1, NULL);
	if (err)
		return err;
	net->rss_hash_types = rss->hash_types;
	net->rss_key_len = rss->hash_types ? rss->key_len : 0;
	net->rss_table_len = has(net, VIRTIO_NET_F_RSS) ? rss->table_len : 0;
	net->rss_unclassified = has(net, VIRTIO_NET_F_RSS) ? rss->unclassified : 0;
	return 0;
}

/* --- bring-up, polling, teardown ------------------------------------------------------------ */

/*
 * RX or TX completions arrived (IRQ context). The rings are left alone: the thread that owns
 * the vio_net reaps them, so the kernel need not mask interrupts around its calls.
 */
static void queue_interrupt(struct vio_vq *vq, void *arg)
{
	struct vio_net *net = arg;

	(void)vq;
	if (net->net_opts.on_irq)
		net->net_opts.on_irq(net, net->net_opts.arg);
}

static uint16_t queue_limit(uint16_t asked)
{
	return asked && asked < VIO_NET_QUEUE_SIZE ? asked : VIO_NET_QUEUE_SIZE;
}

/*
 * The pairs we use, and the controlq (5.1.2): at index 2 without MQ, else after the device's
 * last pair, 2 * max_virtqueue_pairs. The core gets the whole array (and with MSI-X a vector
 * for each of its queues, 2 * max_virtqueue_pairs + 2 in all); pairs we leave unused are
 * never set up.
 */
static int setup_queues(struct vio_net *net)
{
	struct vio_dev *dev = net->dev;
	int err;

	/*
	 * Each receiveq holds every RX chain as direct descriptors (alloc_buffers posts no more
	 * than fit): no tables. A frame sent is a header and its data: tables let each take one
	 * entry of a transmitq. The controlq carries one command at a time: one table, so that a
	 * command fits even a ring smaller than its segments.
	 */
	const struct vio_vq_opts rx = {.max_size = queue_limit(net->net_opts.rx_queue_size),
				       .direct_only = true};
	const struct vio_vq_opts tx = {.max_size = queue_limit(net->net_opts.tx_queue_size),
				       .indirect_tables = net->net_opts.indirect_tables};
	const struct vio_vq_opts ctrl = {.max_size = CTRL_QUEUE_SIZE, .indirect_tables = 1};

	net->net_ctrl_index = has(net, VIRTIO_NET_F_CTRL_VQ) ? 2 * net->net_max_pairs : 0;
	net->net_nvqs = net->net_ctrl_index ? net->net_ctrl_index + 1 : 2;
	err = vio_dev_setup_irqs(dev, net->net_vqs, net->net_nvqs);
	for (uint16_t p = 0; !err && p < net->queue_pairs; p++) {
		err = vio_dev_setup_vq_opts(dev, 2 * p, &rx, queue_interrupt, net);
		if (!err)
			err = vio_dev_setup_vq_opts(dev, 2 * p + 1, &tx, queue_interrupt, net);
	}
	if (!err && net->net_ctrl_index)
		err = vio_dev_setup_vq_opts(dev, net->net_ctrl_index, &ctrl, NULL, NULL);
	return err;
}

/*
 * 5.1.6.5.6: with MQ the device uses receiveq1 and transmitq1 only until told how many pairs
 * to steer to. A device that refuses, or does not answer, leaves us with one pair (the
 * buffers posted to the others stay there, unused).
 */
static void set_queue_pairs(struct vio_net *net)
{
	if (net->queue_pairs < 2)
		return;
	struct virtio_net_ctrl_mq *mq =
	    (struct virtio_net_ctrl_mq *)(net->net_ctrl + CTRL_DATA_OFF);
	mq->virtqueue_pairs = net->queue_pairs;
	struct vio_sg sg = {mq, sizeof(*mq)};
	int err = ctrl_cmd(net, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &sg, 1, NULL);
	if (err) {
		vio_logf(port_of(net), VIO_LOG_WARN,
			 "virtio-net: device refused %u queue pairs (%s): using one",
			 net->queue_pairs, vio_strerror(err));
		net->queue_pairs = 1;
	}
}

int vio_net_init(struct vio_net *net, struct vio_dev *dev, const struct vio_net_opts *opts)
{
	int err;

	bytes_zero(net, sizeof(*net)); /* not a compound literal: that is a 1 KiB stack copy */
	if (dev->device_id != VIRTIO_ID_NET)
		return VIO_ENODEV;
	if (opts)
		net->net_opts = *opts;
	if (!net->net_opts.timeout_ns)
		net->net_opts.timeout_ns = VIO_NET_CTRL_TIMEOUT_NS;
	if (!net->net_opts.indirect_tables)
		net->net_opts.indirect_tables = VIO_NET_INDIRECT_TABLES;
	net->dev = dev;
	dev->name = net_name;

	/* 5.1.5 Device Initialization, inside the generic steps of 3.1.1. */
	err = negotiate(net);
	if (!err)
		err = read_config(net);
	if (!err)
		err = setup_queues(net);
	if (!err)
		err = alloc_buffers(net);
	if (err)
		goto fail;

	net->net_rx_hold_max = net->net_opts.rx_hold_max && net->net_opts.rx_hold_max < net->net_nrx
				   ? net->net_opts.rx_hold_max
				   : net->net_nrx / 2;
	vio_dev_set_config_callback(dev, config_changed, net);
	/* Fill the receive queues (5.1.5 step 3); the device sees them once it is live. */
	for (uint16_t i = 0; i < net->net_nrx; i += net->net_rx_chain)
		rx_post(net, &net->net_rx_bufs[i]);
	err = vio_dev_driver_ok(dev);
	if (err)
		goto fail;
	rx_flush(net);
	set_queue_pairs(net);
	net->net_link_checked_ns = dev->port->now_ns(dev->port->ctx);
	return 0;

fail:
	driver_abort(dev, net_name, err);
	free_buffers(net);
	net->dev = NULL;
	return err;
}

/*
 * 5.1.6.5.4: the device asked us to announce ourselves (after a migration, say): the caller
 * sends its gratuitous packets, then we acknowledge, which clears VIRTIO_NET_S_ANNOUNCE.
 * While an earlier command is still pending the request waits for the next poll.
 */
static void announce(struct vio_net *net)
{
	if (ctrl_idle(net))
		return;
	net->net_announce = false;
	net->net_opts.on_announce(net, net->net_opts.arg);
	net->stats.announces++;
	ctrl_cmd(net, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0, NULL);
}

int vio_net_poll(struct vio_net *net)
{
	const struct vio_port *port = port_of(net);
	/* A device may ask for a reset in its status alone (2.1.2): the core looks now and then. */
	int err = vio_dev_poll(net->dev);

	if (err)
		return err;
	int tx = tx_reap(net);

	rx_flush(net);
	if (net->net_ctrl_pending)
		ctrl_answer(net); /* a command that timed out may have its answer now */
	if (net->dev->irq_mode == VIO_IRQ_POLL) {
		/* No config interrupt will tell us: look at the link now and then. */
		uint64_t now = port->now_ns(port->ctx);
		if (now - net->net_link_checked_ns >= VIO_NET_LINK_POLL_NS) {
			net->net_link_checked_ns = now;
			refresh_link(net);
		}
	}
	if (net->net_announce)
		announce(net);
	if (tx < 0)
		return vio_dev_error(net->dev, tx);
	bool waiting = tx > 0;
	for (uint16_t p = 0; p < net->queue_pairs; p++) {
		if (vio_vq_is_broken(rxq(net, p)))
			return vio_dev_error(net->dev, VIO_EIO);
		waiting |= vio_vq_has_used(rxq(net, p));
	}
	return waiting ? 1 : 0;
}

/*
 * The device did not confirm its reset, so it may still read the frames posted to it and
 * write the RX buffers, the ctrl area and the rings (docs/design.md 4). Keep all of that for
 * ever: no page is freed and no queue destroyed; no send_sg cookie goes back, so its owner
 * never reuses a buffer the device may still read. The device is marked FAILED and its
 * interrupts reach nothing of ours. Only private memory, which it never saw, is freed.
 */
static void give_up(struct vio_net *net)
{
	struct vio_dev *dev = net->dev;

	for (uint16_t i = 0; i < net->net_nvqs; i++)
		vio_vq_set_callback(&net->net_vqs[i], NULL, NULL);
	vio_dev_abort(dev); /* the core keeps the rings of a dead device, frees its bookkeeping */
	vio_logf(port_of(net), VIO_LOG_ERR,
		 "virtio-net: reset not confirmed: its %u DMA pages and rings are kept, frames "
		 "posted to it are never given back",
		 net->net_npages);
	vio_priv_free(port_of(net), net->net_priv, net->net_priv_bytes);
	net->net_priv = NULL;
	net->dev = NULL;
}

int vio_net_fini(struct vio_net *net)
{
	struct vio_dev *dev = net->dev;
	struct vio_net_txslot *slot;
	int err;

	if (!dev)
		return 0;
	vio_dev_set_config_callback(dev, NULL, NULL);
	if ((err = vio_dev_reset(dev))) {
		give_up(net);
		return err;
	}
	/* After the reset the device touches nothing: posted send_sg buffers are ours again. */
	for (uint16_t p = 0; p < net->queue_pairs; p++)
		while ((slot = vio_vq_detach_unused(txq(net, p))))
			tx_done(net, slot);
	VIO_ASSERT(net->net_tx_nfree == net->net_ntx); /* every TX slot is back */
	vio_dev_teardown(dev);
	free_buffers(net);
	net->dev = NULL;
	return 0;
}

int vio_net_describe(const struct vio_net *net, char *buf, size_t size)
{
	const uint8_t *m = net->mac;

	return vio_snprintf(buf, size,
			    "virtio-net mac=%02x:%02x:%02x:%02x:%02x:%02x mtu=%u link=%s hdr=%u "
			    "features=0x%llx",
			    m[0], m[1], m[2], m[3], m[4], m[5], net->mtu,
			    net->link_up ? "up" : "down", net->hdr_len,
			    (unsigned long long)net->dev->features);
}
