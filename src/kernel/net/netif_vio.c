/*
 * netif_vio.c: lwIP on top of the vio virtio-net driver, one lwIP netif per device.
 *
 * The driver gives us raw Ethernet frames (include/vio/net.h); lwIP wants pbufs. How the
 * driver is wired up (its options, the one vio_net_poll per pass, who takes its frames) is
 * glue_net.c's; this file is what lwIP needs: net_stack_input takes a batch of frames in,
 * the netif's linkoutput sends, and net_stack_tx_done is the on_tx_done glue_net.c passes
 * to the driver. Neither direction copies the payload:
 *
 *  - Receive. vio_net_recv lends us the frame where the device wrote it, in the driver's RX
 *    buffers. Each segment becomes a "custom" pbuf (PBUF_REF) pointing into its buffer, and
 *    lwIP frees it whenever it is done with the data: right away for an ARP reply, much
 *    later for TCP data queued out of order. The custom free function gives the buffer back
 *    to the device with vio_net_rx_release. The driver bounds how many buffers we may hold
 *    (rx_hold_max) and drops frames beyond that, so lwIP cannot starve the device.
 *  - Transmit. A pbuf chain goes to vio_net_send_sg as one scatter-gather list, a segment per
 *    pbuf. The device reads the pbufs' memory until it is done, so we take a reference
 *    (pbuf_ref) and drop it when the driver hands the chain back through on_tx_done.
 *
 * The buffers lwIP frees go back to the ring without a doorbell each; the driver tells the
 * device of the whole batch once, when vio_net_recv runs dry or at the next vio_net_poll.
 *
 * on_tx_done is called from inside the driver (vio_net_poll, vio_net_send_sg). Dropping the
 * last reference there could free an RX pbuf, which calls vio_net_rx_release: back into the
 * driver while it is mid-call. So net_stack_tx_done only queues the chain; lwip_poll and
 * net_stack_input (and the send path, once the driver call has returned) free what is
 * queued.
 *
 * Checksums: with VIRTIO_NET_F_GUEST_CSUM the device marks frames whose TCP/UDP checksum it
 * verified (or that came from this host and were never summed), and lwIP skips that check
 * for them. With VIRTIO_NET_F_CSUM lwIP leaves TCP/UDP checksums to the device: we store the
 * pseudo-header sum in the checksum field and tell the device where to add the rest.
 *
 * Coalesced frames (GUEST_TSO4/6, GUEST_UFO: virtio 1.2 5.1.6.4). The host hands over up
 * to 64 KiB of TCP (or UDP) behind one header, across many RX buffers; lwIP takes them like
 * any frame, a custom pbuf per buffer. A pbuf chain's length is 16 bits, though, and the
 * Ethernet header plus 65535 bytes of IP is more. So a coalesced IPv4 frame is handed to
 * ip4_input from its IP header on, which is what ethernet_input does with a unicast IPv4
 * frame; one lwIP cannot take (IPv6, a VLAN tag, more than 65535 bytes of IP) is dropped
 * and counted in rx_gso_dropped, never cut short. Such a frame is always NEEDS_CSUM (the
 * data came from this host and is intact), so lwIP skips the TCP/UDP checksum and still
 * checks the IP header. lwIP ACKs every second segment, else after its 250 ms timer: one
 * 64 KiB segment is some 45 of the sender's, so net_tcp_inpacket makes lwIP ACK each
 * coalesced segment at once, as RFC 5681 4.2 asks (an ACK at least every second full-sized
 * segment); otherwise a sender with an odd number in flight waits a timer tick.
 *
 * Segments larger than the MSS (HOST_TSO4: virtio 1.2 5.1.6.2). lwIP 2.1 has no TSO of its
 * own; docs/design.md ("Network: segmentation offload with lwIP") says why we do it this way.
 * net_tcp_inpacket raises an established connection's pcb->mss, in whole multiples of its
 * real MSS (kept in the PCB's ext arg), to at most half its congestion window and at most
 * what a 64 KiB frame holds: lwIP then builds segments of up to 44 real ones. The netif's
 * MTU is the GSO limit, so lwIP's IP layer passes such a segment whole; vnetif_output
 * fragments anything else above the device's MTU with lwIP's own ip4_frag. The link output
 * sends a TCP frame with more payload than its connection's real MSS as VIO_NET_TX_GSO with
 * gso_size = that MSS, and the device cuts it up. Without HOST_TSO4 none of this happens.
 *
 * Everything here runs with interrupts off (net_stack_input, lwip_poll, the attach, the shell
 * commands), like every other driver call: there is one CPU's worth of lwIP and nothing else
 * touches it.
 *
 *   ./run-qemu.sh    then  `ip` / `ping 10.0.2.2` at the vio> prompt
 */
#include <kernel/arch.h>
#include <kernel/kernel.h>
#include <kernel/timer.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>
#include <vio/log.h>

#include <lwip/dhcp.h>
#include <lwip/etharp.h>
#include <lwip/init.h>
#include <lwip/ip4.h>
#include <lwip/ip4_addr.h>
#include <lwip/ip4_frag.h>
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/stats.h>
#include <lwip/tcp.h>
#include <lwip/timeouts.h>
#include <netif/ethernet.h>

#include "net_stack.h"

#define MAX_NETIFS 4
/* Frames fed to lwIP per device per poll: bounded, so one busy NIC cannot starve the rest. */
#define RX_BUDGET 64
/* Chains the driver has finished with, not yet freed: at most one per TX ring slot. */
#define TX_DONE_MAX (2 * VIO_NET_QUEUE_SIZE)
/* Sends refused for a full ring are retried this often, reaping completions in between. */
#define TX_RETRIES 64
/*
 * With TSO4: the largest IP datagram the netif takes (netif->mtu), so that a pbuf chain of it
 * with the Ethernet header fits lwIP's 16-bit length; and the most TCP payload one segment
 * carries, room left for IP and TCP headers with all their options.
 */
#define TSO_IP_MAX	(0xffff - SIZEOF_ETH_HDR)
#define TSO_PAYLOAD_MAX (TSO_IP_MAX - 2 * 60)
/* The PCB ext arg of a connection that does not go out through a TSO4 netif. */
#define TSO_NONE ((void *)~(uintptr_t)0)

struct vnetif {
	struct netif netif;
	struct vio_net *net;
	int unit;
	bool attached;
	bool link; /* last link state told to lwIP */
	bool dhcp;
	bool tx_csum;	    /* VIRTIO_NET_F_CSUM: the device finishes TCP/UDP checksums */
	bool rx_csum;	    /* VIRTIO_NET_F_GUEST_CSUM: the device vouches for marked frames */
	bool rx_gso;	    /* a receive segmentation offload: coalesced frames may come */
	bool tso4;	    /* lwIP sends TCP segments larger than the MSS (HOST_TSO4) */
	u16_t mtu;	    /* the device's MTU (netif->mtu is TSO_IP_MAX with tso4) */
	uint16_t gen_flags; /* NETIF_CHECKSUM_GEN_* lwIP must do itself */
	struct pbuf *tx_done[TX_DONE_MAX];
	unsigned n_tx_done;
	unsigned long tx_done_lost;
	unsigned long rx_gso_dropped; /* coalesced frames lwIP cannot take (see the top) */
};

static struct vnetif vnetifs[MAX_NETIFS];
static bool lwip_ready;
static u8_t tso_arg_id; /* the PCB ext arg holding a connection's real MSS */

/* One received segment, lent to lwIP. pc must come first: lwIP sees a struct pbuf. */
struct rx_pbuf {
	struct pbuf_custom pc;
	struct vnetif *vn;
	struct vio_net_rxbuf *buf;
};
LWIP_MEMPOOL_DECLARE(RX_PBUF, MAX_NETIFS *VIO_NET_QUEUE_SIZE, sizeof(struct rx_pbuf), "vio rx pbuf")

/* lwIP's clock, in milliseconds: timers only need it monotonic. */
u32_t sys_now(void)
{
	return (u32_t)(clock_ns() / 1000000);
}

/* --- receive ------------------------------------------------------------------------------ */

static void rx_pbuf_free(struct pbuf *p)
{
	struct rx_pbuf *rp = (struct rx_pbuf *)p;
	vio_net_rx_release(rp->vn->net, rp->buf);
	LWIP_MEMPOOL_FREE(RX_PBUF, rp);
}

/*
 * Wrap the frame's segments in a pbuf chain, the first `skip` bytes of the first segment
 * left out; on failure give every buffer back.
 */
static struct pbuf *frame_to_pbuf(struct vnetif *vn, const struct vio_net_frame *f, uint32_t skip)
{
	struct pbuf *head = NULL;
	for (unsigned i = 0; i < f->nsegs; i++) {
		struct rx_pbuf *rp = LWIP_MEMPOOL_ALLOC(RX_PBUF);
		if (!rp) {
			for (unsigned j = i; j < f->nsegs; j++)
				vio_net_rx_release(vn->net, f->seg[j].buf);
			if (head)
				pbuf_free(head);
			return NULL;
		}
		rp->pc.custom_free_function = rx_pbuf_free;
		rp->vn = vn;
		rp->buf = f->seg[i].buf;
		uint32_t off = i ? 0 : skip;
		u16_t len = (u16_t)(f->seg[i].len - off);
		struct pbuf *q = pbuf_alloced_custom(PBUF_RAW, len, PBUF_REF, &rp->pc,
						     f->seg[i].data + off, len);
		if (head)
			pbuf_cat(head, q);
		else
			head = q;
	}
	return head;
}

/*
 * A coalesced frame lwIP can take: IPv4 right behind the Ethernet header (in the first
 * segment, which with a receive offload is a page), and at most 65535 bytes from there on.
 */
static bool gso_frame_fits(const struct vio_net_frame *f)
{
	const uint8_t *d = f->seg[0].data;
	return f->seg[0].len > SIZEOF_ETH_HDR && d[12] == 0x08 && d[13] == 0x00 &&
	       f->len - SIZEOF_ETH_HDR <= 0xffff;
}

static void tx_drain(struct vnetif *vn);

static u16_t get16(const struct pbuf *p, u16_t off)
{
	return (u16_t)(pbuf_get_at(p, off) << 8 | pbuf_get_at(p, (u16_t)(off + 1)));
}

static void vnetif_rx(struct vnetif *vn)
{
	struct vio_net_frame f;
	for (int budget = 0; budget < RX_BUDGET; budget++) {
		if (vio_net_recv(vn->net, &f))
			return; /* VIO_EAGAIN: nothing more; ENOSPC/EIO: counted by the driver */
		bool gso = f.gso_type != VIRTIO_NET_HDR_GSO_NONE;
		if (gso && !gso_frame_fits(&f)) {
			vio_net_frame_release(vn->net, &f);
			vn->rx_gso_dropped++;
			LINK_STATS_INC(link.drop);
			continue;
		}
		struct pbuf *p = frame_to_pbuf(vn, &f, gso ? SIZEOF_ETH_HDR : 0);
		if (!p) {
			LINK_STATS_INC(link.memerr);
			continue;
		}
		LINK_STATS_INC(link.recv);
		/*
		 * The device checked (DATA_VALID) or never needed to check (NEEDS_CSUM: the
		 * sender is on this host) the TCP/UDP checksum: lwIP need not. The IP header
		 * and ICMP are never covered by the flag, so lwIP always checks those.
		 */
		uint16_t flags =
		    vn->gen_flags | NETIF_CHECKSUM_CHECK_IP | NETIF_CHECKSUM_CHECK_ICMP;
		if (!vn->rx_csum || !(f.flags & (VIO_NET_RX_CSUM_VALID | VIO_NET_RX_CSUM_PARTIAL)))
			flags |= NETIF_CHECKSUM_CHECK_TCP | NETIF_CHECKSUM_CHECK_UDP;
		NETIF_SET_CHECKSUM_CTRL(&vn->netif, flags);
		if (gso)
			ip4_input(p, &vn->netif); /* frees p, whatever becomes of it */
		else if (vn->netif.input(p, &vn->netif) != ERR_OK)
			pbuf_free(p);
		tx_drain(vn);
	}
}

static err_t vnetif_linkoutput(struct netif *netif, struct pbuf *p);

/* Does the connection leave through a netif with TSO4? */
static bool tso_route(const struct tcp_pcb *pcb)
{
	struct netif *n = pcb->netif_idx != NETIF_NO_INDEX
			      ? netif_get_by_index(pcb->netif_idx)
			      : ip_route(&pcb->local_ip, &pcb->remote_ip);
	return n && n->linkoutput == vnetif_linkoutput && ((struct vnetif *)n->state)->tso4;
}

/*
 * Let an established connection through a TSO4 netif build bigger segments: pcb->mss becomes
 * the largest multiple of the real MSS that is at most TSO_PAYLOAD_MAX and at most half the
 * congestion window, and only ever grows. Half the window: two such segments are always in
 * flight, so the ACK clock keeps going; only growing: a segment already queued is never
 * larger than pcb->mss, and lwIP's window checks and its RTO (cwnd = mss) always let it out.
 * Not during fast recovery, whose inflated cwnd is no measure of the path. lwIP itself keeps
 * segments within half the peer's largest window (tcp_write's mss_local).
 */
static void tso_grow_mss(struct tcp_pcb *pcb)
{
	void *arg = tcp_ext_arg_get(pcb, tso_arg_id);
	if (arg == TSO_NONE)
		return;
	if (!arg) {
		arg = tso_route(pcb) ? (void *)(uintptr_t)pcb->mss : TSO_NONE;
		tcp_ext_arg_set(pcb, tso_arg_id, arg);
		if (arg == TSO_NONE)
			return;
	}
	u32_t real = (u32_t)(uintptr_t)arg;
	u32_t want = LWIP_MIN(TSO_PAYLOAD_MAX, pcb->cwnd / 2) / real * real;
	if (want > pcb->mss)
		pcb->mss = (u16_t)want;
}

/* The real MSS of the connection a frame belongs to (0: none of ours with TSO). */
static u16_t tso_real_mss(const struct pbuf *p, u16_t ip, u16_t tcp)
{
	ip4_addr_t src, dst;
	pbuf_copy_partial(p, &src, 4, (u16_t)(ip + 12));
	pbuf_copy_partial(p, &dst, 4, (u16_t)(ip + 16));
	u16_t sport = get16(p, tcp), dport = get16(p, (u16_t)(tcp + 2));
	for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
		if (pcb->local_port == sport && pcb->remote_port == dport &&
		    ip4_addr_cmp(ip_2_ip4(&pcb->local_ip), &src) &&
		    ip4_addr_cmp(ip_2_ip4(&pcb->remote_ip), &dst)) {
			void *arg = tcp_ext_arg_get(pcb, tso_arg_id);
			return arg == TSO_NONE ? 0 : (u16_t)(uintptr_t)arg;
		}
	return 0;
}

/*
 * LWIP_HOOK_TCP_INPACKET_PCB (net_hooks.h). More data than the MSS we announce (TCP_MSS) in
 * one segment is several of the sender's, coalesced by the host: ACK it now. lwIP ACKs at
 * once when a segment in order finds TF_ACK_DELAY already set (tcp_ack in tcp_priv.h). And
 * with TSO4 the connection's segments grow (tso_grow_mss). A listening PCB is a smaller
 * struct: only its state is read.
 */
err_t net_tcp_inpacket(struct tcp_pcb *pcb, struct pbuf *p)
{
	enum tcp_state st = pcb->state;
	if (p->tot_len > TCP_MSS && (st == ESTABLISHED || st == FIN_WAIT_1 || st == FIN_WAIT_2))
		tcp_set_flags(pcb, TF_ACK_DELAY);
	if (st == ESTABLISHED && !(pcb->flags & TF_INFR))
		tso_grow_mss(pcb);
	return ERR_OK;
}

/* --- transmit ----------------------------------------------------------------------------- */

/* Free the chains the driver gave back (see the top of the file for why not in on_tx_done). */
static void tx_drain(struct vnetif *vn)
{
	while (vn->n_tx_done)
		pbuf_free(vn->tx_done[--vn->n_tx_done]);
}

void net_stack_tx_done(struct vio_net *net, void *cookie, void *arg)
{
	int unit = (int)(intptr_t)arg;
	(void)net;
	if (unit < 0 || unit >= MAX_NETIFS)
		return;
	struct vnetif *vn = &vnetifs[unit];
	if (!vn->attached)
		return; /* not our cookie: lwIP never sent on this device */
	if (vn->n_tx_done < TX_DONE_MAX)
		vn->tx_done[vn->n_tx_done++] = cookie;
	else
		vn->tx_done_lost++; /* cannot happen: one entry per ring slot, and we drain */
}

/*
 * VIRTIO_NET_F_CSUM (5.1.6.2): for an unfragmented IPv4 TCP or UDP frame, put the
 * pseudo-header sum (not complemented) in the checksum field and say where the device is to
 * sum from (the L4 header) and where to store the result. lwIP left the field 0 because its
 * netif has NETIF_CHECKSUM_GEN_TCP/UDP off. Returns false for any other frame: lwIP computed
 * everything else (IP, ICMP) itself.
 */
static bool csum_prepare(struct pbuf *p, struct vio_net_tx_opts *o)
{
	if (p->tot_len < SIZEOF_ETH_HDR + IP_HLEN || get16(p, 12) != ETHTYPE_IP)
		return false;
	u16_t ip = SIZEOF_ETH_HDR;
	u16_t ihl = (u16_t)((pbuf_get_at(p, ip) & 0x0f) * 4);
	u8_t proto = pbuf_get_at(p, (u16_t)(ip + 9));
	u16_t tot = get16(p, (u16_t)(ip + 2));
	if (ihl < IP_HLEN || (get16(p, (u16_t)(ip + 6)) & 0x3fff) || tot < ihl ||
	    ip + tot > p->tot_len)
		return false; /* a fragment's checksum covers the whole datagram: not ours here */
	u16_t off;
	if (proto == IP_PROTO_TCP)
		off = 16;
	else if (proto == IP_PROTO_UDP)
		off = 6;
	else
		return false;
	u16_t l4 = (u16_t)(ip + ihl), l4len = (u16_t)(tot - ihl);
	if (l4 + off + 2 > ip + tot)
		return false;
	u32_t sum = proto + l4len;
	for (u16_t a = 12; a < 20; a += 2)
		sum += get16(p, (u16_t)(ip + a)); /* source and destination addresses */
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	pbuf_put_at(p, (u16_t)(l4 + off), (u8_t)(sum >> 8));
	pbuf_put_at(p, (u16_t)(l4 + off + 1), (u8_t)sum);
	*o = (struct vio_net_tx_opts){
	    .flags = VIO_NET_TX_CSUM, .csum_start = l4, .csum_offset = off};
	return true;
}

/*
 * HOST_TSO4 (5.1.6.2): a TCP frame carrying more than its connection's real MSS goes out for
 * the device to cut into segments of that MSS, each with the headers (hdr_len bytes) copied
 * and fixed up. csum_prepare has put the pseudo-header sum over the whole segment's length
 * in the checksum field, which is what segmentation adjusts for each piece (as Linux's own
 * TSO frames carry). Returns false for any other frame.
 */
static bool tso_prepare(struct vnetif *vn, struct pbuf *p, struct vio_net_tx_opts *o)
{
	if (!vn->tso4 || p->tot_len <= SIZEOF_ETH_HDR + vn->mtu || o->csum_offset != 16)
		return false; /* not above the MTU, or not TCP */
	u16_t ip = SIZEOF_ETH_HDR, tcp = o->csum_start;
	u16_t thl = (u16_t)((pbuf_get_at(p, (u16_t)(tcp + 12)) >> 4) * 4);
	u16_t mss = tso_real_mss(p, ip, tcp);
	if (!mss || thl < TCP_HLEN || tcp + thl >= p->tot_len)
		return false;
	o->flags |= VIO_NET_TX_GSO;
	o->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	o->gso_size = mss;
	o->hdr_len = (u16_t)(tcp + thl);
	return true;
}

/* Post a scatter-gather list, retrying while the ring is full; the driver's error. */
static int post_sg(struct vnetif *vn, const struct vio_sg *sg, unsigned n, struct pbuf *cookie,
		   const struct vio_net_tx_opts *o)
{
	int err = vio_net_send_sg(vn->net, sg, n, cookie, o);
	for (int tries = 0; err == VIO_ENOSPC && tries < TX_RETRIES; tries++) {
		vio_net_poll(vn->net);
		err = vio_net_send_sg(vn->net, sg, n, cookie, o);
	}
	return err;
}

/*
 * A GSO frame in more pbufs than the driver takes segments (`iperf client` or httpd data in
 * many small pieces): one contiguous copy from lwIP's heap, freed when the device is done.
 */
static err_t send_flat(struct vnetif *vn, struct pbuf *p, const struct vio_net_tx_opts *o)
{
	struct pbuf *c = pbuf_clone(PBUF_RAW, PBUF_RAM, p);
	if (!c)
		return ERR_MEM;
	struct vio_sg sg = {c->payload, c->tot_len};
	if (post_sg(vn, &sg, 1, c, o)) {
		pbuf_free(c);
		return ERR_IF;
	}
	return ERR_OK;
}

/* A chain of more pbufs than the driver takes segments: flatten it (rare: lwIP's own frames
 * are one or two pbufs; an echoed, fragmented datagram might be more). */
static err_t send_copy(struct vnetif *vn, struct pbuf *p, const struct vio_net_tx_opts *o)
{
	static uint8_t frame[VIO_NET_MAX_MTU + VIO_NET_ETH_HLEN + VIO_NET_VLAN_HLEN];
	if (p->tot_len > sizeof(frame))
		return ERR_BUF;
	pbuf_copy_partial(p, frame, p->tot_len, 0);
	int err = vio_net_send(vn->net, frame, p->tot_len, o);
	for (int tries = 0; err == VIO_ENOSPC && tries < TX_RETRIES; tries++) {
		vio_net_poll(vn->net);
		err = vio_net_send(vn->net, frame, p->tot_len, o);
	}
	return err ? ERR_IF : ERR_OK;
}

static err_t vnetif_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct vnetif *vn = netif->state;
	struct vio_sg sg[VIO_NET_TX_MAX_SEGS];
	struct vio_net_tx_opts opts, *o = NULL;
	unsigned n = 0;
	err_t ret;

	if (vn->tx_csum && csum_prepare(p, &opts)) {
		o = &opts;
		tso_prepare(vn, p, &opts);
	}
	for (struct pbuf *q = p; q && n <= VIO_NET_TX_MAX_SEGS; q = q->next)
		if (q->len) {
			if (n < VIO_NET_TX_MAX_SEGS)
				sg[n] = (struct vio_sg){q->payload, q->len};
			n++;
		}
	if (n > VIO_NET_TX_MAX_SEGS) {
		ret = o && (o->flags & VIO_NET_TX_GSO) ? send_flat(vn, p, o) : send_copy(vn, p, o);
	} else {
		/* The device reads these pbufs until on_tx_done: keep them alive until then. */
		pbuf_ref(p);
		int err = post_sg(vn, sg, n, p, o);
		if (err)
			pbuf_free(p); /* never posted: on_tx_done will not come */
		ret = err ? ERR_IF : ERR_OK;
	}
	if (vn->n_tx_done > TX_DONE_MAX / 2)
		tx_drain(vn); /* the driver call is over: freeing is safe here */
	if (ret == ERR_OK)
		LINK_STATS_INC(link.xmit);
	else
		LINK_STATS_INC(link.drop);
	return ret;
}

/*
 * netif->output with TSO4. The netif's MTU is then TSO_IP_MAX, so that lwIP's IP layer hands
 * over a big TCP segment whole (linkoutput makes it a GSO frame); anything else above the
 * device's MTU (a large UDP datagram, an ICMP reply to a large ping) is fragmented here at
 * the device's MTU, by lwIP's own ip4_frag, which reads netif->mtu.
 */
static err_t vnetif_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *dest)
{
	struct vnetif *vn = netif->state;
	if (p->tot_len <= vn->mtu || IPH_PROTO((struct ip_hdr *)p->payload) == IP_PROTO_TCP)
		return etharp_output(netif, p, dest);
	netif->mtu = vn->mtu;
	err_t err = ip4_frag(p, netif, dest);
	netif->mtu = TSO_IP_MAX;
	return err;
}

/* --- the netif ----------------------------------------------------------------------------- */

static err_t vnetif_init(struct netif *netif)
{
	struct vnetif *vn = netif->state;
	netif->name[0] = 'e';
	netif->name[1] = 'n';
	netif->output = vn->tso4 ? vnetif_output : etharp_output;
	netif->linkoutput = vnetif_linkoutput;
	netif->mtu = vn->tso4 ? TSO_IP_MAX : vn->mtu;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, vn->net->mac, ETH_HWADDR_LEN);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	netif_set_hostname(netif, "vio");
	NETIF_SET_CHECKSUM_CTRL(
	    netif, NETIF_CHECKSUM_ENABLE_ALL &
		       ~(vn->tx_csum ? NETIF_CHECKSUM_GEN_TCP | NETIF_CHECKSUM_GEN_UDP : 0));
	return ERR_OK;
}

/* 255.255.255.0 -> 24 (the kernel links no libgcc, so no __builtin_popcount). */
int net_prefix_len(const ip4_addr_t *mask)
{
	int n = 0;
	for (u32_t m = ip4_addr_get_u32(mask); m; m &= m - 1)
		n++;
	return n;
}

/* "net0: 10.0.2.15/24 gw 10.0.2.2 (dhcp)", whenever the address changes. */
static void vnetif_status(struct netif *netif)
{
	struct vnetif *vn = netif->state;
	char ip[16], gw[20] = "";
	if (ip4_addr_isany_val(*netif_ip4_addr(netif)))
		return;
	ip4addr_ntoa_r(netif_ip4_addr(netif), ip, sizeof(ip));
	if (!ip4_addr_isany_val(*netif_ip4_gw(netif))) {
		memcpy(gw, " gw ", 4);
		ip4addr_ntoa_r(netif_ip4_gw(netif), gw + 4, sizeof(gw) - 4);
	}
	kprintf("net%d: %s/%d%s (%s)\n", vn->unit, ip, net_prefix_len(netif_ip4_netmask(netif)), gw,
		vn->dhcp ? "dhcp" : "static");
}

/*
 * vio.ip=dhcp, or vio.ip=a.b.c.d/len[,gw=a.b.c.d] (no /len: /24). Returns NULL, or what is
 * wrong with anything else; the device then falls back to DHCP.
 */
static const char *parse_ip_config(const char *s, ip4_addr_t *ip, ip4_addr_t *mask, ip4_addr_t *gw)
{
	char buf[64];
	strncpy(buf, s, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	char *gwp = strstr(buf, ",gw=");
	if (gwp) {
		*gwp = '\0';
		if (!ip4addr_aton(gwp + 4, gw))
			return "the gateway after ',gw=' is not an address a.b.c.d";
	}
	char *slash = strchr(buf, '/');
	int len = 24;
	if (slash) {
		/* One or two digits and nothing else: "/" alone is not /0, nor is "/+8" /8. */
		const char *d = slash + 1;
		size_t n = strlen(d);
		if (n < 1 || n > 2 || strspn(d, "0123456789") != n || (len = atoi(d)) > 32)
			return "the prefix length after '/' must be a number from 0 to 32";
		*slash = '\0';
	}
	if (!ip4addr_aton(buf, ip))
		return "the address is not a.b.c.d";
	ip4_addr_set_u32(mask, len ? lwip_htonl(0xffffffffu << (32 - len)) : 0);
	return NULL;
}

void net_stack_attach(struct vio_net *net, int unit)
{
	if (kernel_mode != MODE_SHELL || unit < 0 || unit >= MAX_NETIFS)
		return; /* self-tests and benchmarks drive the device raw */
	uint64_t irq = irq_save();
	if (!lwip_ready) {
		lwip_init();
		LWIP_MEMPOOL_INIT(RX_PBUF);
		tso_arg_id = tcp_ext_arg_alloc_id();
		lwip_ready = true;
	}
	struct vnetif *vn = &vnetifs[unit];
	*vn = (struct vnetif){.net = net, .unit = unit};
	vn->tx_csum = vio_dev_has_feature(net->dev, VIRTIO_NET_F_CSUM);
	vn->rx_csum = vio_dev_has_feature(net->dev, VIRTIO_NET_F_GUEST_CSUM);
	vn->rx_gso = net->max_rx_frame > net->max_frame;
	vn->tso4 = vio_dev_has_feature(net->dev, VIRTIO_NET_F_HOST_TSO4);
	vn->mtu = net->mtu;
	vn->gen_flags = NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_ICMP |
			(vn->tx_csum ? 0 : NETIF_CHECKSUM_GEN_TCP | NETIF_CHECKSUM_GEN_UDP);

	char key[16], conf[64] = "dhcp";
	ip4_addr_t ip, mask, gw;
	ip4_addr_set_zero(&ip);
	ip4_addr_set_zero(&mask);
	ip4_addr_set_zero(&gw);
	vio_snprintf(key, sizeof(key), unit ? "vio.ip%d" : "vio.ip", unit);
	cmdline_get(key, conf, sizeof(conf));
	vn->dhcp = !strcmp(conf, "dhcp");
	const char *bad = vn->dhcp ? NULL : parse_ip_config(conf, &ip, &mask, &gw);
	if (bad) {
		kprintf("net%d: %s=%s refused: %s (want dhcp or a.b.c.d/len[,gw=a.b.c.d]); "
			"asking DHCP instead\n",
			unit, key, conf, bad);
		vn->dhcp = true;
	}
	if (!netif_add(&vn->netif, &ip, &mask, &gw, vn, vnetif_init, ethernet_input)) {
		kprintf("net%d: lwIP refused the netif\n", unit);
		irq_restore(irq);
		return;
	}
	vn->attached = true;
	netif_set_status_callback(&vn->netif, vnetif_status);
	if (!netif_default)
		netif_set_default(&vn->netif);
	netif_set_up(&vn->netif);
	vn->link = net->link_up;
	if (vn->link)
		netif_set_link_up(&vn->netif);
	if (vn->dhcp) {
		kprintf("net%d: lwIP attached, asking DHCP for an address\n", unit);
		dhcp_start(&vn->netif);
	}
	irq_restore(irq);
}

void net_stack_input(int unit)
{
	if (unit < 0 || unit >= MAX_NETIFS || !vnetifs[unit].attached)
		return; /* self-tests and benchmarks drive the device raw */
	vnetif_rx(&vnetifs[unit]);
}

unsigned net_stack_mtu(const struct netif *netif)
{
	if (netif->linkoutput != vnetif_linkoutput)
		return netif->mtu;
	return ((const struct vnetif *)netif->state)->mtu;
}

void net_stack_print_offload(void)
{
	for (int i = 0; i < MAX_NETIFS; i++) {
		const struct vnetif *vn = &vnetifs[i];
		if (!vn->attached)
			continue;
		const struct vio_net_stats *s = &vn->net->stats;
		kprintf("  en%u    segmentation offload: receive %s, %llu coalesced frames in, "
			"%lu dropped; transmit %s, %llu GSO frames out\n",
			vn->netif.num, vn->rx_gso ? "on" : "off", (unsigned long long)s->rx_gso,
			vn->rx_gso_dropped, vn->tso4 ? "on" : "off", (unsigned long long)s->tx_gso);
	}
}

void lwip_poll(void)
{
	if (!lwip_ready)
		return;
	uint64_t irq = irq_save();
	for (int i = 0; i < MAX_NETIFS; i++) {
		struct vnetif *vn = &vnetifs[i];
		if (!vn->attached)
			continue;
		/* The driver re-reads the link on its own (config interrupt, or polling): follow
		 * it here, in thread context, where lwIP may be called. */
		if (vn->net->link_up != vn->link) {
			vn->link = vn->net->link_up;
			if (vn->link)
				netif_set_link_up(&vn->netif);
			else
				netif_set_link_down(&vn->netif);
		}
		tx_drain(vn);
	}
	sys_check_timeouts();
	irq_restore(irq);
}
