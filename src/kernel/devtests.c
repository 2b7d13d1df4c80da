/*
 * devtests.c: device tests for vio.mode=test, chosen by the scenario with
 * vio.tests=name,name,... Each checks what the kernel can see and prints what the host
 * peer needs to check the rest (the host verifies the disk image, rngtest reads the
 * entropy, ...). Knobs: vio.seed=N, vio.count=N, vio.bytes=N, vio.sector=N.
 *
 *   rng-stream   write vio.bytes of entropy to the console port named org.vio.rng
 *   blk-pattern  vio.count writes of random size at random places, then flush; prints
 *                "blkw <k> <sector> <count>" so the host can check every byte
 *   blk-model    vio.count random reads and writes, up to the queue depth in flight,
 *                checked against a copy of the disk in RAM
 *   blk-ro       writes to a read-only disk fail with VIO_EROFS, reads work
 *   blk-zero     discard and write-zeroes of random ranges; prints "blkz <sector> <count>"
 *   blk-eio      the host injects EIO at vio.sector: that read fails, the others succeed
 *   blk-durable  numbered, checksummed 4 KiB records, each flushed and then acknowledged
 *                ("ACK <n>") until vio.count (or until the host kills QEMU)
 *   irq-storm    rng0's interrupt vector fires without end: the kernel must cut it off,
 *                mask its source, and the device must go on working by polling
 */
#include <kernel/apic.h>
#include <kernel/arch.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/random.h>
#include <kernel/sha256.h>
#include <kernel/tap.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <kernel/vio_port.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>
#include <vio/log.h>

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		vio_snprintf(why, size, __VA_ARGS__);                                              \
		return false;                                                                      \
	} while (0)

static uint64_t knob(const char *key, uint64_t dflt)
{
	char v[32];
	return cmdline_get(key, v, sizeof(v)) ? strtoull(v, NULL, 0) : dflt;
}

/* The byte the pattern test writes at disk offset `off` in write number `k`; the host
 * (tests/qemu/scn_blk.py) computes the same. */
static inline uint8_t pattern(uint64_t seed, uint64_t k, uint64_t off)
{
	return (uint8_t)(((off * 2654435761u) >> 13) ^ (k * 131) ^ seed);
}

static struct vio_blk *disk(char *why, size_t size)
{
	struct vio_blk *b = dev_blk(0);
	if (!b)
		vio_snprintf(why, size, "no virtio-blk disk");
	return b;
}

/* --- rng ---------------------------------------------------------------------------- */

static bool test_rng_stream(char *why, size_t size)
{
	static uint8_t buf[4096];
	struct vio_rng *rng = dev_rng(0);
	struct vio_console *con = dev_console(0);
	if (!rng || !con)
		FAIL("needs virtio-rng and virtio-console");
	int port = DEV_CALL(vio_console_find_port(con, "org.vio.rng"));
	if (port < 0)
		FAIL("no console port named org.vio.rng");
	DEV_CALL(vio_console_open(con, (uint32_t)port));
	uint64_t total = knob("vio.bytes", 2500000), done = 0, t0 = clock_ns();
	while (done < total) {
		size_t n = total - done < sizeof(buf) ? (size_t)(total - done) : sizeof(buf);
		int got = DEV_CALL(vio_rng_read(rng, buf, n, true));
		if (got != (int)n)
			FAIL("rng read: %s", got < 0 ? vio_strerror(got) : "short");
		for (size_t off = 0; off < n;) {
			int w = DEV_CALL(vio_console_write(con, (uint32_t)port, buf + off, n - off, true));
			if (w < 0)
				FAIL("console write after %llu bytes: %s", (unsigned long long)done,
				     vio_strerror(w));
			off += (size_t)w;
		}
		done += n;
	}
	uint64_t ms = (clock_ns() - t0) / 1000000 + 1;
	kprintf("rng-stream: %llu bytes in %llu ms (%llu KiB/s)\n", (unsigned long long)done,
		(unsigned long long)ms, (unsigned long long)(done * 1000 / 1024 / ms));
	return true;
}

/* --- blk: patterns ------------------------------------------------------------------ */

static bool test_blk_pattern(char *why, size_t size)
{
	static uint8_t buf[128 * 512];
	struct vio_blk *b = disk(why, size);
	if (!b)
		return false;
	uint64_t seed = knob("vio.seed", 1) & 0xff, count = knob("vio.count", 200);
	uint64_t cap = b->info.capacity;
	for (uint64_t k = 0; k < count; k++) {
		uint64_t n = 1 + random_below(128);
		if (n > cap)
			n = cap;
		uint64_t sector = random_below(cap - n + 1);
		for (uint64_t i = 0; i < n * 512; i++)
			buf[i] = pattern(seed, k, sector * 512 + i);
		int err = DEV_CALL(vio_blk_write(b, sector, buf, n * 512));
		if (err)
			FAIL("write %llu at sector %llu: %s", (unsigned long long)k,
			     (unsigned long long)sector, vio_strerror(err));
		kprintf("blkw %llu %llu %llu\n", (unsigned long long)k, (unsigned long long)sector,
			(unsigned long long)n);
	}
	int err = DEV_CALL(vio_blk_flush(b));
	if (err)
		FAIL("flush: %s", vio_strerror(err));
	return true;
}

/* --- blk: random I/O against a model ------------------------------------------------ */

#define MODEL_MAX_SECT 64
struct model_io {
	struct vio_blk_req req;
	struct vio_sg sg;
	uint8_t *buf;
	uint64_t sector, n;
	bool write, busy;
	volatile int status;
	volatile bool done;
};

static void model_done(struct vio_blk_req *req, int status, void *arg)
{
	(void)req;
	struct model_io *io = arg;
	io->status = status;
	io->done = true;
}

static bool overlaps(const struct model_io *ios, int n, uint64_t s, uint64_t len)
{
	for (int i = 0; i < n; i++)
		if (ios[i].busy && s < ios[i].sector + ios[i].n && ios[i].sector < s + len)
			return true;
	return false;
}

static bool test_blk_model(char *why, size_t size)
{
	struct vio_blk *b = disk(why, size);
	if (!b)
		return false;
	uint64_t cap = b->info.capacity, count = knob("vio.count", 20000);
	if (cap > 32768)
		cap = 32768; /* the model covers the first 16 MiB */
	int depth = b->info.queue_depth * b->info.num_queues;
	if (depth > 64)
		depth = 64;
	uint8_t *shadow = calloc(1, cap * 512);
	struct model_io *ios = calloc((size_t)depth, sizeof(*ios));
	uint8_t *bufs = malloc((size_t)depth * MODEL_MAX_SECT * 512);
	if (!shadow || !ios || !bufs)
		FAIL("out of memory for the model");
	/* Start from a known disk: write the model's zeroes over the range first. */
	for (uint64_t s = 0; s < cap; s += MODEL_MAX_SECT) {
		uint64_t n = cap - s < MODEL_MAX_SECT ? cap - s : MODEL_MAX_SECT;
		memset(bufs, 0, n * 512);
		int err = DEV_CALL(vio_blk_write(b, s, bufs, n * 512));
		if (err)
			FAIL("initial write: %s", vio_strerror(err));
	}
	for (int i = 0; i < depth; i++)
		ios[i].buf = bufs + (size_t)i * MODEL_MAX_SECT * 512;

	uint64_t issued = 0, completed = 0, reads = 0, writes = 0, max_inflight = 0, inflight = 0;
	uint64_t progress = clock_ns(), last_completed = 0;
	while (completed < count) {
		if (completed != last_completed) {
			last_completed = completed;
			progress = clock_ns();
		} else if (clock_ns() - progress > 10 * 1000000000ull) {
			/* A request the device never answers: show the ring state so the failure can
			 * be told apart (not published? not notified? not used?) and stop. */
			for (uint16_t q = 0; q < b->dev->nvqs; q++)
				vio_vq_dump(&b->dev->vqs[q]);
			FAIL("stalled: %llu of %llu done, %llu in flight, no completion for 10 s",
			     (unsigned long long)completed, (unsigned long long)count,
			     (unsigned long long)inflight);
		}
		/* Issue into every free slot while there is work left. */
		for (int i = 0; i < depth && issued < count; i++) {
			struct model_io *io = &ios[i];
			if (io->busy)
				continue;
			uint64_t n = 1 + random_below(MODEL_MAX_SECT), s;
			int tries = 0;
			do
				s = random_below(cap - n + 1);
			while (overlaps(ios, depth, s, n) && ++tries < 8);
			if (tries == 8)
				break;
			io->sector = s, io->n = n, io->write = random_below(2);
			if (io->write)
				random_fill(io->buf, n * 512);
			io->sg = (struct vio_sg){io->buf, (uint32_t)(n * 512)};
			io->req = (struct vio_blk_req){
				.op = io->write ? VIO_BLK_OP_WRITE : VIO_BLK_OP_READ,
				.sector = s, .sg = &io->sg, .nsg = 1,
				.queue = VIO_BLK_ANY_QUEUE, .on_done = model_done, .arg = io};
			io->done = false;
			int err = DEV_CALL(vio_blk_submit(b, &io->req));
			if (err == VIO_ENOSPC)
				break;
			if (err)
				FAIL("submit: %s", vio_strerror(err));
			io->busy = true;
			issued++;
			if (++inflight > max_inflight)
				max_inflight = inflight;
		}
		DEV_CALL(vio_blk_poll(b));
		for (int i = 0; i < depth; i++) {
			struct model_io *io = &ios[i];
			if (!io->busy || !io->done)
				continue;
			if (io->status)
				FAIL("%s of %llu sectors at %llu: %s", io->write ? "write" : "read",
				     (unsigned long long)io->n, (unsigned long long)io->sector,
				     vio_strerror(io->status));
			if (io->write) {
				memcpy(shadow + io->sector * 512, io->buf, io->n * 512);
				writes++;
			} else {
				if (memcmp(shadow + io->sector * 512, io->buf, io->n * 512))
					FAIL("read of %llu sectors at %llu differs from the model",
					     (unsigned long long)io->n, (unsigned long long)io->sector);
				reads++;
			}
			io->busy = false;
			inflight--;
			completed++;
		}
	}
	kprintf("blk-model: %llu reads, %llu writes, up to %llu in flight, all as modelled\n",
		(unsigned long long)reads, (unsigned long long)writes,
		(unsigned long long)max_inflight);
	free(shadow);
	free(ios);
	free(bufs);
	return true;
}

/* --- blk: read-only, zeroes, EIO, durability ---------------------------------------- */

static bool test_blk_ro(char *why, size_t size)
{
	static uint8_t buf[4096];
	struct vio_blk *b = disk(why, size);
	if (!b)
		return false;
	if (!b->info.ro)
		FAIL("the disk is not read-only");
	int err = DEV_CALL(vio_blk_write(b, 0, buf, sizeof(buf)));
	if (err != VIO_EROFS)
		FAIL("write returned %s, expected VIO_EROFS", vio_strerror(err));
	if (b->info.write_zeroes &&
	    (err = DEV_CALL(vio_blk_write_zeroes(b, 0, 8, false))) != VIO_EROFS)
		FAIL("write-zeroes returned %s", vio_strerror(err));
	if ((err = DEV_CALL(vio_blk_read(b, 0, buf, sizeof(buf)))))
		FAIL("read: %s", vio_strerror(err));
	kprintf("blk-ro: write refused with VIO_EROFS, read works\n");
	return true;
}

static bool test_blk_zero(char *why, size_t size)
{
	struct vio_blk *b = disk(why, size);
	if (!b)
		return false;
	if (!b->info.discard || !b->info.write_zeroes)
		FAIL("disk offers discard=%d write-zeroes=%d", b->info.discard,
		     b->info.write_zeroes);
	uint64_t cap = b->info.capacity;
	for (int k = 0; k < 16; k++) {
		/* Discard granularity: keep the ranges 4 KiB aligned so the host can punch holes. */
		uint64_t n = 8 * (1 + random_below(64)), s = 8 * random_below((cap - n) / 8);
		bool discard = k % 2;
		int err = discard ? DEV_CALL(vio_blk_discard(b, s, n))
				  : DEV_CALL(vio_blk_write_zeroes(b, s, n, k % 4 == 0));
		if (err)
			FAIL("%s at %llu: %s", discard ? "discard" : "write-zeroes",
			     (unsigned long long)s, vio_strerror(err));
		kprintf("blkz %llu %llu %s\n", (unsigned long long)s, (unsigned long long)n,
			discard ? "discard" : "write-zeroes");
	}
	int err = DEV_CALL(vio_blk_flush(b));
	if (err)
		FAIL("flush: %s", vio_strerror(err));
	return true;
}

static bool test_blk_eio(char *why, size_t size)
{
	static uint8_t buf[8 * 512];
	struct vio_blk *b = disk(why, size);
	if (!b)
		return false;
	uint64_t bad = knob("vio.sector", 1000);
	int failed = 0, ok = 0;
	for (uint64_t s = bad - 16; s <= bad + 16; s += 8) {
		int err = DEV_CALL(vio_blk_read(b, s, buf, sizeof(buf)));
		bool covers = bad >= s && bad < s + 8;
		if (covers && err != VIO_EIO)
			FAIL("read over the bad sector returned %s", vio_strerror(err));
		if (!covers && err)
			FAIL("read at %llu (clean) returned %s", (unsigned long long)s,
			     vio_strerror(err));
		covers ? failed++ : ok++;
	}
	int err = DEV_CALL(vio_blk_write(b, bad + 64, buf, sizeof(buf)));
	if (err)
		FAIL("write elsewhere after the error: %s", vio_strerror(err));
	kprintf("blk-eio: %d read(s) failed with VIO_EIO, %d succeeded, the disk still works\n",
		failed, ok);
	return true;
}

struct record {
	char magic[8]; /* "VIOREC01" */
	uint64_t seq;
	uint8_t digest[32]; /* SHA-256 of payload */
	uint8_t payload[4096 - 48];
};
_Static_assert(sizeof(struct record) == 4096, "one record per 4 KiB");

static bool test_blk_durable(char *why, size_t size)
{
	static struct record r;
	struct vio_blk *b = disk(why, size);
	if (!b)
		return false;
	uint64_t count = knob("vio.count", 1000);
	if (count * 8 > b->info.capacity)
		count = b->info.capacity / 8;
	for (uint64_t k = 0; k < count; k++) {
		memcpy(r.magic, "VIOREC01", 8);
		r.seq = k;
		random_fill(r.payload, sizeof(r.payload));
		struct sha256 s;
		sha256_init(&s);
		sha256_update(&s, r.payload, sizeof(r.payload));
		sha256_final(&s, r.digest);
		int err = DEV_CALL(vio_blk_write(b, k * 8, &r, sizeof(r)));
		if (!err)
			err = DEV_CALL(vio_blk_flush(b));
		if (err)
			FAIL("record %llu: %s", (unsigned long long)k, vio_strerror(err));
		kprintf("ACK %llu\n", (unsigned long long)k);
	}
	return true;
}

/* --- interrupt storm ---------------------------------------------------------------- */

/* Chained onto a device's vector: raise it again, for as long as the kernel calls us. */
static void refire(void *arg)
{
	lapic_self_ipi((uint8_t)(uintptr_t)arg);
}

/*
 * A storm a real device could make (a line held asserted, MSI messages without end), played
 * by the CPU itself: a handler chained onto rng0's vector sends that vector again each time
 * it runs, so the storm lasts exactly as long as the kernel keeps dispatching it. Then the
 * vector must be cut off (within 3 s, for a loaded host), its source masked at the device (MSI-X entry) or
 * the IOAPIC (INTx), no further interrupt taken, the tick still running, and the device
 * still answering, by polling.
 */
static bool test_irq_storm(char *why, size_t size)
{
	struct vio_rng *rng = dev_rng(0);
	const struct kvirtio *kv = NULL;
	for (int i = 0; i < n_virtio_devices; i++)
		if (virtio_devices[i].drv == rng)
			kv = &virtio_devices[i];
	if (!rng || !kv)
		FAIL("needs virtio-rng");
	if (!kv->pci)
		FAIL("rng0 is a virtio-mmio device; this test finds PCI functions' vectors only");
	bool masked;
	int vec = vio_port_irq_vector(kv->pci, &masked);
	if (vec < 0)
		FAIL("rng0 has no interrupt (irq=%s)", vio_irq_mode_name(rng->dev->irq_mode));
	if (masked || irq_stormed(vec))
		FAIL("vector %#x is masked before the storm", vec);
	if (irq_add_handler(vec, refire, (void *)(uintptr_t)vec))
		FAIL("no room on vector %#x", vec);
	uint64_t n0 = irq_count(vec), t0 = clock_ns();
	lapic_self_ipi((uint8_t)vec);
	while (!irq_stormed(vec) && clock_ns() - t0 < 3000000000ull)
		hlt();
	uint64_t n1 = irq_count(vec), t1 = clock_ns();
	if (!irq_stormed(vec))
		FAIL("vector %#x took %llu interrupts in 3 s and was not cut off", vec,
		     (unsigned long long)(n1 - n0));
	kprintf("irq-storm: vector %#x cut off after %llu interrupts in %llu ms\n", vec,
		(unsigned long long)(n1 - n0), (unsigned long long)((t1 - t0) / 1000000));
	if (vio_port_irq_vector(kv->pci, &masked) != vec || !masked)
		FAIL("vector %#x: its source is not masked", vec);
	uint64_t ticks0 = ticks();
	sleep_us(100000);
	if (irq_count(vec) != n1)
		FAIL("vector %#x still fires: %llu more", vec,
		     (unsigned long long)(irq_count(vec) - n1));
	if (ticks() - ticks0 < 10)
		FAIL("the timer tick stopped (%llu in 100 ms)", (unsigned long long)(ticks() - ticks0));
	static uint8_t buf[256];
	int got = DEV_CALL(vio_rng_read(rng, buf, sizeof(buf), true));
	if (got != (int)sizeof(buf))
		FAIL("rng0 after the storm: %s", got < 0 ? vio_strerror(got) : "short read");
	return true;
}

static const struct ktest device_tests[] = {
	{"rng-stream", test_rng_stream},   {"blk-pattern", test_blk_pattern},
	{"blk-model", test_blk_model},	   {"blk-ro", test_blk_ro},
	{"blk-zero", test_blk_zero},	   {"blk-eio", test_blk_eio},
	{"blk-durable", test_blk_durable}, {"irq-storm", test_irq_storm},
};

size_t devtests_select(struct ktest *out, size_t max)
{
	char list[256];
	size_t n = 0;
	if (!cmdline_get("vio.tests", list, sizeof(list)))
		return 0;
	for (char *name = strtok(list, ","); name && n < max; name = strtok(NULL, ",")) {
		for (size_t i = 0; i < ARRAY_SIZE(device_tests); i++)
			if (!strcmp(name, device_tests[i].name))
				out[n++] = device_tests[i];
	}
	return n;
}
