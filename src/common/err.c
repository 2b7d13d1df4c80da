/*
 * Names for the library's error codes, for log lines and test output.
 */
#include <vio/err.h>

const char *vio_strerror(int err)
{
	static const char *const names[] = {
		"VIO_OK",	 "VIO_EINVAL",	"VIO_ENOMEM",	 "VIO_ENOSPC",	   "VIO_EAGAIN",
		"VIO_EIO",	 "VIO_ENODEV",	"VIO_ENOTSUP",	 "VIO_ETIMEDOUT", "VIO_EROFS",
		"VIO_EPROTO", "VIO_EFEATURES", "VIO_ERANGE", "VIO_ENEEDRESET", "VIO_EDEAD",
		"VIO_EALIGN",  "VIO_EREMOTE",
	};
	if (err > 0 || -err >= (int)(sizeof(names) / sizeof(names[0])))
		return "VIO_E?";
	return names[-err];
}
