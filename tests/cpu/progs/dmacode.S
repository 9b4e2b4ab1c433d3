/* Code written over code the hart already ran, by a device (the test device's DMA, harness.c), not by the hart:
 * the hart runs the new code. fence.i is there as a real guest would have it; it does not drop translated code.
 *  slot 0/1: M runs a routine, the device rewrites it within an access (as DMA by message), M runs it again;
 *  slot 2/3: the same with the rewrite at a slice boundary (a device's report), polled for;
 *  slot 4/5: S under Sv39 runs a routine through a virtual address that is not its physical one, the device
 *            rewrites it by physical address, S runs it again.
 */
#include "common.h"
#define PT_POOL 0x80100000
#define VROUTINE 0x40000000         /* where S sees routine_c */
#define DMA_VALUE (TESTDEV + 0x300)
#define DMA_NOW (TESTDEV + 0x304)
#define DMA_LATER (TESTDEV + 0x308)
#define DMA_DONE (TESTDEV + 0x310)
#define PTE_RWX 0xcf

    .option norvc
    .globl _start
_start:
    la t0, mtrap
    csrw mtvec, t0

    call routine_a                  # 0, 1: rewritten inside the access
    RESULT 0, a0
    fence rw, rw                    # a full fence: a host barrier (another process may share this RAM)
    li t1, DMA_VALUE
    li t0, 11
    sw t0, 0(t1)
    la t0, routine_a
    sw t0, 4(t1)                    # DMA_NOW
    fence.i
    call routine_a
    RESULT 1, a0

    call routine_b                  # 2, 3: rewritten at the next slice boundary
    RESULT 2, a0
    li t1, DMA_VALUE
    li t0, 21
    sw t0, 0(t1)
    la t0, routine_b
    sw t0, 8(t1)                    # DMA_LATER
    li t1, DMA_DONE
1:  lw t2, 0(t1)
    beqz t2, 1b
    fence.i
    call routine_b
    RESULT 3, a0

    li s9, PT_POOL                  # 4, 5: S under Sv39, routine_c at VROUTINE
    mv s11, s9
    li t0, 4096
    add s9, s9, t0
    li a0, RAM_BASE                 # identity map of the image and the results
    la s7, end_image
    li a2, PTE_RWX
2:  mv a1, a0
    call map_page
    li t0, 4096
    add a0, a0, t0
    blt a0, s7, 2b
    li a0, RESULTS
    mv a1, a0
    call map_page
    li a0, TESTDEV
    mv a1, a0
    call map_page
    li a0, VROUTINE
    la a1, routine_c
    call map_page
    li t0, (8 << 60) | (PT_POOL >> 12)
    csrw satp, t0
    sfence.vma
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0
    la t0, sentry
    csrw mepc, t0
    mret

    MAP_PAGE_FN 3

sentry:
    li s0, VROUTINE
    jalr s0
    RESULT 4, a0
    li t1, DMA_VALUE
    li t0, 31
    sw t0, 0(t1)
    la t0, routine_c                # its physical address (the identity-mapped image knows it)
    sw t0, 4(t1)                    # DMA_NOW
    fence.i
    jalr s0
    RESULT 5, a0
    ecall

    .balign 4
mtrap:
    POWEROFF_PASS

    .balign 4096
routine_a:
    addi a0, zero, 10
    ret
    .balign 4096
routine_b:
    addi a0, zero, 20
    ret
    .balign 4096
routine_c:
    addi a0, zero, 30
    ret
    .balign 4096
end_image:
