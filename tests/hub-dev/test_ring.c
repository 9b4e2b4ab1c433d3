/*
 * The ring through the real hub, beyond the scribbling device of test_ring_faults.c: a same-host SDK device is
 * put on the ring by default (PLEXUS_TRANSPORT unset), and a ring device killed while the hub waits for its
 * reply fails at once with its exit status in the log (as on ZeroMQ), not at its timeout.
 */
#define _GNU_SOURCE
#include "../common/hub_test.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define R_SCRATCH 0x00
#define R_HANG 0xa4

static test_rig rig;
static char logbuf[16384];

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static void setup(void)
{
    unsetenv("PLEXUS_TRANSPORT");
    logbuf[0] = 0;
    test_rig_init(&rig, RAM_BASE, RAM_SIZE, (hub_devmgr_env){ .log = on_log });
}

static void teardown(void)
{
    test_rig_fini(&rig);
}

TestSuite(ring_hub, .init = setup, .fini = teardown, .timeout = 60);

/* regdev (on the SDK) at @base, with the transport left to the hub. */
static hub_device *add_regdev(const char *name, uint64_t base, int timeout_ms)
{
    hub_region_map regions[4];      /* copied by hub_devmgr_add() */
    const char *names[] = { "regs", "posted", "shadow", "be" };
    for (int i = 0; i < 4; i++)
        regions[i] = (hub_region_map){ names[i], base + 0x1000u * (unsigned)i };
    char *path = test_build_path("bin/hubdev-regdev");
    hub_device_config c = { .name = name, .program = path, .regions = regions, .n_regions = 4,
                            .timeout_ms = timeout_ms };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(rig.mgr, &c, &err);
    cr_assert_not_null(d, "add %s: %s\nlog:\n%s", name, err ? error_get_pretty(err) : "?", logbuf);
    free(path);
    return d;
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

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

Test(ring_hub, a_same_host_sdk_device_is_on_the_ring_by_default)
{
    hub_device *d = add_regdev("dflt", 0x10000000u, 2000);
    cr_assert_str_eq(hub_device_endpoint(d), "ring");
    MemTxResult r;
    for (uint32_t i = 0; i < 1000; i++) {
        cr_assert_eq(wr32(0x10000000u + R_SCRATCH + 4 * (i % 32), i * 2654435761u), MEMTX_OK);
        cr_assert_eq(rd32(0x10000000u + R_SCRATCH + 4 * (i % 32), &r), i * 2654435761u);
        cr_assert_eq(r, MEMTX_OK);
    }
    cr_assert_not(hub_device_failed(d));
}

struct killer {
    pid_t pid;
    int after_ms;
};

static void *kill_later(void *arg)
{
    struct killer *k = arg;
    usleep((useconds_t)k->after_ms * 1000u);
    kill(k->pid, SIGKILL);
    return NULL;
}

Test(ring_hub, a_ring_device_killed_mid_read_fails_with_its_exit_status)
{
    hub_device *good = add_regdev("good", 0x20000000u, 2000);
    hub_device *victim = add_regdev("victim", 0x10000000u, 20000);
    cr_assert_str_eq(hub_device_endpoint(victim), "ring");
    MemTxResult r;
    cr_assert_eq(wr32(0x10000000u, 7), MEMTX_OK);
    cr_assert_eq(rd32(0x10000000u, &r), 7);

    struct killer k = { .pid = hub_device_pid(victim), .after_ms = 300 };
    cr_assert_gt(k.pid, 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, kill_later, &k), 0);
    uint64_t t0 = now_ms();
    uint32_t v = rd32(0x10000000u + R_HANG, &r);          /* the device never answers this one */
    uint64_t took = now_ms() - t0;
    pthread_join(th, NULL);

    cr_assert_eq(r, MEMTX_ERROR);
    cr_assert_eq(v, 0xffffffffu);
    cr_assert_geq(took, 250, "the read ended before the kill (%llu ms)", (unsigned long long)took);
    cr_assert_lt(took, 10000, "the read waited for the timeout, not the death (%llu ms)",
                 (unsigned long long)took);
    cr_assert(hub_device_failed(victim));
    cr_assert(strstr(logbuf, "[victim]") && strstr(logbuf, "signal 9"), "log:\n%s", logbuf);
    cr_assert_eq(wr32(0x10000000u, 1), MEMTX_ERROR, "later accesses fail too");

    cr_assert_not(hub_device_failed(good));
    cr_assert_eq(wr32(0x20000000u, 0x5a5a), MEMTX_OK);
    cr_assert_eq(rd32(0x20000000u, &r), 0x5a5a);
    cr_assert_eq(r, MEMTX_OK);
}
