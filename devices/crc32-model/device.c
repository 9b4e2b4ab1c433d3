/*
 * plexus-crc32-model: the C model of the CRC-32 accelerator (crc32_model.c) as a plexus device, a drop-in
 * replacement for the RTL device plexus-rtl-crc32 (same region, IRQ line, register map and behaviour).
 * Properties: clock_hz and dma_latency set the operation's duration in virtual time as the RTL's would be.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/sdk.h>

#include "crc32_model.h"

typedef struct crc32_dev {
    plx_dev *dev;
    plx_timer *timer;
    crc32_model m;
} crc32_dev;

static int hook_dma_read(void *opaque, uint64_t addr, void *buf, size_t len)
{
    crc32_dev *s = opaque;
    int r = plx_dma_read(s->dev, addr, buf, len);
    if (r < 0)
        plx_log(s->dev, PLX_LOG_WARNING, "DMA read of %zu bytes at 0x%" PRIx64 " failed: %s", len, addr,
                strerror(-r));
    return r;
}

static void hook_set_irq(void *opaque, int level)
{
    crc32_dev *s = opaque;
    plx_irq_set(s->dev, 0, level);
}

static void hook_arm(void *opaque, uint64_t deadline_ns)
{
    crc32_dev *s = opaque;
    if (plx_dev_lockstep(s->dev)) {     /* the hub grants time up to the completion exactly */
        plx_set_next_event(s->dev, deadline_ns == CRC32_NEVER ? PLX_NEVER : deadline_ns);
        return;
    }
    if (deadline_ns == CRC32_NEVER)
        plx_timer_del(s->timer);
    else
        plx_timer_mod(s->timer, deadline_ns);
}

static void timer_cb(void *opaque)
{
    crc32_dev *s = opaque;
    crc32_model_advance(&s->m, plx_now(s->dev));
}

/* Lockstep: time granted up to @until_ns. */
static void crc32_advance(void *opaque, uint64_t until_ns)
{
    crc32_dev *s = opaque;
    crc32_model_advance(&s->m, until_ns);
}

static void bus_error(crc32_dev *s, const char *what, uint64_t addr)
{
    plx_log(s->dev, PLX_LOG_WARNING, "guest %s at offset 0x%" PRIx64 ": no register there", what, addr);
}

static uint64_t crc32_read(void *opaque, uint64_t addr, unsigned size)
{
    crc32_dev *s = opaque;
    bool err;
    uint32_t v = crc32_model_read(&s->m, plx_now(s->dev), addr, &err);
    if (err)
        bus_error(s, "read", addr);
    return v;
}

static void crc32_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    crc32_dev *s = opaque;
    bool err;
    crc32_model_write(&s->m, plx_now(s->dev), addr, (uint32_t)data, &err);
    if (err)
        bus_error(s, "write", addr);
}

static int crc32_init(plx_dev *dev, void **opaque)
{
    uint64_t hz, latency;
    int r;

    if ((r = plx_dev_prop_u64(dev, "clock_hz", &hz)) < 0 || (r = plx_dev_prop_u64(dev, "dma_latency", &latency)) < 0)
        return r;
    if (hz == 0 || hz > 100000000000ull || latency > 1000000) {
        plx_log(dev, PLX_LOG_ERR, "clock_hz=%" PRIu64 " must be in [1, 1e11] and dma_latency=%" PRIu64
                " at most 1000000", hz, latency);
        return -EINVAL;
    }
    crc32_dev *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dev = dev;
    s->timer = plx_timer_new(dev, timer_cb, s);
    if (!s->timer) {
        free(s);
        return -ENOMEM;
    }
    crc32_model_hooks hooks = {
        .dma_read = hook_dma_read,
        .set_irq = hook_set_irq,
        .arm = hook_arm,
        .opaque = s,
    };
    crc32_model_init(&s->m, &hooks, hz, (unsigned)latency);
    *opaque = s;
    return 0;
}

static void crc32_reset(void *opaque)
{
    crc32_dev *s = opaque;
    crc32_model_reset(&s->m);
}

static void crc32_fini(void *opaque)
{
    crc32_dev *s = opaque;
    plx_timer_free(s->timer);
    free(s);
}

static const plx_region_ops crc32_region_ops = {
    .read = crc32_read,
    .write = crc32_write,
    .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

static const plx_region_info crc32_regions[] = {
    { .name = "regs", .size = 0x100, .kind = PLX_REGION_IO, .ops = &crc32_region_ops },
};

static const char *const crc32_irqs[] = { "irq" };

static const plx_prop_info crc32_props[] = {
    { "clock_hz", "100000000", "clock frequency the operation's duration is computed with, in Hz" },
    { "dma_latency", "0", "cycles between a DMA request and its ack, as the RTL's wrapper" },
};

static const plx_device_ops crc32_ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "plexus,crc32",
    .regions = crc32_regions,
    .n_regions = 1,
    .irq_names = crc32_irqs,
    .n_irqs = 1,
    .props = crc32_props,
    .n_props = sizeof(crc32_props) / sizeof(crc32_props[0]),
    .init = crc32_init,
    .reset = crc32_reset,
    .fini = crc32_fini,
    .advance = crc32_advance,
};

int main(int argc, char **argv)
{
    return plx_dev_main(&crc32_ops, argc, argv);
}
