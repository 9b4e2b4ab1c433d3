/*
 * plexus::bridge through the hub's real device layer: plexus-test-systemc-probe (tests/systemc/probe.cpp, TLM-2.0
 * models behind the bridge) spawned by hub_devmgr_add, guest accesses with address_space_*, interrupts through
 * the set_irq callback, virtual time moved with vclock_advance. What the models saw is read back from their
 * registers; what the guest sees is the access's MemTxResult and value.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <time.h>

#include "../common/hub_test.h"

#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define CTL 0x10000000u
#define BUS 0x10001000u
#define RAW 0x10002000u
#define POSTED 0x10003000u
#define MEM 0x10004000u
#define IRQ0 7
#define IRQ1 8

enum {
    LAST_ADDR = 0x08, LAST_CMD = 0x10, LAST_LEN = 0x14, LAST_WIDTH = 0x18, LAST_BE = 0x1c, LAST_DATA = 0x20,
    TRANSACTIONS = 0x28, IDENT = 0x2c, DMA_ADDR = 0x30, DMA_LEN = 0x38, DMA_CMD = 0x3c, DMA_RES = 0x40,
    DMA_STATUS = 0x44, DMA_BYTES = 0x48, DMI_START = 0x50, DMI_END = 0x58, DMI_ACCESS = 0x60, INVALIDATIONS = 0x64,
    IRQ = 0x68, IRQ_AFTER = 0x6c, NOW = 0x70, RESETS = 0x78, ABORT = 0x80, HANG = 0x84, STARVE = 0x88,
    REPORT = 0x8c,
};
#define NO_BE 0x100u
#define DMI_REFUSED 0xdead0001u
#define TLM_ADDRESS_ERROR 3u        /* DMA_STATUS: 1 - TLM_ADDRESS_ERROR_RESPONSE */

static test_rig rig;
static hub_device *dev;
static char logbuf[32768];
static int level[2];
static uint64_t raised_at[2];
static unsigned raised[2];
static uint64_t charged;
static struct { uint64_t addr, len; } written[16];
static unsigned n_written;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void on_irq(void *o, unsigned irq, int lvl)
{
    cr_assert(irq == IRQ0 || irq == IRQ1, "irq %u", irq);
    unsigned i = irq == IRQ1;
    if (lvl && !level[i]) {
        raised[i]++;
        raised_at[i] = vclock_now(&rig.clk);
    }
    level[i] = lvl;
}

static void on_log(void *o, const char *device, int lvl, const char *msg)
{
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static void on_charge(void *o, uint64_t ns)
{
    charged += ns;
}

static void on_ram_written(void *o, uint64_t addr, uint64_t len)
{
    if (n_written < 16)
        written[n_written++] = (typeof(written[0])){ addr, len };
}

static void down(void)
{
    if (rig.mgr)
        test_rig_fini(&rig);
    rig.mgr = NULL;
}

static void rig_up(bool lockstep)
{
    memset(level, 0, sizeof(level));
    memset(raised, 0, sizeof(raised));
    logbuf[0] = 0;
    charged = 0;
    n_written = 0;
    test_rig_init(&rig, RAM_BASE, RAM_SIZE,
                  (hub_devmgr_env){ .set_irq = on_irq, .log = on_log, .charge = lockstep ? on_charge : NULL,
                                    .ram_written = on_ram_written });
}

static const hub_region_map maps[] = {
    { "ctl", CTL }, { "bus", BUS }, { "raw", RAW }, { "posted", POSTED }, { "mem", MEM },
};
static const hub_irq_map irqs[] = { { 0, IRQ0 }, { 1, IRQ1 } };

static hub_device_config probe_config(void)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/plexus-test-systemc-probe");
    return (hub_device_config){ .name = "probe", .program = prog, .regions = maps, .n_regions = 5, .irqs = irqs,
                                .n_irqs = 2, .timeout_ms = 5000 };
}

static hub_device *add(const hub_device_config *c)
{
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, c, &err);
    cr_assert_not_null(d, "%s\nlog:\n%s", err ? error_get_pretty(err) : "?", logbuf);
    return d;
}

static void up(void)
{
    rig_up(false);
    hub_device_config c = probe_config();
    dev = add(&c);
}

static uint64_t rd(hwaddr a, unsigned size, MemTxResult *res)
{
    uint8_t b[8] = { 0 };
    MemTxResult r = address_space_read(&rig.as, a, MEMTXATTRS_UNSPECIFIED, b, size);
    if (res)
        *res = r;
    else
        cr_assert_eq(r, MEMTX_OK, "read of %u at 0x%lx: %u\nlog:\n%s", size, (unsigned long)a, r, logbuf);
    uint64_t v = 0;
    memcpy(&v, b, size);
    return v;
}

static MemTxResult wr_res(hwaddr a, unsigned size, uint64_t v)
{
    uint8_t b[8];
    memcpy(b, &v, 8);
    return address_space_write(&rig.as, a, MEMTXATTRS_UNSPECIFIED, b, size);
}

static void wr(hwaddr a, unsigned size, uint64_t v)
{
    MemTxResult r = wr_res(a, size, v);
    cr_assert_eq(r, MEMTX_OK, "write of %u at 0x%lx: %u\nlog:\n%s", size, (unsigned long)a, r, logbuf);
}

static uint64_t ctl(unsigned reg)
{
    return rd(CTL + reg, reg == LAST_ADDR || reg == LAST_DATA || reg == DMA_ADDR || reg == DMI_START ||
                         reg == DMI_END || reg == NOW ? 8 : 4, NULL);
}

static uint8_t *ram(void)
{
    return memory_region_get_ram_ptr(&rig.ram);
}

static uint32_t pattern_sum(uint32_t len)
{
    uint32_t s = 0;
    for (uint32_t i = 0; i < len; i++)
        s += (uint8_t)(i * 7 + 1);
    return s;
}

static void dma(uint64_t addr, uint32_t len, uint32_t cmd)
{
    wr(CTL + DMA_ADDR, 8, addr);
    wr(CTL + DMA_LEN, 4, len);
    wr(CTL + DMA_CMD, 4, cmd);
}

TestSuite(systemc_bridge, .fini = down, .timeout = 60);

/* A region with a bus width of 8: every guest access, of every size at every aligned offset, is one aligned
 * 8-byte transaction whose byte enables select exactly the lanes it covers; reads return those lanes. */
Test(systemc_bridge, accesses_of_every_size_are_byte_enables_on_the_bus_width)
{
    up();
    for (unsigned size = 1; size <= 8; size *= 2) {
        for (unsigned off = 0; off < 16; off += size) {
            uint64_t v = 0x8877665544332211ull ^ ((uint64_t)(size * 16 + off) * 0x0101010101010101ull);
            uint64_t mask = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
            unsigned lane = off % 8;
            wr(BUS + off, size, v);
            cr_assert_eq(ctl(LAST_CMD), 1);
            cr_assert_eq(ctl(LAST_ADDR), 0x1000 + off - lane, "size %u at %u", size, off);
            cr_assert_eq(ctl(LAST_LEN), 8);
            cr_assert_eq(ctl(LAST_WIDTH), 8);
            cr_assert_eq(ctl(LAST_BE), ((1u << size) - 1) << lane, "size %u at %u: lanes 0x%x", size, off,
                         (unsigned)ctl(LAST_BE));
            cr_assert_eq((ctl(LAST_DATA) >> (8 * lane)) & mask, v & mask, "the data is in its lanes");
            cr_assert_eq(rd(BUS + off, size, NULL), v & mask, "size %u at %u reads back", size, off);
            cr_assert_eq(ctl(LAST_CMD), 0);
            cr_assert_eq(ctl(LAST_BE), ((1u << size) - 1) << lane);
        }
    }
    /* The lanes outside an access are left alone: bytes written one by one read back as one word. */
    for (unsigned i = 0; i < 8; i++)
        wr(BUS + 0x20 + i, 1, 0xa0 + i);
    cr_assert_eq(rd(BUS + 0x20, 8, NULL), 0xa7a6a5a4a3a2a1a0ull);
    cr_assert_eq(ctl(TRANSACTIONS), 2 * (16 + 8 + 4 + 2) + 8 + 1, "one transaction per access");
}

/* Without a bus width each access is one transaction of its own size at its own address, unaligned ones too,
 * with no byte enables; read data comes from the model. */
Test(systemc_bridge, without_a_bus_width_each_access_is_a_transaction_of_its_size)
{
    up();
    for (unsigned size = 1; size <= 8; size *= 2) {
        for (unsigned off = 0; off < 12; off++) {
            uint64_t mask = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
            wr(RAW + off, size, 0x0123456789abcdefull);
            cr_assert_eq(ctl(LAST_ADDR), 0x2000 + off);
            cr_assert_eq(ctl(LAST_LEN), size);
            cr_assert_eq(ctl(LAST_WIDTH), size);
            cr_assert_eq(ctl(LAST_BE), NO_BE);
            cr_assert_eq(ctl(LAST_DATA), 0x0123456789abcdefull & mask);
            uint64_t want = 0;
            for (unsigned i = 0; i < size; i++)
                want |= (uint64_t)(uint8_t)((0x2000 + off + i) * 7 + 3) << (8 * i);
            cr_assert_eq(rd(RAW + off, size, NULL), want, "size %u at %u", size, off);
        }
    }
}

/* The response status is what the guest's access ends with: an address error a decode error, any other error
 * (and a status the model left incomplete) a bus error; a read then returns all-ones. The device goes on. */
Test(systemc_bridge, tlm_response_statuses_become_the_access_result)
{
    up();
    MemTxResult r;
    cr_assert_eq(rd(BUS + 0x80, 4, &r), 0xffffffffu);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    cr_assert_eq(wr_res(BUS + 0x88, 8, 1), MEMTX_DECODE_ERROR);
    cr_assert_eq(rd(BUS + 0x90, 2, &r), 0xffffu);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(wr_res(BUS + 0x98, 1, 1), MEMTX_ERROR);
    cr_assert_eq(rd(BUS + 0xa0, 4, &r), 0xffffffffu);
    cr_assert_eq(r, MEMTX_ERROR, "a status left incomplete is an error");
    /* Sizes outside the region's declared ones never reach the model. */
    uint32_t before = (uint32_t)ctl(TRANSACTIONS);
    rd(CTL, 2, &r);
    cr_assert_eq(r, MEMTX_DECODE_ERROR);
    cr_assert_eq(ctl(TRANSACTIONS), before);
    wr(BUS, 4, 0x600dcafe);
    cr_assert_eq(rd(BUS, 4, NULL), 0x600dcafe, "later accesses are served");
    cr_assert_not(hub_device_failed(dev));
}

/* A posted write cannot report an error to the guest: the bridge logs it. */
Test(systemc_bridge, a_posted_write_that_fails_is_logged)
{
    up();
    wr(POSTED, 4, 1);
    wr(POSTED + 0x80, 4, 2);
    wr(POSTED, 4, 3);
    cr_assert_eq(rd(POSTED, 4, NULL), 2, "the good writes arrived, in order");
    cr_assert(strstr(logbuf, "[probe] posted write of 4 bytes at posted+0x80 answered"), "log:\n%s", logbuf);
}

/* The model's DMA through DMI: the pointer is the shared mapping of the whole grant, read-write. */
Test(systemc_bridge, dmi_is_the_whole_grant_and_reaches_guest_ram)
{
    up();
    dma(RAM_BASE + 0x1234, 3000, 1);
    cr_assert_eq(ctl(DMA_RES), 0, "DMI granted for the write");
    cr_assert_eq(ctl(DMI_START), RAM_BASE);
    cr_assert_eq(ctl(DMI_END), RAM_BASE + RAM_SIZE - 1);
    cr_assert_eq(ctl(DMI_ACCESS), 3, "read and write (tlm_dmi::DMI_ACCESS_READ_WRITE)");
    for (unsigned i = 0; i < 3000; i++)
        cr_assert_eq(ram()[0x1234 + i], (uint8_t)(i * 7 + 1), "byte %u", i);
    cr_assert_eq(ram()[0x1233], 0);
    cr_assert_eq(ram()[0x1234 + 3000], 0);
    memset(ram() + 0x8000, 0x11, 100);
    dma(RAM_BASE + 0x8000, 100, 3);
    cr_assert_eq(ctl(DMA_RES), 0x11 * 100, "DMI read sees what the guest wrote");
    hub_devmgr_stats st;
    hub_device_get_stats(dev, &st);
    cr_assert_eq(st.dma_messages, 0, "DMI needs no message");
}

/* b_transport and transport_dbg on the ram socket reach guest RAM too; byte enables and a streaming width
 * are honoured. */
Test(systemc_bridge, b_transport_and_transport_dbg_reach_guest_ram)
{
    up();
    dma(RAM_BASE + 0x100, 777, 2);
    cr_assert_eq(ctl(DMA_STATUS), 0);
    for (unsigned i = 0; i < 777; i++)
        cr_assert_eq(ram()[0x100 + i], (uint8_t)(i * 7 + 1), "byte %u", i);
    dma(RAM_BASE + 0x100, 777, 4);
    cr_assert_eq(ctl(DMA_STATUS), 0);
    cr_assert_eq(ctl(DMA_RES), pattern_sum(777));
    memset(ram() + 0x2000, 0, 64);
    dma(RAM_BASE + 0x2000, 64, 9);
    cr_assert_eq(ctl(DMA_BYTES), 64);
    cr_assert_eq(ram()[0x2000 + 63], (uint8_t)(63 * 7 + 1));
    dma(RAM_BASE + 0x2000, 64, 5);
    cr_assert_eq(ctl(DMA_BYTES), 64);
    cr_assert_eq(ctl(DMA_RES), pattern_sum(64));
    /* transport_dbg across the grant's end moves what the grant holds. */
    dma(RAM_BASE + RAM_SIZE - 10, 64, 5);
    cr_assert_eq(ctl(DMA_BYTES), 10);
    /* 16 bytes, streaming width 4, byte enables {on, off}: lanes 0 and 2 of the last beat land at addr, addr+2. */
    memset(ram() + 0x3000, 0xcc, 8);
    dma(RAM_BASE + 0x3000, 16, 6);
    cr_assert_eq(ctl(DMA_STATUS), 0);
    uint8_t want[8] = { (uint8_t)(12 * 7 + 1), 0xcc, (uint8_t)(14 * 7 + 1), 0xcc, 0xcc, 0xcc, 0xcc, 0xcc };
    cr_assert_arr_eq(ram() + 0x3000, want, 8);
}

/* Outside the device's grants: no DMI, b_transport answers TLM_ADDRESS_ERROR_RESPONSE, transport_dbg moves
 * nothing, guest memory is untouched, and the hub says why. */
Test(systemc_bridge, dma_outside_the_grant_is_refused)
{
    rig_up(false);
    hub_device_config c = probe_config();
    static const char *const none[] = { NULL };
    c.ram_grants = none;        /* RAM exists, but this device may not reach it */
    c.n_ram_grants = 0;
    dev = add(&c);
    memset(ram() + 0x100, 0x5a, 64);
    dma(RAM_BASE + 0x100, 64, 1);
    cr_assert_eq(ctl(DMA_RES), DMI_REFUSED);
    dma(RAM_BASE + 0x100, 64, 7);
    cr_assert_eq(ctl(DMA_RES), 0, "no DMI");
    cr_assert_eq(ctl(DMI_ACCESS), 0);
    dma(RAM_BASE + 0x100, 64, 2);
    cr_assert_eq(ctl(DMA_STATUS), TLM_ADDRESS_ERROR);
    dma(RAM_BASE + 0x100, 64, 4);
    cr_assert_eq(ctl(DMA_STATUS), TLM_ADDRESS_ERROR);
    dma(RAM_BASE + 0x100, 64, 9);
    cr_assert_eq(ctl(DMA_BYTES), 0);
    for (unsigned i = 0; i < 64; i++)
        cr_assert_eq(ram()[0x100 + i], 0x5a, "byte %u changed", i);
    cr_assert(strstr(logbuf, "outside its RAM grants: refused"), "log:\n%s", logbuf);
    down();

    /* A device that has the grant: an address beyond it (a hole) is refused the same way. */
    up();
    dma(0x1000, 16, 2);
    cr_assert_eq(ctl(DMA_STATUS), TLM_ADDRESS_ERROR);
    dma(0x1000, 16, 7);
    cr_assert_eq(ctl(DMA_RES), 0);
    cr_assert_not(hub_device_failed(dev), "a refused DMA is the model's to handle");
}

/* RAM granted without its descriptor (DMA by message): no DMI, b_transport goes through the hub and works. */
Test(systemc_bridge, dma_by_message_when_ram_is_not_mapped)
{
    rig_up(false);
    hub_device_config c = probe_config();
    c.ram_by_message = true;
    dev = add(&c);
    dma(RAM_BASE + 0x400, 200, 1);
    cr_assert_eq(ctl(DMA_RES), DMI_REFUSED);
    dma(RAM_BASE + 0x400, 200, 2);
    cr_assert_eq(ctl(DMA_STATUS), 0);
    cr_assert_eq(ram()[0x400 + 199], (uint8_t)(199 * 7 + 1));
    dma(RAM_BASE + 0x400, 200, 4);
    cr_assert_eq(ctl(DMA_RES), pattern_sum(200));
    hub_devmgr_stats st;
    hub_device_get_stats(dev, &st);
    cr_assert_geq(st.dma_messages, 2);
}

/* What the models write is reported to the hub (its CPU drops translated code there) before the access is
 * answered: b_transport and transport_dbg by the bridge, DMI when the model says so (TLM-2.0 cannot tell). */
Test(systemc_bridge, writes_to_guest_ram_are_reported_to_the_hub)
{
    up();
    dma(RAM_BASE + 0x5000, 300, 2);
    cr_assert_eq(n_written, 1, "b_transport write reported");
    cr_assert_eq(written[0].addr, RAM_BASE + 0x5000);
    cr_assert_eq(written[0].len, 300);
    dma(RAM_BASE + 0x6000, 40, 9);
    cr_assert_eq(n_written, 2, "transport_dbg write reported");
    cr_assert_eq(written[1].addr, RAM_BASE + 0x6000);
    dma(RAM_BASE + 0x7000, 100, 10);
    cr_assert_eq(n_written, 3, "DMI write the model reported");
    cr_assert_eq(written[2].addr, RAM_BASE + 0x7000);
    cr_assert_eq(written[2].len, 100);
    dma(RAM_BASE + 0x8000, 100, 1);
    cr_assert_eq(n_written, 3, "a DMI write nobody reports stays unknown to the hub");
    dma(RAM_BASE + 0x7000, 100, 4);
    cr_assert_eq(n_written, 3, "reads are not writes");
}

Test(systemc_bridge, invalidate_ram_reaches_every_initiator)
{
    up();
    cr_assert_eq(ctl(INVALIDATIONS), 0);
    dma(0, 0, 8);
    cr_assert_eq(ctl(INVALIDATIONS), 1);
}

/* sc_in<bool> lines drive the IRQ lines as levels; a model's timed event raises one at its exact virtual time
 * while nobody touches the device (free-running: a timer at the models' next activity). */
Test(systemc_bridge, interrupts_follow_the_models_signals_in_virtual_time)
{
    up();
    wr(CTL + IRQ, 4, 1);
    cr_assert_eq(level[0], 1);
    cr_assert_eq(level[1], 0);
    wr(CTL + IRQ, 4, 2);
    cr_assert_eq(level[0], 0);
    cr_assert_eq(level[1], 1);
    wr(CTL + IRQ, 4, 0);
    cr_assert_eq(level[1], 0);
    cr_assert_eq(raised[0], 1);
    cr_assert_eq(raised[1], 1);

    vclock_advance(&rig.clk, 10000);
    wr(CTL + IRQ_AFTER, 4, 2500);
    uint64_t start = vclock_now(&rig.clk);
    for (int i = 0; i < 100 && !level[0]; i++) {
        vclock_advance(&rig.clk, vclock_now(&rig.clk) + 100);
        hub_devmgr_poll(rig.mgr, 0);
    }
    cr_assert_eq(level[0], 1, "no interrupt\nlog:\n%s", logbuf);
    cr_assert_eq(raised_at[0], start + 2500, "raised at +%llu ns", (unsigned long long)(raised_at[0] - start));
    cr_assert_eq(ctl(NOW), vclock_now(&rig.clk), "SystemC time is the hub's");
}

Test(systemc_bridge, properties_reach_the_models_constructors)
{
    rig_up(false);
    hub_device_config c = probe_config();
    static const hub_prop props[] = { { "ident", "0x1234abcd" } };
    c.props = props;
    c.n_props = 1;
    dev = add(&c);
    cr_assert_eq(ctl(IDENT), 0x1234abcd);
    down();

    up();
    cr_assert_eq(ctl(IDENT), 0x5a5a, "the declared default");
}

/* A number property out of its declared range stops the device before it is ready, naming the property. */
Test(systemc_bridge, a_bad_property_stops_the_device_from_starting)
{
    rig_up(false);
    hub_device_config c = probe_config();
    static const hub_prop props[] = { { "ident", "0x100000000" } };
    c.props = props;
    c.n_props = 1;
    Error *err = NULL;
    cr_assert_null(hub_devmgr_add(rig.mgr, &c, &err));
    cr_assert(strstr(logbuf, "property 'ident' = 4294967296 is out of range [0, 4294967295]"), "log:\n%s", logbuf);
    error_free(err);
    static const hub_prop word[] = { { "ident", "many" } };
    c.props = word;
    err = NULL;
    cr_assert_null(hub_devmgr_add(rig.mgr, &c, &err));
    cr_assert(strstr(logbuf, "property 'ident': 'many' is not an unsigned number"), "log:\n%s", logbuf);
    error_free(err);
}

Test(systemc_bridge, reset_reaches_the_models_and_lowers_their_lines)
{
    up();
    wr(CTL + IRQ, 4, 3);
    cr_assert_eq(level[0] + level[1], 2);
    cr_assert_eq(hub_device_reset(dev), 0);
    cr_assert_eq(ctl(RESETS), 1);
    cr_assert_eq(level[0] + level[1], 0, "the model lowered its lines");
}

/* A second target on mmio, whose b_transport waits inside: free-running, the model runs ahead of the hub by
 * that access's time only, and the guest's clock does not pay it. */
Test(systemc_bridge, a_second_target_that_waits_inside_b_transport)
{
    rig_up(false);
    hub_device_config c = probe_config();
    static const hub_prop props[] = { { "mem-wait-ns", "300" }, { "mem-delay-ns", "50" } };
    c.props = props;
    c.n_props = 2;
    dev = add(&c);
    wr(MEM + 0x10, 8, 0x1122334455667788ull);
    cr_assert_eq(rd(MEM + 0x10, 8, NULL), 0x1122334455667788ull);
    cr_assert_eq(rd(MEM + 0x14, 2, NULL), 0x3344);
    cr_assert_eq(ctl(NOW), 900, "three accesses of 300 ns");
    cr_assert_eq(vclock_now(&rig.clk), 0);
}

/* Lockstep: grants are SystemC runs up to the granted time, the model's next activity is the next event the
 * hub grants exactly, an interrupt carries its time, and an access's own time is charged to the guest. */
Test(systemc_bridge, lockstep_grants_next_events_and_charges_access_time)
{
    rig_up(true);
    hub_device_config c = probe_config();
    static const hub_prop props[] = { { "mem-wait-ns", "300" }, { "mem-delay-ns", "50" } };
    c.props = props;
    c.n_props = 2;
    c.lockstep = true;
    dev = add(&c);
    cr_assert_eq(rd(MEM, 4, NULL), 0);
    cr_assert_eq(charged, 350, "wait + delay charged: %llu", (unsigned long long)charged);
    vclock_advance(&rig.clk, 20000);
    wr(CTL + IRQ_AFTER, 4, 1234);
    cr_assert_eq(level[0], 0);
    cr_assert_lt(ctl(NOW), 20000 + 1234, "the model is not ahead of its event");
    vclock_advance(&rig.clk, 20000 + 1233);
    cr_assert_eq(level[0], 0, "not before its time");
    vclock_advance(&rig.clk, 20000 + 1234);
    cr_assert_eq(level[0], 1, "granted exactly at its next event\nlog:\n%s", logbuf);
    cr_assert_eq(raised_at[0], 20000 + 1234);
    hub_devmgr_stats st;
    hub_device_get_stats(dev, &st);
    cr_assert_geq(st.grants, 1);
    vclock_advance(&rig.clk, 200000);
    cr_assert_eq(ctl(NOW), 200000, "caught up to the hub at the access");
    cr_assert_not(hub_device_failed(dev), "log:\n%s", logbuf);
}

/* A model that crashes, hangs, waits for nothing or reports an error is a failed device like any other: the
 * access fails, later ones fail at once, the hub says what happened. */
Test(systemc_bridge, a_model_that_crashes_fails_the_device)
{
    up();
    MemTxResult r;
    cr_assert_eq(rd(CTL + ABORT, 4, &r), 0xffffffffu);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert(hub_device_failed(dev));
    cr_assert(strstr(logbuf, "[probe] device process "), "log:\n%s", logbuf);
    rd(CTL, 4, &r);
    cr_assert_eq(r, MEMTX_ERROR);
}

Test(systemc_bridge, a_model_that_hangs_times_out)
{
    rig_up(false);
    hub_device_config c = probe_config();
    c.timeout_ms = 300;
    dev = add(&c);
    MemTxResult r;
    rd(CTL + HANG, 4, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert(hub_device_failed(dev));
    cr_assert(strstr(logbuf, "no answer to a read within 300 ms"), "log:\n%s", logbuf);
}

Test(systemc_bridge, a_model_waiting_for_nothing_ends_the_device)
{
    up();
    MemTxResult r;
    rd(CTL + STARVE, 4, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert(hub_device_failed(dev));
    cr_assert(strstr(logbuf, "the simulation ran out of activity while a hub message waited for the models"),
              "log:\n%s", logbuf);
    cr_assert(strstr(logbuf, "device left (Goodbye, status 1)"), "log:\n%s", logbuf);
}

Test(systemc_bridge, a_model_error_report_ends_the_device_with_its_text)
{
    up();
    MemTxResult r;
    rd(CTL + REPORT, 4, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert(strstr(logbuf, "the probe was asked to fail"), "log:\n%s", logbuf);
    cr_assert(strstr(logbuf, "a model threw during a guest read"), "log:\n%s", logbuf);
    /* The error answer comes first, then the device's Goodbye: the hub marks it failed when it reads that. */
    for (long long end = now_ms() + 30000; !hub_device_failed(dev) && now_ms() < end;)
        hub_devmgr_poll(rig.mgr, 10);
    cr_assert(hub_device_failed(dev), "log:\n%s", logbuf);
}

/* A binding mistake found when the simulation starts (a region served by a target that is not bound) ends the
 * device with a message that says which. */
Test(systemc_bridge, a_region_without_its_target_ends_the_device_with_the_reason)
{
    rig_up(false);
    hub_device_config c = probe_config();
    static const char *const argv[] = { "--probe-bad-target", NULL };
    c.argv = argv;
    dev = add(&c);
    MemTxResult r;
    rd(CTL, 4, &r);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert(strstr(logbuf, "region 'mem' is served by mmio target 2, but 2 targets are bound to mmio"), "log:\n%s",
              logbuf);
    cr_assert(hub_device_failed(dev));
}
