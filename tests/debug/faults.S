/*
 * Guest errors for the -d log: a load from an address where nothing is mapped, a byte store to the
 * sifive,test0 register (it takes 2- and 4-byte accesses), a CSR the hart does not have; the trap handler
 * steps over each. Then the first load again with mtvec at an address that cannot be fetched: the CPU stops
 * fatally, and the first fault of that cascade is the load access fault at `fatal_load`.
 */
#define POWEROFF 0x100000
    .section .text
    .globl _start
_start:
    la t0, handler
    csrw mtvec, t0
    li t1, 0x40000000           /* nothing there */
    .globl bad_load
bad_load:
    lw t2, 0(t1)
    li t1, POWEROFF
    .globl bad_store
bad_store:
    sb zero, 0(t1)              /* sifive,test0 takes 4-byte accesses only */
    .globl bad_csr
bad_csr:
    csrr t2, 0x7c5              /* no such CSR */
    la t0, 0x40000000
    csrw mtvec, t0              /* now a fault has nowhere to go */
    li t1, 0x40000000
    .globl fatal_load
fatal_load:
    lw t2, 0(t1)
1:  j 1b

    .balign 4
handler:
    csrr t3, mepc
    addi t3, t3, 4
    csrw mepc, t3
    mret
