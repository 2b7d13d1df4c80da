/*
 * vio error codes. Every library call that can fail returns 0 (or a positive count) on
 * success and one of these negative values on failure. vio_strerror() names them for logs.
 */
#ifndef VIO_ERR_H
#define VIO_ERR_H

enum vio_err {
	VIO_OK = 0,
	VIO_EINVAL = -1,     /* an argument is out of range or the call makes no sense now */
	VIO_ENOMEM = -2,     /* the port could not give the DMA memory asked for */
	VIO_ENOSPC = -3,     /* the queue (or a table) has no room for this request now */
	VIO_EAGAIN = -4,     /* nothing to return yet, or try again later (would block) */
	VIO_EIO = -5,        /* the device reported an error, or broke a rule: queue/device broken */
	VIO_ENODEV = -6,     /* no such device, or it is not the kind the caller asked for */
	VIO_ENOTSUP = -7,    /* the device or the port does not offer what is needed */
	VIO_ETIMEDOUT = -8,  /* the device did not answer within the limit */
	VIO_EROFS = -9,      /* the device is read-only */
	VIO_EPROTO = -10,    /* the device's registers or tables are malformed (untrusted host) */
	VIO_EFEATURES = -11, /* the device refused the negotiated features (FEATURES_OK cleared) */
	VIO_ERANGE = -12,    /* a value the device gave lies outside what the spec allows */
	VIO_ENEEDRESET = -13, /* the device set DEVICE_NEEDS_RESET (spec 2.1.2) */
	VIO_EDEAD = -14, /* device did not reset: memory kept, do not reuse buffers posted to it */
	VIO_EALIGN = -15, /* the request is not aligned to the device's block size */
	VIO_EREMOTE = -16 /* a server behind the device refused (9P Rlerror): see its errno */
};

/* A short constant name for an error code ("VIO_EIO"); "VIO_E?" for unknown values. */
const char *vio_strerror(int err);

#endif
