/*
 * A small virtio-mmio driver for tests and benchmarks: the process plays the guest. It writes descriptor tables
 * and rings into guest RAM (through its host mapping) and reaches the device's registers through the hub's
 * address space, as a CPU would. Include once per program (the helpers are static). A failed register access
 * is a Criterion assertion in a test (criterion.h included first), else it ends the program.
 */
#ifndef PLEXUS_TEST_VDRIVER_H
#define PLEXUS_TEST_VDRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CRITERION_H_
#define vd_check(cond, ...) cr_assert(cond, __VA_ARGS__)
#else
#define vd_check(cond, ...)                                                                                   \
    do {                                                                                                      \
        if (!(cond)) {                                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                                     \
            fputc('\n', stderr);                                                                              \
            abort();                                                                                          \
        }                                                                                                     \
    } while (0)
#endif

#include <plexus/memory.h>

#include "dev/devmgr.h"

enum {
    VR_MAGIC = 0x000, VR_VERSION = 0x004, VR_DEVICE_ID = 0x008, VR_VENDOR_ID = 0x00c,
    VR_DEVICE_FEATURES = 0x010, VR_DEVICE_FEATURES_SEL = 0x014, VR_DRIVER_FEATURES = 0x020,
    VR_DRIVER_FEATURES_SEL = 0x024, VR_QUEUE_SEL = 0x030, VR_QUEUE_NUM_MAX = 0x034, VR_QUEUE_NUM = 0x038,
    VR_QUEUE_READY = 0x044, VR_QUEUE_NOTIFY = 0x050, VR_INTERRUPT_STATUS = 0x060, VR_INTERRUPT_ACK = 0x064,
    VR_STATUS = 0x070, VR_QUEUE_DESC = 0x080, VR_QUEUE_DRIVER = 0x090, VR_QUEUE_DEVICE = 0x0a0,
    VR_SHM_LEN_LOW = 0x0b0, VR_CONFIG_GENERATION = 0x0fc, VR_CONFIG = 0x100,
};

#define VD_F_NEXT 1
#define VD_F_WRITE 2
#define VD_F_INDIRECT 4
#define VD_FEAT_INDIRECT (1ull << 28)
#define VD_FEAT_EVENT_IDX (1ull << 29)
#define VD_FEAT_VERSION_1 (1ull << 32)

typedef struct vdrv {
    AddressSpace *as;
    hub_devmgr *mgr;
    uint8_t *ram;           /* host pointer of guest RAM at ram_base */
    uint64_t ram_base;
    uint64_t base;          /* the device's register window */
} vdrv;

typedef struct vdq {
    unsigned index, num;
    uint64_t desc, avail, used;
    uint16_t avail_idx;
} vdq;

static inline uint8_t *vd_host(vdrv *d, uint64_t gpa)
{
    return d->ram + (gpa - d->ram_base);
}

static inline uint32_t vd_rd_size(vdrv *d, uint64_t off, unsigned size)
{
    uint8_t b[4] = { 0 };
    MemTxResult r = address_space_read(d->as, d->base + off, MEMTXATTRS_UNSPECIFIED, b, size);
    vd_check(r == MEMTX_OK, "register read 0x%lx failed", (unsigned long)off);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint32_t vd_rd(vdrv *d, uint64_t off)
{
    return vd_rd_size(d, off, 4);
}

static inline void vd_wr(vdrv *d, uint64_t off, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    vd_check(address_space_write(d->as, d->base + off, MEMTXATTRS_UNSPECIFIED, b, 4) == MEMTX_OK,
             "register write 0x%lx failed", (unsigned long)off);
}

static inline void vd_wr64(vdrv *d, uint64_t off, uint64_t v)
{
    vd_wr(d, off, (uint32_t)v);
    vd_wr(d, off + 4, (uint32_t)(v >> 32));
}

static inline uint64_t vd_device_features(vdrv *d)
{
    vd_wr(d, VR_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = vd_rd(d, VR_DEVICE_FEATURES);
    vd_wr(d, VR_DEVICE_FEATURES_SEL, 0);
    return hi << 32 | vd_rd(d, VR_DEVICE_FEATURES);
}

/* Reset, ACKNOWLEDGE, DRIVER, @features, FEATURES_OK: returns the status the device shows afterwards. */
static inline uint32_t vd_negotiate(vdrv *d, uint64_t features)
{
    vd_wr(d, VR_STATUS, 0);
    vd_wr(d, VR_STATUS, 1);
    vd_wr(d, VR_STATUS, 1 | 2);
    vd_wr(d, VR_DRIVER_FEATURES_SEL, 0);
    vd_wr(d, VR_DRIVER_FEATURES, (uint32_t)features);
    vd_wr(d, VR_DRIVER_FEATURES_SEL, 1);
    vd_wr(d, VR_DRIVER_FEATURES, (uint32_t)(features >> 32));
    vd_wr(d, VR_STATUS, 1 | 2 | 8);
    return vd_rd(d, VR_STATUS);
}

/* Queue @index with @num entries laid out at @area (zeroed): descriptors, available ring, used ring. */
static inline void vd_queue_at(vdrv *d, vdq *q, unsigned index, unsigned num, uint64_t area, bool enable)
{
    q->index = index;
    q->num = num;
    q->desc = area;
    q->avail = area + 16 * num;
    q->used = (q->avail + 6 + 2 * num + 3) & ~3ull;
    q->avail_idx = 0;
    memset(vd_host(d, area), 0, (size_t)(q->used + 6 + 8 * num - area));
    vd_wr(d, VR_QUEUE_SEL, index);
    vd_wr(d, VR_QUEUE_NUM, num);
    vd_wr64(d, VR_QUEUE_DESC, q->desc);
    vd_wr64(d, VR_QUEUE_DRIVER, q->avail);
    vd_wr64(d, VR_QUEUE_DEVICE, q->used);
    if (enable)
        vd_wr(d, VR_QUEUE_READY, 1);
}

static inline void vd_driver_ok(vdrv *d)
{
    vd_wr(d, VR_STATUS, 1 | 2 | 8 | 4);
}

static inline void vd_desc(vdrv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                           uint16_t next)
{
    uint8_t *p = vd_host(d, table + 16 * (uint64_t)i);
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static inline uint16_t vd_ld16(vdrv *d, uint64_t gpa)
{
    return __atomic_load_n((uint16_t *)vd_host(d, gpa), __ATOMIC_ACQUIRE);
}

static inline void vd_st16(vdrv *d, uint64_t gpa, uint16_t v)
{
    __atomic_store_n((uint16_t *)vd_host(d, gpa), v, __ATOMIC_RELEASE);
}

/* Make chain @head available (without notifying). */
static inline void vd_avail(vdrv *d, vdq *q, uint16_t head)
{
    vd_st16(d, q->avail + 4 + 2 * (q->avail_idx % q->num), head);
    vd_st16(d, q->avail + 2, ++q->avail_idx);
}

static inline void vd_notify(vdrv *d, vdq *q)
{
    vd_wr(d, VR_QUEUE_NOTIFY, q->index);
}

static inline uint16_t vd_used_idx(vdrv *d, vdq *q)
{
    return vd_ld16(d, q->used + 2);
}

static inline void vd_used_elem(vdrv *d, vdq *q, uint16_t pos, uint32_t *id, uint32_t *len)
{
    uint8_t *p = vd_host(d, q->used + 4 + 8 * (uint64_t)(pos % q->num));
    memcpy(id, p, 4);
    memcpy(len, p + 4, 4);
}

/* Serve the hub until the used ring reaches @idx (true) or about @ms passed (false). */
static inline bool vd_wait_used(vdrv *d, vdq *q, uint16_t idx, int ms)
{
    for (int t = 0; t <= ms; t += 5) {
        if (vd_used_idx(d, q) == idx)
            return true;
        hub_devmgr_poll(d->mgr, 5);
    }
    return vd_used_idx(d, q) == idx;
}

/* Serve the hub for about @ms. */
static inline void vd_settle(vdrv *d, int ms)
{
    for (int t = 0; t < ms; t += 5)
        hub_devmgr_poll(d->mgr, 5);
}

#endif
