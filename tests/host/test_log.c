/* Unit tests for the helpers every layer shares (src/common): formatting, logging, error names,
 * private memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fake_port.h"
#include <vio/alloc.h>
#include <vio/err.h>
#include <vio/format.h>
#include <vio/log.h>

static void check(const char *want, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vio_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_formats_integers_like_printf(void **state)
{
	(void)state;
	check("42 -7 4294967295", "%d %i %u", 42, -7, 4294967295u);
	check("ff FF 0xff", "%x %X %#x", 255, 255, 255);
	check("18446744073709551615", "%llu", (unsigned long long)UINT64_MAX);
	check("-9223372036854775808", "%lld", (long long)INT64_MIN);
	check("00:03.0", "%02x:%02x.%x", 0, 3, 0);
	check("  7|7  |-07", "%3d|%-3d|%03d", 7, 7, -7);
	check("sz 12", "sz %zu", (size_t)12);
}

/* format.c divides by 10 sixteen bits at a time (no 64-bit division on i686): check it. */
static void test_formats_64_bit_decimals_like_libc(void **state)
{
	(void)state;
	char want[32], got[32];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < 2000; i++) {
		uint64_t v;
		if (i < 64)
			v = 1ull << i;
		else if (i < 128)
			v = (1ull << (i - 64)) - 1;
		else if (i < 148)
			v = (uint64_t)i * 1000000000000000000ull / 148;
		else
			v = x = x * 6364136223846793005ull + 1442695040888963407ull;
		snprintf(want, sizeof(want), "%llu %lld", (unsigned long long)v, (long long)v);
		vio_snprintf(got, sizeof(got), "%llu %lld", (unsigned long long)v, (long long)v);
		assert_string_equal(got, want);
	}
}

/* l is long, ll long long, z size_t: the argument's own width, 32 bits on i686. */
static void test_length_modifiers_fetch_the_named_type(void **state)
{
	(void)state;
	check("4000000000 -5 ff 7 12", "%lu %ld %lx %zx %zd", 4000000000ul, -5l, 255ul, (size_t)7,
	      (ptrdiff_t)12);
	check("1 2 3", "%u %lu %u", 1u, 2ul, 3u);
}

static void test_formats_strings_chars_and_pointers(void **state)
{
	(void)state;
	check("abc|  x|y  |(null)", "%s|%3s|%-3s|%s", "abc", "x", "y", (char *)NULL);
	check("c=%", "%c=%%", 'c');
	check("0x1000", "%p", (void *)0x1000);
}

static void test_truncates_and_reports_the_wanted_length(void **state)
{
	(void)state;
	char buf[8];
	memset(buf, 'X', sizeof(buf));
	int n = vio_snprintf(buf, sizeof(buf), "%s", "0123456789");
	assert_int_equal(n, 10);
	assert_string_equal(buf, "0123456");
	assert_int_equal(vio_snprintf(NULL, 0, "%d", 12345), 5);
}

static void test_logf_reaches_the_port(void **state)
{
	(void)state;
	struct fake_port fp;
	fake_port_init(&fp);
	vio_logf(&fp.port, VIO_LOG_ERR, "vq%u: used id %u out of range", 2u, 999u);
	assert_true(fake_port_logged(&fp, "vq2: used id 999 out of range"));
	vio_logf(NULL, VIO_LOG_ERR, "no port: must not crash");
}

static void test_strerror_names_every_code(void **state)
{
	(void)state;
	assert_string_equal(vio_strerror(VIO_OK), "VIO_OK");
	assert_string_equal(vio_strerror(VIO_EIO), "VIO_EIO");
	assert_string_equal(vio_strerror(VIO_ENEEDRESET), "VIO_ENEEDRESET");
	assert_string_equal(vio_strerror(-1000), "VIO_E?");
	assert_string_equal(vio_strerror(5), "VIO_E?");
}

static void test_private_memory_is_not_dma_memory(void **state)
{
	struct fake_port fp;
	(void)state;
	fake_port_init(&fp);
	char *p = vio_priv_alloc(&fp.port, 100);
	assert_non_null(p);
	assert_false(fake_port_is_dma(&fp, p, 100));
	assert_int_equal(fp.priv_live_allocs, 1);
	assert_int_equal(fp.dma_live_allocs, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(p[i], 0);
	vio_priv_free(&fp.port, p, 100);
	assert_int_equal(fp.priv_live_allocs, 0);
}

static void test_private_memory_falls_back_to_dma_without_a_private_allocator(void **state)
{
	struct fake_port fp;
	(void)state;
	fake_port_init(&fp);
	fake_port_no_priv(&fp);
	void *p = vio_priv_alloc(&fp.port, 100);
	assert_non_null(p);
	assert_true(fake_port_is_dma(&fp, p, 100));
	vio_priv_free(&fp.port, p, 100);
	assert_int_equal(fp.dma_live_allocs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_private_memory_is_not_dma_memory),
		cmocka_unit_test(test_private_memory_falls_back_to_dma_without_a_private_allocator),
		cmocka_unit_test(test_formats_integers_like_printf),
		cmocka_unit_test(test_formats_64_bit_decimals_like_libc),
		cmocka_unit_test(test_length_modifiers_fetch_the_named_type),
		cmocka_unit_test(test_formats_strings_chars_and_pointers),
		cmocka_unit_test(test_truncates_and_reports_the_wanted_length),
		cmocka_unit_test(test_logf_reaches_the_port),
		cmocka_unit_test(test_strerror_names_every_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
