/*
 * Feature bit names, for logs and a kernel's `virtio <dev>` command: the reserved bits every
 * device shares (virtio 1.2 section 6) and the device-specific bits of the devices vio
 * drives (5.1.3 net, 5.2.3 block, 5.3.3 console, 5.5.3 balloon, 5.7.3 gpu). The rng (5.4)
 * and input (5.8.3) devices have none.
 */
#include <stddef.h>
#include <vio/spec/virtio_config.h>
#include <vio/virtio.h>

struct bit_name {
	unsigned bit;
	const char *name;
};

static const struct bit_name common[] = {
	{VIRTIO_F_NOTIFY_ON_EMPTY, "NOTIFY_ON_EMPTY"},
	{VIRTIO_F_ANY_LAYOUT, "ANY_LAYOUT"},
	{VIRTIO_F_RING_INDIRECT_DESC, "RING_INDIRECT_DESC"},
	{VIRTIO_F_RING_EVENT_IDX, "RING_EVENT_IDX"},
	{VIRTIO_F_UNUSED, "UNUSED(30)"},
	{VIRTIO_F_VERSION_1, "VERSION_1"},
	{VIRTIO_F_ACCESS_PLATFORM, "ACCESS_PLATFORM"},
	{VIRTIO_F_RING_PACKED, "RING_PACKED"},
	{VIRTIO_F_IN_ORDER, "IN_ORDER"},
	{VIRTIO_F_ORDER_PLATFORM, "ORDER_PLATFORM"},
	{VIRTIO_F_SR_IOV, "SR_IOV"},
	{VIRTIO_F_NOTIFICATION_DATA, "NOTIFICATION_DATA"},
	{VIRTIO_F_NOTIF_CONFIG_DATA, "NOTIF_CONFIG_DATA"},
	{VIRTIO_F_RING_RESET, "RING_RESET"},
};

/* Device bits by their numbers (VIRTIO_NET_F_* etc. in include/vio/spec/). */
static const struct bit_name net[] = {
	{0, "CSUM"},	     {1, "GUEST_CSUM"},	 {2, "CTRL_GUEST_OFFLOADS"}, {3, "MTU"},
	{5, "MAC"},	     {7, "GUEST_TSO4"},	 {8, "GUEST_TSO6"},	     {9, "GUEST_ECN"},
	{10, "GUEST_UFO"},   {11, "HOST_TSO4"},	 {12, "HOST_TSO6"},	     {13, "HOST_ECN"},
	{14, "HOST_UFO"},    {15, "MRG_RXBUF"},	 {16, "STATUS"},	     {17, "CTRL_VQ"},
	{18, "CTRL_RX"},     {19, "CTRL_VLAN"},	 {20, "CTRL_RX_EXTRA"},	     {21, "GUEST_ANNOUNCE"},
	{22, "MQ"},	     {23, "CTRL_MAC_ADDR"}, {57, "HASH_REPORT"},	     {60, "RSS"},
	{63, "SPEED_DUPLEX"},
};
static const struct bit_name blk[] = {
	{0, "BARRIER"}, {1, "SIZE_MAX"},  {2, "SEG_MAX"},    {4, "GEOMETRY"},	  {5, "RO"},
	{6, "BLK_SIZE"}, {7, "SCSI"},	  {9, "FLUSH"},	     {10, "TOPOLOGY"},	  {11, "CONFIG_WCE"},
	{12, "MQ"},	 {13, "DISCARD"}, {14, "WRITE_ZEROES"}, {15, "LIFETIME"}, {16, "SECURE_ERASE"},
	{17, "ZONED"},
};
static const struct bit_name console[] = {
	{0, "SIZE"}, {1, "MULTIPORT"}, {2, "EMERG_WRITE"},
};
static const struct bit_name balloon[] = {
	{0, "MUST_TELL_HOST"},	{1, "STATS_VQ"},    {2, "DEFLATE_ON_OOM"},
	{3, "FREE_PAGE_HINT"},	{4, "PAGE_POISON"}, {5, "PAGE_REPORTING"},
};
static const struct bit_name scsi[] = {
	{0, "INOUT"}, {1, "HOTPLUG"}, {2, "CHANGE"}, {3, "T10_PI"},
};
static const struct bit_name p9[] = {
	{0, "MOUNT_TAG"},
};
static const struct bit_name gpu[] = {
	{0, "VIRGL"}, {1, "EDID"}, {2, "RESOURCE_UUID"}, {3, "RESOURCE_BLOB"}, {4, "CONTEXT_INIT"},
};

static const char *lookup(const struct bit_name *t, size_t n, unsigned bit)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].bit == bit)
			return t[i].name;
	return NULL;
}

#define LOOKUP(t, bit) lookup(t, sizeof(t) / sizeof(t[0]), bit)

const char *vio_feature_name(uint32_t device_id, unsigned bit)
{
	const char *name = LOOKUP(common, bit);
	if (name || bit >= 64)
		return name;
	/* Bits 24..40 are reserved for the transport and ring (section 6), whatever the device. */
	if (bit >= 24 && bit <= 40)
		return NULL;
	switch (device_id) {
	case VIRTIO_ID_NET:
		return LOOKUP(net, bit);
	case VIRTIO_ID_BLOCK:
		return LOOKUP(blk, bit);
	case VIRTIO_ID_CONSOLE:
		return LOOKUP(console, bit);
	case VIRTIO_ID_BALLOON:
		return LOOKUP(balloon, bit);
	case VIRTIO_ID_SCSI:
		return LOOKUP(scsi, bit);
	case VIRTIO_ID_9P:
		return LOOKUP(p9, bit);
	case VIRTIO_ID_GPU:
		return LOOKUP(gpu, bit);
	default:
		return NULL;
	}
}
