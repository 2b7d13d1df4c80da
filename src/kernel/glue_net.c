/*
 * glue_net.c: how this kernel drives a virtio-net device (see include/vio/net.h). It is the
 * one place that wires the driver to the rest of the kernel: the options each device gets
 * (link messages, and lwIP's on_tx_done), the one vio_net_poll of each pass of the main
 * loop, and who takes the frames received: lwIP (net/netif_vio.c) or the frame echo.
 *
 * This kernel polls, as include/vio/net.h's worked example: devices_poll calls net_service
 * once per pass and the shell halts until the next interrupt, so the driver's on_irq stays
 * NULL (any interrupt ends the halt). One pass is
 *
 *	vio_net_poll      reap TX (lwIP's chains come back through on_tx_done), tell the device
 *	                  of the RX buffers lwIP gave back since the last pass
 *	net_stack_input   received frames to lwIP, a bounded batch; or, with the echo on,
 *	net_echo_service  each frame sent back with its MAC addresses swapped
 *
 * The frame echo is what the network tests use: `net echo net0 on` takes the device's
 * received frames away from lwIP (one consumer of RX at a time), so that a host program can
 * check every byte of what comes back.
 *
 *   ./run-qemu.sh    then at the shell: net echo net0 on
 *
 * tests/qemu/scn_net.py does the same on a -netdev dgram backend, sends frames through it
 * and checks each one that comes back.
 *
 * `vio.net.pairs=N` on the kernel command line opens every NIC with N queue pairs (with
 * VIRTIO_NET_F_MQ: QEMU's -netdev tap,queues=N and -device virtio-net-pci,mq=on). This kernel
 * has one CPU, so it spreads flows as an SMP embedder would, to prove the pairs: the device
 * steers each received flow to a pair, the echo sends each frame on the TX queue of its flow
 * (tests/qemu/scn_net_mq.py). `vio.net.rxbuf=BYTES` sets the RX buffer size with MRG_RXBUF:
 * below the frame size, frames span buffers (tests/qemu/scn_net_jumbo.py).
 *
 * `vio.net.rss=on` asks for receive-side scaling and hash report (VIRTIO_NET_F_RSS,
 * VIRTIO_NET_F_HASH_REPORT: QEMU's virtio-net-pci rss=on, hash=on) and, once the NIC is up,
 * configures them (net_rss_start): the IPv4/IPv6 TCP/UDP hash types the device supports, the
 * key below, and an indirection table of the device's length whose entry i is pair
 * i % queue_pairs, so that flows spread evenly; frames hashed by none go to pair 0. With hash
 * report alone (rss=off) only the types and the key are set. `net echo <dev> report` then
 * writes, into the last 8 bytes of each frame it sends back, the pair it came in on, the hash
 * report and the hash value (big-endian 16, 16 and 32 bits), for a host to check against its
 * own Toeplitz hash (tests/qemu/scn_net_rss.py).
 *
 * Segmentation offload (virtio 1.2 5.1.6.2, 5.1.6.4): by default every NIC takes what QEMU
 * offers of GUEST_TSO4/6, GUEST_ECN, GUEST_UFO (the host hands over coalesced TCP segments of
 * up to 64 KiB) and HOST_TSO4/6, HOST_ECN (lwIP hands the device 64 KiB segments to cut);
 * net/netif_vio.c is how lwIP uses them. `vio.net.offload=off` negotiates none of them, for
 * comparison: lwIP then sends and receives MTU-sized segments only; `vio.net.rxbuf=` turns
 * the receive ones off (see offloads_off). The frame echo never sends a coalesced frame
 * back: it is larger than the echo's MTU-sized buffer, so the echo drops it and counts it
 * (`net echo <dev> off` says how many; the echo's peers send raw frames, which the host
 * never coalesces).
 */
#include <kernel/kernel.h>
#include <kernel/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>

#include "glue.h"
#include "net/net_stack.h"

static bool net_echo[MAX_PER_DRIVER];
static bool net_echo_tell[MAX_PER_DRIVER]; /* the echo writes the pair and hash in */
static uint64_t net_echo_too_big[MAX_PER_DRIVER]; /* coalesced frames it could not send back */

uint64_t net_echo_enable(int unit, bool on)
{
	if (unit < 0 || unit >= n_net)
		return 0;
	uint64_t dropped = net_echo_too_big[unit];
	net_echo[unit] = on;
	net_echo_too_big[unit] = 0;
	return dropped;
}

void net_echo_report(int unit, bool on)
{
	if (unit >= 0 && unit < n_net)
		net_echo_tell[unit] = on;
}

/*
 * The RSS key of vio.net.rss=on: the example key of Microsoft's RSS specification
 * ("Verifying the RSS Hash Calculation"), whose published test vectors let anyone check a
 * Toeplitz implementation against it. 40 bytes, the least a device must take (5.1.4).
 */
static const uint8_t net_rss_key[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
					0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
					0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
					0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

static bool cmdline_on(const char *key)
{
	char v[8];
	return cmdline_get(key, v, sizeof(v)) && !strcmp(v, "on");
}

int net_rss_start(int unit)
{
	struct vio_net *net = &nets[unit];
	static uint16_t table[VIO_NET_RSS_MAX_TABLE];
	const uint32_t types = VIRTIO_NET_RSS_HASH_TYPE_IPv4 | VIRTIO_NET_RSS_HASH_TYPE_TCPv4 |
			       VIRTIO_NET_RSS_HASH_TYPE_UDPv4 | VIRTIO_NET_RSS_HASH_TYPE_IPv6 |
			       VIRTIO_NET_RSS_HASH_TYPE_TCPv6 | VIRTIO_NET_RSS_HASH_TYPE_UDPv6;

	if (!cmdline_on("vio.net.rss"))
		return 0;
	struct vio_net_rss rss = {.hash_types = types & net->rss_hash_types_supported,
				  .key = net_rss_key,
				  .key_len = sizeof(net_rss_key)};
	if (vio_dev_has_feature(net->dev, VIRTIO_NET_F_RSS)) {
		rss.table = table;
		rss.table_len = net->rss_max_table_len;
		/* The largest power of two the device takes: 5.1.6.5.6.4 wants one. */
		while (rss.table_len & (rss.table_len - 1))
			rss.table_len &= (uint16_t)(rss.table_len - 1);
		for (uint16_t i = 0; i < rss.table_len; i++)
			table[i] = i % net->queue_pairs;
	}
	int err = vio_net_set_rss(net, &rss);
	if (err)
		kprintf("net%d: RSS not configured: %s\n", unit, vio_strerror(err));
	else
		kprintf("net%d: rss types 0x%x key %u table %u over %u pair(s)\n", unit,
			(unsigned)net->rss_hash_types, net->rss_key_len, net->rss_table_len,
			net->queue_pairs);
	return err;
}

/* Interrupt context (a config change), or inside vio_net_poll without interrupts. */
static void net_link(struct vio_net *net, bool up, void *arg)
{
	(void)net;
	kprintf("net%d: link %s\n", (int)(intptr_t)arg, up ? "up" : "down");
}

/*
 * The device asks us to announce ourselves (VIRTIO_NET_F_GUEST_ANNOUNCE: QMP announce-self,
 * or a migration): a gratuitous ARP, from our MAC and for our address, to everyone. The
 * address is the static one of vio.ip= (vio.ip<unit>= past the first NIC); 0.0.0.0 with
 * DHCP.
 */
static void net_announce(struct vio_net *net, void *arg)
{
	int unit = (int)(intptr_t)arg;
	char key[16], v[64];
	uint8_t f[60] = {0}, ip[4] = {0};

	snprintf(key, sizeof(key), unit ? "vio.ip%d" : "vio.ip", unit);
	if (cmdline_get(key, v, sizeof(v))) {
		char *p = v;
		for (int i = 0; i < 4 && *p >= '0' && *p <= '9'; i++) {
			ip[i] = (uint8_t)strtoul(p, &p, 10);
			if (*p == '.')
				p++;
		}
	}
	memset(f, 0xff, 6);
	memcpy(f + 6, net->mac, 6);
	f[12] = 0x08, f[13] = 0x06;	    /* ARP */
	f[15] = 1, f[16] = 0x08, f[18] = 6; /* Ethernet, IPv4 */
	f[19] = 4, f[21] = 1;		    /* address lengths, request */
	memcpy(f + 22, net->mac, 6);	    /* sender: us */
	memcpy(f + 28, ip, 4);
	memcpy(f + 38, ip, 4); /* target: the same address, as an announcement does */
	vio_net_send(net, f, sizeof(f), NULL);
	kprintf("net%d: announced\n", unit);
}

/* A number from the command line (0 when absent): vio.net.pairs=N, vio.net.rxbuf=BYTES. */
static uint16_t cmdline_u16(const char *key)
{
	char v[8];
	return cmdline_get(key, v, sizeof(v)) ? (uint16_t)strtoul(v, NULL, 0) : 0;
}

/* vio.net.offload=off: no segmentation offload either way (checksum offload stays). */
static bool offload_off(void)
{
	char v[8];
	return cmdline_get("vio.net.offload", v, sizeof(v)) && !strcmp(v, "off");
}

#define RECEIVE_OFFLOADS                                                                           \
	(VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |               \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO))

#define SEGMENTATION_OFFLOADS                                                                      \
	(RECEIVE_OFFLOADS | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |                                   \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN))

/*
 * RX buffers per queue. With a receive offload they are pages and a 64 KiB frame takes 17 of
 * them: 128 keep several coalesced frames queued while lwIP works through one, and let lwIP
 * hold half (rx_hold_max's default) for out-of-order data, about its 256 KiB window.
 */
#define RX_BUFFERS_OFFLOAD 128

/*
 * The segmentation offloads not to negotiate: all with vio.net.offload=off; the receive ones
 * when vio.net.rxbuf= asks for a buffer size, since the driver raises the size until a
 * 64 KiB frame fits in VIO_NET_RX_MAX_SEGS buffers, and the size asked for would be lost.
 */
static uint64_t offloads_off(void)
{
	if (offload_off())
		return SEGMENTATION_OFFLOADS;
	return cmdline_u16("vio.net.rxbuf") ? RECEIVE_OFFLOADS : 0;
}

struct vio_net_opts net_opts(int unit)
{
	uint64_t off = offloads_off();
	return (struct vio_net_opts){
	    .queue_pairs = cmdline_u16("vio.net.pairs"),
	    .rss = cmdline_on("vio.net.rss"),
	    .hash_report = cmdline_on("vio.net.rss"),
	    .rx_buf_size = cmdline_u16("vio.net.rxbuf"), /* smaller than a frame: they span */
	    .rx_buffers = off & RECEIVE_OFFLOADS ? 0 : RX_BUFFERS_OFFLOAD,
	    .disable_features = off,
	    .mac_seed = random_u64() | 1, /* a NIC without a MAC gets a random one */
	    .on_link = net_link,
	    .on_announce = net_announce,
	    /* Under TCG on a busy host QEMU may take more than the 1 ms default to answer a
	     * control command; the shell can wait. */
	    .timeout_ns = 100000000ull,
	    .on_tx_done = net_stack_tx_done,
	    .arg = (void *)(intptr_t)unit,
	};
}

/*
 * A frame's flow: FNV-1a over what follows the Ethernet header up to the ports of an IPv4
 * UDP/TCP header (bytes 14..37), so that one flow always takes the same TX queue.
 */
static uint32_t flow_hash(const uint8_t *frame, int len)
{
	uint32_t h = 2166136261u;
	for (int i = VIO_NET_ETH_HLEN; i < len && i < 38; i++)
		h = (h ^ frame[i]) * 16777619u;
	return h;
}

/* Big-endian, as the host reads it from the frame. */
static void put_be(uint8_t *p, uint32_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* One received frame copied into `to`; its length, 0 for one too large, or < 0 for none. */
static int net_echo_take(struct vio_net *net, uint8_t *to, uint32_t size, struct vio_net_frame *f)
{
	int err = vio_net_recv(net, f);
	if (err)
		return err;
	uint32_t at = 0;
	for (uint16_t i = 0; f->len <= size && i < f->nsegs; at += f->seg[i].len, i++)
		memcpy(to + at, f->seg[i].data, f->seg[i].len);
	vio_net_frame_release(net, f);
	return (int)at;
}

/*
 * Send every received frame back with source and destination swapped, on its flow's queue:
 * the device's hash when it reports one (what a stack would use), else our own. With the
 * report on, the frame's last 8 bytes become its pair, hash report and hash value.
 */
static void net_echo_service(struct vio_net *net, int unit)
{
	static uint8_t frame[VIO_NET_MAX_MTU + VIO_NET_ETH_HLEN + VIO_NET_VLAN_HLEN];
	struct vio_net_frame f;
	for (int budget = 0; budget < 64; budget++) {
		int n = net_echo_take(net, frame, sizeof(frame), &f);
		if (n < 0)
			return;
		if (n < VIO_NET_ETH_HLEN) {
			net_echo_too_big[unit] += n == 0;
			continue;
		}
		uint8_t tmp[6];
		memcpy(tmp, frame, 6);
		memcpy(frame, frame + 6, 6);
		memcpy(frame + 6, tmp, 6);
		if (net_echo_tell[unit] && n >= VIO_NET_ETH_HLEN + 8) {
			put_be(frame + n - 8, f.pair, 2);
			put_be(frame + n - 6, f.hash_report, 2);
			put_be(frame + n - 4, f.hash_value, 4);
		}
		struct vio_net_tx_opts o = {.flow =
						f.hash_report ? f.hash_value : flow_hash(frame, n)};
		for (int tries = 0; vio_net_send(net, frame, (uint32_t)n, &o) == VIO_ENOSPC;
		     tries++) {
			if (tries > 1000)
				return; /* counted by the driver as tx_full */
			vio_net_poll(net);
		}
	}
}

void net_service(int unit)
{
	struct vio_net *net = &nets[unit];

	vio_net_poll(net);
	if (net_echo[unit])
		net_echo_service(net, unit);
	else
		net_stack_input(unit);
}
