/*
 * syscalls.c: what newlib needs from "the operating system" (newlib's libc/include/reent.h
 * lists them; this build of newlib calls them without the leading underscore, the
 * MISSING_SYSCALL_NAMES convention). There is one process, no files and no clock but ours: _write goes to the
 * serial port, _read reads a line from it, _sbrk grows the kernel heap, and everything
 * else fails with a clear errno rather than pretending.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/serial.h>
#include <kernel/timer.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/times.h>
#include <unistd.h>

#undef errno
extern int errno;

#define HEAP_MIN (4 * MiB)
#define HEAP_MAX (64 * MiB)

static char *heap_start, *heap_end, *heap_limit;

void heap_init(void)
{
	uint64_t pages = pmm_free_pages() / 8;
	if (pages * PAGE_SIZE > HEAP_MAX)
		pages = HEAP_MAX / PAGE_SIZE;
	if (pages * PAGE_SIZE < HEAP_MIN)
		pages = HEAP_MIN / PAGE_SIZE;
	uint64_t phys = pmm_alloc(pages, 512); /* 2 MiB aligned: neat in the page tables */
	if (!phys)
		phys = pmm_alloc(pages = HEAP_MIN / PAGE_SIZE, 1);
	if (!phys)
		panic("heap: no %llu KiB run for the heap", (unsigned long long)(pages * 4));
	heap_start = heap_end = (char *)(uintptr_t)phys;
	heap_limit = heap_start + pages * PAGE_SIZE;
}

size_t heap_size(void) { return (size_t)(heap_limit - heap_start); }
size_t heap_used(void) { return (size_t)(heap_end - heap_start); }

void *sbrk(ptrdiff_t incr)
{
	char *old = heap_end;
	if (incr > heap_limit - heap_end || incr < heap_start - heap_end) {
		errno = ENOMEM;
		return (void *)-1;
	}
	heap_end += incr;
	return old;
}

_READ_WRITE_RETURN_TYPE write(int fd, const void *buf, size_t len)
{
	if (fd != 1 && fd != 2) {
		errno = EBADF;
		return -1;
	}
	serial_write(buf, len);
	return (_READ_WRITE_RETURN_TYPE)len;
}

_READ_WRITE_RETURN_TYPE read(int fd, void *buf, size_t len)
{
	if (fd != 0) {
		errno = EBADF;
		return -1;
	}
	if (len == 0)
		return 0;
	char *line = buf;
	int n = serial_readline(line, len, 0);
	if (n >= 0 && (size_t)n + 1 < len)
		line[n++] = '\n';
	return n;
}

int close(int fd)
{
	(void)fd;
	errno = EBADF;
	return -1;
}

int fstat(int fd, struct stat *st)
{
	if (fd < 0 || fd > 2) {
		errno = EBADF;
		return -1;
	}
	st->st_mode = S_IFCHR;
	return 0;
}

int isatty(int fd) { return fd >= 0 && fd <= 2; }

off_t lseek(int fd, off_t off, int whence)
{
	(void)fd, (void)off, (void)whence;
	errno = ESPIPE;
	return -1;
}

int open(const char *path, int flags, ...)
{
	(void)path, (void)flags;
	errno = ENOENT;
	return -1;
}

pid_t getpid(void) { return 1; }

int kill(pid_t pid, int sig)
{
	(void)pid, (void)sig;
	errno = EINVAL;
	return -1;
}

void _exit(int status)
{
	qemu_exit(status == 0);
}

int gettimeofday(struct timeval *tv, void *tz)
{
	(void)tz;
	uint64_t ns = clock_ns();
	tv->tv_sec = (time_t)(ns / 1000000000ull);
	tv->tv_usec = (suseconds_t)(ns % 1000000000ull / 1000);
	return 0;
}

clock_t times(struct tms *t)
{
	clock_t c = (clock_t)ticks();
	t->tms_utime = c;
	t->tms_stime = t->tms_cutime = t->tms_cstime = 0;
	return c;
}

int unlink(const char *path)
{
	(void)path;
	errno = ENOENT;
	return -1;
}

int link(const char *a, const char *b)
{
	(void)a, (void)b;
	errno = EMLINK;
	return -1;
}

pid_t fork(void)
{
	errno = EAGAIN;
	return -1;
}

int execve(const char *name, char *const argv[], char *const env[])
{
	(void)name, (void)argv, (void)env;
	errno = ENOMEM;
	return -1;
}

pid_t wait(int *status)
{
	(void)status;
	errno = ECHILD;
	return -1;
}
