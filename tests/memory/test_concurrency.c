/*
 * Concurrency: reader threads hammer lookups and accesses (with no registration) while a writer changes the
 * map: swaps two regions in one transaction, toggles a higher-priority overlay, moves an I/O region, and
 * creates/destroys/frees regions. Every value read must be one of the legal ones for that address.
 */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define NREADERS 3
#ifdef __SANITIZE_ADDRESS__
#define CHANGES 500 /* sanitizer builds are ~20x slower */
#else
#define CHANGES 2000
#endif

static MemoryRegion sys, ram_a, ram_b, under, over, mover, doorbell;
static EventNotifier bell;
static atomic_ulong bell_writes;
static AddressSpace as;
static atomic_bool done;
static atomic_ulong bad, reads;
static char bad_msg[256];

static uint64_t c_read(void *opaque, hwaddr addr, unsigned size)
{
    return *(uint32_t *)opaque;
}
static uint64_t mover_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0x5a5a5a5a;
}
static const MemoryRegionOps c_ops = { .read = c_read, .endianness = DEVICE_LITTLE_ENDIAN };
static const MemoryRegionOps mover_ops = { .read = mover_read, .endianness = DEVICE_LITTLE_ENDIAN };
static void bell_write(void *opaque, hwaddr addr, uint64_t v, unsigned size)
{
    atomic_fetch_add(&bell_writes, 1);
}
static const MemoryRegionOps bell_ops = { .read = mover_read, .write = bell_write, .endianness = DEVICE_LITTLE_ENDIAN };

static void fail(const char *what, uint64_t v, MemTxResult r)
{
    if (atomic_fetch_add(&bad, 1) == 0)
        snprintf(bad_msg, sizeof(bad_msg), "%s: value 0x%lx result %u", what, (unsigned long)v, r);
}

static void *reader(void *arg)
{
    unsigned long n = 0;
    while (!atomic_load(&done)) {
        MemTxResult r;
        uint32_t v = address_space_ldl_le(&as, 0x1000, ATTR, &r);
        if (r != MEMTX_OK || (v != 0xaaaaaaaa && v != 0xbbbbbbbb))
            fail("swap", v, r);
        v = address_space_ldl_le(&as, 0x10000, ATTR, &r);
        if (r != MEMTX_OK || (v != 0x11111111 && v != 0x22222222))
            fail("overlay", v, r);
        v = address_space_ldl_le(&as, 0x30000, ATTR, &r);
        if (!((r == MEMTX_OK && v == 0xc0c0c0c0) || (r == MEMTX_DECODE_ERROR && v == 0)))
            fail("create/destroy", v, r);
        v = address_space_ldl_le(&as, 0x40000, ATTR, &r);
        if (!((r == MEMTX_OK && v == 0x5a5a5a5a) || (r == MEMTX_DECODE_ERROR && v == 0)))
            fail("mover", v, r);
        uint8_t buf[8];
        r = address_space_read(&as, 0xffc, ATTR, buf, 8); /* unassigned then swap region */
        if (r != MEMTX_DECODE_ERROR || (buf[4] != 0xaa && buf[4] != 0xbb) || buf[0] != 0)
            fail("span", buf[4], r);
        /* direct dispatch while the eventfds of the region change */
        r = memory_region_dispatch_write(&doorbell, 0x10, 1, 4, ATTR);
        if (r != MEMTX_OK)
            fail("doorbell", 1, r);
        n += 6;
    }
    atomic_fetch_add(&reads, n);
    return NULL;
}

static void ram_fill(MemoryRegion *mr, const char *name, uint8_t b)
{
    memory_region_init_ram(mr, NULL, name, 0x1000, &error_abort);
    memset(memory_region_get_ram_ptr(mr), b, 0x1000);
}

Test(concurrency, readers_see_only_legal_values_while_the_map_changes)
{
    memory_region_init(&sys, NULL, "system", UINT64_MAX);
    ram_fill(&ram_a, "a", 0xaa);
    ram_fill(&ram_b, "b", 0xbb);
    ram_fill(&under, "under", 0x11);
    ram_fill(&over, "over", 0x22);
    memory_region_init_io(&mover, NULL, &mover_ops, NULL, "mover", 0x1000);
    memory_region_init_io(&doorbell, NULL, &bell_ops, NULL, "doorbell", 0x100);
    cr_assert_eq(event_notifier_init(&bell, 0), 0);
    memory_region_add_subregion(&sys, 0x1000, &ram_a);
    memory_region_add_subregion_overlap(&sys, 0x10000, &under, 0);
    memory_region_add_subregion_overlap(&sys, 0x10000, &over, 1);
    memory_region_add_subregion(&sys, 0x40000, &mover);
    address_space_init(&as, &sys, "memory");

    pthread_t t[NREADERS];
    for (int i = 0; i < NREADERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, reader, NULL), 0);

    static uint32_t c_val = 0xc0c0c0c0;
    for (int i = 0; i < CHANGES; i++) {
        memory_region_transaction_begin();
        if (i & 1) {
            memory_region_del_subregion(&sys, &ram_b);
            memory_region_add_subregion(&sys, 0x1000, &ram_a);
        } else {
            memory_region_del_subregion(&sys, &ram_a);
            memory_region_add_subregion(&sys, 0x1000, &ram_b);
        }
        memory_region_transaction_commit();
        memory_region_set_enabled(&over, i & 1);
        memory_region_set_address(&mover, (i & 1) ? 0x40000 : 0x50000);
        if (i & 1)
            memory_region_del_eventfd(&doorbell, 0x10, 4, false, 0, &bell);
        else
            memory_region_add_eventfd(&doorbell, 0x10, 4, false, 0, &bell);
        MemoryRegion *c = malloc(sizeof(*c));
        memory_region_init_io(c, NULL, &c_ops, &c_val, "transient", 0x1000);
        memory_region_add_subregion(&sys, 0x30000, c);
        memory_region_del_subregion(&sys, c);
        memory_region_destroy(c);
        memset(c, 0x6b, sizeof(*c)); /* poison: a reader still using it would see garbage */
        free(c);
    }
    atomic_store(&done, true);
    for (int i = 0; i < NREADERS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&bad), 0, "%lu illegal reads, first: %s", atomic_load(&bad), bad_msg);
    cr_assert_gt(atomic_load(&reads), 0);
    cr_log_info("%lu reads during %d map changes", atomic_load(&reads), CHANGES);

    address_space_destroy(&as);
    while (sys.subregions_first)
        memory_region_del_subregion(&sys, sys.subregions_first);
    memory_region_destroy(&ram_a);
    memory_region_destroy(&ram_b);
    memory_region_destroy(&under);
    memory_region_destroy(&over);
    memory_region_destroy(&mover);
    uint64_t signalled = 0;
    if (read(event_notifier_get_fd(&bell), &signalled, 8) != 8)
        signalled = 0;
    cr_assert_gt(signalled + atomic_load(&bell_writes), 0);
    memory_region_del_eventfd(&doorbell, 0x10, 4, false, 0, &bell);
    memory_region_destroy(&doorbell);
    event_notifier_cleanup(&bell);
    memory_region_destroy(&sys);
}

/* A device callback that changes the map while it runs inside an access (a BAR remap). */
static MemoryRegion bar, ctrl;
static void ctrl_write(void *opaque, hwaddr addr, uint64_t v, unsigned size)
{
    memory_region_set_address(&bar, v);
}
static uint64_t ctrl_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}
static const MemoryRegionOps ctrl_ops = { .read = ctrl_read, .write = ctrl_write, .endianness = DEVICE_LITTLE_ENDIAN };

Test(concurrency, callback_may_change_the_map)
{
    memory_region_init(&sys, NULL, "system", UINT64_MAX);
    ram_fill(&bar, "bar", 0x3c);
    memory_region_init_io(&ctrl, NULL, &ctrl_ops, NULL, "ctrl", 0x100);
    memory_region_add_subregion(&sys, 0x1000, &ctrl);
    memory_region_add_subregion(&sys, 0x8000, &bar);
    address_space_init(&as, &sys, "memory");
    for (unsigned i = 0; i < 100; i++) {
        hwaddr to = 0x10000 + (hwaddr)(i % 7) * 0x1000;
        stl_le_phys(&as, 0x1000, (uint32_t)to);
        cr_assert_eq(ldub_phys(&as, to), 0x3c);
    }
    address_space_destroy(&as);
    memory_region_del_subregion(&sys, &ctrl);
    memory_region_del_subregion(&sys, &bar);
    memory_region_destroy(&ctrl);
    memory_region_destroy(&bar);
    memory_region_destroy(&sys);
}
