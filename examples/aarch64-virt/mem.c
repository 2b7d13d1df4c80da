/*
 * The page allocator: a bitmap over the RAM between the kernel's end and the end of RAM,
 * first fit for a run of contiguous pages (vio asks for runs: a legacy ring is 12 KiB in
 * one piece, docs/porting.md section 4). Zeroed on allocation. Not for interrupt handlers.
 */
#include "kernel.h"

#define MAX_PAGES 65536 /* 256 MiB */

extern char __kernel_end[];
static uint8_t used[MAX_PAGES / 8];
static uint64_t base;
static size_t npages;

static int is_used(size_t i)
{
	return used[i / 8] >> (i % 8) & 1;
}

static void mark(size_t first, size_t n, int on)
{
	for (size_t i = first; i < first + n; i++) {
		if (on)
			used[i / 8] |= (uint8_t)(1u << (i % 8));
		else
			used[i / 8] &= (uint8_t) ~(1u << (i % 8));
	}
}

void pages_init(uint64_t ram_end)
{
	base = (uint64_t)__kernel_end;
	npages = (ram_end - base) / PAGE_SIZE;
	if (npages > MAX_PAGES)
		npages = MAX_PAGES;
}

void *pages_alloc(size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < npages && n; i++) {
		run = is_used(i) ? 0 : run + 1;
		if (run == n) {
			mark(i + 1 - n, n, 1);
			void *p = (void *)(base + (i + 1 - n) * PAGE_SIZE);
			memset(p, 0, n * PAGE_SIZE);
			return p;
		}
	}
	return NULL;
}

void pages_free(void *p, size_t n)
{
	mark(((uint64_t)p - base) / PAGE_SIZE, n, 0);
}
