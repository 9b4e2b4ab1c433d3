/*
 * RAM: sealed memfd backing shared with a second mapping, private vs shared fd mappings, error reporting for
 * bad fds and sizes, resizeable RAM, dirty logging with snapshots, map/unmap (direct and bounce), caches,
 * and ioeventfds signalled by guest writes.
 */
#include "helpers.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

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

TestSuite(ram, .init = setup, .fini = teardown);

Test(ram, init_ram_is_a_sealed_memfd_shared_with_another_mapping)
{
    MemoryRegion ram;
    memory_region_init_ram(&ram, NULL, "guest-ram", 0x10000, &error_abort);
    int fd = memory_region_get_fd(&ram);
    cr_assert_geq(fd, 0);
    int seals = fcntl(fd, F_GET_SEALS);
    cr_assert_eq(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL,
                 "seals 0x%x", seals);
    cr_assert_lt(ftruncate(fd, 0x20000), 0, "a sealed memfd must not grow");
    cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    cr_assert_eq(lseek(fd, 0, SEEK_END), 0x10000);
    memory_region_add_subregion(&sys, 0x80000000, &ram);
    /* what another process would do: map the fd */
    uint8_t *other = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(other, MAP_FAILED);
    stl_le_phys(&as, 0x80000100, 0xfeedface);
    cr_assert_eq(memcmp(other + 0x100, "\xce\xfa\xed\xfe", 4), 0);
    other[0x200] = 0x42;
    cr_assert_eq(ldub_phys(&as, 0x80000200), 0x42);
    munmap(other, 0x10000);
    memory_region_del_subregion(&sys, &ram);
    memory_region_destroy(&ram);
    cr_assert_lt(fcntl(fd, F_GETFD), 0, "destroy must close the memfd");
}

Test(ram, rom_is_a_sealed_memfd_too)
{
    MemoryRegion rom;
    memory_region_init_rom(&rom, NULL, "bootrom", 0x1000, &error_abort);
    int fd = memory_region_get_fd(&rom);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fcntl(fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
    memory_region_destroy(&rom);
}

static int make_memfd(size_t size, uint8_t fill)
{
    int fd = memfd_create("test", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memset(p, fill, size);
    munmap(p, size);
    return fd;
}

Test(ram, from_fd_shared_writes_are_seen_through_the_fd)
{
    int fd = make_memfd(0x2000, 0x11);
    MemoryRegion r;
    Error *err = NULL;
    memory_region_init_ram_from_fd(&r, NULL, "shared", 0x2000, true, fd, &err);
    cr_assert_null(err);
    memory_region_add_subregion(&sys, 0x1000, &r);
    cr_assert_eq(ldub_phys(&as, 0x1000), 0x11);
    stb_phys(&as, 0x1000, 0x99);
    uint8_t b = 0;
    cr_assert_eq(pread(fd, &b, 1, 0), 1);
    cr_assert_eq(b, 0x99, "MAP_SHARED write not visible through the fd");
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r); /* closes fd */
}

Test(ram, from_fd_private_writes_stay_private)
{
    int fd = make_memfd(0x2000, 0x22);
    int keep = dup(fd);
    MemoryRegion r;
    memory_region_init_ram_from_fd(&r, NULL, "private", 0x2000, false, fd, &error_abort);
    memory_region_add_subregion(&sys, 0x1000, &r);
    stb_phys(&as, 0x1000, 0x99);
    cr_assert_eq(ldub_phys(&as, 0x1000), 0x99);
    uint8_t b = 0;
    cr_assert_eq(pread(keep, &b, 1, 0), 1);
    cr_assert_eq(b, 0x22, "MAP_PRIVATE write leaked into the file");
    /* and a change made through the file after our write does not reach the written page */
    uint8_t *other = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, keep, 0);
    other[0] = 0x33;
    cr_assert_eq(ldub_phys(&as, 0x1000), 0x99);
    munmap(other, 0x2000);
    close(keep);
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r);
}

Test(ram, bad_fd_and_sizes_set_errp_without_crashing)
{
    MemoryRegion r;
    Error *err = NULL;
    memory_region_init_ram_from_fd(&r, NULL, "bad", 0x1000, true, -1, &err);
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(error_get_pretty(err), "invalid fd"), "%s", error_get_pretty(err));
    error_free(err);
    err = NULL;
    memory_region_init_ram_from_fd(&r, NULL, "closed", 0x1000, true, 1000, &err);
    cr_assert_not_null(err);
    error_free(err);
    err = NULL;
    int fd = make_memfd(0x1000, 0);
    memory_region_init_ram_from_fd(&r, NULL, "zero", 0, true, fd, &err);
    cr_assert_not_null(err);
    error_free(err);
    err = NULL;
    /* a sealed memfd that is too small cannot grow */
    MemoryRegion small;
    memory_region_init_ram(&small, NULL, "small", 0x1000, &error_abort);
    memory_region_init_ram_from_fd(&r, NULL, "toolarge", 0x100000, true, memory_region_get_fd(&small), &err);
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(error_get_pretty(err), "cannot grow"), "%s", error_get_pretty(err));
    error_free(err);
    err = NULL;
    cr_assert_geq(fcntl(fd, F_GETFD), 0, "a failed init must leave the fd open");
    close(fd);
    memory_region_init_ram(&r, NULL, "huge", UINT64_MAX - 4096, &err);
    cr_assert_not_null(err);
    error_free(err);
    err = NULL;
    memory_region_init_ram_flags(&r, NULL, "flags", 0x1000, 0x8000, &err);
    cr_assert_not_null(err);
    error_free(err);
    memory_region_destroy(&r);
    memory_region_destroy(&small);
}

Test(ram, shared_nomigrate_false_and_flags)
{
    MemoryRegion a, b, c;
    memory_region_init_ram_shared_nomigrate(&a, NULL, "priv", 0x1000, false, &error_abort);
    cr_assert_eq(memory_region_get_fd(&a), -1);
    cr_assert_not_null(memory_region_get_ram_ptr(&a));
    memory_region_init_ram_flags(&b, NULL, "shared", 0x1000, RAM_SHARED | RAM_NORESERVE, &error_abort);
    cr_assert_geq(memory_region_get_fd(&b), 0);
    memory_region_init_ram_nomigrate(&c, NULL, "nm", 0x1000, &error_abort);
    cr_assert_geq(memory_region_get_fd(&c), 0);
    memory_region_destroy(&a);
    memory_region_destroy(&b);
    memory_region_destroy(&c);
}

Test(ram, from_file_honours_share_and_align)
{
    char path[] = "/tmp/plexus-mem-XXXXXX";
    int tfd = mkstemp(path);
    cr_assert_geq(tfd, 0);
    close(tfd);
    MemoryRegion r;
    memory_region_init_ram_from_file(&r, NULL, "file", 0x4000, 0x200000, true, path, &error_abort);
    cr_assert_eq((uintptr_t)memory_region_get_ram_ptr(&r) % 0x200000, 0);
    cr_assert_eq(memory_region_get_alignment(&r), 0x200000);
    memory_region_add_subregion(&sys, 0, &r);
    stl_le_phys(&as, 0x10, 0x61626364);
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r);
    FILE *f = fopen(path, "rb");
    char buf[0x14];
    cr_assert_eq(fread(buf, 1, sizeof(buf), f), sizeof(buf));
    fclose(f);
    cr_assert_eq(memcmp(buf + 0x10, "dcba", 4), 0);
    memory_region_init_ram_from_file(&r, NULL, "in-dir", 0x2000, 0, true, "/tmp", &error_abort);
    memory_region_add_subregion(&sys, 0, &r);
    stl_le_phys(&as, 0x1ffc, 0x55aa55aa);
    cr_assert_eq(ldl_le_phys(&as, 0x1ffc), 0x55aa55aa);
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r);
    Error *err = NULL;
    memory_region_init_ram_from_file(&r, NULL, "nofile", 0x1000, 0, true, "/nonexistent/dir/x", &err);
    cr_assert_not_null(err);
    error_free(err);
    unlink(path);
}

static uint64_t resized_len;
static void *resized_host;
static void on_resize(const char *name, uint64_t len, void *host)
{
    resized_len = len;
    resized_host = host;
}

Test(ram, resizeable_ram_grows_and_shrinks_within_max)
{
    MemoryRegion r;
    memory_region_init_resizeable_ram(&r, NULL, "fw-cfg", 0x1000, 0x10000, on_resize, &error_abort);
    void *host = memory_region_get_ram_ptr(&r);
    memory_region_add_subregion(&sys, 0x100000, &r);
    MemTxResult res;
    address_space_ldub(&as, 0x101000, ATTR, &res);
    cr_assert_eq(res, MEMTX_DECODE_ERROR);
    memory_region_ram_resize(&r, 0x3000, &error_abort);
    cr_assert_eq(memory_region_size(&r), 0x3000);
    cr_assert_eq(resized_len, 0x3000);
    cr_assert_eq(resized_host, host, "host memory must not move");
    stb_phys(&as, 0x102fff, 0x5a);
    cr_assert_eq(ldub_phys(&as, 0x102fff), 0x5a);
    memory_region_ram_resize(&r, 0x1000, &error_abort);
    address_space_ldub(&as, 0x102fff, ATTR, &res);
    cr_assert_eq(res, MEMTX_DECODE_ERROR);
    memory_region_ram_resize(&r, 0x3000, &error_abort);
    cr_assert_eq(ldub_phys(&as, 0x102fff), 0, "bytes beyond a shrunk size must read as zero");
    Error *err = NULL;
    memory_region_ram_resize(&r, 0x20000, &err);
    cr_assert_not_null(err);
    error_free(err);
    err = NULL;
    MemoryRegion plain;
    memory_region_init_ram(&plain, NULL, "plain", 0x1000, &error_abort);
    memory_region_ram_resize(&plain, 0x2000, &err);
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(error_get_pretty(err), "not resizeable"));
    error_free(err);
    memory_region_destroy(&plain);
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r);
}

Test(ram, dirty_logging_per_client_with_snapshot)
{
    MemoryRegion r;
    memory_region_init_ram(&r, NULL, "vram", 0x10000, &error_abort);
    memory_region_add_subregion(&sys, 0x40000, &r);
    /* not logging: writes mark nothing */
    stl_le_phys(&as, 0x40000, 1);
    cr_assert_not(memory_region_get_dirty(&r, 0, 0x10000, DIRTY_MEMORY_VGA));
    memory_region_set_log(&r, true, DIRTY_MEMORY_VGA);
    cr_assert(memory_region_is_logging(&r, DIRTY_MEMORY_VGA));
    cr_assert_eq(memory_region_get_dirty_log_mask(&r), 1u << DIRTY_MEMORY_VGA);
    stl_le_phys(&as, 0x43ffe, 0xffffffff); /* straddles pages 3 and 4 */
    cr_assert_not(memory_region_get_dirty(&r, 0x0000, 0x3000, DIRTY_MEMORY_VGA));
    cr_assert(memory_region_get_dirty(&r, 0x3000, 1, DIRTY_MEMORY_VGA));
    cr_assert(memory_region_get_dirty(&r, 0x4fff, 1, DIRTY_MEMORY_VGA));
    cr_assert_not(memory_region_get_dirty(&r, 0x5000, 0x1000, DIRTY_MEMORY_VGA));
    cr_assert_not(memory_region_get_dirty(&r, 0x3000, 0x2000, DIRTY_MEMORY_CODE), "other client marked");
    memory_region_set_dirty(&r, 0x9000, 0x10);
    cr_assert(memory_region_get_dirty(&r, 0x9000, 1, DIRTY_MEMORY_VGA));
    /* address_space_write of many bytes */
    uint8_t buf[0x2000] = { 0 };
    address_space_write(&as, 0x4b800, ATTR, buf, sizeof(buf));
    cr_assert(memory_region_get_dirty(&r, 0xb000, 1, DIRTY_MEMORY_VGA));
    cr_assert(memory_region_get_dirty(&r, 0xd000, 1, DIRTY_MEMORY_VGA));
    cr_assert_not(memory_region_get_dirty(&r, 0xe000, 1, DIRTY_MEMORY_VGA));

    DirtyBitmapSnapshot *snap = memory_region_snapshot_and_clear_dirty(&r, 0, 0x10000, DIRTY_MEMORY_VGA);
    cr_assert_not_null(snap);
    cr_assert(memory_region_snapshot_get_dirty(&r, snap, 0x3000, 0x1000));
    cr_assert(memory_region_snapshot_get_dirty(&r, snap, 0x4000, 0x1000));
    cr_assert(memory_region_snapshot_get_dirty(&r, snap, 0x9000, 0x1000));
    cr_assert_not(memory_region_snapshot_get_dirty(&r, snap, 0x0000, 0x3000));
    cr_assert_not(memory_region_snapshot_get_dirty(&r, snap, 0x5000, 0x4000));
    cr_assert_not(memory_region_get_dirty(&r, 0, 0x10000, DIRTY_MEMORY_VGA), "snapshot must clear");
    free(snap);

    stb_phys(&as, 0x40000, 1);
    cr_assert(memory_region_get_dirty(&r, 0, 1, DIRTY_MEMORY_VGA));
    memory_region_reset_dirty(&r, 0, 0x1000, DIRTY_MEMORY_VGA);
    cr_assert_not(memory_region_get_dirty(&r, 0, 1, DIRTY_MEMORY_VGA));

    /* migration client via global logging */
    memory_global_dirty_log_start();
    stb_phys(&as, 0x47000, 1);
    cr_assert(memory_region_get_dirty(&r, 0x7000, 1, DIRTY_MEMORY_MIGRATION));
    memory_global_dirty_log_stop();
    memory_region_set_log(&r, false, DIRTY_MEMORY_VGA);
    stb_phys(&as, 0x48000, 1);
    cr_assert_not(memory_region_get_dirty(&r, 0x8000, 1, DIRTY_MEMORY_VGA));
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r);
}

static Dev dev;
static const MemoryRegionOps ops = { .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN };

Test(ram, map_gives_direct_ram_pointer_and_bounce_for_io)
{
    MemoryRegion r, io;
    memset(&dev, 0, sizeof(dev));
    dev.backed = true;
    memory_region_init_ram(&r, NULL, "ram", 0x2000, &error_abort);
    memory_region_init_io(&io, NULL, &ops, &dev, "io", 0x1000);
    memory_region_add_subregion(&sys, 0x10000, &r);
    memory_region_add_subregion(&sys, 0x12000, &io);
    memory_region_set_log(&r, true, DIRTY_MEMORY_VGA);
    hwaddr len = 0x4000;
    uint8_t *p = address_space_map(&as, 0x11000, &len, true);
    cr_assert_eq(p, (uint8_t *)memory_region_get_ram_ptr(&r) + 0x1000);
    cr_assert_eq(len, 0x1000, "length must stop at the end of the RAM");
    memset(p, 0xab, 16);
    address_space_unmap(&as, p, len, true, 16);
    cr_assert(memory_region_get_dirty(&r, 0x1000, 1, DIRTY_MEMORY_VGA), "unmap must mark written RAM dirty");

    for (int i = 0; i < 16; i++)
        dev.mem[i] = (uint8_t)i;
    len = 16;
    uint8_t *b = address_space_map(&as, 0x12000, &len, false);
    cr_assert_not_null(b);
    cr_assert_eq(len, 16);
    cr_assert_eq(memcmp(b, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16), 0);
    address_space_unmap(&as, b, len, false, 16);
    dev_reset(&dev);
    len = 8;
    b = address_space_map(&as, 0x12100, &len, true);
    cr_assert_not_null(b);
    memcpy(b, "\x10\x20\x30\x40\x50\x60\x70\x80", 8);
    cr_assert_eq(dev.n, 0, "written back before unmap");
    address_space_unmap(&as, b, len, true, 8);
    cr_assert_eq(dev.n, 2);
    ASSERT_ACCESS(&dev, 0, true, 0x100, 4, 0x40302010);
    ASSERT_ACCESS(&dev, 1, true, 0x104, 4, 0x80706050);
    len = 8;
    cr_assert_null(address_space_map(&as, 0x50000, &len, false));
    cr_assert_eq(len, 0);
    memory_region_del_subregion(&sys, &r);
    memory_region_del_subregion(&sys, &io);
    memory_region_destroy(&r);
    memory_region_destroy(&io);
}

Test(ram, caches_access_ram_relative_to_their_start)
{
    MemoryRegion r, io;
    memory_region_init_ram(&r, NULL, "ring", 0x1000, &error_abort);
    memory_region_init_io(&io, NULL, &ops, &dev, "io", 0x1000);
    memory_region_add_subregion(&sys, 0x20000, &r);
    memory_region_add_subregion(&sys, 0x21000, &io);
    MemoryRegionCache c = MEMORY_REGION_CACHE_INVALID;
    cr_assert_eq(address_space_cache_init(&c, &as, 0x20800, 0x2000, true), 0x800);
    stl_le_phys_cached(&c, 0x10, 0xa1b2c3d4);
    cr_assert_eq(ldl_le_phys(&as, 0x20810), 0xa1b2c3d4);
    cr_assert_eq(ldl_be_phys_cached(&c, 0x10), 0xd4c3b2a1);
    cr_assert_eq(lduw_le_phys_cached(&c, 0x10), 0xc3d4);
    stq_be_phys_cached(&c, 0x20, 0x0102030405060708ULL);
    cr_assert_eq(ldq_le_phys_cached(&c, 0x20), 0x0807060504030201ULL);
    stb_phys_cached(&c, 0x7ff, 0xee);
    cr_assert_eq(ldub_phys_cached(&c, 0x7ff), 0xee);
    MemTxResult res;
    address_space_ldl_le_cached(&c, 0x7fe, ATTR, &res);
    cr_assert_eq(res, MEMTX_DECODE_ERROR, "access beyond the cache must fail");
    uint8_t buf[4] = { 1, 2, 3, 4 }, out[4];
    address_space_write_cached(&c, 0x100, buf, 4);
    address_space_read_cached(&c, 0x100, out, 4);
    cr_assert_eq(memcmp(out, buf, 4), 0);
    memory_region_set_log(&r, true, DIRTY_MEMORY_VGA);
    memory_region_reset_dirty(&r, 0, 0x1000, DIRTY_MEMORY_VGA);
    address_space_cache_invalidate(&c, 0x0, 4);
    cr_assert(memory_region_get_dirty(&r, 0x800, 1, DIRTY_MEMORY_VGA));
    address_space_cache_destroy(&c);
    cr_assert_null(c.as);
    cr_assert_lt(address_space_cache_init(&c, &as, 0x21000, 16, false), 0, "I/O cannot be cached");
    cr_assert_lt(address_space_cache_init(&c, &as, 0x90000, 16, false), 0);
    memory_region_del_subregion(&sys, &r);
    memory_region_del_subregion(&sys, &io);
    memory_region_destroy(&r);
    memory_region_destroy(&io);
}

static uint64_t efd_count(EventNotifier *e)
{
    uint64_t v = 0;
    if (read(event_notifier_get_fd(e), &v, sizeof(v)) != sizeof(v))
        return 0;
    return v;
}

Test(ram, ioeventfd_signals_instead_of_write)
{
    MemoryRegion io;
    EventNotifier any, match;
    memset(&dev, 0, sizeof(dev));
    cr_assert_eq(event_notifier_init(&any, 0), 0);
    cr_assert_eq(event_notifier_init(&match, 0), 0);
    memory_region_init_io(&io, NULL, &ops, &dev, "doorbell", 0x100);
    memory_region_add_subregion(&sys, 0x30000, &io);
    memory_region_add_eventfd(&io, 0x10, 4, false, 0, &any);
    memory_region_add_eventfd(&io, 0x20, 4, true, 0x77, &match);
    stl_le_phys(&as, 0x30010, 5);
    stl_le_phys(&as, 0x30010, 6);
    cr_assert_eq(dev.n, 0, "write reached the device despite the eventfd");
    cr_assert_eq(efd_count(&any), 2);
    stl_le_phys(&as, 0x30020, 0x76);
    cr_assert_eq(dev.n, 1, "non-matching data must go to the device");
    stl_le_phys(&as, 0x30020, 0x77);
    cr_assert_eq(dev.n, 1);
    cr_assert_eq(efd_count(&match), 1);
    stw_le_phys(&as, 0x30010, 1);
    cr_assert_eq(dev.n, 2, "size mismatch must go to the device");
    cr_assert_eq(memory_region_dispatch_write(&io, 0x10, 9, 4, ATTR), MEMTX_OK);
    cr_assert(event_notifier_test_and_clear(&any));
    cr_assert_not(event_notifier_test_and_clear(&any));
    memory_region_del_eventfd(&io, 0x10, 4, false, 0, &any);
    stl_le_phys(&as, 0x30010, 5);
    cr_assert_eq(dev.n, 3);
    memory_region_del_eventfd(&io, 0x20, 4, true, 0x77, &match);
    memory_region_del_subregion(&sys, &io);
    memory_region_destroy(&io);
    event_notifier_cleanup(&any);
    event_notifier_cleanup(&match);
    event_notifier_cleanup(&match);
}

Test(ram, event_notifier_basics)
{
    EventNotifier e;
    cr_assert_eq(event_notifier_init(&e, 1), 0);
    cr_assert(event_notifier_test_and_clear(&e));
    cr_assert_not(event_notifier_test_and_clear(&e));
    cr_assert_eq(event_notifier_set(&e), 0);
    cr_assert_eq(event_notifier_set(&e), 0);
    cr_assert_eq(efd_count(&e), 2);
    event_notifier_cleanup(&e);
    cr_assert_eq(event_notifier_get_fd(&e), -1);
}

Test(ram, directory_fd_is_rejected)
{
    int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    MemoryRegion r;
    Error *err = NULL;
    memory_region_init_ram_from_fd(&r, NULL, "dir", 0x1000, true, fd, &err);
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(error_get_pretty(err), "not a mappable file"), "%s", error_get_pretty(err));
    error_free(err);
    close(fd);
}

Test(ram, ram_ptr_uses_caller_memory)
{
    static uint8_t mem[0x2000];
    MemoryRegion r;
    memory_region_init_ram_ptr(&r, NULL, "ptr", sizeof(mem), mem);
    cr_assert_eq(memory_region_get_ram_ptr(&r), mem);
    cr_assert_eq(memory_region_get_fd(&r), -1);
    ram_addr_t off;
    cr_assert_eq(memory_region_from_host(mem + 5, &off), &r);
    cr_assert_eq(off, 5);
    memory_region_add_subregion(&sys, 0x7000, &r);
    stl_le_phys(&as, 0x7100, 0x01020304);
    cr_assert_eq(mem[0x100], 4);
    memory_region_del_subregion(&sys, &r);
    memory_region_destroy(&r);
    cr_assert_eq(mem[0x100], 4, "caller memory must survive destroy");
}

Test(ram, cache_follows_map_changes)
{
    MemoryRegion a, b;
    memory_region_init_ram(&a, NULL, "a", 0x1000, &error_abort);
    memory_region_init_ram(&b, NULL, "b", 0x1000, &error_abort);
    memset(memory_region_get_ram_ptr(&a), 0xaa, 0x1000);
    memset(memory_region_get_ram_ptr(&b), 0xbb, 0x1000);
    memory_region_add_subregion(&sys, 0x9000, &a);
    MemoryRegionCache c;
    cr_assert_eq(address_space_cache_init(&c, &as, 0x9000, 0x100, false), 0x100);
    cr_assert_eq(ldub_phys_cached(&c, 0), 0xaa);
    memory_region_add_subregion_overlap(&sys, 0x9000, &b, 1);
    cr_assert_eq(ldub_phys_cached(&c, 0), 0xbb);
    address_space_cache_destroy(&c);
    memory_region_del_subregion(&sys, &a);
    memory_region_del_subregion(&sys, &b);
    memory_region_destroy(&a);
    memory_region_destroy(&b);
}

/* ---- a second process gets the RAM fd over a UNIX socket, as a device process does ---- */

#include <sys/socket.h>
#include <sys/wait.h>

static void send_fd(int sock, int fd)
{
    char byte = 'F';
    struct iovec iov = { &byte, 1 };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    cr_assert_eq(sendmsg(sock, &msg, 0), 1);
}

static int recv_fd(int sock)
{
    char byte;
    struct iovec iov = { &byte, 1 };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
    if (recvmsg(sock, &msg, 0) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    int fd = -1;
    if (c && c->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/* Child: map the received fd as RAM at 0x1000 of its own address space (shared or private), write a marker,
 * report what it reads back at 0x1000+0x10 (written by the parent), then exit. */
static int device_process(int sock, bool share)
{
    int fd = recv_fd(sock);
    if (fd < 0)
        return 10;
    MemoryRegion root, ram;
    AddressSpace das;
    Error *err = NULL;
    memory_region_init(&root, NULL, "device-view", UINT64_MAX);
    memory_region_init_ram_from_fd(&ram, NULL, "guest-ram", 0x4000, share, fd, &err);
    if (err)
        return 11;
    memory_region_add_subregion(&root, 0x1000, &ram);
    address_space_init(&das, &root, "dma");
    stl_le_phys(&das, 0x1000 + 0x100, 0xd00dfeed); /* DMA write */
    uint32_t seen = ldl_le_phys(&das, 0x1000 + 0x10);
    if (write(sock, &seen, sizeof(seen)) != sizeof(seen))
        return 12;
    address_space_destroy(&das);
    memory_region_del_subregion(&root, &ram);
    memory_region_destroy(&ram);
    memory_region_destroy(&root);
    return 0;
}

static void run_device(bool share, uint32_t *child_saw, uint32_t *parent_sees)
{
    MemoryRegion ram;
    memory_region_init_ram(&ram, NULL, "guest-ram", 0x4000, &error_abort);
    memory_region_add_subregion(&sys, 0x80000000, &ram);
    stl_le_phys(&as, 0x80000010, 0x600dcafe);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        _exit(device_process(sv[1], share));
    }
    close(sv[1]);
    send_fd(sv[0], memory_region_get_fd(&ram));
    cr_assert_eq(read(sv[0], child_saw, sizeof(*child_saw)), (ssize_t)sizeof(*child_saw));
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "device process status 0x%x", status);
    close(sv[0]);
    *parent_sees = ldl_le_phys(&as, 0x80000100);
    memory_region_del_subregion(&sys, &ram);
    memory_region_destroy(&ram);
}

Test(ram, device_process_shares_guest_ram_through_the_fd)
{
    uint32_t child_saw = 0, parent_sees = 0;
    run_device(true, &child_saw, &parent_sees);
    cr_assert_eq(child_saw, 0x600dcafe, "the device did not see the hub's write");
    cr_assert_eq(parent_sees, 0xd00dfeed, "the hub did not see the device's DMA write");
}

Test(ram, device_process_private_mapping_keeps_writes_private)
{
    uint32_t child_saw = 0, parent_sees = 1;
    run_device(false, &child_saw, &parent_sees);
    cr_assert_eq(child_saw, 0x600dcafe);
    cr_assert_eq(parent_sees, 0, "a MAP_PRIVATE write reached the shared RAM");
}
