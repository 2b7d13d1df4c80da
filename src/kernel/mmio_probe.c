/*
 * mmio_probe.c: where the virtio-mmio devices are. PCI devices are found by enumeration;
 * virtio-mmio has none (virtio 1.2, 4.2): the platform must tell the kernel each device's
 * register window and interrupt line. QEMU's microvm tells it one of two ways:
 *
 *   acpi=on (the default)  one DSDT device with _HID "LNRO0005" per slot in use, which
 *                          acpi.c reads: a 0x200-byte window from 0xfeb00000 up, and a GSI
 *                          from 24 up (the second IOAPIC)
 *   acpi=off               no ACPI at all; QEMU appends one word per device to the kernel
 *                          command line in Linux's syntax, virtio_mmio.device=512@0xfeb00e00:12
 *                          (GSIs 5 to 12, the one IOAPIC)
 *
 * The command-line form works on any machine, written by hand:
 *
 *   virtio_mmio.device=<size>@<base>:<irq>[:<id>]
 *
 * size and base in C notation (512, 0x200, 0777) with an optional K, M or G suffix, as Linux's
 * memparse reads them, so 4K is 0x1000; irq a number; id (Linux's platform device number) is
 * read and ignored. As in Linux, irq is an IRQ number: 0-15 are ISA IRQs, which the MADT may
 * send to another GSI (an interrupt source override); above 15 it is the GSI.
 *
 * Nothing is touched before it is checked. A window must hold the 0x100 bytes of registers
 * (4.2.2) and be no larger than 64 KiB, start on a 32-bit boundary (every register is a
 * 32-bit word), stay clear of RAM (mapping RAM uncached and writing a status register into
 * it would corrupt memory) and of every other window. An entry that fails is logged with the
 * reason and ignored; the rest still come up. A line the kernel cannot lend (no IOAPIC has
 * it, or it is COM1's, the timer's or the cascade's: ioapic_platform_line) is refused and the
 * device polled.
 *
 *   qemu-system-x86_64 -M microvm -kernel build/vio.elf -device virtio-rng-device
 */
#include <kernel/acpi.h>
#include <kernel/apic.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <string.h>
#include <vio/format.h>
#include <vio/port.h>
#include <vio/spec/virtio_mmio.h>

#define MMIO_WINDOW_MAX (64 * KiB)

/* A number as C writes it: 0x for hex, a leading 0 for octal, else decimal. False when
 * there is no digit or it overflows 64 bits; *s moves past it. */
static bool parse_number(const char **s, uint64_t *v)
{
	const char *p = *s;
	unsigned base = 10;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && p[2]) {
		base = 16;
		p += 2;
	} else if (p[0] == '0') {
		base = 8;
	}
	uint64_t n = 0;
	const char *first = p;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (*p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		if (d >= base)
			break;
		if (n > (UINT64_MAX - d) / base)
			return false;
		n = n * base + d;
	}
	if (p == first)
		return false;
	*v = n;
	*s = p;
	return true;
}

/* A size or an address: a number with an optional K, M or G suffix (Linux's memparse). */
static bool parse_size(const char **s, uint64_t *v)
{
	if (!parse_number(s, v))
		return false;
	unsigned shift = 0;
	if (**s == 'k' || **s == 'K')
		shift = 10;
	else if (**s == 'm' || **s == 'M')
		shift = 20;
	else if (**s == 'g' || **s == 'G')
		shift = 30;
	if (shift) {
		if (*v > UINT64_MAX >> shift)
			return false;
		*v <<= shift;
		(*s)++;
	}
	return true;
}

/* One virtio_mmio.device= value; NULL, or why it is junk. */
static const char *parse_entry(const char *text, struct mmio_window *w)
{
	const char *p = text;
	uint64_t irq, id;
	if (!parse_size(&p, &w->size))
		return "no size (want <size>@<base>:<irq>)";
	if (*p++ != '@')
		return "no '@' after the size (want <size>@<base>:<irq>)";
	if (!parse_size(&p, &w->base))
		return "no base address after '@'";
	if (*p++ != ':')
		return "no ':<irq>' after the base";
	if (!parse_number(&p, &irq))
		return "no IRQ number after ':'";
	if (irq >= VIO_NO_IRQ)
		return "IRQ number out of range";
	if (*p == ':') {
		p++;
		if (!parse_number(&p, &id))
			return "no device id after the second ':'";
	}
	if (*p)
		return "junk after the entry";
	w->irq = (uint32_t)irq;
	return NULL;
}

/* Linux reads the IRQ of a command-line entry as an IRQ number: 0-15 are ISA IRQs, and a MADT
 * interrupt source override may deliver one at another GSI. */
static uint32_t isa_irq_to_gsi(uint32_t irq)
{
	for (int i = 0; irq < 16 && i < acpi.n_isos; i++)
		if (acpi.iso[i].source == irq && acpi.iso[i].gsi != irq) {
			kprintf("virtio-mmio: IRQ %u is an ISA IRQ the MADT sends to GSI %u\n", irq,
				acpi.iso[i].gsi);
			return acpi.iso[i].gsi;
		}
	return irq;
}

static bool overlaps(uint64_t base, uint64_t size, uint64_t other, uint64_t other_size)
{
	return base < other + other_size && other < base + size;
}

/* NULL when the window may be mapped and probed, or why not. *dup is the index of a window
 * found before that is exactly this one (the same device named twice: not an error, but
 * probed once), else -1. */
static const char *check_window(const struct mmio_window *w, const struct mmio_window *found,
				int n_found, int *dup)
{
	static char why[96];
	*dup = -1;
	if (w->size < sizeof(struct virtio_mmio_regs))
		return "window smaller than the 0x100 bytes of registers (4.2.2)";
	if (w->size > MMIO_WINDOW_MAX)
		return "window larger than 64 KiB";
	if (w->base % 4)
		return "base not 32-bit aligned (every register is a 32-bit word)";
	if (!w->base || w->base > (1ull << 47) - w->size)
		return "base outside the 128 TiB of physical address space this kernel maps";
	for (int i = 0; i < boot.n_mem; i++) {
		const struct mem_region *r = &boot.mem[i];
		if ((r->type == MEM_USABLE || r->type == MEM_ACPI || r->type == MEM_NVS) &&
		    overlaps(w->base, w->size, r->base, r->len)) {
			vio_snprintf(why, sizeof(why), "window overlaps RAM at %#llx-%#llx",
				     (unsigned long long)r->base,
				     (unsigned long long)(r->base + r->len - 1));
			return why;
		}
	}
	for (int i = 0; i < n_found; i++) {
		if (!overlaps(w->base, w->size, found[i].base, found[i].size))
			continue;
		if (w->base == found[i].base && w->size == found[i].size &&
		    w->irq == found[i].irq) {
			*dup = i;
			return NULL;
		}
		vio_snprintf(why, sizeof(why), "window overlaps the one at %#llx (%s)",
			     (unsigned long long)found[i].base, found[i].from);
		return why;
	}
	return NULL;
}

/* Check one window and add it to the list, or log why not. */
static int add_window(struct mmio_window *out, int n, int max, struct mmio_window w,
		      const char *text)
{
	int dup;
	const char *why = check_window(&w, out, n, &dup);
	if (!why && dup >= 0) {
		kprintf("virtio-mmio: %s: the same device as the %s names, probed once\n", text,
			out[dup].from);
		return n;
	}
	if (!why && n == max)
		why = "too many virtio-mmio devices";
	if (why) {
		kprintf("virtio-mmio: %s: %s; ignored\n", text, why);
		return n;
	}
	const char *line_why = w.irq != VIO_NO_IRQ ? ioapic_platform_line(w.irq) : NULL;
	if (line_why) {
		kprintf("virtio-mmio: %s: GSI %u refused: %s; the device is polled\n", text, w.irq,
			line_why);
		w.irq = VIO_NO_IRQ;
	}
	char irq[24] = "no interrupt";
	if (w.irq != VIO_NO_IRQ)
		vio_snprintf(irq, sizeof(irq), "GSI %u", w.irq);
	kprintf("virtio-mmio: %#llx bytes at %#llx, %s (%s)\n", (unsigned long long)w.size,
		(unsigned long long)w.base, irq, w.from);
	out[n] = w;
	return n + 1;
}

/* The DSDT's devices (acpi.c found them). A line the port cannot route as described is left
 * out, and the device polled. */
static int dsdt_windows(struct mmio_window *out, int n, int max)
{
	for (int i = 0; i < acpi.n_mmio; i++) {
		const struct acpi_mmio *m = &acpi.mmio[i];
		char text[48];
		vio_snprintf(text, sizeof(text), "DSDT device at %#llx",
			     (unsigned long long)m->base);
		struct mmio_window w = {m->base, m->len, m->has_irq ? m->gsi : VIO_NO_IRQ, "DSDT"};
		if (m->has_irq && !m->level_high) {
			kprintf("virtio-mmio: %s: GSI %u is not level-triggered, active high "
				"as virtio-mmio lines are; polled\n",
				text, m->gsi);
			w.irq = VIO_NO_IRQ;
		}
		n = add_window(out, n, max, w, text);
	}
	return n;
}

/* The command line's virtio_mmio.device= words. */
static int cmdline_windows(struct mmio_window *out, int n, int max)
{
	static const char key[] = "virtio_mmio.device";
	char value[64], text[96];
	const char *pos = NULL;
	bool cut = strlen(boot.cmdline) == sizeof(boot.cmdline) - 1;
	int len;
	while ((len = cmdline_next(key, &pos, value, sizeof(value))) >= 0) {
		vio_snprintf(text, sizeof(text), "%s=%s", key, value);
		struct mmio_window w = {.from = "command line"};
		const char *why = NULL;
		if ((size_t)len >= sizeof(value))
			why = "entry too long";
		else if (cut && !*pos)
			why = "the command line was cut here at its maximum length";
		else
			why = parse_entry(value, &w);
		if (why) {
			kprintf("virtio-mmio: %s: %s; ignored\n", text, why);
			continue;
		}
		w.irq = isa_irq_to_gsi(w.irq);
		n = add_window(out, n, max, w, text);
	}
	return n;
}

int mmio_windows(struct mmio_window *out, int max)
{
	return cmdline_windows(out, dsdt_windows(out, 0, max), max);
}
