/*
 * counter-test: bare-metal RISC-V 64 firmware for machine.yaml (M-mode, no C library). It checks the counter
 * device (counter.c) twice: counter0, the device program at 0x10020000, and counter1, the same code as a plugin
 * at 0x10021000. One line per device on the 16550 UART; powers off through sifive,test0 with status 0 when
 * both pass, 1 after a line with FAIL.
 */
#define UART     0x10000000         /* ns16550a: THR at +0, LSR at +5 (bit 5: THR empty) */
#define POWEROFF 0x100000           /* sifive,test0 */
#define COUNTER0 0x10020000
#define COUNTER1 0x10021000
#define ID       0x434e5452         /* "CNTR" */

    .section .text
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, park
    li      s0, UART
    li      s1, COUNTER0
    la      a0, msg_counter0
    call    check
    li      s1, COUNTER1
    la      a0, msg_counter1
    call    check
    la      a0, msg_pass
    call    puts
    li      t0, 0x5555              /* pass */
    j       poweroff

/* check(a0 = its name, s1 = base): ID; five SCRATCH writes counted in COUNT; CLEAR. */
check:
    mv      s2, ra
    call    puts
    lwu     t0, 0x0(s1)             /* ID */
    li      t1, ID
    bne     t0, t1, fail
    li      t2, 1
1:  slli    t1, t2, 4               /* SCRATCH = 0x10, 0x20, ... 0x50 */
    sw      t1, 0x4(s1)
    addi    t2, t2, 1
    li      t3, 6
    bne     t2, t3, 1b
    lwu     t0, 0x4(s1)             /* SCRATCH keeps the last value */
    li      t3, 0x50
    bne     t0, t3, fail
    lwu     t0, 0x8(s1)             /* COUNT: five writes */
    li      t3, 5
    bne     t0, t3, fail
    sw      zero, 0xc(s1)           /* CLEAR */
    lwu     t0, 0x8(s1)
    bnez    t0, fail
    la      a0, msg_ok
    call    puts
    jr      s2

fail:
    la      a0, msg_fail
    call    puts
    li      t0, 0x13333             /* fail, exit status 1 */
poweroff:
    li      t1, POWEROFF
    sw      t0, 0(t1)
park:
    wfi
    j       park

/* puts(a0): write the NUL-terminated string at a0 to the UART, polling LSR.THRE before each byte. */
puts:
    lbu     t0, 0(a0)
    beqz    t0, 2f
1:  lbu     t1, 5(s0)
    andi    t1, t1, 0x20
    beqz    t1, 1b
    sb      t0, 0(s0)
    addi    a0, a0, 1
    j       puts
2:  ret

    .section .rodata
msg_counter0:   .string "counter-test: counter0 (program): ID, SCRATCH, COUNT, CLEAR"
msg_counter1:   .string "counter-test: counter1 (plugin): ID, SCRATCH, COUNT, CLEAR"
msg_ok:         .string " ok\n"
msg_fail:       .string " FAIL\n"
msg_pass:       .string "counter-test: all checks passed\n"
