/*
 * virtio-scsi: a SCSI host adapter (virtio device ID 8, virtio 1.2 section 5.6) and a small
 * SCSI layer over it: find the logical units, learn their size, read, write, flush.
 *
 * Context: no interrupts are needed and no callback runs in an interrupt handler. Commands
 * are synchronous: each posts one request and polls the first request queue until the
 * device answers or opts.timeout_ns passes, calling opts.wait every VIO_SCSI_SPIN_NS (a
 * kernel that called with interrupts off lets them in there). Events (hot-plug, parameter
 * changes) are reaped by vio_scsi_poll, which calls opts.on_event in the caller's context.
 *
 *	struct vio_scsi s;                           caller-owned, like the vio_dev
 *	vio_scsi_init(&s, &dev, &opts);              queues, config, events posted
 *	vio_scsi_scan(&s);                           REPORT LUNS per target: s.luns[0 .. n_luns)
 *	vio_scsi_read(&s, 0, lba, blocks, buf);      READ(10) or READ(16)
 *	vio_scsi_poll(&s);                           events; on_event; a late answer reaped
 *
 * The device and every target behind it are untrusted: a response is checked (response
 * code, sense_len within sense_size, residual within the transfer, status) before anything
 * from it is believed, and data reaches the caller's buffer only up to the bytes the device
 * says it moved. Data goes through the driver's own DMA pages (one page each): the caller's
 * buffers need not be reachable by the device.
 *
 * Errors: a SCSI CHECK CONDITION is decoded (fixed or descriptor sense) into s.sense and a
 * named error: MEDIUM ERROR and HARDWARE ERROR -> VIO_EIO, NOT READY -> VIO_EAGAIN,
 * ILLEGAL REQUEST -> VIO_EINVAL, UNIT ATTENTION -> VIO_EAGAIN (the SCSI layer retries it),
 * DATA PROTECT -> VIO_EROFS, ABORTED COMMAND -> VIO_EIO; vio_scsi_sense_name names the key.
 * A command the device does not answer within opts.timeout_ns is aborted (ABORT TASK, then
 * LOGICAL UNIT RESET on the controlq) and returns VIO_ETIMEDOUT. Until the device gives its
 * buffers back nothing new is posted: a later command first waits VIO_SCSI_TMF_TIMEOUT_NS for
 * them (a paused backend lets go when it runs again), then returns VIO_ETIMEDOUT.
 *
 * Concurrency (include/vio/port.h): no locks; one caller at a time per device.
 *
 * QEMU: -device virtio-scsi-pci,id=scsi0 -drive file=d.img,if=none,id=d0,format=raw
 *       -device scsi-hd,drive=d0,bus=scsi0.0,scsi-id=0,lun=0
 */
#ifndef VIO_SCSI_H
#define VIO_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/spec/virtio_scsi.h>
#include <vio/virtio.h>

/* The largest transfer of one command: its data goes through this many 4 KiB DMA pages. */
#define VIO_SCSI_MAX_PAGES 16u
#define VIO_SCSI_MAX_XFER  (VIO_SCSI_MAX_PAGES * 4096u)
/* Logical units the table keeps (opts.max_luns: 0 means this). */
#ifndef VIO_SCSI_MAX_LUNS
#define VIO_SCSI_MAX_LUNS 16u
#endif
/* Targets vio_scsi_scan asks at most (0 .. max_target, bounded by this). */
#define VIO_SCSI_SCAN_TARGETS 256u
#define VIO_SCSI_TIMEOUT_NS   10000000000ull
#define VIO_SCSI_TMF_TIMEOUT_NS 2000000000ull
#define VIO_SCSI_SPIN_NS      1000000ull
/* eventq buffers kept posted. */
#define VIO_SCSI_EVENTS	      8u
/* UNIT ATTENTION answers a command is retried after. */
#define VIO_SCSI_UA_RETRIES   4

struct vio_scsi;

/* The decoded sense of the last CHECK CONDITION. */
struct vio_scsi_sense {
	uint8_t key;  /* SCSI_SENSE_* */
	uint8_t asc;  /* additional sense code */
	uint8_t ascq; /* ... qualifier */
	bool valid;   /* the device gave sense data in a format vio knows */
};

/* One logical unit vio_scsi_scan found. */
struct vio_scsi_lun {
	uint16_t target;
	uint16_t lun;
	uint8_t type;	  /* SCSI_TYPE_DISK or SCSI_TYPE_CDROM (others are not kept) */
	bool present;	  /* false once the device said it went away (hot-unplug) */
	bool removable;
	bool read_only;	  /* a CD, or a disk whose MODE SENSE says WP */
	bool ready;	  /* TEST UNIT READY passed (a CD without a disc is not) */
	uint32_t block_size; /* bytes per logical block (0 when not ready) */
	uint64_t blocks;     /* logical blocks (READ CAPACITY) */
	bool unmap;	     /* the unit takes UNMAP (VPD page B2, LBPU; SBC 6.6.4) */
	uint32_t unmap_max;  /* blocks per UNMAP descriptor (VPD page B0; 0: no limit given) */
	char vendor[9], product[17]; /* from INQUIRY, trailing spaces cut, printable only */
};

/* An event from the eventq, as on_event receives it. */
struct vio_scsi_event {
	uint32_t event;	 /* VIRTIO_SCSI_T_TRANSPORT_RESET, _PARAM_CHANGE, ... */
	uint32_t reason; /* VIRTIO_SCSI_EVT_RESET_* ; PARAM_CHANGE: ASC | ASCQ << 8 */
	uint16_t target, lun;
	bool missed;	 /* VIRTIO_SCSI_T_EVENTS_MISSED: the device dropped some; rescan */
};

struct vio_scsi_stats {
	uint64_t commands;	/* answered */
	uint64_t check_conditions;
	uint64_t bad_answers;	/* responses that broke the rules: VIO_EPROTO or VIO_EIO */
	uint64_t timeouts;
	uint64_t aborts, lun_resets; /* task management sent after a timeout */
	uint64_t events, bad_events;
	uint64_t bytes_read, bytes_written;
};

struct vio_scsi_opts {
	uint64_t timeout_ns; /* one command's limit (0: VIO_SCSI_TIMEOUT_NS) */
	unsigned max_luns;   /* the LUN table's size (0: VIO_SCSI_MAX_LUNS) */
	/* Optional: called every VIO_SCSI_SPIN_NS while a command waits (see above). */
	void (*wait)(struct vio_scsi *s, void *arg);
	/* Optional: an event arrived (from vio_scsi_poll). A removed LUN is already marked
	 * !present; on a rescan event (or missed events) s->rescan is set: call vio_scsi_scan. */
	void (*on_event)(struct vio_scsi *s, const struct vio_scsi_event *ev, void *arg);
	void *arg;
};

/* A raw command for vio_scsi_command: in, the CDB and at most one data direction; out, the
 * status, residual and (on CHECK CONDITION) s->sense. */
struct vio_scsi_cmd {
	uint16_t target, lun;
	uint8_t cdb[16];
	uint8_t cdb_len;      /* 6, 10, 12 or 16 */
	void *data_in;	      /* len bytes the device may fill, or NULL */
	const void *data_out; /* len bytes for the device, or NULL */
	uint32_t len;	      /* at most VIO_SCSI_MAX_XFER */
	uint8_t status;	      /* SCSI status */
	uint32_t residual;    /* bytes of len not transferred */
};

struct vio_scsi {
	struct vio_dev *dev;
	/* The device's configuration (5.6.4), as read at init. */
	uint32_t num_queues, seg_max, max_sectors, cdb_size, sense_size;
	uint16_t max_target;
	uint32_t max_lun;
	struct vio_scsi_lun *luns; /* n_luns entries found by vio_scsi_scan (private memory) */
	unsigned n_luns;
	bool rescan;		   /* an event asked for vio_scsi_scan */
	struct vio_scsi_sense sense;
	struct vio_scsi_stats stats;

	/* private to virtio_scsi.c */
	struct vio_scsi_opts sc_opts;
	unsigned sc_max_luns;
	struct vio_vq sc_vqs[3]; /* control, event, the first request queue */
	uint8_t *sc_req;	 /* DMA page: request header + CDB at 0, response + sense at 512 */
	uint8_t *sc_ctrl;	 /* DMA page: TMF request at 0, its response byte at 64 */
	uint8_t *sc_events;	 /* DMA page: VIO_SCSI_EVENTS slots of 256 bytes */
	uint8_t *sc_data[VIO_SCSI_MAX_PAGES];
	struct vio_sg sc_sg[2 + VIO_SCSI_MAX_PAGES]; /* the command being posted */
	uint32_t sc_event_len;	 /* bytes posted per event buffer */
	uint64_t sc_id;		 /* the id of the last command sent */
	bool sc_stuck;		 /* a command is still with the device */
	bool sc_ctrl_stuck;	 /* a task management request is still with the device */
};

/* Negotiate (HOTPLUG, CHANGE), read the config, set up the three queues, post the event
 * buffers. VIO_ENODEV (not a SCSI host), VIO_ERANGE (cdb_size below 16 or sense_size out
 * of range), VIO_ENOMEM, or the core's errors. Not IRQ-safe. */
int vio_scsi_init(struct vio_scsi *s, struct vio_dev *dev, const struct vio_scsi_opts *opts);
/* Reset the device and free everything. 0, or VIO_EDEAD (reset not confirmed: the DMA
 * pages are kept). Safe after a failed init and twice. */
int vio_scsi_fini(struct vio_scsi *s);
/* Reap events (logged, then on_event) and re-post their buffers; reap a late answer to a
 * timed-out command. 0 or the device's error. Not IRQ-safe (on_event runs here). */
int vio_scsi_poll(struct vio_scsi *s);

/* Send one command and wait for its answer. 0 (status GOOD); a CHECK CONDITION's error (see
 * the top); VIO_ENODEV (no such target or LUN); VIO_EAGAIN (BUSY, TASK SET FULL, a reset
 * or abort); VIO_EPROTO (a response that breaks the rules); VIO_EIO; VIO_ETIMEDOUT. */
int vio_scsi_command(struct vio_scsi *s, struct vio_scsi_cmd *cmd);

/* Ask targets 0 .. max_target (at most VIO_SCSI_SCAN_TARGETS) for their LUNs (REPORT LUNS,
 * or LUN 0 alone when a target does not know the command), and describe every disk and CD
 * (INQUIRY, TEST UNIT READY, READ CAPACITY, MODE SENSE). Units already in the table keep
 * their index; new ones are added, vanished ones marked !present. Clears s->rescan.
 * Returns the number of present LUNs, or an error. */
int vio_scsi_scan(struct vio_scsi *s);

/* `blocks` logical blocks of LUN index `lun` from `lba` into buf (blocks * block_size
 * bytes), in commands of at most VIO_SCSI_MAX_XFER. 0 or an error; VIO_ENODEV for a LUN
 * that is gone, VIO_EINVAL past the end, VIO_EROFS writing a read-only unit. */
int vio_scsi_read(struct vio_scsi *s, unsigned lun, uint64_t lba, uint32_t blocks, void *buf);
int vio_scsi_write(struct vio_scsi *s, unsigned lun, uint64_t lba, uint32_t blocks,
		   const void *buf);
/* SYNCHRONIZE CACHE(10) over the whole unit. */
int vio_scsi_sync(struct vio_scsi *s, unsigned lun);
/* Tell the unit that blocks [lba, lba + blocks) hold nothing worth keeping (UNMAP, SBC
 * 5.32): a thin-provisioned disk frees them, and reads of them then return zeros or the old
 * data, as the unit says. 0; VIO_ENOTSUP when the unit does not take UNMAP (lun.unmap);
 * VIO_EROFS on a read-only unit; the range errors of vio_scsi_write. */
int vio_scsi_unmap(struct vio_scsi *s, unsigned lun, uint64_t lba, uint64_t blocks);


/* "MEDIUM ERROR", "NOT READY" ...; "SENSE KEY ?" for others. */
const char *vio_scsi_sense_name(uint8_t key);

#endif
