/* The idle idiom in M-mode: "disable MIE; test for work; wfi; enable MIE". The WFI must wake on the timer
 * although MIE is off, and the interrupt must be taken at the enable. Slots: 0/1 mcause/mepc, 2 the pc after
 * the enable, 3 interrupts taken, 4 the loop's rounds. */
#include "common.h"
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    li s0, CLINT_MTIME
    ld t0, 0(s0)
    li t1, 50000                    # 5 ms at 10 MHz
    add t0, t0, t1
    li t1, CLINT_MTIMECMP
    sd t0, 0(t1)
    li t0, 1 << 7
    csrs mie, t0
    li s2, 0                        # work to do (set by the handler)
    li s3, 0                        # interrupts
    li s4, 0                        # rounds
    la t0, after
    RESULT 2, t0
1:  addi s4, s4, 1
    csrci mstatus, 8
    bnez s2, 2f
    wfi
    csrsi mstatus, 8
after:
    j 1b
2:  RESULT 3, s3
    RESULT 4, s4
    POWEROFF_PASS

    .balign 4
mtrap:
    csrr t0, mcause
    RESULT 0, t0
    csrr t0, mepc
    RESULT 1, t0
    addi s3, s3, 1
    li s2, 1
    li t0, CLINT_MTIMECMP
    li t1, -1
    sd t1, 0(t0)
    mret
