/* The U-Boot test machine: see uboot_machine.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uboot_machine.h"
#include <errno.h>

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (128ull << 20)
#define UART_BASE 0x10000000ull

typedef struct uart {
    uint8_t ier, lcr, mcr, scr, dll, dlm;
    const char *input;      /* bytes waiting to be read */
} uart;

typedef struct run {
    uart u;
    hub_cpu *cpu;
    const uboot_opts *o;
    uboot_result *res;
    size_t nout;
    double start;
} run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t uart_read(void *opaque, hwaddr addr, unsigned size)
{
    run *r = opaque;
    uart *u = &r->u;
    bool dlab = u->lcr & 0x80;
    switch (addr) {
    case 0:
        if (dlab)
            return u->dll;
        if (u->input && *u->input)
            return (uint8_t)*u->input++;
        return 0;
    case 1: return dlab ? u->dlm : u->ier;
    case 2: return 0xc1;                       /* FIFOs on, no interrupt pending */
    case 3: return u->lcr;
    case 4: return u->mcr;
    case 5: return 0x60 | (u->input && *u->input ? 1 : 0);   /* THR empty, transmitter idle, data ready */
    case 6: return 0xb0;
    default: return u->scr;
    }
}

static void uart_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    run *r = opaque;
    uart *u = &r->u;
    bool dlab = u->lcr & 0x80;
    uint8_t v = (uint8_t)data;
    switch (addr) {
    case 0:
        if (dlab) {
            u->dll = v;
        } else {
            if (r->o->echo)
                fputc(v, stdout);
            if (r->nout < sizeof(r->res->out) - 1)
                r->res->out[r->nout++] = (char)v, r->res->out[r->nout] = 0;
        }
        break;
    case 1: if (dlab) u->dlm = v; else u->ier = v; break;
    case 3: u->lcr = v; break;
    case 4: u->mcr = v; break;
    case 7: u->scr = v; break;
    default: break;
    }
}

static const MemoryRegionOps uart_ops = {
    .read = uart_read, .write = uart_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 1 },
    .impl = { .min_access_size = 1, .max_access_size = 1 },
};

/* What QEMU virt has but this run does not model: reads as @opaque's byte pattern, writes ignored. */
static uint64_t fill_read(void *opaque, hwaddr addr, unsigned size)
{
    uint64_t v = (uintptr_t)opaque ? UINT64_MAX : 0;
    return size < 8 ? v & ((1ull << (8 * size)) - 1) : v;
}

static void fill_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
}

static const MemoryRegionOps fill_ops = {
    .read = fill_read, .write = fill_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

static void service(void *opaque)
{
    run *r = opaque;
    const char *out = r->res->out;
    if (r->o->stop_at) {
        if (strstr(out, r->o->stop_at)) {
            r->res->stage = 3;
            hub_cpu_stop(r->cpu, 0);
        }
    } else if (r->res->stage == 0 && !r->o->no_key && strstr(out, "autoboot")) {
        r->u.input = " ";
        r->res->stage = 1;
    } else if (r->res->stage == 1 && strstr(out, "=> ")) {
        r->u.input = "version\r";
        r->res->stage = 2;
    } else if (r->res->stage == 2 && strstr(strstr(out, "=> ") + 3, "=> ")) {
        r->res->stage = 3;
        hub_cpu_stop(r->cpu, 0);
    }
    if (now_s() - r->start > r->o->limit_s)
        hub_cpu_stop(r->cpu, 2);
}

static void idle(void *opaque, int timeout_ms)
{
    struct timespec ts = { 0, (long)timeout_ms * 1000000L };
    nanosleep(&ts, NULL);
}

static int load(const char *path, uint8_t *dst, size_t max, uboot_result *res)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(res->error, sizeof(res->error), "%s: %s", path, strerror(e));
        return -e;
    }
    size_t n = fread(dst, 1, max, f);
    fclose(f);
    if (!n) {
        snprintf(res->error, sizeof(res->error), "%s is empty", path);
        return -EINVAL;
    }
    return 0;
}

int uboot_boot(const uboot_opts *o, uboot_result *res)
{
    static run r;
    memset(res, 0, sizeof(*res));
    memset(&r, 0, sizeof(r));
    r.o = o;
    r.res = res;
    bool wall = o->wallclock, bare = o->bare;
    int ret = 0;
    Error *err = NULL;
    vclock clock;
    vclock_init(&clock);

    MemoryRegion root, ram, uartmr, low, ecam;
    AddressSpace as;
    memory_region_init(&root, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&ram, NULL, "ram", RAM_SIZE, &err);
    if (err) {
        snprintf(res->error, sizeof(res->error), "%s", error_get_pretty(err));
        error_free(err);
        return -ENOMEM;
    }
    memory_region_add_subregion(&root, RAM_BASE, &ram);
    memory_region_init_io(&uartmr, NULL, &uart_ops, &r, "uart", 0x100);
    memory_region_add_subregion(&root, UART_BASE, &uartmr);
    memory_region_init_io(&low, NULL, &fill_ops, (void *)0, "unmodelled", 0x80000000ull);
    if (!bare)
        memory_region_add_subregion_overlap(&root, 0, &low, -1);
    memory_region_init_io(&ecam, NULL, &fill_ops, (void *)1, "pcie-ecam", 0x10000000ull);
    if (!bare)
        memory_region_add_subregion(&root, 0x30000000, &ecam);
    address_space_init(&as, &root, "memory");

    uint8_t *ramp = memory_region_get_ram_ptr(&ram);
    uint64_t dtb = RAM_BASE + RAM_SIZE - (2 << 20);
    hub_clint *clint = NULL;
    hub_plic *plic = NULL;
    hub_poweroff *poff = NULL;
    if ((ret = load(o->uboot_bin, ramp, RAM_SIZE / 2, res)) < 0 ||
        (ret = load(o->dtb, ramp + (dtb - RAM_BASE), 2 << 20, res)) < 0)
        goto out;

    hub_cpu_config cfg = {
        .as = &as, .clock = &clock, .insns_per_ns = 0.1, .wallclock = wall, .reset_pc = RAM_BASE,
        .a0 = 0, .a1 = dtb, .service = service, .idle = idle, .opaque = &r,
    };
    r.cpu = hub_cpu_new(&cfg, &err);
    if (!r.cpu) {
        snprintf(res->error, sizeof(res->error), "%s", error_get_pretty(err));
        ret = -EINVAL;
        goto out;
    }
    clint = hub_clint_new(r.cpu, &clock, 10000000);
    plic = hub_plic_new(r.cpu, 96);
    poff = hub_poweroff_new(r.cpu);
    memory_region_add_subregion(&root, 0x2000000, hub_clint_region(clint));
    memory_region_add_subregion(&root, 0xc000000, hub_plic_region(plic));
    memory_region_add_subregion(&root, 0x100000, hub_poweroff_region(poff));

    r.start = now_s();
    res->status = hub_cpu_run(r.cpu, &err);
    res->wall_s = now_s() - r.start;
    res->virtual_s = (double)vclock_now(&clock) * 1e-9;
    hub_cpu_get_stats(r.cpu, &res->stats);
    if (err)
        snprintf(res->error, sizeof(res->error), "%s", error_get_pretty(err));
    error_free(err);

out:
    memory_region_transaction_begin();
    if (clint)
        memory_region_del_subregion(&root, hub_clint_region(clint));
    if (plic)
        memory_region_del_subregion(&root, hub_plic_region(plic));
    if (poff)
        memory_region_del_subregion(&root, hub_poweroff_region(poff));
    memory_region_transaction_commit();
    hub_clint_free(clint);
    hub_plic_free(plic);
    hub_poweroff_free(poff);
    hub_cpu_free(r.cpu);
    address_space_destroy(&as);
    MemoryRegion *subs[] = { &ram, &uartmr, &low, &ecam };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (memory_region_is_mapped(subs[i]))
            memory_region_del_subregion(&root, subs[i]);
        memory_region_destroy(subs[i]);
    }
    memory_region_destroy(&root);
    return ret;
}
