/*
 * virtio-9p: a host folder over the 9P transport (device ID 9), with a 9P2000.L client.
 *
 * Context: no callbacks and no interrupt-context work. Every client call is a synchronous
 * remote procedure call: it builds the T-message, posts it with the buffers for the answer,
 * and polls the requestq until the answer is back (calling opts.wait every VIO_9P_SPIN_NS,
 * where a kernel that called with interrupts off lets them in), then checks the answer
 * completely before it believes any field: size, type, tag, every count and string length
 * against the bytes the device says it wrote. The host is untrusted like every device.
 *
 *	struct vio_9p fs;                           caller-owned, like the vio_dev
 *	vio_9p_init(&fs, &dev, NULL);               negotiate, mount tag, Tversion (msize)
 *	vio_9p_attach(&fs, "root", &root);          the export's root directory as a fid
 *	vio_9p_walk(&fs, root, "dir/file", &f);     a new fid for a path below it
 *	vio_9p_open(&fs, f, P9_O_RDONLY);           then vio_9p_read / vio_9p_write
 *	vio_9p_clunk(&fs, f);                       forget the fid (always, even after errors)
 *
 * Fids are small numbers the client hands out and tracks privately (VIO_9P_MAX_FIDS). A
 * server's refusal (Rlerror) returns VIO_EREMOTE with the server's Linux errno in
 * fs.last_errno (vio_9p_errno_name names it: "ENOENT"). A request the device does not answer
 * within opts.timeout_ns returns VIO_ETIMEDOUT; its buffers stay with the device, so until it
 * answers (every later call looks) calls fail with VIO_ETIMEDOUT without posting anything.
 *
 * Concurrency (include/vio/port.h): no locks; one caller at a time per device.
 */
#ifndef VIO_P9_H
#define VIO_P9_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_9p.h>
#include <vio/virtio.h>

/* The largest message the client proposes (Tversion msize); the server may lower it. The
 * request and answer buffers are msize bytes each, allocated one 4 KiB page at a time. */
#ifndef VIO_9P_MSIZE
#define VIO_9P_MSIZE (64u * 1024)
#endif
#define VIO_9P_MIN_MSIZE 4096u
#define VIO_9P_MAX_PAGES 32u /* msize at most 128 KiB */
/* Fids the client tracks at once. */
#ifndef VIO_9P_MAX_FIDS
#define VIO_9P_MAX_FIDS 64
#endif
#define VIO_9P_TAG_MAX	   64u	/* mount tag bytes kept (QEMU allows up to 65535: cut) */
#define VIO_9P_NAME_MAX	   255u /* a file name, as Linux allows */
#define VIO_9P_TIMEOUT_NS  5000000000ull
#define VIO_9P_SPIN_NS	   1000000ull

struct vio_9p;

struct vio_9p_qid {
	uint8_t type; /* P9_QTDIR for a directory */
	uint32_t version;
	uint64_t path; /* the server's unique id of the file */
};

/* What Tgetattr returns that a shell shows. */
struct vio_9p_attr {
	struct vio_9p_qid qid;
	uint32_t mode; /* Linux st_mode */
	uint32_t uid, gid;
	uint64_t nlink, size, blocks;
	uint64_t mtime_sec;
};

/* One directory entry from vio_9p_readdir. name is NUL-terminated; the bytes are the
 * server's (any byte but NUL and '/': show them with care). */
struct vio_9p_dirent {
	struct vio_9p_qid qid;
	uint64_t offset; /* where the next read starts after this entry */
	uint8_t type;	 /* Linux DT_* */
	char name[VIO_9P_NAME_MAX + 1];
};

struct vio_9p_stats {
	uint64_t rpcs;	      /* requests answered */
	uint64_t errors;      /* ... with Rlerror */
	uint64_t bad_replies; /* answers that broke 9P (wrong size, type, tag, counts): VIO_EPROTO */
	uint64_t timeouts;    /* requests the device did not answer in time */
	uint64_t bytes_read, bytes_written;
};

struct vio_9p_opts {
	uint32_t msize;	     /* proposed message size (0: VIO_9P_MSIZE), 4096..128 KiB */
	uint64_t timeout_ns; /* one request's limit (0: VIO_9P_TIMEOUT_NS) */
	/* Optional: called every VIO_9P_SPIN_NS while a request waits (see above). */
	void (*wait)(struct vio_9p *fs, void *arg);
	void *arg;
};

struct vio_9p {
	struct vio_dev *dev;
	char tag[VIO_9P_TAG_MAX + 1]; /* the mount tag, NUL-terminated ("" when not offered) */
	uint32_t msize;		      /* negotiated */
	uint32_t last_errno;	      /* the server's errno behind the last VIO_EREMOTE */
	struct vio_9p_stats stats;

	/* private to virtio_9p.c */
	struct vio_9p_opts p9_opts;
	struct vio_vq p9_vq;
	uint8_t *p9_tx[VIO_9P_MAX_PAGES]; /* the T-message, one DMA page each */
	uint8_t *p9_rx[VIO_9P_MAX_PAGES]; /* the R-message */
	struct vio_sg p9_sg[2 * VIO_9P_MAX_PAGES];
	unsigned p9_npages;
	uint32_t p9_txlen;		      /* bytes of the T-message built so far */
	uint32_t p9_rxlen;		      /* bytes of the answer that may be read */
	uint32_t p9_rxpos;		      /* parse position in the answer */
	bool p9_overflow;		      /* the message being built did not fit msize */
	bool p9_bad;			      /* the answer being parsed ran short */
	bool p9_stuck;			      /* a request is still with the device */
	uint16_t p9_tag;		      /* the request in flight */
	uint8_t p9_fids[VIO_9P_MAX_FIDS / 8]; /* fids in use */
};

int vio_9p_init(struct vio_9p *fs, struct vio_dev *dev, const struct vio_9p_opts *opts);
/* Reset the device and free the buffers. 0, or VIO_EDEAD when the reset was not confirmed
 * (the buffers are then kept). Safe after a failed init and twice. */
int vio_9p_fini(struct vio_9p *fs);
/* Reap an answer that came after its request timed out; 0, or the device's error. */
int vio_9p_poll(struct vio_9p *fs);

/* Attach to the export as `uname` (aname ""); *root is a new fid for its root directory. */
int vio_9p_attach(struct vio_9p *fs, const char *uname, uint32_t *root);
/* A new fid for `path` ("a/b/c", relative to fid; "" or "." clones fid). Components are
 * separated by '/', empty ones skipped; ".." is passed to the server as it is. */
int vio_9p_walk(struct vio_9p *fs, uint32_t fid, const char *path, uint32_t *newfid);
/* Open fid (P9_O_* flags). Returns the server's iounit (0: msize applies), or an error. */
int vio_9p_open(struct vio_9p *fs, uint32_t fid, uint32_t flags);
/* Create `name` in directory fid and open it; fid then stands for the new file. */
int vio_9p_create(struct vio_9p *fs, uint32_t fid, const char *name, uint32_t flags,
		  uint32_t mode);
/* Up to len bytes at offset: the count read (0 at the end of the file), or an error. One
 * request: len above msize - 11 reads less; loop for more. */
int vio_9p_read(struct vio_9p *fs, uint32_t fid, uint64_t offset, void *buf, uint32_t len);
/* Up to len bytes at offset: the count written, or an error. One request, like read. */
int vio_9p_write(struct vio_9p *fs, uint32_t fid, uint64_t offset, const void *buf,
		 uint32_t len);
/* Entries of the open directory fid from *cookie (0 at first): the number stored in ents
 * (at most max), 0 at the end; *cookie moves on. */
int vio_9p_readdir(struct vio_9p *fs, uint32_t fid, uint64_t *cookie, struct vio_9p_dirent *ents,
		   unsigned max);
int vio_9p_getattr(struct vio_9p *fs, uint32_t fid, struct vio_9p_attr *attr);
/* Truncate or extend the file to size. */
int vio_9p_truncate(struct vio_9p *fs, uint32_t fid, uint64_t size);
int vio_9p_mkdir(struct vio_9p *fs, uint32_t dirfid, const char *name, uint32_t mode);
/* Remove `name` from directory dirfid (a directory with P9_AT_REMOVEDIR). */
int vio_9p_unlinkat(struct vio_9p *fs, uint32_t dirfid, const char *name, uint32_t flags);
int vio_9p_renameat(struct vio_9p *fs, uint32_t olddir, const char *oldname, uint32_t newdir,
		    const char *newname);
int vio_9p_fsync(struct vio_9p *fs, uint32_t fid);
/* Forget fid. The client's record goes even if the server refuses (9P: clunk always
 * frees the fid). */
int vio_9p_clunk(struct vio_9p *fs, uint32_t fid);

/* "ENOENT" for 2 ...; "E?" for numbers it does not know. */
const char *vio_9p_errno_name(uint32_t err);

#endif
