/*
 * bench.c: vio.mode=bench. Measures the drivers on QEMU's real devices and prints
 * `BENCH <metric> <value> <unit>` lines (docs/design.md section 9); tests/bench.py runs the
 * same block workloads through `qemu-img bench` on the same image and prints the ratios.
 *
 * Each measurement runs for a fixed time (vio.bench_ms, default 2000 ms per metric) so a
 * slow TCG run still finishes. Phases that need the host (net RX) print
 * "BENCH-PHASE <name>" first and wait for the host to start.
 */
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/random.h>
#include <kernel/timer.h>
#include <kernel/vio_port.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>

static uint64_t bench_ns;

static uint64_t knob(const char *key, uint64_t dflt)
{
	char v[32];
	return cmdline_get(key, v, sizeof(v)) ? strtoull(v, NULL, 0) : dflt;
}

static void report(const char *metric, uint64_t units_x100, const char *unit)
{
	kprintf("BENCH %s %llu.%02llu %s\n", metric, (unsigned long long)(units_x100 / 100),
		(unsigned long long)(units_x100 % 100), unit);
}

/* amount per second, x100, from a count over ns (microsecond resolution is plenty: every
 * phase runs for at least a millisecond, and 64 bits hold amount * 1e8 for any amount a
 * phase can reach) */
static uint64_t rate100(uint64_t amount, uint64_t ns)
{
	uint64_t us = ns / 1000;
	return us ? amount * 100000000ull / us : 0;
}

/*
 * The memory the probed devices hold, before any measurement allocates: DMA pages vio took
 * through the port, and the kernel heap in use (vio's private memory, which the port takes
 * from the heap, and the kernel's own). tests/bench.py boots with one device at a time and
 * subtracts a boot with none to get each device's share.
 */
static void bench_memory(void)
{
	report("mem_dma_bytes", (uint64_t)vio_port_dma_pages() * PAGE_SIZE * 100, "bytes");
	report("mem_heap_bytes", (uint64_t)heap_used() * 100, "bytes");
}

static void bench_kernel(void)
{
	const int n = 200000;
	uint64_t t0 = clock_ns(), sink = 0;
	for (int i = 0; i < n; i++)
		sink += clock_ns();
	report("clock_ns_cost", (clock_ns() - t0) * 100 / n + (sink & 0), "ns");
	t0 = clock_ns();
	for (int i = 0; i < 20000; i++)
		pmm_free(pmm_alloc(4, 4), 4);
	report("pmm_alloc_free_16k", (clock_ns() - t0) * 100 / 20000, "ns");
}

static void bench_rng(void)
{
	static uint8_t buf[4096];
	struct vio_rng *rng = dev_rng(0);
	if (!rng)
		return;
	uint64_t bytes = 0, t0 = clock_ns();
	while (clock_ns() - t0 < bench_ns / 2) {
		int n = DEV_CALL(vio_rng_read(rng, buf, sizeof(buf), true));
		if (n < 0)
			return;
		bytes += (uint64_t)n;
	}
	report("rng_read", rate100(bytes, clock_ns() - t0) / 1024, "KiB/s");
}

static void bench_console(void)
{
	static uint8_t buf[4096];
	struct vio_console *con = dev_console(0);
	int port = con ? DEV_CALL(vio_console_find_port(con, "org.vio.bench")) : -1;
	if (port < 0)
		return;
	DEV_CALL(vio_console_open(con, (uint32_t)port));
	memset(buf, 'x', sizeof(buf));
	uint64_t bytes = 0, t0 = clock_ns();
	while (clock_ns() - t0 < bench_ns / 2) {
		int n = DEV_CALL(vio_console_write(con, (uint32_t)port, buf, sizeof(buf), true));
		if (n < 0)
			return;
		bytes += (uint64_t)n;
	}
	report("console_tx", rate100(bytes, clock_ns() - t0) / 1024, "KiB/s");
}

/* --- block ------------------------------------------------------------------------------ */

struct bio {
	struct vio_blk_req req;
	struct vio_sg sg;
	volatile bool busy;
};

static void bio_done(struct vio_blk_req *req, int status, void *arg)
{
	(void)req, (void)status;
	((struct bio *)arg)->busy = false;
}

/*
 * Where a row's time goes, per device request: the request queues' counters (notifies: MMIO
 * writes that trap into QEMU; irqs: queue interrupts taken; indirect: requests posted through
 * an indirect table) and the nanoseconds spent inside vio_blk_submit (the driver's work
 * to post), vio_blk_unplug (the notify: under TCG QEMU takes the request from the ring on
 * the vCPU thread before the write returns) and vio_blk_poll (reaping, and waiting: it is
 * called in a loop), clock reads included (clock_ns_cost gives their price).
 */
struct blk_tally {
	struct vio_vq_stats vq;
	uint64_t submit_ns, kick_ns, poll_ns, polls;
};

static void blk_tally_queues(const struct vio_blk *b, struct blk_tally *t)
{
	t->vq = (struct vio_vq_stats){0};
	for (uint16_t i = 0; i < b->dev->nvqs; i++) {
		const struct vio_vq_stats *s = &b->dev->vqs[i].stats;
		t->vq.adds += s->adds;
		t->vq.adds_indirect += s->adds_indirect;
		t->vq.notifies += s->notifies;
		t->vq.completions += s->completions;
		t->vq.interrupts += s->interrupts;
	}
}

/* x100 of a / n */
static uint64_t per100(uint64_t a, uint64_t n)
{
	return n ? a * 100 / n : 0;
}

static void blk_tally_report(const char *metric, const struct blk_tally *t0,
			     const struct blk_tally *t)
{
	uint64_t n = t->vq.completions - t0->vq.completions;
	kprintf("BENCH-STAT %s requests %llu notifies/req %llu.%02llu irqs/req %llu.%02llu "
		"indirect/req %llu.%02llu submit_ns/req %llu kick_ns/req %llu poll_ns/req %llu "
		"polls/req %llu.%02llu\n",
		metric, (unsigned long long)n,
		(unsigned long long)(per100(t->vq.notifies - t0->vq.notifies, n) / 100),
		(unsigned long long)(per100(t->vq.notifies - t0->vq.notifies, n) % 100),
		(unsigned long long)(per100(t->vq.interrupts - t0->vq.interrupts, n) / 100),
		(unsigned long long)(per100(t->vq.interrupts - t0->vq.interrupts, n) % 100),
		(unsigned long long)(per100(t->vq.adds_indirect - t0->vq.adds_indirect, n) / 100),
		(unsigned long long)(per100(t->vq.adds_indirect - t0->vq.adds_indirect, n) % 100),
		(unsigned long long)(n ? t->submit_ns / n : 0),
		(unsigned long long)(n ? t->kick_ns / n : 0),
		(unsigned long long)(n ? t->poll_ns / n : 0),
		(unsigned long long)(per100(t->polls, n) / 100),
		(unsigned long long)(per100(t->polls, n) % 100));
}

/* Keep `depth` requests of `size` bytes in flight for bench_ns; returns completed count. */
static uint64_t blk_run(struct vio_blk *b, const char *metric, enum vio_blk_op op, uint32_t size,
			int depth, bool random, uint64_t *ns)
{
	static struct bio bios[64];
	uint8_t *buf = malloc((size_t)size * (size_t)depth);
	uint64_t span = b->info.capacity * 512 / size, next = 0, done = 0, t0 = clock_ns();
	struct blk_tally start = {0}, tally = {0};
	if (!buf || span == 0)
		return 0;
	blk_tally_queues(b, &start);
	memset(bios, 0, sizeof(bios));
	while (clock_ns() - t0 < bench_ns) {
		/* Refill every free slot, then notify the device once (vio_blk_plug). */
		DEV_DO(vio_blk_plug(b));
		for (int i = 0; i < depth; i++) {
			struct bio *io = &bios[i];
			if (io->busy)
				continue;
			uint64_t blkno = random ? random_below(span) : next++ % span;
			io->sg = (struct vio_sg){buf + (size_t)i * size, size};
			io->req = (struct vio_blk_req){.op = op, .sector = blkno * size / 512,
						       .sg = &io->sg, .nsg = 1,
						       .queue = VIO_BLK_ANY_QUEUE,
						       .on_done = bio_done, .arg = io};
			io->busy = true;
			uint64_t s0 = clock_ns();
			int err = DEV_CALL(vio_blk_submit(b, &io->req));
			tally.submit_ns += clock_ns() - s0;
			if (err) {
				io->busy = false;
				break;
			}
			done++;
		}
		uint64_t p0 = clock_ns();
		DEV_DO(vio_blk_unplug(b));
		tally.kick_ns += clock_ns() - p0;
		p0 = clock_ns();
		DEV_CALL(vio_blk_poll(b));
		tally.poll_ns += clock_ns() - p0;
		tally.polls++;
	}
	for (uint64_t spin = clock_ns(); clock_ns() - spin < 5000000000ull;) {
		bool any = false;
		for (int i = 0; i < depth; i++)
			any |= bios[i].busy;
		if (!any)
			break;
		DEV_CALL(vio_blk_poll(b));
	}
	*ns = clock_ns() - t0;
	blk_tally_queues(b, &tally);
	blk_tally_report(metric, &start, &tally);
	free(buf);
	return done;
}

static void bench_blk(void)
{
	struct vio_blk *b = dev_blk(0);
	uint64_t ns, n;
	if (!b)
		return;
	n = blk_run(b, "blk_randread_4k_qd1", VIO_BLK_OP_READ, 4096, 1, true, &ns);
	report("blk_randread_4k_qd1", rate100(n, ns), "IOPS");
	n = blk_run(b, "blk_randread_4k_qd32", VIO_BLK_OP_READ, 4096, 32, true, &ns);
	report("blk_randread_4k_qd32", rate100(n, ns), "IOPS");
	n = blk_run(b, "blk_seqread_64k", VIO_BLK_OP_READ, 65536, 4, false, &ns);
	report("blk_seqread_64k", rate100(n * 65536, ns) / (1024 * 1024), "MiB/s");
	n = blk_run(b, "blk_seqread_1m", VIO_BLK_OP_READ, 1 << 20, 4, false, &ns);
	report("blk_seqread_1m", rate100(n << 20, ns) / (1024 * 1024), "MiB/s");
	if (!b->info.ro) {
		n = blk_run(b, "blk_seqwrite_64k", VIO_BLK_OP_WRITE, 65536, 4, false, &ns);
		report("blk_seqwrite_64k", rate100(n * 65536, ns) / (1024 * 1024), "MiB/s");
	}
}

/* --- net -------------------------------------------------------------------------------- */

static void bench_net(void)
{
	static uint8_t frame[64];
	struct vio_net *net = dev_net(0);
	if (!net)
		return;
	memset(frame, 0xff, 6);
	memcpy(frame + 6, net->mac, 6);
	frame[12] = 0x88, frame[13] = 0xb5;
	uint64_t sent = 0, t0 = clock_ns();
	while (clock_ns() - t0 < bench_ns) {
		int err = DEV_CALL(vio_net_send(net, frame, sizeof(frame), NULL));
		if (err == VIO_ENOSPC)
			DEV_CALL(vio_net_poll(net));
		else if (!err)
			sent++;
		else
			break;
	}
	report("net_tx_64b", rate100(sent, clock_ns() - t0), "frames/s");

	/* RX: the host floods 64-byte frames once it sees the phase marker. */
	kprintf("BENCH-PHASE net-rx\n");
	uint64_t got = 0, start = 0;
	for (uint64_t wait = clock_ns(); !start && clock_ns() - wait < 10000000000ull;)
		if (DEV_CALL(vio_net_recv_copy(net, frame, sizeof(frame), NULL)) > 0)
			start = clock_ns(), got = 1;
	while (start && clock_ns() - start < bench_ns) {
		if (DEV_CALL(vio_net_recv_copy(net, frame, sizeof(frame), NULL)) > 0)
			got++;
		else
			DEV_CALL(vio_net_poll(net));
	}
	if (start)
		report("net_rx_64b", rate100(got, clock_ns() - start), "frames/s");
	kprintf("BENCH-PHASE net-rx-done\n");
}

void bench_run(void)
{
	bench_ns = knob("vio.bench_ms", 2000) * 1000000ull;
	bench_memory();
	bench_kernel();
	bench_rng();
	bench_console();
	bench_blk();
	bench_net();
	kprintf("BENCH done\n");
	qemu_exit(true);
}
