/* A load from unmapped memory is a load access fault with mtval = the address; a store, a store fault. */
#include "common.h"
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s1, 0
    li a0, 0x30000000
    .option push
    .option norvc
f1: ld a1, 8(a0)
    la t0, f1
    RESULT 6, t0
f2: sw a1, 16(a0)
    .option pop
    la t0, f2
    RESULT 7, t0
    POWEROFF_FAIL 42

    .balign 4
trap:
    csrr t0, mcause
    csrr t1, mepc
    csrr t2, mtval
    li t3, RESULTS
    li t4, 24
    mul t4, t4, s1
    add t3, t3, t4
    sd t0, 0(t3)
    sd t1, 8(t3)
    sd t2, 16(t3)
    addi s1, s1, 1
    addi t1, t1, 4
    csrw mepc, t1
    mret
