/*
 * The device's interrupt is pending (the line is high); the guest clears it with a posted write. A read of mip
 * right after it must show MEIP clear; and in a second round, enabling interrupts right after the clear must not
 * take one. Status 0; 1 MEIP not set while pending, 2 MEIP still set after the clear, 3 an interrupt was taken.
 */
#include "fw.h"
    .section .text
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s0, RTC
    PLIC_SETUP
    li t0, MIP_MEIP
    csrw mie, t0                    /* mstatus.MIE stays 0 until round 2 enables it */
    li t0, 1
    sw t0, RTC_IRQ_ENABLED(s0)
    li s1, 1                        /* the CLEAR_INTERRUPT value */

    /* round 1: mip */
    call pending
    csrr t1, mip
    li t2, MIP_MEIP
    and t1, t1, t2
    beqz t1, not_set
    sw s1, RTC_CLEAR_INTERRUPT(s0)  /* posted */
    csrr t1, mip
    and t1, t1, t2
    bnez t1, still_set

    /* round 2: the interrupt check at the enable */
    call pending
    sw s1, RTC_CLEAR_INTERRUPT(s0)  /* posted */
    csrsi mstatus, 8
    li t1, 1000
1:  addi t1, t1, -1
    bnez t1, 1b
    PASS

/* arm the alarm 5 us ahead and poll until its interrupt is pending */
pending:
    RTC_ALARM_IN 5000
    RTC_WAIT_INT
    ret

not_set:
    FAIL 1
still_set:
    FAIL 2
trap:
    FAIL 3
