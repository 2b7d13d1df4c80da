/* Test Anything Protocol output for kernel self-tests (docs/design.md section 9). */
#ifndef KERNEL_TAP_H
#define KERNEL_TAP_H

#include <stdbool.h>
#include <stddef.h>

/* A self-test: returns true on success; on failure writes a one-line reason into why. */
struct ktest {
	const char *name;
	bool (*run)(char *why, size_t size);
};

/* Print the plan, run every test, print ok / not ok lines; true when all passed. */
bool tap_run(const struct ktest *tests, size_t n);
/* The device tests vio.tests= names, in that order (devtests.c); returns how many. */
size_t devtests_select(struct ktest *out, size_t max);

#endif
