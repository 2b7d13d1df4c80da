/* The kernel's pseudo-random generator (xoshiro256**), seeded from virtio-rng at boot. */
#ifndef KERNEL_RANDOM_H
#define KERNEL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Mix `len` bytes of entropy into the state. */
void random_seed(const void *entropy, size_t len);
uint64_t random_u64(void);
/* Uniform in [0, n) (n > 0). */
uint64_t random_below(uint64_t n);
void random_fill(void *buf, size_t len);
/* True once random_seed() has seen real entropy. */
int random_seeded(void);

#endif
