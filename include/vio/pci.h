/*
 * PCI: configuration space access, bus enumeration, BARs (and assigning them where no
 * firmware did), capabilities and MSI-X.
 *
 * Config space is reached either through x86 configuration mechanism #1 (I/O ports 0xcf8 and
 * 0xcfc; segment 0, 256 bytes per function) or through ECAM (a memory window the firmware
 * reports in the ACPI MCFG table; 4096 bytes per function). Both sit behind the same calls.
 *
 * The caller owns every structure: a `struct vio_pci_bus` per host bridge (segment), and the
 * `struct vio_pci_dev` copies it keeps of the functions it cares about. A dev refers to its
 * bus by pointer, so the bus must outlive it. Nothing here allocates memory.
 *
 * Everything the hardware reports is treated as untrusted: bridge loops, cyclic or
 * out-of-range capability lists and impossible BARs end in an error, never a hang or a crash.
 *
 * Concurrency: config access through mechanism #1 is a two-step (address, then data) port
 * sequence, so two CPUs or an interrupt handler and thread code must not use it at once; the
 * kernel serialises config access (one caller at a time per bus). Only the calls marked
 * IRQ-safe may run in an interrupt handler: they touch no config space.
 */
#ifndef VIO_PCI_H
#define VIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/port.h>

/* An ECAM window (one entry of the ACPI MCFG table). */
struct vio_pci_ecam {
	uint64_t phys;	   /* physical address of bus `bus_start`'s config space */
	uint16_t segment;  /* PCI segment group */
	uint8_t bus_start; /* first bus the window decodes */
	uint8_t bus_end;   /* last bus (inclusive) */
};

/*
 * One address window a host bridge forwards to its bus: bus addresses base..base + size - 1,
 * which the CPU reaches at those addresses plus cpu_offset. A device tree's `ranges` entry
 * gives it (PCI address, CPU address, size), as does an ACPI _CRS descriptor. On PCs and in
 * QEMU virt's memory windows the CPU and the bus agree (cpu_offset 0); virt's I/O window is
 * bus address 0 at CPU address 0x3000000.
 */
struct vio_pci_window {
	uint64_t base;	     /* first bus address */
	uint64_t size;	     /* bytes; 0: the bridge has no such window */
	uint64_t cpu_offset; /* CPU address minus bus address (modulo 2^64) */
};

/* The windows of one host bridge, for vio_pci_assign. */
struct vio_pci_windows {
	struct vio_pci_window io;    /* I/O space, below 4 GiB */
	struct vio_pci_window mem32; /* 32-bit memory: below 4 GiB on the bus */
	struct vio_pci_window mem64; /* 64-bit memory (prefetchable on a PC), for 64-bit BARs */
};

/* One PCI segment: how to reach its config space. Filled by vio_pci_bus_init. */
struct vio_pci_bus {
	const struct vio_port *port;
	bool use_ecam;
	struct vio_pci_ecam ecam;	/* valid when use_ecam */
	volatile uint8_t *ecam_base;	/* ecam.phys mapped, covering bus_start..bus_end */
	struct vio_pci_windows windows; /* set by vio_pci_assign; all zero: bus = CPU address */
};

/* A decoded Base Address Register. size 0 = not implemented (or the upper half of a 64-bit). */
struct vio_pci_bar {
	uint64_t phys;	/* bus address (the I/O port number for I/O BARs) */
	uint64_t size;	/* bytes the BAR decodes, a power of two */
	bool is_io;	/* I/O space, else memory space */
	bool is64;	/* 64-bit memory BAR (occupies this slot and the next) */
	bool prefetch;	/* prefetchable memory */
};

/* MSI-X capability of a function (PCI 3.0 6.8.2). cap == 0 means the function has none. */
struct vio_pci_msix {
	uint8_t cap;		     /* config offset of the MSI-X capability */
	uint16_t table_size;	     /* number of table entries (1..2048) */
	uint8_t table_bar;	     /* BIR: which BAR holds the table */
	uint32_t table_offset;	     /* offset of the table in that BAR */
	uint8_t pba_bar;
	uint32_t pba_offset;
	volatile uint8_t *table;     /* the table mapped, after vio_pci_msix_map */
	bool enabled;		     /* MSI-X Enable set by vio_pci_msix_enable */
};

#define VIO_PCI_MAX_BARS 6

/* One PCI function as found by enumeration. The caller may copy it freely. */
struct vio_pci_dev {
	struct vio_pci_bus *bus;
	uint16_t segment;
	uint8_t busno;
	uint8_t dev; /* 0..31 */
	uint8_t fn;  /* 0..7 */

	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsystem_vendor_id; /* 0 for bridges */
	uint16_t subsystem_id;
	uint8_t class_code;
	uint8_t subclass;
	uint8_t prog_if;
	uint8_t revision;
	uint8_t header_type; /* PCI_HEADER_TYPE_NORMAL/BRIDGE/CARDBUS, multifunction bit removed */
	bool multifunction;

	uint8_t irq_line; /* Interrupt Line as firmware programmed it (0xff = unknown) */
	uint8_t irq_pin;  /* 0 = none, 1..4 = INTA#..INTD# */

	uint8_t secondary_bus;	 /* bridges only */
	uint8_t subordinate_bus; /* bridges only */

	struct vio_pci_bar bars[VIO_PCI_MAX_BARS];
	struct vio_pci_msix msix;
};

/* A capability found by vio_pci_cap_walk. */
struct vio_pci_capref {
	uint8_t id;	/* PCI_CAP_ID_* */
	uint8_t offset; /* where it starts in config space (>= 0x40) */
};

#define VIO_PCI_MAX_CAPS 48 /* (256 - 64) / 4: more than this means the list loops */

/*
 * Prepare `bus` for config access. With `ecam` NULL, use mechanism #1 (needs port->inl/outl;
 * segment 0, buses 0..255). Otherwise map the ECAM window through port->map_mmio (1 MiB per
 * bus). Returns 0, VIO_EINVAL (no port, bus_end < bus_start), VIO_ENOTSUP (no port I/O for
 * mechanism #1) or VIO_ENOMEM (the window could not be mapped). Not IRQ-safe.
 */
int vio_pci_bus_init(struct vio_pci_bus *bus, const struct vio_port *port,
		     const struct vio_pci_ecam *ecam);

/*
 * Raw config access to bus/dev/fn on `bus`, with the width in the name. `off` must be aligned
 * to the width. Reads outside the reachable space (offset beyond 256 with mechanism #1 or
 * 4096 with ECAM, a bus outside the ECAM window, dev > 31, fn > 7) return all ones; such
 * writes are dropped. Not IRQ-safe.
 */
uint8_t vio_pci_bus_read8(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			  uint16_t off);
uint16_t vio_pci_bus_read16(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			    uint16_t off);
uint32_t vio_pci_bus_read32(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			    uint16_t off);
void vio_pci_bus_write8(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			uint16_t off, uint8_t val);
void vio_pci_bus_write16(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			 uint16_t off, uint16_t val);
void vio_pci_bus_write32(const struct vio_pci_bus *bus, uint8_t b, uint8_t d, uint8_t f,
			 uint16_t off, uint32_t val);

/* The same, for a function found by enumeration. */
uint8_t vio_pci_read8(const struct vio_pci_dev *dev, uint16_t off);
uint16_t vio_pci_read16(const struct vio_pci_dev *dev, uint16_t off);
uint32_t vio_pci_read32(const struct vio_pci_dev *dev, uint16_t off);
void vio_pci_write8(const struct vio_pci_dev *dev, uint16_t off, uint8_t val);
void vio_pci_write16(const struct vio_pci_dev *dev, uint16_t off, uint16_t val);
void vio_pci_write32(const struct vio_pci_dev *dev, uint16_t off, uint32_t val);

/* Bytes of config space this function can be reached through: 256 or 4096. */
uint16_t vio_pci_cfg_size(const struct vio_pci_dev *dev);

/* Called once per function found; `dev` is temporary (copy what you keep). */
typedef int (*vio_pci_enum_fn)(struct vio_pci_dev *dev, void *arg);

/*
 * Find every function on the segment: depth first from the lowest bus through PCI-to-PCI
 * bridges (their secondary bus numbers), every function of multi-function devices, then any
 * bus number not reached that way (extra root buses). Each bus is scanned at most once, so a
 * malformed bridge loop ends. For each function the header, BARs (sized: see
 * vio_pci_read_bars) and MSI-X capability are read into a temporary dev and cb(dev, arg) is
 * called. cb returns 0 to go on, > 0 to stop (the count so far is returned), < 0 to abort
 * (that value is returned). Returns the number of functions seen. Not IRQ-safe.
 */
int vio_pci_enumerate(struct vio_pci_bus *bus, vio_pci_enum_fn cb, void *arg);

/*
 * Enumerate into an array: fills up to `max` entries of `out` and returns how many functions
 * exist (which may exceed max). Not IRQ-safe.
 */
int vio_pci_enumerate_into(struct vio_pci_bus *bus, struct vio_pci_dev *out, size_t max);

/*
 * Read the function at b/d/f into *dev (ids, class, header, BARs, interrupt pin/line, MSI-X
 * info). Returns 0 or VIO_ENODEV when no function answers. Not IRQ-safe.
 */
int vio_pci_dev_init(struct vio_pci_dev *dev, struct vio_pci_bus *bus, uint8_t b, uint8_t d,
		     uint8_t f);

/*
 * Decode and size the BARs (6 for a normal header, 2 for a bridge, none for CardBus): each is
 * written with all ones and read back with I/O and memory decoding turned off in COMMAND,
 * then restored, and COMMAND restored. A 64-bit BAR in the last slot is malformed and left
 * empty. Called by vio_pci_dev_init. Not IRQ-safe.
 */
void vio_pci_read_bars(struct vio_pci_dev *dev);

/*
 * True when [offset, offset + len) lies wholly inside `bar`, an implemented memory BAR (the
 * check every range a function reports must pass before it is mapped). IRQ-safe.
 */
bool vio_pci_bar_contains(const struct vio_pci_dev *dev, unsigned bar, uint64_t offset,
			  uint64_t len);

/*
 * Map `len` bytes at `offset` into memory BAR `bar` through port->map_mmio (wherever it is,
 * also above 4 GiB). The BAR holds a bus address: one inside a memory window given to
 * vio_pci_assign is moved by that window's cpu_offset, any other is mapped as it is. Returns
 * the pointer, or NULL when the BAR is missing, is I/O, the range does not fit inside it, or
 * the port cannot map it. Not IRQ-safe.
 */
volatile void *vio_pci_map_bar(const struct vio_pci_dev *dev, unsigned bar, uint64_t offset,
			       uint64_t len);

/*
 * BAR assignment: the work a PC's firmware does before any kernel runs, for a host bridge
 * that no firmware set up (QEMU virt on riscv64, an aarch64 board booted without UEFI). The
 * kernel describes the bridge's windows (from its device tree); vio gives every BAR of every
 * function on the bridge's first bus an address in them, programs the BARs and turns decoding
 * on. Then vio_pci_enumerate finds the BARs set, as on a PC.
 *
 * Each BAR gets a naturally aligned address (PCI 3.0 6.2.5.1: a BAR decodes a power-of-two
 * range aligned to its size), largest BARs first, so that nothing is wasted between them. I/O
 * BARs go in win->io, from bus address 0x1000 up (the ISA ports below are left alone, as on a
 * PC); 32-bit memory BARs in win->mem32; 64-bit memory BARs in win->mem64, or in win->mem32
 * when there is no mem64 window or it is full. A BAR whose size fits no window (a function may
 * claim 2^63 bytes) is logged; its function is left with decoding off and no Interrupt Line,
 * and the others are still assigned.
 *
 * When `intx_line` is given, each function with an INTx pin gets in its Interrupt Line
 * register what intx_line(arg, dev) returns (the interrupt controller input the pin reaches,
 * as a PC BIOS writes the IOAPIC pin), where the port's intx_attach will find it.
 *
 * Bridges are not configured: a PCI-to-PCI bridge on the first bus is logged and left as it
 * is, and the buses behind it stay unnumbered and unreachable. Whatever addresses the BARs of
 * the first bus held before are overwritten. The windows are kept in `bus`, so that
 * vio_pci_map_bar moves bus addresses by their cpu_offset.
 *
 * Returns the number of BARs assigned, VIO_EINVAL (a window wraps past 2^64, or the io or mem32
 * window reaches past 4 GiB) or VIO_ENOSPC (some BAR did not fit: the rest are assigned). Not
 * IRQ-safe; call it once, before any driver uses a function on the bus.
 */
typedef uint8_t (*vio_pci_intx_fn)(void *arg, const struct vio_pci_dev *dev);
int vio_pci_assign(struct vio_pci_bus *bus, const struct vio_pci_windows *win,
		   vio_pci_intx_fn intx_line, void *arg);

/*
 * Set bits in COMMAND (PCI_COMMAND_IO / _MEMORY / _MASTER) and clear those in `clear`.
 * A driver enables the decoding its BARs need and bus mastering before the device DMAs.
 */
void vio_pci_set_command(const struct vio_pci_dev *dev, uint16_t set, uint16_t clear);

/*
 * Walk the capability list into caps[0..max). Stops at a 0 pointer. Returns the number
 * found, or VIO_EPROTO when the list is malformed: a pointer below 0x40, a capability that
 * does not fit in the 256-byte header space, a pointer seen twice (a cycle), or more than
 * VIO_PCI_MAX_CAPS entries. A function without the Capabilities List status bit has none.
 * Never loops more than VIO_PCI_MAX_CAPS times. Not IRQ-safe.
 */
int vio_pci_cap_walk(const struct vio_pci_dev *dev, struct vio_pci_capref *caps, int max);

/*
 * Offset of the first capability with `id`, or VIO_ENODEV (none) / VIO_EPROTO (malformed
 * list). Not IRQ-safe.
 */
int vio_pci_find_cap(const struct vio_pci_dev *dev, uint8_t id);

/*
 * MSI-X (PCI 3.0 6.8.2). vio_pci_dev_init fills dev->msix from the capability; these calls
 * use it. A function must keep MSI-X disabled until its entries are programmed.
 */

/*
 * Validate the table location (BIR names an implemented memory BAR, the table fits inside
 * it) and map it. Returns 0, VIO_ENODEV (no MSI-X), VIO_EPROTO (table outside its BAR) or
 * VIO_ENOMEM (could not map). Not IRQ-safe.
 */
int vio_pci_msix_map(struct vio_pci_dev *dev);

/*
 * Program table entry `entry` with the message (addr, data) and leave it masked or not as
 * `masked` says. Returns 0 or VIO_EINVAL (entry out of range, table not mapped).
 */
int vio_pci_msix_set_entry(struct vio_pci_dev *dev, uint16_t entry, uint64_t addr,
			   uint32_t data, bool masked);

/* Mask or unmask one entry (its Vector Control bit). IRQ-safe. */
void vio_pci_msix_mask_entry(struct vio_pci_dev *dev, uint16_t entry, bool masked);

/*
 * Enable or disable MSI-X in the capability's Message Control. Enabling also sets
 * INTx Disable in COMMAND (a function with MSI-X on must not assert INTx#) and clears the
 * function mask; disabling clears INTx Disable again. Not IRQ-safe.
 */
void vio_pci_msix_enable(struct vio_pci_dev *dev, bool enable);

/* Format "ssss:bb:dd.f" into buf (at least 13 bytes). Returns buf. */
char *vio_pci_bdf(const struct vio_pci_dev *dev, char *buf, size_t size);

/*
 * One lspci-like line: "0000:00:03.0 0200: 1af4:1000 (1af4:0001) rev 00 irq 11 pin A msix 3".
 * Returns the length it wanted (as snprintf).
 */
int vio_pci_describe(const struct vio_pci_dev *dev, char *buf, size_t size);

#endif
