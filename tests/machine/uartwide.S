/* A 4-byte load and a 4-byte store to the real 16550 (its registers take byte accesses only) must each take a
 * precise access fault (mcause 5, then 7; mtval the UART's address) without reaching the device; byte accesses
 * still work afterwards: the guest prints "ok" through the UART and powers off with 0. Any other outcome
 * powers off with status 3 (no fault), 4 (wrong cause) or 5 (wrong address). */
    .section .text
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s0, 0                /* phase: 0 expects the load's fault, 1 the store's */
    li s1, 0x10000000       /* the UART */
    li s2, 0x100000         /* the finisher */
    lw t1, 0(s1)
    li a0, 0x33333          /* the load did not fault */
    j done
store:
    li t1, 0x41
    sw t1, 0(s1)
    li a0, 0x33333          /* the store did not fault */
    j done
trap:
    csrr t4, mcause
    li t5, 5
    add t5, t5, s0
    add t5, t5, s0          /* 5, then 7 */
    li a0, 0x43333
    bne t4, t5, done
    csrr t4, mtval
    li a0, 0x53333
    bne t4, s1, done
    bnez s0, bytes
    li s0, 1
    la t0, store
    csrw mepc, t0
    mret
bytes:
    li t1, 0x6f             /* 'o' */
    sb t1, 0(s1)
    li t1, 0x6b             /* 'k' */
    sb t1, 0(s1)
    li t1, 0x0a
    sb t1, 0(s1)
2:  lbu t1, 5(s1)           /* LSR: wait until the transmitter is empty (TEMT) before powering off */
    andi t1, t1, 0x40
    beqz t1, 2b
    li a0, 0x5555           /* pass */
done:
    sw a0, 0(s2)
3:  j 3b
