/*
 * The SCSI host device: virtio device ID 8 (virtio 1.2 section 5.6), and the few SCSI
 * commands (SPC, SBC, MMC) vio's SCSI layer sends through it.
 *
 * Queues (5.6.2): 0 the controlq (task management), 1 the eventq (hot-plug and parameter
 * changes), then num_queues request queues. A command is one chain: the request header and
 * CDB (device-readable), data-out if any, then the response header and sense
 * (device-writable), then data-in if any (5.6.6.1). Multi-byte fields of the virtio structures
 * are little-endian; every field inside a CDB or inside SCSI data is big-endian.
 */
#ifndef VIO_SPEC_VIRTIO_SCSI_H
#define VIO_SPEC_VIRTIO_SCSI_H

#include <stdint.h>

/* Feature bits (5.6.3). */
#define VIRTIO_SCSI_F_INOUT   0 /* one request may carry data-out and data-in */
#define VIRTIO_SCSI_F_HOTPLUG 1 /* TRANSPORT_RESET events when a target or LUN comes or goes */
#define VIRTIO_SCSI_F_CHANGE  2 /* PARAM_CHANGE events (capacity changed ...) */
#define VIRTIO_SCSI_F_T10_PI  3 /* protection information in the request header */

#define VIRTIO_SCSI_Q_CONTROL 0
#define VIRTIO_SCSI_Q_EVENT   1
#define VIRTIO_SCSI_Q_REQUEST 2 /* the first request queue */

/* Device configuration layout (5.6.4). cdb_size and sense_size are writable by the driver. */
struct virtio_scsi_config {
	uint32_t num_queues;	  /* request queues */
	uint32_t seg_max;	  /* segments one command may have (not counting the headers) */
	uint32_t max_sectors;	  /* a hint: the largest transfer, in 512-byte sectors */
	uint32_t cmd_per_lun;	  /* a hint: commands in flight per LUN */
	uint32_t event_info_size; /* bytes an eventq buffer should have */
	uint32_t sense_size;	  /* sense bytes in a response (default 96) */
	uint32_t cdb_size;	  /* CDB bytes in a request (default 32) */
	uint16_t max_channel;	  /* always 0 */
	uint16_t max_target;	  /* targets are 0 .. max_target (at most 255) */
	uint32_t max_lun;	  /* LUNs are 0 .. max_lun (at most 16383) */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_scsi_config) == 36, "virtio_scsi_config is 36 bytes");

#define VIRTIO_SCSI_CDB_DEFAULT_SIZE   32
#define VIRTIO_SCSI_SENSE_DEFAULT_SIZE 96

/*
 * The LUN field (5.6.6.1): byte 0 is 1, byte 1 the target, bytes 2-3 the LUN in SAM's
 * single-level flat format (0x40 | lun >> 8, lun & 0xff), bytes 4-7 zero.
 */
#define VIRTIO_SCSI_LUN_FLAT 0x40

/* A command request, the fixed part: the CDB (cdb_size bytes) follows. */
struct virtio_scsi_req_cmd {
	uint8_t lun[8];
	uint64_t id; /* the driver's tag for the command: ABORT TASK names it */
	uint8_t task_attr;
	uint8_t prio;
	uint8_t crn;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_scsi_req_cmd) == 19, "virtio_scsi_req_cmd is 19 bytes");

/* The response, the fixed part: sense (sense_size bytes) follows, then data-in. */
struct virtio_scsi_resp_cmd {
	uint32_t sense_len; /* sense bytes the device wrote (at most sense_size) */
	uint32_t residual;  /* bytes of the data buffer not transferred */
	uint16_t status_qualifier;
	uint8_t status;	  /* the SCSI status, valid when response is VIRTIO_SCSI_S_OK */
	uint8_t response; /* VIRTIO_SCSI_S_* */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_scsi_resp_cmd) == 12, "virtio_scsi_resp_cmd is 12 bytes");

/* Task attributes. */
#define VIRTIO_SCSI_S_SIMPLE  0
#define VIRTIO_SCSI_S_ORDERED 1
#define VIRTIO_SCSI_S_HEAD    2
#define VIRTIO_SCSI_S_ACA     3

/* Response codes (5.6.6.1 for commands, 5.6.6.2 for task management). */
#define VIRTIO_SCSI_S_OK		0
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE 0
#define VIRTIO_SCSI_S_OVERRUN		1
#define VIRTIO_SCSI_S_ABORTED		2
#define VIRTIO_SCSI_S_BAD_TARGET	3
#define VIRTIO_SCSI_S_RESET		4
#define VIRTIO_SCSI_S_BUSY		5
#define VIRTIO_SCSI_S_TRANSPORT_FAILURE 6
#define VIRTIO_SCSI_S_TARGET_FAILURE	7
#define VIRTIO_SCSI_S_NEXUS_FAILURE	8
#define VIRTIO_SCSI_S_FAILURE		9
#define VIRTIO_SCSI_S_FUNCTION_SUCCEEDED 10
#define VIRTIO_SCSI_S_FUNCTION_REJECTED 11
#define VIRTIO_SCSI_S_INCORRECT_LUN	12

/* Task management on the controlq (5.6.6.2.1). The device writes one response byte. */
#define VIRTIO_SCSI_T_TMF 0
#define VIRTIO_SCSI_T_TMF_ABORT_TASK	     0
#define VIRTIO_SCSI_T_TMF_ABORT_TASK_SET     1
#define VIRTIO_SCSI_T_TMF_CLEAR_ACA	     2
#define VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET     3
#define VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET    4
#define VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET 5
#define VIRTIO_SCSI_T_TMF_QUERY_TASK	     6
#define VIRTIO_SCSI_T_TMF_QUERY_TASK_SET     7

struct virtio_scsi_ctrl_tmf {
	uint32_t type;
	uint32_t subtype;
	uint8_t lun[8];
	uint64_t id; /* ABORT TASK: the command's id */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_scsi_ctrl_tmf) == 24, "virtio_scsi_ctrl_tmf is 24 bytes");

/* An event (5.6.6.3), written by the device into a buffer the driver keeps posted. */
struct virtio_scsi_event {
	uint32_t event; /* VIRTIO_SCSI_T_*, with VIRTIO_SCSI_T_EVENTS_MISSED or'ed in */
	uint8_t lun[8];
	uint32_t reason;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_scsi_event) == 16, "virtio_scsi_event is 16 bytes");

#define VIRTIO_SCSI_T_NO_EVENT	      0
#define VIRTIO_SCSI_T_TRANSPORT_RESET 1
#define VIRTIO_SCSI_T_ASYNC_NOTIFY    2
#define VIRTIO_SCSI_T_PARAM_CHANGE    3
#define VIRTIO_SCSI_T_EVENTS_MISSED   0x80000000u

/* TRANSPORT_RESET reasons. */
#define VIRTIO_SCSI_EVT_RESET_HARD    0
#define VIRTIO_SCSI_EVT_RESET_RESCAN  1 /* a target or LUN appeared */
#define VIRTIO_SCSI_EVT_RESET_REMOVED 2 /* a target or LUN went away */

/* --- SCSI: status bytes (SAM), sense keys and formats (SPC), opcodes -------------------- */

#define SCSI_STATUS_GOOD		 0x00
#define SCSI_STATUS_CHECK_CONDITION	 0x02
#define SCSI_STATUS_CONDITION_MET	 0x04
#define SCSI_STATUS_BUSY		 0x08
#define SCSI_STATUS_RESERVATION_CONFLICT 0x18
#define SCSI_STATUS_TASK_SET_FULL	 0x28
#define SCSI_STATUS_ACA_ACTIVE		 0x30
#define SCSI_STATUS_TASK_ABORTED	 0x40

#define SCSI_SENSE_NO_SENSE	   0x0
#define SCSI_SENSE_RECOVERED_ERROR 0x1
#define SCSI_SENSE_NOT_READY	   0x2
#define SCSI_SENSE_MEDIUM_ERROR	   0x3
#define SCSI_SENSE_HARDWARE_ERROR  0x4
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION  0x6
#define SCSI_SENSE_DATA_PROTECT	   0x7
#define SCSI_SENSE_BLANK_CHECK	   0x8
#define SCSI_SENSE_ABORTED_COMMAND 0xb
#define SCSI_SENSE_MISCOMPARE	   0xe

/*
 * Sense data (SPC-4 4.5): byte 0 bits 6-0 give the format. Fixed (0x70 current, 0x71
 * deferred): key in byte 2 bits 3-0, ASC in byte 12, ASCQ in byte 13. Descriptor (0x72,
 * 0x73): key in byte 1 bits 3-0, ASC in byte 2, ASCQ in byte 3.
 */
#define SCSI_SENSE_FIXED_CURRENT  0x70
#define SCSI_SENSE_FIXED_DEFERRED 0x71
#define SCSI_SENSE_DESC_CURRENT	  0x72
#define SCSI_SENSE_DESC_DEFERRED  0x73

/* Opcodes, with the CDB layouts vio uses (all fields big-endian). */
#define SCSI_TEST_UNIT_READY  0x00 /* 6 bytes, all zero but the opcode */
#define SCSI_REQUEST_SENSE    0x03 /* 6: [4] allocation length */
#define SCSI_INQUIRY	      0x12 /* 6: [3..4] allocation length */
#define SCSI_MODE_SENSE_6     0x1a /* 6: [1] bit 3 DBD, [2] page code, [4] allocation length */
#define SCSI_READ_CAPACITY_10 0x25 /* 10: answer last LBA[4] block length[4] */
#define SCSI_READ_10	      0x28 /* 10: [2..5] LBA, [7..8] blocks */
#define SCSI_WRITE_10	      0x2a /* 10: as READ(10) */
#define SCSI_SYNCHRONIZE_CACHE_10 0x35 /* 10: LBA 0 and 0 blocks: the whole medium */
#define SCSI_READ_16	      0x88 /* 16: [2..9] LBA, [10..13] blocks */
#define SCSI_WRITE_16	      0x8a /* 16: as READ(16) */
#define SCSI_SERVICE_ACTION_IN_16 0x9e /* 16: [1] service action */
#define SCSI_SAI_READ_CAPACITY_16 0x10 /* ... [10..13] allocation length; answer last LBA[8]
					* block length[4] ... (32 bytes) */
#define SCSI_UNMAP	      0x42 /* 10: [7..8] parameter list length (SBC 5.32) */
#define SCSI_VPD_BLOCK_LIMITS 0xb0 /* INQUIRY EVPD page: [20..23] max unmap LBA count */
#define SCSI_VPD_PROVISIONING 0xb2 /* INQUIRY EVPD page: [5] bit 7 LBPU, UNMAP supported */
#define SCSI_REPORT_LUNS      0xa0 /* 12: [6..9] allocation length; answer list length[4]
				    * reserved[4] then 8 bytes per LUN */

/* INQUIRY's standard data: byte 0 peripheral qualifier (bits 7-5) and device type (4-0),
 * byte 1 bit 7 removable medium, bytes 8-15 vendor, 16-31 product (ASCII, space-padded). */
#define SCSI_INQUIRY_LEN      36
#define SCSI_QUALIFIER_HERE   0	  /* a device is connected to this LUN */
#define SCSI_TYPE_DISK	      0x00 /* direct access block device (SBC) */
#define SCSI_TYPE_CDROM	      0x05 /* CD/DVD (MMC) */
#define SCSI_TYPE_NONE	      0x1f /* unknown or no device */

/* MODE SENSE(6) header: byte 2 is the device-specific parameter, bit 7 WP for a disk. */
#define SCSI_MODE_WP	      0x80
#define SCSI_MODE_ALL_PAGES   0x3f

#endif
