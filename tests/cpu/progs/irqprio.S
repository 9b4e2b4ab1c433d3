/* MTIP and MEIP pending together when MIE goes on: the spec takes MEI (11) before MTI (7). */
#include "common.h"
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s0, PLIC
    li t0, 1
    sw t0, (4 * 5)(s0)          # priority[5] = 1
    li t1, 0x2000
    add t1, s0, t1
    li t0, (1 << 5)
    sw t0, 0(t1)                # context 0 enables source 5
    li s1, TESTDEV
    li t0, 1
    sw t0, 0x100(s1)            # line 5 high: MEIP
    li t0, CLINT_MTIMECMP
    sd zero, 0(t0)              # mtimecmp = 0: MTIP
    li t0, (1 << 11) | (1 << 7)
    csrs mie, t0
    li s2, 0                    # traps taken
    csrsi mstatus, 8
1:  j 1b

    .balign 4
trap:
    csrr t0, mcause
    li t3, RESULTS
    slli t4, s2, 3
    add t3, t3, t4
    sd t0, 0(t3)
    addi s2, s2, 1
    slli t0, t0, 1
    srli t0, t0, 1
    li t1, 11
    bne t0, t1, 2f
    li t1, 0x200004             # MEI: claim, lower the line, complete
    add t1, s0, t1
    lw t2, 0(t1)
    sw zero, 0x100(s1)
    sw t2, 0(t1)
    mret
2:  li t0, CLINT_MTIMECMP       # MTI: push the compare value away
    li t1, -1
    sd t1, 0(t0)
    li t0, 2
    bne s2, t0, 3f
    POWEROFF_PASS
3:  mret
