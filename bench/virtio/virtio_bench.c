/*
 * bench-virtio: a virtio-blk disk under Linux, plexus against QEMU's built-in virtio-blk in the same run. Both
 * boot Debian's riscv64 kernel with the virtio initramfs (examples/linux/fetch.sh) behind OpenSBI fw_jump, root
 * on /dev/vda: a copy of the same ext4 image (examples/linux/mkrootfs.sh, 128 MiB, with bench/virtio/randread
 * on it), on QEMU as `-device virtio-blk-device`, on plexus as examples/linux/machine-virtio.yaml (plexus-virtio-
 * blk in its own process). In the guest's shell, timed from the host by markers the guest prints:
 *   sequential: dd if=/dev/vda of=/dev/null bs=64k count=1024 iflag=direct     (64 MiB, one request per block)
 *   random:     randread /dev/vda 4096 COUNT                                    (4 KiB at random offsets, O_DIRECT)
 * QEMU and plexus alternate, each run on fresh copies of the image (the host's page cache holds it: both read
 * from memory). Prints every run, the medians, the ratios (goals: sequential >= 0.8x QEMU's throughput, random
 * >= 0.5x its requests per second) and the CPU time of each whole run.
 *
 * Usage: bench-virtio [RUNS] [DIR]     (default 3 runs; DIR = what fetch.sh wrote, default BUILD/examples/linux)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/bench_util.h"
#include "../common/pty_session.h"

#define FW_JUMP "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"
#define BOOTARGS "console=ttyS0 root=/dev/vda"
#define READY "root file system /dev/vda (ext4) ready"
#define SEQ_MB 64
#define RAND_COUNT 3000
#define BOOT_TIMEOUT_S 600.0
#define STEP_TIMEOUT_S 300.0

struct result {
    double seq_s, rand_s, cpu_s;
};

static const char *tail(const pty_session *s)
{
    return s->len > 3000 ? s->buf + s->len - 3000 : s->buf;
}

/* Type @cmd between two markers the typed text cannot contain; the seconds between them, or < 0. */
static double timed(pty_session *s, const char *cmd, int id, const char *expect)
{
    char line[512], begin[16], end[16];
    snprintf(begin, sizeof(begin), "M%d\r", 1000 + 2 * id);
    snprintf(end, sizeof(end), "M%d\r", 1001 + 2 * id);
    snprintf(line, sizeof(line), "echo M$((%d+%d)); %s; echo M$((%d+%d))\n", 1000, 2 * id, cmd, 1001, 2 * id);
    size_t mark = s->len;
    if (pty_type(s, line) < 0)
        return -1;
    long at = pty_expect(s, mark, begin, pty_now_s() + STEP_TIMEOUT_S);
    double t0 = pty_now_s();
    if (at < 0)
        return -1;
    long e = pty_expect(s, (size_t)at, end, pty_now_s() + STEP_TIMEOUT_S);
    double t = pty_now_s() - t0;
    if (e < 0 || (expect && !memmem(s->buf + at, (size_t)(e - at), expect, strlen(expect)))) {
        fprintf(stderr, "bench-virtio: '%s' did not finish%s%s; output ends:\n%s\n", cmd, expect ? " with " : "",
                expect ? expect : "", tail(s));
        return -1;
    }
    return t;
}

static int run(char *const argv[], struct result *r)
{
    pty_session s;
    if (pty_start(&s, argv) < 0)
        return -1;
    int ret = -1;
    long at = pty_expect(&s, 0, READY, pty_now_s() + BOOT_TIMEOUT_S);
    if (at < 0 || pty_expect(&s, (size_t)at, "# ", pty_now_s() + STEP_TIMEOUT_S) < 0) {
        fprintf(stderr, "bench-virtio: %s: no shell on the virtio root; output ends:\n%s\n", argv[0], tail(&s));
        goto out;
    }
    char rand[64];
    snprintf(rand, sizeof(rand), "randread /dev/vda 4096 %d", RAND_COUNT);
    char want[64];
    snprintf(want, sizeof(want), "randread: %d reads of 4096 bytes", RAND_COUNT);
    r->seq_s = timed(&s, "dd if=/dev/vda of=/dev/null bs=64k count=1024 iflag=direct", 0, "1024+0 records in");
    r->rand_s = r->seq_s < 0 ? -1 : timed(&s, rand, 1, want);
    if (r->seq_s < 0 || r->rand_s < 0)
        goto out;
    size_t mark = s.len;
    pty_type(&s, "poweroff\n");
    if (pty_expect(&s, mark, "reboot: Power down", pty_now_s() + STEP_TIMEOUT_S) < 0) {
        fprintf(stderr, "bench-virtio: %s did not power down; output ends:\n%s\n", argv[0], tail(&s));
        goto out;
    }
    ret = 0;
out:
    pty_finish(&s, 20);
    r->cpu_s = s.cpu_s;
    pty_free(&s);
    return ret;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    int st = system(cmd);
    free(cmd);
    return st == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (runs < 1)
        runs = 1;
    char *dir, *kernel, *initrd, *plexus, *yaml, *randread, tmp[] = "/tmp/bench-virtio.XXXXXX";
    if ((argc > 2 ? asprintf(&dir, "%s", argv[2]) : asprintf(&dir, "%s/examples/linux", PLEXUS_BUILD_DIR)) < 0 ||
        asprintf(&kernel, "%s/Image", dir) < 0 || asprintf(&initrd, "%s/initramfs-virtio.cpio.gz", dir) < 0 ||
        asprintf(&plexus, "%s/bin/plexus", PLEXUS_BUILD_DIR) < 0 ||
        asprintf(&yaml, "%s/examples/linux/machine-virtio.yaml", PLEXUS_SOURCE_DIR) < 0 ||
        asprintf(&randread, "%s/bench/virtio/randread", PLEXUS_BUILD_DIR) < 0)
        return 1;
    if (access(kernel, R_OK) || access(initrd, R_OK)) {
        fprintf(stderr, "bench-virtio: no %s or %s: run examples/linux/fetch.sh %s first\n", kernel, initrd, dir);
        return 1;
    }
    if (access(randread, R_OK)) {
        fprintf(stderr, "bench-virtio: no %s (it needs riscv64-unknown-elf-gcc: scripts/deps.sh)\n", randread);
        return 1;
    }
    if (!mkdtemp(tmp))
        return 1;
    /* The disk: the example's root file system, 128 MiB, with randread on it; read once so that the host's page
     * cache holds it for both. */
    if (sh("'%s/examples/linux/mkrootfs.sh' '%s' '%s/base.ext4' 128M >/dev/null", PLEXUS_SOURCE_DIR, dir, tmp) ||
        sh("debugfs -w -R 'write %s /bin/randread' '%s/base.ext4' >/dev/null 2>&1 && "
           "debugfs -w -R 'sif /bin/randread mode 0100755' '%s/base.ext4' >/dev/null 2>&1", randread, tmp, tmp)) {
        fprintf(stderr, "bench-virtio: cannot build the disk image in %s\n", tmp);
        return 1;
    }
    char *qimg, *pimg, *qdrive, *pset;
    if (asprintf(&qimg, "%s/qemu.ext4", tmp) < 0 || asprintf(&pimg, "%s/plexus.ext4", tmp) < 0 ||
        asprintf(&qdrive, "file=%s,format=raw,if=none,id=hd0", qimg) < 0 ||
        asprintf(&pset, "devices.vda.files.disk.path=%s", pimg) < 0)
        return 1;
    char *qemu_argv[] = { "qemu-system-riscv64", "-M", "virt", "-m", "512M", "-nographic", "-bios", FW_JUMP,
                          "-kernel", kernel, "-initrd", initrd, "-append", BOOTARGS, "-drive", qdrive,
                          "-device", "virtio-blk-device,drive=hd0", "-device", "virtio-rng-device", NULL };
    char *plexus_argv[] = { plexus, "run", yaml, "--kernel", kernel, "--initrd", initrd, "--set", pset, NULL };
    double *qs = calloc((size_t)runs, sizeof(double)), *qr = calloc((size_t)runs, sizeof(double));
    double *ps = calloc((size_t)runs, sizeof(double)), *pr = calloc((size_t)runs, sizeof(double));
    double *qc = calloc((size_t)runs, sizeof(double)), *pc = calloc((size_t)runs, sizeof(double));
    int status = 0;
    for (int i = 0; i < runs && !status; i++) {
        struct result q, p;
        /* alternate, each on a fresh copy, so both see the same disk and the same machine load */
        if (sh("cp '%s/base.ext4' '%s' && cp '%s/base.ext4' '%s' && cat '%s' '%s' > /dev/null", tmp, qimg, tmp, pimg,
               qimg, pimg) || run(qemu_argv, &q) < 0 || run(plexus_argv, &p) < 0) {
            status = 1;
            break;
        }
        qs[i] = q.seq_s, qr[i] = q.rand_s, qc[i] = q.cpu_s;
        ps[i] = p.seq_s, pr[i] = p.rand_s, pc[i] = p.cpu_s;
        printf("run %d: qemu seq %.3f s rand %.3f s (cpu %.2f s), plexus seq %.3f s rand %.3f s (cpu %.2f s)\n", i + 1,
               q.seq_s, q.rand_s, q.cpu_s, p.seq_s, p.rand_s, p.cpu_s);
        fflush(stdout);
    }
    if (!status) {
        double q1 = bench_median_double(qs, runs), q2 = bench_median_double(qr, runs);
        double p1 = bench_median_double(ps, runs), p2 = bench_median_double(pr, runs);
        double qcpu = bench_median_double(qc, runs), pcpu = bench_median_double(pc, runs);
        printf("virtio-blk under Linux 6.12, root on /dev/vda (median of %d runs; the host's page cache holds the "
               "image)\n", runs);
        printf("                          sequential 64 KiB O_DIRECT     random 4 KiB O_DIRECT\n");
        printf("  QEMU virtio-blk (floor)  %7.1f MB/s (%6.3f s)        %7.0f req/s (%6.3f s)\n", SEQ_MB / q1, q1,
               RAND_COUNT / q2, q2);
        printf("  plexus-virtio-blk        %7.1f MB/s (%6.3f s)        %7.0f req/s (%6.3f s)\n", SEQ_MB / p1, p1,
               RAND_COUNT / p2, p2);
        printf("  ratio                    %7.2fx QEMU (goal >= 0.80)     %7.2fx QEMU (goal >= 0.50)\n", q1 / p1,
               q2 / p2);
        printf("  CPU time of a whole run (boot, both tests, poweroff; with children): QEMU %.2f s, plexus %.2f s "
               "(%.2fx)\n", qcpu, pcpu, pcpu / qcpu);
    }
    sh("rm -rf '%s'", tmp);
    free(qs), free(qr), free(ps), free(pr), free(qc), free(pc);
    free(qimg), free(pimg), free(qdrive), free(pset);
    free(dir), free(kernel), free(initrd), free(plexus), free(yaml), free(randread);
    return status;
}
