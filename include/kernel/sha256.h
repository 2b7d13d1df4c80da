/* SHA-256 (FIPS 180-4), for checking disk contents against the host's sha256sum. */
#ifndef KERNEL_SHA256_H
#define KERNEL_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* 64 lowercase hex digits and a NUL, as sha256sum prints them. */
void sha256_hex(const uint8_t digest[32], char out[65]);

#endif
