/*
 * The hub's device layer against real device processes: a system memory map with RAM, the device manager,
 * devices spawned (or attached, or over tcp) and accesses through address_space_read/write.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "../common/hub_test.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <plexus/memory.h>

#include "dev/devmgr.h"
#include "plexus/protocol.h"
#include "vclock.h"

#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define RAM2_BASE 0x90000000u
#define DEV_BASE 0x10000000u
#define POSTED_BASE 0x10001000u
#define SHADOW_BASE 0x10002000u
#define BE_BASE 0x10003000u

static MemoryRegion sysmem, ram, ram2;
static AddressSpace as;
static vclock clk;
static hub_ram_block blocks[2];
static hub_devmgr *mgr;

struct irq_event { unsigned irq; int level; };
static struct irq_event irq_log[64];
static unsigned n_irq;
static char logbuf[16384];

static void on_irq(void *opaque, unsigned irq, int level)
{
    if (n_irq < 64)
        irq_log[n_irq++] = (struct irq_event){ irq, level };
}

struct written { uint64_t addr, len; };
static struct written written_log[16];
static unsigned n_written;

static void on_ram_written(void *opaque, uint64_t addr, uint64_t len)
{
    if (n_written < 16)
        written_log[n_written++] = (struct written){ addr, len };
}

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static void setup(void)
{
    Error *err = NULL;
    memory_region_init(&sysmem, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&ram, NULL, "ram", RAM_SIZE, &err);
    cr_assert_null(err);
    memory_region_init_ram(&ram2, NULL, "ram2", 0x10000, &err);
    cr_assert_null(err);
    memory_region_add_subregion(&sysmem, RAM_BASE, &ram);
    memory_region_add_subregion(&sysmem, RAM2_BASE, &ram2);
    address_space_init(&as, &sysmem, "test");
    vclock_init(&clk);
    blocks[0] = (hub_ram_block){ "ram", RAM_BASE, RAM_SIZE, memory_region_get_fd(&ram), false };
    blocks[1] = (hub_ram_block){ "ram2", RAM2_BASE, 0x10000, memory_region_get_fd(&ram2), false };
    cr_assert_geq(blocks[0].fd, 0);
    hub_devmgr_env env = {
        .sysmem = &sysmem, .as = &as, .clock = &clk, .ram = blocks, .n_ram = 2,
        .set_irq = on_irq, .log = on_log, .ram_written = on_ram_written,
    };
    mgr = hub_devmgr_new(&env, &err);
    cr_assert_not_null(mgr, "%s", err ? error_get_pretty(err) : "");
    n_irq = 0;
    n_written = 0;
    logbuf[0] = 0;
    char *runner = test_build_path("bin/plexus-device-runner");
    setenv("PLEXUS_DEVICE_RUNNER", runner, 1);
    free(runner);
}

static void teardown(void)
{
    hub_devmgr_free(mgr);
    address_space_destroy(&as);
    memory_region_del_subregion(&sysmem, &ram);
    memory_region_del_subregion(&sysmem, &ram2);
    memory_region_destroy(&ram);
    memory_region_destroy(&ram2);
    memory_region_destroy(&sysmem);
}

static const hub_region_map regdev_regions[] = {
    { "regs", DEV_BASE }, { "posted", POSTED_BASE }, { "shadow", SHADOW_BASE }, { "be", BE_BASE },
};
static const hub_irq_map regdev_irqs[] = { { 0, 5 }, { 1, 6 } };

static hub_device_config regdev_config(const char *name)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/hubdev-regdev");
    return (hub_device_config){
        .name = name, .program = prog, .regions = regdev_regions, .n_regions = 4,
        .irqs = regdev_irqs, .n_irqs = 2, .timeout_ms = 5000 };
}

static hub_device *add(const hub_device_config *cfg)
{
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(mgr, cfg, &err);
    cr_assert_not_null(d, "add %s: %s", cfg->name, err ? error_get_pretty(err) : "?");
    return d;
}

static uint32_t rd32(hwaddr a, MemTxResult *res)
{
    uint8_t b[4];
    MemTxResult r = address_space_read(&as, a, MEMTXATTRS_UNSPECIFIED, b, 4);
    if (res)
        *res = r;
    else
        cr_assert_eq(r, MEMTX_OK, "read 0x%lx failed: %u\nlog:\n%.3000s", (unsigned long)a, r, logbuf);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr32(hwaddr a, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    cr_assert_eq(address_space_write(&as, a, MEMTXATTRS_UNSPECIFIED, b, 4), MEMTX_OK, "write 0x%lx", (unsigned long)a);
}

TestSuite(hub_dev, .init = setup, .fini = teardown, .timeout = 60);

Test(hub_dev, register_write_then_read)
{
    hub_device_config c = regdev_config("regdev");
    hub_device *d = add(&c);
    cr_assert_str_eq(hub_device_model(d), "plexus,test-regdev");
    cr_assert_eq(hub_device_region_size(d, "regs"), 0x100);
    cr_assert_eq(hub_device_region_size(d, "nope"), 0);
    cr_assert_eq(hub_device_n_regions(d), 4);
    const char *rn;
    uint64_t base, size;
    cr_assert_eq(hub_device_region_info(d, 2, &rn, &base, &size), 0);
    cr_assert_str_eq(rn, "shadow");
    cr_assert_eq(base, SHADOW_BASE);
    cr_assert_eq(size, 0x100);
    cr_assert_eq(hub_device_region_info(d, 4, &rn, &base, &size), -ENOENT);
    wr32(DEV_BASE + 0x10, 0xdeadbeef);
    wr32(DEV_BASE + 0x14, 0x01020304);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 0xdeadbeef);
    cr_assert_eq(rd32(DEV_BASE + 0x14, NULL), 0x01020304);
    cr_assert_eq(rd32(DEV_BASE + 0xb4, NULL), 0x1234, "default property value");
    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_eq(st.sync_writes, 2);
    cr_assert_geq(st.sync_reads, 3);
}

Test(hub_dev, property_reaches_device)
{
    hub_device_config c = regdev_config("regdev");
    hub_prop p = { "ident", "0x77" };
    c.props = &p;
    c.n_props = 1;
    add(&c);
    cr_assert_eq(rd32(DEV_BASE + 0xb4, NULL), 0x77);
}

Test(hub_dev, unknown_property_is_an_error_naming_device)
{
    hub_device_config c = regdev_config("regdev");
    hub_prop p = { "colour", "blue" };
    c.props = &p;
    c.n_props = 1;
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert_not_null(err);
    cr_assert(strstr(error_get_pretty(err), "regdev") && strstr(error_get_pretty(err), "colour"), "%s",
              error_get_pretty(err));
    error_free(err);
}

Test(hub_dev, unplaced_region_is_an_error)
{
    hub_device_config c = regdev_config("regdev");
    c.n_regions = 3;    /* "be" not placed */
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert(strstr(error_get_pretty(err), "'be'"), "%s", error_get_pretty(err));
    error_free(err);
}

Test(hub_dev, split_and_widen_follow_impl)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    /* An 8-byte write becomes two 4-byte callbacks. */
    uint8_t b8[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    cr_assert_eq(address_space_write(&as, DEV_BASE + 0x20, MEMTXATTRS_UNSPECIFIED, b8, 8), MEMTX_OK);
    cr_assert_eq(rd32(DEV_BASE + 0x80, NULL), 2, "two write callbacks");
    cr_assert_eq(rd32(DEV_BASE + 0x84, NULL), 4);
    cr_assert_eq(rd32(DEV_BASE + 0x20, NULL), 0x04030201);
    cr_assert_eq(rd32(DEV_BASE + 0x24, NULL), 0x08070605);
    /* An 8-byte read is two callbacks combined. */
    uint8_t r8[8];
    cr_assert_eq(address_space_read(&as, DEV_BASE + 0x20, MEMTXATTRS_UNSPECIFIED, r8, 8), MEMTX_OK);
    cr_assert_arr_eq(r8, b8, 8);
    /* A 1-byte read is widened to the 4-byte register and the byte extracted. */
    uint8_t one;
    cr_assert_eq(address_space_read(&as, DEV_BASE + 0x22, MEMTXATTRS_UNSPECIFIED, &one, 1), MEMTX_OK);
    cr_assert_eq(one, 3);
    /* A 1-byte write reaches the device as a 4-byte callback. */
    uint8_t v = 0xaa;
    cr_assert_eq(address_space_write(&as, DEV_BASE + 0x30, MEMTXATTRS_UNSPECIFIED, &v, 1), MEMTX_OK);
    cr_assert_eq(rd32(DEV_BASE + 0x84, NULL), 4, "widened write arrives with impl size");
}

Test(hub_dev, invalid_access_size_is_decode_error)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    /* "posted" allows only 4-byte accesses. */
    uint16_t h;
    MemTxResult r = address_space_read(&as, POSTED_BASE, MEMTXATTRS_UNSPECIFIED, (uint8_t *)&h, 2);
    cr_assert(r & MEMTX_DECODE_ERROR, "result %u", r);
}

Test(hub_dev, big_endian_region)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    uint8_t b[4];
    cr_assert_eq(address_space_read(&as, BE_BASE, MEMTXATTRS_UNSPECIFIED, b, 4), MEMTX_OK);
    uint8_t want[4] = { 0x11, 0x22, 0x33, 0x44 };
    cr_assert_arr_eq(b, want, 4);
}

Test(hub_dev, dma_into_granted_ram_is_direct)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x1000);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 300);
    wr32(DEV_BASE + 0x94, 1);
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0);
    uint8_t *host = memory_region_get_ram_ptr(&ram);
    for (unsigned i = 0; i < 300; i++)
        cr_assert_eq(host[0x1000 + i], (uint8_t)(i ^ 0x5a), "byte %u", i);
    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_eq(st.dma_messages, 0, "mapped RAM needs no messages");
}

Test(hub_dev, dma_through_the_mapping_is_reported_before_the_device_answers)
{
    hub_device_config c = regdev_config("regdev");
    hub_device *d = add(&c);
    memory_region_set_log(&ram, true, DIRTY_MEMORY_MIGRATION);
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x3000);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 300);
    wr32(DEV_BASE + 0x94, 1);                   /* fill through the mapping */
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0);
    /* the register write above was a round trip: its reply came after the report */
    cr_assert_eq(n_written, 1, "one report before the answer");
    cr_expect_eq(written_log[0].addr, RAM_BASE + 0x3000);
    cr_expect_eq(written_log[0].len, 300);
    cr_expect(memory_region_get_dirty(&ram, 0x3000, 300, DIRTY_MEMORY_MIGRATION), "marked in the dirty log");
    cr_expect_not(memory_region_get_dirty(&ram, 0x5000, 4096, DIRTY_MEMORY_MIGRATION), "only those pages");
    hub_devmgr_stats st;
    hub_device_get_stats(d, &st);
    cr_expect_eq(st.dma_written, 1);
    cr_expect_eq(st.dma_messages, 0, "no DMA message: the report is a posted message of its own");
}

Test(hub_dev, dma_outside_grants_is_refused_and_logged)
{
    hub_device_config c = regdev_config("scoped");
    const char *grants[] = { "ram" };
    c.ram_grants = grants;
    c.n_ram_grants = 1;
    hub_device *d = add(&c);
    uint8_t *host2 = memory_region_get_ram_ptr(&ram2);
    memset(host2, 0x11, 100);
    wr32(DEV_BASE + 0x88, RAM2_BASE);       /* ram2 exists but is not granted: not mapped, not reachable */
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 100);
    wr32(DEV_BASE + 0x94, 2);               /* read by DMA */
    uint32_t res = rd32(DEV_BASE + 0x98, NULL);
    cr_assert_eq(res, 0xdead0000u | EFAULT, "result 0x%x; log: %s", res, logbuf);
    wr32(DEV_BASE + 0x94, 1);               /* write by DMA */
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0xdead0000u | EFAULT);
    for (unsigned i = 0; i < 100; i++)
        cr_assert_eq(host2[i], 0x11, "ram2[%u] changed by a device without a grant", i);
    cr_assert(strstr(logbuf, "[scoped]") && strstr(logbuf, "outside its RAM grants: refused"), "log: %s", logbuf);
    hub_devmgr_stats st;
    hub_device_get_stats(d, &st);
    cr_assert_eq(st.dma_refused, 2);
    cr_assert_not(hub_device_failed(d), "a refused DMA is the device's to handle");
    /* The granted block is still reachable. */
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x100);
    wr32(DEV_BASE + 0x94, 1);
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL) & 0xffff0000u, 0, "DMA into the granted block");
}

/* A device answers an access with an error of its own (plx_set_access_result): the access fails with that
 * result, a read's value is all-ones, and the next access is answered normally again. */
Test(hub_dev, device_answers_an_access_with_its_own_error)
{
    hub_device_config c = regdev_config("regdev");
    hub_device *d = add(&c);
    MemTxResult r;
    cr_assert_eq(rd32(DEV_BASE + 0xd8, &r), 0xffffffffu);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    cr_assert_eq(rd32(DEV_BASE + 0xdc, &r), 0xffffffffu);
    cr_assert_eq(r, MEMTX_ERROR);
    uint8_t b[4] = { 1, 2, 3, 4 };
    cr_assert_eq(address_space_write(&as, DEV_BASE + 0xd8, MEMTXATTRS_UNSPECIFIED, b, 4), MEMTX_DECODE_ERROR);
    cr_assert_eq(address_space_write(&as, DEV_BASE + 0xdc, MEMTXATTRS_UNSPECIFIED, b, 4), MEMTX_ERROR);
    wr32(DEV_BASE + 0x10, 0x55aa);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 0x55aa, "the result holds for one access only");
    cr_assert_not(hub_device_failed(d), "an error answer is not a device failure");
}

/* plx_dma_window_at(): the whole mapped grant around an address, nothing for RAM that is not granted. */
Test(hub_dev, dma_window_is_the_whole_mapped_grant)
{
    hub_device_config c = regdev_config("scoped");
    const char *grants[] = { "ram" };
    c.ram_grants = grants;
    c.n_ram_grants = 1;
    add(&c);
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x12345);
    wr32(DEV_BASE + 0x8c, 0);
    cr_assert_eq(rd32(DEV_BASE + 0xe0, NULL), RAM_SIZE >> 10);
    wr32(DEV_BASE + 0x88, RAM_BASE + RAM_SIZE - 1);
    cr_assert_eq(rd32(DEV_BASE + 0xe0, NULL), RAM_SIZE >> 10, "its last byte");
    wr32(DEV_BASE + 0x88, RAM2_BASE);
    cr_assert_eq(rd32(DEV_BASE + 0xe0, NULL), 0, "ram2 is not granted");
    wr32(DEV_BASE + 0x88, RAM_BASE + RAM_SIZE);
    cr_assert_eq(rd32(DEV_BASE + 0xe0, NULL), 0, "one past the grant");
}

Test(hub_dev, device_dmas_while_answering_a_read)
{
    hub_device_config c = regdev_config("regdev");
    c.ram_by_message = true;    /* RAM granted but not mapped: all DMA by message */
    add(&c);
    uint8_t *host = memory_region_get_ram_ptr(&ram);
    uint32_t want = 0;
    for (unsigned i = 0; i < 5000; i++) {
        host[0x2000 + i] = (uint8_t)(i * 13 + 1);
        want += (uint8_t)(i * 13 + 1);
    }
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x2000);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 5000);
    cr_assert_eq(rd32(DEV_BASE + 0xa0, NULL), want, "sum computed by DMA inside the read callback");
    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_geq(st.dma_messages, 1);
}

Test(hub_dev, dma_into_another_device_is_refused)
{
    /* Device regions are never DMA windows: a DMA-reads b's register 0xa0, whose read would itself DMA. */
    hub_device_config ca = regdev_config("a");
    ca.ram_by_message = true;
    add(&ca);
    hub_device_config cb = regdev_config("b");
    hub_region_map rb[] = { { "regs", 0x20000000 }, { "posted", 0x20001000 }, { "shadow", 0x20002000 },
                            { "be", 0x20003000 } };
    cb.regions = rb;
    cb.ram_by_message = true;
    add(&cb);
    wr32(0x20000000 + 0x88, RAM_BASE + 0x3000);
    wr32(0x20000000 + 0x8c, 0);
    wr32(0x20000000 + 0x90, 16);
    uint32_t reads_b = rd32(0x20000000 + 0xb8, NULL);
    wr32(DEV_BASE + 0x88, 0x20000000 + 0xa0);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 4);
    wr32(DEV_BASE + 0x94, 2);
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0xdead0000u | EFAULT);
    cr_assert_eq(rd32(0x20000000 + 0xb8, NULL), reads_b + 1, "b saw no read but this one: %s", logbuf);
    cr_assert(strstr(logbuf, "[a]") && strstr(logbuf, "outside its RAM grants"), "log: %s", logbuf);
}

Test(hub_dev, irq_delivery)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    wr32(DEV_BASE + 0x9c, 1);
    wr32(DEV_BASE + 0x9c, 0);
    wr32(DEV_BASE + 0x9c, 2);
    (void)rd32(DEV_BASE + 0x80, NULL);   /* every IRQ message was sent before this reply */
    for (int i = 0; i < 50 && n_irq < 4; i++)
        hub_devmgr_poll(mgr, 10);
    cr_assert_eq(n_irq, 4);
    cr_assert_eq(irq_log[0].irq, 5);
    cr_assert_eq(irq_log[0].level, 1);
    cr_assert_eq(irq_log[1].irq, 5);
    cr_assert_eq(irq_log[1].level, 0);
    cr_assert_eq(irq_log[2].irq, 6);
    cr_assert_eq(irq_log[2].level, 1);
    cr_assert_eq(irq_log[3].irq, 6);
    cr_assert_eq(irq_log[3].level, 0);
}

Test(hub_dev, unmapped_irq_line_is_ignored_and_logged)
{
    hub_device_config c = regdev_config("regdev");
    c.n_irqs = 1;           /* only line 0 connected */
    add(&c);
    wr32(DEV_BASE + 0x9c, 2);   /* pulse line 1 */
    (void)rd32(DEV_BASE + 0x80, NULL);
    hub_devmgr_poll(mgr, 0);
    cr_assert_eq(n_irq, 0);
    cr_assert(strstr(logbuf, "[regdev]") && strstr(logbuf, "irq1"), "log: %s", logbuf);
}

Test(hub_dev, timers_run_on_virtual_time)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    wr32(DEV_BASE + 0xa8, 1000);            /* fire at now + 1000 ns */
    (void)rd32(DEV_BASE + 0xac, NULL);       /* the TimerArm is served by now */
    vclock_advance(&clk, 999);
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 0);
    cr_assert_eq(n_irq, 0);
    vclock_advance(&clk, 1500);
    /* The fire is synchronous: its IRQ pulse was delivered at virtual time 1000, inside vclock_advance. */
    cr_assert_eq(n_irq, 2);
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 1, "fired once");
    cr_assert_eq(rd32(DEV_BASE + 0xb0, NULL), 1000, "device time inside the callback is the deadline");
    cr_assert_eq(n_irq, 2, "the callback pulsed irq1 before vclock_advance returned");
}

/* Lockstep with a version-1 device (no advance()): its posted writes become synchronous, it is granted time at
 * the quantum boundary after an access and answers at once, an idle device gets no grants, timers still fire. */
Test(hub_dev, lockstep_device_is_written_synchronously_and_granted_time)
{
    hub_device_config c = regdev_config("ls");
    c.lockstep = true;
    hub_device *d = add(&c);
    wr32(POSTED_BASE, 5);
    wr32(POSTED_BASE, 6);
    hub_devmgr_stats st;
    hub_device_get_stats(d, &st);
    cr_assert_eq(st.posted_writes, 0, "a lockstep device's writes are not posted");
    cr_assert_eq(st.sync_writes, 2);
    cr_assert_eq(rd32(POSTED_BASE, NULL), 11, "both applied, in order");
    cr_assert_eq(st.grants, 0, "no time granted before the clock moves");
    vclock_advance(&clk, 5 * HUB_DEFAULT_QUANTUM_NS);
    hub_device_get_stats(d, &st);
    cr_assert_eq(st.grants, 1, "one grant, at the boundary after the accesses");
    vclock_advance(&clk, 50 * HUB_DEFAULT_QUANTUM_NS);
    hub_device_get_stats(d, &st);
    cr_assert_eq(st.grants, 1, "an idle device (no next event) is granted nothing more");
    wr32(DEV_BASE + 0xa8, 1000);            /* its own timer, 1000 ns ahead */
    uint64_t now = vclock_now(&clk);
    vclock_advance(&clk, now + 3 * HUB_DEFAULT_QUANTUM_NS);
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 1, "timers fire in lockstep too");
    cr_assert_eq(rd32(DEV_BASE + 0xb0, NULL), (uint32_t)(now + 1000));
    hub_device_get_stats(d, &st);
    cr_assert_eq(st.grants, 2, "the access that armed the timer got a grant at the next boundary");
    cr_assert_not(hub_device_failed(d), "log: %s", logbuf);
}

/* A lockstep device that never answers its grant fails at its timeout, like one that never answers a read. */
Test(hub_dev, lockstep_device_silent_on_a_grant_times_out)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const char *argv[] = { "no-grant", NULL };
    hub_region_map rm[] = { { "regs", DEV_BASE } };
    hub_device_config c = { .name = "mute", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                             .timeout_ms = 300, .lockstep = true };
    hub_device *d = add(&c);
    cr_assert_eq(rd32(DEV_BASE, NULL), 0xc0ffee);
    vclock_advance(&clk, 2 * HUB_DEFAULT_QUANTUM_NS);
    cr_assert(hub_device_failed(d), "log: %s", logbuf);
    cr_assert(strstr(logbuf, "[mute] no answer to a time grant within 300 ms"), "log: %s", logbuf);
    MemTxResult r;
    cr_assert_eq(rd32(DEV_BASE, &r), 0xffffffffu);
    cr_assert_eq(r, MEMTX_ERROR);
    free(prog);
}

Test(hub_dev, shadow_reads_see_timer_effects)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    for (uint32_t i = 1; i <= 20; i++) {
        wr32(DEV_BASE + 0xa8, 10);              /* arm at now + 10 */
        vclock_advance(&clk, vclock_now(&clk) + 10);
        /* The fire went out in vclock_advance; the shadow read waits until the device handled it. */
        cr_assert_eq(rd32(SHADOW_BASE + 0x3c, NULL), i);
    }
    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_eq(st.shadow_reads, 20);
}

/* An attached device, on the ring or on ZeroMQ (where the hub closed the attach connection after Ready), exits
 * when the hub dies without a word (docs/protocol.md "Liveness"). */
Test(hub_dev, device_exits_when_the_hub_goes_away)
{
    static const hub_transport transports[] = { HUB_TRANSPORT_RING, HUB_TRANSPORT_ZMQ };
    char *prog = test_build_path("bin/hubdev-regdev");
    for (unsigned t = 0; t < 2; t++) {
        pid_t pid = fork();
        if (pid == 0) {
            setenv("PLEXUS_ATTACH", hub_devmgr_attach_socket(mgr), 1);
            setenv("PLEXUS_DEVICE_NAME", "orphan", 1);
            unsetenv("PLEXUS_ENDPOINT");
            execl(prog, prog, (char *)NULL);
            _exit(127);
        }
        /* A hub in a child process: it adds the attached device, then dies without a word. */
        pid_t hub = fork();
        if (hub == 0) {
            hub_device_config c = regdev_config("orphan");
            c.program = NULL;
            c.attach = true;
            c.attach_timeout_ms = 20000;
            c.transport = transports[t];
            Error *err = NULL;
            hub_device *d = hub_devmgr_add(mgr, &c, &err);
            bool ring = d && !strcmp(hub_device_endpoint(d), "ring");
            _exit(!d ? 3 : ring != (transports[t] == HUB_TRANSPORT_RING) ? 4 : 0);
        }
        int st;
        cr_assert_eq(waitpid(hub, &st, 0), hub);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "transport %u: the hub child added the device (%d)", t, st);
        cr_assert_eq(waitpid(pid, &st, 0), pid, "the device noticed and exited");
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "transport %u: status %d", t, st);
    }
    free(prog);
}

/* Start hubdev-regdev as an outside process attaching as @name (over @endpoint if given: tcp). */
static pid_t start_attached(const char *name, const char *endpoint)
{
    char *prog = test_build_path("bin/hubdev-regdev");
    pid_t pid = fork();
    if (pid == 0) {
        setenv("PLEXUS_DEVICE_NAME", name, 1);
        if (endpoint) {
            unsetenv("PLEXUS_ATTACH");
            setenv("PLEXUS_ENDPOINT", endpoint, 1);
        } else {
            setenv("PLEXUS_ATTACH", hub_devmgr_attach_socket(mgr), 1);
            unsetenv("PLEXUS_ENDPOINT");
        }
        execl(prog, prog, (char *)NULL);
        _exit(127);
    }
    free(prog);
    return pid;
}

/* Poll the manager until @d failed, for at most @ms of wall time; true if it did. */
static bool failed_within(hub_device *d, unsigned ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        hub_devmgr_poll(mgr, 50);
        if (hub_device_failed(d))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    return false;
}

/* A device the hub did not spawn has no pidfd to watch: the end of its connection tells the hub it is gone (the
 * ring's descriptor socket, or ZeroMQ's disconnection in the -zmq run), without any access to it. */
Test(hub_dev, hub_notices_an_attached_device_that_dies)
{
    pid_t pid = start_attached("gone", NULL);
    hub_device_config c = regdev_config("gone");
    c.program = NULL;
    c.attach = true;
    c.attach_timeout_ms = 20000;
    hub_device *d = add(&c);
    wr32(DEV_BASE + 0x4, 1);
    cr_assert_eq(rd32(DEV_BASE + 0x4, NULL), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert(failed_within(d, 10000), "the hub did not notice; log:\n%s", logbuf);
    cr_assert(strstr(logbuf, "the connection to the device ended"), "%s", logbuf);
}

/* Across hosts a peer can vanish without closing its connection (its host died): ZeroMQ's heartbeats end a
 * connection that stays silent for PLX_HEARTBEAT_TIMEOUT_MS. A stopped device process answers no heartbeat. */
Test(hub_dev, heartbeats_end_the_connection_of_a_silent_tcp_device, .timeout = 60)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s);
    char ep[64];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", ntohs(a.sin_port));
    pid_t pid = start_attached("far", ep);
    hub_device_config c = regdev_config("far");
    c.program = NULL;
    c.attach = true;
    c.attach_timeout_ms = 20000;
    c.endpoint = ep;
    hub_device *d = add(&c);
    cr_assert_eq(rd32(DEV_BASE + 0xb4, NULL), 0x1234, "the device answers over tcp");
    for (int i = 0; i < 10; i++)
        hub_devmgr_poll(mgr, 100);     /* a second of heartbeats: an idle, live device stays */
    cr_assert_not(hub_device_failed(d), "%s", logbuf);
    kill(pid, SIGSTOP);
    cr_assert(failed_within(d, PLX_HEARTBEAT_TIMEOUT_MS + 10000), "a silent peer was not dropped; log:\n%s", logbuf);
    cr_assert(strstr(logbuf, "the connection to the device ended"), "%s", logbuf);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(hub_dev, posted_writes_are_ordered_before_a_read)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    uint32_t sum = 0;
    for (uint32_t i = 1; i <= 500; i++) {
        wr32(POSTED_BASE, i);
        sum += i;
    }
    cr_assert_eq(rd32(POSTED_BASE + 4, NULL), 500);
    cr_assert_eq(rd32(POSTED_BASE, NULL), sum);
    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_eq(st.posted_writes, 500);
    cr_assert_eq(st.sync_writes, 0);
}

Test(hub_dev, held_posted_writes_go_out_on_poll)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    wr32(POSTED_BASE + 8, 1);       /* the device pulses irq0 when it applies this write */
    for (int i = 0; i < 100 && n_irq < 2; i++)
        hub_devmgr_poll(mgr, 10);
    cr_assert_eq(n_irq, 2, "the posted write reached the device without any later access");
    cr_assert_eq(irq_log[0].irq, 5);
}

Test(hub_dev, posted_writes_keep_their_virtual_time)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    /* Each posted write is applied at the time it was made: a timer armed relative to "now" in a write. */
    vclock_advance(&clk, 5000);
    wr32(POSTED_BASE, 1);
    vclock_advance(&clk, 6000);
    wr32(DEV_BASE + 0xa8, 100);     /* sync write: device arms at its now (6000) + 100 */
    vclock_advance(&clk, 6100);
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 1);
    cr_assert_eq(rd32(DEV_BASE + 0xb0, NULL), 6100);
    cr_assert_eq(rd32(POSTED_BASE + 4, NULL), 1);
}

Test(hub_dev, shadow_reads_have_no_round_trip_and_see_posted_writes)
{
    hub_device_config c = regdev_config("regdev");
    add(&c);
    for (uint32_t i = 1; i <= 200; i++)
        wr32(SHADOW_BASE + 0x8, i);
    hub_devmgr_stats before, after;
    hub_devmgr_get_stats(mgr, &before);
    cr_assert_eq(rd32(SHADOW_BASE + 0x8, NULL), 200, "coherent with the last posted write");
    cr_assert_eq(rd32(SHADOW_BASE + 0x40, NULL), 200, "all 200 writes applied");
    uint8_t b;
    cr_assert_eq(address_space_read(&as, SHADOW_BASE + 0x8, MEMTXATTRS_UNSPECIFIED, &b, 1), MEMTX_OK);
    cr_assert_eq(b, 200);
    hub_devmgr_get_stats(mgr, &after);
    cr_assert_eq(after.sync_reads, before.sync_reads, "no round trip");
    cr_assert_eq(after.shadow_reads, before.shadow_reads + 3);
    /* Read-through ranges go to the device. */
    cr_assert_eq(rd32(SHADOW_BASE + 0x80, NULL), 1);
    cr_assert_eq(rd32(SHADOW_BASE + 0x80, NULL), 2);
    hub_devmgr_get_stats(mgr, &after);
    cr_assert_eq(after.sync_reads, before.sync_reads + 2);
}

Test(hub_dev, plugin_through_the_runner)
{
    hub_device_config c = regdev_config("plug");
    c.program = NULL;
    char *so = test_build_path("lib/hubdev-regdev-plugin.so");
    c.plugin = so;
    add(&c);
    wr32(DEV_BASE + 0x4, 42);
    cr_assert_eq(rd32(DEV_BASE + 0x4, NULL), 42);
    free(so);
}

Test(hub_dev, attached_device_gets_fds_over_the_unix_socket)
{
    char *prog = test_build_path("bin/hubdev-regdev");
    pid_t pid = fork();
    if (pid == 0) {
        setenv("PLEXUS_ATTACH", hub_devmgr_attach_socket(mgr), 1);
        setenv("PLEXUS_DEVICE_NAME", "outside", 1);
        unsetenv("PLEXUS_ENDPOINT");
        execl(prog, prog, (char *)NULL);
        _exit(127);
    }
    hub_device_config c = regdev_config("outside");
    c.program = NULL;
    c.attach = true;
    c.attach_timeout_ms = 20000;
    hub_device *d = add(&c);
    cr_assert_eq(hub_device_pid(d), 0);
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x4000);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 64);
    wr32(DEV_BASE + 0x94, 1);
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0);
    uint8_t *host = memory_region_get_ram_ptr(&ram);
    for (unsigned i = 0; i < 64; i++)
        cr_assert_eq(host[0x4000 + i], (uint8_t)(i ^ 0x5a));
    /* The shadow page came over the socket too. */
    wr32(SHADOW_BASE, 77);
    cr_assert_eq(rd32(SHADOW_BASE, NULL), 77);
    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_eq(st.dma_messages, 0, "RAM fd received and mapped");
    cr_assert_eq(st.shadow_reads, 1);
    hub_devmgr_free(mgr);
    mgr = NULL;
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "attached device exits cleanly on shutdown");
    free(prog);
}

Test(hub_dev, tcp_device_does_dma_by_message)
{
    hub_device_config c = regdev_config("remote");
    c.endpoint = "tcp://127.0.0.1:0";
    hub_device *d = add(&c);
    cr_assert(strncmp(hub_device_endpoint(d), "tcp://127.0.0.1:", 16) == 0, "%s", hub_device_endpoint(d));
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x8000);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 4096);
    wr32(DEV_BASE + 0x94, 1);
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0);
    uint8_t *host = memory_region_get_ram_ptr(&ram);
    for (unsigned i = 0; i < 4096; i++)
        cr_assert_eq(host[0x8000 + i], (uint8_t)(i ^ 0x5a));
    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_geq(st.dma_messages, 1);
    /* Without shared memory a SHADOW region is served by round trips, still coherent. */
    wr32(SHADOW_BASE + 4, 9);
    uint64_t sr = st.sync_reads;
    cr_assert_eq(rd32(SHADOW_BASE + 4, NULL), 9, "over tcp the device's read callback answers");
    cr_assert_eq(rd32(SHADOW_BASE + 0x40, NULL), 1);
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_eq(st.sync_reads, sr + 2);
    cr_assert_eq(st.shadow_reads, 0);
}

Test(hub_dev, killed_device_fails_accesses_and_hub_survives)
{
    hub_device_config c = regdev_config("victim");
    hub_device *d = add(&c);
    wr32(DEV_BASE, 5);
    cr_assert_eq(rd32(DEV_BASE, NULL), 5);
    int pid = hub_device_pid(d);
    cr_assert_gt(pid, 0);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    MemTxResult r;
    uint32_t v = rd32(DEV_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(hub_device_failed(d));
    v = rd32(SHADOW_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(strstr(logbuf, "[victim]") && strstr(logbuf, "signal 9"), "log: %s", logbuf);
    /* Other devices keep working. */
    hub_device_config c2 = regdev_config("other");
    hub_region_map other[] = { { "regs", 0x20000000 }, { "posted", 0x20001000 }, { "shadow", 0x20002000 },
                               { "be", 0x20003000 } };
    c2.regions = other;
    add(&c2);
    wr32(0x20000000, 6);
    cr_assert_eq(rd32(0x20000000, NULL), 6);
}

Test(hub_dev, failed_device_lowers_its_raised_lines)
{
    hub_device_config c = regdev_config("victim");
    hub_device *d = add(&c);
    wr32(DEV_BASE + 0x9c, 1);           /* irq0 (hub irq 5) high */
    cr_assert_eq(n_irq, 1);
    cr_assert_eq(irq_log[0].level, 1);
    kill(hub_device_pid(d), SIGKILL);
    MemTxResult r;
    rd32(DEV_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(n_irq, 2);
    cr_assert_eq(irq_log[1].irq, 5);
    cr_assert_eq(irq_log[1].level, 0, "a dead device does not hold its line high");
}

static bool wait_back(hub_device *d)
{
    for (int i = 0; i < 500 && hub_device_failed(d); i++)
        hub_devmgr_poll(mgr, 10);
    return !hub_device_failed(d);
}

Test(hub_dev, failed_device_is_restarted_fresh)
{
    hub_device_config c = regdev_config("phoenix");
    c.max_restarts = 2;
    c.restart_backoff_ms = 20;
    hub_device *d = add(&c);
    wr32(DEV_BASE + 0x10, 5);
    wr32(SHADOW_BASE, 6);
    cr_assert_eq(rd32(SHADOW_BASE, NULL), 6);
    int pid = hub_device_pid(d);
    kill(pid, SIGKILL);
    MemTxResult r;
    rd32(DEV_BASE + 0x10, &r);
    cr_assert_eq(r, MEMTX_ERROR, "nothing can defer this access (no CPU): it fails; log: %s", logbuf);
    cr_assert_eq(hub_device_restarts(d), 0, "a restart never runs inside an access");
    cr_assert(wait_back(d), "restarted by hub_devmgr_poll; log: %s", logbuf);
    cr_assert_eq(hub_device_restarts(d), 1);
    cr_assert_neq(hub_device_pid(d), pid);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 0, "a fresh device (this one keeps no state block)");
    cr_assert_eq(rd32(SHADOW_BASE, NULL), 0, "a blank shadow page");
    wr32(DEV_BASE + 0x10, 7);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 7);
    wr32(SHADOW_BASE, 8);
    cr_assert_eq(rd32(SHADOW_BASE, NULL), 8, "posted write and shadow read in the new instance");
    wr32(DEV_BASE + 0xa8, 10);
    vclock_advance(&clk, vclock_now(&clk) + 10);
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 1, "timers work again");
    cr_assert(strstr(logbuf, "[phoenix] restarted (1 of 2)"), "log: %s", logbuf);
}

/* The CPU's way: an access to a device awaiting its restart is abandoned (defer_access says yes), the next
 * hub_devmgr_poll(0) waits out the backoff and restarts it, and the access made again reaches the new process. */
static unsigned n_defers;
static bool defer_yes(void *opaque)
{
    (void)opaque;
    n_defers++;
    return true;
}

Test(hub_dev, access_to_a_restarting_device_is_deferred_and_the_poll_restarts_it)
{
    hub_devmgr_free(mgr);
    Error *err = NULL;
    hub_devmgr_env env = { .sysmem = &sysmem, .as = &as, .clock = &clk, .ram = blocks, .n_ram = 2,
                           .set_irq = on_irq, .log = on_log, .defer_access = defer_yes };
    mgr = hub_devmgr_new(&env, &err);
    cr_assert_not_null(mgr);
    hub_device_config c = regdev_config("phoenix");
    c.max_restarts = 1;
    c.restart_backoff_ms = 30;
    hub_device *d = add(&c);
    int pid = hub_device_pid(d);
    kill(pid, SIGKILL);
    n_defers = 0;
    MemTxResult r;
    rd32(DEV_BASE + 0x10, &r);
    cr_assert_eq(n_defers, 1, "the access was deferred");
    cr_assert_eq(r, MEMTX_OK, "a deferred access does not fault (it is made again)");
    cr_assert_eq(hub_device_restarts(d), 0, "not restarted inside the access");
    cr_assert_eq(hub_devmgr_poll(mgr, 0), 0);
    cr_assert_eq(hub_device_restarts(d), 1, "the poll after a deferral waits out the backoff and restarts; log: %s",
                 logbuf);
    cr_assert_not(hub_device_failed(d));
    wr32(DEV_BASE + 0x10, 9);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 9, "the access made again reaches the new process");
    cr_assert_eq(n_defers, 1);
    /* restarts used up: nothing defers any more, the access fails */
    kill(hub_device_pid(d), SIGKILL);
    rd32(DEV_BASE + 0x10, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(n_defers, 1);
}

/* A device killed while the hub waits for its TimerDone (inside vclock_advance): the wait ends, the device fails,
 * and it is restarted from the poll path, not from inside the clock's advance. */
Test(hub_dev, device_dying_in_a_timer_callback_is_restarted_from_the_poll)
{
    hub_device_config c = regdev_config("phoenix");
    c.max_restarts = 1;
    c.restart_backoff_ms = 10;
    hub_device *d = add(&c);
    int pid = hub_device_pid(d);
    wr32(DEV_BASE + 0xd4, 1000);                    /* its timer callback kills it */
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 0);   /* the TimerArm is served by now */
    vclock_advance(&clk, vclock_now(&clk) + 2000);
    cr_assert(hub_device_failed(d), "the fire's wait ended with the death; log: %s", logbuf);
    cr_assert_eq(hub_device_restarts(d), 0, "no restart inside the clock's advance");
    cr_assert(strstr(logbuf, "[phoenix] device process was killed by signal 9"), "log: %s", logbuf);
    cr_assert(wait_back(d), "log: %s", logbuf);
    cr_assert_eq(hub_device_restarts(d), 1);
    cr_assert_neq(hub_device_pid(d), pid);
    wr32(DEV_BASE + 0xa8, 10);
    vclock_advance(&clk, vclock_now(&clk) + 20);
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 1, "the new process's timer fired at its virtual time");
}

/* A device process whose main loop is its own (poll on plx_dev_get_poll_fd() and a timerfd, plx_dev_dispatch()):
 * accesses, a watched descriptor, a timer with its IRQ, and an orderly shutdown all work through the real hub. */
Test(hub_dev, device_driven_from_a_foreign_poll_loop)
{
    char *prog = test_build_path("bin/hubdev-foreignloop");
    static const hub_region_map rm[] = { { "regs", DEV_BASE } };
    static const hub_irq_map im[] = { { 0, 5 } };
    hub_device_config c = { .name = "foreign", .program = prog, .regions = rm, .n_regions = 1, .irqs = im,
                            .n_irqs = 1, .timeout_ms = 5000 };
    hub_device *d = add(&c);
    cr_assert_str_eq(hub_device_model(d), "plexus,test-foreign-loop");
    wr32(DEV_BASE, 0x1234abcd);
    cr_assert_eq(rd32(DEV_BASE, NULL), 0x1234abcd);
    cr_assert_gt(rd32(DEV_BASE + 8, NULL), 0, "the accesses were served through plx_dev_dispatch()");
    /* the program's own timerfd is served by the same loop, between the hub's requests */
    uint32_t t0 = rd32(DEV_BASE + 4, NULL), t = t0;
    for (int i = 0; i < 500 && t == t0; i++) {
        hub_devmgr_poll(mgr, 5);
        t = rd32(DEV_BASE + 4, NULL);
    }
    cr_assert_gt(t, t0, "the foreign loop's own timer ticked");
    /* a descriptor watched with plx_dev_watch_fd is served inside plx_dev_dispatch */
    wr32(DEV_BASE + 0xc, 1);
    uint32_t w = 0;
    for (int i = 0; i < 500 && w == 0; i++) {
        hub_devmgr_poll(mgr, 2);
        w = rd32(DEV_BASE + 0xc, NULL);
    }
    cr_assert_eq(w, 1, "the watch callback ran once");
    /* virtual time: the fire waits for the device, whose loop runs the callback and pulses its line */
    wr32(DEV_BASE + 0x10, 1000);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 0);
    n_irq = 0;
    vclock_advance(&clk, vclock_now(&clk) + 2000);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 1, "fired once");
    cr_assert_eq(n_irq, 2, "the callback pulsed its line before vclock_advance returned");
    cr_assert_eq(irq_log[0].irq, 5);
    /* Shutdown: plx_dev_dispatch() returns 1, plx_dev_close() says Goodbye, the process exits 0 */
    hub_devmgr_free(mgr);
    mgr = NULL;
    cr_assert_null(strstr(logbuf, "did not exit"), "log: %s", logbuf);
    cr_assert_null(strstr(logbuf, "error"), "log: %s", logbuf);
    free(prog);
}

/* The caller's loop under the machine's sandbox: the SDK sets its poll descriptor up before the filter goes on
 * (epoll_create1 and eventfd are outside the allowlist); the program's own timerfd is in its allow list. */
Test(hub_dev, foreign_poll_loop_under_the_sandbox)
{
    char *prog = test_build_path("bin/hubdev-foreignloop");
    static const hub_region_map rm[] = { { "regs", DEV_BASE } };
    static const char *const allow[] = { "timerfd_create", "timerfd_settime" };
    hub_device_config c = { .name = "foreign", .program = prog, .regions = rm, .n_regions = 1, .timeout_ms = 5000,
                            .sandbox = true, .sandbox_allow = allow, .n_sandbox_allow = 2 };
    hub_device *d = add(&c);
    wr32(DEV_BASE, 0x600df00d);
    cr_assert_eq(rd32(DEV_BASE, NULL), 0x600df00d, "log: %s", logbuf);
    cr_assert_gt(rd32(DEV_BASE + 8, NULL), 0, "served through plx_dev_dispatch()");
    cr_assert_not(hub_device_failed(d), "log: %s", logbuf);
    free(prog);
}

Test(hub_dev, restarts_stop_at_the_limit)
{
    hub_device_config c = regdev_config("phoenix");
    c.max_restarts = 1;
    c.restart_backoff_ms = 10;
    c.timeout_ms = 300;
    hub_device *d = add(&c);
    kill(hub_device_pid(d), SIGKILL);
    MemTxResult r;
    rd32(DEV_BASE, &r);
    cr_assert(wait_back(d));
    rd32(DEV_BASE + 0xa4, &r);          /* hangs: times out, fails again */
    cr_assert_eq(r, MEMTX_ERROR);
    for (int i = 0; i < 20; i++)
        hub_devmgr_poll(mgr, 10);
    cr_assert(hub_device_failed(d), "no second restart");
    cr_assert_eq(hub_device_restarts(d), 1);
}

Test(hub_dev, hanging_device_times_out)
{
    hub_device_config c = regdev_config("sleepy");
    c.timeout_ms = 300;
    hub_device *d = add(&c);
    MemTxResult r;
    uint32_t v = rd32(DEV_BASE + 0xa4, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[sleepy]") && strstr(logbuf, "300 ms"), "log: %s", logbuf);
    /* Later accesses fail at once instead of waiting again. */
    v = rd32(DEV_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR);
}

Test(hub_dev, malformed_messages_are_dropped_and_logged)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, DEV_BASE } };
    const char *argv[] = { "garbage", NULL };
    hub_device_config c = { .name = "rogue", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                             .timeout_ms = 5000 };
    hub_device *d = add(&c);
    cr_assert_eq(rd32(DEV_BASE, NULL), 0xc0ffee);
    cr_assert_not(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[rogue] undecodable frame"), "log: %s", logbuf);
    cr_assert(strstr(logbuf, "line 99"), "log: %s", logbuf);
    cr_assert(strstr(logbuf, "malformed DmaRequest"), "log: %s", logbuf);
    cr_assert(strstr(logbuf, "MmioReply with seq"), "log: %s", logbuf);
    cr_assert(strstr(logbuf, "TimerArm with id 100000"), "log: %s", logbuf);
    cr_assert(strstr(logbuf, "unexpected Hello"), "log: %s", logbuf);
    cr_assert_eq(n_irq, 0);
    cr_assert_eq(rd32(DEV_BASE, NULL), 0xc0ffee, "still served after the garbage");
    free(prog);
}

Test(hub_dev, randomly_damaged_frames_do_not_hurt_the_hub)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, DEV_BASE } };
    static const hub_irq_map im[] = { { 0, 3 } };
    const char *argv[] = { "fuzz", NULL };
    hub_device_config c = { .name = "fuzzer", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                            .irqs = im, .n_irqs = 1, .timeout_ms = 20000 };
    hub_device *d = add(&c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rd32(DEV_BASE, NULL), 0xc0ffee);
    cr_assert_not(hub_device_failed(d));
    for (unsigned i = 0; i < n_irq; i++)
        cr_assert_eq(irq_log[i].irq, 3, "only the connected line reaches set_irq");
    vclock_advance(&clk, UINT64_MAX / 2);     /* whatever timers the damaged frames armed fire harmlessly */
    cr_assert_eq(rd32(DEV_BASE, NULL), 0xc0ffee);
    free(prog);
}

Test(hub_dev, reset_reaches_the_device_in_order)
{
    hub_device_config c = regdev_config("regdev");
    hub_device *d = add(&c);
    wr32(DEV_BASE + 0x8, 0x55);
    wr32(SHADOW_BASE + 0x8, 0x66);
    cr_assert_eq(hub_device_reset(d), 0);
    cr_assert_eq(rd32(DEV_BASE + 0x8, NULL), 0, "scratch cleared by reset");
    cr_assert_eq(rd32(SHADOW_BASE + 0x8, NULL), 0, "shadow image cleared, seen without a round trip");
}

Test(hub_dev, sandboxed_device_keeps_working)
{
    hub_device_config c = regdev_config("boxed");
    c.sandbox = true;
    add(&c);
    wr32(DEV_BASE + 0x10, 0x1234abcd);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 0x1234abcd);
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x100);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 256);
    wr32(DEV_BASE + 0x94, 1);
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0, "DMA into mapped RAM");
    wr32(SHADOW_BASE, 5);
    cr_assert_eq(rd32(SHADOW_BASE, NULL), 5);
    wr32(DEV_BASE + 0xa8, 10);
    vclock_advance(&clk, 20);
    cr_assert_eq(rd32(DEV_BASE + 0xac, NULL), 1, "timer fired");
    cr_assert_eq(n_irq, 2);
    hub_devmgr_free(mgr);   /* an orderly exit works inside the sandbox too */
    mgr = NULL;
    cr_assert_null(strstr(logbuf, "[boxed] sandbox"), "log: %s", logbuf);
    cr_assert_null(strstr(logbuf, "denied"), "log: %s", logbuf);
    cr_assert_null(strstr(logbuf, "killed"), "log: %s", logbuf);
}

Test(hub_dev, sandbox_reports_a_denied_call_by_name)
{
    hub_device_config c = regdev_config("boxed");
    c.sandbox = true;
    hub_device *d = add(&c);
    MemTxResult r;
    uint32_t v = rd32(DEV_BASE + 0xbc, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[boxed]") && strstr(logbuf, "denied system call socket"), "log: %s", logbuf);
}

Test(hub_dev, device_gets_no_descriptor_it_was_not_granted)
{
    /* A descriptor the hub holds without O_CLOEXEC must not reach the device. */
    /* A high number: the device's own libraries (ZeroMQ, sanitizers) open low ones for themselves. */
    int tmp = open("/dev/null", O_RDONLY);
    cr_assert_geq(tmp, 3);
    int leak = dup2(tmp, 900);
    close(tmp);
    cr_assert_eq(leak, 900);
    hub_device_config c = regdev_config("fds");
    add(&c);
    wr32(DEV_BASE + 0xd0, 1);
    cr_assert_eq(rd32(DEV_BASE + 0xd0, NULL), 1, "the probe sees stdout");
    wr32(DEV_BASE + 0xd0, (uint32_t)leak);
    cr_assert_eq(rd32(DEV_BASE + 0xd0, NULL), 0, "descriptor %d leaked into the device", leak);
    close(leak);
}

Test(hub_dev, executable_mapping_works_without_the_sandbox)
{
    hub_device_config c = regdev_config("free");
    add(&c);
    cr_assert_eq(rd32(DEV_BASE + 0xcc, NULL), 1, "the probe maps an executable page outside the sandbox");
}

Test(hub_dev, sandbox_refuses_executable_mappings)
{
    hub_device_config c = regdev_config("boxed");
    c.sandbox = true;
    hub_device *d = add(&c);
    MemTxResult r;
    uint32_t v = rd32(DEV_BASE + 0xcc, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[boxed]") && strstr(logbuf, "denied system call mmap"), "log: %s", logbuf);
}

Test(hub_dev, sandbox_allow_list_extends_the_policy)
{
    hub_device_config c = regdev_config("boxed");
    const char *allow[] = { "socket" };
    c.sandbox = true;
    c.sandbox_allow = allow;
    c.n_sandbox_allow = 1;
    hub_device *d = add(&c);
    cr_assert_eq(rd32(DEV_BASE + 0xbc, NULL), 1);
    cr_assert_not(hub_device_failed(d));
}

Test(hub_dev, sandbox_with_an_unknown_call_fails_the_add)
{
    hub_device_config c = regdev_config("boxed");
    const char *allow[] = { "no_such_call" };
    c.sandbox = true;
    c.sandbox_allow = allow;
    c.n_sandbox_allow = 1;
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert(strstr(error_get_pretty(err), "boxed") && strstr(error_get_pretty(err), "no_such_call"), "%s",
              error_get_pretty(err));
    error_free(err);
}

Test(hub_dev, flooding_device_still_times_out)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, DEV_BASE } };
    const char *argv[] = { "flood", NULL };
    hub_device_config c = { .name = "flood", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                             .timeout_ms = 300 };
    hub_device *d = add(&c);
    MemTxResult r;
    uint32_t v = rd32(DEV_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[flood] no answer to a read within 300 ms"), "log: %.2000s", logbuf);
    free(prog);
}

Test(hub_dev, invalid_declaration_is_refused)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, DEV_BASE } };
    const char *argv[] = { "bad-decl", NULL };
    hub_device_config c = { .name = "baddecl", .program = prog, .argv = argv, .regions = rm, .n_regions = 1 };
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert(strstr(error_get_pretty(err), "baddecl") && strstr(error_get_pretty(err), "size"), "%s",
              error_get_pretty(err));
    error_free(err);
    free(prog);
}

Test(hub_dev, protocol_major_mismatch_is_refused)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, DEV_BASE } };
    const char *argv[] = { "bad-major", NULL };
    hub_device_config c = { .name = "future", .program = prog, .argv = argv, .regions = rm, .n_regions = 1 };
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert(strstr(error_get_pretty(err), "future") && strstr(error_get_pretty(err), "protocol 9.0"), "%s",
              error_get_pretty(err));
    error_free(err);
    free(prog);
}

Test(hub_dev, missing_program_is_reported)
{
    hub_device_config c = regdev_config("ghost");
    c.program = "/nonexistent/plexus-ghost";
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert(strstr(error_get_pretty(err), "ghost"), "%s", error_get_pretty(err));
    error_free(err);
}

/* ---- crashes and misbehaviour of real device processes (docs/reliability.md) ---- */

Test(hub_dev, device_crashing_while_answering_a_read)
{
    hub_device_config c = regdev_config("crashy");
    hub_device *d = add(&c);
    MemTxResult r;
    uint32_t v = rd32(DEV_BASE + 0xc0, &r);       /* the device aborts inside its read callback */
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[crashy] device process "), "log: %s", logbuf);
    cr_assert(strstr(logbuf, "its accesses now fail"), "log: %s", logbuf);
    v = rd32(DEV_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR, "later accesses fail at once");
}

Test(hub_dev, device_crashing_while_receiving_a_write)
{
    hub_device_config c = regdev_config("crashy");
    hub_device *d = add(&c);
    uint8_t one[4] = { 1, 0, 0, 0 };
    cr_assert_eq(address_space_write(&as, DEV_BASE + 0xc4, MEMTXATTRS_UNSPECIFIED, one, 4), MEMTX_ERROR,
                 "a synchronous write to a device that dies fails");
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[crashy] device process "), "log: %s", logbuf);
}

Test(hub_dev, device_crashing_while_idle)
{
    hub_device_config c = regdev_config("crashy");
    hub_device *d = add(&c);
    cr_assert_eq(kill(hub_device_pid(d), SIGSEGV), 0);     /* a fault while it waits for the hub */
    for (int i = 0; i < 100 && !hub_device_failed(d); i++)
        hub_devmgr_poll(mgr, 10);
    cr_assert(hub_device_failed(d), "noticed without an access; log: %s", logbuf);
    /* (under AddressSanitizer its SEGV handler reports, then exits with status 1, or aborts with
       ASAN_OPTIONS=abort_on_error=1 as scripts/test.sh sets it) */
    cr_assert(strstr(logbuf, "[crashy] device process was killed by signal 11") ||
              strstr(logbuf, "[crashy] device process was killed by signal 6") ||
              strstr(logbuf, "[crashy] device process exited with status 1"), "log: %s", logbuf);
    MemTxResult r;
    cr_assert_eq(rd32(DEV_BASE, &r), 0xffffffffu);
    cr_assert_eq(r, MEMTX_ERROR);
}

Test(hub_dev, device_closing_its_channel_times_out)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, DEV_BASE } };
    const char *argv[] = { "close", NULL };
    hub_device_config c = { .name = "closer", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                             .timeout_ms = 300 };
    hub_device *d = add(&c);
    MemTxResult r;
    uint32_t v = rd32(DEV_BASE, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert(hub_device_failed(d));
    cr_assert(strstr(logbuf, "[closer] no answer to a read within 300 ms"), "log: %s", logbuf);
    free(prog);
}

Test(hub_dev, oversized_frame_is_dropped_by_the_channel)
{
    char *prog = test_build_path("bin/hubdev-rogue");
    static const hub_region_map rm[] = { { NULL, DEV_BASE } };
    const char *argv[] = { "oversized", NULL };
    hub_device_config c = { .name = "big", .program = prog, .argv = argv, .regions = rm, .n_regions = 1,
                             .timeout_ms = 2000 };
    hub_device *d = add(&c);
    /* each read is preceded by a frame above PLX_MAX_FRAME: ZeroMQ refuses it (ZMQ_MAXMSGSIZE) before
     * the hub allocates or decodes anything, and the answer behind it still arrives */
    for (int i = 0; i < 3; i++) {
        MemTxResult r;
        uint32_t v = rd32(DEV_BASE, &r);
        cr_assert_eq(r, MEMTX_OK, "log: %s", logbuf);
        cr_assert_eq(v, 0xc0ffee);
    }
    cr_assert_not(hub_device_failed(d));
    free(prog);
}

Test(hub_dev, device_cannot_resize_guest_ram)
{
    hub_device_config c = regdev_config("cutter");
    hub_device *d = add(&c);
    uint8_t pattern[4] = { 0xfe, 0xca, 0x0d, 0x60 };
    cr_assert_eq(address_space_write(&as, RAM_BASE + 0x40, MEMTXATTRS_UNSPECIFIED, pattern, 4), MEMTX_OK);
    /* Its jail does not even let it reopen the memfd through /proc (no capabilities): 0x10000 | that errno.
     * Where it can, the seals refuse the cut (EPERM; tests/memory/test_ram.c). */
    uint32_t v = rd32(DEV_BASE + 0xc8, NULL);
    cr_assert(v == (0x10000u | EPERM) || v == (0x10000u | EACCES) || v == EPERM, "the RAM memfd was cut: %#x", v);
    cr_assert_not(hub_device_failed(d));
    uint8_t back[4] = { 0 };
    cr_assert_eq(address_space_read(&as, RAM_BASE + 0x40, MEMTXATTRS_UNSPECIFIED, back, 4), MEMTX_OK);
    cr_assert_arr_eq(back, pattern, 4, "guest RAM is intact");
}

Test(hub_dev, dma_outside_the_address_map_fails_in_the_device)
{
    hub_device_config c = regdev_config("stray");
    const char *grants[] = { "ram" };
    c.ram_grants = grants;
    c.n_ram_grants = 1;
    hub_device *d = add(&c);
    wr32(DEV_BASE + 0x88, 0x40000000);     /* nothing there */
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 64);
    wr32(DEV_BASE + 0x94, 2);              /* read by DMA: goes by message, the hub finds no region */
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0xdead0000u | EFAULT);
    wr32(DEV_BASE + 0x94, 1);              /* write by DMA */
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0xdead0000u | EFAULT);
    cr_assert_not(hub_device_failed(d), "a bus error is the device's to handle");
}

static bool same_ns(int pid, const char *kind)
{
    char a[64], b[64], pa[64], pb[64];
    snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", pid, kind);
    snprintf(pb, sizeof(pb), "/proc/self/ns/%s", kind);
    ssize_t na = readlink(pa, a, sizeof(a) - 1), nb = readlink(pb, b, sizeof(b) - 1);
    cr_assert(na > 0 && nb > 0, "readlink %s", pa);
    a[na] = b[nb] = 0;
    return strcmp(a, b) == 0;
}

Test(hub_dev, device_in_its_jail_keeps_working)
{
    hub_device_config c = regdev_config("hermit");
    c.sandbox = true;
    hub_device *d = add(&c);
    int pid = hub_device_pid(d);
    char layers[128];
    hub_device_confinement(d, layers, sizeof(layers));
    cr_assert(strstr(layers, "seccomp caps no_new_privs"), "%s", layers);
    if (strstr(layers, "pid")) {
        cr_assert(strstr(layers, "pid mount ipc uts net"), "%s", layers);
        cr_assert_not(same_ns(pid, "net"), "its own network namespace");
        cr_assert_not(same_ns(pid, "mnt"), "its own mount namespace");
        cr_assert_not(same_ns(pid, "pid"), "its own pid namespace");
        cr_assert_not(same_ns(pid, "ipc"), "its own ipc namespace");
        cr_assert_not(same_ns(pid, "uts"), "its own uts namespace");
    } else {
        /* a kernel without user namespaces for this user: Landlock is its filesystem scope, said once */
        cr_assert(strstr(layers, "landlock"), "%s", layers);
        cr_assert(strstr(logbuf, "[-] sandbox: the kernel refuses user namespaces"), "log: %s", logbuf);
    }
    wr32(DEV_BASE + 0x10, 0x1234abcd);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 0x1234abcd);
    wr32(DEV_BASE + 0x88, RAM_BASE + 0x100);
    wr32(DEV_BASE + 0x8c, 0);
    wr32(DEV_BASE + 0x90, 256);
    wr32(DEV_BASE + 0x94, 1);
    cr_assert_eq(rd32(DEV_BASE + 0x98, NULL), 0, "DMA into mapped RAM");
    wr32(SHADOW_BASE, 5);
    cr_assert_eq(rd32(SHADOW_BASE, NULL), 5);
    hub_devmgr_free(mgr);   /* an orderly exit */
    mgr = NULL;
    cr_assert_null(strstr(logbuf, "killed"), "log: %s", logbuf);
}

Test(hub_dev, tcp_device_keeps_the_host_network_only)
{
    hub_device_config c = regdev_config("remote");
    c.endpoint = "tcp://127.0.0.1:0";
    hub_device *d = add(&c);
    int pid = hub_device_pid(d);
    cr_assert(same_ns(pid, "net"), "a tcp device reaches the hub over the host's network");
    char layers[128];
    if (strstr(hub_device_confinement(d, layers, sizeof(layers)), "pid")) {
        cr_assert_not(same_ns(pid, "pid"), "but the rest of its jail holds");
        cr_assert_not(same_ns(pid, "mnt"));
    }
    wr32(DEV_BASE + 0x10, 7);
    cr_assert_eq(rd32(DEV_BASE + 0x10, NULL), 7);
}
