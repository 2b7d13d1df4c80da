/*
 * The screen and the keyboard: a text console on a virtio-gpu framebuffer (fbcon.c) and the
 * virtio-input devices that type into the shell and move the pointer (kbd.c).
 *
 * The screen mirrors the serial console: everything kprintf prints and everything the shell
 * echoes. Nothing here runs in an interrupt handler; a call from one does nothing.
 */
#ifndef KERNEL_SCREEN_H
#define KERNEL_SCREEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vio/gpu.h>
#include <vio/input.h>

/* fbcon.c: take `gpu` as the screen: a framebuffer at its display's size, the text console
 * on it, the pointer's image. */
void screen_attach(struct vio_gpu *gpu);
/* The gpu's opts.on_display: the host changed the display; follow its new size. */
void screen_display_changed(struct vio_gpu *gpu, void *arg);
/* Text for the screen, as the serial line gets it ('\n', '\r', '\b', tab, printable). */
void screen_write(const char *s, size_t n);
/* The shell's echo: to the serial line and to the screen. */
void screen_echo(const char *s, size_t n);
/* The pointer: at pixel (x, y) of the screen, or moved by (dx, dy) and clamped. */
void screen_pointer_to(uint32_t x, uint32_t y);
void screen_pointer_by(int32_t dx, int32_t dy);
/* The screen's size, 0 x 0 when there is none. */
void screen_size(uint32_t *width, uint32_t *height);
/* `screen` shell command: size, text grid, pointer; `screen pattern` draws the test pattern. */
int cmd_screen(int argc, char **argv);

/* kbd.c: the options of input unit `unit`: its events go to the keyboard or the pointer. */
struct vio_input_opts input_opts(int unit);
/* The next character typed on a virtio keyboard, or -1 (a shell source's getc). */
int kbd_getc(void);
/* Input unit i: poll it, and repeat the key held down. */
void input_service(int i);

#endif
