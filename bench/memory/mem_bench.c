/*
 * plexus-bench-memory [--quick] [lookups]: the cost of the memory API's hot paths with 16, 1k, 10k and 100k
 * regions, each figure next to a floor measured in the same run and the ratio.
 *   lookup (random address, address_space_translate)  vs  one dependent load at a random place in a buffer
 *                                                          of the same footprint as the flat view (the
 *                                                          latency of one cache miss at that size)
 *   4-byte RAM read  (address_space_ldl_le)             vs  4-byte load from a malloc'ed buffer
 *   4-byte I/O read  (address_space_ldl_le)             vs  direct indirect call to the same callback
 *   re-render after one change (set_address + commit)   vs  qsort of as many 64-bit keys as regions
 * Half the regions are I/O, half are 4 KiB aliases into one RAM region; they sit 8 KiB apart so that none
 * merge. Addresses are drawn at random over all regions (the worst case for the last-hit hint).
 * Times are this thread's CPU time (best of several runs), so that time spent preempted on a busy machine
 * does not count; floors are measured the same way.
 * Goal: lookup <= 50 ns at 10k regions.
 */
#define _GNU_SOURCE
#include <plexus/memory.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t xrand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t io_read(void *opaque, hwaddr addr, unsigned size)
{
    return addr + (uintptr_t)opaque;
}

static const MemoryRegionOps io_ops = {
    .read = io_read, .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 4 },
};

static volatile uint64_t sink;
static uint64_t (*volatile io_read_ptr)(void *, hwaddr, unsigned) = io_read;

#define SPACING 0x2000ull
#define BASE 0x100000000ull

/* Best of @reps runs of @fn over @n operations, in ns per operation. */
typedef void (*bench_fn)(unsigned long n);
static double best(bench_fn fn, unsigned long n, int reps)
{
    double b = 1e30;
    for (int r = 0; r < reps; r++) {
        uint64_t t = now_ns();
        fn(n);
        double v = (double)(now_ns() - t) / (double)n;
        if (v < b)
            b = v;
    }
    return b;
}

static AddressSpace as;
static unsigned nregions;
static hwaddr *addr_ram, *addr_io, *addr_any;
#define NADDR 4096u
static uint32_t *floor_buf;
static size_t floor_words;

static void b_lookup(unsigned long n)
{
    uint64_t acc = 0;
    for (unsigned long i = 0; i < n; i++) {
        hwaddr xlat, len = 4;
        memory_rcu_read_lock();
        MemoryRegion *mr = address_space_translate(&as, addr_any[i & (NADDR - 1)], &xlat, &len, false);
        memory_rcu_read_unlock();
        acc += xlat + (uintptr_t)mr;
    }
    sink = acc;
}

/* One dependent random load per operation: a walk along a random cycle through the buffer. */
static void b_floor_load(unsigned long n)
{
    uint32_t at = 0;
    for (unsigned long i = 0; i < n; i++)
        at = floor_buf[at];
    sink = at;
}

static void b_ram(unsigned long n)
{
    uint64_t acc = 0;
    for (unsigned long i = 0; i < n; i++)
        acc += address_space_ldl_le(&as, addr_ram[i & (NADDR - 1)], MEMTXATTRS_UNSPECIFIED, NULL);
    sink = acc;
}

static uint32_t *small_buf;
static void b_floor_ram(unsigned long n)
{
    uint64_t acc = 0;
    for (unsigned long i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, (uint8_t *)small_buf + ((addr_ram[i & (NADDR - 1)]) & 0xffc), 4);
        acc += v;
    }
    sink = acc;
}

static void b_io(unsigned long n)
{
    uint64_t acc = 0;
    for (unsigned long i = 0; i < n; i++)
        acc += address_space_ldl_le(&as, addr_io[i & (NADDR - 1)], MEMTXATTRS_UNSPECIFIED, NULL);
    sink = acc;
}

static void b_floor_io(unsigned long n)
{
    uint64_t acc = 0;
    for (unsigned long i = 0; i < n; i++)
        acc += io_read_ptr(NULL, addr_io[i & (NADDR - 1)] & 0xfff, 4);
    sink = acc;
}

static MemoryRegion *moved;
static unsigned long moves;
static void b_render(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++, moves++)
        memory_region_set_address(moved, (moves & 1) ? 0x1000 : 0x2000);
}

static uint64_t *keys, *keys_src;
static void b_floor_sort(unsigned long n);
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static void b_floor_sort(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        memcpy(keys, keys_src, nregions * sizeof(uint64_t));
        qsort(keys, nregions, sizeof(uint64_t), cmp_u64);
    }
    sink = keys[0];
}

static void row(const char *what, double v, double floor, const char *floor_name)
{
    printf("%8u  %-30s %10.1f ns   floor %10.1f ns (%s)   ratio %6.2f\n", nregions, what, v, floor, floor_name,
           floor > 0 ? v / floor : 0);
}

static void run(unsigned n, unsigned long iters, int reps)
{
    MemoryRegion *sys = calloc(1, sizeof(*sys)), *ram = calloc(1, sizeof(*ram));
    MemoryRegion *regs = calloc(n + 1, sizeof(*regs));
    nregions = n;
    memory_region_init(sys, NULL, "system", UINT64_MAX);
    memory_region_init_ram(ram, NULL, "backing", 0x10000, &error_abort);
    memset(memory_region_get_ram_ptr(ram), 0x5a, 0x10000);

    memory_region_transaction_begin();
    for (unsigned i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "r%u", i);
        if (i & 1)
            memory_region_init_alias(&regs[i], NULL, name, ram, (i * 0x1000ull) & 0xf000, 0x1000);
        else
            memory_region_init_io(&regs[i], NULL, &io_ops, (void *)(uintptr_t)i, name, 0x1000);
        memory_region_add_subregion(sys, BASE + i * SPACING, &regs[i]);
    }
    /* the region moved by the re-render figure: below everything else */
    memory_region_init_io(&regs[n], NULL, &io_ops, NULL, "moved", 0x100);
    memory_region_add_subregion(sys, 0x1000, &regs[n]);
    moved = &regs[n];
    address_space_init(&as, sys, "bench");
    memory_region_transaction_commit();

    for (unsigned k = 0; k < NADDR; k++) {
        unsigned i = (unsigned)(xrand() % n);
        unsigned r = (i | 1) < n ? (i | 1) : (i & ~1u), io = i & ~1u;
        hwaddr off = (xrand() % 0x400) * 4;
        addr_any[k] = BASE + i * SPACING + off;
        addr_ram[k] = BASE + r * SPACING + off;
        addr_io[k] = BASE + io * SPACING + off;
    }
    /* sanity: the paths return what they should */
    if (ldl_le_phys(&as, addr_ram[0]) != 0x5a5a5a5a || ldl_le_phys(&as, addr_io[0]) != (addr_io[0] - BASE) / SPACING + (addr_io[0] & 0xfff)) {
        fprintf(stderr, "bench: wrong values read\n");
        exit(1);
    }

    double lookup = best(b_lookup, iters, reps), lookup_floor = best(b_floor_load, iters, reps);
    row("lookup (random address)", lookup, lookup_floor, "dependent random load");
    double r = best(b_ram, iters, reps), rf = best(b_floor_ram, iters, reps);
    row("4-byte RAM read", r, rf, "load from malloc buffer");
    double io = best(b_io, iters, reps), iof = best(b_floor_io, iters, reps);
    row("4-byte I/O read", io, iof, "indirect call");

    unsigned long changes = n >= 100000 ? 5 : n >= 10000 ? 20 : 200;
    if (iters < 100000)
        changes = 2;
    keys = malloc(n * sizeof(uint64_t));
    keys_src = malloc(n * sizeof(uint64_t));
    for (unsigned i = 0; i < n; i++)
        keys_src[i] = xrand();
    double rr = best(b_render, changes, reps > 3 ? 3 : reps), rrf = best(b_floor_sort, changes, reps > 3 ? 3 : reps);
    printf("%8u  %-30s %10.1f us   floor %10.1f us (%s)   ratio %6.2f\n", n, "re-render after one change",
           rr / 1000, rrf / 1000, "qsort of n keys", rr / rrf);
    free(keys);
    free(keys_src);

    address_space_destroy(&as);
    memory_region_transaction_begin();
    for (unsigned i = 0; i <= n; i++)
        memory_region_del_subregion(sys, &regs[i]);
    memory_region_transaction_commit();
    for (unsigned i = 0; i <= n; i++)
        memory_region_destroy(&regs[i]);
    memory_region_destroy(ram);
    memory_region_destroy(sys);
    free(regs);
    free(ram);
    free(sys);
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    unsigned long iters = quick ? 1000 : 2000000;
    if (argc > 1 && !quick)
        iters = strtoul(argv[1], NULL, 0);
    int reps = quick ? 1 : 5;
    addr_ram = malloc(NADDR * sizeof(hwaddr));
    addr_io = malloc(NADDR * sizeof(hwaddr));
    addr_any = malloc(NADDR * sizeof(hwaddr));
    small_buf = malloc(0x1000);
    memset(small_buf, 0x5a, 0x1000);
    printf("%8s  %-30s %13s   %s\n", "regions", "figure", "cost", "floor (same run) and ratio");
    static const unsigned sizes[] = { 16, 1000, 10000, 100000 };
    for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        /* the lookup floor touches a buffer as large as the flat view's search array and ranges */
        floor_words = (size_t)sizes[s] * 80 / 4;
        floor_buf = malloc(floor_words * 4);
        /* a single random cycle over all words (Sattolo's shuffle) */
        for (size_t i = 0; i < floor_words; i++)
            floor_buf[i] = (uint32_t)i;
        for (size_t i = floor_words - 1; i > 0; i--) {
            size_t j = (size_t)(xrand() % i);
            uint32_t t = floor_buf[i];
            floor_buf[i] = floor_buf[j];
            floor_buf[j] = t;
        }
        run(sizes[s], iters, reps);
        free(floor_buf);
    }
    free(addr_ram);
    free(addr_io);
    free(addr_any);
    free(small_buf);
    return 0;
}
