/* WFI with interrupts globally off but MTIE enabled: the hart sleeps until mtimecmp, one second away. */
#include "common.h"
    .globl _start
_start:
    li s0, CLINT_MTIME
    ld t0, 0(s0)
    li t1, 10000000             # 1 s at 10 MHz
    add t0, t0, t1
    RESULT 0, t0
    li s1, CLINT_MTIMECMP
    sd t0, 0(s1)
    li t0, (1 << 7)
    csrs mie, t0
1:  wfi
    csrr t0, mip
    andi t0, t0, (1 << 7)
    beqz t0, 1b
    ld t0, 0(s0)
    RESULT 1, t0
    POWEROFF_PASS
