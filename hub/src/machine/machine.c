/* The assembled machine: memory map, RAM, firmware, CPU and controllers, device processes, DTB, main loop. */
#define _GNU_SOURCE
#include "machine.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
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

#define CONSOLE_CHECK_NS 2000000ULL     /* look at the keyboard every 2 ms of host time */
#define IDLE_SLICE_MS 20

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
    void *dtb;
    size_t dtb_size;
    uint64_t dtb_addr;
    uint64_t reset_pc;
    uint64_t next_console_check;
    volatile sig_atomic_t stop_requested;
    volatile sig_atomic_t stop_status;
    bool quit;
    struct timespec t_start, t_end;
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

static void set_irq(void *opaque, unsigned irq, int level)
{
    hub_machine *m = opaque;
    hub_plic_set_irq(m->plic, irq, level);
}

static void dev_log(void *opaque, const char *device, int level, const char *msg)
{
    hub_machine *m = opaque;
    if (level > PLX_LOG_WARNING && !m->opts.verbose)     /* warnings and worse unless verbose */
        return;
    const char *ln = plx_log_level_name(level);
    if (m->console)
        fprintf(stderr, "\r");
    fprintf(stderr, "plexus: %s: %s: %s\n", device ? device : "devices", ln, msg);
}

static void service_console(hub_machine *m)
{
    switch (hub_console_service(m->console)) {
    case HUB_CONSOLE_QUIT:
        m->quit = true;
        hub_cpu_stop(m->cpu, HUB_CONSOLE_QUIT_STATUS);
        break;
    case HUB_CONSOLE_STATS:
        hub_machine_print_stats(m, stderr);
        break;
    case HUB_CONSOLE_NONE:
        break;
    }
}

static void service(void *opaque)
{
    hub_machine *m = opaque;
    hub_devmgr_poll(m->devmgr, 0);
    if (m->console) {
        uint64_t now = mono_ns();
        if (now >= m->next_console_check) {
            m->next_console_check = now + CONSOLE_CHECK_NS;
            service_console(m);
        }
    }
    if (m->stop_requested)
        hub_cpu_stop(m->cpu, m->stop_status);
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

static void idle(void *opaque, int timeout_ms)
{
    hub_machine *m = opaque;
    if (m->console)
        service_console(m);
    int t = timeout_ms < 0 || timeout_ms > IDLE_SLICE_MS ? IDLE_SLICE_MS : timeout_ms;
    hub_devmgr_poll(m->devmgr, t);
    if (m->stop_requested)
        hub_cpu_stop(m->cpu, m->stop_status);
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

static int add_devices(hub_machine *m, Error **errp)
{
    const hub_mconfig *c = m->cfg;
    Error *e = NULL;
    m->devs = calloc(c->n_devices ? c->n_devices : 1, sizeof(*m->devs));
    int console_fd = -1;
    if (m->opts.console && c->console >= 0) {
        m->console = hub_console_open(STDIN_FILENO, &console_fd, errp);
        if (!m->console)
            return -EIO;
    }
    for (size_t i = 0; i < c->n_devices; i++) {
        const hub_device_config *d = &c->devices[i].dev;
        hub_device_config dc = *d;
        dc.stdin_fd = (int)i == c->console ? console_fd : -1;
        if (d->attach && !d->endpoint)
            fprintf(stderr, "plexus: waiting %u ms for device '%s' to attach: start it with "
                    "--plexus-attach=%s --plexus-name=%s\n", d->attach_timeout_ms ? d->attach_timeout_ms : 10000,
                    d->name, hub_devmgr_attach_socket(m->devmgr), d->name);
        else if (d->attach)
            fprintf(stderr, "plexus: waiting %u ms for device '%s' to connect to %s\n",
                    d->attach_timeout_ms ? d->attach_timeout_ms : 10000, d->name, d->endpoint);
        m->devs[i] = hub_devmgr_add(m->devmgr, &dc, &e);
        if (!m->devs[i]) {
            char *w = wheref(c, "devices.%zu.name", i);
            error_setg(errp, "%s: device '%s' did not start: %s", w, d->name, e ? error_get_pretty(e) : "?");
            free(w);
            error_free(e);
            if (console_fd >= 0)
                close(console_fd);
            return -EIO;
        }
    }
    if (console_fd >= 0)
        close(console_fd);
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

static int place_dtb(hub_machine *m, Error **errp)
{
    const hub_mconfig *c = m->cfg;
    const hub_mc_ram *r0 = &c->ram[0];
    if (m->dtb_addr < r0->base || m->dtb_addr + m->dtb_size > r0->base + r0->size) {
        error_setg(errp, "%s: the device tree (%zu bytes) does not fit at the top of RAM '%s'", c->path,
                         m->dtb_size, r0->name);
        return -ENOSPC;
    }
    for (size_t i = 0; i < m->n_loads; i++)
        for (size_t j = 0; j < m->loads[i].n_ranges; j++) {
            const hub_load_range *lr = &m->loads[i].ranges[j];
            if (lr->start < m->dtb_addr + m->dtb_size && m->dtb_addr < lr->end) {
                char *w = wheref(c, "firmware.%zu.file", i);
                error_setg(errp, "%s: firmware [0x%" PRIx64 "-0x%" PRIx64 "] overlaps the device tree at "
                                 "[0x%" PRIx64 "-0x%" PRIx64 "] (top of RAM '%s'): make RAM larger",
                                 w, lr->start, lr->end - 1, m->dtb_addr, m->dtb_addr + m->dtb_size - 1, r0->name);
                free(w);
                return -ENOSPC;
            }
        }
    return ram_write(m, m->dtb_addr, m->dtb, m->dtb_size);
}

int hub_machine_new(const hub_mconfig *c, const hub_machine_opts *o, hub_machine **out, Error **errp)
{
    hub_machine *m = calloc(1, sizeof(*m));
    m->cfg = c;
    if (o)
        m->opts = *o;
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

    /* The DTB's size does not depend on device region sizes: place it now, fill it in after the handshakes. */
    hub_dt_device_info *info = calloc(c->n_devices + 1, sizeof(*info));
    for (size_t i = 0; i < c->n_devices; i++)
        info[i].base = c->devices[i].dev.n_regions ? c->devices[i].dev.regions[0].base : 0;
    if ((r = hub_dtb_build(c, info, &m->dtb, &m->dtb_size, errp)) < 0) {
        free(info);
        goto fail;
    }
    m->dtb_addr = hub_dtb_address(c, m->dtb_size);

    vclock_init(&m->clock);
    hub_cpu_config cc = {
        .as = &m->as,
        .clock = &m->clock,
        .insns_per_ns = c->insns_per_ns,
        .wallclock = c->time_mode == HUB_TIME_WALLCLOCK,
        .reset_pc = m->reset_pc,
        .a0 = 0,
        .a1 = m->dtb_addr,
        .service = service,
        .idle = idle,
        .opaque = m,
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
        .run_dir = m->opts.run_dir,
        .quantum_ns = c->quantum_ns,
        .charge = charge_cpu,
        .charge_opaque = m,
        .defer_access = defer_access,
        .defer_opaque = m,
        .event_log = m->opts.event_log,
    };
    m->devmgr = hub_devmgr_new(&env, &e);
    if (!m->devmgr) {
        error_setg(errp, "%s: devices: %s", c->path, e ? error_get_pretty(e) : "cannot start");
        error_free(e);
        free(info);
        r = -EINVAL;
        goto fail;
    }
    if ((r = add_devices(m, errp)) < 0 || (r = check_map(m, info, errp)) < 0) {
        free(info);
        goto fail;
    }

    void *dtb;
    size_t dtb_size;
    r = hub_dtb_build(c, info, &dtb, &dtb_size, errp);
    free(info);
    if (r < 0)
        goto fail;
    if (dtb_size != m->dtb_size) {
        /* the devices named their nodes: the tree's size, and perhaps its place, changed */
        m->dtb_size = dtb_size;
        m->dtb_addr = hub_dtb_address(c, dtb_size);
        hub_cpu_set_a1(m->cpu, m->dtb_addr);
    }
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
    if (m->console) {
        hub_console_close(m->console);
        m->console = NULL;
    }
    if (r < 0) {
        error_setg(errp, "CPU stopped: %s", e ? error_get_pretty(e) : strerror(-r));
        error_free(e);
        return r;
    }
    if (m->quit)
        fprintf(stderr, "\nplexus: quit (Ctrl-A x)\n");
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
    fprintf(f, "  virtual time ns    %" PRIu64 "\n", vclock_now(&m->clock));
    fprintf(f, "  wall time s        %.3f\n", wall);
}

void hub_machine_free(hub_machine *m)
{
    if (!m)
        return;
    if (m->console)
        hub_console_close(m->console);
    hub_devmgr_free(m->devmgr);
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
    free(m->ram);
    free(m->blocks);
    free(m->dtb);
    free(m);
}
