/* Powers the machine off with status 7 through the sifive,test0 device (0x3333 | code << 16), after checking
 * that a1 points at a device tree (FDT magic d00dfeed, big-endian); status 9 if it does not. */
    .section .text
    .globl _start
_start:
    lwu t0, 0(a1)
    li t1, 0xedfe0dd0
    li t2, 0x100000
    bne t0, t1, bad
    li t3, 0x73333
    sw t3, 0(t2)
1:  j 1b
bad:
    li t3, 0x93333
    sw t3, 0(t2)
2:  j 2b
