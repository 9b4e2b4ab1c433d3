/* CLINT timer interrupt: mtimecmp = mtime + 1000 ticks, spin until the interrupt arrives. */
#include "common.h"
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s0, CLINT_MTIME
    ld t0, 0(s0)
    addi t0, t0, 1000
    RESULT 0, t0                # the compare value
    li s1, CLINT_MTIMECMP
    sd t0, 0(s1)
    li t0, (1 << 7)             # MTIE
    csrs mie, t0
    csrsi mstatus, 8            # MIE
    li s2, 0
1:  addi s2, s2, 1
    j 1b

    .balign 4
trap:
    li s0, CLINT_MTIME
    ld t0, 0(s0)
    RESULT 1, t0                # mtime when the handler ran
    csrr t0, mcause
    RESULT 2, t0
    RESULT 3, s2                # loop count before the interrupt
    csrr t0, mip
    RESULT 4, t0
    POWEROFF_PASS
