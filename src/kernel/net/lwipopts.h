/*
 * lwipopts.h: how lwIP is configured for the vio teaching kernel.
 *
 * lwIP reads every option here first and falls back to the defaults in lwip/opt.h. The
 * kernel has no threads, so lwIP runs in NO_SYS mode: the raw (callback) API only, no
 * sockets or netconns, and the kernel drives it by calling lwip_poll() (netif_vio.c) from
 * devices_poll(), with interrupts off, like every other driver call. Memory is sized for one
 * fast TCP stream each way: a 256 KiB window and send buffer, at a 1460-byte MSS or in
 * segments of up to 64 KiB with segmentation offload (netif_vio.c).
 */
#ifndef VIO_LWIPOPTS_H
#define VIO_LWIPOPTS_H

/* --- the platform ----------------------------------------------------------------------- */
#define NO_SYS		     1 /* no threads, no semaphores: lwip_poll() does everything */
#define SYS_LIGHTWEIGHT_PROT 0 /* nothing runs lwIP from an interrupt handler */
#define LWIP_SOCKET	     0
#define LWIP_NETCONN	     0
#define LWIP_IPV4	     1
#define LWIP_IPV6	     0
#define MEM_ALIGNMENT	     8

/* --- memory ------------------------------------------------------------------------------ */
/*
 * The heap holds what TCP copies out of the application (tcp_write with COPY, httpd's read
 * buffer) until it is acknowledged: at least a send buffer per busy connection, and room
 * for a few at once; and with TSO the flat copy of a 64 KiB segment that came in more pieces
 * than the driver takes (netif_vio.c's send_flat) until the device has sent it.
 */
#define MEM_SIZE (1024 * 1024)
/* Received frames arrive in the driver's own buffers (custom pbufs, netif_vio.c); the pool
 * is only for what lwIP makes itself (reassembly, copies). */
#define PBUF_POOL_SIZE		 128
/* Sends that point at data (tcp_write without COPY, `iperf client`) take one per segment. */
#define MEMP_NUM_PBUF		 (TCP_SND_QUEUELEN + 32)
#define MEMP_NUM_RAW_PCB	 4
#define MEMP_NUM_UDP_PCB	 8
#define MEMP_NUM_TCP_PCB	 16
#define MEMP_NUM_TCP_PCB_LISTEN	 8
#define MEMP_NUM_TCP_SEG	 (TCP_SND_QUEUELEN + 32)
#define MEMP_NUM_REASSDATA	 8
#define MEMP_NUM_FRAG_PBUF	 32
#define MEMP_NUM_SYS_TIMEOUT	 (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 4)
#define LWIP_SUPPORT_CUSTOM_PBUF 1 /* RX pbufs that give their buffer back to the driver */

/* --- protocols --------------------------------------------------------------------------- */
#define LWIP_ARP		      1
#define ARP_TABLE_SIZE		      16
#define ARP_QUEUEING		      1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define IP_REASSEMBLY		      1
#define IP_FRAG			      1
#define LWIP_ICMP		      1
#define LWIP_RAW		      1 /* ping's echo requests and replies */
#define LWIP_DHCP		      1
#define LWIP_DHCP_DOES_ACD_CHECK      0
#define DHCP_DOES_ARP_CHECK	      0 /* no 2 s ARP probe: QEMU's DHCP server gives a free address */
#define LWIP_UDP		      1
#define LWIP_TCP		      1
#define LWIP_DNS		      0
#define LWIP_IGMP		      0
#define LWIP_AUTOIP		      0

/* --- TCP: a 256 KiB window each way --------------------------------------------------------- */
/*
 * Window scaling (RFC 7323) lets the window exceed 64 KiB. Under TCG the round trip grows
 * with load (the one vCPU is busy with the previous burst when the next arrives), and a 64 KiB
 * window then caps a stream well below what the stack can do. Received data costs nothing
 * while in order (lwiperf frees each pbuf at once, and the RX buffers return to the device);
 * out-of-order segments hold RX buffers, which the driver bounds (rx_hold_max).
 */
#define TCP_MSS		   1460
#define LWIP_WND_SCALE	   1
#define TCP_RCV_SCALE	   2
#define TCP_WND		   (4 * 65535)
#define TCP_SND_BUF	   (4 * 65535)
/*
 * A pbuf per tcp_write at worst, and 1460-byte writes at worst (lwiperf). With TSO a 64 KiB
 * segment is still one queue entry per pbuf it holds, so the same bound serves.
 */
#define TCP_SND_QUEUELEN   (4 * TCP_SND_BUF / TCP_MSS)
/* tcp_sndbuf() below this is "not writable" for apps that ask (httpd); lwIP keeps it in 16 bits. */
#define TCP_SNDLOWAT	   (32 * 1024)
/*
 * lwIP checks TCP_WND against PBUF_POOL_SIZE, assuming received data sits in pool pbufs. Ours
 * sits in the driver's RX buffers (netif_vio.c), so that check does not apply.
 */
#define LWIP_DISABLE_TCP_SANITY_CHECKS 1
#define TCP_OVERSIZE	   TCP_MSS
#define TCP_QUEUE_OOSEQ	   1
/*
 * Out-of-order data sits in the driver's RX buffers, a pbuf each, and a caller holding more
 * than rx_hold_max of them (half the RX buffers: 32, or 64 with segmentation offload) makes
 * the driver drop every frame, the one that would fill the gap included. So a connection
 * queues at most this many out of order (one coalesced 64 KiB segment is 17), and lwIP drops
 * what is beyond: the sender sends it again.
 */
#define TCP_OOSEQ_MAX_PBUFS 24
#define LWIP_TCP_SACK_OUT  0
#define TCP_LISTEN_BACKLOG 1
/* net_tcp_inpacket (net_hooks.h, netif_vio.c): prompt ACKs for coalesced segments. */
#define LWIP_HOOK_FILENAME "net_hooks.h"
/* One per PCB: the connection's real MSS while its segments are larger (netif_vio.c). */
#define LWIP_TCP_PCB_NUM_EXT_ARGS 1

/* --- the netif ----------------------------------------------------------------------------- */
#define LWIP_NETIF_STATUS_CALLBACK 1 /* print the address DHCP gave */
#define LWIP_NETIF_LINK_CALLBACK   1
#define LWIP_NETIF_HOSTNAME	   1
#define LWIP_SINGLE_NETIF	   0
/*
 * Checksums are chosen per netif, and for received frames per frame: a device that
 * negotiated GUEST_CSUM vouches for the frames it marks DATA_VALID, and one with CSUM
 * computes what we leave to it (netif_vio.c sets netif->chksum_flags accordingly).
 */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1
#define LWIP_CHECKSUM_ON_COPY	     0

/* --- statistics (netstat) ------------------------------------------------------------------ */
#define LWIP_STATS	   1
#define LWIP_STATS_DISPLAY 1 /* also gives the pools their names */
#define LINK_STATS	   1
#define ETHARP_STATS	   1
#define IP_STATS	   1
#define IPFRAG_STATS	   1
#define ICMP_STATS	   1
#define UDP_STATS	   1
#define TCP_STATS	   1
#define MEM_STATS	   1
#define MEMP_STATS	   1

/* --- apps ------------------------------------------------------------------------------- */
/*
 * httpd serves only "custom files" made on the fly (httpd_fs.c): / and /big.bin, which is
 * generated as it is read, so it never sits in memory whole. Each read fills as much of
 * the send buffer as is free rather than the 2 x MSS default, which would wait for an ACK
 * every two segments.
 */
#define LWIP_HTTPD_CUSTOM_FILES	     1
#define LWIP_HTTPD_DYNAMIC_FILE_READ 1
#define LWIP_HTTPD_DYNAMIC_HEADERS   1
#define HTTPD_LIMIT_SENDING_TO_2MSS  0
#define HTTPD_FSDATA_FILE	     "vio_fsdata.h"
#define LWIP_HTTPD_CGI		     0
#define LWIP_HTTPD_SSI		     0
#define HTTPD_SERVER_AGENT	     "vio-lwIP"

#endif
