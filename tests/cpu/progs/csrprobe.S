/* Probing a CSR that does not exist traps as an illegal instruction; the handler skips it and the
 * program goes on. A 16-bit illegal instruction (0x0000) is skipped by 2. */
#include "common.h"
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s1, 0
    li a0, 0x77
p1: csrr a0, 0x7ff          # no such CSR: a0 must stay 0x77
    RESULT 4, a0
    la t0, p1
    RESULT 5, t0
p2: .hword 0x0000
    la t0, p2
    RESULT 6, t0
    li t0, 0x600d
    RESULT 7, t0
    li t0, 50000                # let some time pass (time moves between slices of 10000 instructions)
2:  addi t0, t0, -1
    bnez t0, 2b
    li s0, CLINT_MTIME          # the time CSR counts with the CLINT's mtime
    ld t1, 0(s0)
    rdtime t2
    ld t3, 0(s0)
    RESULT 8, t1
    RESULT 9, t2
    RESULT 10, t3
    RESULT 11, s1               # traps taken: the two probes, not rdtime
    POWEROFF_PASS

    .balign 4
trap:
    csrr t0, mcause
    csrr t1, mepc
    li t3, RESULTS
    slli t4, s1, 4
    add t3, t3, t4
    sd t0, 0(t3)            # slots 0, 2: mcause
    sd t1, 8(t3)            # slots 1, 3: mepc
    addi s1, s1, 1
    lhu t0, 0(t1)
    andi t0, t0, 3
    li t2, 3
    li t3, 2
    bne t0, t2, 1f
    li t3, 4
1:  add t1, t1, t3
    csrw mepc, t1
    mret
