/* rel-eng KVM probe (rel_eng/boottest/kvmprobe.py holds the assembled bytes).
 * A multiboot kernel that enters long mode with paging, moves to the address where Linux maps
 * itself (0xffffffff80000000 + phys) with the identity map dropped, takes an exception through a
 * 64-bit IDT there, and reports over COM1 and isa-debug-exit.
 * Build: as --64 -o p.o kvmprobe.S && ld -m elf_x86_64 -Ttext=0x100000 -N --build-id=none -o p.elf p.o
 *        && objcopy -O binary -j .text -j .data p.elf p.bin */
        .set HIGH, 0xffffffff80000000
        .set COM1, 0x3f8
        .set EXIT_PORT, 0xf4
        .section .text
        .code32
        .globl _start
mb_header:
        .long 0x1BADB002
        .long 0x00010000
        .long -(0x1BADB002 + 0x00010000)
        .long mb_header            /* header_addr */
        .long mb_header            /* load_addr */
        .long _edata               /* load_end_addr */
        .long _end                 /* bss_end_addr: qemu zeroes the tables and the stack */
        .long _start               /* entry_addr */
_start:
        cli
        mov $stack_top, %esp
        mov $'1', %al
        mov $COM1, %dx
        out %al, %dx
        /* page tables: pml4[0] and pml4[511] -> pdpt; pdpt[0] and pdpt[510] -> pd;
         * pd[0] = 2 MiB page at 0 */
        mov $pdpt, %eax
        or $3, %eax
        mov %eax, pml4
        mov %eax, pml4 + 511*8
        mov $pd, %eax
        or $3, %eax
        mov %eax, pdpt
        mov %eax, pdpt + 510*8
        movl $0x83, pd
        mov $pml4, %eax
        mov %eax, %cr3
        mov %cr4, %eax
        or $0x20, %eax             /* PAE */
        mov %eax, %cr4
        mov $0xC0000080, %ecx      /* EFER */
        rdmsr
        or $0x100, %eax            /* LME */
        wrmsr
        mov %cr0, %eax
        or $0x80000001, %eax       /* PG | PE */
        mov %eax, %cr0
        lgdt gdt_ptr
        ljmp $0x08, $long_low
        .code64
long_low:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        movabs $(high_entry + HIGH), %rax
        jmp *%rax
high_entry:
        movabs $(stack_top + HIGH), %rsp
        mov $'2', %al
        mov $COM1, %dx
        out %al, %dx
        movabs $(gdt_ptr64 + HIGH), %rax
        lgdt (%rax)
        /* the identity map is gone: only the high mapping holds from here on */
        movq $0, (pml4 + HIGH)
        mov %cr3, %rax
        mov %rax, %cr3
        /* a 64-bit IDT at its high address: int3 must come back through it */
        movabs $(bp_handler + HIGH), %rax
        movabs $(idt + HIGH + 3*16), %rdi
        mov %ax, (%rdi)
        movw $0x08, 2(%rdi)
        movw $0x8e00, 4(%rdi)
        shr $16, %rax
        mov %ax, 6(%rdi)
        shr $16, %rax
        mov %eax, 8(%rdi)
        movabs $(idt_ptr + HIGH), %rax
        movabs $(idt + HIGH), %rbx
        mov %rbx, 2(%rax)
        lidt (%rax)
        movabs $(hits + HIGH), %rbx
        int3
        cmpl $1, (%rbx)
        jne fail
        movabs $(ok_msg + HIGH), %rsi
        mov $ok_len, %ecx
        mov $COM1, %dx
        rep outsb
        mov $EXIT_PORT, %dx
        mov $0x21, %eax            /* qemu exits with (0x21 << 1) | 1 = 67 */
        out %eax, %dx
fail:
        mov $COM1, %dx
        mov $'F', %al
        out %al, %dx
1:      hlt
        jmp 1b
bp_handler:
        incl (%rbx)
        iretq
        .section .data
        .align 16
gdt:
        .quad 0
        .quad 0x00209a0000000000   /* 64-bit code */
        .quad 0x0000920000000000   /* data */
gdt_ptr:
        .word gdt_ptr - gdt - 1
        .long gdt
        .align 16
gdt_ptr64:
        .word gdt_ptr - gdt - 1
        .quad gdt + HIGH
        .align 16
idt_ptr:
        .word 256*16 - 1
        .quad 0
hits:   .long 0
ok_msg: .ascii "\nREL-ENG-KVM-PROBE: long mode, paging, high-half kernel map, 64-bit IDT: ok\n"
        .set ok_len, . - ok_msg
_edata:
        .section .bss
        .align 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pd:     .skip 4096
idt:    .skip 4096
        .skip 4096
stack_top:
_end:
