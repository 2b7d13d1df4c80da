/* The serial shell's command table and helpers shared by its command files. */
#ifndef KERNEL_SHELL_H
#define KERNEL_SHELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct command {
	const char *name, *usage, *help;
	int (*run)(int argc, char **argv); /* 0; -1 prints "usage: <usage>"; -2 already said why */
};

/* Device commands (cmd_dev.c). */
extern const struct command device_commands[];
extern const size_t n_device_commands;
/* The host folder (cmd_9p.c). */
int cmd_9p(int argc, char **argv);
/* The disks and CDs behind virtio-scsi (cmd_scsi.c). */
int cmd_scsi(int argc, char **argv);
/* Network commands (src/kernel/net/cmd_ip.c). */
extern const struct command net_commands[];
extern const size_t n_net_commands;

/* A number: decimal, 0x hex, with an optional K/M/G suffix (powers of 1024). */
bool parse_u64(const char *s, uint64_t *out);
/* Print `len` bytes as a classic hex dump with offsets starting at `base`. */
void hexdump(const void *buf, size_t len, uint64_t base);
/* What a vio error code means to the person at the shell, with its name in parentheses. */
const char *shell_strerror(int err);
/* Run one command line (also used by tests). */
void shell_execute(char *line);
/* True when Ctrl-C was typed on COM1 or console port 0 since the last call: a long command
 * calls this between its steps and stops. Other input is kept for the next prompt. */
bool shell_interrupted(void);
/* Another line source for the shell (virtio-console port 0). */
struct shell_source;
void shell_add_source(struct shell_source *src);

#endif
