/*
 * A driver that clears the device's interrupt with a posted write and then completes it at the PLIC, as Linux's
 * goldfish RTC driver and its interrupt controller do: three alarms must give exactly three interrupts (status 0;
 * otherwise the status is the number taken). Each round keeps interrupts enabled for a while after the handler.
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
    csrw mie, t0
    li t0, 1
    sw t0, RTC_IRQ_ENABLED(s0)
    li s2, 0                        /* interrupts taken (the handler counts) */
    li s3, 0                        /* rounds done */
round:
    RTC_ALARM_IN 20000              /* 20 us from now */
    addi s4, s3, 1                  /* the interrupts there should be after this round */
    csrsi mstatus, 8
1:  blt s2, s4, 1b
    li t1, 3000                     /* a re-interrupt has ~30 us to show up */
2:  addi t1, t1, -1
    bnez t1, 2b
    csrci mstatus, 8
    addi s3, s3, 1
    li t1, 3
    blt s3, t1, round
    li t1, 3
    bne s2, t1, bad
    PASS
bad:
    FAIL_WITH s2

trap:
    csrr t3, mcause
    bgez t3, exception
    li t6, PLIC_CLAIM_M
    lw t4, 0(t6)
    li t5, RTC
    li t3, 1
    sw t3, RTC_CLEAR_INTERRUPT(t5)  /* posted */
    sw t4, 0(t6)                    /* complete */
    addi s2, s2, 1
    mret
exception:
    FAIL 99
