/*
 * The 9P transport: virtio device ID 9 (virtio 1.2 section 5, "Device Types"), and the
 * 9P2000.L messages vio's client speaks over it.
 *
 * The virtio spec reserves the ID but does not describe the device; its layout is the one
 * QEMU's virtio-9p and every guest driver share. One virtqueue, the requestq. A request is
 * one chain: the T-message in device-readable buffers, then device-writable buffers for the
 * R-message, which the device fills and returns with its length. With VIRTIO_9P_MOUNT_TAG
 * the configuration space holds the mount tag: a little-endian 16-bit length, then that many
 * bytes, not NUL-terminated.
 *
 * 9P2000.L (the Linux dialect of 9P, as QEMU serves it): every message starts with
 * size[4] type[1] tag[2], little-endian, size counting the whole message. A string is
 * len[2] then len bytes of UTF-8, no NUL. A qid is type[1] version[4] path[8]. The server
 * answers a T-message of type t with type t+1, or with Rlerror carrying a Linux errno.
 */
#ifndef VIO_SPEC_VIRTIO_9P_H
#define VIO_SPEC_VIRTIO_9P_H

#include <stdint.h>

#define VIRTIO_9P_MOUNT_TAG 0 /* feature bit: the config space holds the mount tag */

#define VIRTIO_9P_Q_REQUEST  0
#define VIRTIO_9P_NUM_QUEUES 1

/* The configuration space (little-endian): the tag follows tag_len directly. */
#define VIRTIO_9P_CFG_TAG_LEN 0
#define VIRTIO_9P_CFG_TAG     2

/* Message types: T-messages; the reply is type + 1. */
enum {
	P9_RLERROR = 7,	    /* ecode[4] */
	P9_TSTATFS = 8,	    /* fid[4] */
	P9_TLOPEN = 12,	    /* fid[4] flags[4] -> qid[13] iounit[4] */
	P9_TLCREATE = 14,   /* fid[4] name[s] flags[4] mode[4] gid[4] -> qid[13] iounit[4] */
	P9_TGETATTR = 24,   /* fid[4] request_mask[8] -> valid[8] qid[13] mode[4] ... (see below) */
	P9_TSETATTR = 26,   /* fid[4] valid[4] mode[4] uid[4] gid[4] size[8] atime[16] mtime[16] */
	P9_TREADDIR = 40,   /* fid[4] offset[8] count[4] -> count[4] data[count] */
	P9_TFSYNC = 50,	    /* fid[4] datasync[4] */
	P9_TMKDIR = 72,	    /* dfid[4] name[s] mode[4] gid[4] -> qid[13] */
	P9_TRENAMEAT = 74,  /* olddirfid[4] oldname[s] newdirfid[4] newname[s] */
	P9_TUNLINKAT = 76,  /* dirfid[4] name[s] flags[4] */
	P9_TVERSION = 100,  /* msize[4] version[s] -> msize[4] version[s]; tag is P9_NOTAG */
	P9_TATTACH = 104,   /* fid[4] afid[4] uname[s] aname[s] n_uname[4] -> qid[13] */
	P9_TWALK = 110,	    /* fid[4] newfid[4] nwname[2] wname[s]... -> nwqid[2] qid[13]... */
	P9_TREAD = 116,	    /* fid[4] offset[8] count[4] -> count[4] data[count] */
	P9_TWRITE = 118,    /* fid[4] offset[8] count[4] data[count] -> count[4] */
	P9_TCLUNK = 120,    /* fid[4] */
};

#define P9_HDR	      7	      /* size[4] type[1] tag[2] */
#define P9_QID	      13      /* type[1] version[4] path[8] */
#define P9_NOTAG      0xffffu /* Tversion's tag */
#define P9_NOFID      0xffffffffu
#define P9_MAXWELEM   16      /* names in one Twalk */
#define P9_READ_HDR   (P9_HDR + 4)	   /* Rread and Rreaddir: then count[4] */
#define P9_WRITE_HDR  (P9_HDR + 4 + 8 + 4) /* Twrite: fid offset count, then the data */
#define P9_VERSION_L  "9P2000.L"

/* Rgetattr's body after valid[8] qid[13]: mode uid gid, then 8-byte fields. */
#define P9_GETATTR_BASIC 0x000007ffull /* mode..blocks, the times and the size */

/* Tsetattr valid bits. */
#define P9_SETATTR_MODE 0x1u
#define P9_SETATTR_SIZE 0x8u

/* Tunlinkat flags: remove a directory (Linux AT_REMOVEDIR). */
#define P9_AT_REMOVEDIR 0x200u

/* qid types. */
#define P9_QTDIR 0x80u

/* Linux open flags for Tlopen/Tlcreate. */
#define P9_O_RDONLY 00000000u
#define P9_O_WRONLY 00000001u
#define P9_O_RDWR   00000002u
#define P9_O_CREAT  00000100u
#define P9_O_TRUNC  00001000u

#endif
