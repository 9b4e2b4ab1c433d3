/*
 * bench-boot: time from start to Debian U-Boot's `=>` prompt on plexus and on qemu-system-riscv64 (the floor),
 * measured in the same run, both driven through a pty: when the autoboot countdown appears a key is sent at
 * once, and the clock stops at the prompt. Prints the median of each, the ratio (goal <= 1.5x QEMU), and the
 * device round trips, shadow reads and instructions per plexus boot (from `plexus run --stats`).
 *
 * Usage: bench-boot [RUNS]      (default 3)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UBOOT "/usr/lib/u-boot/qemu-riscv64/u-boot.bin"
#define TIMEOUT_S 300.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct session { pid_t pid; int fd; char *buf; size_t len, cap; double cpu_s; } session;

static int expect(session *s, size_t from, const char *needle, double deadline)
{
    for (;;) {
        s->buf[s->len] = 0;
        if (from <= s->len && strstr(s->buf + from, needle))
            return 0;
        double left = deadline - now_s();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = { .fd = s->fd, .events = POLLIN };
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        if (s->len + 4097 > s->cap) {
            s->cap = s->cap * 2 + 8192;
            s->buf = realloc(s->buf, s->cap);
        }
        ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
        if (n <= 0)
            return -EIO;
        s->len += (size_t)n;
    }
}

static double rusage_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 + (double)ru->ru_stime.tv_sec +
           (double)ru->ru_stime.tv_usec / 1e6;
}

/* Reap the session; its CPU time (with the device processes it reaped) goes to s->cpu_s. */
static int finish(session *s)
{
    int st = 0;
    struct rusage ru;
    double end = now_s() + 20;
    while (now_s() < end) {
        if (wait4(s->pid, &st, WNOHANG, &ru) == s->pid) {
            s->cpu_s = rusage_s(&ru);
            return st;
        }
        /* drain what it prints on the way out (the --stats) */
        struct pollfd p = { .fd = s->fd, .events = POLLIN };
        if (poll(&p, 1, 20) > 0) {
            if (s->len + 4097 > s->cap) {
                s->cap = s->cap * 2 + 8192;
                s->buf = realloc(s->buf, s->cap);
            }
            ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
            if (n > 0)
                s->len += (size_t)n;
        }
    }
    kill(-s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    return st;
}

/* One boot to the prompt; returns seconds, or a negative value on failure. */
static double boot(char *const argv[], session *s)
{
    memset(s, 0, sizeof(*s));
    s->cap = 1 << 16;
    s->buf = malloc(s->cap);
    double t0 = now_s();
    s->pid = forkpty(&s->fd, NULL, NULL, NULL);
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    double deadline = t0 + TIMEOUT_S;
    if (expect(s, 0, "Hit any key to stop autoboot", deadline) < 0) {
        fprintf(stderr, "bench-boot: %s: no autoboot countdown; output:\n%s\n", argv[0], s->buf);
        return -1;
    }
    size_t mark = s->len;
    if (write(s->fd, " ", 1) != 1)
        return -1;
    if (expect(s, mark, "=>", deadline) < 0) {
        fprintf(stderr, "bench-boot: %s: no prompt\n", argv[0]);
        return -1;
    }
    double t = now_s() - t0;
    if (write(s->fd, "\x01x", 2) != 2)     /* Ctrl-A x quits both */
        return -1;
    finish(s);
    return t;
}

static unsigned long long stat_value(const char *out, const char *name)
{
    const char *p = strstr(out, name);
    return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (runs < 1)
        runs = 1;
    if (access(UBOOT, R_OK) != 0) {
        fprintf(stderr, "bench-boot: %s missing (apt-get install u-boot-qemu)\n", UBOOT);
        return 1;
    }
    char *plexus, *yaml;
    if (asprintf(&plexus, "%s/bin/plexus", PLEXUS_BUILD_DIR) < 0 ||
        asprintf(&yaml, "%s/examples/u-boot/machine.yaml", PLEXUS_SOURCE_DIR) < 0)
        return 1;
    char *qemu_argv[] = { "qemu-system-riscv64", "-M", "virt", "-bios", UBOOT, "-nographic", "-m", "128M", NULL };
    char *plexus_argv[] = { plexus, "run", yaml, "--stats", NULL };
    double *tq = calloc((size_t)runs, sizeof(double)), *tp = calloc((size_t)runs, sizeof(double));
    double *cq = calloc((size_t)runs, sizeof(double)), *cp = calloc((size_t)runs, sizeof(double));
    unsigned long long rt = 0, shadow = 0, insns = 0, reads = 0;
    session s;
    for (int i = 0; i < runs; i++) {
        /* alternate so both see the same machine load */
        tq[i] = boot(qemu_argv, &s);
        cq[i] = s.cpu_s;
        free(s.buf);
        tp[i] = boot(plexus_argv, &s);
        cp[i] = s.cpu_s;
        if (tq[i] < 0 || tp[i] < 0) {
            free(s.buf);
            return 1;
        }
        rt = stat_value(s.buf, "device round trips");
        shadow = stat_value(s.buf, "shadow reads");
        insns = stat_value(s.buf, "instructions");
        reads = stat_value(s.buf, "mmio reads");
        free(s.buf);
        printf("run %d: qemu %.3f s (cpu %.3f s), plexus %.3f s (cpu %.3f s)\n", i + 1, tq[i], cq[i], tp[i], cp[i]);
        fflush(stdout);
    }
    qsort(tq, (size_t)runs, sizeof(double), cmp_d);
    qsort(tp, (size_t)runs, sizeof(double), cmp_d);
    qsort(cq, (size_t)runs, sizeof(double), cmp_d);
    qsort(cp, (size_t)runs, sizeof(double), cmp_d);
    double q = tq[runs / 2], p = tp[runs / 2];
    printf("U-Boot boot to the => prompt (median of %d runs, key sent at the autoboot countdown)\n", runs);
    printf("  qemu-system-riscv64 -M virt (floor)  %8.3f s\n", q);
    printf("  plexus                               %8.3f s   ratio %.2fx QEMU (goal <= 1.50x)\n", p, p / q);
    printf("  CPU time per boot, process and its children, start to exit (robust on a busy machine):\n");
    printf("  qemu-system-riscv64                  %8.3f s\n", cq[runs / 2]);
    printf("  plexus (hub + devices)               %8.3f s   ratio %.2fx QEMU\n", cp[runs / 2],
           cp[runs / 2] / cq[runs / 2]);
    printf("  per plexus boot (last run, includes the wait at the prompt until Ctrl-A x):\n");
    printf("    instructions        %llu\n", insns);
    printf("    guest MMIO reads    %llu\n", reads);
    printf("    device round trips  %llu\n", rt);
    printf("    shadow reads        %llu\n", shadow);
    free(tq);
    free(tp);
    free(cq);
    free(cp);
    free(plexus);
    free(yaml);
    return 0;
}
