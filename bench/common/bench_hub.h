/* The hub side of the device benchmarks: a system memory map with one RAM block, its address space and virtual
 * clock, a device manager over them, and 32-bit guest accesses that end the program if they fail. One per
 * program (the state is file-static). */
#ifndef PLEXUS_BENCH_HUB_H
#define PLEXUS_BENCH_HUB_H

#include "bench_util.h"

#include <plexus/memory.h>

#include "dev/devmgr.h"
#include "vclock.h"

static MemoryRegion bench_sysmem, bench_ram;
static AddressSpace bench_as;
static vclock bench_clk;
static hub_ram_block bench_blk;
static hub_devmgr_env bench_env;

/* Another device manager over the same memory map and clock. */
static inline hub_devmgr *bench_hub_manager(void)
{
    Error *err = NULL;
    hub_devmgr *m = hub_devmgr_new(&bench_env, &err);
    if (!m) {
        fprintf(stderr, "bench: %s\n", error_get_pretty(err));
        exit(1);
    }
    return m;
}

static inline hub_devmgr *bench_hub_new(uint64_t ram_base, uint64_t ram_size)
{
    Error *err = NULL;
    memory_region_init(&bench_sysmem, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&bench_ram, NULL, "ram", ram_size, &err);
    if (err) {
        fprintf(stderr, "bench: %s\n", error_get_pretty(err));
        exit(1);
    }
    memory_region_add_subregion(&bench_sysmem, ram_base, &bench_ram);
    address_space_init(&bench_as, &bench_sysmem, "bench");
    vclock_init(&bench_clk);
    bench_blk = (hub_ram_block){ "ram", ram_base, ram_size, memory_region_get_fd(&bench_ram), false };
    bench_env = (hub_devmgr_env){ .sysmem = &bench_sysmem, .as = &bench_as, .clock = &bench_clk, .ram = &bench_blk,
                                  .n_ram = 1 };
    return bench_hub_manager();
}

static inline void bench_hub_free(hub_devmgr *m)
{
    hub_devmgr_free(m);
    address_space_destroy(&bench_as);
    memory_region_del_subregion(&bench_sysmem, &bench_ram);
    memory_region_destroy(&bench_ram);
    memory_region_destroy(&bench_sysmem);
}

static inline uint32_t bench_rd32(hwaddr a)
{
    uint32_t v;
    if (address_space_read(&bench_as, a, MEMTXATTRS_UNSPECIFIED, (uint8_t *)&v, 4) != MEMTX_OK) {
        fprintf(stderr, "bench: read at 0x%lx failed\n", (unsigned long)a);
        exit(1);
    }
    return v;
}

static inline void bench_wr32(hwaddr a, uint32_t v)
{
    if (address_space_write(&bench_as, a, MEMTXATTRS_UNSPECIFIED, (uint8_t *)&v, 4) != MEMTX_OK) {
        fprintf(stderr, "bench: write at 0x%lx failed\n", (unsigned long)a);
        exit(1);
    }
}

/* Read round trips on the register at @a (expected to hold @want): @n samples (ns) into @v. */
static inline void bench_sample_reads(hwaddr a, uint32_t want, uint64_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t t = bench_now_ns();
        if (bench_rd32(a) != want) {
            fprintf(stderr, "bench: read at 0x%lx returned a wrong value\n", (unsigned long)a);
            exit(1);
        }
        v[i] = bench_now_ns() - t;
    }
}

#endif
