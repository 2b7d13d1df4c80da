/*
 * A small freestanding snprintf for every layer of the library, which may not use libc:
 * src/pci formats bus/device/function names with it, vio_logf formats log lines with it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <vio/format.h>

struct out {
	char *buf;
	size_t size;
	size_t len; /* characters wanted so far; may exceed size */
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, int width, bool left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;

	if (!left)
		while (fill-- > 0)
			put(o, pad);
	while (n--)
		put(o, *s++);
	if (left)
		while (fill-- > 0)
			put(o, ' ');
}

/*
 * Divide *v by 10 and return the remainder, as on paper: 16 bits at a time from the top, so
 * each step divides a number below 10 * 2^16 and needs only 32-bit division. A 64-bit `/`
 * would do on 64-bit CPUs, but on i686 the compiler turns it into a call to libgcc's
 * __udivdi3, and the library links against nothing but memcpy, memset, memmove and memcmp.
 */
static unsigned div10(uint64_t *v)
{
	uint64_t q = 0;
	uint32_t rem = 0;

	for (int shift = 48; shift >= 0; shift -= 16) {
		uint32_t cur = rem << 16 | (uint32_t)(*v >> shift & 0xffff);
		q = q << 16 | cur / 10;
		rem = cur % 10;
	}
	*v = q;
	return rem;
}

static void put_number(struct out *o, uint64_t v, bool neg, unsigned base, bool upper, int width,
		       bool left, bool zero)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	size_t n = 0;

	do {
		unsigned d;
		if (base == 16) {
			d = v & 15;
			v >>= 4;
		} else {
			d = div10(&v);
		}
		tmp[sizeof(tmp) - 1 - n++] = digits[d];
	} while (v);
	if (neg) {
		if (zero && width > 0) {
			put(o, '-');
			width--;
		} else {
			tmp[sizeof(tmp) - 1 - n++] = '-';
		}
	}
	put_padded(o, &tmp[sizeof(tmp) - n], n, width, left, zero && !left ? '0' : ' ');
}

int vio_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		bool left = false, zero = false, alt = false;
		for (;; fmt++) {
			if (*fmt == '-')
				left = true;
			else if (*fmt == '0')
				zero = true;
			else if (*fmt == '#')
				alt = true;
			else
				break;
		}
		int width = 0;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		/*
		 * The length modifier names the argument's C type, whose width differs by target:
		 * long is 32 bits on i686 and 64 on the others, so %lu must fetch a long.
		 */
		int lng = 0; /* 1 for l, 2 for ll */
		bool sz = false;
		for (; *fmt == 'l' || *fmt == 'z'; fmt++) {
			if (*fmt == 'z')
				sz = true;
			else
				lng++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v;
			if (lng >= 2)
				v = va_arg(ap, long long);
			else if (lng == 1)
				v = va_arg(ap, long);
			else if (sz)
				v = va_arg(ap, ptrdiff_t);
			else
				v = va_arg(ap, int);
			put_number(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, false, width,
				   left, zero);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v;
			if (lng >= 2)
				v = va_arg(ap, unsigned long long);
			else if (lng == 1)
				v = va_arg(ap, unsigned long);
			else if (sz)
				v = va_arg(ap, size_t);
			else
				v = va_arg(ap, unsigned int);
			if (alt && *fmt != 'u') {
				put(&o, '0');
				put(&o, 'x');
			}
			put_number(&o, v, false, *fmt == 'u' ? 10 : 16, *fmt == 'X', width, left,
				   zero);
			break;
		}
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_number(&o, (uintptr_t)va_arg(ap, void *), false, 16, false, width, left,
				   zero);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			size_t n = 0;
			if (!s)
				s = "(null)";
			while (s[n])
				n++;
			put_padded(&o, s, n, width, left, ' ');
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case '%':
			put(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			put(&o, '%');
			put(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int vio_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vio_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
