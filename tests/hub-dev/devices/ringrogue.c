/*
 * A device (on the SDK, so on the shared-memory ring) that scribbles on its own ring, as a buggy device with a
 * stray pointer would: the hub must survive whatever it writes. It finds the ring among its descriptors (the
 * memfd "plexus-ring" and the two eventfds), maps it, and on a write to CORRUPT damages it. Region "regs" (IO,
 * 0x100, 4-byte accesses):
 *   0x00 SCRATCH  read/write
 *   0x04 CORRUPT  write n, then the callback waits 50 ms (the hub reads the damage before the reply exists):
 *                 1 the device->hub producer index jumps 5000 slots ahead
 *                 2 a record claiming 1000 bytes where one slot is published
 *                 3 a record with unknown flags
 *                 4 the consumer index of the hub->device ring moves ahead of the hub's producer index
 *                 5 random bytes over the whole ring memory, header and indices included
 *                 6 both bells written to their maximum count (0xfffffffffffffffe)
 *                 7 both sleep words stuck at 1
 *                 8 a chain of MORE records longer than a frame may be
 *   0x08 READY    reads 1 once the ring was found
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <plexus/sdk.h>

#define OFF_SLEEP(side) (64u + 64u * (side))
#define OFF_HEAD(ring) (192u + 128u * (ring))
#define OFF_TAIL(ring) (256u + 128u * (ring))
#define OFF_SLOTS 4096u

struct st {
    uint32_t scratch;
    uint8_t *ring;
    size_t ring_len;
    uint32_t n;
    int bells[2];
};

/* The ring's memfd and the two eventfds, found by what /proc says the descriptors are. */
static void find_ring(struct st *s)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    unsigned nb = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], what[128];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, what, sizeof(what) - 1);
        if (n <= 0)
            continue;
        what[n] = 0;
        int fd = atoi(e->d_name);
        if (strstr(what, "memfd:plexus-ring") && !s->ring) {
            struct stat st;
            if (fstat(fd, &st) == 0) {
                void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p != MAP_FAILED) {
                    s->ring = p;
                    s->ring_len = (size_t)st.st_size;
                    memcpy(&s->n, s->ring + 12, 4);
                }
            }
        } else if (strstr(what, "eventfd") && nb < 2) {
            s->bells[nb++] = fd;
        }
    }
    closedir(d);
}

static uint64_t get64(struct st *s, unsigned off)
{
    return __atomic_load_n((uint64_t *)(s->ring + off), __ATOMIC_ACQUIRE);
}

static void set64(struct st *s, unsigned off, uint64_t v)
{
    __atomic_store_n((uint64_t *)(s->ring + off), v, __ATOMIC_RELEASE);
}

/* A record header at the device->hub producer position, published as one slot. */
static void bad_record(struct st *s, uint32_t len, uint32_t flags)
{
    uint64_t head = get64(s, OFF_HEAD(1));
    uint8_t *rec = s->ring + OFF_SLOTS + (size_t)s->n * 64 + (size_t)(head & (s->n - 1)) * 64;
    uint32_t h[2] = { len, flags };
    memcpy(rec, h, sizeof(h));
    set64(s, OFF_HEAD(1), head + 1);
}

static void corrupt(struct st *s, uint32_t how)
{
    if (!s->ring)
        return;
    switch (how) {
    case 1:
        set64(s, OFF_HEAD(1), get64(s, OFF_HEAD(1)) + 5000);
        break;
    case 2:
        bad_record(s, 1000, 0);
        break;
    case 3:
        bad_record(s, 8, 0x80);
        break;
    case 4:
        set64(s, OFF_TAIL(0), get64(s, OFF_HEAD(0)) + 7);
        break;
    case 5: {
        uint64_t x = 0x9e3779b97f4a7c15u;
        for (size_t i = 0; i < s->ring_len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s->ring[i] = (uint8_t)x;
        }
        break;
    }
    case 6:
        for (int i = 0; i < 2; i++) {
            uint64_t v = 0xfffffffffffffffeu;
            if (write(s->bells[i], &v, sizeof(v)) < 0) {
                /* already full: that is the point */
            }
        }
        break;
    case 7:
        __atomic_store_n((uint32_t *)(s->ring + OFF_SLEEP(0)), 1, __ATOMIC_RELEASE);
        __atomic_store_n((uint32_t *)(s->ring + OFF_SLEEP(1)), 1, __ATOMIC_RELEASE);
        break;
    case 8: {
        /* 64 slots of MORE records, each claiming a full slot, republished over and over: more than 4 MiB */
        uint64_t head = get64(s, OFF_HEAD(1));
        uint8_t *slots = s->ring + OFF_SLOTS + (size_t)s->n * 64;
        for (unsigned k = 0; k < 80000; k++) {
            for (unsigned waited = 0; head - get64(s, OFF_TAIL(1)) >= s->n; waited++) {
                if (waited == 2000)
                    return;     /* the hub stopped reading (200 ms): it has seen enough */
                struct timespec ts = { 0, 100000 };
                nanosleep(&ts, NULL);
            }
            uint32_t h[2] = { 56, 1 };
            memcpy(slots + (size_t)(head & (s->n - 1)) * 64, h, sizeof(h));
            set64(s, OFF_HEAD(1), ++head);
        }
        break;
    }
    default:
        break;
    }
    struct timespec ts = { 0, 50 * 1000000 };
    nanosleep(&ts, NULL);
}

static uint64_t regs_read(void *opaque, uint64_t addr, unsigned size)
{
    struct st *s = opaque;
    if (addr == 0x00)
        return s->scratch;
    if (addr == 0x08)
        return s->ring != NULL;
    return 0;
}

static void regs_write(void *opaque, uint64_t addr, uint64_t data, unsigned size)
{
    struct st *s = opaque;
    if (addr == 0x00)
        s->scratch = (uint32_t)data;
    else if (addr == 0x04)
        corrupt(s, (uint32_t)data);
}

static const plx_region_ops regs_ops = {
    .read = regs_read, .write = regs_write, .endianness = PLX_LITTLE_ENDIAN,
    .valid = { 4, 4, false }, .impl = { 4, 4, false },
};

static const plx_region_info regions[] = {
    { .name = "regs", .size = 0x100, .kind = PLX_REGION_IO, .ops = &regs_ops },
};

static int init(plx_dev *dev, void **opaque)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->bells[0] = s->bells[1] = -1;
    find_ring(s);
    *opaque = s;
    return 0;
}

static void fini(void *opaque)
{
    struct st *s = opaque;
    if (s->ring)
        munmap(s->ring, s->ring_len);
    free(s);
}

static const plx_device_ops ops = {
    .version = PLX_DEVICE_OPS_VERSION, .model = "plexus,test-ring-rogue", .regions = regions, .n_regions = 1,
    .init = init, .fini = fini,
};

int main(int argc, char **argv)
{
    return plx_dev_main(&ops, argc, argv);
}
