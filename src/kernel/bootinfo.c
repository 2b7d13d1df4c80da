/*
 * bootinfo.c: turn what the boot loader handed us into `struct boot_info`.
 *
 * Multiboot2 (GRUB): %ebx points at a list of 8-byte aligned tags (Multiboot2 spec 3.6):
 * the command line, the loader name, the memory map, a copy of the ACPI RSDP and, when GRUB
 * set up a graphics mode, the framebuffer. GRUB on UEFI adds the EFI system table's address
 * and the firmware's own memory map, and has already called ExitBootServices (we never ask
 * it not to): nothing of the firmware is used but its tables and that map.
 * PVH (QEMU -kernel): %ebx points at struct hvm_start_info (Xen's arch-x86/hvm/start_info.h)
 * with the command line, the RSDP address and an E820-style memory map.
 * Everything is copied out, so the loader's memory can be reused afterwards.
 *
 *   qemu-system-x86_64 -M q35 -serial stdio -cdrom build/vio.iso \
 *     -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
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
	MB2_TAG_FRAMEBUFFER = 8,
	MB2_TAG_EFI64 = 12,
	MB2_TAG_ACPI_OLD = 14,
	MB2_TAG_ACPI_NEW = 15,
	MB2_TAG_EFI_MMAP = 17,
};

struct mb2_tag {
	uint32_t type, size;
};
struct mb2_mmap_entry {
	uint64_t base, len;
	uint32_t type, reserved;
};
struct mb2_framebuffer {
	uint64_t addr;
	uint32_t pitch, width, height;
	uint8_t bpp, type;
};

/* UEFI 2.10, 7.2 EFI_BOOT_SERVICES.GetMemoryMap(): EFI_MEMORY_DESCRIPTOR. The firmware
 * says how far apart they are (descriptor size), which may exceed this struct. */
struct efi_memory_descriptor {
	uint32_t type, pad;
	uint64_t phys_start, virt_start, n_pages, attribute;
};
enum efi_memory_type {
	EFI_RESERVED, EFI_LOADER_CODE, EFI_LOADER_DATA, EFI_BOOT_SERVICES_CODE,
	EFI_BOOT_SERVICES_DATA, EFI_RUNTIME_SERVICES_CODE, EFI_RUNTIME_SERVICES_DATA,
	EFI_CONVENTIONAL, EFI_UNUSABLE, EFI_ACPI_RECLAIM, EFI_ACPI_NVS,
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

/* Append a region, merged with the previous one when they touch and agree on the type (an
 * EFI map lists hundreds of small ranges that differ only in what the firmware used them
 * for). */
static void add_region(uint64_t base, uint64_t len, uint32_t type)
{
	struct mem_region *last = boot.n_mem ? &boot.mem[boot.n_mem - 1] : NULL;

	if (len == 0)
		return;
	if (type < MEM_USABLE || type > MEM_BAD)
		type = MEM_RESERVED;
	if (last && last->type == type && last->base + last->len == base) {
		last->len += len;
		return;
	}
	if (boot.n_mem >= BOOT_MAX_REGIONS) {
		boot.n_mem_dropped++;
		return;
	}
	boot.mem[boot.n_mem++] = (struct mem_region){base, len, type};
}

/*
 * After ExitBootServices the memory the firmware lent to itself and to loaders is free;
 * runtime services code and data stay the firmware's for good (UEFI 2.10, 7.2, table
 * "Memory Type Usage after ExitBootServices()"). Persistent memory, MMIO and anything
 * newer than this list are not RAM to this kernel.
 */
static uint32_t efi_to_mem_type(uint32_t efi)
{
	switch (efi) {
	case EFI_LOADER_CODE:
	case EFI_LOADER_DATA:
	case EFI_BOOT_SERVICES_CODE:
	case EFI_BOOT_SERVICES_DATA:
	case EFI_CONVENTIONAL:
		return MEM_USABLE;
	case EFI_ACPI_RECLAIM:
		return MEM_ACPI;
	case EFI_ACPI_NVS:
		return MEM_NVS;
	case EFI_UNUSABLE:
		return MEM_BAD;
	default:
		return MEM_RESERVED;
	}
}

/* Multiboot2 tag 6 (E820 types) or 17 (EFI descriptors): both are an entry size, a
 * version and then the entries, from byte 16 of the tag. */
static void add_mmap_tag(const struct mb2_tag *tag, bool efi)
{
	uint32_t esize = ((const uint32_t *)(tag + 1))[0];
	size_t min = efi ? sizeof(struct efi_memory_descriptor) : sizeof(struct mb2_mmap_entry);

	if (esize < min)
		return;
	for (uint32_t e = 16; e + esize <= tag->size; e += esize) {
		const void *p = (const uint8_t *)tag + e;
		if (efi) {
			const struct efi_memory_descriptor *d = p;
			add_region(d->phys_start, d->n_pages * 4096, efi_to_mem_type(d->type));
		} else {
			const struct mb2_mmap_entry *m = p;
			add_region(m->base, m->len, m->type);
		}
	}
}

static void parse_multiboot2(uint32_t info)
{
	uint32_t total = *(const uint32_t *)(uintptr_t)info;
	uint32_t off = 8;
	const struct mb2_tag *mmap = NULL, *efi_mmap = NULL;

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
		case MB2_TAG_MMAP:
			mmap = tag;
			break;
		case MB2_TAG_EFI_MMAP:
			efi_mmap = tag;
			break;
		case MB2_TAG_EFI64:
			if (tag->size >= 16) {
				boot.efi_system_table = *(const uint64_t *)body;
				boot.path = "multiboot2, UEFI";
			}
			break;
		case MB2_TAG_FRAMEBUFFER:
			if (tag->size >= 8 + sizeof(struct mb2_framebuffer)) {
				const struct mb2_framebuffer *fb = (const void *)body;
				boot.fb = (struct boot_fb){fb->addr, fb->pitch, fb->width,
							   fb->height, fb->bpp, fb->type};
			}
			break;
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
	/* On UEFI the firmware's own map is the original: GRUB's E820-style one is derived
	 * from it. Either gives the same RAM; the EFI one also names what is runtime firmware. */
	if (efi_mmap) {
		boot.mem_source = "the EFI memory map";
		add_mmap_tag(efi_mmap, true);
	} else if (mmap) {
		boot.mem_source = "the multiboot2 memory map";
		add_mmap_tag(mmap, false);
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
		boot.mem_source = "the PVH memory map";
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

void bootinfo_print(void)
{
	if (boot.efi_system_table)
		kprintf("boot: UEFI firmware, boot services exited, EFI system table at %#llx\n",
			(unsigned long long)boot.efi_system_table);
	kprintf("boot: %d memory region(s) from %s\n", boot.n_mem,
		boot.mem_source ? boot.mem_source : "nowhere: the loader gave no memory map");
	if (boot.n_mem_dropped)
		kprintf("boot: %d more region(s) did not fit in %d entries and are not used\n",
			boot.n_mem_dropped, BOOT_MAX_REGIONS);
	if (boot.fb.addr)
		kprintf("boot: framebuffer %ux%u, %u bits per pixel, type %u, at %#llx, %u bytes "
			"per line (not used: this kernel talks on COM1)\n",
			boot.fb.width, boot.fb.height, boot.fb.bpp, boot.fb.type,
			(unsigned long long)boot.fb.addr, boot.fb.pitch);
}
