/*
 * A device written in Python from docs/protocol.md and proto/plexus.proto alone (tests/protocol/pydev.py),
 * spawned and driven by the hub's real device layer: handshake, MMIO round trips, a property, DMA by message
 * into guest RAM, an IRQ line, and an orderly shutdown.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "../common/hub_test.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <plexus/memory.h>

#include "dev/devmgr.h"
#include "vclock.h"

#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define DEV_BASE 0x10000000u
#define DEV_IRQ 9u

#define REG_ID 0x00
#define REG_SCRATCH 0x04
#define REG_DMA_LO 0x08
#define REG_DMA_HI 0x0c
#define REG_DMA_LEN 0x10
#define REG_DMA_GO 0x14
#define REG_STATUS 0x18
#define REG_IRQ_ACK 0x1c
#define REG_BASE 0x20
#define REG_RAM 0x24

static MemoryRegion sysmem, ram;
static AddressSpace as;
static vclock clk;
static hub_ram_block block;
static hub_devmgr *mgr;
static int irq_level[16];
static unsigned n_irq_events;
static char logbuf[16384];
static char done_path[256];
/* What the Python device needs in its jail besides the system: its script and bindings, and its marker file. */
static const char *const pydev_read[] = { PYDEV_SCRIPT_DIR, PYDEV_GEN_DIR };
static const char *pydev_write[1];
#define PYDEV_JAIL .sandbox_read = pydev_read, .n_sandbox_read = 2, .sandbox_write = pydev_write, .n_sandbox_write = 1

static void on_irq(void *opaque, unsigned irq, int level)
{
    if (irq < 16)
        irq_level[irq] = level;
    n_irq_events++;
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
    memory_region_add_subregion(&sysmem, RAM_BASE, &ram);
    address_space_init(&as, &sysmem, "test");
    vclock_init(&clk);
    block = (hub_ram_block){ "ram", RAM_BASE, RAM_SIZE, memory_region_get_fd(&ram), false };
    hub_devmgr_env env = {
        .sysmem = &sysmem, .as = &as, .clock = &clk, .ram = &block, .n_ram = 1, .set_irq = on_irq, .log = on_log,
    };
    mgr = hub_devmgr_new(&env, &err);
    cr_assert_not_null(mgr, "%s", err ? error_get_pretty(err) : "");
    memset(irq_level, 0, sizeof(irq_level));
    n_irq_events = 0;
    logbuf[0] = 0;
    snprintf(done_path, sizeof(done_path), "/tmp/plexus-pydev-%d.done", (int)getpid());
    unlink(done_path);
    pydev_write[0] = done_path;
}

static void teardown(void)
{
    hub_devmgr_free(mgr);
    address_space_destroy(&as);
    memory_region_del_subregion(&sysmem, &ram);
    memory_region_destroy(&ram);
    memory_region_destroy(&sysmem);
    unlink(done_path);
}

static const hub_region_map regions[] = { { "regs", DEV_BASE } };

static const hub_irq_map irqs[] = { { 0, DEV_IRQ } };

/* The Python device, on ZeroMQ, or (@ring) told to offer the ring, which the hub then insists on. */
static hub_device *add_pydev_on(const hub_prop *props, size_t n_props, bool ring)
{
    static const char *argv[4];
    argv[0] = "--done";
    argv[1] = done_path;
    argv[2] = ring ? "--ring" : NULL;
    argv[3] = NULL;
    hub_device_config c = {
        .name = "pydev", .program = PYDEV_WRAPPER, .argv = argv, .props = props, .n_props = n_props,
        .regions = regions, .n_regions = 1, .irqs = irqs, .n_irqs = 1, .timeout_ms = 5000,
        .transport = ring ? HUB_TRANSPORT_RING : HUB_TRANSPORT_AUTO, PYDEV_JAIL,
    };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(mgr, &c, &err);
    cr_assert_not_null(d, "add pydev: %s\nlog:\n%.3000s", err ? error_get_pretty(err) : "?", logbuf);
    cr_assert_str_eq(hub_device_endpoint(d), ring ? "ring" : hub_device_endpoint(d));
    if (!ring)
        cr_assert(strncmp(hub_device_endpoint(d), "ipc://", 6) == 0, "a device without CAP_RING stays on ZeroMQ");
    return d;
}

static hub_device *add_pydev(const hub_prop *props, size_t n_props)
{
    return add_pydev_on(props, n_props, false);
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

static MemTxResult wr32(hwaddr a, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    return address_space_write(&as, a, MEMTXATTRS_UNSPECIFIED, b, 4);
}

TestSuite(protocol_pydev, .init = setup, .fini = teardown, .timeout = 60);

/* Registers, DMA by message, the IRQ line and an orderly shutdown, on either transport. */
static void registers_dma_irq_and_shutdown(bool ring)
{
    hub_device *d = add_pydev_on(NULL, 0, ring);
    cr_assert_str_eq(hub_device_model(d), "plexus,py-scratch");
    cr_assert_eq(hub_device_region_size(d, "regs"), 0x100);
    int pid = hub_device_pid(d);
    cr_assert_gt(pid, 0);

    cr_assert_eq(rd32(DEV_BASE + REG_ID, NULL), 0x50594456, "ID register (property default)");
    cr_assert_eq(rd32(DEV_BASE + REG_BASE, NULL), DEV_BASE, "Config.placement names the region's base");
    cr_assert_eq(rd32(DEV_BASE + REG_RAM, NULL), 1, "Config.ram has the one block, without a descriptor");

    cr_assert_eq(wr32(DEV_BASE + REG_SCRATCH, 0xa5c3f00d), MEMTX_OK);
    cr_assert_eq(rd32(DEV_BASE + REG_SCRATCH, NULL), 0xa5c3f00d);
    cr_assert_eq(wr32(DEV_BASE + REG_SCRATCH, 0x12345678), MEMTX_OK);
    cr_assert_eq(rd32(DEV_BASE + REG_SCRATCH, NULL), 0x12345678);

    /* Nothing at 0x80: the device answers MEMTX_DECODE_ERROR, the guest sees all-ones. */
    MemTxResult r;
    cr_assert_eq(rd32(DEV_BASE + 0x80, &r), 0xffffffffu);
    cr_assert_neq(r, MEMTX_OK);
    cr_assert_not(hub_device_failed(d), "a decode error does not fail the device");

    /* DMA by message: 300 bytes of (i * 7 + 0x3c) & 0xff at RAM + 0x1235 (unaligned), then IRQ line 0 high. */
    uint8_t *host = memory_region_get_ram_ptr(&ram);
    memset(host + 0x1200, 0xee, 0x200);
    cr_assert_eq(irq_level[DEV_IRQ], 0);
    cr_assert_eq(wr32(DEV_BASE + REG_DMA_LO, RAM_BASE + 0x1235), MEMTX_OK);
    cr_assert_eq(wr32(DEV_BASE + REG_DMA_HI, 0), MEMTX_OK);
    cr_assert_eq(wr32(DEV_BASE + REG_DMA_LEN, 300), MEMTX_OK);
    cr_assert_eq(wr32(DEV_BASE + REG_DMA_GO, 0x3c), MEMTX_OK);
    cr_assert_eq(rd32(DEV_BASE + REG_STATUS, NULL), 0, "DMA status");
    for (unsigned i = 0; i < 300; i++)
        cr_assert_eq(host[0x1235 + i], (uint8_t)(i * 7 + 0x3c), "RAM byte %u", i);
    cr_assert_eq(host[0x1234], 0xee, "nothing before the DMA window");
    cr_assert_eq(host[0x1235 + 300], 0xee, "nothing after the DMA window");
    /* The IRQ was sent before the write's reply, and the hub serves it while waiting: already seen. */
    cr_assert_eq(irq_level[DEV_IRQ], 1, "IRQ line 0 raised after the DMA\nlog:\n%.3000s", logbuf);
    cr_assert_eq(wr32(DEV_BASE + REG_IRQ_ACK, 1), MEMTX_OK);
    cr_assert_eq(irq_level[DEV_IRQ], 0, "IRQ line 0 lowered by IRQ_ACK");

    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_geq(st.dma_messages, 1, "the device has no CAP_RAM_FDS: DMA went by message");
    cr_assert_eq(st.irq_events, 2);

    /* A DMA to a hole in the address space fails and raises nothing. */
    cr_assert_eq(wr32(DEV_BASE + REG_DMA_LO, 0x70000000u), MEMTX_OK);
    cr_assert_eq(wr32(DEV_BASE + REG_DMA_LEN, 16), MEMTX_OK);
    cr_assert_eq(wr32(DEV_BASE + REG_DMA_GO, 1), MEMTX_OK);
    cr_assert_neq(rd32(DEV_BASE + REG_STATUS, NULL), 0, "DMA to unmapped space reports an error");
    cr_assert_eq(irq_level[DEV_IRQ], 0);
    cr_assert_not(hub_device_failed(d));

    /* Orderly shutdown: Shutdown -> Goodbye -> exit 0; the device writes its marker only after that. */
    hub_devmgr_free(mgr);
    mgr = NULL;
    FILE *f = fopen(done_path, "r");
    cr_assert_not_null(f, "device did not finish its shutdown\nlog:\n%.3000s", logbuf);
    char line[32] = "";
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    cr_assert_str_eq(line, "goodbye\n");
    cr_assert(kill(pid, 0) == -1 && errno == ESRCH, "device process is gone after shutdown");
    cr_assert_null(strstr(logbuf, "killed"), "device was not killed\nlog:\n%.3000s", logbuf);
}

Test(protocol_pydev, registers_dma_irq_and_clean_shutdown)
{
    registers_dma_irq_and_shutdown(false);
}

/* The same device, implementing the ring from docs/protocol.md §12 (records, bells, the hub's fixed layouts). */
Test(protocol_pydev, the_ring_from_the_document)
{
    registers_dma_irq_and_shutdown(true);
}

Test(protocol_pydev, property_sets_id_register)
{
    hub_prop p = { "ident", "0xc0ffee" };
    add_pydev(&p, 1);
    cr_assert_eq(rd32(DEV_BASE + REG_ID, NULL), 0xc0ffee);
    cr_assert(strstr(logbuf, "id 0x00c0ffee"), "the device's Log reached the hub\nlog:\n%.3000s", logbuf);
}

Test(protocol_pydev, error_instead_of_ready_fails_the_add_with_its_text)
{
    hub_prop p = { "ident", "bogus" };
    hub_device_config c = {
        .name = "pydev", .program = PYDEV_WRAPPER, .props = &p, .n_props = 1, .regions = regions, .n_regions = 1,
        .irqs = irqs, .n_irqs = 1, .timeout_ms = 5000, PYDEV_JAIL,
    };
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert_not_null(err);
    cr_assert(strstr(error_get_pretty(err), "not a number"), "%s", error_get_pretty(err));
    cr_assert(strstr(error_get_pretty(err), "pydev"), "%s", error_get_pretty(err));
    error_free(err);
}

/* A device that does not offer CAP_LOCKSTEP cannot be run in lockstep: the add fails and says why. */
Test(protocol_pydev, lockstep_needs_the_capability)
{
    static const char *argv[] = { "--done", NULL, NULL };
    argv[1] = done_path;
    hub_device_config c = {
        .name = "pydev", .program = PYDEV_WRAPPER, .argv = argv, .regions = regions, .n_regions = 1, .irqs = irqs,
        .n_irqs = 1, .timeout_ms = 5000, .lockstep = true, PYDEV_JAIL,
    };
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(mgr, &c, &err));
    cr_assert_not_null(err);
    cr_assert_str_eq(error_get_pretty(err), "device 'pydev': sync: lockstep asked for, but the device does not offer "
                                            "it (no CAP_LOCKSTEP in its Hello)");
    error_free(err);
}
