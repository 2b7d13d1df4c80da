/*
 * entry.S: where OpenSBI jumps, and where every trap lands.
 *
 * QEMU -bios default runs OpenSBI in machine mode; it jumps to the ELF entry (0x80200000) in
 * supervisor mode with a0 = this hart's id and a1 = the device tree's physical address,
 * paging off and interrupts disabled. We take a stack, clear .bss, and call kmain.
 */
	.section .text.entry
	.globl _start
_start:
	la	sp, stack_top
	la	t0, __bss_start
	la	t1, __bss_end
1:	bgeu	t0, t1, 2f
	sd	zero, 0(t0)
	addi	t0, t0, 8
	j	1b
2:	call	kmain
3:	wfi			/* kmain never returns; if it did, sleep forever */
	j	3b

/*
 * kernelvec: stvec points here. A trap can come at any instruction of the kernel, so save
 * every register the C code may clobber (the caller-saved ones: ra, t0-t6, a0-a7), call
 * trap() on the same stack, restore, and sret back to sepc. The callee-saved registers
 * (s0-s11, sp) are preserved by trap() itself. No floating point: the kernel is built
 * without it, so the F registers never change.
 */
	.text
	.globl kernelvec
	.align 4
kernelvec:
	addi	sp, sp, -128
	sd	ra, 0(sp)
	sd	t0, 8(sp)
	sd	t1, 16(sp)
	sd	t2, 24(sp)
	sd	t3, 32(sp)
	sd	t4, 40(sp)
	sd	t5, 48(sp)
	sd	t6, 56(sp)
	sd	a0, 64(sp)
	sd	a1, 72(sp)
	sd	a2, 80(sp)
	sd	a3, 88(sp)
	sd	a4, 96(sp)
	sd	a5, 104(sp)
	sd	a6, 112(sp)
	sd	a7, 120(sp)
	call	trap
	ld	ra, 0(sp)
	ld	t0, 8(sp)
	ld	t1, 16(sp)
	ld	t2, 24(sp)
	ld	t3, 32(sp)
	ld	t4, 40(sp)
	ld	t5, 48(sp)
	ld	t6, 56(sp)
	ld	a0, 64(sp)
	ld	a1, 72(sp)
	ld	a2, 80(sp)
	ld	a3, 88(sp)
	ld	a4, 96(sp)
	ld	a5, 104(sp)
	ld	a6, 112(sp)
	ld	a7, 120(sp)
	addi	sp, sp, 128
	sret

/* One 16 KiB stack for the one hart. Traps run on it too; they never nest (the hart clears
 * SIE when it takes one, and sret restores it). */
	.section .bss.stack
	.globl stack_top
	.align 12
	.space 16384
stack_top:
