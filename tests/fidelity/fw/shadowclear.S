/*
 * Polling, no interrupts taken: wait for the RTC's interrupt status (a shadow register), see the PLIC source
 * pending, clear the interrupt with a posted write, read the status again (0), and the PLIC source must no longer
 * be pending. Status 0; 1 not pending while the status said so, 2 the status did not clear, 3 still pending.
 */
#include "fw.h"
    .section .text
    .globl _start
_start:
    li s0, RTC
    PLIC_SETUP
    li t0, 1
    sw t0, RTC_IRQ_ENABLED(s0)
    RTC_ALARM_IN 5000
    RTC_WAIT_INT
    li s1, PLIC_PENDING
    lw t1, 0(s1)
    andi t1, t1, 1 << RTC_SOURCE
    beqz t1, not_pending
    li t0, 1
    sw t0, RTC_CLEAR_INTERRUPT(s0)  /* posted */
    lw t1, RTC_INT_STATUS(s0)       /* shadow */
    bnez t1, not_cleared
    lw t1, 0(s1)
    andi t1, t1, 1 << RTC_SOURCE
    bnez t1, still_pending
    PASS
not_pending:
    FAIL 1
not_cleared:
    FAIL 2
still_pending:
    FAIL 3
