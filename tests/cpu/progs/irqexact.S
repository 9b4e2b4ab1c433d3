/* Interrupts are taken before the instruction after the one that makes them deliverable: a CSR write
 * (mstatus, mie, mideleg, sstatus, sie, sip), mret, an MMIO store to CLINT (msip, an 8-byte mtimecmp),
 * PLIC (enable, threshold, priority, complete) or a device, and a device load whose read raises a line (32-bit, 16-bit, 8-byte).
 * Trap k stores xcause in slot 2k and xepc in slot 2k+1; the program stores the pc it expects in slot 50+k
 * and a loaded value in slots 80..83. Slot 90 counts the traps. A floating-point load is not finished by
 * hand: its interrupt comes at the next block boundary. */
#include "common.h"
#define MSIP CLINT
#define PLIC_PRIO(n) (PLIC + 4 * (n))
#define PLIC_EN0 (PLIC + 0x2000)        /* M context */
#define PLIC_EN1 (PLIC + 0x2080)        /* S context */
#define PLIC_TH0 (PLIC + 0x200000)
#define PLIC_CL0 (PLIC + 0x200004)
#define PLIC_CL1 (PLIC + 0x201004)
#define LINE5 (TESTDEV + 0x100)
#define LINE6 (TESTDEV + 0x180)         /* reading it raises source 6 */

/* slot 40+k = address of label \l (the pc the trap must report) */
.macro EXPECT k, l
    la t5, \l
    li t6, RESULTS + 8 * (50 + \k)
    sd t5, 0(t6)
.endm

    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    la t0, strap
    csrw stvec, t0
    li s1, 0                        # traps taken
    li s3, 0                        # 1: the M handler claims but does not complete (test 9)
    li s5, PLIC
    li t0, 1
    sw t0, 4 * 5(s5)                # sources 5 and 6: priority 1
    sw t0, 4 * 6(s5)

    # 0: csrs mstatus.MIE with MTIP pending and enabled
    li t0, CLINT_MTIMECMP
    sd zero, 0(t0)                  # mtime >= 0: MTIP now
    li t0, 1 << 7
    csrs mie, t0
    EXPECT 0, e0
    csrsi mstatus, 8
e0: nop

    # 1: csrs mie.MSIE with MSIP already pending
    li t0, MSIP
    li t1, 1
    sw t1, 0(t0)                    # MSIE is off: nothing taken yet
    EXPECT 1, e1
    li t0, 1 << 3
    csrs mie, t0
e1: nop

    # 2: a store to msip raises MSIP (MSIE on)
    li t0, MSIP
    li t1, 1
    EXPECT 2, e2
    sw t1, 0(t0)
e2: nop

    # 3: an 8-byte store to mtimecmp (two 4-byte MMIO halves) makes MTIP pending
    li t0, CLINT_MTIMECMP
    EXPECT 3, e3
    sd zero, 0(t0)
e3: nop
    li t0, 1 << 7
    csrc mie, t0                    # no more timer: the handler left mtimecmp at -1 anyway

    # 4: PLIC enable store, line 5 high, MEIE on
    li t0, 1 << 11
    csrs mie, t0
    li t0, LINE5
    li t1, 1
    sw t1, 0(t0)                    # source 5 pending; not enabled yet
    li t0, PLIC_EN0
    li t1, 1 << 5
    EXPECT 4, e4
    sw t1, 0(t0)
e4: nop

    # 5: PLIC threshold store
    li t0, PLIC_TH0
    li t1, 7
    sw t1, 0(t0)                    # threshold 7 masks everything
    li t0, LINE5
    li t1, 1
    sw t1, 0(t0)
    li t0, PLIC_TH0
    EXPECT 5, e5
    sw zero, 0(t0)
e5: nop

    # 6: PLIC priority store
    sw zero, 4 * 5(s5)              # priority 0: never
    li t0, LINE5
    li t1, 1
    sw t1, 0(t0)
    li t1, 1
    EXPECT 6, e6
    sw t1, 4 * 5(s5)
e6: nop

    # 7: a device store raises its line
    li t0, LINE5
    li t1, 1
    EXPECT 7, e7
    sw t1, 0(t0)
e7: nop

    # 8: the same from a 16-bit store (c.sw): the next instruction is 2 bytes on
    li s0, LINE5
    li a1, 1
    EXPECT 8, e8
    .option push
    .option rvc
    c.sw a1, 0(s0)
e8: c.nop
    .option pop

    # 9, 10: PLIC complete store while the line is still high: pending again at once
    li s3, 1
    li t0, LINE5
    li t1, 1
    EXPECT 9, e9
    EXPECT 10, e10
    sw t1, 0(t0)                    # trap 9: the handler claims and does not complete
e9: li s3, 0
    li t0, PLIC_CL0
    sw s4, 0(t0)                    # complete: trap 10 right after
e10: nop

    # 11: a 32-bit load whose read raises source 6: the value reaches a2 first
    li t0, PLIC_EN0
    li t1, (1 << 5) | (1 << 6)
    sw t1, 0(t0)
    li t0, TESTDEV
    EXPECT 11, e11
    lw a2, 0x180(t0)
e11: RESULT 80, a2

    # 12: c.lw
    li a0, LINE6
    EXPECT 12, e12
    .option push
    .option rvc
    c.lw a2, 0(a0)
e12: c.nop
    .option pop
    RESULT 81, a2

    # 13: an 8-byte load (two 4-byte MMIO halves; the first raises the line)
    li t0, LINE6
    EXPECT 13, e13
    ld a2, 0(t0)
e13: RESULT 82, a2

    # 14: mret restoring MIE with MSIP pending: taken at mret's target
    csrci mstatus, 8
    li t0, MSIP
    li t1, 1
    sw t1, 0(t0)
    li t0, 3 << 11
    csrs mstatus, t0                # MPP = M
    li t0, 1 << 7
    csrs mstatus, t0                # MPIE
    la t0, e14
    csrw mepc, t0
    EXPECT 14, e14
    mret
e14: nop

    # 15: a floating-point load whose read raises a line: not finished by hand, so the interrupt comes at
    # the next block boundary (the j ends this block), and the value still reaches ft0
    li t0, 1 << 13
    csrs mstatus, t0                # FS = Initial
    li t0, PLIC_EN0
    li t1, 1 << 6
    sw t1, 0(t0)
    li t0, TESTDEV
    EXPECT 15, e15
    flw ft0, 0x180(t0)
    j e15
e15: fmv.x.w a2, ft0
    RESULT 83, a2

    # 16: an S software interrupt, pending and enabled but delegated, is not taken in M; clearing its
    # mideleg bit makes it M's, taken right after the write
    li t0, 1 << 1
    csrw mideleg, t0
    csrs mie, t0                    # SSIE
    csrs mip, t0                    # SSIP (M may write it)
    nop
    EXPECT 16, e16
    csrc mideleg, t0
e16: nop

    # S-mode: 17: csrs sstatus.SIE with STIP pending (set by M, as OpenSBI forwards timers)
    li t0, PLIC_EN0
    sw zero, 0(t0)                  # the external line goes to S only from here
    li t0, (1 << 1) | (1 << 5) | (1 << 9)
    csrw mideleg, t0
    li t0, (1 << 5) | (1 << 9)
    csrs mie, t0                    # STIE, SEIE
    li t0, 1 << 5
    csrs mip, t0                    # STIP
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0                # MPP = S
    la t0, sentry
    csrw mepc, t0
    mret

sentry:
    EXPECT 17, e17
    csrsi sstatus, 2
e17: nop

    # 18: in S, a device store raises line 5 on the S context (SEIP)
    li t0, PLIC_EN1
    li t1, 1 << 5
    sw t1, 0(t0)
    li t0, LINE5
    li t1, 1
    EXPECT 18, e18
    sw t1, 0(t0)
e18: nop

    # 19: csrs sie.STIE with STIP still pending
    li t0, 1 << 5
    EXPECT 19, e19
    csrs sie, t0
e19: nop

    # 20: csrs sip.SSIP with SSIE on
    li t0, 1 << 1
    EXPECT 20, e20
    csrs sip, t0
e20: nop
    ecall                           # to M: finish

    .balign 4
mtrap:
    csrr t0, mcause
    li t1, 9                        # ecall from S: done
    beq t0, t1, done
    li t3, RESULTS
    slli t4, s1, 4
    add t3, t3, t4
    sd t0, 0(t3)
    csrr t1, mepc
    sd t1, 8(t3)
    addi s1, s1, 1
    li t1, 0x8000000000000007
    beq t0, t1, m_timer
    li t1, 0x8000000000000003
    beq t0, t1, m_soft
    li t1, 0x800000000000000b
    beq t0, t1, m_ext
    li t1, 0x8000000000000001
    beq t0, t1, m_ssi
    POWEROFF_FAIL 1
m_ssi:
    li t0, 1 << 1
    csrc mip, t0
    mret
m_timer:
    li t0, CLINT_MTIMECMP
    li t1, -1
    sd t1, 0(t0)
    mret
m_soft:
    li t0, MSIP
    sw zero, 0(t0)
    mret
m_ext:
    li t0, PLIC_CL0
    lw s4, 0(t0)                    # claim
    bnez s3, 1f                     # test 9: leave it claimed, line high
    li t1, TESTDEV                  # source 5: LINE5, source 6: LINE6
    li t2, 0x100
    li t5, 6
    bne s4, t5, 2f
    li t2, 0x180
2:  add t1, t1, t2
    sw zero, 0(t1)                  # lower the line
    sw s4, 0(t0)                    # complete
1:  mret

    .balign 4
strap:
    csrr t0, scause
    li t3, RESULTS
    slli t4, s1, 4
    add t3, t3, t4
    sd t0, 0(t3)
    csrr t1, sepc
    sd t1, 8(t3)
    addi s1, s1, 1
    li t1, 0x8000000000000005
    bne t0, t1, 1f
    li t0, 1 << 5
    csrc sie, t0                    # the S timer: S cannot clear STIP, it disables it
    sret
1:  li t1, 0x8000000000000001
    bne t0, t1, 2f
    li t0, 1 << 1
    csrc sip, t0                    # the S software interrupt
    sret
2:  li t0, PLIC_CL1
    lw t1, 0(t0)
    li t2, LINE5
    sw zero, 0(t2)
    sw t1, 0(t0)
    sret

done:
    RESULT 90, s1
    POWEROFF_PASS
