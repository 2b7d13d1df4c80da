/*
 * paging.c: the kernel's page tables. Everything is an identity mapping (virtual address =
 * physical address), which is what lets a virtqueue hand the device the same numbers the
 * driver dereferences.
 *
 * RAM is mapped write-back with 2 MiB pages. Device memory (PCI BARs, the LAPIC, IOAPIC,
 * ECAM) is mapped on demand by paging_map(..., uncached=true) with PCD|PWT set, splitting a
 * 2 MiB page into 4 KiB ones where a device window shares it with RAM. Page 0 stays
 * unmapped so a NULL dereference faults instead of reading the real-mode vector table.
 */
#include <kernel/arch.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <string.h>

#define ADDR_MASK 0x000ffffffffff000ull
#define LARGE 0x200000ull

static uint64_t *pml4;

static uint64_t *new_table(void)
{
	/* Below 4 GiB: reachable through the boot tables while we build the new ones. */
	uint64_t phys = pmm_alloc_below(1, 1, 4 * GiB);
	if (!phys)
		return NULL;
	memset((void *)(uintptr_t)phys, 0, PAGE_SIZE);
	return (uint64_t *)(uintptr_t)phys;
}

/* The table that entry `*e` points to, creating it when absent. */
static uint64_t *next_level(uint64_t *e)
{
	if (!(*e & PTE_P)) {
		uint64_t *t = new_table();
		if (!t)
			return NULL;
		*e = (uint64_t)(uintptr_t)t | PTE_P | PTE_W;
	}
	return (uint64_t *)(uintptr_t)(*e & ADDR_MASK);
}

/* Replace a 2 MiB page by a table of 512 4 KiB pages with the same attributes. */
static bool split_large(uint64_t *pde)
{
	uint64_t *pt = new_table();
	if (!pt)
		return false;
	uint64_t base = *pde & ADDR_MASK & ~(LARGE - 1);
	uint64_t flags = *pde & (PTE_P | PTE_W | PTE_PWT | PTE_PCD | PTE_NX);
	for (int i = 0; i < 512; i++)
		pt[i] = (base + (uint64_t)i * PAGE_SIZE) | flags;
	*pde = (uint64_t)(uintptr_t)pt | PTE_P | PTE_W;
	return true;
}

static uint64_t *pd_entry(uint64_t va)
{
	uint64_t *pdpt = next_level(&pml4[(va >> 39) & 511]);
	if (!pdpt)
		return NULL;
	uint64_t *pd = next_level(&pdpt[(va >> 30) & 511]);
	return pd ? &pd[(va >> 21) & 511] : NULL;
}

static bool map_large(uint64_t pa, uint64_t flags)
{
	uint64_t *pde = pd_entry(pa);
	if (!pde)
		return false;
	if (!(*pde & PTE_P))
		*pde = pa | flags | PTE_PS;
	return true;
}

static bool map_small(uint64_t pa, uint64_t flags)
{
	uint64_t *pde = pd_entry(pa);
	if (!pde)
		return false;
	if ((*pde & PTE_P) && (*pde & PTE_PS)) {
		uint64_t cur = *pde & (PTE_PWT | PTE_PCD);
		if (cur == (flags & (PTE_PWT | PTE_PCD)))
			return true; /* already mapped the way we want */
		if (!split_large(pde))
			return false;
	}
	uint64_t *pt = next_level(pde);
	if (!pt)
		return false;
	pt[(pa >> 12) & 511] = pa | flags;
	return true;
}

void paging_init(void)
{
	pml4 = new_table();
	if (!pml4)
		panic("paging: no memory for page tables");

	/* First 2 MiB in 4 KiB pages, page 0 left out. */
	for (uint64_t pa = PAGE_SIZE; pa < LARGE; pa += PAGE_SIZE)
		if (!map_small(pa, PTE_P | PTE_W))
			panic("paging: out of memory");
	/* Every 2 MiB block that holds RAM (usable, ACPI or NVS). */
	for (int i = 0; i < boot.n_mem; i++) {
		const struct mem_region *r = &boot.mem[i];
		if (r->type != MEM_USABLE && r->type != MEM_ACPI && r->type != MEM_NVS)
			continue;
		uint64_t end = ALIGN_UP(r->base + r->len, LARGE);
		for (uint64_t pa = ALIGN_DOWN(r->base, LARGE); pa < end; pa += LARGE)
			if (pa >= LARGE && !map_large(pa, PTE_P | PTE_W))
				panic("paging: out of memory");
	}
	write_cr3((uint64_t)(uintptr_t)pml4);
}

void *paging_map(uint64_t phys, size_t len, bool uncached)
{
	uint64_t flags = PTE_P | PTE_W | (uncached ? PTE_PCD | PTE_PWT | PTE_NX : 0);
	uint64_t pa = ALIGN_DOWN(phys, PAGE_SIZE);
	uint64_t end = ALIGN_UP(phys + len, PAGE_SIZE);

	if (len == 0 || end > (1ull << 47) || end < pa || pa == 0)
		return NULL;
	while (pa < end) {
		uint64_t *pde = pd_entry(pa);
		if (!pde)
			return NULL;
		bool whole = !(pa & (LARGE - 1)) && end - pa >= LARGE && !(*pde & PTE_P);
		if (whole ? !map_large(pa, flags) : !map_small(pa, flags))
			return NULL;
		if (whole) {
			invlpg(pa);
			pa += LARGE;
		} else {
			invlpg(pa);
			pa += PAGE_SIZE;
		}
	}
	return (void *)(uintptr_t)phys;
}

/*
 * Device registers (a PCI BAR, an ACPI-named controller) live wherever the firmware, or
 * whoever controls the device, says they do. A window laid over RAM would turn the
 * kernel's memory uncached and every register write into a write to memory something else
 * uses, so a range that touches RAM in the memory map (what paging_init maps as RAM) is
 * refused.
 */
void *mmio_map(uint64_t phys, size_t len)
{
	uint64_t end = phys + len;
	if (len == 0 || end < phys) {
		kprintf("paging: refusing to map MMIO at %#llx: length %#zx wraps or is empty\n",
			(unsigned long long)phys, len);
		return NULL;
	}
	for (int i = 0; i < boot.n_mem; i++) {
		const struct mem_region *r = &boot.mem[i];
		if (r->type != MEM_USABLE && r->type != MEM_ACPI && r->type != MEM_NVS)
			continue;
		if (phys < r->base + r->len && r->base < end) {
			kprintf("paging: refusing to map MMIO [%#llx-%#llx]: it overlaps RAM "
				"[%#llx-%#llx] in the memory map (a bad BAR or ACPI table?)\n",
				(unsigned long long)phys, (unsigned long long)(end - 1),
				(unsigned long long)r->base,
				(unsigned long long)(r->base + r->len - 1));
			return NULL;
		}
	}
	return paging_map(phys, len, true);
}

bool paging_lookup(uint64_t va, uint64_t *pte, uint64_t *page_size)
{
	const uint64_t *t = pml4;
	if (!t)
		return false;
	for (int level = 3; level >= 0; level--) {
		uint64_t e = t[(va >> (12 + 9 * level)) & 511];
		if (!(e & PTE_P))
			return false;
		if (level == 0 || (level <= 2 && (e & PTE_PS))) {
			*pte = e;
			*page_size = 1ull << (12 + 9 * level);
			return true;
		}
		t = (const uint64_t *)(uintptr_t)(e & ADDR_MASK);
	}
	return false;
}
