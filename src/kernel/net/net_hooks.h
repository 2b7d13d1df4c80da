/*
 * net_hooks.h: the lwIP hooks the kernel implements (lwipopts.h names this file as
 * LWIP_HOOK_FILENAME; lwIP includes it in the sources that call hooks). They live in
 * netif_vio.c, beside the segmentation offload they serve.
 */
#ifndef VIO_NET_HOOKS_H
#define VIO_NET_HOOKS_H

#include <lwip/err.h>

struct tcp_pcb;
struct pbuf;

/*
 * Every TCP segment that found its PCB, before lwIP processes it (tcp_in.c); `p` holds the
 * segment's data, headers removed. Always ERR_OK: it drops nothing, it only adjusts the PCB.
 */
err_t net_tcp_inpacket(struct tcp_pcb *pcb, struct pbuf *p);
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) net_tcp_inpacket(pcb, p)

#endif
