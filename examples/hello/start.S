/*
 * Entry of the hello firmware, in M-mode at the start of RAM: a0 = hart id, a1 = device tree address.
 * Hart 0 sets up gp, tp, the stack and the trap vector, clears .bss, and calls hello_main(hartid, dtb); other harts
 * park. Traps save every integer register and call trap_handler(), which handles the interrupt or reports the
 * exception and powers off.
 */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    bnez    a0, park
    la      sp, __stack_top
    la      tp, __tls_base
    la      t0, trap_entry
    csrw    mtvec, t0
    csrw    mie, zero
    li      t0, (1 << 13)           /* mstatus.FS = Initial: the C library may use the FPU */
    csrs    mstatus, t0
    csrw    fcsr, zero

    /* Zero .tbss and .bss (word-aligned bounds, see hello.ld). */
    la      t0, __tbss_start
    la      t1, __tbss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:  la      t0, __bss_start
    la      t1, __bss_end
3:  bgeu    t0, t1, 4f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       3b
4:  call    hello_main
    call    poweroff                /* hello_main's return value is the exit status */

park:
    wfi
    j       park

    .text
    .balign 4
    .globl trap_entry
trap_entry:
    addi    sp, sp, -256
    sd      ra, 0(sp)
    sd      t0, 8(sp)
    sd      t1, 16(sp)
    sd      t2, 24(sp)
    sd      a0, 32(sp)
    sd      a1, 40(sp)
    sd      a2, 48(sp)
    sd      a3, 56(sp)
    sd      a4, 64(sp)
    sd      a5, 72(sp)
    sd      a6, 80(sp)
    sd      a7, 88(sp)
    sd      t3, 96(sp)
    sd      t4, 104(sp)
    sd      t5, 112(sp)
    sd      t6, 120(sp)
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    trap_handler            /* callee-saved registers are preserved by the C ABI */
    ld      ra, 0(sp)
    ld      t0, 8(sp)
    ld      t1, 16(sp)
    ld      t2, 24(sp)
    ld      a0, 32(sp)
    ld      a1, 40(sp)
    ld      a2, 48(sp)
    ld      a3, 56(sp)
    ld      a4, 64(sp)
    ld      a5, 72(sp)
    ld      a6, 80(sp)
    ld      a7, 88(sp)
    ld      t3, 96(sp)
    ld      t4, 104(sp)
    ld      t5, 112(sp)
    ld      t6, 120(sp)
    addi    sp, sp, 256
    mret
