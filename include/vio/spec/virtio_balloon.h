/*
 * The traditional memory balloon device: virtio 1.2 section 5.5.
 *
 * The host asks the guest to give back some of its memory by raising num_pages in the
 * device configuration; the guest hands over 4 KiB pages by sending their page frame numbers
 * on the inflateq, takes pages back through the deflateq, and reports how many it holds in
 * `actual`. PFNs are always in 4 KiB units (VIRTIO_BALLOON_PFN_SHIFT), whatever the guest's
 * own page size, and 32 bits wide: the balloon reaches the first 16 TiB of guest memory.
 *
 * The configuration is little-endian even on the legacy interface (5.5.4).
 */
#ifndef VIO_SPEC_VIRTIO_BALLOON_H
#define VIO_SPEC_VIRTIO_BALLOON_H

#include <stdint.h>

/* 5.5.3 Feature bits. */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0 /* tell the host before using deflated pages again */
#define VIRTIO_BALLOON_F_STATS_VQ	1 /* the statsq exists: guest memory statistics */
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2 /* the guest may deflate when it runs out of memory */
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3 /* free_page_vq: hints for live migration */
#define VIRTIO_BALLOON_F_PAGE_POISON	4 /* poison_val is valid: what free pages contain */
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5 /* reporting_vq: free page reporting */

/*
 * 5.5.2 Virtqueues. inflateq and deflateq always exist; the others exist only when their
 * feature is negotiated, and take the next index in this order, so their numbers depend on
 * the negotiated features: reporting_vq is 2 when neither statsq nor free_page_vq exists.
 */
#define VIRTIO_BALLOON_VQ_INFLATE 0
#define VIRTIO_BALLOON_VQ_DEFLATE 1

/* The page frame size of the inflateq and deflateq (5.5.6): always 4 KiB. */
#define VIRTIO_BALLOON_PFN_SHIFT 12

/* 5.5.4 Device configuration layout. */
struct virtio_balloon_config {
	uint32_t num_pages; /* le32: pages the host wants in the balloon (read-only) */
	uint32_t actual;    /* le32: pages the driver says it has given (written by the driver) */
	uint32_t free_page_hint_cmd_id; /* le32: FREE_PAGE_HINT command (5.5.6.4) */
	uint32_t poison_val;		/* le32: PAGE_POISON fill value (5.5.6.5) */
};
_Static_assert(sizeof(struct virtio_balloon_config) == 16, "virtio_balloon_config is 16 bytes");

/* 5.5.6.3 Memory statistics: the statsq buffer is an array of these. */
struct virtio_balloon_stat {
	uint16_t tag; /* le16: VIRTIO_BALLOON_S_* */
	uint64_t val; /* le64 */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_balloon_stat) == 10, "virtio_balloon_stat is 10 bytes");

/* 5.5.6.3.1 Statistic tags. Sizes are in bytes. */
#define VIRTIO_BALLOON_S_SWAP_IN      0 /* memory swapped in */
#define VIRTIO_BALLOON_S_SWAP_OUT     1 /* memory swapped out */
#define VIRTIO_BALLOON_S_MAJFLT	      2 /* major page faults */
#define VIRTIO_BALLOON_S_MINFLT	      3 /* minor page faults */
#define VIRTIO_BALLOON_S_MEMFREE      4 /* memory the guest does not use at all */
#define VIRTIO_BALLOON_S_MEMTOT	      5 /* memory the guest has */
#define VIRTIO_BALLOON_S_AVAIL	      6 /* memory available to new programs without swapping */
#define VIRTIO_BALLOON_S_CACHES	      7 /* memory in caches the guest could drop */
#define VIRTIO_BALLOON_S_HTLB_PGALLOC 8 /* hugetlb page allocations */
#define VIRTIO_BALLOON_S_HTLB_PGFAIL  9 /* hugetlb page allocation failures */
#define VIRTIO_BALLOON_S_NR	      10

#endif
