/* DMA engine register logic; see dma_regs.h and README.md. */
#include "dma_regs.h"

#include <string.h>

static void update_irq(dma *d)
{
    int level = (d->ctrl & DMA_CTRL_IE) && (d->status & (DMA_STATUS_DONE | DMA_STATUS_ERROR));

    if (level != d->irq_level) {
        d->irq_level = level;
        if (d->hooks->irq)
            d->hooks->irq(d->opaque, level);
    }
}

void
dma_init(dma *d, const dma_hooks *hooks, void *opaque, uint64_t latency_ns, uint64_t ns_per_byte)
{
    memset(d, 0, sizeof(*d));
    d->hooks = hooks;
    d->opaque = opaque;
    d->latency_ns = latency_ns;
    d->ns_per_byte = ns_per_byte;
    d->irq_level = -1;
}

void
dma_reset(dma *d)
{
    if (d->hooks->timer_del)
        d->hooks->timer_del(d->opaque);
    d->src = d->dst = 0;
    d->len = d->ctrl = d->status = d->count = 0;
    d->irq_level = -1;
    update_irq(d);
}

void
dma_complete(dma *d)
{
    if (!(d->status & DMA_STATUS_BUSY))
        return;
    d->status = DMA_STATUS_DONE;
    d->count++;
    update_irq(d);
}

static void start(dma *d)
{
    uint64_t delay;

    if (d->status & DMA_STATUS_BUSY)
        return;         /* one transfer at a time: a start while busy is ignored */
    d->status = 0;
    if ((d->len && (d->src + d->len - 1 < d->src || d->dst + d->len - 1 < d->dst)) ||
        (d->len && d->hooks->copy(d->opaque, d->dst, d->src, d->len) < 0)) {
        d->status = DMA_STATUS_ERROR;
        return;
    }
    delay = d->latency_ns + d->ns_per_byte * d->len;
    d->status = DMA_STATUS_BUSY;
    if (!delay || !d->hooks->timer_mod)
        dma_complete(d);
    else
        d->hooks->timer_mod(d->opaque, d->hooks->now(d->opaque) + delay);
}

void
dma_write(dma *d, uint64_t offset, uint32_t value)
{
    switch (offset) {
    case DMA_SRC_LO: d->src = (d->src & ~0xffffffffULL) | value; break;
    case DMA_SRC_HI: d->src = (d->src & 0xffffffffULL) | (uint64_t)value << 32; break;
    case DMA_DST_LO: d->dst = (d->dst & ~0xffffffffULL) | value; break;
    case DMA_DST_HI: d->dst = (d->dst & 0xffffffffULL) | (uint64_t)value << 32; break;
    case DMA_LEN: d->len = value; break;
    case DMA_CTRL:
        d->ctrl = value & DMA_CTRL_IE;
        if (value & DMA_CTRL_START)
            start(d);
        break;
    case DMA_STATUS:
        d->status &= ~(value & (DMA_STATUS_DONE | DMA_STATUS_ERROR));
        break;
    default:
        break;      /* ID, VERSION, COUNT are read-only; the rest is reserved */
    }
    update_irq(d);
}

uint32_t
dma_read(dma *d, uint64_t offset)
{
    switch (offset) {
    case DMA_ID: return DMA_ID_VALUE;
    case DMA_VERSION: return DMA_VERSION_VALUE;
    case DMA_SRC_LO: return (uint32_t)d->src;
    case DMA_SRC_HI: return (uint32_t)(d->src >> 32);
    case DMA_DST_LO: return (uint32_t)d->dst;
    case DMA_DST_HI: return (uint32_t)(d->dst >> 32);
    case DMA_LEN: return d->len;
    case DMA_CTRL: return d->ctrl;
    case DMA_STATUS: return d->status;
    case DMA_COUNT: return d->count;
    default: return 0;
    }
}
