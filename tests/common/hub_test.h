/* Helpers shared by the suites that run the hub's device layer in the test process: a path in the build tree,
 * a log sink that collects the layer's lines, and a rig (system memory with one RAM block, address space,
 * virtual clock, device manager). Include once per test program (the helpers are static). */
#ifndef PLEXUS_TEST_HUB_TEST_H
#define PLEXUS_TEST_HUB_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/memory.h>

#include "dev/devmgr.h"
#include "vclock.h"

/* @rel under the build tree (PLEXUS_BUILD_DIR, set by ctest); malloc'd. */
static inline char *test_build_path(const char *rel)
{
    const char *b = getenv("PLEXUS_BUILD_DIR");
    char *p;
    cr_assert(b, "PLEXUS_BUILD_DIR is not set (run through ctest)");
    cr_assert(asprintf(&p, "%s/%s", b, rel) > 0);
    return p;
}

/* Append "[device] msg\n" to @buf (capacity @cap), as long as there is room. */
static inline void test_log_append(char *buf, size_t cap, const char *device, const char *msg)
{
    size_t off = strlen(buf);
    if (off < cap - 1)
        snprintf(buf + off, cap - off, "[%s] %s\n", device ? device : "-", msg);
}

typedef struct test_rig {
    MemoryRegion sysmem, ram, ram2;
    AddressSpace as;
    vclock clk;
    hub_ram_block blocks[2];        /* blocks[1] ("ram2") only with test_rig_init2() */
    hub_devmgr *mgr;
} test_rig;

static inline void test_rig_add_ram(test_rig *r, MemoryRegion *mr, hub_ram_block *b, const char *name,
                                    uint64_t base, uint64_t size)
{
    Error *err = NULL;
    memory_region_init_ram(mr, NULL, name, size, &err);
    cr_assert_null(err);
    memory_region_add_subregion(&r->sysmem, base, mr);
    *b = (hub_ram_block){ name, base, size, memory_region_get_fd(mr), false };
}

/* A rig with a second RAM block "ram2" (@size2 bytes at @base2) when @size2 > 0. */
static inline void test_rig_init2(test_rig *r, uint64_t ram_base, uint64_t ram_size, uint64_t base2, uint64_t size2,
                                  hub_devmgr_env env)
{
    Error *err = NULL;
    memset(r, 0, sizeof(*r));
    memory_region_init(&r->sysmem, NULL, "system", UINT64_MAX);
    test_rig_add_ram(r, &r->ram, &r->blocks[0], "ram", ram_base, ram_size);
    if (size2)
        test_rig_add_ram(r, &r->ram2, &r->blocks[1], "ram2", base2, size2);
    address_space_init(&r->as, &r->sysmem, "test");
    vclock_init(&r->clk);
    env.sysmem = &r->sysmem;
    env.as = &r->as;
    env.clock = &r->clk;
    env.ram = r->blocks;
    env.n_ram = size2 ? 2 : 1;
    r->mgr = hub_devmgr_new(&env, &err);
    cr_assert_not_null(r->mgr, "%s", err ? error_get_pretty(err) : "");
}

/* @env's sysmem, as, clock and ram are filled in from the rig; the rest (callbacks) is the caller's. */
static inline void test_rig_init(test_rig *r, uint64_t ram_base, uint64_t ram_size, hub_devmgr_env env)
{
    test_rig_init2(r, ram_base, ram_size, 0, 0, env);
}

static inline void test_rig_fini(test_rig *r)
{
    hub_devmgr_free(r->mgr);
    r->mgr = NULL;
    address_space_destroy(&r->as);
    memory_region_del_subregion(&r->sysmem, &r->ram);
    memory_region_destroy(&r->ram);
    if (r->blocks[1].size) {
        memory_region_del_subregion(&r->sysmem, &r->ram2);
        memory_region_destroy(&r->ram2);
    }
    memory_region_destroy(&r->sysmem);
}

#endif
