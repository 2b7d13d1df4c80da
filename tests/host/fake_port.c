/* The host unit tests' vio_port: see fake_port.h. */
#include "fake_port.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <vio/err.h>

#define PAGE 4096u

/*
 * Two caches of memory given back make the fuzz targets faster: single pages for the next
 * one-page dma_alloc (drivers allocate most of their DMA memory a page at a time, a gpu
 * framebuffer hundreds of them), and below-2-GiB regions by size (low_dma_alloc). Both are
 * off under ASan, which must see every free to catch a use after free.
 */
#if defined(__SANITIZE_ADDRESS__)
#define FAKE_CACHES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAKE_CACHES 0
#endif
#endif
#ifndef FAKE_CACHES
#define FAKE_CACHES 1
#endif
#define PAGE_CACHE (FAKE_CACHES ? 512 : 0) /* pages kept */
#define LOW_CACHE (FAKE_CACHES ? 8 : 0)    /* below-2-GiB regions kept */
static void *page_cache[PAGE_CACHE + 1];
static unsigned page_cached;

/* The host tests build the library with VIO_DEBUG: a broken invariant of vio's own aborts. */
void vio_assert_failed(const char *expr, const char *file, unsigned line)
{
	fprintf(stderr, "vio assertion failed: %s (%s:%u)\n", expr, file, line);
	abort();
}

static void dma_track(struct fake_port *fp, void *p, size_t bytes)
{
	/* Past the highest slot in use while there is room (a gpu framebuffer is hundreds of
	 * pages), else the first hole. */
	int i = fp->dma_high;

	if (i == FAKE_PORT_DMA_REGIONS)
		for (i = 0; i < FAKE_PORT_DMA_REGIONS && fp->dma[i].p; i++)
			;
	if (i == FAKE_PORT_DMA_REGIONS) {
		fprintf(stderr, "fake_port: more than %d live DMA allocations\n",
			FAKE_PORT_DMA_REGIONS);
		abort();
	}
	fp->dma[i] = (struct fake_dma_region){p, bytes};
	if (i >= fp->dma_high)
		fp->dma_high = i + 1;
}

/* Forgets the allocation at p; returns its size. */
static size_t dma_untrack(struct fake_port *fp, void *p)
{
	/* Frees come in the order of the allocations (a framebuffer's pages) or the reverse:
	 * the slot after the last one freed, else the newest first. */
	int i = fp->dma_hint;

	if (i >= fp->dma_high || fp->dma[i].p != p)
		for (i = fp->dma_high - 1; i >= 0 && fp->dma[i].p != p; i--)
			;
	if (i < 0) {
		fprintf(stderr, "fake_port: dma_free of %p, which dma_alloc never gave\n", p);
		abort();
	}
	size_t bytes = fp->dma[i].bytes;
	fp->dma[i] = (struct fake_dma_region){0};
	fp->dma_hint = i + 1;
	while (fp->dma_high > 0 && !fp->dma[fp->dma_high - 1].p)
		fp->dma_high--;
	return bytes;
}

bool fake_port_is_dma(const struct fake_port *fp, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (int i = 0; i < fp->dma_high; i++) {
		uintptr_t r = (uintptr_t)fp->dma[i].p;
		if (r && a < r + fp->dma[i].bytes && r < a + (len ? len : 1))
			return true;
	}
	return false;
}

static void *fake_dma_alloc(void *ctx, size_t bytes, uint64_t *phys)
{
	struct fake_port *fp = ctx;
	size_t rounded = (bytes + PAGE - 1) & ~(size_t)(PAGE - 1);

	if (fp->dma_log_count < FAKE_PORT_DMA_LOG)
		fp->dma_log[fp->dma_log_count] = bytes;
	fp->dma_log_count++;
	if (bytes > fp->dma_largest)
		fp->dma_largest = bytes;
	if (fp->dma_limit && bytes > fp->dma_limit &&
	    !(fp->dma_allow && fp->dma_allow(fp->dma_allow_arg, bytes))) {
		fp->dma_refused++;
		return NULL;
	}
	if (fp->dma_fail_after >= 0 && fp->dma_allocs >= fp->dma_fail_after)
		return NULL;
	void *p = rounded <= PAGE && page_cached ? page_cache[--page_cached]
						   : aligned_alloc(PAGE, rounded ? rounded : PAGE);
	if (!p)
		return NULL;
	memset(p, 0, rounded ? rounded : PAGE);
	dma_track(fp, p, rounded ? rounded : PAGE);
	fp->dma_allocs++;
	fp->dma_live_allocs++;
	fp->dma_live_bytes += rounded;
	*phys = (uint64_t)(uintptr_t)p;
	return p;
}

static void fake_dma_free(void *ctx, void *virt, size_t bytes)
{
	struct fake_port *fp = ctx;

	if (!virt)
		return;
	size_t had = dma_untrack(fp, virt);
	fp->dma_live_allocs--;
	fp->dma_live_bytes -= (bytes + PAGE - 1) & ~(size_t)(PAGE - 1);
	if (had == PAGE && page_cached + 1 <= PAGE_CACHE)
		page_cache[page_cached++] = virt;
	else
		free(virt);
}

static void *fake_priv_alloc(void *ctx, size_t bytes)
{
	struct fake_port *fp = ctx;
	void *p = calloc(1, bytes ? bytes : 1);

	if (!p)
		return NULL;
	fp->priv_live_allocs++;
	fp->priv_live_bytes += bytes;
	return p;
}

static void fake_priv_free(void *ctx, void *p, size_t bytes)
{
	struct fake_port *fp = ctx;

	if (!p)
		return;
	fp->priv_live_allocs--;
	fp->priv_live_bytes -= bytes;
	free(p);
}

static uint64_t fake_virt_to_phys(void *ctx, const void *virt)
{
	(void)ctx;
	return (uint64_t)(uintptr_t)virt;
}

static volatile void *fake_map_mmio(void *ctx, uint64_t phys, size_t len)
{
	(void)ctx;
	(void)len;
	return (volatile void *)(uintptr_t)phys;
}

static uint32_t io_in(struct fake_port *fp, uint16_t port, int size)
{
	if (!fp->io_in)
		return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffffu;
	return fp->io_in(fp->io_ctx, port, size);
}

static void io_out(struct fake_port *fp, uint16_t port, int size, uint32_t val)
{
	if (fp->io_out)
		fp->io_out(fp->io_ctx, port, size, val);
}

static uint8_t fake_inb(void *c, uint16_t p) { return (uint8_t)io_in(c, p, 1); }
static uint16_t fake_inw(void *c, uint16_t p) { return (uint16_t)io_in(c, p, 2); }
static uint32_t fake_inl(void *c, uint16_t p) { return io_in(c, p, 4); }
static void fake_outb(void *c, uint16_t p, uint8_t v) { io_out(c, p, 1, v); }
static void fake_outw(void *c, uint16_t p, uint16_t v) { io_out(c, p, 2, v); }
static void fake_outl(void *c, uint16_t p, uint32_t v) { io_out(c, p, 4, v); }

static uint64_t fake_now_ns(void *ctx)
{
	struct fake_port *fp = ctx;
	fp->now += 1000;
	if (fp->on_wait)
		fp->on_wait(fp->on_wait_arg);
	return fp->now;
}

static void fake_delay_us(void *ctx, uint32_t us)
{
	struct fake_port *fp = ctx;
	fp->now += (uint64_t)us * 1000;
	if (fp->on_wait)
		fp->on_wait(fp->on_wait_arg);
}

static void fake_log(void *ctx, enum vio_log_level level, const char *line)
{
	struct fake_port *fp = ctx;

	snprintf(fp->log[fp->log_count % FAKE_PORT_LOG_LINES], sizeof(fp->log[0]), "%s", line);
	fp->log_count++;
	if (getenv("VIO_TEST_VERBOSE"))
		fprintf(stderr, "[vio %d] %s\n", (int)level, line);
}

static int fake_msix_alloc(void *ctx, vio_irq_handler handler, void *arg, uint64_t *addr,
			   uint32_t *data)
{
	struct fake_port *fp = ctx;
	int used = 0;

	for (int i = 0; i < FAKE_PORT_MSIX_MAX; i++)
		used += fp->msix[i].live;
	if (used >= fp->msix_limit)
		return VIO_ENOMEM;
	for (int i = 0; i < FAKE_PORT_MSIX_MAX; i++) {
		if (!fp->msix[i].live) {
			fp->msix[i] = (struct fake_msix){handler, arg, true};
			*addr = 0xfee00000u;
			*data = (uint32_t)i;
			return 0;
		}
	}
	return VIO_ENOMEM;
}

static void fake_msix_free(void *ctx, uint64_t addr, uint32_t data)
{
	struct fake_port *fp = ctx;
	(void)addr;
	if (data < FAKE_PORT_MSIX_MAX)
		fp->msix[data].live = false;
}

static int fake_intx_attach(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
			    uint8_t pin, uint8_t line, vio_irq_handler handler, void *arg)
{
	struct fake_port *fp = ctx;
	(void)seg, (void)bus, (void)dev, (void)fn, (void)pin, (void)line;
	if (fp->intx_count >= 8)
		return VIO_ENOSPC;
	fp->intx_handler[fp->intx_count] = handler;
	fp->intx_arg[fp->intx_count] = arg;
	fp->intx_count++;
	return 0;
}

static int fake_platform_irq_attach(void *ctx, uint32_t irq, vio_irq_handler handler, void *arg)
{
	struct fake_port *fp = ctx;

	if (fp->line_count >= 8)
		return VIO_ENOSPC;
	fp->lines[fp->line_count++] = (struct fake_line){irq, handler, arg};
	return 0;
}

void fake_port_init(struct fake_port *fp)
{
	memset(fp, 0, offsetof(struct fake_port, dma_log));
	fp->dma_fail_after = -1;
	fp->msix_limit = FAKE_PORT_MSIX_MAX;
	fp->port = (struct vio_port){
		.ctx = fp,
		.dma_alloc = fake_dma_alloc,
		.dma_free = fake_dma_free,
		.priv_alloc = fake_priv_alloc,
		.priv_free = fake_priv_free,
		.virt_to_phys = fake_virt_to_phys,
		.map_mmio = fake_map_mmio,
		.inb = fake_inb,
		.inw = fake_inw,
		.inl = fake_inl,
		.outb = fake_outb,
		.outw = fake_outw,
		.outl = fake_outl,
		.now_ns = fake_now_ns,
		.delay_us = fake_delay_us,
		.log = fake_log,
		.msix_alloc = fake_msix_alloc,
		.msix_free = fake_msix_free,
		.intx_attach = fake_intx_attach,
		.platform_irq_attach = fake_platform_irq_attach,
	};
}

/*
 * Below 2 GiB (legacy PCI takes a 32-bit page number). With FAKE_CACHES a few regions
 * given back are kept, by size, for the next allocation of that size, cleared: a fresh
 * mapping per ring, faulted in and unmapped again, was a third of fuzz_pci_transport's time.
 */
static struct {
	void *p;
	size_t bytes;
} low_cache[LOW_CACHE + 1];

static void *low_cache_take(size_t bytes)
{
	const unsigned n = LOW_CACHE;

	for (unsigned i = 0; i < n; i++)
		if (low_cache[i].p && low_cache[i].bytes == bytes) {
			void *p = low_cache[i].p;
			low_cache[i].p = NULL;
			return memset(p, 0, bytes);
		}
	return NULL;
}

static bool low_cache_put(void *p, size_t bytes)
{
	static unsigned evict;
	const unsigned n = LOW_CACHE;
	unsigned i = 0;

	if (!n)
		return false;
	while (i < n && low_cache[i].p)
		i++;
	if (i == n) { /* full: the slots take turns giving theirs back */
		i = evict++ % n;
		munmap(low_cache[i].p, low_cache[i].bytes);
	}
	low_cache[i].p = p;
	low_cache[i].bytes = bytes;
	return true;
}

static void *low_dma_alloc(void *ctx, size_t bytes, uint64_t *phys)
{
	struct fake_port *fp = ctx;
	size_t rounded = (bytes + PAGE - 1) & ~(size_t)(PAGE - 1);
	void *p = low_cache_take(rounded);
	if (!p) {
		p = mmap(NULL, rounded, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
	}
	dma_track(fp, p, rounded);
	fp->dma_allocs++;
	fp->dma_live_allocs++;
	fp->dma_live_bytes += rounded;
	*phys = (uint64_t)(uintptr_t)p;
	return p;
}

static void low_dma_free(void *ctx, void *virt, size_t bytes)
{
	struct fake_port *fp = ctx;
	size_t rounded = (bytes + PAGE - 1) & ~(size_t)(PAGE - 1);
	if (!virt)
		return;
	dma_untrack(fp, virt);
	if (!low_cache_put(virt, rounded))
		munmap(virt, rounded);
	fp->dma_live_allocs--;
	fp->dma_live_bytes -= rounded;
}

void fake_port_low_dma(struct fake_port *fp)
{
	fp->port.dma_alloc = low_dma_alloc;
	fp->port.dma_free = low_dma_free;
}

void fake_port_no_priv(struct fake_port *fp)
{
	fp->port.priv_alloc = NULL;
	fp->port.priv_free = NULL;
}

void fake_port_no_irqs(struct fake_port *fp)
{
	fp->port.msix_alloc = NULL;
	fp->port.msix_free = NULL;
	fp->port.intx_attach = NULL;
	fp->port.platform_irq_attach = NULL;
}

bool fake_port_logged(const struct fake_port *fp, const char *needle)
{
	int n = fp->log_count < FAKE_PORT_LOG_LINES ? fp->log_count : FAKE_PORT_LOG_LINES;
	for (int i = 0; i < n; i++)
		if (strstr(fp->log[i], needle))
			return true;
	return false;
}

void fake_port_fire_msix(struct fake_port *fp, uint32_t data)
{
	if (data < FAKE_PORT_MSIX_MAX && fp->msix[data].live)
		fp->msix[data].handler(fp->msix[data].arg);
}

void fake_port_fire_intx(struct fake_port *fp)
{
	for (int i = 0; i < fp->intx_count; i++)
		fp->intx_handler[i](fp->intx_arg[i]);
}

void fake_port_fire_line(struct fake_port *fp, uint32_t irq)
{
	for (int i = 0; i < fp->line_count; i++)
		if (fp->lines[i].irq == irq)
			fp->lines[i].handler(fp->lines[i].arg);
}
