/*
 * plexus-bench-systemc [round_trips]: the SystemC bridge against floors measured in the same run.
 *   register read round trip, a TLM-2.0 target behind plexus::bridge on the ring   vs  the C bench device
 *       (bench/mmio/benchdev.c, plx_dev_main) on the ring, blocks of each interleaved     goal <= 1.5x
 *   a model's DMA into guest RAM through DMI (write, read; 32 MiB)  vs  memcpy of the same size between two
 *       private buffers in the same process, in rounds of all three (the order turning); medians of the
 *       per-round ratios                                                             goal >= 0.9x
 *   (info) the same through b_transport (the bridge's ram socket, one transaction per 1 MiB)
 */
#include "../common/bench_hub.h"

#include <plexus/protocol.h>

#define RAM_BASE 0x80000000u
#define RAM_SIZE (64u << 20)
#define C_BASE 0x10000000u          /* the C device's io region (posted and shadow follow, unused here) */
#define SC_BASE 0x10010000u         /* the SystemC device's io region */

/* What the devices and the device layer report: only warnings and errors, which end a bench run's trust. */
static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    if (level <= PLX_LOG_WARNING)
        fprintf(stderr, "bench: %s: %s\n", device ? device : "-", msg);
}

static hub_device *add(hub_devmgr *m, const char *name, const char *prog, const hub_region_map *maps, size_t n)
{
    hub_device_config cfg = { .name = name, .program = prog, .regions = maps, .n_regions = n,
                              .timeout_ms = 5000, .transport = HUB_TRANSPORT_RING };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(m, &cfg, &err);
    if (!d) {
        fprintf(stderr, "bench: %s\n", error_get_pretty(err));
        exit(1);
    }
    if (strcmp(hub_device_endpoint(d), "ring") != 0) {
        fprintf(stderr, "bench: %s is not on the ring (%s)\n", name, hub_device_endpoint(d));
        exit(1);
    }
    return d;
}

/* Bytes per second of command @cmd of the SystemC device (@len bytes, @reps times), timed in its process. */
static double dma_cmd(uint32_t cmd, uint32_t len, uint32_t reps)
{
    bench_wr32(SC_BASE + 0x10, RAM_BASE);
    bench_wr32(SC_BASE + 0x14, 0);
    bench_wr32(SC_BASE + 0x18, len);
    bench_wr32(SC_BASE + 0x1c, reps);
    bench_wr32(SC_BASE + 0x20, cmd);
    if (bench_rd32(SC_BASE + 0x2c) != 1) {
        fprintf(stderr, "bench: DMA command %u failed in the device\n", cmd);
        exit(1);
    }
    uint64_t ns = bench_rd32(SC_BASE + 0x24) | (uint64_t)bench_rd32(SC_BASE + 0x28) << 32;
    return (double)len * reps / (ns / 1e9);
}

/* Rounds of the floor (command 2) and commands @a and @b back to back, the order turning each round so that
 * neither load nor position favours one: the medians of the three rates and of the per-round ratios a/floor,
 * b/floor. */
static void dma_rounds(uint32_t a, uint32_t b, uint32_t len, uint32_t reps, double out[5])
{
    enum { ROUNDS = 11 };
    double f[ROUNDS], x[ROUNDS], y[ROUNDS], rx[ROUNDS], ry[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        for (int k = 0; k < 3; k++) {
            switch ((i + k) % 3) {
            case 0: f[i] = dma_cmd(2, len, reps); break;
            case 1: x[i] = dma_cmd(a, len, reps); break;
            default: y[i] = dma_cmd(b, len, reps); break;
            }
        }
        rx[i] = x[i] / f[i];
        ry[i] = y[i] / f[i];
    }
    out[0] = bench_median_double(f, ROUNDS);
    out[1] = bench_median_double(x, ROUNDS);
    out[2] = bench_median_double(y, ROUNDS);
    out[3] = bench_median_double(rx, ROUNDS);
    out[4] = bench_median_double(ry, ROUNDS);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 2000)
        n = 2000;
    unsetenv("PLEXUS_TRANSPORT");
    hub_devmgr *m = bench_hub_new(RAM_BASE, RAM_SIZE);
    hub_devmgr_free(m);
    bench_env.log = on_log;
    m = bench_hub_manager();
    char *cprog = bench_sibling("plexus-bench-mmio-dev"), *scprog = bench_sibling("plexus-bench-systemc-dev");
    static const hub_region_map cmaps[] = { { "io", C_BASE }, { "posted", C_BASE + 0x1000 },
                                            { "shadow", C_BASE + 0x2000 } };
    static const hub_region_map scmaps[] = { { "io", SC_BASE } };
    add(m, "c", cprog, cmaps, 3);
    add(m, "systemc", scprog, scmaps, 1);
    printf("plexus-bench-systemc: %d round trips per figure, blocks interleaved\n", n);

    /* 1. register read round trips, in alternating blocks so that load changes hit both alike */
    uint64_t *vc = malloc(sizeof(*vc) * (size_t)n), *vs = malloc(sizeof(*vs) * (size_t)n);
    bench_wr32(C_BASE, 0x1234);
    bench_wr32(SC_BASE, 0x5678);
    for (int i = 0; i < 2000; i++) {
        (void)bench_rd32(C_BASE);
        (void)bench_rd32(SC_BASE);
    }
    const int blocks = 20;
    int done = 0;
    for (int b = 0; b < blocks; b++) {
        int k = (n - done) / (blocks - b);
        bench_sample_reads(C_BASE, 0x1234, vc + done, k);
        bench_sample_reads(SC_BASE, 0x5678, vs + done, k);
        done += k;
    }
    uint64_t mc = bench_median(vc, n), ms = bench_median(vs, n);
    char a[32], f[32];
    snprintf(a, sizeof(a), "%.2f us", ms / 1e3);
    snprintf(f, sizeof(f), "%.2f us", mc / 1e3);
    bench_line("register read, SystemC bridge, ring", a, "register read, C device, ring", f, (double)ms / mc,
               "<= 1.5x", ms <= mc * 1.5);
    free(vc);
    free(vs);

    /* 2. DMA through DMI against memcpy in the device process: 11 rounds of 4 x 32 MiB each, medians */
    double d[5];
    dma_rounds(1, 3, 32u << 20, 4, d);
    snprintf(f, sizeof(f), "%.2f GB/s", d[0] / 1e9);
    snprintf(a, sizeof(a), "%.2f GB/s", d[1] / 1e9);
    bench_line("model DMA write through DMI (32 MiB)", a, "memcpy 32 MiB (device process)", f, d[3], ">= 0.9x",
               d[3] >= 0.9);
    snprintf(a, sizeof(a), "%.2f GB/s", d[2] / 1e9);
    bench_line("model DMA read through DMI (32 MiB)", a, "memcpy 32 MiB (device process)", f, d[4], ">= 0.9x",
               d[4] >= 0.9);
    /* for information: b_transport, one transaction of 1 MiB at a time, against memcpy of the same size */
    dma_rounds(4, 5, 1u << 20, 64, d);
    printf("(info) model DMA through b_transport, 1 MiB transactions: write %.2f GB/s (%.2fx memcpy of 1 MiB, "
           "%.2f GB/s), read %.2f GB/s (%.2fx)\n", d[1] / 1e9, d[3], d[0] / 1e9, d[2] / 1e9, d[4]);
    bench_hub_free(m);
    free(cprog);
    free(scprog);
    return 0;
}
