/*
 * virtio-scsi: a SCSI host adapter (virtio 1.2 section 5.6) and a small SCSI layer: find the
 * disks and CDs behind it, learn their size, read, write, flush. See include/vio/scsi.h and
 * include/vio/spec/virtio_scsi.h.
 *
 * Exercised by QEMU with
 *
 *	-device virtio-scsi-pci,id=scsi0 -drive file=d.img,if=none,id=d0,format=raw
 *	-device scsi-hd,drive=d0,bus=scsi0.0,scsi-id=1,lun=2
 *
 * The adapter is a pipe for SCSI commands: the device passes each CDB to the target and LUN
 * the request names and returns the SCSI status, sense data and a residual. Three queues are
 * used: the controlq for task management (ABORT TASK when a command is not answered in time,
 * LOGICAL UNIT RESET when even that does not bring it back), the eventq, where the device
 * writes hot-plug and parameter-change events into buffers the driver keeps posted, and the
 * first request queue, which carries one command at a time.
 *
 * Each command's header, CDB, response and sense live in one DMA page (request at 0,
 * response at 512), and its data in the driver's own DMA pages: the caller's buffers are
 * copied in before and out after, so the device never sees them, and only the bytes the
 * device says it moved (the transfer length minus the residual, no more than its used
 * length) reach the caller.
 *
 * Follow one request (vio_scsi_read):
 *	vio_scsi_read  checks the unit and the range, splits into commands of at most
 *	               VIO_SCSI_MAX_XFER, builds READ(10), or READ(16) past 2^32 blocks
 *	run            retries a command answered with UNIT ATTENTION
 *	vio_scsi_command  header + CDB, data pages, response: one chain on the request queue;
 *	               waits (opts.wait every VIO_SCSI_SPIN_NS); on timeout, abort_command
 *	answer         the used length, response code, sense_len, residual, SCSI status;
 *	               CHECK CONDITION -> decode_sense -> a named error
 *	vio_scsi_command  copies the data the device moved into the caller's buffer
 */
#include <vio/alloc.h>
#include <vio/scsi.h>

#include "driver.h"

#define PAGE	 4096u
#define RESP_OFF 512u /* the response's place in the request page */
#define TMF_RESP 64u  /* the task management response byte's place in the control page */
#define EVT_SLOT 256u /* bytes per event buffer slot */

_Static_assert(VIO_SCSI_EVENTS * EVT_SLOT <= PAGE, "event slots fit one page");
_Static_assert(VIO_SCSI_MAX_LUNS % 2 == 0, "the scan keeps a bit per entry, 4 * VIO_SCSI_MAX_LUNS");

static const char sc_name[] = "virtio-scsi";

/* --- little-endian fields in DMA memory (virtio), big-endian ones in CDBs (SCSI) ---------- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const volatile uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The 8-byte LUN field of requests (5.6.6.1): 1, target, flat-space LUN, zeros. */
static void put_lun(uint8_t *p, uint16_t target, uint16_t lun)
{
	p[0] = 1;
	p[1] = (uint8_t)target;
	p[2] = (uint8_t)(VIRTIO_SCSI_LUN_FLAT | ((lun >> 8) & 0x3f));
	p[3] = (uint8_t)lun;
	put_le(p + 4, 0, 4);
}

static const struct vio_port *port_of(const struct vio_scsi *s)
{
	return s->dev->port;
}

/* --- waiting ----------------------------------------------------------------------------- */

/* A broken queue or a timeout may be the device asking for a reset (2.1.2): the core says. */
static int device_error(struct vio_scsi *s, int err)
{
	return vio_dev_error(s->dev, err);
}

/* Poll vq for the one answer it has in flight for up to timeout_ns, giving the owner its
 * turn every VIO_SCSI_SPIN_NS: 0, VIO_ETIMEDOUT, or the queue's error. */
static int wait_used(struct vio_scsi *s, struct vio_vq *vq, uint64_t timeout_ns,
		     struct vio_vq_used *u)
{
	const struct vio_port *port = port_of(s);
	uint64_t start = port->now_ns(port->ctx), turn = start;
	int err;

	while ((err = vio_vq_get_used(vq, u)) == VIO_EAGAIN) {
		uint64_t now = port->now_ns(port->ctx);
		if (now - start > timeout_ns)
			return VIO_ETIMEDOUT;
		if (s->sc_opts.wait && now - turn >= VIO_SCSI_SPIN_NS) {
			s->sc_opts.wait(s, s->sc_opts.arg);
			turn = port->now_ns(port->ctx);
		}
		if (port->delay_us)
			port->delay_us(port->ctx, 1);
	}
	return err;
}

/* Take a timed-out command or task management request back if the device has let go of it
 * now (its answer no longer matters). */
static void reap_late(struct vio_scsi *s)
{
	struct vio_vq_used u;

	if (s->sc_stuck && vio_vq_get_used(&s->sc_vqs[2], &u) != VIO_EAGAIN)
		s->sc_stuck = false;
	if (s->sc_ctrl_stuck && vio_vq_get_used(&s->sc_vqs[0], &u) != VIO_EAGAIN)
		s->sc_ctrl_stuck = false;
}

/*
 * A command that timed out is still with the device (nothing is posted over its buffers):
 * give the device VIO_SCSI_TMF_TIMEOUT_NS more to let go of it before the next command.
 * A backend that was only paused (QEMU's blkdebug breakpoint, a host I/O stall) gives it
 * back as soon as it runs again; one that never does costs each later command that long.
 */
static int wait_for_late(struct vio_scsi *s, const struct vio_scsi_cmd *c)
{
	struct vio_vq_used u;

	reap_late(s);
	if (!s->sc_stuck)
		return 0;
	int err = wait_used(s, &s->sc_vqs[2], VIO_SCSI_TMF_TIMEOUT_NS, &u);
	if (err == 0) {
		s->sc_stuck = false;
		return 0;
	}
	if (err == VIO_ETIMEDOUT)
		vio_logf(port_of(s), VIO_LOG_ERR,
			 "%s: command %#x for %u:%u not sent: the device still holds an earlier "
			 "command it never answered",
			 sc_name, c->cdb[0], c->target, c->lun);
	return device_error(s, err);
}

/* --- task management (5.6.6.2) ----------------------------------------------------------- */

static int tmf(struct vio_scsi *s, uint32_t subtype, uint16_t target, uint16_t lun, uint64_t id)
{
	struct vio_vq_used u;
	uint8_t *c = s->sc_ctrl;

	reap_late(s);
	if (s->sc_ctrl_stuck)
		return VIO_ETIMEDOUT;
	put_le(c, VIRTIO_SCSI_T_TMF, 4);
	put_le(c + 4, subtype, 4);
	put_lun(c + 8, target, lun);
	put_le(c + 16, id, 8);
	c[TMF_RESP] = 0xff;
	struct vio_sg sg[2] = {{c, sizeof(struct virtio_scsi_ctrl_tmf)}, {c + TMF_RESP, 1}};
	int err = vio_vq_add(&s->sc_vqs[0], sg, 1, 1, c);
	if (err)
		return device_error(s, err);
	s->sc_ctrl_stuck = true;
	vio_vq_kick(&s->sc_vqs[0]);
	err = wait_used(s, &s->sc_vqs[0], VIO_SCSI_TMF_TIMEOUT_NS, &u);
	if (err)
		return device_error(s, err);
	s->sc_ctrl_stuck = false;
	if (u.len > u.in_len || u.len < 1) {
		s->stats.bad_answers++;
		vio_logf(port_of(s), VIO_LOG_ERR, "%s: task management answer of %u bytes", sc_name,
			 u.len);
		return VIO_EPROTO;
	}
	switch (c[TMF_RESP]) {
	case VIRTIO_SCSI_S_FUNCTION_COMPLETE:
	case VIRTIO_SCSI_S_FUNCTION_SUCCEEDED: return 0;
	case VIRTIO_SCSI_S_FUNCTION_REJECTED: return VIO_ENOTSUP;
	case VIRTIO_SCSI_S_BAD_TARGET:
	case VIRTIO_SCSI_S_INCORRECT_LUN: return VIO_ENODEV;
	default: return VIO_EIO;
	}
}

/*
 * The command with id `id` was not answered in time. Ask the target to abort it; if the
 * device still holds its buffers after that, reset the logical unit. Until the device gives
 * the buffers back (the abort makes it answer ABORTED), nothing new is posted.
 */
static void abort_command(struct vio_scsi *s, uint16_t target, uint16_t lun, uint64_t id)
{
	static const uint32_t steps[] = {VIRTIO_SCSI_T_TMF_ABORT_TASK,
					 VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET};
	struct vio_vq_used u;

	for (unsigned i = 0; i < 2 && s->sc_stuck; i++) {
		if (i == 0)
			s->stats.aborts++;
		else
			s->stats.lun_resets++;
		int err = tmf(s, steps[i], target, lun, id);
		vio_logf(port_of(s), VIO_LOG_WARN, "%s: %s %u:%u: %s", sc_name,
			 i ? "logical unit reset" : "abort task", target, lun,
			 err ? vio_strerror(err) : "done");
		if (err == VIO_ETIMEDOUT || err == VIO_EIO || err == VIO_ENEEDRESET)
			return;
		if (wait_used(s, &s->sc_vqs[2], VIO_SCSI_TMF_TIMEOUT_NS, &u) != VIO_ETIMEDOUT)
			s->sc_stuck = false;
	}
}

/* --- one command ------------------------------------------------------------------------- */

const char *vio_scsi_sense_name(uint8_t key)
{
	switch (key) {
	case SCSI_SENSE_NO_SENSE: return "NO SENSE";
	case SCSI_SENSE_RECOVERED_ERROR: return "RECOVERED ERROR";
	case SCSI_SENSE_NOT_READY: return "NOT READY";
	case SCSI_SENSE_MEDIUM_ERROR: return "MEDIUM ERROR";
	case SCSI_SENSE_HARDWARE_ERROR: return "HARDWARE ERROR";
	case SCSI_SENSE_ILLEGAL_REQUEST: return "ILLEGAL REQUEST";
	case SCSI_SENSE_UNIT_ATTENTION: return "UNIT ATTENTION";
	case SCSI_SENSE_DATA_PROTECT: return "DATA PROTECT";
	case SCSI_SENSE_BLANK_CHECK: return "BLANK CHECK";
	case SCSI_SENSE_ABORTED_COMMAND: return "ABORTED COMMAND";
	case SCSI_SENSE_MISCOMPARE: return "MISCOMPARE";
	default: return "SENSE KEY ?";
	}
}

/* A CHECK CONDITION: decode the sense_len bytes of sense (fixed or descriptor format, SPC
 * 4.5) into s->sense, and name the error. */
static int decode_sense(struct vio_scsi *s, uint32_t sense_len)
{
	uint8_t b[18] = {0};
	uint32_t n = sense_len < sizeof(b) ? sense_len : sizeof(b);

	__builtin_memcpy(b, s->sc_req + RESP_OFF + sizeof(struct virtio_scsi_resp_cmd), n);
	s->sense = (struct vio_scsi_sense){0};
	s->stats.check_conditions++;
	uint8_t code = b[0] & 0x7f;
	if ((code == SCSI_SENSE_FIXED_CURRENT || code == SCSI_SENSE_FIXED_DEFERRED) && n >= 3)
		s->sense = (struct vio_scsi_sense){b[2] & 0xf, b[12], b[13], true};
	else if ((code == SCSI_SENSE_DESC_CURRENT || code == SCSI_SENSE_DESC_DEFERRED) && n >= 4)
		s->sense = (struct vio_scsi_sense){b[1] & 0xf, b[2], b[3], true};
	if (!s->sense.valid)
		return VIO_EIO; /* CHECK CONDITION without sense we can read */
	switch (s->sense.key) {
	case SCSI_SENSE_RECOVERED_ERROR: return 0;
	case SCSI_SENSE_NOT_READY:
	case SCSI_SENSE_UNIT_ATTENTION: return VIO_EAGAIN;
	case SCSI_SENSE_ILLEGAL_REQUEST: return VIO_EINVAL;
	case SCSI_SENSE_DATA_PROTECT: return VIO_EROFS;
	default: return VIO_EIO;
	}
}

static int bad_answer(struct vio_scsi *s, int err, const char *what, uint32_t a, uint32_t b)
{
	s->stats.bad_answers++;
	vio_logf(port_of(s), VIO_LOG_ERR, "%s: bad answer: %s (%u, limit %u)", sc_name, what, a, b);
	return err;
}

/* Check the response to cmd (used length ulen of in_len posted) and take its data. */
static int answer(struct vio_scsi *s, struct vio_scsi_cmd *cmd, uint32_t ulen, uint32_t in_len)
{
	const uint8_t *r = s->sc_req + RESP_OFF;
	uint32_t resp_len = (uint32_t)sizeof(struct virtio_scsi_resp_cmd) + s->sense_size;

	/*
	 * The used length counts the bytes the device wrote (2.7.8). QEMU's virtio-scsi counts
	 * a command's data-out bytes as well, so a write may come back with up to
	 * out_len more; nothing past in_len is read either way.
	 */
	uint32_t out_len = (uint32_t)sizeof(struct virtio_scsi_req_cmd) + s->cdb_size +
			   (cmd->data_out ? cmd->len : 0);
	if (ulen > in_len + (cmd->data_out ? out_len : 0))
		return bad_answer(s, VIO_EIO, "used length past the buffers", ulen, in_len);
	if (ulen > in_len)
		ulen = in_len;
	if (ulen < sizeof(struct virtio_scsi_resp_cmd))
		return bad_answer(s, VIO_EPROTO, "used length below the response", ulen,
				  (uint32_t)sizeof(struct virtio_scsi_resp_cmd));
	uint32_t sense_len = (uint32_t)get_le(r, 4);
	uint32_t residual = (uint32_t)get_le(r + 4, 4);
	uint8_t status = r[10], response = r[11];

	switch (response) {
	case VIRTIO_SCSI_S_OK: break;
	case VIRTIO_SCSI_S_BAD_TARGET:
	case VIRTIO_SCSI_S_INCORRECT_LUN: return VIO_ENODEV;
	case VIRTIO_SCSI_S_BUSY:
	case VIRTIO_SCSI_S_RESET:
	case VIRTIO_SCSI_S_ABORTED: return VIO_EAGAIN;
	case VIRTIO_SCSI_S_TRANSPORT_FAILURE:
	case VIRTIO_SCSI_S_TARGET_FAILURE:
	case VIRTIO_SCSI_S_NEXUS_FAILURE:
	case VIRTIO_SCSI_S_FAILURE: return VIO_EIO;
	default: return bad_answer(s, VIO_EPROTO, "response code", response, 12);
	}
	if (sense_len > s->sense_size)
		return bad_answer(s, VIO_EPROTO, "sense_len past sense_size", sense_len,
				  s->sense_size);
	if (residual > cmd->len)
		return bad_answer(s, VIO_EPROTO, "residual past the transfer", residual, cmd->len);
	uint32_t moved = cmd->len - residual;
	if (cmd->data_in) {
		uint32_t written = ulen > resp_len ? ulen - resp_len : 0;
		if (moved > written)
			return bad_answer(s, VIO_EPROTO, "data moved past what was written", moved,
					  written);
		for (uint32_t off = 0; off < moved; off += PAGE)
			__builtin_memcpy((uint8_t *)cmd->data_in + off, s->sc_data[off / PAGE],
					 moved - off < PAGE ? moved - off : PAGE);
		s->stats.bytes_read += moved;
	} else if (cmd->data_out) {
		s->stats.bytes_written += moved;
	}
	cmd->status = status;
	cmd->residual = residual;
	switch (status) {
	case SCSI_STATUS_GOOD:
	case SCSI_STATUS_CONDITION_MET: return 0;
	case SCSI_STATUS_CHECK_CONDITION: return decode_sense(s, sense_len);
	case SCSI_STATUS_BUSY:
	case SCSI_STATUS_TASK_SET_FULL:
	case SCSI_STATUS_ACA_ACTIVE:
	case SCSI_STATUS_TASK_ABORTED: return VIO_EAGAIN;
	default: return VIO_EIO;
	}
}

int vio_scsi_command(struct vio_scsi *s, struct vio_scsi_cmd *c)
{
	struct vio_sg *sg = s->sc_sg;
	struct vio_vq_used u;
	unsigned n = 0, pages = (c->len + PAGE - 1) / PAGE;

	if (!s->dev)
		return VIO_ENODEV;
	if (c->cdb_len == 0 || c->cdb_len > sizeof(c->cdb) || c->cdb_len > s->cdb_size ||
	    c->len > VIO_SCSI_MAX_XFER || (c->len && !c->data_in == !c->data_out) ||
	    (!c->len && (c->data_in || c->data_out)) || (s->seg_max && pages > s->seg_max))
		return VIO_EINVAL;
	c->status = 0;
	c->residual = 0;
	s->sense = (struct vio_scsi_sense){0};
	int err = wait_for_late(s, c);
	if (err)
		return err;

	uint32_t req_len = (uint32_t)sizeof(struct virtio_scsi_req_cmd) + s->cdb_size;
	uint32_t resp_len = (uint32_t)sizeof(struct virtio_scsi_resp_cmd) + s->sense_size;
	uint8_t *h = s->sc_req;
	__builtin_memset(h, 0, PAGE);
	put_lun(h, c->target, c->lun);
	put_le(h + 8, ++s->sc_id, 8);
	h[16] = VIRTIO_SCSI_S_SIMPLE;
	__builtin_memcpy(h + sizeof(struct virtio_scsi_req_cmd), c->cdb, c->cdb_len);

	/* 5.6.6.1: header and CDB, data-out; then response and sense, data-in. */
	sg[n++] = (struct vio_sg){h, req_len};
	for (uint32_t off = 0; c->data_out && off < c->len; off += PAGE) {
		uint32_t chunk = c->len - off < PAGE ? c->len - off : PAGE;
		__builtin_memcpy(s->sc_data[off / PAGE], (const uint8_t *)c->data_out + off, chunk);
		sg[n++] = (struct vio_sg){s->sc_data[off / PAGE], chunk};
	}
	unsigned n_out = n;
	sg[n++] = (struct vio_sg){h + RESP_OFF, resp_len};
	for (uint32_t off = 0; c->data_in && off < c->len; off += PAGE)
		sg[n++] = (struct vio_sg){s->sc_data[off / PAGE],
					  c->len - off < PAGE ? c->len - off : PAGE};

	err = vio_vq_add(&s->sc_vqs[2], sg, n_out, n - n_out, s);
	if (err)
		return device_error(s, err);
	s->sc_stuck = true;
	vio_vq_kick(&s->sc_vqs[2]);
	err = wait_used(s, &s->sc_vqs[2], s->sc_opts.timeout_ns, &u);
	if (err == VIO_ETIMEDOUT) {
		s->stats.timeouts++;
		vio_logf(port_of(s), VIO_LOG_ERR, "%s: no answer to command %#x for %u:%u", sc_name,
			 c->cdb[0], c->target, c->lun);
		abort_command(s, c->target, c->lun, s->sc_id);
		return device_error(s, VIO_ETIMEDOUT);
	}
	if (err)
		return device_error(s, err);
	s->sc_stuck = false;
	s->stats.commands++;
	return answer(s, c, u.len, u.in_len);
}

/* --- the SCSI layer ---------------------------------------------------------------------- */

/* A command to target:lun, retried while the unit answers UNIT ATTENTION (a reset or a
 * change it reports once per initiator, SAM-5 5.14). */
static int run(struct vio_scsi *s, uint16_t target, uint16_t lun, const uint8_t *cdb,
	       uint8_t cdb_len, void *in, const void *out, uint32_t len, uint32_t *moved)
{
	struct vio_scsi_cmd c = {.target = target, .lun = lun, .cdb_len = cdb_len,
				 .data_in = in, .data_out = out, .len = len};
	int err;

	__builtin_memcpy(c.cdb, cdb, cdb_len);
	for (int i = 0;; i++) {
		err = vio_scsi_command(s, &c);
		if (err != VIO_EAGAIN || !s->sense.valid || c.status != SCSI_STATUS_CHECK_CONDITION ||
		    s->sense.key != SCSI_SENSE_UNIT_ATTENTION || i == VIO_SCSI_UA_RETRIES)
			break;
	}
	if (moved)
		*moved = err ? 0 : len - c.residual;
	return err;
}

/* INQUIRY's text fields: printable ASCII, trailing spaces cut. */
static void ascii(char *dst, const uint8_t *src, unsigned n)
{
	unsigned i;
	for (i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	while (i && dst[i - 1] == ' ')
		i--;
	dst[i] = 0;
}

/* The table entry for target:lun, a new one, or NULL when the table is full. */
static struct vio_scsi_lun *lun_slot(struct vio_scsi *s, uint16_t target, uint16_t lun)
{
	for (unsigned i = 0; i < s->n_luns; i++)
		if (s->luns[i].target == target && s->luns[i].lun == lun)
			return &s->luns[i];
	if (s->n_luns == s->sc_max_luns) {
		vio_logf(port_of(s), VIO_LOG_WARN, "%s: LUN table full: %u:%u left out", sc_name,
			 target, lun);
		return NULL;
	}
	return &s->luns[s->n_luns++];
}

/* READ CAPACITY(10), and (16) when (10) says the unit is too large for it (SBC 5.16). */
static int capacity(struct vio_scsi *s, struct vio_scsi_lun *l)
{
	uint8_t cdb[16] = {SCSI_READ_CAPACITY_10}, b[32];
	uint32_t moved;
	int err = run(s, l->target, l->lun, cdb, 10, b, NULL, 8, &moved);

	if (err)
		return err;
	if (moved < 8)
		return VIO_EPROTO;
	uint64_t last = get_be(b, 4);
	uint32_t bs = (uint32_t)get_be(b + 4, 4);
	if (last == 0xffffffffu) {
		__builtin_memset(cdb, 0, sizeof(cdb));
		cdb[0] = SCSI_SERVICE_ACTION_IN_16;
		cdb[1] = SCSI_SAI_READ_CAPACITY_16;
		put_be(cdb + 10, sizeof(b), 4);
		if ((err = run(s, l->target, l->lun, cdb, 16, b, NULL, sizeof(b), &moved)))
			return err;
		if (moved < 12)
			return VIO_EPROTO;
		last = get_be(b, 8);
		bs = (uint32_t)get_be(b + 8, 4);
	}
	/* A block is 512 bytes to 64 KiB, a power of two; and the count must not wrap. */
	if (bs < 512 || bs > 65536 || (bs & (bs - 1)) || last == UINT64_MAX) {
		vio_logf(port_of(s), VIO_LOG_ERR, "%s: %u:%u: capacity %llu blocks of %u bytes",
			 sc_name, l->target, l->lun, (unsigned long long)last, bs);
		return VIO_ERANGE;
	}
	l->block_size = bs;
	l->blocks = last + 1;
	return 0;
}

/* One VPD page (INQUIRY with EVPD, SPC 6.6) into b[len]: the bytes the unit returned, or 0
 * when it has no such page or the answer is not that page. */
static uint32_t vpd(struct vio_scsi *s, const struct vio_scsi_lun *l, uint8_t page, uint8_t *b,
		    uint8_t len)
{
	uint8_t cdb[16] = {SCSI_INQUIRY, 1, page, 0, len};
	uint32_t moved;

	__builtin_memset(b, 0, len);
	if (run(s, l->target, l->lun, cdb, 6, b, NULL, len, &moved) || moved < 4 || b[1] != page)
		return 0;
	return moved;
}

/* Whether the disk takes UNMAP, and how many blocks one descriptor may name: VPD pages B2
 * (LBPU, SBC 6.6.4) and B0 (MAXIMUM UNMAP LBA COUNT, SBC 6.6.3). A unit without the pages
 * does not. */
static void provisioning(struct vio_scsi *s, struct vio_scsi_lun *l)
{
	uint8_t b[64];

	l->unmap = vpd(s, l, SCSI_VPD_PROVISIONING, b, 8) >= 6 && (b[5] & 0x80);
	if (l->unmap && vpd(s, l, SCSI_VPD_BLOCK_LIMITS, b, sizeof(b)) >= 24)
		l->unmap_max = (uint32_t)get_be(b + 20, 4);
}

/* Describe target:lun if it is a disk or a CD; 0 when it was kept, else why not. */
static int probe(struct vio_scsi *s, uint16_t target, uint16_t lun)
{
	uint8_t cdb[16] = {SCSI_INQUIRY, 0, 0, 0, SCSI_INQUIRY_LEN}, b[SCSI_INQUIRY_LEN] = {0};
	uint32_t moved;
	int err = run(s, target, lun, cdb, 6, b, NULL, SCSI_INQUIRY_LEN, &moved);

	if (err)
		return err;
	uint8_t type = b[0] & 0x1f;
	if (moved < 5 || b[0] >> 5 != SCSI_QUALIFIER_HERE ||
	    (type != SCSI_TYPE_DISK && type != SCSI_TYPE_CDROM))
		return VIO_ENODEV;
	struct vio_scsi_lun *l = lun_slot(s, target, lun);
	if (!l)
		return VIO_ENOSPC;
	*l = (struct vio_scsi_lun){.target = target, .lun = lun, .type = type, .present = true,
				   .removable = b[1] >> 7, .read_only = type == SCSI_TYPE_CDROM};
	if (moved >= 32) {
		ascii(l->vendor, b + 8, 8);
		ascii(l->product, b + 16, 16);
	}
	__builtin_memset(cdb, 0, sizeof(cdb)); /* TEST UNIT READY */
	l->ready = run(s, target, lun, cdb, 6, NULL, NULL, 0, NULL) == 0 && capacity(s, l) == 0;
	if (l->ready && type == SCSI_TYPE_DISK) {
		/* MODE SENSE(6), header only: byte 2 bit 7 is WP (SBC 6.5.1). */
		uint8_t m[4];
		uint8_t ms[16] = {SCSI_MODE_SENSE_6, 0x08, SCSI_MODE_ALL_PAGES, 0, sizeof(m)};
		if (run(s, target, lun, ms, 6, m, NULL, sizeof(m), &moved) == 0 && moved >= 3)
			l->read_only = (m[2] & SCSI_MODE_WP) != 0;
		provisioning(s, l);
	}
	return 0;
}

/* REPORT LUNS of target (SPC 6.33) into luns[max]: how many, or an error. A target that
 * does not know the command has LUN 0 alone. */
#define REPORT_MAX 16u
static int report_luns(struct vio_scsi *s, uint16_t target, uint16_t *luns)
{
	uint8_t cdb[16] = {SCSI_REPORT_LUNS}, b[8 + 8 * REPORT_MAX];
	uint32_t moved;

	put_be(cdb + 6, sizeof(b), 4);
	int err = run(s, target, 0, cdb, 12, b, NULL, sizeof(b), &moved);
	if (err == VIO_EINVAL) {
		luns[0] = 0;
		return 1;
	}
	if (err)
		return err;
	if (moved < 8)
		return VIO_EPROTO;
	uint32_t listed = (uint32_t)get_be(b, 4) / 8, have = (moved - 8) / 8, n = 0;
	for (uint32_t i = 0; i < listed && i < have && i < REPORT_MAX; i++) {
		const uint8_t *e = b + 8 + 8 * i;
		/* Peripheral (00b) or flat (01b) addressing, single level; others are skipped. */
		if ((e[0] >> 6) > 1 || e[2] || e[3] || e[4] || e[5] || e[6] || e[7])
			continue;
		uint16_t lun = (uint16_t)(((e[0] & 0x3f) << 8) | e[1]);
		if ((e[0] >> 6) == 0 && e[0])
			continue; /* peripheral addressing with a bus number */
		if (lun <= s->max_lun)
			luns[n++] = lun;
	}
	return (int)n;
}

int vio_scsi_scan(struct vio_scsi *s)
{
	uint16_t luns[REPORT_MAX];
	uint8_t seen[VIO_SCSI_MAX_LUNS * 4 / 8] = {0}; /* a bit per table entry */
	unsigned targets = s->max_target + 1u, present = 0;

	if (!s->dev)
		return VIO_ENODEV;
	if (targets > VIO_SCSI_SCAN_TARGETS)
		targets = VIO_SCSI_SCAN_TARGETS;
	s->rescan = false;
	for (unsigned t = 0; t < targets; t++) {
		int n = report_luns(s, (uint16_t)t, luns);
		if (n == VIO_ETIMEDOUT || n == VIO_EDEAD || n == VIO_ENEEDRESET)
			return n;
		for (int i = 0; i < n; i++) {
			int err = probe(s, (uint16_t)t, luns[i]);
			if (err == VIO_ETIMEDOUT || err == VIO_EDEAD || err == VIO_ENEEDRESET)
				return err;
			for (unsigned k = 0; !err && k < s->n_luns; k++)
				if (s->luns[k].target == t && s->luns[k].lun == luns[i])
					seen[k / 8] |= (uint8_t)(1u << (k % 8));
		}
	}
	for (unsigned k = 0; k < s->n_luns; k++) {
		s->luns[k].present = (seen[k / 8] >> (k % 8)) & 1;
		present += s->luns[k].present;
	}
	return (int)present;
}

/* The unit behind index `lun`, usable for I/O of `blocks` from `lba`, or why not. */
static int usable(struct vio_scsi *s, unsigned lun, uint64_t lba, uint32_t blocks,
		  struct vio_scsi_lun **out)
{
	if (!s->dev || lun >= s->n_luns || !s->luns[lun].present)
		return VIO_ENODEV;
	struct vio_scsi_lun *l = &s->luns[lun];
	if (!l->ready)
		return VIO_EAGAIN;
	if (lba > l->blocks || blocks > l->blocks - lba)
		return VIO_EINVAL;
	*out = l;
	return 0;
}

/* Blocks of l one command may move: VIO_SCSI_MAX_XFER, the device's max_sectors hint and
 * seg_max pages, whichever is least. */
static uint32_t per_command(const struct vio_scsi *s, const struct vio_scsi_lun *l)
{
	uint32_t bytes = VIO_SCSI_MAX_XFER;
	if (s->max_sectors && s->max_sectors < bytes / 512)
		bytes = s->max_sectors * 512;
	if (s->seg_max && s->seg_max < bytes / PAGE)
		bytes = s->seg_max * PAGE;
	return bytes / l->block_size;
}

static int transfer(struct vio_scsi *s, unsigned lun, uint64_t lba, uint32_t blocks, void *in,
		    const void *out)
{
	struct vio_scsi_lun *l;
	int err = usable(s, lun, lba, blocks, &l);

	if (err)
		return err;
	if (out && l->read_only)
		return VIO_EROFS;
	uint32_t step = per_command(s, l);
	if (!step)
		return VIO_ENOTSUP;
	for (uint32_t done = 0; done < blocks;) {
		uint32_t n = blocks - done < step ? blocks - done : step;
		uint64_t at = lba + done;
		uint32_t bytes = n * l->block_size, moved;
		size_t off = (size_t)done * l->block_size;
		uint8_t cdb[16] = {0};
		uint8_t len;
		/* READ/WRITE(10) reach 2^32 blocks, 65535 at a time; (16) the rest (SBC 5.x). */
		if (at + n - 1 <= 0xffffffffu && n <= 0xffff) {
			cdb[0] = in ? SCSI_READ_10 : SCSI_WRITE_10;
			put_be(cdb + 2, at, 4);
			put_be(cdb + 7, n, 2);
			len = 10;
		} else {
			cdb[0] = in ? SCSI_READ_16 : SCSI_WRITE_16;
			put_be(cdb + 2, at, 8);
			put_be(cdb + 10, n, 4);
			len = 16;
		}
		err = run(s, l->target, l->lun, cdb, len, in ? (uint8_t *)in + off : NULL,
			  out ? (const uint8_t *)out + off : NULL, bytes, &moved);
		if (err)
			return err;
		if (moved != bytes) {
			vio_logf(port_of(s), VIO_LOG_ERR, "%s: %u:%u: %u of %u bytes moved", sc_name,
				 l->target, l->lun, moved, bytes);
			return VIO_EIO;
		}
		done += n;
	}
	return 0;
}

int vio_scsi_read(struct vio_scsi *s, unsigned lun, uint64_t lba, uint32_t blocks, void *buf)
{
	if (!buf)
		return VIO_EINVAL;
	return transfer(s, lun, lba, blocks, buf, NULL);
}

int vio_scsi_write(struct vio_scsi *s, unsigned lun, uint64_t lba, uint32_t blocks,
		   const void *buf)
{
	if (!buf)
		return VIO_EINVAL;
	return transfer(s, lun, lba, blocks, NULL, buf);
}

int vio_scsi_sync(struct vio_scsi *s, unsigned lun)
{
	struct vio_scsi_lun *l;
	int err = usable(s, lun, 0, 0, &l);

	if (err)
		return err;
	uint8_t cdb[16] = {SCSI_SYNCHRONIZE_CACHE_10};
	return run(s, l->target, l->lun, cdb, 10, NULL, NULL, 0, NULL);
}

int vio_scsi_unmap(struct vio_scsi *s, unsigned lun, uint64_t lba, uint64_t blocks)
{
	struct vio_scsi_lun *l;
	int err = usable(s, lun, 0, 0, &l);

	if (err)
		return err;
	if (lba > l->blocks || blocks > l->blocks - lba)
		return VIO_EINVAL;
	if (l->read_only)
		return VIO_EROFS;
	if (!l->unmap)
		return VIO_ENOTSUP;
	/* One block descriptor per command (SBC 5.32.2), at most unmap_max blocks each. */
	uint32_t step = l->unmap_max && l->unmap_max != 0xffffffffu ? l->unmap_max : 0xfffffff0u;
	while (blocks) {
		uint32_t n = blocks < step ? (uint32_t)blocks : step;
		uint8_t cdb[16] = {SCSI_UNMAP}, p[24] = {0};
		put_be(cdb + 7, sizeof(p), 2);
		put_be(p, sizeof(p) - 2, 2); /* UNMAP data length: what follows it */
		put_be(p + 2, 16, 2);	     /* block descriptor data length: one */
		put_be(p + 8, lba, 8);
		put_be(p + 16, n, 4);
		if ((err = run(s, l->target, l->lun, cdb, 10, NULL, p, sizeof(p), NULL)))
			return err;
		lba += n;
		blocks -= n;
	}
	return 0;
}

/* --- events (5.6.6.3) -------------------------------------------------------------------- */

static int post_event(struct vio_scsi *s, unsigned slot)
{
	uint8_t *b = s->sc_events + slot * EVT_SLOT;
	struct vio_sg sg = {b, s->sc_event_len};

	__builtin_memset(b, 0, EVT_SLOT);
	return vio_vq_add(&s->sc_vqs[1], &sg, 0, 1, b);
}

static const char *event_name(uint32_t event, uint32_t reason)
{
	switch (event) {
	case VIRTIO_SCSI_T_NO_EVENT: return "no event";
	case VIRTIO_SCSI_T_TRANSPORT_RESET:
		return reason == VIRTIO_SCSI_EVT_RESET_RESCAN	 ? "added"
		       : reason == VIRTIO_SCSI_EVT_RESET_REMOVED ? "removed"
								 : "reset";
	case VIRTIO_SCSI_T_ASYNC_NOTIFY: return "notification";
	case VIRTIO_SCSI_T_PARAM_CHANGE: return "parameters changed";
	default: return "unknown event";
	}
}

/* One event buffer the device returned with ulen bytes. */
static void event(struct vio_scsi *s, const uint8_t *b, uint32_t ulen, uint32_t in_len)
{
	if (ulen > in_len || ulen < sizeof(struct virtio_scsi_event)) {
		s->stats.bad_events++;
		vio_logf(port_of(s), VIO_LOG_ERR, "%s: event of %u bytes", sc_name, ulen);
		return;
	}
	uint32_t raw = (uint32_t)get_le(b, 4);
	struct vio_scsi_event ev = {
		.event = raw & ~VIRTIO_SCSI_T_EVENTS_MISSED,
		.reason = (uint32_t)get_le(b + 12, 4),
		.target = b[5],
		.lun = (uint16_t)(((b[6] & 0x3f) << 8) | b[7]),
		.missed = (raw & VIRTIO_SCSI_T_EVENTS_MISSED) != 0,
	};
	s->stats.events++;
	if (ev.event == VIRTIO_SCSI_T_NO_EVENT && !ev.missed)
		return;
	vio_logf(port_of(s), VIO_LOG_INFO, "%s: %u:%u %s%s", sc_name, ev.target, ev.lun,
		 event_name(ev.event, ev.reason), ev.missed ? " (events were missed)" : "");
	if (ev.event == VIRTIO_SCSI_T_TRANSPORT_RESET && ev.reason == VIRTIO_SCSI_EVT_RESET_REMOVED)
		for (unsigned i = 0; i < s->n_luns; i++)
			if (s->luns[i].target == ev.target && s->luns[i].lun == ev.lun)
				s->luns[i].present = false;
	if (ev.missed || ev.event == VIRTIO_SCSI_T_PARAM_CHANGE ||
	    (ev.event == VIRTIO_SCSI_T_TRANSPORT_RESET &&
	     ev.reason != VIRTIO_SCSI_EVT_RESET_REMOVED))
		s->rescan = true;
	if (s->sc_opts.on_event)
		s->sc_opts.on_event(s, &ev, s->sc_opts.arg);
}

int vio_scsi_poll(struct vio_scsi *s)
{
	struct vio_vq_used u;
	int err;

	if (!s->dev)
		return VIO_ENODEV;
	if ((err = vio_dev_poll(s->dev)))
		return err;
	reap_late(s);
	/* At most one ring's worth: a device that answers as fast as we re-post cannot keep us. */
	for (unsigned i = 0; i < VIO_SCSI_EVENTS; i++) {
		if ((err = vio_vq_get_used(&s->sc_vqs[1], &u)) == VIO_EAGAIN)
			break;
		if (err)
			return device_error(s, err);
		const uint8_t *b = u.cookie;
		unsigned slot = (unsigned)((b - s->sc_events) / EVT_SLOT);
		VIO_ASSERT(slot < VIO_SCSI_EVENTS && b == s->sc_events + slot * EVT_SLOT);
		uint8_t copy[sizeof(struct virtio_scsi_event)];
		__builtin_memcpy(copy, b, sizeof(copy));
		if ((err = post_event(s, slot)))
			return device_error(s, err);
		event(s, copy, u.len, u.in_len);
	}
	vio_vq_kick(&s->sc_vqs[1]);
	return 0;
}

/* --- bring-up ---------------------------------------------------------------------------- */

static void free_pages(struct vio_scsi *s)
{
	const struct vio_port *port = port_of(s);
	uint8_t **pages[3 + VIO_SCSI_MAX_PAGES] = {&s->sc_req, &s->sc_ctrl, &s->sc_events};

	for (unsigned i = 0; i < VIO_SCSI_MAX_PAGES; i++)
		pages[3 + i] = &s->sc_data[i];
	for (unsigned i = 0; i < 3 + VIO_SCSI_MAX_PAGES; i++) {
		if (*pages[i])
			port->dma_free(port->ctx, *pages[i], PAGE);
		*pages[i] = NULL;
	}
}

static int alloc_pages(struct vio_scsi *s)
{
	const struct vio_port *port = port_of(s);
	uint64_t phys;

	s->sc_req = port->dma_alloc(port->ctx, PAGE, &phys);
	s->sc_ctrl = port->dma_alloc(port->ctx, PAGE, &phys);
	s->sc_events = port->dma_alloc(port->ctx, PAGE, &phys);
	if (!s->sc_req || !s->sc_ctrl || !s->sc_events)
		return VIO_ENOMEM;
	for (unsigned i = 0; i < VIO_SCSI_MAX_PAGES; i++)
		if (!(s->sc_data[i] = port->dma_alloc(port->ctx, PAGE, &phys)))
			return VIO_ENOMEM;
	return 0;
}

#define CFG(field) offsetof(struct virtio_scsi_config, field)

/* A config field the driver may write (cdb_size, sense_size): when the device's value is
 * outside [lo, hi], ask for `want` and read it back (5.6.4). */
static int sized_field(struct vio_scsi *s, uint32_t off, uint32_t lo, uint32_t hi, uint32_t want,
		       uint32_t *out)
{
	int err = vio_dev_config_read(s->dev, off, out, 4);
	if (!err && (*out < lo || *out > hi)) {
		if (!(err = vio_dev_config_write(s->dev, off, &want, 4)))
			err = vio_dev_config_read(s->dev, off, out, 4);
	}
	if (!err && (*out < lo || *out > hi)) {
		vio_logf(port_of(s), VIO_LOG_ERR, "%s: config field at %u is %u, not %u..%u",
			 sc_name, off, *out, lo, hi);
		err = VIO_ERANGE;
	}
	return err;
}

static int read_config(struct vio_scsi *s)
{
	struct vio_dev *dev = s->dev;
	uint32_t event_info;
	int err;

	if ((err = vio_dev_config_read(dev, CFG(num_queues), &s->num_queues, 4)) ||
	    (err = vio_dev_config_read(dev, CFG(seg_max), &s->seg_max, 4)) ||
	    (err = vio_dev_config_read(dev, CFG(max_sectors), &s->max_sectors, 4)) ||
	    (err = vio_dev_config_read(dev, CFG(event_info_size), &event_info, 4)) ||
	    (err = vio_dev_config_read(dev, CFG(max_target), &s->max_target, 2)) ||
	    (err = vio_dev_config_read(dev, CFG(max_lun), &s->max_lun, 4)))
		return err;
	/* The request page holds the header with its CDB below RESP_OFF, and the response
	 * with its sense above it. READ(16) needs a 16-byte CDB. */
	if ((err = sized_field(s, CFG(cdb_size), 16,
			       RESP_OFF - (uint32_t)sizeof(struct virtio_scsi_req_cmd),
			       VIRTIO_SCSI_CDB_DEFAULT_SIZE, &s->cdb_size)) ||
	    (err = sized_field(s, CFG(sense_size), 18,
			       PAGE - RESP_OFF - (uint32_t)sizeof(struct virtio_scsi_resp_cmd),
			       VIRTIO_SCSI_SENSE_DEFAULT_SIZE, &s->sense_size)))
		return err;
	if (s->num_queues == 0) {
		vio_logf(port_of(s), VIO_LOG_ERR, "%s: no request queue (num_queues 0)", sc_name);
		return VIO_ERANGE;
	}
	if (s->max_lun > 16383)
		s->max_lun = 16383; /* the flat LUN space holds 14 bits */
	s->sc_event_len = event_info < sizeof(struct virtio_scsi_event)
				  ? (uint32_t)sizeof(struct virtio_scsi_event)
			  : event_info > EVT_SLOT ? EVT_SLOT
						  : event_info;
	return 0;
}

int vio_scsi_init(struct vio_scsi *s, struct vio_dev *dev, const struct vio_scsi_opts *opts)
{
	int err;

	__builtin_memset(s, 0, sizeof(*s));
	if (dev->device_id != VIRTIO_ID_SCSI)
		return VIO_ENODEV;
	if (opts)
		s->sc_opts = *opts;
	if (!s->sc_opts.timeout_ns)
		s->sc_opts.timeout_ns = VIO_SCSI_TIMEOUT_NS;
	s->sc_max_luns = s->sc_opts.max_luns ? s->sc_opts.max_luns : VIO_SCSI_MAX_LUNS;
	if (s->sc_max_luns > VIO_SCSI_MAX_LUNS * 4)
		return VIO_EINVAL;
	s->luns = vio_priv_alloc(dev->port, s->sc_max_luns * sizeof(*s->luns));
	if (!s->luns)
		return VIO_ENOMEM;
	s->dev = dev;
	dev->name = sc_name;

	/* 3.1.1 steps 1-6: hot-plug and parameter-change events; no T10 PI, no INOUT. */
	err = vio_dev_begin(dev, 1ull << VIRTIO_SCSI_F_HOTPLUG | 1ull << VIRTIO_SCSI_F_CHANGE);
	if (err || (err = read_config(s)))
		goto fail;

	/* Step 7: control, event and the first request queue, all polled. */
	if ((err = vio_dev_setup_irqs(dev, s->sc_vqs, 3)))
		goto fail;
	for (uint16_t q = 0; q < 3; q++) {
		err = vio_dev_setup_vq_opts(dev, q,
					    &(struct vio_vq_opts){.max_size = 64,
								  .indirect_tables = 4},
					    NULL, NULL);
		if (err)
			goto fail;
		vio_vq_disable_cb(&s->sc_vqs[q]);
	}
	if ((err = alloc_pages(s)))
		goto fail;

	/* Step 8, then keep the eventq stocked (5.6.6.3). */
	if ((err = vio_dev_driver_ok(dev)))
		goto fail;
	for (unsigned i = 0; i < VIO_SCSI_EVENTS; i++)
		if ((err = post_event(s, i)))
			goto fail;
	vio_vq_kick(&s->sc_vqs[1]);
	return 0;

fail:
	driver_abort(dev, sc_name, err);
	free_pages(s);
	vio_priv_free(dev->port, s->luns, s->sc_max_luns * sizeof(*s->luns));
	s->luns = NULL;
	s->dev = NULL;
	return err;
}

int vio_scsi_fini(struct vio_scsi *s)
{
	if (!s->dev)
		return 0;
	const struct vio_port *port = port_of(s);
	/* Reset first: after it the device no longer writes into our pages. */
	int err = vio_dev_teardown(s->dev);
	if (err) {
		vio_logf(port, VIO_LOG_ERR,
			 "%s: reset not confirmed: keeping the buffers, device failed", sc_name);
		vio_dev_fail(s->dev);
	} else {
		free_pages(s);
	}
	vio_priv_free(port, s->luns, s->sc_max_luns * sizeof(*s->luns));
	s->luns = NULL;
	s->n_luns = 0;
	s->dev = NULL;
	return err;
}
