/*
 * PLIC (sifive,plic-1.0.0) in QEMU virt's layout for one hart: context 0 is M-mode (drives MEIP), context 1
 * is S-mode (drives SEIP). Sources are level-triggered: while a source is not claimed its pending bit
 * follows its line; a claim takes the best pending enabled source above the threshold (highest priority,
 * then lowest id) and clears its pending bit; completion re-arms it, pending again if the line is still high.
 */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

#define PLIC_SIZE 0x4000000
#define PLIC_CONTEXTS 2
#define PLIC_MAX_SOURCES 1023
#define PLIC_PRIO_MASK 7u

#define REG_PRIORITY 0x0
#define REG_PENDING 0x1000
#define REG_ENABLE 0x2000
#define ENABLE_STRIDE 0x80
#define REG_CONTEXT 0x200000
#define CONTEXT_STRIDE 0x1000

struct hub_plic {
    hub_cpu *cpu;
    unsigned n;             /* sources 1..n */
    unsigned words;         /* bitmap words covering 0..n */
    MemoryRegion mr;
    uint32_t *priority;     /* [n + 1] */
    uint32_t *pending, *level, *claimed;
    uint32_t *enable[PLIC_CONTEXTS];
    uint32_t threshold[PLIC_CONTEXTS];
};

static const unsigned context_irq[PLIC_CONTEXTS] = { HUB_IRQ_MEIP, HUB_IRQ_SEIP };

static bool bit(const uint32_t *map, unsigned i)
{
    return (map[i / 32] >> (i % 32)) & 1;
}

static void set_bit_to(uint32_t *map, unsigned i, bool v)
{
    if (v)
        map[i / 32] |= 1u << (i % 32);
    else
        map[i / 32] &= ~(1u << (i % 32));
}

/* Best source for @ctx, or 0. */
static unsigned best(const hub_plic *p, unsigned ctx)
{
    unsigned id = 0;
    uint32_t prio = p->threshold[ctx];
    for (unsigned w = 0; w < p->words; w++) {
        uint32_t cand = p->pending[w] & p->enable[ctx][w];
        while (cand) {
            unsigned s = w * 32 + (unsigned)__builtin_ctz(cand);
            cand &= cand - 1;
            if (p->priority[s] > prio) {
                prio = p->priority[s];
                id = s;
            }
        }
    }
    return id;
}

static void update(hub_plic *p)
{
    for (unsigned ctx = 0; ctx < PLIC_CONTEXTS; ctx++)
        hub_cpu_set_irq(p->cpu, context_irq[ctx], best(p, ctx) != 0);
}

static uint64_t plic_read(void *opaque, hwaddr addr, unsigned size)
{
    hub_plic *p = opaque;
    hub_cpu_irq_sync(p->cpu);   /* what the guest reads follows from what it wrote before */
    if (addr < REG_PENDING) {
        unsigned s = (unsigned)(addr / 4);
        return s >= 1 && s <= p->n ? p->priority[s] : 0;
    }
    if (addr < REG_ENABLE) {
        unsigned w = (unsigned)((addr - REG_PENDING) / 4);
        return w < p->words ? p->pending[w] : 0;
    }
    if (addr < REG_CONTEXT) {
        unsigned ctx = (unsigned)((addr - REG_ENABLE) / ENABLE_STRIDE);
        unsigned w = (unsigned)((addr - REG_ENABLE) % ENABLE_STRIDE / 4);
        return ctx < PLIC_CONTEXTS && w < p->words ? p->enable[ctx][w] : 0;
    }
    unsigned ctx = (unsigned)((addr - REG_CONTEXT) / CONTEXT_STRIDE);
    hwaddr reg = (addr - REG_CONTEXT) % CONTEXT_STRIDE;
    if (ctx >= PLIC_CONTEXTS)
        return 0;
    if (reg == 0)
        return p->threshold[ctx];
    if (reg == 4) {
        unsigned id = best(p, ctx);
        if (id) {
            set_bit_to(p->pending, id, false);
            set_bit_to(p->claimed, id, true);
            update(p);
        }
        return id;
    }
    return 0;
}

static void plic_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    hub_plic *p = opaque;
    hub_cpu_irq_sync(p->cpu);   /* a completion re-arms a source whose line the guest may just have lowered */
    uint32_t v = (uint32_t)data;
    if (addr < REG_PENDING) {
        unsigned s = (unsigned)(addr / 4);
        if (s >= 1 && s <= p->n)
            p->priority[s] = v & PLIC_PRIO_MASK;
    } else if (addr < REG_ENABLE) {
        return;     /* pending bits are read-only */
    } else if (addr < REG_CONTEXT) {
        unsigned ctx = (unsigned)((addr - REG_ENABLE) / ENABLE_STRIDE);
        unsigned w = (unsigned)((addr - REG_ENABLE) % ENABLE_STRIDE / 4);
        if (ctx >= PLIC_CONTEXTS || w >= p->words)
            return;
        if (w == 0)
            v &= ~1u;   /* source 0 does not exist */
        if (w == p->words - 1 && (p->n + 1) % 32)
            v &= (1u << ((p->n + 1) % 32)) - 1;
        p->enable[ctx][w] = v;
    } else {
        unsigned ctx = (unsigned)((addr - REG_CONTEXT) / CONTEXT_STRIDE);
        hwaddr reg = (addr - REG_CONTEXT) % CONTEXT_STRIDE;
        if (ctx >= PLIC_CONTEXTS)
            return;
        if (reg == 0) {
            p->threshold[ctx] = v & PLIC_PRIO_MASK;
        } else if (reg == 4) {
            if (v < 1 || v > p->n || !bit(p->claimed, v) || !bit(p->enable[ctx], v))
                return;     /* completing what this context did not claim is ignored */
            set_bit_to(p->claimed, v, false);
            if (bit(p->level, v))
                set_bit_to(p->pending, v, true);
        } else {
            return;
        }
    }
    update(p);
}

static const MemoryRegionOps plic_ops = {
    .read = plic_read,
    .write = plic_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

void
hub_plic_set_irq(hub_plic *p, unsigned source, int level)
{
    if (source < 1 || source > p->n)
        return;
    set_bit_to(p->level, source, level != 0);
    if (!bit(p->claimed, source))
        set_bit_to(p->pending, source, level != 0);
    update(p);
}

hub_plic *
hub_plic_new(hub_cpu *cpu, unsigned nsources)
{
    if (!cpu || nsources < 1 || nsources > PLIC_MAX_SOURCES)
        return NULL;
    hub_plic *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cpu = cpu;
    p->n = nsources;
    p->words = (nsources + 1 + 31) / 32;
    p->priority = calloc(nsources + 1, sizeof(*p->priority));
    p->pending = calloc(p->words, sizeof(uint32_t));
    p->level = calloc(p->words, sizeof(uint32_t));
    p->claimed = calloc(p->words, sizeof(uint32_t));
    for (unsigned c = 0; c < PLIC_CONTEXTS; c++)
        p->enable[c] = calloc(p->words, sizeof(uint32_t));
    if (!p->priority || !p->pending || !p->level || !p->claimed || !p->enable[0] || !p->enable[1]) {
        hub_plic_free(p);
        return NULL;
    }
    memory_region_init_io(&p->mr, NULL, &plic_ops, p, "plic", PLIC_SIZE);
    return p;
}

void
hub_plic_reset(hub_plic *p)
{
    memset(p->priority, 0, (p->n + 1) * sizeof(*p->priority));
    memset(p->claimed, 0, p->words * sizeof(uint32_t));
    memcpy(p->pending, p->level, p->words * sizeof(uint32_t));
    for (unsigned c = 0; c < PLIC_CONTEXTS; c++) {
        memset(p->enable[c], 0, p->words * sizeof(uint32_t));
        p->threshold[c] = 0;
    }
    update(p);
}

MemoryRegion *
hub_plic_region(hub_plic *p)
{
    return &p->mr;
}

void
hub_plic_free(hub_plic *p)
{
    if (!p)
        return;
    if (p->priority)
        memory_region_destroy(&p->mr);
    free(p->priority);
    free(p->pending);
    free(p->level);
    free(p->claimed);
    for (unsigned c = 0; c < PLIC_CONTEXTS; c++)
        free(p->enable[c]);
    free(p);
}
