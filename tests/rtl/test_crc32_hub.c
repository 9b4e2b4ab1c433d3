/*
 * The two CRC-32 device programs, plexus-rtl-crc32 (Verilog under Verilator) and plexus-crc32-model (C), through
 * the hub's real device layer: an address space with RAM at 0x80000000, the device spawned by hub_devmgr_add,
 * guest accesses with address_space_*, interrupts through the set_irq callback, virtual time moved with
 * vclock_advance. Every test runs against both programs and expects the same behaviour.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dev/devmgr.h"

#define RAM_BASE 0x80000000ULL
#define RAM_SIZE (1ULL << 20)
#define CRC_BASE 0x10020000ULL
#define CRC_IRQ 13

#define R_ID 0x00
#define R_CTRL 0x04
#define R_STATUS 0x08
#define R_SRC_LO 0x0c
#define R_SRC_HI 0x10
#define R_LEN 0x14
#define R_SEED 0x18
#define R_RESULT 0x1c
#define ST_BUSY 1u
#define ST_DONE 2u
#define ST_ERROR 4u

static const char *const programs[] = { "plexus-rtl-crc32", "plexus-crc32-model" };

static struct rig {
    MemoryRegion sysmem, ram;
    AddressSpace as;
    vclock clock;
    hub_devmgr *m;
    hub_ram_block block;
    int level;
    unsigned raised;
    uint64_t raised_at;     /* virtual time the IRQ was first seen high */
    char log[16384];
    size_t log_len;
} R;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void on_irq(void *o, unsigned irq, int level)
{
    cr_assert_eq(irq, CRC_IRQ, "irq %u", irq);
    if (level && !R.level) {
        R.raised++;
        R.raised_at = vclock_now(&R.clock);
    }
    R.level = level;
}

static void on_log(void *o, const char *device, int level, const char *msg)
{
    int n = snprintf(R.log + R.log_len, sizeof(R.log) - R.log_len, "%s: %s\n", device ? device : "-", msg);
    if (n > 0 && (size_t)n < sizeof(R.log) - R.log_len)
        R.log_len += (size_t)n;
}

static void rig_down(void)
{
    if (!R.m)
        return;
    hub_devmgr_free(R.m);
    R.m = NULL;
    address_space_destroy(&R.as);
    memory_region_del_subregion(&R.sysmem, &R.ram);
    memory_region_destroy(&R.ram);
    memory_region_destroy(&R.sysmem);
}

static hub_device *dev;

static void rig_up(const char *program, const hub_prop *props, size_t n_props)
{
    Error *err = NULL;
    const char *build = getenv("PLEXUS_BUILD_DIR");
    char path[4096];

    memset(&R, 0, sizeof(R));
    cr_assert_not_null(build, "PLEXUS_BUILD_DIR is not set");
    memory_region_init(&R.sysmem, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&R.ram, NULL, "ram", RAM_SIZE, &err);
    cr_assert_null(err, "ram: %s", err ? error_get_pretty(err) : "");
    memory_region_add_subregion(&R.sysmem, RAM_BASE, &R.ram);
    address_space_init(&R.as, &R.sysmem, "memory");
    vclock_init(&R.clock);
    R.block = (hub_ram_block){ .name = "ram", .base = RAM_BASE, .size = RAM_SIZE,
                               .fd = memory_region_get_fd(&R.ram) };
    hub_devmgr_env env = {
        .sysmem = &R.sysmem, .as = &R.as, .clock = &R.clock, .ram = &R.block, .n_ram = 1,
        .set_irq = on_irq, .log = on_log,
    };
    R.m = hub_devmgr_new(&env, &err);
    cr_assert_not_null(R.m, "hub_devmgr_new: %s", err ? error_get_pretty(err) : "");

    static const hub_region_map reg = { .region = "regs", .base = CRC_BASE };
    static const hub_irq_map irq = { .line = 0, .irq = CRC_IRQ };
    snprintf(path, sizeof(path), "%s/bin/%s", build, program);
    /* The VCD file it writes is the one path its jail lets it write. */
    const char *writes[1];
    size_t n_writes = 0;
    for (size_t i = 0; i < n_props && n_writes < 1; i++)
        if (!strcmp(props[i].key, "vcd"))
            writes[n_writes++] = props[i].value;
    hub_device_config cfg = {
        .name = "crc0", .program = path, .props = props, .n_props = n_props,
        .regions = &reg, .n_regions = 1, .irqs = &irq, .n_irqs = 1,
        .sandbox_write = writes, .n_sandbox_write = n_writes,
    };
    dev = hub_devmgr_add(R.m, &cfg, &err);
    cr_assert_not_null(dev, "%s: %s\nlog:\n%s", program, err ? error_get_pretty(err) : "", R.log);
}

static uint32_t rd(uint64_t reg)
{
    MemTxResult r;
    uint32_t v = address_space_ldl_le(&R.as, CRC_BASE + reg, MEMTXATTRS_UNSPECIFIED, &r);
    cr_assert_eq(r, MEMTX_OK, "read 0x%llx failed", (unsigned long long)reg);
    return v;
}

static void wr(uint64_t reg, uint32_t v)
{
    MemTxResult r;
    address_space_stl_le(&R.as, CRC_BASE + reg, v, MEMTXATTRS_UNSPECIFIED, &r);
    cr_assert_eq(r, MEMTX_OK, "write 0x%llx failed", (unsigned long long)reg);
}

static void put(uint64_t addr, const void *buf, size_t len)
{
    MemTxResult r = address_space_write(&R.as, addr, MEMTXATTRS_UNSPECIFIED, buf, len);
    cr_assert_eq(r, MEMTX_OK);
}

static void start(uint64_t src, uint32_t len, uint32_t seed, uint32_t ctrl)
{
    wr(R_SRC_LO, (uint32_t)src);
    wr(R_SRC_HI, (uint32_t)(src >> 32));
    wr(R_LEN, len);
    wr(R_SEED, seed);
    wr(R_CTRL, ctrl | 1);
}

static uint32_t ref_crc(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* Poll STATUS like firmware, moving virtual time by @step_ns between reads; returns the final STATUS. */
static uint32_t poll_idle(uint64_t step_ns, unsigned *busy_reads)
{
    uint32_t st;
    unsigned n = 0;
    while ((st = rd(R_STATUS)) & ST_BUSY) {
        cr_assert_lt(n, 1000000u, "still busy\nlog:\n%s", R.log);
        n++;
        vclock_advance(&R.clock, vclock_now(&R.clock) + step_ns);
        hub_devmgr_poll(R.m, 0);
    }
    if (busy_reads)
        *busy_reads = n;
    return st;
}

TestSuite(crc32_hub, .fini = rig_down);

Test(crc32_hub, polled_crc_of_check_string_and_buffers)
{
    for (size_t i = 0; i < 2; i++) {
        rig_up(programs[i], NULL, 0);
        cr_assert_eq(rd(R_ID), 0x43523332u, "%s", programs[i]);
        put(RAM_BASE + 0x100, "123456789", 9);
        start(RAM_BASE + 0x100, 9, 0, 0);
        unsigned busy = 0;
        cr_assert_eq(poll_idle(10, &busy), ST_DONE, "%s\nlog:\n%s", programs[i], R.log);
        cr_assert_gt(busy, 0u, "%s: the operation takes virtual time", programs[i]);
        cr_assert_eq(rd(R_RESULT), 0xCBF43926u, "%s", programs[i]);
        wr(R_STATUS, ST_DONE);
        cr_assert_eq(rd(R_STATUS), 0u);

        static uint8_t buf[5000];
        for (size_t k = 0; k < sizeof(buf); k++)
            buf[k] = (uint8_t)(k * 131 + 7);
        put(RAM_BASE + 0x1003, buf, sizeof(buf));
        start(RAM_BASE + 0x1003, sizeof(buf), 0x1234u, 0);
        cr_assert_eq(poll_idle(1000, NULL), ST_DONE, "%s", programs[i]);
        cr_assert_eq(rd(R_RESULT), ref_crc(0x1234u, buf, sizeof(buf)), "%s", programs[i]);
        rig_down();
    }
}

/*
 * Nobody touches the device while it works: it must still finish as virtual time passes (device timers), and
 * not before the operation's length in virtual time: 9 bytes at offset 0 = 3 words * (1 + 2) + 9 = 18 cycles at
 * 100 MHz = 180 ns after START.
 */
Test(crc32_hub, completes_by_interrupt_in_virtual_time)
{
    static const hub_prop props[] = { { "clock_hz", "100000000" }, { "dma_latency", "2" } };
    for (size_t i = 0; i < 2; i++) {
        rig_up(programs[i], props, 2);
        put(RAM_BASE, "123456789", 9);
        vclock_advance(&R.clock, 5000);
        start(RAM_BASE, 9, 0, 2);
        uint64_t started = vclock_now(&R.clock);
        long long deadline = now_ms() + 10000;
        while (!R.level) {
            cr_assert_lt(now_ms(), deadline, "%s: no interrupt\nlog:\n%s", programs[i], R.log);
            hub_devmgr_poll(R.m, 1);
            vclock_advance(&R.clock, vclock_now(&R.clock) + 20);
        }
        cr_assert_geq(R.raised_at - started, 180u, "%s: IRQ at +%llu ns, before the work could be done",
                      programs[i], (unsigned long long)(R.raised_at - started));
        cr_assert_eq(rd(R_STATUS), ST_DONE, "%s", programs[i]);
        cr_assert_eq(rd(R_RESULT), 0xCBF43926u, "%s", programs[i]);
        wr(R_STATUS, ST_DONE);
        long long d2 = now_ms() + 5000;
        while (R.level && now_ms() < d2)
            hub_devmgr_poll(R.m, 1);
        cr_assert_eq(R.level, 0, "%s: W1C of DONE drops the line", programs[i]);
        cr_assert_eq(R.raised, 1u);
        rig_down();
    }
}

Test(crc32_hub, dma_outside_ram_reports_error)
{
    for (size_t i = 0; i < 2; i++) {
        rig_up(programs[i], NULL, 0);
        start(0x1000, 64, 0, 0);
        cr_assert_eq(poll_idle(100, NULL), ST_ERROR, "%s\nlog:\n%s", programs[i], R.log);
        cr_assert_eq(rd(R_RESULT), 0u, "%s: RESULT unchanged", programs[i]);
        cr_assert(strstr(R.log, "DMA read"), "%s: the failed DMA is logged\nlog:\n%s", programs[i], R.log);
        rig_down();
    }
}

Test(crc32_hub, unmapped_register_is_logged_as_guest_error)
{
    for (size_t i = 0; i < 2; i++) {
        rig_up(programs[i], NULL, 0);
        cr_assert_eq(rd(0x40), 0u, "%s", programs[i]);
        cr_assert_eq(rd(R_ID), 0x43523332u);      /* a synchronous read after the log record was sent */
        long long deadline = now_ms() + 5000;
        while (!strstr(R.log, "offset 0x40") && now_ms() < deadline)
            hub_devmgr_poll(R.m, 10);
        cr_assert(strstr(R.log, "offset 0x40"), "%s\nlog:\n%s", programs[i], R.log);
        rig_down();
    }
}

Test(crc32_hub, reset_abandons_the_operation_and_drops_the_irq)
{
    for (size_t i = 0; i < 2; i++) {
        rig_up(programs[i], NULL, 0);
        put(RAM_BASE, "123456789", 9);
        start(RAM_BASE, 9, 0, 2);
        cr_assert_eq(poll_idle(10, NULL), ST_DONE, "%s", programs[i]);
        long long deadline = now_ms() + 5000;
        while (!R.level && now_ms() < deadline)
            hub_devmgr_poll(R.m, 1);
        cr_assert_eq(R.level, 1, "%s: IRQ up before the reset", programs[i]);
        wr(R_LEN, 4096);
        start(RAM_BASE, 4096, 0, 2);                  /* busy when the reset comes */
        cr_assert_eq(rd(R_STATUS) & ST_BUSY, ST_BUSY, "%s", programs[i]);
        cr_assert_eq(hub_device_reset(dev), 0);
        cr_assert_eq(rd(R_STATUS), 0u, "%s: idle after reset", programs[i]);
        cr_assert_eq(rd(R_CTRL), 0u, "%s", programs[i]);
        cr_assert_eq(rd(R_LEN), 0u, "%s", programs[i]);
        cr_assert_eq(rd(R_RESULT), 0u, "%s", programs[i]);
        deadline = now_ms() + 5000;
        while (R.level && now_ms() < deadline)
            hub_devmgr_poll(R.m, 1);
        cr_assert_eq(R.level, 0, "%s: reset drops the IRQ", programs[i]);
        vclock_advance(&R.clock, vclock_now(&R.clock) + 1000000);
        hub_devmgr_poll(R.m, 10);
        cr_assert_eq(rd(R_STATUS), 0u, "%s: the abandoned operation never completes", programs[i]);
        /* and the device works again */
        start(RAM_BASE, 9, 0, 0);
        cr_assert_eq(poll_idle(10, NULL), ST_DONE, "%s", programs[i]);
        cr_assert_eq(rd(R_RESULT), 0xCBF43926u, "%s", programs[i]);
        rig_down();
    }
}

Test(crc32_hub, rtl_writes_a_vcd_in_virtual_time)
{
    char vcd[] = "/tmp/plexus-rtl-vcd-XXXXXX";
    int fd = mkstemp(vcd);
    cr_assert_geq(fd, 0);
    close(fd);
    hub_prop props[] = { { "vcd", vcd }, { "clock_hz", "100000000" } };
    rig_up(programs[0], props, 2);
    vclock_advance(&R.clock, 1000000);       /* 1 ms: cycle 100000 */
    put(RAM_BASE, "123456789", 9);
    start(RAM_BASE, 9, 0, 0);
    cr_assert_eq(poll_idle(10, NULL), ST_DONE);
    rig_down();                              /* the device closes the VCD on shutdown */

    FILE *f = fopen(vcd, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    fclose(f);
    unlink(vcd);
    cr_assert(strstr(text, " dma_req "), "no dma_req in the VCD");
    /* The first access after 1 ms of idle time: its edges are at 1 ms = 1e9 ps (+ reset cycles) and later. */
    cr_assert(strstr(text, "\n#10000"), "no time stamps near 1 ms (1e9 ps):\n%.2000s", text);
}

Test(crc32_hub, rtl_rejects_bad_properties)
{
    static const hub_prop props[] = { { "clock_hz", "0" } };
    Error *err = NULL;
    const char *build = getenv("PLEXUS_BUILD_DIR");
    char path[4096];

    memset(&R, 0, sizeof(R));
    memory_region_init(&R.sysmem, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&R.ram, NULL, "ram", RAM_SIZE, &err);
    memory_region_add_subregion(&R.sysmem, RAM_BASE, &R.ram);
    address_space_init(&R.as, &R.sysmem, "memory");
    vclock_init(&R.clock);
    hub_devmgr_env env = { .sysmem = &R.sysmem, .as = &R.as, .clock = &R.clock, .set_irq = on_irq, .log = on_log };
    R.m = hub_devmgr_new(&env, &err);
    cr_assert_not_null(R.m);
    static const hub_region_map reg = { .region = "regs", .base = CRC_BASE };
    snprintf(path, sizeof(path), "%s/bin/%s", build, programs[0]);
    hub_device_config cfg = { .name = "crc0", .program = path, .props = props, .n_props = 1,
                              .regions = &reg, .n_regions = 1 };
    cr_assert_null(hub_devmgr_add(R.m, &cfg, &err));
    cr_assert_not_null(err);
    const char *msg = error_get_pretty(err);
    cr_assert(strstr(msg, "clock_hz") || strstr(R.log, "clock_hz"), "error: %s\nlog:\n%s", msg, R.log);
    error_free(err);
    rig_down();
}
