/*
 * glue_net.c: what this kernel does with a virtio-net device beside lwIP (see
 * include/vio/net.h; the netif that feeds lwIP is net/netif_vio.c).
 *
 * The driver reports link changes through a callback, which here only logs them. The rest
 * is the frame echo the network tests use: `net echo net0 on` takes the device's received
 * frames away from lwIP (one consumer of RX at a time) and net_echo_service, from
 * devices_poll, sends each back with its MAC addresses swapped, so that a host program can
 * check every byte of what came back.
 *
 *   ./run-qemu.sh    then at the shell: net echo net0 on
 *
 * tests/qemu/scn_net.py does the same on a -netdev dgram backend, sends frames through it
 * and checks each one that comes back.
 */
#include <kernel/kernel.h>
#include <string.h>
#include <vio/err.h>

#include "glue.h"
#include "net/net_stack.h"

bool net_echo[MAX_PER_DRIVER];

void net_echo_enable(int unit, bool on)
{
	if (unit >= 0 && unit < n_net)
		net_echo[unit] = on;
	net_stack_set_rx(unit, !on); /* one consumer of RX at a time: the echo, or lwIP */
}

void net_link(struct vio_net *net, bool up, void *arg)
{
	(void)net;
	kprintf("net%d: link %s\n", (int)(intptr_t)arg, up ? "up" : "down");
}

/* Send every received frame back with source and destination swapped. */
void net_echo_service(struct vio_net *net)
{
	static uint8_t frame[VIO_NET_MAX_MTU + VIO_NET_ETH_HLEN + VIO_NET_VLAN_HLEN];
	for (int budget = 0; budget < 64; budget++) {
		int n = vio_net_recv_copy(net, frame, sizeof(frame), NULL);
		if (n < VIO_NET_ETH_HLEN)
			return;
		uint8_t tmp[6];
		memcpy(tmp, frame, 6);
		memcpy(frame, frame + 6, 6);
		memcpy(frame + 6, tmp, 6);
		for (int tries = 0; vio_net_send(net, frame, (uint32_t)n, NULL) == VIO_ENOSPC; tries++) {
			if (tries > 1000)
				return; /* counted by the driver as tx_full */
			vio_net_poll(net);
		}
	}
}
