/* M-mode firmware drops to S-mode with mret; S-mode code calls back with ecall (mcause 9, MPP = S),
 * touches an M-only CSR (illegal instruction, delegated to S through medeleg: scause 2, SPP = S), and a
 * second ecall from S ends the test from M-mode. */
#include "common.h"
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    la t0, strap
    csrw stvec, t0
    li t0, (1 << 2)             # delegate illegal instruction to S
    csrw medeleg, t0
    li s1, 0                    # M trap counter
    li t0, (3 << 11)
    csrc mstatus, t0
    li t0, (1 << 11)            # MPP = S
    csrs mstatus, t0
    la t0, sentry
    csrw mepc, t0
    mret

sentry:
s1call: ecall                   # -> M, mcause 9
    la t0, s1call
    RESULT 2, t0
sill: csrr a0, mstatus          # -> S handler (delegated), scause 2
    la t0, sill
    RESULT 6, t0
s2call: ecall                   # -> M: ends the test
1:  j 1b

    .balign 4
strap:
    csrr t0, scause
    RESULT 3, t0
    csrr t0, sepc
    RESULT 4, t0
    csrr t0, sstatus
    RESULT 5, t0
    csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
    sret

    .balign 4
mtrap:
    bnez s1, 2f
    csrr t0, mcause
    RESULT 0, t0
    csrr t0, mstatus
    RESULT 1, t0
    csrr t0, mepc
    RESULT 7, t0
    addi t0, t0, 4
    csrw mepc, t0
    li s1, 1
    mret
2:  csrr t0, mcause
    RESULT 8, t0
    POWEROFF_PASS
