/* External interrupt through the PLIC: the test raises source 5 when the program writes the doorbell. */
#include "common.h"
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s0, PLIC
    li t0, 3
    sw t0, (4 * 5)(s0)          # priority[5] = 3
    li t1, 0x2000
    add t1, s0, t1
    li t0, (1 << 5)
    sw t0, 0(t1)                # context 0 enables source 5
    li t1, 0x200000
    add t1, s0, t1
    sw zero, 0(t1)              # threshold 0
    li t0, (1 << 11)            # MEIE
    csrs mie, t0
    csrsi mstatus, 8
    li s1, TESTDEV
    li t0, 1
    sw t0, 0x100(s1)            # doorbell: line 5 goes high
1:  wfi
    j 1b

    .balign 4
trap:
    csrr t0, mcause
    RESULT 0, t0
    li t1, 0x200004
    add t1, s0, t1
    lw t2, 0(t1)                # claim
    RESULT 1, t2
    lw t3, 0(t1)                # nothing else pending
    RESULT 2, t3
    sw zero, 0x100(s1)          # line 5 goes low
    sw t2, 0(t1)                # complete
    li t0, 0x1000
    add t0, s0, t0
    lw t0, 0(t0)                # pending word 0
    RESULT 3, t0
    POWEROFF_PASS
