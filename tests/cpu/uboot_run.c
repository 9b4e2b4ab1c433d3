/*
 * plexus-cpu-uboot: boot Debian's U-Boot (qemu-riscv64, M-mode) on the hub's CPU in QEMU virt's map with an
 * in-process 16550 console, to see how far real firmware gets and how fast.
 *
 *   plexus-cpu-uboot <u-boot.bin> <virt.dtb> [seconds] [--wallclock] [--no-key]
 *   (qemu-system-riscv64 -M virt,dumpdtb=virt.dtb -m 128M makes the device tree)
 *
 * When U-Boot offers to stop autoboot, a key is typed; at the prompt "version" is typed, then the run ends.
 * With --no-key nothing is typed: U-Boot counts down, tries its boot commands and waits at its prompt until
 * the time limit (wall seconds, default 60).
 * Prints the console, then instructions, MMIO accesses and their rates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu.h"

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
    char out[1 << 16];
    size_t nout;
    int stage;
    bool no_key;
    double start, limit;
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
            fputc(v, stdout);
            if (r->nout < sizeof(r->out) - 1)
                r->out[r->nout++] = (char)v, r->out[r->nout] = 0;
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
    if (r->stage == 0 && !r->no_key && strstr(r->out, "autoboot")) {
        r->u.input = " ";
        r->stage = 1;
    } else if (r->stage == 1 && strstr(r->out, "=> ")) {
        r->u.input = "version\r";
        r->stage = 2;
    } else if (r->stage == 2 && strstr(strstr(r->out, "=> ") + 3, "=> ")) {
        r->stage = 3;
        hub_cpu_stop(r->cpu, 0);
    }
    if (now_s() - r->start > r->limit)
        hub_cpu_stop(r->cpu, 2);
}

static void idle(void *opaque, int timeout_ms)
{
    struct timespec ts = { 0, (long)timeout_ms * 1000000L };
    nanosleep(&ts, NULL);
}

static size_t load(const char *path, uint8_t *dst, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t n = fread(dst, 1, max, f);
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s u-boot.bin virt.dtb [seconds] [--wallclock]\n", argv[0]);
        return 1;
    }
    static run r;
    bool wall = false;
    r.limit = 60;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--wallclock"))
            wall = true;
        else if (!strcmp(argv[i], "--no-key"))
            r.no_key = true;
        else
            r.limit = atof(argv[i]);
    }
    Error *err = NULL;
    vclock clock;
    vclock_init(&clock);

    MemoryRegion root, ram, uartmr, low, ecam;
    AddressSpace as;
    memory_region_init(&root, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&ram, NULL, "ram", RAM_SIZE, &err);
    if (err) {
        fprintf(stderr, "%s\n", error_get_pretty(err));
        return 1;
    }
    memory_region_add_subregion(&root, RAM_BASE, &ram);
    memory_region_init_io(&uartmr, NULL, &uart_ops, &r, "uart", 0x100);
    memory_region_add_subregion(&root, UART_BASE, &uartmr);
    memory_region_init_io(&low, NULL, &fill_ops, (void *)0, "unmodelled", 0x80000000ull);
    memory_region_add_subregion_overlap(&root, 0, &low, -1);
    memory_region_init_io(&ecam, NULL, &fill_ops, (void *)1, "pcie-ecam", 0x10000000ull);
    memory_region_add_subregion(&root, 0x30000000, &ecam);
    address_space_init(&as, &root, "memory");

    uint8_t *ramp = memory_region_get_ram_ptr(&ram);
    load(argv[1], ramp, RAM_SIZE / 2);
    uint64_t dtb = RAM_BASE + RAM_SIZE - (2 << 20);
    load(argv[2], ramp + (dtb - RAM_BASE), 2 << 20);

    hub_cpu_config cfg = {
        .as = &as, .clock = &clock, .insns_per_ns = 0.1, .wallclock = wall, .reset_pc = RAM_BASE,
        .a0 = 0, .a1 = dtb, .service = service, .idle = idle, .opaque = &r,
    };
    r.cpu = hub_cpu_new(&cfg, &err);
    if (!r.cpu) {
        fprintf(stderr, "%s\n", error_get_pretty(err));
        return 1;
    }
    hub_clint *clint = hub_clint_new(r.cpu, &clock, 10000000);
    hub_plic *plic = hub_plic_new(r.cpu, 96);
    hub_poweroff *poff = hub_poweroff_new(r.cpu);
    memory_region_add_subregion(&root, 0x2000000, hub_clint_region(clint));
    memory_region_add_subregion(&root, 0xc000000, hub_plic_region(plic));
    memory_region_add_subregion(&root, 0x100000, hub_poweroff_region(poff));

    r.start = now_s();
    int st = hub_cpu_run(r.cpu, &err);
    double dt = now_s() - r.start;
    hub_cpu_stats s;
    hub_cpu_get_stats(r.cpu, &s);
    printf("\n---\nstatus %d%s%s, stage %d (3 = prompt answered)\n", st, err ? ": " : "",
           err ? error_get_pretty(err) : "", r.stage);
    printf("wall %.2f s, virtual %.3f s, instructions %.3g (%.1f MIPS), traps %lu\n", dt,
           (double)vclock_now(&clock) * 1e-9, (double)s.instructions, (double)s.instructions / dt / 1e6,
           (unsigned long)s.traps);
    printf("mmio reads %lu (%.2f M/s), writes %lu, errors %lu, slices %lu, wfi waits %lu\n",
           (unsigned long)s.mmio_reads, (double)s.mmio_reads / dt / 1e6, (unsigned long)s.mmio_writes,
           (unsigned long)s.mmio_errors, (unsigned long)s.slices, (unsigned long)s.wfi_waits);
    error_free(err);

    memory_region_transaction_begin();
    memory_region_del_subregion(&root, hub_clint_region(clint));
    memory_region_del_subregion(&root, hub_plic_region(plic));
    memory_region_del_subregion(&root, hub_poweroff_region(poff));
    memory_region_transaction_commit();
    hub_clint_free(clint);
    hub_plic_free(plic);
    hub_poweroff_free(poff);
    hub_cpu_free(r.cpu);
    address_space_destroy(&as);
    MemoryRegion *subs[] = { &ram, &uartmr, &low, &ecam };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        memory_region_del_subregion(&root, subs[i]);
        memory_region_destroy(subs[i]);
    }
    memory_region_destroy(&root);
    return st == 0 ? 0 : 1;
}
