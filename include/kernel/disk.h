/*
 * A disk, whatever drives it: the shell's `blk` commands read, write, hash and flush through
 * this one interface, so a virtio-blk device and a unit behind virtio-scsi look alike.
 *
 * Names: blk0, blk1, ... are the virtio-blk devices in probe order; sd0, sd1, ... are the
 * units of the virtio-scsi adapters, adapter by adapter in the order `scsi luns` lists them
 * (sdN is lunN of the first adapter). A unit keeps its name after it is unplugged (it then
 * reads as VIO_ENODEV), and a hot-plugged one is added after the adapter's others, as in its
 * LUN table (so with two adapters, a unit hot-plugged on the first renames the second's).
 *
 * A struct kdisk is a snapshot taken by disk_find or disk_nth: look the disk up again for
 * each command, since a SCSI unit may come and go and a blk device may change its capacity.
 * Offsets and lengths are in 512-byte sectors and bytes; a disk with larger logical blocks
 * (a CD: 2048) takes only whole blocks (VIO_EALIGN otherwise).
 *
 * Context: thread context only; each call runs the driver with interrupts off (DEV_CALL).
 */
#ifndef KERNEL_DISK_H
#define KERNEL_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kdisk;

struct kdisk_ops {
	/* `len` bytes from/to `sector`; len a non-zero multiple of the block size. 0, or the
	 * driver's error (VIO_EINVAL past the end, VIO_EROFS, VIO_ENODEV unplugged, ...). */
	int (*read)(const struct kdisk *d, uint64_t sector, void *buf, size_t len);
	int (*write)(const struct kdisk *d, uint64_t sector, const void *buf, size_t len);
	/* Make every completed write durable (virtio-blk FLUSH, SCSI SYNCHRONIZE CACHE). */
	int (*flush)(const struct kdisk *d);
};

enum kdisk_kind { KDISK_VIRTIO_BLK, KDISK_SCSI };

struct kdisk {
	char name[12]; /* "blk0", "sd1" */
	enum kdisk_kind kind;
	uint64_t sectors;    /* capacity in 512-byte sectors (0: unplugged, or no medium) */
	uint32_t block_size; /* logical block in bytes (512, 4096, a CD's 2048) */
	bool read_only;	     /* a CD, a write-protected unit, a VIRTIO_BLK_F_RO device */
	bool present;	     /* false: a SCSI unit that was unplugged */
	const struct kdisk_ops *ops;
	void *drv;    /* struct vio_blk, or the struct vio_scsi the unit is behind */
	unsigned lun; /* SCSI: the unit's index in drv's LUN table */
};

/* Fill *d for the disk named `name`. false when there is none. */
bool disk_find(const char *name, struct kdisk *d);
/* The n-th disk, blk ones first, then sd ones. false past the last. */
bool disk_nth(int n, struct kdisk *d);

static inline int disk_read(const struct kdisk *d, uint64_t sector, void *buf, size_t len)
{
	return d->ops->read(d, sector, buf, len);
}
static inline int disk_write(const struct kdisk *d, uint64_t sector, const void *buf, size_t len)
{
	return d->ops->write(d, sector, buf, len);
}
static inline int disk_flush(const struct kdisk *d)
{
	return d->ops->flush(d);
}

#endif
