/*
 * Entry and exception vectors. The kernel boots as a raw arm64 Linux Image (kernel.bin):
 * QEMU recognises the header below, loads the image text_offset bytes into RAM and enters it
 * at EL1, MMU and caches off, interrupts masked, the device tree's address in x0 (an ELF
 * would get no device tree from QEMU 7.2, and x0 = 0).
 */
	.section .text.boot, "ax"
	.global _start
_start:
	b	entry			/* code0 (Documentation/arch/arm64/booting.rst) */
	.long	0			/* code1 */
	.quad	0x80000			/* text_offset: linker.ld's 0x40080000 */
	.quad	__kernel_end - _start	/* image_size: what must be free, .bss included */
	.quad	0			/* flags: little-endian, 4 KiB pages unspecified */
	.quad	0, 0, 0			/* res2-res4 */
	.ascii	"ARM\x64"		/* magic */
	.long	0			/* res5 */
entry:
	ldr	x1, =stack_top
	mov	sp, x1
	adr	x1, vectors
	msr	vbar_el1, x1
	isb
	ldr	x1, =__bss_start		/* zero .bss, two words at a time */
	ldr	x2, =__bss_end
1:	cmp	x1, x2
	b.hs	2f
	stp	xzr, xzr, [x1], #16
	b	1b
2:	bl	kmain
3:	wfi
	b	3b

/*
 * Save what a C function may clobber (x0-x18, x29, x30) and the return state, call
 * \handler with the frame, restore, return. 192 bytes keeps sp 16-byte aligned.
 */
.macro	trap handler, kind
	sub	sp, sp, #192
	stp	x0, x1, [sp, #0]
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x29, [sp, #144]
	mrs	x0, elr_el1
	mrs	x1, spsr_el1
	stp	x30, x0, [sp, #160]
	str	x1, [sp, #176]
	mov	x0, #\kind
	mov	x1, sp
	bl	\handler
	ldr	x1, [sp, #176]
	ldp	x30, x0, [sp, #160]
	msr	elr_el1, x0
	msr	spsr_el1, x1
	ldp	x0, x1, [sp, #0]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x29, [sp, #144]
	add	sp, sp, #192
	eret
.endm

/* 16 entries of 0x80 bytes: {sync, irq, fiq, serror} x {EL1 with SP_EL0, EL1 with SP_EL1,
 * EL0 aarch64, EL0 aarch32}. The kernel runs on SP_EL1, so only the second group is live. */
	.balign	2048
vectors:
	.irp	n, 0, 1, 2, 3
	.balign	0x80
	b	bad_entry
	.endr
	.balign	0x80
	b	sync_entry
	.balign	0x80
	b	irq_entry
	.irp	n, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
	.balign	0x80
	b	bad_entry
	.endr

sync_entry:
	trap	trap_fatal, 0
irq_entry:
	trap	irq_dispatch, 1
bad_entry:
	trap	trap_fatal, 2

	.bss
	.balign	16
	.space	65536
stack_top:
