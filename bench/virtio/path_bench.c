/*
 * plexus-bench-virtio-path [REQUESTS [THINK_US]]: where the time of one virtio request goes on the device path,
 * without a CPU: this program plays the guest's driver through the hub's device layer (as the hub's CPU loop would: the
 * posted QueueNotify goes out when the guest idles, the hub then sleeps on the device channels), one request at
 * a time, against a device process that stamps when it saw the chain and when it completed it. Each leg is
 * the median over REQUESTS (default 20000):
 *   guest notify -> the device sees the chain -> the device completes -> the hub has the interrupt
 *   -> the guest's InterruptStatus read returns (a round trip that lowers the line)
 * The floor, measured in the same run: a round trip between two processes that each sleep in poll() on an
 * eventfd (what two wake-ups cost on this machine, with nothing else in the way).
 * THINK_US (default 0): the guest computes this long between requests (a busy loop), as Linux does between two
 * reads of a program: past the ring's spin budget (50 us) both sides sleep, and every request wakes them.
 */
#include "../common/bench_hub.h"
#include "../../tests/common/vdriver.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#define RAM_BASE 0x80000000u
#define RAM_SIZE (4u << 20)
#define DEV_BASE 0x10001000u
#define IRQ 1u
#define QAREA (RAM_BASE + 0x10000)
#define BUF (RAM_BASE + 0x20000)

static uint64_t t_irq;

static void on_irq(void *opaque, unsigned irq, int level)
{
    if (level && !t_irq)
        t_irq = bench_now_ns();
}

/* Two processes, each sleeping in poll() on its eventfd, pass a token @n times: the median round trip. */
static uint64_t floor_wakeup_rtt(int n)
{
    int a = eventfd(0, 0), b = eventfd(0, 0);
    uint64_t one = 1, v;
    pid_t pid = fork();
    if (pid == 0) {
        struct pollfd p = { .fd = a, .events = POLLIN };
        for (int i = 0; i < n; i++) {
            poll(&p, 1, -1);
            if (read(a, &v, 8) != 8 || write(b, &one, 8) != 8)
                _exit(1);
        }
        _exit(0);
    }
    uint64_t *t = calloc((size_t)n, sizeof(*t));
    struct pollfd p = { .fd = b, .events = POLLIN };
    for (int i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        if (write(a, &one, 8) != 8)
            exit(1);
        poll(&p, 1, -1);
        if (read(b, &v, 8) != 8)
            exit(1);
        t[i] = bench_now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    uint64_t m = bench_median(t, n);
    free(t);
    close(a);
    close(b);
    return m;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 100)
        n = 100;
    uint64_t think_ns = argc > 2 ? strtoull(argv[2], NULL, 10) * 1000 : 0;
    hub_devmgr *m = bench_hub_new(RAM_BASE, RAM_SIZE);
    hub_devmgr_free(m);
    bench_env.set_irq = on_irq;
    m = bench_hub_manager();
    char *prog = bench_sibling("plexus-bench-virtio-stampdev");
    hub_region_map rm = { "regs", DEV_BASE };
    hub_irq_map im = { 0, IRQ };
    hub_device_config c = { .name = "stamp", .program = prog, .regions = &rm, .n_regions = 1, .irqs = &im,
                            .n_irqs = 1, .timeout_ms = 5000 };
    Error *err = NULL;
    if (!hub_devmgr_add(m, &c, &err)) {
        fprintf(stderr, "bench: %s\n", error_get_pretty(err));
        return 1;
    }
    vdrv d = { .as = &bench_as, .mgr = m, .ram = memory_region_get_ram_ptr(&bench_ram), .ram_base = RAM_BASE,
               .base = DEV_BASE };
    vdq q;
    /* no event index: an interrupt for every request */
    vd_check(vd_negotiate(&d, VD_FEAT_VERSION_1) == (1 | 2 | 8), "negotiation");
    vd_queue_at(&d, &q, 0, 256, QAREA, true);
    vd_driver_ok(&d);
    vd_desc(&d, q.desc, 0, BUF, 16, VD_F_WRITE, 0);

    uint64_t *seen = calloc((size_t)n, 8), *done = calloc((size_t)n, 8), *irq = calloc((size_t)n, 8);
    uint64_t *isr = calloc((size_t)n, 8), *total = calloc((size_t)n, 8);
    for (int i = -200; i < n; i++) {        /* 200 rounds of warm-up */
        for (uint64_t t = bench_now_ns(); bench_now_ns() - t < think_ns;)
            ;
        t_irq = 0;
        uint16_t want = (uint16_t)(vd_used_idx(&d, &q) + 1);
        uint64_t t0 = bench_now_ns();
        vd_avail(&d, &q, 0);
        vd_notify(&d, &q);                  /* posted: held by the hub ... */
        hub_devmgr_flush(m);                /* ... until the guest idles */
        while (!t_irq)
            hub_devmgr_poll(m, 100);        /* the idle hub sleeps on the device channels */
        uint64_t t3 = t_irq;
        vd_check(vd_rd(&d, VR_INTERRUPT_STATUS) == 1, "interrupt status");
        uint64_t t4 = bench_now_ns();
        vd_wr(&d, VR_INTERRUPT_ACK, 1);
        vd_check(vd_used_idx(&d, &q) == want, "used entry");
        uint64_t stamp[2];
        memcpy(stamp, vd_host(&d, BUF), sizeof(stamp));
        if (i < 0)
            continue;
        seen[i] = stamp[0] - t0;
        done[i] = stamp[1] - stamp[0];
        irq[i] = t3 - stamp[1];
        isr[i] = t4 - t3;
        total[i] = t4 - t0;
    }
    uint64_t fl = floor_wakeup_rtt(n);
    printf("One virtio request on the device path (median of %d, %llu us of guest work between requests; "
           "plexus-bench-virtio-stampdev, ring transport)\n", n, (unsigned long long)(think_ns / 1000));
    printf("  guest notify -> device sees the chain          %8.2f us\n", bench_median(seen, n) / 1e3);
    printf("  device sees it -> completes it                 %8.2f us\n", bench_median(done, n) / 1e3);
    printf("  completion -> the hub has the interrupt        %8.2f us\n", bench_median(irq, n) / 1e3);
    printf("  interrupt -> InterruptStatus read returns      %8.2f us\n", bench_median(isr, n) / 1e3);
    uint64_t tot = bench_median(total, n);
    printf("  whole request                                  %8.2f us\n", tot / 1e3);
    printf("  floor: two processes waking each other (round trip through poll and eventfd) %.2f us; "
           "request / floor %.2fx\n", fl / 1e3, (double)tot / (double)fl);
    free(seen), free(done), free(irq), free(isr), free(total), free(prog);
    hub_devmgr_free(m);
    return 0;
}
