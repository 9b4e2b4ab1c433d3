/*
 * Register logic of the plexus memory-to-memory DMA engine, free of any transport: the device glue (dma.c) and
 * the unit tests drive it through dma_read()/dma_write()/dma_complete() and see its effects through the hooks.
 * Register map and behaviour: README.md.
 *
 * Lifetime: the caller embeds struct dma and calls dma_init() once; there is nothing to free.
 */
#ifndef PLEXUS_DEVICES_DMA_REGS_H
#define PLEXUS_DEVICES_DMA_REGS_H

#include <stdbool.h>
#include <stdint.h>

#define DMA_REGION_SIZE 0x1000
#define DMA_ID_VALUE 0x504c444dU        /* "PLDM" */
#define DMA_VERSION_VALUE 0x00010000U   /* 1.0 */

enum {
    DMA_ID = 0x00,
    DMA_VERSION = 0x04,
    DMA_SRC_LO = 0x08, DMA_SRC_HI = 0x0c,
    DMA_DST_LO = 0x10, DMA_DST_HI = 0x14,
    DMA_LEN = 0x18,
    DMA_CTRL = 0x1c,
    DMA_STATUS = 0x20,
    DMA_COUNT = 0x24,
};

enum {
    DMA_CTRL_START = 0x1, DMA_CTRL_IE = 0x2,
    DMA_STATUS_BUSY = 0x1, DMA_STATUS_DONE = 0x2, DMA_STATUS_ERROR = 0x4,
};

typedef struct dma_hooks {
    /* Copy @len bytes of guest memory from @src to @dst (overlap allowed). 0, or -errno if a byte of either
     * range is not guest RAM the engine may reach. */
    int (*copy)(void *opaque, uint64_t dst, uint64_t src, uint64_t len);
    /* The interrupt output changed level. */
    void (*irq)(void *opaque, int level);
    /* Current virtual time in ns. */
    uint64_t (*now)(void *opaque);
    /* Arm the completion timer at virtual time @deadline_ns; dma_complete() must be called when it fires. */
    void (*timer_mod)(void *opaque, uint64_t deadline_ns);
    void (*timer_del)(void *opaque);
} dma_hooks;

typedef struct dma {
    const dma_hooks *hooks;
    void *opaque;
    uint64_t latency_ns;        /* fixed cost of a transfer */
    uint64_t ns_per_byte;       /* plus this per byte; both 0: transfers complete inside the start write */

    uint64_t src, dst;
    uint32_t len, ctrl, status, count;
    int irq_level;
} dma;

void dma_init(dma *d, const dma_hooks *hooks, void *opaque, uint64_t latency_ns, uint64_t ns_per_byte);
/* Power-on state: idle, registers zero, completion timer disarmed, interrupt low. */
void dma_reset(dma *d);

/* Guest access of 32 bits at @offset (4-aligned); other offsets in the region read 0 and ignore writes. */
uint32_t dma_read(dma *d, uint64_t offset);
void dma_write(dma *d, uint64_t offset, uint32_t value);

/* The completion timer fired. */
void dma_complete(dma *d);

#endif
