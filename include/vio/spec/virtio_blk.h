/*
 * The virtio block device (virtio 1.2 section 5.2), under the spec's names.
 *
 * Every request is one descriptor chain: a device-readable header (struct virtio_blk_outhdr),
 * then the data (read-only for writes, write-only for reads), then one device-writable status
 * byte (5.2.6). Sectors are always 512 bytes, whatever blk_size says.
 */
#ifndef VIO_SPEC_VIRTIO_BLK_H
#define VIO_SPEC_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

/* Feature bits (5.2.3). Bits 0 (BARRIER) and 7 (SCSI) are legacy-only: we never take them. */
#define VIRTIO_BLK_F_SIZE_MAX	  1  /* size_max: largest single data segment, in bytes */
#define VIRTIO_BLK_F_SEG_MAX	  2  /* seg_max: most data segments in one request */
#define VIRTIO_BLK_F_GEOMETRY	  4  /* geometry is valid */
#define VIRTIO_BLK_F_RO		  5  /* the device is read-only */
#define VIRTIO_BLK_F_BLK_SIZE	  6  /* blk_size: the optimal block size */
#define VIRTIO_BLK_F_FLUSH	  9  /* the FLUSH command exists (a write-back cache) */
#define VIRTIO_BLK_F_TOPOLOGY	  10 /* topology is valid */
#define VIRTIO_BLK_F_CONFIG_WCE	  11 /* the writeback field selects the cache mode */
#define VIRTIO_BLK_F_MQ		  12 /* num_queues request queues */
#define VIRTIO_BLK_F_DISCARD	  13 /* the DISCARD command and its limits */
#define VIRTIO_BLK_F_WRITE_ZEROES 14 /* the WRITE_ZEROES command and its limits */
#define VIRTIO_BLK_F_LIFETIME	  15 /* the GET_LIFETIME command */
#define VIRTIO_BLK_F_SECURE_ERASE 16 /* the SECURE_ERASE command and its limits */
#define VIRTIO_BLK_F_ZONED	  17 /* a zoned block device */

/* Sector size of the protocol (5.2.6): capacity and every `sector` count 512-byte units. */
#define VIRTIO_BLK_SECTOR_SIZE	512u
#define VIRTIO_BLK_SECTOR_SHIFT 9

/* GET_ID answers with this many bytes: a serial NUL-terminated only when shorter (5.2.6). */
#define VIRTIO_BLK_ID_BYTES 20

/* Device configuration layout (5.2.4). Little-endian; read it field by field. */
struct virtio_blk_geometry {
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
};

struct virtio_blk_topology {
	uint8_t physical_block_exp; /* log2 of logical blocks per physical block */
	uint8_t alignment_offset;   /* offset of the first aligned logical block */
	uint16_t min_io_size;	    /* suggested minimum I/O size, in blocks */
	uint32_t opt_io_size;	    /* optimal (suggested maximum) I/O size, in blocks */
};

struct virtio_blk_zoned_characteristics {
	uint32_t zone_sectors;
	uint32_t max_open_zones;
	uint32_t max_active_zones;
	uint32_t max_append_sectors;
	uint32_t write_granularity;
	uint8_t model;
	uint8_t unused2[3];
};

struct virtio_blk_config {
	uint64_t capacity;		     /* in 512-byte sectors */
	uint32_t size_max;		     /* VIRTIO_BLK_F_SIZE_MAX */
	uint32_t seg_max;		     /* VIRTIO_BLK_F_SEG_MAX */
	struct virtio_blk_geometry geometry; /* VIRTIO_BLK_F_GEOMETRY */
	uint32_t blk_size;		     /* VIRTIO_BLK_F_BLK_SIZE */
	struct virtio_blk_topology topology; /* VIRTIO_BLK_F_TOPOLOGY */
	uint8_t writeback;		     /* VIRTIO_BLK_F_CONFIG_WCE: 0 through, 1 back */
	uint8_t unused0;
	uint16_t num_queues;	      /* VIRTIO_BLK_F_MQ */
	uint32_t max_discard_sectors; /* VIRTIO_BLK_F_DISCARD */
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors; /* VIRTIO_BLK_F_WRITE_ZEROES */
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors; /* VIRTIO_BLK_F_SECURE_ERASE */
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
	struct virtio_blk_zoned_characteristics zoned; /* VIRTIO_BLK_F_ZONED */
};

/* Request types (5.2.6): the `type` of the header. */
#define VIRTIO_BLK_T_IN		  0  /* read sectors */
#define VIRTIO_BLK_T_OUT	  1  /* write sectors */
#define VIRTIO_BLK_T_FLUSH	  4  /* commit the write-back cache */
#define VIRTIO_BLK_T_GET_ID	  8  /* read the 20-byte device id string */
#define VIRTIO_BLK_T_GET_LIFETIME 10 /* wear information */
#define VIRTIO_BLK_T_DISCARD	  11 /* segments may be deallocated */
#define VIRTIO_BLK_T_WRITE_ZEROES 13 /* segments read back as zeroes */
#define VIRTIO_BLK_T_SECURE_ERASE 14

/* The request header, device-readable, first in every chain (5.2.6). */
struct virtio_blk_outhdr {
	uint32_t type;	 /* VIRTIO_BLK_T_* */
	uint32_t ioprio; /* "reserved" in 1.2 for non-legacy devices: write 0 */
	uint64_t sector; /* IN/OUT: first 512-byte sector; 0 for the other types */
};

/* The data of a DISCARD, WRITE_ZEROES or SECURE_ERASE request: an array of these (5.2.6). */
struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP; the other bits are reserved */
};
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 0x1 /* bit 0: the device may deallocate */

/* The status byte the device writes last (5.2.6). */
#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

_Static_assert(sizeof(struct virtio_blk_geometry) == 4, "5.2.4 geometry");
_Static_assert(sizeof(struct virtio_blk_topology) == 8, "5.2.4 topology");
_Static_assert(sizeof(struct virtio_blk_zoned_characteristics) == 24, "5.2.4 zoned");
_Static_assert(sizeof(struct virtio_blk_config) == 96, "5.2.4 virtio_blk_config");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32, "5.2.4 writeback");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36, "5.2.4 discard");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56,
	       "5.2.4 write zeroes");
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "5.2.6 virtio_blk_outhdr");
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16,
	       "5.2.6 virtio_blk_discard_write_zeroes");

#endif
