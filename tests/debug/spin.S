/* Runs until stopped from outside: counts in `spins` (a RAM variable a debugger can watch). */
    .section .text
    .globl _start
_start:
    la t0, spins
1:  ld t1, 0(t0)
    addi t1, t1, 1
    sd t1, 0(t0)
    j 1b

    .section .data
    .globl spins
    .balign 8
spins:
    .dword 0
