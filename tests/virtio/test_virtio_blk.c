/*
 * devices/virtio-blk through the hub, the test as the driver: reads and writes reach the image, flush, discard,
 * read-only disks, requests past the end, and the device killed (SIGKILL) with writes in flight: at that moment
 * every write it had acknowledged is in the image, the restarted process finishes the ones in flight, each
 * request comes back exactly once, and the image ends up with every write.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "../common/hub_test.h"
#include "../common/vdriver.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM_BASE 0x80000000u
#define RAM_SIZE (4u << 20)
#define DEV_BASE 0x10001000u
#define IRQ 1u
#define QAREA (RAM_BASE + 0x10000)
#define HDR (RAM_BASE + 0x20000)         /* 16 bytes per slot */
#define STATUS (RAM_BASE + 0x21000)      /* 1 byte per slot */
#define DATA (RAM_BASE + 0x100000)       /* 4 KiB per slot */
#define SLOTS 16
#define QSIZE 64
#define DISK_SECTORS 2048u               /* 1 MiB */

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11

static test_rig rig;
static char logbuf[32768];
static vdrv drv;
static char image[64];

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static void setup(void)
{
    test_rig_init(&rig, RAM_BASE, RAM_SIZE, (hub_devmgr_env){ .log = on_log });
    logbuf[0] = 0;
    drv = (vdrv){ .as = &rig.as, .mgr = rig.mgr, .ram = memory_region_get_ram_ptr(&rig.ram),
                  .ram_base = RAM_BASE, .base = DEV_BASE };
    strcpy(image, "/tmp/test-virtio-blk.XXXXXX");
    int fd = mkstemp(image);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, DISK_SECTORS * 512), 0);
    close(fd);
}

static void teardown(void)
{
    test_rig_fini(&rig);
    unlink(image);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown, .timeout = 120);

/* Add a virtio-blk device @name at @base with @files (NULL: the image as "disk"); NULL with *@err on failure. */
static hub_device *try_blk(const char *name, uint64_t base, const hub_file *files, size_t n_files,
                           unsigned max_restarts, Error **err)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/plexus-virtio-blk");
    hub_region_map rm = { "regs", base };
    hub_irq_map im = { 0, IRQ };
    hub_device_config c = {
        .name = name, .program = prog, .regions = &rm, .n_regions = 1, .irqs = &im, .n_irqs = 1,
        .files = files, .n_files = n_files, .timeout_ms = 5000,
        .max_restarts = max_restarts, .restart_backoff_ms = 10,
    };
    return hub_devmgr_add(rig.mgr, &c, err);
}

static hub_device *add_blk(bool readonly, unsigned max_restarts)
{
    hub_file disk = { "disk", image, readonly };
    Error *err = NULL;
    hub_device *d = try_blk("vda", DEV_BASE, &disk, 1, max_restarts, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "?");
    return d;
}

static vdq q;

static void start(void)
{
    uint64_t f = vd_device_features(&drv);
    cr_assert(f & VD_FEAT_VERSION_1);
    cr_assert_eq(vd_negotiate(&drv, f), 1 | 2 | 8);
    vd_queue_at(&drv, &q, 0, QSIZE, QAREA, true);
    vd_driver_ok(&drv);
}

/* Slot @i's request: header, @len data bytes at DATA + i * 4 KiB (device-writable for reads), status byte. */
static void submit(unsigned i, uint32_t type, uint64_t sector, uint32_t len)
{
    uint8_t *h = vd_host(&drv, HDR + 16 * i);
    uint64_t zero = 0;
    memcpy(h, &type, 4);
    memcpy(h + 4, &zero, 4);
    memcpy(h + 8, &sector, 8);
    vd_host(&drv, STATUS + i)[0] = 0xff;
    unsigned head = 3 * i;
    bool dev_writes = type == T_IN || type == T_GET_ID;
    if (len) {
        vd_desc(&drv, q.desc, head, HDR + 16 * i, 16, VD_F_NEXT, (uint16_t)(head + 1));
        vd_desc(&drv, q.desc, head + 1, DATA + 4096 * i, len, VD_F_NEXT | (dev_writes ? VD_F_WRITE : 0),
                (uint16_t)(head + 2));
    } else {
        vd_desc(&drv, q.desc, head, HDR + 16 * i, 16, VD_F_NEXT, (uint16_t)(head + 2));
    }
    vd_desc(&drv, q.desc, head + 2, STATUS + i, 1, VD_F_WRITE, 0);
    vd_avail(&drv, &q, (uint16_t)head);
}

/* One request in slot 0, waited for: its status byte. */
static uint8_t request(uint32_t type, uint64_t sector, uint32_t len)
{
    uint16_t want = (uint16_t)(vd_used_idx(&drv, &q) + 1);
    submit(0, type, sector, len);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, want, 5000), "no completion; log: %s", logbuf);
    return vd_host(&drv, STATUS)[0];
}

static void pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

static void image_read(uint64_t off, void *buf, size_t n)
{
    int fd = open(image, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
    close(fd);
}

Test(virtio_blk, capacity_reads_writes_flush_and_id)
{
    add_blk(false, 0);
    cr_assert_eq(vd_rd(&drv, VR_DEVICE_ID), 2);
    cr_assert_eq(vd_rd(&drv, VR_CONFIG), DISK_SECTORS, "capacity in 512-byte sectors");
    cr_assert_eq(vd_rd(&drv, VR_CONFIG + 20), 512, "blk_size");
    start();
    pattern(vd_host(&drv, DATA), 4096, 5);
    cr_assert_eq(request(T_OUT, 8, 4096), 0);
    uint8_t want[4096], got[4096];
    pattern(want, sizeof(want), 5);
    image_read(8 * 512, got, sizeof(got));
    cr_assert_arr_eq(got, want, sizeof(got), "the write reached the image");
    memset(vd_host(&drv, DATA), 0, 4096);
    cr_assert_eq(request(T_IN, 8, 4096), 0);
    cr_assert_arr_eq(vd_host(&drv, DATA), want, 4096, "and reads back");
    uint32_t id, len;
    vd_used_elem(&drv, &q, (uint16_t)(vd_used_idx(&drv, &q) - 1), &id, &len);
    cr_assert_eq(len, 4097, "a read's used length: data and status");
    cr_assert_eq(request(T_FLUSH, 0, 0), 0);
    cr_assert_eq(request(T_GET_ID, 0, 20), 0);
    cr_assert_str_eq((char *)vd_host(&drv, DATA), "plexus-virtio-blk");
    cr_assert_eq(request(T_IN, DISK_SECTORS - 4, 4096), 1, "past the end: VIRTIO_BLK_S_IOERR");
    cr_assert_eq(request(99, 0, 0), 2, "an unknown request: VIRTIO_BLK_S_UNSUPP");
}

Test(virtio_blk, discard_zeroes_the_range)
{
    add_blk(false, 0);
    start();
    pattern(vd_host(&drv, DATA), 4096, 9);
    cr_assert_eq(request(T_OUT, 16, 4096), 0);
    struct { uint64_t sector; uint32_t n, flags; } r = { 16, 8, 0 };
    memcpy(vd_host(&drv, DATA), &r, sizeof(r));
    cr_assert_eq(request(T_DISCARD, 0, sizeof(r)), 0);
    uint8_t got[4096], zero[4096] = { 0 };
    image_read(16 * 512, got, sizeof(got));
    cr_assert_arr_eq(got, zero, sizeof(got), "a punched hole reads as zeros");
}

Test(virtio_blk, a_read_only_disk_refuses_writes)
{
    add_blk(true, 0);
    cr_assert(vd_device_features(&drv) & (1ull << 5), "VIRTIO_BLK_F_RO");
    start();
    memset(vd_host(&drv, DATA), 0xab, 4096);
    cr_assert_eq(request(T_OUT, 0, 4096), 1, "VIRTIO_BLK_S_IOERR");
    uint8_t got[4096], zero[4096] = { 0 };
    image_read(0, got, sizeof(got));
    cr_assert_arr_eq(got, zero, sizeof(got));
    cr_assert_eq(request(T_IN, 0, 4096), 0, "reads work");
}

/* A notify the hub refuses because the device has died and is not yet restarted (an access without a CPU fails
 * while its device is down: docs/reliability.md "Restarts") is made again once the poll has restarted it. */
static void notify_through_restarts(hub_device *d)
{
    uint8_t b[4] = { (uint8_t)q.index };
    for (int tries = 0; tries < 2000; tries++) {
        if (address_space_write(drv.as, drv.base + VR_QUEUE_NOTIFY, MEMTXATTRS_UNSPECIFIED, b, 4) == MEMTX_OK)
            return;
        cr_assert(hub_device_failed(d), "a notify to a running device failed; log: %s", logbuf);
        hub_devmgr_poll(rig.mgr, 5);
    }
    cr_assert_fail("the device was not restarted within 2000 polls; log: %s", logbuf);
}

Test(virtio_blk, killed_with_writes_in_flight_loses_no_acknowledged_write)
{
    hub_device *d = add_blk(false, 3);
    start();
    enum { TOTAL = 600, KILL_AT = 250 };
    uint32_t version[DISK_SECTORS / 8] = { 0 };     /* 4 KiB blocks: the last version acknowledged */
    uint32_t slot_block[SLOTS], slot_version[SLOTS];
    bool busy[SLOTS] = { false };
    unsigned issued = 0, acked = 0, in_flight = 0;
    uint16_t seen = 0;
    bool killed = false;
    unsigned returned[SLOTS] = { 0 };
    while (acked < TOTAL) {
        /* fill the free slots: block = issue number mod 256, never two writes in flight to one block */
        bool any = false;
        for (unsigned i = 0; i < SLOTS && issued < TOTAL; i++) {
            if (busy[i])
                continue;
            uint32_t blk = issued % (DISK_SECTORS / 8);
            bool clash = false;
            for (unsigned k = 0; k < SLOTS; k++)
                clash |= busy[k] && slot_block[k] == blk;
            if (clash)
                break;
            slot_block[i] = blk;
            slot_version[i] = ++issued;
            pattern(vd_host(&drv, DATA + 4096 * i), 4096, slot_version[i]);
            submit(i, T_OUT, (uint64_t)blk * 8, 4096);
            busy[i] = true;
            in_flight++;
            any = true;
        }
        if (any)
            notify_through_restarts(d);
        if (!killed && acked >= KILL_AT && in_flight > 0) {
            /* the process dies with writes in flight: every write it acknowledged is in the image now */
            kill(hub_device_pid(d), SIGKILL);
            killed = true;
            for (uint32_t b = 0; b < DISK_SECTORS / 8; b++) {
                if (!version[b])
                    continue;
                uint8_t got[4096], want[4096], next[4096];
                image_read((uint64_t)b * 4096, got, sizeof(got));
                pattern(want, sizeof(want), version[b]);
                /* a write of this block still in flight may have landed already */
                bool newer = false;
                for (unsigned k = 0; k < SLOTS; k++) {
                    if (busy[k] && slot_block[k] == b) {
                        pattern(next, sizeof(next), slot_version[k]);
                        newer = !memcmp(got, next, sizeof(got));
                    }
                }
                cr_assert(newer || !memcmp(got, want, sizeof(got)), "block %u lost acknowledged version %u", b,
                          version[b]);
            }
        }
        hub_devmgr_poll(rig.mgr, 5);
        for (uint16_t now = vd_used_idx(&drv, &q); seen != now; seen++) {
            uint32_t id, len;
            vd_used_elem(&drv, &q, seen, &id, &len);
            cr_assert_eq(id % 3, 0);
            unsigned i = id / 3;
            cr_assert(i < SLOTS && busy[i], "chain %u returned though not in flight", id);
            cr_assert_eq(vd_host(&drv, STATUS + i)[0], 0, "write status");
            busy[i] = false;
            returned[i]++;
            in_flight--;
            acked++;
            version[slot_block[i]] = slot_version[i];
        }
        cr_assert(!hub_device_failed(d) || hub_device_restarts(d) < 3, "log: %s", logbuf);
    }
    cr_assert(killed);
    cr_assert_eq(hub_device_restarts(d), 1, "log: %s", logbuf);
    cr_assert_eq(in_flight, 0);
    vd_settle(&drv, 30);
    cr_assert_eq(vd_used_idx(&drv, &q), seen, "no request came back twice");
    cr_assert_eq(request(T_FLUSH, 0, 0), 0);
    for (uint32_t b = 0; b < DISK_SECTORS / 8; b++) {
        uint8_t got[4096], want[4096];
        image_read((uint64_t)b * 4096, got, sizeof(got));
        pattern(want, sizeof(want), version[b]);
        if (!version[b])
            memset(want, 0, sizeof(want));
        cr_assert_arr_eq(got, want, sizeof(got), "block %u: version %u", b, version[b]);
    }
}

Test(virtio_blk, the_image_is_locked_against_a_second_writer)
{
    add_blk(false, 0);
    hub_file disk = { "disk", image, false };
    Error *err = NULL;
    cr_assert_null(try_blk("vdb", DEV_BASE + 0x1000, &disk, 1, 0, &err));
    cr_assert(strstr(error_get_pretty(err), "device 'vdb': file 'disk'") &&
              strstr(error_get_pretty(err), "is in use by another process"), "%s", error_get_pretty(err));
    error_free(err);
}

Test(virtio_blk, a_missing_image_is_named_and_a_disk_without_one_says_what_it_needs)
{
    hub_file disk = { "disk", "/nonexistent/disk.img", false };
    Error *err = NULL;
    cr_assert_null(try_blk("vda", DEV_BASE, &disk, 1, 0, &err));
    cr_assert(strstr(error_get_pretty(err), "file 'disk': cannot open /nonexistent/disk.img"), "%s",
              error_get_pretty(err));
    error_free(err);
    err = NULL;
    cr_assert_null(try_blk("vda", DEV_BASE, NULL, 0, 0, &err));
    cr_assert(strstr(error_get_pretty(err), "device 'vda': init failed"), "%s", error_get_pretty(err));
    cr_assert(strstr(logbuf, "[vda] no disk image: give the device `files: [{name: disk, path: IMAGE}]`"), "log: %s",
              logbuf);
    error_free(err);
}

Test(virtio_blk, a_file_the_device_does_not_use_is_reported)
{
    hub_file files[] = { { "disk", image, false }, { "disc", "/dev/null", true } };
    Error *err = NULL;
    cr_assert_not_null(try_blk("vda", DEV_BASE, files, 2, 0, &err), "%s", err ? error_get_pretty(err) : "");
    cr_assert(strstr(logbuf, "[vda] the machine gives the file 'disc', which this device (plexus,virtio-blk) does "
                     "not use"), "log: %s", logbuf);
}
