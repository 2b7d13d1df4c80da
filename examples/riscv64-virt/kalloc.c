/*
 * kalloc.c: the physical page allocator. One bit per 4 KiB page of the RAM between the end
 * of the kernel image and the device tree (QEMU puts the tree at the top of RAM; we never
 * overwrite it). Unlike xv6's kalloc, which hands out single pages from a free list, it
 * gives runs of physically contiguous pages: vio's rings and driver buffers are DMA memory
 * that a device reads by physical address, and some are larger than one page. First fit,
 * O(pages) per call: plenty for a kernel that allocates at device bring-up.
 */
#include "kernel.h"
#include <string.h>

#define MAX_PAGES (1ul << 18) /* 1 GiB of RAM at most */

static uint64_t base; /* physical address of page 0 */
static size_t npages; /* pages managed */
static size_t nfree;  /* pages free */
static uint64_t used[MAX_PAGES / 64];

static bool is_used(size_t i)
{
	return used[i / 64] >> (i % 64) & 1;
}

static void mark(size_t i, size_t n, bool on)
{
	for (; n; n--, i++) {
		if (on)
			used[i / 64] |= 1ull << (i % 64);
		else
			used[i / 64] &= ~(1ull << (i % 64));
	}
}

void kalloc_init(uint64_t start, uint64_t end)
{
	base = (start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	npages = end > base ? (end - base) / PAGE_SIZE : 0;
	if (npages > MAX_PAGES)
		npages = MAX_PAGES;
	nfree = npages;
}

void *kalloc_pages(size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < npages && n; i++) {
		run = is_used(i) ? 0 : run + 1;
		if (run == n) {
			size_t first = i + 1 - n;
			mark(first, n, true);
			nfree -= n;
			void *p = (void *)(uintptr_t)(base + first * PAGE_SIZE);
			return memset(p, 0, n * PAGE_SIZE);
		}
	}
	return NULL;
}

void kfree_pages(void *p, size_t n)
{
	size_t first = ((uint64_t)(uintptr_t)p - base) / PAGE_SIZE;

	if ((uint64_t)(uintptr_t)p < base || first + n > npages)
		panic("kfree_pages: %p is not ours", p);
	for (size_t i = first; i < first + n; i++)
		if (!is_used(i))
			panic("kfree_pages: page %p freed twice",
			      (void *)(uintptr_t)(base + i * PAGE_SIZE));
	mark(first, n, false);
	nfree += n;
}

size_t kalloc_free_pages(void)
{
	return nfree;
}
