/* A supervisor external interrupt (PLIC context 1 -> SEIP) delegated with mideleg reaches the S-mode
 * handler: scause = 0x8000000000000009, sepc = where S-mode was; S claims and completes on context 1. */
#include "common.h"
    .globl _start
_start:
    la t0, strap
    csrw stvec, t0
    la t0, mtrap
    csrw mtvec, t0
    li t0, (1 << 9)
    csrw mideleg, t0            # SEI to S
    csrs mie, t0                # SEIE
    li s0, PLIC
    li t0, 2
    sw t0, (4 * 5)(s0)          # priority[5] = 2
    li t1, 0x2080
    add t1, s0, t1
    li t0, (1 << 5)
    sw t0, 0(t1)                # context 1 (S) enables source 5
    li s1, TESTDEV
    li t0, (3 << 11)
    csrc mstatus, t0
    li t0, (1 << 11) | (1 << 1) # MPP = S, SIE = 1
    csrs mstatus, t0
    la t0, sentry
    csrw mepc, t0
    mret

sentry:
    li t0, 1
    sw t0, 0x100(s1)            # line 5 high
    li s2, 0
1:  addi s2, s2, 1
    j 1b

    .balign 4
strap:
    csrr t0, scause
    RESULT 0, t0
    csrr t0, sepc
    RESULT 1, t0
    li t1, 0x201004
    add t1, s0, t1
    lw t2, 0(t1)                # claim on context 1
    RESULT 2, t2
    sw zero, 0x100(s1)
    sw t2, 0(t1)
    ecall                       # to M: done

    .balign 4
mtrap:
    csrr t0, mcause
    RESULT 3, t0
    POWEROFF_PASS
