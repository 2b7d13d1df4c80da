/*
 * A fake PCI segment for host tests: functions with 4 KiB config spaces, BARs that answer
 * sizing writes like hardware (all ones reads back the size mask), mechanism #1 through the
 * fake port's I/O hooks (ports 0xcf8/0xcfc), I/O BARs routed to a per-function handler, and
 * an ECAM image (plain memory) built from the same functions.
 */
#ifndef FAKE_PCI_H
#define FAKE_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_port.h"

#define FAKE_PCI_MAX_FNS 16

struct fake_pci_fn;

/* Hooks a fake device installs on its function. */
struct fake_pci_hooks {
	void *ctx;
	/* Called before a config read of [off, off+size): may refresh fn->cfg. */
	void (*cfg_before_read)(void *ctx, struct fake_pci_fn *fn, uint16_t off, int size);
	/* Called after a config write landed in fn->cfg. */
	void (*cfg_after_write)(void *ctx, struct fake_pci_fn *fn, uint16_t off, int size);
	/* Port I/O inside one of the function's I/O BARs. */
	uint32_t (*io_read)(void *ctx, int bar, uint32_t off, int size);
	void (*io_write)(void *ctx, int bar, uint32_t off, int size, uint32_t val);
};

struct fake_pci_fn {
	bool present;
	uint8_t bus, dev, fn;
	uint8_t cfg[4096];
	uint64_t bar_size[6];	 /* 0 = unimplemented; for a 64-bit BAR, in the low slot */
	bool bar_upper[6];	 /* this slot is the high half of the previous 64-bit BAR */
	bool sized_while_decoding; /* a BAR got all ones while COMMAND decoding was on */
	bool moved_while_decoding; /* a BAR got an address while COMMAND decoding was on */
	int bar_writes;
	struct fake_pci_hooks hooks;
};

struct fake_pci {
	struct fake_port *fp;
	uint32_t cf8;
	struct fake_pci_fn fns[FAKE_PCI_MAX_FNS];
	int nfns;
	uint8_t *ecam; /* fake_pci_build_ecam */
	size_t ecam_len;
};

/* Attach to the fake port's I/O hooks. */
void fake_pci_init(struct fake_pci *pci, struct fake_port *fp);
void fake_pci_free(struct fake_pci *pci);

/* Add a function with a type 0 (or, with fake_pci_make_bridge, type 1) header. */
struct fake_pci_fn *fake_pci_add(struct fake_pci *pci, uint8_t bus, uint8_t dev, uint8_t fn,
				 uint16_t vendor, uint16_t device);
/* Make it a PCI-to-PCI bridge to `secondary`..`subordinate`. */
void fake_pci_make_bridge(struct fake_pci_fn *f, uint8_t secondary, uint8_t subordinate);
/* Set the multifunction bit in Header Type. */
void fake_pci_set_multifunction(struct fake_pci_fn *f);

/* BAR flag sets for fake_pci_set_bar. */
#define FAKE_BAR_IO 0x1
#define FAKE_BAR_MEM32 0x0
#define FAKE_BAR_MEM64 0x4
#define FAKE_BAR_PREFETCH 0x8
/* Give BAR i an address and a size (a power of two); 64-bit BARs also use slot i + 1. */
void fake_pci_set_bar(struct fake_pci_fn *f, int i, uint64_t phys, uint64_t size,
		      uint32_t flags);

/* Config space pokes for building headers and capability lists. */
void fake_pci_w8(struct fake_pci_fn *f, uint16_t off, uint8_t v);
void fake_pci_w16(struct fake_pci_fn *f, uint16_t off, uint16_t v);
void fake_pci_w32(struct fake_pci_fn *f, uint16_t off, uint32_t v);
uint16_t fake_pci_r16(const struct fake_pci_fn *f, uint16_t off);
/* Append a capability of `len` bytes (id, next filled in) at `off`; links it last. */
void fake_pci_add_cap(struct fake_pci_fn *f, uint8_t off, uint8_t id, uint8_t len);

/* Copy every function into an ECAM image covering buses 0..last_bus. */
void fake_pci_build_ecam(struct fake_pci *pci, uint8_t last_bus);

#endif
