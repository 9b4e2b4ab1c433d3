/*
 * plexus-cpu-bench: the CPU's speed next to Unicorn's own, measured in the same run.
 *   poll: guest reads of a byte-wide MMIO register (what U-Boot does to its UART's line status)
 *   mem:  a load/add/store loop over RAM (instructions per second)
 * The floor runs the same guest code on a bare Unicorn engine (empty MMIO callback, one uc_emu_start).
 * Figures are per CPU-second of this process, so a busy machine distorts them less.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unicorn/unicorn.h>

#include "cpu.h"
#include "trace.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (16ull << 20)

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t load(const char *name, uint8_t *dst)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", PROGS_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t n = fread(dst, 1, 1 << 20, f);
    fclose(f);
    return n;
}

static uint64_t dev_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0x60;
}

static void dev_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
}

static const MemoryRegionOps dev_ops = {
    .read = dev_read, .write = dev_write, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 1 },
    .impl = { .min_access_size = 1, .max_access_size = 1 },
};

/* Ours: returns CPU seconds; *insns and *mmio from the stats. @obs (may be NULL) observes the hart. */
static double run_hub(const char *prog, uint64_t n, uint64_t *insns, uint64_t *mmio, const hub_cpu_observer *obs,
                      void *obs_opaque)
{
    Error *err = NULL;
    vclock clock;
    vclock_init(&clock);
    MemoryRegion root, ram, dev;
    AddressSpace as;
    memory_region_init(&root, NULL, "system", UINT64_MAX);
    memory_region_init_ram(&ram, NULL, "ram", RAM_SIZE, &err);
    memory_region_add_subregion(&root, RAM_BASE, &ram);
    memory_region_init_io(&dev, NULL, &dev_ops, NULL, "dev", 0x1000);
    memory_region_add_subregion(&root, 0x10000000, &dev);
    address_space_init(&as, &root, "memory");
    load(prog, memory_region_get_ram_ptr(&ram));
    hub_cpu_config cfg = { .as = &as, .clock = &clock, .insns_per_ns = 0.1, .reset_pc = RAM_BASE, .a0 = n,
                           .observer = obs, .observer_opaque = obs_opaque };
    hub_cpu *cpu = hub_cpu_new(&cfg, &err);
    if (!cpu) {
        fprintf(stderr, "%s\n", error_get_pretty(err));
        exit(1);
    }
    hub_poweroff *p = hub_poweroff_new(cpu);
    memory_region_add_subregion(&root, 0x100000, hub_poweroff_region(p));
    double t0 = cpu_s();
    if (hub_cpu_run(cpu, &err) != 0) {
        fprintf(stderr, "run failed: %s\n", err ? error_get_pretty(err) : "status");
        exit(1);
    }
    double dt = cpu_s() - t0;
    hub_cpu_stats s;
    hub_cpu_get_stats(cpu, &s);
    *insns = s.instructions;
    *mmio = s.mmio_reads;
    memory_region_del_subregion(&root, hub_poweroff_region(p));
    hub_poweroff_free(p);
    hub_cpu_free(cpu);
    address_space_destroy(&as);
    memory_region_del_subregion(&root, &dev);
    memory_region_del_subregion(&root, &ram);
    memory_region_destroy(&dev);
    memory_region_destroy(&ram);
    memory_region_destroy(&root);
    return dt;
}

static uint64_t raw_read(uc_engine *uc, uint64_t off, unsigned size, void *opaque)
{
    ++*(uint64_t *)opaque;
    return 0x60;
}

static void raw_write(uc_engine *uc, uint64_t off, unsigned size, uint64_t v, void *opaque)
{
    uc_emu_stop(uc);    /* the finisher */
}

/* The floor: bare Unicorn, same program, one uc_emu_start to the poweroff store. */
static double run_raw(const char *prog, uint64_t n, uint64_t *mmio)
{
    uc_engine *uc;
    static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
    memset(ram, 0, sizeof(ram));
    load(prog, ram);
    uc_open(UC_ARCH_RISCV, UC_MODE_RISCV64, &uc);
    uc_ctl_set_cpu_model(uc, UC_CPU_RISCV64_SIFIVE_U54);
    uc_mem_map_ptr(uc, RAM_BASE, RAM_SIZE, UC_PROT_ALL, ram);
    *mmio = 0;
    uc_mmio_map(uc, 0x10000000, 0x1000, raw_read, mmio, raw_write, NULL);
    uc_mmio_map(uc, 0x100000, 0x1000, raw_read, mmio, raw_write, NULL);
    uc_reg_write(uc, UC_RISCV_REG_A0, &n);
    double t0 = cpu_s();
    uc_emu_start(uc, RAM_BASE, UINT64_MAX, 0, 0);
    double dt = cpu_s() - t0;
    uc_close(uc);
    return dt;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 20000000;
    uint64_t insns, mmio, raw_mmio;

    double t = run_hub("bench_poll.bin", n, &insns, &mmio, NULL, NULL);
    double f = run_raw("bench_poll.bin", n, &raw_mmio);
    printf("mmio poll:  %7.2f M reads/s   floor (bare Unicorn) %7.2f M reads/s   ratio %.2f\n",
           (double)mmio / t / 1e6, (double)raw_mmio / f / 1e6, ((double)mmio / t) / ((double)raw_mmio / f));

    /* the same poll with the --trace timeline observing (written to /dev/null): the cost when it is on */
    hub_trace *tr;
    Error *terr = NULL;
    if (hub_trace_open("/dev/null", &tr, &terr) < 0) {
        fprintf(stderr, "%s\n", error_get_pretty(terr));
        return 1;
    }
    double tt = run_hub("bench_poll.bin", n, &insns, &mmio, hub_trace_observer(tr), tr);
    hub_trace_close(tr);
    printf("mmio poll traced: %7.2f M reads/s   untraced (same run) %7.2f M reads/s   ratio %.2f\n",
           (double)mmio / tt / 1e6, (double)mmio / t / 1e6, t / tt);

    t = run_hub("bench_mem.bin", n, &insns, &mmio, NULL, NULL);
    f = run_raw("bench_mem.bin", n, &raw_mmio);
    double ours = (double)insns / t / 1e6, floor = (double)(n * 6) / f / 1e6;
    printf("ram loop:   %7.1f MIPS           floor (bare Unicorn) %7.1f MIPS           ratio %.2f\n", ours,
           floor, ours / floor);
    return 0;
}
