/*
 * plexus-bench-confine [devices] [round_trips]: what the jail costs a device.
 *   Start-up: the time hub_devmgr_add takes for each of @devices (default 64) idle devices the hub spawns,
 *   each in its jail, against a floor measured in the same run: the same program started by this program
 *   outside any jail (posix_spawn as soon as the hub has written its attach key) and attached through the
 *   attach socket, which makes the same handshake. Medians per device, the jail's cost per device (the
 *   difference), and the wall time for all of them. Goals: at most 20 ms more per device; 64 in under 2 s.
 *   Ring read round trip (median of @round_trips, default 20000) on a jailed device against the attached one,
 *   in alternating blocks. Goal: within 5%.
 * Uses the test device plexus-test-scaledev (tests/scale), found next to this program.
 */
#include "../common/bench_hub.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plexus/protocol.h"

#define MAX_DEV 256
#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define JAILED_BASE 0x10000000u
#define FREE_BASE 0x30000000u
#define DEV_STRIDE 0x1000u
#define WARMUP 500

extern char **environ;

static hub_region_map maps[2 * MAX_DEV][2];
static char names[2 * MAX_DEV][24];

static hub_device_config config(const char *prog, hwaddr base, int slot, const char *prefix, int i)
{
    snprintf(names[slot], sizeof(names[slot]), "%s%03d", prefix, i);
    maps[slot][0] = (hub_region_map){ "regs", base + (hwaddr)i * DEV_STRIDE };
    maps[slot][1] = (hub_region_map){ "busy", base + (hwaddr)i * DEV_STRIDE + 0x800 };
    return (hub_device_config){ .name = names[slot], .program = prog, .regions = maps[slot], .n_regions = 2,
                                .timeout_ms = 10000 };
}

static hub_device *add_or_die(hub_devmgr *m, const hub_device_config *c)
{
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(m, c, &err);
    if (!d) {
        fprintf(stderr, "bench: adding %s: %s\n", c->name, err ? error_get_pretty(err) : "?");
        exit(1);
    }
    return d;
}

/* The unconfined start: a thread that waits for the hub to write the device's key, then starts the program
 * with it (the hub's add() waits on the attach socket meanwhile). */
struct starter {
    const char *prog, *sock_dir, *sock, *name;
    pid_t pid;
};

static void *start_when_keyed(void *arg)
{
    struct starter *s = arg;
    char path[4096], key[PLX_ATTACH_KEY_LEN + 1];
    snprintf(path, sizeof(path), "%s/%s" PLX_ATTACH_KEY_SUFFIX, s->sock_dir, s->name);
    for (;;) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(key, 1, PLX_ATTACH_KEY_LEN, f) : 0;
        if (f)
            fclose(f);
        if (n == PLX_ATTACH_KEY_LEN)
            break;
        struct timespec ts = { 0, 20000 };
        nanosleep(&ts, NULL);
    }
    key[PLX_ATTACH_KEY_LEN] = 0;
    char e_attach[4200], e_name[64], e_key[PLX_ATTACH_KEY_LEN + 32];
    snprintf(e_attach, sizeof(e_attach), PLX_ENV_ATTACH "=%s", s->sock);
    snprintf(e_name, sizeof(e_name), PLX_ENV_DEVICE_NAME "=%s", s->name);
    snprintf(e_key, sizeof(e_key), PLX_ENV_ATTACH_KEY "=%s", key);
    char *envp[] = { e_attach, e_name, e_key, "PATH=/usr/bin:/bin", NULL };
    char *argv[] = { (char *)s->prog, NULL };
    if (posix_spawn(&s->pid, s->prog, NULL, NULL, argv, envp) != 0) {
        fprintf(stderr, "bench: cannot start %s\n", s->prog);
        exit(1);
    }
    return NULL;
}

static hub_device *add_unconfined(hub_devmgr *m, hub_device_config c, const char *prog, pid_t *pid)
{
    static char dir[4096];
    const char *sock = hub_devmgr_attach_socket(m);
    snprintf(dir, sizeof(dir), "%s", sock);
    *strrchr(dir, '/') = 0;
    struct starter s = { .prog = prog, .sock_dir = dir, .sock = sock, .name = c.name };
    pthread_t t;
    pthread_create(&t, NULL, start_when_keyed, &s);
    c.program = NULL;
    c.attach = true;
    c.attach_timeout_ms = 10000;
    hub_device *d = add_or_die(m, &c);
    pthread_join(t, NULL);
    *pid = s.pid;
    return d;
}

int main(int argc, char **argv)
{
    int n_dev = argc > 1 ? atoi(argv[1]) : 64, n = argc > 2 ? atoi(argv[2]) : 20000;
    if (n_dev < 1 || n_dev > MAX_DEV)
        n_dev = 64;
    if (n < 1000)
        n = 1000;
    bench_raise_fd_limit();
    hub_devmgr *m = bench_hub_new(RAM_BASE, RAM_SIZE);
    char *prog = bench_sibling("plexus-test-scaledev");
    static pid_t free_pid[MAX_DEV];
    uint64_t jail_ns[MAX_DEV], free_ns[MAX_DEV], jail_wall = 0, free_wall = 0;

    /* Alternating: jailed device i, then unconfined device i, so that load changes hit both alike. */
    hub_device *first_jailed = NULL;
    for (int i = 0; i < n_dev; i++) {
        hub_device_config cj = config(prog, JAILED_BASE, 2 * i, "jailed", i);
        uint64_t t = bench_now_ns();
        hub_device *d = add_or_die(m, &cj);
        jail_ns[i] = bench_now_ns() - t;
        jail_wall += jail_ns[i];
        if (!first_jailed)
            first_jailed = d;
        hub_device_config cf = config(prog, FREE_BASE, 2 * i + 1, "free", i);
        t = bench_now_ns();
        add_unconfined(m, cf, prog, &free_pid[i]);
        free_ns[i] = bench_now_ns() - t;
        free_wall += free_ns[i];
    }
    char layers[160];
    hub_device_confinement(first_jailed, layers, sizeof(layers));
    uint64_t jm = bench_median(jail_ns, n_dev), fm = bench_median(free_ns, n_dev);
    printf("plexus-bench-confine: %d devices each way, jail layers: %s; %d round trips per figure\n", n_dev, layers,
           n);
    char a[32], b[32];
    snprintf(a, sizeof(a), "%.2f ms", (double)jm / 1e6);
    snprintf(b, sizeof(b), "%.2f ms", (double)fm / 1e6);
    bench_line("start-up, jailed (median)", a, "started outside a jail, attached", b, (double)jm / (double)fm,
               "+20 ms", jm <= fm + 20000000u);
    printf("%-34s %12.2f ms (goal at most 20 ms)\n", "jail's cost per device (median)",
           ((double)jm - (double)fm) / 1e6);
    snprintf(a, sizeof(a), "%.3f s", (double)jail_wall / 1e9);
    snprintf(b, sizeof(b), "%.3f s", (double)free_wall / 1e9);
    bench_line("start-up of all, jailed", a, "all started outside a jail", b, (double)jail_wall / (double)free_wall,
               "< 2 s for 64", n_dev != 64 || jail_wall < 2000000000u);

    /* Ring round trip: jailed device 0 against unconfined device 0, in alternating blocks. */
    uint64_t *vj = malloc(sizeof(*vj) * (size_t)n), *vf = malloc(sizeof(*vf) * (size_t)n);
    if (!vj || !vf)
        return 1;
    bench_wr32(JAILED_BASE, 0x1234);
    bench_wr32(FREE_BASE, 0x1234);
    bench_sample_reads(JAILED_BASE, 0x1234, vj, WARMUP);
    bench_sample_reads(FREE_BASE, 0x1234, vf, WARMUP);
    enum { BLOCKS = 10 };
    int per = n / BLOCKS;
    for (int k = 0; k < BLOCKS; k++) {
        bench_sample_reads(JAILED_BASE, 0x1234, vj + k * per, per);
        bench_sample_reads(FREE_BASE, 0x1234, vf + k * per, per);
    }
    uint64_t rj = bench_median(vj, per * BLOCKS), rf = bench_median(vf, per * BLOCKS);
    snprintf(a, sizeof(a), "%.2f us", (double)rj / 1e3);
    snprintf(b, sizeof(b), "%.2f us", (double)rf / 1e3);
    bench_line("read round trip, jailed", a, "outside a jail, attached", b, (double)rj / (double)rf, "<= 1.05x",
               (double)rj <= 1.05 * (double)rf);
    free(vj);
    free(vf);
    bench_hub_free(m);
    for (int i = 0; i < n_dev; i++)
        waitpid(free_pid[i], NULL, 0);
    free(prog);
    return 0;
}
