/* Reads the test register device's SOCKET register (it opens an AF_INET socket, which the default sandbox
 * denies) and powers off with status 0 if the read returned 1, else status 3. */
    .section .text
    .globl _start
_start:
    li t0, 0x100200bc
    lwu t1, 0(t0)
    li t2, 0x100000
    li t3, 1
    bne t1, t3, bad
    li t3, 0x5555
    sw t3, 0(t2)
1:  j 1b
bad:
    li t3, 0x33333
    sw t3, 0(t2)
2:  j 2b
