/* A two-segment RISC-V program for the ELF loader test: code, then data with a .bss tail. */
    .section .text
    .globl _start
_start:
    li a0, 0x5555
    j _start

    .section .data
    .balign 8
    .globl marker
marker:
    .dword 0x1122334455667788

    .section .bss
    .balign 8
    .space 64
