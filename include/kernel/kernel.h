/*
 * The teaching kernel's shared declarations: boot information, logging, the command line,
 * and how a test or benchmark run ends (isa-debug-exit).
 */
#ifndef KERNEL_KERNEL_H
#define KERNEL_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* ---- boot information, from multiboot2 or PVH (bootinfo.c) ---- */
enum mem_type { MEM_USABLE = 1, MEM_RESERVED = 2, MEM_ACPI = 3, MEM_NVS = 4, MEM_BAD = 5 };
struct mem_region {
	uint64_t base, len;
	uint32_t type; /* enum mem_type (E820 numbering) */
};
#define BOOT_MAX_REGIONS 128
/* A linear framebuffer the loader set up (multiboot2 tag 8); addr 0 when there is none. */
struct boot_fb {
	uint64_t addr;
	uint32_t pitch, width, height; /* pitch in bytes per line */
	uint8_t bpp, type;	       /* type: 0 indexed, 1 direct RGB, 2 EGA text */
};
struct boot_info {
	const char *path;	/* "multiboot2", "multiboot2, UEFI" or "pvh" */
	const char *mem_source; /* which of the loader's memory maps mem[] came from */
	char loader[64];
	char cmdline[512];
	struct mem_region mem[BOOT_MAX_REGIONS];
	int n_mem;
	int n_mem_dropped;	/* regions left out: mem[] was full */
	uint64_t efi_system_table; /* physical address, 0 when not booted from UEFI */
	struct boot_fb fb;
	uint64_t rsdp_phys; /* 0 when the loader gave none */
	uint8_t rsdp_copy[36];
	bool have_rsdp_copy;
};
extern struct boot_info boot;
/* Parse the loader's structures into `boot`; false when the magic is unknown. */
bool bootinfo_parse(uint32_t magic, uint32_t info);
/* One line each on the firmware, the memory map's source and the framebuffer. */
void bootinfo_print(void);

/* ---- command line (cmdline.c) ---- */
/* Value of `key=value` on the command line, copied to buf; false when absent, and when the
 * value does not fit in buf (that is logged): either way the caller's default applies. */
bool cmdline_get(const char *key, char *buf, size_t size);
/* For a key that may appear more than once: the value of the next `key=value` word after
 * *pos (NULL: from the start), copied to buf (cut to size - 1 bytes); *pos moves past it.
 * Returns the value's whole length, or -1 when no word is left. */
int cmdline_next(const char *key, const char **pos, char *buf, size_t size);
enum kmode { MODE_SHELL, MODE_TEST, MODE_BENCH };
extern enum kmode kernel_mode;
extern int kernel_log_level; /* enum vio_log_level; vio.log=err|warn|info|debug */

/* ---- console output (serial.c) ---- */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);
void kputs_raw(const char *s, size_t n);

/* ---- ending the run ---- */
/* Exit QEMU through isa-debug-exit (0x10 pass -> status 33, 0x11 fail -> 35); halt otherwise. */
__attribute__((noreturn)) void qemu_exit(bool pass);
/* ACPI soft-off (S5); falls back to qemu_exit(true). */
__attribute__((noreturn)) void poweroff(void);
__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void selftest_run(void);
void shell_run(void);
void bench_run(void);

#endif
