/*
 * CLINT (sifive,clint0) for one hart: msip at 0x0, mtimecmp at 0x4000, mtime at 0xbff8. mtime counts at
 * timebase_hz of virtual time; a write to mtime is kept as an offset. MTIP follows mtime >= mtimecmp and a
 * virtual timer fires when the two meet.
 */
#include "cpu.h"

#include <stdlib.h>

#define CLINT_SIZE 0x10000
#define REG_MSIP 0x0
#define REG_MTIMECMP 0x4000
#define REG_MTIME 0xbff8

struct hub_clint {
    hub_cpu *cpu;
    vclock *clock;
    uint64_t hz;
    MemoryRegion mr;
    uint32_t msip;
    uint64_t mtimecmp;
    uint64_t offset;        /* mtime = ticks(now) + offset */
    vtimer timer;
};

static uint64_t ticks_at(const hub_clint *c, uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * c->hz / 1000000000u);
}

static uint64_t mtime(const hub_clint *c)
{
    return ticks_at(c, vclock_now(c->clock)) + c->offset;
}

static void update(hub_clint *c)
{
    uint64_t now_ticks = ticks_at(c, vclock_now(c->clock));
    uint64_t mt = now_ticks + c->offset;
    if (mt >= c->mtimecmp) {
        vtimer_del(&c->timer);
        hub_cpu_set_irq(c->cpu, HUB_IRQ_MTIP, 1);
        return;
    }
    hub_cpu_set_irq(c->cpu, HUB_IRQ_MTIP, 0);
    /* first nanosecond at which ticks reach now_ticks + (mtimecmp - mtime) */
    unsigned __int128 target = (unsigned __int128)now_ticks + (c->mtimecmp - mt);
    unsigned __int128 ns = (target * 1000000000u + c->hz - 1) / c->hz;
    if (ns >= VCLOCK_NEVER)
        vtimer_del(&c->timer);
    else
        vtimer_mod(&c->timer, (uint64_t)ns);
}

static uint64_t read_time(void *opaque)
{
    return mtime(opaque);
}

static void timer_fired(void *opaque)
{
    update(opaque);
}

static uint64_t reg64(hub_clint *c, hwaddr base)
{
    switch (base) {
    case REG_MSIP:
        return c->msip;
    case REG_MTIMECMP:
        return c->mtimecmp;
    case REG_MTIME:
        return mtime(c);
    default:
        return 0;
    }
}

static uint64_t clint_read(void *opaque, hwaddr addr, unsigned size)
{
    hub_clint *c = opaque;
    uint64_t v = reg64(c, addr & ~7ull);
    if (size == 8)
        return v;
    return (v >> ((addr & 4) * 8)) & 0xffffffffu;
}

static void clint_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    hub_clint *c = opaque;
    hwaddr base = addr & ~7ull;
    uint64_t v = data;
    if (size == 4) {
        unsigned shift = (addr & 4) * 8;
        v = (reg64(c, base) & ~(0xffffffffull << shift)) | ((data & 0xffffffffu) << shift);
    }
    switch (base) {
    case REG_MSIP:
        if (addr & 4)
            return;     /* the next hart's msip: there is none */
        c->msip = v & 1;
        hub_cpu_set_irq(c->cpu, HUB_IRQ_MSIP, (int)c->msip);
        return;
    case REG_MTIMECMP:
        c->mtimecmp = v;
        update(c);
        return;
    case REG_MTIME:
        c->offset = v - ticks_at(c, vclock_now(c->clock));
        update(c);
        return;
    default:
        return;
    }
}

static const MemoryRegionOps clint_ops = {
    .read = clint_read,
    .write = clint_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 8 },
};

hub_clint *
hub_clint_new(hub_cpu *cpu, vclock *clock, uint64_t timebase_hz)
{
    if (!cpu || !clock || !timebase_hz)
        return NULL;
    hub_clint *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cpu = cpu;
    c->clock = clock;
    c->hz = timebase_hz;
    c->mtimecmp = UINT64_MAX;
    vtimer_init(&c->timer, clock, timer_fired, c);
    memory_region_init_io(&c->mr, NULL, &clint_ops, c, "clint", CLINT_SIZE);
    hub_cpu_set_time_source(cpu, read_time, c);
    return c;
}

void
hub_clint_reset(hub_clint *c)
{
    c->msip = 0;
    c->mtimecmp = UINT64_MAX;
    c->offset = 0;
    hub_cpu_set_irq(c->cpu, HUB_IRQ_MSIP, 0);
    update(c);
}

MemoryRegion *
hub_clint_region(hub_clint *c)
{
    return &c->mr;
}

void
hub_clint_free(hub_clint *c)
{
    if (!c)
        return;
    vtimer_del(&c->timer);
    hub_cpu_set_time_source(c->cpu, NULL, NULL);
    memory_region_destroy(&c->mr);
    free(c);
}
