/*
 * cmd_dev.c: the shell's device commands: devices, lspci, virtio, rng, blk, cons, net,
 * balloon. `blk` works on any disk of include/kernel/disk.h: virtio-blk devices and SCSI units.
 * Each prints a one-line usage error for a wrong argument and leaves the shell running;
 * device errors are printed as what they mean, with the code's name (shell_strerror).
 */
#include <kernel/devices.h>
#include <kernel/disk.h>
#include <kernel/screen.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/sha256.h>
#include <kernel/shell.h>
#include <kernel/timer.h>
#include <stdlib.h>
#include <string.h>
#include <vio/err.h>
#include <vio/log.h>

#define ERR(...)                                                                                   \
	do {                                                                                       \
		kprintf(__VA_ARGS__);                                                              \
		kprintf("\n");                                                                     \
		return -2;                                                                         \
	} while (0)

bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return false;
	unsigned long long v = strtoull(s, &end, 0);
	uint64_t mult = 1;
	if (*end == 'K' || *end == 'k')
		mult = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		mult = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		mult = 1024ull * 1024 * 1024, end++;
	if (*end || (mult > 1 && v > UINT64_MAX / mult))
		return false;
	*out = v * mult;
	return true;
}

void hexdump(const void *buf, size_t len, uint64_t base)
{
	const uint8_t *p = buf;
	for (size_t off = 0; off < len; off += 16) {
		char line[100];
		int n = vio_snprintf(line, sizeof(line), "%08llx ", (unsigned long long)(base + off));
		for (size_t i = 0; i < 16; i++)
			n += vio_snprintf(line + n, sizeof(line) - (size_t)n,
					  off + i < len ? " %02x" : "   ", off + i < len ? p[off + i] : 0);
		n += vio_snprintf(line + n, sizeof(line) - (size_t)n, "  ");
		for (size_t i = 0; i < 16 && off + i < len; i++)
			line[n++] = p[off + i] >= 0x20 && p[off + i] < 0x7f ? (char)p[off + i] : '.';
		line[n] = '\0';
		kprintf("%s\n", line);
	}
}

static int cmd_devices(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	devices_print_table();
	return 0;
}

/* Every PCI function devices.c found at boot, with its BARs. */
static void lspci_print(void)
{
	char line[160];
	for (int i = 0; i < n_pci_functions; i++) {
		const struct vio_pci_dev *d = &pci_functions[i];
		vio_pci_describe(d, line, sizeof(line));
		kprintf("%s\n", line);
		for (int b = 0; b < VIO_PCI_MAX_BARS; b++) {
			const struct vio_pci_bar *bar = &d->bars[b];
			if (!bar->size)
				continue;
			kprintf("    BAR%d %s %#llx size %#llx%s%s\n", b, bar->is_io ? "io " : "mem",
				(unsigned long long)bar->phys, (unsigned long long)bar->size,
				bar->is64 ? " 64-bit" : "", bar->prefetch ? " prefetchable" : "");
		}
	}
}

static int cmd_lspci(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	lspci_print();
	return 0;
}

/* With EVENT_IDX the device says which avail index it wants to hear about (avail_event),
 * without it it sets NO_NOTIFY: "suppressed" counts kicks one or the other saved (2.7.10). */
static void print_queue(const struct vio_dev *dev, const struct vio_vq *vq)
{
	bool event_idx = vio_dev_has_feature(dev, VIRTIO_F_RING_EVENT_IDX);
	kprintf("  vq%u: size %u free %u adds %llu (indirect %llu) kicks %llu notifies %llu "
		"suppressed %llu (by %s) completions %llu irqs %llu full %llu%s\n",
		vq->index, vq->size, vio_vq_num_free(vq), (unsigned long long)vq->stats.adds,
		(unsigned long long)vq->stats.adds_indirect, (unsigned long long)vq->stats.kicks,
		(unsigned long long)vq->stats.notifies, (unsigned long long)vq->stats.suppressed,
		event_idx ? "EVENT_IDX" : "NO_NOTIFY", (unsigned long long)vq->stats.completions,
		(unsigned long long)vq->stats.interrupts, (unsigned long long)vq->stats.full,
		vio_vq_is_broken(vq) ? " BROKEN" : "");
}

static void print_features(const struct vio_dev *dev)
{
	kprintf("  features 0x%llx:", (unsigned long long)dev->features);
	for (unsigned bit = 0; bit < 64; bit++) {
		if (!(dev->features >> bit & 1))
			continue;
		const char *name = vio_feature_name(dev->device_id, bit);
		if (name)
			kprintf(" %s", name);
		else
			kprintf(" bit%u", bit);
	}
	kprintf("\n  offered  0x%llx\n", (unsigned long long)dev->device_features);
}

static void print_gpu(const struct vio_gpu *g)
{
	const struct vio_gpu_stats *s = &g->stats;
	kprintf("  gpu: %u scanout(s); display 0 %ux%u%s; framebuffer %ux%u; EDID %u bytes\n",
		g->num_scanouts, g->display[0].width, g->display[0].height,
		g->display[0].enabled ? "" : " (disabled)", g->width, g->height, g->edid_len);
	kprintf("  gpu: %llu commands, %llu device errors, %llu bad answers, %llu timeouts, "
		"%llu display events, %llu flushes, %llu cursor commands (%llu busy)\n",
		(unsigned long long)s->commands, (unsigned long long)s->device_errors,
		(unsigned long long)s->bad_responses, (unsigned long long)s->timeouts,
		(unsigned long long)s->display_events, (unsigned long long)s->flushes,
		(unsigned long long)s->cursor_cmds, (unsigned long long)s->cursor_busy);
	if (g->cursor_shown)
		kprintf("  gpu: pointer at (%u,%u)\n", g->cursor_x, g->cursor_y);
}

static void print_input(const struct vio_input *in)
{
	static const char *const types[] = {"SYN", "KEY", "REL", "ABS", "MSC", "SW"};
	kprintf("  input: name \"%s\", serial \"%s\", ids bus 0x%04x vendor 0x%04x product "
		"0x%04x version 0x%04x\n", in->name, in->serial, in->ids.bustype, in->ids.vendor,
		in->ids.product, in->ids.version);
	kprintf("  input: event types 0x%08x:", in->ev_types);
	for (unsigned t = 1; t < 32; t++)
		if (in->ev_types & (1u << t)) {
			if (t < ARRAY_SIZE(types))
				kprintf(" %s", types[t]);
			else
				kprintf(" %s", t == VIRTIO_INPUT_EV_LED ? "LED"
					       : t == VIRTIO_INPUT_EV_REP ? "REP" : "?");
		}
	kprintf("\n");
	if (in->ev_types & (1u << VIRTIO_INPUT_EV_ABS))
		kprintf("  input: abs x %u..%u, y %u..%u\n", in->abs[0].min, in->abs[0].max,
			in->abs[1].min, in->abs[1].max);
	kprintf("  input: %llu events, %llu refused; leds 0x%x (%llu status events sent, %llu "
		"busy)\n", (unsigned long long)in->stats.events,
		(unsigned long long)in->stats.bad_events, in->leds,
		(unsigned long long)in->stats.status_sent, (unsigned long long)in->stats.status_busy);
}

/* RSS / hash report (VIRTIO_NET_F_RSS, _HASH_REPORT): what is configured, and the limits. */
static void print_net_rss(const struct vio_net *net)
{
	bool rss = vio_dev_has_feature(net->dev, VIRTIO_NET_F_RSS);
	bool hash = vio_dev_has_feature(net->dev, VIRTIO_NET_F_HASH_REPORT);

	if (!rss && !hash)
		return;
	kprintf("  net: %s%s%s: hash types 0x%x, key %u B, table %u, unclassified pair %u "
		"(device: key <= %u B, table <= %u, types 0x%x)\n",
		rss ? "rss" : "", rss && hash ? " + " : "", hash ? "hash report" : "",
		(unsigned)net->rss_hash_types, net->rss_key_len, net->rss_table_len,
		net->rss_unclassified, net->rss_max_key_size, net->rss_max_table_len,
		(unsigned)net->rss_hash_types_supported);
}

static void print_driver_counters(const struct kvirtio *kv)
{
	switch (kv->dev.device_id) {
	case VIRTIO_ID_GPU:
		print_gpu(kv->drv);
		break;
	case VIRTIO_ID_INPUT:
		print_input(kv->drv);
		break;
	case VIRTIO_ID_RNG: {
		const struct vio_rng_stats *s = &((struct vio_rng *)kv->drv)->stats;
		kprintf("  rng: %llu bytes delivered, %llu requests, %llu short, %llu bad, "
			"%llu timeouts\n", (unsigned long long)s->bytes,
			(unsigned long long)s->requests, (unsigned long long)s->short_fills,
			(unsigned long long)s->bad_len, (unsigned long long)s->timeouts);
		break;
	}
	case VIRTIO_ID_CONSOLE: {
		const struct vio_console_stats *s = &((struct vio_console *)kv->drv)->stats;
		kprintf("  console: rx %llu tx %llu bytes, tx full %llu, ctrl rx %llu tx %llu bad "
			"%llu, bad len %llu, ports refused %llu\n", (unsigned long long)s->rx_bytes,
			(unsigned long long)s->tx_bytes, (unsigned long long)s->tx_full,
			(unsigned long long)s->ctrl_rx, (unsigned long long)s->ctrl_tx,
			(unsigned long long)s->ctrl_bad, (unsigned long long)s->bad_len,
			(unsigned long long)s->ports_refused);
		break;
	}
	case VIRTIO_ID_BLOCK: {
		const struct vio_blk_stats *s = &((struct vio_blk *)kv->drv)->stats;
		kprintf("  blk: reads %llu writes %llu flushes %llu discards %llu zeroes %llu, "
			"%llu B read %llu B written, parts %llu splits %llu, errors %llu "
			"(ioerr %llu unsupp %llu bad %llu), full %llu timeouts %llu\n",
			(unsigned long long)s->reads, (unsigned long long)s->writes,
			(unsigned long long)s->flushes, (unsigned long long)s->discards,
			(unsigned long long)s->write_zeroes, (unsigned long long)s->bytes_read,
			(unsigned long long)s->bytes_written, (unsigned long long)s->parts,
			(unsigned long long)s->splits, (unsigned long long)s->errors,
			(unsigned long long)s->ioerr, (unsigned long long)s->unsupp,
			(unsigned long long)s->bad_answers, (unsigned long long)s->full,
			(unsigned long long)s->timeouts);
		break;
	}
	case VIRTIO_ID_NET: {
		const struct vio_net *net = kv->drv;
		const struct vio_net_stats *s = &net->stats;
		kprintf("  net: rx %llu frames %llu B, drops %llu, errors %llu; tx %llu frames %llu "
			"B, errors %llu, full %llu\n", (unsigned long long)s->rx_frames,
			(unsigned long long)s->rx_bytes, (unsigned long long)s->rx_drops,
			(unsigned long long)s->rx_errors, (unsigned long long)s->tx_frames,
			(unsigned long long)s->tx_bytes, (unsigned long long)s->tx_errors,
			(unsigned long long)s->tx_full);
		for (uint16_t p = 0; p < net->queue_pairs; p++)
			kprintf("  net: pair %u: rx %llu frames, tx %llu frames\n", p,
				(unsigned long long)s->rx_pair_frames[p],
				(unsigned long long)s->tx_pair_frames[p]);
		print_net_rss(net);
		break;
	}
	case VIRTIO_ID_SCSI: {
		const struct vio_scsi *sc = kv->drv;
		const struct vio_scsi_stats *s = &sc->stats;
		kprintf("  scsi: %u request queue(s), max_target %u, max_lun %u, seg_max %u, "
			"cdb %u B, sense %u B; commands %llu, check conditions %llu, malformed %llu, "
			"timeouts %llu (aborts %llu, lun resets %llu), events %llu (bad %llu), "
			"read %llu B, written %llu B\n", sc->num_queues, sc->max_target, sc->max_lun,
			sc->seg_max, sc->cdb_size, sc->sense_size, (unsigned long long)s->commands,
			(unsigned long long)s->check_conditions, (unsigned long long)s->bad_answers,
			(unsigned long long)s->timeouts, (unsigned long long)s->aborts,
			(unsigned long long)s->lun_resets, (unsigned long long)s->events,
			(unsigned long long)s->bad_events, (unsigned long long)s->bytes_read,
			(unsigned long long)s->bytes_written);
		break;
	}
	case VIRTIO_ID_9P: {
		const struct vio_9p *fs = kv->drv;
		const struct vio_9p_stats *s = &fs->stats;
		kprintf("  9p: msize %u, requests %llu, refused %llu, malformed %llu, timed out %llu, "
			"read %llu B, written %llu B\n", fs->msize, (unsigned long long)s->rpcs,
			(unsigned long long)s->errors, (unsigned long long)s->bad_replies,
			(unsigned long long)s->timeouts, (unsigned long long)s->bytes_read,
			(unsigned long long)s->bytes_written);
		break;
	}
	case VIRTIO_ID_BALLOON: {
		const struct vio_balloon *b = kv->drv;
		kprintf("  balloon: target %u pages, holds %u, inflated %llu deflated %llu (oom "
			"%llu)\n", vio_balloon_target(b), vio_balloon_actual(b),
			(unsigned long long)b->stats.inflated,
			(unsigned long long)b->stats.deflated,
			(unsigned long long)b->stats.oom_deflated);
		break;
	}
	}
}

static int cmd_virtio(int argc, char **argv)
{
	if (argc != 2)
		return -1;
	struct kvirtio *kv = dev_by_name(argv[1]);
	if (!kv)
		ERR("virtio: no device '%s' (see 'devices')", argv[1]);
	char loc[32];
	vio_dev_location(&kv->dev, loc, sizeof(loc));
	kprintf("%s: %s at %s, transport %s, irq %s, ring %s, status 0x%02x%s\n", argv[1],
		vio_device_type_name(kv->dev.device_id), loc, vio_dev_transport_name(&kv->dev),
		vio_irq_mode_name(kv->dev.irq_mode),
		vio_dev_has_feature(&kv->dev, VIRTIO_F_RING_PACKED) ? "packed" : "split",
		kv->dev.status, kv->dev.needs_reset ? " NEEDS_RESET" : "");
	print_features(&kv->dev);
	for (uint16_t i = 0; i < kv->dev.nvqs; i++)
		if (kv->dev.vqs[i].size)
			print_queue(&kv->dev, &kv->dev.vqs[i]);
	print_driver_counters(kv);
	return 0;
}

/* What `rng` dumps in hex; a larger count is read and summed (SHA-256) instead. */
#define RNG_DUMP_MAX 4096
#define RNG_MAX	     (1ull << 30)
/* One blocking read: a slow device (QEMU's max-bytes) answers it well within a second, so
 * Ctrl-C, looked for between reads, stops the command soon. */
#define RNG_CHUNK 256

static int cmd_rng(int argc, char **argv)
{
	static uint8_t buf[RNG_DUMP_MAX];
	uint64_t n, got = 0, t0 = clock_ns();
	struct sha256 s;
	if (argc != 2 || !parse_u64(argv[1], &n) || n == 0 || n > RNG_MAX)
		return -1;
	struct vio_rng *rng = dev_rng(0);
	if (!rng)
		ERR("rng: no virtio-rng device");
	sha256_init(&s);
	while (got < n) {
		if (shell_interrupted())
			ERR("rng: stopped (Ctrl-C) after %llu of %llu bytes", (unsigned long long)got,
			    (unsigned long long)n);
		uint8_t *to = n <= RNG_DUMP_MAX ? buf + got : buf;
		size_t want = n - got < RNG_CHUNK ? (size_t)(n - got) : RNG_CHUNK;
		int r = DEV_CALL(vio_rng_read(rng, to, want, true));
		if (r < 0)
			ERR("rng: %s", shell_strerror(r));
		if (n > RNG_DUMP_MAX)
			sha256_update(&s, buf, (size_t)r);
		got += (uint64_t)r;
	}
	if (n <= RNG_DUMP_MAX) {
		hexdump(buf, (size_t)n, 0);
		return 0;
	}
	uint8_t d[32];
	char hex[65];
	sha256_final(&s, d);
	sha256_hex(d, hex);
	kprintf("rng: %llu bytes in %llu ms, sha256 %s\n", (unsigned long long)n,
		(unsigned long long)((clock_ns() - t0) / 1000000), hex);
	return 0;
}

/* --- blk -------------------------------------------------------------------------------- */

/* A SCSI unit: its address and kind from the adapter's LUN table, then what a disk says. */
static void scsi_disk_info(const struct kdisk *d)
{
	const struct vio_scsi_lun *l = &((const struct vio_scsi *)d->drv)->luns[d->lun];
	const char *type = l->type == SCSI_TYPE_CDROM ? "cd" : "disk";
	if (!d->present) {
		kprintf("%s: SCSI %s %u:%u (lun%u): unplugged\n", d->name, type, l->target, l->lun,
			d->lun);
		return;
	}
	if (!d->block_size) {
		kprintf("%s: SCSI %s %u:%u (lun%u) '%s %s': not ready (no medium?)\n", d->name,
			type, l->target, l->lun, d->lun, l->vendor, l->product);
		return;
	}
	kprintf("%s: %llu sectors (%llu MiB), block %u, %s, SCSI %s %u:%u (lun%u) '%s %s'\n",
		d->name, (unsigned long long)d->sectors, (unsigned long long)(d->sectors >> 11),
		d->block_size, d->read_only ? "read-only" : "read-write", type, l->target, l->lun,
		d->lun, l->vendor, l->product);
}

/* The serial comes from a GET_ID request, asked for the first time it is shown; a device
 * without one answers an empty id, which is not shown. */
static void blk_info(const char *name, struct vio_blk *b)
{
	const struct vio_blk_info *i = &b->info;
	if (!i->has_serial) {
		int err = DEV_CALL(vio_blk_get_id(b, NULL, 0));
		if (err && err != VIO_ENOTSUP)
			kprintf("%s: no serial: %s\n", name, shell_strerror(err));
	}
	kprintf("%s: %llu sectors (%llu MiB), block %u, %s, cache %s%s, queues %u x %u, "
		"seg_max %u size_max %u max_transfer %u%s%s%s%s\n", name,
		(unsigned long long)i->capacity, (unsigned long long)(i->capacity >> 11),
		i->blk_size, i->ro ? "read-only" : "read-write",
		i->writeback ? "write-back" : "write-through", i->flush ? " (flush)" : "",
		i->num_queues, i->queue_depth, i->seg_max, i->size_max, i->max_transfer,
		i->discard ? ", discard" : "", i->write_zeroes ? ", write-zeroes" : "",
		i->serial[0] ? ", serial " : "", i->serial);
	if (i->has_topology)
		kprintf("%s: topology: physical block %u (2^%u logical), alignment offset %u, "
			"min_io %u, opt_io %u (logical blocks)\n", name,
			i->blk_size << i->topology.physical_block_exp,
			i->topology.physical_block_exp, i->topology.alignment_offset,
			i->topology.min_io_size, i->topology.opt_io_size);
	kprintf("%s: cache mode %s%s\n", name, i->writeback ? "writeback" : "writethrough",
		i->config_wce ? " (CONFIG_WCE: 'blk wce' switches it)" : "");
}

/*
 * `blk qd`: `count` reads of one logical block each at spread-out places, `depth` of them
 * in flight at a time through vio_blk_submit, their completions taken by vio_blk_poll (and
 * by the interrupt handler, between polls). The requests and their buffers are static: a
 * request the device never answers keeps them, so the next run refuses to start.
 */
#define QD_MAX 64

struct qd_slot {
	struct vio_blk_req req;
	struct vio_sg sg;
	volatile bool busy;
	volatile int status;
};
static struct qd_slot qd_slots[QD_MAX];
static uint8_t qd_bufs[QD_MAX][4096];
static volatile uint64_t qd_errors;

static void qd_done(struct vio_blk_req *req, int status, void *arg)
{
	struct qd_slot *s = arg;
	(void)req;
	s->status = status;
	qd_errors += status != 0;
	s->busy = false;
}

static int blk_qd(struct vio_blk *b, uint64_t count, uint64_t depth)
{
	uint32_t bs = b->info.blk_size;
	uint64_t blocks = b->info.capacity / (bs / 512), posted = 0, done = 0;
	uint64_t t0 = clock_ns(), look = t0;
	qd_errors = 0;
	for (int i = 0; i < QD_MAX; i++)
		if (qd_slots[i].busy)
			ERR("blk qd: requests of an earlier run are still with the device");
	if (bs > sizeof(qd_bufs[0]) || !blocks)
		ERR("blk qd: blocks of %u bytes are larger than this test's 4 KiB buffers", bs);
	while (done < count) {
		for (uint64_t i = 0; i < depth && posted < count; i++) {
			struct qd_slot *s = &qd_slots[i];
			if (s->busy)
				continue;
			s->sg = (struct vio_sg){qd_bufs[i], bs};
			s->req = (struct vio_blk_req){.op = VIO_BLK_OP_READ,
						      .sector = posted * 7919 % blocks * (bs / 512),
						      .sg = &s->sg, .nsg = 1,
						      .queue = VIO_BLK_ANY_QUEUE,
						      .on_done = qd_done, .arg = s};
			s->busy = true;
			int err = DEV_CALL(vio_blk_submit(b, &s->req));
			if (err == VIO_ENOSPC) {
				s->busy = false;
				break;
			}
			if (err) {
				s->busy = false;
				ERR("blk qd: %s", shell_strerror(err));
			}
			posted++;
		}
		int n = DEV_CALL(vio_blk_poll(b));
		if (n < 0)
			ERR("blk qd: %s", shell_strerror(n));
		done = posted;
		for (uint64_t i = 0; i < depth; i++)
			done -= qd_slots[i].busy;
		if (clock_ns() - t0 > 60 * 1000000000ull)
			ERR("blk qd: %llu of %llu reads came back in 60 s", (unsigned long long)done,
			    (unsigned long long)count);
		/* Ctrl-C, looked for every 10 ms: what is in flight comes back by itself (the
		 * shell's idle loop polls the disk and qd_done frees the slots). */
		if (clock_ns() - look >= 10000000ull) {
			look = clock_ns();
			if (shell_interrupted())
				ERR("blk qd: stopped (Ctrl-C) after %llu of %llu reads",
				    (unsigned long long)done, (unsigned long long)count);
		}
	}
	kprintf("qd: %llu reads of %u bytes, %llu in flight at most, %llu ms, %llu errors\n",
		(unsigned long long)count, bs, (unsigned long long)depth,
		(unsigned long long)((clock_ns() - t0) / 1000000), (unsigned long long)qd_errors);
	return 0;
}

/*
 * `blk crash`: put reads in flight on a disk and take a page fault before they are reaped:
 * the crash dump must still be written whole (the dump disk's driver abandons them).
 */
static volatile int *volatile crash_address = (volatile int *)8; /* page 0: unmapped */

/* Not a leaf: a leaf function sets up no frame, and the backtrace would skip its caller. */
static __attribute__((noinline)) void crash_with_reads_in_flight(struct vio_blk *b)
{
	kprintf("blk crash: %u request(s) in flight, faulting now\n", vio_blk_in_flight(b));
	*crash_address = 0x0bad;
}

static int blk_crash(struct vio_blk *b)
{
	/* Interrupts stay off from here: no completion may be reaped before the fault. */
	uint64_t flags = irq_save();
	for (int i = 0; i < 8; i++) {
		struct qd_slot *s = &qd_slots[i];
		s->sg = (struct vio_sg){qd_bufs[i], 4096};
		s->req = (struct vio_blk_req){.op = VIO_BLK_OP_READ, .sector = (uint64_t)i * 8,
					      .sg = &s->sg, .nsg = 1, .queue = 0,
					      .on_done = qd_done, .arg = s};
		s->busy = true;
		int err = vio_blk_submit(b, &s->req);
		if (err) {
			s->busy = false;
			irq_restore(flags);
			ERR("blk crash: %s", shell_strerror(err));
		}
	}
	crash_with_reads_in_flight(b);
	return 0;
}

/* Read [off, off+len) of any disk into SHA-256, 64 KiB at a time. Returns 0, an error, or
 * 1 when Ctrl-C stopped it (*off tells where). */
static int blk_sha256(const struct kdisk *d, uint64_t *offp, uint64_t len, char hex[65])
{
	static uint8_t chunk[64 * 1024];
	uint64_t off = *offp;
	struct sha256 s;
	sha256_init(&s);
	while (len) {
		size_t n = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
		*offp = off;
		if (shell_interrupted())
			return 1;
		int err = disk_read(d, off / 512, chunk, n);
		if (err)
			return err;
		sha256_update(&s, chunk, n);
		off += n;
		len -= n;
	}
	uint8_t sum[32];
	sha256_final(&s, sum);
	sha256_hex(sum, hex);
	return 0;
}

/*
 * `blk seqread`: `mib` MiB read from sector 0 on (wrapping at the end) in requests of `kib`
 * KiB through vio_blk_read, one at a time, timed: the depth-1 row beside virtio-scsi's in
 * make bench, on the same image.
 */
#define SEQREAD_REQ_MAX (1024u * 1024)

static int blk_seqread(struct vio_blk *b, uint64_t mib, uint64_t kib)
{
	uint64_t req = kib * 1024, capacity = b->info.capacity * 512;
	if (mib == 0 || mib > 65536 || req == 0 || req > SEQREAD_REQ_MAX || req > capacity ||
	    req % b->info.blk_size)
		ERR("blk seqread: 1 to 65536 MiB, requests of whole %u-byte blocks up to %u KiB "
		    "and at most the disk's size",
		    b->info.blk_size, SEQREAD_REQ_MAX / 1024);
	uint8_t *data = malloc(req);
	if (!data)
		ERR("blk seqread: no memory for a %llu KiB buffer", (unsigned long long)kib);
	uint64_t off = 0, done = 0, t0 = clock_ns();
	int err = 0;
	while (done < mib << 20 && !shell_interrupted()) {
		if (off + req > capacity)
			off = 0;
		if ((err = DEV_CALL(vio_blk_read(b, off / 512, data, req))))
			break;
		off += req;
		done += req;
	}
	uint64_t ns = clock_ns() - t0;
	free(data);
	if (err)
		ERR("blk seqread: %s", shell_strerror(err));
	if (done < mib << 20)
		ERR("blk seqread: stopped (Ctrl-C) after %llu bytes", (unsigned long long)done);
	kprintf("blk seqread: %llu bytes in %llu ns, requests of %llu KiB\n",
		(unsigned long long)done, (unsigned long long)ns, (unsigned long long)kib);
	return 0;
}

/*
 * Why a blk command failed on disk d, as a sentence: the range past the end, a read-only
 * disk, an unplugged SCSI unit and a CD's 2048-byte blocks are named; anything else is the
 * code's meaning.
 */
static int blk_fail(const char *op, const struct kdisk *d, int err, uint64_t sector,
		    uint64_t count)
{
	if (err == VIO_EINVAL && (sector > d->sectors || count > d->sectors - sector))
		ERR("blk %s: an argument is out of range for %s: it has %llu sectors, and %llu "
		    "sector(s) at %llu go past its end (VIO_EINVAL)", op, d->name,
		    (unsigned long long)d->sectors, (unsigned long long)count,
		    (unsigned long long)sector);
	if (d->kind != KDISK_SCSI)
		ERR("blk %s: %s", op, shell_strerror(err));
	if (err == VIO_ENODEV)
		ERR("blk %s: %s: the SCSI unit was unplugged (see 'scsi luns') (VIO_ENODEV)", op,
		    d->name);
	if (err == VIO_EROFS)
		ERR("blk %s: %s is read-only (a CD, or a write-protected disk) (VIO_EROFS)", op,
		    d->name);
	if (err == VIO_EALIGN)
		ERR("blk %s: %s reads and writes whole blocks of %u bytes: the sector and the count "
		    "must be multiples of %u (VIO_EALIGN)", op, d->name, d->block_size,
		    d->block_size / 512);
	if (err == VIO_EAGAIN && !d->block_size)
		ERR("blk %s: %s is not ready (no medium?); try again (VIO_EAGAIN)", op, d->name);
	ERR("blk %s: %s: %s", op, d->name, shell_strerror(err));
}

/* The blk subcommands only a virtio-blk device has. */
static bool blk_only(const char *op)
{
	static const char *const ops[] = {"wce", "qd", "crash", "discard", "zero", "seqread"};
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(op, ops[i]))
			return true;
	return false;
}

static int cmd_blk(int argc, char **argv)
{
	static uint8_t buf[64 * 1024];
	uint64_t a = 0, b = 0, c = 0;
	struct kdisk d;
	if (argc < 2)
		return -1;
	const char *op = argv[1];
	if (!strcmp(op, "info") && argc <= 3) {
		bool any = false;
		for (int n = 0; disk_nth(n, &d); n++) {
			if (argc == 3 && strcmp(argv[2], d.name))
				continue;
			if (d.kind == KDISK_SCSI)
				scsi_disk_info(&d);
			else
				blk_info(d.name, d.drv);
			any = true;
		}
		if (!any)
			ERR("blk: no such disk");
		return 0;
	}
	if (argc < 3)
		return -1;
	if (!disk_find(argv[2], &d))
		ERR("blk: no disk '%s' (see 'blk info')", argv[2]);
	if (d.kind == KDISK_SCSI && blk_only(op))
		ERR("%s is a SCSI %s: %s is a virtio-blk command", d.name,
		    ((struct vio_scsi *)d.drv)->luns[d.lun].type == SCSI_TYPE_CDROM ? "CD" : "disk",
		    op);
	struct vio_blk *blk = d.kind == KDISK_VIRTIO_BLK ? d.drv : NULL;
	int err;
	if (!strcmp(op, "read") && argc == 5 && parse_u64(argv[3], &a) && parse_u64(argv[4], &b) &&
	    b > 0 && b * 512 <= sizeof(buf)) {
		if ((err = disk_read(&d, a, buf, b * 512)))
			return blk_fail(op, &d, err, a, b);
		hexdump(buf, b * 512 > 256 ? 256 : b * 512, a * 512);
	} else if (!strcmp(op, "write") && argc == 6 && parse_u64(argv[3], &a) &&
		   parse_u64(argv[4], &b) && parse_u64(argv[5], &c) && b > 0 &&
		   b * 512 <= sizeof(buf) && c <= 255) {
		memset(buf, (int)c, b * 512);
		if ((err = disk_write(&d, a, buf, b * 512)))
			return blk_fail(op, &d, err, a, b);
		kprintf("wrote %llu sector(s) of 0x%02llx at %llu\n", (unsigned long long)b,
			(unsigned long long)c, (unsigned long long)a);
	} else if (!strcmp(op, "sha256") && argc == 5 && parse_u64(argv[3], &a) &&
		   parse_u64(argv[4], &b) && a % 512 == 0 && b % 512 == 0) {
		char hex[65];
		uint64_t at = a;
		if ((err = blk_sha256(&d, &at, b, hex)) > 0)
			ERR("blk sha256: stopped (Ctrl-C) at offset %llu", (unsigned long long)at);
		if (err)
			return blk_fail(op, &d, err, a / 512, b / 512);
		kprintf("sha256 %s offset %llu length %llu: %s\n", argv[2], (unsigned long long)a,
			(unsigned long long)b, hex);
	} else if (!strcmp(op, "flush") && argc == 3) {
		if ((err = disk_flush(&d)))
			return blk_fail(op, &d, err, 0, 0);
		kprintf(d.kind == KDISK_SCSI || blk->info.flush
				? "flushed\n"
				: "nothing to flush: the disk has no FLUSH command, so it writes "
				  "through\n");
	} else if (!strcmp(op, "wce") && argc == 4 &&
		   (!strcmp(argv[3], "on") || !strcmp(argv[3], "off"))) {
		if ((err = DEV_CALL(vio_blk_set_writeback(blk, !strcmp(argv[3], "on")))))
			ERR("blk wce: %s", shell_strerror(err));
		kprintf("%s: cache mode %s\n", argv[2],
			blk->info.writeback ? "writeback" : "writethrough");
	} else if (!strcmp(op, "qd") && argc == 5 && parse_u64(argv[3], &a) &&
		   parse_u64(argv[4], &b) && a > 0 && b > 0 && b <= QD_MAX) {
		return blk_qd(blk, a, b);
	} else if (!strcmp(op, "seqread") && argc == 5 && parse_u64(argv[3], &a) &&
		   parse_u64(argv[4], &b)) {
		return blk_seqread(blk, a, b);
	} else if (!strcmp(op, "crash") && argc == 3) {
		return blk_crash(blk);
	} else if ((!strcmp(op, "discard") || !strcmp(op, "zero")) && argc == 5 &&
		   parse_u64(argv[3], &a) && parse_u64(argv[4], &b) && b > 0) {
		err = !strcmp(op, "zero") ? DEV_CALL(vio_blk_write_zeroes(blk, a, b, false))
					  : DEV_CALL(vio_blk_discard(blk, a, b));
		if (err)
			ERR("blk %s: %s", op, shell_strerror(err));
		kprintf("%s %llu sector(s) at %llu\n", op, (unsigned long long)b,
			(unsigned long long)a);
	} else {
		return -1;
	}
	return 0;
}

/* --- cons ------------------------------------------------------------------------------- */

/* A port by number or by name; -1 (and why, printed) when there is no such port. A number
 * is checked whole: 4294967296 is not port 0. */
static int cons_port_arg(struct vio_console *con, const char *arg)
{
	uint64_t id;
	if (parse_u64(arg, &id)) {
		if (id < con->nports)
			return (int)id;
		kprintf("cons write: no port %llu: this console has %u port(s), numbered from 0 "
			"(see 'cons ports')\n", (unsigned long long)id, con->nports);
		return -1;
	}
	int port = DEV_CALL(vio_console_find_port(con, arg));
	if (port < 0)
		kprintf("cons write: no port named '%s' (see 'cons ports')\n", arg);
	return port < 0 ? -1 : port;
}

static int cmd_cons(int argc, char **argv)
{
	struct vio_console *con = dev_console(0);
	if (argc < 2)
		return -1;
	if (!con)
		ERR("cons: no virtio-console device");
	if (!strcmp(argv[1], "ports") && argc == 2) {
		for (uint32_t id = 0; id < con->nports; id++) {
			struct vio_console_port_info pi;
			if (DEV_CALL(vio_console_port_info(con, id, &pi)) || !pi.present)
				continue;
			kprintf("port %u: name '%s'%s host %s guest %s, %u bytes unread, %ux%u\n",
				pi.id, pi.name, pi.is_console ? " console," : "",
				pi.host_open ? "open" : "closed", pi.guest_open ? "open" : "closed",
				pi.rx_pending, pi.cols, pi.rows);
		}
		return 0;
	}
	if (!strcmp(argv[1], "write") && argc >= 4) {
		int port = cons_port_arg(con, argv[2]);
		if (port < 0)
			return -2;
		char text[256];
		size_t n = 0;
		for (int i = 3; i < argc; i++) {
			int w = vio_snprintf(text + n, sizeof(text) - n, "%s%s", argv[i],
					     i + 1 < argc ? " " : "\n");
			if (w < 0 || (size_t)w >= sizeof(text) - n)
				ERR("cons write: the text is over %zu bytes; send it in parts",
				    sizeof(text) - 2);
			n += (size_t)w;
		}
		int w = DEV_CALL(vio_console_write(con, (uint32_t)port, text, n, true));
		if (w < 0)
			ERR("cons write: %s", shell_strerror(w));
		kprintf("wrote %d byte(s) to port %d\n", w, port);
		return 0;
	}
	return -1;
}

/* --- net -------------------------------------------------------------------------------- */

static bool parse_mac(const char *s, uint8_t mac[6])
{
	if (!strcmp(s, "broadcast")) {
		memset(mac, 0xff, 6);
		return true;
	}
	for (int i = 0; i < 6; i++) {
		char *end;
		unsigned long v = strtoul(s, &end, 16);
		if (end == s || v > 255 || (i < 5 ? *end != ':' : *end != '\0'))
			return false;
		mac[i] = (uint8_t)v;
		s = end + 1;
	}
	return true;
}

/*
 * The largest frame `net send` builds: the most any device may take (the driver's MTU cap,
 * the Ethernet header and one VLAN tag). The buffer and the length check both use it, so a
 * device with a larger max_frame cannot make the shell write past the buffer.
 */
#define NET_SEND_MAX (VIO_NET_MAX_MTU + VIO_NET_ETH_HLEN + VIO_NET_VLAN_HLEN)

/* Most addresses `net filter` takes on its command line. */
#define NET_FILTER_MAX 8

/* net filter <dev> [mac...]: unicast addresses to one table, multicast ones to the other. */
static int net_filter(struct vio_net *net, int unit, char **macs, int n)
{
	uint8_t uc[NET_FILTER_MAX][6], mc[NET_FILTER_MAX][6], mac[6];
	uint32_t n_uc = 0, n_mc = 0;

	for (int i = 0; i < n; i++) {
		if (!parse_mac(macs[i], mac))
			return -1;
		memcpy(mac[0] & 1 ? mc[n_mc++] : uc[n_uc++], mac, 6);
	}
	int err = DEV_CALL(vio_net_set_mac_filter(net, uc, n_uc, mc, n_mc));
	if (err)
		ERR("net filter: %s", shell_strerror(err));
	kprintf("net%d: filter %u unicast, %u multicast\n", unit, n_uc, n_mc);
	return 0;
}

static int cmd_net(int argc, char **argv)
{
	if (argc < 2)
		return -1;
	int unit = 0;
	if (argc >= 3) {
		struct kvirtio *kv = dev_by_name(argv[2]);
		if (!kv || kv->dev.device_id != VIRTIO_ID_NET)
			ERR("net: no NIC '%s' (see 'devices')", argv[2]);
		unit = kv->unit;
	}
	struct vio_net *net = dev_net(unit);
	if (!net)
		ERR("net: no virtio-net device");
	char line[160];
	if (!strcmp(argv[1], "info") && argc <= 3) {
		vio_net_describe(net, line, sizeof(line));
		kprintf("net%d: %s\n", unit, line);
	} else if (!strcmp(argv[1], "stats") && argc <= 3) {
		const struct vio_net_stats *s = &net->stats;
		kprintf("net%d: rx %llu frames %llu bytes, %llu drops, %llu errors; tx %llu frames "
			"%llu bytes, %llu errors, %llu full; rx merged %llu, gso %llu\n", unit,
			(unsigned long long)s->rx_frames, (unsigned long long)s->rx_bytes,
			(unsigned long long)s->rx_drops, (unsigned long long)s->rx_errors,
			(unsigned long long)s->tx_frames, (unsigned long long)s->tx_bytes,
			(unsigned long long)s->tx_errors, (unsigned long long)s->tx_full,
			(unsigned long long)s->rx_merged, (unsigned long long)s->rx_gso);
	} else if (!strcmp(argv[1], "send") && argc == 5) {
		static uint8_t frame[NET_SEND_MAX];
		uint64_t len;
		if (!parse_mac(argv[3], frame) || !parse_u64(argv[4], &len))
			return -1;
		if (len < VIO_NET_ETH_HLEN || len > NET_SEND_MAX || len > net->max_frame)
			ERR("net send: net%d sends frames of %d to %u bytes (Ethernet header "
			    "included), not %llu", unit, VIO_NET_ETH_HLEN,
			    net->max_frame < NET_SEND_MAX ? net->max_frame : NET_SEND_MAX,
			    (unsigned long long)len);
		memcpy(frame + 6, net->mac, 6);
		frame[12] = 0x88, frame[13] = 0xb5; /* IEEE local experimental EtherType */
		for (size_t i = 14; i < len; i++)
			frame[i] = (uint8_t)i;
		int err = DEV_CALL(vio_net_send(net, frame, (uint32_t)len, NULL));
		if (err)
			ERR("net send: %s", shell_strerror(err));
		kprintf("sent %llu-byte frame\n", (unsigned long long)len);
	} else if (!strcmp(argv[1], "echo") && argc == 4 &&
		   (!strcmp(argv[3], "on") || !strcmp(argv[3], "off") ||
		    !strcmp(argv[3], "report"))) {
		uint64_t big = net_echo_enable(unit, strcmp(argv[3], "off") != 0);
		net_echo_report(unit, !strcmp(argv[3], "report"));
		kprintf("net%d: frame echo %s\n", unit, argv[3]);
		if (big)
			kprintf("net%d: %llu coalesced frames were too large to echo and were dropped "
				"(vio.net.offload=off keeps the host from coalescing)\n",
				unit, (unsigned long long)big);
	} else if ((!strcmp(argv[1], "promisc") || !strcmp(argv[1], "allmulti")) && argc == 4 &&
		   (!strcmp(argv[3], "on") || !strcmp(argv[3], "off"))) {
		bool on = !strcmp(argv[3], "on");
		int err = DEV_CALL(!strcmp(argv[1], "promisc") ? vio_net_set_promisc(net, on)
							       : vio_net_set_allmulti(net, on));
		if (err)
			ERR("net %s: %s", argv[1], shell_strerror(err));
		kprintf("net%d: %s %s\n", unit, argv[1], argv[3]);
	} else if (!strcmp(argv[1], "mac") && argc == 4) {
		uint8_t mac[6];
		if (!parse_mac(argv[3], mac))
			return -1;
		int err = DEV_CALL(vio_net_set_mac(net, mac));
		if (err)
			ERR("net mac: %s", shell_strerror(err));
		vio_net_describe(net, line, sizeof(line));
		kprintf("net%d: %s\n", unit, line);
	} else if (!strcmp(argv[1], "filter") && argc >= 3 && argc - 3 <= NET_FILTER_MAX) {
		return net_filter(net, unit, argv + 3, argc - 3);
	} else {
		return -1;
	}
	return 0;
}

/* --- balloon ----------------------------------------------------------------------------- */

static void balloon_info(int unit, const struct vio_balloon *b)
{
	const struct vio_balloon_stats *c = &b->stats;
	uint32_t target = vio_balloon_target(b), held = vio_balloon_actual(b);
	kprintf("balloon%d: target %u pages (%u MiB), actual %u pages (%u MiB)\n", unit, target,
		target / 256, held, held / 256);
	kprintf("  features:%s%s%s%s\n", b->tell_host ? " MUST_TELL_HOST" : "",
		b->stats_vq ? " STATS_VQ" : "", b->oom ? " DEFLATE_ON_OOM" : "",
		b->reporting ? " PAGE_REPORTING" : "");
	kprintf("  inflated %llu deflated %llu (oom %llu) pages, take failures %llu, config "
		"changes %llu, stats requests %llu, reports %llu (%llu pages)\n",
		(unsigned long long)c->inflated, (unsigned long long)c->deflated,
		(unsigned long long)c->oom_deflated, (unsigned long long)c->take_failures,
		(unsigned long long)c->config_changes, (unsigned long long)c->stats_requests,
		(unsigned long long)c->reports, (unsigned long long)c->reported_pages);
}

/*
 * `balloon alloc <MiB>`: take that much memory from the page allocator one page at a time,
 * then give it all back. When the allocator runs dry it deflates the balloon (DEFLATE_ON_OOM)
 * and the allocation goes on; this shows how many pages that took. The pages taken are
 * chained through their own first word, so the test needs no memory of its own.
 */
static int balloon_alloc(struct vio_balloon *b, uint64_t bytes)
{
	uint64_t want = bytes / PAGE_SIZE, got = 0, head = 0;
	uint64_t oom0 = b ? b->stats.oom_deflated : 0;
	uint32_t held0 = b ? vio_balloon_actual(b) : 0;
	uint64_t free0 = pmm_free_pages(), t0 = clock_ns();

	while (got < want) {
		if (got % 1024 == 0 && shell_interrupted()) {
			kprintf("balloon alloc: stopped (Ctrl-C)\n");
			break;
		}
		uint64_t pa = pmm_alloc(1, 1);
		if (!pa)
			break;
		*(uint64_t *)(uintptr_t)pa = head;
		head = pa;
		got++;
	}
	uint64_t oom = b ? b->stats.oom_deflated - oom0 : 0;
	uint32_t held = b ? vio_balloon_actual(b) : 0;
	while (head) {
		uint64_t next = *(uint64_t *)(uintptr_t)head;
		pmm_free(head, 1);
		head = next;
	}
	kprintf("alloc: %llu of %llu pages (%llu were free), balloon gave back %llu on oom, "
		"balloon %u -> %u pages, %llu ms\n", (unsigned long long)got,
		(unsigned long long)want, (unsigned long long)free0, (unsigned long long)oom,
		held0, held, (unsigned long long)((clock_ns() - t0) / 1000000));
	return 0;
}

static int cmd_balloon(int argc, char **argv)
{
	uint64_t bytes;
	struct vio_balloon *b = dev_balloon(0);
	if (argc == 3 && !strcmp(argv[1], "alloc")) {
		if (!parse_u64(argv[2], &bytes) || bytes == 0)
			return -1;
		return balloon_alloc(b, bytes * MiB);
	}
	if (argc > 2)
		return -1;
	int unit = 0;
	if (argc == 2) {
		struct kvirtio *kv = dev_by_name(argv[1]);
		if (!kv || kv->dev.device_id != VIRTIO_ID_BALLOON)
			ERR("balloon: no balloon '%s' (see 'devices')", argv[1]);
		unit = kv->unit;
		b = kv->drv;
	}
	if (!b)
		ERR("balloon: no virtio-balloon device");
	balloon_info(unit, b);
	return 0;
}

const struct command device_commands[] = {
	{"devices", "devices", "virtio devices: driver, transport, features, queues, irq",
	 cmd_devices},
	{"lspci", "lspci", "PCI functions with their BARs", cmd_lspci},
	{"virtio", "virtio <dev>", "one device: features by name, queues, counters (dev: blk0...)",
	 cmd_virtio},
	{"rng", "rng <bytes (1-1G)>",
	 "read entropy: up to 4096 bytes dumped in hex, more summed (SHA-256); Ctrl-C stops it",
	 cmd_rng},
	{"blk", "blk info [dev] | read <dev> <sector> <count> | write <dev> <sector> <count> <byte>"
		" | sha256 <dev> <offset> <length> | flush <dev> | discard|zero <dev> <sector> <count>"
		" | wce <dev> on|off | qd <dev> <reads> <depth (1-64)> | seqread <dev> <MiB> <KiB>"
		" | crash <dev>",
	 "disks: virtio-blk (blk0...) and SCSI units (sd0..., as 'scsi luns' lists them; no "
	 "discard|zero|wce|qd|seqread|crash); sectors of 512 bytes; Ctrl-C stops sha256; crash: "
	 "fault with reads in flight; seqread: timed sequential reads, one request at a time",
	 cmd_blk},
	{"cons", "cons ports | write <port|name> <text...>", "virtio-console ports", cmd_cons},
	{"net",
	 "net info|stats [dev] | send <dev> <mac|broadcast> <len> | echo <dev> on|off|report | "
	 "promisc|allmulti <dev> on|off | mac <dev> <mac> | filter <dev> [mac...]",
	 "virtio-net", cmd_net},
	{"scsi", "scsi [luns] | read <lun> <lba> <count> | write <lun> <lba> <count> <byte> | "
		 "sha256 <lun> <offset> <length> | unmap <lun> <lba> <count> | sync <lun> | rescan | "
		 "bench read <lun> <MiB> <request KiB>",
	 "disks and CDs behind virtio-scsi (blocks of the unit's size; lun: index in 'scsi luns')",
	 cmd_scsi},
	{"9p", "9p [info] | ls [dir] | cat|stat|sha256|mkdir|rm <path> | put <file> <text...> | "
	       "mv <old> <new> | cp <from> <to> (a side may be blkN:<sector>[:<bytes>]) | "
	       "bench read <file> | bench write <file> <MiB>",
	 "the host folder shared over virtio-9p", cmd_9p},
	{"balloon", "balloon [dev] | alloc <MiB>",
	 "memory balloon: target, pages held, counters; alloc: take MiB page by page and free it",
	 cmd_balloon},
	{"screen", "screen [pattern]",
	 "the virtio-gpu screen: size, text grid, pointer; pattern: draw the test pattern",
	 cmd_screen},
};
const size_t n_device_commands = ARRAY_SIZE(device_commands);
