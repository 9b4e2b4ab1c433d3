/* The assembled machine: memory map, RAM, firmware, CPU and controllers, device processes, DTB, main loop. */
#define _GNU_SOURCE
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "util.h"
#include "plexus/protocol.h"
#include "cpu/cpu.h"
#include "dev/devmgr.h"
#include "dlog.h"
#include "gdb.h"
#include "monitor.h"
#include "observe.h"
#include "trace.h"

#define CONSOLE_CHECK_NS 2000000ULL     /* look at the keyboard every 2 ms of host time */

struct hub_machine {
    const hub_mconfig *cfg;
    hub_machine_opts opts;
    MemoryRegion sysmem;
    bool sysmem_inited;
    AddressSpace as;
    bool as_inited;
    MemoryRegion *ram;          /* cfg->n_ram regions */
    size_t n_ram_inited;
    hub_ram_block *blocks;
    vclock clock;
    hub_cpu *cpu;
    hub_clint *clint;
    hub_plic *plic;
    hub_poweroff *poweroff;
    bool clint_mapped, plic_mapped, poweroff_mapped;
    hub_devmgr *devmgr;
    hub_device **devs;
    hub_console *console;
    hub_load_result *loads;
    size_t n_loads;
    /* the next boot stage */
    hub_load_result kernel_load;
    uint64_t kernel_start, kernel_end, kernel_entry;
    hub_dt_boot boot;
    uint8_t rng_seed[HUB_RNG_SEED_MAX];
    uint64_t info_addr;         /* fw_dynamic_info, right after the DTB; 0: none */
    void *dtb;
    size_t dtb_size;
    uint64_t dtb_addr;
    uint64_t reset_pc;
    uint64_t next_console_check;
    volatile sig_atomic_t stop_requested;
    volatile sig_atomic_t stop_status;
    bool quit;
    struct timespec t_start, t_end;
    /* the console device's output passes through the hub, which knows whether a line is open */
    bool out_mid_line;
    /* debugging */
    int ep;                     /* epoll set of what wakes the idle or stopped hub besides devices */
    int ep_console;             /* the console input fd in it, or -1 */
    hub_gdb *gdb;
    hub_monitor *monitor;
    hub_monitor_host mon_host;
    hub_dlog *dlog;
    hub_trace *trace;
    hub_observer_pair observers;
    bool stopped;               /* stopped for the debugger or the monitor */
    const char *ended_by;       /* the debugger or the monitor ended the run */
    bool debug_io;              /* the debugger and x/xp may touch device registers */
};

/* hub_mconfig_where() for a printf-built key path. */
static char *wheref(const hub_mconfig *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *wheref(const hub_mconfig *c, const char *fmt, ...)
{
    va_list ap;
    char *path;
    va_start(ap, fmt);
    if (vasprintf(&path, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *w = hub_mconfig_where(c, path);
    free(path);
    return w;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Firmware bytes go straight into the RAM blocks' host memory. */
static int ram_write(void *opaque, uint64_t addr, const void *buf, size_t len)
{
    hub_machine *m = opaque;
    for (size_t i = 0; i < m->cfg->n_ram; i++) {
        const hub_mc_ram *r = &m->cfg->ram[i];
        if (addr >= r->base && addr - r->base < r->size && len <= r->size - (addr - r->base)) {
            memcpy((uint8_t *)memory_region_get_ram_ptr(&m->ram[i]) + (addr - r->base), buf, len);
            return 0;
        }
    }
    return -EFAULT;
}

/* The guest's output, through the console device (over its channel): to the hub's stdout as it is, a serial
 * line's; remember whether its last line is still open. */
static void console_output(void *opaque, const uint8_t *data, size_t len)
{
    hub_machine *m = opaque;
    if (!len)
        return;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDOUT_FILENO, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;      /* nobody reads our stdout: the bytes are lost */
        off += (size_t)w;
    }
    m->out_mid_line = data[len - 1] != '\n';
    hub_trace_console(m->trace, (const char *)data, len, vclock_now(&m->clock));
}

/* Hub messages start on a line of their own, never in the middle of a guest's console line. */
static void begin_line(void *opaque)
{
    hub_machine *m = opaque;
    if (m->out_mid_line) {
        fputc('\n', stderr);
        m->out_mid_line = false;
    }
}

static void set_irq(void *opaque, unsigned irq, int level)
{
    hub_machine *m = opaque;
    hub_trace_irq(m->trace, irq, level);
    hub_plic_set_irq(m->plic, irq, level);
}

/* The level from which @device's log records are shown: `log.level`, else warnings and worse; -v: all. */
static int log_threshold(const hub_machine *m, const char *device)
{
    if (m->opts.verbose)
        return PLX_LOG_DEBUG;
    for (size_t i = 0; device && i < m->cfg->n_devices; i++)
        if (!strcmp(m->cfg->devices[i].dev.name, device) && m->cfg->devices[i].log_level >= 0)
            return m->cfg->devices[i].log_level;
    return PLX_LOG_WARNING;
}

static void dev_log(void *opaque, const char *device, int level, const char *msg)
{
    hub_machine *m = opaque;
    if (level > log_threshold(m, device) && level != HUB_LOG_OUTPUT)     /* a device's own output: always */
        return;
    const char *ln = level == HUB_LOG_OUTPUT ? "output" : plx_log_level_name(level);
    begin_line(m);
    fprintf(stderr, "plexus: %s: %s: %s\n", device ? device : "devices", ln, msg);
    if (level <= 4)
        hub_dlog_device(m->dlog, device ? device : "devices", ln, msg);
}

static void service_console(hub_machine *m)
{
    switch (hub_console_service(m->console)) {
    case HUB_CONSOLE_QUIT:
        m->quit = true;
        m->stopped = false;
        hub_cpu_stop(m->cpu, HUB_CONSOLE_QUIT_STATUS);
        break;
    case HUB_CONSOLE_STATS:
        begin_line(m);
        hub_machine_print_stats(m, stderr);
        break;
    case HUB_CONSOLE_NONE:
        break;
    }
}

/* Everything outside the devices that may want the hub: console input and output, debugger, monitor. */
static void serve_io(hub_machine *m)
{
    if (m->console)
        service_console(m);
    hub_gdb_service(m->gdb);
    hub_monitor_service(m->monitor);
}

/* Wait for a device message or anything else in serve_io(), at most @timeout_ms; then serve it. */
static void wait_and_serve(hub_machine *m, int timeout_ms)
{
    int cfd = m->console ? hub_console_fd(m->console) : -1;
    if (cfd != m->ep_console) {     /* the console input stops being polled once it ends or its buffer is full */
        if (m->ep_console >= 0)
            epoll_ctl(m->ep, EPOLL_CTL_DEL, m->ep_console, NULL);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = cfd };
        if (cfd >= 0 && epoll_ctl(m->ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
            cfd = -1;
        m->ep_console = cfd;
    }
    serve_io(m);
    hub_devmgr_wait(m->devmgr, timeout_ms, m->ep);
    serve_io(m);
}

static void service(void *opaque)
{
    hub_machine *m = opaque;
    hub_devmgr_poll(m->devmgr, 0);
    uint64_t now = mono_ns();
    if (now >= m->next_console_check) {
        m->next_console_check = now + CONSOLE_CHECK_NS;
        serve_io(m);
    }
    if (m->stop_requested)
        hub_cpu_stop(m->cpu, m->stop_status);
}

/* The guest is about to observe interrupt state: the devices' lines catch up with its earlier writes. */
static void irq_sync(void *opaque)
{
    hub_machine *m = opaque;
    if (m->devmgr)
        hub_devmgr_sync(m->devmgr);
}

/* A device wrote guest RAM: the hart must not run what it translated from there before. */
static void ram_written(void *opaque, uint64_t addr, uint64_t len)
{
    hub_machine *m = opaque;
    if (m->cpu)
        hub_cpu_ram_written(m->cpu, addr, len);
}

/* A guest access waits for its device's restart: the CPU makes it again after the next poll. */
static bool defer_access(void *opaque)
{
    hub_machine *m = opaque;
    return m->cpu && hub_cpu_defer_access(m->cpu);
}

/* A lockstep device's access kept its bus busy: the guest's clock pays for it. */
static void charge_cpu(void *opaque, uint64_t ns)
{
    hub_machine *m = opaque;
    hub_cpu_charge(m->cpu, ns);
}

/* The hart waits for an interrupt: sleep until a device speaks, a key is pressed, or @timeout_ms runs out. */
static void idle(void *opaque, int timeout_ms)
{
    hub_machine *m = opaque;
    wait_and_serve(m, timeout_ms);
    if (m->stop_requested)
        hub_cpu_stop(m->cpu, m->stop_status);
}

/* ---- debugging: the hart stopped for the debugger or the monitor ---- */

static const char *stop_reason(const hub_cpu_debug_event *ev)
{
    switch (ev->reason) {
    case HUB_CPU_STOP_BREAKPOINT: return " at a breakpoint";
    case HUB_CPU_STOP_STEP: return " after a step";
    case HUB_CPU_STOP_WATCH: return " by a watchpoint";
    default: return "";
    }
}

/* Virtual time stands still: nothing runs but the devices' messages, the console, debugger and monitor. */
static void debug_stop(void *opaque, const hub_cpu_debug_event *ev)
{
    hub_machine *m = opaque;
    m->stopped = true;
    hub_gdb_stopped(m->gdb, ev);
    if (!hub_gdb_connected(m->gdb)) {
        begin_line(m);
        fprintf(stderr, "plexus: guest stopped%s at pc 0x%" PRIx64 " (%s)\n", stop_reason(ev), ev->pc,
                m->gdb ? "waiting for the debugger" : "the monitor's cont resumes it");
    }
    while (m->stopped && !m->stop_requested && !m->quit)
        wait_and_serve(m, 100);
    m->stopped = false;
    hub_gdb_running(m->gdb);
    if (m->stop_requested)
        hub_cpu_stop(m->cpu, m->stop_status);
}

static void dbg_resume(void *opaque)
{
    hub_machine *m = opaque;
    m->stopped = false;
}

static void end_run(hub_machine *m, const char *who)
{
    begin_line(m);
    fprintf(stderr, "plexus: ended by %s\n", who);
    m->ended_by = who;
    m->quit = true;
    m->stopped = false;
    hub_cpu_stop(m->cpu, HUB_CONSOLE_QUIT_STATUS);
}

static void dbg_kill(void *opaque)
{
    end_run(opaque, "the debugger");
}

static void mon_quit(void *opaque)
{
    end_run(opaque, "the monitor's quit");
}

static bool dbg_io_allowed(void *opaque)
{
    hub_machine *m = opaque;
    return m->debug_io;
}

static void dbg_monitor(void *opaque, const char *cmd, FILE *out)
{
    hub_machine *m = opaque;
    hub_monitor_exec(&m->mon_host, cmd, out);
}

static void mon_stop(void *opaque)
{
    hub_machine *m = opaque;
    hub_cpu_debug_break(m->cpu);
}

static bool mon_stopped(void *opaque)
{
    hub_machine *m = opaque;
    return m->stopped;
}

static void mon_reset(void *opaque, FILE *out);
static void mon_info_devices(void *opaque, FILE *out);

/* A monitor line typed on the console (Ctrl-A c). */
static void console_monitor_line(void *opaque, const char *line)
{
    hub_machine *m = opaque;
    hub_monitor_exec(&m->mon_host, line, stderr);
}

static int debug_setup(hub_machine *m, Error **errp)
{
    m->mon_host = (hub_monitor_host){
        .cpu = m->cpu, .stop = mon_stop, .cont = dbg_resume, .stopped = mon_stopped, .reset = mon_reset,
        .quit = mon_quit, .info_devices = mon_info_devices, .debug_io = &m->debug_io, .opaque = m,
    };
    m->ep = epoll_create1(EPOLL_CLOEXEC);
    if (m->ep < 0) {
        error_setg(errp, "epoll: %s", strerror(errno));
        return -EMFILE;
    }
    struct epoll_event ev = { .events = EPOLLIN };
    int r;
    if (m->opts.gdb) {
        hub_gdb_host gh = { .cpu = m->cpu, .resume = dbg_resume, .kill = dbg_kill, .monitor = dbg_monitor,
                            .io_allowed = dbg_io_allowed, .opaque = m };
        if ((r = hub_gdb_open(m->opts.gdb, &gh, &m->gdb, errp)) < 0)
            return r;
        ev.data.fd = hub_gdb_fd(m->gdb);
        epoll_ctl(m->ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
        fprintf(stderr, "plexus: the GDB stub listens on %s%s\n", hub_gdb_where(m->gdb),
                m->opts.gdb_wait ? "; the guest waits for the debugger" : "");
    }
    if (m->opts.monitor) {
        if ((r = hub_monitor_open(m->opts.monitor, &m->mon_host, &m->monitor, errp)) < 0)
            return r;
        ev.data.fd = hub_monitor_fd(m->monitor);
        epoll_ctl(m->ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
    }
    if (m->console)
        hub_console_set_monitor(m->console, console_monitor_line, m);
    if (m->opts.gdb_wait)
        hub_cpu_debug_break(m->cpu);
    return 0;
}

void hub_machine_request_stop(hub_machine *m, int status)
{
    m->stop_status = status;
    m->stop_requested = 1;
}

typedef struct mrange { char *what; uint64_t base, size; const char *key; } mrange;

static int check_overlaps(hub_machine *m, mrange *r, size_t n, Error **errp)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++) {
            if (!r[i].size || !r[j].size)
                continue;
            if (r[i].base < r[j].base + r[j].size && r[j].base < r[i].base + r[i].size) {
                char *w = hub_mconfig_where(m->cfg, r[i].key);
                error_setg(errp, "%s: %s [0x%" PRIx64 "-0x%" PRIx64 "] overlaps %s [0x%" PRIx64 "-0x%" PRIx64 "]",
                                 w, r[i].what, r[i].base, r[i].base + r[i].size - 1, r[j].what, r[j].base,
                                 r[j].base + r[j].size - 1);
                free(w);
                return -EINVAL;
            }
        }
    return 0;
}

/* Keyboard input for the console device; it takes what its receiver has room for. */
static int console_sink(void *opaque, const uint8_t *buf, size_t len)
{
    hub_machine *m = opaque;
    hub_device *d = m->cfg->console >= 0 ? m->devs[m->cfg->console] : NULL;
    return d ? hub_device_console_input(d, buf, len) : -ENODEV;
}

static int add_devices(hub_machine *m, Error **errp)
{
    const hub_mconfig *c = m->cfg;
    Error *e = NULL;
    m->devs = calloc(c->n_devices ? c->n_devices : 1, sizeof(*m->devs));
    if (m->opts.console && c->console >= 0) {
        m->console = hub_console_open(STDIN_FILENO, console_sink, m, errp);
        if (!m->console)
            return -EIO;
    }
    for (size_t i = 0; i < c->n_devices; i++) {
        const hub_device_config *d = &c->devices[i].dev;
        if (d->attach && !d->endpoint)
            fprintf(stderr, "plexus: waiting %u ms for device '%s' to attach: start it with "
                    "--plexus-attach=%s --plexus-name=%s (it reads its key from %s.key there)\n",
                    d->attach_timeout_ms ? d->attach_timeout_ms : 10000, d->name,
                    hub_devmgr_attach_socket(m->devmgr), d->name, d->name);
        else if (d->attach)
            fprintf(stderr, "plexus: waiting %u ms for device '%s' to connect to %s\n",
                    d->attach_timeout_ms ? d->attach_timeout_ms : 10000, d->name, d->endpoint);
        m->devs[i] = hub_devmgr_add(m->devmgr, d, &e);
        if (!m->devs[i]) {
            char *w = wheref(c, "devices.%zu.name", i);
            error_setg(errp, "%s: device '%s' did not start: %s", w, d->name, e ? error_get_pretty(e) : "?");
            free(w);
            error_free(e);
            return -EIO;
        }
    }
    return 0;
}

/* Now that every device told its region sizes: nothing may overlap. */
static int check_map(hub_machine *m, hub_dt_device_info *info, Error **errp)
{
    const hub_mconfig *c = m->cfg;
    size_t cap = c->n_ram + 3 + 1;
    for (size_t i = 0; i < c->n_devices; i++)
        cap += hub_device_n_regions(m->devs[i]);
    mrange *r = calloc(cap, sizeof(*r));
    char **keys = calloc(cap, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < c->n_ram; i++) {
        keys[n] = hub_xasprintf("ram.%zu.base", i);
        r[n] = (mrange){ hub_xasprintf("RAM '%s'", c->ram[i].name), c->ram[i].base, c->ram[i].size, keys[n] };
        n++;
    }
    if (c->clint)
        r[n++] = (mrange){ strdup("clint"), c->clint_base, memory_region_size(hub_clint_region(m->clint)),
                           "clint.base" };
    if (c->plic)
        r[n++] = (mrange){ strdup("plic"), c->plic_base, memory_region_size(hub_plic_region(m->plic)),
                           "plic.base" };
    if (c->poweroff)
        r[n++] = (mrange){ strdup("poweroff"), c->poweroff_base,
                           memory_region_size(hub_poweroff_region(m->poweroff)), "poweroff.base" };
    for (size_t i = 0; i < c->n_devices; i++) {
        const hub_device_config *d = &c->devices[i].dev;
        unsigned nr = hub_device_n_regions(m->devs[i]);
        info[i] = (hub_dt_device_info){ 0, 0, hub_device_dt_node(m->devs[i]) };
        for (unsigned j = 0; j < nr; j++) {
            const char *name;
            uint64_t base, size;
            if (hub_device_region_info(m->devs[i], j, &name, &base, &size) < 0)
                continue;
            if (j == 0) {
                info[i].base = base;
                info[i].size = size;
            }
            /* the key that placed this region */
            size_t k = 0;
            for (; k < d->n_regions; k++)
                if (d->regions[k].region ? !strcmp(d->regions[k].region, name) : j == 0)
                    break;
            if (k < d->n_regions && d->regions[k].region)
                keys[n] = hub_xasprintf("devices.%zu.regions.%zu.base", i, k);
            else
                keys[n] = hub_xasprintf("devices.%zu.base", i);
            r[n] = (mrange){ hub_xasprintf("device '%s' region '%s'", d->name, name), base, size, keys[n] };
            n++;
        }
    }
    int ret = check_overlaps(m, r, n, errp);
    for (size_t i = 0; i < n; i++) {
        free(r[i].what);
        free(keys[i]);
    }
    free(r);
    free(keys);
    return ret;
}

/* ---- the next boot stage: kernel, initrd, OpenSBI's fw_dynamic_info ---- */
#define KERNEL_ALIGN (2ULL << 20)
#define DT_NODE_NAME_MAX 31     /* the device-tree specification's limit of a node name */
#define INITRD_ALIGN 4096ULL
#define INITRD_OFFSET_MAX (128ULL << 20)
/* OpenSBI's struct fw_dynamic_info (include/sbi/fw_dynamic.h), version 2: six little-endian longs */
#define FW_DYNAMIC_MAGIC 0x4942534fULL      /* "OSBI" */
#define FW_DYNAMIC_VERSION 2
#define FW_DYNAMIC_NEXT_MODE_S 1
#define FW_DYNAMIC_INFO_SIZE 48

static const hub_mc_ram *ram_holding(const hub_mconfig *c, uint64_t start, uint64_t len)
{
    for (size_t i = 0; i < c->n_ram; i++) {
        const hub_mc_ram *r = &c->ram[i];
        if (start >= r->base && start - r->base < r->size && len <= r->size - (start - r->base))
            return r;
    }
    return NULL;
}

/* The firmware image (its key) that overlaps [start, end), or NULL. */
static char *firmware_overlapping(hub_machine *m, uint64_t start, uint64_t end, uint64_t *fs, uint64_t *fe)
{
    for (size_t i = 0; i < m->n_loads; i++)
        for (size_t j = 0; j < m->loads[i].n_ranges; j++) {
            const hub_load_range *lr = &m->loads[i].ranges[j];
            if (lr->start < end && start < lr->end) {
                *fs = lr->start;
                *fe = lr->end;
                return wheref(m->cfg, "firmware.%zu.file", i);
            }
        }
    return NULL;
}

static int kernel_overlap_error(hub_machine *m, uint64_t start, uint64_t end, Error **errp)
{
    uint64_t fs, fe;
    char *fw = firmware_overlapping(m, start, end, &fs, &fe);
    if (!fw)
        return 0;
    char *w = hub_mconfig_where(m->cfg, "kernel");
    error_setg(errp, "%s: the kernel [0x%" PRIx64 "-0x%" PRIx64 "] overlaps the firmware [0x%" PRIx64 "-0x%"
               PRIx64 "] of %s%s", w, start, end - 1, fs, fe - 1, fw,
               m->cfg->kernel_elf ? "" : " (set kernel_address)");
    free(w);
    free(fw);
    return -EINVAL;
}

/*
 * An Image goes to kernel_address, else to the lowest 2 MiB aligned base + text_offset in the first RAM block
 * that clears the firmware: 0x80200000 behind OpenSBI on the virt map, where fw_jump jumps. An ELF goes to
 * its own physical addresses. [kernel_start, kernel_end) is what the kernel occupies, .bss included.
 */
static int load_kernel(hub_machine *m, Error **errp)
{
    const hub_mconfig *c = m->cfg;
    Error *lerr = NULL;
    int r;
    if (c->kernel_elf) {
        if ((r = hub_load_elf(c->kernel, ram_write, m, &m->kernel_load, &lerr)) < 0)
            goto load_failed;
        m->kernel_start = UINT64_MAX;
        for (size_t i = 0; i < m->kernel_load.n_ranges; i++) {
            const hub_load_range *lr = &m->kernel_load.ranges[i];
            m->kernel_start = lr->start < m->kernel_start ? lr->start : m->kernel_start;
            m->kernel_end = lr->end > m->kernel_end ? lr->end : m->kernel_end;
            if ((r = kernel_overlap_error(m, lr->start, lr->end, errp)) < 0)
                return r;
        }
        m->kernel_entry = m->kernel_load.entry;
        return 0;
    }
    const hub_image_info *im = &c->kernel_image;
    const hub_mc_ram *r0 = &c->ram[0];
    uint64_t at = c->kernel_address;
    if (!c->has_kernel_address) {
        uint64_t fs, fe, base = (r0->base + KERNEL_ALIGN - 1) & ~(KERNEL_ALIGN - 1);
        char *fw;
        at = base + im->text_offset;
        while (at + im->image_size <= r0->base + r0->size &&
               (fw = firmware_overlapping(m, at, at + im->image_size, &fs, &fe))) {
            free(fw);
            /* the next base whose Image starts at or after that firmware's end */
            uint64_t want = fe > im->text_offset ? fe - im->text_offset : 0;
            want = (want + KERNEL_ALIGN - 1) & ~(KERNEL_ALIGN - 1);
            base = want > base ? want : base + KERNEL_ALIGN;
            at = base + im->text_offset;
        }
    }
    if (!ram_holding(c, at, im->image_size)) {
        char *w = hub_mconfig_where(c, c->has_kernel_address ? "kernel_address" : "kernel");
        error_setg(errp, "%s: the kernel (image_size 0x%" PRIx64 ") does not fit in RAM at 0x%" PRIx64 ": make "
                   "RAM larger%s", w, im->image_size, at, c->has_kernel_address ? " or move it" : "");
        free(w);
        return -ENOSPC;
    }
    if ((r = kernel_overlap_error(m, at, at + im->image_size, errp)) < 0)
        return r;
    if ((r = hub_load_raw(c->kernel, at, ram_write, m, &m->kernel_load, &lerr)) < 0)
        goto load_failed;
    m->kernel_load.ranges[0].end = at + im->image_size;   /* fresh RAM is zero: the .bss is ready */
    m->kernel_start = at;
    m->kernel_end = at + im->image_size;
    m->kernel_entry = at;
    return 0;
load_failed: {
        char *w = hub_mconfig_where(c, "kernel");
        error_setg(errp, "%s: %s", w, error_get_pretty(lerr));
        free(w);
        error_free(lerr);
        return r;
    }
}

static int initrd_error(hub_machine *m, Error **errp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int initrd_error(hub_machine *m, Error **errp, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *w = hub_mconfig_where(m->cfg, "initrd");
    error_setg(errp, "%s: the initrd (%" PRIu64 " bytes) %s", w, m->cfg->initrd_size, msg);
    free(w);
    free(msg);
    return -ENOSPC;
}

/*
 * QEMU's rule: the initrd goes min(RAM/2, 128 MiB) above the kernel's start, clear of an early kernel's
 * relocation and of fw_jump's copy of the device tree (at 0x82200000), and never inside the kernel.
 */
static int load_initrd(hub_machine *m, Error **errp)
{
    const hub_mconfig *c = m->cfg;
    const hub_mc_ram *r = ram_holding(c, m->kernel_start, 1);
    if (!r)
        return initrd_error(m, errp, "has no RAM block to go to: the kernel starts outside RAM");
    uint64_t off = r->size / 2 < INITRD_OFFSET_MAX ? r->size / 2 : INITRD_OFFSET_MAX;
    uint64_t start = m->kernel_start + off > m->kernel_end ? m->kernel_start + off : m->kernel_end;
    start = (start + INITRD_ALIGN - 1) & ~(INITRD_ALIGN - 1);
    uint64_t end = start + c->initrd_size;
    uint64_t dtb_end = m->dtb_addr + m->dtb_size + (m->info_addr ? FW_DYNAMIC_INFO_SIZE + 8 : 0);
    if (!ram_holding(c, start, c->initrd_size))
        return initrd_error(m, errp, "does not fit in RAM '%s' at 0x%" PRIx64 ": make RAM larger", r->name, start);
    if (start < dtb_end && m->dtb_addr < end)
        return initrd_error(m, errp, "at [0x%" PRIx64 "-0x%" PRIx64 "] overlaps the device tree at 0x%" PRIx64
                            " (top of RAM '%s'): make RAM larger", start, end - 1, m->dtb_addr, r->name);
    uint64_t fs, fe;
    char *fw = firmware_overlapping(m, start, end, &fs, &fe);
    if (fw) {
        int ret = initrd_error(m, errp, "at [0x%" PRIx64 "-0x%" PRIx64 "] overlaps the firmware [0x%" PRIx64
                               "-0x%" PRIx64 "] of %s", start, end - 1, fs, fe - 1, fw);
        free(fw);
        return ret;
    }
    hub_load_result res = { 0 };
    Error *lerr = NULL;
    int ret = hub_load_raw(c->initrd, start, ram_write, m, &res, &lerr);
    hub_load_result_clear(&res);
    if (ret < 0) {
        char *w = hub_mconfig_where(c, "initrd");
        error_setg(errp, "%s: %s", w, error_get_pretty(lerr));
        free(w);
        error_free(lerr);
        return ret;
    }
    m->boot.initrd_start = start;
    m->boot.initrd_end = end;
    return 0;
}

static int write_fw_dynamic_info(hub_machine *m)
{
    const uint64_t v[FW_DYNAMIC_INFO_SIZE / 8] = {
        FW_DYNAMIC_MAGIC, FW_DYNAMIC_VERSION, m->kernel_entry, FW_DYNAMIC_NEXT_MODE_S,
        0,                  /* options: boot prints on */
        0,                  /* boot_hart: the only one */
    };
    uint8_t le[FW_DYNAMIC_INFO_SIZE];
    for (size_t i = 0; i < FW_DYNAMIC_INFO_SIZE; i++)
        le[i] = (uint8_t)(v[i / 8] >> (8 * (i % 8)));
    return ram_write(m, m->info_addr, le, sizeof(le));
}

/* QEMU's virt gives every boot 32 fresh random bytes; a `dtb:` file gets them only when asked. */
static void choose_rng_seed(hub_machine *m)
{
    const hub_mconfig *c = m->cfg;
    hub_rng_mode mode = c->rng_seed;
    if (mode == HUB_RNG_DEFAULT)
        mode = c->dtb_blob ? HUB_RNG_NONE : HUB_RNG_RANDOM;
    if (mode == HUB_RNG_FIXED) {
        memcpy(m->rng_seed, c->rng_seed_bytes, c->rng_seed_len);
        m->boot.rng_seed_len = c->rng_seed_len;
    } else if (mode == HUB_RNG_RANDOM) {
        size_t got = 0;
        while (got < HUB_RNG_SEED_RANDOM_LEN) {
            ssize_t n = getrandom(m->rng_seed + got, HUB_RNG_SEED_RANDOM_LEN - got, 0);
            if (n > 0)
                got += (size_t)n;
            else if (errno != EINTR)
                abort();
        }
        m->boot.rng_seed_len = HUB_RNG_SEED_RANDOM_LEN;
    }
    m->boot.rng_seed = m->boot.rng_seed_len ? m->rng_seed : NULL;
}

static int place_dtb(hub_machine *m, Error **errp)
{
    const hub_mconfig *c = m->cfg;
    const hub_mc_ram *r0 = &c->ram[0];
    uint64_t dtb_end = m->dtb_addr + m->dtb_size + (m->info_addr ? FW_DYNAMIC_INFO_SIZE + 8 : 0);
    if (m->dtb_addr < r0->base || dtb_end > r0->base + r0->size) {
        error_setg(errp, "%s: the device tree (%zu bytes) does not fit at the top of RAM '%s'", c->path,
                         m->dtb_size, r0->name);
        return -ENOSPC;
    }
    for (size_t i = 0; i < m->n_loads; i++)
        for (size_t j = 0; j < m->loads[i].n_ranges; j++) {
            const hub_load_range *lr = &m->loads[i].ranges[j];
            if (lr->start < dtb_end && m->dtb_addr < lr->end) {
                char *w = wheref(c, "firmware.%zu.file", i);
                error_setg(errp, "%s: firmware [0x%" PRIx64 "-0x%" PRIx64 "] overlaps the device tree at "
                                 "[0x%" PRIx64 "-0x%" PRIx64 "] (top of RAM '%s'): make RAM larger",
                                 w, lr->start, lr->end - 1, m->dtb_addr, dtb_end - 1, r0->name);
                free(w);
                return -ENOSPC;
            }
        }
    if (m->kernel_end && m->kernel_start < dtb_end && m->dtb_addr < m->kernel_end) {
        char *w = hub_mconfig_where(c, "kernel");
        error_setg(errp, "%s: the kernel [0x%" PRIx64 "-0x%" PRIx64 "] overlaps the device tree at [0x%" PRIx64
                   "-0x%" PRIx64 "] (top of RAM '%s'): make RAM larger", w, m->kernel_start,
                   m->kernel_end - 1, m->dtb_addr, dtb_end - 1, r0->name);
        free(w);
        return -ENOSPC;
    }
    int r = ram_write(m, m->dtb_addr, m->dtb, m->dtb_size);
    if (r == 0 && m->info_addr)
        r = write_fw_dynamic_info(m);
    return r;
}

/* The -d log, when -d asked for something or a device has `log.mmio`. False when out of memory. */
static bool make_dlog(hub_machine *m)
{
    const hub_mconfig *c = m->cfg;
    const char **devs = calloc(c->n_devices + 1, sizeof(*devs));
    size_t n = 0;
    if (!devs)
        return false;
    for (size_t i = 0; i < c->n_devices; i++)
        if (c->devices[i].log_mmio)
            devs[n++] = c->devices[i].dev.name;
    if (m->opts.dlog || n)
        m->dlog = hub_dlog_new(m->opts.dlog, m->opts.dlog_out ? m->opts.dlog_out : stderr, devs, begin_line, m);
    free(devs);
    return m->dlog || !(m->opts.dlog || n);
}

int hub_machine_new(const hub_mconfig *c, const hub_machine_opts *o, hub_machine **out, Error **errp)
{
    hub_machine *m = calloc(1, sizeof(*m));
    m->cfg = c;
    if (o)
        m->opts = *o;
    m->ep = m->ep_console = -1;
    Error *e = NULL;
    int r = -EINVAL;

    memory_region_init(&m->sysmem, NULL, "system", UINT64_MAX);
    m->sysmem_inited = true;
    address_space_init(&m->as, &m->sysmem, "memory");
    m->as_inited = true;

    m->ram = calloc(c->n_ram, sizeof(*m->ram));
    m->blocks = calloc(c->n_ram, sizeof(*m->blocks));
    for (size_t i = 0; i < c->n_ram; i++) {
        memory_region_init_ram(&m->ram[i], NULL, c->ram[i].name, c->ram[i].size, &e);
        if (e) {
            char *w = wheref(c, "ram.%zu.size", i);
            error_setg(errp, "%s: cannot allocate RAM '%s': %s", w, c->ram[i].name, error_get_pretty(e));
            free(w);
            error_free(e);
            r = -ENOMEM;
            goto fail;
        }
        m->n_ram_inited++;
        memory_region_add_subregion(&m->sysmem, c->ram[i].base, &m->ram[i]);
        m->blocks[i] = (hub_ram_block){ c->ram[i].name, c->ram[i].base, c->ram[i].size,
                                        memory_region_get_fd(&m->ram[i]), false };
    }

    /* Firmware, then the reset pc: explicit, else the first ELF's entry, else the first RAM block's base. */
    m->loads = calloc(c->n_firmware ? c->n_firmware : 1, sizeof(*m->loads));
    bool have_entry = false;
    for (size_t i = 0; i < c->n_firmware; i++) {
        const hub_mc_firmware *f = &c->firmware[i];
        Error *lerr = NULL;
        m->n_loads++;
        if (f->format == HUB_FW_ELF)
            r = hub_load_elf(f->path, ram_write, m, &m->loads[i], &lerr);
        else
            r = hub_load_raw(f->path, f->address, ram_write, m, &m->loads[i], &lerr);
        if (r < 0) {
            char *w = wheref(c, "firmware.%zu.file", i);
            error_setg(errp, "%s: %s", w, error_get_pretty(lerr));
            free(w);
            error_free(lerr);
            goto fail;
        }
        if (!have_entry && m->loads[i].has_entry) {
            m->reset_pc = m->loads[i].entry;
            have_entry = true;
        }
    }
    if (c->has_reset_pc)
        m->reset_pc = c->reset_pc;
    else if (!have_entry)
        m->reset_pc = c->ram[0].base;

    if (c->kernel && (r = load_kernel(m, errp)) < 0)
        goto fail;
    choose_rng_seed(m);
    m->boot.has_initrd = c->initrd != NULL;

    /* The DTB's size does not depend on device region sizes or on where the initrd goes: place it now (with
     * fw_dynamic_info right after it when there is a kernel), fill it in after the handshakes. */
    hub_dt_device_info *info = calloc(c->n_devices + 1, sizeof(*info));
    for (size_t i = 0; i < c->n_devices; i++)
        info[i].base = c->devices[i].dev.n_regions ? c->devices[i].dev.regions[0].base : 0;
    /* Each node a device names itself is sized for the longest name it can have: the tree only shrinks when
     * the devices have declared theirs, so the place chosen now stays right. */
    char placeholder[PLX_MAX_NAME + 1];
    memset(placeholder, 'x', sizeof(placeholder) - 1);
    placeholder[PLX_MAX_NAME] = 0;
    for (size_t i = 0; i < c->n_devices; i++) {
        size_t l = strlen(c->devices[i].dev.name);
        info[i].node = placeholder + PLX_MAX_NAME - (l > DT_NODE_NAME_MAX ? l : DT_NODE_NAME_MAX);
    }
    if ((r = hub_dtb_build(c, info, &m->boot, &m->dtb, &m->dtb_size, errp)) < 0) {
        free(info);
        goto fail;
    }
    for (size_t i = 0; i < c->n_devices; i++)
        info[i].node = NULL;
    size_t info_size = c->kernel ? FW_DYNAMIC_INFO_SIZE + 8 : 0;
    m->dtb_addr = hub_dtb_address(c, m->dtb_size + info_size);
    if (c->kernel)
        m->info_addr = (m->dtb_addr + m->dtb_size + 7) & ~7ULL;
    if (c->initrd && (r = load_initrd(m, errp)) < 0) {
        free(info);
        goto fail;
    }

    vclock_init(&m->clock);
    if (!make_dlog(m)) {
        error_setg(errp, "out of memory");
        free(info);
        r = -ENOMEM;
        goto fail;
    }
    if (m->opts.trace && (r = hub_trace_open(m->opts.trace, &m->trace, errp)) < 0) {
        free(info);
        goto fail;
    }
    void *obs_opaque;
    const hub_cpu_observer *obs = hub_observer_pair_init(&m->observers, hub_dlog_observer(m->dlog), m->dlog,
                                                         hub_trace_observer(m->trace), m->trace, &obs_opaque);
    hub_cpu_config cc = {
        .as = &m->as,
        .clock = &m->clock,
        .insns_per_ns = c->insns_per_ns,
        .wallclock = c->time_mode == HUB_TIME_WALLCLOCK,
        .idle_sleep = c->idle_mode == HUB_IDLE_SLEEP,
        .reset_pc = m->reset_pc,
        .a0 = 0,
        .a1 = m->dtb_addr,
        .a2 = m->info_addr,
        .service = service,
        .idle = idle,
        .irq_sync = irq_sync,
        .opaque = m,
        .debug_stop = debug_stop,
        .observer = obs,
        .observer_opaque = obs_opaque,
    };
    m->cpu = hub_cpu_new(&cc, &e);
    if (!m->cpu) {
        error_setg(errp, "%s: CPU: %s", c->path, e ? error_get_pretty(e) : "cannot create");
        error_free(e);
        free(info);
        r = -EINVAL;
        goto fail;
    }
    m->clint = hub_clint_new(m->cpu, &m->clock, c->timebase_hz);
    memory_region_add_subregion(&m->sysmem, c->clint_base, hub_clint_region(m->clint));
    m->clint_mapped = true;
    if (c->plic) {
        m->plic = hub_plic_new(m->cpu, c->plic_sources);
        memory_region_add_subregion(&m->sysmem, c->plic_base, hub_plic_region(m->plic));
        m->plic_mapped = true;
    }
    if (c->poweroff) {
        m->poweroff = hub_poweroff_new(m->cpu);
        memory_region_add_subregion(&m->sysmem, c->poweroff_base, hub_poweroff_region(m->poweroff));
        m->poweroff_mapped = true;
    }

    hub_devmgr_env env = {
        .sysmem = &m->sysmem,
        .as = &m->as,
        .clock = &m->clock,
        .ram = m->blocks,
        .n_ram = c->n_ram,
        .set_irq = set_irq,
        .irq_opaque = m,
        .log = dev_log,
        .log_opaque = m,
        .console_output = console_output,
        .console_opaque = m,
        .curve_secret = c->has_curve_secret ? c->curve_secret : NULL,
        .run_dir = m->opts.run_dir,
        .quantum_ns = c->quantum_ns,
        .charge = charge_cpu,
        .charge_opaque = m,
        .defer_access = defer_access,
        .defer_opaque = m,
        .event_log = m->opts.event_log,
        .ram_written = ram_written,
        .ram_written_opaque = m,
        .observer = hub_trace_devmgr_observer(m->trace),
        .observer_opaque = m->trace,
    };
    m->devmgr = hub_devmgr_new(&env, &e);
    if (!m->devmgr) {
        error_setg(errp, "%s: devices: %s", c->path, e ? error_get_pretty(e) : "cannot start");
        error_free(e);
        free(info);
        r = -EINVAL;
        goto fail;
    }
    if ((r = add_devices(m, errp)) < 0 || (r = check_map(m, info, errp)) < 0 || (r = debug_setup(m, errp)) < 0) {
        free(info);
        goto fail;
    }
    for (size_t i = 0; m->trace && i < c->n_devices; i++)
        hub_trace_device(m->trace, c->devices[i].dev.name, hub_device_pid(m->devs[i]));

    void *dtb;
    size_t dtb_size;
    r = hub_dtb_build(c, info, &m->boot, &dtb, &dtb_size, errp);
    free(info);
    if (r < 0)
        goto fail;
    if (dtb_size > m->dtb_size) {
        free(dtb);
        error_setg(errp, "%s: internal error: the device tree grew past its place", c->path);
        r = -EINVAL;
        goto fail;
    }
    m->dtb_size = dtb_size;     /* the place stays: what follows (fw_dynamic_info, the initrd) is placed */
    free(m->dtb);
    m->dtb = dtb;
    if ((r = place_dtb(m, errp)) < 0)
        goto fail;
    *out = m;
    return 0;
fail:
    hub_machine_free(m);
    return r;
}

int hub_machine_run(hub_machine *m, int *status, Error **errp)
{
    Error *e = NULL;
    clock_gettime(CLOCK_MONOTONIC, &m->t_start);
    m->next_console_check = 0;
    int r = hub_cpu_run(m->cpu, &e);
    clock_gettime(CLOCK_MONOTONIC, &m->t_end);
    hub_gdb_exited(m->gdb, r, r < 0);
    if (m->console) {
        hub_console_close(m->console);
        m->console = NULL;
    }
    if (r < 0) {
        char *regs = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&regs, &len);
        hub_cpu_trap_info t;
        if (f && hub_cpu_first_fault(m->cpu, &t))
            fprintf(f, "\nthe first fault that led there: %s %" PRIu64 " (%s) at pc 0x%" PRIx64 ", tval 0x%" PRIx64
                    ", taken from %c-mode to %c-mode", t.interrupt ? "interrupt" : "exception", t.cause,
                    hub_cause_name(t.interrupt, t.cause), t.epc, t.tval, "US?M"[t.from_priv & 3],
                    "US?M"[t.to_priv & 3]);
        if (f) {
            fprintf(f, "\nregisters:\n");
            hub_print_registers(m->cpu, f);
            fclose(f);
        }
        begin_line(m);
        error_setg(errp, "CPU stopped: %s%s", e ? error_get_pretty(e) : strerror(-r), regs ? regs : "");
        free(regs);
        error_free(e);
        return r;
    }
    if (m->quit && !m->ended_by) {
        begin_line(m);
        fprintf(stderr, "plexus: quit (Ctrl-A x)\n");
    }
    *status = r;
    return 0;
}

void hub_machine_dtb(const hub_machine *m, const void **dtb, size_t *size, uint64_t *addr)
{
    *dtb = m->dtb;
    *size = m->dtb_size;
    *addr = m->dtb_addr;
}

uint64_t hub_machine_reset_pc(const hub_machine *m)
{
    return m->reset_pc;
}

void hub_machine_print_stats(const hub_machine *m, FILE *f)
{
    hub_cpu_stats cs = { 0 };
    hub_devmgr_stats ds = { 0 };
    if (m->cpu)
        hub_cpu_get_stats(m->cpu, &cs);
    if (m->devmgr)
        hub_devmgr_get_stats(m->devmgr, &ds);
    struct timespec end = m->t_end;
    if (!end.tv_sec)
        clock_gettime(CLOCK_MONOTONIC, &end);
    double wall = (double)(end.tv_sec - m->t_start.tv_sec) + (double)(end.tv_nsec - m->t_start.tv_nsec) / 1e9;
    begin_line((void *)m);
    fprintf(f, "plexus stats:\n");
    fprintf(f, "  instructions       %" PRIu64 "\n", cs.instructions);
    fprintf(f, "  traps              %" PRIu64 "\n", cs.traps);
    fprintf(f, "  mmio reads         %" PRIu64 "\n", cs.mmio_reads);
    fprintf(f, "  mmio writes        %" PRIu64 "\n", cs.mmio_writes);
    fprintf(f, "  device round trips %" PRIu64 "\n", ds.sync_reads + ds.sync_writes);
    fprintf(f, "  sync reads         %" PRIu64 "\n", ds.sync_reads);
    fprintf(f, "  sync writes        %" PRIu64 "\n", ds.sync_writes);
    fprintf(f, "  posted writes      %" PRIu64 "\n", ds.posted_writes);
    fprintf(f, "  shadow reads       %" PRIu64 "\n", ds.shadow_reads);
    fprintf(f, "  irq events         %" PRIu64 "\n", ds.irq_events);
    fprintf(f, "  dma messages       %" PRIu64 "\n", ds.dma_messages);
    if (ds.dma_refused)
        fprintf(f, "  dma refused        %" PRIu64 "\n", ds.dma_refused);
    if (ds.grants)
        fprintf(f, "  lockstep grants    %" PRIu64 "\n", ds.grants);
    if (ds.syncs)
        fprintf(f, "  syncs              %" PRIu64 " (posted writes made complete before the guest looked)\n",
                ds.syncs);
    if (ds.dma_written)
        fprintf(f, "  dma written        %" PRIu64 " ranges reported, %" PRIu64 " pages of code dropped\n",
                ds.dma_written, cs.code_dropped);
    if (cs.mmio_deferred)
        fprintf(f, "  deferred accesses  %" PRIu64 " (made again after their device's restart)\n", cs.mmio_deferred);
    for (size_t i = 0; m->devs && i < m->cfg->n_devices; i++) {
        if (!m->devs[i])
            continue;
        hub_devmgr_stats d = { 0 };
        hub_device_get_stats(m->devs[i], &d);
        const char *ep = hub_device_endpoint(m->devs[i]);
        fprintf(f, "  device %-11s %s, round trips %" PRIu64 ", shadow reads %" PRIu64 ", posted writes %" PRIu64
                ", irq events %" PRIu64 ", dma messages %" PRIu64 "\n", m->cfg->devices[i].dev.name,
                ep && strcmp(ep, "ring") == 0 ? "ring" : "zeromq", d.sync_reads + d.sync_writes, d.shadow_reads,
                d.posted_writes, d.irq_events, d.dma_messages);
    }
    fprintf(f, "  wfi waits          %" PRIu64 "\n", cs.wfi_waits);
    fprintf(f, "  idle s             %.3f\n", (double)cs.idle_ns / 1e9);
    fprintf(f, "  virtual time ns    %" PRIu64 "\n", m->clock.now);
    fprintf(f, "  wall time s        %.3f\n", wall);
}

/* system_reset: the hart, the CLINT and the PLIC to their reset state, the firmware, kernel, initrd and device
 * tree loaded again, every device process asked to reset. RAM keeps its contents, as on QEMU. */
static void mon_reset(void *opaque, FILE *out)
{
    hub_machine *m = opaque;
    const hub_mconfig *c = m->cfg;
    Error *lerr = NULL;
    int r = 0;
    for (size_t i = 0; i < c->n_firmware && r >= 0; i++) {
        hub_load_result res = { 0 };
        const hub_mc_firmware *f = &c->firmware[i];
        r = f->format == HUB_FW_ELF ? hub_load_elf(f->path, ram_write, m, &res, &lerr)
                                    : hub_load_raw(f->path, f->address, ram_write, m, &res, &lerr);
        hub_load_result_clear(&res);
    }
    if (r >= 0 && c->kernel) {
        hub_load_result res = { 0 };
        r = c->kernel_elf ? hub_load_elf(c->kernel, ram_write, m, &res, &lerr)
                          : hub_load_raw(c->kernel, m->kernel_start, ram_write, m, &res, &lerr);
        hub_load_result_clear(&res);
    }
    if (r >= 0 && c->initrd) {
        hub_load_result res = { 0 };
        r = hub_load_raw(c->initrd, m->boot.initrd_start, ram_write, m, &res, &lerr);
        hub_load_result_clear(&res);
    }
    if (r >= 0)
        r = ram_write(m, m->dtb_addr, m->dtb, m->dtb_size);
    if (r >= 0 && m->info_addr)
        r = write_fw_dynamic_info(m);
    if (r < 0) {
        fprintf(out, "system_reset: cannot load the images again: %s\n", lerr ? error_get_pretty(lerr) : strerror(-r));
        error_free(lerr);
        return;
    }
    for (size_t i = 0; m->devs && i < c->n_devices; i++)
        if (m->devs[i] && hub_device_reset(m->devs[i]) < 0)
            fprintf(out, "system_reset: device %s did not take the reset (it failed)\n", c->devices[i].dev.name);
    if (m->clint)
        hub_clint_reset(m->clint);
    if (m->plic)
        hub_plic_reset(m->plic);
    hub_cpu_reset(m->cpu);
    fprintf(out, "system_reset: the hart restarts at 0x%" PRIx64 "\n", m->reset_pc);
}

static void mon_info_devices(void *opaque, FILE *out)
{
    hub_machine *m = opaque;
    if (!m->cfg->n_devices)
        fprintf(out, "no device processes\n");
    for (size_t i = 0; m->devs && i < m->cfg->n_devices; i++) {
        if (!m->devs[i])
            continue;
        const hub_device *dev = m->devs[i];
        const hub_device_config *mc = &m->cfg->devices[i].dev;
        hub_devmgr_stats d = { 0 };
        hub_device_get_stats(dev, &d);
        const char *ep = hub_device_endpoint(dev);
        int pid = hub_device_pid(dev);
        char state[48];
        if (hub_device_failed(dev))
            snprintf(state, sizeof(state), "failed");
        else if (pid > 0)
            snprintf(state, sizeof(state), "running (pid %d)", pid);
        else
            snprintf(state, sizeof(state), "%s", mc->attach ? "attached" : "running");
        fprintf(out, "%-10s %-7s %-18s restarts %u/%u%s\n"
                "           round trips %" PRIu64 " (reads %" PRIu64 ", writes %" PRIu64 "), shadow reads %" PRIu64
                ", posted writes %" PRIu64 ", irq events %" PRIu64 ", dma messages %" PRIu64 ", time grants %" PRIu64
                "\n", mc->name, ep && !strcmp(ep, "ring") ? "ring" : "zeromq", state, hub_device_restarts(dev),
                mc->max_restarts, mc->lockstep ? ", lockstep" : "", d.sync_reads + d.sync_writes, d.sync_reads,
                d.sync_writes, d.shadow_reads, d.posted_writes, d.irq_events, d.dma_messages, d.grants);
    }
}

void hub_machine_free(hub_machine *m)
{
    if (!m)
        return;
    if (m->console)
        hub_console_close(m->console);
    hub_gdb_close(m->gdb);
    hub_monitor_close(m->monitor);
    hub_devmgr_free(m->devmgr);
    if (m->ep >= 0)
        close(m->ep);
    free(m->devs);
    if (m->clint_mapped)
        memory_region_del_subregion(&m->sysmem, hub_clint_region(m->clint));
    if (m->plic_mapped)
        memory_region_del_subregion(&m->sysmem, hub_plic_region(m->plic));
    if (m->poweroff_mapped)
        memory_region_del_subregion(&m->sysmem, hub_poweroff_region(m->poweroff));
    hub_poweroff_free(m->poweroff);
    hub_plic_free(m->plic);
    hub_clint_free(m->clint);
    hub_cpu_free(m->cpu);
    hub_dlog_free(m->dlog);
    if (hub_trace_close(m->trace) < 0)
        fprintf(stderr, "plexus: the trace %s could not be written whole\n", m->opts.trace);
    for (size_t i = 0; i < m->n_ram_inited; i++) {
        memory_region_del_subregion(&m->sysmem, &m->ram[i]);
        memory_region_destroy(&m->ram[i]);
    }
    if (m->as_inited)
        address_space_destroy(&m->as);
    if (m->sysmem_inited)
        memory_region_destroy(&m->sysmem);
    for (size_t i = 0; i < m->n_loads; i++)
        hub_load_result_clear(&m->loads[i]);
    free(m->loads);
    hub_load_result_clear(&m->kernel_load);
    free(m->ram);
    free(m->blocks);
    free(m->dtb);
    free(m);
}
