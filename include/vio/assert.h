/*
 * VIO_ASSERT: checks of vio's own invariants, never of the device.
 *
 * Two kinds of wrong state meet in a virtio driver, and this code keeps them apart:
 *   - the device broke a rule (a used id out of range, a length larger than posted): that is
 *     untrusted input, always checked, logged, and the queue is marked broken (VIO_EIO);
 *   - vio broke its own rule (a free indirect table that is not free, a head detached that
 *     was never in flight): that is a bug in vio, and VIO_ASSERT states it.
 *
 * VIO_ASSERT compiles to nothing unless VIO_DEBUG is defined. With VIO_DEBUG, a failed
 * assertion calls vio_assert_failed(), which the embedding kernel defines and which must not
 * return (our kernel panics, the host tests abort()). The expression is not evaluated in
 * release builds: it must have no side effects. It is still compiled there (behind 0 &&), so
 * it keeps type-checking and a helper that only assertions call still counts as used.
 */
#ifndef VIO_ASSERT_H
#define VIO_ASSERT_H

#ifdef VIO_DEBUG
__attribute__((noreturn)) void vio_assert_failed(const char *expr, const char *file,
						 unsigned line);
#define VIO_ASSERT(cond)                                                                        \
	((cond) ? (void)0 : vio_assert_failed(#cond, __FILE__, __LINE__))
#else
#define VIO_ASSERT(cond) ((void)(0 && (cond)))
#endif

#endif
