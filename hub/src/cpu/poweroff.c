/* sifive,test0 finisher: 0x5555 pass, 0x3333 | code << 16 fail with code, 0x7777 reset. */
#include "cpu.h"

#include <stdlib.h>

#define FINISHER_FAIL 0x3333
#define FINISHER_PASS 0x5555
#define FINISHER_RESET 0x7777

struct hub_poweroff {
    hub_cpu *cpu;
    MemoryRegion mr;
};

static uint64_t poweroff_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}

static void poweroff_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    hub_poweroff *p = opaque;
    if (addr != 0)
        return;
    switch (data & 0xffff) {
    case FINISHER_PASS:
    case FINISHER_RESET:
        hub_cpu_stop(p->cpu, 0);
        break;
    case FINISHER_FAIL:
        hub_cpu_stop(p->cpu, (int)((data >> 16) & 0xffff));
        break;
    default:
        break;
    }
}

static const MemoryRegionOps poweroff_ops = {
    .read = poweroff_read,
    .write = poweroff_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 2, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

hub_poweroff *
hub_poweroff_new(hub_cpu *cpu)
{
    if (!cpu)
        return NULL;
    hub_poweroff *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cpu = cpu;
    memory_region_init_io(&p->mr, NULL, &poweroff_ops, p, "poweroff", 0x1000);
    return p;
}

MemoryRegion *
hub_poweroff_region(hub_poweroff *p)
{
    return &p->mr;
}

void
hub_poweroff_free(hub_poweroff *p)
{
    if (!p)
        return;
    memory_region_destroy(&p->mr);
    free(p);
}
