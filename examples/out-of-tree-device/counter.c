/*
 * counter: a device built outside the plexus tree against an installed SDK, with nothing but
 *     cc counter.c $(pkg-config --cflags --libs plexus-sdk)
 *
 * One 16-byte IO region "regs":
 *   0x0 ID       RO  0x434e5452 ("CNTR")
 *   0x4 SCRATCH  RW  any 32-bit value
 *   0x8 COUNT    RO  writes to SCRATCH since reset (or since COUNT was cleared)
 *   0xc CLEAR    WO  any write sets COUNT to 0
 * 32-bit aligned accesses only; the rest of the region reads 0.
 *
 * The same file is a device program (main below) and a plugin for plexus-device-runner (PLX_DEVICE_DEFINE).
 */
#include <errno.h>
#include <stdlib.h>

#include <plexus/sdk.h>

typedef struct counter {
    uint32_t scratch, count;
} counter;

static uint64_t counter_read(void *opaque, uint64_t addr, unsigned size)
{
    counter *c = opaque;

    switch (addr) {
    case 0x0: return 0x434e5452;
    case 0x4: return c->scratch;
    case 0x8: return c->count;
    default: return 0;
    }
}

static void counter_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    counter *c = opaque;

    if (addr == 0x4) {
        c->scratch = (uint32_t)data;
        c->count++;
    } else if (addr == 0xc) {
        c->count = 0;
    }
}

static const plx_region_ops counter_region_ops = {
    .read = counter_read,
    .write = counter_write,
    .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

static const plx_region_info counter_regions[] = {
    { .name = "regs", .size = 0x10, .kind = PLX_REGION_IO, .ops = &counter_region_ops },
};

static int counter_init(plx_dev *dev, void **opaque)
{
    counter *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    *opaque = c;
    return 0;
}

static void counter_reset(void *opaque)
{
    counter *c = opaque;

    c->scratch = 0;
    c->count = 0;
}

static const plx_device_ops counter_ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "example,counter",
    .regions = counter_regions,
    .n_regions = 1,
    .init = counter_init,
    .reset = counter_reset,
    .fini = free,
};

PLX_DEVICE_DEFINE(&counter_ops);

int main(int argc, char **argv)
{
    return plx_dev_main(&counter_ops, argc, argv);
}
