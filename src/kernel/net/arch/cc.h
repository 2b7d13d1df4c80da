/*
 * arch/cc.h: lwIP's compiler and platform port for the vio teaching kernel.
 *
 * lwIP asks its port for a few things it cannot know: how to print a diagnostic, what to do
 * when one of its own invariants breaks, where random numbers come from and the machine's
 * byte order. newlib is the kernel's libc, so stdint.h, inttypes.h, limits.h and string.h
 * are the real ones and lwIP's defaults for the integer types and formats are right.
 */
#ifndef VIO_LWIP_ARCH_CC_H
#define VIO_LWIP_ARCH_CC_H

#include <kernel/kernel.h>
#include <kernel/random.h>
#include <limits.h>
#include <sys/types.h>

/*
 * newlib has ssize_t (sys/types.h) but no SSIZE_MAX, without which lwIP would typedef its
 * own (an int). Nor do we want unistd.h: its pause() clashes with the kernel's (arch.h).
 */
#ifndef SSIZE_MAX
#define SSIZE_MAX LONG_MAX
#endif
#define LWIP_NO_UNISTD_H 1

/* x86-64 is little-endian; say so before lwIP guesses (newlib may define it as well). */
#ifndef BYTE_ORDER
#define BYTE_ORDER LITTLE_ENDIAN
#endif

/* lwIP's messages go to the kernel log like everyone else's. `x` is "(fmt, args...)". */
#define LWIP_PLATFORM_DIAG(x)                                                                      \
	do {                                                                                       \
		kprintf x;                                                                         \
	} while (0)

/*
 * A failed lwIP assertion means the stack's own state is inconsistent: going on would
 * corrupt memory in ways far harder to debug than a panic with the file and line.
 */
#define LWIP_PLATFORM_ASSERT(x)                                                                    \
	panic("lwip: assertion \"%s\" failed at %s:%d", x, __FILE__, __LINE__)

/* DHCP transaction ids, TCP initial sequence numbers and local ports need unpredictability:
 * the kernel's PRNG is seeded from virtio-rng at boot. */
#define LWIP_RAND() ((u32_t)random_u64())

#endif
