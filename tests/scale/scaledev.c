/*
 * Small device for scale tests and benchmarks, built on the SDK. Regions:
 *   0 "regs" IO, 0x100, impl 4, valid 4:
 *       0x00..0x3f scratch u32 registers
 *       0x40/0x44  DMA address low/high        0x48 DMA length
 *       0x4c       write 1: fill [addr, addr+len) with (i ^ ident) bytes by DMA
 *       0x50       DMA result: 0, or 0xdead0000 | -errno
 *       0x54       write v: IRQ line 0 = v & 1
 *       0x58       number of completed "busy" writes
 *       0x5c       property ident
 *   1 "busy" POSTED, 0x10, impl 4, valid 4: a write at 0x0 logs "busy", then blocks the device until one
 *       byte arrives on the FIFO named by the property "busy_fifo" (or it ends), then counts a completed busy
 *       write. Stands for a device busy inside a callback.
 * IRQ line "irq0". Properties "ident" (default 0), "busy_fifo" (default none: busy writes return at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <plexus/sdk.h>

struct st {
    plx_dev *dev;
    uint32_t scratch[16];
    uint64_t dma_addr, ident;
    uint32_t dma_len, dma_res, busy_done;
};

static uint64_t regs_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    if (addr < 0x40)
        return s->scratch[addr / 4];
    switch (addr) {
    case 0x40: return (uint32_t)s->dma_addr;
    case 0x44: return (uint32_t)(s->dma_addr >> 32);
    case 0x48: return s->dma_len;
    case 0x50: return s->dma_res;
    case 0x58: return s->busy_done;
    case 0x5c: return (uint32_t)s->ident;
    default: return 0;
    }
}

static void dma_fill(struct st *s)
{
    uint8_t *buf = malloc(s->dma_len ? s->dma_len : 1);
    int r = -ENOMEM;
    if (buf) {
        for (uint32_t i = 0; i < s->dma_len; i++)
            buf[i] = (uint8_t)(i ^ s->ident);
        r = plx_dma_write(s->dev, s->dma_addr, buf, s->dma_len);
    }
    s->dma_res = r ? 0xdead0000u | (uint32_t)-r : 0;
    free(buf);
}

static void regs_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    if (addr < 0x40) {
        s->scratch[addr / 4] = (uint32_t)data;
        return;
    }
    switch (addr) {
    case 0x40: s->dma_addr = (s->dma_addr & ~0xffffffffull) | (uint32_t)data; break;
    case 0x44: s->dma_addr = (s->dma_addr & 0xffffffffull) | (data << 32); break;
    case 0x48: s->dma_len = (uint32_t)data; break;
    case 0x4c:
        if (data == 1)
            dma_fill(s);
        break;
    case 0x54: plx_irq_set(s->dev, 0, (int)(data & 1)); break;
    default: break;
    }
}

static uint64_t busy_read(void *opaque, uint64_t addr, unsigned size)
{
    return 0;
}

static void busy_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    const char *fifo = plx_dev_prop(s->dev, "busy_fifo");
    char c;
    if (addr != 0)
        return;
    plx_log(s->dev, PLX_LOG_NOTICE, "busy");
    int fd = fifo ? open(fifo, O_RDONLY | O_CLOEXEC) : -1;
    while (fd >= 0 && read(fd, &c, 1) < 0 && errno == EINTR)
        ;
    if (fd >= 0)
        close(fd);
    s->busy_done++;
}

static const plx_region_ops regs_ops = {
    .read = regs_read, .write = regs_write, .endianness = PLX_LITTLE_ENDIAN,
    .valid = { 4, 4, false }, .impl = { 4, 4, false },
};
static const plx_region_ops busy_ops = {
    .read = busy_read, .write = busy_write, .endianness = PLX_LITTLE_ENDIAN,
    .valid = { 4, 4, false }, .impl = { 4, 4, false },
};
static const plx_region_info regions[] = {
    { .name = "regs", .size = 0x100, .kind = PLX_REGION_IO, .ops = &regs_ops },
    { .name = "busy", .size = 0x10, .kind = PLX_REGION_POSTED, .ops = &busy_ops },
};
static const char *const irqs[] = { "irq0" };
static const plx_prop_info props[] = {
    { "ident", "0", "value of the IDENT register; also the DMA fill pattern" },
    { "busy_fifo", NULL, "a FIFO a busy write waits on for one byte" },
};

static int init(plx_dev *dev, void **opaque)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->dev = dev;
    if (plx_dev_prop_u64(dev, "ident", &s->ident) < 0) {
        free(s);
        return -EINVAL;
    }
    *opaque = s;
    return 0;
}

static void fini(void *opaque)
{
    free(opaque);
}

static const plx_device_ops ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "plexus,test-scaledev",
    .regions = regions, .n_regions = 2,
    .irq_names = irqs, .n_irqs = 1,
    .props = props, .n_props = 2,
    .init = init, .fini = fini,
};

int main(int argc, char **argv)
{
    return plx_dev_main(&ops, argc, argv);
}
