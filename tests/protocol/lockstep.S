/*
 * The Python device (pydev.py --lockstep) at 0x10030000: ticking every 25 us of virtual time until it counted 8
 * ticks, then idle (no next event) for 20 more rounds; in each round the guest reads and writes it, spins, and
 * waits in WFI for a CLINT timeout. Powers off with status 0.
 */
#define PYDEV 0x10030000
#define POWEROFF 0x100000
#define CLINT_MTIMECMP 0x2004000
#define CLINT_MTIME 0x200bff8
#define MIP_MTIP (1 << 7)
    .section .text
    .globl _start
_start:
    li s0, PYDEV
    li t0, MIP_MTIP
    csrw mie, t0                    /* WFI wakes on the timer; nothing is taken */
    li t0, 25000
    sw t0, 0x28(s0)                 /* PERIOD */
    li s2, 0                        /* rounds left once idle; 0 while ticking */
1:  lw s1, 0x2c(s0)                 /* TICKS */
    sw s1, 0x04(s0)                 /* SCRATCH */
    li t1, 3000
2:  addi t1, t1, -1
    bnez t1, 2b
    li t2, CLINT_MTIME
    ld t3, 0(t2)
    addi t3, t3, 30                 /* 3 us at 10 MHz */
    li t2, CLINT_MTIMECMP
    sd t3, 0(t2)
3:  wfi
    csrr t4, mip
    andi t4, t4, MIP_MTIP
    beqz t4, 3b
    bnez s2, 5f
    li t4, 8
    bltu s1, t4, 1b
    sw zero, 0x28(s0)               /* PERIOD 0: idle from now on */
    li s2, 21
5:  addi s2, s2, -1
    bnez s2, 1b
    li t6, POWEROFF
    li t5, 0x5555
    sw t5, 0(t6)
4:  j 4b
