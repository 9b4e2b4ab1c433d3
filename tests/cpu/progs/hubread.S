/* S-mode code under Sv39 at virtual 0x10000000, the number of the test device's physical page: rdtime, a
 * 32-bit and a 16-bit illegal instruction (trapping to M, which records mtval and mepc and steps over them),
 * then WFI until the CLINT timer interrupt reaches M. The hub reads those instructions itself (rdtime, tval,
 * the WFI check): it must translate the virtual pc and read RAM, never the test device at that number. */
#include "common.h"
#define PT_ROOT 0x80020000
#define PT_L1 0x80021000
#define PT_L0 0x80022000
#define SVIRT 0x10000000            /* VPN[2] = 0, VPN[1] = 0x80, VPN[0] = 0 */
#define PTE_RAM_GIGA ((0x80000000 >> 12) << 10)
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    li t0, 2
    csrw mcounteren, t0             # S may read time
    li t0, PT_ROOT
    li t1, PTE_RAM_GIGA | 0xcf      # identity gigapage for RAM (VPN[2] = 2): data and results
    sd t1, 16(t0)
    li t1, (PT_L1 >> 12) << 10 | 1  # VPN[2] = 0 -> L1
    sd t1, 0(t0)
    li t0, PT_L1 + 0x80 * 8
    li t1, (PT_L0 >> 12) << 10 | 1  # VPN[1] = 0x80 -> L0
    sd t1, 0(t0)
    la t2, scode                    # two pages of S code at SVIRT
    srli t2, t2, 12
    slli t2, t2, 10
    ori t2, t2, 0xcb                # V R X A D
    li t0, PT_L0
    sd t2, 0(t0)
    li t3, 1 << 10
    add t2, t2, t3
    sd t2, 8(t0)
    li t0, (8 << 60) | (PT_ROOT >> 12)
    csrw satp, t0
    sfence.vma
    li s0, CLINT_MTIME              # mtime starts at 0x100000 (rdtime must see it)
    li t0, 0x100000
    sd t0, 0(s0)
    ld t0, 0(s0)                    # the timer fires while S waits in WFI
    li t1, 3000
    add t0, t0, t1
    li s1, CLINT_MTIMECMP
    sd t0, 0(s1)
    li t0, 1 << 7
    csrw mie, t0
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11                  # MPP = S
    csrs mstatus, t0
    li s2, 0                        # illegal instructions seen
    li t0, SVIRT
    csrw mepc, t0
    mret

    .balign 4
mtrap:                              # slots 1..4: mtval, mepc of the two illegal instructions
    csrr t0, mcause
    bltz t0, mirq
    li t3, RESULTS + 8
    slli t4, s2, 4
    add t3, t3, t4
    csrr t1, mtval
    sd t1, 0(t3)
    csrr t2, mepc
    sd t2, 8(t3)
    addi s2, s2, 1
    andi t1, t1, 3                  # length from the encoding in mtval
    li t4, 3
    li t5, 2
    bne t1, t4, 1f
    li t5, 4
1:  add t2, t2, t5
    csrw mepc, t2
    mret
mirq:
    RESULT 5, t0                    # mcause
    csrr t0, mepc
    RESULT 6, t0
    RESULT 7, s2
    POWEROFF_PASS

    .balign 4096
scode:
    rdtime a0
    RESULT 0, a0
    la t0, ill32                    # the virtual addresses the traps must report
    RESULT 8, t0
    la t0, ill16
    RESULT 9, t0
    .option push
    .option norvc
ill32:
    csrr a1, 0x7c0                  # no such CSR: illegal, encoding 0x7c0025f3
    .option pop
ill16:
    .hword 0x6101                   # c.addi16sp with a zero immediate: reserved
    .option push
    .option norvc
    nop
    .option pop
    la t0, wfiloop
    RESULT 10, t0
wfiloop:
    wfi
    j wfiloop
    .balign 4096
    .space 4096
