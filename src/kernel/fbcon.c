/*
 * fbcon.c: a text console on the virtio-gpu framebuffer (see include/kernel/screen.h).
 *
 * The screen is a grid of 8x16 cells, each holding one ASCII character, drawn with the font
 * scripts/psf2c.py converts at build time from a Debian console font (build/gen/font.c, never
 * committed). What is written goes into the grid; the rows and columns it changed are the
 * damaged rectangle, and only that rectangle is redrawn into the framebuffer and sent to the
 * host (vio_gpu_flush: TRANSFER_TO_HOST_2D + RESOURCE_FLUSH of it). A line feed on the last
 * row scrolls the grid up a row, which damages every row. The text cursor is an underline in
 * its cell; the mouse pointer is the device's cursor plane (vio_gpu_cursor_*), not drawn here.
 *
 *   ./run-qemu.sh --display          a window with this console and the virtio keyboard
 */
#include <kernel/devices.h>
#include <kernel/kernel.h>
#include <kernel/screen.h>
#include <kernel/serial.h>
#include <kernel/shell.h>
#include <kernel/trap.h>
#include <string.h>
#include <vio/err.h>

#include "glue.h"

#define CELL_W	 8
#define CELL_H	 16
#define MAX_COLS (VIO_GPU_MAX_WIDTH / CELL_W)
#define MAX_ROWS (VIO_GPU_MAX_HEIGHT / CELL_H)
#define FG	 0x00d0d0d0u
#define BG	 0x00000000u

extern const uint8_t fbcon_font[128][16]; /* build/gen/font.c */

static struct vio_gpu *gpu;
static char text[MAX_ROWS][MAX_COLS];
static uint32_t cols, rows, cur_x, cur_y;
/* The damaged cells: rows [d_top, d_bottom), columns [d_left, d_right). Empty: top == bottom. */
static uint32_t d_top, d_bottom, d_left, d_right;
static bool drawing; /* inside screen_write: a log line from the driver must not re-enter */
static bool paused;  /* a picture owns the screen until the next line feed */
static uint32_t line[VIO_GPU_MAX_WIDTH];
static int32_t ptr_x, ptr_y;

static void damage(uint32_t row, uint32_t col, uint32_t nrows, uint32_t ncols)
{
	if (d_top == d_bottom) {
		d_top = row, d_bottom = row + nrows, d_left = col, d_right = col + ncols;
		return;
	}
	d_top = row < d_top ? row : d_top;
	d_bottom = row + nrows > d_bottom ? row + nrows : d_bottom;
	d_left = col < d_left ? col : d_left;
	d_right = col + ncols > d_right ? col + ncols : d_right;
}

/* Draw cells [c0, c1) of text row r into the framebuffer, a scanline at a time. */
static void draw_row(uint32_t r, uint32_t c0, uint32_t c1)
{
	for (uint32_t y = 0; y < CELL_H; y++) {
		for (uint32_t c = c0; c < c1; c++) {
			uint8_t bits = fbcon_font[(uint8_t)text[r][c] & 0x7f][y];
			if (r == cur_y && c == cur_x && y >= CELL_H - 2)
				bits = 0xff; /* the text cursor: an underline */
			for (uint32_t x = 0; x < CELL_W; x++)
				line[(c - c0) * CELL_W + x] = bits & (0x80 >> x) ? FG : BG;
		}
		vio_gpu_write_span(gpu, c0 * CELL_W, r * CELL_H + y, line, (c1 - c0) * CELL_W);
	}
}

/* Redraw the damaged cells and show them: one rectangle to the host. */
static void show_damage(void)
{
	if (d_top == d_bottom || paused)
		return;
	for (uint32_t r = d_top; r < d_bottom; r++)
		draw_row(r, d_left, d_right);
	int err = vio_gpu_flush(gpu, d_left * CELL_W, d_top * CELL_H, (d_right - d_left) * CELL_W,
				(d_bottom - d_top) * CELL_H);
	if (err)
		serial_write("fbcon: flush failed\n", 20);
	d_top = d_bottom = 0;
}

static void scroll(void)
{
	memmove(text[0], text[1], sizeof(text[0]) * (rows - 1));
	memset(text[rows - 1], ' ', sizeof(text[0]));
	damage(0, 0, rows, cols);
}

static void put(char c)
{
	damage(cur_y, cur_x, 1, 1); /* the cursor leaves this cell */
	switch (c) {
	case '\n':
		if (paused) /* the picture goes: all of the text comes back */
			damage(0, 0, rows, cols);
		paused = false;
		cur_x = 0;
		if (++cur_y == rows) {
			cur_y = rows - 1;
			scroll();
		}
		break;
	case '\r':
		cur_x = 0;
		break;
	case '\b':
		if (cur_x)
			cur_x--;
		break;
	case '\t':
		do
			put(' ');
		while (cur_x % 8);
		break;
	default:
		if ((uint8_t)c < 0x20 || (uint8_t)c >= 0x7f)
			break;
		text[cur_y][cur_x] = c;
		if (++cur_x == cols) {
			cur_x = 0;
			if (++cur_y == rows) {
				cur_y = rows - 1;
				scroll();
			}
		}
	}
	damage(cur_y, cur_x, 1, 1); /* ... and lands here */
}

void screen_write(const char *s, size_t n)
{
	if (!gpu || !gpu->width || in_interrupt() || drawing)
		return;
	uint64_t flags = irq_save();
	drawing = true;
	for (size_t i = 0; i < n; i++)
		put(s[i]);
	show_damage();
	drawing = false;
	irq_restore(flags);
}

void screen_echo(const char *s, size_t n)
{
	serial_write(s, n);
	screen_write(s, n);
}

/* A new framebuffer (first, or after a resize): the grid at its size, all of it drawn. */
static void layout(void)
{
	cols = gpu->width / CELL_W;
	rows = gpu->height / CELL_H;
	memset(text, ' ', sizeof(text));
	cur_x = cur_y = 0;
	d_top = d_bottom = 0;
	paused = false;
	damage(0, 0, rows, cols);
	show_damage();
}

/* The pointer: an arrow, white with a black edge, its tip the hot spot. */
static void pointer_image(void)
{
	static uint32_t img[VIO_GPU_CURSOR_SIZE * VIO_GPU_CURSOR_SIZE];
	for (uint32_t y = 0; y < 18; y++)
		for (uint32_t x = 0; x <= y / 2 + y / 4 && x < 12; x++) {
			bool edge = x == 0 || x == y / 2 + y / 4 || y == 17;
			img[y * VIO_GPU_CURSOR_SIZE + x] = edge ? 0xff000000u : 0xffffffffu;
		}
	int err = vio_gpu_cursor_set(gpu, img, 0, 0);
	if (err)
		kprintf("fbcon: no pointer: %s\n", shell_strerror(err));
}

void screen_attach(struct vio_gpu *g)
{
	if (gpu)
		return; /* one screen */
	int err = DEV_CALL(vio_gpu_fb_create(g, 0, 0, 0));
	if (err) {
		kprintf("fbcon: no framebuffer: %s\n", shell_strerror(err));
		return;
	}
	gpu = g;
	DEV_DO(layout());
	DEV_DO(pointer_image());
	kprintf("fbcon: %ux%u, %ux%u text\n", gpu->width, gpu->height, cols, rows);
}

void screen_display_changed(struct vio_gpu *g, void *arg)
{
	(void)arg;
	if (g != gpu || !g->display[g->scanout].enabled)
		return;
	uint32_t w = g->display[g->scanout].width, h = g->display[g->scanout].height;
	if (w == g->width && h == g->height)
		return;
	int err = vio_gpu_fb_create(g, g->scanout, w, h);
	if (err) {
		kprintf("fbcon: resize to %ux%u failed: %s\n", w, h, shell_strerror(err));
		return;
	}
	layout();
	kprintf("fbcon: resized to %ux%u, %ux%u text\n", gpu->width, gpu->height, cols, rows);
}

void screen_size(uint32_t *width, uint32_t *height)
{
	*width = gpu ? gpu->width : 0;
	*height = gpu ? gpu->height : 0;
}

static void pointer_show(void)
{
	if (!gpu || !gpu->width || in_interrupt())
		return;
	DEV_DO(vio_gpu_cursor_move(gpu, (uint32_t)ptr_x, (uint32_t)ptr_y));
}

void screen_pointer_to(uint32_t x, uint32_t y)
{
	if (!gpu || !gpu->width)
		return;
	ptr_x = (int32_t)(x < gpu->width ? x : gpu->width - 1);
	ptr_y = (int32_t)(y < gpu->height ? y : gpu->height - 1);
	pointer_show();
}

void screen_pointer_by(int32_t dx, int32_t dy)
{
	if (!gpu || !gpu->width)
		return;
	ptr_x += dx;
	ptr_y += dy;
	ptr_x = ptr_x < 0 ? 0 : ptr_x >= (int32_t)gpu->width ? (int32_t)gpu->width - 1 : ptr_x;
	ptr_y = ptr_y < 0 ? 0 : ptr_y >= (int32_t)gpu->height ? (int32_t)gpu->height - 1 : ptr_y;
	pointer_show();
}

/*
 * The test pattern: red rises left to right, green top to bottom, blue is x XOR y. A host
 * computes the same picture from the size alone (tests/qemu/scn_gpu_input.py), so a
 * screendump proves every pixel went through the page list, the transfer and the flush.
 */
static uint32_t pattern_pixel(uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	uint32_t r = x * 255 / (w - 1), g = y * 255 / (h - 1), b = (x ^ y) & 0xff;
	return r << 16 | g << 8 | b;
}

static int draw_pattern(void)
{
	for (uint32_t y = 0; y < gpu->height; y++) {
		for (uint32_t x = 0; x < gpu->width; x++)
			line[x] = pattern_pixel(x, y, gpu->width, gpu->height);
		vio_gpu_write_span(gpu, 0, y, line, gpu->width);
	}
	return vio_gpu_flush(gpu, 0, 0, gpu->width, gpu->height);
}

int cmd_screen(int argc, char **argv)
{
	if (!gpu || !gpu->width) {
		kprintf("screen: no virtio-gpu screen\n");
		return -2;
	}
	if (argc == 1) {
		kprintf("screen: %ux%u pixels, %ux%u text, cursor at row %u col %u, pointer at "
			"(%d,%d)%s\n",
			gpu->width, gpu->height, cols, rows, cur_y, cur_x, ptr_x, ptr_y,
			gpu->cursor_shown ? "" : " (no pointer image)");
		kprintf("screen: %llu rectangles flushed\n",
			(unsigned long long)gpu->stats.flushes);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "pattern")) {
		/* The picture stays until the next line feed: the prompt after it is not drawn. */
		kprintf("screen: pattern %ux%u\n", gpu->width, gpu->height);
		paused = true;
		int err = DEV_CALL(draw_pattern());
		if (err) {
			paused = false;
			kprintf("screen: pattern: %s\n", shell_strerror(err));
			return -2;
		}
		return 0;
	}
	return -1;
}
