/*
 * virtio-9p: a host folder through the 9P transport, and a 9P2000.L client. See
 * include/vio/p9.h and include/vio/spec/virtio_9p.h.
 *
 * Exercised by QEMU with
 *
 *	-fsdev local,id=fs0,path=DIR,security_model=none -device
 *virtio-9p-pci,fsdev=fs0,mount_tag=host
 *
 * The transport is the smallest there is: one queue, and one chain per request holding the
 * T-message (device-readable) and room for the R-message (device-writable). Everything else
 * is 9P. The client keeps one request in flight, so a request's tag is checked against the
 * one outstanding tag, and the message buffers are msize bytes each, a list of 4 KiB DMA
 * pages: a message is built and parsed across page boundaries by put() and get(), the only
 * two functions that touch the pages.
 *
 * The host is untrusted. An answer is read only through get(), which never reads past the
 * bytes the device says it wrote nor past the message's own size field; a short read marks
 * the answer bad, and a bad answer is VIO_EPROTO however far the parse got. No count, length
 * or string size from the host is used before it is checked against what is left.
 *
 * Follow one request (vio_9p_read):
 *	vio_9p_read  begin() writes size/type/tag, put32/put64 the fid, offset and count
 *	rpc          finish() writes the size; post() hands tx pages and enough rx pages to the
 *	             queue as one chain; waits (opts.wait every VIO_9P_SPIN_NS) for it back
 *	answer       checks size, tag and type (Rlerror -> VIO_EREMOTE with last_errno)
 *	vio_9p_read  get32 the count (at most what was asked), get() the data, end_reply()
 */
#include <vio/p9.h>

#include "driver.h"

#define PAGE 4096u

_Static_assert(VIO_9P_MSIZE >= VIO_9P_MIN_MSIZE && VIO_9P_MSIZE <= VIO_9P_MAX_PAGES * PAGE,
	       "VIO_9P_MSIZE out of range");
_Static_assert(VIO_9P_MAX_FIDS % 8 == 0, "VIO_9P_MAX_FIDS must be a multiple of 8");

static const char p9_name[] = "virtio-9p";

/* --- building a T-message --------------------------------------------------------------- */

static void put(struct vio_9p *fs, const void *src, uint32_t n)
{
	const uint8_t *s = src;

	if (fs->p9_overflow || n > fs->msize - fs->p9_txlen) {
		fs->p9_overflow = true;
		return;
	}
	while (n) {
		uint32_t off = fs->p9_txlen % PAGE, chunk = PAGE - off;
		if (chunk > n)
			chunk = n;
		__builtin_memcpy(fs->p9_tx[fs->p9_txlen / PAGE] + off, s, chunk);
		fs->p9_txlen += chunk;
		s += chunk;
		n -= chunk;
	}
}

/* 9P is little-endian whatever the CPU is. */
static void put_le(struct vio_9p *fs, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(fs, b, bytes);
}

#define put8(fs, v)  put_le(fs, v, 1)
#define put16(fs, v) put_le(fs, v, 2)
#define put32(fs, v) put_le(fs, v, 4)
#define put64(fs, v) put_le(fs, v, 8)

static size_t str_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n])
		n++;
	return n;
}

/* A string: len[2] then the bytes. A name longer than Linux allows does not fit. */
static void put_str(struct vio_9p *fs, const char *s, size_t n)
{
	if (n > VIO_9P_NAME_MAX) {
		fs->p9_overflow = true;
		return;
	}
	put16(fs, n);
	put(fs, s, (uint32_t)n);
}

static void put_cstr(struct vio_9p *fs, const char *s)
{
	put_str(fs, s, str_len(s, VIO_9P_NAME_MAX));
}

static void begin(struct vio_9p *fs, uint8_t type, uint16_t tag)
{
	fs->p9_txlen = 0;
	fs->p9_overflow = false;
	fs->p9_tag = tag;
	put32(fs, 0); /* the size, once known */
	put8(fs, type);
	put16(fs, tag);
}

static uint16_t next_tag(struct vio_9p *fs)
{
	/* One request at a time, but a fresh tag each: a late answer to an old one is refused. */
	uint16_t t = (uint16_t)(fs->p9_tag + 1);
	return t == P9_NOTAG ? 0 : t;
}

/* --- reading an R-message --------------------------------------------------------------- */

/* n bytes of the answer into dst (zeros, and the answer marked bad, if they are not there). */
static void get(struct vio_9p *fs, void *dst, uint32_t n)
{
	uint8_t *d = dst;

	if (fs->p9_bad || n > fs->p9_rxlen - fs->p9_rxpos) {
		fs->p9_bad = true;
		__builtin_memset(dst, 0, n);
		return;
	}
	while (n) {
		uint32_t off = fs->p9_rxpos % PAGE, chunk = PAGE - off;
		if (chunk > n)
			chunk = n;
		__builtin_memcpy(d, fs->p9_rx[fs->p9_rxpos / PAGE] + off, chunk);
		fs->p9_rxpos += chunk;
		d += chunk;
		n -= chunk;
	}
}

static uint64_t get_le(struct vio_9p *fs, unsigned bytes)
{
	uint8_t b[8];
	uint64_t v = 0;

	get(fs, b, bytes);
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

#define get8(fs)  ((uint8_t)get_le(fs, 1))
#define get16(fs) ((uint16_t)get_le(fs, 2))
#define get32(fs) ((uint32_t)get_le(fs, 4))
#define get64(fs) get_le(fs, 8)

static void get_qid(struct vio_9p *fs, struct vio_9p_qid *q)
{
	q->type = get8(fs);
	q->version = get32(fs);
	q->path = get64(fs);
}

/* A name into out (VIO_9P_NAME_MAX + 1 bytes): longer ones, or ones holding NUL or '/',
 * make the answer bad. */
static void get_name(struct vio_9p *fs, char *out)
{
	uint16_t n = get16(fs);

	if (n > VIO_9P_NAME_MAX) {
		fs->p9_bad = true;
		n = 0;
	}
	get(fs, out, n);
	out[n] = 0;
	for (uint16_t i = 0; i < n; i++)
		if (out[i] == 0 || out[i] == '/')
			fs->p9_bad = true;
}

/* The answer was read to its end and nothing ran short: 0, else VIO_EPROTO (logged). */
static int end_reply(struct vio_9p *fs)
{
	if (!fs->p9_bad && fs->p9_rxpos == fs->p9_rxlen)
		return 0;
	fs->stats.bad_replies++;
	vio_logf(fs->dev->port, VIO_LOG_ERR, "%s: malformed answer (%u of %u bytes parsed)",
		 p9_name, fs->p9_rxpos, fs->p9_rxlen);
	return VIO_EPROTO;
}

/* --- one request ------------------------------------------------------------------------ */

/* A broken queue or a timeout may be the device asking for a reset (2.1.2): the core says. */
static int device_error(struct vio_9p *fs, int err)
{
	return vio_dev_error(fs->dev, err);
}

/* Take the request back if the device has answered: 0, VIO_EAGAIN, or a queue error. */
static int reap(struct vio_9p *fs, uint32_t *len)
{
	struct vio_vq_used u;
	int err = vio_vq_get_used(&fs->p9_vq, &u);

	if (err)
		return err;
	/* The core checked the id was in flight: ours is the only request there is. */
	VIO_ASSERT(u.cookie == fs);
	fs->p9_stuck = false;
	if (u.len > u.in_len) {
		vio_logf(fs->dev->port, VIO_LOG_ERR,
			 "%s: device claims %u bytes in a %u-byte answer", p9_name, u.len,
			 u.in_len);
		return VIO_EIO;
	}
	*len = u.len;
	return 0;
}

int vio_9p_poll(struct vio_9p *fs)
{
	uint32_t len;

	if (!fs->dev)
		return VIO_ENODEV;
	if (!fs->p9_stuck)
		return 0;
	int err = reap(fs, &len);
	if (err == VIO_EAGAIN)
		return VIO_ETIMEDOUT;
	return err ? device_error(fs, err) : 0;
}

/*
 * Send the message built since begin() with room for an answer of up to `rx_max` bytes, wait
 * for it, and check its frame: size within what the device wrote, our tag, and type
 * `rtype` (or Rlerror, which is VIO_EREMOTE). On 0 the body is ready for get().
 */
static int rpc(struct vio_9p *fs, uint8_t rtype, uint32_t rx_max)
{
	const struct vio_port *port = fs->dev->port;
	uint32_t size = fs->p9_txlen, len = 0;
	unsigned n = 0;
	int err;

	if (fs->p9_overflow)
		return VIO_EINVAL; /* a name or a write that does not fit msize */
	if ((err = vio_9p_poll(fs)))
		return err;
	/* The size, at the front of the first page. */
	for (unsigned i = 0; i < 4; i++)
		fs->p9_tx[0][i] = (uint8_t)(size >> (8 * i));

	if (rx_max > fs->msize)
		rx_max = fs->msize;
	for (uint32_t off = 0; off < size; off += PAGE, n++)
		fs->p9_sg[n] =
		    (struct vio_sg){fs->p9_tx[off / PAGE], size - off < PAGE ? size - off : PAGE};
	unsigned n_out = n;
	for (uint32_t off = 0; off < rx_max; off += PAGE, n++)
		fs->p9_sg[n] = (struct vio_sg){fs->p9_rx[off / PAGE],
					       rx_max - off < PAGE ? rx_max - off : PAGE};
	err = vio_vq_add(&fs->p9_vq, fs->p9_sg, n_out, n - n_out, fs);
	if (err)
		return device_error(fs, err);
	fs->p9_stuck = true;
	vio_vq_kick(&fs->p9_vq);

	uint64_t start = port->now_ns(port->ctx), spun = start;
	while ((err = reap(fs, &len)) == VIO_EAGAIN) {
		uint64_t now = port->now_ns(port->ctx);
		if (now - start > fs->p9_opts.timeout_ns) {
			fs->stats.timeouts++;
			vio_logf(port, VIO_LOG_ERR, "%s: no answer to message type %u in %llu ns",
				 p9_name, fs->p9_tx[0][4], (unsigned long long)(now - start));
			return device_error(fs, VIO_ETIMEDOUT);
		}
		if (fs->p9_opts.wait && now - spun >= VIO_9P_SPIN_NS) {
			fs->p9_opts.wait(fs, fs->p9_opts.arg);
			spun = port->now_ns(port->ctx);
		}
		if (port->delay_us)
			port->delay_us(port->ctx, 1);
	}
	if (err)
		return device_error(fs, err);

	fs->p9_rxlen = len;
	fs->p9_rxpos = 0;
	fs->p9_bad = false;
	uint32_t rsize = get32(fs);
	uint8_t type = get8(fs);
	uint16_t tag = get16(fs);
	if (fs->p9_bad || rsize < P9_HDR || rsize > len || tag != fs->p9_tag ||
	    (type != rtype && type != P9_RLERROR)) {
		fs->stats.bad_replies++;
		vio_logf(port, VIO_LOG_ERR,
			 "%s: bad answer: size %u in %u bytes, type %u (want %u), tag %u (want %u)",
			 p9_name, rsize, len, type, rtype, tag, fs->p9_tag);
		return VIO_EPROTO;
	}
	fs->p9_rxlen = rsize; /* the message's own size bounds the parse */
	fs->stats.rpcs++;
	if (type == P9_RLERROR) {
		fs->last_errno = get32(fs);
		fs->stats.errors++;
		return end_reply(fs) ? VIO_EPROTO : VIO_EREMOTE;
	}
	return 0;
}

/* A request with an empty answer (Rclunk, Rsetattr, ...). */
static int rpc_empty(struct vio_9p *fs, uint8_t rtype)
{
	int err = rpc(fs, rtype, P9_HDR + 4);
	return err ? err : end_reply(fs);
}

/* --- fids -------------------------------------------------------------------------------- */

static int fid_alloc(struct vio_9p *fs, uint32_t *fid)
{
	for (uint32_t i = 0; i < VIO_9P_MAX_FIDS; i++)
		if (!(fs->p9_fids[i / 8] & (1u << (i % 8)))) {
			fs->p9_fids[i / 8] |= (uint8_t)(1u << (i % 8));
			*fid = i;
			return 0;
		}
	return VIO_ENOSPC;
}

static bool fid_valid(const struct vio_9p *fs, uint32_t fid)
{
	return fid < VIO_9P_MAX_FIDS && (fs->p9_fids[fid / 8] & (1u << (fid % 8)));
}

static void fid_free(struct vio_9p *fs, uint32_t fid)
{
	fs->p9_fids[fid / 8] &= (uint8_t) ~(1u << (fid % 8));
}

/* --- the client's calls ------------------------------------------------------------------ */

static int version(struct vio_9p *fs)
{
	char v[VIO_9P_NAME_MAX + 1];

	begin(fs, P9_TVERSION, P9_NOTAG);
	put32(fs, fs->msize);
	put_cstr(fs, P9_VERSION_L);
	int err = rpc(fs, P9_TVERSION + 1, PAGE);
	if (err)
		return err;
	uint32_t msize = get32(fs);
	get_name(fs, v);
	if ((err = end_reply(fs)))
		return err;
	if (__builtin_memcmp(v, P9_VERSION_L, sizeof(P9_VERSION_L)) != 0) {
		vio_logf(fs->dev->port, VIO_LOG_ERR, "%s: server does not speak %s", p9_name,
			 P9_VERSION_L);
		return VIO_ENOTSUP;
	}
	/* The server may lower msize, never raise it, and below a page nothing fits. */
	if (msize > fs->msize || msize < VIO_9P_MIN_MSIZE) {
		vio_logf(fs->dev->port, VIO_LOG_ERR, "%s: server msize %u (asked %u)", p9_name,
			 msize, fs->msize);
		return VIO_EPROTO;
	}
	fs->msize = msize;
	return 0;
}

int vio_9p_attach(struct vio_9p *fs, const char *uname, uint32_t *root)
{
	struct vio_9p_qid q;
	uint32_t fid;
	int err;

	if (!fs->dev || !uname || !root)
		return VIO_EINVAL;
	if ((err = fid_alloc(fs, &fid)))
		return err;
	begin(fs, P9_TATTACH, next_tag(fs));
	put32(fs, fid);
	put32(fs, P9_NOFID); /* no authentication */
	put_cstr(fs, uname);
	put_cstr(fs, "");
	put32(fs, 0); /* n_uname: uid 0 */
	err = rpc(fs, P9_TATTACH + 1, PAGE);
	if (!err) {
		get_qid(fs, &q);
		err = end_reply(fs);
	}
	if (err) {
		fid_free(fs, fid);
		return err;
	}
	*root = fid;
	return 0;
}

/* Next non-empty component of *p into name (NUL-terminated); false at the end or when a
 * component is longer than a name may be (then *toolong). */
static bool next_name(const char **p, char *name, bool *toolong)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == '/')
		s++;
	if (!*s)
		return false;
	while (s[n] && s[n] != '/')
		n++;
	if (n > VIO_9P_NAME_MAX) {
		*toolong = true;
		return false;
	}
	__builtin_memcpy(name, s, n);
	name[n] = 0;
	*p = s + n;
	return true;
}

/* One Twalk of up to P9_MAXWELEM names from *path; *done says whether the path ended. */
static int walk_step(struct vio_9p *fs, uint32_t fid, uint32_t newfid, const char **path,
		     bool *done)
{
	char name[VIO_9P_NAME_MAX + 1];
	struct vio_9p_qid q;
	bool toolong = false;
	uint16_t nw = 0;

	begin(fs, P9_TWALK, next_tag(fs));
	put32(fs, fid);
	put32(fs, newfid);
	uint32_t count_at = fs->p9_txlen;
	put16(fs, 0); /* nwname, once known */
	while (nw < P9_MAXWELEM && next_name(path, name, &toolong)) {
		put_cstr(fs, name);
		nw++;
	}
	if (toolong)
		return VIO_EINVAL;
	*done = !next_name(&(const char *){*path}, name, &toolong);
	fs->p9_tx[0][count_at] = (uint8_t)nw; /* count_at < 16: always in the first page */
	fs->p9_tx[0][count_at + 1] = (uint8_t)(nw >> 8);

	int err = rpc(fs, P9_TWALK + 1, PAGE);
	if (err)
		return err;
	uint16_t nq = get16(fs);
	if (nq > nw)
		fs->p9_bad = true;
	for (uint16_t i = 0; i < nq && !fs->p9_bad; i++)
		get_qid(fs, &q);
	if ((err = end_reply(fs)))
		return err;
	if (nq < nw) {
		/* 9P: a walk that stops short creates no newfid. The name was not there. */
		fs->last_errno = 2; /* ENOENT */
		return VIO_EREMOTE;
	}
	return 0;
}

int vio_9p_walk(struct vio_9p *fs, uint32_t fid, const char *path, uint32_t *newfid)
{
	uint32_t nf;
	bool done = false;
	int err;

	if (!fs->dev || !path || !newfid || !fid_valid(fs, fid))
		return VIO_EINVAL;
	if ((err = fid_alloc(fs, &nf)))
		return err;
	/* The first step clones fid to nf (zero names: a clone); later ones walk nf itself. */
	err = walk_step(fs, fid, nf, &path, &done);
	if (err) {
		fid_free(fs, nf);
		return err;
	}
	while (!done) {
		if ((err = walk_step(fs, nf, nf, &path, &done))) {
			vio_9p_clunk(fs, nf);
			return err;
		}
	}
	*newfid = nf;
	return 0;
}

/* Rlopen and Rlcreate: qid[13] iounit[4]. */
static int opened(struct vio_9p *fs)
{
	struct vio_9p_qid q;

	get_qid(fs, &q);
	(void)get32(fs); /* iounit: msize already bounds every request */
	return end_reply(fs);
}

int vio_9p_open(struct vio_9p *fs, uint32_t fid, uint32_t flags)
{
	if (!fs->dev || !fid_valid(fs, fid))
		return VIO_EINVAL;
	begin(fs, P9_TLOPEN, next_tag(fs));
	put32(fs, fid);
	put32(fs, flags);
	int err = rpc(fs, P9_TLOPEN + 1, PAGE);
	return err ? err : opened(fs);
}

int vio_9p_create(struct vio_9p *fs, uint32_t fid, const char *name, uint32_t flags, uint32_t mode)
{
	if (!fs->dev || !name || !fid_valid(fs, fid))
		return VIO_EINVAL;
	begin(fs, P9_TLCREATE, next_tag(fs));
	put32(fs, fid);
	put_cstr(fs, name);
	put32(fs, flags);
	put32(fs, mode);
	put32(fs, 0); /* gid */
	int err = rpc(fs, P9_TLCREATE + 1, PAGE);
	return err ? err : opened(fs);
}

int vio_9p_read(struct vio_9p *fs, uint32_t fid, uint64_t offset, void *buf, uint32_t len)
{
	if (!fs->dev || !buf || !fid_valid(fs, fid) || len > INT32_MAX)
		return VIO_EINVAL;
	if (len > fs->msize - P9_READ_HDR)
		len = fs->msize - P9_READ_HDR;
	begin(fs, P9_TREAD, next_tag(fs));
	put32(fs, fid);
	put64(fs, offset);
	put32(fs, len);
	int err = rpc(fs, P9_TREAD + 1, P9_READ_HDR + len);
	if (err)
		return err;
	uint32_t n = get32(fs);
	if (n > len)
		fs->p9_bad = true;
	else
		get(fs, buf, n);
	if ((err = end_reply(fs)))
		return err;
	fs->stats.bytes_read += n;
	return (int)n;
}

int vio_9p_write(struct vio_9p *fs, uint32_t fid, uint64_t offset, const void *buf, uint32_t len)
{
	if (!fs->dev || !buf || !fid_valid(fs, fid) || len > INT32_MAX)
		return VIO_EINVAL;
	if (len > fs->msize - P9_WRITE_HDR)
		len = fs->msize - P9_WRITE_HDR;
	begin(fs, P9_TWRITE, next_tag(fs));
	put32(fs, fid);
	put64(fs, offset);
	put32(fs, len);
	put(fs, buf, len);
	int err = rpc(fs, P9_TWRITE + 1, PAGE);
	if (err)
		return err;
	uint32_t n = get32(fs);
	if (n > len)
		fs->p9_bad = true;
	if ((err = end_reply(fs)))
		return err;
	fs->stats.bytes_written += n;
	return (int)n;
}

int vio_9p_readdir(struct vio_9p *fs, uint32_t fid, uint64_t *cookie, struct vio_9p_dirent *ents,
		   unsigned max)
{
	if (!fs->dev || !cookie || !ents || max == 0 || !fid_valid(fs, fid))
		return VIO_EINVAL;
	uint32_t want = fs->msize - P9_READ_HDR;
	begin(fs, P9_TREADDIR, next_tag(fs));
	put32(fs, fid);
	put64(fs, *cookie);
	put32(fs, want);
	int err = rpc(fs, P9_TREADDIR + 1, P9_READ_HDR + want);
	if (err)
		return err;
	uint32_t count = get32(fs);
	if (count > want || count > fs->p9_rxlen - fs->p9_rxpos)
		fs->p9_bad = true;
	/* Entries: qid[13] offset[8] type[1] name[s], exactly filling count. Those past max are
	 * read again next time, from the last stored entry's offset. */
	uint32_t end = fs->p9_rxpos + count;
	unsigned n = 0;
	uint64_t next = *cookie;
	while (!fs->p9_bad && fs->p9_rxpos < end) {
		struct vio_9p_dirent d;
		get_qid(fs, &d.qid);
		d.offset = get64(fs);
		d.type = get8(fs);
		get_name(fs, d.name);
		if (fs->p9_rxpos > end)
			fs->p9_bad = true;
		if (fs->p9_bad || n == max)
			continue;
		ents[n++] = d;
		next = d.offset;
	}
	if ((err = end_reply(fs)))
		return err;
	*cookie = next;
	return (int)n;
}

int vio_9p_getattr(struct vio_9p *fs, uint32_t fid, struct vio_9p_attr *a)
{
	if (!fs->dev || !a || !fid_valid(fs, fid))
		return VIO_EINVAL;
	begin(fs, P9_TGETATTR, next_tag(fs));
	put32(fs, fid);
	put64(fs, P9_GETATTR_BASIC);
	int err = rpc(fs, P9_TGETATTR + 1, PAGE);
	if (err)
		return err;
	(void)get64(fs); /* valid: what the server filled; the rest reads as 0 otherwise */
	get_qid(fs, &a->qid);
	a->mode = get32(fs);
	a->uid = get32(fs);
	a->gid = get32(fs);
	a->nlink = get64(fs);
	(void)get64(fs); /* rdev */
	a->size = get64(fs);
	(void)get64(fs); /* blksize */
	a->blocks = get64(fs);
	(void)get64(fs); /* atime */
	(void)get64(fs);
	a->mtime_sec = get64(fs);
	for (int i = 0; i < 7; i++) /* mtime_nsec, ctime, btime, gen, data_version */
		(void)get64(fs);
	return end_reply(fs);
}

int vio_9p_truncate(struct vio_9p *fs, uint32_t fid, uint64_t size)
{
	if (!fs->dev || !fid_valid(fs, fid))
		return VIO_EINVAL;
	begin(fs, P9_TSETATTR, next_tag(fs));
	put32(fs, fid);
	put32(fs, P9_SETATTR_SIZE);
	put32(fs, 0); /* mode */
	put32(fs, 0); /* uid */
	put32(fs, 0); /* gid */
	put64(fs, size);
	for (int i = 0; i < 4; i++) /* atime, mtime: not set */
		put64(fs, 0);
	return rpc_empty(fs, P9_TSETATTR + 1);
}

int vio_9p_mkdir(struct vio_9p *fs, uint32_t dirfid, const char *name, uint32_t mode)
{
	struct vio_9p_qid q;

	if (!fs->dev || !name || !fid_valid(fs, dirfid))
		return VIO_EINVAL;
	begin(fs, P9_TMKDIR, next_tag(fs));
	put32(fs, dirfid);
	put_cstr(fs, name);
	put32(fs, mode);
	put32(fs, 0); /* gid */
	int err = rpc(fs, P9_TMKDIR + 1, PAGE);
	if (err)
		return err;
	get_qid(fs, &q);
	return end_reply(fs);
}

int vio_9p_unlinkat(struct vio_9p *fs, uint32_t dirfid, const char *name, uint32_t flags)
{
	if (!fs->dev || !name || !fid_valid(fs, dirfid))
		return VIO_EINVAL;
	begin(fs, P9_TUNLINKAT, next_tag(fs));
	put32(fs, dirfid);
	put_cstr(fs, name);
	put32(fs, flags);
	return rpc_empty(fs, P9_TUNLINKAT + 1);
}

int vio_9p_renameat(struct vio_9p *fs, uint32_t olddir, const char *oldname, uint32_t newdir,
		    const char *newname)
{
	if (!fs->dev || !oldname || !newname || !fid_valid(fs, olddir) || !fid_valid(fs, newdir))
		return VIO_EINVAL;
	begin(fs, P9_TRENAMEAT, next_tag(fs));
	put32(fs, olddir);
	put_cstr(fs, oldname);
	put32(fs, newdir);
	put_cstr(fs, newname);
	return rpc_empty(fs, P9_TRENAMEAT + 1);
}

int vio_9p_fsync(struct vio_9p *fs, uint32_t fid)
{
	if (!fs->dev || !fid_valid(fs, fid))
		return VIO_EINVAL;
	begin(fs, P9_TFSYNC, next_tag(fs));
	put32(fs, fid);
	put32(fs, 0); /* datasync: no, the metadata too */
	return rpc_empty(fs, P9_TFSYNC + 1);
}

int vio_9p_clunk(struct vio_9p *fs, uint32_t fid)
{
	if (!fs->dev || !fid_valid(fs, fid))
		return VIO_EINVAL;
	begin(fs, P9_TCLUNK, next_tag(fs));
	put32(fs, fid);
	int err = rpc_empty(fs, P9_TCLUNK + 1);
	fid_free(fs, fid); /* whatever the answer: the server forgets it too (9P clunk) */
	return err;
}

const char *vio_9p_errno_name(uint32_t e)
{
	switch (e) {
	case 1:
		return "EPERM";
	case 2:
		return "ENOENT";
	case 5:
		return "EIO";
	case 9:
		return "EBADF";
	case 12:
		return "ENOMEM";
	case 13:
		return "EACCES";
	case 16:
		return "EBUSY";
	case 17:
		return "EEXIST";
	case 18:
		return "EXDEV";
	case 20:
		return "ENOTDIR";
	case 21:
		return "EISDIR";
	case 22:
		return "EINVAL";
	case 24:
		return "EMFILE";
	case 27:
		return "EFBIG";
	case 28:
		return "ENOSPC";
	case 30:
		return "EROFS";
	case 36:
		return "ENAMETOOLONG";
	case 39:
		return "ENOTEMPTY";
	case 95:
		return "EOPNOTSUPP";
	case 116:
		return "ESTALE";
	default:
		return "E?";
	}
}

/* --- bring-up ---------------------------------------------------------------------------- */

static void free_pages(struct vio_9p *fs)
{
	const struct vio_port *port = fs->dev->port;

	for (unsigned i = 0; i < fs->p9_npages; i++) {
		if (fs->p9_tx[i])
			port->dma_free(port->ctx, fs->p9_tx[i], PAGE);
		if (fs->p9_rx[i])
			port->dma_free(port->ctx, fs->p9_rx[i], PAGE);
		fs->p9_tx[i] = fs->p9_rx[i] = NULL;
	}
	fs->p9_npages = 0;
}

static int alloc_pages(struct vio_9p *fs)
{
	const struct vio_port *port = fs->dev->port;
	uint64_t phys;

	fs->p9_npages = fs->msize / PAGE;
	for (unsigned i = 0; i < fs->p9_npages; i++) {
		fs->p9_tx[i] = port->dma_alloc(port->ctx, PAGE, &phys);
		fs->p9_rx[i] = port->dma_alloc(port->ctx, PAGE, &phys);
		if (!fs->p9_tx[i] || !fs->p9_rx[i])
			return VIO_ENOMEM;
	}
	return 0;
}

/* The mount tag (VIRTIO_9P_MOUNT_TAG): tag_len[2] then the bytes, kept up to
 * VIO_9P_TAG_MAX and up to a NUL. */
static int read_tag(struct vio_9p *fs)
{
	uint8_t lb[2];
	int err = vio_dev_config_read(fs->dev, VIRTIO_9P_CFG_TAG_LEN, lb, sizeof(lb));

	if (err)
		return err;
	uint32_t n = (uint32_t)lb[0] | (uint32_t)lb[1] << 8;
	if (n > VIO_9P_TAG_MAX)
		n = VIO_9P_TAG_MAX;
	if (n && (err = vio_dev_config_read(fs->dev, VIRTIO_9P_CFG_TAG, fs->tag, n)))
		return err;
	fs->tag[n] = 0;
	return 0;
}

int vio_9p_init(struct vio_9p *fs, struct vio_dev *dev, const struct vio_9p_opts *opts)
{
	int err;

	__builtin_memset(fs, 0, sizeof(*fs));
	if (dev->device_id != VIRTIO_ID_9P)
		return VIO_ENODEV;
	if (opts)
		fs->p9_opts = *opts;
	if (!fs->p9_opts.timeout_ns)
		fs->p9_opts.timeout_ns = VIO_9P_TIMEOUT_NS;
	uint32_t msize = fs->p9_opts.msize ? fs->p9_opts.msize : VIO_9P_MSIZE;
	if (msize < VIO_9P_MIN_MSIZE || msize > VIO_9P_MAX_PAGES * PAGE)
		return VIO_EINVAL;
	fs->msize = msize / PAGE * PAGE;
	fs->p9_tag = P9_NOTAG;
	fs->dev = dev;
	dev->name = p9_name;

	/* 3.1.1 steps 1-6: the mount tag is the one feature. */
	err = vio_dev_begin(dev, 1ull << VIRTIO_9P_MOUNT_TAG);
	if (err)
		goto fail;
	if (vio_dev_has_feature(dev, VIRTIO_9P_MOUNT_TAG) && (err = read_tag(fs)))
		goto fail;

	/* Step 7: the requestq. The client polls for its one request, so no callback. */
	err = vio_dev_setup_irqs(dev, &fs->p9_vq, VIRTIO_9P_NUM_QUEUES);
	if (err)
		goto fail;
	err = vio_dev_setup_vq_opts(dev, VIRTIO_9P_Q_REQUEST,
				    &(struct vio_vq_opts){.max_size = 128, .indirect_tables = 1},
				    NULL, NULL);
	if (err)
		goto fail;
	vio_vq_disable_cb(&fs->p9_vq);
	if ((err = alloc_pages(fs)))
		goto fail;

	/* Step 8, then agree on the dialect and msize. */
	if ((err = vio_dev_driver_ok(dev)) || (err = version(fs)))
		goto fail;
	return 0;

fail:
	driver_abort(dev, p9_name, err);
	free_pages(fs);
	fs->dev = NULL;
	return err;
}

int vio_9p_fini(struct vio_9p *fs)
{
	if (!fs->dev)
		return 0;
	/* Reset first: after it the device no longer writes into our pages. */
	int err = vio_dev_teardown(fs->dev);
	if (err) {
		vio_logf(fs->dev->port, VIO_LOG_ERR,
			 "%s: reset not confirmed: keeping the buffers, device failed", p9_name);
		vio_dev_fail(fs->dev);
		fs->p9_npages = 0; /* the device may still write them: never reuse */
	}
	free_pages(fs);
	fs->dev = NULL;
	return err;
}
