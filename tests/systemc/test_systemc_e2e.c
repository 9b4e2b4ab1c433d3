/*
 * End to end: `plexus run` boots examples/systemc's dmacheck firmware with the DMA engine's SystemC TLM-2.0 model
 * behind the bridge (plexus-systemc-dma) and with its C model (plexus-dma): the guest prints the same, through
 * DMI or b_transport, free-running or in lockstep, sandboxed or not; lockstep runs write the same event log byte
 * for byte, over the shared-memory ring or ZeroMQ.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <limits.h>
#include <stdlib.h>

#include "../common/run_split.h"

#define RUN_TIMEOUT_MS 60000

static run sc_run, c_run;
static char sc_lines[RUN_OUT_MAX], c_lines[RUN_OUT_MAX];

/* plexus run examples/systemc/<machine> [extra...]; the firmware's lines in @lines. */
static void run_machine(const char *machine, const char *const *extra, run *r, char *lines)
{
    const char *build = getenv("PLEXUS_BUILD_DIR"), *source = getenv("PLEXUS_SOURCE_DIR");
    cr_assert(build && source, "PLEXUS_BUILD_DIR and PLEXUS_SOURCE_DIR must be set (run through ctest)");
    char plexus[PATH_MAX], yaml[PATH_MAX];
    snprintf(plexus, sizeof plexus, "%s/bin/plexus", build);
    snprintf(yaml, sizeof yaml, "%s/examples/systemc/%s", source, machine);
    const char *argv[24] = { plexus, "run", yaml };
    size_t argc = 3;
    for (; extra && *extra && argc < 23; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;
    run_split(argv, RUN_TIMEOUT_MS, r);
    cr_assert_eq(r->status, 0, "%s exited %d:\n%s\n%s", machine, r->status, r->out, r->err);
    run_split_lines(r->out, "dma: ", lines, RUN_OUT_MAX);
    cr_assert(strstr(lines, "dma: all checks passed\n"), "%s:\n%s", machine, lines);
}

Test(systemc_e2e, systemc_and_c_models_print_the_same)
{
    const char *stats[] = { "--stats", NULL };
    run_machine("machine.yaml", stats, &sc_run, sc_lines);
    run_machine("machine-c.yaml", stats, &c_run, c_lines);
    cr_assert_str_eq(sc_lines, c_lines, "SystemC:\n%s\nC:\n%s", sc_lines, c_lines);
    cr_assert(strstr(sc_lines, "dma: 14 transfers completed"), "%s", sc_lines);
    /* What the engine wrote into guest RAM reached the hub (its CPU drops code there) as the C model's does. */
    unsigned long long written = run_split_stat(sc_run.err, "dma written");
    cr_assert_eq(written, 13ull, "one range per copy (the 14th transfer has no byte):\n%s", sc_run.err);
    cr_assert_eq(written, run_split_stat(c_run.err, "dma written"), "SystemC:\n%s\nC:\n%s", sc_run.err, c_run.err);
    /* Through b_transport instead of DMI: the same. */
    const char *transport[] = { "--set", "devices.dma0.props.dmi=0", NULL };
    run_machine("machine.yaml", transport, &sc_run, sc_lines);
    cr_assert_str_eq(sc_lines, c_lines, "SystemC through b_transport:\n%s\nC:\n%s", sc_lines, c_lines);
}

/* Run @machine in lockstep, DMA by message (so the log sees every transfer), with an event log; its text. */
static char *lockstep_log(const char *machine, run *r, char *lines, size_t *len)
{
    char path[] = "/tmp/plexus-systemc-events-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    const char *extra[] = { "--set", "devices.dma0.sync=lockstep", "--set", "devices.dma0.dma=message",
                            "--event-log", path, "--stats", NULL };
    run_machine(machine, extra, r, lines);
    char *log = run_split_slurp(path, len);
    unlink(path);
    cr_assert_not_null(log);
    return log;
}

Test(systemc_e2e, lockstep_runs_give_identical_event_logs, .timeout = 180)
{
    size_t l1, l2;
    char *a = lockstep_log("machine.yaml", &sc_run, sc_lines, &l1);
    char *b = lockstep_log("machine.yaml", &c_run, c_lines, &l2);
    cr_assert_gt(l1, 1000u, "an event log of %zu bytes", l1);
    cr_assert(strstr(a, " dma0 grant next "), "no time grant in the log");
    cr_assert(strstr(a, " dma0 dma read 0x8"), "no DMA in the log");
    cr_assert(strstr(a, " dma0 irq 0 1 at "), "no stamped IRQ in the log");
    cr_assert_eq(l1, l2, "event logs differ in length: %zu and %zu bytes", l1, l2);
    cr_assert(memcmp(a, b, l1) == 0, "event logs differ");
    cr_assert_gt(run_split_stat(sc_run.err, "lockstep grants"), 0ull);
    cr_assert_str_eq(sc_lines, c_lines);
    free(b);
    /* The transport does not show: over ZeroMQ the log is the same as over the shared-memory ring. */
    setenv("PLEXUS_TRANSPORT", "zmq", 1);
    b = lockstep_log("machine.yaml", &c_run, c_lines, &l2);
    unsetenv("PLEXUS_TRANSPORT");
    cr_assert(l1 == l2 && memcmp(a, b, l1) == 0, "the event log over ZeroMQ differs from the ring's");
    free(a);
    free(b);
    /* The C model in lockstep shows the guest the same. */
    a = lockstep_log("machine-c.yaml", &c_run, c_lines, &l1);
    cr_assert_str_eq(sc_lines, c_lines, "SystemC:\n%s\nC:\n%s", sc_lines, c_lines);
    free(a);
}

/* SystemC's kernel runs under the SDK's default system-call allowlist, in its jail (as every device plexus
 * starts: libsystemc is found there through the program's run path). */
Test(systemc_e2e, the_systemc_device_runs_sandboxed)
{
    const char *extra[] = { "--set", "devices.dma0.sandbox.enabled=true", NULL };
    run_machine("machine.yaml", extra, &sc_run, sc_lines);
    run_machine("machine-c.yaml", NULL, &c_run, c_lines);
    cr_assert_str_eq(sc_lines, c_lines);
}
