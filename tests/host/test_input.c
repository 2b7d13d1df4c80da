/*
 * Unit tests for the virtio-input driver (src/drivers/virtio_input.c) against a fake input
 * device (fake_env.h) whose config space is a select window, as QEMU's: writing select and
 * subsel makes size and the union show that item. It announces a keyboard's keys and LEDs
 * and a tablet's axes; the tests send it events, good and bad, many at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vio/err.h>
#include <vio/input.h>

#include "fake_env.h"

#define KEY_A	30
#define ABS_MAX 0x7fff

struct dev {
	const char *name;    /* ID_NAME as the device answers it */
	uint8_t name_size;   /* the size it claims for it (0: strlen) */
	uint8_t status_seen; /* EV_LED events taken off the statusq */
	uint16_t last_led_code;
	uint32_t last_led_value;
	bool keep_status; /* never give status buffers back */
	struct fake_req req;
};

static void set_u(struct fake_vdev *vd, const void *p, uint8_t size)
{
	struct virtio_input_config *c = (void *)vd->config;
	memset(&c->u, 0, sizeof(vd->config) - offsetof(struct virtio_input_config, u));
	memcpy(&c->u, p, size < 120 ? size : 120);
	c->size = size;
}

static void select_written(struct fake_vdev *vd, uint32_t off, int size, void *arg)
{
	struct dev *d = arg;
	struct virtio_input_config *c = (void *)vd->config;
	uint8_t bits[128] = {0};
	(void)size;

	if (off > offsetof(struct virtio_input_config, subsel))
		return;
	switch (c->select) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		set_u(vd, d->name, d->name_size ? d->name_size : (uint8_t)strlen(d->name));
		break;
	case VIRTIO_INPUT_CFG_ID_SERIAL:
		set_u(vd, "SN-1", 4);
		break;
	case VIRTIO_INPUT_CFG_ID_DEVIDS: {
		struct virtio_input_devids ids = {6, 0x627, 1, 1};
		set_u(vd, &ids, sizeof(ids));
		break;
	}
	case VIRTIO_INPUT_CFG_EV_BITS:
		if (c->subsel == VIRTIO_INPUT_EV_KEY)
			bits[KEY_A / 8] = 1u << (KEY_A % 8), set_u(vd, bits, 8);
		else if (c->subsel == VIRTIO_INPUT_EV_ABS)
			bits[0] = 3, set_u(vd, bits, 1);
		else if (c->subsel == VIRTIO_INPUT_EV_LED)
			bits[0] = 7, set_u(vd, bits, 1);
		else
			set_u(vd, bits, 0);
		break;
	case VIRTIO_INPUT_CFG_ABS_INFO: {
		struct virtio_input_absinfo a = {0, ABS_MAX, 0, 0, 0};
		set_u(vd, &a, sizeof(a));
		break;
	}
	default:
		set_u(vd, bits, 0);
	}
}

static void input_model(struct fake_env *e)
{
	struct dev *d = e->model_arg;

	if (!e->nrings && e->dev.nvqs == 2 && e->dev.vqs[1].size)
		fake_env_rings(e);
	if (!e->nrings || d->keep_status)
		return;
	while (fake_vring_pop(&e->ring[1], &d->req)) {
		struct virtio_input_event ev;
		assert_int_equal(d->req.n_in, 0);
		assert_int_equal(fake_vring_gather(&d->req, &ev, sizeof(ev)), sizeof(ev));
		assert_int_equal(ev.type, VIRTIO_INPUT_EV_LED);
		d->status_seen++;
		d->last_led_code = ev.code;
		d->last_led_value = ev.value;
		fake_vring_complete(&e->ring[1], d->req.head, 0);
	}
}

struct t {
	struct fake_env *e;
	struct dev d;
	struct vio_input in;
	struct virtio_input_event got[256];
	unsigned ngot;
};

static void on_event(struct vio_input *in, const struct virtio_input_event *ev, void *arg)
{
	struct t *t = arg;
	(void)in;
	if (t->ngot < 256)
		t->got[t->ngot] = *ev;
	t->ngot++;
}

static struct t *setup_named(const char *name, uint8_t name_size, uint32_t budget)
{
	static const uint8_t config[128]; /* a select window: 128 bytes, 120 of union */
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->e = fake_env_new(VIRTIO_ID_INPUT, 0, config, sizeof(config), 2, 64);
	t->d.name = name;
	t->d.name_size = name_size;
	t->e->vd.on_config_write = select_written;
	t->e->vd.on_config_write_arg = &t->d;
	t->e->model = input_model;
	t->e->model_arg = &t->d;
	struct vio_input_opts opts = {.on_event = on_event, .arg = t, .budget = budget};
	assert_int_equal(vio_input_init(&t->in, &t->e->dev, &opts), 0);
	fake_env_rings(t->e);
	return t;
}

static struct t *setup(void)
{
	return setup_named("Fake Keyboard", 0, 0);
}

static void teardown(struct t *t)
{
	t->e->model = NULL;
	vio_input_fini(&t->in);
	assert_int_equal(t->e->fp.dma_live_allocs, 0);
	fake_env_free(t->e);
	free(t);
}

/* The device fills one posted event buffer with `ev`, claiming `len` bytes. */
static bool send_event(struct t *t, uint16_t type, uint16_t code, uint32_t value, uint32_t len)
{
	struct fake_vring *fv = &t->e->ring[VIRTIO_INPUT_Q_EVENT];
	struct fake_req r;
	if (!fake_vring_pop(fv, &r))
		return false;
	assert_int_equal(r.n_in, 1);
	assert_int_equal(r.in_len, sizeof(struct virtio_input_event));
	struct virtio_input_event *ev = (void *)(uintptr_t)r.seg[0].addr;
	*ev = (struct virtio_input_event){type, code, value};
	fake_vring_complete(fv, r.head, len);
	return true;
}

static void test_init_reads_the_config_and_fills_the_eventq(void **state)
{
	(void)state;
	struct t *t = setup();

	assert_string_equal(t->e->dev.name, "virtio-input");
	assert_string_equal(t->in.name, "Fake Keyboard");
	assert_string_equal(t->in.serial, "SN-1");
	assert_int_equal(t->in.ids.vendor, 0x627);
	assert_int_equal(t->in.ev_types, (1u << VIRTIO_INPUT_EV_KEY) | (1u << VIRTIO_INPUT_EV_ABS) |
					     (1u << VIRTIO_INPUT_EV_LED));
	assert_true(vio_input_has_code(&t->in, VIRTIO_INPUT_EV_KEY, KEY_A));
	assert_false(vio_input_has_code(&t->in, VIRTIO_INPUT_EV_KEY, KEY_A + 1));
	assert_false(vio_input_has_code(&t->in, VIRTIO_INPUT_EV_REL, 0));
	assert_int_equal(t->in.abs[1].max, ABS_MAX);
	assert_int_equal(fake_vring_avail_pending(&t->e->ring[0]), 64);
	assert_true(t->e->vd.status & VIRTIO_CONFIG_S_DRIVER_OK);
	teardown(t);
}

static void test_config_string_longer_than_the_space_is_cut(void **state)
{
	(void)state;
	static char long_name[200];
	memset(long_name, 'n', sizeof(long_name) - 1);
	/* The device claims 200 bytes: more than the union (128) and than its config space
	 * (128 bytes, so 120 of union). */
	struct t *t = setup_named(long_name, 200, 0);

	assert_int_equal(strlen(t->in.name), 120);
	char buf[8];
	assert_int_equal(vio_input_config(&t->in, VIRTIO_INPUT_CFG_ID_NAME, 0, buf, sizeof(buf)),
			 8);
	teardown(t);
}

static void test_config_string_stops_at_garbage(void **state)
{
	(void)state;
	struct t *t = setup_named("Kbd\x01\xff\x1b[2J", 0, 0);

	assert_string_equal(t->in.name, "Kbd");
	teardown(t);
}

static void test_events_are_delivered_and_buffers_return(void **state)
{
	(void)state;
	struct t *t = setup();

	assert_true(send_event(t, VIRTIO_INPUT_EV_KEY, KEY_A, 1, 8));
	assert_true(send_event(t, VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0, 8));
	assert_true(send_event(t, VIRTIO_INPUT_EV_ABS, 1, ABS_MAX, 8));
	assert_int_equal(vio_input_poll(&t->in), 3);
	assert_int_equal(t->ngot, 3);
	assert_int_equal(t->got[0].code, KEY_A);
	assert_int_equal(t->got[2].value, ABS_MAX);
	assert_int_equal(fake_vring_avail_pending(&t->e->ring[0]), 64); /* full again */
	teardown(t);
}

static void test_bad_events_are_refused_and_buffers_return(void **state)
{
	(void)state;
	struct t *t = setup();

	assert_true(send_event(t, VIRTIO_INPUT_EV_KEY, KEY_A, 1, 4));	    /* short */
	assert_true(send_event(t, VIRTIO_INPUT_EV_KEY, KEY_A, 1, 16));	    /* long */
	assert_true(send_event(t, VIRTIO_INPUT_EV_REL, 0, 1, 8));	    /* type not announced */
	assert_true(send_event(t, VIRTIO_INPUT_EV_KEY, KEY_A + 1, 1, 8));   /* code not announced */
	assert_true(send_event(t, VIRTIO_INPUT_EV_KEY, KEY_A, 7, 8));	    /* key value */
	assert_true(send_event(t, VIRTIO_INPUT_EV_ABS, 0, ABS_MAX + 1, 8)); /* outside ABS_INFO */
	assert_true(send_event(t, 0xffff, 0xffff, 0, 8));		    /* no such type */
	assert_int_equal(vio_input_poll(&t->in), 0);
	assert_int_equal(t->ngot, 0);
	assert_int_equal(t->in.stats.bad_events, 7);
	assert_int_equal(fake_vring_avail_pending(&t->e->ring[0]), 64);
	teardown(t);
}

static void test_event_flood_is_taken_a_budget_at_a_time(void **state)
{
	(void)state;
	struct t *t = setup_named("Fake Keyboard", 0, 8);

	for (int i = 0; i < 64; i++)
		assert_true(send_event(t, VIRTIO_INPUT_EV_KEY, KEY_A, (uint32_t)i & 1, 8));
	assert_int_equal(vio_input_poll(&t->in), 8);
	assert_int_equal(t->ngot, 8);
	for (int polls = 0; polls < 7; polls++)
		assert_int_equal(vio_input_poll(&t->in), 8);
	assert_int_equal(t->ngot, 64);
	assert_int_equal(vio_input_poll(&t->in), 0);
	teardown(t);
}

static void test_device_answering_every_repost_cannot_hold_the_poll(void **state)
{
	(void)state;
	struct t *t = setup_named("Fake Keyboard", 0, 0);
	uint8_t *lo = t->in.in_dma;

	/* Every buffer posted comes straight back (8 zero bytes: EV_SYN). */
	fake_env_instant_completions(t->e, 0, lo, 4096, 8, 10000);
	for (int i = 0; i < 64; i++)
		assert_true(send_event(t, VIRTIO_INPUT_EV_SYN, 0, 0, 8));
	int n = vio_input_poll(&t->in);
	assert_true(n > 0 && n <= VIO_INPUT_BUDGET);
	fake_env_instant_completions(t->e, -1, NULL, 0, 0, 0);
	teardown(t);
}

static void test_caps_lock_led_goes_to_the_statusq(void **state)
{
	(void)state;
	struct t *t = setup();

	assert_int_equal(vio_input_set_led(&t->in, VIRTIO_INPUT_LED_CAPSL, true), 0);
	fake_env_run(t->e);
	assert_int_equal(t->d.status_seen, 1);
	assert_int_equal(t->d.last_led_code, VIRTIO_INPUT_LED_CAPSL);
	assert_int_equal(t->d.last_led_value, 1);
	assert_int_equal(t->in.leds, 1u << VIRTIO_INPUT_LED_CAPSL);
	assert_int_equal(vio_input_set_led(&t->in, VIRTIO_INPUT_LED_CAPSL, false), 0);
	fake_env_run(t->e);
	assert_int_equal(t->d.last_led_value, 0);
	assert_int_equal(t->in.leds, 0);
	teardown(t);
}

static void test_status_slots_run_out_when_the_device_keeps_them(void **state)
{
	(void)state;
	struct t *t = setup();
	int err = 0, sent = 0;

	t->d.keep_status = true;
	while ((err = vio_input_set_led(&t->in, VIRTIO_INPUT_LED_CAPSL, sent & 1)) == 0)
		sent++;
	assert_int_equal(err, VIO_EAGAIN);
	assert_int_equal(sent, VIO_INPUT_STATUS_SLOTS);
	assert_int_equal(t->in.stats.status_busy, 1);
	teardown(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_reads_the_config_and_fills_the_eventq),
	    cmocka_unit_test(test_config_string_longer_than_the_space_is_cut),
	    cmocka_unit_test(test_config_string_stops_at_garbage),
	    cmocka_unit_test(test_events_are_delivered_and_buffers_return),
	    cmocka_unit_test(test_bad_events_are_refused_and_buffers_return),
	    cmocka_unit_test(test_event_flood_is_taken_a_budget_at_a_time),
	    cmocka_unit_test(test_device_answering_every_repost_cannot_hold_the_poll),
	    cmocka_unit_test(test_caps_lock_led_goes_to_the_statusq),
	    cmocka_unit_test(test_status_slots_run_out_when_the_device_keeps_them),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
