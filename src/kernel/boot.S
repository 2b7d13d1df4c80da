/*
 * boot.S: from the boot loader's 32-bit protected mode to kmain() in 64-bit long mode.
 *
 * Two ways in, one way on:
 *   _start     GRUB, multiboot2 (spec 3.3): %eax = 0x36d76289, %ebx = boot information.
 *   pvh_start  QEMU -kernel, PVH (Xen ELF note 18): %ebx = struct hvm_start_info.
 * Both run with paging off and interrupts disabled. We clear .bss, identity-map the first
 * 4 GiB with 2 MiB pages (enough to reach the boot information and ourselves; kmain
 * builds the real tables from the memory map), enable PAE + long mode + paging, and
 * jump to 64-bit code, which enables SSE (newlib uses it) and calls kmain(magic, info).
 */
#define MB2_MAGIC	0xe85250d6
#define MB2_ARCH_I386	0
#define PVH_MAGIC	0x336ec578

#define CR0_PE		(1 << 0)
#define CR0_MP		(1 << 1)
#define CR0_EM		(1 << 2)
#define CR0_WP		(1 << 16)
#define CR0_PG		(1 << 31)
#define CR4_PAE		(1 << 5)
#define CR4_OSFXSR	(1 << 9)
#define CR4_OSXMMEXCPT	(1 << 10)
#define MSR_EFER	0xc0000080
#define EFER_LME	(1 << 8)
#define EFER_NXE	(1 << 11)
#define PTE_P		0x1
#define PTE_W		0x2
#define PTE_PS		0x80

	.section .multiboot2, "a"
	.align 8
mb2_header:
	.long MB2_MAGIC
	.long MB2_ARCH_I386
	.long mb2_header_end - mb2_header
	.long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
	/* Framebuffer tag (spec 3.1.10), optional, any mode: UEFI has no text mode, so without
	 * it GRUB on UEFI leaves the kernel no display at all; with it the kernel is told where
	 * the firmware's graphics framebuffer is. On BIOS GRUB sets a VBE mode when there is a
	 * VGA, and stays in text mode when there is none. The kernel only reports it. */
	.align 8
	.short 5		/* type: framebuffer */
	.short 1		/* flags: optional */
	.long 20
	.long 0, 0, 0		/* width, height, depth: no preference */
	/* end tag: type 0, flags 0, size 8 (we take the ELF entry point and load address) */
	.align 8
	.short 0
	.short 0
	.long 8
mb2_header_end:

	/* PVH: XEN_ELFNOTE_PHYS32_ENTRY (18) names the 32-bit entry point. */
	.section .note.Xen, "a"
	.align 4
	.long 4			/* name size: "Xen\0" */
	.long 4			/* descriptor size */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.align 4
	.long pvh_start

	.section .boot.text, "ax"
	.code32
	.global _start
_start:
	cli
	mov	%eax, %edi		/* multiboot2 magic */
	mov	%ebx, %esi		/* multiboot2 info */
	jmp	common32

	.global pvh_start
pvh_start:
	cli
	mov	$PVH_MAGIC, %edi
	mov	%ebx, %esi		/* hvm_start_info */

common32:
	/* Clear .bss (page tables and the boot stack live there). %edi/%esi survive in %ebp/%esp-free regs. */
	mov	%edi, %ebp
	mov	%esi, %edx
	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	xor	%eax, %eax
	cld
	rep stosb
	mov	%ebp, boot_magic
	mov	%edx, boot_info
	mov	$boot_stack_top, %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages = 0..4 GiB. */
	mov	$boot_pdpt, %eax
	or	$(PTE_P | PTE_W), %eax
	mov	%eax, boot_pml4
	mov	$boot_pd, %eax
	or	$(PTE_P | PTE_W), %eax
	mov	$boot_pdpt, %edi
	mov	$4, %ecx
1:	mov	%eax, (%edi)
	add	$4096, %eax
	add	$8, %edi
	loop	1b

	mov	$boot_pd, %edi
	mov	$(PTE_P | PTE_W | PTE_PS), %eax
	xor	%ebx, %ebx		/* bit 32+ of the address: the pages span exactly 4 GiB */
	mov	$2048, %ecx
2:	mov	%eax, (%edi)
	mov	%ebx, 4(%edi)
	add	$0x200000, %eax
	add	$8, %edi
	loop	2b

	/* Long mode: PAE, CR3, EFER.LME (+NXE), then paging. */
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$boot_pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$(EFER_LME | EFER_NXE), %eax
	wrmsr
	mov	%cr0, %eax
	or	$(CR0_PG | CR0_PE | CR0_WP), %eax
	mov	%eax, %cr0

	lgdt	boot_gdt_ptr
	ljmp	$0x08, $long_entry

	.code64
long_entry:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	xor	%ax, %ax
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$boot_stack_top, %rsp
	xor	%rbp, %rbp		/* terminates frame-pointer backtraces */

	/* SSE on: newlib's string and printf code may use XMM registers. */
	mov	%cr0, %rax
	and	$~CR0_EM, %rax
	or	$CR0_MP, %rax
	mov	%rax, %cr0
	mov	%cr4, %rax
	or	$(CR4_OSFXSR | CR4_OSXMMEXCPT), %rax
	mov	%rax, %cr4
	fninit

	mov	boot_magic, %edi
	mov	boot_info, %esi
	call	kmain
3:	cli
	hlt
	jmp	3b

	.section .rodata
	.align 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff	/* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
	.short boot_gdt_end - boot_gdt - 1
	.long boot_gdt

	.data
	.global boot_magic, boot_info
boot_magic:	.long 0
boot_info:	.long 0

	.bss
	.align 4096
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096
	.align 16
	.global boot_stack_top
boot_stack:	.skip 64 * 1024
boot_stack_top:
