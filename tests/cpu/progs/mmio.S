/* Stores of every width to the test device, then loads whose values are kept in RAM. */
#include "common.h"
    .globl _start
_start:
    li s0, TESTDEV
    li t0, 0xab
    sb t0, 0x1(s0)
    li t0, 0xbeef
    sh t0, 0x12(s0)
    li t0, 0xdeadbeef
    sw t0, 0x24(s0)
    li t0, 0x0123456789abcdef
    sd t0, 0x38(s0)
    lbu t1, 0x40(s0)
    RESULT 0, t1
    lhu t1, 0x42(s0)
    RESULT 1, t1
    lwu t1, 0x44(s0)
    RESULT 2, t1
    ld t1, 0x48(s0)
    RESULT 3, t1
    POWEROFF_PASS
