/*
 * What each driver asks of the port's allocators, measured: every driver brought up on a
 * port whose dma_alloc refuses anything larger than one 4 KiB page (xv6's kalloc), except
 * the ring areas the spec wants in one piece when a queue is larger than 256 entries. Each
 * bring-up prints one line,
 *
 *	MEM <device> dma=<bytes> pages=<n> priv=<bytes> largest=<bytes>
 *
 * which is where the DMA budget table of docs/porting.md comes from (make hosttest keeps the
 * output in build/test-logs/test_memory.log). dma counts whole pages, as dma_alloc hands
 * them out; priv is what vio_priv_alloc asked the port's private allocator for.
 *
 * The devices are modern PCI functions (tests/host/fake_env.h), so each ring's three areas
 * are separate allocations (2.7): a legacy transport's one-piece ring is not measured here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <vio/balloon.h>
#include <vio/blk.h>
#include <vio/console.h>
#include <vio/err.h>
#include <vio/net.h>
#include <vio/rng.h>
#include <vio/spec/virtio_ring.h>

#include "fake_env.h"

#define PAGE 4096u

/*
 * The port may hand out more than a page only for a ring area the spec makes one piece
 * (2.7: the descriptor table, the available and the used ring are each contiguous) and only
 * when it is larger than a page: a queue of `big_queue` entries.
 */
static uint16_t big_queue;

static bool ring_area(void *arg, size_t bytes)
{
	(void)arg;
	return big_queue &&
	       (bytes == vring_desc_bytes(big_queue) || bytes == vring_avail_bytes(big_queue) ||
		bytes == vring_used_bytes(big_queue));
}

static struct fake_env *page_port_env(uint32_t id, uint64_t features, const void *cfg, size_t len,
				      int nqueues, uint16_t qsize)
{
	struct fake_env *e = fake_env_new(id, features, cfg, len, nqueues, qsize);
	e->fp.dma_limit = PAGE;
	e->fp.dma_allow = ring_area;
	big_queue = qsize > 256 ? qsize : 0;
	return e;
}

/* Print the measurement and check the one rule: nothing refused, nothing above a page but
 * the ring areas allowed. */
static void measured(const char *device, struct fake_env *e)
{
	printf("MEM %s dma=%zu pages=%zu priv=%zu largest=%zu\n", device, e->fp.dma_live_bytes,
	       e->fp.dma_live_bytes / PAGE, e->fp.priv_live_bytes, e->fp.dma_largest);
	assert_int_equal(e->fp.dma_refused, 0);
	for (int i = 0; i < e->fp.dma_log_count && i < FAKE_PORT_DMA_LOG; i++)
		assert_true(e->fp.dma_log[i] <= PAGE || ring_area(NULL, e->fp.dma_log[i]));
}

static void test_rng_fits_a_page_allocator(void **state)
{
	(void)state;
	static struct vio_rng rng;
	struct fake_env *e = page_port_env(VIRTIO_ID_RNG, 0, NULL, 0, 1, 256);

	assert_int_equal(vio_rng_init(&rng, &e->dev, NULL), 0);
	measured("rng", e);
	vio_rng_fini(&rng);
	fake_env_free(e);
}

static void console_ports(uint32_t ports, const char *name)
{
	static struct vio_console con;
	struct virtio_console_config cfg = {.cols = 80, .rows = 25, .max_nr_ports = ports};
	uint64_t features = ports > 1 ? VIRTIO_BIT(VIRTIO_CONSOLE_F_MULTIPORT) : 0;
	struct fake_env *e = page_port_env(VIRTIO_ID_CONSOLE, features, &cfg, sizeof(cfg),
					   ports > 1 ? 2 + 2 * (int)ports : 2, 128);

	assert_int_equal(vio_console_init(&con, &e->dev, NULL), 0);
	assert_int_equal(con.nports, ports);
	measured(name, e);
	vio_console_fini(&con);
	fake_env_free(e);
}

static void test_console_fits_a_page_allocator(void **state)
{
	(void)state;
	console_ports(1, "console-1-port");
	console_ports(2, "console-2-ports");
	console_ports(3, "console-3-ports");
	console_ports(8, "console-8-ports");
}

static void blk_with(uint16_t qsize, const struct vio_blk_opts *opts, const char *name)
{
	static struct vio_blk blk;
	struct virtio_blk_config cfg = {.capacity = 2048, .seg_max = 126, .size_max = 65536};
	uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
			    VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
			    VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC);
	struct fake_env *e = page_port_env(VIRTIO_ID_BLOCK, features, &cfg, sizeof(cfg), 1, qsize);

	assert_int_equal(vio_blk_init(&blk, &e->dev, opts), 0);
	printf("MEM %s: ring %u, %u tables, depth %u\n", name, blk.blk_vqs[0].size,
	       blk.blk_vqs[0].vq_ntables, blk.info.queue_depth);
	measured(name, e);
	vio_blk_fini(&blk);
	fake_env_free(e);
}

static void test_blk_fits_a_page_allocator(void **state)
{
	(void)state;
	const struct vio_blk_opts full = {.indirect_tables = 256};
	const struct vio_blk_opts deep = {.queue_size = 1024, .indirect_tables = 1024};
	const struct vio_blk_opts small = {.queue_size = 64, .indirect_tables = 4};

	blk_with(256, NULL, "blk-default");
	blk_with(256, &full, "blk-256-tables");
	blk_with(1024, &deep, "blk-1024");
	blk_with(256, &small, "blk-64-4-tables");
}

static void test_net_fits_a_page_allocator(void **state)
{
	(void)state;
	static struct vio_net net;
	struct virtio_net_config cfg = {.mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56}, .status = 1};
	uint64_t features = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
			    VIRTIO_BIT(VIRTIO_NET_F_STATUS) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
			    VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC);
	struct fake_env *e = page_port_env(VIRTIO_ID_NET, features, &cfg, sizeof(cfg), 3, 256);

	assert_int_equal(vio_net_init(&net, &e->dev, NULL), 0);
	measured("net", e);
	vio_net_fini(&net);
	fake_env_free(e);
}

static int take_none(struct vio_balloon *b, uint32_t *pfn, void *arg)
{
	(void)b, (void)pfn, (void)arg;
	return VIO_ENOMEM;
}

static void give(struct vio_balloon *b, uint32_t pfn, void *arg)
{
	(void)b, (void)pfn, (void)arg;
}

static unsigned no_stats(struct vio_balloon *b, struct vio_balloon_stat_val *out, unsigned max,
			 void *arg)
{
	(void)b, (void)out, (void)max, (void)arg;
	return 0;
}

static void test_balloon_fits_a_page_allocator(void **state)
{
	(void)state;
	static struct vio_balloon b;
	struct virtio_balloon_config cfg = {.num_pages = 0};
	uint64_t features =
	    VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) | VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING);
	struct fake_env *e = page_port_env(VIRTIO_ID_BALLOON, features, &cfg, sizeof(cfg), 4, 128);
	const struct vio_balloon_opts opts = {
	    .page_take = take_none, .page_give = give, .guest_stats = no_stats};

	assert_int_equal(vio_balloon_init(&b, &e->dev, &opts), 0);
	assert_true(b.stats_vq && b.reporting);
	measured("balloon-stats-reporting", e);
	vio_balloon_fini(&b);
	fake_env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rng_fits_a_page_allocator),
	    cmocka_unit_test(test_console_fits_a_page_allocator),
	    cmocka_unit_test(test_blk_fits_a_page_allocator),
	    cmocka_unit_test(test_net_fits_a_page_allocator),
	    cmocka_unit_test(test_balloon_fits_a_page_allocator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
