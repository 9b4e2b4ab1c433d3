/*
 * What the guest sees of a device that failed (tests/hub-dev/devices/regdev.c at 0x10020000, no restart): the
 * read during which its process dies is a load access fault (mcause 5, mtval the address, the destination register
 * left alone); later stores, to its IO or its posted region, are store access faults (mcause 7). The handler steps
 * over the instruction. Status 0; otherwise the number of the first check that failed.
 */
#include "fw.h"
#define REGDEV 0x10020000
#define REGDEV_POSTED 0x10021000
#define R_ABORT 0xc0                /* read: the process aborts while answering */
    .section .text
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s0, REGDEV
    li s2, 0                        /* traps taken */
    li a0, 0x5a5a
    lw a0, R_ABORT(s0)
    li t0, 0x5a5a
    bne a0, t0, f1
    li t0, 5
    bne s3, t0, f2
    li t0, REGDEV + R_ABORT
    bne s4, t0, f3
    sw zero, 4(s0)
    li t0, 7
    bne s3, t0, f4
    li t0, REGDEV + 4
    bne s4, t0, f5
    li t1, REGDEV_POSTED
    sw zero, 0(t1)
    li t0, 7
    bne s3, t0, f6
    bne s4, t1, f7
    li t0, 3
    bne s2, t0, f8
    PASS
f1: FAIL 1
f2: FAIL 2
f3: FAIL 3
f4: FAIL 4
f5: FAIL 5
f6: FAIL 6
f7: FAIL 7
f8: FAIL 8

trap:
    csrr s3, mcause
    csrr s4, mtval
    csrr t6, mepc
    addi t6, t6, 4
    csrw mepc, t6
    addi s2, s2, 1
    mret
