/*
 * 64 real device processes on one hub: the device layer in this process, a system memory map with RAM granted
 * to every device, each device's registers at its own base. Every device answers a register write and
 * read-back and raises and lowers its IRQ line, a few write RAM by DMA, and a device blocked inside a callback
 * does not hold up accesses to the others. Prints the memory one idle device costs (not asserted).
 *
 * The soft RLIMIT_NOFILE is raised to the hard limit: the hub keeps several descriptors per device.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include "../common/hub_test.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <plexus/memory.h>

#include "dev/devmgr.h"
#include "vclock.h"

#define N_DEV 64
#define RAM_BASE 0x80000000u
#define RAM_SIZE (1u << 20)
#define DEV_BASE 0x10000000u
#define DEV_STRIDE 0x1000u
#define BUSY_OFF 0x800u
#define IRQ_BASE 1u

static MemoryRegion sysmem, ram;
static AddressSpace as;
static vclock clk;
static hub_ram_block block;
static hub_devmgr *mgr;
static hub_device *devs[N_DEV];
static int irq_level[IRQ_BASE + N_DEV];
static unsigned irq_changes;
static char logbuf[16384];

static void on_irq(void *opaque, unsigned irq, int level)
{
    if (irq < IRQ_BASE + N_DEV)
        irq_level[irq] = level;
    irq_changes++;
}

static void on_log(void *opaque, const char *device, int level, const char *msg)
{
    test_log_append(logbuf, sizeof(logbuf), device, msg);
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Resident and proportional set size of process @pid (0: this one), in KiB; -1 when unreadable. */
static long rss_kib(int pid)
{
    char path[64];
    long size, res;
    snprintf(path, sizeof(path), pid ? "/proc/%d/statm" : "/proc/self/statm", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    return n == 2 ? res * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static long pss_kib(int pid)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Pss: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2;
}

static int count_threads(void)
{
    char line[128];
    int n = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s", strerror(errno));
    }
    printf("scale: RLIMIT_NOFILE soft %llu -> %llu (hard %llu)\n", (unsigned long long)before,
           (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

static void setup(void)
{
    Error *err = NULL;
    raise_nofile();
    memory_region_init(&sysmem, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&ram, NULL, "ram", RAM_SIZE, &err);
    cr_assert_null(err);
    memory_region_add_subregion(&sysmem, RAM_BASE, &ram);
    address_space_init(&as, &sysmem, "scale");
    vclock_init(&clk);
    block = (hub_ram_block){ "ram", RAM_BASE, RAM_SIZE, memory_region_get_fd(&ram), false };
    cr_assert_geq(block.fd, 0);
    hub_devmgr_env env = {
        .sysmem = &sysmem, .as = &as, .clock = &clk, .ram = &block, .n_ram = 1,
        .set_irq = on_irq, .log = on_log,
    };
    mgr = hub_devmgr_new(&env, &err);
    cr_assert_not_null(mgr, "%s", err ? error_get_pretty(err) : "");
}

static void teardown(void)
{
    hub_devmgr_free(mgr);
    address_space_destroy(&as);
    memory_region_del_subregion(&sysmem, &ram);
    memory_region_destroy(&ram);
    memory_region_destroy(&sysmem);
}

static uint32_t rd32(hwaddr a)
{
    uint8_t b[4];
    MemTxResult r = address_space_read(&as, a, MEMTXATTRS_UNSPECIFIED, b, 4);
    cr_assert_eq(r, MEMTX_OK, "read 0x%lx failed: %u\nlog:\n%.3000s", (unsigned long)a, r, logbuf);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr32(hwaddr a, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    MemTxResult r = address_space_write(&as, a, MEMTXATTRS_UNSPECIFIED, b, 4);
    cr_assert_eq(r, MEMTX_OK, "write 0x%lx failed: %u\nlog:\n%.3000s", (unsigned long)a, r, logbuf);
}

static hwaddr regs(int i) { return DEV_BASE + (hwaddr)i * DEV_STRIDE; }

/* Serve device messages until every IRQ line is at @level, or @ms pass. Returns how many lines are not. */
static int wait_irqs(int level, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    for (;;) {
        int off = 0;
        for (int i = 0; i < N_DEV; i++)
            off += irq_level[IRQ_BASE + i] != level;
        if (off == 0 || now_ms() > end)
            return off;
        hub_devmgr_poll(mgr, 10);
    }
}

/* Start the 64 devices; device 0's "busy" register waits on the FIFO @fifo0 (in its jail). */
static void add_all(const char *fifo0)
{
    static hub_region_map maps[N_DEV][2];
    static hub_irq_map irqs[N_DEV];
    static char names[N_DEV][24], idents[N_DEV][24];
    static hub_prop props[N_DEV][2];
    static const char *paths[1];
    paths[0] = fifo0;
    char *prog = test_build_path("bin/plexus-test-scaledev");
    for (int i = 0; i < N_DEV; i++) {
        snprintf(names[i], sizeof(names[i]), "scale%02d", i);
        snprintf(idents[i], sizeof(idents[i]), "0x%x", 0x40 + i);
        maps[i][0] = (hub_region_map){ "regs", regs(i) };
        maps[i][1] = (hub_region_map){ "busy", regs(i) + BUSY_OFF };
        irqs[i] = (hub_irq_map){ 0, IRQ_BASE + (unsigned)i };
        props[i][0] = (hub_prop){ "ident", idents[i] };
        props[i][1] = (hub_prop){ "busy_fifo", fifo0 };
        hub_device_config c = {
            .name = names[i], .program = prog, .props = props[i], .n_props = i == 0 ? 2 : 1,
            .regions = maps[i], .n_regions = 2, .irqs = &irqs[i], .n_irqs = 1, .timeout_ms = 10000,
            .sandbox_write = paths, .n_sandbox_write = i == 0 ? 1 : 0,
        };
        Error *err = NULL;
        devs[i] = hub_devmgr_add(mgr, &c, &err);
        cr_assert_not_null(devs[i], "add device %d of %d: %s\nfds open: %d, threads: %d\nlog:\n%.3000s", i + 1,
                           N_DEV, err ? error_get_pretty(err) : "?", count_fds(), count_threads(), logbuf);
    }
    free(prog);
}

TestSuite(scale, .init = setup, .fini = teardown, .timeout = 120);

Test(scale, sixty_four_devices_on_one_hub)
{
    char fifo[64];
    snprintf(fifo, sizeof(fifo), "/tmp/plexus-scale-%d.fifo", (int)getpid());
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo %s: %s", fifo, strerror(errno));

    long rss0 = rss_kib(0);
    int fds0 = count_fds(), thr0 = count_threads();
    uint64_t t0 = now_ms();
    add_all(fifo);
    uint64_t t_add = now_ms() - t0;
    hub_devmgr_poll(mgr, 0);
    long rss1 = rss_kib(0);
    int fds1 = count_fds(), thr1 = count_threads();

    long dev_rss = 0, dev_pss = 0;
    for (int i = 0; i < N_DEV; i++) {
        int pid = hub_device_pid(devs[i]);
        cr_assert_gt(pid, 0, "device %d has no process", i);
        long r = rss_kib(pid), p = pss_kib(pid);
        dev_rss += r > 0 ? r : 0;
        dev_pss += p > 0 ? p : 0;
    }
    printf("scale: %d devices added in %llu ms\n", N_DEV, (unsigned long long)t_add);
    printf("scale: hub RSS %ld KiB -> %ld KiB: %.1f KiB per idle device in the hub\n", rss0, rss1,
           (double)(rss1 - rss0) / N_DEV);
    printf("scale: hub fds %d -> %d (%.1f per device), threads %d -> %d\n", fds0, fds1,
           (double)(fds1 - fds0) / N_DEV, thr0, thr1);
    printf("scale: device processes: RSS %.1f KiB each (%ld KiB total), PSS %.1f KiB each (%ld KiB total)\n",
           (double)dev_rss / N_DEV, dev_rss, (double)dev_pss / N_DEV, dev_pss);
    printf("scale: per idle device, hub share + device PSS = %.1f KiB\n",
           (double)(rss1 - rss0) / N_DEV + (double)dev_pss / N_DEV);
    fflush(stdout);

    /* Every device: its own registers at its own base. */
    for (int i = 0; i < N_DEV; i++) {
        cr_assert_str_eq(hub_device_model(devs[i]), "plexus,test-scaledev");
        wr32(regs(i) + 0x0, 0xa5000000u | (uint32_t)i);
        wr32(regs(i) + 0x3c, ~(uint32_t)i);
    }
    for (int i = 0; i < N_DEV; i++) {
        cr_assert_eq(rd32(regs(i) + 0x0), 0xa5000000u | (uint32_t)i, "device %d scratch 0", i);
        cr_assert_eq(rd32(regs(i) + 0x3c), ~(uint32_t)i, "device %d scratch 15", i);
        cr_assert_eq(rd32(regs(i) + 0x5c), 0x40u + (uint32_t)i, "device %d ident", i);
    }

    /* Every device raises its line, then lowers it. */
    for (int i = 0; i < N_DEV; i++)
        wr32(regs(i) + 0x54, 1);
    int off = wait_irqs(1, 20000);
    cr_assert_eq(off, 0, "%d of %d IRQ lines not raised\nlog:\n%.3000s", off, N_DEV, logbuf);
    for (int i = 0; i < N_DEV; i++)
        wr32(regs(i) + 0x54, 0);
    off = wait_irqs(0, 20000);
    cr_assert_eq(off, 0, "%d of %d IRQ lines not lowered", off, N_DEV);
    cr_assert_geq(irq_changes, 2 * N_DEV);

    /* A few devices write RAM by DMA, each its own page with its own pattern. */
    static const int dma_devs[] = { 0, 21, 42, 63 };
    for (unsigned k = 0; k < 4; k++) {
        int i = dma_devs[k];
        wr32(regs(i) + 0x40, RAM_BASE + k * 0x1000u);
        wr32(regs(i) + 0x44, 0);
        wr32(regs(i) + 0x48, 0x1000);
        wr32(regs(i) + 0x4c, 1);
        cr_assert_eq(rd32(regs(i) + 0x50), 0, "device %d DMA result", i);
    }
    for (unsigned k = 0; k < 4; k++) {
        uint8_t buf[0x1000];
        uint32_t ident = 0x40u + (uint32_t)dma_devs[k];
        cr_assert_eq(address_space_read(&as, RAM_BASE + k * 0x1000u, MEMTXATTRS_UNSPECIFIED, buf, sizeof(buf)),
                     MEMTX_OK);
        for (unsigned j = 0; j < sizeof(buf); j++)
            cr_assert_eq(buf[j], (uint8_t)(j ^ ident), "device %d DMA byte %u", dma_devs[k], j);
    }

    /* Device 0 blocks inside a callback until the test writes to its FIFO: every other device still answers
     * (the hub does not wait for it), and device 0 completes once released. */
    wr32(regs(0) + BUSY_OFF, 1);
    hub_devmgr_flush(mgr);
    uint64_t until = now_ms() + 20000;
    while (!strstr(logbuf, "[scale00] busy") && now_ms() < until)
        hub_devmgr_poll(mgr, 10);
    cr_assert_not_null(strstr(logbuf, "[scale00] busy"), "device 0 did not enter its busy callback\nlog:\n%.3000s",
                       logbuf);
    for (int i = 1; i < N_DEV; i++) {
        wr32(regs(i) + 0x4, 0x5100u + (uint32_t)i);
        cr_assert_eq(rd32(regs(i) + 0x4), 0x5100u + (uint32_t)i, "device %d while device 0 is busy", i);
        hub_devmgr_poll(mgr, 0);
    }
    for (int i = 1; i < N_DEV; i++)
        cr_assert_not(hub_device_failed(devs[i]), "device %d failed", i);
    int wfd = open(fifo, O_WRONLY | O_CLOEXEC);      /* the device holds the other end open */
    cr_assert_geq(wfd, 0);
    cr_assert_eq(write(wfd, "x", 1), 1);
    cr_assert_eq(rd32(regs(0) + 0x58), 1, "device 0 finished its busy write");
    close(wfd);
    unlink(fifo);
    for (int i = 0; i < N_DEV; i++)
        cr_assert_not(hub_device_failed(devs[i]), "device %d failed\nlog:\n%.3000s", i, logbuf);

    hub_devmgr_stats st;
    hub_devmgr_get_stats(mgr, &st);
    cr_assert_geq(st.irq_events, 2 * N_DEV);
    cr_assert_geq(st.sync_reads, 3 * N_DEV);
}
