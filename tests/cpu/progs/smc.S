/* Self-modifying code and code written over old code stay coherent (no DMA; stores by the hart only, then
 * fence.i), whichever store path the hub lets them take. S-mode runs under Sv39 with 4 KiB pages:
 *  slot 1: an instruction patched later in the same block;      slot 2/3: a routine copied over an old one;
 *  slot 4/5: code written to a fresh page (fast stores), run, then rewritten;
 *  slot 6/7: the same on another fresh page, written through a second virtual alias of it;
 *  slot 0/8: M runs a routine, S stores to the same number (mapped elsewhere), M rewrites the routine.
 */
#include "common.h"
#define PT_POOL 0x80100000
#define QPAGE 0x80300000            /* what S sees at the number of M's routine page */
#define CPAGE 0x80401000            /* fresh page for generated code */
#define CPAGE2 0x80402000           /* another, also mapped at CALIAS */
#define CALIAS 0x40000000
#define ADDI_A0(n) (0x00000513 | ((n) << 20))
#define RET 0x00008067
#define PTE_RWX 0xcf
#define PTE_RW 0xc7

    .option norvc                   # patched instructions are 4 bytes
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0
    li s9, PT_POOL
    mv s11, s9
    li t0, 4096
    add s9, s9, t0
    li a0, RAM_BASE                 # the image, one page at a time, except the routine page
    la s6, mroutine
    la s7, end_image
    li a2, PTE_RWX
1:  beq a0, s6, 2f
    mv a1, a0
    call map_page
2:  li t0, 4096
    add a0, a0, t0
    blt a0, s7, 1b
    mv a0, s6                       # S sees QPAGE at the routine page's number
    li a1, QPAGE
    li a2, PTE_RW
    call map_page
    li a0, RESULTS
    mv a1, a0
    call map_page
    li a0, CALIAS
    li a1, CPAGE2
    call map_page
    li a0, CPAGE
    mv a1, a0
    li a2, PTE_RWX
    call map_page
    li a0, CPAGE2
    mv a1, a0
    call map_page
    li t0, (8 << 60) | (PT_POOL >> 12)
    csrw satp, t0
    sfence.vma

    li t0, 3 << 11                  # MPP = S first: writing MPP flushes the TLB
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0
    la t0, sentry
    csrw mepc, t0
    call mroutine                   # M runs its routine: a block on that page
    RESULT 0, a0
    la t0, mdata
    sd zero, 0(t0)                  # and stores to the page: M's TLB entry for it, kept across mret
    mret

    MAP_PAGE_FN 3

    .balign 4
mtrap:                              # ecall from S: M rewrites its routine through its own TLB entry
    la t0, mroutine
    li t1, ADDI_A0(2)
    sw t1, 0(t0)
    fence.i
    call mroutine
    RESULT 8, a0
    POWEROFF_PASS

sentry:
    la t0, mroutine                 # S: the same number is QPAGE here
    li t1, 0x1234
    sd t1, 0(t0)

    la t0, patch                    # 1: patch a later instruction of this block
    li t1, ADDI_A0(2)
    li a0, 0
    sw t1, 0(t0)
    fence.i
patch:
    addi a0, zero, 1
    RESULT 1, a0

    call routine_b                  # 2, 3: a routine copied over one that ran
    RESULT 2, a0
    la t0, routine_b
    la t1, new_b
    ld t2, 0(t1)
    sd t2, 0(t0)
    fence.i
    call routine_b
    RESULT 3, a0

    li s0, CPAGE                    # 4, 5: a fresh page
    li t1, ADDI_A0(30)
    sw t1, 0(s0)
    li t1, RET
    sw t1, 4(s0)
    fence.i
    jalr s0
    RESULT 4, a0
    li t1, ADDI_A0(31)
    sw t1, 0(s0)
    fence.i
    jalr s0
    RESULT 5, a0

    li s1, CALIAS                   # 6, 7: written through an alias first, then run, then rewritten
    li s0, CPAGE2
    li t1, ADDI_A0(40)
    sw t1, 0(s1)
    li t1, RET
    sw t1, 4(s1)
    fence.i
    jalr s0
    RESULT 6, a0
    li t1, ADDI_A0(41)
    sw t1, 0(s1)
    fence.i
    jalr s0
    RESULT 7, a0
    ecall

    .balign 4
new_b:
    .word ADDI_A0(20), RET

    .balign 4096
routine_b:
    addi a0, zero, 10
    ret

    .balign 4096
mroutine:
    addi a0, zero, 1
    ret
mdata:
    .dword 0
    .balign 4096
end_image:
