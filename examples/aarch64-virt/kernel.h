/* examples/aarch64-virt: what the kernel's files share. */
#ifndef KERNEL_H
#define KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/port.h>

#define PAGE_SIZE 4096u

/* arch.c: the machine */
void mmu_init(void);
void uart_putc(char c);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ns(void);
void delay_us(uint32_t us);
void gic_init(void);
int irq_attach(uint32_t intid, vio_irq_handler handler, void *arg);
uint64_t irq_count(uint32_t intid);
int msi_alloc(vio_irq_handler handler, void *arg, uint64_t *addr, uint32_t *data);
void msi_free(uint32_t intid);
uint32_t msi_next_intid(void); /* MSIs take INTIDs upward from here */
bool irq_pending(uint32_t intid);
void irq_window(void); /* let pending interrupts in, then mask them again */
void power_off(void) __attribute__((noreturn));

/* mem.c: physically contiguous runs of pages from the RAM after the kernel */
void pages_init(uint64_t ram_end);
void *pages_alloc(size_t n);
void pages_free(void *p, size_t n);

/* vio_port.c: the port (main.c takes the interrupt hooks away to poll) */
extern struct vio_port port;

/* pci.c: the virtio functions behind virt's PCIe host bridge, BARs assigned; or an error */
struct vio_pci_dev;
int pci_find(struct vio_pci_dev **out, int max);

/* sha256.c */
struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
};
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);

/* lib.c */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
int strcmp(const char *a, const char *b);

#endif
