/* ecall, ebreak and c.ebreak in M-mode reach mtvec with the right mcause and mepc. */
#include "common.h"
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s1, 0                # slot index for the handler
e1: ecall
    la t0, e1
    RESULT 6, t0
e2: ebreak
    la t0, e2
    RESULT 7, t0
e3: c.ebreak
    la t0, e3
    RESULT 8, t0
    POWEROFF_PASS

    .balign 4
trap:
    csrr t0, mcause
    csrr t1, mepc
    csrr t2, mtval
    li t3, RESULTS
    slli t4, s1, 4
    add t3, t3, t4
    sd t0, 0(t3)            # slots 0,2,4: mcause
    sd t1, 8(t3)            # slots 1,3,5: mepc
    addi s1, s1, 1
    lhu t0, 0(t1)           # step over the instruction (2 or 4 bytes)
    andi t0, t0, 3
    li t2, 3
    li t3, 2
    bne t0, t2, 1f
    li t3, 4
1:  add t1, t1, t3
    csrw mepc, t1
    mret
