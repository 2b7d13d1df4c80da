# lwIP, the kernel's TCP/IP stack, and our glue to it (src/kernel/net/).
#
# Included by the top Makefile after KERN_OBJS, FLAGS_STAMP and the `all` goal are defined
# (so nothing here becomes the default goal); it adds objects to KERN_OBJS. lwIP's
# code is never committed: scripts/lwip.sh fetches Debian's `lwip` source package into
# $(BUILD)/cache/lwip-<version>/ and points $(BUILD)/cache/lwip at it. The list below is
# lwIP's own Filelists.mk cut down to what a NO_SYS IPv4 stack with an iperf server and a
# web server needs (COREFILES, CORE4FILES, ethernet.c, LWIPERFFILES, httpd + fs).
#
# lwIP's files are compiled with the kernel's flags minus -Werror (their warnings are not
# ours to fix); our glue keeps -Werror.

LWIP_DIR := $(BUILD)/cache/lwip
LWIP_STAMP := $(LWIP_DIR)/.vio-unpacked

LWIP_SRCS := core/init.c core/def.c core/dns.c core/inet_chksum.c core/ip.c core/mem.c \
	core/memp.c core/netif.c core/pbuf.c core/raw.c core/stats.c core/sys.c core/altcp.c \
	core/altcp_alloc.c core/altcp_tcp.c core/tcp.c core/tcp_in.c core/tcp_out.c \
	core/timeouts.c core/udp.c \
	core/ipv4/autoip.c core/ipv4/dhcp.c core/ipv4/etharp.c core/ipv4/icmp.c \
	core/ipv4/igmp.c core/ipv4/ip4_frag.c core/ipv4/ip4.c core/ipv4/ip4_addr.c \
	netif/ethernet.c apps/lwiperf/lwiperf.c apps/http/httpd.c apps/http/fs.c
LWIP_OBJS := $(LWIP_SRCS:%.c=$(OBJ)/lwip/%.o)

NET_SRCS := $(sort $(wildcard src/kernel/net/*.c))
NET_OBJS := $(NET_SRCS:%.c=$(OBJ)/%.o)

# lwipopts.h and arch/cc.h live with the glue; lwIP's public headers in the cache.
LWIP_INCLUDES := -Isrc/kernel/net -I$(LWIP_DIR)/src/include
LWIP_CFLAGS := $(filter-out -Werror,$(KERNCFLAGS)) $(LWIP_INCLUDES) -Wno-unused-parameter \
	-Wno-sign-compare -Wno-address -Wno-type-limits

KERN_OBJS += $(NET_OBJS) $(LWIP_OBJS)

# The fetch. Nothing depends on scripts/lwip.sh itself: the stamp is the whole state.
$(LWIP_STAMP):
	scripts/lwip.sh $(BUILD)/cache

# A source that is missing comes from the fetch (.SECONDARY keeps make from deleting it).
$(LWIP_DIR)/src/%.c: | $(LWIP_STAMP) ;

$(OBJ)/lwip/%.o: $(LWIP_DIR)/src/%.c $(FLAGS_STAMP) | $(NEWLIB_LIBC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LWIP_CFLAGS) -c $< -o $@

# Our glue builds with the ordinary kernel rule, plus lwIP's headers once they are fetched.
$(NET_OBJS): override KERNCFLAGS += $(LWIP_INCLUDES)
$(NET_OBJS): | $(LWIP_STAMP)
