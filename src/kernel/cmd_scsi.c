/*
 * cmd_scsi.c: the shell's `scsi` command, the disks and CDs behind a virtio-scsi adapter
 * (include/vio/scsi.h).
 *
 * Units are named by their index in the adapter's LUN table (`scsi luns`), which devices.c
 * filled at boot and refills when the device reports a hot-plug (the indexes of units already
 * known never change; one that went away stays listed as gone). Blocks are the unit's own
 * logical blocks (512 bytes on a disk, 2048 on a CD); offsets and lengths of `sha256` are
 * bytes, whole blocks. A SCSI error is said with its sense key and what its additional sense
 * code means.
 *
 *   scsi [luns]                            the units: address, type, size, read-only
 *   scsi read <lun> <lba> <count>          hex dump of the first 256 bytes
 *   scsi write <lun> <lba> <count> <byte>  fill blocks with one byte value
 *   scsi sha256 <lun> <offset> <length>    SHA-256 of a byte range, as sha256sum prints it
 *   scsi sync <lun>                        SYNCHRONIZE CACHE
 *   scsi rescan                            ask every target again
 *   scsi bench read <lun> <MiB> <KiB>      read MiB from block 0 on (wrapping at the end) in
 *                                          requests of KiB, one at a time: bytes and ns
 */
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/sha256.h>
#include <kernel/shell.h>
#include <kernel/timer.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>
#include <vio/scsi.h>

#define ERR(...)                                                                                   \
	do {                                                                                       \
		kprintf(__VA_ARGS__);                                                              \
		kprintf("\n");                                                                     \
		return -2;                                                                         \
	} while (0)

static uint8_t buf[VIO_SCSI_MAX_XFER] __attribute__((aligned(4096)));

/* What an additional sense code (SPC-4 annex D) says, for the codes a disk or CD gives. */
static const char *asc_text(uint8_t asc, uint8_t ascq)
{
	switch (asc) {
	case 0x00: return ascq == 0x06 ? "I/O process terminated" : "no additional information";
	case 0x04: return "logical unit not ready";
	case 0x0c: return "write error";
	case 0x11: return "unrecovered read error";
	case 0x20: return "invalid command";
	case 0x21: return "block address out of range";
	case 0x24: return "invalid field in CDB";
	case 0x25: return "logical unit not supported";
	case 0x27: return "write protected";
	case 0x28: return "medium may have changed";
	case 0x29: return "power on or reset occurred";
	case 0x2a: return "parameters changed";
	case 0x3a: return "medium not present";
	case 0x3f: return ascq == 0x0e ? "reported LUNs changed" : "target operating conditions changed";
	default: return "see SPC-4 annex D";
	}
}

/* Why a scsi call failed, as a sentence. */
static int say(int err, const char *what, unsigned lun)
{
	const struct vio_scsi *s = dev_scsi(0);
	if (err == VIO_ENODEV)
		kprintf("scsi %s: lun%u: no such unit, or it was unplugged (see 'scsi luns')\n", what,
			lun);
	else if (s->sense.valid && err)
		kprintf("scsi %s: lun%u: the unit answered %s (asc 0x%02x ascq 0x%02x: %s); this "
			"request failed, the unit stays in use (%s)\n", what, lun,
			vio_scsi_sense_name(s->sense.key), s->sense.asc, s->sense.ascq,
			asc_text(s->sense.asc, s->sense.ascq), vio_strerror(err));
	else if (err == VIO_EROFS)
		kprintf("scsi %s: lun%u: the unit is read-only (a CD, or a write-protected disk) "
			"(VIO_EROFS)\n", what, lun);
	else
		kprintf("scsi %s: lun%u: %s\n", what, lun, shell_strerror(err));
	return -2;
}

static const char *type_name(uint8_t type)
{
	return type == SCSI_TYPE_CDROM ? "cd" : "disk";
}

void scsi_print_luns(const struct vio_scsi *s)
{
	for (unsigned i = 0; i < s->n_luns; i++) {
		const struct vio_scsi_lun *l = &s->luns[i];
		if (!l->present) {
			kprintf("  lun%u %u:%u %s: gone\n", i, l->target, l->lun, type_name(l->type));
			continue;
		}
		kprintf("  lun%u %u:%u %s '%s %s' ", i, l->target, l->lun, type_name(l->type),
			l->vendor, l->product);
		if (l->ready)
			kprintf("%llu blocks of %u B (%llu KiB), %s%s\n",
				(unsigned long long)l->blocks, l->block_size,
				(unsigned long long)(l->blocks * l->block_size / 1024),
				l->read_only ? "read-only" : "read-write", l->unmap ? ", unmap" : "");
		else
			kprintf("not ready (no medium?)\n");
	}
	if (!s->n_luns)
		kprintf("  no units\n");
}

static const struct vio_scsi_lun *unit(unsigned lun)
{
	const struct vio_scsi *s = dev_scsi(0);
	return lun < s->n_luns && s->luns[lun].present ? &s->luns[lun] : NULL;
}

static int sha(unsigned lun, uint64_t off, uint64_t len)
{
	const struct vio_scsi_lun *l = unit(lun);
	if (!l || !l->ready)
		return say(l ? VIO_EAGAIN : VIO_ENODEV, "sha256", lun);
	if (off % l->block_size || len % l->block_size)
		ERR("scsi sha256: offset and length must be whole blocks of %u bytes", l->block_size);
	struct sha256 h;
	sha256_init(&h);
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		int err = DEV_CALL(vio_scsi_read(dev_scsi(0), lun, (off + done) / l->block_size,
						 (uint32_t)(n / l->block_size), buf));
		if (err)
			return say(err, "sha256", lun);
		sha256_update(&h, buf, n);
		done += n;
		if (shell_interrupted())
			ERR("scsi sha256: interrupted");
	}
	uint8_t d[32];
	char hex[65];
	sha256_final(&h, d);
	sha256_hex(d, hex);
	kprintf("sha256 lun%u offset %llu length %llu: %s\n", lun, (unsigned long long)off,
		(unsigned long long)len, hex);
	return 0;
}

/*
 * `scsi bench read`: sequential reads through vio_scsi_read, which cuts a request into
 * commands of at most VIO_SCSI_MAX_XFER bytes (fewer when the device's max_sectors or
 * seg_max say so), so a 1 MiB request is that many commands in turn.
 */
#define BENCH_REQ_MAX (1024u * 1024)

static int bench_read(int argc, char **argv)
{
	uint64_t lun, mib, kib;
	if (argc != 6 || strcmp(argv[2], "read") || !parse_u64(argv[3], &lun) ||
	    !parse_u64(argv[4], &mib) || !parse_u64(argv[5], &kib))
		return -1;
	const struct vio_scsi_lun *l = unit(lun < 0x10000 ? (unsigned)lun : 0xffff);
	if (!l || !l->ready)
		return say(l ? VIO_EAGAIN : VIO_ENODEV, "bench", (unsigned)lun);
	uint64_t req = kib * 1024;
	if (mib == 0 || mib > 65536 || req == 0 || req > BENCH_REQ_MAX || req % l->block_size ||
	    req > l->blocks * l->block_size)
		ERR("scsi bench read: 1 to 65536 MiB, requests of whole %u-byte blocks up to %u "
		    "KiB and at most the unit's size",
		    l->block_size, BENCH_REQ_MAX / 1024);
	uint8_t *data = malloc(req);
	if (!data)
		ERR("scsi bench read: no memory for a %llu KiB buffer", (unsigned long long)kib);
	uint32_t blocks = (uint32_t)(req / l->block_size);
	uint64_t lba = 0, done = 0, t0 = clock_ns();
	int err = 0;
	while (done < mib << 20) {
		if (lba + blocks > l->blocks)
			lba = 0;
		if ((err = DEV_CALL(vio_scsi_read(dev_scsi(0), (unsigned)lun, lba, blocks, data))))
			break;
		lba += blocks;
		done += req;
		if (shell_interrupted())
			break;
	}
	uint64_t ns = clock_ns() - t0;
	free(data);
	if (err)
		return say(err, "bench", (unsigned)lun);
	if (done < mib << 20)
		ERR("scsi bench read: stopped (Ctrl-C) after %llu bytes", (unsigned long long)done);
	kprintf("scsi bench read: lun%u %llu bytes in %llu ns, requests of %llu KiB\n",
		(unsigned)lun, (unsigned long long)done, (unsigned long long)ns,
		(unsigned long long)kib);
	return 0;
}

int cmd_scsi(int argc, char **argv)
{
	struct vio_scsi *s = dev_scsi(0);
	uint64_t n[4];
	int err;

	if (!s)
		ERR("scsi: no virtio-scsi device (QEMU: -device virtio-scsi-pci,id=scsi0 "
		    "-device scsi-hd,drive=d0,bus=scsi0.0)");
	const char *op = argc > 1 ? argv[1] : "luns";
	if (!strcmp(op, "bench"))
		return bench_read(argc, argv);
	for (int i = 2; i < argc && i < 6; i++)
		if (!parse_u64(argv[i], &n[i - 2]))
			return -1;
	if (!strcmp(op, "luns") && argc <= 2) {
		scsi_print_luns(s);
		return 0;
	}
	if (!strcmp(op, "rescan") && argc == 2) {
		if ((err = DEV_CALL(vio_scsi_scan(s))) < 0)
			ERR("scsi rescan: %s", shell_strerror(err));
		kprintf("scsi0: %d unit(s)\n", err);
		scsi_print_luns(s);
		return 0;
	}
	if (argc < 3)
		return -1;
	unsigned lun = n[0] < 0x10000 ? (unsigned)n[0] : 0xffff;
	const struct vio_scsi_lun *l = unit(lun);
	if (!strcmp(op, "read") && argc == 5) {
		if (l && l->ready && (n[2] == 0 || n[2] * l->block_size > sizeof(buf)))
			ERR("scsi read: 1 to %u blocks", (unsigned)(sizeof(buf) / l->block_size));
		if ((err = DEV_CALL(vio_scsi_read(s, lun, n[1], (uint32_t)n[2], buf))))
			return say(err, "read", lun);
		hexdump(buf, n[2] * l->block_size > 256 ? 256 : n[2] * l->block_size,
			n[1] * l->block_size);
		return 0;
	}
	if (!strcmp(op, "write") && argc == 6 && n[3] <= 255) {
		if (l && l->ready && (n[2] == 0 || n[2] * l->block_size > sizeof(buf)))
			ERR("scsi write: 1 to %u blocks", (unsigned)(sizeof(buf) / l->block_size));
		if (l)
			memset(buf, (int)n[3], n[2] * l->block_size);
		if ((err = DEV_CALL(vio_scsi_write(s, lun, n[1], (uint32_t)n[2], buf))))
			return say(err, "write", lun);
		kprintf("wrote %llu block(s) of 0x%02llx at %llu\n", (unsigned long long)n[2],
			(unsigned long long)n[3], (unsigned long long)n[1]);
		return 0;
	}
	if (!strcmp(op, "sha256") && argc == 5)
		return sha(lun, n[1], n[2]);
	if (!strcmp(op, "unmap") && argc == 5) {
		err = DEV_CALL(vio_scsi_unmap(s, lun, n[1], n[2]));
		if (err == VIO_ENOTSUP)
			ERR("scsi unmap: lun%u does not take UNMAP (a thick disk; QEMU: "
			    "-drive ...,discard=unmap)", lun);
		if (err == VIO_EINVAL && l && l->ready)
			ERR("scsi unmap: blocks %llu..%llu run past the end of lun%u (%llu blocks)",
			    (unsigned long long)n[1], (unsigned long long)(n[1] + n[2]), lun,
			    (unsigned long long)l->blocks);
		if (err)
			return say(err, "unmap", lun);
		kprintf("lun%u: %llu block(s) at %llu unmapped\n", lun, (unsigned long long)n[2],
			(unsigned long long)n[1]);
		return 0;
	}
	if (!strcmp(op, "sync") && argc == 3) {
		if ((err = DEV_CALL(vio_scsi_sync(s, lun))))
			return say(err, "sync", lun);
		kprintf("lun%u: cache synchronized\n", lun);
		return 0;
	}
	return -1;
}
