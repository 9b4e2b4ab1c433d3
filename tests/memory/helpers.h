/* Shared test devices for the memory suites: I/O regions that record every callback. */
#ifndef PLEXUS_TEST_MEMORY_HELPERS_H
#define PLEXUS_TEST_MEMORY_HELPERS_H

#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <plexus/memory.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

typedef struct Access {
    bool write;
    hwaddr addr;
    unsigned size;
    uint64_t data;
} Access;

/* A device whose registers read back as a function of the address (or from @mem when @backed). */
typedef struct Dev {
    Access log[64];
    unsigned n;
    uint8_t mem[4096]; /* little-endian backing when backed */
    bool backed;
    bool big;          /* interpret mem as big-endian words */
} Dev;

static inline void dev_reset(Dev *d)
{
    d->n = 0;
}

static inline uint64_t dev_read(void *opaque, hwaddr addr, unsigned size)
{
    Dev *d = opaque;
    uint64_t v = 0;
    if (d->backed) {
        for (unsigned i = 0; i < size; i++)
            v |= (uint64_t)d->mem[addr + i] << (8 * (d->big ? size - 1 - i : i));
    } else {
        /* distinct per address: 0xA0 + addr in every byte position, e.g. addr 4 size 4 -> 0xa4a4a4a4 */
        for (unsigned i = 0; i < size; i++)
            v |= (uint64_t)((0xA0 + addr + i) & 0xff) << (8 * i);
    }
    if (d->n < 64)
        d->log[d->n++] = (Access){ false, addr, size, v };
    return v;
}

static inline void dev_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    Dev *d = opaque;
    if (d->backed)
        for (unsigned i = 0; i < size; i++)
            d->mem[addr + i] = (uint8_t)(data >> (8 * (d->big ? size - 1 - i : i)));
    if (d->n < 64)
        d->log[d->n++] = (Access){ true, addr, size, data };
}

#define ASSERT_ACCESS(d, i, w, a, s, v)                                                                      \
    do {                                                                                                     \
        cr_assert_gt((d)->n, (i), "only %u accesses", (d)->n);                                               \
        cr_assert_eq((d)->log[i].write, (w), "access %d write", (i));                                        \
        cr_assert_eq((d)->log[i].addr, (hwaddr)(a), "access %d addr 0x%lx", (i), (unsigned long)(d)->log[i].addr); \
        cr_assert_eq((d)->log[i].size, (unsigned)(s), "access %d size %u", (i), (d)->log[i].size);           \
        cr_assert_eq((d)->log[i].data, (uint64_t)(v), "access %d data 0x%lx", (i), (unsigned long)(d)->log[i].data); \
    } while (0)

#define ATTR MEMTXATTRS_UNSPECIFIED

#endif
