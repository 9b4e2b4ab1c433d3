/*
 * A stand-in for Linux as the firmware's next stage: a RISC-V Linux Image header (so the same code is an Image
 * when copied out of the ELF), then a call to nextstage_check(a0 = hart id, a1 = device tree), whose answer
 * goes to the sifive,test0 device: the machine powers off with it.
 */
    .section .text.head, "ax"
    .option push
    .option norvc
    .globl _start
_start:
    j entry                     /* code0 */
    .word 0                     /* code1 */
    .dword 0x200000             /* text_offset */
    .dword _end - _start        /* image_size */
    .dword 0                    /* flags: little endian */
    .word 2                     /* version 0.2 */
    .word 0                     /* res1 */
    .dword 0                    /* res2 */
    .ascii "RISCV\0\0\0"        /* magic (deprecated) */
    .ascii "RSC\x05"            /* magic2 */
    .word 0                     /* res3 */
entry:
    la sp, stack_top
    call nextstage_check
    li t0, 0x100000
    sw a0, 0(t0)
1:  j 1b
    .option pop

    .section .bss
    .balign 16
    .space 4096
stack_top:
