/*
 * random.c: xoshiro256** (Blackman and Vigna), a small fast generator for tests and MAC
 * addresses. Not for cryptography. Until virtio-rng seeds it, it starts from the TSC.
 */
#include <kernel/arch.h>
#include <kernel/random.h>

static uint64_t s[4];
static int seeded;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void random_seed(const void *entropy, size_t len)
{
	const uint8_t *p = entropy;
	uint64_t x = s[0] ^ s[1] ^ s[2] ^ s[3] ^ rdtsc();
	for (size_t i = 0; i < len; i++)
		x = (x ^ p[i]) * 0x100000001b3ull;
	for (int i = 0; i < 4; i++)
		s[i] ^= splitmix(&x);
	if (!(s[0] | s[1] | s[2] | s[3]))
		s[0] = 1;
	seeded = len > 0;
}

uint64_t random_u64(void)
{
	if (!(s[0] | s[1] | s[2] | s[3])) {
		uint64_t t = rdtsc();
		random_seed(&t, 0);
	}
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

uint64_t random_below(uint64_t n)
{
	return (uint64_t)(((unsigned __int128)random_u64() * n) >> 64);
}

void random_fill(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		uint64_t r = random_u64();
		for (int i = 0; i < 8 && len; i++, len--)
			*p++ = (uint8_t)(r >> (8 * i));
	}
}

int random_seeded(void) { return seeded; }
