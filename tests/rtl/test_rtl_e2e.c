/*
 * End to end: `plexus run` boots examples/rtl's crc32 firmware once with the Verilog accelerator
 * (plexus-rtl-crc32, Verilator in a device process) and once with its C model (plexus-crc32-model); both runs
 * must pass and print the same guest output. Also: the RTL device writes a VCD when asked, still passes with
 * fine timer steps and slow memory, and two runs of the RTL machine execute the same instructions in the same
 * virtual time (device timers fire synchronously, every access carries its virtual time).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX (1 << 16)
#define RUN_TIMEOUT_MS 60000

typedef struct run {
    char out[OUT_MAX];      /* stdout (the console: guest output), NUL-terminated, without '\r' */
    size_t len;
    char err[OUT_MAX];      /* stderr (the hub's and devices' messages, --stats) */
    size_t err_len;
    int status;             /* exit status; 128+signal if killed; -1 on timeout */
} run;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static const char *dir_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is not set (run through ctest)", name);
    return v;
}

static void append(char *dst, size_t *len, const char *src, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++)
        if (src[i] != '\r' && *len < OUT_MAX - 1)
            dst[(*len)++] = src[i];
    dst[*len] = 0;
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

    memset(r, 0, sizeof(*r));
    int po[2], pe[2];
    cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        setpgid(0, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    long long deadline = now_ms() + RUN_TIMEOUT_MS;
    bool timed_out = false;
    struct pollfd pfd[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
    while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int n = poll(pfd, 2, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            timed_out = n == 0;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            char buf[4096];
            ssize_t got = read(pfd[i].fd, buf, sizeof buf);
            if (got <= 0) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
            } else if (i == 0) {
                append(r->out, &r->len, buf, got);
            } else {
                append(r->err, &r->err_len, buf, got);
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    if (timed_out)
        kill(-pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    kill(-pid, SIGKILL);        /* device processes left behind, if any */
    r->status = timed_out ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The guest's own lines: those the firmware prints, all starting with "crc32: ". */
static void guest_lines(const char *out, char *dst, size_t cap)
{
    size_t n = 0;
    for (const char *l = out; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len >= 7 && !strncmp(l, "crc32: ", 7) && n + len + 2 < cap) {
            memcpy(dst + n, l, len);
            n += len;
            dst[n++] = '\n';
        }
        l += len + (e ? 1 : 0);
    }
    dst[n] = 0;
}

static run rtl_run, model_run;
static char rtl_lines[OUT_MAX], model_lines[OUT_MAX];

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

/* The value of "NAME   123" in plexus --stats output. */
static unsigned long long stat_value(const char *out, const char *name)
{
    const char *p = strstr(out, name);
    cr_assert_not_null(p, "no '%s' in --stats output:\n%s", name, out);
    p += strlen(name);
    while (*p == ' ')
        p++;
    return strtoull(p, NULL, 10);
}

Test(rtl_e2e, rtl_runs_are_reproducible)
{
    const char *extra[] = { "--stats", NULL };
    run_machine("machine.yaml", extra, &rtl_run);
    cr_assert_eq(rtl_run.status, 0, "exited %d:\n%s\n%s", rtl_run.status, rtl_run.out, rtl_run.err);
    run_machine("machine.yaml", extra, &model_run);
    cr_assert_eq(model_run.status, 0, "exited %d:\n%s\n%s", model_run.status, model_run.out, model_run.err);
    unsigned long long insns = stat_value(rtl_run.err, "instructions");
    cr_assert_gt(insns, 0ull);
    cr_assert_eq(insns, stat_value(model_run.err, "instructions"));
    cr_assert_eq(stat_value(rtl_run.err, "virtual time ns"), stat_value(model_run.err, "virtual time ns"));
    cr_assert_eq(stat_value(rtl_run.err, "device round trips"), stat_value(model_run.err, "device round trips"));
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
    cr_assert_eq(stat_value(rtl_run.err, "instructions"), stat_value(model_run.err, "instructions"));
    cr_assert_eq(stat_value(rtl_run.err, "virtual time ns"), stat_value(model_run.err, "virtual time ns"));
}

/* The whole file at @path (malloc'd, NUL-terminated), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
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
    char *log = slurp(path, len);
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
    cr_assert_gt(stat_value(rtl_run.err, "lockstep grants"), 0ull);
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
