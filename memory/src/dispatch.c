#define _GNU_SOURCE
/*
 * Accesses: the valid/impl rules of MemoryRegionOps, the address-space accessors, map/unmap and caches.
 *
 * Internally an access is a run of bytes in guest address order. A callback value becomes bytes (and back)
 * in the region's endianness; the ld/st accessors compose bytes in the byte order they name.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

void (*mem_coalesced_flush)(void *);
void *mem_coalesced_flush_opaque;
static void (*global_lock)(void);
static void (*global_unlock)(void);

void
memory_set_global_lock_hooks(void (*lock)(void), void (*unlock)(void))
{
    mem_lock();
    global_lock = lock;
    global_unlock = unlock;
    mem_unlock();
}

static inline uint64_t size_mask(unsigned size)
{
    return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

static inline void val_to_bytes(uint64_t v, uint8_t *b, unsigned size, bool big)
{
    for (unsigned i = 0; i < size; i++)
        b[i] = (uint8_t)(v >> (8 * (big ? size - 1 - i : i)));
}

static inline uint64_t bytes_to_val(const uint8_t *b, unsigned size, bool big)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)b[i] << (8 * (big ? size - 1 - i : i));
    return v;
}

static inline uint64_t load_le(const uint8_t *b, unsigned size)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    switch (size) {
    case 1: return b[0];
    case 2: { uint16_t v; memcpy(&v, b, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, b, 4); return v; }
    case 8: { uint64_t v; memcpy(&v, b, 8); return v; }
    }
#endif
    return bytes_to_val(b, size, false);
}

static inline void store_le(uint8_t *b, uint64_t v, unsigned size)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    switch (size) {
    case 1: b[0] = (uint8_t)v; return;
    case 2: { uint16_t x = (uint16_t)v; memcpy(b, &x, 2); return; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(b, &x, 4); return; }
    case 8: memcpy(b, &v, 8); return;
    }
#endif
    val_to_bytes(v, b, size, false);
}

static inline bool dev_big(const MemoryRegionOps *ops)
{
    return ops->endianness == DEVICE_BIG_ENDIAN;
}

/* ---- callbacks ---- */

static MemTxResult cb_read(const MemoryRegionOps *ops, void *opaque, hwaddr addr, unsigned size, uint64_t *v,
                           MemTxAttrs attrs)
{
    MemTxResult r = MEMTX_OK;
    *v = 0;
    if (ops->read_with_attrs)
        r = ops->read_with_attrs(opaque, addr, v, size, attrs);
    else if (ops->read)
        *v = ops->read(opaque, addr, size);
    else if (size <= 4 && ops->old_mmio.read[size >> 1])
        *v = ops->old_mmio.read[size >> 1](opaque, addr);
    else
        r = MEMTX_DECODE_ERROR;
    *v &= size_mask(size);
    return r;
}

static MemTxResult cb_write(const MemoryRegionOps *ops, void *opaque, hwaddr addr, unsigned size, uint64_t v,
                            MemTxAttrs attrs)
{
    if (ops->write_with_attrs)
        return ops->write_with_attrs(opaque, addr, v, size, attrs);
    if (ops->write) {
        ops->write(opaque, addr, v, size);
        return MEMTX_OK;
    }
    if (size <= 4 && ops->old_mmio.write[size >> 1]) {
        ops->old_mmio.write[size >> 1](opaque, addr, (uint32_t)v);
        return MEMTX_OK;
    }
    return MEMTX_DECODE_ERROR;
}

static bool ops_valid(const MemoryRegionOps *ops, void *opaque, hwaddr addr, unsigned size, bool is_write)
{
    if (!ops)
        return false;
    unsigned vmin = ops->valid.min_access_size ? ops->valid.min_access_size : 1;
    unsigned vmax = ops->valid.max_access_size ? ops->valid.max_access_size : 4;
    if (size < vmin || size > vmax)
        return false;
    if (!ops->valid.unaligned && (addr & (size - 1)))
        return false;
    if (ops->valid.accepts && !ops->valid.accepts(opaque, addr, size, is_write))
        return false;
    return true;
}

/* Carry out a valid access with the impl rules: split, widen, align. */
static MemTxResult io_access(const MemoryRegionOps *ops, void *opaque, hwaddr addr, uint8_t *buf, unsigned size,
                             bool is_write, MemTxAttrs attrs)
{
    unsigned imin = ops->impl.min_access_size ? ops->impl.min_access_size : 1;
    unsigned imax = ops->impl.max_access_size ? ops->impl.max_access_size : 4;
    if (imax > 8)
        imax = 8;
    if (imin > imax)
        imin = imax;
    unsigned a = size < imin ? imin : size > imax ? imax : size;
    bool big = dev_big(ops);
    MemTxResult r = MEMTX_OK;
    uint64_t v;

    if (a == size && (ops->impl.unaligned || !(addr & (a - 1)))) {
        if (is_write)
            return cb_write(ops, opaque, addr, a, big ? bytes_to_val(buf, a, true) : load_le(buf, a), attrs);
        r = cb_read(ops, opaque, addr, a, &v, attrs);
        if (big)
            val_to_bytes(v, buf, a, true);
        else
            store_le(buf, v, a);
        return r;
    }
    u128 start, end;
    if (ops->impl.unaligned && size >= imin) {
        start = addr;
        end = (u128)addr + size;
    } else {
        start = addr & ~(u128)(a - 1);
        end = ((u128)addr + size + a - 1) & ~(u128)(a - 1);
    }
    for (u128 w = start; w < end; w += a) {
        uint8_t word[8];
        if (is_write) {
            memset(word, 0, sizeof(word));
            for (unsigned k = 0; k < a; k++)
                if (w + k >= addr && w + k < (u128)addr + size)
                    word[k] = buf[(size_t)(w + k - addr)];
            r |= cb_write(ops, opaque, (hwaddr)w, a, bytes_to_val(word, a, big), attrs);
        } else {
            r |= cb_read(ops, opaque, (hwaddr)w, a, &v, attrs);
            val_to_bytes(v, word, a, big);
            for (unsigned k = 0; k < a; k++)
                if (w + k >= addr && w + k < (u128)addr + size)
                    buf[(size_t)(w + k - addr)] = word[k];
        }
    }
    return r;
}

/* @nr entries, or up to the entry with a NULL notifier when @nr is UINT_MAX (a region's live array). */
static bool ioeventfd_hit(const MemoryRegionIoeventfd *ev, unsigned nr, const MemoryRegionOps *ops, hwaddr addr,
                          const uint8_t *buf, unsigned size)
{
    uint64_t v = bytes_to_val(buf, size, dev_big(ops));
    for (unsigned i = 0; i < nr && ev[i].e; i++) {
        const MemoryRegionIoeventfd *e = &ev[i];
        if (e->addr == addr && (!e->size || e->size == size) && (!e->match_data || e->data == v)) {
            event_notifier_set(e->e);
            return true;
        }
    }
    return false;
}

/* RAM device memory: one host access of the access size. */
static MemTxResult ram_device_access(uint8_t *p, uint8_t *buf, unsigned size, bool is_write)
{
    bool aligned = !((uintptr_t)p & (size - 1));
    if (is_write) {
        uint64_t v = load_le(buf, size);
        switch (aligned ? size : 0) {
        case 1: *(volatile uint8_t *)p = (uint8_t)v; break;
        case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
        case 4: *(volatile uint32_t *)p = (uint32_t)v; break;
        case 8: *(volatile uint64_t *)p = v; break;
        default: memcpy(p, buf, size);
        }
    } else {
        uint64_t v;
        switch (aligned ? size : 0) {
        case 1: v = *(volatile uint8_t *)p; break;
        case 2: v = *(volatile uint16_t *)p; break;
        case 4: v = *(volatile uint32_t *)p; break;
        case 8: v = *(volatile uint64_t *)p; break;
        default: memcpy(buf, p, size); return MEMTX_OK;
        }
        store_le(buf, v, size);
    }
    return MEMTX_OK;
}

/*
 * One access of @size bytes at @addr of @mr that is not a plain host copy: an I/O callback (valid rules
 * first, then eventfds, then impl rules) or RAM-device memory. @fr gives the snapshot state when the access
 * comes through an address space.
 */
MemTxResult
mr_dispatch_bytes(MemoryRegion *mr, const FlatRange *fr, hwaddr addr, uint8_t *buf, unsigned size, bool is_write,
                  MemTxAttrs attrs)
{
    if (fr ? fr->ram_device : (mr->ram_device && mr->ram_block)) {
        if (is_write && fr && fr->readonly)
            return MEMTX_OK;
        uint8_t *host = fr ? fr->host - fr->offset_in_region : mr->ram_block->host;
        return ram_device_access(host + addr, buf, size, is_write);
    }
    const MemoryRegionOps *ops = fr ? fr->ops : mr->ops;
    void *opaque = fr ? fr->opaque : mr->opaque;
    if (!ops_valid(ops, opaque, addr, size, is_write)) {
        if (!is_write)
            memset(buf, 0, size);
        return MEMTX_DECODE_ERROR;
    }
    if (is_write) {
        const MemoryRegionIoeventfd *ev = fr ? fr->ioev : __atomic_load_n(&mr->ioeventfds, __ATOMIC_ACQUIRE);
        unsigned nr = fr ? fr->nr_ioev : UINT_MAX;
        if (ev && nr && ioeventfd_hit(ev, nr, ops, addr, buf, size))
            return MEMTX_OK;
    }
    if ((fr ? fr->flush_coalesced : mr->flush_coalesced_mmio) && mem_coalesced_flush)
        mem_coalesced_flush(mem_coalesced_flush_opaque);
    bool locked = (fr ? fr->global_locking : mr->global_locking) && global_lock;
    if (locked)
        global_lock();
    MemTxResult r = io_access(ops, opaque, addr, buf, size, is_write, attrs);
    if (locked && global_unlock)
        global_unlock();
    return r;
}

/* ---- direct region dispatch ---- */

static MemTxResult region_dispatch(MemoryRegion *mr, hwaddr addr, uint8_t *buf, unsigned size, bool is_write,
                                   MemTxAttrs attrs)
{
    if (size == 0 || size > 8 || (size & (size - 1)))
        return MEMTX_DECODE_ERROR;
    bool readonly = false;
    while (mr->alias) {
        readonly |= mr->readonly;
        addr += mr->alias_offset;
        mr = mr->alias;
    }
    readonly |= mr->readonly;
    if ((u128)addr + size > (u128)mr->size) {
        if (!is_write)
            memset(buf, 0, size);
        return MEMTX_DECODE_ERROR;
    }
    bool romd = mr->rom_device && __atomic_load_n(&mr->romd_mode, __ATOMIC_RELAXED);
    uint8_t *host = mr->ram_block ? mr->ram_block->host : NULL;
    if (host && !mr->ram_device) {
        if (!is_write && (mr->ram || romd)) {
            memcpy(buf, host + addr, size);
            return MEMTX_OK;
        }
        if (is_write && mr->ram) {
            if (!readonly) {
                memcpy(host + addr, buf, size);
                ram_mark_dirty(mr->ram_block, addr, size, memory_region_get_dirty_log_mask(mr));
            }
            return MEMTX_OK;
        }
    }
    if (!mr->ops && !mr->ram_device) {
        if (!is_write)
            memset(buf, 0, size);
        return MEMTX_DECODE_ERROR;
    }
    return mr_dispatch_bytes(mr, NULL, addr, buf, size, is_write, attrs);
}

MemTxResult
memory_region_dispatch_read(MemoryRegion *mr, hwaddr addr, uint64_t *pval, unsigned size, MemTxAttrs attrs)
{
    uint8_t b[8] = { 0 };
    mem_read_lock();
    MemTxResult r = region_dispatch(mr, addr, b, size, false, attrs);
    mem_read_unlock();
    *pval = size <= 8 ? load_le(b, size ? size : 1) : 0;
    return r;
}

MemTxResult
memory_region_dispatch_write(MemoryRegion *mr, hwaddr addr, uint64_t data, unsigned size, MemTxAttrs attrs)
{
    uint8_t b[8];
    if (size == 0 || size > 8)
        return MEMTX_DECODE_ERROR;
    store_le(b, data, size);
    mem_read_lock();
    MemTxResult r = region_dispatch(mr, addr, b, size, true, attrs);
    mem_read_unlock();
    return r;
}

/* ---- address-space accesses ---- */

/* Largest piece for an access to an I/O region at region offset @off with @rem bytes left. */
static unsigned piece_size(const FlatRange *fr, hwaddr off, uint64_t rem)
{
    const MemoryRegionOps *ops = fr->ops;
    uint64_t max = fr->ram_device ? 8 : ops && ops->valid.max_access_size ? ops->valid.max_access_size : 4;
    bool unaligned = !fr->ram_device && ops && ops->valid.unaligned;
    if (max > 8)
        max = 8; /* values are 64-bit at most */
    uint64_t p = rem < max ? rem : max;
    if (!unaligned && off) {
        uint64_t align = off & -off;
        if (align < p)
            p = align;
    }
    while (p & (p - 1))
        p &= p - 1;
    return p ? (unsigned)p : 1;
}

/* Index of the first range starting above @addr (fv->nr if none). */
static unsigned next_range(FlatView *fv, hwaddr addr)
{
    unsigned lo = 0, hi = fv->nr;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (fv->starts[mid] <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static MemTxResult fv_rw(FlatView *fv, const FlatRange *fr, hwaddr addr, MemTxAttrs attrs, uint8_t *buf,
                         uint64_t len, bool is_write)
{
    MemTxResult res = MEMTX_OK;
    while (len) {
        if (!fr)
            fr = flatview_lookup(fv, addr);
        uint64_t l;
        if (!fr) {
            unsigned nx = next_range(fv, addr);
            l = len;
            if (nx < fv->nr && fv->starts[nx] - addr < l)
                l = fv->starts[nx] - addr;
            if (!is_write)
                memset(buf, 0, l);
            res |= MEMTX_DECODE_ERROR;
        } else {
            uint64_t avail = fr->last - addr; /* + 1, may be 2^64 */
            l = len - 1 < avail ? len : avail + 1;
            hwaddr off = fr->offset_in_region + (addr - fr->start);
            if (is_write ? fr->direct_write : fr->direct_read) {
                uint8_t *h = fr->host + (addr - fr->start);
                if (is_write) {
                    memcpy(h, buf, l);
                    if (fr->dirty_log_mask)
                        ram_mark_dirty(fr->mr->ram_block, off, l, fr->dirty_log_mask);
                } else {
                    memcpy(buf, h, l);
                }
            } else if (is_write && fr->ignore_write) {
                /* ROM: guest writes vanish */
            } else if (!fr->ops && !fr->ram_device) {
                if (!is_write)
                    memset(buf, 0, l);
                res |= MEMTX_DECODE_ERROR;
            } else {
                for (uint64_t done = 0; done < l;) {
                    unsigned p = piece_size(fr, off + done, l - done);
                    res |= mr_dispatch_bytes(fr->mr, fr, off + done, buf + done, p, is_write, attrs);
                    done += p;
                }
            }
        }
        addr += l;
        buf += l;
        len -= l;
        fr = NULL;
    }
    return res;
}

MemTxResult
flatview_read_full(FlatView *fv, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len)
{
    return len > 0 ? fv_rw(fv, NULL, addr, attrs, buf, (uint64_t)len, false) : MEMTX_OK;
}

MemTxResult
flatview_read(FlatView *fv, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len)
{
    return flatview_read_full(fv, addr, attrs, buf, len);
}

MemTxResult
flatview_read_continue(FlatView *fv, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len, hwaddr addr1,
                       hwaddr l, MemoryRegion *mr)
{
    return flatview_read_full(fv, addr, attrs, buf, len);
}

MemTxResult
address_space_rw(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len, bool is_write)
{
    if (len <= 0)
        return MEMTX_OK;
    mem_read_lock();
    MemTxResult r = fv_rw(as_view(as), NULL, addr, attrs, buf, (uint64_t)len, is_write);
    mem_read_unlock();
    return r;
}

MemTxResult
address_space_write(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, const uint8_t *buf, int len)
{
    return address_space_rw(as, addr, attrs, (uint8_t *)buf, len, true);
}

MemTxResult
address_space_read(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len)
{
    return address_space_rw(as, addr, attrs, buf, len, false);
}

static inline uint64_t as_load(AddressSpace *as, hwaddr addr, unsigned size, bool big, MemTxAttrs attrs,
                               MemTxResult *result)
{
    uint8_t b[8];
    MemTxResult r = MEMTX_OK;
    mem_read_lock();
    FlatView *fv = as_view(as);
    const FlatRange *fr = flatview_lookup(fv, addr);
    if (fr && fr->direct_read && fr->last - addr >= size - 1)
        memcpy(b, fr->host + (addr - fr->start), size);
    else if (fr && fr->ops && fr->last - addr >= size - 1 &&
             piece_size(fr, fr->offset_in_region + (addr - fr->start), size) == size)
        r = mr_dispatch_bytes(fr->mr, fr, fr->offset_in_region + (addr - fr->start), b, size, false, attrs);
    else
        r = fv_rw(fv, fr, addr, attrs, b, size, false);
    mem_read_unlock();
    if (result)
        *result = r;
    return big ? bytes_to_val(b, size, true) : load_le(b, size);
}

static inline void as_store(AddressSpace *as, hwaddr addr, uint64_t val, unsigned size, bool big, MemTxAttrs attrs,
                            MemTxResult *result)
{
    uint8_t b[8];
    MemTxResult r = MEMTX_OK;
    if (big)
        val_to_bytes(val, b, size, true);
    else
        store_le(b, val, size);
    mem_read_lock();
    FlatView *fv = as_view(as);
    const FlatRange *fr = flatview_lookup(fv, addr);
    if (fr && fr->direct_write && !fr->dirty_log_mask && fr->last - addr >= size - 1)
        memcpy(fr->host + (addr - fr->start), b, size);
    else if (fr && fr->ops && !fr->direct_write && !fr->ignore_write && fr->last - addr >= size - 1 &&
             piece_size(fr, fr->offset_in_region + (addr - fr->start), size) == size)
        r = mr_dispatch_bytes(fr->mr, fr, fr->offset_in_region + (addr - fr->start), b, size, true, attrs);
    else
        r = fv_rw(fv, fr, addr, attrs, b, size, true);
    mem_read_unlock();
    if (result)
        *result = r;
}

#define LD(name, type, size, big)                                                                              \
    type address_space_##name(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result)            \
    {                                                                                                          \
        return (type)as_load(as, addr, size, big, attrs, result);                                              \
    }                                                                                                          \
    type name##_phys(AddressSpace *as, hwaddr addr)                                                            \
    {                                                                                                          \
        return (type)as_load(as, addr, size, big, MEMTXATTRS_UNSPECIFIED, NULL);                               \
    }
#define ST(name, type, size, big)                                                                              \
    void address_space_##name(AddressSpace *as, hwaddr addr, type val, MemTxAttrs attrs, MemTxResult *result) \
    {                                                                                                          \
        as_store(as, addr, val, size, big, attrs, result);                                                     \
    }                                                                                                          \
    void name##_phys(AddressSpace *as, hwaddr addr, type val)                                                  \
    {                                                                                                          \
        as_store(as, addr, val, size, big, MEMTXATTRS_UNSPECIFIED, NULL);                                      \
    }

LD(ldub, uint32_t, 1, false)
LD(lduw_le, uint32_t, 2, false)
LD(lduw_be, uint32_t, 2, true)
LD(ldl_le, uint32_t, 4, false)
LD(ldl_be, uint32_t, 4, true)
LD(ldq_le, uint64_t, 8, false)
LD(ldq_be, uint64_t, 8, true)
ST(stb, uint32_t, 1, false)
ST(stw_le, uint32_t, 2, false)
ST(stw_be, uint32_t, 2, true)
ST(stl_le, uint32_t, 4, false)
ST(stl_be, uint32_t, 4, true)
ST(stq_le, uint64_t, 8, false)
ST(stq_be, uint64_t, 8, true)

/* ---- caches ---- */

int64_t
address_space_cache_init(MemoryRegionCache *cache, AddressSpace *as, hwaddr addr, hwaddr len, bool is_write)
{
    *cache = MEMORY_REGION_CACHE_INVALID;
    if (!len)
        return -EINVAL;
    mem_read_lock();
    const FlatRange *fr = flatview_lookup(as_view(as), addr);
    int64_t r = -EINVAL;
    if (fr && (is_write ? fr->direct_write : fr->direct_read)) {
        uint64_t avail = fr->last - addr;
        uint64_t l = len - 1 < avail ? len : avail + 1;
        if (l > INT64_MAX)
            l = INT64_MAX;
        cache->xlat = addr;
        cache->len = l;
        cache->as = as;
        cache->is_write = is_write;
        r = (int64_t)l;
    }
    mem_read_unlock();
    return r;
}

void
address_space_cache_invalidate(MemoryRegionCache *cache, hwaddr addr, hwaddr access_len)
{
    if (!cache->as || addr >= cache->len || !access_len)
        return;
    if (access_len > cache->len - addr)
        access_len = cache->len - addr;
    mem_read_lock();
    FlatView *fv = as_view(cache->as);
    hwaddr a = cache->xlat + addr;
    while (access_len) {
        const FlatRange *fr = flatview_lookup(fv, a);
        if (!fr)
            break;
        uint64_t avail = fr->last - a;
        uint64_t l = access_len - 1 < avail ? access_len : avail + 1;
        if (fr->mr->ram_block)
            ram_mark_dirty(fr->mr->ram_block, fr->offset_in_region + (a - fr->start), l,
                           memory_region_get_dirty_log_mask(fr->mr));
        a += l;
        access_len -= l;
    }
    mem_read_unlock();
}

void
address_space_cache_destroy(MemoryRegionCache *cache)
{
    *cache = MEMORY_REGION_CACHE_INVALID;
}

static inline bool cache_ok(MemoryRegionCache *cache, hwaddr addr, unsigned size, MemTxResult *result)
{
    if (cache->as && addr < cache->len && size <= cache->len - addr)
        return true;
    if (result)
        *result = MEMTX_DECODE_ERROR;
    return false;
}

#define LDC(name, type, size, big)                                                                             \
    type address_space_##name##_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,                \
                                       MemTxResult *result)                                                    \
    {                                                                                                          \
        if (!cache_ok(cache, addr, size, result))                                                              \
            return 0;                                                                                          \
        return (type)as_load(cache->as, cache->xlat + addr, size, big, attrs, result);                         \
    }                                                                                                          \
    type name##_phys_cached(MemoryRegionCache *cache, hwaddr addr)                                             \
    {                                                                                                          \
        return address_space_##name##_cached(cache, addr, MEMTXATTRS_UNSPECIFIED, NULL);                       \
    }
#define STC(name, type, size, big)                                                                             \
    void address_space_##name##_cached(MemoryRegionCache *cache, hwaddr addr, type val, MemTxAttrs attrs,      \
                                       MemTxResult *result)                                                    \
    {                                                                                                          \
        if (cache_ok(cache, addr, size, result))                                                               \
            as_store(cache->as, cache->xlat + addr, val, size, big, attrs, result);                            \
    }                                                                                                          \
    void name##_phys_cached(MemoryRegionCache *cache, hwaddr addr, type val)                                   \
    {                                                                                                          \
        address_space_##name##_cached(cache, addr, val, MEMTXATTRS_UNSPECIFIED, NULL);                         \
    }

LDC(ldub, uint32_t, 1, false)
LDC(lduw_le, uint32_t, 2, false)
LDC(lduw_be, uint32_t, 2, true)
LDC(ldl_le, uint32_t, 4, false)
LDC(ldl_be, uint32_t, 4, true)
LDC(ldq_le, uint64_t, 8, false)
LDC(ldq_be, uint64_t, 8, true)
STC(stb, uint32_t, 1, false)
STC(stw_le, uint32_t, 2, false)
STC(stw_be, uint32_t, 2, true)
STC(stl_le, uint32_t, 4, false)
STC(stl_be, uint32_t, 4, true)
STC(stq_le, uint64_t, 8, false)
STC(stq_be, uint64_t, 8, true)

void
address_space_read_cached(MemoryRegionCache *cache, hwaddr addr, void *buf, int len)
{
    if (len <= 0)
        return;
    if (!cache_ok(cache, addr, (unsigned)len, NULL)) {
        memset(buf, 0, (size_t)len);
        return;
    }
    address_space_read(cache->as, cache->xlat + addr, MEMTXATTRS_UNSPECIFIED, buf, len);
}

void
address_space_write_cached(MemoryRegionCache *cache, hwaddr addr, void *buf, int len)
{
    if (len <= 0 || !cache_ok(cache, addr, (unsigned)len, NULL))
        return;
    address_space_write(cache->as, cache->xlat + addr, MEMTXATTRS_UNSPECIFIED, buf, len);
}

/* ---- translation and validity ---- */

MemoryRegion *
flatview_translate(FlatView *fv, hwaddr addr, hwaddr *xlat, hwaddr *len, bool is_write)
{
    const FlatRange *fr = flatview_lookup(fv, addr);
    if (!fr) {
        unsigned nx = next_range(fv, addr);
        if (nx < fv->nr && fv->starts[nx] - addr < *len)
            *len = fv->starts[nx] - addr;
        *xlat = 0;
        return NULL;
    }
    uint64_t avail = fr->last - addr;
    if (*len - 1 >= avail && *len)
        *len = avail + 1;
    *xlat = fr->offset_in_region + (addr - fr->start);
    return fr->mr;
}

MemoryRegion *
address_space_translate(AddressSpace *as, hwaddr addr, hwaddr *xlat, hwaddr *len, bool is_write)
{
    return flatview_translate(as_view(as), addr, xlat, len, is_write);
}

bool
address_space_access_valid(AddressSpace *as, hwaddr addr, int len, bool is_write)
{
    bool ok = true;
    if (len <= 0)
        return true;
    uint64_t rem = (uint64_t)len;
    mem_read_lock();
    FlatView *fv = as_view(as);
    while (rem && ok) {
        const FlatRange *fr = flatview_lookup(fv, addr);
        if (!fr) {
            ok = false;
            break;
        }
        uint64_t avail = fr->last - addr;
        uint64_t l = rem - 1 < avail ? rem : avail + 1;
        if (!(is_write ? fr->direct_write || fr->ignore_write : fr->direct_read) && !fr->ram_device) {
            hwaddr off = fr->offset_in_region + (addr - fr->start);
            for (uint64_t done = 0; done < l && ok;) {
                unsigned p = piece_size(fr, off + done, l - done);
                ok = ops_valid(fr->ops, fr->opaque, off + done, p, is_write);
                done += p;
            }
        }
        addr += l;
        rem -= l;
    }
    mem_read_unlock();
    return ok;
}

IOMMUTLBEntry
address_space_get_iotlb_entry(AddressSpace *as, hwaddr addr, bool is_write)
{
    IOMMUTLBEntry e = { .target_as = as, .iova = addr & ~(TARGET_PAGE_SIZE - 1),
                        .translated_addr = addr & ~(TARGET_PAGE_SIZE - 1), .addr_mask = TARGET_PAGE_SIZE - 1,
                        .perm = IOMMU_NONE };
    mem_read_lock();
    const FlatRange *fr = flatview_lookup(as_view(as), addr);
    if (fr)
        e.perm = fr->readonly ? IOMMU_RO : IOMMU_RW;
    mem_read_unlock();
    return e;
}

/* ---- map / unmap ---- */

#define BOUNCE_MAX (64 * 1024)

typedef struct Bounce {
    struct Bounce *next;
    AddressSpace *as;
    hwaddr addr;
    hwaddr len;
    uint8_t data[];
} Bounce;

static pthread_mutex_t bounce_lock = PTHREAD_MUTEX_INITIALIZER;
static Bounce *bounces;

void *
address_space_map(AddressSpace *as, hwaddr addr, hwaddr *plen, bool is_write)
{
    void *ret = NULL;
    hwaddr want = *plen;
    *plen = 0;
    if (!want)
        return NULL;
    mem_read_lock();
    FlatView *fv = as_view(as);
    const FlatRange *fr = flatview_lookup(fv, addr);
    if (!fr || (is_write && fr->ignore_write)) {
        mem_read_unlock();
        return NULL;
    }
    uint64_t avail = fr->last - addr;
    uint64_t l = want - 1 < avail ? want : avail + 1;
    if (is_write ? fr->direct_write : fr->direct_read) {
        ret = fr->host + (addr - fr->start);
        *plen = l;
        mem_read_unlock();
        return ret;
    }
    if (l > BOUNCE_MAX)
        l = BOUNCE_MAX;
    Bounce *b = malloc(sizeof(*b) + l);
    if (b) {
        b->as = as;
        b->addr = addr;
        b->len = l;
        if (!is_write)
            fv_rw(fv, fr, addr, MEMTXATTRS_UNSPECIFIED, b->data, l, false);
        else
            memset(b->data, 0, l);
        pthread_mutex_lock(&bounce_lock);
        b->next = bounces;
        bounces = b;
        pthread_mutex_unlock(&bounce_lock);
        *plen = l;
        ret = b->data;
    }
    mem_read_unlock();
    return ret;
}

void
address_space_unmap(AddressSpace *as, void *buffer, hwaddr len, int is_write, hwaddr access_len)
{
    Bounce *b = NULL;
    if (!buffer)
        return;
    pthread_mutex_lock(&bounce_lock);
    for (Bounce **pp = &bounces; *pp; pp = &(*pp)->next) {
        if ((*pp)->data == buffer) {
            b = *pp;
            *pp = b->next;
            break;
        }
    }
    pthread_mutex_unlock(&bounce_lock);
    if (b) {
        if (is_write && access_len) {
            if (access_len > b->len)
                access_len = b->len;
            address_space_write(b->as, b->addr, MEMTXATTRS_UNSPECIFIED, b->data, (int)access_len);
        }
        free(b);
        return;
    }
    if (is_write && access_len) {
        ram_addr_t off;
        MemoryRegion *mr = memory_region_from_host(buffer, &off);
        if (mr)
            ram_mark_dirty(mr->ram_block, off, access_len, memory_region_get_dirty_log_mask(mr));
    }
}
