#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/*
 * Test device: reads return a pattern made of the offset; writes to 0x100 drive PLIC source 5. A read of
 * 0x180 raises PLIC source 6 (a register with a side effect, like a device whose reply carries an
 * interrupt); writes to 0x180 drive it. The first defer_reads reads of 0x200 and defer_writes writes of 0x208
 * are deferred (hub_cpu_defer_access), as the hub does while a device is being restarted.
 * It also writes code into RAM from outside the hart, as a device's DMA does: after V is written to 0x300, a
 * 32-bit write of PA to 0x304 puts `addi a0, zero, V; ret` at physical PA at once (inside the access, as DMA
 * served while the hub waits on a device), one to 0x308 at the next slice boundary (as a device's report the
 * hub takes between slices); a read of 0x310 says how many of the latter were made. Either way the hart is
 * told (hub_cpu_ram_written).
 */
static void dma_code(test_machine *m, uint64_t pa)
{
    uint32_t code[2] = { 0x00000513u | (m->dma_value & 0xfff) << 20, 0x00008067u };
    if (pa < TM_RAM_BASE || pa + sizeof(code) > TM_RAM_BASE + TM_RAM_SIZE)
        return;
    memcpy(m->ram_ptr + (pa - TM_RAM_BASE), code, sizeof(code));
    hub_cpu_ram_written(m->cpu, pa, sizeof(code));
}

static void tm_service(void *opaque)
{
    test_machine *m = opaque;
    if (m->dma_pending) {
        dma_code(m, m->dma_pending);
        m->dma_pending = 0;
        m->dma_done++;
    }
}

static uint64_t testdev_read(void *opaque, hwaddr addr, unsigned size)
{
    test_machine *m = opaque;
    if (addr == 0x200 && m->defer_reads && hub_cpu_defer_access(m->cpu)) {
        m->defer_reads--;
        return 0xdeadbeef;      /* abandoned: nobody sees it */
    }
    uint64_t v = 0x1122334455667788ull ^ (addr * 0x0101010101010101ull);
    if (size < 8)
        v &= (1ull << (size * 8)) - 1;
    if (m->nlog < TM_LOG_MAX)
        m->log[m->nlog++] = (tm_access){ addr, size, v, 0, vclock_now(&m->clock) };
    if (addr == 0x180)
        hub_plic_set_irq(m->plic, 6, 1);
    if (addr == 0x310)
        return m->dma_done;
    return v;
}

static void testdev_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    test_machine *m = opaque;
    if (addr == 0x208 && m->defer_writes && hub_cpu_defer_access(m->cpu)) {
        m->defer_writes--;
        return;
    }
    if (m->nlog < TM_LOG_MAX)
        m->log[m->nlog++] = (tm_access){ addr, size, data, 1, vclock_now(&m->clock) };
    if (addr == 0x100)
        hub_plic_set_irq(m->plic, 5, data != 0);
    if (addr == 0x180)
        hub_plic_set_irq(m->plic, 6, data != 0);
    if (addr == 0x300)
        m->dma_value = (uint32_t)data;
    if (addr == 0x304)
        dma_code(m, data);
    if (addr == 0x308)
        m->dma_pending = data;
}

static const MemoryRegionOps testdev_ops = {
    .read = testdev_read,
    .write = testdev_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* A byte-wide register (like a 16550's): wider accesses are refused by the memory API. */
static uint64_t bytereg_read(void *opaque, hwaddr addr, unsigned size)
{
    return testdev_read(opaque, 0x800 + addr, size);
}

static void bytereg_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    testdev_write(opaque, 0x800 + addr, data, size);
}

static const MemoryRegionOps bytereg_ops = {
    .read = bytereg_read,
    .write = bytereg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 1 },
    .impl = { .min_access_size = 1, .max_access_size = 1 },
};

void tm_init(test_machine *m, const char *prog, const hub_cpu_config *extra)
{
    Error *err = NULL;
    memset(m, 0, sizeof(*m));
    vclock_init(&m->clock);
    memory_region_init(&m->root, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&m->ram, NULL, "ram", TM_RAM_SIZE, &err);
    cr_assert_null(err, "RAM: %s", err ? error_get_pretty(err) : "");
    memory_region_add_subregion(&m->root, TM_RAM_BASE, &m->ram);
    memory_region_init_io(&m->testdev, NULL, &testdev_ops, m, "testdev", 0x1000);
    memory_region_add_subregion(&m->root, TM_TESTDEV, &m->testdev);
    memory_region_init_io(&m->bytereg, NULL, &bytereg_ops, m, "bytereg", 8);
    memory_region_add_subregion(&m->root, TM_BYTEREG, &m->bytereg);
    address_space_init(&m->as, &m->root, "memory");
    m->ram_ptr = memory_region_get_ram_ptr(&m->ram);

    char path[512];
    snprintf(path, sizeof(path), "%s/%s", PROGS_DIR, prog);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t n = fread(m->ram_ptr, 1, TM_RAM_SIZE, f);
    fclose(f);
    cr_assert_gt(n, 0, "%s is empty", path);

    hub_cpu_config cfg = extra ? *extra : (hub_cpu_config){ 0 };
    cfg.as = &m->as;
    cfg.clock = &m->clock;
    if (!cfg.insns_per_ns && !cfg.wallclock)
        cfg.insns_per_ns = 0.1;
    if (!cfg.service && !cfg.idle && !cfg.opaque) {
        cfg.service = tm_service;
        cfg.opaque = m;
    }
    cfg.reset_pc = TM_RAM_BASE;
    m->cpu = hub_cpu_new(&cfg, &err);
    cr_assert_not_null(m->cpu, "hub_cpu_new: %s", err ? error_get_pretty(err) : "");

    m->clint = hub_clint_new(m->cpu, &m->clock, TM_TIMEBASE);
    m->plic = hub_plic_new(m->cpu, TM_PLIC_SOURCES);
    m->poweroff = hub_poweroff_new(m->cpu);
    cr_assert(m->clint && m->plic && m->poweroff);
    memory_region_transaction_begin();
    memory_region_add_subregion(&m->root, TM_CLINT, hub_clint_region(m->clint));
    memory_region_add_subregion(&m->root, TM_PLIC, hub_plic_region(m->plic));
    memory_region_add_subregion(&m->root, TM_POWEROFF, hub_poweroff_region(m->poweroff));
    memory_region_transaction_commit();
}

void tm_fini(test_machine *m)
{
    memory_region_transaction_begin();
    memory_region_del_subregion(&m->root, hub_clint_region(m->clint));
    memory_region_del_subregion(&m->root, hub_plic_region(m->plic));
    memory_region_del_subregion(&m->root, hub_poweroff_region(m->poweroff));
    memory_region_transaction_commit();
    hub_clint_free(m->clint);
    hub_plic_free(m->plic);
    hub_poweroff_free(m->poweroff);
    hub_cpu_free(m->cpu);
    address_space_destroy(&m->as);
    memory_region_del_subregion(&m->root, &m->testdev);
    memory_region_del_subregion(&m->root, &m->bytereg);
    memory_region_del_subregion(&m->root, &m->ram);
    memory_region_destroy(&m->testdev);
    memory_region_destroy(&m->bytereg);
    memory_region_destroy(&m->ram);
    memory_region_destroy(&m->root);
}

int tm_run(test_machine *m)
{
    Error *err = NULL;
    int r = hub_cpu_run(m->cpu, &err);
    cr_assert_geq(r, 0, "hub_cpu_run: %s", err ? error_get_pretty(err) : "");
    return r;
}

uint64_t tm_result(test_machine *m, unsigned slot)
{
    uint64_t v;
    memcpy(&v, m->ram_ptr + (TM_RESULTS - TM_RAM_BASE) + 8 * slot, sizeof(v));
    return v;
}
