/*
 * Listeners: replay on registration, one begin/commit per transaction with add/del/nop, priority order,
 * dirty-log start/stop, ioeventfd and coalescing callbacks, per-address-space filtering, unregistration.
 */
#include "helpers.h"

#include <stdio.h>

typedef struct Rec {
    MemoryListener l;
    const char *tag;
    char log[8192];
} Rec;

static char order_log[256];

static void rec(Rec *r, const char *fmt, ...)
{
    va_list ap;
    size_t n = strlen(r->log);
    va_start(ap, fmt);
    vsnprintf(r->log + n, sizeof(r->log) - n, fmt, ap);
    va_end(ap);
    n = strlen(r->log);
    snprintf(r->log + n, sizeof(r->log) - n, ";");
}

#define R(l) ((Rec *)(l))
#define SEC(s) (unsigned long)(s)->offset_within_address_space, \
    (unsigned long)((s)->offset_within_address_space + int128_get64((s)->size) - 1), memory_region_name((s)->mr), \
    (unsigned long)(s)->offset_within_region

static void l_begin(MemoryListener *l)
{
    rec(R(l), "begin");
    strncat(order_log, R(l)->tag, sizeof(order_log) - strlen(order_log) - 1);
    strncat(order_log, "b ", sizeof(order_log) - strlen(order_log) - 1);
}
static void l_commit(MemoryListener *l)
{
    rec(R(l), "commit");
}
static void l_add(MemoryListener *l, MemoryRegionSection *s)
{
    rec(R(l), "add %lx-%lx %s@%lx%s", SEC(s), s->readonly ? " ro" : "");
    strncat(order_log, R(l)->tag, sizeof(order_log) - strlen(order_log) - 1);
    strncat(order_log, "+ ", sizeof(order_log) - strlen(order_log) - 1);
}
static void l_del(MemoryListener *l, MemoryRegionSection *s)
{
    rec(R(l), "del %lx-%lx %s@%lx", SEC(s));
    strncat(order_log, R(l)->tag, sizeof(order_log) - strlen(order_log) - 1);
    strncat(order_log, "- ", sizeof(order_log) - strlen(order_log) - 1);
}
static void l_nop(MemoryListener *l, MemoryRegionSection *s)
{
    rec(R(l), "nop %lx-%lx %s@%lx", SEC(s));
}
static void l_log_start(MemoryListener *l, MemoryRegionSection *s, int old, int new)
{
    rec(R(l), "log_start %s %d->%d", memory_region_name(s->mr), old, new);
}
static void l_log_stop(MemoryListener *l, MemoryRegionSection *s, int old, int new)
{
    rec(R(l), "log_stop %s %d->%d", memory_region_name(s->mr), old, new);
}
static void l_log_sync(MemoryListener *l, MemoryRegionSection *s)
{
    rec(R(l), "log_sync %s", memory_region_name(s->mr));
}
static void l_gstart(MemoryListener *l)
{
    rec(R(l), "global_start");
}
static void l_gstop(MemoryListener *l)
{
    rec(R(l), "global_stop");
}
static void l_ev_add(MemoryListener *l, MemoryRegionSection *s, bool match, uint64_t data, EventNotifier *e)
{
    rec(R(l), "eventfd_add %lx/%lu %s@%lx %d %lx", (unsigned long)s->offset_within_address_space,
        (unsigned long)int128_get64(s->size), memory_region_name(s->mr), (unsigned long)s->offset_within_region,
        match, (unsigned long)data);
}
static void l_ev_del(MemoryListener *l, MemoryRegionSection *s, bool match, uint64_t data, EventNotifier *e)
{
    rec(R(l), "eventfd_del %lx/%lu %d %lx", (unsigned long)s->offset_within_address_space,
        (unsigned long)int128_get64(s->size), match, (unsigned long)data);
}
static void l_co_add(MemoryListener *l, MemoryRegionSection *s, hwaddr addr, hwaddr len)
{
    rec(R(l), "coalesced_add %lx+%lx", (unsigned long)addr, (unsigned long)len);
}
static void l_co_del(MemoryListener *l, MemoryRegionSection *s, hwaddr addr, hwaddr len)
{
    rec(R(l), "coalesced_del %lx+%lx", (unsigned long)addr, (unsigned long)len);
}

static void rec_init(Rec *r, const char *tag, unsigned prio)
{
    memset(r, 0, sizeof(*r));
    r->tag = tag;
    r->l = (MemoryListener){
        .begin = l_begin, .commit = l_commit, .region_add = l_add, .region_del = l_del, .region_nop = l_nop,
        .log_start = l_log_start, .log_stop = l_log_stop, .log_sync = l_log_sync,
        .log_global_start = l_gstart, .log_global_stop = l_gstop, .eventfd_add = l_ev_add,
        .eventfd_del = l_ev_del, .coalesced_mmio_add = l_co_add, .coalesced_mmio_del = l_co_del,
        .priority = prio,
    };
}

static MemoryRegion sys, ram, rom, io;
static AddressSpace as;
static Dev dev;
static const MemoryRegionOps ops = { .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN };

static void setup(void)
{
    order_log[0] = 0;
    memset(&dev, 0, sizeof(dev));
    memory_region_init(&sys, NULL, "sys", UINT64_MAX);
    memory_region_init_ram(&ram, NULL, "ram", 0x2000, &error_abort);
    memory_region_init_rom(&rom, NULL, "rom", 0x1000, &error_abort);
    memory_region_init_io(&io, NULL, &ops, &dev, "io", 0x100);
    memory_region_add_subregion(&sys, 0x10000, &ram);
    memory_region_add_subregion(&sys, 0x0, &rom);
    address_space_init(&as, &sys, "as");
}

static void teardown(void)
{
    address_space_destroy(&as);
    while (sys.subregions_first)
        memory_region_del_subregion(&sys, sys.subregions_first);
    memory_region_destroy(&ram);
    memory_region_destroy(&rom);
    memory_region_destroy(&io);
    memory_region_destroy(&sys);
}

TestSuite(listener, .init = setup, .fini = teardown);

Test(listener, register_replays_current_map_between_begin_and_commit)
{
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    cr_assert_str_eq(r.log, "begin;add 0-fff rom@0 ro;add 10000-11fff ram@0;commit;");
    memory_listener_unregister(&r.l);
}

Test(listener, each_transaction_is_one_begin_commit_with_add_del_nop)
{
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_region_add_subregion(&sys, 0x20000, &io);
    cr_assert_str_eq(r.log, "begin;nop 0-fff rom@0;nop 10000-11fff ram@0;add 20000-200ff io@0;commit;");
    r.log[0] = 0;
    memory_region_transaction_begin();
    memory_region_set_address(&io, 0x30000);
    memory_region_del_subregion(&sys, &rom);
    cr_assert_str_eq(r.log, "", "listeners called before commit");
    memory_region_transaction_commit();
    cr_assert_str_eq(r.log, "begin;del 0-fff rom@0;del 20000-200ff io@0;nop 10000-11fff ram@0;"
                            "add 30000-300ff io@0;commit;");
    memory_listener_unregister(&r.l);
}

Test(listener, overlap_splits_ranges_and_is_reported)
{
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_region_add_subregion_overlap(&sys, 0x10800, &io, 1);
    cr_assert_str_eq(r.log, "begin;del 10000-11fff ram@0;nop 0-fff rom@0;add 10000-107ff ram@0;"
                            "add 10800-108ff io@0;add 10900-11fff ram@900;commit;");
    memory_listener_unregister(&r.l);
}

Test(listener, unregister_reports_removal)
{
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_listener_unregister(&r.l);
    cr_assert_str_eq(r.log, "begin;del 10000-11fff ram@0;del 0-fff rom@0;commit;");
    r.log[0] = 0;
    memory_region_add_subregion(&sys, 0x20000, &io);
    cr_assert_str_eq(r.log, "", "an unregistered listener was called");
}

Test(listener, priority_orders_add_ascending_and_del_descending)
{
    Rec a, b, c;
    rec_init(&a, "A", 10);
    rec_init(&b, "B", 1);
    rec_init(&c, "C", 5);
    memory_listener_register(&a.l, &as);
    memory_listener_register(&b.l, &as);
    memory_listener_register(&c.l, &as);
    order_log[0] = 0;
    memory_region_add_subregion(&sys, 0x20000, &io);
    cr_assert_str_eq(order_log, "Bb Cb Ab B+ C+ A+ ");
    order_log[0] = 0;
    memory_region_del_subregion(&sys, &io);
    cr_assert_str_eq(order_log, "Bb Cb Ab A- C- B- ");
    memory_listener_unregister(&a.l);
    memory_listener_unregister(&b.l);
    memory_listener_unregister(&c.l);
}

Test(listener, filter_limits_to_one_address_space_and_null_means_all)
{
    MemoryRegion root2, ram2;
    AddressSpace as2;
    memory_region_init(&root2, NULL, "root2", UINT64_MAX);
    memory_region_init_ram(&ram2, NULL, "ram2", 0x1000, &error_abort);
    memory_region_add_subregion(&root2, 0x5000, &ram2);
    address_space_init(&as2, &root2, "as2");
    Rec one, all;
    rec_init(&one, "1", 0);
    rec_init(&all, "*", 0);
    memory_listener_register(&one.l, &as2);
    memory_listener_register(&all.l, NULL);
    cr_assert_str_eq(one.log, "begin;add 5000-5fff ram2@0;commit;");
    cr_assert_str_eq(all.log, "begin;add 0-fff rom@0 ro;add 10000-11fff ram@0;add 5000-5fff ram2@0;commit;");
    one.log[0] = all.log[0] = 0;
    memory_region_add_subregion(&sys, 0x20000, &io);
    cr_assert_null(strstr(one.log, "add"), "%s", one.log);
    cr_assert_not_null(strstr(all.log, "add 20000-200ff io@0"), "%s", all.log);
    memory_listener_unregister(&one.l);
    memory_listener_unregister(&all.l);
    address_space_destroy(&as2);
    memory_region_del_subregion(&root2, &ram2);
    memory_region_destroy(&ram2);
    memory_region_destroy(&root2);
}

Test(listener, log_start_stop_and_sync)
{
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_region_set_log(&ram, true, DIRTY_MEMORY_VGA);
    cr_assert_not_null(strstr(r.log, "log_start ram 0->1"), "%s", r.log);
    r.log[0] = 0;
    memory_global_dirty_log_sync();
    cr_assert_str_eq(r.log, "log_sync ram;");
    r.log[0] = 0;
    memory_region_set_log(&ram, false, DIRTY_MEMORY_VGA);
    cr_assert_not_null(strstr(r.log, "log_stop ram 1->0"), "%s", r.log);
    r.log[0] = 0;
    memory_global_dirty_log_start();
    cr_assert_not_null(strstr(r.log, "global_start"), "%s", r.log);
    cr_assert_not_null(strstr(r.log, "log_start ram 0->4"), "%s", r.log);
    cr_assert(memory_region_is_logging(&ram, DIRTY_MEMORY_MIGRATION));
    r.log[0] = 0;
    memory_global_dirty_log_stop();
    cr_assert_not_null(strstr(r.log, "global_stop"), "%s", r.log);
    cr_assert_not_null(strstr(r.log, "log_stop ram 4->0"), "%s", r.log);
    cr_assert_not(memory_region_is_logging(&ram, DIRTY_MEMORY_MIGRATION));
    memory_listener_unregister(&r.l);
}

Test(listener, eventfd_add_del_with_address_space_location)
{
    EventNotifier e;
    cr_assert_eq(event_notifier_init(&e, 0), 0);
    memory_region_add_subregion(&sys, 0x20000, &io);
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_region_add_eventfd(&io, 0x40, 4, true, 0x1234, &e);
    cr_assert_not_null(strstr(r.log, "eventfd_add 20040/4 io@40 1 1234;"), "%s", r.log);
    r.log[0] = 0;
    memory_region_set_address(&io, 0x30000);
    cr_assert_not_null(strstr(r.log, "eventfd_del 20040/4 1 1234;eventfd_add 30040/4 io@40 1 1234;"), "%s", r.log);
    /* a new listener is told about existing eventfds */
    Rec r2;
    rec_init(&r2, "b", 0);
    memory_listener_register(&r2.l, &as);
    cr_assert_not_null(strstr(r2.log, "eventfd_add 30040/4 io@40 1 1234;"), "%s", r2.log);
    memory_listener_unregister(&r2.l);
    r.log[0] = 0;
    memory_region_del_eventfd(&io, 0x40, 4, true, 0x1234, &e);
    cr_assert_not_null(strstr(r.log, "eventfd_del 30040/4 1 1234;"), "%s", r.log);
    memory_listener_unregister(&r.l);
    event_notifier_cleanup(&e);
}

static int flushes;
static void flush_hook(void *opaque)
{
    flushes += *(int *)opaque;
}

Test(listener, coalescing_callbacks_and_flush)
{
    memory_region_add_subregion(&sys, 0x20000, &io);
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_region_add_coalescing(&io, 0x10, 0x20);
    cr_assert_not_null(strstr(r.log, "nop 20000-200ff io@0;coalesced_add 20010+20;"), "%s", r.log);
    cr_assert(io.flush_coalesced_mmio);
    r.log[0] = 0;
    memory_region_set_coalescing(&io);
    cr_assert_not_null(strstr(r.log, "coalesced_del 20000+100;coalesced_add 20010+20;coalesced_add 20000+100;"),
                       "%s", r.log);
    r.log[0] = 0;
    memory_region_set_address(&io, 0x40000);
    cr_assert_not_null(strstr(r.log, "coalesced_del 20000+100;del 20000-200ff io@0;"), "%s", r.log);
    cr_assert_not_null(strstr(r.log, "add 40000-400ff io@0;coalesced_add 40010+20;coalesced_add 40000+100;"),
                       "%s", r.log);
    /* flush before dispatching to a flush-coalesced region */
    int one = 1;
    memory_set_coalesced_flush_hook(flush_hook, &one);
    flushes = 0;
    ldl_le_phys(&as, 0x40000);
    cr_assert_eq(flushes, 1);
    r.log[0] = 0;
    memory_region_clear_coalescing(&io);
    cr_assert_not_null(strstr(r.log, "coalesced_del 40000+100;"), "%s", r.log);
    cr_assert_null(strstr(r.log, "coalesced_add"), "%s", r.log);
    cr_assert_not(io.flush_coalesced_mmio);
    flushes = 0;
    ldl_le_phys(&as, 0x40000);
    cr_assert_eq(flushes, 0);
    memory_region_set_flush_coalesced(&io);
    ldl_le_phys(&as, 0x40000);
    cr_assert_eq(flushes, 1);
    memory_region_clear_flush_coalesced(&io);
    cr_assert_not(io.flush_coalesced_mmio);
    memory_set_coalesced_flush_hook(NULL, NULL);
    memory_listener_unregister(&r.l);
}

Test(listener, romd_switch_and_readonly_are_changes)
{
    MemoryRegion flash;
    memory_region_init_rom_device(&flash, NULL, &ops, &dev, "flash", 0x1000, &error_abort);
    memory_region_add_subregion(&sys, 0x50000, &flash);
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_region_rom_device_set_romd(&flash, false);
    cr_assert_not_null(strstr(r.log, "del 50000-50fff flash@0;"), "%s", r.log);
    cr_assert_not_null(strstr(r.log, "add 50000-50fff flash@0;"), "%s", r.log);
    r.log[0] = 0;
    memory_region_set_readonly(&ram, true);
    cr_assert_not_null(strstr(r.log, "add 10000-11fff ram@0 ro;"), "%s", r.log);
    memory_listener_unregister(&r.l);
    memory_region_set_readonly(&ram, false);
    memory_region_del_subregion(&sys, &flash);
    memory_region_destroy(&flash);
}

Test(listener, resize_is_reported)
{
    MemoryRegion big;
    uint64_t seen = 0;
    memory_region_init_resizeable_ram(&big, NULL, "big", 0x1000, 0x4000, NULL, &error_abort);
    memory_region_add_subregion(&sys, 0x100000, &big);
    Rec r;
    rec_init(&r, "a", 0);
    memory_listener_register(&r.l, &as);
    r.log[0] = 0;
    memory_region_ram_resize(&big, 0x3000, &error_abort);
    cr_assert_not_null(strstr(r.log, "del 100000-100fff big@0;"), "%s", r.log);
    cr_assert_not_null(strstr(r.log, "add 100000-102fff big@0;"), "%s", r.log);
    (void)seen;
    memory_listener_unregister(&r.l);
    memory_region_del_subregion(&sys, &big);
    memory_region_destroy(&big);
}

/* A listener that maps a region when it sees another one appear. */
static MemoryRegion shadow;
static int rounds;
static void chain_add(MemoryListener *l, MemoryRegionSection *s)
{
    if (s->mr == &io && !shadow.container)
        memory_region_add_subregion(&sys, 0x90000, &shadow);
}
static void chain_begin(MemoryListener *l)
{
    rounds++;
}

Test(listener, change_from_a_callback_becomes_a_second_round)
{
    memory_region_init_ram(&shadow, NULL, "shadow", 0x1000, &error_abort);
    MemoryListener l = { .region_add = chain_add, .begin = chain_begin };
    memory_listener_register(&l, &as);
    rounds = 0;
    memory_region_add_subregion(&sys, 0x20000, &io);
    cr_assert_eq(rounds, 2);
    cr_assert(memory_region_present(&sys, 0x90000));
    MemTxResult r;
    address_space_ldub(&as, 0x90000, ATTR, &r);
    cr_assert_eq(r, MEMTX_OK);
    memory_listener_unregister(&l);
    memory_region_del_subregion(&sys, &shadow);
    memory_region_destroy(&shadow);
}
