#define _GNU_SOURCE
/* RAM blocks: host memory behind RAM, ROM and ROM-device regions, and their dirty bitmaps. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BITS_PER_LONG (8 * sizeof(unsigned long))

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static RAMBlock *blocks;
static ram_addr_t next_ram_addr;

static uint64_t pages_of(uint64_t len)
{
    return (len + TARGET_PAGE_SIZE - 1) >> TARGET_PAGE_BITS;
}

RAMBlock *
ram_block_new(MemoryRegion *mr, uint8_t *host, uint64_t used, uint64_t max, void *map_base, size_t map_len,
              int fd, Error **errp)
{
    RAMBlock *rb = calloc(1, sizeof(*rb));
    uint64_t longs = (pages_of(max) + BITS_PER_LONG - 1) / BITS_PER_LONG;
    if (!rb) {
        error_setg(errp, "memory region '%s': out of memory", mr->name ? mr->name : "");
        return NULL;
    }
    for (int c = 0; c < DIRTY_MEMORY_NUM; c++) {
        rb->dirty[c] = calloc(longs ? longs : 1, sizeof(unsigned long));
        if (!rb->dirty[c]) {
            for (int d = 0; d < c; d++)
                free(rb->dirty[d]);
            free(rb);
            error_setg(errp, "memory region '%s': out of memory for the dirty bitmap", mr->name ? mr->name : "");
            return NULL;
        }
    }
    rb->mr = mr;
    rb->host = host;
    rb->used_length = used;
    rb->max_length = max;
    rb->map_base = map_base;
    rb->map_len = map_len;
    rb->fd = fd;
    pthread_mutex_lock(&blocks_lock);
    rb->offset = next_ram_addr;
    /* Keep blocks page aligned and apart in the RAM numbering. */
    next_ram_addr += (max + TARGET_PAGE_SIZE - 1) & ~(TARGET_PAGE_SIZE - 1);
    rb->next = blocks;
    blocks = rb;
    pthread_mutex_unlock(&blocks_lock);
    return rb;
}

void
ram_block_free(RAMBlock *rb)
{
    if (!rb)
        return;
    pthread_mutex_lock(&blocks_lock);
    for (RAMBlock **pp = &blocks; *pp; pp = &(*pp)->next) {
        if (*pp == rb) {
            *pp = rb->next;
            break;
        }
    }
    pthread_mutex_unlock(&blocks_lock);
    if (rb->map_base)
        munmap(rb->map_base, rb->map_len);
    if (rb->fd >= 0)
        close(rb->fd);
    for (int c = 0; c < DIRTY_MEMORY_NUM; c++)
        free(rb->dirty[c]);
    free(rb);
}

void *
qemu_map_ram_ptr(RAMBlock *ram_block, ram_addr_t addr)
{
    return ram_block ? ram_block->host + addr : NULL;
}

/* The region holding RAM for @mr (following aliases); *off += alias offsets. */
MemoryRegion *
mr_resolve_ram(MemoryRegion *mr, uint64_t *off)
{
    while (mr && mr->alias) {
        *off += mr->alias_offset;
        mr = mr->alias;
    }
    return mr && mr->ram_block ? mr : NULL;
}

void
ram_mark_dirty(RAMBlock *rb, uint64_t offset, uint64_t len, uint8_t mask)
{
    if (!len || !mask || offset >= rb->max_length)
        return;
    if (len > rb->max_length - offset)
        len = rb->max_length - offset;
    uint64_t first = offset >> TARGET_PAGE_BITS, last = (offset + len - 1) >> TARGET_PAGE_BITS;
    for (int c = 0; c < DIRTY_MEMORY_NUM; c++) {
        if (!(mask & (1u << c)))
            continue;
        for (uint64_t p = first; p <= last; p++) {
            unsigned long bit = 1UL << (p % BITS_PER_LONG);
            unsigned long *w = &rb->dirty[c][p / BITS_PER_LONG];
            if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit))
                __atomic_fetch_or(w, bit, __ATOMIC_RELAXED);
        }
    }
}

/* Page range of [addr, addr+size) within the RAM of @mr; false when empty or not RAM. */
static bool page_range(MemoryRegion *mr, hwaddr addr, hwaddr size, RAMBlock **rbp, uint64_t *first,
                       uint64_t *last)
{
    uint64_t off = 0;
    MemoryRegion *ram = mr_resolve_ram(mr, &off);
    if (!ram || !size)
        return false;
    RAMBlock *rb = ram->ram_block;
    off += addr;
    if (off >= rb->max_length)
        return false;
    if (size > rb->max_length - off)
        size = rb->max_length - off;
    *rbp = rb;
    *first = off >> TARGET_PAGE_BITS;
    *last = (off + size - 1) >> TARGET_PAGE_BITS;
    return true;
}

bool
memory_region_get_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size, unsigned client)
{
    RAMBlock *rb;
    uint64_t first, last;
    if (client >= DIRTY_MEMORY_NUM || !page_range(mr, addr, size, &rb, &first, &last))
        return false;
    for (uint64_t p = first; p <= last; p++)
        if (__atomic_load_n(&rb->dirty[client][p / BITS_PER_LONG], __ATOMIC_RELAXED) & (1UL << (p % BITS_PER_LONG)))
            return true;
    return false;
}

void
memory_region_set_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size)
{
    uint64_t off = 0;
    MemoryRegion *ram = mr_resolve_ram(mr, &off);
    if (!ram)
        return;
    ram_mark_dirty(ram->ram_block, off + addr, size, memory_region_get_dirty_log_mask(ram));
}

void
memory_region_reset_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size, unsigned client)
{
    RAMBlock *rb;
    uint64_t first, last;
    if (client >= DIRTY_MEMORY_NUM || !page_range(mr, addr, size, &rb, &first, &last))
        return;
    for (uint64_t p = first; p <= last; p++)
        __atomic_fetch_and(&rb->dirty[client][p / BITS_PER_LONG], ~(1UL << (p % BITS_PER_LONG)), __ATOMIC_RELAXED);
}

DirtyBitmapSnapshot *
memory_region_snapshot_and_clear_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size, unsigned client)
{
    RAMBlock *rb;
    uint64_t first, last;
    if (client >= DIRTY_MEMORY_NUM || !page_range(mr, addr, size, &rb, &first, &last))
        return NULL;
    uint64_t n = last - first + 1;
    DirtyBitmapSnapshot *snap = calloc(1, sizeof(*snap) + ((n + BITS_PER_LONG - 1) / BITS_PER_LONG) * sizeof(unsigned long));
    if (!snap)
        return NULL;
    snap->first_page = first;
    snap->npages = n;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t p = first + i;
        unsigned long bit = 1UL << (p % BITS_PER_LONG);
        unsigned long old = __atomic_fetch_and(&rb->dirty[client][p / BITS_PER_LONG], ~bit, __ATOMIC_ACQ_REL);
        if (old & bit)
            snap->dirty[i / BITS_PER_LONG] |= 1UL << (i % BITS_PER_LONG);
    }
    return snap;
}

bool
memory_region_snapshot_get_dirty(MemoryRegion *mr, DirtyBitmapSnapshot *snap, hwaddr addr, hwaddr size)
{
    RAMBlock *rb;
    uint64_t first, last;
    if (!snap || !page_range(mr, addr, size, &rb, &first, &last))
        return false;
    for (uint64_t p = first; p <= last; p++) {
        if (p < snap->first_page || p - snap->first_page >= snap->npages)
            continue;
        uint64_t i = p - snap->first_page;
        if (snap->dirty[i / BITS_PER_LONG] & (1UL << (i % BITS_PER_LONG)))
            return true;
    }
    return false;
}

MemoryRegion *
memory_region_from_host(void *ptr, ram_addr_t *offset)
{
    MemoryRegion *mr = NULL;
    uint8_t *p = ptr;
    pthread_mutex_lock(&blocks_lock);
    for (RAMBlock *rb = blocks; rb; rb = rb->next) {
        if (rb->host && p >= rb->host && p < rb->host + rb->max_length) {
            mr = rb->mr;
            if (offset)
                *offset = (ram_addr_t)(p - rb->host);
            break;
        }
    }
    pthread_mutex_unlock(&blocks_lock);
    return mr;
}

ram_addr_t
memory_region_get_ram_addr(MemoryRegion *mr)
{
    return mr && mr->ram_block ? mr->ram_block->offset : RAM_ADDR_INVALID;
}
