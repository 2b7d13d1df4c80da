/*
 * The fuzz input as a stream every target reads its device's answers from. A target keeps
 * `const uint8_t *p, *end` in its state struct and says FUZZ_INPUT_READERS(struct state) once:
 * byte(), half() and word() (big-endian) return 0 once the input is used up, so every run
 * ends; check() traps, which libFuzzer reports as a crash, when a property the target
 * asserts does not hold.
 */
#ifndef FUZZ_INPUT_H
#define FUZZ_INPUT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * A driver that waits for its device looks at the clock, and every look gives the device
 * model a turn (fake_port on_wait). A look at which the model has nothing to do (nothing is
 * posted to it, or no model runs) moves the fake clock timeout / FUZZ_LOOKS_PER_TIMEOUT, so
 * that waiting for an answer that cannot come costs a few looks, not one per microsecond of
 * the timeout. A look at which the model acts keeps the fake port's tick: an input means
 * what it meant, the device answering at the look it says, or never.
 */
#define FUZZ_LOOKS_PER_TIMEOUT 8

#define FUZZ_INPUT_READERS(T)                                                                   \
	static __attribute__((unused)) uint8_t byte(T *s)                                       \
	{                                                                                       \
		return s->p < s->end ? *s->p++ : 0;                                             \
	}                                                                                       \
	static __attribute__((unused)) uint16_t half(T *s)                                      \
	{                                                                                       \
		uint16_t hi = byte(s);                                                          \
		return (uint16_t)(hi << 8 | byte(s));                                           \
	}                                                                                       \
	static __attribute__((unused)) uint32_t word(T *s)                                      \
	{                                                                                       \
		uint32_t hi = half(s);                                                          \
		return hi << 16 | half(s);                                                      \
	}                                                                                       \
	static __attribute__((unused)) void check(bool ok)                                      \
	{                                                                                       \
		if (!ok)                                                                        \
			__builtin_trap();                                                       \
	}

#endif
