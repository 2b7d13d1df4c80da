/*
 * vio_fsdata.h: the (empty) compiled-in file system for lwIP's httpd.
 *
 * httpd's fs.c includes this file (HTTPD_FSDATA_FILE in lwipopts.h) instead of the sample
 * pages lwIP ships. Every page the kernel serves is a "custom file" made on the fly in
 * httpd_fs.c, so the compiled-in list is empty.
 */
#ifndef VIO_FSDATA_H
#define VIO_FSDATA_H

#include <lwip/apps/fs.h>

#define FS_ROOT	    ((const struct fsdata_file *)0)
#define FS_NUMFILES 0

#endif
