/*
 * klog.c: the kernel log ring. kvprintf appends every line it prints; a crash dump takes
 * the last KLOG_BYTES back out (dump.c). A plain byte ring with a free-running position:
 * appending never fails and never allocates, so a panic path can print through it.
 */
#include <kernel/dump.h>

static char ring[KLOG_BYTES];
static uint64_t head; /* bytes ever appended */

void klog_append(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ring[(head + i) % KLOG_BYTES] = s[i];
	head += n;
}

uint64_t klog_pos(void)
{
	return head;
}

size_t klog_copy(uint64_t from, uint64_t to, char *out, size_t size)
{
	if (to > head)
		to = head;
	if (head > KLOG_BYTES && from < head - KLOG_BYTES)
		from = head - KLOG_BYTES; /* overwritten since */
	size_t n = 0;
	for (uint64_t p = from; p < to && n < size; p++)
		out[n++] = ring[p % KLOG_BYTES];
	return n;
}
