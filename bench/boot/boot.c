/*
 * bench-boot: time from start to Debian U-Boot's `=>` prompt on plexus and on qemu-system-riscv64 (the floor),
 * measured in the same run, both driven through a pty: when the autoboot countdown appears a key is sent at
 * once, and the clock stops at the prompt. Prints the median of each, the ratio (goal <= 1.5x QEMU), and the
 * device round trips, shadow reads and instructions per plexus boot (from `plexus run --stats`).
 *
 * Usage: bench-boot [RUNS]      (default 3)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/pty_session.h"

#define UBOOT "/usr/lib/u-boot/qemu-riscv64/u-boot.bin"
#define TIMEOUT_S 300.0

/* One boot to the prompt; returns seconds, or a negative value on failure. */
static double boot(char *const argv[], pty_session *s)
{
    double t0 = pty_now_s();
    if (pty_start(s, argv) < 0)
        return -1;
    double deadline = t0 + TIMEOUT_S;
    long at = pty_expect(s, 0, "Hit any key to stop autoboot", deadline);
    if (at < 0) {
        fprintf(stderr, "bench-boot: %s: no autoboot countdown; output:\n%s\n", argv[0], s->buf);
        pty_finish(s, 0);
        return -1;
    }
    if (pty_type(s, " ") < 0 || pty_expect(s, (size_t)at, "=>", deadline) < 0) {
        fprintf(stderr, "bench-boot: %s: no prompt\n", argv[0]);
        pty_finish(s, 0);
        return -1;
    }
    double t = pty_now_s() - t0;
    pty_type(s, "\x01x");     /* Ctrl-A x quits both */
    pty_finish(s, 20);
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
    pty_session s;
    for (int i = 0; i < runs; i++) {
        /* alternate so both see the same machine load */
        tq[i] = boot(qemu_argv, &s);
        cq[i] = s.cpu_s;
        pty_free(&s);
        tp[i] = boot(plexus_argv, &s);
        cp[i] = s.cpu_s;
        if (tq[i] < 0 || tp[i] < 0) {
            pty_free(&s);
            return 1;
        }
        rt = stat_value(s.buf, "device round trips");
        shadow = stat_value(s.buf, "shadow reads");
        insns = stat_value(s.buf, "instructions");
        reads = stat_value(s.buf, "mmio reads");
        pty_free(&s);
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
