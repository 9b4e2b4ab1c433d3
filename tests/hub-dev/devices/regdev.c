/*
 * Test device for the hub's device layer, built on the SDK. Regions:
 *   0 "regs"   IO, 0x100, impl 4 bytes, valid 1..8: scratch u32 registers plus command registers (below).
 *   1 "posted" POSTED, 0x100, impl 4: writes at 0x0 add to a sum and count; reads 0x0 sum, 0x4 count;
 *              a write at 0x8 pulses irq0.
 *   2 "shadow" SHADOW, 0x100, valid 1..4, impl 4, read-through 0x80..0x83: 4-byte writes to 0x00..0x3f store
 *              the value in the shadow page; 0x40 holds the number of writes; a read of 0x80 counts read
 *              callbacks.
 *   3 "be"     IO, big-endian, 0x10, impl 4: 0x0 reads 0x11223344.
 * IRQ lines "irq0", "irq1". Property "ident" (default 0x1234).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <unistd.h>

#include <plexus/sdk.h>

enum {
    R_SCRATCH = 0x00,   /* 0x00..0x7f */
    R_WRITES = 0x80,    /* number of write callbacks */
    R_LASTSIZE = 0x84,  /* size of the last write callback */
    R_DMA_ADDR = 0x88,
    R_DMA_LEN = 0x90,
    R_DMA_CMD = 0x94,   /* 1: fill [addr,len) with i ^ 0x5a; 2: sum [addr,len) into R_DMA_RES */
    R_DMA_RES = 0x98,   /* result of cmd 2, or 0xdead0000 | -errno */
    R_IRQ = 0x9c,       /* write v: irq0 = v & 1; v == 2: pulse irq1 */
    R_DMA_READ = 0xa0,  /* read: sum of R_DMA_LEN bytes at R_DMA_ADDR, by DMA during the read */
    R_HANG = 0xa4,      /* read: never answers */
    R_TIMER = 0xa8,     /* write v: arm the timer at now + v */
    R_FIRES = 0xac,     /* timer fires so far (also at 0x3c of the shadow region) */
    R_FIRE_NOW = 0xb0,  /* low 32 bits of plx_now() at the last fire */
    R_IDENT = 0xb4,     /* property ident */
    R_READS = 0xb8,     /* number of read callbacks of "regs" */
    R_SOCKET = 0xbc,    /* read: open and close an AF_INET socket; 1 if that worked */
    R_ABORT = 0xc0,     /* read: abort() while answering */
    R_SEGV = 0xc4,      /* write: a segmentation fault while receiving the write */
    R_TRUNCATE = 0xc8,  /* read: ftruncate the mapped guest RAM's memfd to 0; errno (0 if it worked) */
    R_EXEC_MAP = 0xcc,  /* read: map an anonymous page PROT_READ|PROT_EXEC; 1 if that worked */
    R_FD_OPEN = 0xd0,   /* write n: remember descriptor n; read: 1 if descriptor n is open */
    R_TIMER_DIE = 0xd4, /* write v: arm the timer at now + v; its callback then kills the process (SIGKILL) */
    R_DECODE_ERR = 0xd8,/* read or write: answered with a decode error */
    R_SLAVE_ERR = 0xdc, /* read or write: answered with an error */
    R_WINDOW = 0xe0,    /* read: the mapped grant holding R_DMA_ADDR: its size in KiB (| 1 << 31 if read-only), 0 if
                           there is none, 0xbad if its pointer is not plx_dma_map()'s */
};

struct st {
    plx_dev *dev;
    uint32_t scratch[32];
    uint32_t writes, last_size, reads;
    uint32_t probe_fd;
    uint64_t dma_addr;
    uint32_t dma_len, dma_res;
    uint64_t ident;
    plx_timer *timer;
    uint32_t fires, fire_now;
    bool die_on_fire;
    uint64_t sum;
    uint32_t count;
    uint32_t shadow_writes, rt_reads;
    uint32_t shadow_regs[0x44 / 4];   /* what the shadow page shows, for reads without a page (tcp) */
};

static uint32_t dma_sum(struct st *s, int *err)
{
    uint8_t *buf = malloc(s->dma_len ? s->dma_len : 1);
    uint32_t sum = 0;
    *err = buf ? plx_dma_read(s->dev, s->dma_addr, buf, s->dma_len) : -12;
    if (*err == 0)
        for (uint32_t i = 0; i < s->dma_len; i++)
            sum += buf[i];
    free(buf);
    return sum;
}

/* The guest RAM mapping (a memfd the hub created) reopened through /proc and cut to 0 bytes: the hub's seals
 * must refuse it. Returns the errno, 0 if the cut went through, or 0xffff if no RAM is mapped. */
static uint32_t truncate_ram(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    uint32_t res = 0xffff;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (!strstr(line, "memfd:ram") || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
            continue;
        char path[96];
        snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", lo, hi);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            res = (uint32_t)errno | 0x10000;
            break;
        }
        res = ftruncate(fd, 0) < 0 ? (uint32_t)errno : 0;
        close(fd);
        break;
    }
    if (f)
        fclose(f);
    return res;
}

static uint64_t regs_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    s->reads++;
    if (addr < 0x80)
        return s->scratch[addr / 4];
    switch (addr) {
    case R_WRITES: return s->writes;
    case R_LASTSIZE: return s->last_size;
    case R_DMA_ADDR: return (uint32_t)s->dma_addr;
    case R_DMA_ADDR + 4: return (uint32_t)(s->dma_addr >> 32);
    case R_DMA_LEN: return s->dma_len;
    case R_DMA_RES: return s->dma_res;
    case R_DMA_READ: {
        int err;
        uint32_t sum = dma_sum(s, &err);
        return err ? 0xdead0000u | (uint32_t)-err : sum;
    }
    case R_HANG:
        for (;;)
            pause();
    case R_FIRES: return s->fires;
    case R_FIRE_NOW: return s->fire_now;
    case R_IDENT: return (uint32_t)s->ident;
    case R_READS: return s->reads;
    case R_DECODE_ERR:
        plx_set_access_result(s->dev, PLX_ACCESS_DECODE_ERROR);
        return 0x1234;
    case R_SLAVE_ERR:
        plx_set_access_result(s->dev, PLX_ACCESS_ERROR);
        return 0x1234;
    case R_WINDOW: {
        plx_dma_window w;
        if (plx_dma_window_at(s->dev, s->dma_addr, &w) < 0)
            return 0;
        if (w.ptr != plx_dma_map(s->dev, w.base, 1, false) || s->dma_addr - w.base >= w.size)
            return 0xbad;
        return (uint32_t)(w.size >> 10) | (w.readonly ? 1u << 31 : 0);
    }
    case R_ABORT:
        abort();
    case R_TRUNCATE:
        return truncate_ram();
    case R_FD_OPEN: return fcntl((int)s->probe_fd, F_GETFD) >= 0;
    case R_EXEC_MAP: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 0;
        munmap(p, 4096);
        return 1;
    }
    case R_SOCKET: {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return 0;
        close(fd);
        return 1;
    }
    default: return 0;
    }
}

static void regs_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    s->writes++;
    s->last_size = size;
    if (addr < 0x80) {
        s->scratch[addr / 4] = (uint32_t)data;
        return;
    }
    switch (addr) {
    case R_SEGV:
        raise(SIGSEGV);
        break;
    case R_FD_OPEN: s->probe_fd = (uint32_t)data; break;
    case R_DECODE_ERR: plx_set_access_result(s->dev, PLX_ACCESS_DECODE_ERROR); break;
    case R_SLAVE_ERR: plx_set_access_result(s->dev, PLX_ACCESS_ERROR); break;
    case R_DMA_ADDR: s->dma_addr = (s->dma_addr & ~0xffffffffull) | (uint32_t)data; break;
    case R_DMA_ADDR + 4: s->dma_addr = (s->dma_addr & 0xffffffffull) | (data << 32); break;
    case R_DMA_LEN: s->dma_len = (uint32_t)data; break;
    case R_DMA_CMD:
        if (data == 1) {
            uint8_t *buf = malloc(s->dma_len ? s->dma_len : 1);
            for (uint32_t i = 0; buf && i < s->dma_len; i++)
                buf[i] = (uint8_t)(i ^ 0x5a);
            int r = buf ? plx_dma_write(s->dev, s->dma_addr, buf, s->dma_len) : -12;
            s->dma_res = r ? 0xdead0000u | (uint32_t)-r : 0;
            free(buf);
        } else if (data == 2) {
            int err;
            uint32_t sum = dma_sum(s, &err);
            s->dma_res = err ? 0xdead0000u | (uint32_t)-err : sum;
        }
        break;
    case R_IRQ:
        if (data == 2)
            plx_irq_pulse(s->dev, 1);
        else
            plx_irq_set(s->dev, 0, (int)(data & 1));
        break;
    case R_TIMER: plx_timer_mod(s->timer, plx_now(s->dev) + data); break;
    case R_TIMER_DIE:
        s->die_on_fire = true;
        plx_timer_mod(s->timer, plx_now(s->dev) + data);
        break;
    default: break;
    }
}

static uint64_t posted_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    return addr == 0 ? (uint32_t)s->sum : addr == 4 ? s->count : 0;
}

static void posted_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    if (addr == 0) {
        s->sum += data;
        s->count++;
    } else if (addr == 8) {
        plx_irq_pulse(s->dev, 0);
    }
}

static uint64_t shadow_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    if (addr == 0x80)
        return ++s->rt_reads;
    /* With a shadow page the hub serves these itself; without one (tcp) they come here. */
    if (addr < 0x44 && size == 4)
        return s->shadow_regs[addr / 4];
    return 0;
}

static void shadow_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    if (addr < 0x40 && size == 4) {
        s->shadow_regs[addr / 4] = (uint32_t)data;
        plx_shadow_store(s->dev, 2, addr, data, size);
    }
    s->shadow_writes++;
    s->shadow_regs[0x40 / 4] = s->shadow_writes;
    plx_shadow_store(s->dev, 2, 0x40, s->shadow_writes, 4);
}

static uint64_t be_read(void *opaque, uint64_t addr, unsigned size)
{
    return addr == 0 ? 0x11223344 : 0;
}

static void on_timer(void *opaque)
{
    struct st *s = opaque;
    if (s->die_on_fire)
        kill(getpid(), SIGKILL);
    s->fires++;
    s->fire_now = (uint32_t)plx_now(s->dev);
    s->shadow_regs[0x3c / 4] = s->fires;
    plx_shadow_store(s->dev, 2, 0x3c, s->fires, 4);
    plx_irq_pulse(s->dev, 1);
}

static const plx_region_ops regs_ops = {
    .read = regs_read, .write = regs_write, .endianness = PLX_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};
static const plx_region_ops posted_ops = {
    .read = posted_read, .write = posted_write,
    .valid = { 4, 4, false }, .impl = { 4, 4, false },
};
static const plx_region_ops shadow_ops = {
    .read = shadow_read, .write = shadow_write,
    .valid = { 1, 4, false }, .impl = { 4, 4, false },
};
static const plx_region_ops be_ops = {
    .read = be_read, .endianness = PLX_BIG_ENDIAN,
    .valid = { 4, 4, false }, .impl = { 4, 4, false },
};
static const struct plx_range shadow_rt[] = { { 0x80, 4 } };
static const plx_region_info regions[] = {
    { .name = "regs", .size = 0x100, .kind = PLX_REGION_IO, .ops = &regs_ops },
    { .name = "posted", .size = 0x100, .kind = PLX_REGION_POSTED, .ops = &posted_ops },
    { .name = "shadow", .size = 0x100, .kind = PLX_REGION_SHADOW, .ops = &shadow_ops,
      .read_through = shadow_rt, .n_read_through = 1 },
    { .name = "be", .size = 0x10, .kind = PLX_REGION_IO, .ops = &be_ops },
};
static const char *const irqs[] = { "irq0", "irq1" };
static const plx_prop_info props[] = {
    { "ident", "0x1234", "value of the IDENT register" },
};

static int init(plx_dev *dev, void **opaque)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s)
        return -12;
    s->dev = dev;
    if (plx_dev_prop_u64(dev, "ident", &s->ident) < 0) {
        free(s);
        return -22;
    }
    s->timer = plx_timer_new(dev, on_timer, s);
    *opaque = s;
    return 0;
}

static void reset(void *opaque)
{
    struct st *s = opaque;
    memset(s->scratch, 0, sizeof(s->scratch));
    for (unsigned i = 0; i < 0x44 / 4; i++) {
        s->shadow_regs[i] = 0;
        plx_shadow_store(s->dev, 2, 4 * i, 0, 4);
    }
}

static void fini(void *opaque)
{
    struct st *s = opaque;
    plx_timer_free(s->timer);
    free(s);
}

static const plx_device_ops ops = {
    .version = PLX_DEVICE_OPS_VERSION,
    .model = "plexus,test-regdev",
    .regions = regions, .n_regions = 4,
    .irq_names = irqs, .n_irqs = 2,
    .props = props, .n_props = 1,
    .init = init, .reset = reset, .fini = fini,
};

#ifdef REGDEV_PLUGIN
PLX_DEVICE_DEFINE(&ops);
#else
int main(int argc, char **argv)
{
    return plx_dev_main(&ops, argc, argv);
}
#endif
