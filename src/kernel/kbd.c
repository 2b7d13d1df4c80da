/*
 * kbd.c: what this kernel does with virtio-input devices (see include/vio/input.h): a
 * keyboard types into the shell, a tablet or a mouse moves the screen's pointer.
 *
 * The devices speak evdev. A key event carries a key code (KEY_A is 30) and a value (1
 * pressed, 0 released); this file turns the codes into characters for a US layout with
 * Shift, Ctrl and Caps Lock, and queues them for the shell, which reads them as it reads
 * the serial line (kbd_getc is a shell source). Caps Lock's LED goes back to every keyboard
 * on its statusq. A key held down repeats after KBD_REPEAT_DELAY_NS, every
 * KBD_REPEAT_EVERY_NS: the repeat is made here, from input_service's clock, as QEMU sends
 * presses and releases only. A tablet reports absolute X and Y, scaled from its ABS_INFO
 * range to the screen; a mouse reports relative moves; either moves the pointer on the
 * SYN_REPORT that closes the group.
 *
 *   ./run-qemu.sh --display     (adds -device virtio-keyboard-pci -device virtio-tablet-pci)
 */
#include <kernel/kernel.h>
#include <kernel/screen.h>
#include <kernel/shell.h>
#include <kernel/timer.h>
#include <vio/err.h>

#include "glue.h"

#define KBD_REPEAT_DELAY_NS 500000000ull
#define KBD_REPEAT_EVERY_NS 33000000ull
#define KBD_BUF		    256

/* evdev key codes (Linux input-event-codes.h) of the keys with a meaning of their own. */
enum {
	KEY_ESC = 1,
	KEY_BACKSPACE = 14,
	KEY_TAB = 15,
	KEY_ENTER = 28,
	KEY_LEFTCTRL = 29,
	KEY_LEFTSHIFT = 42,
	KEY_RIGHTSHIFT = 54,
	KEY_CAPSLOCK = 58,
	KEY_RIGHTCTRL = 97,
};

/* Key codes 0..57 of a US keyboard: without and with Shift. */
static const char keymap[2][58] = {
    {0,	   0x1b, '1', '2', '3', '4', '5', '6', '7', '8', '9',  '0', '-', '=',  0x7f,
     '\t', 'q',	 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p',  '[', ']', '\r', 0,
     'a',  's',	 'd', 'f', 'g', 'h', 'j', 'k', 'l', ';', '\'', '`', 0,	 '\\', 'z',
     'x',  'c',	 'v', 'b', 'n', 'm', ',', '.', '/', 0,	 '*',  0,   ' '},
    {0,	   0x1b, '!', '@', '#', '$', '%', '^', '&', '*', '(', ')', '_', '+',  0x7f,
     '\t', 'Q',	 'W', 'E', 'R', 'T', 'Y', 'U', 'I', 'O', 'P', '{', '}', '\r', 0,
     'A',  'S',	 'D', 'F', 'G', 'H', 'J', 'K', 'L', ':', '"', '~', 0,	'|',  'Z',
     'X',  'C',	 'V', 'B', 'N', 'M', '<', '>', '?', 0,	 '*', 0,   ' '},
};

struct kinput {
	bool abs_x_seen, abs_y_seen;
	uint32_t abs_x, abs_y; /* the group's absolute position, device units */
	int32_t rel_x, rel_y;  /* the group's relative move */
};
static struct kinput kinputs[MAX_PER_DRIVER];

static bool shift_l, shift_r, ctrl_l, ctrl_r, caps;
static uint16_t held;	   /* the key that repeats, 0: none */
static uint64_t repeat_at; /* clock_ns() of its next repeat */
static char buf[KBD_BUF];
static unsigned head, tail;

static void queue_char(char c)
{
	if (head - tail < KBD_BUF)
		buf[head++ % KBD_BUF] = c;
}

int kbd_getc(void)
{
	if (head == tail)
		return -1;
	return (unsigned char)buf[tail++ % KBD_BUF];
}

static char key_char(uint16_t code)
{
	if (code >= sizeof(keymap[0]))
		return 0;
	bool shift = shift_l || shift_r;
	char c = keymap[0][code];
	if (c >= 'a' && c <= 'z')
		shift ^= caps;
	c = keymap[shift][code];
	if ((ctrl_l || ctrl_r) && c >= 0x40 && c != 0x7f)
		c &= 0x1f; /* Ctrl-C is 0x03, as on the serial line */
	return c;
}

static void set_caps_leds(void)
{
	for (int i = 0; i < n_input; i++)
		if (vio_input_has_code(&inputs[i], VIRTIO_INPUT_EV_LED, VIRTIO_INPUT_LED_CAPSL)) {
			int err = vio_input_set_led(&inputs[i], VIRTIO_INPUT_LED_CAPSL, caps);
			if (err)
				kprintf("kbd: input%d: Caps Lock LED: %s\n", i,
					shell_strerror(err));
		}
}

static void key(uint16_t code, uint32_t value)
{
	bool down = value != 0;
	if (value == 2)
		return; /* a device's own autorepeat: this file repeats by itself */
	switch (code) {
	case KEY_LEFTSHIFT:
		shift_l = down;
		return;
	case KEY_RIGHTSHIFT:
		shift_r = down;
		return;
	case KEY_LEFTCTRL:
		ctrl_l = down;
		return;
	case KEY_RIGHTCTRL:
		ctrl_r = down;
		return;
	case KEY_CAPSLOCK:
		if (down) {
			caps = !caps;
			set_caps_leds();
		}
		return;
	}
	if (!down) {
		if (held == code)
			held = 0;
		return;
	}
	char c = key_char(code);
	if (!c)
		return;
	queue_char(c);
	held = code;
	repeat_at = clock_ns() + KBD_REPEAT_DELAY_NS;
}

static void pointer_sync(struct vio_input *in, struct kinput *k)
{
	uint32_t w, h;
	screen_size(&w, &h);
	if ((k->abs_x_seen || k->abs_y_seen) && w && h) {
		const struct virtio_input_absinfo *ax = &in->abs[0], *ay = &in->abs[1];
		uint32_t x = 0, y = 0;
		/* Device units to pixels; driver-checked: min <= value <= max. */
		if ((int32_t)ax->max > (int32_t)ax->min) /* ABS_INFO is signed */
			x = (uint32_t)((uint64_t)(k->abs_x - ax->min) * (w - 1) /
				       (ax->max - ax->min));
		if ((int32_t)ay->max > (int32_t)ay->min)
			y = (uint32_t)((uint64_t)(k->abs_y - ay->min) * (h - 1) /
				       (ay->max - ay->min));
		screen_pointer_to(x, y);
	}
	if (k->rel_x || k->rel_y)
		screen_pointer_by(k->rel_x, k->rel_y);
	k->abs_x_seen = k->abs_y_seen = false;
	k->rel_x = k->rel_y = 0;
}

/* The driver's on_event: from vio_input_poll, in input_service. */
static void input_event(struct vio_input *in, const struct virtio_input_event *ev, void *arg)
{
	struct kinput *k = arg;
	switch (ev->type) {
	case VIRTIO_INPUT_EV_KEY:
		if (ev->code < 0x100) /* buttons (BTN_*) start at 0x100 */
			key(ev->code, ev->value);
		break;
	case VIRTIO_INPUT_EV_ABS:
		if (ev->code == VIRTIO_INPUT_ABS_X)
			k->abs_x = ev->value, k->abs_x_seen = true;
		else if (ev->code == VIRTIO_INPUT_ABS_Y)
			k->abs_y = ev->value, k->abs_y_seen = true;
		break;
	case VIRTIO_INPUT_EV_REL:
		if (ev->code == VIRTIO_INPUT_REL_X)
			k->rel_x += (int32_t)ev->value;
		else if (ev->code == VIRTIO_INPUT_REL_Y)
			k->rel_y += (int32_t)ev->value;
		break;
	case VIRTIO_INPUT_EV_SYN:
		if (ev->code == VIRTIO_INPUT_SYN_REPORT)
			pointer_sync(in, k);
		break;
	}
}

struct vio_input_opts input_opts(int unit)
{
	kinputs[unit] = (struct kinput){0};
	return (struct vio_input_opts){.on_event = input_event, .arg = &kinputs[unit]};
}

void input_service(int i)
{
	int n = vio_input_poll(&inputs[i]);
	if (n < 0 && n != VIO_EAGAIN) {
		static bool said[MAX_PER_DRIVER];
		if (!said[i])
			kprintf("kbd: input%d: %s\n", i, shell_strerror(n));
		said[i] = true;
	}
	if (held && clock_ns() >= repeat_at) {
		char c = key_char(held);
		if (c)
			queue_char(c);
		repeat_at = clock_ns() + KBD_REPEAT_EVERY_NS;
	}
}
