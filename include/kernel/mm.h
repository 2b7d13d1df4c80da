/*
 * Memory: the physical page allocator (pmm.c), page tables (paging.c) and the heap newlib's
 * malloc grows into (syscalls.c). All RAM is identity-mapped: a physical address is also a
 * valid pointer.
 */
#ifndef KERNEL_MM_H
#define KERNEL_MM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE 4096ull

/* Build the allocator from boot.mem, keeping the kernel image and low 1 MiB out. */
void pmm_init(void);
/* `n` contiguous pages aligned to `align` pages (a power of two), below `limit` (0: any).
 * Returns the physical address, or 0 when no such run is free. */
uint64_t pmm_alloc_below(size_t n, size_t align, uint64_t limit);
uint64_t pmm_alloc(size_t n, size_t align);
/* Prefer a run at or above `floor`. */
uint64_t pmm_alloc_above(size_t n, size_t align, uint64_t floor);
void pmm_free(uint64_t phys, size_t n);

/*
 * Out of memory: when a pmm_alloc* call finds no run, it calls the handler (if one is set)
 * with the number of pages asked for, and looks again once if the handler returns true
 * ("I freed some pages"). The handler may call pmm_free; allocations it makes itself never
 * call it again (they just fail). Thread context; NULL removes it.
 */
typedef bool (*pmm_oom_fn)(size_t npages);
void pmm_set_oom_handler(pmm_oom_fn fn);
struct pmm_oom_stats {
	uint64_t calls;	       /* times the handler was asked */
	uint64_t rescued;      /* ... and the retry then succeeded */
	uint64_t still_failed; /* ... it freed pages but no run fitted (a contiguous request) */
};
struct pmm_oom_stats pmm_oom_stats(void);
uint64_t pmm_free_pages(void);
uint64_t pmm_total_pages(void);
uint64_t pmm_highest_ram(void);

/* Identity-map all RAM (2 MiB pages, page 0 left unmapped) and switch to these tables. */
void paging_init(void);
/* Map [phys, phys+len) identity, uncached (PCD|PWT) when `uncached`; returns (void *)phys or
 * NULL when page tables cannot be allocated or phys is not canonical. */
void *paging_map(uint64_t phys, size_t len, bool uncached);
/* paging_map(phys, len, true) for device registers, refused (NULL, and a log line) when the
 * range overlaps RAM in the memory map. */
void *mmio_map(uint64_t phys, size_t len);
/* The leaf entry mapping `va` and its page size, for tests; false when unmapped. */
bool paging_lookup(uint64_t va, uint64_t *pte, uint64_t *page_size);
#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)

/* The heap behind newlib's malloc (_sbrk). */
void heap_init(void);
size_t heap_size(void);
size_t heap_used(void);

#endif
