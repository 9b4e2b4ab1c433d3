/*
 * Virtual time of accesses (0.1 instructions per ns: 10 ns an instruction). Part A: each access carries the time
 * of its own instruction, counted from the reset (16- and 32-bit instructions alike, across blocks). Part B: a
 * CLINT deadline that falls inside a block makes the timer fire before the first device access after it, and
 * its interrupt is taken before that access (mepc = the access).
 */
#include "common.h"
    .globl _start
_start:
    li t3, TESTDEV                  /* instruction 0 */
    sw zero, 0x10(t3)               /* 1: 10 ns */
    nop                             /* 2 (compressed or not) */
    c.nop                           /* 3 */
    sw zero, 0x14(t3)               /* 4: 40 ns */
    lw a0, 0x18(t3)                 /* 5: 50 ns */
    lw a1, 0x18(t3)                 /* 6: 60 ns, back to back */
    ld a2, 0x20(t3)                 /* 7: 70 ns, both halves */
    j 1f                            /* 8: the block ends */
1:  sw zero, 0x28(t3)               /* 9: 90 ns */

    la t0, trap
    csrw mtvec, t0
    li t0, 1 << 7                   /* MTIE */
    csrw mie, t0
    csrsi mstatus, 8                /* MIE */
    li t1, CLINT_MTIME
    ld t2, 0(t1)
    addi t2, t2, 2                  /* 100..200 ns ahead: inside the nops below */
    li t1, CLINT_MTIMECMP
    sd t2, 0(t1)
    .rept 40
    addi zero, zero, 0
    .endr
store_after:
    sw zero, 0x30(t3)
    j 2f
2:  POWEROFF_PASS

trap:
    csrr t0, mepc
    RESULT 0, t0
    csrr t0, mcause
    RESULT 1, t0
    la t0, store_after
    RESULT 2, t0
    li t0, -1
    li t1, CLINT_MTIMECMP
    sd t0, 0(t1)
    mret
