/* Private to the memory module. */
#ifndef PLEXUS_MEMORY_INTERNAL_H
#define PLEXUS_MEMORY_INTERNAL_H

#include <plexus/memory.h>

#include <stdatomic.h>
#include <stdlib.h>

#define MR_MAGIC 0x6d656d72u

typedef unsigned __int128 u128;

struct Error {
    char *msg;
};

struct RAMBlock {
    MemoryRegion *mr;
    uint8_t *host;
    ram_addr_t offset;      /* in the process-wide RAM numbering */
    uint64_t used_length;
    uint64_t max_length;
    void *map_base;         /* what to munmap (NULL: caller memory) */
    size_t map_len;
    int fd;                 /* -1: none */
    bool resizeable;
    void (*resized)(const char *, uint64_t, void *);
    unsigned long *dirty[DIRTY_MEMORY_NUM]; /* one bit per page of max_length */
    RAMBlock *next;
};

struct CoalescedMemoryRange {
    hwaddr addr;
    uint64_t size;
    CoalescedMemoryRange *next;
};

struct MemoryRegionIoeventfd {
    hwaddr addr;
    unsigned size;
    bool match_data;
    uint64_t data;
    EventNotifier *e;
    MemoryRegion *mr; /* region the eventfd belongs to (address-space lists) */
};

struct DirtyBitmapSnapshot {
    uint64_t first_page; /* relative to the region's RAM */
    uint64_t npages;
    unsigned long dirty[];
};

/* One piece of a flat view: [start, last] shows mr at offset_in_region. Immutable once published. The first
 * 64 bytes hold everything an access needs (the ranges array is cache-line aligned). */
typedef struct FlatRange {
    hwaddr start;
    hwaddr last;
    MemoryRegion *mr;
    hwaddr offset_in_region;
    const MemoryRegionOps *ops; /* copies of mr's, to save a cache miss per I/O access */
    void *opaque;
    uint8_t *host;          /* host address of start when RAM-backed, else NULL */
    bool direct_read;       /* reads are a memcpy from host */
    bool direct_write;      /* writes are a memcpy to host */
    bool ignore_write;      /* ROM: writes vanish */
    bool ram_device;
    bool flush_coalesced;
    bool global_locking;
    uint8_t dirty_log_mask;
    bool readonly;
    /* second cache line: listeners, eventfds */
    bool romd;
    bool nonvolatile;
    bool has_coalesced;
    unsigned coalesced_gen;
    unsigned nr_ioev;
    const MemoryRegionIoeventfd *ioev;
} FlatRange;

struct FlatView {
    unsigned nr;
    hwaddr *starts;          /* starts[i] == ranges[i].start, for the search */
    FlatRange *ranges;
    MemoryRegion *root;
    MemoryRegionIoeventfd *ioev_pool;
};

/* rcu.c */
void mem_read_lock(void);
void mem_read_unlock(void);
void mem_retire(void *ptr, void (*fn)(void *));
void mem_reclaim(void);
void mem_synchronize(void);

/* region.c: the map lock */
void mem_lock(void);
void mem_unlock(void);
void mem_update_pending(void);
extern bool mem_global_dirty_log;
extern MemoryListener *mem_listeners;
extern AddressSpace *mem_address_spaces;

/* flatview.c */
FlatView *flatview_render(MemoryRegion *root);
void flatview_free(void *fv);
void flatview_publish_all(void);
void flatview_listener_replay(MemoryListener *l, AddressSpace *as, bool add);
const FlatRange *flatview_lookup(FlatView *fv, hwaddr addr);
FlatView *as_view(AddressSpace *as);
Int128 mr_size128(const MemoryRegion *mr);
void section_from_range(MemoryRegionSection *s, AddressSpace *as, FlatView *fv, const FlatRange *fr);

/* ram.c */
RAMBlock *ram_block_new(MemoryRegion *mr, uint8_t *host, uint64_t used, uint64_t max, void *map_base,
                        size_t map_len, int fd, Error **errp);
void ram_block_free(RAMBlock *rb);
void ram_mark_dirty(RAMBlock *rb, uint64_t offset, uint64_t len, uint8_t mask);
MemoryRegion *mr_resolve_ram(MemoryRegion *mr, uint64_t *off);

/* dispatch.c */
MemTxResult mr_dispatch_bytes(MemoryRegion *mr, const FlatRange *fr, hwaddr addr, uint8_t *buf, unsigned size,
                              bool is_write, MemTxAttrs attrs);
extern void (*mem_coalesced_flush)(void *);
extern void *mem_coalesced_flush_opaque;

static inline bool mr_valid(const MemoryRegion *mr)
{
    return mr && mr->magic == MR_MAGIC;
}

#endif
