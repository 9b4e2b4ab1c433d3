/* Access faults: a load and a store to unmapped memory, and a word load from a byte-wide register that
 * the device does not accept; mtval = the address, mepc = the instruction. Ends with a fail code. */
#include "common.h"
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s1, 0
    li a0, 0x30000000
    li a2, BYTEREG
    li a3, 0x5a
    .option push
    .option norvc
f1: ld a1, 8(a0)
f2: sw a1, 16(a0)
f3: lw a3, 0(a2)            # a3 must keep 0x5a
    .option pop
    la t0, f1
    RESULT 10, t0
    la t0, f2
    RESULT 11, t0
    la t0, f3
    RESULT 12, t0
    RESULT 13, a3
    li t0, 0x77
    sb t0, 0(a2)            # the byte access is fine
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
