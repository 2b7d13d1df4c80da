/*
 * pmm.c: the physical page allocator, a bitmap with one bit per 4 KiB page (1 = in use).
 *
 * A bitmap is the simplest allocator that can hand out *contiguous, aligned runs*, which
 * DMA needs: a virtqueue's ring must be physically contiguous, and nothing here has an
 * IOMMU to pretend otherwise. Allocation is first fit from the low end, skipping whole
 * 64-page words that are full, so early allocations (page tables) land below 4 GiB where
 * the boot page tables can reach them.
 *
 * When a request cannot be met, the allocator asks an optional "OOM handler" for memory
 * before it gives up, once: glue_balloon.c has one that deflates a virtio balloon (the
 * host agreed to that with DEFLATE_ON_OOM). The allocator knows nothing about balloons; it
 * only knows that someone may be holding pages it could have back. Pages come back one by
 * one, scattered, so a single page is rescued easily while a contiguous run may still fail.
 */
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <string.h>

extern char __kernel_start[], __kernel_end[];

static uint64_t *bitmap;
static uint64_t n_pages;     /* pages covered by the bitmap (up to the highest RAM) */
static uint64_t free_pages, total_pages;
static uint64_t highest_ram;

static pmm_oom_fn oom_handler;
static bool in_oom; /* the handler is running: its own allocations must not recurse */
static struct pmm_oom_stats oom_stats;

static inline bool page_used(uint64_t p) { return bitmap[p / 64] >> (p % 64) & 1; }
static inline void set_used(uint64_t p) { bitmap[p / 64] |= 1ull << (p % 64); }
static inline void set_free(uint64_t p) { bitmap[p / 64] &= ~(1ull << (p % 64)); }

static void mark_range(uint64_t base, uint64_t len, bool used)
{
	uint64_t first = ALIGN_UP(base, PAGE_SIZE) / PAGE_SIZE;
	uint64_t end = ALIGN_DOWN(base + len, PAGE_SIZE) / PAGE_SIZE;

	if (!used) { /* freeing: round inwards (partial pages are not usable) */
	} else {     /* reserving: round outwards */
		first = ALIGN_DOWN(base, PAGE_SIZE) / PAGE_SIZE;
		end = ALIGN_UP(base + len, PAGE_SIZE) / PAGE_SIZE;
	}
	if (end > n_pages)
		end = n_pages;
	for (uint64_t p = first; p < end; p++) {
		if (used && !page_used(p)) {
			set_used(p);
			free_pages--;
		} else if (!used && page_used(p)) {
			set_free(p);
			free_pages++;
		}
	}
}

void pmm_init(void)
{
	uint64_t kstart = (uint64_t)(uintptr_t)__kernel_start;
	uint64_t kend = ALIGN_UP((uint64_t)(uintptr_t)__kernel_end, PAGE_SIZE);

	for (int i = 0; i < boot.n_mem; i++)
		if (boot.mem[i].type == MEM_USABLE && boot.mem[i].base + boot.mem[i].len > highest_ram)
			highest_ram = boot.mem[i].base + boot.mem[i].len;
	n_pages = highest_ram / PAGE_SIZE;
	uint64_t bitmap_bytes = ALIGN_UP((n_pages + 63) / 64 * 8, PAGE_SIZE);

	/* Put the bitmap in the first usable region above the kernel, below 4 GiB (the boot
	 * page tables map only that much). */
	uint64_t where = 0;
	for (int i = 0; i < boot.n_mem && !where; i++) {
		const struct mem_region *r = &boot.mem[i];
		uint64_t start = ALIGN_UP(r->base > kend ? r->base : kend, PAGE_SIZE);
		if (r->type == MEM_USABLE && start + bitmap_bytes <= r->base + r->len &&
		    start + bitmap_bytes <= 4 * GiB)
			where = start;
	}
	if (!where)
		panic("pmm: no room for a %llu-byte page bitmap", (unsigned long long)bitmap_bytes);
	bitmap = (uint64_t *)(uintptr_t)where;
	memset(bitmap, 0xff, bitmap_bytes);
	free_pages = 0;

	for (int i = 0; i < boot.n_mem; i++)
		if (boot.mem[i].type == MEM_USABLE)
			mark_range(boot.mem[i].base, boot.mem[i].len, false);
	/* A usable region may overlap a reserved one in a sloppy map: reserved wins. */
	for (int i = 0; i < boot.n_mem; i++)
		if (boot.mem[i].type != MEM_USABLE)
			mark_range(boot.mem[i].base, boot.mem[i].len, true);
	total_pages = free_pages;
	mark_range(0, 1 * MiB, true); /* real-mode IVT, BIOS data, EBDA, ROMs */
	mark_range(kstart, kend - kstart, true);
	mark_range(where, bitmap_bytes, true);
}

static uint64_t find_run(size_t n, size_t align, uint64_t from, uint64_t limit_page)
{
	if (n == 0 || align == 0 || (align & (align - 1)))
		return 0;
	uint64_t p = ALIGN_UP(from, align);
	while (p + n <= limit_page) {
		if (bitmap[p / 64] == ~0ull && align <= 64) { /* skip a full word quickly */
			p = ALIGN_UP((p / 64 + 1) * 64, align);
			continue;
		}
		size_t got = 0;
		while (got < n && !page_used(p + got))
			got++;
		if (got == n)
			return p;
		p = ALIGN_UP(p + got + 1, align);
	}
	return 0;
}

static uint64_t take(uint64_t p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		set_used(p + i);
	free_pages -= n;
	return p * PAGE_SIZE;
}

void pmm_set_oom_handler(pmm_oom_fn fn)
{
	oom_handler = fn;
}

/*
 * The request for n pages failed: ask the handler to give pages back. It runs at most once
 * at a time: a handler frees pages with pmm_free, but if it allocates (a driver's
 * bookkeeping page) and that fails too, the failure is final rather than a recursion.
 */
static bool reclaim(size_t n)
{
	bool freed;

	if (!oom_handler || in_oom || n > total_pages)
		return false;
	in_oom = true;
	oom_stats.calls++;
	freed = oom_handler(n);
	in_oom = false;
	return freed;
}

/* First fit in [from, limit_page); on failure reclaim and look once more. */
static uint64_t alloc_run(size_t n, size_t align, uint64_t from, uint64_t limit_page)
{
	uint64_t p;

	if (n == 0 || align == 0 || (align & (align - 1)))
		return 0; /* a bad request, not a shortage: nothing to reclaim for */
	p = find_run(n, align, from, limit_page);
	if (!p && reclaim(n)) {
		p = find_run(n, align, from, limit_page);
		if (p)
			oom_stats.rescued++;
		else
			oom_stats.still_failed++;
	}
	return p ? take(p, n) : 0;
}

uint64_t pmm_alloc_below(size_t n, size_t align, uint64_t limit)
{
	uint64_t limit_page = limit ? limit / PAGE_SIZE : n_pages;
	if (limit_page > n_pages)
		limit_page = n_pages;
	return alloc_run(n, align, 1, limit_page);
}

uint64_t pmm_alloc(size_t n, size_t align)
{
	return pmm_alloc_below(n, align, 0);
}

uint64_t pmm_alloc_above(size_t n, size_t align, uint64_t floor)
{
	return alloc_run(n, align, floor / PAGE_SIZE, n_pages);
}

void pmm_free(uint64_t phys, size_t n)
{
	uint64_t p = phys / PAGE_SIZE;
	if (phys % PAGE_SIZE || p + n > n_pages)
		panic("pmm_free: bad range %#llx + %zu pages", (unsigned long long)phys, n);
	for (size_t i = 0; i < n; i++) {
		if (!page_used(p + i))
			panic("pmm_free: page %#llx already free", (unsigned long long)(phys + i * PAGE_SIZE));
		set_free(p + i);
	}
	free_pages += n;
}

uint64_t pmm_free_pages(void) { return free_pages; }
uint64_t pmm_total_pages(void) { return total_pages; }
uint64_t pmm_highest_ram(void) { return highest_ram; }
struct pmm_oom_stats pmm_oom_stats(void) { return oom_stats; }
