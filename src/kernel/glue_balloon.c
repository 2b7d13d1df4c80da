/*
 * glue_balloon.c: what this kernel does for a virtio memory balloon (see
 * include/vio/balloon.h).
 *
 * The balloon's pages come from, and go back to, the kernel's page allocator one at a time.
 * The driver keeps the PFNs; the kernel only counts what it lent (pmm_free_pages() goes
 * down by every page the balloon holds, which `mem` shows). The driver asks for its work
 * from an interrupt (on_wake) and balloon_service, from devices_poll, does it. The
 * balloon also hooks the page allocator's out-of-memory path (pmm_set_oom_handler) so that,
 * with DEFLATE_ON_OOM, an allocation that would fail gets balloon pages instead.
 *
 * The driver takes no locks and must not be re-entered, and pmm_alloc may call back into it
 * (the OOM handler below). `busy` is set around every call into a balloon so that an
 * allocation made from inside the driver (page_take, or a bookkeeping page from
 * port->priv_alloc) fails plainly instead of deflating the balloon that is asking.
 *
 *   ./run-qemu.sh -- -device virtio-balloon-pci,deflate-on-oom=on
 *   then in the QEMU monitor (Ctrl-A C): balloon 256    and at the shell: mem, balloon
 */
#include <kernel/kernel.h>
#include <kernel/mm.h>
#include <kernel/timer.h>
#include <kernel/trap.h>
#include <vio/err.h>

#include "glue.h"

struct kballoon kballoons[MAX_PER_DRIVER];

/* Extra pages deflated on OOM beyond the request, as Linux does (VIRTIO_BALLOON_OOM_NR_PAGES):
 * one host round trip per 1 MiB rather than per page. */
#define BALLOON_OOM_PAGES 256
#define BALLOON_TICK_NS	  1000000000ull

static int balloon_page_take(struct vio_balloon *b, uint32_t *pfn, void *arg)
{
	(void)b;
	(void)arg;
	uint64_t pa = pmm_alloc(1, 1);
	if (!pa)
		return VIO_ENOMEM;
	if (pa / PAGE_SIZE > UINT32_MAX) { /* the spec's PFNs are 32 bits: not this page */
		pmm_free(pa, 1);
		return VIO_ENOMEM;
	}
	*pfn = (uint32_t)(pa / PAGE_SIZE);
	return 0;
}

static void balloon_page_give(struct vio_balloon *b, uint32_t pfn, void *arg)
{
	(void)b;
	(void)arg;
	pmm_free((uint64_t)pfn * PAGE_SIZE, 1);
}

/*
 * What the host sees in `guest-stats`. Only what is true: this kernel has no swap, no
 * demand paging and no page cache, so those counters are honestly zero, and memory that is
 * free is all the memory a new program could get.
 */
static unsigned balloon_stats(struct vio_balloon *b, struct vio_balloon_stat_val *out,
			      unsigned max, void *arg)
{
	(void)b;
	(void)arg;
	const uint64_t free = pmm_free_pages() * PAGE_SIZE;
	const struct vio_balloon_stat_val vals[] = {
		{VIRTIO_BALLOON_S_SWAP_IN, 0},	   {VIRTIO_BALLOON_S_SWAP_OUT, 0},
		{VIRTIO_BALLOON_S_MAJFLT, 0},	   {VIRTIO_BALLOON_S_MINFLT, 0},
		{VIRTIO_BALLOON_S_MEMFREE, free},
		{VIRTIO_BALLOON_S_MEMTOT, pmm_total_pages() * PAGE_SIZE},
		{VIRTIO_BALLOON_S_AVAIL, free},	   {VIRTIO_BALLOON_S_CACHES, 0},
	};
	unsigned n = 0;
	for (; n < ARRAY_SIZE(vals) && n < max; n++)
		out[n] = vals[n];
	return n;
}

/* The floor under the host's target (vio_balloon_opts.free_pages): what pmm has free now. */
static uint64_t balloon_free_pages(struct vio_balloon *b, void *arg)
{
	(void)b;
	(void)arg;
	return pmm_free_pages();
}

/* IRQ context: a new target or a stats request. devices_poll does the work. */
static void balloon_wake(struct vio_balloon *b, void *arg)
{
	(void)b;
	((struct kballoon *)arg)->woken = true;
}

struct vio_balloon_opts balloon_opts(int unit)
{
	return (struct vio_balloon_opts){
	    .page_take = balloon_page_take,
	    .page_give = balloon_page_give,
	    .guest_stats = balloon_stats,
	    .on_wake = balloon_wake,
	    .arg = &kballoons[unit],
	    .free_pages = balloon_free_pages,
	};
}

/*
 * One bounded step (at most VIO_BALLOON_BATCHES_PER_POLL batches) when the host asked for
 * something, when the driver has work, or once a second anyway: after the allocator ran
 * short the driver waits VIO_BALLOON_RETRY_NS, and only a later poll notices that time is up.
 */
void balloon_service(int i)
{
	struct vio_balloon *b = &balloons[i];
	struct kballoon *kb = &kballoons[i];
	uint64_t t = clock_ns();

	if (kb->stopped || kb->busy)
		return;
	if (!kb->woken && !vio_balloon_pending(b) && t < kb->next_poll)
		return;
	kb->woken = false;
	kb->next_poll = t + BALLOON_TICK_NS;
	kb->busy = true;
	int err = vio_balloon_poll(b);
	kb->busy = false;
	if (err < 0) {
		kb->stopped = true;
		kprintf("balloon%d: stopped (%s), holding %u pages until shutdown\n", i,
			vio_strerror(err), vio_balloon_actual(b));
	}
}

/*
 * pmm's out-of-memory handler: give back at least what was asked for (plus a little, see
 * BALLOON_OOM_PAGES) from balloons that negotiated DEFLATE_ON_OOM. Never from an interrupt
 * handler (the driver may be mid-call underneath) and never from a balloon that is itself
 * the caller (busy).
 */
bool balloon_oom(size_t npages)
{
	uint64_t want = npages + BALLOON_OOM_PAGES;
	bool freed = false;

	if (in_interrupt())
		return false;
	for (int i = 0; i < n_balloon && want; i++) {
		struct vio_balloon *b = &balloons[i];
		struct kballoon *kb = &kballoons[i];
		if (kb->busy || kb->stopped || !b->oom || !vio_balloon_actual(b))
			continue;
		/*
		 * The driver waits for the host at most VIO_BALLOON_SPIN_NS (1 ms, masked), then
		 * says VIO_EAGAIN while the host holds the request. An allocation made with
		 * interrupts on may wait: ask again, interrupts let in between, until the
		 * driver's own timeout ends it. One made with them off gets what came back.
		 */
		bool may_wait = dev_may_wait();
		int got;
		kb->busy = true;
		do
			got = DEV_CALL(vio_balloon_deflate_for_oom(
			    b, want > UINT32_MAX ? UINT32_MAX : (uint32_t)want));
		while (got == VIO_EAGAIN && may_wait);
		kb->busy = false;
		if (got > 0) {
			freed = true;
			want -= (uint64_t)got < want ? (uint64_t)got : want;
		}
	}
	return freed;
}

uint64_t balloon_pages_held(void)
{
	uint64_t held = 0;
	for (int i = 0; i < n_balloon; i++)
		held += vio_balloon_actual(&balloons[i]);
	return held;
}
