/*
 * The map: priorities, aliases, moving/resizing/enabling regions, ROM and ROM devices, find/present with
 * references, predicates and getters, mtree_info output.
 */
#include "helpers.h"

static MemoryRegion sys;
static AddressSpace as;

static void setup(void)
{
    memory_region_init(&sys, NULL, "system", UINT64_MAX);
    address_space_init(&as, &sys, "memory");
}

static void teardown(void)
{
    address_space_destroy(&as);
    while (sys.subregions_first)
        memory_region_del_subregion(&sys, sys.subregions_first);
    memory_region_destroy(&sys);
}

TestSuite(map, .init = setup, .fini = teardown);

/* RAM region filled with @byte */
static void ram_filled(MemoryRegion *mr, const char *name, uint64_t size, uint8_t byte)
{
    memory_region_init_ram(mr, NULL, name, size, &error_abort);
    memset(memory_region_get_ram_ptr(mr), byte, size);
}

Test(map, root_of_size_uint64_max_covers_2_pow_64)
{
    cr_assert_eq(memory_region_size(&sys), UINT64_MAX);
    cr_assert(int128_eq(sys.size, int128_2_64()));
    MemoryRegion top;
    ram_filled(&top, "top", 0x1000, 0x7e);
    memory_region_add_subregion(&sys, 0xfffffffffffff000ULL, &top);
    cr_assert_eq(ldub_phys(&as, 0xffffffffffffffffULL), 0x7e);
    MemoryRegionSection s = memory_region_find(&sys, 0xfffffffffffff800ULL, 0x1000);
    cr_assert_eq(s.mr, &top);
    cr_assert_eq(int128_get64(s.size), 0x800);
    memory_region_del_subregion(&sys, &top);
    memory_region_destroy(&top);
}

Test(map, higher_priority_hides_lower_and_equal_priority_last_wins)
{
    MemoryRegion lo, hi, eq;
    ram_filled(&lo, "lo", 0x4000, 0x11);
    ram_filled(&hi, "hi", 0x1000, 0x22);
    ram_filled(&eq, "eq", 0x1000, 0x33);
    memory_region_add_subregion_overlap(&sys, 0x10000, &hi, 2);
    memory_region_add_subregion_overlap(&sys, 0x0f000, &lo, 1);
    cr_assert_eq(ldub_phys(&as, 0x0f000), 0x11);
    cr_assert_eq(ldub_phys(&as, 0x10000), 0x22, "higher priority must win even when added first");
    cr_assert_eq(ldub_phys(&as, 0x11000), 0x11);
    memory_region_add_subregion_overlap(&sys, 0x11000, &eq, 1);
    cr_assert_eq(ldub_phys(&as, 0x11000), 0x33, "equal priority: the later one shows");
    cr_assert_eq(ldub_phys(&as, 0x12000), 0x11);
    /* remove the top one: the lower one shows again */
    memory_region_del_subregion(&sys, &hi);
    cr_assert_eq(ldub_phys(&as, 0x10000), 0x11);
    memory_region_del_subregion(&sys, &eq);
    memory_region_del_subregion(&sys, &lo);
    memory_region_destroy(&lo);
    memory_region_destroy(&hi);
    memory_region_destroy(&eq);
}

Test(map, nested_containers_clip_children_and_add_offsets)
{
    MemoryRegion box, inner;
    memory_region_init(&box, NULL, "box", 0x2000);
    ram_filled(&inner, "inner", 0x4000, 0x44);
    memory_region_add_subregion(&box, 0x1000, &inner); /* sticks out of box by 0x3000 */
    memory_region_add_subregion(&sys, 0x100000, &box);
    cr_assert_eq(ldub_phys(&as, 0x101000), 0x44);
    cr_assert_eq(ldub_phys(&as, 0x101fff), 0x44);
    MemTxResult r;
    address_space_ldub(&as, 0x102000, ATTR, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR, "the container must clip its child");
    address_space_ldub(&as, 0x100000, ATTR, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR, "a container without content is unassigned");
    cr_assert(memory_region_present(&sys, 0x101000));
    cr_assert_not(memory_region_present(&sys, 0x100000));
    cr_assert(memory_region_is_mapped(&inner));
    memory_region_del_subregion(&sys, &box);
    memory_region_del_subregion(&box, &inner);
    cr_assert_not(memory_region_is_mapped(&inner));
    memory_region_destroy(&inner);
    memory_region_destroy(&box);
}

Test(map, alias_follows_alias_offset)
{
    MemoryRegion ram, alias;
    memory_region_init_ram(&ram, NULL, "ram", 0x3000, &error_abort);
    uint8_t *h = memory_region_get_ram_ptr(&ram);
    memset(h, 0xa0, 0x1000);
    memset(h + 0x1000, 0xa1, 0x1000);
    memset(h + 0x2000, 0xa2, 0x1000);
    memory_region_init_alias(&alias, NULL, "win", &ram, 0x1000, 0x1000);
    memory_region_add_subregion(&sys, 0x40000, &alias);
    cr_assert_eq(ldub_phys(&as, 0x40000), 0xa1);
    memory_region_set_alias_offset(&alias, 0x2000);
    cr_assert_eq(ldub_phys(&as, 0x40000), 0xa2);
    stb_phys(&as, 0x40010, 0x5b);
    cr_assert_eq(h[0x2010], 0x5b, "alias writes must reach the target");
    cr_assert_eq(memory_region_get_fd(&alias), memory_region_get_fd(&ram));
    cr_assert_eq((uint8_t *)memory_region_get_ram_ptr(&alias), h + 0x2000);
    MemoryRegionSection s = memory_region_find(&sys, 0x40010, 4);
    cr_assert_eq(s.mr, &ram, "sections name the target, not the alias");
    cr_assert_eq(s.offset_within_region, 0x2010);
    cr_assert_eq(s.offset_within_address_space, 0x40010);
    memory_region_del_subregion(&sys, &alias);
    memory_region_destroy(&alias);
    memory_region_destroy(&ram);
}

Test(map, set_address_and_set_size_move_and_resize_live_regions)
{
    MemoryRegion r;
    ram_filled(&r, "r", 0x2000, 0x66);
    memory_region_add_subregion(&sys, 0x1000, &r);
    cr_assert_eq(ldub_phys(&as, 0x1000), 0x66);
    memory_region_set_address(&r, 0x9000);
    MemTxResult res;
    address_space_ldub(&as, 0x1000, ATTR, &res);
    cr_assert_eq(res, MEMTX_DECODE_ERROR);
    cr_assert_eq(ldub_phys(&as, 0x9000), 0x66);
    cr_assert_eq(ldub_phys(&as, 0xafff), 0x66);
    memory_region_set_size(&r, 0x1000);
    cr_assert_eq(memory_region_size(&r), 0x1000);
    address_space_ldub(&as, 0xa000, ATTR, &res);
    cr_assert_eq(res, MEMTX_DECODE_ERROR, "shrunk region still answers beyond its size");
    memory_region_set_size(&r, 0x2000);
    cr_assert_eq(ldub_phys(&as, 0xa000), 0x66);
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r);
}

Test(map, disabled_region_behaves_as_removed)
{
    MemoryRegion under, over;
    ram_filled(&under, "under", 0x1000, 0x01);
    ram_filled(&over, "over", 0x1000, 0x02);
    memory_region_add_subregion_overlap(&sys, 0x5000, &under, 0);
    memory_region_add_subregion_overlap(&sys, 0x5000, &over, 1);
    cr_assert_eq(ldub_phys(&as, 0x5000), 0x02);
    memory_region_set_enabled(&over, false);
    cr_assert_eq(ldub_phys(&as, 0x5000), 0x01);
    memory_region_set_enabled(&under, false);
    MemTxResult r;
    address_space_ldub(&as, 0x5000, ATTR, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    memory_region_set_enabled(&over, true);
    cr_assert_eq(ldub_phys(&as, 0x5000), 0x02);
    memory_region_del_subregion(&sys, &under);
    memory_region_del_subregion(&sys, &over);
    memory_region_destroy(&under);
    memory_region_destroy(&over);
}

Test(map, rom_ignores_guest_writes)
{
    MemoryRegion rom;
    memory_region_init_rom(&rom, NULL, "rom", 0x1000, &error_abort);
    cr_assert(memory_region_is_rom(&rom));
    cr_assert(memory_region_is_ram(&rom));
    uint8_t *h = memory_region_get_ram_ptr(&rom);
    memcpy(h, "\x13\x37\x00\x00", 4);
    memory_region_add_subregion(&sys, 0x20000, &rom);
    MemTxResult r;
    address_space_stl_le(&as, 0x20000, 0xffffffff, ATTR, &r);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert_eq(ldl_le_phys(&as, 0x20000), 0x3713);
    hwaddr len = 16;
    cr_assert_null(address_space_map(&as, 0x20000, &len, true), "ROM must not be mapped for writing");
    cr_assert_eq(len, 0);
    memory_region_del_subregion(&sys, &rom);
    memory_region_destroy(&rom);
}

Test(map, set_readonly_makes_ram_ignore_writes)
{
    MemoryRegion ram;
    ram_filled(&ram, "ram", 0x1000, 0);
    memory_region_add_subregion(&sys, 0, &ram);
    memory_region_set_readonly(&ram, true);
    stl_le_phys(&as, 0, 0x12345678);
    cr_assert_eq(ldl_le_phys(&as, 0), 0);
    memory_region_set_readonly(&ram, false);
    stl_le_phys(&as, 0, 0x12345678);
    cr_assert_eq(ldl_le_phys(&as, 0), 0x12345678);
    memory_region_del_subregion(&sys, &ram);
    memory_region_destroy(&ram);
}

static Dev romdev;
static const MemoryRegionOps romdev_ops = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
};

Test(map, rom_device_romd_and_mmio_modes)
{
    MemoryRegion flash;
    memset(&romdev, 0, sizeof(romdev));
    memory_region_init_rom_device(&flash, NULL, &romdev_ops, &romdev, "flash", 0x1000, &error_abort);
    cr_assert(memory_region_is_romd(&flash));
    cr_assert_not(memory_region_is_ram(&flash));
    memcpy(memory_region_get_ram_ptr(&flash), "\xde\xc0\xad\x0b", 4);
    cr_assert_geq(memory_region_get_fd(&flash), 0);
    memory_region_add_subregion(&sys, 0x30000, &flash);
    /* romd: reads from RAM, writes to the device */
    cr_assert_eq(ldl_le_phys(&as, 0x30000), 0x0badc0de);
    cr_assert_eq(romdev.n, 0, "romd reads must not call read");
    stl_le_phys(&as, 0x30004, 0x98);
    cr_assert_eq(romdev.n, 1);
    ASSERT_ACCESS(&romdev, 0, true, 4, 4, 0x98);
    cr_assert_eq(ldl_le_phys(&as, 0x30004), 0, "a romd write must not touch the RAM");
    /* MMIO mode: reads go to the device */
    memory_region_rom_device_set_romd(&flash, false);
    cr_assert_not(memory_region_is_romd(&flash));
    cr_assert_eq(ldl_le_phys(&as, 0x30000), 0xa3a2a1a0);
    ASSERT_ACCESS(&romdev, 1, false, 0, 4, 0xa3a2a1a0);
    memory_region_rom_device_set_romd(&flash, true);
    cr_assert_eq(ldl_le_phys(&as, 0x30000), 0x0badc0de);
    memory_region_del_subregion(&sys, &flash);
    memory_region_destroy(&flash);
}

static unsigned long owner_refs;
static void o_ref(struct Object *o)
{
    owner_refs++;
}
static void o_unref(struct Object *o)
{
    owner_refs--;
}

Test(map, find_returns_section_holding_a_reference)
{
    MemoryRegion ram, noowner;
    struct Object *owner = (struct Object *)&owner_refs; /* any non-NULL handle */
    memory_set_owner_hooks(o_ref, o_unref);
    memory_region_init_ram(&ram, owner, "owned", 0x2000, &error_abort);
    memory_region_init_ram(&noowner, NULL, "free", 0x1000, &error_abort);
    cr_assert_eq(memory_region_owner(&ram), owner);
    memory_region_add_subregion(&sys, 0x60000, &ram);
    memory_region_add_subregion(&sys, 0x70000, &noowner);
    MemoryRegionSection s = memory_region_find(&sys, 0x5f000, 0x2000);
    cr_assert_eq(s.mr, &ram);
    cr_assert_eq(s.offset_within_address_space, 0x60000);
    cr_assert_eq(s.offset_within_region, 0);
    cr_assert_eq(int128_get64(s.size), 0x1000);
    cr_assert_eq(s.address_space, &as);
    cr_assert_eq(memory_region_refcount(&ram), 1);
    cr_assert_eq(owner_refs, 1);
    memory_region_unref(s.mr);
    cr_assert_eq(memory_region_refcount(&ram), 0);
    cr_assert_eq(owner_refs, 0);
    /* relative to a subregion */
    s = memory_region_find(&ram, 0x1800, 0x100);
    cr_assert_eq(s.mr, &ram);
    cr_assert_eq(s.offset_within_region, 0x1800);
    cr_assert_eq(s.offset_within_address_space, 0x61800);
    memory_region_unref(s.mr);
    /* no owner: ref/unref do nothing */
    s = memory_region_find(&sys, 0x70000, 1);
    cr_assert_eq(s.mr, &noowner);
    cr_assert_eq(memory_region_refcount(&noowner), 0);
    memory_region_unref(s.mr);
    /* nothing there */
    s = memory_region_find(&sys, 0x80000, 0x1000);
    cr_assert_null(s.mr);
    cr_assert_eq(int128_get64(s.size), 0);
    memory_set_owner_hooks(NULL, NULL);
    memory_region_del_subregion(&sys, &ram);
    memory_region_del_subregion(&sys, &noowner);
    memory_region_destroy(&ram);
    memory_region_destroy(&noowner);
}

Test(map, getters_and_predicates)
{
    MemoryRegion ram, io, alias;
    memory_region_init_ram(&ram, NULL, "ram0", 0x3000, &error_abort);
    memory_region_init_io(&io, NULL, &romdev_ops, NULL, "io0", 0x100);
    memory_region_init_alias(&alias, NULL, "alias0", &ram, 0x1000, 0x1000);
    cr_assert_str_eq(memory_region_name(&ram), "ram0");
    cr_assert_eq(memory_region_size(&io), 0x100);
    cr_assert(memory_region_is_ram(&ram));
    cr_assert_not(memory_region_is_ram(&io));
    cr_assert_not(memory_region_is_rom(&ram));
    cr_assert_not(memory_region_is_iommu(&ram));
    cr_assert_not(memory_region_is_ram_device(&ram));
    cr_assert(memory_access_is_direct(&ram, true));
    cr_assert_not(memory_access_is_direct(&io, false));
    cr_assert_eq(memory_region_get_fd(&io), -1);
    cr_assert_null(memory_region_get_ram_ptr(&io));
    cr_assert_eq(memory_region_get_ram_addr(&io), RAM_ADDR_INVALID);
    cr_assert_neq(memory_region_get_ram_addr(&ram), RAM_ADDR_INVALID);
    cr_assert_eq(memory_region_get_alignment(&ram), 0);
    ram_addr_t off = 0;
    uint8_t *h = memory_region_get_ram_ptr(&ram);
    cr_assert_eq(memory_region_from_host(h + 0x1234, &off), &ram);
    cr_assert_eq(off, 0x1234);
    cr_assert_null(memory_region_from_host(&off, &off));
    cr_assert_not(memory_region_is_nonvolatile(&ram));
    memory_region_set_nonvolatile(&ram, true);
    cr_assert(memory_region_is_nonvolatile(&ram));
    cr_assert(ram.global_locking);
    memory_region_clear_global_locking(&io);
    cr_assert_not(io.global_locking);
    memory_region_destroy(&alias);
    memory_region_destroy(&io);
    memory_region_destroy(&ram);
    memory_region_destroy(&alias); /* twice: no-op */
}

static int lock_calls, unlock_calls;
static void glock(void)
{
    lock_calls++;
}
static void gunlock(void)
{
    unlock_calls++;
}

Test(map, global_lock_hooks_wrap_callbacks_unless_cleared)
{
    MemoryRegion a, b;
    Dev d = { 0 };
    memory_region_init_io(&a, NULL, &romdev_ops, &d, "locked", 0x100);
    memory_region_init_io(&b, NULL, &romdev_ops, &d, "unlocked", 0x100);
    memory_region_clear_global_locking(&b);
    memory_region_add_subregion(&sys, 0x1000, &a);
    memory_region_add_subregion(&sys, 0x2000, &b);
    memory_set_global_lock_hooks(glock, gunlock);
    ldl_le_phys(&as, 0x1000);
    cr_assert_eq(lock_calls, 1);
    cr_assert_eq(unlock_calls, 1);
    ldl_le_phys(&as, 0x2000);
    cr_assert_eq(lock_calls, 1);
    cr_assert_eq(d.n, 2);
    memory_set_global_lock_hooks(NULL, NULL);
    memory_region_del_subregion(&sys, &a);
    memory_region_del_subregion(&sys, &b);
    memory_region_destroy(&a);
    memory_region_destroy(&b);
}

static char exec_mem[0x100] = "code";
static void *req_ptr(void *opaque, hwaddr addr, unsigned *size, unsigned *offset)
{
    *size = sizeof(exec_mem);
    *offset = (unsigned)(addr & ~0xffu);
    return exec_mem;
}
static const MemoryRegionOps execops = {
    .read = dev_read, .write = dev_write, .request_ptr = req_ptr, .endianness = DEVICE_LITTLE_ENDIAN,
};

Test(map, request_mmio_ptr_maps_ram_over_io_until_invalidated)
{
    MemoryRegion io;
    Dev d = { 0 };
    memory_region_init_io(&io, NULL, &execops, &d, "xip", 0x1000);
    memory_region_add_subregion(&sys, 0x8000, &io);
    cr_assert(memory_region_request_mmio_ptr(&io, 0x210));
    cr_assert_eq(ldub_phys(&as, 0x8200), 'c');
    cr_assert_eq(d.n, 0);
    memory_region_invalidate_mmio_ptr(&io, 0x200, 4);
    cr_assert_eq(ldub_phys(&as, 0x8200), 0xa0);
    cr_assert_eq(d.n, 1);
    memory_region_del_subregion(&sys, &io);
    memory_region_destroy(&io);
}

static int capture(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfprintf(f, fmt, ap);
    va_end(ap);
    return r;
}

Test(map, mtree_info_prints_tree_and_flat_view)
{
    MemoryRegion ram, io, alias, box, flash;
    Dev d = { 0 };
    memory_region_init_ram(&ram, NULL, "dram", 0x10000, &error_abort);
    memory_region_init_io(&io, NULL, &romdev_ops, &d, "uart", 0x100);
    memory_region_init_alias(&alias, NULL, "dram-lo", &ram, 0x1000, 0x1000);
    memory_region_init(&box, NULL, "periph", 0x10000);
    memory_region_init_rom_device(&flash, NULL, &romdev_ops, &d, "flash", 0x1000, &error_abort);
    memory_region_add_subregion(&sys, 0x80000000, &ram);
    memory_region_add_subregion(&sys, 0x10000000, &box);
    memory_region_add_subregion_overlap(&box, 0x100, &io, 3);
    memory_region_add_subregion(&sys, 0x0, &alias);
    memory_region_add_subregion(&sys, 0x20000000, &flash);
    memory_region_set_enabled(&flash, false);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mtree_info(capture, f, true, false);
    fclose(f);
    cr_assert_not_null(strstr(buf, "address-space: memory\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "  0000000000000000-ffffffffffffffff (prio 0, container): system\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "    0000000080000000-000000008000ffff (prio 0, ram): dram\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "    0000000010000000-000000001000ffff (prio 0, container): periph\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "      0000000010000100-00000000100001ff (prio 3, i/o): uart\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "    0000000000000000-0000000000000fff (prio 0, alias): dram-lo @dram "
                                   "0000000000001000-0000000000001fff\n"), "%s", buf);
    cr_assert_not_null(strstr(buf, "    0000000020000000-0000000020000fff (prio 0, romd): flash [disabled]\n"), "%s", buf);
    /* children are listed in address order: alias (0) before periph (0x10000000) before dram */
    cr_assert_lt(strstr(buf, "dram-lo"), strstr(buf, "periph"));
    cr_assert_lt(strstr(buf, "periph"), strstr(buf, "): dram\n"));
    /* flat view */
    char *fv = strstr(buf, "FlatView #0\n");
    cr_assert_not_null(fv, "%s", buf);
    cr_assert_not_null(strstr(fv, " AS \"memory\", root: system\n"), "%s", fv);
    cr_assert_not_null(strstr(fv, "  0000000000000000-0000000000000fff (prio 0, ram): dram @0000000000001000\n"), "%s", fv);
    cr_assert_not_null(strstr(fv, "  0000000010000100-00000000100001ff (prio 3, i/o): uart\n"), "%s", fv);
    cr_assert_not_null(strstr(fv, "  0000000080000000-000000008000ffff (prio 0, ram): dram\n"), "%s", fv);
    cr_assert_null(strstr(fv, "flash"), "a disabled region must not be in the flat view:\n%s", fv);
    free(buf);

    /* without flatview: no FlatView section */
    buf = NULL;
    f = open_memstream(&buf, &len);
    mtree_info(capture, f, false, false);
    fclose(f);
    cr_assert_null(strstr(buf, "FlatView"));
    free(buf);

    memory_region_del_subregion(&sys, &ram);
    memory_region_del_subregion(&sys, &box);
    memory_region_del_subregion(&box, &io);
    memory_region_del_subregion(&sys, &alias);
    memory_region_del_subregion(&sys, &flash);
    memory_region_destroy(&alias);
    memory_region_destroy(&ram);
    memory_region_destroy(&io);
    memory_region_destroy(&box);
    memory_region_destroy(&flash);
}

Test(map, translate_gives_region_offset_and_clipped_length)
{
    MemoryRegion ram;
    ram_filled(&ram, "ram", 0x1000, 0);
    memory_region_add_subregion(&sys, 0x4000, &ram);
    hwaddr xlat, len = 0x2000;
    memory_rcu_read_lock();
    MemoryRegion *mr = address_space_translate(&as, 0x4800, &xlat, &len, false);
    memory_rcu_read_unlock();
    cr_assert_eq(mr, &ram);
    cr_assert_eq(xlat, 0x800);
    cr_assert_eq(len, 0x800);
    len = 0x10000;
    memory_rcu_read_lock();
    mr = address_space_translate(&as, 0x1000, &xlat, &len, false);
    memory_rcu_read_unlock();
    cr_assert_null(mr);
    cr_assert_eq(len, 0x3000, "unassigned length runs to the next region");
    IOMMUTLBEntry e = address_space_get_iotlb_entry(&as, 0x4123, true);
    cr_assert_eq(e.translated_addr, 0x4000);
    cr_assert_eq(e.addr_mask, 0xfff);
    cr_assert_eq(e.perm, IOMMU_RW);
    cr_assert_eq(address_space_get_iotlb_entry(&as, 0x9000, false).perm, IOMMU_NONE);
    memory_region_del_subregion(&sys, &ram);
    memory_region_destroy(&ram);
}

Test(map, transaction_defers_visibility_to_outermost_commit)
{
    MemoryRegion a;
    ram_filled(&a, "a", 0x1000, 0x77);
    memory_region_transaction_begin();
    memory_region_transaction_begin();
    memory_region_add_subregion(&sys, 0x3000, &a);
    memory_region_transaction_commit();
    MemTxResult r;
    address_space_ldub(&as, 0x3000, ATTR, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR, "visible before the outermost commit");
    memory_region_transaction_commit();
    cr_assert_eq(address_space_ldub(&as, 0x3000, ATTR, &r), 0x77);
    cr_assert_eq(r, MEMTX_OK);
    memory_region_del_subregion(&sys, &a);
    memory_region_destroy(&a);
}

Test(map, error_type_messages)
{
    Error *err = NULL;
    MemoryRegion r;
    memory_region_init_ram(&r, NULL, "zero", 0, &err);
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(error_get_pretty(err), "zero"), "%s", error_get_pretty(err));
    error_free(err);
    error_free(NULL);
    memory_region_destroy(&r); /* failed init: destroy is a no-op */
    memory_region_init_ram(&r, NULL, "zero", 0, NULL); /* errp NULL: no crash */
}

Test(map, iommu_is_reported_unsupported, .signal = SIGABRT)
{
    IOMMUMemoryRegion im;
    memory_region_init_iommu(&im, sizeof(im), "x", NULL, "iommu", 0x1000);
}

Test(map, many_regions_added_in_any_order_render_correctly)
{
    enum { N = 600 };
    static MemoryRegion win[N], top[N / 10];
    MemoryRegion backing;
    memory_region_init_ram(&backing, NULL, "backing", 0x10000, &error_abort);
    uint8_t *h = memory_region_get_ram_ptr(&backing);
    for (int p = 0; p < 16; p++)
        memset(h + p * 0x1000, p, 0x1000);
    unsigned perm[N];
    for (unsigned i = 0; i < N; i++)
        perm[i] = i;
    srand(7);
    for (unsigned i = N - 1; i > 0; i--) {
        unsigned j = (unsigned)rand() % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memory_region_transaction_begin();
    for (unsigned k = 0; k < N; k++) {
        unsigned i = perm[k];
        memory_region_init_alias(&win[i], NULL, "win", &backing, (i % 16) * 0x1000, 0x1000);
        memory_region_add_subregion(&sys, 0x1000000 + i * 0x1000ull, &win[i]); /* adjacent, no gaps */
    }
    /* every tenth window covered, in its second half, by a higher-priority window onto page 15 */
    for (unsigned k = 0; k < N / 10; k++) {
        memory_region_init_alias(&top[k], NULL, "top", &backing, 15 * 0x1000, 0x800);
        memory_region_add_subregion_overlap(&sys, 0x1000000 + k * 10 * 0x1000ull + 0x800, &top[k], 1);
    }
    memory_region_transaction_commit();
    for (unsigned i = 0; i < N; i++) {
        hwaddr a = 0x1000000 + i * 0x1000ull;
        cr_assert_eq(ldub_phys(&as, a), i % 16, "window %u", i);
        cr_assert_eq(ldub_phys(&as, a + 0x7ff), i % 16, "window %u end of first half", i);
        cr_assert_eq(ldub_phys(&as, a + 0x800), i % 10 == 0 ? 15 : i % 16, "window %u second half", i);
    }
    memory_region_transaction_begin();
    for (unsigned i = 0; i < N; i++)
        memory_region_del_subregion(&sys, &win[i]);
    for (unsigned k = 0; k < N / 10; k++)
        memory_region_del_subregion(&sys, &top[k]);
    memory_region_transaction_commit();
    for (unsigned i = 0; i < N; i++)
        memory_region_destroy(&win[i]);
    for (unsigned k = 0; k < N / 10; k++)
        memory_region_destroy(&top[k]);
    memory_region_destroy(&backing);
}

Test(map, no_overlap_map_in_random_order)
{
    enum { N = 500 };
    static MemoryRegion win[N];
    MemoryRegion backing;
    memory_region_init_ram(&backing, NULL, "backing", 0x10000, &error_abort);
    uint8_t *h = memory_region_get_ram_ptr(&backing);
    for (int p = 0; p < 16; p++)
        memset(h + p * 0x1000, 0x40 + p, 0x1000);
    srand(11);
    bool used[N] = { false };
    memory_region_transaction_begin();
    for (unsigned k = 0; k < N; k++) {
        unsigned i;
        do
            i = (unsigned)rand() % N;
        while (used[i]);
        used[i] = true;
        memory_region_init_alias(&win[i], NULL, "w", &backing, (i % 16) * 0x1000, 0x1000);
        memory_region_add_subregion(&sys, 0x4000000 + i * 0x2000ull, &win[i]); /* gaps between */
    }
    memory_region_transaction_commit();
    MemTxResult r;
    for (unsigned i = 0; i < N; i++) {
        cr_assert_eq(ldub_phys(&as, 0x4000000 + i * 0x2000ull + 0x123), 0x40 + i % 16, "window %u", i);
        address_space_ldub(&as, 0x4000000 + i * 0x2000ull + 0x1000, ATTR, &r);
        cr_assert_eq(r, MEMTX_DECODE_ERROR, "gap after window %u", i);
    }
    memory_region_transaction_begin();
    for (unsigned i = 0; i < N; i++)
        memory_region_del_subregion(&sys, &win[i]);
    memory_region_transaction_commit();
    for (unsigned i = 0; i < N; i++)
        memory_region_destroy(&win[i]);
    memory_region_destroy(&backing);
}
