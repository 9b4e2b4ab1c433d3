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

/*
 * Emit map_page: map the 4 KiB page at virtual a0 to physical a1 with PTE flags a2 in a \levels-level page table
 * (3: Sv39, 4: Sv48, 5: Sv57) whose root is s11; missing tables are taken from s9 (zeroed RAM, advanced by
 * 4 KiB each). Clobbers t1-t5.
 */
.macro MAP_PAGE_FN levels
map_page:
    mv t1, s11
    li t2, \levels - 1
1:  li t3, 9
    mul t3, t3, t2
    addi t3, t3, 12
    srl t3, a0, t3
    andi t3, t3, 511
    slli t3, t3, 3
    add t3, t1, t3                  /* the entry at this level */
    beqz t2, 3f
    ld t4, 0(t3)
    andi t5, t4, 1
    bnez t5, 2f
    srli t4, s9, 12                 /* a new table */
    slli t4, t4, 10
    ori t4, t4, 1
    sd t4, 0(t3)
    li t5, 4096
    add s9, s9, t5
2:  srli t4, t4, 10
    slli t1, t4, 12
    addi t2, t2, -1
    j 1b
3:  srli t4, a1, 12
    slli t4, t4, 10
    or t4, t4, a2
    sd t4, 0(t3)
    ret
.endm
