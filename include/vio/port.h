/*
 * The port: everything the vio library needs from the kernel that embeds it.
 *
 * vio never touches the machine directly except through MMIO pointers this port handed out.
 * An embedding kernel fills one `struct vio_port` (function pointers plus an opaque `ctx`
 * passed back to every call) and gives it to the library at init. docs/porting.md walks
 * through writing one; src/kernel/vio_port.c is ours and tests/host/fake_port.c the one the
 * host unit tests use.
 *
 * Concurrency contract (the library takes no locks and never sleeps):
 *   - One caller at a time per device and per queue. If the kernel calls into the same
 *     device from an interrupt handler and from thread context, it must keep them apart
 *     itself (for example by disabling interrupts around the thread-context call).
 *   - Calls marked "IRQ-safe" in the headers may run in an interrupt handler; the port
 *     members they use (now_ns, log, the MMIO pointers) must then be IRQ-safe too.
 *   - Different devices are independent and need no mutual exclusion.
 * On a multiprocessor "one caller at a time" spans CPUs: an interrupt handler on one CPU
 * and a thread on another are two callers. docs/porting.md (Concurrency) shows the locking.
 */
#ifndef VIO_PORT_H
#define VIO_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vio_log_level {
	VIO_LOG_ERR = 0,  /* a device broke a rule or an operation failed */
	VIO_LOG_WARN = 1, /* something degraded (fell back to a slower mode) */
	VIO_LOG_INFO = 2, /* one line per device brought up */
	VIO_LOG_DEBUG = 3 /* register-level tracing */
};

/* An interrupt handler the library registers through the port. Runs in interrupt context. */
typedef void (*vio_irq_handler)(void *arg);

struct vio_port {
	void *ctx; /* passed back unchanged as the first argument of every member */

	/*
	 * DMA memory. dma_alloc returns `bytes` (rounded up to 4 KiB pages) of zeroed,
	 * physically contiguous, 4 KiB-aligned memory the device can read and write, mapped
	 * like the rest of RAM (normal write-back cacheable): vio requires DMA-coherent memory
	 * (include/vio/barrier.h) and has no cache-maintenance hooks; on a machine whose
	 * devices are not coherent, map DMA memory uncached. It stores the physical address in
	 * *phys. NULL when there is not enough. dma_free gives back exactly one earlier
	 * allocation. Not called from interrupt handlers.
	 */
	void *(*dma_alloc)(void *ctx, size_t bytes, uint64_t *phys);
	void (*dma_free)(void *ctx, void *virt, size_t bytes);

	/*
	 * Private memory: vio's own bookkeeping (cookies, in-flight flags, free lists, request
	 * pointers, page lists), which the device must never be able to write. Hand out memory
	 * that is not shared with the device: ordinary kernel heap, and in a confidential guest
	 * or behind an IOMMU, memory not mapped for the device. priv_alloc returns `bytes` of
	 * zeroed memory aligned to at least 8 bytes, not necessarily physically contiguous, or
	 * NULL when there is not enough; priv_free gives back exactly one earlier allocation.
	 * Not called from interrupt handlers.
	 * Optional: with both NULL, vio takes this memory from dma_alloc instead. That is sound
	 * only when a device cannot write memory it was not given (docs/design.md, threat
	 * model A), not in a confidential guest or behind an IOMMU (model B).
	 */
	void *(*priv_alloc)(void *ctx, size_t bytes);
	void (*priv_free)(void *ctx, void *p, size_t bytes);

	/*
	 * The physical (bus) address of a buffer the caller posts to a device. The buffer is
	 * in memory the device can reach. Must be IRQ-safe (called by vio_vq_add).
	 */
	uint64_t (*virt_to_phys)(void *ctx, const void *virt);

	/*
	 * Map `len` bytes of device memory at physical address `phys` (anywhere in the 64-bit
	 * space, not necessarily page aligned) uncached: UC on x86 (never write-combining),
	 * Device-nGnRE on arm64, an I/O region on RISC-V. Return a pointer to `phys`.
	 * NULL when it cannot be mapped. Mappings are never removed.
	 */
	volatile void *(*map_mmio)(void *ctx, uint64_t phys, size_t len);

	/*
	 * Port I/O: x86 only (in/out). NULL elsewhere, and then legacy virtio-PCI devices and
	 * PCI config mechanism #1 are unavailable (PCI needs ECAM). A kernel that reaches a PCI
	 * host bridge's I/O space through a memory window may implement these over it.
	 */
	uint8_t (*inb)(void *ctx, uint16_t port);
	uint16_t (*inw)(void *ctx, uint16_t port);
	uint32_t (*inl)(void *ctx, uint16_t port);
	void (*outb)(void *ctx, uint16_t port, uint8_t val);
	void (*outw)(void *ctx, uint16_t port, uint16_t val);
	void (*outl)(void *ctx, uint16_t port, uint32_t val);

	/*
	 * Monotonic nanoseconds since some fixed point. IRQ-safe. Used only for timeouts,
	 * deadlines and rate limits (a device reset, blocking reads and writes, log lines per
	 * second, how often a polled device's status is read), and as the last-resort seed of
	 * virtio-net's random MAC. A port without a clock may pass a counter that advances on
	 * every call, so every wait ends; timeouts then count calls rather than time (advance it
	 * by roughly what one poll takes), and give net a mac_seed or get_entropy.
	 * The port may call drivers with interrupts masked: no driver call spins on this clock
	 * for longer than 1 ms without returning or calling its opts.wait (docs/design.md 3),
	 * but the reset wait of init and fini and vio_balloon_report_free.
	 */
	uint64_t (*now_ns)(void *ctx);
	/* Busy-wait at least `us` microseconds. Works with interrupts disabled. */
	void (*delay_us)(void *ctx, uint32_t us);

	/* One finished log line, without a trailing newline. IRQ-safe. */
	void (*log)(void *ctx, enum vio_log_level level, const char *line);

	/*
	 * Optional: interrupts. Leave NULL to run every device by polling. PCI devices use
	 * MSI-X (msix_alloc/msix_free), else INTx (intx_attach); virtio-mmio devices use
	 * platform_irq_attach. There is no detach: a line handler stays attached for the
	 * device's life, so the kernel keeps that struct vio_dev alive.
	 *
	 * msix_alloc reserves one CPU interrupt vector that calls handler(arg) and returns the
	 * MSI message (address, data) a device must write to raise it; 0 or a negative
	 * vio_err. msix_free releases it (by the same address/data).
	 */
	int (*msix_alloc)(void *ctx, vio_irq_handler handler, void *arg, uint64_t *msg_addr,
			  uint32_t *msg_data);
	void (*msix_free)(void *ctx, uint64_t msg_addr, uint32_t msg_data);
	/*
	 * Optional (NULL: always yes). Asked before the library programs an MSI-X table entry
	 * unmasked, whenever it sets up a device's interrupts (at init, and again after a
	 * reset): may this message be sent now? A port that masked a vector because it stormed
	 * says no until its back-off is over, so that a re-setup does not silently undo that
	 * mask. The entry then stays masked (the device's queues behind it are served by
	 * polling) and unmasking it later is the port's to do. Not called in IRQ context.
	 */
	bool (*msix_may_unmask)(void *ctx, uint64_t msg_addr, uint32_t msg_data);

	/*
	 * intx_attach adds handler(arg) to the handlers of the legacy interrupt a PCI function
	 * raises on `pin` (1 = INTA# .. 4 = INTD#; `line` is the firmware's Interrupt Line
	 * register). The line may be shared and is level-triggered: every handler is called
	 * and each must ack its own device. 0 or a negative vio_err.
	 */
	int (*intx_attach)(void *ctx, uint16_t segment, uint8_t bus, uint8_t dev, uint8_t fn,
			   uint8_t pin, uint8_t line, vio_irq_handler handler, void *arg);

	/*
	 * platform_irq_attach adds handler(arg) to the handlers of platform interrupt `irq`: a
	 * line wired to the interrupt controller rather than found through PCI, such as a
	 * virtio-mmio device's. `irq` is the number the kernel found the device with (device
	 * tree `interrupts`, ACPI _CRS, Linux's virtio_mmio.device=<size>@<addr>:<irq>), in
	 * the platform's own numbering: an IOAPIC GSI on x86, a PLIC source on RISC-V, a GIC
	 * INTID on Arm; all may exceed 255. Treat the line as level-triggered and possibly
	 * shared: every handler is called and each acks its own device. The library never
	 * passes VIO_NO_IRQ. 0 or a negative vio_err.
	 */
	int (*platform_irq_attach)(void *ctx, uint32_t irq, vio_irq_handler handler, void *arg);
};

/* "No platform interrupt line" (vio_mmio_probe of a device the kernel knows no line for). */
#define VIO_NO_IRQ 0xffffffffu

#endif
