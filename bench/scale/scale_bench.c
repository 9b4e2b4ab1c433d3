/*
 * plexus-bench-scale [seconds] [round_trips]: what 64 idle devices cost a hub.
 *   Idle CPU of the hub plus 64 idle device processes while the hub sits in hub_devmgr_poll(m, 20) as an idle
 *   machine does (20 ms slices), over @seconds (default 10): CPU seconds of the hub (getrusage) and of the
 *   devices (/proc/<pid>/stat utime+stime), and the share of one core. Floor: the same loop of 20 ms waits
 *   with no device layer (poll() on nothing), measured in the same run. Goal: about zero. Device CPU comes
 *   from /proc in clock ticks (usually 10 ms), so a device under one tick over the run shows as zero.
 *   MMIO read round trip (median) on one device with 63 others idle  vs  a device alone on its own manager,
 *   in alternating blocks; also the alone figure measured before any other device existed.
 * Uses the test device plexus-test-scaledev (tests/scale), found next to this program.
 */
#include "../common/bench_hub.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>



#define N_DEV 64
#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define DEV_BASE 0x10000000u
#define DEV_STRIDE 0x1000u
#define SOLO_BASE 0x20000000u
#define IDLE_SLICE_MS 20
#define WARMUP 200

static double tv_s(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

/* utime + stime of process @pid in seconds; -1 if it cannot be read. */
static double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut, st;
    /* after the command: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t *alloc_samples(int n)
{
    uint64_t *v = malloc(sizeof(*v) * (size_t)n);
    if (!v) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    return v;
}

/* Device @i of a manager, at @base + i * DEV_STRIDE. */
static hub_device *add(hub_devmgr *m, const char *prog, hwaddr base, int i)
{
    static hub_region_map maps[N_DEV][2];
    static char names[N_DEV][24];
    snprintf(names[i], sizeof(names[i]), "scale%02d", i);
    maps[i][0] = (hub_region_map){ "regs", base + (hwaddr)i * DEV_STRIDE };
    maps[i][1] = (hub_region_map){ "busy", base + (hwaddr)i * DEV_STRIDE + 0x800 };
    hub_device_config c = { .name = names[i], .program = prog, .regions = maps[i], .n_regions = 2,
                             .timeout_ms = 10000 };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(m, &c, &err);
    if (!d) {
        fprintf(stderr, "bench: adding device %d of %d: %s\n", i + 1, N_DEV, err ? error_get_pretty(err) : "?");
        exit(1);
    }
    return d;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 10.0;
    int n = argc > 2 ? atoi(argv[2]) : 5000;
    if (secs <= 0)
        secs = 10.0;
    if (n < 100)
        n = 100;

    bench_raise_fd_limit();

    hub_devmgr *m = bench_hub_new(RAM_BASE, RAM_SIZE);
    char *prog = bench_sibling("plexus-test-scaledev");
    hub_device *devs[N_DEV];

    printf("plexus-bench-scale: %d devices, %.1f s idle, %d round trips per figure\n", N_DEV, secs, n);

    /* Round trip on one device while it is the only one (a manager of its own, before any other exists). */
    hub_devmgr *solo_m = bench_hub_manager();
    add(solo_m, prog, SOLO_BASE, 0);
    uint64_t *va = alloc_samples(n), *vb = alloc_samples(n);
    bench_wr32(SOLO_BASE, 0x1234);
    bench_sample_reads(SOLO_BASE, 0x1234, va, WARMUP);
    bench_sample_reads(SOLO_BASE, 0x1234, va, n);
    uint64_t rtt_first = bench_median(va, n);

    for (int i = 0; i < N_DEV; i++)
        devs[i] = add(m, prog, DEV_BASE, i);
    for (int i = 0; i < N_DEV; i++) {
        bench_wr32(DEV_BASE + (hwaddr)i * DEV_STRIDE + 4, (uint32_t)i);
        if (bench_rd32(DEV_BASE + (hwaddr)i * DEV_STRIDE + 4) != (uint32_t)i) {
            fprintf(stderr, "bench: device %d read back a wrong value\n", i);
            return 1;
        }
    }
    /* Then, in alternating blocks so that load changes hit both alike: the solo device (its manager has no
     * other device) and device 0 of the manager with 64. */
    bench_wr32(DEV_BASE, 0x1234);
    bench_sample_reads(DEV_BASE, 0x1234, vb, WARMUP);
    enum { BLOCKS = 10 };
    int per = n / BLOCKS;
    /* Between blocks, a pause longer than a ring device's spin budget: the device read in the previous block is
     * idle (asleep) again, as the "others" are, instead of spinning beside the one read now. */
    struct timespec pause = { 0, 2000000 };
    for (int b = 0; b < BLOCKS; b++) {
        nanosleep(&pause, NULL);
        bench_sample_reads(SOLO_BASE, 0x1234, va + b * per, per);
        nanosleep(&pause, NULL);
        bench_sample_reads(DEV_BASE, 0x1234, vb + b * per, per);
    }
    uint64_t rtt_alone = bench_median(va, per * BLOCKS), rtt_busy = bench_median(vb, per * BLOCKS);
    free(va);
    free(vb);
    hub_devmgr_free(solo_m);

    /* Let start-up work settle, then idle. */
    for (uint64_t end = bench_now_ns() + 500000000ull; bench_now_ns() < end;)
        hub_devmgr_poll(m, IDLE_SLICE_MS);

    /* Floor: 20 ms waits on nothing, same duration. */
    double f0 = self_cpu_s();
    uint64_t wakeups_floor = 0;
    for (uint64_t end = bench_now_ns() + (uint64_t)(secs * 1e9); bench_now_ns() < end; wakeups_floor++)
        poll(NULL, 0, IDLE_SLICE_MS);
    double floor_cpu = self_cpu_s() - f0;

    double dev0[N_DEV], hub0 = self_cpu_s();
    for (int i = 0; i < N_DEV; i++)
        dev0[i] = proc_cpu_s(hub_device_pid(devs[i]));
    uint64_t t0 = bench_now_ns(), polls = 0;
    hub_devmgr_stats st0, st1;
    hub_devmgr_get_stats(m, &st0);
    for (uint64_t end = t0 + (uint64_t)(secs * 1e9); bench_now_ns() < end; polls++)
        hub_devmgr_poll(m, IDLE_SLICE_MS);
    double wall = (double)(bench_now_ns() - t0) / 1e9;
    double hub_cpu = self_cpu_s() - hub0, dev_cpu = 0, dev_max = 0;
    int unreadable = 0;
    for (int i = 0; i < N_DEV; i++) {
        double c = proc_cpu_s(hub_device_pid(devs[i]));
        if (c < 0 || dev0[i] < 0) {
            unreadable++;
            continue;
        }
        dev_cpu += c - dev0[i];
        if (c - dev0[i] > dev_max)
            dev_max = c - dev0[i];
    }
    hub_devmgr_get_stats(m, &st1);
    double total = hub_cpu + dev_cpu;

    printf("idle %.2f s, hub in hub_devmgr_poll(m, %d): %llu polls (%.1f per s)\n", wall, IDLE_SLICE_MS,
           (unsigned long long)polls, polls / wall);
    printf("  hub process CPU        %9.4f s  (%.3f%% of one core; %.1f us per poll)\n", hub_cpu,
           100 * hub_cpu / wall, polls ? hub_cpu * 1e6 / (double)polls : 0.0);
    printf("  %d device processes    %9.4f s  (%.3f%% of one core; busiest device %.4f s)%s\n", N_DEV, dev_cpu,
           100 * dev_cpu / wall, dev_max, unreadable ? "  [some /proc/<pid>/stat unreadable]" : "");
    printf("  total                  %9.4f s  (%.3f%% of one core)   goal: about zero\n", total,
           100 * total / wall);
    printf("  floor: %llu waits of %d ms on nothing: %.4f s CPU (%.3f%% of one core, %.1f us per wait); "
           "total / floor = %.1fx\n", (unsigned long long)wakeups_floor, IDLE_SLICE_MS, floor_cpu,
           100 * floor_cpu / secs, wakeups_floor ? floor_cpu * 1e6 / (double)wakeups_floor : 0.0,
           floor_cpu > 0 ? total / floor_cpu : 0.0);
    printf("  messages from devices while idle: irq %llu, dma %llu\n",
           (unsigned long long)(st1.irq_events - st0.irq_events),
           (unsigned long long)(st1.dma_messages - st0.dma_messages));
    printf("MMIO read round trip (median): %.1f us with %d others idle | %.1f us alone | ratio %.2fx (goal ~1x)\n",
           rtt_busy / 1e3, N_DEV - 1, rtt_alone / 1e3, (double)rtt_busy / (double)rtt_alone);
    printf("  (alone, measured before any other device existed: %.1f us)\n", rtt_first / 1e3);

    bench_hub_free(m);
    free(prog);
    return 0;
}
