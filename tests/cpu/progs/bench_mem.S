/* Benchmark: a0 iterations of a load/add/store loop over RAM, then poweroff. */
#include "common.h"
    .globl _start
_start:
    li t1, RESULTS
1:  ld t2, 0(t1)
    add t2, t2, a0
    sd t2, 0(t1)
    xor t4, t2, a0
    addi a0, a0, -1
    bnez a0, 1b
    POWEROFF_PASS
