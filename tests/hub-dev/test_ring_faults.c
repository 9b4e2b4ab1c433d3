/*
 * The shared-memory ring is memory a device can scribble on. A real device process (ringrogue, on the SDK and
 * so on the ring) damages its own ring in one way per test, through a register write; the hub must fail that
 * device with a log line naming the damage (or, for bells and sleep words, keep serving it), fail its later
 * accesses, and keep serving a well-behaved device (regdev, also on the ring) before and after.
 */
#define _GNU_SOURCE
#include "../common/hub_test.h"

#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define ROGUE_BASE 0x10000000u
#define GOOD_BASE 0x10010000u
#define R_SCRATCH 0x00
#define R_CORRUPT 0x04
#define R_READY 0x08

static test_rig rig;
static hub_devmgr *mgr;
static hub_device *rogue, *good;
static char logbuf[16384];

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static hub_device *add(const char *name, const char *prog, const hub_region_map *regions, size_t n)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "bin/%s", prog);
    char *path = test_build_path(rel);
    hub_device_config c = { .name = name, .program = path, .regions = regions, .n_regions = n, .timeout_ms = 2000,
                            .transport = HUB_TRANSPORT_RING };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(mgr, &c, &err);
    cr_assert_not_null(d, "add %s: %s\nlog:\n%s", name, err ? error_get_pretty(err) : "?", logbuf);
    free(path);
    cr_assert_str_eq(hub_device_endpoint(d), "ring");
    return d;
}

static void setup(void)
{
    test_rig_init(&rig, RAM_BASE, RAM_SIZE, (hub_devmgr_env){ .log = on_log });
    mgr = rig.mgr;
    logbuf[0] = 0;
    static const hub_region_map rogue_regions[] = { { "regs", ROGUE_BASE } };
    static const hub_region_map good_regions[] = {
        { "regs", GOOD_BASE }, { "posted", GOOD_BASE + 0x1000 }, { "shadow", GOOD_BASE + 0x2000 },
        { "be", GOOD_BASE + 0x3000 },
    };
    rogue = add("rogue", "hubdev-ringrogue", rogue_regions, 1);
    good = add("good", "hubdev-regdev", good_regions, 4);
}

static void teardown(void)
{
    test_rig_fini(&rig);
}

static uint32_t rd32(hwaddr a, MemTxResult *res)
{
    uint32_t v = 0;
    *res = address_space_read(&rig.as, a, MEMTXATTRS_UNSPECIFIED, (uint8_t *)&v, 4);
    return v;
}

static MemTxResult wr32(hwaddr a, uint32_t v)
{
    return address_space_write(&rig.as, a, MEMTXATTRS_UNSPECIFIED, (uint8_t *)&v, 4);
}

/* Both devices answer: each keeps what was written to its scratch register. */
static void both_work(uint32_t tag)
{
    MemTxResult r;
    cr_assert_eq(wr32(ROGUE_BASE + R_SCRATCH, tag), MEMTX_OK, "log:\n%s", logbuf);
    cr_assert_eq(rd32(ROGUE_BASE + R_SCRATCH, &r), tag);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert_eq(rd32(ROGUE_BASE + R_READY, &r), 1, "the rogue found its ring");
    cr_assert_eq(wr32(GOOD_BASE + R_SCRATCH, ~tag), MEMTX_OK);
    cr_assert_eq(rd32(GOOD_BASE + R_SCRATCH, &r), ~tag);
    cr_assert_eq(r, MEMTX_OK);
}

/* Damage the ring in way @how; the rogue must end up failed with @words in the log, its accesses failing,
 * and the good device still answering. */
static void damage_fails_device(uint32_t how, const char *words)
{
    both_work(0x1111 * how);
    (void)wr32(ROGUE_BASE + R_CORRUPT, how);
    MemTxResult r;
    uint32_t v = rd32(ROGUE_BASE + R_SCRATCH, &r);      /* a damaged hub -> device ring is seen on this send */
    cr_assert(hub_device_failed(rogue), "damage %u did not fail the device\nlog:\n%s", how, logbuf);
    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu, "a failed device reads as all-ones");
    cr_assert(strstr(logbuf, "[rogue]") && strstr(logbuf, words), "damage %u: expected '%s' in the log:\n%s", how,
              words, logbuf);
    cr_assert_eq(wr32(ROGUE_BASE + R_SCRATCH, 5), MEMTX_ERROR, "later accesses fail too");
    cr_assert_not(hub_device_failed(good));
    MemTxResult rg;
    cr_assert_eq(wr32(GOOD_BASE + R_SCRATCH, 0xabcdef01), MEMTX_OK);
    cr_assert_eq(rd32(GOOD_BASE + R_SCRATCH, &rg), 0xabcdef01);
    cr_assert_eq(rg, MEMTX_OK);
}

TestSuite(ring_faults, .init = setup, .fini = teardown, .timeout = 60);

Test(ring_faults, producer_index_far_ahead)
{
    damage_fails_device(1, "device -> hub ring: producer index");
}

Test(ring_faults, record_longer_than_published)
{
    damage_fails_device(2, "runs past the published records");
}

Test(ring_faults, record_with_unknown_flags)
{
    damage_fails_device(3, "unknown flags 0x80");
}

Test(ring_faults, consumer_index_of_the_hubs_ring_ahead_of_its_producer)
{
    damage_fails_device(4, "hub -> device ring: consumer index");
}

Test(ring_faults, random_bytes_over_the_whole_ring)
{
    damage_fails_device(5, "ring: ");
}

Test(ring_faults, frame_longer_than_the_limit)
{
    damage_fails_device(8, "frame longer than 4194304 bytes");
}

/* Bells and sleep words are the device's to get wrong: they cost the hub an extra look, nothing more. */
Test(ring_faults, bells_at_their_maximum_count)
{
    both_work(0x5a5a);
    cr_assert_eq(wr32(ROGUE_BASE + R_CORRUPT, 6), MEMTX_OK, "log:\n%s", logbuf);
    for (uint32_t i = 0; i < 200; i++)
        both_work(0x7000 + i);
    hub_devmgr_poll(mgr, 10);
    cr_assert_not(hub_device_failed(rogue), "log:\n%s", logbuf);
}

Test(ring_faults, sleep_words_stuck_at_one)
{
    both_work(0x6b6b);
    cr_assert_eq(wr32(ROGUE_BASE + R_CORRUPT, 7), MEMTX_OK, "log:\n%s", logbuf);
    for (uint32_t i = 0; i < 200; i++)
        both_work(0x8000 + i);
    hub_devmgr_poll(mgr, 10);
    cr_assert_not(hub_device_failed(rogue), "log:\n%s", logbuf);
}
