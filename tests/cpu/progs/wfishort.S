/* WFI until mtimecmp 20 ms away (for the wall-clock mode). */
#include "common.h"
    .globl _start
_start:
    li s0, CLINT_MTIME
    ld t0, 0(s0)
    li t1, 200000               # 20 ms at 10 MHz
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
