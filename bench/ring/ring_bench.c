/*
 * plexus-bench-ring [round_trips]: the same-host fast path against floors measured in the same run.
 *   MMIO read round trip, device on the ring   vs  shared-memory spin ping-pong between two processes
 *                                                  (goal <= 3x) and a UNIX seqpacket request/response, the
 *                                                  cost a vfio-user style transport pays (goal: >= 5x faster)
 *   MMIO read round trip, device on ZeroMQ     vs  raw ZeroMQ PAIR ipc round trip (the reference path)
 *   the ring channel alone (24-byte frames)    vs  the spin floor
 *   encoding per round trip (an MmioRead and its MmioReply through an in-process ring), protobuf-c against the
 *   ring's fixed layout, and their share of the ring round trip
 *   posted writes applied per second: device on the ring vs the same device on ZeroMQ
 * Round trips are sampled in interleaved blocks (every source in turn) so that load changes on a shared machine
 * hit figures and floors alike; each figure is the median.
 */

#include "../common/bench_hub.h"

#include <errno.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <zmq.h>

#include <plexus/chan.h>
#include <plexus/wire.h>


enum { WARMUP = 500, BLOCKS = 20 };
#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define RING_BASE 0x10000000u       /* the ring device's io, posted and shadow regions, 0x1000 apart */
#define ZMQ_BASE 0x10100000u        /* the ZeroMQ device's */

static inline void relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

/* ---- floors -------------------------------------------------------------------------------------------------- */

/* Shared-memory spin ping-pong: a fresh child per block (it spins a core while it lives). */
static void spin_block(uint64_t *out, int k)
{
    uint64_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint64_t *ping = sh, *pong = sh + 8;     /* separate cache lines */
    pid_t pid = fork();
    if (pid == 0) {
        for (uint64_t i = 1; i <= (uint64_t)(k + 100); i++) {
            while (__atomic_load_n(ping, __ATOMIC_ACQUIRE) != i)
                relax();
            __atomic_store_n(pong, i, __ATOMIC_RELEASE);
        }
        _exit(0);
    }
    for (uint64_t i = 1; i <= (uint64_t)(k + 100); i++) {
        uint64_t t0 = bench_now_ns();
        __atomic_store_n(ping, i, __ATOMIC_RELEASE);
        while (__atomic_load_n(pong, __ATOMIC_ACQUIRE) != i)
            relax();
        if (i > 100)
            out[i - 101] = bench_now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    munmap(sh, 4096);
}

/* Echo children for the UNIX seqpacket, ZeroMQ and ring-channel floors: they block (or sleep) between blocks. */
static pid_t unix_child(int *fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char buf[64];
        ssize_t r;
        while ((r = recv(sv[1], buf, sizeof(buf), 0)) > 0)
            if (send(sv[1], buf, (size_t)r, 0) != r)
                break;
        _exit(0);
    }
    close(sv[1]);
    *fd = sv[0];
    return pid;
}

static void unix_block(int fd, uint64_t *out, int k)
{
    char buf[64] = { 0 };
    for (int i = 0; i < k; i++) {
        uint64_t t0 = bench_now_ns();
        if (send(fd, buf, 24, 0) != 24 || recv(fd, buf, sizeof(buf), 0) != 24)
            exit(1);
        out[i] = bench_now_ns() - t0;
    }
}

static pid_t zmq_child(const char *ep)
{
    pid_t pid = fork();
    if (pid == 0) {
        void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
        char buf[64];
        zmq_bind(s, ep);
        int r;
        while ((r = zmq_recv(s, buf, sizeof(buf), 0)) > 0)
            zmq_send(s, buf, (size_t)r, 0);
        zmq_close(s);
        zmq_ctx_term(ctx);
        _exit(0);
    }
    return pid;
}

static void zmq_block(void *s, uint64_t *out, int k)
{
    char buf[64] = { 1 };
    for (int i = 0; i < k; i++) {
        uint64_t t0 = bench_now_ns();
        zmq_send(s, buf, 24, 0);
        zmq_recv(s, buf, sizeof(buf), 0);
        out[i] = bench_now_ns() - t0;
    }
}

static pid_t chan_child(const int fds[PLX_RING_FDS])
{
    pid_t pid = fork();
    if (pid == 0) {
        int mine[PLX_RING_FDS];
        for (int i = 0; i < PLX_RING_FDS; i++)
            mine[i] = dup(fds[i]);
        char err[200];
        plx_chan *c = plx_chan_ring_open(mine, err, sizeof(err));
        if (!c)
            _exit(1);
        const void *d;
        size_t len;
        while (plx_chan_recv(c, &d, &len, -1) == 0 && len > 0) {
            char buf[64];
            memcpy(buf, d, len < sizeof(buf) ? len : sizeof(buf));
            plx_chan_send(c, buf, len, 0);
        }
        if (getenv("PLEXUS_BENCH_VERBOSE")) {
            plx_chan_stats cs;
            plx_chan_get_stats(c, &cs);
            printf("  channel floor, echo side: %llu frames, %llu sleeps, %llu bells rung\n",
                   (unsigned long long)cs.frames_sent, (unsigned long long)cs.sleeps,
                   (unsigned long long)cs.bells_rung);
            fflush(stdout);
        }
        plx_chan_close(c);
        _exit(0);
    }
    return pid;
}

static void chan_block(plx_chan *c, uint64_t *out, int k)
{
    char buf[24] = { 1 };
    for (int i = 0; i < k; i++) {
        uint64_t t0 = bench_now_ns();
        const void *d;
        size_t len;
        if (plx_chan_send(c, buf, sizeof(buf), 0) < 0 || plx_chan_recv(c, &d, &len, 5000) < 0 || len != 24)
            exit(1);
        out[i] = bench_now_ns() - t0;
    }
}

static void read_block(hwaddr a, uint64_t *out, int k)
{
    for (int i = 0; i < k; i++) {
        uint64_t t0 = bench_now_ns();
        (void)bench_rd32(a);
        out[i] = bench_now_ns() - t0;
    }
}

/* One read round trip's messages (an MmioRead, its MmioReply) encoded, carried through a ring whose two ends
 * are in this process, and decoded, as protobuf (@fixed false) or in the ring's fixed layout: what encoding
 * costs on this path, without the process crossing. */
static double wire_round_trip_ns(int n, bool fixed)
{
    int fds[PLX_RING_FDS], mine[PLX_RING_FDS];
    plx_chan *a = plx_chan_ring_create(0, 0, fds);
    for (int i = 0; i < PLX_RING_FDS; i++)
        mine[i] = dup(fds[i]);
    char err[200];
    plx_chan *b = plx_chan_ring_open(mine, err, sizeof(err));
    if (!a || !b)
        exit(1);
    plx_wire wa, wb;
    plx_wire_init(&wa, a);
    plx_wire_init(&wb, b);
    wa.fixed = wb.fixed = fixed;
    uint64_t sink = 0;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        Plx__MmioRead rd = PLX__MMIO_READ__INIT;
        rd.seq = (uint64_t)i + 1000;
        rd.region = 1;
        rd.addr = 0x24;
        rd.size = 4;
        Plx__Envelope e = PLX__ENVELOPE__INIT;
        e.now_ns = 123456789u + (uint64_t)i;
        e.msg_case = PLX__ENVELOPE__MSG_READ;
        e.read = &rd;
        Plx__Envelope *got;
        if (plx_wire_send(&wa, &e, 0) < 0 || plx_wire_recv(&wb, &got, 0) < 0 || got->read->addr != 0x24)
            exit(1);
        Plx__MmioReply rp = PLX__MMIO_REPLY__INIT;
        rp.seq = got->read->seq;
        rp.data = 0xdeadbeefu ^ (uint64_t)i;
        Plx__Envelope e2 = PLX__ENVELOPE__INIT;
        e2.now_ns = got->now_ns;
        e2.msg_case = PLX__ENVELOPE__MSG_REPLY;
        e2.reply = &rp;
        plx_wire_release(&wb);
        if (plx_wire_send(&wb, &e2, 0) < 0 || plx_wire_recv(&wa, &got, 0) < 0)
            exit(1);
        sink += got->reply->data;
        plx_wire_release(&wa);
    }
    uint64_t t = bench_now_ns() - t0;
    plx_wire_fini(&wa);
    plx_wire_fini(&wb);
    plx_chan_close(a);
    plx_chan_close(b);
    if (sink == 42)
        printf(" ");
    return (double)t / n;
}

static hub_device *add_dev(hub_devmgr *m, const char *name, const char *prog, hwaddr base, hub_transport t)
{
    hub_region_map maps[] = { { "io", base }, { "posted", base + 0x1000 }, { "shadow", base + 0x2000 } };
    const char *spin = getenv("PLEXUS_BENCH_SPIN_US");
    hub_device_config cfg = { .name = name, .program = prog, .regions = maps, .n_regions = 3, .timeout_ms = 5000,
                              .transport = t,
                              .ring_spin_us = spin ? (unsigned)atoi(spin) : 0 };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(m, &cfg, &err);
    if (!d) {
        fprintf(stderr, "bench: %s\n", error_get_pretty(err));
        exit(1);
    }
    return d;
}

static double posted_rate(hwaddr posted, int np)
{
    uint32_t before = bench_rd32(posted);
    uint64_t t = bench_now_ns();
    for (int i = 0; i < np; i++)
        bench_wr32(posted, (uint32_t)i);
    uint32_t after = bench_rd32(posted);     /* ordered after every write: all applied */
    t = bench_now_ns() - t;
    if (after - before != (uint32_t)np) {
        fprintf(stderr, "bench: device applied %u of %d posted writes\n", after - before, np);
        exit(1);
    }
    return np / (t / 1e9);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 2000)
        n = 2000;
    unsetenv("PLEXUS_TRANSPORT");

    hub_devmgr *m = bench_hub_new(RAM_BASE, RAM_SIZE);
    char *prog = bench_sibling("plexus-bench-mmio-dev");
    hub_device *dr = add_dev(m, "ring", prog, RING_BASE, HUB_TRANSPORT_RING);
    hub_device *dz = add_dev(m, "zeromq", prog, ZMQ_BASE, HUB_TRANSPORT_ZMQ);
    if (strcmp(hub_device_endpoint(dr), "ring") != 0 || strcmp(hub_device_endpoint(dz), "ring") == 0) {
        fprintf(stderr, "bench: devices are not on the transports asked for (%s, %s)\n", hub_device_endpoint(dr),
                hub_device_endpoint(dz));
        return 1;
    }

    char ep[96];
    snprintf(ep, sizeof(ep), "ipc:///tmp/plexus-bench-ring-%d.ipc", (int)getpid());
    int ufd;
    pid_t upid = unix_child(&ufd);
    pid_t zpid = zmq_child(ep);
    void *zctx = zmq_ctx_new(), *zs = zmq_socket(zctx, ZMQ_PAIR);
    zmq_connect(zs, ep);
    int cfds[PLX_RING_FDS];
    plx_chan *ch = plx_chan_ring_create(0, 50000, cfds);
    if (!ch) {
        perror("bench: ring");
        return 1;
    }
    pid_t cpid = chan_child(cfds);

    enum { SPIN, UNIX, ZMQ, CHAN, RING_RD, ZMQ_RD, N_SRC };
    static const char *const names[N_SRC] = { "spin", "unix", "zmq", "chan", "ring read", "zmq read" };
    uint64_t *v[N_SRC];
    for (int s = 0; s < N_SRC; s++)
        v[s] = malloc(sizeof(uint64_t) * (size_t)(n > WARMUP ? n : WARMUP));
    /* warm-up of every path */
    unix_block(ufd, v[UNIX], WARMUP);
    zmq_block(zs, v[ZMQ], WARMUP);
    chan_block(ch, v[CHAN], WARMUP);
    read_block(RING_BASE, v[RING_RD], WARMUP);
    read_block(ZMQ_BASE, v[ZMQ_RD], WARMUP / 10);

    /* ZeroMQ round trips cost ~100x the others: fewer of them, same blocks. */
    int nz = n / 10;
    int done = 0, donez = 0;
    for (int b = 0; b < BLOCKS; b++) {
        int k = (n - done) / (BLOCKS - b), kz = (nz - donez) / (BLOCKS - b);
        spin_block(v[SPIN] + done, k);
        unix_block(ufd, v[UNIX] + done, k);
        chan_block(ch, v[CHAN] + done, k);
        read_block(RING_BASE, v[RING_RD] + done, k);
        zmq_block(zs, v[ZMQ] + donez, kz);
        read_block(ZMQ_BASE, v[ZMQ_RD] + donez, kz);
        done += k;
        donez += kz;
    }
    if (getenv("PLEXUS_BENCH_VERBOSE")) {
        plx_chan_stats cs;
        plx_chan_get_stats(ch, &cs);
        printf("  channel floor, this side: %llu frames, %llu sleeps, %llu bells rung\n",
               (unsigned long long)cs.frames_sent, (unsigned long long)cs.sleeps, (unsigned long long)cs.bells_rung);
    }
    uint64_t med[N_SRC];
    for (int s = 0; s < N_SRC; s++)
        med[s] = bench_median(v[s], s == ZMQ || s == ZMQ_RD ? nz : n);

    /* stop the echo children */
    shutdown(ufd, SHUT_RDWR);
    close(ufd);
    zmq_send(zs, "", 0, 0);
    plx_chan_send(ch, "", 0, 0);
    waitpid(upid, NULL, 0);
    waitpid(zpid, NULL, 0);
    waitpid(cpid, NULL, 0);
    zmq_close(zs);
    zmq_ctx_term(zctx);
    plx_chan_close(ch);

    double pb = wire_round_trip_ns(n * 5, false), fx = wire_round_trip_ns(n * 5, true);
    int np = n * 25;
    double pr_ring = posted_rate(RING_BASE + 0x1000, np);
    double pr_zmq = posted_rate(ZMQ_BASE + 0x1000, np);
    double pr_ring2 = posted_rate(RING_BASE + 0x1000, np);
    if (pr_ring2 > pr_ring)
        pr_ring = pr_ring2;

    printf("plexus-bench-ring: %d round trips per figure (%d for ZeroMQ), %d blocks interleaved\n", n, nz, BLOCKS);
    for (int s = 0; s < N_SRC; s++)
        if (getenv("PLEXUS_BENCH_VERBOSE"))
            printf("  %-10s median %8.0f ns\n", names[s], (double)med[s]);
    char a[32], f[32];
    snprintf(a, sizeof(a), "%.2f us", med[RING_RD] / 1e3);
    snprintf(f, sizeof(f), "%.2f us", med[SPIN] / 1e3);
    bench_line("MMIO read round trip, ring", a, "shared-memory spin ping-pong", f, (double)med[RING_RD] / med[SPIN],
               "<= 3x", med[RING_RD] <= 3 * med[SPIN]);
    snprintf(f, sizeof(f), "%.2f us", med[UNIX] / 1e3);
    bench_line("MMIO read round trip, ring", a, "UNIX seqpacket request/response", f,
               (double)med[UNIX] / med[RING_RD], ">= 5x faster", med[UNIX] >= 5 * med[RING_RD]);
    snprintf(a, sizeof(a), "%.1f us", med[ZMQ_RD] / 1e3);
    snprintf(f, sizeof(f), "%.1f us", med[ZMQ] / 1e3);
    bench_line("MMIO read round trip, ZeroMQ", a, "raw ZeroMQ PAIR ipc round trip", f,
               (double)med[ZMQ_RD] / med[ZMQ], "<= 1.15x", med[ZMQ_RD] <= med[ZMQ] * 1.15);
    printf("  ring vs ZeroMQ device: %.1fx faster per read\n", (double)med[ZMQ_RD] / med[RING_RD]);
    snprintf(a, sizeof(a), "%.2f us", med[CHAN] / 1e3);
    snprintf(f, sizeof(f), "%.2f us", med[SPIN] / 1e3);
    bench_line("(info) ring channel alone, 24 B", a, "shared-memory spin ping-pong", f,
               (double)med[CHAN] / med[SPIN], "none", 1);
    printf("(info) a read round trip's two messages encoded, through an in-process ring and decoded: protobuf-c "
           "%.0f ns (%.0f%% of the ring read round trip), fixed layout %.0f ns (%.0f%%)\n", pb,
           100.0 * pb / med[RING_RD], fx, 100.0 * fx / med[RING_RD]);
    snprintf(a, sizeof(a), "%.2f M/s", pr_ring / 1e6);
    snprintf(f, sizeof(f), "%.2f M/s", pr_zmq / 1e6);
    bench_line("posted writes applied, ring", a, "same device on ZeroMQ", f, pr_ring / pr_zmq, ">= 1x",
               pr_ring >= pr_zmq);

    /* More busy devices than cores: 8 ring devices read in turn, so each spins while the others are served. */
    enum { N_BUSY = 8 };
    char *names8[N_BUSY];
    for (int i = 0; i < N_BUSY; i++) {
        if (asprintf(&names8[i], "busy%d", i) < 0)
            return 1;
        add_dev(m, names8[i], prog, 0x20000000u + (hwaddr)i * 0x10000u, HUB_TRANSPORT_RING);
    }
    int nb = n;
    uint64_t *vb = malloc(sizeof(uint64_t) * (size_t)nb);
    for (int i = 0; i < WARMUP; i++)
        (void)bench_rd32(0x20000000u + (hwaddr)(i % N_BUSY) * 0x10000u);
    uint64_t tb = bench_now_ns();
    for (int i = 0; i < nb; i++) {
        uint64_t t0 = bench_now_ns();
        (void)bench_rd32(0x20000000u + (hwaddr)(i % N_BUSY) * 0x10000u);
        vb[i] = bench_now_ns() - t0;
    }
    tb = bench_now_ns() - tb;
    uint64_t mb = bench_median(vb, nb);
    snprintf(a, sizeof(a), "%.2f us", mb / 1e3);
    snprintf(f, sizeof(f), "%.2f us", med[RING_RD] / 1e3);
    bench_line("MMIO read, 8 ring devices in turn", a, "one ring device (above)", f, (double)mb / med[RING_RD],
               "progress", 1);
    printf("  8 devices on %ld cores: %d reads in %.1f ms (%.2f us each on average, p99 %.1f us)\n",
           sysconf(_SC_NPROCESSORS_ONLN), nb, tb / 1e6, tb / 1e3 / nb, vb[(size_t)nb * 99 / 100] / 1e3);
    free(vb);
    for (int i = 0; i < N_BUSY; i++)
        free(names8[i]);

    for (int s = 0; s < N_SRC; s++)
        free(v[s]);
    bench_hub_free(m);
    free(prog);
    return 0;
}
