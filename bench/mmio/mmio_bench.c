/*
 * plexus-bench-mmio [iterations]: the cost of the device path over ZeroMQ (the device is kept on it; the
 * shared-memory ring is measured by plexus-bench-ring), each figure next to a floor measured in the same run
 * and the ratio.
 *   MMIO read round trip (hub -> device -> hub)   vs  raw ZeroMQ PAIR ipc round trip (median)
 *   posted-write throughput                       vs  raw ZeroMQ PAIR ipc pipelined rate
 *   shadow-register read                          vs  in-process RAM read through the same address space
 *   device DMA into mapped guest RAM              vs  memcpy of the same size in the device process
 * Goals: read <= 1.15x, posted >= 0.8x, shadow <= 2x, DMA >= 0.9x.
 */
#include "../common/bench_hub.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>



enum { WARMUP = 200 };

/* ---- floors ---------------------------------------------------------------------------------------------- */

static double floor_zmq_pipelined(int n, const char *ep)
{
    pid_t pid = fork();
    if (pid == 0) {
        void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
        char buf[64];
        int hwm = 0;
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_bind(s, ep);
        zmq_recv(s, buf, sizeof(buf), 0);
        zmq_send(s, "k", 1, 0);
        for (int i = 0; i < n; i++)
            zmq_recv(s, buf, sizeof(buf), 0);
        zmq_send(s, "k", 1, 0);
        zmq_close(s);
        zmq_ctx_term(ctx);
        _exit(0);
    }
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
    char buf[64] = { 0 };
    int hwm = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_connect(s, ep);
    zmq_send(s, buf, 24, 0);
    zmq_recv(s, buf, sizeof(buf), 0);
    uint64_t t = bench_now_ns();
    for (int i = 0; i < n; i++)
        zmq_send(s, buf, 24, 0);
    zmq_recv(s, buf, sizeof(buf), 0);
    t = bench_now_ns() - t;
    zmq_close(s);
    zmq_ctx_term(ctx);
    waitpid(pid, NULL, 0);
    return n / (t / 1e9);
}

/* ---- the hub side ---------------------------------------------------------------------------------------- */

#define RAM_BASE 0x80000000u
#define RAM_SIZE (64u << 20)
#define IO_BASE 0x10000000u
#define POSTED_BASE 0x10001000u
#define SHADOW_BASE 0x10002000u

static double dma_cmd(uint32_t cmd, uint32_t len, uint32_t reps)
{
    bench_wr32(IO_BASE + 0x10, RAM_BASE);
    bench_wr32(IO_BASE + 0x14, 0);
    bench_wr32(IO_BASE + 0x18, len);
    bench_wr32(IO_BASE + 0x1c, reps);
    bench_wr32(IO_BASE + 0x20, cmd);
    uint64_t ns = bench_rd32(IO_BASE + 0x24) | (uint64_t)bench_rd32(IO_BASE + 0x28) << 32;
    return (double)len * reps / (ns / 1e9);   /* bytes per second */
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 1000)
        n = 1000;
    char ep[64];
    snprintf(ep, sizeof(ep), "ipc:///tmp/plexus-bench-mmio-%d.ipc", (int)getpid());

    Error *err = NULL;
    hub_devmgr *m = bench_hub_new(RAM_BASE, RAM_SIZE);
    char *prog = bench_sibling("plexus-bench-mmio-dev");
    hub_region_map maps[] = { { "io", IO_BASE }, { "posted", POSTED_BASE }, { "shadow", SHADOW_BASE } };
    hub_device_config cfg = { .name = "bench", .program = prog, .regions = maps, .n_regions = 3,
                               .timeout_ms = 5000,
                              .transport = HUB_TRANSPORT_ZMQ };
    hub_device *d = hub_devmgr_add(m, &cfg, &err);
    if (!d) {
        fprintf(stderr, "bench: %s\n", error_get_pretty(err));
        return 1;
    }

    printf("plexus-bench-mmio: %d iterations per figure\n", n);

    /* 1. read round trip, interleaved in blocks with the floor so that load changes hit both alike */
    uint64_t zrtt, rtt;
    uint64_t *v = malloc(sizeof(*v) * (size_t)n), *fv = malloc(sizeof(*fv) * (size_t)n);
    {
        pid_t pid = fork();
        if (pid == 0) {
            void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
            char buf[64];
            zmq_bind(s, ep);
            for (int i = 0; i < n + WARMUP; i++) {
                int r = zmq_recv(s, buf, sizeof(buf), 0);
                zmq_send(s, buf, (size_t)r, 0);
            }
            zmq_close(s);
            zmq_ctx_term(ctx);
            _exit(0);
        }
        void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
        char buf[64] = { 0 };
        zmq_connect(s, ep);
        for (int i = 0; i < WARMUP; i++) {
            zmq_send(s, buf, 24, 0);
            zmq_recv(s, buf, sizeof(buf), 0);
            (void)bench_rd32(IO_BASE);
        }
        const int blocks = 20;
        int done = 0;
        for (int b = 0; b < blocks; b++) {
            int k = (n - done) / (blocks - b);
            for (int i = 0; i < k; i++) {
                uint64_t t0 = bench_now_ns();
                zmq_send(s, buf, 24, 0);
                zmq_recv(s, buf, sizeof(buf), 0);
                fv[done + i] = bench_now_ns() - t0;
            }
            for (int i = 0; i < k; i++) {
                uint64_t t0 = bench_now_ns();
                (void)bench_rd32(IO_BASE);
                v[done + i] = bench_now_ns() - t0;
            }
            done += k;
        }
        zmq_close(s);
        zmq_ctx_term(ctx);
        waitpid(pid, NULL, 0);
        zrtt = bench_median(fv, n);
        rtt = bench_median(v, n);
    }
    free(fv);
    char a[32], b[32];
    snprintf(a, sizeof(a), "%.1f us", rtt / 1e3);
    snprintf(b, sizeof(b), "%.1f us", zrtt / 1e3);
    bench_line("MMIO read round trip (median)", a, "raw ZeroMQ PAIR ipc round trip", b, (double)rtt / zrtt, "<= 1.15x",
         rtt <= zrtt * 1.15);

    /* 2. posted writes */
    int np = n * 25;
    double zrate = floor_zmq_pipelined(np, ep);
    uint32_t before = bench_rd32(POSTED_BASE);
    uint64_t t = bench_now_ns();
    for (int i = 0; i < np; i++)
        bench_wr32(POSTED_BASE, (uint32_t)i);
    uint64_t t_issue = bench_now_ns() - t;
    uint32_t after = bench_rd32(POSTED_BASE);    /* ordered after every write: all applied */
    t = bench_now_ns() - t;
    if (after - before != (uint32_t)np) {
        fprintf(stderr, "bench: device applied %u of %d posted writes\n", after - before, np);
        return 1;
    }
    double prate = np / (t / 1e9);
    if (getenv("PLEXUS_BENCH_VERBOSE"))
        printf("  (hub issued the posted writes at %.2f M/s)\n", np / (t_issue / 1e9) / 1e6);
    snprintf(a, sizeof(a), "%.2f M/s", prate / 1e6);
    snprintf(b, sizeof(b), "%.2f M/s", zrate / 1e6);
    bench_line("posted writes (applied)", a, "raw ZeroMQ PAIR ipc pipelined", b, prate / zrate, ">= 0.8x",
         prate >= zrate * 0.8);

    /* 3. shadow reads vs in-process RAM reads through the same address space */
    int ns_iter = n * 50;
    volatile uint32_t sink = 0;
    if (bench_rd32(SHADOW_BASE) != 0x600dcafe) {
        fprintf(stderr, "bench: shadow page does not show the device's value\n");
        return 1;
    }
    uint64_t best_ram = UINT64_MAX, best_sh = UINT64_MAX;
    if (getenv("PLEXUS_BENCH_SHADOW_ONLY")) {   /* for profiling the shadow path */
        for (int i = 0; i < ns_iter * 20; i++)
            sink += bench_rd32(SHADOW_BASE);
        return 0;
    }
    for (int rep = 0; rep < 5; rep++) {
        t = bench_now_ns();
        for (int i = 0; i < ns_iter; i++)
            sink += bench_rd32(RAM_BASE + 64);
        t = bench_now_ns() - t;
        if (t < best_ram)
            best_ram = t;
        t = bench_now_ns();
        for (int i = 0; i < ns_iter; i++)
            sink += bench_rd32(SHADOW_BASE);
        t = bench_now_ns() - t;
        if (t < best_sh)
            best_sh = t;
    }
    (void)sink;
    double ram_ns = (double)best_ram / ns_iter, sh_ns = (double)best_sh / ns_iter;
    snprintf(a, sizeof(a), "%.1f ns", sh_ns);
    snprintf(b, sizeof(b), "%.1f ns", ram_ns);
    bench_line("shadow register read", a, "RAM read (address_space_read)", b, sh_ns / ram_ns, "<= 2x",
         sh_ns <= ram_ns * 2);

    /* 4. DMA into mapped RAM, measured in the device process next to memcpy there */
    uint32_t len = 32u << 20, reps = 4;      /* as large as the L3 cache: memory bandwidth */
    double best_dma = 0, best_cpy = 0, best_dmar = 0;
    for (int rep = 0; rep < 7; rep++) {     /* interleaved, best of each: the machine is shared */
        double x = dma_cmd(2, len, reps);
        if (x > best_cpy)
            best_cpy = x;
        x = dma_cmd(1, len, reps);
        if (x > best_dma)
            best_dma = x;
        x = dma_cmd(3, len, reps);
        if (x > best_dmar)
            best_dmar = x;
    }
    snprintf(a, sizeof(a), "%.2f GB/s", best_dma / 1e9);
    snprintf(b, sizeof(b), "%.2f GB/s", best_cpy / 1e9);
    bench_line("device DMA write (32 MiB)", a, "memcpy 32 MiB (device process)", b, best_dma / best_cpy, ">= 0.9x",
         best_dma >= best_cpy * 0.9);
    snprintf(a, sizeof(a), "%.2f GB/s", best_dmar / 1e9);
    bench_line("device DMA read (32 MiB)", a, "memcpy 32 MiB (device process)", b, best_dmar / best_cpy, ">= 0.9x",
         best_dmar >= best_cpy * 0.9);

    /* 5. for information: DMA by message (a device given no RAM), and the cost of an idle poll */
    hub_region_map maps2[] = { { "io", IO_BASE + 0x10000 }, { "posted", POSTED_BASE + 0x10000 },
                               { "shadow", SHADOW_BASE + 0x10000 } };
    hub_device_config cfg2 = cfg;
    cfg2.name = "bench-nomap";
    cfg2.regions = maps2;
    cfg2.ram_by_message = true;     /* RAM is its window but not mapped: DMA by message */
    if (!hub_devmgr_add(m, &cfg2, &err)) {
        fprintf(stderr, "bench: %s\n", error_get_pretty(err));
        return 1;
    }
    double best_msg = 0;
    for (int rep = 0; rep < 3; rep++) {
        bench_wr32(IO_BASE + 0x10000 + 0x10, RAM_BASE);
        bench_wr32(IO_BASE + 0x10000 + 0x14, 0);
        bench_wr32(IO_BASE + 0x10000 + 0x18, 8u << 20);
        bench_wr32(IO_BASE + 0x10000 + 0x1c, 2);
        bench_wr32(IO_BASE + 0x10000 + 0x20, 1);
        uint64_t ns = bench_rd32(IO_BASE + 0x10000 + 0x24) | (uint64_t)bench_rd32(IO_BASE + 0x10000 + 0x28) << 32;
        double x = (8.0 * (1 << 20) * 2) / (ns / 1e9);
        if (x > best_msg)
            best_msg = x;
    }
    printf("(info) DMA write by message (8 MiB in 1 MiB messages): %.2f GB/s = %.2fx memcpy\n", best_msg / 1e9,
           best_msg / best_cpy);
    int npoll = n * 5;
    t = bench_now_ns();
    for (int i = 0; i < npoll; i++)
        hub_devmgr_poll(m, 0);
    t = bench_now_ns() - t;
    printf("(info) hub_devmgr_poll(0) with 2 idle devices: %.0f ns per call\n", (double)t / npoll);

    hub_devmgr_stats st;
    hub_devmgr_get_stats(m, &st);
    printf("hub counters: %llu sync reads, %llu sync writes, %llu posted writes, %llu shadow reads, "
           "%llu DMA messages\n", (unsigned long long)st.sync_reads, (unsigned long long)st.sync_writes,
           (unsigned long long)st.posted_writes, (unsigned long long)st.shadow_reads,
           (unsigned long long)st.dma_messages);
    free(v);
    free(prog);
    bench_hub_free(m);
    return 0;
}
