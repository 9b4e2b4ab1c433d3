/*
 * Memory-to-memory DMA engine device: the register logic of dma_regs.c wired to the plexus SDK. Copies go
 * straight through the guest RAM mapping when both ranges are mapped, otherwise through DMA messages to the
 * hub. Completion is signalled after a virtual-time delay (README.md). Built both into the plexus-dma program
 * (main.c) and into the plexus-dma.so plugin for plexus-device-runner.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/sdk.h>

#include "dma.h"
#include "dma_regs.h"

#define MAX_NS_PER_BYTE 1000000ULL      /* 1 ms per byte: keeps latency + len * ns-per-byte far from overflow */
#define MAX_LATENCY_NS (1ULL << 50)

typedef struct dma_dev {
    plx_dev *dev;
    dma regs;
    plx_timer *timer;
} dma_dev;

static int copy_by_message(plx_dev *dev, uint64_t dst, uint64_t src, uint64_t len)
{
    uint8_t buf[4096];
    /* Overlapping with the destination above the source: copy from the end, like memmove. */
    bool backward = dst > src && dst - src < len;

    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);
        uint64_t off = backward ? len - done - n : done;
        int r;

        if ((r = plx_dma_read(dev, src + off, buf, n)) < 0 || (r = plx_dma_write(dev, dst + off, buf, n)) < 0)
            return r;
        done += n;
    }
    return 0;
}

static int hook_copy(void *opaque, uint64_t dst, uint64_t src, uint64_t len)
{
    dma_dev *s = opaque;
    const void *from;
    void *to;
    int r;

    if (len > SIZE_MAX)
        return -EFAULT;
    from = plx_dma_map(s->dev, src, (size_t)len, false);
    to = plx_dma_map(s->dev, dst, (size_t)len, true);
    if (from && to) {
        memmove(to, from, (size_t)len);
        plx_dma_written(s->dev, dst, (size_t)len);     /* the hub drops code the guest ran from there */
        return 0;
    }
    r = copy_by_message(s->dev, dst, src, len);
    if (r < 0)
        plx_log(s->dev, PLX_LOG_INFO, "transfer of %llu bytes from 0x%llx to 0x%llx failed: %s",
                (unsigned long long)len, (unsigned long long)src, (unsigned long long)dst, strerror(-r));
    return r;
}

static void hook_irq(void *opaque, int level)
{
    dma_dev *s = opaque;

    plx_irq_set(s->dev, 0, level);
}

static uint64_t hook_now(void *opaque)
{
    dma_dev *s = opaque;

    return plx_now(s->dev);
}

static void hook_timer_mod(void *opaque, uint64_t deadline)
{
    dma_dev *s = opaque;

    plx_timer_mod(s->timer, deadline);
}

static void hook_timer_del(void *opaque)
{
    dma_dev *s = opaque;

    plx_timer_del(s->timer);
}

static const dma_hooks hooks = {
    .copy = hook_copy, .irq = hook_irq, .now = hook_now, .timer_mod = hook_timer_mod, .timer_del = hook_timer_del,
};

static void on_timer(void *opaque)
{
    dma_dev *s = opaque;

    dma_complete(&s->regs);
}

/* 8-byte accesses are two 32-bit register accesses, lower address first. */
static uint64_t region_read(void *opaque, uint64_t addr, unsigned size)
{
    dma_dev *s = opaque;
    uint64_t v = dma_read(&s->regs, addr);

    if (size == 8)
        v |= (uint64_t)dma_read(&s->regs, addr + 4) << 32;
    return v;
}

static void region_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    dma_dev *s = opaque;

    dma_write(&s->regs, addr, (uint32_t)data);
    if (size == 8)
        dma_write(&s->regs, addr + 4, (uint32_t)(data >> 32));
}

static const plx_region_ops region_ops = {
    .read = region_read,
    .write = region_write,
    .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 8 },
};

static const plx_region_info regions[] = {
    { .name = "regs", .size = DMA_REGION_SIZE, .kind = PLX_REGION_POSTED, .ops = &region_ops },
};

static const char *const irq_names[] = { "irq" };

static const plx_prop_info props[] = {
    { "latency-ns", "1000", "virtual time every transfer takes, in ns" },
    { "ns-per-byte", "1", "virtual time per byte copied, in ns (with latency-ns 0: 0 completes at once)" },
};

static void dma_fini(void *opaque)
{
    dma_dev *s = opaque;

    if (!s)
        return;
    plx_timer_free(s->timer);
    free(s);
}

static int dma_init_dev(plx_dev *dev, void **opaque)
{
    dma_dev *s;
    uint64_t latency, per_byte;

    if (plx_dev_prop_u64(dev, "latency-ns", &latency) < 0 || plx_dev_prop_u64(dev, "ns-per-byte", &per_byte) < 0)
        return -EINVAL;
    if (latency > MAX_LATENCY_NS || per_byte > MAX_NS_PER_BYTE) {
        plx_log(dev, PLX_LOG_ERR, "latency-ns must be at most %llu and ns-per-byte at most %llu",
                (unsigned long long)MAX_LATENCY_NS, (unsigned long long)MAX_NS_PER_BYTE);
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dev = dev;
    s->timer = plx_timer_new(dev, on_timer, s);
    if (!s->timer) {
        free(s);
        return -ENOMEM;
    }
    dma_init(&s->regs, &hooks, s, latency, per_byte);
    dma_reset(&s->regs);
    *opaque = s;
    return 0;
}

static void dma_reset_dev(void *opaque)
{
    dma_dev *s = opaque;

    dma_reset(&s->regs);
}

const plx_device_ops dma_engine_ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "plexus,dma",
    .regions = regions,
    .n_regions = sizeof(regions) / sizeof(regions[0]),
    .irq_names = irq_names,
    .n_irqs = 1,
    .props = props,
    .n_props = sizeof(props) / sizeof(props[0]),
    .init = dma_init_dev,
    .reset = dma_reset_dev,
    .fini = dma_fini,
};

PLX_DEVICE_DEFINE(&dma_engine_ops);
