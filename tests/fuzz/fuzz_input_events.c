/*
 * libFuzzer target: the fuzzer plays a hostile virtio-input device against the driver
 * (src/drivers/virtio_input.c), through the whole-device fake of the host tests.
 *
 * Its config window answers every select with fuzzed sizes and bytes (names full of control
 * bytes, sizes beyond the union, bitmaps announcing anything, axes with min above max). Op
 * bytes make it fill event buffers with any type, code, value and claimed length, many at
 * once; make the driver poll, send LED states or read config; or write garbage over the
 * driver's DMA memory.
 *
 * What must hold whatever the device did:
 *   - name and serial are printable ASCII, NUL-terminated within their arrays;
 *   - every event handed on is one the device announced (type and code), a key's value is
 *     0..2, an absolute X/Y value lies in its ABS_INFO range;
 *   - one poll hands on at most opts.budget events;
 * and at the end vio_input_fini leaves no DMA or private memory allocated.
 *
 *   make build/fuzz/fuzz_input_events && build/fuzz/fuzz_input_events -max_total_time=60
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vio/err.h>
#include <vio/input.h>

#include "fake_env.h"
#include "fuzz_input.h"

#define BUDGET 8

struct state {
	struct fake_env *e;
	struct vio_input in;
	const uint8_t *p, *end;
	struct fake_req req;
	unsigned delivered;
};

FUZZ_INPUT_READERS(struct state)

static void select_written(struct fake_vdev *vd, uint32_t off, int size, void *arg)
{
	struct state *s = arg;
	struct virtio_input_config *c = (void *)vd->config;
	(void)size;

	if (off > offsetof(struct virtio_input_config, subsel))
		return;
	c->size = byte(s);
	/* The rest of the window from the input, zeros once it runs out: byte() by byte() was
	 * two fifths of this target's time. */
	size_t n = sizeof(vd->config) - offsetof(struct virtio_input_config, u);
	size_t have = (size_t)(s->end - s->p) < n ? (size_t)(s->end - s->p) : n;
	memcpy(&c->u, s->p, have);
	memset((uint8_t *)&c->u + have, 0, n - have);
	s->p += have;
}

static void on_event(struct vio_input *in, const struct virtio_input_event *ev, void *arg)
{
	struct state *s = arg;

	s->delivered++;
	if (ev->type == VIRTIO_INPUT_EV_SYN)
		return;
	check(vio_input_has_code(in, ev->type, ev->code));
	if (ev->type == VIRTIO_INPUT_EV_KEY)
		check(ev->value <= 2);
	if (ev->type == VIRTIO_INPUT_EV_ABS && ev->code < 2)
		check((int32_t)ev->value >= (int32_t)in->abs[ev->code].min &&
		      (int32_t)ev->value <= (int32_t)in->abs[ev->code].max);
}

static void check_string(const char *str, size_t size)
{
	size_t n = strnlen(str, size);
	check(n < size);
	for (size_t i = 0; i < n; i++)
		check(str[i] >= 0x20 && str[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state st;
	static const uint8_t config[128];
	struct state *s = &st;

	memset(s, 0, sizeof(*s));
	s->p = data;
	s->end = data + size;
	s->e = fake_env_new(VIRTIO_ID_INPUT, 0, config, sizeof(config), 2, 64);
	fake_env_no_irqs(s->e);
	s->e->vd.on_config_write = select_written;
	s->e->vd.on_config_write_arg = s;
	struct vio_input_opts opts = {.on_event = on_event, .arg = s, .budget = BUDGET};
	check(vio_input_init(&s->in, &s->e->dev, &opts) == 0);
	fake_env_rings(s->e);
	for (int q = 0; q < s->e->nrings; q++)
		s->e->ring[q].deliver_irqs = false;
	check_string(s->in.name, sizeof(s->in.name));
	check_string(s->in.serial, sizeof(s->in.serial));

	while (s->p < s->end) {
		struct fake_vring *fv = &s->e->ring[VIRTIO_INPUT_Q_EVENT];
		unsigned k, before;
		uint8_t buf[200];
		int r;

		switch (byte(s) % 6) {
		case 0:
		case 1:
			for (k = byte(s) % 80; k-- && fake_vring_pop(fv, &s->req);) {
				struct virtio_input_event ev = {half(s), half(s), word(s)};
				uint8_t how = byte(s);
				if (s->req.n_in == 1 && s->req.in_len >= sizeof(ev))
					memcpy((void *)(uintptr_t)s->req.seg[0].addr, &ev,
					       sizeof(ev));
				fake_vring_complete(fv, s->req.head, how & 0x80 ? word(s) : 8);
			}
			break;
		case 2:
			before = s->delivered;
			r = vio_input_poll(&s->in);
			check(s->delivered - before <= BUDGET);
			check(r < 0 || (unsigned)r == s->delivered - before);
			break;
		case 3:
			vio_input_set_led(&s->in, byte(s), byte(s) & 1);
			while (fake_vring_pop(&s->e->ring[1], &s->req))
				fake_vring_complete(&s->e->ring[1], s->req.head,
						    byte(s) & 1 ? word(s) : 0);
			break;
		case 4:
			r = vio_input_config(&s->in, byte(s), byte(s), buf, byte(s));
			check(r < 0 || r <= VIO_INPUT_STR_MAX);
			break;
		case 5:
			fake_env_scribble(s->e, byte(s));
			break;
		}
	}
	s->e->model = NULL;
	check(vio_input_fini(&s->in) == 0);
	check(s->e->fp.dma_live_allocs == 0);
	check(s->e->fp.priv_live_allocs == 0);
	fake_env_free(s->e);
	return 0;
}
