/*
 * Device used by plexus-bench-mmio. Regions: "io" (IO, impl 4), "posted" (POSTED, impl 4), "shadow"
 * (SHADOW, impl 4). "io" registers:
 *   0x00 scratch;  0x10/0x14 DMA guest address lo/hi;  0x18 length;  0x1c repetitions;
 *   0x20 command: 1 = plx_dma_write of a local buffer, 2 = memcpy between private buffers (the floor),
 *                 3 = plx_dma_read into a local buffer; each `reps` times `len` bytes after one warm-up;
 *   0x24/0x28 nanoseconds the last command took (lo/hi).
 * "posted" 0x0: writes are counted; reads of 0x0 return the count.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <plexus/sdk.h>

struct st {
    plx_dev *dev;
    uint32_t scratch;
    uint64_t addr, ns;
    uint32_t len, reps;
    uint32_t posted;
    uint8_t *a, *b;
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void run(struct st *s, uint32_t cmd)
{
    free(s->a);
    free(s->b);
    /* Page-aligned like guest RAM, so every copy below has the same alignment. */
    s->a = aligned_alloc(4096, ((size_t)s->len + 4095) & ~(size_t)4095);
    s->b = aligned_alloc(4096, ((size_t)s->len + 4095) & ~(size_t)4095);
    if (!s->a || !s->b)
        return;
    memset(s->a, 0x5a, s->len);
    memset(s->b, 0xa5, s->len);
    for (uint32_t i = 0; i <= s->reps; i++) {
        uint64_t t = i == 1 ? now_ns() : 0;
        if (i == 1)
            s->ns = t;
        if (cmd == 1)
            plx_dma_write(s->dev, s->addr, s->a, s->len);
        else if (cmd == 2)
            memcpy(s->b, s->a, s->len);
        else
            plx_dma_read(s->dev, s->addr, s->b, s->len);
        __asm__ volatile("" ::: "memory");
    }
    s->ns = now_ns() - s->ns;
}

static uint64_t io_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    switch (addr) {
    case 0x00: return s->scratch;
    case 0x24: return (uint32_t)s->ns;
    case 0x28: return (uint32_t)(s->ns >> 32);
    default: return 0;
    }
}

static void io_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    switch (addr) {
    case 0x00: s->scratch = (uint32_t)data; break;
    case 0x10: s->addr = (s->addr & ~0xffffffffull) | (uint32_t)data; break;
    case 0x14: s->addr = (s->addr & 0xffffffffull) | (data << 32); break;
    case 0x18: s->len = (uint32_t)data; break;
    case 0x1c: s->reps = (uint32_t)data; break;
    case 0x20: run(s, (uint32_t)data); break;
    default: break;
    }
}

static uint64_t posted_read(void *opaque, uint64_t addr, unsigned size)
{
    return ((struct st *)opaque)->posted;
}

static void posted_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    ((struct st *)opaque)->posted++;
}

static void shadow_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    plx_shadow_store(s->dev, 2, addr, data, size);
}

static const plx_region_ops io_ops = { .read = io_read, .write = io_write, .valid = { 4, 4, false },
                                       .impl = { 4, 4, false } };
static const plx_region_ops posted_ops = { .read = posted_read, .write = posted_write, .valid = { 4, 4, false },
                                           .impl = { 4, 4, false } };
static const plx_region_ops shadow_ops = { .write = shadow_write, .valid = { 1, 4, false },
                                           .impl = { 1, 4, false } };
static const plx_region_info regions[] = {
    { .name = "io", .size = 0x100, .kind = PLX_REGION_IO, .ops = &io_ops },
    { .name = "posted", .size = 0x100, .kind = PLX_REGION_POSTED, .ops = &posted_ops },
    { .name = "shadow", .size = 0x100, .kind = PLX_REGION_SHADOW, .ops = &shadow_ops },
};

static int init(plx_dev *dev, void **opaque)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s)
        return -12;
    s->dev = dev;
    plx_shadow_store(dev, 2, 0, 0x600dcafe, 4);
    *opaque = s;
    return 0;
}

static void fini(void *opaque)
{
    struct st *s = opaque;
    free(s->a);
    free(s->b);
    free(s);
}

static const plx_device_ops ops = {
    .version = PLX_DEVICE_OPS_VERSION, .model = "plexus,bench", .regions = regions, .n_regions = 3,
    .init = init, .fini = fini,
};

int main(int argc, char **argv)
{
    return plx_dev_main(&ops, argc, argv);
}
