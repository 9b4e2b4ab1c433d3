/*
 * bench-linux: time from start to the marker the initramfs's /init prints, booting Debian's riscv64 kernel
 * behind Debian's OpenSBI fw_jump on plexus (examples/linux/machine.yaml) and on qemu-system-riscv64 -M virt
 * (the floor) with the same firmware, kernel, initramfs and command line, alternately, in one run, both through
 * a pty. Ctrl-A x quits either at the marker. Prints each run, the medians, the ratio (goal <= 2x QEMU), the
 * CPU time of each (with its children: plexus's device processes) and the instruction count of a plexus boot.
 *
 * Usage: bench-linux [RUNS] [DIR]    (default 3 runs; DIR holds Image and initramfs.cpio.gz from
 *                                     examples/linux/fetch.sh, default BUILD/examples/linux)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/bench_util.h"
#include "../common/pty_session.h"

#define FW_JUMP "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"
#define MARKER "plexus-linux: init ready"
#define BOOTARGS "console=ttyS0"
#define TIMEOUT_S 600.0

/* One boot to the marker; returns seconds, or a negative value on failure. */
static double boot(char *const argv[], pty_session *s)
{
    double t0 = pty_now_s();
    if (pty_start(s, argv) < 0)
        return -1;
    if (pty_expect(s, 0, MARKER, t0 + TIMEOUT_S) < 0) {
        fprintf(stderr, "bench-linux: %s: no '%s'; output ends:\n%s\n", argv[0], MARKER,
                s->len > 3000 ? s->buf + s->len - 3000 : s->buf);
        pty_finish(s, 0);
        return -1;
    }
    double t = pty_now_s() - t0;
    pty_type(s, "\x01x");      /* Ctrl-A x quits both */
    pty_finish(s, 20);
    return t;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (runs < 1)
        runs = 1;
    char *dir, *kernel, *initrd, *plexus, *yaml;
    if ((argc > 2 ? asprintf(&dir, "%s", argv[2]) : asprintf(&dir, "%s/examples/linux", PLEXUS_BUILD_DIR)) < 0 ||
        asprintf(&kernel, "%s/Image", dir) < 0 || asprintf(&initrd, "%s/initramfs.cpio.gz", dir) < 0 ||
        asprintf(&plexus, "%s/bin/plexus", PLEXUS_BUILD_DIR) < 0 ||
        asprintf(&yaml, "%s/examples/linux/machine.yaml", PLEXUS_SOURCE_DIR) < 0)
        return 1;
    if (access(kernel, R_OK) || access(initrd, R_OK)) {
        fprintf(stderr, "bench-linux: no %s or %s: run examples/linux/fetch.sh %s first\n", kernel, initrd, dir);
        return 1;
    }
    if (access(FW_JUMP, R_OK)) {
        fprintf(stderr, "bench-linux: %s missing (apt-get install opensbi)\n", FW_JUMP);
        return 1;
    }
    char *qemu_argv[] = { "qemu-system-riscv64", "-M", "virt", "-m", "512M", "-nographic", "-bios", FW_JUMP,
                          "-kernel", kernel, "-initrd", initrd, "-append", BOOTARGS, NULL };
    char *plexus_argv[] = { plexus, "run", yaml, "--kernel", kernel, "--initrd", initrd, "--append", BOOTARGS,
                            "--stats", NULL };
    double *tq = calloc((size_t)runs, sizeof(double)), *tp = calloc((size_t)runs, sizeof(double));
    double *cq = calloc((size_t)runs, sizeof(double)), *cp = calloc((size_t)runs, sizeof(double));
    unsigned long long insns = 0;
    pty_session s;
    for (int i = 0; i < runs; i++) {
        /* alternate so both see the same machine load */
        tq[i] = boot(qemu_argv, &s);
        cq[i] = s.cpu_s;
        pty_free(&s);
        tp[i] = boot(plexus_argv, &s);
        cp[i] = s.cpu_s;
        const char *st = strstr(s.buf, "instructions");
        if (st)
            insns = strtoull(st + strlen("instructions"), NULL, 10);
        pty_free(&s);
        if (tq[i] < 0 || tp[i] < 0)
            return 1;
        printf("run %d: qemu %.3f s (cpu %.3f s), plexus %.3f s (cpu %.3f s)\n", i + 1, tq[i], cq[i], tp[i], cp[i]);
        fflush(stdout);
    }
    double q = bench_median_double(tq, runs), p = bench_median_double(tp, runs);
    double qc = bench_median_double(cq, runs), pc = bench_median_double(cp, runs);
    printf("Linux boot to the initramfs's /init marker (median of %d runs; Debian OpenSBI fw_jump, %s)\n", runs,
           kernel);
    printf("  qemu-system-riscv64 -M virt (floor)  %8.3f s\n", q);
    printf("  plexus                               %8.3f s   ratio %.2fx QEMU (goal <= 2.00x)\n", p, p / q);
    printf("  CPU time per boot, process and its children, start to exit:\n");
    printf("  qemu-system-riscv64                  %8.3f s\n", qc);
    printf("  plexus (hub + devices)               %8.3f s   ratio %.2fx QEMU\n", pc, pc / qc);
    printf("  instructions per plexus boot (to the marker and Ctrl-A x): %llu\n", insns);
    free(tq);
    free(tp);
    free(cq);
    free(cp);
    free(dir);
    free(kernel);
    free(initrd);
    free(plexus);
    free(yaml);
    return 0;
}
