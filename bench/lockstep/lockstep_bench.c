/*
 * plexus-bench-lockstep [runs]: what lockstep synchronization costs on a busy workload. examples/rtl's machine
 * (the Verilog CRC-32 accelerator under Verilator, next to the UART) boots crc32-bench.elf, which after its
 * checks keeps the accelerator busy with 200 polled 8 KiB CRCs (thousands of device round trips). The same
 * run free-running (sync: async, the device steps itself with virtual-time timers) is the floor; lockstep runs
 * at quanta of 1 us, the default and 100 us are each a ratio to it. Runs alternate, each figure is the median
 * of @runs; the time is the CPU loop's (`wall time s` of --stats, start-up excluded) and the process's.
 * Goal: lockstep at the default quantum at most 1.10x free-running.
 */
#include "../common/bench_util.h"

#include <fcntl.h>
#include <sys/wait.h>

#include "dev/devmgr.h"

struct config {
    const char *name;
    const char *sync;
    unsigned quantum_ns;
    double loop_s[16], proc_s[16];
    unsigned long long grants, round_trips, vtime;
};

/* One `plexus run`; fills the CPU loop's time, the process's, and counters from --stats. */
static int run_once(const char *plexus, const char *yaml, const char *fw, struct config *c, int i)
{
    char sync[64], quantum[64];
    snprintf(sync, sizeof sync, "devices.crc0.sync=%s", c->sync);
    snprintf(quantum, sizeof quantum, "cpu.quantum_ns=%u", c->quantum_ns ? c->quantum_ns : HUB_DEFAULT_QUANTUM_NS);
    int pe[2];
    if (pipe(pe) < 0)
        return -1;
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(pe[1], 2);
        execl(plexus, plexus, "run", yaml, "--firmware", fw, "--set", sync, "--set", quantum, "--stats",
              (char *)NULL);
        _exit(127);
    }
    close(pe[1]);
    static char err[1 << 16];
    size_t n = 0;
    ssize_t got;
    while ((got = read(pe[0], err + n, sizeof err - 1 - n)) > 0)
        n += (size_t)got;
    err[n] = 0;
    close(pe[0]);
    int st;
    waitpid(pid, &st, 0);
    c->proc_s[i] = (bench_now_ns() - t0) / 1e9;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench: %s run failed:\n%s\n", c->name, err);
        return -1;
    }
    const char *w = strstr(err, "wall time s");
    const char *g = strstr(err, "lockstep grants");
    const char *r = strstr(err, "device round trips");
    const char *v = strstr(err, "virtual time ns");
    if (!w || !r || !v)
        return -1;
    c->loop_s[i] = strtod(w + strlen("wall time s"), NULL);
    c->grants = g ? strtoull(g + strlen("lockstep grants"), NULL, 10) : 0;
    c->round_trips = strtoull(r + strlen("device round trips"), NULL, 10);
    c->vtime = strtoull(v + strlen("virtual time ns"), NULL, 10);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1)
        runs = 1;
    if (runs > 16)
        runs = 16;
    char *plexus = bench_sibling("plexus");
    char fw[4096], yaml[4096];
    snprintf(fw, sizeof fw, "%s/examples/rtl/crc32-bench.elf", PLEXUS_BUILD_DIR);
    snprintf(yaml, sizeof yaml, "%s/examples/rtl/machine.yaml", PLEXUS_SOURCE_DIR);
    if (access(fw, R_OK) != 0) {
        fprintf(stderr, "bench: %s is missing (needs riscv64-unknown-elf-gcc and picolibc)\n", fw);
        return 1;
    }
    struct config cs[] = {
        { .name = "free-running (async)", .sync = "async" },
        { .name = "lockstep, quantum 1 us", .sync = "lockstep", .quantum_ns = 1000 },
        { .name = "lockstep, default quantum", .sync = "lockstep", .quantum_ns = 0 },
        { .name = "lockstep, quantum 100 us", .sync = "lockstep", .quantum_ns = 100000 },
    };
    enum { N = sizeof(cs) / sizeof(cs[0]) };
    printf("plexus-bench-lockstep: examples/rtl + crc32-bench.elf (200 polled 8 KiB CRCs), %d runs each, "
           "alternating; default quantum %u ns\n", runs, HUB_DEFAULT_QUANTUM_NS);
    for (int i = 0; i < runs; i++)
        for (int k = 0; k < N; k++)
            if (run_once(plexus, yaml, fw, &cs[(k + i) % N], i) < 0)
                return 1;
    double floor_loop = bench_median_double(cs[0].loop_s, runs), floor_proc = bench_median_double(cs[0].proc_s, runs);
    for (int k = 0; k < N; k++) {
        double l = bench_median_double(cs[k].loop_s, runs), p = bench_median_double(cs[k].proc_s, runs);
        double per = l * 1e9 / (double)cs[k].round_trips, per0 = floor_loop * 1e9 / (double)cs[0].round_trips;
        printf("%-26s CPU loop %6.3f s (%4.2fx)  process %6.3f s (%4.2fx)  grants %6llu  round trips %6llu "
               "(%4.0f ns each, %4.2fx)  virtual %llu ns\n", cs[k].name, l, l / floor_loop, p, p / floor_proc,
               cs[k].grants, cs[k].round_trips, per, per / per0, cs[k].vtime);
    }
    double r = bench_median_double(cs[2].loop_s, runs) / floor_loop;
    printf("lockstep at the default quantum: %.2fx free-running (goal <= 1.10x) %s\n", r, r <= 1.10 ? "ok" : "MISSED");
    printf("(lockstep charges each access's bus cycles to the guest's clock, so its polls cover more virtual time\n"
           " and there are fewer of them: the per-round-trip ratio is the cost of the synchronization itself)\n");
    free(plexus);
    return 0;
}
