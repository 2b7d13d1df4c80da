/*
 * A vio_port for host unit tests. DMA memory is ordinary heap memory whose "physical address"
 * is its virtual address; map_mmio returns the physical address as a pointer (tests pass the
 * address of a fake register block); port I/O goes to hooks a test installs; time advances
 * by 1 us on every now_ns() call so that every timeout loop ends; log lines are kept.
 */
#ifndef FAKE_PORT_H
#define FAKE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/port.h>

#define FAKE_PORT_LOG_LINES 64
#define FAKE_PORT_MSIX_MAX 64
#define FAKE_PORT_DMA_REGIONS 1024
#define FAKE_PORT_DMA_LOG 1024

struct fake_msix {
	vio_irq_handler handler;
	void *arg;
	bool live;
};

struct fake_port {
	struct vio_port port;

	/* DMA accounting; dma_fail_after >= 0 makes the allocation after that many fail. */
	size_t dma_live_bytes;
	int dma_live_allocs;
	int dma_allocs;
	int dma_fail_after;
	/*
	 * The allocation log: the size of every dma_alloc call in order (the first
	 * FAKE_PORT_DMA_LOG), the largest asked for, and the calls refused. With dma_limit set,
	 * a call for more bytes fails unless dma_allow(dma_allow_arg, bytes) says yes: a port
	 * whose allocator hands out single pages (xv6's kalloc) and the few exceptions it makes.
	 * The sizes are in dma_log, at the end.
	 */
	int dma_log_count;
	size_t dma_largest;
	size_t dma_limit;
	bool (*dma_allow)(void *arg, size_t bytes);
	void *dma_allow_arg;
	int dma_refused;
	/* The live DMA allocations, so tests can ask what a device could reach; the slots from
	 * dma_high on are all free (a fuzz input's scans stop there, not at 1024), and dma_hint
	 * is where dma_free looks first. */
	struct fake_dma_region {
		void *p;
		size_t bytes;
	} dma[FAKE_PORT_DMA_REGIONS];
	int dma_high, dma_hint;

	/* Private (never device-visible) memory accounting. */
	size_t priv_live_bytes;
	int priv_live_allocs;

	uint64_t now;

	/* Called from now_ns() and delay_us(): whenever the library waits, a fake device
	 * model gets to run (complete requests, change config) as real hardware would. */
	void (*on_wait)(void *arg);
	void *on_wait_arg;

	/* Port I/O hooks (size is 1, 2 or 4); unset hooks read all ones and drop writes. */
	void *io_ctx;
	uint32_t (*io_in)(void *io_ctx, uint16_t port, int size);
	void (*io_out)(void *io_ctx, uint16_t port, int size, uint32_t val);

	/* MSI-X vectors handed out: data = index into this table. */
	struct fake_msix msix[FAKE_PORT_MSIX_MAX];
	int msix_limit; /* how many msix_alloc may succeed (default FAKE_PORT_MSIX_MAX) */

	/* INTx handlers attached. */
	vio_irq_handler intx_handler[8];
	void *intx_arg[8];
	int intx_count;

	/* Platform-line handlers attached, with the line each asked for. */
	struct fake_line {
		uint32_t irq;
		vio_irq_handler handler;
		void *arg;
	} lines[8];
	int line_count;

	int log_count; /* total lines logged; the last FAKE_PORT_LOG_LINES are kept in log */

	/*
	 * Last, and not cleared by fake_port_init (18 KiB a fuzz input need not pay for): only
	 * the entries the counts above say were written are ever read.
	 */
	size_t dma_log[FAKE_PORT_DMA_LOG];
	char log[FAKE_PORT_LOG_LINES][160];
};

void fake_port_init(struct fake_port *fp);
/*
 * Take DMA memory from the low 2 GiB (mmap MAP_32BIT). Legacy transports address rings by a
 * 32-bit page frame number, so rings must lie below 2^44; host heap addresses do not.
 */
void fake_port_low_dma(struct fake_port *fp);
/* True when [p, p+len) overlaps memory handed out by dma_alloc, i.e. a device could write it. */
bool fake_port_is_dma(const struct fake_port *fp, const void *p, size_t len);
/* Remove the private allocator so the library falls back to DMA memory for bookkeeping. */
void fake_port_no_priv(struct fake_port *fp);
/* Remove the optional interrupt hooks so the library must poll. */
void fake_port_no_irqs(struct fake_port *fp);
/* True when some kept log line contains `needle`. */
bool fake_port_logged(const struct fake_port *fp, const char *needle);
/* Fire MSI-X vector with message data `data` / every INTx handler / platform line `irq`. */
void fake_port_fire_msix(struct fake_port *fp, uint32_t data);
void fake_port_fire_intx(struct fake_port *fp);
void fake_port_fire_line(struct fake_port *fp, uint32_t irq);

#endif
