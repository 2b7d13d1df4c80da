/*
 * bootinfo.c: turn what the boot loader handed us into `struct boot_info`.
 *
 * Multiboot2 (GRUB): %ebx points at a list of 8-byte aligned tags (Multiboot2 spec 3.6):
 * the command line, the loader name, the memory map and a copy of the ACPI RSDP.
 * PVH (QEMU -kernel): %ebx points at struct hvm_start_info (Xen's arch-x86/hvm/start_info.h)
 * with the command line, the RSDP address and an E820-style memory map.
 * Everything is copied out, so the loader's memory can be reused afterwards.
 */
#include <kernel/kernel.h>
#include <string.h>

#define MB2_BOOT_MAGIC 0x36d76289
#define PVH_MAGIC 0x336ec578

enum {
	MB2_TAG_END = 0,
	MB2_TAG_CMDLINE = 1,
	MB2_TAG_LOADER = 2,
	MB2_TAG_MMAP = 6,
	MB2_TAG_ACPI_OLD = 14,
	MB2_TAG_ACPI_NEW = 15,
};

struct mb2_tag {
	uint32_t type, size;
};
struct mb2_mmap_entry {
	uint64_t base, len;
	uint32_t type, reserved;
};

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct boot_info boot;

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src && src[i] && i + 1 < size; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

static void add_region(uint64_t base, uint64_t len, uint32_t type)
{
	if (boot.n_mem >= BOOT_MAX_REGIONS || len == 0)
		return;
	if (type < MEM_USABLE || type > MEM_BAD)
		type = MEM_RESERVED;
	boot.mem[boot.n_mem++] = (struct mem_region){base, len, type};
}

static void parse_multiboot2(uint32_t info)
{
	uint32_t total = *(const uint32_t *)(uintptr_t)info;
	uint32_t off = 8;

	boot.path = "multiboot2";
	while (off + sizeof(struct mb2_tag) <= total) {
		const struct mb2_tag *tag = (const void *)(uintptr_t)(info + off);
		const uint8_t *body = (const uint8_t *)(tag + 1);
		if (tag->type == MB2_TAG_END || tag->size < 8)
			break;
		switch (tag->type) {
		case MB2_TAG_CMDLINE:
			copy_str(boot.cmdline, sizeof(boot.cmdline), (const char *)body);
			break;
		case MB2_TAG_LOADER:
			copy_str(boot.loader, sizeof(boot.loader), (const char *)body);
			break;
		case MB2_TAG_MMAP: {
			uint32_t esize = ((const uint32_t *)body)[0];
			for (uint32_t e = 16; esize && e + esize <= tag->size; e += esize) {
				const struct mb2_mmap_entry *m = (const void *)((const uint8_t *)tag + e);
				add_region(m->base, m->len, m->type);
			}
			break;
		}
		case MB2_TAG_ACPI_OLD:
		case MB2_TAG_ACPI_NEW: {
			size_t n = tag->size - 8 < sizeof(boot.rsdp_copy) ? tag->size - 8
									 : sizeof(boot.rsdp_copy);
			if (tag->type == MB2_TAG_ACPI_NEW || !boot.have_rsdp_copy) {
				memcpy(boot.rsdp_copy, body, n);
				boot.have_rsdp_copy = true;
			}
			break;
		}
		}
		off += (tag->size + 7) & ~7u;
	}
}

static void parse_pvh(uint32_t info)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)info;

	boot.path = "pvh";
	copy_str(boot.loader, sizeof(boot.loader), "QEMU PVH");
	if (si->cmdline_paddr)
		copy_str(boot.cmdline, sizeof(boot.cmdline),
			 (const char *)(uintptr_t)si->cmdline_paddr);
	boot.rsdp_phys = si->rsdp_paddr;
	if (si->version >= 1 && si->memmap_paddr) {
		const struct hvm_memmap_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
		for (uint32_t i = 0; i < si->memmap_entries; i++)
			add_region(m[i].addr, m[i].size, m[i].type);
	}
}

bool bootinfo_parse(uint32_t magic, uint32_t info)
{
	memset(&boot, 0, sizeof(boot));
	if (magic == MB2_BOOT_MAGIC)
		parse_multiboot2(info);
	else if (magic == PVH_MAGIC)
		parse_pvh(info);
	else
		return false;
	return true;
}
