/*
 * Dispatch rules: valid (size, alignment, accepts), impl (split, widen, aligned callbacks) in both
 * endiannesses, the _with_attrs and old_mmio callbacks, and how address-space accesses are cut at region
 * boundaries and into pieces of the region's valid.max_access_size.
 */
#include "helpers.h"

static MemoryRegion sys, io, ram;
static AddressSpace as;
static Dev dev;

static void teardown(void)
{
    address_space_destroy(&as);
    if (io.container)
        memory_region_del_subregion(&sys, &io);
    if (ram.container)
        memory_region_del_subregion(&sys, &ram);
    memory_region_destroy(&io);
    memory_region_destroy(&ram);
    memory_region_destroy(&sys);
}

/* System with @ops mapped at 0x1000 (4 KiB) and RAM at 0x0 (4 KiB). */
static void setup_with(const MemoryRegionOps *ops, bool backed, bool big)
{
    memset(&dev, 0, sizeof(dev));
    dev.backed = backed;
    dev.big = big;
    for (int i = 0; i < 4096; i++)
        dev.mem[i] = (uint8_t)(0x10 + i);
    memory_region_init(&sys, NULL, "system", UINT64_MAX);
    memory_region_init_io(&io, NULL, ops, &dev, "dev", 0x1000);
    memory_region_init_ram(&ram, NULL, "ram", 0x1000, &error_abort);
    memory_region_add_subregion(&sys, 0x1000, &io);
    memory_region_add_subregion(&sys, 0x0, &ram);
    address_space_init(&as, &sys, "test");
}

static void noop_fini(void) {}

TestSuite(dispatch, .fini = teardown);

static const MemoryRegionOps ops_2_4 = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 2, .max_access_size = 4 },
};

Test(dispatch, valid_size_bounds_give_decode_error_without_callback)
{
    setup_with(&ops_2_4, false, false);
    uint64_t v = 123;
    cr_assert_eq(memory_region_dispatch_read(&io, 0, &v, 1, ATTR), MEMTX_DECODE_ERROR);
    cr_assert_eq(memory_region_dispatch_read(&io, 0, &v, 8, ATTR), MEMTX_DECODE_ERROR);
    cr_assert_eq(memory_region_dispatch_write(&io, 0, 5, 1, ATTR), MEMTX_DECODE_ERROR);
    cr_assert_eq(dev.n, 0, "the device was called for an invalid access");
    cr_assert_eq(memory_region_dispatch_read(&io, 4, &v, 2, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0xa5a4);
    cr_assert_eq(memory_region_dispatch_read(&io, 4, &v, 4, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0xa7a6a5a4);
    cr_assert_eq(dev.n, 2);
}

static const MemoryRegionOps ops_default = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_NATIVE_ENDIAN,
};

Test(dispatch, defaults_are_1_to_4_bytes_aligned)
{
    setup_with(&ops_default, false, false);
    uint64_t v;
    cr_assert_eq(memory_region_dispatch_read(&io, 8, &v, 8, ATTR), MEMTX_DECODE_ERROR);
    cr_assert_eq(memory_region_dispatch_read(&io, 2, &v, 4, ATTR), MEMTX_DECODE_ERROR, "unaligned accepted");
    cr_assert_eq(memory_region_dispatch_read(&io, 3, &v, 1, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0xa3);
    cr_assert_eq(dev.n, 1);
}

static const MemoryRegionOps ops_unaligned = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .unaligned = true }, .impl = { .unaligned = true },
};

Test(dispatch, unaligned_allowed_when_valid_unaligned)
{
    setup_with(&ops_unaligned, false, false);
    uint64_t v;
    cr_assert_eq(memory_region_dispatch_read(&io, 2, &v, 4, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0xa5a4a3a2);
    ASSERT_ACCESS(&dev, 0, false, 2, 4, 0xa5a4a3a2);
}

static hwaddr accepts_addr;
static unsigned accepts_size;
static bool accepts_write;
static bool accepts_even(void *opaque, hwaddr addr, unsigned size, bool is_write)
{
    accepts_addr = addr;
    accepts_size = size;
    accepts_write = is_write;
    return (addr & 0x10) == 0;
}

static const MemoryRegionOps ops_accepts = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .accepts = accepts_even },
};

Test(dispatch, accepts_false_is_decode_error_and_sees_the_access)
{
    setup_with(&ops_accepts, false, false);
    MemTxResult r;
    cr_assert_eq(address_space_ldl_le(&as, 0x1014, ATTR, &r), 0);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    cr_assert_eq(accepts_addr, 0x14);
    cr_assert_eq(accepts_size, 4);
    cr_assert_eq(accepts_write, false);
    address_space_stw_le(&as, 0x1012, 7, ATTR, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    cr_assert_eq(accepts_write, true);
    cr_assert_eq(dev.n, 0);
    cr_assert_eq(address_space_ldl_le(&as, 0x1024, ATTR, &r), 0xc7c6c5c4);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert(address_space_access_valid(&as, 0x1020, 4, false));
    cr_assert_not(address_space_access_valid(&as, 0x1010, 4, false));
}

static const MemoryRegionOps ops_split_le = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = { .max_access_size = 2 },
};
static const MemoryRegionOps ops_split_be = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_BIG_ENDIAN,
    .impl = { .max_access_size = 2 },
};

Test(dispatch, split_little_endian)
{
    setup_with(&ops_split_le, true, false);
    memcpy(dev.mem, "\x11\x22\x33\x44", 4);
    uint64_t v;
    cr_assert_eq(memory_region_dispatch_read(&io, 0, &v, 4, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0x44332211);
    ASSERT_ACCESS(&dev, 0, false, 0, 2, 0x2211);
    ASSERT_ACCESS(&dev, 1, false, 2, 2, 0x4433);
    cr_assert_eq(dev.n, 2);
    dev_reset(&dev);
    cr_assert_eq(memory_region_dispatch_write(&io, 4, 0xaabbccdd, 4, ATTR), MEMTX_OK);
    ASSERT_ACCESS(&dev, 0, true, 4, 2, 0xccdd);
    ASSERT_ACCESS(&dev, 1, true, 6, 2, 0xaabb);
}

Test(dispatch, split_big_endian)
{
    setup_with(&ops_split_be, true, true);
    memcpy(dev.mem, "\x11\x22\x33\x44", 4);
    cr_assert_eq(ldl_be_phys(&as, 0x1000), 0x11223344, "BE value combined wrongly");
    cr_assert_eq(ldl_le_phys(&as, 0x1000), 0x44332211);
    ASSERT_ACCESS(&dev, 0, false, 0, 2, 0x1122);
    ASSERT_ACCESS(&dev, 1, false, 2, 2, 0x3344);
    dev_reset(&dev);
    stl_be_phys(&as, 0x1004, 0xaabbccdd);
    ASSERT_ACCESS(&dev, 0, true, 4, 2, 0xaabb);
    ASSERT_ACCESS(&dev, 1, true, 6, 2, 0xccdd);
    cr_assert_eq(memcmp(dev.mem + 4, "\xaa\xbb\xcc\xdd", 4), 0);
}

static const MemoryRegionOps ops_widen_le = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = { .min_access_size = 4 },
};
static const MemoryRegionOps ops_widen_be = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_BIG_ENDIAN,
    .impl = { .min_access_size = 4 },
};

Test(dispatch, widen_read_little_endian)
{
    setup_with(&ops_widen_le, true, false);
    memcpy(dev.mem, "\x11\x22\x33\x44", 4);
    cr_assert_eq(ldub_phys(&as, 0x1002), 0x33);
    ASSERT_ACCESS(&dev, 0, false, 0, 4, 0x44332211);
    cr_assert_eq(lduw_le_phys(&as, 0x1002), 0x4433);
    ASSERT_ACCESS(&dev, 1, false, 0, 4, 0x44332211);
    cr_assert_eq(dev.n, 2);
}

Test(dispatch, widen_read_big_endian)
{
    setup_with(&ops_widen_be, true, true);
    memcpy(dev.mem, "\x11\x22\x33\x44", 4);
    cr_assert_eq(ldub_phys(&as, 0x1001), 0x22);
    ASSERT_ACCESS(&dev, 0, false, 0, 4, 0x11223344);
    cr_assert_eq(lduw_be_phys(&as, 0x1002), 0x3344);
}

Test(dispatch, widen_write_zero_fills_other_bytes)
{
    setup_with(&ops_widen_le, false, false);
    stb_phys(&as, 0x1002, 0xab);
    ASSERT_ACCESS(&dev, 0, true, 0, 4, 0x00ab0000);
    stw_le_phys(&as, 0x1006, 0x1234);
    ASSERT_ACCESS(&dev, 1, true, 4, 4, 0x12340000);
    teardown();
    setup_with(&ops_widen_be, false, true);
    stb_phys(&as, 0x1002, 0xab);
    ASSERT_ACCESS(&dev, 0, true, 0, 4, 0x0000ab00);
    stw_be_phys(&as, 0x1000, 0x1234);
    ASSERT_ACCESS(&dev, 1, true, 0, 4, 0x12340000);
}

static const MemoryRegionOps ops_unaligned_valid_aligned_impl = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .unaligned = true, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

Test(dispatch, unaligned_access_becomes_aligned_callbacks)
{
    setup_with(&ops_unaligned_valid_aligned_impl, true, false);
    memcpy(dev.mem, "\x00\x01\x02\x03\x04\x05\x06\x07", 8);
    uint64_t v;
    cr_assert_eq(memory_region_dispatch_read(&io, 2, &v, 4, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0x05040302);
    ASSERT_ACCESS(&dev, 0, false, 0, 4, 0x03020100);
    ASSERT_ACCESS(&dev, 1, false, 4, 4, 0x07060504);
    cr_assert_eq(dev.n, 2);
}

static MemTxAttrs seen_attrs;
static MemTxResult rd_attrs(void *opaque, hwaddr addr, uint64_t *data, unsigned size, MemTxAttrs attrs)
{
    seen_attrs = attrs;
    if (addr >= 0x100)
        return MEMTX_ERROR;
    *data = 0x5a5a0000 | addr;
    return MEMTX_OK;
}
static MemTxResult wr_attrs(void *opaque, hwaddr addr, uint64_t data, unsigned size, MemTxAttrs attrs)
{
    seen_attrs = attrs;
    ((Dev *)opaque)->log[((Dev *)opaque)->n++] = (Access){ true, addr, size, data };
    return addr >= 0x100 ? MEMTX_ERROR : MEMTX_OK;
}
static const MemoryRegionOps ops_attrs = {
    .read_with_attrs = rd_attrs, .write_with_attrs = wr_attrs, .endianness = DEVICE_LITTLE_ENDIAN,
};

Test(dispatch, with_attrs_callbacks_get_attrs_and_report_errors)
{
    setup_with(&ops_attrs, false, false);
    MemTxAttrs a = { .secure = 1, .requester_id = 42 };
    MemTxResult r;
    cr_assert_eq(address_space_ldl_le(&as, 0x1010, a, &r), 0x5a5a0010);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert_eq(seen_attrs.secure, 1);
    cr_assert_eq(seen_attrs.requester_id, 42);
    address_space_ldl_le(&as, 0x1100, a, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    address_space_stl_le(&as, 0x1104, 9, ATTR, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(seen_attrs.unspecified, 1);
}

static uint32_t old_rd4(void *opaque, hwaddr addr)
{
    return 0xcafe0000u | (uint32_t)addr;
}
static uint32_t old_rd1(void *opaque, hwaddr addr)
{
    return 0x7;
}
static uint32_t old_last;
static void old_wr2(void *opaque, hwaddr addr, uint32_t v)
{
    old_last = v + (uint32_t)addr;
}
static const MemoryRegionOps ops_old = {
    .endianness = DEVICE_LITTLE_ENDIAN,
    .old_mmio = { .read = { old_rd1, NULL, old_rd4 }, .write = { NULL, old_wr2, NULL } },
};

Test(dispatch, old_mmio_callbacks_by_size)
{
    setup_with(&ops_old, false, false);
    MemTxResult r;
    cr_assert_eq(address_space_ldl_le(&as, 0x1008, ATTR, &r), 0xcafe0008);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert_eq(ldub_phys(&as, 0x1001), 7);
    address_space_stw_le(&as, 0x1002, 0x100, ATTR, &r);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert_eq(old_last, 0x102);
    address_space_lduw_le(&as, 0x1000, ATTR, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR, "missing old_mmio read[1] must fail");
}

Test(dispatch, eight_byte_load_from_four_byte_device_is_two_accesses)
{
    setup_with(&ops_default, false, false);
    MemTxResult r;
    uint64_t v = address_space_ldq_le(&as, 0x1008, ATTR, &r);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert_eq(v, 0xafaeadacabaaa9a8ULL);
    ASSERT_ACCESS(&dev, 0, false, 8, 4, 0xabaaa9a8);
    ASSERT_ACCESS(&dev, 1, false, 12, 4, 0xafaeadac);
    cr_assert_eq(dev.n, 2);
    cr_assert_eq(address_space_ldq_be(&as, 0x1008, ATTR, &r), 0xa8a9aaabacadaeafULL);
}

static const MemoryRegionOps ops_8 = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .max_access_size = 8 }, .impl = { .max_access_size = 8 },
};

Test(dispatch, eight_byte_device_gets_one_access)
{
    setup_with(&ops_8, false, false);
    cr_assert_eq(ldq_le_phys(&as, 0x1000), 0xa7a6a5a4a3a2a1a0ULL);
    cr_assert_eq(dev.n, 1);
    ASSERT_ACCESS(&dev, 0, false, 0, 8, 0xa7a6a5a4a3a2a1a0ULL);
}

Test(dispatch, write_spanning_ram_and_io_reaches_both)
{
    setup_with(&ops_default, false, false);
    uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    cr_assert_eq(address_space_write(&as, 0xffc, ATTR, buf, 8), MEMTX_OK);
    uint8_t *host = memory_region_get_ram_ptr(&ram);
    cr_assert_eq(memcmp(host + 0xffc, buf, 4), 0);
    cr_assert_eq(dev.n, 1);
    ASSERT_ACCESS(&dev, 0, true, 0, 4, 0x08070605);
    uint8_t out[8];
    cr_assert_eq(address_space_read(&as, 0xffc, ATTR, out, 8), MEMTX_OK);
    cr_assert_eq(memcmp(out, "\x01\x02\x03\x04\xa0\xa1\xa2\xa3", 8), 0);
}

Test(dispatch, io_pieces_follow_alignment_when_not_unaligned)
{
    setup_with(&ops_default, false, false);
    uint8_t out[7];
    cr_assert_eq(address_space_read(&as, 0x1001, ATTR, out, 7), MEMTX_OK);
    /* 1 @1, 2 @2, 4 @4 */
    ASSERT_ACCESS(&dev, 0, false, 1, 1, 0xa1);
    ASSERT_ACCESS(&dev, 1, false, 2, 2, 0xa3a2);
    ASSERT_ACCESS(&dev, 2, false, 4, 4, 0xa7a6a5a4);
    cr_assert_eq(dev.n, 3);
    cr_assert_eq(memcmp(out, "\xa1\xa2\xa3\xa4\xa5\xa6\xa7", 7), 0);
}

Test(dispatch, unassigned_reads_zero_and_decode_error)
{
    setup_with(&ops_default, false, false);
    MemTxResult r;
    cr_assert_eq(address_space_ldl_le(&as, 0x5000, ATTR, &r), 0);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    address_space_stl_le(&as, 0x5000, 1, ATTR, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    /* partly unassigned: the RAM part still happens */
    uint8_t buf[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
    memory_region_del_subregion(&sys, &io);
    cr_assert_eq(address_space_write(&as, 0xffc, ATTR, buf, 8), MEMTX_DECODE_ERROR);
    cr_assert_eq(((uint8_t *)memory_region_get_ram_ptr(&ram))[0xfff], 9);
    memset(buf, 0x55, 8);
    cr_assert_eq(address_space_read(&as, 0xffc, ATTR, buf, 8), MEMTX_DECODE_ERROR);
    cr_assert_eq(memcmp(buf, "\x09\x09\x09\x09\x00\x00\x00\x00", 8), 0);
    cr_assert_not(address_space_access_valid(&as, 0xffc, 8, false));
    cr_assert(address_space_access_valid(&as, 0xffc, 4, true));
}

Test(dispatch, reservation_fails_every_access)
{
    setup_with(&ops_default, false, false);
    MemoryRegion resv;
    memory_region_init_reservation(&resv, NULL, "resv", 0x1000);
    memory_region_add_subregion_overlap(&sys, 0x0, &resv, 1);
    MemTxResult r;
    cr_assert_eq(address_space_ldl_le(&as, 0x10, ATTR, &r), 0);
    cr_assert_eq(r, MEMTX_DECODE_ERROR, "a reservation must hide the RAM below and fail");
    memory_region_del_subregion(&sys, &resv);
    memory_region_destroy(&resv);
}

Test(dispatch, ram_le_be_accessors)
{
    setup_with(&ops_default, false, false);
    uint8_t *host = memory_region_get_ram_ptr(&ram);
    stl_be_phys(&as, 0x10, 0x11223344);
    cr_assert_eq(memcmp(host + 0x10, "\x11\x22\x33\x44", 4), 0);
    stq_le_phys(&as, 0x20, 0x0102030405060708ULL);
    cr_assert_eq(memcmp(host + 0x20, "\x08\x07\x06\x05\x04\x03\x02\x01", 8), 0);
    cr_assert_eq(ldq_be_phys(&as, 0x20), 0x0807060504030201ULL);
    stw_be_phys(&as, 0x30, 0xabcd);
    cr_assert_eq(lduw_le_phys(&as, 0x30), 0xcdab);
    cr_assert_eq(lduw_be_phys(&as, 0x30), 0xabcd);
    stw_le_phys(&as, 0x32, 0xabcd);
    cr_assert_eq(ldl_le_phys(&as, 0x30), 0xabcdcdab);
    cr_assert_eq(ldl_be_phys(&as, 0x30), 0xabcdcdab); /* bytes ab cd cd ab */
    stb_phys(&as, 0x40, 0x1ff);
    cr_assert_eq(ldub_phys(&as, 0x40), 0xff);
}

Test(dispatch, ram_device_accesses_are_sized_host_accesses)
{
    setup_with(&ops_default, false, false);
    static uint64_t bar[16] __attribute__((aligned(8)));
    MemoryRegion rd;
    memory_region_init_ram_device_ptr(&rd, NULL, "bar", sizeof(bar), bar);
    cr_assert(memory_region_is_ram_device(&rd));
    memory_region_add_subregion(&sys, 0x8000, &rd);
    stq_le_phys(&as, 0x8008, 0x1122334455667788ULL);
    cr_assert_eq(bar[1], 0x1122334455667788ULL);
    cr_assert_eq(ldl_le_phys(&as, 0x800c), 0x11223344);
    cr_assert_not(memory_access_is_direct(&rd, false));
    memory_region_del_subregion(&sys, &rd);
    memory_region_destroy(&rd);
}

Test(dispatch, widen_straddling_an_impl_boundary_uses_two_callbacks)
{
    setup_with(&ops_unaligned_valid_aligned_impl, true, false);
    memcpy(dev.mem, "\x00\x01\x02\x03\x04\x05\x06\x07", 8);
    uint64_t v;
    cr_assert_eq(memory_region_dispatch_read(&io, 3, &v, 2, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0x0403);
    ASSERT_ACCESS(&dev, 0, false, 0, 4, 0x03020100);
    ASSERT_ACCESS(&dev, 1, false, 4, 4, 0x07060504);
    dev_reset(&dev);
    cr_assert_eq(memory_region_dispatch_write(&io, 3, 0xbbaa, 2, ATTR), MEMTX_OK);
    ASSERT_ACCESS(&dev, 0, true, 0, 4, 0xaa000000);
    ASSERT_ACCESS(&dev, 1, true, 4, 4, 0x000000bb);
}

Test(dispatch, dispatch_on_ram_rom_and_alias)
{
    setup_with(&ops_default, false, false);
    uint64_t v;
    cr_assert_eq(memory_region_dispatch_write(&ram, 0x10, 0x1122334455667788ULL, 8, ATTR), MEMTX_OK);
    cr_assert_eq(memory_region_dispatch_read(&ram, 0x10, &v, 8, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0x1122334455667788ULL);
    cr_assert_eq(memory_region_dispatch_read(&ram, 0xffe, &v, 4, ATTR), MEMTX_DECODE_ERROR, "beyond the end");
    MemoryRegion alias;
    memory_region_init_alias(&alias, NULL, "alias", &ram, 0x10, 0x10);
    cr_assert_eq(memory_region_dispatch_read(&alias, 4, &v, 4, ATTR), MEMTX_OK);
    cr_assert_eq(v, 0x11223344);
    memory_region_destroy(&alias);
}

static const MemoryRegionOps ops_bad_size = {
    .read = dev_read, .endianness = DEVICE_LITTLE_ENDIAN, .valid = { .max_access_size = 3 },
};

Test(dispatch, invalid_access_sizes_in_ops_are_refused, .signal = SIGABRT, .fini = noop_fini)
{
    MemoryRegion bad;
    memory_region_init_io(&bad, NULL, &ops_bad_size, NULL, "bad", 0x100);
}
