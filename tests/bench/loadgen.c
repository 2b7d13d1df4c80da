/*
 * loadgen: the Linux guest's half of `make bench`. It performs the operations the vio
 * kernel's bench mode does (src/kernel/bench.c), on the same QEMU devices, for the same time
 * per metric, and prints the same `BENCH <metric> <value> <unit>` lines.
 *
 *   loadgen dev MS       block (/dev/vda: O_DIRECT, Linux native AIO through the raw
 *                        io_setup/io_submit/io_getevents system calls), /dev/hwrng reads,
 *                        writes to the virtio-console port named org.vio.bench, and 64-byte
 *                        raw frames out and in on eth0 (AF_PACKET), in vio's order
 *   loadgen udpecho PORT answer every UDP datagram on PORT with itself (the kernel's
 *                        `udp echo` for tests/bench.py's round trips)
 *
 * Built by the host's gcc with -static -O2 (Makefile: $(BUILD)/bench/loadgen), no libaio.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 64

static uint64_t run_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void report(const char *metric, double value, const char *unit)
{
	printf("BENCH %s %.2f %s\n", metric, value, unit);
	fflush(stdout);
}

static double per_sec(uint64_t amount, uint64_t ns)
{
	return ns ? (double)amount * 1e9 / (double)ns : 0.0;
}

/* xorshift64*: the block offsets for the random rows */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t random_below(uint64_t n)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return (rnd_state * 0x2545f4914f6cdd1dull) % n;
}

/* --- block ------------------------------------------------------------------------------ */

static long io_setup(unsigned nr, aio_context_t *ctx)
{
	return syscall(SYS_io_setup, nr, ctx);
}

static long io_submit(aio_context_t ctx, long n, struct iocb **iocbs)
{
	return syscall(SYS_io_submit, ctx, n, iocbs);
}

static long io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev)
{
	return syscall(SYS_io_getevents, ctx, min, max, ev, NULL);
}

static long io_destroy(aio_context_t ctx)
{
	return syscall(SYS_io_destroy, ctx);
}

/*
 * Keep `depth` requests of `size` bytes in flight for run_ns, then wait for the last ones;
 * returns the completed count and the time taken in *ns (as blk_run in bench.c).
 */
static uint64_t blk_run(int fd, uint64_t capacity, int write, uint32_t size, int depth,
			int random, uint64_t *ns)
{
	static struct iocb cbs[MAX_DEPTH];
	struct iocb *batch[MAX_DEPTH];
	struct io_event ev[MAX_DEPTH];
	int busy[MAX_DEPTH] = {0}, inflight = 0;
	uint64_t span = capacity / size, next = 0, done = 0;
	aio_context_t ctx = 0;
	uint8_t *buf = NULL;

	if (span == 0 || io_setup(MAX_DEPTH, &ctx) < 0 ||
	    posix_memalign((void **)&buf, 4096, (size_t)size * (size_t)depth)) {
		perror("loadgen: block setup");
		exit(1);
	}
	memset(buf, 0x5a, (size_t)size * (size_t)depth);
	uint64_t t0 = now_ns();
	for (;;) {
		int n = 0;
		if (now_ns() - t0 < run_ns) {
			for (int i = 0; i < depth; i++) {
				if (busy[i])
					continue;
				uint64_t blkno = random ? random_below(span) : next++ % span;
				cbs[i] = (struct iocb){
					.aio_data = (uint64_t)i,
					.aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD,
					.aio_fildes = (uint32_t)fd,
					.aio_buf = (uint64_t)(uintptr_t)(buf + (size_t)i * size),
					.aio_nbytes = size,
					.aio_offset = (int64_t)(blkno * size)};
				batch[n++] = &cbs[i];
				busy[i] = 1;
			}
		}
		if (n) {
			long got = io_submit(ctx, n, batch);
			if (got != n) {
				fprintf(stderr, "loadgen: io_submit: %ld of %d\n", got, n);
				exit(1);
			}
			inflight += n;
		}
		if (!inflight)
			break;
		long got = io_getevents(ctx, 1, MAX_DEPTH, ev);
		if (got < 0) {
			perror("loadgen: io_getevents");
			exit(1);
		}
		for (long i = 0; i < got; i++) {
			if (ev[i].res != (int64_t)size) {
				fprintf(stderr, "loadgen: request failed: %lld\n", (long long)ev[i].res);
				exit(1);
			}
			busy[ev[i].data] = 0;
		}
		inflight -= (int)got;
		done += (uint64_t)got;
	}
	*ns = now_ns() - t0;
	io_destroy(ctx);
	free(buf);
	return done;
}

static void bench_blk(void)
{
	int fd = open("/dev/vda", O_RDWR | O_DIRECT);
	uint64_t capacity = 0, ns, n;
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &capacity) < 0) {
		perror("loadgen: /dev/vda");
		return;
	}
	n = blk_run(fd, capacity, 0, 4096, 1, 1, &ns);
	report("blk_randread_4k_qd1", per_sec(n, ns), "IOPS");
	n = blk_run(fd, capacity, 0, 4096, 32, 1, &ns);
	report("blk_randread_4k_qd32", per_sec(n, ns), "IOPS");
	n = blk_run(fd, capacity, 0, 65536, 4, 0, &ns);
	report("blk_seqread_64k", per_sec(n * 65536, ns) / (1024 * 1024), "MiB/s");
	n = blk_run(fd, capacity, 0, 1 << 20, 4, 0, &ns);
	report("blk_seqread_1m", per_sec(n << 20, ns) / (1024 * 1024), "MiB/s");
	n = blk_run(fd, capacity, 1, 65536, 4, 0, &ns);
	report("blk_seqwrite_64k", per_sec(n * 65536, ns) / (1024 * 1024), "MiB/s");
	close(fd);
}

/* --- rng, console ----------------------------------------------------------------------- */

static void bench_rng(void)
{
	static uint8_t buf[4096];
	int fd = open("/dev/hwrng", O_RDONLY);
	if (fd < 0) {
		perror("loadgen: /dev/hwrng");
		return;
	}
	uint64_t bytes = 0, t0 = now_ns();
	while (now_ns() - t0 < run_ns / 2) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			perror("loadgen: read /dev/hwrng");
			close(fd);
			return;
		}
		bytes += (uint64_t)n;
	}
	report("rng_read", per_sec(bytes, now_ns() - t0) / 1024, "KiB/s");
	close(fd);
}

/* The /dev/vportNpM whose /sys/class/virtio-ports/<it>/name is `name`, opened for writing. */
static int open_port(const char *name)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	int fd = -1;
	while (d && fd < 0 && (e = readdir(d))) {
		char path[300], got[64] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(got, sizeof(got), f))
			got[strcspn(got, "\n")] = '\0';
		if (strcmp(got, name) == 0) {
			snprintf(path, sizeof(path), "/dev/%s", e->d_name);
			fd = open(path, O_WRONLY);
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return fd;
}

static void bench_console(void)
{
	static uint8_t buf[4096];
	int fd = open_port("org.vio.bench");
	if (fd < 0) {
		fprintf(stderr, "loadgen: no virtio-console port org.vio.bench\n");
		return;
	}
	memset(buf, 'x', sizeof(buf));
	uint64_t bytes = 0, t0 = now_ns();
	while (now_ns() - t0 < run_ns / 2) {
		ssize_t n = write(fd, buf, sizeof(buf));
		if (n <= 0) {
			perror("loadgen: write console port");
			close(fd);
			return;
		}
		bytes += (uint64_t)n;
	}
	report("console_tx", per_sec(bytes, now_ns() - t0) / 1024, "KiB/s");
	close(fd);
}

/* --- raw frames ------------------------------------------------------------------------- */

static void bench_net(void)
{
	uint8_t frame[64] = {0};
	struct ifreq ifr = {0};
	int s = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
	if (s < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		perror("loadgen: eth0");
		return;
	}
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(0x88b5),
				 .sll_ifindex = ifr.ifr_ifindex};
	if (bind(s, (struct sockaddr *)&to, sizeof(to)) < 0 || ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
		perror("loadgen: bind eth0");
		return;
	}
	memset(frame, 0xff, 6);
	memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
	frame[12] = 0x88, frame[13] = 0xb5;
	uint64_t sent = 0, t0 = now_ns();
	while (now_ns() - t0 < run_ns) {
		if (send(s, frame, sizeof(frame), 0) == (ssize_t)sizeof(frame))
			sent++;
		else if (errno != ENOBUFS && errno != EAGAIN) {
			perror("loadgen: send on eth0");
			break;
		}
	}
	report("net_tx_64b", per_sec(sent, now_ns() - t0), "frames/s");

	/* RX: the host floods 64-byte frames once it sees the phase marker. */
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	printf("BENCH-PHASE net-rx\n");
	fflush(stdout);
	uint64_t got = 0, start = 0;
	for (uint64_t wait = now_ns(); !start && now_ns() - wait < 10000000000ull;)
		if (recv(s, frame, sizeof(frame), 0) > 0)
			start = now_ns(), got = 1;
	while (start && now_ns() - start < run_ns)
		if (recv(s, frame, sizeof(frame), 0) > 0)
			got++;
	if (start)
		report("net_rx_64b", per_sec(got, now_ns() - start), "frames/s");
	printf("BENCH-PHASE net-rx-done\n");
	fflush(stdout);
	close(s);
}

/* --- UDP echo --------------------------------------------------------------------------- */

static int udp_echo(int port)
{
	static uint8_t buf[65536];
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_ANY)};
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("loadgen: udp echo");
		return 1;
	}
	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
		if (n >= 0)
			sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "dev") == 0) {
		run_ns = strtoull(argv[2], NULL, 0) * 1000000ull;
		bench_rng();
		bench_console();
		bench_blk();
		bench_net();
		printf("BENCH done\n");
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "udpecho") == 0)
		return udp_echo(atoi(argv[2]));
	fprintf(stderr, "usage: loadgen dev MS | loadgen udpecho PORT\n");
	return 2;
}
