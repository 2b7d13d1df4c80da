/*
 * A port's own barriers (VIO_ARCH_CUSTOM), as tests/arch/archcheck.py compiles the library
 * for an architecture vio does not know. __sync_synchronize() is a full fence on every
 * target; too strong for most of these, never too weak. With VIO_TEST_OMIT_RMB the header
 * leaves one out, and barrier.h must refuse it.
 */
#ifndef VIO_ARCH_CUSTOM_H
#define VIO_ARCH_CUSTOM_H

#define vio_mb() __sync_synchronize()
#ifndef VIO_TEST_OMIT_RMB
#define vio_rmb() __sync_synchronize()
#endif
#define vio_wmb() __sync_synchronize()
#define vio_before_mmio_write() __sync_synchronize()
#define vio_after_mmio_read() __sync_synchronize()

#endif
