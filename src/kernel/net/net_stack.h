/*
 * net_stack.h: the kernel's TCP/IP stack (lwIP) as devices.c and the shell see it.
 *
 * devices.c owns every struct vio_net; after vio_net_init it hands each one to
 * net_stack_attach, which wraps it in an lwIP netif. From then on devices_poll() calls
 * lwip_poll() to feed received frames to lwIP and run its timers. All of it runs with
 * interrupts off, like every other driver call (DEV_CALL in devices.h).
 */
#ifndef KERNEL_NET_STACK_H
#define KERNEL_NET_STACK_H

#include <stdbool.h>
#include <vio/net.h>

/* Give net device `unit` an lwIP netif, configured from vio.ip= (vio.ip<unit>= for unit > 0):
 * "dhcp" (the default) or "a.b.c.d/len[,gw=a.b.c.d]". Only in vio.mode=shell. */
void net_stack_attach(struct vio_net *net, int unit);
/* vio_net_config_opts.tx_done for every attached device: pass it to vio_net_init. */
void net_stack_tx_done(struct vio_net *net, void *cookie, void *arg);
/* Stop (false) or resume (true) feeding unit's frames to lwIP: the frame echo takes them. */
void net_stack_set_rx(int unit, bool on);
/* Received frames to lwIP, finished transmits freed, lwIP's timers run. Thread context. */
void lwip_poll(void);

/* 255.255.255.0 -> 24. */
struct ip4_addr;
int net_prefix_len(const struct ip4_addr *mask);

#endif
