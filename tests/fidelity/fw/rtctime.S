/*
 * Access times (0.1 instructions per ns: 10 ns an instruction, counted from the reset): two back-to-back reads
 * of the RTC's time return 10 and 20; an alarm armed 1000 ns after the first fires at exactly 1010 (the test reads
 * the event log). Status 0; 1 the first read was not 10, 2 the second not 20, 3 the time went backwards.
 */
#include "fw.h"
    .section .text
    .globl _start
_start:
    li s0, RTC                      /* instruction 0 */
    lw a0, RTC_TIME_LOW(s0)         /* 1: 10 ns */
    lw a1, RTC_TIME_LOW(s0)         /* 2: 20 ns */
    li t1, 10
    bne a0, t1, first
    li t1, 20
    bne a1, t1, second
    li t0, 1
    sw t0, RTC_IRQ_ENABLED(s0)
    addi a2, a0, 1000
    RTC_ALARM a2
1:  lw t1, RTC_INT_STATUS(s0)
    beqz t1, 1b
    RTC_NOW a3
    bltu a3, a2, backwards
    PASS
first:
    FAIL 1
second:
    FAIL 2
backwards:
    FAIL 3
