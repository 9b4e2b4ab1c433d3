/* Code a device copies over code the hart already ran, then runs again: the DMA engine (plexus-dma, regs at
 * 0x10010000) copies `addi a0, zero, 2; ret` over `routine` (which returned 1). Powers off with status 0 when the
 * new code runs, 3 when the old one still does (stale translated code), 4 if the engine reports an error.
 * fence.i is there as a real guest would have it: it does not make the hart see a device's write. */
#define DMA 0x10010000
#define POWEROFF 0x100000
    .option norvc
    .section .text
    .globl _start
_start:
    li s0, DMA
    call routine                    # translated and run once: returns 1
    li t0, 1
    bne a0, t0, stale
    la t0, new_code
    sw t0, 0x08(s0)                 # SRC
    sw zero, 0x0c(s0)
    la t0, routine
    sw t0, 0x10(s0)                 # DST
    sw zero, 0x14(s0)
    li t0, 8
    sw t0, 0x18(s0)                 # LEN
    li t0, 1
    sw t0, 0x1c(s0)                 # CTRL: START
1:  lw t0, 0x20(s0)                 # STATUS: BUSY 1, DONE 2, ERROR 4
    andi t1, t0, 4
    bnez t1, error
    andi t1, t0, 2
    beqz t1, 1b
    fence.i
    call routine
    li t0, 2
    bne a0, t0, stale
    li t2, POWEROFF
    li t3, 0x5555
    sw t3, 0(t2)
2:  j 2b
stale:
    li t2, POWEROFF
    li t3, 0x33333
    sw t3, 0(t2)
3:  j 3b
error:
    li t2, POWEROFF
    li t3, 0x43333
    sw t3, 0(t2)
4:  j 4b

    .balign 4096
routine:
    li a0, 1
    ret

    .section .data
    .balign 8
new_code:
    .word 0x00200513                # addi a0, zero, 2
    .word 0x00008067                # ret
