/*
 * Start an operation with a posted write, then wait in WFI with a timeout of the guest's own: the device's
 * completion interrupt (an alarm 10 us ahead) must wake the hart at its virtual time, not the 1 ms timeout.
 * Status 0; 1 the wake-up was not the device's, 2 the timer's came too, 3 woken before the alarm, 4 more than
 * 1 us after it.
 */
#include "fw.h"
    .section .text
    .globl _start
_start:
    li s0, RTC
    PLIC_SETUP
    li t0, MIP_MEIP | MIP_MTIP
    csrw mie, t0                    /* mstatus.MIE stays 0: WFI wakes, nothing is taken */
    li t0, 1
    sw t0, RTC_IRQ_ENABLED(s0)
    li t1, CLINT_MTIME
    ld t2, 0(t1)
    li t3, 10000                    /* 1 ms at 10 MHz */
    add t2, t2, t3
    li t1, CLINT_MTIMECMP
    sd t2, 0(t1)
    RTC_NOW s1
    li t1, 10000
    add s1, s1, t1
    RTC_ALARM s1
1:  wfi
    csrr t1, mip
    andi t2, t1, MIP_MTIP
    li t3, MIP_MEIP
    and t3, t1, t3
    or t4, t2, t3
    beqz t4, 1b
    beqz t3, not_device
    bnez t2, timer_too
    RTC_NOW a0
    bltu a0, s1, early
    sub a0, a0, s1
    li t1, 1000
    bgeu a0, t1, late
    PASS
not_device:
    FAIL 1
timer_too:
    FAIL 2
early:
    FAIL 3
late:
    FAIL 4
