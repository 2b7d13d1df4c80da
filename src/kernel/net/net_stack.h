/*
 * net_stack.h: the kernel's TCP/IP stack (lwIP) as devices.c and the shell see it.
 *
 * devices.c owns every struct vio_net; after vio_net_init it hands each one to
 * net_stack_attach, which wraps it in an lwIP netif. From then on glue_net.c's net_service
 * feeds each device's received frames to lwIP with net_stack_input, once per pass, and
 * devices_poll() calls lwip_poll() to follow link changes and run lwIP's timers. All of it
 * runs with interrupts off, like every other driver call (DEV_CALL in devices.h).
 */
#ifndef KERNEL_NET_STACK_H
#define KERNEL_NET_STACK_H

#include <stdbool.h>
#include <vio/net.h>

/* Give net device `unit` an lwIP netif, configured from vio.ip= (vio.ip<unit>= for unit > 0):
 * "dhcp" (the default) or "a.b.c.d/len[,gw=a.b.c.d]". Only in vio.mode=shell. */
void net_stack_attach(struct vio_net *net, int unit);
/* vio_net_opts.on_tx_done for every net device (glue_net.c passes it to vio_net_init). */
void net_stack_tx_done(struct vio_net *net, void *cookie, void *arg);
/* A bounded batch of unit's received frames to lwIP (nothing when it has no netif). Called
 * by glue_net.c once per pass, after that pass's vio_net_poll. Interrupts off. */
void net_stack_input(int unit);
/* The MTU of the link under an lwIP netif: with TSO, netif->mtu is the GSO limit instead. */
struct netif;
unsigned net_stack_mtu(const struct netif *netif);
/* One line per netif for netstat: its segmentation offloads and their counters. Interrupts
 * off. */
void net_stack_print_offload(void);
/* Link changes to lwIP, finished transmits freed, lwIP's timers run. Thread context. */
void lwip_poll(void);

/* 255.255.255.0 -> 24. */
struct ip4_addr;
int net_prefix_len(const struct ip4_addr *mask);

#endif
