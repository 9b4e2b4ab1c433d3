/*
 * End to end: `plexus run` boots examples/rtl's crc32 firmware once with the Verilog accelerator
 * (plexus-rtl-crc32, Verilator in a device process) and once with its C model (plexus-crc32-model); both runs
 * must pass and print the same guest output. Also: the RTL device writes a VCD when asked, still passes with
 * fine timer steps and slow memory, and two runs of the RTL machine execute the same instructions in the same
 * virtual time (device timers fire synchronously, every access carries its virtual time).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <limits.h>
#include <stdlib.h>

#include "../common/run_split.h"

#define RUN_TIMEOUT_MS 60000

static const char *dir_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is not set (run through ctest)", name);
    return v;
}

/* plexus run <machine> --firmware <build>/examples/rtl/crc32.elf [extra...], stdout and stderr apart. */
static void run_machine(const char *machine, const char *const *extra, run *r)
{
    char plexus[PATH_MAX], yaml[PATH_MAX], fw[PATH_MAX];
    snprintf(plexus, sizeof plexus, "%s/bin/plexus", dir_env("PLEXUS_BUILD_DIR"));
    snprintf(yaml, sizeof yaml, "%s/examples/rtl/%s", dir_env("PLEXUS_SOURCE_DIR"), machine);
    snprintf(fw, sizeof fw, "%s/examples/rtl/crc32.elf", dir_env("PLEXUS_BUILD_DIR"));
    const char *argv[16] = { plexus, "run", yaml, "--firmware", fw };
    size_t argc = 5;
    for (; extra && *extra && argc < 15; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;
    run_split(argv, RUN_TIMEOUT_MS, r);
}

/* The guest's own lines: those the firmware prints, all starting with "crc32: ". */
static void guest_lines(const char *out, char *dst, size_t cap)
{
    run_split_lines(out, "crc32: ", dst, cap);
}

static run rtl_run, model_run;
static char rtl_lines[RUN_OUT_MAX], model_lines[RUN_OUT_MAX];

Test(rtl_e2e, rtl_and_c_model_print_the_same)
{
    run_machine("machine.yaml", NULL, &rtl_run);
    cr_assert_eq(rtl_run.status, 0, "RTL machine exited %d:\n%s\n%s", rtl_run.status, rtl_run.out, rtl_run.err);
    cr_assert(strstr(rtl_run.out, "crc32: all checks passed"), "%s", rtl_run.out);

    run_machine("machine-model.yaml", NULL, &model_run);
    cr_assert_eq(model_run.status, 0, "C-model machine exited %d:\n%s\n%s", model_run.status, model_run.out, model_run.err);

    guest_lines(rtl_run.out, rtl_lines, sizeof rtl_lines);
    guest_lines(model_run.out, model_lines, sizeof model_lines);
    cr_assert_str_eq(rtl_lines, model_lines, "RTL:\n%s\nC model:\n%s", rtl_lines, model_lines);
    cr_assert(strstr(rtl_lines, "crc32: check string: 9 bytes, accelerator 0xcbf43926, software 0xcbf43926 ok"),
              "%s", rtl_lines);
    cr_assert(strstr(rtl_lines, "crc32: DMA error reported with an interrupt ok"), "%s", rtl_lines);
}

Test(rtl_e2e, rtl_device_writes_a_vcd)
{
    char vcd[] = "/tmp/plexus-rtl-e2e-XXXXXX";
    int fd = mkstemp(vcd);
    cr_assert_geq(fd, 0);
    close(fd);
    char set[PATH_MAX + 64], grant[PATH_MAX + 64];
    snprintf(set, sizeof set, "devices.crc0.props.vcd=%s", vcd);
    snprintf(grant, sizeof grant, "devices.crc0.jail.write=[%s]", vcd);    /* the one file its jail may write */
    const char *extra[] = { "--set", set, "--set", grant, NULL };
    run_machine("machine.yaml", extra, &rtl_run);
    cr_assert_eq(rtl_run.status, 0, "exited %d:\n%s\n%s", rtl_run.status, rtl_run.out, rtl_run.err);

    FILE *f = fopen(vcd, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    unlink(vcd);
    cr_assert(strstr(text, "$enddefinitions"), "not a VCD");
    cr_assert(strstr(text, " dma_req "), "no dma_req signal in the VCD");
    cr_assert(strstr(text, " irq "), "no irq signal in the VCD");
}

Test(rtl_e2e, rtl_passes_with_fine_steps_and_slow_memory)
{
    const char *extra[] = { "--set", "devices.crc0.props.step_cycles=7", "--set", "devices.crc0.props.dma_latency=9",
                            NULL };
    run_machine("machine.yaml", extra, &rtl_run);
    cr_assert_eq(rtl_run.status, 0, "exited %d:\n%s\n%s", rtl_run.status, rtl_run.out, rtl_run.err);
    guest_lines(rtl_run.out, rtl_lines, sizeof rtl_lines);
    run_machine("machine-model.yaml", NULL, &model_run);
    guest_lines(model_run.out, model_lines, sizeof model_lines);
    cr_assert_str_eq(rtl_lines, model_lines);
}

Test(rtl_e2e, rtl_runs_are_reproducible)
{
    const char *extra[] = { "--stats", NULL };
    run_machine("machine.yaml", extra, &rtl_run);
    cr_assert_eq(rtl_run.status, 0, "exited %d:\n%s\n%s", rtl_run.status, rtl_run.out, rtl_run.err);
    run_machine("machine.yaml", extra, &model_run);
    cr_assert_eq(model_run.status, 0, "exited %d:\n%s\n%s", model_run.status, model_run.out, model_run.err);
    unsigned long long insns = run_split_stat(rtl_run.err, "instructions");
    cr_assert_gt(insns, 0ull);
    cr_assert_eq(insns, run_split_stat(model_run.err, "instructions"));
    cr_assert_eq(run_split_stat(rtl_run.err, "virtual time ns"), run_split_stat(model_run.err, "virtual time ns"));
    cr_assert_eq(run_split_stat(rtl_run.err, "device round trips"), run_split_stat(model_run.err, "device round trips"));
}

/* Skipping idle cycles is an optimisation only: clocking every cycle gives the same run, instruction for
 * instruction. */
Test(rtl_e2e, idle_skip_changes_nothing_the_guest_sees)
{
    const char *skip[] = { "--stats", NULL };
    const char *noskip[] = { "--stats", "--set", "devices.crc0.props.idle_skip=0", NULL };
    run_machine("machine.yaml", skip, &rtl_run);
    cr_assert_eq(rtl_run.status, 0, "exited %d:\n%s\n%s", rtl_run.status, rtl_run.out, rtl_run.err);
    run_machine("machine.yaml", noskip, &model_run);
    cr_assert_eq(model_run.status, 0, "exited %d:\n%s\n%s", model_run.status, model_run.out, model_run.err);
    guest_lines(rtl_run.out, rtl_lines, sizeof rtl_lines);
    guest_lines(model_run.out, model_lines, sizeof model_lines);
    cr_assert_str_eq(rtl_lines, model_lines);
    cr_assert_eq(run_split_stat(rtl_run.err, "instructions"), run_split_stat(model_run.err, "instructions"));
    cr_assert_eq(run_split_stat(rtl_run.err, "virtual time ns"), run_split_stat(model_run.err, "virtual time ns"));
}

/* Run @machine in lockstep (DMA by message, so the hub sees every transfer) with an event log; its text. */
static char *lockstep_log(const char *machine, run *r, size_t *len)
{
    char path[] = "/tmp/plexus-events-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    const char *extra[] = { "--set", "devices.crc0.sync=lockstep", "--set", "devices.crc0.dma=message",
                            "--event-log", path, "--stats", NULL };
    run_machine(machine, extra, r);
    cr_assert_eq(r->status, 0, "%s in lockstep exited %d:\n%s\n%s", machine, r->status, r->out, r->err);
    cr_assert(strstr(r->out, "crc32: all checks passed"), "%s", r->out);
    char *log = run_split_slurp(path, len);
    unlink(path);
    cr_assert_not_null(log);
    return log;
}

/* Lockstep: every device access, IRQ change, DMA and time grant happens at a virtual time the hub decides, so
 * two runs write the same event log, byte for byte (over the ring or ZeroMQ alike); the RTL and its C model show
 * the guest the same results. */
Test(rtl_e2e, lockstep_runs_give_identical_event_logs, .timeout = 180)
{
    size_t l1, l2;
    char *a = lockstep_log("machine.yaml", &rtl_run, &l1);
    char *b = lockstep_log("machine.yaml", &model_run, &l2);
    cr_assert_gt(l1, 1000u, "an event log of %zu bytes", l1);
    cr_assert(strstr(a, " crc0 grant next "), "no time grant in the log");
    cr_assert(strstr(a, " crc0 dma read 0x8"), "no DMA in the log");
    cr_assert(strstr(a, " crc0 irq 0 1 at "), "no stamped IRQ in the log");
    cr_assert(strstr(a, " crc0 read regs+0x1c/4 = 0xcbf43926"), "no CRC result read in the log");
    cr_assert_eq(l1, l2, "RTL event logs differ in length: %zu and %zu bytes", l1, l2);
    cr_assert(memcmp(a, b, l1) == 0, "RTL event logs differ");
    cr_assert_gt(run_split_stat(rtl_run.err, "lockstep grants"), 0ull);
    guest_lines(rtl_run.out, rtl_lines, sizeof rtl_lines);
    free(b);
    /* The transport does not show: over ZeroMQ the log is the same as over the shared-memory ring. */
    setenv("PLEXUS_TRANSPORT", "zmq", 1);
    b = lockstep_log("machine.yaml", &model_run, &l2);
    unsetenv("PLEXUS_TRANSPORT");
    cr_assert(l1 == l2 && memcmp(a, b, l1) == 0, "the event log over ZeroMQ differs from the ring's");
    free(a);
    free(b);

    a = lockstep_log("machine-model.yaml", &model_run, &l1);
    b = lockstep_log("machine-model.yaml", &rtl_run, &l2);
    cr_assert_eq(l1, l2, "C-model event logs differ in length");
    cr_assert(memcmp(a, b, l1) == 0, "C-model event logs differ");
    guest_lines(model_run.out, model_lines, sizeof model_lines);
    cr_assert_str_eq(rtl_lines, model_lines, "RTL and C model in lockstep:\n%s\n%s", rtl_lines, model_lines);
    free(a);
    free(b);
}
