/* Integer arithmetic: results land in RAM. */
#include "common.h"
    .globl _start
_start:
    li t0, 0            # sum 1..100
    li t1, 1
    li t2, 100
1:  add t0, t0, t1
    addi t1, t1, 1
    ble t1, t2, 1b
    RESULT 0, t0
    li t0, 1            # 15!
    li t1, 1
    li t2, 15
2:  mul t0, t0, t1
    addi t1, t1, 1
    ble t1, t2, 2b
    RESULT 1, t0
    li t0, -1000000007
    li t1, 97
    div t2, t0, t1
    rem t3, t0, t1
    RESULT 2, t2
    RESULT 3, t3
    c.li a0, 5          # compressed instructions too
    c.slli a0, 3
    RESULT 4, a0
    POWEROFF_PASS
