/*
 * A fake virtio device for host tests: it plays the DEVICE side of one ring in host memory,
 * the way QEMU would: a split ring (virtio 1.2 section 2.7), or a packed one (2.8) when the
 * queue is packed (vio_vq_is_packed). The same calls serve both, so a test written against
 * one layout runs on the other; `head` is then the buffer id.
 *
 * It pops available entries, walks their descriptor chains (direct and indirect) checking
 * every rule the spec places on the driver, writes data into the writable buffers, and
 * completes requests in whatever order the test asks. It honours the driver's suppression
 * state (NO_INTERRUPT / used_event) when deciding to interrupt, and produces its own
 * (NO_NOTIFY / avail_event). It counts notifications and interrupts.
 *
 * It can also misbehave on request: fake_vring_push takes any id and len (out of range, not
 * in flight, longer than posted) and fake_vring_set_used_idx moves used->idx anywhere.
 *
 * Works with tests/host/fake_port.c, where physical addresses are virtual addresses.
 */
#ifndef FAKE_VRING_H
#define FAKE_VRING_H

#include <stdbool.h>
#include <stdint.h>
#include <vio/spec/virtio_ring.h>
#include <vio/virtqueue.h>

#define FAKE_VRING_MAX_SEGS 512
#define FAKE_VRING_PACKED_MAX 32768 /* the largest packed queue the fake plays: any */

struct fake_seg {
	uint64_t addr;
	uint32_t len;
	bool write;
};

/* One request as the device sees it after walking the chain. */
struct fake_req {
	uint16_t head;
	bool indirect;
	unsigned n_out, n_in;
	uint32_t out_len, in_len;
	struct fake_seg seg[FAKE_VRING_MAX_SEGS];
};

struct fake_vring {
	struct vio_vq *vq;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t size;
	bool event_idx;
	bool packed;
	struct vring_packed_desc *pdesc;                 /* packed: the descriptor ring */
	struct vring_packed_desc_event *driver_event;    /* packed: the driver's, read here */
	struct vring_packed_desc_event *device_event;    /* packed: ours */

	/* Split: indexes. Packed: free-running slot counts (slot = count % size, wrap counter 1
	 * on even laps), as the driver keeps them. */
	uint16_t last_avail;     /* next available entry the device will pop */
	uint16_t used_idx;       /* next used slot it will write (pushed, maybe not published) */
	uint16_t used_published; /* used->idx as the driver can see it */
	unsigned pk_npending;    /* packed: entries of pk_pending in use */

	bool auto_avail_event; /* EVENT_IDX: after each pop, ask to be notified on the next add */
	bool deliver_irqs;     /* an interrupt calls vio_vq_interrupt(vq) */

	unsigned notifications;   /* times the driver notified (fake_vring_notify) */
	unsigned interrupts;      /* times the device decided to interrupt */
	unsigned irqs_suppressed; /* publishes that the driver asked not to be interrupted for */
	unsigned chain_errors;    /* driver broke a descriptor rule; last_error says which */
	char last_error[160];

	/*
	 * Packed: slots each buffer id took (ids 0 .. size-1), and the used slots pushed but not
	 * flagged yet. Last, and 128 KiB together: attach clears only the ids of the ring it
	 * plays, so that setting a small ring up costs what the ring is, not what any could be.
	 */
	uint16_t pk_ndesc[FAKE_VRING_PACKED_MAX];
	uint16_t pk_pending[FAKE_VRING_PACKED_MAX];
};

/* Attach to the rings of an initialised vq. event_idx: VIRTIO_F_RING_EVENT_IDX negotiated. */
void fake_vring_attach(struct fake_vring *fv, struct vio_vq *vq, bool event_idx);

/* A vio_vq_notify_fn: pass it with arg = the fake_vring to vio_vq_init. Counts. */
void fake_vring_notify(struct vio_vq *vq, void *arg);

/* Entries the driver has published and the device has not popped yet. */
unsigned fake_vring_avail_pending(const struct fake_vring *fv);

/*
 * Pop one published entry into *req, walking and checking its chain. False when none is
 * pending or the chain is malformed (chain_errors counts it, last_error names it).
 */
bool fake_vring_pop(struct fake_vring *fv, struct fake_req *req);

/* Write byte pattern seed, seed+1, ... into every writable segment; returns bytes written. */
uint32_t fake_vring_fill(const struct fake_req *req, uint8_t seed);

/* Copy the readable segments, in order, into buf (at most max bytes); returns bytes copied. */
uint32_t fake_vring_gather(const struct fake_req *req, void *buf, uint32_t max);

/* Write one used element (any id, any len) without publishing it. */
void fake_vring_push(struct fake_vring *fv, uint32_t id, uint32_t len);

/*
 * Publish the pushed elements (release store of used->idx), then decide, as a device must
 * (2.7.7), whether to interrupt: used_event with EVENT_IDX, else NO_INTERRUPT. Returns
 * whether it interrupted.
 */
bool fake_vring_publish(struct fake_vring *fv);

/* push + publish. */
bool fake_vring_complete(struct fake_vring *fv, uint32_t id, uint32_t len);

/* Misbehave: set used->idx to any value (the elements in between are whatever is there).
 * Packed: mark the slots from the used position up to count idx used, ids and lens as they
 * are (at most two laps; a count behind only moves the device's position). */
void fake_vring_set_used_idx(struct fake_vring *fv, uint16_t idx);

/* Packed, misbehaving: write any id, len and flags into the slot of free-running count idx. */
void fake_vring_packed_write(struct fake_vring *fv, uint16_t idx, uint16_t id, uint32_t len,
			     uint16_t flags);
/* Packed: the AVAIL|USED bits that mark a descriptor used at free-running count idx. */
uint16_t fake_vring_packed_used_flags(const struct fake_vring *fv, uint16_t idx);

/* The device's suppression state: VRING_USED_F_NO_NOTIFY, avail_event (packed: the device
 * event structure, DISABLE/ENABLE, or DESC at the slot of free-running count idx). */
void fake_vring_set_no_notify(struct fake_vring *fv, bool on);
void fake_vring_set_avail_event(struct fake_vring *fv, uint16_t idx);

/* The driver's suppression state as the device reads it (packed: the driver event
 * structure's off_wrap, and whether its flags say DISABLE). */
uint16_t fake_vring_used_event(const struct fake_vring *fv);
bool fake_vring_no_interrupt(const struct fake_vring *fv);

#endif
