/*
 * cmd_ip.c: the shell's network commands, on lwIP's raw (callback) API.
 *
 *   ip                 addresses, routes and link of every netif
 *   ping <ip> [count]  ICMP echo, one a second, with round-trip times (Ctrl-C stops it)
 *   udp echo <port>    send every datagram back to where it came from
 *   tcp echo <port>    send every byte of each connection back on it, in order
 *   iperf server       lwIP's iperf 2 server (lwiperf) on port 5001
 *   iperf client <ip> [seconds]  send to an iperf 2 server (`iperf -s`) for 10 s or <seconds>
 *                      (Ctrl-C stops it)
 *   httpd start        lwIP's web server on port 80 (pages: httpd_fs.c)
 *   arp                the ARP cache
 *   netstat            TCP/UDP endpoints and lwIP's counters
 *
 * lwIP has no locks (NO_SYS): it must never run from two places at once. Each command calls
 * it with interrupts off (DEV_DO, as for a driver), as lwip_poll does, and a command that
 * waits (ping) lets the stack run by calling devices_poll() between its own steps, like the
 * idle shell does, and stops when Ctrl-C is typed (shell_interrupted).
 */
#include <kernel/arch.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/shell.h>
#include <kernel/timer.h>
#include <string.h>

#include <lwip/apps/httpd.h>
#include <lwip/apps/lwiperf.h>
#include <lwip/dhcp.h>
#include <lwip/etharp.h>
#include <lwip/icmp.h>
#include <lwip/inet_chksum.h>
#include <lwip/ip4_addr.h>
#include <lwip/netif.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/prot/ip4.h>
#include <lwip/raw.h>
#include <lwip/stats.h>
#include <lwip/tcp.h>
#include <lwip/udp.h>

#include "net_stack.h"

static bool have_stack(void)
{
	if (netif_list)
		return true;
	kprintf("no network: no virtio-net device, or not in vio.mode=shell\n");
	return false;
}

/* --- ip ------------------------------------------------------------------------------------ */

static void print_netif(struct netif *n)
{
	char ip[16], mask[16], gw[16];
	ip4addr_ntoa_r(netif_ip4_addr(n), ip, sizeof(ip));
	ip4addr_ntoa_r(netif_ip4_netmask(n), mask, sizeof(mask));
	ip4addr_ntoa_r(netif_ip4_gw(n), gw, sizeof(gw));
	int len = net_prefix_len(netif_ip4_netmask(n));
	const uint8_t *m = n->hwaddr;
	kprintf("%c%c%u: link %s, mtu %u, mac %02x:%02x:%02x:%02x:%02x:%02x\n", n->name[0],
		n->name[1], n->num, netif_is_link_up(n) ? "up" : "down", net_stack_mtu(n), m[0],
		m[1], m[2], m[3], m[4], m[5]);
	kprintf("    inet %s/%d (netmask %s)%s\n", ip, len, mask,
		dhcp_supplied_address(n) ? " dhcp" : "");
	if (!ip4_addr_isany_val(*netif_ip4_addr(n))) {
		ip4_addr_t net;
		ip4_addr_get_network(&net, netif_ip4_addr(n), netif_ip4_netmask(n));
		kprintf("    route %s/%d dev %c%c%u\n", ip4addr_ntoa(&net), len, n->name[0],
			n->name[1], n->num);
	}
	if (n == netif_default && !ip4_addr_isany_val(*netif_ip4_gw(n)))
		kprintf("    route default via %s dev %c%c%u\n", gw, n->name[0], n->name[1],
			n->num);
}

static int cmd_ip(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	if (!have_stack())
		return -2;
	/* The driver may have seen the link change since the last pass of the main loop (the
	 * "netN: link up" line comes from its interrupt): have lwIP follow it before we print. */
	lwip_poll();
	DEV_DO(for (struct netif *n = netif_list; n; n = n->next) print_netif(n));
	return 0;
}

/* --- ping ---------------------------------------------------------------------------------- */

#define PING_DATA	56 /* bytes after the ICMP header, as Linux's ping */
#define PING_TIMEOUT_NS 1000000000ull
#define PING_MAX_COUNT	3600 /* an hour at one a second */
#define IPERF_MAX_SECS	3600

struct ping {
	ip_addr_t target;
	u16_t id, seq;
	uint64_t sent_ns;
	bool got;
	uint64_t rtt_ns;
	u8_t ttl;
	u16_t bytes;
};

/* Raw PCBs see every ICMP packet (IP header included) before icmp_input: take only our
 * replies (return 1: eaten) and leave the rest, e.g. echo requests to answer, to lwIP. */
static u8_t ping_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr)
{
	struct ping *ps = arg;
	struct icmp_echo_hdr ie;
	(void)pcb;
	if (p->tot_len < IP_HLEN + sizeof(ie))
		return 0;
	u16_t ihl = (u16_t)((pbuf_get_at(p, 0) & 0x0f) * 4);
	if (pbuf_copy_partial(p, &ie, sizeof(ie), ihl) != sizeof(ie) || ie.type != ICMP_ER ||
	    ie.id != lwip_htons(ps->id) || ie.seqno != lwip_htons(ps->seq) ||
	    !ip_addr_cmp(addr, &ps->target))
		return 0;
	ps->got = true;
	ps->rtt_ns = clock_ns() - ps->sent_ns;
	ps->ttl = pbuf_get_at(p, 8);
	ps->bytes = (u16_t)(p->tot_len - ihl);
	pbuf_free(p);
	return 1;
}

static bool ping_send(struct raw_pcb *pcb, struct ping *ps)
{
	struct pbuf *p = pbuf_alloc(PBUF_IP, sizeof(struct icmp_echo_hdr) + PING_DATA, PBUF_RAM);
	if (!p)
		return false;
	struct icmp_echo_hdr *ie = p->payload;
	ICMPH_TYPE_SET(ie, ICMP_ECHO);
	ICMPH_CODE_SET(ie, 0);
	ie->id = lwip_htons(ps->id);
	ie->seqno = lwip_htons(ps->seq);
	ie->chksum = 0;
	uint8_t *data = (uint8_t *)(ie + 1);
	for (int i = 0; i < PING_DATA; i++)
		data[i] = (uint8_t)i;
	ie->chksum = inet_chksum(ie, p->len); /* raw PCBs send what we give them, as is */
	ps->got = false;
	ps->sent_ns = clock_ns();
	err_t err = raw_sendto(pcb, p, &ps->target);
	pbuf_free(p);
	return err == ERR_OK;
}

/* Let the stack run until `*flag` or `deadline` (clock_ns); interrupts wake the hlt. Returns
 * false, at once, when Ctrl-C is typed. */
static bool wait_for(volatile bool *flag, uint64_t deadline)
{
	while (!*flag && clock_ns() < deadline) {
		if (shell_interrupted())
			return false;
		devices_poll();
		if (!*flag)
			hlt();
	}
	return true;
}

static int cmd_ping(int argc, char **argv)
{
	static u16_t next_id = 0x7600;
	struct ping ps = {.id = next_id++};
	uint64_t count = 4;
	if (argc < 2 || argc > 3 || !ipaddr_aton(argv[1], &ps.target) ||
	    (argc == 3 && !parse_u64(argv[2], &count)))
		return -1;
	if (count == 0 || count > PING_MAX_COUNT) {
		kprintf("ping: the count must be 1 to %d (one a second; Ctrl-C stops ping early)\n",
			PING_MAX_COUNT);
		return -2;
	}
	if (!have_stack())
		return -2;
	struct raw_pcb *pcb;
	DEV_DO(pcb = raw_new(IP_PROTO_ICMP));
	if (!pcb) {
		kprintf("ping: no raw PCB free\n");
		return -2;
	}
	DEV_DO(raw_recv(pcb, ping_recv, &ps));
	kprintf("PING %s: %d data bytes\n", argv[1], PING_DATA);
	uint64_t sent = 0, received = 0, min = UINT64_MAX, max = 0, sum = 0;
	bool stopped = false;
	for (uint64_t i = 0; i < count && !stopped; i++) {
		uint64_t start = clock_ns();
		ps.seq = (u16_t)(i + 1);
		bool ok;
		DEV_DO(ok = ping_send(pcb, &ps));
		if (!ok) {
			kprintf("ping: send failed (no route, or out of memory)\n");
		} else {
			sent++;
			stopped = !wait_for(&ps.got, start + PING_TIMEOUT_NS);
			if (ps.got) {
				uint64_t us = ps.rtt_ns / 1000;
				kprintf(
				    "%u bytes from %s: icmp_seq=%u ttl=%u time=%llu.%03llu ms\n",
				    ps.bytes, argv[1], ps.seq, ps.ttl,
				    (unsigned long long)(us / 1000),
				    (unsigned long long)(us % 1000));
				received++;
				sum += ps.rtt_ns;
				min = ps.rtt_ns < min ? ps.rtt_ns : min;
				max = ps.rtt_ns > max ? ps.rtt_ns : max;
			} else if (!stopped) {
				kprintf("no reply for icmp_seq=%u\n", ps.seq);
			}
		}
		/* One a second, as ping does: a late reply must not count for the next seq. */
		if (i + 1 < count && !stopped) {
			bool never = false;
			stopped = !wait_for(&never, start + PING_TIMEOUT_NS);
		}
	}
	DEV_DO(raw_remove(pcb));
	kprintf("%llu packets transmitted, %llu received, %llu%% packet loss\n",
		(unsigned long long)sent, (unsigned long long)received,
		(unsigned long long)(sent ? (sent - received) * 100 / sent : 0));
	if (received)
		kprintf(
		    "rtt min/avg/max = %llu.%03llu/%llu.%03llu/%llu.%03llu ms\n",
		    (unsigned long long)(min / 1000000), (unsigned long long)(min / 1000 % 1000),
		    (unsigned long long)(sum / received / 1000000),
		    (unsigned long long)(sum / received / 1000 % 1000),
		    (unsigned long long)(max / 1000000), (unsigned long long)(max / 1000 % 1000));
	return 0;
}

/* --- udp echo ------------------------------------------------------------------------------- */

static unsigned long udp_echoed;

/* `udp echo <port>`, `tcp echo <port>`: the port, or -1 for bad usage, -2 for no stack. */
static int echo_port(int argc, char **argv, uint64_t *port)
{
	if (argc != 3 || strcmp(argv[1], "echo") || !parse_u64(argv[2], port) || !*port ||
	    *port > 65535)
		return -1;
	return have_stack() ? 0 : -2;
}

/* The datagram goes back as it came: lwIP puts a new header pbuf in front of the received
 * one, so the payload is sent from the RX buffer it arrived in. */
static void udp_echo_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
			  u16_t port)
{
	(void)arg;
	if (udp_sendto(pcb, p, addr, port) == ERR_OK)
		udp_echoed++;
	pbuf_free(p);
}

static int cmd_udp(int argc, char **argv)
{
	uint64_t port;
	int bad = echo_port(argc, argv, &port);
	if (bad)
		return bad;
	struct udp_pcb *pcb;
	err_t err = ERR_MEM;
	DEV_DO(if ((pcb = udp_new())) {
		if ((err = udp_bind(pcb, IP_ANY_TYPE, (u16_t)port)) == ERR_OK)
			udp_recv(pcb, udp_echo_recv, NULL);
		else
			udp_remove(pcb);
	});
	if (err) {
		kprintf("udp: cannot listen on port %llu: %s\n", (unsigned long long)port,
			lwip_strerr(err));
		return -2;
	}
	kprintf("udp: echo on port %llu\n", (unsigned long long)port);
	return 0;
}

/* --- tcp echo ------------------------------------------------------------------------------ */

/*
 * Every byte a connection brings is written back on it. What arrives is copied at once into
 * the connection's ring and its pbufs freed: holding them would hold the driver's RX buffers,
 * and a caller holding too many makes the driver drop frames, the peer's ACKs among them,
 * which are what frees our send buffer. The ring is drained into the send buffer as it has
 * room, and only then is the data acknowledged to the peer's window (tcp_recved): the peer
 * never has more than TCP_WND unacknowledged, so a ring of TCP_WND never overflows.
 */
#define TCP_ECHO_CONNS 2
#define TCP_ECHO_RING  TCP_WND

struct tcp_echo {
	struct tcp_pcb *pcb;
	u32_t head, count; /* bytes in ring, oldest at head */
	bool closing;	   /* the peer closed: close once the ring is written */
	u8_t ring[TCP_ECHO_RING];
};

static struct tcp_echo tcp_echoes[TCP_ECHO_CONNS];

static void tcp_echo_close(struct tcp_echo *e)
{
	struct tcp_pcb *pcb = e->pcb;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	e->pcb = NULL;
	if (tcp_close(pcb) != ERR_OK)
		tcp_abort(pcb);
}

/* Write what the send buffer takes from the ring, in order. */
static void tcp_echo_flush(struct tcp_echo *e)
{
	while (e->count) {
		u32_t n = TCP_ECHO_RING - e->head; /* up to the ring's end */
		if (n > e->count)
			n = e->count;
		if (n > tcp_sndbuf(e->pcb))
			n = tcp_sndbuf(e->pcb);
		if (n > 0xffff)
			n = 0xffff;
		if (!n || tcp_write(e->pcb, e->ring + e->head, (u16_t)n,
				    TCP_WRITE_FLAG_COPY | TCP_WRITE_FLAG_MORE) != ERR_OK)
			break; /* no room, or out of segments or heap: the next ACK frees some */
		tcp_recved(e->pcb, (u16_t)n);
		e->head = (e->head + n) % TCP_ECHO_RING;
		e->count -= n;
	}
	tcp_output(e->pcb);
	if (e->closing && !e->count)
		tcp_echo_close(e);
}

static err_t tcp_echo_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct tcp_echo *e = arg;
	(void)pcb, (void)err;
	if (!p) {
		e->closing = true;
		tcp_echo_flush(e);
		return ERR_OK;
	}
	if (p->tot_len > TCP_ECHO_RING - e->count)
		return ERR_MEM; /* beyond the window we offered: lwIP offers it again later */
	u32_t tail = (e->head + e->count) % TCP_ECHO_RING;
	u16_t first = (u16_t)LWIP_MIN(p->tot_len, TCP_ECHO_RING - tail);
	pbuf_copy_partial(p, e->ring + tail, first, 0);
	pbuf_copy_partial(p, e->ring, (u16_t)(p->tot_len - first), first);
	e->count += p->tot_len;
	pbuf_free(p);
	tcp_echo_flush(e);
	return ERR_OK;
}

static err_t tcp_echo_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)pcb, (void)len;
	tcp_echo_flush(arg);
	return ERR_OK;
}

static err_t tcp_echo_poll(void *arg, struct tcp_pcb *pcb)
{
	(void)pcb;
	tcp_echo_flush(arg);
	return ERR_OK;
}

static void tcp_echo_err(void *arg, err_t err)
{
	struct tcp_echo *e = arg;
	(void)err;
	e->pcb = NULL; /* lwIP has freed it */
}

static err_t tcp_echo_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	for (int i = 0; i < TCP_ECHO_CONNS; i++) {
		struct tcp_echo *e = &tcp_echoes[i];
		if (e->pcb)
			continue;
		e->pcb = pcb;
		e->head = e->count = 0;
		e->closing = false;
		tcp_arg(pcb, e);
		tcp_recv(pcb, tcp_echo_recv);
		tcp_sent(pcb, tcp_echo_sent);
		tcp_err(pcb, tcp_echo_err);
		tcp_poll(pcb, tcp_echo_poll, 1);
		return ERR_OK;
	}
	tcp_abort(pcb); /* every slot busy: refuse with a reset */
	return ERR_ABRT;
}

static int cmd_tcp(int argc, char **argv)
{
	uint64_t port;
	int bad = echo_port(argc, argv, &port);
	if (bad)
		return bad;
	struct tcp_pcb *pcb, *l = NULL;
	err_t err = ERR_MEM;
	DEV_DO(if ((pcb = tcp_new())) {
		if ((err = tcp_bind(pcb, IP_ANY_TYPE, (u16_t)port)) == ERR_OK &&
		    (l = tcp_listen(pcb)))
			tcp_accept(l, tcp_echo_accept);
		else
			tcp_close(pcb);
	});
	if (!l) {
		kprintf("tcp: cannot listen on port %llu: %s\n", (unsigned long long)port,
			lwip_strerr(err ? err : ERR_MEM));
		return -2;
	}
	kprintf("tcp: echo on port %llu\n", (unsigned long long)port);
	return 0;
}

/* --- iperf, httpd ------------------------------------------------------------------------- */

static void iperf_report(void *arg, enum lwiperf_report_type type, const ip_addr_t *local,
			 u16_t local_port, const ip_addr_t *remote, u16_t remote_port, u32_t bytes,
			 u32_t ms, u32_t kbits)
{
	static const char *const what[] = {"done (server)",	 "done (client)",
					   "aborted (local)",	 "aborted (data error)",
					   "aborted (tx error)", "aborted (remote)"};
	(void)arg, (void)local, (void)local_port;
	kprintf("iperf: %s: %s:%u, %lu bytes in %lu ms, %lu kbit/s\n",
		type < ARRAY_SIZE(what) ? what[type] : "?", ipaddr_ntoa(remote), remote_port,
		(unsigned long)bytes, (unsigned long)ms, (unsigned long)kbits);
}

/*
 * The client is our own rather than lwiperf's: lwiperf_start_tcp_client cannot be told how
 * long to run (it always sends for 10 s) and copies every byte it sends into the heap
 * (TCP_WRITE_FLAG_COPY). Here tcp_write points lwIP at one static buffer that never changes,
 * so the frames go out from it without a copy: what is measured is the stack and the driver.
 * The buffer is all zeros, which is also what iperf 2 must see first: a 24-byte client header
 * whose flags are 0 means "a plain one-way test, nothing to send back".
 */
#define IPERF_CHUNK 16384

struct iperf_tx {
	struct tcp_pcb *pcb;
	uint64_t secs;
	uint64_t start_ns, stop_ns, end_ns;
	uint64_t acked;
	volatile bool done;
	bool connected;
	const char *why; /* how it ended, for the report */
};

static const u8_t iperf_zeros[IPERF_CHUNK];

/* Detach from the PCB: after this lwIP calls none of our callbacks. */
static void iperf_tx_end(struct iperf_tx *t, const char *why)
{
	if (t->pcb) {
		tcp_arg(t->pcb, NULL);
		tcp_sent(t->pcb, NULL);
		tcp_recv(t->pcb, NULL);
		tcp_err(t->pcb, NULL);
		tcp_poll(t->pcb, NULL, 0);
		if (tcp_close(t->pcb) != ERR_OK)
			tcp_abort(t->pcb); /* no memory for the FIN: do not leave the PCB behind */
		t->pcb = NULL;
	}
	t->end_ns = clock_ns();
	t->why = why;
	t->done = true;
}

/* Queue as much as the send buffer takes, then push it out; or stop, when time is up. */
static void iperf_tx_fill(struct iperf_tx *t)
{
	if (clock_ns() >= t->stop_ns) {
		iperf_tx_end(t, "done");
		return;
	}
	for (;;) {
		u32_t room = tcp_sndbuf(t->pcb);
		if (room < TCP_MSS)
			break; /* wait for ACKs rather than send runts */
		u16_t len = (u16_t)(room < IPERF_CHUNK ? room : IPERF_CHUNK);
		if (tcp_write(t->pcb, iperf_zeros, len, TCP_WRITE_FLAG_MORE) != ERR_OK)
			break; /* out of segments or pbufs: the next ACK frees some */
	}
	tcp_output(t->pcb);
}

static err_t iperf_tx_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct iperf_tx *t = arg;
	(void)pcb;
	t->acked += len;
	iperf_tx_fill(t);
	return ERR_OK;
}

/* Half a second without an ACK: still check the clock, so a stalled test ends on time. */
static err_t iperf_tx_poll(void *arg, struct tcp_pcb *pcb)
{
	struct iperf_tx *t = arg;
	(void)pcb;
	if (t->connected) /* a SYN still unanswered is tcp_connect's to retry */
		iperf_tx_fill(t);
	return ERR_OK;
}

static err_t iperf_tx_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)err;
	if (!p) {
		iperf_tx_end(arg, "closed by the server");
		return ERR_OK;
	}
	tcp_recved(pcb, p->tot_len); /* iperf 2 sends nothing in a one-way test: ignore it */
	pbuf_free(p);
	return ERR_OK;
}

static void iperf_tx_err(void *arg, err_t err)
{
	struct iperf_tx *t = arg;
	t->pcb = NULL; /* lwIP has freed it */
	t->end_ns = clock_ns();
	t->why = err == ERR_RST ? "reset by the server" : lwip_strerr(err);
	t->done = true;
}

static err_t iperf_tx_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct iperf_tx *t = arg;
	(void)pcb, (void)err; /* lwIP only calls this on success; failures go to tcp_err */
	t->connected = true;
	t->start_ns = clock_ns();
	t->stop_ns = t->start_ns + t->secs * 1000000000ull; /* the test runs from here */
	iperf_tx_fill(t);
	return ERR_OK;
}

static int iperf_client(const char *host, uint64_t secs)
{
	static struct iperf_tx t;
	ip_addr_t ip;
	if (!ipaddr_aton(host, &ip))
		return -1;
	if (!secs || secs > IPERF_MAX_SECS) {
		kprintf("iperf: the test runs 1 to %d seconds (Ctrl-C stops it early)\n",
			IPERF_MAX_SECS);
		return -2;
	}
	t = (struct iperf_tx){.secs = secs, .stop_ns = UINT64_MAX};
	err_t err = ERR_MEM;
	DEV_DO(if ((t.pcb = tcp_new())) {
		tcp_arg(t.pcb, &t);
		tcp_sent(t.pcb, iperf_tx_sent);
		tcp_recv(t.pcb, iperf_tx_recv);
		tcp_err(t.pcb, iperf_tx_err);
		tcp_poll(t.pcb, iperf_tx_poll, 1);
		err = tcp_connect(t.pcb, &ip, LWIPERF_TCP_PORT_DEFAULT, iperf_tx_connected);
		if (err != ERR_OK) {
			tcp_abort(t.pcb);
			t.pcb = NULL;
		}
	});
	if (err != ERR_OK) {
		kprintf("iperf: cannot connect to %s: %s\n", host, lwip_strerr(err));
		return -2;
	}
	kprintf("iperf: client to %s:%d for %llu s\n", host, LWIPERF_TCP_PORT_DEFAULT,
		(unsigned long long)secs);
	/* The connect itself may take a while (ARP, SYN retries): allow 30 s beyond the test. */
	bool stopped = !wait_for(&t.done, clock_ns() + (secs + 30) * 1000000000ull);
	if (!t.done)
		DEV_DO(iperf_tx_end(&t, stopped ? "interrupted" : "gave up"));
	if (!t.connected) {
		kprintf("iperf: no connection to %s: %s\n", host, t.why);
		return -2;
	}
	uint64_t ms = (t.end_ns - t.start_ns) / 1000000;
	kprintf("iperf: %s (client): %s:%d, %llu bytes in %llu ms, %llu kbit/s\n", t.why, host,
		LWIPERF_TCP_PORT_DEFAULT, (unsigned long long)t.acked, (unsigned long long)ms,
		(unsigned long long)(ms ? t.acked * 8 / ms : 0));
	return 0;
}

static int cmd_iperf(int argc, char **argv)
{
	static void *server;
	uint64_t secs = 10;
	if (argc >= 3 && argc <= 4 && !strcmp(argv[1], "client")) {
		if (argc == 4 && !parse_u64(argv[3], &secs))
			return -1;
		if (!have_stack())
			return -2;
		return iperf_client(argv[2], secs);
	}
	if (argc != 2 || strcmp(argv[1], "server"))
		return -1;
	if (!have_stack())
		return -2;
	if (!server)
		DEV_DO(server = lwiperf_start_tcp_server_default(iperf_report, NULL));
	if (!server) {
		kprintf("iperf: could not listen on port %d\n", LWIPERF_TCP_PORT_DEFAULT);
		return -2;
	}
	kprintf("iperf: server on port %d\n", LWIPERF_TCP_PORT_DEFAULT);
	return 0;
}

static int cmd_httpd(int argc, char **argv)
{
	static bool started;
	if (argc != 2 || strcmp(argv[1], "start"))
		return -1;
	if (!have_stack())
		return -2;
	if (!started)
		DEV_DO(httpd_init());
	started = true;
	kprintf("httpd: on port %d (/, /big.bin)\n", HTTPD_SERVER_PORT);
	return 0;
}

/* --- arp, netstat ---------------------------------------------------------------------------- */

static int cmd_arp(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	if (!have_stack())
		return -2;
	uint64_t irq = irq_save();
	int n = 0;
	for (size_t i = 0; i < ARP_TABLE_SIZE; i++) {
		ip4_addr_t *ip;
		struct netif *nif;
		struct eth_addr *eth;
		if (!etharp_get_entry(i, &ip, &nif, &eth))
			continue;
		const uint8_t *m = eth->addr;
		kprintf("%-15s %02x:%02x:%02x:%02x:%02x:%02x %c%c%u\n", ip4addr_ntoa(ip), m[0],
			m[1], m[2], m[3], m[4], m[5], nif->name[0], nif->name[1], nif->num);
		n++;
	}
	irq_restore(irq);
	if (!n)
		kprintf("arp: no entries\n");
	return 0;
}

static void print_tcp_pcb(const char *local, u16_t lport, const struct tcp_pcb *pcb,
			  enum tcp_state state)
{
	char remote[24] = "*";
	if (pcb)
		ipaddr_ntoa_r(&pcb->remote_ip, remote, sizeof(remote));
	kprintf("tcp   %15s:%-5u %15s:%-5u %s\n", local, lport, remote, pcb ? pcb->remote_port : 0,
		tcp_debug_state_str(state));
}

static void print_proto(const char *name, const struct stats_proto *s)
{
	kprintf("  %-6s xmit %lu recv %lu drop %lu chkerr %lu lenerr %lu memerr %lu proterr %lu "
		"opterr %lu err %lu\n",
		name, (unsigned long)s->xmit, (unsigned long)s->recv, (unsigned long)s->drop,
		(unsigned long)s->chkerr, (unsigned long)s->lenerr, (unsigned long)s->memerr,
		(unsigned long)s->proterr, (unsigned long)s->opterr, (unsigned long)s->err);
}

static void netstat(void)
{
	char ip[24];
	kprintf("proto %21s %21s state\n", "local", "remote");
	for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l; l = l->next) {
		ipaddr_ntoa_r(&l->local_ip, ip, sizeof(ip));
		print_tcp_pcb(ip, l->local_port, NULL, LISTEN);
	}
	struct tcp_pcb *const lists[] = {tcp_active_pcbs, tcp_tw_pcbs};
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		for (struct tcp_pcb *p = lists[i]; p; p = p->next) {
			ipaddr_ntoa_r(&p->local_ip, ip, sizeof(ip));
			print_tcp_pcb(ip, p->local_port, p, p->state);
		}
	for (struct udp_pcb *u = udp_pcbs; u; u = u->next) {
		ipaddr_ntoa_r(&u->local_ip, ip, sizeof(ip));
		kprintf("udp   %15s:%-5u %15s:%-5s\n", ip, u->local_port, "*", "*");
	}
	kprintf("counters:\n");
	print_proto("link", &lwip_stats.link);
	print_proto("etharp", &lwip_stats.etharp);
	print_proto("ip", &lwip_stats.ip);
	print_proto("ipfrag", &lwip_stats.ip_frag);
	print_proto("icmp", &lwip_stats.icmp);
	print_proto("udp", &lwip_stats.udp);
	print_proto("tcp", &lwip_stats.tcp);
	net_stack_print_offload();
	kprintf("  heap   used %lu max %lu of %lu, %lu failed allocations\n",
		(unsigned long)lwip_stats.mem.used, (unsigned long)lwip_stats.mem.max,
		(unsigned long)lwip_stats.mem.avail, (unsigned long)lwip_stats.mem.err);
	for (int i = 0; i < MEMP_MAX; i++) {
		const struct stats_mem *m = lwip_stats.memp[i];
		if (m && (m->used || m->err))
			kprintf("  pool   %-16s used %u max %u of %u, %u failed\n", m->name,
				(unsigned)m->used, (unsigned)m->max, (unsigned)m->avail,
				(unsigned)m->err);
	}
}

static int cmd_netstat(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	if (!have_stack())
		return -2;
	DEV_DO(netstat());
	return 0;
}

const struct command net_commands[] = {
    {"ip", "ip", "network addresses, routes and links (lwIP)", cmd_ip},
    {"ping", "ping <a.b.c.d> [count]", "ICMP echo, one a second (default 4)", cmd_ping},
    {"udp", "udp echo <port>", "echo every UDP datagram sent to <port>", cmd_udp},
    {"tcp", "tcp echo <port>", "echo every byte of each TCP connection to <port>", cmd_tcp},
    {"iperf", "iperf server | client <a.b.c.d> [seconds]",
     "iperf 2 TCP: server on port 5001 (lwiperf), or send to one (default 10 s)", cmd_iperf},
    {"httpd", "httpd start", "web server on port 80: / and /big.bin (10 MiB)", cmd_httpd},
    {"arp", "arp", "the ARP cache", cmd_arp},
    {"netstat", "netstat", "TCP/UDP endpoints and lwIP counters", cmd_netstat},
};
const size_t n_net_commands = ARRAY_SIZE(net_commands);
