/*
 * dump.c: crash dumps to a disk, written on a panic or a fatal exception.
 *
 *   vio.dump=blk1             the dump goes to blk1, from its first sector
 *   vio.dump=blk1@2048        ... from sector 2048 (a multiple of the disk's logical block)
 *   vio.dump=blk1@2048,ram    ... followed by every usable RAM range
 *
 * At boot (dump_init) the disk's driver sets aside a request slot, a buffer and room on its
 * first queue (vio_blk_panic_reserve). When the kernel dies, dump_write streams the records
 * (include/kernel/dump.h has the format) through that buffer with vio_blk_panic_write: the
 * driver abandons whatever the disk had in flight and polls for each write, with interrupts
 * off, no allocation and no lock. The header is written last, over a zeroed one written
 * first, so a dump cut short is seen as no dump rather than taken for a whole one.
 *
 * What it cannot know: whether the crash interrupted a call into the dump disk's driver,
 * whose queue would then be half updated (vio/blk.h, the panic writes' preconditions).
 * This kernel makes every device call with interrupts off (DEV_CALL), so only a fault inside
 * the driver itself can do that; use a disk nothing else writes to for the dump.
 *
 *   scripts/vio-dump disk.img [--sector N] [--elf build/vio.elf]   prints it back
 */
#include <kernel/devices.h>
#include <kernel/dump.h>
#include <kernel/kernel.h>
#include <kernel/timer.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>
#include <vio/format.h>

#define DUMP_BUFFER   (64 * 1024)
#define BACKTRACE_MAX 32

static struct vio_blk *disk;
static char disk_name[8];
static uint64_t first_sector;
static bool with_ram;
static uint8_t *buf; /* the driver's panic buffer */
static uint32_t buf_bytes;
static uint32_t crc_table[256];
static volatile bool dumping;

/* CRC-32, reflected, polynomial 0xedb88320: what zlib.crc32 computes on the host. */
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc_update(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *b = p;
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* "blk1", "blk1@2048", "blk1@2048,ram", "blk1,ram" */
static bool parse(char *v)
{
	char *ram = strchr(v, ',');
	if (ram) {
		if (strcmp(ram, ",ram"))
			return false;
		*ram = '\0';
		with_ram = true;
	}
	char *at = strchr(v, '@');
	if (at) {
		char *end;
		*at = '\0';
		first_sector = strtoull(at + 1, &end, 0);
		if (end == at + 1 || *end)
			return false;
	}
	vio_snprintf(disk_name, sizeof(disk_name), "%s", v);
	return true;
}

void dump_init(void)
{
	char v[40];
	if (!cmdline_get("vio.dump", v, sizeof(v)))
		return;
	if (!parse(v)) {
		kprintf("dump: vio.dump=%s: expected blkN, blkN@<sector>, optionally ,ram; no "
			"crash dumps\n",
			v);
		return;
	}
	struct kvirtio *kv = dev_by_name(disk_name);
	if (!kv || kv->dev.device_id != VIRTIO_ID_BLOCK) {
		kprintf("dump: no disk '%s' (see 'devices'); no crash dumps\n", disk_name);
		return;
	}
	struct vio_blk *b = kv->drv;
	uint32_t per_block = b->info.blk_size / 512;
	if (b->info.blk_size > DUMP_HEADER_BYTES) {
		kprintf("dump: %s has %u-byte blocks, more than the %u-byte dump header; no crash "
			"dumps\n",
			disk_name, b->info.blk_size, DUMP_HEADER_BYTES);
		return;
	}
	if (first_sector % per_block ||
	    first_sector + DUMP_HEADER_BYTES / 512 + DUMP_BUFFER / 512 > b->info.capacity) {
		kprintf("dump: %s: sector %llu is not on a %u-byte block or leaves no room for a "
			"dump (%llu sectors); no crash dumps\n",
			disk_name, (unsigned long long)first_sector, b->info.blk_size,
			(unsigned long long)b->info.capacity);
		return;
	}
	void *p;
	int got = DEV_CALL(vio_blk_panic_reserve(b, DUMP_BUFFER, &p));
	if (got < 0) {
		kprintf("dump: %s cannot take panic writes: %s; no crash dumps\n", disk_name,
			vio_strerror(got));
		return;
	}
	if (got < DUMP_HEADER_BYTES) {
		kprintf("dump: %s takes only %d bytes a write, less than the dump header; no "
			"crash dumps\n",
			disk_name, got);
		return;
	}
	crc_init();
	buf = p;
	buf_bytes = (uint32_t)got;
	disk = b;
	kprintf("dump: crash dumps go to %s from sector %llu%s (%u-byte writes)\n", disk_name,
		(unsigned long long)first_sector, with_ram ? ", with RAM" : "", buf_bytes);
}

/* --- the stream of records ------------------------------------------------------------- */

struct stream {
	uint64_t sector; /* where the buffer goes next */
	uint32_t fill;	 /* bytes in the buffer */
	uint64_t body;	 /* body bytes so far */
	uint32_t crc;
	int err;
	bool truncated;
};

/* Write the buffer out (zero-padded to a logical block), unless the disk ends first. */
static void flush(struct stream *s)
{
	uint32_t bs = disk->info.blk_size;
	uint32_t len = (s->fill + bs - 1) / bs * bs;
	if (!s->fill || s->err || s->truncated)
		return;
	if (s->sector + len / 512 > disk->info.capacity) {
		s->truncated = true;
		return;
	}
	memset(buf + s->fill, 0, len - s->fill);
	s->err = vio_blk_panic_write(disk, s->sector, len);
	s->sector += len / 512;
	s->fill = 0;
}

static void put(struct stream *s, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n && !s->err && !s->truncated) {
		size_t take = buf_bytes - s->fill < n ? buf_bytes - s->fill : n;
		memcpy(buf + s->fill, b, take);
		/* over the copy: RAM being dumped includes this very stream and its buffer */
		s->crc = crc_update(s->crc, buf + s->fill, take);
		s->fill += (uint32_t)take;
		s->body += take;
		b += take;
		n -= take;
		if (s->fill == buf_bytes)
			flush(s);
	}
}

static void pad8(struct stream *s, uint64_t bytes)
{
	static const uint8_t zero[8];
	if (bytes % 8)
		put(s, zero, 8 - bytes % 8);
}

static void record(struct stream *s, uint32_t type, const void *p, uint64_t bytes)
{
	struct dump_record r = {.type = type, .bytes = bytes};
	put(s, &r, sizeof(r));
	put(s, p, bytes);
	pad8(s, bytes);
}

/* Text from the log ring, [from, to), as one record, in pieces through a small buffer. */
static void log_record(struct stream *s, uint32_t type, uint64_t from, uint64_t to)
{
	char piece[512];
	if (to - from > KLOG_BYTES)
		from = to - KLOG_BYTES;
	struct dump_record r = {.type = type, .bytes = to - from};
	put(s, &r, sizeof(r));
	for (uint64_t p = from; p < to;) {
		size_t n = klog_copy(p, to, piece, sizeof(piece));
		if (!n)
			break;
		put(s, piece, n);
		p += n;
	}
	pad8(s, to - from);
}

/* Every usable RAM range but page 0, which this kernel leaves unmapped. */
static void ram_records(struct stream *s)
{
	for (int i = 0; i < boot.n_mem; i++) {
		const struct mem_region *m = &boot.mem[i];
		uint64_t base = m->base < 4096 ? 4096 : m->base, end = m->base + m->len;
		if (m->type != MEM_USABLE || end <= base)
			continue;
		struct dump_record r = {.type = DUMP_REC_RAM, .bytes = 8 + end - base};
		put(s, &r, sizeof(r));
		put(s, &base, 8);
		put(s, (const void *)(uintptr_t)base, end - base);
		pad8(s, r.bytes);
	}
}

/* The device table and every queue's state, printed (so the console has them too). */
static void print_devices(void)
{
	kprintf("dump: device table\n");
	devices_print_table();
	for (int i = 0; i < n_virtio_devices; i++) {
		const struct kvirtio *kv = &virtio_devices[i];
		char unit[16];
		if (!kv->drv)
			continue;
		dev_unit_name(kv, unit, sizeof(unit));
		if (kv->dev.device_id == VIRTIO_ID_BLOCK)
			kprintf("dump: %s: %u request(s) in flight\n", unit,
				vio_blk_in_flight(kv->drv));
		for (uint16_t q = 0; q < kv->dev.nvqs; q++) {
			if (!kv->dev.vqs[q].size)
				continue;
			kprintf("dump: %s queue %u:\n", unit, q);
			vio_vq_dump(&kv->dev.vqs[q]);
		}
	}
}

static void regs_from(struct dump_regs *r, const struct trap_frame *f)
{
	*r = (struct dump_regs){.vector = f->vector,
				.error = f->error,
				.rip = f->rip,
				.cs = f->cs,
				.rflags = f->rflags,
				.rsp = f->rsp,
				.ss = f->ss,
				.cr2 = read_cr2(),
				.cr3 = read_cr3(),
				.rax = f->rax,
				.rbx = f->rbx,
				.rcx = f->rcx,
				.rdx = f->rdx,
				.rsi = f->rsi,
				.rdi = f->rdi,
				.rbp = f->rbp,
				.r8 = f->r8,
				.r9 = f->r9,
				.r10 = f->r10,
				.r11 = f->r11,
				.r12 = f->r12,
				.r13 = f->r13,
				.r14 = f->r14,
				.r15 = f->r15};
}

static int write_header(struct stream *s, uint64_t start_ns, const char *reason)
{
	struct dump_header *h = (struct dump_header *)buf;
	memset(buf, 0, DUMP_HEADER_BYTES);
	if (s) {
		memcpy(h->magic, DUMP_MAGIC, sizeof(h->magic));
		h->version = DUMP_VERSION;
		h->header_bytes = DUMP_HEADER_BYTES;
		h->body_bytes = s->body;
		h->body_crc = s->crc;
		h->flags = (with_ram ? DUMP_F_RAM : 0) | (s->truncated ? DUMP_F_TRUNCATED : 0);
		h->uptime_ns = start_ns;
		vio_snprintf(h->reason, sizeof(h->reason), "%s", reason);
		h->header_crc = crc_update(0, h, offsetof(struct dump_header, header_crc));
	}
	return vio_blk_panic_write(disk, first_sector, DUMP_HEADER_BYTES);
}

void dump_write(const struct trap_frame *f, uint64_t rip, uint64_t rbp, const char *reason)
{
	if (!disk || dumping)
		return;
	dumping = true;
	uint64_t start_ns = clock_ns(), log_end = klog_pos();
	kprintf("dump: writing a crash dump to %s at sector %llu\n", disk_name,
		(unsigned long long)first_sector);
	uint64_t dev_start = klog_pos();
	print_devices();
	uint64_t dev_end = klog_pos();

	int err = write_header(NULL, 0, NULL); /* no stale header may vouch for this body */
	struct stream s = {.sector = first_sector + DUMP_HEADER_BYTES / 512, .err = err};
	struct dump_regs regs;
	uint64_t bt[BACKTRACE_MAX];
	if (f) {
		regs_from(&regs, f);
		rip = f->rip;
		rbp = f->rbp;
	} else {
		regs = (struct dump_regs){
		    .vector = DUMP_PANIC, .rip = rip, .rbp = rbp, .cr3 = read_cr3()};
	}
	int nbt = backtrace_collect(rip, rbp, bt, BACKTRACE_MAX);
	record(&s, DUMP_REC_REGS, &regs, sizeof(regs));
	record(&s, DUMP_REC_BACKTRACE, bt, (uint64_t)nbt * sizeof(bt[0]));
	log_record(&s, DUMP_REC_LOG, log_end > KLOG_BYTES ? log_end - KLOG_BYTES : 0, log_end);
	log_record(&s, DUMP_REC_DEVICES, dev_start, dev_end);
	if (with_ram)
		ram_records(&s);
	flush(&s);
	if (!s.err)
		s.err = write_header(&s, start_ns, reason);
	if (!s.err)
		s.err = vio_blk_panic_flush(disk);
	if (s.err)
		kprintf("dump: failed: %s\n", vio_strerror(s.err));
	else
		kprintf("dump: %llu bytes written to %s at sector %llu%s (crc %#x); read it with "
			"scripts/vio-dump\n",
			(unsigned long long)s.body, disk_name, (unsigned long long)first_sector,
			s.truncated ? ", cut short: the disk is too small" : "", s.crc);
}
