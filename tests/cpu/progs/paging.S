/* Sv39 in S-mode. A load from an unmapped virtual address is a load page fault delegated to S (scause 13,
 * stval = the virtual address). Through a gigapage onto the device space, a load reaches the test device
 * and a load from an unassigned physical address is a load access fault (scause 5, stval = the virtual
 * address). Then U-mode code (a user alias of RAM) makes an ecall that reaches M with mcause 8. */
#include "common.h"
#define PT_ROOT 0x80020000
#define DEV_ALIAS 0x100000000       /* VPN[2] = 4 -> physical 0 .. 1 GiB */
#define USER_ALIAS 0xC0000000       /* VPN[2] = 3 -> RAM with PTE.U */
#define PTE_RAM ((0x80000000 >> 12) << 10)
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    la t0, strap
    csrw stvec, t0
    li t0, (1 << 13) | (1 << 5) # delegate load page faults and load access faults to S
    csrw medeleg, t0
    li t0, PT_ROOT
    li t1, PTE_RAM | 0xcf       # V R W X A D: identity gigapage for RAM (VPN[2] = 2)
    sd t1, 16(t0)
    li t1, PTE_RAM | 0xdf       # the same with U at VPN[2] = 3
    sd t1, 24(t0)
    li t1, 0xc7                 # V R W A D onto physical 0 at VPN[2] = 4
    sd t1, 32(t0)
    li t0, (8 << 60) | (PT_ROOT >> 12)
    csrw satp, t0
    sfence.vma
    li t0, (3 << 11)
    csrc mstatus, t0
    li t0, (1 << 11)
    csrs mstatus, t0
    li s2, 0                    # S traps taken
    la t0, sentry
    csrw mepc, t0
    mret

sentry:
    li a0, 0x40000000           # VPN[2] = 1: no mapping
    li a2, DEV_ALIAS + TESTDEV + 0x40
    li a4, DEV_ALIAS + 0x20000000   # physical 0x20000000: nothing there
    .option push
    .option norvc
pf: ld a1, 0x18(a0)
    lbu a3, 0(a2)
af: ld a5, 8(a4)
    .option pop
    RESULT 7, a3
    la t0, pf
    RESULT 8, t0
    la t0, af
    RESULT 9, t0
    la t0, uentry               # sret to the user alias of uentry
    li t1, USER_ALIAS - 0x80000000
    add t0, t0, t1
    csrw sepc, t0
    li t0, (1 << 8)
    csrc sstatus, t0            # SPP = U
    sret

uentry:
    ecall
1:  j 1b

    .balign 4
strap:                          # slots 0..2 first trap, 3..5 second: scause, stval, sepc
    li t3, RESULTS
    li t4, 24
    mul t4, t4, s2
    add t3, t3, t4
    csrr t0, scause
    sd t0, 0(t3)
    csrr t0, stval
    sd t0, 8(t3)
    csrr t0, sepc
    sd t0, 16(t3)
    addi s2, s2, 1
    addi t0, t0, 4
    csrw sepc, t0
    sret

    .balign 4
mtrap:
    csrr t0, mcause
    RESULT 10, t0
    csrr t0, mepc
    RESULT 11, t0
    POWEROFF_PASS
