/*
 * Test firmware for the @NAME@ machine (machine.yaml): bare-metal RISC-V 64, M-mode, no C library.
 * It checks the device's one register, prints a line per check on the 16550 UART and powers the machine off
 * through the sifive,test0 device: status 0 when every check passed, 1 after a line with FAIL. It names no
 * device, so `plexus new-device` ships the same firmware.elf, built from this file, to every new project.
 *
 * Build (riscv64-unknown-elf-gcc, Debian package gcc-riscv64-unknown-elf):  make firmware
 * The addresses below are those of machine.yaml; change both together.
 */
#define UART        0x10000000      /* ns16550a: THR at +0, LSR at +5 (bit 5: THR empty) */
#define DEVICE      0x10020000      /* @NAME@'s region "regs" */
#define POWEROFF    0x100000        /* sifive,test0 */
#define VALUE_RESET 0x12345678      /* VALUE after reset */
#define PATTERN     0xa5a55a5a

    .section .text
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, park                /* one hart runs the test */
    li      s0, UART
    li      s1, DEVICE

    la      a0, msg_reset
    call    puts
    lwu     t0, 0(s1)               /* VALUE reads its reset value */
    li      t1, VALUE_RESET
    bne     t0, t1, fail
    la      a0, msg_ok
    call    puts

    la      a0, msg_write
    call    puts
    li      t1, PATTERN
    sw      t1, 0(s1)               /* VALUE keeps what is written */
    lwu     t0, 0(s1)
    bne     t0, t1, fail
    la      a0, msg_ok
    call    puts

    la      a0, msg_pass
    call    puts
    li      t0, 0x5555              /* pass */
    j       poweroff

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
msg_reset:  .string "firmware: VALUE reads 0x12345678 after reset"
msg_write:  .string "firmware: VALUE keeps 0xa5a55a5a"
msg_ok:     .string " ok\n"
msg_fail:   .string " FAIL\n"
msg_pass:   .string "firmware: all checks passed\n"
