/*
 * cmd_9p.c: the shell's `9p` command, a host folder through virtio-9p (include/vio/p9.h).
 *
 * Paths are relative to the export's root ("dir/file", leading '/' ignored). Each
 * subcommand walks from the root fid that devices.c attached at boot to a fid of its own, and
 * clunks every fid it made on every path out, so a failed command leaks nothing on the host.
 * The host's names and file contents are printed with control bytes replaced, so that a
 * name cannot drive the terminal.
 *
 *   9p [info]                 mount tag, msize, counters
 *   9p ls [dir]               the entries (dirs end in '/'), then their count
 *   9p cat <file>             the contents
 *   9p put <file> <text...>   create or truncate the file, write the text and a newline
 *   9p stat <path>            type, mode, size, links, owner, mtime
 *   9p mkdir|rm <path>        make a directory; remove a file or an empty directory
 *   9p mv <old> <new>         rename
 *   9p sha256 <file>          SHA-256 and size of the contents
 *   9p cp <from> <to>         copy; either side may be blkN:<sector>, the source then
 *                             blkN:<sector>:<bytes>
 *   9p bench read <file>      read the whole file, timed: bytes and ns (make bench)
 *   9p bench write <file> <MiB>  create or truncate the file and write MiB of a pattern,
 *                             timed, without an fsync (the host's page cache takes it)
 */
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/sha256.h>
#include <kernel/shell.h>
#include <kernel/timer.h>
#include <string.h>
#include <vio/err.h>
#include <vio/p9.h>

#define ERR(...)                                                                                   \
	do {                                                                                       \
		kprintf(__VA_ARGS__);                                                              \
		kprintf("\n");                                                                     \
		return -2;                                                                         \
	} while (0)

#define SECTOR 512u
#define DT_DIR 4

static uint8_t buf[VIO_9P_MSIZE] __attribute__((aligned(4096)));

/* A host string made printable: control bytes and DEL become '?'; UTF-8 passes through. */
static const char *clean(const char *s, char *out, size_t size)
{
	size_t i = 0;
	for (; s[i] && i + 1 < size; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	out[i] = 0;
	return out;
}

/* Why a 9p call failed, as a sentence about `path`. */
static int say(int err, const char *what, const char *path)
{
	struct vio_9p *fs = dev_9p(0);
	if (err == VIO_EREMOTE) {
		const char *why;
		switch (fs->last_errno) {
		case 2:
			why = "no such file or directory";
			break;
		case 30:
			why = "the export is read-only";
			break;
		case 20:
			why = "a part of the path is not a directory";
			break;
		case 21:
			why = "it is a directory";
			break;
		case 17:
			why = "it already exists";
			break;
		case 39:
			why = "the directory is not empty";
			break;
		case 1:
		case 13:
			why = "the host does not allow it";
			break;
		case 28:
			why = "the host's disk is full";
			break;
		case 116:
			why = "the file went away on the host";
			break;
		default:
			why = "the host refused";
			break;
		}
		kprintf("9p: %s %s: %s (%s)\n", what, path, why, vio_9p_errno_name(fs->last_errno));
	} else {
		kprintf("9p: %s %s: %s\n", what, path, shell_strerror(err));
	}
	return -2;
}

/* A fid for `path`, or an error already said. */
static int walk(const char *path, uint32_t *fid, const char *what)
{
	int err = DEV_CALL(vio_9p_walk(dev_9p(0), p9_root(0), path, fid));
	return err ? say(err, what, path) : 0;
}

static void clunk(uint32_t fid)
{
	DEV_CALL(vio_9p_clunk(dev_9p(0), fid));
}

/* Split "a/b/c" into the parent's fid and "c" (into name). */
static int parent(const char *path, uint32_t *dir, char *name, size_t size, const char *what)
{
	const char *slash = strrchr(path, '/');
	const char *last = slash ? slash + 1 : path;
	if (!*last || strlen(last) >= size)
		ERR("9p: %s %s: give a file name (at most %u bytes) after the last '/'", what, path,
		    (unsigned)size - 1);
	char dirpath[256];
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (n >= sizeof(dirpath))
		ERR("9p: %s: the path is longer than %u bytes", what,
		    (unsigned)sizeof(dirpath) - 1);
	memcpy(dirpath, path, n);
	dirpath[n] = 0;
	strcpy(name, last);
	return walk(dirpath, dir, what);
}

static int info(void)
{
	struct vio_9p *fs = dev_9p(0);
	const struct vio_9p_stats *s = &fs->stats;
	char tag[VIO_9P_TAG_MAX + 1];
	kprintf("9p0: tag '%s', msize %u, requests %llu (refused %llu, malformed %llu, timed out "
		"%llu), read %llu B, written %llu B\n",
		clean(fs->tag, tag, sizeof(tag)), fs->msize, (unsigned long long)s->rpcs,
		(unsigned long long)s->errors, (unsigned long long)s->bad_replies,
		(unsigned long long)s->timeouts, (unsigned long long)s->bytes_read,
		(unsigned long long)s->bytes_written);
	return 0;
}

static int ls(const char *path)
{
	static struct vio_9p_dirent ents[32];
	uint32_t fid;
	uint64_t cookie = 0;
	unsigned total = 0;
	int n, err;
	char name[VIO_9P_NAME_MAX + 1];

	if ((err = walk(path, &fid, "ls")))
		return err;
	if ((err = DEV_CALL(vio_9p_open(dev_9p(0), fid, P9_O_RDONLY)))) {
		clunk(fid);
		return say(err, "ls", path);
	}
	while ((n = DEV_CALL(vio_9p_readdir(dev_9p(0), fid, &cookie, ents, 32))) > 0) {
		for (int i = 0; i < n; i++) {
			if (!strcmp(ents[i].name, ".") || !strcmp(ents[i].name, ".."))
				continue;
			kprintf("%s%s\n", clean(ents[i].name, name, sizeof(name)),
				ents[i].type == DT_DIR ? "/" : "");
			total++;
		}
	}
	clunk(fid);
	if (n < 0)
		return say(n, "ls", path);
	kprintf("%u entries\n", total);
	return 0;
}

/* Read the whole file at path, giving each chunk to fn; the size in *size. */
static int read_all(const char *path, const char *what, void (*fn)(const uint8_t *, int, void *),
		    void *arg, uint64_t *size)
{
	uint32_t fid;
	uint64_t off = 0;
	int n, err;

	if ((err = walk(path, &fid, what)))
		return err;
	if ((err = DEV_CALL(vio_9p_open(dev_9p(0), fid, P9_O_RDONLY)))) {
		clunk(fid);
		return say(err, what, path);
	}
	while ((n = DEV_CALL(vio_9p_read(dev_9p(0), fid, off, buf, sizeof(buf)))) > 0) {
		fn(buf, n, arg);
		off += (uint64_t)n;
		if (shell_interrupted()) {
			clunk(fid);
			ERR("9p: %s %s: stopped (Ctrl-C) after %llu bytes", what, path,
			    (unsigned long long)off);
		}
	}
	clunk(fid);
	if (n < 0)
		return say(n, what, path);
	if (size)
		*size = off;
	return 0;
}

static void print_chunk(const uint8_t *p, int n, void *arg)
{
	char out[256];
	int k = 0;
	(void)arg;
	for (int i = 0; i < n; i++) {
		bool ctl = (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f;
		out[k++] = ctl ? '?' : (char)p[i];
		if (k == (int)sizeof(out) || i + 1 == n) {
			kputs_raw(out, (size_t)k);
			k = 0;
		}
	}
}

static void hash_chunk(const uint8_t *p, int n, void *arg)
{
	sha256_update(arg, p, (size_t)n);
}

/* A fid open for writing at path, created or truncated. */
static int open_write(const char *path, uint32_t *fid, const char *what)
{
	char name[VIO_9P_NAME_MAX + 1];
	int err = DEV_CALL(vio_9p_walk(dev_9p(0), p9_root(0), path, fid));
	if (!err) {
		err = DEV_CALL(vio_9p_open(dev_9p(0), *fid, P9_O_WRONLY | P9_O_TRUNC));
		if (err) {
			clunk(*fid);
			return say(err, what, path);
		}
		return 0;
	}
	if (err != VIO_EREMOTE || dev_9p(0)->last_errno != 2)
		return say(err, what, path);
	if ((err = parent(path, fid, name, sizeof(name), what)))
		return err;
	err = DEV_CALL(vio_9p_create(dev_9p(0), *fid, name, P9_O_WRONLY | P9_O_CREAT, 0644));
	if (err) {
		clunk(*fid);
		return say(err, what, path);
	}
	return 0;
}

static int write_all(uint32_t fid, uint64_t off, const uint8_t *p, size_t len)
{
	while (len) {
		int n = DEV_CALL(vio_9p_write(dev_9p(0), fid, off, p,
					      len > sizeof(buf) ? sizeof(buf) : (uint32_t)len));
		if (n < 0)
			return n;
		if (n == 0)
			return VIO_EIO; /* the host took nothing: it would never end */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int put(int argc, char **argv)
{
	static char text[1024];
	size_t len = 0;
	uint32_t fid;
	int err;

	for (int i = 3; i < argc; i++) {
		size_t n = strlen(argv[i]);
		if (len + n + 2 > sizeof(text))
			ERR("9p: put: the text is longer than %u bytes",
			    (unsigned)sizeof(text) - 2);
		memcpy(text + len, argv[i], n);
		len += n;
		text[len++] = i + 1 < argc ? ' ' : '\n';
	}
	if ((err = open_write(argv[2], &fid, "put")))
		return err;
	err = write_all(fid, 0, (const uint8_t *)text, len);
	clunk(fid);
	if (err)
		return say(err, "put", argv[2]);
	kprintf("wrote %u bytes to %s\n", (unsigned)len, argv[2]);
	return 0;
}

static int stat(const char *path)
{
	struct vio_9p_attr a;
	uint32_t fid;
	int err;

	if ((err = walk(path, &fid, "stat")))
		return err;
	err = DEV_CALL(vio_9p_getattr(dev_9p(0), fid, &a));
	clunk(fid);
	if (err)
		return say(err, "stat", path);
	char mode[5]; /* octal: kprintf has no %o */
	for (int i = 0; i < 4; i++)
		mode[i] = (char)('0' + ((a.mode >> (3 * (3 - i))) & 7));
	mode[4] = 0;
	kprintf("%s: %s, mode %s, size %llu, links %llu, uid %u gid %u, mtime %llu\n", path,
		a.qid.type & P9_QTDIR ? "directory" : "file", mode, (unsigned long long)a.size,
		(unsigned long long)a.nlink, a.uid, a.gid, (unsigned long long)a.mtime_sec);
	return 0;
}

static int mkdir_rm(const char *op, const char *path)
{
	char name[VIO_9P_NAME_MAX + 1];
	uint32_t dir;
	int err;

	if ((err = parent(path, &dir, name, sizeof(name), op)))
		return err;
	if (!strcmp(op, "mkdir")) {
		err = DEV_CALL(vio_9p_mkdir(dev_9p(0), dir, name, 0755));
	} else {
		err = DEV_CALL(vio_9p_unlinkat(dev_9p(0), dir, name, 0));
		if (err == VIO_EREMOTE && dev_9p(0)->last_errno == 21) /* EISDIR */
			err = DEV_CALL(vio_9p_unlinkat(dev_9p(0), dir, name, P9_AT_REMOVEDIR));
	}
	clunk(dir);
	return err ? say(err, op, path) : 0;
}

static int mv(const char *from, const char *to)
{
	char oldname[VIO_9P_NAME_MAX + 1], newname[VIO_9P_NAME_MAX + 1];
	uint32_t olddir, newdir;
	int err;

	if ((err = parent(from, &olddir, oldname, sizeof(oldname), "mv")))
		return err;
	if ((err = parent(to, &newdir, newname, sizeof(newname), "mv"))) {
		clunk(olddir);
		return err;
	}
	err = DEV_CALL(vio_9p_renameat(dev_9p(0), olddir, oldname, newdir, newname));
	clunk(olddir);
	clunk(newdir);
	return err ? say(err, "mv", from) : 0;
}

static int sha(const char *path)
{
	struct sha256 ctx;
	uint8_t digest[32];
	uint64_t size;
	int err;

	sha256_init(&ctx);
	if ((err = read_all(path, "sha256", hash_chunk, &ctx, &size)))
		return err;
	sha256_final(&ctx, digest);
	for (int i = 0; i < 32; i++)
		kprintf("%02x", digest[i]);
	kprintf("  %s (%llu bytes)\n", path, (unsigned long long)size);
	return 0;
}

/* "blkN:<sector>[:<bytes>]": the disk, the sector, and the byte count if given. */
static bool blk_spec(const char *s, struct vio_blk **blk, uint64_t *sector, uint64_t *bytes,
		     bool *has_bytes)
{
	char copy[64];
	if (strncmp(s, "blk", 3) || strlen(s) >= sizeof(copy))
		return false;
	strcpy(copy, s);
	char *c1 = strchr(copy, ':');
	if (!c1)
		return false;
	*c1++ = 0;
	char *c2 = strchr(c1, ':');
	if (c2)
		*c2++ = 0;
	struct kvirtio *kv = dev_by_name(copy);
	*has_bytes = c2 != NULL;
	*blk = kv && kv->dev.device_id == VIRTIO_ID_BLOCK ? kv->drv : NULL;
	return *blk && parse_u64(c1, sector) && (!c2 || parse_u64(c2, bytes));
}

/* File to disk: the file from `sector` on, the last sector padded with zeros. Each disk
 * write is whole sectors, gathered from as many 9p reads as it takes. */
static int cp_to_blk(const char *path, struct vio_blk *blk, uint64_t sector, const char *to)
{
	const uint32_t chunk = sizeof(buf) / 2; /* 32 KiB: a multiple of the sector */
	uint32_t fid;
	uint64_t off = 0;
	int err = 0;
	bool eof = false;

	if ((err = walk(path, &fid, "cp")))
		return err;
	if ((err = DEV_CALL(vio_9p_open(dev_9p(0), fid, P9_O_RDONLY)))) {
		clunk(fid);
		return say(err, "cp", path);
	}
	while (!eof) {
		uint32_t fill = 0;
		if (shell_interrupted()) {
			clunk(fid);
			ERR("9p: cp: stopped (Ctrl-C) after %llu bytes", (unsigned long long)off);
		}
		while (fill < chunk) {
			int n = DEV_CALL(
			    vio_9p_read(dev_9p(0), fid, off + fill, buf + fill, chunk - fill));
			if (n < 0) {
				clunk(fid);
				return say(n, "cp", path);
			}
			if (n == 0) {
				eof = true;
				break;
			}
			fill += (uint32_t)n;
		}
		if (!fill)
			break;
		size_t len = (fill + SECTOR - 1) / SECTOR * SECTOR;
		memset(buf + fill, 0, len - fill);
		uint64_t s = sector + off / SECTOR;
		if (s + len / SECTOR > blk->info.capacity) {
			clunk(fid);
			ERR("9p: cp: %s does not fit on %s from sector %llu (%llu sectors)", path,
			    to, (unsigned long long)sector, (unsigned long long)blk->info.capacity);
		}
		if ((err = DEV_CALL(vio_blk_write(blk, s, buf, len)))) {
			clunk(fid);
			ERR("9p: cp: writing %s at sector %llu: %s", to, (unsigned long long)s,
			    shell_strerror(err));
		}
		off += fill;
	}
	clunk(fid);
	kprintf("copied %llu bytes from %s to %s\n", (unsigned long long)off, path, to);
	return 0;
}

static int cp(const char *from, const char *to)
{
	struct vio_blk *blk;
	uint64_t sector, bytes = 0, off = 0;
	bool has_bytes, stopped = false;
	uint32_t in = 0, out;
	int n, err;

	if (blk_spec(to, &blk, &sector, &bytes, &has_bytes))
		return cp_to_blk(from, blk, sector, to);
	bool from_blk = blk_spec(from, &blk, &sector, &bytes, &has_bytes);
	if (from_blk && !has_bytes)
		ERR("9p: cp: say how many bytes to copy from the disk: %s:<bytes>", from);
	if (from_blk &&
	    (sector >= blk->info.capacity || bytes > (blk->info.capacity - sector) * SECTOR))
		ERR("9p: cp: %s runs past the end of the disk (%llu sectors)", from,
		    (unsigned long long)blk->info.capacity);
	if (!from_blk) {
		if ((err = walk(from, &in, "cp")))
			return err;
		if ((err = DEV_CALL(vio_9p_open(dev_9p(0), in, P9_O_RDONLY)))) {
			clunk(in);
			return say(err, "cp", from);
		}
	}
	if ((err = open_write(to, &out, "cp"))) {
		if (!from_blk)
			clunk(in);
		return err;
	}
	for (;;) {
		if (shell_interrupted()) {
			stopped = true;
			break;
		}
		if (from_blk) {
			uint64_t left = bytes - off;
			if (!left)
				break;
			n = (int)(left < sizeof(buf) ? left : sizeof(buf));
			size_t len = ((size_t)n + SECTOR - 1) / SECTOR * SECTOR;
			if ((err = DEV_CALL(vio_blk_read(blk, sector + off / SECTOR, buf, len))))
				break;
		} else {
			n = DEV_CALL(vio_9p_read(dev_9p(0), in, off, buf, sizeof(buf)));
			if (n <= 0) {
				err = n;
				break;
			}
		}
		if ((err = write_all(out, off, buf, (size_t)n)))
			break;
		off += (uint64_t)n;
	}
	if (!from_blk)
		clunk(in);
	clunk(out);
	if (stopped)
		ERR("9p: cp: stopped (Ctrl-C) after %llu bytes", (unsigned long long)off);
	if (err)
		return say(err, "cp", from_blk ? to : from);
	kprintf("copied %llu bytes from %s to %s\n", (unsigned long long)off, from, to);
	return 0;
}

static void discard_chunk(const uint8_t *p, int n, void *arg)
{
	(void)p, (void)n, (void)arg;
}

/* `9p bench read`: every byte of the file through msize-sized Treads, one at a time. */
static int bench_read(const char *path)
{
	uint64_t size, t0 = clock_ns();
	int err = read_all(path, "bench read", discard_chunk, NULL, &size);
	if (err)
		return err;
	kprintf("9p bench read: %llu bytes in %llu ns\n", (unsigned long long)size,
		(unsigned long long)(clock_ns() - t0));
	return 0;
}

/* `9p bench write`: MiB of a byte pattern, each Twrite as large as msize allows (the client
 * cuts a longer one), one at a time. */
static int bench_write(const char *path, const char *mib_arg)
{
	uint64_t mib, off = 0;
	uint32_t fid;
	int err;

	if (!parse_u64(mib_arg, &mib) || mib == 0 || mib > 4096)
		ERR("9p bench write: give 1 to 4096 MiB");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	uint64_t t0 = clock_ns();
	if ((err = open_write(path, &fid, "bench write")))
		return err;
	while (off < mib << 20) {
		if (shell_interrupted()) {
			clunk(fid);
			ERR("9p bench write: stopped (Ctrl-C) after %llu bytes",
			    (unsigned long long)off);
		}
		uint64_t left = (mib << 20) - off;
		int n = DEV_CALL(vio_9p_write(dev_9p(0), fid, off, buf,
					      left < sizeof(buf) ? (uint32_t)left : sizeof(buf)));
		if (n <= 0) {
			err = n ? n : VIO_EIO; /* the host took nothing: it would never end */
			break;
		}
		off += (uint64_t)n;
	}
	clunk(fid);
	if (err)
		return say(err, "bench write", path);
	kprintf("9p bench write: %llu bytes in %llu ns\n", (unsigned long long)off,
		(unsigned long long)(clock_ns() - t0));
	return 0;
}

int cmd_9p(int argc, char **argv)
{
	if (!dev_9p(0))
		ERR("9p: no virtio-9p device (QEMU: -fsdev "
		    "local,id=fs0,path=DIR,security_model=none "
		    "-device virtio-9p-pci,fsdev=fs0,mount_tag=host)");
	if (argc == 1 || !strcmp(argv[1], "info"))
		return argc <= 2 ? info() : -1;
	const char *op = argv[1];
	if (!strcmp(op, "ls") && argc <= 3)
		return ls(argc == 3 ? argv[2] : "");
	if (!strcmp(op, "cat") && argc == 3) {
		uint64_t size;
		return read_all(argv[2], "cat", print_chunk, NULL, &size);
	}
	if (!strcmp(op, "put") && argc >= 3)
		return put(argc, argv);
	if (!strcmp(op, "stat") && argc == 3)
		return stat(argv[2]);
	if ((!strcmp(op, "mkdir") || !strcmp(op, "rm")) && argc == 3)
		return mkdir_rm(op, argv[2]);
	if (!strcmp(op, "mv") && argc == 4)
		return mv(argv[2], argv[3]);
	if (!strcmp(op, "sha256") && argc == 3)
		return sha(argv[2]);
	if (!strcmp(op, "cp") && argc == 4)
		return cp(argv[2], argv[3]);
	if (!strcmp(op, "bench") && argc == 4 && !strcmp(argv[2], "read"))
		return bench_read(argv[3]);
	if (!strcmp(op, "bench") && argc == 5 && !strcmp(argv[2], "write"))
		return bench_write(argv[3], argv[4]);
	return -1;
}
