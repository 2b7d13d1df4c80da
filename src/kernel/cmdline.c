/*
 * cmdline.c: the kernel command line, space-separated key=value words.
 *   vio.mode=shell|test|bench   what to do after boot (default shell)
 *   vio.log=err|warn|info|debug how much the vio library logs (default info)
 * Tests add their own keys (vio.fault=..., see selftest.c; vio.test.intx_line=, see
 * vio_port.c). virtio_mmio.device=, vio.irq= and vio.ring= are read where devices are found
 * (mmio_probe.c, devices.c).
 */
#include <kernel/kernel.h>
#include <string.h>

enum kmode kernel_mode = MODE_SHELL;
int kernel_log_level = 2; /* VIO_LOG_INFO */

bool cmdline_get(const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = boot.cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		const char *word = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - word) > klen && !strncmp(word, key, klen) && word[klen] == '=') {
			size_t n = (size_t)(p - word) - klen - 1;
			if (n >= size) {
				/* A cut value could still look valid (and mean something else). */
				kprintf("vio: %s= is %zu characters long, more than the %zu this "
					"kernel reads: ignored\n", key, n, size - 1);
				return false;
			}
			memcpy(buf, word + klen + 1, n);
			buf[n] = '\0';
			return true;
		}
	}
	return false;
}

int cmdline_next(const char *key, const char **pos, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = *pos ? *pos : boot.cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		const char *word = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - word) > klen && !strncmp(word, key, klen) && word[klen] == '=') {
			size_t len = (size_t)(p - word) - klen - 1, n = len < size ? len : size - 1;
			memcpy(buf, word + klen + 1, n);
			buf[n] = '\0';
			*pos = p;
			return (int)len;
		}
	}
	*pos = p;
	return -1;
}
