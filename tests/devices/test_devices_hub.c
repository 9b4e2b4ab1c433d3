/*
 * The UART and DMA device processes through the hub's real device layer: each test builds an address space
 * (RAM from memory_region_init_ram at 0x80000000), spawns the device with hub_devmgr_add, and then behaves like
 * a guest: address_space_* reads and writes, the UART's stdin/stdout as pipes, interrupts seen through the
 * set_irq callback, virtual time moved with vclock_advance.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "dev/devmgr.h"
#include "run_capture.h"

#define RAM_BASE 0x80000000ULL
#define RAM_SIZE (1ULL << 20)
#define UART_BASE 0x10000000ULL
#define DMA_BASE 0x10010000ULL
#define UART_IRQ 10
#define DMA_IRQ 12
#define MAX_IRQ 32

static struct rig {
    MemoryRegion sysmem, ram;
    AddressSpace as;
    vclock clock;
    hub_devmgr *m;
    hub_ram_block block;
    int level[MAX_IRQ];
    unsigned raised[MAX_IRQ];
    char log[16384];
    size_t log_len;
    char out[4096];         /* what the UART, the console, showed */
    size_t out_len;
    char in[4096];          /* keyboard bytes the UART has not taken yet */
    size_t in_len;
    hub_device *uart;
    const char *const *uart_paths;  /* files the UART may write (its jail) */
    size_t n_uart_paths;
    const hub_file *uart_files;     /* files the hub opens for it */
    size_t n_uart_files;
    char path[4][4096];
    bool sandbox;           /* devices added from now on confine themselves with the default seccomp policy */
    bool by_message;        /* devices added from now on get RAM windows without descriptors */
} R;

static void on_irq(void *o, unsigned irq, int level)
{
    cr_assert_lt(irq, MAX_IRQ, "irq %u out of range", irq);
    if (level && !R.level[irq])
        R.raised[irq]++;
    R.level[irq] = level;
}

static void on_log(void *o, const char *device, int level, const char *msg)
{
    int n = snprintf(R.log + R.log_len, sizeof(R.log) - R.log_len, "%s: %s\n", device ? device : "-", msg);

    if (n > 0 && (size_t)n < sizeof(R.log) - R.log_len)
        R.log_len += (size_t)n;
}

static void on_console(void *o, const uint8_t *data, size_t len)
{
    size_t n = len < sizeof(R.out) - 1 - R.out_len ? len : sizeof(R.out) - 1 - R.out_len;

    memcpy(R.out + R.out_len, data, n);
    R.out_len += n;
}

/* Serve the devices for up to @ms, and hand the UART the keyboard bytes it has room for. */
static void pump(int ms)
{
    hub_devmgr_poll(R.m, ms);
    if (R.uart && R.in_len) {
        int n = hub_device_console_input(R.uart, (const uint8_t *)R.in, R.in_len);

        cr_assert_geq(n, 0, "console input refused: %d", n);
        memmove(R.in, R.in + n, R.in_len - (size_t)n);
        R.in_len -= (size_t)n;
    }
}

/* Type @text on the console (the UART takes it as its FIFO has room). */
static void type(const char *text, size_t len)
{
    cr_assert_leq(len, sizeof(R.in) - R.in_len);
    memcpy(R.in + R.in_len, text, len);
    R.in_len += len;
    pump(0);
}

static void rig_up(void)
{
    Error *err = NULL;
    const char *build = getenv("PLEXUS_BUILD_DIR");

    memset(&R, 0, sizeof(R));
    cr_assert_not_null(build, "PLEXUS_BUILD_DIR is not set");
    memory_region_init(&R.sysmem, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&R.ram, NULL, "ram", RAM_SIZE, &err);
    cr_assert_null(err, "ram: %s", err ? error_get_pretty(err) : "");
    memory_region_add_subregion(&R.sysmem, RAM_BASE, &R.ram);
    address_space_init(&R.as, &R.sysmem, "memory");
    vclock_init(&R.clock);
    R.block = (hub_ram_block){ .name = "ram", .base = RAM_BASE, .size = RAM_SIZE,
                               .fd = memory_region_get_fd(&R.ram) };
    cr_assert_geq(R.block.fd, 0);

    hub_devmgr_env env = {
        .sysmem = &R.sysmem, .as = &R.as, .clock = &R.clock,
        .ram = &R.block, .n_ram = 1,
        .set_irq = on_irq, .log = on_log, .console_output = on_console,
    };
    R.m = hub_devmgr_new(&env, &err);
    cr_assert_not_null(R.m, "hub_devmgr_new: %s", err ? error_get_pretty(err) : "");
    snprintf(R.path[0], sizeof(R.path[0]), "%s/bin/plexus-uart16550", build);
    snprintf(R.path[1], sizeof(R.path[1]), "%s/lib/plexus-uart16550.so", build);
    snprintf(R.path[2], sizeof(R.path[2]), "%s/bin/plexus-dma", build);
    snprintf(R.path[3], sizeof(R.path[3]), "%s/lib/plexus-dma.so", build);
    if (!getenv("PLEXUS_DEVICE_RUNNER")) {
        char runner[4200];

        snprintf(runner, sizeof(runner), "%s/bin/plexus-device-runner", build);
        if (access(runner, X_OK) < 0)
            snprintf(runner, sizeof(runner), "%s/sdk/runner/plexus-device-runner", build);
        setenv("PLEXUS_DEVICE_RUNNER", runner, 1);
    }
}

/* Suite teardown: runs after a failed assertion too, so no device process or run dir outlives a test. */
static void rig_down(void)
{
    if (!R.m)
        return;
    hub_devmgr_free(R.m);
    R.m = NULL;
    address_space_destroy(&R.as);
    memory_region_del_subregion(&R.sysmem, &R.ram);
    memory_region_destroy(&R.ram);
    memory_region_destroy(&R.sysmem);
}

/* The seccomp mode of process @pid (0 none, 2 filter), from /proc. */
static int seccomp_mode(int pid)
{
    char path[64], line[256];
    int mode = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    fclose(f);
    return mode;
}

static hub_device *add_uart(bool plugin, const hub_prop *props, size_t n_props, Error **errp)
{
    static const hub_region_map reg = { .region = "regs", .base = UART_BASE };
    static const hub_irq_map irq = { .line = 0, .irq = UART_IRQ };
    hub_device_config cfg = {
        .name = "uart0",
        .program = plugin ? NULL : R.path[0],
        .plugin = plugin ? R.path[1] : NULL,
        .props = props, .n_props = n_props,
        .regions = &reg, .n_regions = 1,
        .irqs = &irq, .n_irqs = 1,
        .console = true,
        .sandbox = R.sandbox,
        .sandbox_write = R.uart_paths, .n_sandbox_write = R.n_uart_paths,
        .files = R.uart_files, .n_files = R.n_uart_files,
    };

    return R.uart = hub_devmgr_add(R.m, &cfg, errp);
}

static hub_device *add_dma_as(bool plugin, const hub_prop *props, size_t n_props)
{
    static const hub_region_map reg = { .region = "regs", .base = DMA_BASE };
    static const hub_irq_map irq = { .line = 0, .irq = DMA_IRQ };
    hub_device_config cfg = {
        .name = "dma0",
        .program = plugin ? NULL : R.path[2],
        .plugin = plugin ? R.path[3] : NULL,
        .props = props, .n_props = n_props,
        .regions = &reg, .n_regions = 1,
        .irqs = &irq, .n_irqs = 1,
         .sandbox = R.sandbox,
        .ram_by_message = R.by_message,
    };
    Error *err = NULL;
    hub_device *d = hub_devmgr_add(R.m, &cfg, &err);

    cr_assert_not_null(d, "dma: %s\nlog:\n%s", err ? error_get_pretty(err) : "", R.log);
    return d;
}

static hub_device *add_dma(const hub_prop *props, size_t n_props)
{
    return add_dma_as(false, props, n_props);
}

/* --- guest accesses -------------------------------------------------------------------------------------- */

static uint8_t rd8(uint64_t a)
{
    MemTxResult r;
    uint8_t v = (uint8_t)address_space_ldub(&R.as, a, MEMTXATTRS_UNSPECIFIED, &r);

    cr_assert_eq(r, MEMTX_OK, "read8 0x%llx failed", (unsigned long long)a);
    return v;
}

static void wr8(uint64_t a, uint8_t v)
{
    MemTxResult r;

    address_space_stb(&R.as, a, v, MEMTXATTRS_UNSPECIFIED, &r);
    cr_assert_eq(r, MEMTX_OK, "write8 0x%llx failed", (unsigned long long)a);
}

static uint32_t rd32(uint64_t a)
{
    MemTxResult r;
    uint32_t v = address_space_ldl_le(&R.as, a, MEMTXATTRS_UNSPECIFIED, &r);

    cr_assert_eq(r, MEMTX_OK, "read32 0x%llx failed", (unsigned long long)a);
    return v;
}

static void wr32(uint64_t a, uint32_t v)
{
    MemTxResult r;

    address_space_stl_le(&R.as, a, v, MEMTXATTRS_UNSPECIFIED, &r);
    cr_assert_eq(r, MEMTX_OK, "write32 0x%llx failed", (unsigned long long)a);
}

static void wr64(uint64_t a, uint64_t v)
{
    MemTxResult r;

    address_space_stq_le(&R.as, a, v, MEMTXATTRS_UNSPECIFIED, &r);
    cr_assert_eq(r, MEMTX_OK, "write64 0x%llx failed", (unsigned long long)a);
}

/* Serve the devices until @cond holds or 5 s pass. */
static bool wait_until(bool (*cond)(void *), void *arg)
{
    long long deadline = run_now_ms() + 5000;

    while (!cond(arg)) {
        if (run_now_ms() > deadline)
            return false;
        pump(10);
    }
    return true;
}

static bool irq_is(void *arg) { const int *want = arg; return R.level[want[0]] == want[1]; }

static void expect_irq(unsigned irq, int level)
{
    int want[2] = { (int)irq, level };

    cr_assert(wait_until(irq_is, want), "irq %u did not go to %d\nlog:\n%s", irq, level, R.log);
}

/* What the UART showed on the console, until @want bytes arrived (or 5 s passed); taken from R.out. */
static size_t uart_output(char *buf, size_t want)
{
    long long deadline = run_now_ms() + 5000;

    while (R.out_len < want && run_now_ms() < deadline)
        pump(10);
    size_t got = R.out_len < want ? R.out_len : want;
    memcpy(buf, R.out, got);
    memmove(R.out, R.out + got, R.out_len - got);
    R.out_len -= got;
    buf[got] = '\0';
    return got;
}

TestSuite(devices_hub, .fini = rig_down);

/* --- UART ------------------------------------------------------------------------------------------------ */

static void uart_transmit_and_receive(bool plugin)
{
    Error *err = NULL;
    char out[64];

    rig_up();
    cr_assert_not_null(add_uart(plugin, NULL, 0, &err), "uart: %s\nlog:\n%s", err ? error_get_pretty(err) : "",
                       R.log);
    cr_assert_eq(rd8(UART_BASE + 5), 0x60, "LSR after reset: THRE|TEMT");
    for (const char *p = "hello\n"; *p; p++)
        wr8(UART_BASE + 0, (uint8_t)*p);
    cr_assert_eq(uart_output(out, 6), 6, "got \"%s\"", out);
    cr_assert_str_eq(out, "hello\n");

    wr8(UART_BASE + 2, 0x07);       /* FIFOs on (switching FIFO mode empties them, as on a 16550) */
    rd8(UART_BASE + 2);             /* a synchronous read: the FCR write has been applied before input arrives */
    type("abc", 3);
    long long deadline = run_now_ms() + 5000;
    while (!(rd8(UART_BASE + 5) & 0x01) && run_now_ms() < deadline)
        pump(10);
    uint8_t c = rd8(UART_BASE + 0);
    cr_assert_eq(c, 'a', "first byte 0x%02x, LSR 0x%02x\nlog:\n%s", c, rd8(UART_BASE + 5), R.log);
    while (!(rd8(UART_BASE + 5) & 0x01) && run_now_ms() < deadline)
        pump(10);
    cr_assert_eq(rd8(UART_BASE + 0), 'b');
    while (!(rd8(UART_BASE + 5) & 0x01) && run_now_ms() < deadline)
        pump(10);
    cr_assert_eq(rd8(UART_BASE + 0), 'c');
    cr_assert_eq(rd8(UART_BASE + 5) & 0x01, 0, "FIFO empty again");
    rig_down();
}

Test(devices_hub, uart_program_transmits_and_receives)
{
    uart_transmit_and_receive(false);
}

Test(devices_hub, uart_plugin_transmits_and_receives)
{
    uart_transmit_and_receive(true);
}

Test(devices_hub, uart_lsr_polling_is_served_from_the_shadow_page)
{
    hub_devmgr_stats before, after;
    Error *err = NULL;

    rig_up();
    cr_assert_not_null(add_uart(false, NULL, 0, &err), "%s", err ? error_get_pretty(err) : "");
    hub_devmgr_get_stats(R.m, &before);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(rd8(UART_BASE + 5), 0x60);
    hub_devmgr_get_stats(R.m, &after);
    cr_assert_eq(after.sync_reads, before.sync_reads, "LSR reads must not round-trip");
    cr_assert_geq(after.shadow_reads - before.shadow_reads, 1000);

    rd8(UART_BASE + 2);             /* IIR is read-through */
    hub_devmgr_get_stats(R.m, &after);
    cr_assert_eq(after.sync_reads, before.sync_reads + 1);
    rig_down();
}

Test(devices_hub, uart_shadow_read_sees_preceding_posted_writes)
{
    Error *err = NULL;

    rig_up();
    cr_assert_not_null(add_uart(false, NULL, 0, &err), "%s", err ? error_get_pretty(err) : "");
    for (unsigned v = 0; v < 256; v += 7) {
        wr8(UART_BASE + 7, (uint8_t)v);
        cr_assert_eq(rd8(UART_BASE + 7), v, "SCR read right after its write");
    }
    wr8(UART_BASE + 3, 0x83);
    cr_assert_eq(rd8(UART_BASE + 3), 0x83, "LCR with DLAB");
    wr8(UART_BASE + 0, 0x12);       /* DLL */
    wr8(UART_BASE + 1, 0x34);       /* DLM */
    cr_assert_eq(rd8(UART_BASE + 0), 0x12);
    cr_assert_eq(rd8(UART_BASE + 1), 0x34);
    wr8(UART_BASE + 3, 0x03);
    cr_assert_eq(rd8(UART_BASE + 1), 0x00, "IER again once DLAB is clear");
    rig_down();
}

Test(devices_hub, uart_interrupts_reach_the_hub)
{
    Error *err = NULL;

    rig_up();
    cr_assert_not_null(add_uart(false, NULL, 0, &err), "%s", err ? error_get_pretty(err) : "");
    cr_assert_eq(R.level[UART_IRQ], 0);

    wr8(UART_BASE + 1, 0x02);       /* ETBEI: THR is empty, so THRE fires */
    expect_irq(UART_IRQ, 1);
    cr_assert_eq(rd8(UART_BASE + 2) & 0x0f, 0x02, "IIR reports THRE");
    expect_irq(UART_IRQ, 0);

    wr8(UART_BASE + 1, 0x01);       /* ERBFI */
    type("x", 1);
    expect_irq(UART_IRQ, 1);
    cr_assert_eq(rd8(UART_BASE + 2) & 0x0f, 0x04, "IIR reports received data");
    cr_assert_eq(rd8(UART_BASE + 0), 'x');
    expect_irq(UART_IRQ, 0);
    rig_down();
}

Test(devices_hub, uart_does_not_lose_input_larger_than_its_fifo)
{
    Error *err = NULL;
    char text[200], got[200];

    rig_up();
    cr_assert_not_null(add_uart(false, NULL, 0, &err), "%s", err ? error_get_pretty(err) : "");
    wr8(UART_BASE + 2, 0x07);
    rd8(UART_BASE + 2);
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('!' + i % 90);
    type(text, sizeof(text));
    long long deadline = run_now_ms() + 10000;
    for (size_t i = 0; i < sizeof(got); i++) {
        while (!(rd8(UART_BASE + 5) & 0x01)) {
            cr_assert_lt(run_now_ms(), deadline, "only %zu of %zu bytes arrived", i, sizeof(text));
            pump(1);
        }
        got[i] = (char)rd8(UART_BASE + 0);
        cr_assert_eq(rd8(UART_BASE + 5) & 0x02, 0, "overrun at byte %zu", i);
    }
    cr_assert_eq(memcmp(got, text, sizeof(text)), 0);
    rig_down();
}

Test(devices_hub, uart_wide_access_is_rejected)
{
    Error *err = NULL;
    MemTxResult r;

    rig_up();
    cr_assert_not_null(add_uart(false, NULL, 0, &err), "%s", err ? error_get_pretty(err) : "");
    /* One 4-byte access of the device's region, as a CPU load dispatches it. */
    MemoryRegionSection sec = memory_region_find(&R.sysmem, UART_BASE, 1);
    uint64_t v = 0;
    cr_assert_not_null(sec.mr);
    r = memory_region_dispatch_read(sec.mr, sec.offset_within_region + 4, &v, 4, MEMTXATTRS_UNSPECIFIED);
    cr_assert_eq(r, MEMTX_DECODE_ERROR, "a 4-byte read of the UART must fail");
    r = memory_region_dispatch_write(sec.mr, sec.offset_within_region + 0, 0x41, 4, MEMTXATTRS_UNSPECIFIED);
    cr_assert_eq(r, MEMTX_DECODE_ERROR, "a 4-byte write of the UART must fail");
    r = memory_region_dispatch_read(sec.mr, sec.offset_within_region + 5, &v, 1, MEMTXATTRS_UNSPECIFIED);
    cr_assert_eq(r, MEMTX_OK);
    cr_assert_eq(v, 0x60);
    memory_region_unref(sec.mr);
    rig_down();
}

Test(devices_hub, uart_tx_to_file)
{
    char path[] = "/tmp/plexus-uart-XXXXXX", prop[64], buf[32] = { 0 };
    int fd = mkstemp(path);
    Error *err = NULL;

    cr_assert_geq(fd, 0);
    snprintf(prop, sizeof(prop), "file:%s", path);
    hub_prop props[] = { { "tx", prop }, { "rx", "none" } };
    const char *paths[] = { path };
    rig_up();
    R.uart_paths = paths;           /* the file it may write, in its jail */
    R.n_uart_paths = 1;
    cr_assert_not_null(add_uart(false, props, 2, &err), "%s\n%s", err ? error_get_pretty(err) : "", R.log);
    for (const char *p = "to a file"; *p; p++)
        wr8(UART_BASE, (uint8_t)*p);
    rd8(UART_BASE + 2);     /* a synchronous read: every posted write before it has been applied */
    cr_assert_eq(pread(fd, buf, sizeof(buf) - 1, 0), 9);
    cr_assert_str_eq(buf, "to a file");
    rig_down();
    close(fd);
    unlink(path);
}

Test(devices_hub, uart_tx_to_pty)
{
    Error *err = NULL;
    hub_prop props[] = { { "tx", "pty" }, { "rx", "pty" } };
    static const hub_file ptmx = { .name = "pty", .path = "/dev/ptmx" };
    char pty[256] = { 0 }, buf[8] = { 0 };
    const char *at;
    int fd;
    struct termios t;

    rig_up();
    R.uart_files = &ptmx;           /* its jail has no /dev/ptmx: the hub opens it */
    R.n_uart_files = 1;
    cr_assert_not_null(add_uart(false, props, 2, &err), "%s\n%s", err ? error_get_pretty(err) : "", R.log);
    long long deadline = run_now_ms() + 5000;
    while (!(at = strstr(R.log, "serial console on pty ")) && run_now_ms() < deadline)
        hub_devmgr_poll(R.m, 10);
    cr_assert_not_null(at, "no pty path logged:\n%s", R.log);
    sscanf(at + strlen("serial console on pty "), "%255s", pty);
    fd = open(pty, O_RDWR | O_NOCTTY);
    cr_assert_geq(fd, 0, "open %s", pty);
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);

    wr8(UART_BASE, 'P');
    wr8(UART_BASE, 'Q');
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    size_t got = 0;
    while (got < 2 && run_now_ms() < deadline) {
        hub_devmgr_poll(R.m, 0);    /* posted writes may wait in the hub until it next serves the devices */
        if (poll(&pfd, 1, 10) > 0 && (pfd.revents & POLLIN))
            got += (size_t)read(fd, buf + got, 2 - got);
    }
    cr_assert_str_eq(buf, "PQ");

    cr_assert_eq(write(fd, "r", 1), 1);
    while (!(rd8(UART_BASE + 5) & 0x01) && run_now_ms() < deadline)
        hub_devmgr_poll(R.m, 10);
    cr_assert_eq(rd8(UART_BASE), 'r');
    close(fd);
    rig_down();
}

Test(devices_hub, uart_runs_in_the_default_sandbox)
{
    Error *err = NULL;
    hub_device *d;
    char out[16];

    rig_up();
    R.sandbox = true;
    d = add_uart(false, NULL, 0, &err);
    cr_assert_not_null(d, "%s\n%s", err ? error_get_pretty(err) : "", R.log);
    for (const char *p = "boxed\n"; *p; p++)
        wr8(UART_BASE, (uint8_t)*p);
    cr_assert_eq(uart_output(out, 6), 6, "got \"%s\"\nlog:\n%s", out, R.log);
    cr_assert_str_eq(out, "boxed\n");
    wr8(UART_BASE + 2, 0x07);
    wr8(UART_BASE + 1, 0x01);
    /* FCR's FIFO reset empties the receive FIFO: make sure the device applied both posted writes (a read of
       IER is a round trip ordered after them) before input arrives, or the FIFO reset may eat the byte. */
    cr_assert_eq(rd8(UART_BASE + 1), 0x01);
    type("k", 1);
    expect_irq(UART_IRQ, 1);
    cr_assert_eq(rd8(UART_BASE), 'k');
    cr_assert_eq(hub_device_reset(d), 0);
    cr_assert_eq(rd8(UART_BASE + 5), 0x60);
    cr_assert_eq(seccomp_mode(hub_device_pid(d)), 2, "the device runs under a seccomp filter");
    cr_assert_not(hub_device_failed(d), "log:\n%s", R.log);
    cr_assert_null(strstr(R.log, "denied"), "%s", R.log);
    rig_down();
}

Test(devices_hub, uart_declaration_and_reset)
{
    Error *err = NULL;
    hub_device *d;

    rig_up();
    d = add_uart(false, NULL, 0, &err);
    cr_assert_not_null(d, "%s", err ? error_get_pretty(err) : "");
    cr_assert_str_eq(hub_device_model(d), "ns16550a");
    cr_assert_eq(hub_device_region_size(d, "regs"), 0x100);
    wr8(UART_BASE + 7, 0x99);
    wr8(UART_BASE + 3, 0x1b);
    wr8(UART_BASE + 1, 0x02);
    expect_irq(UART_IRQ, 1);
    cr_assert_eq(hub_device_reset(d), 0);
    cr_assert_eq(rd8(UART_BASE + 7), 0, "SCR (shadow) after reset");
    cr_assert_eq(rd8(UART_BASE + 3), 0, "LCR (shadow) after reset");
    cr_assert_eq(rd8(UART_BASE + 1), 0, "IER after reset");
    cr_assert_eq(rd8(UART_BASE + 2), 0x01, "IIR after reset");
    expect_irq(UART_IRQ, 0);
    rig_down();
}

Test(devices_hub, uart_bad_property_fails_add_with_a_reason)
{
    Error *err = NULL;
    hub_prop props[] = { { "tx", "printer" } };

    rig_up();
    cr_assert_null(add_uart(false, props, 1, &err));
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(error_get_pretty(err), "tx") ? error_get_pretty(err) : strstr(R.log, "tx"),
                       "the failure does not name the property: %s\nlog:\n%s", error_get_pretty(err), R.log);
    error_free(err);
    rig_down();
}

/* --- DMA ------------------------------------------------------------------------------------------------- */

static uint8_t *ram(uint64_t addr) { return (uint8_t *)memory_region_get_ram_ptr(&R.ram) + (addr - RAM_BASE); }

static void fill(uint64_t addr, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        ram(addr)[i] = (uint8_t)(i * 13 + seed);
}

static void dma_start(uint64_t dst, uint64_t src, uint32_t len, uint32_t ctrl)
{
    wr64(DMA_BASE + 0x08, src);
    wr64(DMA_BASE + 0x10, dst);
    wr32(DMA_BASE + 0x18, len);
    wr32(DMA_BASE + 0x1c, ctrl | 1);
}

Test(devices_hub, dma_copies_in_virtual_time_and_interrupts)
{
    hub_devmgr_stats st;

    rig_up();
    add_dma(NULL, 0);       /* defaults: 1000 ns + 1 ns per byte */
    cr_assert_eq(rd32(DMA_BASE + 0x00), 0x504c444d);
    fill(RAM_BASE, 4096, 5);
    memset(ram(RAM_BASE + 0x10000), 0, 4096);
    dma_start(RAM_BASE + 0x10000, RAM_BASE, 4096, 2);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 1, "BUSY until virtual time passes");
    cr_assert_eq(rd32(DMA_BASE + 0x08), (uint32_t)RAM_BASE, "64-bit write reached SRC_LO");
    cr_assert_eq(rd32(DMA_BASE + 0x0c), 0, "and SRC_HI");

    vclock_advance(&R.clock, vclock_now(&R.clock) + 1000 + 4096 - 1);
    hub_devmgr_poll(R.m, 50);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 1, "still BUSY 1 ns before the deadline");
    cr_assert_eq(R.level[DMA_IRQ], 0);

    vclock_advance(&R.clock, vclock_now(&R.clock) + 1);
    expect_irq(DMA_IRQ, 1);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 2, "DONE");
    cr_assert_eq(memcmp(ram(RAM_BASE + 0x10000), ram(RAM_BASE), 4096), 0);
    cr_assert_eq(rd32(DMA_BASE + 0x24), 1);
    wr32(DMA_BASE + 0x20, 2);
    expect_irq(DMA_IRQ, 0);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 0);

    hub_devmgr_get_stats(R.m, &st);
    cr_assert_eq(st.dma_messages, 0, "granted RAM is copied in place, without messages");
    rig_down();
}

Test(devices_hub, dma_status_read_is_ordered_after_posted_start)
{
    hub_prop props[] = { { "latency-ns", "0" }, { "ns-per-byte", "0" } };

    rig_up();
    add_dma(props, 2);
    for (unsigned i = 0; i < 20; i++) {
        fill(RAM_BASE + 0x1000, 512, i);
        dma_start(RAM_BASE + 0x8000 + i, RAM_BASE + 0x1000, 512, 0);
        cr_assert_eq(rd32(DMA_BASE + 0x20), 2, "round %u: the read must see the completed transfer", i);
        cr_assert_eq(memcmp(ram(RAM_BASE + 0x8000 + i), ram(RAM_BASE + 0x1000), 512), 0, "round %u", i);
    }
    cr_assert_eq(rd32(DMA_BASE + 0x24), 20);
    rig_down();
}

Test(devices_hub, dma_reset_cancels_a_running_transfer)
{
    hub_device *d;

    rig_up();
    d = add_dma(NULL, 0);
    cr_assert_str_eq(hub_device_model(d), "plexus,dma");
    cr_assert_eq(hub_device_region_size(d, "regs"), 0x1000);
    dma_start(RAM_BASE + 0x10000, RAM_BASE, 256, 2);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 1);
    cr_assert_eq(hub_device_reset(d), 0);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 0, "idle after reset");
    cr_assert_eq(rd32(DMA_BASE + 0x1c), 0, "CTRL cleared");
    vclock_advance(&R.clock, vclock_now(&R.clock) + 100000);
    hub_devmgr_poll(R.m, 20);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 0, "the cancelled transfer never completes");
    cr_assert_eq(rd32(DMA_BASE + 0x24), 0);
    cr_assert_eq(R.raised[DMA_IRQ], 0);
    rig_down();
}

Test(devices_hub, dma_runs_in_the_default_sandbox)
{
    hub_device *d;

    rig_up();
    R.sandbox = true;
    d = add_dma(NULL, 0);
    fill(RAM_BASE, 2048, 1);
    dma_start(RAM_BASE + 0x8000, RAM_BASE, 2048, 2);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 1);
    vclock_advance(&R.clock, vclock_now(&R.clock) + 1000 + 2048);
    expect_irq(DMA_IRQ, 1);
    cr_assert_eq(memcmp(ram(RAM_BASE + 0x8000), ram(RAM_BASE), 2048), 0);
    dma_start(RAM_BASE, 0x1000, 8, 0);      /* by message, failing */
    cr_assert_eq(rd32(DMA_BASE + 0x20), 4);
    cr_assert_eq(seccomp_mode(hub_device_pid(d)), 2, "the device runs under a seccomp filter");
    cr_assert_not(hub_device_failed(d), "log:\n%s", R.log);
    cr_assert_null(strstr(R.log, "denied"), "%s", R.log);
    rig_down();
}

Test(devices_hub, dma_plugin_copies)
{
    hub_prop props[] = { { "latency-ns", "0" }, { "ns-per-byte", "0" } };

    rig_up();
    add_dma_as(true, props, 2);
    cr_assert_eq(rd32(DMA_BASE + 0x00), 0x504c444d);
    fill(RAM_BASE + 0x3000, 300, 77);
    dma_start(RAM_BASE + 0x5000, RAM_BASE + 0x3000, 300, 2);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 2);
    expect_irq(DMA_IRQ, 1);
    cr_assert_eq(memcmp(ram(RAM_BASE + 0x5000), ram(RAM_BASE + 0x3000), 300), 0);
    rig_down();
}

Test(devices_hub, dma_from_unmapped_address_reports_error)
{
    rig_up();
    add_dma(NULL, 0);
    dma_start(RAM_BASE, 0x1000, 64, 2);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 4, "ERROR at once");
    expect_irq(DMA_IRQ, 1);
    cr_assert_eq(rd32(DMA_BASE + 0x24), 0);
    wr32(DMA_BASE + 0x20, 4);
    expect_irq(DMA_IRQ, 0);

    dma_start(RAM_BASE + RAM_SIZE - 16, RAM_BASE, 32, 0);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 4, "a destination running past the end of RAM is an error too");
    rig_down();
}

Test(devices_hub, dma_without_granted_ram_copies_by_message)
{
    hub_prop props[] = { { "latency-ns", "0" }, { "ns-per-byte", "0" } };
    hub_devmgr_stats st;

    rig_up();
    R.by_message = true;    /* the RAM is its window, but not mapped */
    add_dma(props, 2);
    fill(RAM_BASE + 0x100, 10000, 3);
    dma_start(RAM_BASE + 0x4000, RAM_BASE + 0x100, 10000, 0);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 2);
    cr_assert_eq(memcmp(ram(RAM_BASE + 0x4000), ram(RAM_BASE + 0x100), 10000), 0);
    hub_devmgr_get_stats(R.m, &st);
    cr_assert_gt(st.dma_messages, 0);

    /* Overlapping, destination above the source: memmove semantics across 4 KiB chunks. */
    uint8_t expect[9000];
    fill(RAM_BASE + 0x20000, sizeof(expect), 9);
    memcpy(expect, ram(RAM_BASE + 0x20000), sizeof(expect));
    dma_start(RAM_BASE + 0x20000 + 100, RAM_BASE + 0x20000, sizeof(expect), 0);
    cr_assert_eq(rd32(DMA_BASE + 0x20), 2);
    cr_assert_eq(memcmp(ram(RAM_BASE + 0x20000 + 100), expect, sizeof(expect)), 0);
    rig_down();
}

Test(devices_hub, dma_bad_property_fails_add)
{
    static const hub_region_map reg = { .region = "regs", .base = DMA_BASE };
    hub_prop props[] = { { "ns-per-byte", "lots" } };
    Error *err = NULL;

    rig_up();
    hub_device_config cfg = {
        .name = "dma0", .program = R.path[2], .props = props, .n_props = 1,
        .regions = &reg, .n_regions = 1 };
    cr_assert_null(hub_devmgr_add(R.m, &cfg, &err));
    cr_assert_not_null(err);
    error_free(err);
    rig_down();
}
