/*
 * The virtio layer of the SDK (<plexus/virtio.h>) through the hub: a real device process (devices/vtest.c)
 * spawned by the hub's device layer, and this test as the driver, writing rings into guest RAM and registers
 * through the hub's address space. Identity and negotiation, chains (direct, indirect, several in flight,
 * completed out of order), interrupts and their suppression, configuration changes, reset, malformed chains
 * (DEVICE_NEEDS_RESET, one log line, nothing else touched) and a restart with chains in flight.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "../common/hub_test.h"
#include "../common/vdriver.h"

#include <signal.h>

#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define RAM2_BASE 0x90000000u
#define RAM2_SIZE 0x10000u
#define DEV_BASE 0x10001000u
#define DEV2_BASE 0x10002000u
#define IRQ 1u
#define IRQ2 2u
#define QAREA (RAM_BASE + 0x10000)
#define Q1AREA (RAM_BASE + 0x11000)
#define BUF (RAM_BASE + 0x20000)
#define INDIRECT (RAM_BASE + 0x30000)

#define NEEDS_RESET 64u
#define FEAT_DEVICE_BIT0 1ull

static test_rig rig;
static char logbuf[32768];
static int irq_level[8];
static unsigned irq_raises[8];
static vdrv drv;

static void on_irq(void *opaque, unsigned irq, int level)
{
    if (irq < 8) {
        if (level && !irq_level[irq])
            irq_raises[irq]++;
        irq_level[irq] = level;
    }
}

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static void setup(void)
{
    test_rig_init2(&rig, RAM_BASE, RAM_SIZE, RAM2_BASE, RAM2_SIZE,
                   (hub_devmgr_env){ .set_irq = on_irq, .log = on_log });
    logbuf[0] = 0;
    memset(irq_level, 0, sizeof(irq_level));
    memset(irq_raises, 0, sizeof(irq_raises));
    drv = (vdrv){ .as = &rig.as, .mgr = rig.mgr, .ram = memory_region_get_ram_ptr(&rig.ram), .ram_base = RAM_BASE,
                  .base = DEV_BASE };
}

static void teardown(void)
{
    test_rig_fini(&rig);
}

TestSuite(virtio, .init = setup, .fini = teardown, .timeout = 120);

static const char *const grants[] = { "ram" };

static hub_device *add_vtest(const char *name, uint64_t base, unsigned irq, unsigned max_restarts)
{
    static char *prog;
    if (!prog)
        prog = test_build_path("bin/virtio-vtest");
    hub_region_map *rm = malloc(sizeof(*rm));
    hub_irq_map *im = malloc(sizeof(*im));
    *rm = (hub_region_map){ "regs", base };
    *im = (hub_irq_map){ 0, irq };
    hub_device_config c = {
        .name = name, .program = prog, .regions = rm, .n_regions = 1, .irqs = im, .n_irqs = 1,
        .ram_grants = grants, .n_ram_grants = 1, .timeout_ms = 5000,
        .max_restarts = max_restarts, .restart_backoff_ms = 10,
    };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "add %s: %s", name, err ? error_get_pretty(err) : "?");
    free(rm);
    free(im);
    return d;
}

static const uint64_t all_features = VD_FEAT_VERSION_1 | VD_FEAT_INDIRECT | VD_FEAT_EVENT_IDX | FEAT_DEVICE_BIT0;

/* A running device with queue 0 (echo) and queue 1 (hold) set up, the driver having accepted @features. */
static void start(vdrv *d, vdq *q0, vdq *q1, uint64_t features)
{
    cr_assert_eq(vd_negotiate(d, features), 1 | 2 | 8, "FEATURES_OK kept");
    vd_queue_at(d, q0, 0, 8, QAREA, true);
    if (q1)
        vd_queue_at(d, q1, 1, 8, Q1AREA, true);
    vd_driver_ok(d);
}

/* Fill @n bytes of guest RAM at @gpa with a pattern from @seed. */
static void fill(uint64_t gpa, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        vd_host(&drv, gpa)[i] = (uint8_t)(seed + i * 7);
}

static unsigned count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(virtio, identity_features_and_configuration_space)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    cr_assert_eq(vd_rd(&drv, VR_MAGIC), 0x74726976);
    cr_assert_eq(vd_rd(&drv, VR_VERSION), 2);
    cr_assert_eq(vd_rd(&drv, VR_DEVICE_ID), 0x7e57);
    cr_assert_eq(vd_rd(&drv, VR_VENDOR_ID), 0x53584c50);
    cr_assert_eq(vd_device_features(&drv), all_features);
    vd_wr(&drv, VR_QUEUE_SEL, 1);
    cr_assert_eq(vd_rd(&drv, VR_QUEUE_NUM_MAX), 8);
    vd_wr(&drv, VR_QUEUE_SEL, 2);
    cr_assert_eq(vd_rd(&drv, VR_QUEUE_NUM_MAX), 0, "no queue 2");
    cr_assert_eq(vd_rd(&drv, VR_SHM_LEN_LOW), 0xffffffff, "no shared memory region");
    cr_assert_eq(vd_rd(&drv, VR_CONFIG), 0x56544553);
    cr_assert_eq(vd_rd_size(&drv, VR_CONFIG + 1, 1), 0x45, "byte reads of the configuration space");
    cr_assert_eq(vd_rd_size(&drv, VR_CONFIG + 2, 2), 0x5654);
    cr_assert_eq(vd_rd(&drv, VR_CONFIG + 12), 0, "past the configuration: 0");
    cr_assert_eq(vd_rd(&drv, VR_CONFIG_GENERATION), 0);
    cr_assert_eq(vd_rd(&drv, VR_STATUS), 0);
}

Test(virtio, features_ok_needs_version_1_and_offered_bits_only)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    cr_assert_eq(vd_negotiate(&drv, FEAT_DEVICE_BIT0), 1 | 2, "a legacy driver is refused FEATURES_OK");
    cr_assert_eq(vd_negotiate(&drv, VD_FEAT_VERSION_1 | (1ull << 5)), 1 | 2, "a bit the device did not offer");
    cr_assert_eq(vd_negotiate(&drv, VD_FEAT_VERSION_1), 1 | 2 | 8);
    cr_assert(strstr(logbuf, "did not accept VIRTIO_F_VERSION_1"), "log: %s", logbuf);
}

Test(virtio, a_chain_is_answered_with_its_used_length_and_one_interrupt)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q;
    start(&drv, &q, NULL, all_features);
    fill(BUF, 100, 1);
    vd_desc(&drv, q.desc, 0, BUF, 60, VD_F_NEXT, 3);            /* device-readable, two pieces */
    vd_desc(&drv, q.desc, 3, BUF + 60, 40, VD_F_NEXT, 5);
    vd_desc(&drv, q.desc, 5, BUF + 0x1000, 30, VD_F_WRITE | VD_F_NEXT, 6);   /* device-writable, two pieces */
    vd_desc(&drv, q.desc, 6, BUF + 0x2000, 100, VD_F_WRITE, 0);
    vd_avail(&drv, &q, 0);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, 1, 3000), "no used entry; log: %s", logbuf);
    uint32_t id, len;
    vd_used_elem(&drv, &q, 0, &id, &len);
    cr_assert_eq(id, 0);
    cr_assert_eq(len, 100);
    for (unsigned i = 0; i < 100; i++) {
        uint8_t want = (uint8_t)~(uint8_t)(1 + i * 7);
        uint8_t got = i < 30 ? vd_host(&drv, BUF + 0x1000)[i] : vd_host(&drv, BUF + 0x2000)[i - 30];
        cr_assert_eq(got, want, "byte %u", i);
    }
    vd_settle(&drv, 20);
    cr_assert_eq(irq_level[IRQ], 1, "used-buffer interrupt");
    cr_assert_eq(irq_raises[IRQ], 1);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 1);
    cr_assert_eq(irq_level[IRQ], 0, "reading the status lowers the line before the read completes");
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 1, "the bit stays until acknowledged");
    vd_wr(&drv, VR_INTERRUPT_ACK, 1);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 0);
    cr_assert_eq(irq_raises[IRQ], 1);
}

Test(virtio, a_completion_between_the_status_read_and_the_posted_ack_is_not_lost)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q0, q1;
    start(&drv, &q0, &q1, VD_FEAT_VERSION_1);
    vd_desc(&drv, q1.desc, 0, BUF, 16, VD_F_WRITE, 0);          /* B: held */
    vd_avail(&drv, &q1, 0);
    vd_notify(&drv, &q1);
    vd_desc(&drv, q0.desc, 0, BUF + 0x100, 16, VD_F_WRITE, 0);  /* A: answered at once */
    vd_avail(&drv, &q0, 0);
    vd_notify(&drv, &q0);
    cr_assert(vd_wait_used(&drv, &q0, 1, 3000));
    vd_settle(&drv, 20);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 1, "the driver's handler reads the status for A");
    /* B completes after that read, and the posted ACK for A reaches the device after it */
    vd_wr(&drv, VR_CONFIG + 4, 1);
    vd_wr(&drv, VR_INTERRUPT_ACK, 1);
    cr_assert(vd_wait_used(&drv, &q1, 1, 3000));
    vd_settle(&drv, 20);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 1, "B's event survives the ACK meant for A");
    cr_assert_eq(irq_raises[IRQ], 2, "and the line went up again for it");
    vd_wr(&drv, VR_INTERRUPT_ACK, 1);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 0, "an ACK after the read clears it");
}

Test(virtio, an_indirect_table_is_walked)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q;
    start(&drv, &q, NULL, all_features);
    fill(BUF, 16, 9);
    vd_desc(&drv, INDIRECT, 0, BUF, 8, VD_F_NEXT, 2);
    vd_desc(&drv, INDIRECT, 2, BUF + 8, 8, VD_F_NEXT, 1);
    vd_desc(&drv, INDIRECT, 1, BUF + 0x1000, 16, VD_F_WRITE, 0);
    vd_desc(&drv, q.desc, 4, BUF + 0x3000, 4, VD_F_NEXT, 7);     /* a direct descriptor, then the table */
    vd_desc(&drv, q.desc, 7, INDIRECT, 3 * 16, VD_F_INDIRECT, 0);
    vd_avail(&drv, &q, 4);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, 1, 3000), "log: %s", logbuf);
    uint32_t id, len;
    vd_used_elem(&drv, &q, 0, &id, &len);
    cr_assert_eq(id, 4);
    cr_assert_eq(len, 16, "4 + 16 readable bytes, 16 writable: 16 echoed");
    uint8_t first = vd_host(&drv, BUF + 0x3000)[0];
    cr_assert_eq(vd_host(&drv, BUF + 0x1000)[0], (uint8_t)~first);
    cr_assert_eq(vd_host(&drv, BUF + 0x1000)[4], (uint8_t)~(uint8_t)9);
}

Test(virtio, chains_in_flight_complete_out_of_order)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q0, q1;
    start(&drv, &q0, &q1, all_features);
    for (unsigned i = 0; i < 5; i++) {
        vd_desc(&drv, q1.desc, i, BUF + 0x100 * i, 16, VD_F_WRITE, 0);
        vd_avail(&drv, &q1, (uint16_t)i);
    }
    vd_notify(&drv, &q1);
    vd_settle(&drv, 50);
    cr_assert_eq(vd_ld16(&drv, q1.used + 4 + 8 * 8), 5, "the device took all five (avail_event)");
    cr_assert_eq(vd_used_idx(&drv, &q1), 0, "and holds them");
    vd_wr(&drv, VR_CONFIG + 4, 1);          /* complete them, newest first */
    cr_assert(vd_wait_used(&drv, &q1, 5, 3000), "log: %s", logbuf);
    for (unsigned i = 0; i < 5; i++) {
        uint32_t id, len;
        vd_used_elem(&drv, &q1, (uint16_t)i, &id, &len);
        cr_assert_eq(id, 4 - i, "used entry %u", i);
        cr_assert_eq(len, 0);
    }
}

Test(virtio, event_index_suppresses_interrupts_until_used_event)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q0, q1;
    start(&drv, &q0, &q1, all_features);
    vd_st16(&drv, q1.avail + 4 + 2 * 8, 2);     /* used_event: interrupt when entry 2 is written */
    for (unsigned i = 0; i < 4; i++) {
        vd_desc(&drv, q1.desc, i, BUF + 0x100 * i, 16, VD_F_WRITE, 0);
        vd_avail(&drv, &q1, (uint16_t)i);
    }
    vd_notify(&drv, &q1);
    vd_settle(&drv, 50);
    cr_assert_eq(vd_ld16(&drv, q1.used + 4 + 8 * 8), 4, "avail_event: the device asks to hear of entry 4 next");
    vd_wr(&drv, VR_CONFIG + 4, 1);
    cr_assert(vd_wait_used(&drv, &q1, 4, 3000));
    vd_settle(&drv, 20);
    cr_assert_eq(irq_raises[IRQ], 1, "one interrupt for four completions crossing used_event");
    vd_rd(&drv, VR_INTERRUPT_STATUS);
    vd_wr(&drv, VR_INTERRUPT_ACK, 1);
    /* used_event far ahead: the next completions stay silent */
    vd_st16(&drv, q1.avail + 4 + 2 * 8, 100);
    for (unsigned i = 4; i < 6; i++) {
        vd_desc(&drv, q1.desc, i, BUF + 0x100 * i, 16, VD_F_WRITE, 0);
        vd_avail(&drv, &q1, (uint16_t)i);
    }
    vd_notify(&drv, &q1);
    vd_settle(&drv, 30);
    vd_wr(&drv, VR_CONFIG + 4, 1);
    cr_assert(vd_wait_used(&drv, &q1, 6, 3000));
    vd_settle(&drv, 30);
    cr_assert_eq(irq_raises[IRQ], 1, "no interrupt while used_event is not reached");
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 0);
}

Test(virtio, no_interrupt_flag_is_honoured_without_event_index)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q;
    start(&drv, &q, NULL, VD_FEAT_VERSION_1);
    vd_st16(&drv, q.avail, 1);              /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    vd_desc(&drv, q.desc, 0, BUF, 16, VD_F_WRITE, 0);
    vd_avail(&drv, &q, 0);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, 1, 3000));
    vd_settle(&drv, 30);
    cr_assert_eq(irq_raises[IRQ], 0);
    vd_st16(&drv, q.avail, 0);
    vd_avail(&drv, &q, 0);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, 2, 3000));
    vd_settle(&drv, 30);
    cr_assert_eq(irq_raises[IRQ], 1);
}

Test(virtio, a_configuration_change_bumps_the_generation_and_interrupts)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q;
    start(&drv, &q, NULL, all_features);
    uint32_t gen = vd_rd(&drv, VR_CONFIG_GENERATION);
    vd_wr(&drv, VR_CONFIG + 4, 2);
    cr_assert_eq(vd_rd(&drv, VR_CONFIG + 8), 1, "the counter went up");
    cr_assert_neq(vd_rd(&drv, VR_CONFIG_GENERATION), gen);
    cr_assert_eq(vd_rd(&drv, VR_CONFIG_GENERATION) % 2, 0, "even once the change is complete");
    vd_settle(&drv, 20);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 2, "configuration change notification");
    cr_assert_eq(irq_raises[IRQ], 1);
}

Test(virtio, reset_returns_every_register_to_its_initial_value)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q;
    start(&drv, &q, NULL, all_features);
    vd_desc(&drv, q.desc, 0, BUF, 16, VD_F_WRITE, 0);
    vd_avail(&drv, &q, 0);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, 1, 3000));
    vd_settle(&drv, 20);
    cr_assert_eq(irq_level[IRQ], 1);
    vd_wr(&drv, VR_STATUS, 0);
    cr_assert_eq(vd_rd(&drv, VR_STATUS), 0);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS), 0);
    vd_wr(&drv, VR_QUEUE_SEL, 0);
    cr_assert_eq(vd_rd(&drv, VR_QUEUE_READY), 0);
    vd_settle(&drv, 20);
    cr_assert_eq(irq_level[IRQ], 0, "the line drops with the reset");
    /* and it works again from scratch */
    start(&drv, &q, NULL, all_features);
    vd_desc(&drv, q.desc, 0, BUF, 16, VD_F_WRITE, 0);
    vd_avail(&drv, &q, 0);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, 1, 3000), "log: %s", logbuf);
}

/*
 * Malformed chains. Each case: the device sets DEVICE_NEEDS_RESET, says why in exactly one log line, raises a
 * configuration change interrupt, leaves the used ring and every buffer alone, keeps answering its registers,
 * and a second device carries on. After a reset the device works again.
 */
typedef void (*breaker)(vdq *q);

static void check_malformed(breaker make_bad, const char *why)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    add_vtest("other", DEV2_BASE, IRQ2, 0);
    vdq q;
    start(&drv, &q, NULL, all_features);
    uint8_t *other_ram = memory_region_get_ram_ptr(&rig.ram2);
    memset(other_ram, 0x5a, RAM2_SIZE);
    memset(vd_host(&drv, BUF), 0x33, 0x10000);
    make_bad(&q);
    vd_notify(&drv, &q);
    vd_settle(&drv, 50);
    uint32_t st = vd_rd(&drv, VR_STATUS);
    cr_assert(st & NEEDS_RESET, "status 0x%x; log: %s", st, logbuf);
    cr_assert_eq(vd_used_idx(&drv, &q), 0, "nothing returned");
    cr_assert_eq(count(logbuf, "device needs reset"), 1, "one log line; log: %s", logbuf);
    cr_assert(strstr(logbuf, why), "the line says '%s'; log: %s", why, logbuf);
    cr_assert_eq(vd_rd(&drv, VR_INTERRUPT_STATUS) & 2, 2, "configuration change interrupt");
    for (unsigned i = 0; i < RAM2_SIZE; i++)
        cr_assert_eq(other_ram[i], 0x5a, "memory outside the grant untouched");
    for (unsigned i = 0; i < 0x10000; i++)
        cr_assert_eq(vd_host(&drv, BUF)[i], 0x33, "no buffer written (byte 0x%x)", i);
    /* a second notify does not log again */
    vd_notify(&drv, &q);
    vd_settle(&drv, 20);
    cr_assert_eq(count(logbuf, "device needs reset"), 1, "still one line; log: %s", logbuf);
    cr_assert_eq(vd_rd(&drv, VR_MAGIC), 0x74726976, "the registers still answer");
    /* the other device is unaffected */
    vdrv other = drv;
    other.base = DEV2_BASE;
    vdq q2;
    cr_assert_eq(vd_negotiate(&other, all_features), 1 | 2 | 8);
    vd_queue_at(&other, &q2, 0, 8, RAM_BASE + 0x40000, true);
    vd_driver_ok(&other);
    vd_desc(&other, q2.desc, 0, RAM_BASE + 0x41000, 8, VD_F_WRITE, 0);
    vd_avail(&other, &q2, 0);
    vd_notify(&other, &q2);
    cr_assert(vd_wait_used(&other, &q2, 1, 3000), "the other device answers; log: %s", logbuf);
    /* after a reset the first device works again */
    start(&drv, &q, NULL, all_features);
    cr_assert_eq(vd_rd(&drv, VR_STATUS) & NEEDS_RESET, 0);
    vd_desc(&drv, q.desc, 0, BUF, 16, VD_F_WRITE, 0);
    vd_avail(&drv, &q, 0);
    vd_notify(&drv, &q);
    cr_assert(vd_wait_used(&drv, &q, 1, 3000), "log: %s", logbuf);
}

static void bad_loop(vdq *q)
{
    vd_desc(&drv, q->desc, 0, BUF, 16, VD_F_NEXT, 1);
    vd_desc(&drv, q->desc, 1, BUF + 16, 16, VD_F_NEXT, 0);
    vd_avail(&drv, q, 0);
}

Test(virtio, malformed_a_loop)
{
    check_malformed(bad_loop, "more than 8 descriptors (the queue size): a loop?");
}

static void bad_outside_grant(vdq *q)
{
    vd_desc(&drv, q->desc, 0, RAM2_BASE, 16, VD_F_WRITE, 0);
    vd_avail(&drv, q, 0);
}

Test(virtio, malformed_a_buffer_outside_the_grant)
{
    check_malformed(bad_outside_grant, "device-writable buffer [0x90000000, +16) is not in guest RAM granted");
}

static void bad_past_ram(vdq *q)
{
    vd_desc(&drv, q->desc, 0, BUF, 16, VD_F_NEXT, 1);
    vd_desc(&drv, q->desc, 1, RAM_BASE + RAM_SIZE - 8, 64, VD_F_WRITE, 0);
    vd_avail(&drv, q, 0);
}

Test(virtio, malformed_a_length_past_the_end_of_ram)
{
    check_malformed(bad_past_ram, "[0x800ffff8, +64) is not in guest RAM granted");
}

static void bad_too_many(vdq *q)
{
    for (unsigned i = 0; i < 9; i++)
        vd_desc(&drv, INDIRECT, i, BUF + 16 * i, 16, i < 8 ? VD_F_NEXT : 0, (uint16_t)(i + 1));
    vd_desc(&drv, q->desc, 0, INDIRECT, 9 * 16, VD_F_INDIRECT, 0);
    vd_avail(&drv, q, 0);
}

Test(virtio, malformed_more_descriptors_than_the_queue_size)
{
    check_malformed(bad_too_many, "indirect table of 144 bytes (a multiple of 16, at most 8 descriptors)");
}

static void bad_nested(vdq *q)
{
    vd_desc(&drv, INDIRECT, 0, INDIRECT + 0x100, 16, VD_F_INDIRECT, 0);
    vd_desc(&drv, q->desc, 0, INDIRECT, 16, VD_F_INDIRECT, 0);
    vd_avail(&drv, q, 0);
}

Test(virtio, malformed_an_indirect_table_inside_an_indirect_table)
{
    check_malformed(bad_nested, "indirect descriptor inside an indirect table");
}

static void bad_order(vdq *q)
{
    vd_desc(&drv, q->desc, 0, BUF, 16, VD_F_WRITE | VD_F_NEXT, 1);
    vd_desc(&drv, q->desc, 1, BUF + 16, 16, 0, 0);
    vd_avail(&drv, q, 0);
}

Test(virtio, malformed_readable_after_writable)
{
    check_malformed(bad_order, "device-readable descriptor after a device-writable one");
}

static void bad_head(vdq *q)
{
    vd_avail(&drv, q, 8);
}

Test(virtio, malformed_a_head_past_the_table)
{
    check_malformed(bad_head, "names descriptor 8 (queue size 8)");
}

static void bad_avail_idx(vdq *q)
{
    vd_st16(&drv, q->avail + 2, 9);
}

Test(virtio, malformed_an_available_index_too_far_ahead)
{
    check_malformed(bad_avail_idx, "available index 9 is 9 entries ahead");
}

static void bad_next(vdq *q)
{
    vd_desc(&drv, q->desc, 0, BUF, 16, VD_F_NEXT, 200);
    vd_avail(&drv, q, 0);
}

Test(virtio, malformed_a_next_index_past_the_table)
{
    check_malformed(bad_next, "next index 200 is outside the descriptor table");
}

Test(virtio, a_ring_outside_the_grant_is_refused_when_the_queue_is_enabled)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    cr_assert_eq(vd_negotiate(&drv, all_features), 1 | 2 | 8);
    vd_wr(&drv, VR_QUEUE_SEL, 0);
    vd_wr(&drv, VR_QUEUE_NUM, 8);
    vd_wr64(&drv, VR_QUEUE_DESC, RAM2_BASE);
    vd_wr64(&drv, VR_QUEUE_DRIVER, QAREA + 0x200);
    vd_wr64(&drv, VR_QUEUE_DEVICE, QAREA + 0x400);
    vd_wr(&drv, VR_QUEUE_READY, 1);
    cr_assert(vd_rd(&drv, VR_STATUS) & NEEDS_RESET);
    vd_settle(&drv, 20);
    cr_assert(strstr(logbuf, "queue 0: descriptor ring at 0x90000000 is not in guest RAM granted"), "log: %s",
              logbuf);
}

Test(virtio, the_device_may_ask_for_a_reset)
{
    add_vtest("vt", DEV_BASE, IRQ, 0);
    vdq q;
    start(&drv, &q, NULL, all_features);
    vd_wr(&drv, VR_CONFIG + 4, 3);
    cr_assert(vd_rd(&drv, VR_STATUS) & NEEDS_RESET);
    vd_settle(&drv, 20);
    cr_assert(strstr(logbuf, "vtest: asked to by the driver; device needs reset"), "log: %s", logbuf);
}

Test(virtio, a_restarted_device_gets_the_chains_its_predecessor_held)
{
    hub_device *d = add_vtest("vt", DEV_BASE, IRQ, 2);
    vdq q0, q1;
    start(&drv, &q0, &q1, all_features);
    for (unsigned i = 0; i < 3; i++) {
        vd_desc(&drv, q1.desc, i, BUF + 0x100 * i, 16, VD_F_WRITE, 0);
        vd_avail(&drv, &q1, (uint16_t)i);
    }
    vd_notify(&drv, &q1);
    vd_settle(&drv, 50);
    cr_assert_eq(vd_ld16(&drv, q1.used + 4 + 8 * 8), 3, "three chains taken");
    cr_assert_eq(vd_used_idx(&drv, &q1), 0, "and held");
    int pid = hub_device_pid(d);
    kill(pid, SIGKILL);
    for (int i = 0; i < 300 && (hub_device_restarts(d) == 0 || hub_device_failed(d)); i++)
        hub_devmgr_poll(rig.mgr, 10);
    cr_assert_eq(hub_device_restarts(d), 1, "log: %s", logbuf);
    vd_settle(&drv, 50);
    cr_assert_eq(vd_rd(&drv, VR_STATUS), 1 | 2 | 4 | 8, "the driver's status survived");
    cr_assert_eq(vd_used_idx(&drv, &q1), 0, "nothing completed by the restart itself");
    /* the queues run on: a new echo chain, and the held chains complete, each exactly once */
    vd_desc(&drv, q0.desc, 0, BUF + 0x1000, 8, VD_F_WRITE, 0);
    vd_avail(&drv, &q0, 0);
    vd_notify(&drv, &q0);
    cr_assert(vd_wait_used(&drv, &q0, 1, 3000), "log: %s", logbuf);
    vd_wr(&drv, VR_CONFIG + 4, 1);    /* only chains the new process holds can complete */
    cr_assert(vd_wait_used(&drv, &q1, 3, 3000), "log: %s", logbuf);
    bool seen[3] = { false, false, false };
    for (unsigned i = 0; i < 3; i++) {
        uint32_t id, len;
        vd_used_elem(&drv, &q1, (uint16_t)i, &id, &len);
        cr_assert_lt(id, 3);
        cr_assert_not(seen[id], "chain %u returned twice", id);
        seen[id] = true;
    }
    vd_settle(&drv, 30);
    cr_assert_eq(vd_used_idx(&drv, &q1), 3, "nothing more");
    cr_assert_eq(vd_rd(&drv, VR_STATUS) & NEEDS_RESET, 0, "log: %s", logbuf);
}
