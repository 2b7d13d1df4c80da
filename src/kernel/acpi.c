/*
 * acpi.c: find the ACPI tables and read the few the kernel needs (ACPI 6.4 spec, chapter 5).
 *
 * The RSDP comes from the boot loader (a copy in a multiboot2 tag, or its address from PVH)
 * or, failing that, from the BIOS areas where firmware must put it: the first KiB of the
 * EBDA and 0xE0000-0xFFFFF, on 16-byte boundaries (5.2.5.1). Every table is checked: its
 * signature, a length that fits, and a checksum summing to zero. A bad table is skipped
 * and reported, not trusted. From the DSDT's AML we pick out, by pattern rather than by
 * running it, the \_S5 sleep type and the virtio-mmio devices QEMU's microvm describes.
 */
#include <kernel/acpi.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <string.h>

struct acpi_info acpi;

struct __attribute__((packed)) rsdp {
	char signature[8];
	uint8_t checksum;
	char oem[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length; /* revision >= 2 from here */
	uint64_t xsdt;
	uint8_t ext_checksum, reserved[3];
};
struct __attribute__((packed)) sdt_header {
	char signature[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem[6], oem_table[8];
	uint32_t oem_revision, creator, creator_revision;
};
_Static_assert(sizeof(struct sdt_header) == 36, "ACPI 5.2.6");

static bool sum_ok(const void *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += ((const uint8_t *)p)[i];
	return s == 0;
}

static const struct rsdp *check_rsdp(const void *p)
{
	const struct rsdp *r = p;
	if (memcmp(r->signature, "RSD PTR ", 8) || !sum_ok(r, 20))
		return NULL;
	if (r->revision >= 2 && (r->length < sizeof(*r) || r->length > 4096 ||
				 !sum_ok(r, sizeof(*r))))
		return NULL;
	return r;
}

static const struct rsdp *scan(uint64_t start, uint64_t len)
{
	for (uint64_t a = ALIGN_UP(start, 16); a + 20 <= start + len; a += 16) {
		const struct rsdp *r = check_rsdp((const void *)(uintptr_t)a);
		if (r) {
			acpi.rsdp_phys = a;
			return r;
		}
	}
	return NULL;
}

static const struct rsdp *find_rsdp(void)
{
	if (boot.have_rsdp_copy) {
		const struct rsdp *r = check_rsdp(boot.rsdp_copy);
		if (r)
			return r;
	}
	if (boot.rsdp_phys && paging_map(boot.rsdp_phys, sizeof(struct rsdp), false)) {
		const struct rsdp *r = check_rsdp((const void *)(uintptr_t)boot.rsdp_phys);
		if (r) {
			acpi.rsdp_phys = boot.rsdp_phys;
			return r;
		}
	}
	/* The first KiB of the EBDA. The BIOS data area names its segment at 0x40e, but that is
	 * page 0, which this kernel leaves unmapped to catch NULL pointers. The EBDA starts
	 * where the usable memory at address 0 ends (the BIOS takes it from the top of
	 * conventional memory), so the memory map says where it is. */
	uint64_t ebda = 0;
	for (int i = 0; i < boot.n_mem; i++)
		if (boot.mem[i].type == MEM_USABLE && boot.mem[i].base == 0)
			ebda = boot.mem[i].len;
	const struct rsdp *r = NULL;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		r = scan(ebda, 1024);
	return r ? r : scan(0xe0000, 0x20000);
}

/* Map and validate a table; NULL when it is not sane. */
static const struct sdt_header *table_at(uint64_t phys)
{
	if (!phys || !paging_map(phys, sizeof(struct sdt_header), false))
		return NULL;
	const struct sdt_header *h = (const void *)(uintptr_t)phys;
	if (h->length < sizeof(*h) || h->length > 16 * MiB || !paging_map(phys, h->length, false))
		return NULL;
	if (!sum_ok(h, h->length)) {
		char sig[5] = {h->signature[0], h->signature[1], h->signature[2], h->signature[3]};
		kprintf("acpi: table %s at %#llx has a bad checksum, ignored\n", sig,
			(unsigned long long)phys);
		return NULL;
	}
	return h;
}

static void parse_madt(const struct sdt_header *h)
{
	const uint8_t *p = (const uint8_t *)h + 44, *end = (const uint8_t *)h + h->length;
	acpi.lapic_addr = *(const uint32_t *)((const uint8_t *)h + 36);
	acpi.have_madt = true;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		switch (p[0]) {
		case 0: /* processor local APIC: count enabled CPUs */
			if (p[1] >= 8 && (*(const uint32_t *)(p + 4) & 1))
				acpi.n_cpus++;
			break;
		case 1: /* I/O APIC */
			if (p[1] >= 12 && acpi.n_ioapics < ACPI_MAX_IOAPICS)
				acpi.ioapic[acpi.n_ioapics++] = (struct acpi_ioapic){
					p[2], *(const uint32_t *)(p + 4), *(const uint32_t *)(p + 8)};
			break;
		case 2: /* interrupt source override */
			if (p[1] >= 10 && acpi.n_isos < ACPI_MAX_ISOS)
				acpi.iso[acpi.n_isos++] = (struct acpi_iso){
					p[3], *(const uint32_t *)(p + 4), *(const uint16_t *)(p + 8)};
			break;
		case 5: /* 64-bit local APIC address override */
			if (p[1] >= 12)
				acpi.lapic_addr = *(const uint64_t *)(p + 4);
			break;
		}
		p += p[1];
	}
}

static void parse_mcfg(const struct sdt_header *h)
{
	for (uint32_t off = 44; off + 16 <= h->length && acpi.n_mcfg < ACPI_MAX_MCFG; off += 16) {
		const uint8_t *e = (const uint8_t *)h + off;
		acpi.mcfg[acpi.n_mcfg++] = (struct acpi_mcfg){
			*(const uint64_t *)e, *(const uint16_t *)(e + 8), e[10], e[11]};
	}
}

/*
 * \_S5 without an AML interpreter: find the bytes "_S5_" followed by a Package whose first
 * two elements are the SLP_TYP values (the trick most hobby kernels use; QEMU's DSDT has
 * Name(_S5, Package() {0, 0, ...})). Every read is checked against the table's end: on
 * microvm the package is the table's last ten bytes.
 */
static void find_s5(const struct sdt_header *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt + 36, *end = (const uint8_t *)dsdt + dsdt->length;
	for (; p + 6 <= end; p++) {
		if (memcmp(p, "_S5_", 4) || p[4] != 0x12) /* PackageOp */
			continue;
		const uint8_t *q = p + 5;
		q += ((*q & 0xc0) >> 6) + 1; /* PkgLength */
		q++;                         /* NumElements */
		uint16_t v[2];
		for (int i = 0; i < 2; i++) {
			if (q + 2 <= end && *q == 0x0a) { /* BytePrefix */
				v[i] = q[1];
				q += 2;
			} else if (q < end && (*q == 0x00 || *q == 0x01)) { /* ZeroOp, OneOp */
				v[i] = *q++;
			} else {
				return;
			}
		}
		acpi.slp_typa = v[0];
		acpi.slp_typb = v[1];
		acpi.have_s5 = true;
		return;
	}
}

/* An AML PkgLength (ACPI 20.2.4) at p: the length it encodes, which counts its own bytes;
 * *n is how many bytes it takes. 0 when it runs past `end`. */
static uint32_t pkg_length(const uint8_t *p, const uint8_t *end, unsigned *n)
{
	unsigned follow = p[0] >> 6;
	if (p + 1 + follow > end)
		return 0;
	*n = 1 + follow;
	if (!follow)
		return p[0] & 0x3f;
	uint32_t len = p[0] & 0x0f;
	for (unsigned i = 0; i < follow; i++)
		len |= (uint32_t)p[1 + i] << (4 + 8 * i);
	return len;
}

/*
 * The resource template of a _CRS (ACPI 6.4): small items (bit 7 clear, length in bits 0-2)
 * and large ones (a type byte, a 16-bit length, the data). We want two large ones:
 * Memory32Fixed (0x86: info, base, length) and Extended Interrupt (0x89: flags, count,
 * 32-bit GSIs; flags bit 1 set is edge-triggered, bit 2 set is active-low, 6.4.3.6).
 */
static void parse_mmio_resources(const uint8_t *r, const uint8_t *end, struct acpi_mmio *m)
{
	while (r < end) {
		if (!(r[0] & 0x80)) {
			if (r[0] >> 3 == 0x0f)
				return; /* End Tag */
			r += 1 + (r[0] & 7);
			continue;
		}
		if (r + 3 > end)
			return;
		uint16_t len = (uint16_t)(r[1] | r[2] << 8);
		const uint8_t *d = r + 3;
		if (d + len > end)
			return;
		if (r[0] == 0x86 && len >= 9) {
			m->base = *(const uint32_t *)(d + 1);
			m->len = *(const uint32_t *)(d + 5);
		} else if (r[0] == 0x89 && len >= 6 && d[1] >= 1 && !m->has_irq) {
			m->has_irq = true;
			m->gsi = *(const uint32_t *)(d + 2);
			m->level_high = !(d[0] & 6);
		}
		r = d + len;
	}
}

/*
 * virtio-mmio devices in the DSDT, again without an AML interpreter. QEMU's microvm (with
 * ACPI on) describes each device it has as
 *
 *   Device (VR00) { Name (_HID, "LNRO0005")  Name (_UID, 0)  Name (_CCA, One)
 *                   Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, base, 0x200)
 *                       Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { gsi } }) }
 *
 * so we look for the bytes of Name (_HID, "LNRO0005") and read the first Name (_CRS, Buffer)
 * after them, stopping at the next Device. A device whose template has no window is skipped.
 */
static void find_virtio_mmio(const struct sdt_header *dsdt)
{
	static const uint8_t hid[] = "\x08_HID\x0dLNRO0005"; /* NameOp, StringPrefix; + NUL */
	static const uint8_t crs[] = "\x08_CRS\x11";         /* NameOp, BufferOp */
	const uint8_t *p = (const uint8_t *)dsdt + 36, *end = (const uint8_t *)dsdt + dsdt->length;
	for (; p + sizeof(hid) <= end && acpi.n_mmio < ACPI_MAX_MMIO; p++) {
		if (memcmp(p, hid, sizeof(hid)))
			continue;
		const uint8_t *q = p + sizeof(hid);
		const size_t crs_len = sizeof(crs) - 1;
		for (; q + crs_len <= end && memcmp(q, crs, crs_len); q++)
			if (q[0] == 0x5b && q[1] == 0x82)
				break; /* the next Device (ExtOpPrefix, DeviceOp) */
		if (q + crs_len >= end || memcmp(q, crs, crs_len))
			continue;
		unsigned n;
		const uint8_t *buf = q + crs_len;
		uint32_t len = pkg_length(buf, end, &n);
		if (len <= n || len > (size_t)(end - buf))
			continue;
		const uint8_t *buf_end = buf + len, *data = buf + n;
		/* BufferSize: a ByteConst, WordConst or DWordConst (0x0a, 0x0b, 0x0c) */
		unsigned size_bytes = *data == 0x0a ? 1 : *data == 0x0b ? 2 : *data == 0x0c ? 4 : 0;
		if (!size_bytes || data + 1 + size_bytes > buf_end)
			continue;
		struct acpi_mmio m = {0};
		parse_mmio_resources(data + 1 + size_bytes, buf_end, &m);
		if (m.base && m.len)
			acpi.mmio[acpi.n_mmio++] = m;
	}
}

/* A Generic Address Structure (5.2.3.2) naming a byte register in memory or I/O space. */
static void byte_register(const uint8_t *gas, uint64_t *addr, bool *io)
{
	uint64_t a = *(const uint64_t *)(gas + 4);
	if (gas[0] > 1 || !a)
		return; /* another address space: not one we can write */
	*addr = a;
	*io = gas[0] == 1;
}

static void parse_fadt(const struct sdt_header *h)
{
	const uint8_t *f = (const uint8_t *)h;
	if (h->length < 76)
		return;
	acpi.pm1a_cnt = *(const uint32_t *)(f + 64);
	acpi.pm1b_cnt = *(const uint32_t *)(f + 68);
	/* Hardware-reduced ACPI (5.2.9, flag bit 20; QEMU's microvm) has no PM1 blocks: sleep
	 * states are entered through the sleep control register (4.8.3.7). */
	if (h->length >= 256 && (*(const uint32_t *)(f + 112) & 1u << 20))
		byte_register(f + 244, &acpi.sleep_ctl, &acpi.sleep_ctl_io);
	uint64_t dsdt = *(const uint32_t *)(f + 40);
	if (h->length >= 148 && *(const uint64_t *)(f + 140))
		dsdt = *(const uint64_t *)(f + 140);
	const struct sdt_header *d = table_at(dsdt);
	if (d && !memcmp(d->signature, "DSDT", 4)) {
		find_s5(d);
		find_virtio_mmio(d);
	}
}

bool acpi_init(void)
{
	const struct rsdp *r = find_rsdp();
	if (!r)
		return false;
	acpi.found = true;
	acpi.revision = r->revision;
	memcpy(acpi.oem, r->oem, 6);
	acpi.xsdt = r->revision >= 2 && r->xsdt;
	const struct sdt_header *root = table_at(acpi.xsdt ? r->xsdt : r->rsdt);
	if (!root || memcmp(root->signature, acpi.xsdt ? "XSDT" : "RSDT", 4)) {
		kprintf("acpi: root table missing or corrupt\n");
		return false;
	}
	size_t esize = acpi.xsdt ? 8 : 4;
	size_t n = (root->length - sizeof(*root)) / esize;
	const uint8_t *entries = (const uint8_t *)(root + 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t phys = esize == 8 ? *(const uint64_t *)(entries + i * 8)
					   : *(const uint32_t *)(entries + i * 4);
		const struct sdt_header *h = table_at(phys);
		if (!h)
			continue;
		acpi.n_tables++;
		if (!memcmp(h->signature, "APIC", 4))
			parse_madt(h);
		else if (!memcmp(h->signature, "MCFG", 4))
			parse_mcfg(h);
		else if (!memcmp(h->signature, "FACP", 4))
			parse_fadt(h);
	}
	return true;
}

void acpi_print_summary(void)
{
	if (!acpi.found) {
		kprintf("acpi: no RSDP found\n");
		return;
	}
	kprintf("acpi: RSDP rev %u (OEM %s) %s, %d tables\n", acpi.revision, acpi.oem,
		acpi.xsdt ? "XSDT" : "RSDT", acpi.n_tables);
	kprintf("acpi: MADT: %d CPU(s), LAPIC %#llx, %d IOAPIC(s)", acpi.n_cpus,
		(unsigned long long)acpi.lapic_addr, acpi.n_ioapics);
	for (int i = 0; i < acpi.n_ioapics; i++)
		kprintf(" [id %u at %#x gsi %u]", acpi.ioapic[i].id, acpi.ioapic[i].addr,
			acpi.ioapic[i].gsi_base);
	kprintf(", %d override(s)\n", acpi.n_isos);
	for (int i = 0; i < acpi.n_mcfg; i++)
		kprintf("acpi: MCFG: ECAM %#llx segment %u buses %u-%u\n",
			(unsigned long long)acpi.mcfg[i].base, acpi.mcfg[i].segment,
			acpi.mcfg[i].start_bus, acpi.mcfg[i].end_bus);
	if (!acpi.n_mcfg)
		kprintf("acpi: no MCFG (PCI config through port I/O)\n");
	if (acpi.n_mmio)
		kprintf("acpi: DSDT: %d virtio-mmio device(s)\n", acpi.n_mmio);
}
