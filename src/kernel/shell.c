/*
 * shell.c: vio.mode=shell, a line-editing command shell on COM1.
 * Each command is one entry in `commands`; a wrong command or argument prints a one-line
 * usage error and the shell goes on.
 */
#include <kernel/acpi.h>
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/serial.h>
#include <kernel/timer.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 16

struct command {
	const char *name, *usage, *help;
	int (*run)(int argc, char **argv); /* 0, or -1 after printing "usage: ..." */
};

static int cmd_help(int argc, char **argv);

static int cmd_mem(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	kprintf("pages: %llu free of %llu (%llu MiB free)\n",
		(unsigned long long)pmm_free_pages(), (unsigned long long)pmm_total_pages(),
		(unsigned long long)(pmm_free_pages() * PAGE_SIZE / MiB));
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
	uint64_t ms = now_ns() / 1000000;
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

static int cmd_lspci(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	lspci_print();
	return 0;
}

static int cmd_devices(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	devices_print_table();
	return 0;
}

static int cmd_poweroff(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return -1;
	poweroff();
}

static const struct command commands[] = {
	{"help", "help", "list commands", cmd_help},
	{"mem", "mem", "page allocator and heap", cmd_mem},
	{"acpi", "acpi", "ACPI tables found at boot", cmd_acpi},
	{"uptime", "uptime", "time since boot", cmd_uptime},
	{"lspci", "lspci", "PCI functions with their BARs", cmd_lspci},
	{"devices", "devices", "virtio devices: transport, features, queues, irq", cmd_devices},
	{"echo", "echo [words...]", "print the words", cmd_echo},
	{"poweroff", "poweroff", "ACPI soft-off (ends QEMU)", cmd_poweroff},
};

static int cmd_help(int argc, char **argv)
{
	(void)argc, (void)argv;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		kprintf("  %-18s %s\n", commands[i].usage, commands[i].help);
	return 0;
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
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[0], commands[i].name))
			continue;
		if (commands[i].run(argc, argv) < 0)
			kprintf("usage: %s\n", commands[i].usage);
		return;
	}
	kprintf("unknown command '%s' (try 'help')\n", argv[0]);
}

void shell_run(void)
{
	char line[256];
	kprintf("vio shell: type 'help'\n");
	for (;;) {
		kprintf("vio> ");
		if (serial_readline(line, sizeof(line), 0) >= 0)
			shell_execute(line);
	}
}
