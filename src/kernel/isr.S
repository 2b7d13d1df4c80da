/*
 * isr.S: one small stub per interrupt vector, and the common path that saves the
 * interrupted context (general registers and the SSE state, since newlib code may be using
 * XMM registers when an interrupt arrives) and calls trap_dispatch(struct trap_frame *).
 *
 * The CPU pushes an error code for some exceptions only (8, 10-14, 17, 21, 29, 30); the
 * other stubs push a zero so every frame has the same layout (include/kernel/trap.h).
 */
	.text
	.code64

.macro STUB vec
	.align 16
isr_stub_\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$\vec
	jmp	isr_common
.endm

/* 256 stubs, written out by the preprocessor (assemblers limit macro recursion). */
#define TEN(m, t) m t##0; m t##1; m t##2; m t##3; m t##4; m t##5; m t##6; m t##7; m t##8; m t##9
#define ALL(m) m 0; m 1; m 2; m 3; m 4; m 5; m 6; m 7; m 8; m 9; \
	TEN(m, 1); TEN(m, 2); TEN(m, 3); TEN(m, 4); TEN(m, 5); TEN(m, 6); TEN(m, 7); \
	TEN(m, 8); TEN(m, 9); TEN(m, 10); TEN(m, 11); TEN(m, 12); TEN(m, 13); TEN(m, 14); \
	TEN(m, 15); TEN(m, 16); TEN(m, 17); TEN(m, 18); TEN(m, 19); TEN(m, 20); TEN(m, 21); \
	TEN(m, 22); TEN(m, 23); TEN(m, 24); m 250; m 251; m 252; m 253; m 254; m 255

	ALL(STUB)

isr_common:
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	mov	%rsp, %rdi		/* argument: the frame */
	mov	%rsp, %rbx		/* callee-saved: find the frame again after the call */
	sub	$512, %rsp
	and	$-16, %rsp		/* fxsave needs 16-byte alignment; so does the ABI */
	fxsave	(%rsp)
	cld
	call	trap_dispatch
	fxrstor	(%rsp)
	mov	%rbx, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	add	$16, %rsp		/* vector and error code */
	iretq

/* The stub addresses, for idt.c. Every stub is 16-byte aligned and below 4 GiB. */
	.section .rodata
	.align 8
	.global isr_stub_table
isr_stub_table:
.macro ADDR vec
	.quad isr_stub_\vec
.endm
	ALL(ADDR)
