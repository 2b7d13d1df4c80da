/*
 * shell.c: vio.mode=shell, a line-editing command shell on COM1.
 * Each command is one entry in `commands`; a wrong command or argument prints a one-line
 * usage error and the shell goes on.
 */
#include <kernel/acpi.h>
#include <kernel/arch.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/serial.h>
#include <kernel/shell.h>
#include <kernel/timer.h>
#include <string.h>
#include <vio/err.h>
#include <vio/format.h>

#define MAX_ARGS 16

static int cmd_help(int argc, char **argv);

static int cmd_mem(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	uint64_t held = balloon_pages_held();
	struct pmm_oom_stats oom = pmm_oom_stats();
	kprintf("pages: %llu free of %llu (%llu MiB free)\n",
		(unsigned long long)pmm_free_pages(), (unsigned long long)pmm_total_pages(),
		(unsigned long long)(pmm_free_pages() * PAGE_SIZE / MiB));
	/* Balloon pages are allocated as far as the allocator knows: they are in neither
	 * "free" above nor anyone else's use; the host has the memory behind them. */
	kprintf("balloon: %llu pages held (%llu MiB)\n", (unsigned long long)held,
		(unsigned long long)(held * PAGE_SIZE / MiB));
	kprintf("oom: %llu reclaims, %llu allocations rescued, %llu still failed\n",
		(unsigned long long)oom.calls, (unsigned long long)oom.rescued,
		(unsigned long long)oom.still_failed);
	kprintf("heap: %zu KiB used of %zu KiB\n", heap_used() / 1024, heap_size() / 1024);
	return 0;
}

static int cmd_acpi(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	acpi_print_summary();
	return 0;
}

static int cmd_uptime(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	uint64_t ms = clock_ns() / 1000000;
	kprintf("up %llu.%03llu s, %llu ticks\n", (unsigned long long)(ms / 1000),
		(unsigned long long)(ms % 1000), (unsigned long long)ticks());
	return 0;
}

static int cmd_echo(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		kprintf("%s%s", argv[i], i + 1 < argc ? " " : "");
	kprintf("\n");
	return 0;
}

static int cmd_poweroff(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	poweroff();
}

/* `panic <words>`: the kernel's panic path on purpose (a crash dump, when vio.dump= asks). */
static int cmd_panic(int argc, char **argv)
{
	char why[128];
	size_t n = 0;
	if (argc < 2)
		return -1;
	for (int i = 1; i < argc && n < sizeof(why) - 1; i++)
		n += (size_t)vio_snprintf(why + n, sizeof(why) - n, "%s%s", argv[i],
					  i + 1 < argc ? " " : "");
	panic("%s", why);
}

static const struct command commands[] = {
	{"help", "help", "list commands", cmd_help},
	{"mem", "mem", "page allocator, balloon pages and heap", cmd_mem},
	{"acpi", "acpi", "ACPI tables found at boot", cmd_acpi},
	{"uptime", "uptime", "time since boot", cmd_uptime},
	{"echo", "echo [words...]", "print the words", cmd_echo},
	{"poweroff", "poweroff", "ACPI soft-off (ends QEMU)", cmd_poweroff},
	{"panic", "panic <words...>", "panic on purpose (writes a crash dump with vio.dump=)",
	 cmd_panic},
};

static int cmd_help(int argc, char **argv)
{
	(void)argc, (void)argv;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		kprintf("  %-10s %s\n", commands[i].name, commands[i].help);
	for (size_t i = 0; i < n_device_commands; i++)
		kprintf("  %-10s %s\n      usage: %s\n", device_commands[i].name,
			device_commands[i].help, device_commands[i].usage);
	for (size_t i = 0; i < n_net_commands; i++)
		kprintf("  %-10s %s\n      usage: %s\n", net_commands[i].name, net_commands[i].help,
			net_commands[i].usage);
	return 0;
}

const char *shell_strerror(int err)
{
	switch (err) {
	case VIO_EINVAL:
		return "an argument is out of range for this device, or the call makes no sense "
		       "now (VIO_EINVAL)";
	case VIO_ENOMEM:
		return "out of DMA memory; free some (a smaller request, a deflated balloon) and "
		       "try again (VIO_ENOMEM)";
	case VIO_ENOSPC:
		return "the device's queue is full; try again in a moment (VIO_ENOSPC)";
	case VIO_EAGAIN:
		return "the device has nothing ready yet; try again (VIO_EAGAIN)";
	case VIO_EIO:
		return "the device reported an error or broke the virtio rules; the log says "
		       "which, and the device may need a reboot to recover (VIO_EIO)";
	case VIO_ENODEV:
		return "no such device or port (VIO_ENODEV)";
	case VIO_ENOTSUP:
		return "the device does not offer this (VIO_ENOTSUP)";
	case VIO_ETIMEDOUT:
		return "the device did not answer in time; the log may say more (VIO_ETIMEDOUT)";
	case VIO_EROFS:
		return "the disk is read-only (VIO_EROFS)";
	case VIO_EPROTO:
		return "the device's registers or tables are malformed (VIO_EPROTO)";
	case VIO_EFEATURES:
		return "the device refused the features the driver chose (VIO_EFEATURES)";
	case VIO_ERANGE:
		return "the device gave a value outside what the spec allows (VIO_ERANGE)";
	case VIO_ENEEDRESET:
		return "the device asked to be reset; it is out of service until a reboot "
		       "(VIO_ENEEDRESET)";
	case VIO_EALIGN:
		return "the disk reads and writes whole logical blocks ('blk info' says how large): "
		       "start on one and move whole ones (VIO_EALIGN)";
	case VIO_EREMOTE:
		return "the host behind the device refused (VIO_EREMOTE)";
	default:
		return vio_strerror(err);
	}
}

static int split(char *line, char **argv)
{
	int argc = 0;
	for (char *p = strtok(line, " \t"); p && argc < MAX_ARGS; p = strtok(NULL, " \t"))
		argv[argc++] = p;
	return argc;
}

void shell_execute(char *line)
{
	char *argv[MAX_ARGS];
	int argc = split(line, argv);
	if (argc == 0)
		return;
	const struct command *tables[] = {commands, device_commands, net_commands};
	const size_t sizes[] = {ARRAY_SIZE(commands), n_device_commands, n_net_commands};
	for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
		for (size_t i = 0; i < sizes[t]; i++) {
			if (strcmp(argv[0], tables[t][i].name))
				continue;
			if (tables[t][i].run(argc, argv) == -1)
				kprintf("usage: %s\n", tables[t][i].usage);
			return;
		}
	}
	kprintf("unknown command '%s' (try 'help')\n", argv[0]);
}

/*
 * Line editing for one input source. The shell reads from several (COM1, and virtio-console
 * port 0 once its driver is up); each keeps its own partial line, and echo goes back only
 * to the source that typed. Command output goes through kprintf, which every console sees.
 */
struct shell_source {
	const char *name;
	int (*getc)(void);                       /* next byte or -1 */
	void (*echo)(const char *s, size_t n);   /* back to this source only */
	char line[256];
	size_t len;
	char ahead[256]; /* typed while a command ran (shell_interrupted): the next input */
	size_t ahead_pos, ahead_len;
};

static struct shell_source *sources[4];
static int n_sources;

void shell_add_source(struct shell_source *src)
{
	if (n_sources < (int)ARRAY_SIZE(sources))
		sources[n_sources++] = src;
}

/* Feed one byte; returns true when src->line holds a finished line. */
static bool shell_feed(struct shell_source *src, int c)
{
	if (c == '\r' || c == '\n') {
		src->echo("\n", 1);
		src->line[src->len] = '\0';
		src->len = 0;
		return true;
	}
	if (c == 0x7f || c == '\b') {
		if (src->len) {
			/* One character back: a UTF-8 one is its lead byte and continuation bytes. */
			while (src->len > 1 && ((unsigned char)src->line[src->len - 1] & 0xc0) == 0x80)
				src->len--;
			src->len--;
			src->echo("\b \b", 3);
		}
	} else if (c == 0x15 || c == 0x03) { /* ^U, ^C: drop the line */
		src->len = 0;
		src->echo("^C\n", 3);
	} else if (c >= 0x20 && c != 0x7f && c <= 0xff && src->len + 1 < sizeof(src->line)) {
		/* Printable ASCII, and UTF-8's bytes (0x80 and up) as they come: names on a 9p
		 * folder may be any language's. */
		char ch = (char)c;
		src->line[src->len++] = ch;
		src->echo(&ch, 1);
	}
	return false;
}

/* The next byte from a source: what was typed ahead first, then the device. */
static int source_getc(struct shell_source *src)
{
	if (src->ahead_pos < src->ahead_len)
		return (unsigned char)src->ahead[src->ahead_pos++];
	src->ahead_pos = src->ahead_len = 0;
	return src->getc();
}

/*
 * A command that runs for a while (ping, iperf) calls this between its steps. It reads
 * what was typed on every source: a Ctrl-C (0x03) anywhere means stop, and everything typed
 * before it is dropped, as a terminal does; other bytes wait in `ahead` for the prompt that
 * follows. At most a buffer's worth is read per source and call, so a host that keeps
 * typing on console port 0 cannot keep the command here.
 */
bool shell_interrupted(void)
{
	bool stop = false;
	for (int i = 0; i < n_sources; i++) {
		struct shell_source *src = sources[i];
		for (size_t n = 0; n < sizeof(src->ahead); n++) {
			int c = src->getc();
			if (c < 0)
				break;
			if (c == 0x03) {
				src->ahead_pos = src->ahead_len = 0;
				src->len = 0;
				src->echo("^C\n", 3);
				stop = true;
			} else if (src->ahead_len < sizeof(src->ahead)) {
				src->ahead[src->ahead_len++] = (char)c;
			}
		}
	}
	return stop;
}

/* Nothing typed anywhere: let the devices make progress, then sleep until an interrupt
 * (a key on COM1, a device, or the 1 kHz tick). */
static void shell_idle(void)
{
	devices_poll();
	hlt();
}

static void serial_echo(const char *s, size_t n) { serial_write(s, n); }
static struct shell_source com1 = {.name = "COM1", .getc = serial_getc, .echo = serial_echo};
/* virtio-console port 0: the kernel log is mirrored there, so echo goes there too. */
static struct shell_source port0 = {
	.name = "virtio-console port 0", .getc = console_read_port0, .echo = console_mirror};

void shell_run(void)
{
	shell_add_source(&com1);
	shell_add_source(&port0);
	kprintf("vio shell: type 'help'\n");
	kprintf("vio> ");
	for (;;) {
		bool idle = true;
		for (int i = 0; i < n_sources; i++) {
			int c = source_getc(sources[i]);
			if (c < 0)
				continue;
			idle = false;
			if (shell_feed(sources[i], c)) {
				char line[256];
				memcpy(line, sources[i]->line, sizeof(line));
				shell_execute(line);
				kprintf("vio> ");
			}
		}
		if (idle)
			shell_idle();
	}
}
