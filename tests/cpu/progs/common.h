/* Shared by the CPU test programs: the test machine's map (see ../harness.h). */
#define RAM_BASE 0x80000000
#define RESULTS 0x80010000          /* programs store what the test checks here, 8 bytes per slot */
#define TESTDEV 0x10000000          /* the test's I/O region */
#define BYTEREG 0x10001000          /* a register that only takes 1-byte accesses */
#define POWEROFF 0x100000
#define CLINT 0x2000000
#define CLINT_MTIMECMP (CLINT + 0x4000)
#define CLINT_MTIME (CLINT + 0xbff8)
#define PLIC 0xc000000

/* store register \reg into result slot \n (clobbers t6) */
.macro RESULT n, reg
    li t6, RESULTS + 8 * \n
    sd \reg, 0(t6)
.endm

.macro POWEROFF_PASS
    li t6, POWEROFF
    li t5, 0x5555
    sw t5, 0(t6)
1:  j 1b
.endm

.macro POWEROFF_FAIL code
    li t6, POWEROFF
    li t5, 0x3333 | (\code << 16)
    sw t5, 0(t6)
1:  j 1b
.endm
