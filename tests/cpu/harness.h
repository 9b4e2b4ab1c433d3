/*
 * A small RISC-V machine for the CPU tests, in QEMU virt's map: RAM 16 MiB at 0x80000000, a test I/O
 * region at 0x10000000 that logs every access (and plays a DMA engine, see harness.c), CLINT, PLIC and the
 * finisher.
 */
#ifndef PLEXUS_TESTS_CPU_HARNESS_H
#define PLEXUS_TESTS_CPU_HARNESS_H

#include <stdint.h>

#include "cpu.h"

#define TM_RAM_BASE 0x80000000ull
#define TM_RAM_SIZE (16ull << 20)
#define TM_RESULTS 0x80010000ull
#define TM_TESTDEV 0x10000000ull
#define TM_BYTEREG 0x10001000ull
#define TM_POWEROFF 0x100000ull
#define TM_CLINT 0x2000000ull
#define TM_PLIC 0xc000000ull
#define TM_TIMEBASE 10000000ull
#define TM_PLIC_SOURCES 32
#define TM_LOG_MAX 64

typedef struct tm_access {
    uint64_t addr;
    unsigned size;
    uint64_t data;
    int is_write;
    uint64_t t;         /* virtual time the device saw */
} tm_access;

typedef struct test_machine {
    AddressSpace as;
    MemoryRegion root, ram, testdev, bytereg;
    vclock clock;
    hub_cpu *cpu;
    hub_clint *clint;
    hub_plic *plic;
    hub_poweroff *poweroff;
    uint8_t *ram_ptr;
    tm_access log[TM_LOG_MAX];
    unsigned nlog;
    unsigned defer_reads, defer_writes;     /* accesses to 0x200 / 0x208 to defer (hub_cpu_defer_access) */
    uint32_t dma_value;     /* what the code the test device writes returns */
    uint64_t dma_pending;   /* a copy the test device makes at the next slice boundary (0: none) */
    uint32_t dma_done;      /* copies made that way */
} test_machine;

/* Build the machine and load @prog (a file name under the built progs/ folder) at the RAM base. */
void tm_init(test_machine *m, const char *prog, const hub_cpu_config *extra);
void tm_fini(test_machine *m);
/* Run to poweroff; returns hub_cpu_run's result (asserts no error). */
int tm_run(test_machine *m);
uint64_t tm_result(test_machine *m, unsigned slot);

#endif
