/* Deferred accesses: the test device defers the first read of 0x200 and the first write of 0x208 (the hub
 * does so while a device is being restarted). Each instruction is abandoned and made again: the additions in
 * front of it in the same block run once, the load gets the device's value, the store reaches it once. */
#include "common.h"
    .globl _start
_start:
    li s0, TESTDEV
    li s1, 0
    li s2, 0
    addi s1, s1, 1
    ld t1, 0x200(s0)            /* 8 bytes: Unicorn makes two 4-byte accesses, the first is deferred */
    addi s2, s2, 1
    li t0, 0x5a5a
    sw t0, 0x208(s0)            /* deferred once */
    RESULT 0, s1
    RESULT 1, t1
    RESULT 2, s2
    POWEROFF_PASS
