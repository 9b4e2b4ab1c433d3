/* Entry of chatter.elf: a stack, then main(); main's return value is the poweroff word. */
    .section .text.start
    .globl _start
_start:
    li sp, 0x80100000
    call main
    li t0, 0x100000
    sw a0, 0(t0)
1:  j 1b
