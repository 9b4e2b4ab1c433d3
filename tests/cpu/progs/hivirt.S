/* S-mode code at a high virtual address under Sv39 (SV=39) or Sv57 (SV=57), run the way Linux runs on
 * OpenSBI: rdtime, a load and a store at a high user-half address (no physical counterpart in the CPU's
 * map), then the idle idiom twice ("disable SIE; test for work; wfi; enable SIE"): first the timer, which M
 * forwards as STIP, then an external interrupt from the PLIC's S context, raised by a device while S waits.
 * Each interrupt must be taken right at the enable. Slots: 0 rdtime, 1 value loaded back, 2/3 scause/sepc
 * of the timer, 4 the sepc expected, 5/6/7 the same for the external interrupt, 8 the claimed source,
 * 9 the WFI pc, 10 the number of M traps. */
#include "common.h"
#if SV == 39
#define LEVELS 3
#define SATP_MODE 8
#define SVA 0xffffffff80000000      /* S code, data and device pages */
#define UVA 0x0000003ffffff000      /* top of the user half */
#elif SV == 57
#define LEVELS 5
#define SATP_MODE 10
#define SVA 0xff60000000000000
#define UVA 0x00fffffffffff000
#else
#error "SV must be 39 or 57"
#endif
#define PT_POOL 0x80100000          /* page tables are allocated from here */
#define DVA (SVA + 0x10000)         /* RESULTS */
#define PLICVA (SVA + 0x20000)      /* the PLIC's S context page (claim/complete) */
#define DEVVA (SVA + 0x30000)       /* the test device */
#define UPA 0x80200000              /* RAM behind UVA */
#define PLIC_PRIO5 (PLIC + 4 * 5)
#define PLIC_EN1 (PLIC + 0x2080)
#define PLIC_CTX1 (PLIC + 0x201000)
#define PTE_RW 0xc7                 /* V R W A D */
#define PTE_RX 0xcb                 /* V R X A D */

    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    li t0, 2
    csrw mcounteren, t0             # S reads time
    li t0, CLINT_MTIME
    li t1, 0x100000
    sd t1, 0(t0)
    li s9, PT_POOL
    mv s11, s9                      # root
    li t0, 4096
    add s9, s9, t0
    li s2, 0                        # timer phase
    li s3, 0                        # M traps

    la a1, scode                    # 3 pages of S code at SVA
    li a0, SVA
    li a2, PTE_RX
    call map_page
    li t0, 4096
    add a0, a0, t0
    add a1, a1, t0
    call map_page
    add a0, a0, t0
    add a1, a1, t0
    call map_page
    li a0, DVA
    li a1, RESULTS
    li a2, PTE_RW
    call map_page
    li a0, PLICVA
    li a1, PLIC_CTX1
    call map_page
    li a0, DEVVA
    li a1, TESTDEV
    call map_page
    li a0, UVA
    li a1, UPA
    call map_page

    li t0, 1
    li t1, PLIC_PRIO5
    sw t0, 0(t1)
    li t0, 1 << 5
    li t1, PLIC_EN1
    sw t0, 0(t1)                    # source 5 on the S context only
    li t0, (1 << 5) | (1 << 9)
    csrw mideleg, t0                # STI, SEI to S
    li t0, (1 << 5) | (1 << 9) | (1 << 7)
    csrw mie, t0                    # STIE, SEIE, MTIE
    call arm_timer
    li t0, (SATP_MODE << 60) | (PT_POOL >> 12)
    csrw satp, t0
    sfence.vma
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0                # MPP = S
    li t0, SVA
    csrw mepc, t0
    mret

    MAP_PAGE_FN LEVELS

arm_timer:
    li t0, CLINT_MTIME
    ld t1, 0(t0)
    li t2, 2000
    add t1, t1, t2
    li t0, CLINT_MTIMECMP
    sd t1, 0(t0)
    ret

    .balign 4
mtrap:
    addi s3, s3, 1
    csrr t0, mcause
    bgez t0, m_ecall
    li t0, CLINT_MTIMECMP           # the timer: stop it, then forward it (phase 0) or play the device (1)
    li t1, -1
    sd t1, 0(t0)
    bnez s2, 1f
    li t0, 1 << 5
    csrs mip, t0                    # STIP, as OpenSBI does
    li s2, 1
    mret
1:  li t0, TESTDEV + 0x100
    li t1, 1
    sw t1, 0(t0)                    # the device raises source 5 while S waits
    mret
m_ecall:
    csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
    li t0, 1
    beq a7, t0, m_timer
    li t0, 2
    beq a7, t0, m_done
    POWEROFF_FAIL 3
m_timer:
    li t0, 1 << 5                   # "set timer": clear STIP, re-arm
    csrc mip, t0
    call arm_timer
    mret
m_done:
    li t0, RESULTS + 8 * 10
    sd s3, 0(t0)
    POWEROFF_PASS

    .balign 4096
scode:                              # runs at SVA
    la t0, strap
    csrw stvec, t0
    li s4, DVA
    rdtime t0
    sd t0, 0(s4)
    li t0, UVA
    li t1, 0x5e5e1234abcd
    sd t1, 8(t0)
    ld t2, 8(t0)
    sd t2, 8(s4)
    li s5, 0                        # interrupts seen by S
    la t0, s_after1
    sd t0, 32(s4)
    la t0, s_wfi
    sd t0, 72(s4)
1:  csrci sstatus, 2                # the idle idiom
    bnez s5, 2f
s_wfi:
    wfi
    csrsi sstatus, 2
s_after1:
    j 1b
2:  li a7, 1                        # timer again, the device this time
    ecall
    la t0, s_after2
    sd t0, 56(s4)
3:  csrci sstatus, 2
    li t0, 2
    beq s5, t0, 4f
    wfi
    csrsi sstatus, 2
s_after2:
    j 3b
4:  li a7, 2
    ecall

    .balign 4
strap:
    csrr t0, scause
    csrr t1, sepc
    slli t2, s5, 1
    add t2, t2, s5                  # 3 slots per interrupt from slot 2
    slli t2, t2, 3
    add t2, t2, s4
    sd t0, 16(t2)
    sd t1, 24(t2)
    addi s5, s5, 1
    bltz t0, 1f
    li a7, 3                        # not an interrupt: fail
    ecall
1:  slli t0, t0, 1
    srli t0, t0, 1
    li t1, 5
    bne t0, t1, 2f
    li t0, 1 << 5
    csrc sie, t0                    # the timer: masked until M clears STIP
    sret
2:  li t0, PLICVA
    lw t1, 4(t0)                    # claim
    sd t1, 64(s4)
    li t2, DEVVA + 0x100
    sw zero, 0(t2)                  # lower the line
    sw t1, 4(t0)                    # complete
    sret
    .balign 4096
