/* Shared by the fidelity firmware: the test machine's map (test_fidelity.c writes it) and the RTC's registers. */
#define RTC 0x10020000              /* tests/fidelity/rtcdev.c, PLIC source 5 */
#define RTC_TIME_LOW 0x00
#define RTC_TIME_HIGH 0x04
#define RTC_ALARM_LOW 0x08
#define RTC_ALARM_HIGH 0x0c
#define RTC_IRQ_ENABLED 0x10
#define RTC_CLEAR_INTERRUPT 0x1c
#define RTC_INT_STATUS 0x20
#define RTC_SOURCE 5

#define POWEROFF 0x100000
#define CLINT_MTIMECMP 0x2004000
#define CLINT_MTIME 0x200bff8
#define PLIC 0xc000000
#define PLIC_PENDING (PLIC + 0x1000)
#define PLIC_ENABLE_M (PLIC + 0x2000)
#define PLIC_THRESHOLD_M (PLIC + 0x200000)
#define PLIC_CLAIM_M (PLIC + 0x200004)

#define MIP_MTIP (1 << 7)
#define MIP_MEIP (1 << 11)

/* power off with exit status 0 */
.macro PASS
    li t6, POWEROFF
    li t5, 0x5555
    sw t5, 0(t6)
1:  j 1b
.endm

/* power off with exit status \code (1..255) */
.macro FAIL code
    li t6, POWEROFF
    li t5, 0x3333 | (\code << 16)
    sw t5, 0(t6)
1:  j 1b
.endm

/* power off with the exit status in register \reg (1..255) */
.macro FAIL_WITH reg
    li t6, POWEROFF
    slli t5, \reg, 16
    li t4, 0x3333
    or t5, t5, t4
    sw t5, 0(t6)
1:  j 1b
.endm

/* RTC source at priority 1, enabled for the M-mode context, threshold 0 */
.macro PLIC_SETUP
    li t0, PLIC + 4 * RTC_SOURCE
    li t1, 1
    sw t1, 0(t0)
    li t0, PLIC_ENABLE_M
    li t1, 1 << RTC_SOURCE
    sw t1, 0(t0)
    li t0, PLIC_THRESHOLD_M
    sw zero, 0(t0)
.endm

/* \dst = the RTC's time in ns (low read first: it latches the high half); clobbers t0 */
.macro RTC_NOW dst
    lwu \dst, RTC_TIME_LOW(s0)
    lwu t0, RTC_TIME_HIGH(s0)
    slli t0, t0, 32
    or \dst, \dst, t0
.endm

/* arm the alarm at the time in \reg (posted writes); clobbers t0 */
.macro RTC_ALARM reg
    srli t0, \reg, 32
    sw t0, RTC_ALARM_HIGH(s0)
    sw \reg, RTC_ALARM_LOW(s0)
.endm

/* arm the alarm \ns from the RTC's now; clobbers a0, t0, t1 */
.macro RTC_ALARM_IN ns
    RTC_NOW a0
    li t1, \ns
    add a0, a0, t1
    RTC_ALARM a0
.endm

/* poll until the RTC's interrupt status is set; clobbers t1 */
.macro RTC_WAIT_INT
1:  lw t1, RTC_INT_STATUS(s0)
    beqz t1, 1b
.endm
