/*
 * disk.c: the kernel's disks (include/kernel/disk.h): virtio-blk devices and the units
 * behind virtio-scsi adapters, behind one set of operations.
 */
#include <kernel/devices.h>
#include <kernel/disk.h>
#include <string.h>
#include <vio/err.h>
#include <vio/format.h>

/* --- virtio-blk: sectors are the driver's own unit ---------------------------------------- */

static int blk_read(const struct kdisk *d, uint64_t sector, void *buf, size_t len)
{
	return DEV_CALL(vio_blk_read(d->drv, sector, buf, len));
}

static int blk_write(const struct kdisk *d, uint64_t sector, const void *buf, size_t len)
{
	return DEV_CALL(vio_blk_write(d->drv, sector, buf, len));
}

static int blk_flush(const struct kdisk *d)
{
	return DEV_CALL(vio_blk_flush(d->drv));
}

static const struct kdisk_ops blk_ops = {blk_read, blk_write, blk_flush};

static void from_blk(struct kdisk *d, int unit, struct vio_blk *b)
{
	*d = (struct kdisk){.kind = KDISK_VIRTIO_BLK,
			    .sectors = b->info.capacity,
			    .block_size = b->info.blk_size,
			    .read_only = b->info.ro,
			    .present = true,
			    .ops = &blk_ops,
			    .drv = b};
	vio_snprintf(d->name, sizeof(d->name), "blk%d", unit);
}

/* --- SCSI: sectors become the unit's logical blocks ---------------------------------------- */

/* The blocks of a sector range: VIO_EALIGN when it does not cover whole blocks, VIO_EINVAL
 * when it is beyond any disk. */
static int scsi_blocks(const struct kdisk *d, uint64_t sector, size_t len, uint64_t *lba,
		       uint32_t *blocks)
{
	uint32_t bs = d->block_size;
	if (!d->present)
		return VIO_ENODEV;
	if (!bs)
		return VIO_EAGAIN; /* not ready: no medium */
	if (sector > UINT64_MAX / 512 || len / bs > UINT32_MAX)
		return VIO_EINVAL;
	if (sector * 512 % bs || !len || len % bs)
		return VIO_EALIGN;
	*lba = sector * 512 / bs;
	*blocks = (uint32_t)(len / bs);
	return 0;
}

static int scsi_read(const struct kdisk *d, uint64_t sector, void *buf, size_t len)
{
	uint64_t lba;
	uint32_t n;
	int err = scsi_blocks(d, sector, len, &lba, &n);
	return err ? err : DEV_CALL(vio_scsi_read(d->drv, d->lun, lba, n, buf));
}

static int scsi_write(const struct kdisk *d, uint64_t sector, const void *buf, size_t len)
{
	uint64_t lba;
	uint32_t n;
	int err = scsi_blocks(d, sector, len, &lba, &n);
	return err ? err : DEV_CALL(vio_scsi_write(d->drv, d->lun, lba, n, buf));
}

static int scsi_flush(const struct kdisk *d)
{
	return d->present ? DEV_CALL(vio_scsi_sync(d->drv, d->lun)) : VIO_ENODEV;
}

static const struct kdisk_ops scsi_ops = {scsi_read, scsi_write, scsi_flush};

static void from_scsi(struct kdisk *d, int index, struct vio_scsi *s, unsigned lun)
{
	const struct vio_scsi_lun *l = &s->luns[lun];
	bool usable = l->present && l->ready;
	*d = (struct kdisk){.kind = KDISK_SCSI,
			    .sectors = usable ? l->blocks * l->block_size / 512 : 0,
			    .block_size = usable ? l->block_size : 0,
			    .read_only = l->read_only || l->type == SCSI_TYPE_CDROM,
			    .present = l->present,
			    .ops = &scsi_ops,
			    .drv = s,
			    .lun = lun};
	vio_snprintf(d->name, sizeof(d->name), "sd%d", index);
}

/* --- names --------------------------------------------------------------------------------- */

bool disk_nth(int n, struct kdisk *d)
{
	int blks = 0;
	while (dev_blk(blks))
		blks++;
	if (n < 0)
		return false;
	if (n < blks) {
		from_blk(d, n, dev_blk(n));
		return true;
	}
	int index = n - blks, k = index;
	for (int a = 0; dev_scsi(a); a++) {
		struct vio_scsi *s = dev_scsi(a);
		if ((unsigned)k < s->n_luns) {
			from_scsi(d, index, s, (unsigned)k);
			return true;
		}
		k -= (int)s->n_luns;
	}
	return false;
}

bool disk_find(const char *name, struct kdisk *d)
{
	for (int n = 0; disk_nth(n, d); n++)
		if (!strcmp(d->name, name))
			return true;
	return false;
}
