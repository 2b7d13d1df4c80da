/* Unit tests for the helpers every layer shares (src/common): formatting, logging, error names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fake_port.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats_integers_like_printf),
		cmocka_unit_test(test_formats_strings_chars_and_pointers),
		cmocka_unit_test(test_truncates_and_reports_the_wanted_length),
		cmocka_unit_test(test_logf_reaches_the_port),
		cmocka_unit_test(test_strerror_names_every_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
