/* Benchmark: a0 reads of a byte register (a UART's line status), then poweroff. */
#include "common.h"
    .globl _start
_start:
    li t3, TESTDEV
1:  lbu t5, 5(t3)
    addi a0, a0, -1
    bnez a0, 1b
    POWEROFF_PASS
