/*
 * Lockstep depends on virtual time alone: the Python device rings the hub's bell after every frame it sends (it
 * has no memory fence to do better), and a lockstep run of it through the real hub still writes the same event
 * log byte for byte, run after run, over the shared-memory ring and over ZeroMQ alike. A bell may make the hub
 * look; it never gets the device a time grant, nor ends an idle guest's sleep early.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>

#include "../devices/run_capture.h"
#include "../machine/common.h"

/* One lockstep run of lockstep.elf with pydev on the ring or ZeroMQ: its event log; @grants from --stats. */
static char *lockstep_run(bool ring, size_t *len, uint64_t *grants)
{
    char *dir = tmpdir_new(), *text, *bin, *events;
    cr_assert(asprintf(&text,
                       "name: lockstep-bells\n"
                       "ram:\n  - name: ram\n    base: 0x80000000\n    size: 16M\n"
                       "firmware:\n  - file: %s/lockstep.elf\n"
                       "cpu:\n  insns_per_ns: 0.1\n"
                       "devices:\n"
                       "  - name: pydev\n"
                       "    program: %s\n"
                       "    args: [%s--lockstep]\n"
                       "    base: 0x10030000\n"
                       "    irq: 7\n"
                       "    ram: []\n"
                       "    sync: lockstep\n"
                       "    transport: %s\n"
                       "    jail: { read: [%s, %s] }\n",        /* its script and bindings */
                       FW_DIR, PYDEV_WRAPPER, ring ? "--ring, " : "", ring ? "ring" : "zeromq", PYDEV_SCRIPT_DIR,
                       PYDEV_GEN_DIR) > 0);
    char *yaml = write_file(dir, "machine.yaml", text, strlen(text), 0644);
    cr_assert(asprintf(&bin, "%s/bin/plexus", getenv("PLEXUS_BUILD_DIR")) > 0);
    cr_assert(asprintf(&events, "%s/events.log", dir) > 0);
    char *argv[] = { bin, "run", yaml, "--stats", "--event-log", events, NULL };
    run_result r;
    cr_assert_eq(run_capture(argv, NULL, NULL, 120000, &r), 0);
    cr_assert_eq(r.status, 0, "%s: status %d:\n%s", ring ? "ring" : "zeromq", r.status, r.out);
    cr_assert(strstr(r.out, ring ? " ring, round trips" : " zeromq, round trips"), "%s", r.out);
    *grants = stat_value(r.out, "lockstep grants");
    char *log = read_whole_file(events, len);
    cr_assert_not_null(log, "no event log at %s", events);
    free(text);
    free(yaml);
    free(bin);
    free(events);
    tmpdir_remove(dir);
    return log;
}

Test(protocol_lockstep, a_device_that_rings_on_every_send_gives_the_same_event_log_every_run, .timeout = 240)
{
    size_t l0, l;
    uint64_t g0, g;
    char *first = lockstep_run(true, &l0, &g0);
    cr_assert_geq(g0, 8, "a grant per tick at least: %lu", (unsigned long)g0);
    cr_assert(strstr(first, " pydev grant next "), "no grant in the log");
    cr_assert(strstr(first, " pydev irq 0 1 at "), "no stamped IRQ in the log");
    cr_assert(strstr(first, " pydev read regs+0x2c/4 = "), "no read of TICKS in the log");
    static const bool runs[] = { true, false, false };
    for (unsigned i = 0; i < 3; i++) {
        char *again = lockstep_run(runs[i], &l, &g);
        cr_assert_eq(g, g0, "run %u (%s): %lu grants, the first run had %lu", i + 2, runs[i] ? "ring" : "zeromq",
                     (unsigned long)g, (unsigned long)g0);
        cr_assert(l == l0 && memcmp(again, first, l) == 0, "run %u (%s): the event log differs (%zu and %zu bytes)",
                  i + 2, runs[i] ? "ring" : "zeromq", l, l0);
        free(again);
    }
    free(first);
}
