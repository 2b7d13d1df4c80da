/*
 * The kernel log ring (klog.c) and crash dumps (dump.c).
 *
 * klog keeps the last KLOG_BYTES of everything kprintf printed, so that a crash dump can
 * carry the log that led up to it. dump writes, on a panic or a fatal exception, a dump to
 * the disk the command line names (vio.dump=blk1, vio.dump=blk1@<sector>, and ",ram" for all
 * usable RAM as well) through the block driver's panic-safe polled writes: interrupts off,
 * no allocation, no lock. scripts/vio-dump reads it back from the image.
 *
 * The format (little-endian; every number below is checked by scripts/vio-dump):
 *
 *	at the dump's first sector, DUMP_HEADER_BYTES:
 *	    struct dump_header, then zeroes; written last, so that a dump cut short has none
 *	    (a zeroed header is written first)
 *	from DUMP_HEADER_BYTES on, body_bytes of records, each
 *	    struct dump_record, then `bytes` of payload, then zeroes to a multiple of 8
 *	body_crc is the CRC-32 (the one zlib and Ethernet use) of the body; header_crc that of
 *	the header's bytes before it.
 */
#ifndef KERNEL_DUMP_H
#define KERNEL_DUMP_H

#include <kernel/trap.h>
#include <stddef.h>
#include <stdint.h>

#define KLOG_BYTES (64 * 1024)

/* Keep `n` bytes of console output (kvprintf calls it for every line). */
void klog_append(const char *s, size_t n);
/* Bytes ever appended (a position: klog_copy takes the ones from `from` on). */
uint64_t klog_pos(void);
/* Copy what the ring still holds of [from, to) into out[size]; returns the bytes copied. */
size_t klog_copy(uint64_t from, uint64_t to, char *out, size_t size);

#define DUMP_MAGIC	  "VIODUMP1"
#define DUMP_VERSION	  1
#define DUMP_HEADER_BYTES 4096 /* a whole logical block up to 4 KiB */

struct dump_header {
	char magic[8];	       /* DUMP_MAGIC */
	uint32_t version;      /* DUMP_VERSION */
	uint32_t header_bytes; /* DUMP_HEADER_BYTES: where the body starts */
	uint64_t body_bytes;   /* records that follow */
	uint32_t body_crc;     /* CRC-32 of the body */
	uint32_t flags;	       /* DUMP_F_* */
	uint64_t uptime_ns;    /* when the dump began */
	char reason[204];      /* "page fault at ...", "panic: ..." */
	uint32_t header_crc;   /* CRC-32 of every byte above */
};
_Static_assert(sizeof(struct dump_header) == 248, "dump header layout");

#define DUMP_F_RAM	 0x1 /* RAM records follow */
#define DUMP_F_TRUNCATED 0x2 /* the disk was too small for everything */

struct dump_record {
	uint32_t type; /* DUMP_REC_* */
	uint32_t zero;
	uint64_t bytes; /* payload bytes, not counting the padding */
};

enum dump_rec_type {
	DUMP_REC_REGS = 1,	/* struct dump_regs */
	DUMP_REC_BACKTRACE = 2, /* uint64_t return addresses, innermost first */
	DUMP_REC_LOG = 3,	/* the log ring's text up to the crash */
	DUMP_REC_DEVICES = 4,	/* text: the device table and every queue's vio_vq_dump */
	DUMP_REC_RAM = 5,	/* uint64_t physical address, then the bytes of that range */
};

struct dump_regs {
	uint64_t vector; /* exception vector, or DUMP_PANIC for panic() */
	uint64_t error, rip, cs, rflags, rsp, ss, cr2, cr3;
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};
#define DUMP_PANIC 256

/* After devices_init: read vio.dump=, find the disk, reserve its panic slot; logs why not. */
void dump_init(void);
/*
 * Write the dump (once; a fault inside it writes none), printing where it went. `f` is the
 * exception's frame, or NULL from panic(), which passes its caller's frame pointer and
 * address. Interrupts must be off.
 */
void dump_write(const struct trap_frame *f, uint64_t rip, uint64_t rbp, const char *reason);

/* trap.c: the return addresses of a frame-pointer walk from rip/rbp, at most max. */
int backtrace_collect(uint64_t rip, uint64_t rbp, uint64_t *out, int max);

#endif
