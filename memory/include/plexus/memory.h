/*
 * plexus memory API: regions, address spaces, flat views and dispatch.
 *
 * The names, parameter lists and behaviour follow the physical memory API of QEMU's include/exec/memory.h so
 * that a QEMU author recognises them. The model in one paragraph (docs/memory.md has the long version):
 *
 *  - A MemoryRegion is a node of a tree. Leaves hold content: RAM (host memory, normally a sealed memfd that a
 *    device process can map), ROM, a ROM device, or I/O (callbacks in a MemoryRegionOps table). Containers
 *    hold subregions at offsets and priorities; an alias shows a window of another region.
 *  - An AddressSpace has a root region. Whenever the tree changes, the tree is rendered into a FlatView: a
 *    sorted array of non-overlapping ranges, each pointing at the leaf that is visible there (higher priority
 *    hides lower; among equal priorities the subregion added last wins). Accessors look an address up in the
 *    FlatView (binary search) and either copy host memory or call the leaf's callbacks.
 *  - MemoryListeners are told how the FlatView of an address space changes (region_add/del/nop and friends).
 *
 * Ownership and lifetime
 *  - Every struct in this header (MemoryRegion, AddressSpace, MemoryListener, EventNotifier,
 *    MemoryRegionCache) is allocated by the caller, may be embedded, and is initialised by its init function.
 *    Fields are private unless documented otherwise; read them through the accessor functions.
 *  - A region that was initialised must be released with memory_region_destroy() (RAM and names are freed
 *    there) before its storage is reused. An address space is released with address_space_destroy().
 *  - `struct Object *owner` is an opaque handle naming whoever owns a region; it may be NULL. See
 *    memory_region_ref().
 *
 * Concurrency (the precise rule)
 *  - "Map changes" are the functions that change a region, the tree, listeners or address spaces (region
 *    init_alias, add/del_subregion, set_*, transactions, listener (un)registration, coalescing,
 *    eventfds, set_log, resize, destroy, address_space_init/destroy). They are serialised by one internal
 *    recursive lock, so any thread may make them. memory_region_transaction_begin() takes that lock and the
 *    matching outermost commit releases it: a transaction is atomic with respect to other threads' map
 *    changes, which wait for it. memory_region_find(), memory_region_present() and mtree_info() take the
 *    lock briefly too.
 *  - "Accesses" are the address_space_* accessors (rw/read/write, ld and st, map/unmap, caches,
 *    access_valid, translate, get_iotlb_entry), the ld*_phys family, memory_region_dispatch_read/write and the
 *    dirty-bitmap functions. They take no lock and may run on any number of threads at once, concurrently with
 *    map changes. An access uses one published flat view from start to end: it sees the map entirely before
 *    or entirely after a committed change, never a mixture, never an open transaction's changes.
 *  - Accessor threads need NO registration and no per-thread setup or teardown: the first access made by a
 *    thread gives it a reader record automatically, recycled when the thread exits.
 *  - A replaced flat view is freed once every thread is outside accesses or entered them after the
 *    replacement; this never blocks the thread that changes the map. So device callbacks, which run inside an
 *    access, may make further accesses and map changes (a BAR remap from a register write is fine).
 *  - memory_region_destroy() and address_space_destroy() wait until accesses that other threads started
 *    before the call have finished (the calling thread's own accesses are not waited for). Do not call them
 *    from a callback of the region being destroyed, inside a transaction (it aborts), or while another thread
 *    inside an access waits for the calling thread.
 *  - Pointers returned by address_space_translate()/flatview_translate()/address_space_to_flatview() are valid
 *    while the caller holds memory_rcu_read_lock() (any thread, nestable, no registration); the MemoryRegion
 *    returned stays valid until it is destroyed.
 *  - Listener callbacks run with the map lock held (see MemoryListener).
 *
 * Guest ("native") endianness is little-endian. hwaddr is 64 bits; a region size of UINT64_MAX stands for
 * 2^64 (a root container that covers the whole address space).
 *
 * Not supported yet: IOMMU regions. Their types are declared; memory_region_init_iommu() and the IOMMU
 * notifier functions abort with a message saying so. Nothing else in this header is a stub.
 */
#ifndef PLEXUS_MEMORY_H
#define PLEXUS_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------------ */
/* Basic types                                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

typedef uint64_t hwaddr;
typedef uint64_t ram_addr_t;
#define HWADDR_PRIx PRIx64

#define RAM_ADDR_INVALID (~(ram_addr_t)0)
#define MAX_PHYS_ADDR_SPACE_BITS 62
#define MAX_PHYS_ADDR (((hwaddr)1 << MAX_PHYS_ADDR_SPACE_BITS) - 1)

/* Dirty-log granularity: one bit per 4 KiB page. */
#define TARGET_PAGE_BITS 12
#define TARGET_PAGE_SIZE ((hwaddr)1 << TARGET_PAGE_BITS)

/* Dirty memory clients (bit numbers of the dirty-log mask). */
#define DIRTY_MEMORY_VGA 0
#define DIRTY_MEMORY_CODE 1
#define DIRTY_MEMORY_MIGRATION 2
#define DIRTY_MEMORY_NUM 3

/* 128-bit integer for sizes up to 2^64 inclusive. */
__extension__ typedef __int128 Int128;

static inline Int128 int128_make64(uint64_t a) { return (Int128)a; }
static inline Int128 int128_makes64(int64_t a) { return (Int128)a; }
static inline Int128 int128_zero(void) { return 0; }
static inline Int128 int128_one(void) { return 1; }
static inline Int128 int128_2_64(void) { return (Int128)1 << 64; }
static inline Int128 int128_exts64(int64_t a) { return (Int128)a; }
/* Low 64 bits; the value must fit in 64 bits (it is a caller bug otherwise). */
static inline uint64_t int128_get64(Int128 a) { return (uint64_t)a; }
static inline uint64_t int128_getlo(Int128 a) { return (uint64_t)a; }
static inline int64_t int128_gethi(Int128 a) { return (int64_t)(a >> 64); }
static inline Int128 int128_add(Int128 a, Int128 b) { return a + b; }
static inline Int128 int128_sub(Int128 a, Int128 b) { return a - b; }
static inline Int128 int128_neg(Int128 a) { return -a; }
static inline Int128 int128_and(Int128 a, Int128 b) { return a & b; }
static inline Int128 int128_rshift(Int128 a, int n) { return a >> n; }
static inline bool int128_eq(Int128 a, Int128 b) { return a == b; }
static inline bool int128_ne(Int128 a, Int128 b) { return a != b; }
static inline bool int128_lt(Int128 a, Int128 b) { return a < b; }
static inline bool int128_le(Int128 a, Int128 b) { return a <= b; }
static inline bool int128_gt(Int128 a, Int128 b) { return a > b; }
static inline bool int128_ge(Int128 a, Int128 b) { return a >= b; }
static inline bool int128_nz(Int128 a) { return a != 0; }
static inline Int128 int128_min(Int128 a, Int128 b) { return a < b ? a : b; }
static inline Int128 int128_max(Int128 a, Int128 b) { return a > b ? a : b; }

/* ------------------------------------------------------------------------------------------------------ */
/* Errors                                                                                                 */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * Error: what went wrong and where, as text. Functions taking `Error **errp` report failure by storing a new
 * Error in *errp (which must be NULL on entry); errp may be NULL to ignore the error. The caller owns the
 * Error and frees it with error_free(). Passing &error_abort aborts on error; &error_fatal prints the
 * message to stderr and exits with status 1.
 */
typedef struct Error Error;
extern Error *error_abort;
extern Error *error_fatal;

/* error_free: release @err (NULL is accepted). */
void error_free(Error *err);
/* error_get_pretty: the human-readable message of @err; valid until error_free(). */
const char *error_get_pretty(const Error *err);
/* error_setg: store a new formatted error in *errp (no-op when errp is NULL). */
void error_setg(Error **errp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------------------------------------ */
/* Transactions: result and attributes                                                                     */
/* ------------------------------------------------------------------------------------------------------ */

typedef uint32_t MemTxResult;
#define MEMTX_OK 0
#define MEMTX_ERROR (1U << 0)        /* device returned an error */
#define MEMTX_DECODE_ERROR (1U << 1) /* nothing at that address, or the access was not valid there */

typedef struct MemTxAttrs {
    unsigned int unspecified : 1; /* no attributes were given */
    unsigned int secure : 1;
    unsigned int user : 1;
    unsigned int requester_id : 16;
} MemTxAttrs;

#define MEMTXATTRS_UNSPECIFIED ((MemTxAttrs){ .unspecified = 1 })

enum device_endian {
    DEVICE_NATIVE_ENDIAN, /* the guest's: little-endian */
    DEVICE_BIG_ENDIAN,
    DEVICE_LITTLE_ENDIAN,
};

/* fprintf-like output function for mtree_info(). */
typedef int (*fprintf_function)(FILE *f, const char *fmt, ...);

/* ------------------------------------------------------------------------------------------------------ */
/* Event notifiers (eventfd)                                                                              */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct EventNotifier {
    int rfd;
    int wfd;
} EventNotifier;

/* event_notifier_init: create a non-blocking close-on-exec eventfd, signalled if @active. 0 or -errno. */
int event_notifier_init(EventNotifier *e, int active);
/* event_notifier_cleanup: close it (safe on a notifier whose init failed or that was cleaned up). */
void event_notifier_cleanup(EventNotifier *e);
/* event_notifier_get_fd: the eventfd (to poll, or to hand to another process). */
int event_notifier_get_fd(const EventNotifier *e);
/* event_notifier_set: signal it (adds 1 to the counter). 0 or -errno. */
int event_notifier_set(EventNotifier *e);
/* event_notifier_test_and_clear: true if it was signalled; resets the counter. */
int event_notifier_test_and_clear(EventNotifier *e);

/* ------------------------------------------------------------------------------------------------------ */
/* Types                                                                                                  */
/* ------------------------------------------------------------------------------------------------------ */

struct Object; /* opaque owner handle */
typedef struct Object Object;
typedef struct MemoryRegion MemoryRegion;
typedef struct MemoryRegionOps MemoryRegionOps;
typedef struct MemoryRegionMmio MemoryRegionMmio;
typedef struct MemoryRegionSection MemoryRegionSection;
typedef struct MemoryListener MemoryListener;
typedef struct AddressSpace AddressSpace;
typedef struct FlatView FlatView;           /* private */
typedef struct RAMBlock RAMBlock;           /* private */
typedef struct CoalescedMemoryRange CoalescedMemoryRange; /* private */
typedef struct MemoryRegionIoeventfd MemoryRegionIoeventfd; /* private */
typedef struct MemoryRegionCache MemoryRegionCache;
typedef struct IOMMUMemoryRegion IOMMUMemoryRegion;

/* Snapshot of a dirty bitmap; release with free(). */
typedef struct DirtyBitmapSnapshot DirtyBitmapSnapshot;

/* Old-style per-size callbacks: index 0, 1, 2 for 1, 2 and 4-byte accesses. */
typedef uint32_t CPUReadMemoryFunc(void *opaque, hwaddr addr);
typedef void CPUWriteMemoryFunc(void *opaque, hwaddr addr, uint32_t value);

struct MemoryRegionMmio {
    CPUReadMemoryFunc *read[3];
    CPUWriteMemoryFunc *write[3];
};

/*
 * MemoryRegionOps: the callbacks of an I/O region, normally a `static const` table.
 *
 * Values passed to and from read/write are the numeric value of the access in the region's @endianness: a
 * DEVICE_BIG_ENDIAN device returning 0x11223344 for a 4-byte read at 0 puts the bytes 11 22 33 44 at
 * addresses 0..3. @addr is relative to the start of the region.
 *
 * valid (what the guest may do): an access with size outside [valid.min_access_size (1 if 0),
 * valid.max_access_size (4 if 0)], or not aligned to its size while !valid.unaligned, or for which
 * valid.accepts() returns false, fails with MEMTX_DECODE_ERROR and no callback is called.
 *
 * impl (what the callbacks handle): the library adapts valid accesses to them.
 *  - Split: an access larger than impl.max_access_size (4 if 0) becomes several callbacks of that size
 *    at increasing addresses; their values are combined in the region's endianness.
 *  - Widen: an access smaller than impl.min_access_size (1 if 0) becomes a callback of impl.min_access_size
 *    at the naturally aligned address containing it (several when it straddles such a boundary). Reads
 *    extract the requested bytes. Writes cannot read-modify-write (a read may have side effects), so the
 *    callback receives the requested bytes in their position within the wider word and ZERO in the other
 *    bytes; a device that needs sub-word writes must set impl.min_access_size to the smallest size it
 *    handles.
 *  - When !impl.unaligned, callbacks are always aligned to their size: an unaligned access (allowed by
 *    valid.unaligned) is carried out as the aligned callbacks covering it, extracting (reads) or
 *    zero-filling (writes) as for widening.
 * Every access size in valid and impl is 0 (the default) or 1, 2, 4 or 8, with min <= max; init functions
 * abort with a message naming the region otherwise.
 * read_with_attrs/write_with_attrs take precedence over read/write when set; read/write take precedence
 * over old_mmio. A region with no usable callback answers MEMTX_DECODE_ERROR (reads give 0).
 * request_ptr: optional; see memory_region_request_mmio_ptr().
 */
struct MemoryRegionOps {
    uint64_t (*read)(void *opaque, hwaddr addr, unsigned size);
    void (*write)(void *opaque, hwaddr addr, uint64_t data, unsigned size);
    MemTxResult (*read_with_attrs)(void *opaque, hwaddr addr, uint64_t *data, unsigned size,
                                   MemTxAttrs attrs);
    MemTxResult (*write_with_attrs)(void *opaque, hwaddr addr, uint64_t data, unsigned size,
                                    MemTxAttrs attrs);
    void *(*request_ptr)(void *opaque, hwaddr addr, unsigned *size, unsigned *offset);
    enum device_endian endianness;
    struct {
        unsigned min_access_size;
        unsigned max_access_size;
        bool unaligned;
        bool (*accepts)(void *opaque, hwaddr addr, unsigned size, bool is_write);
    } valid;
    struct {
        unsigned min_access_size;
        unsigned max_access_size;
        bool unaligned;
    } impl;
    const MemoryRegionMmio old_mmio;
};

/* ---- IOMMU (declared, not supported yet: see the top of this header) ---- */

typedef enum {
    IOMMU_NONE = 0,
    IOMMU_RO = 1,
    IOMMU_WO = 2,
    IOMMU_RW = 3,
} IOMMUAccessFlags;

#define IOMMU_ACCESS_FLAG(r, w) (((r) ? IOMMU_RO : 0) | ((w) ? IOMMU_WO : 0))

typedef struct IOMMUTLBEntry {
    AddressSpace *target_as;
    hwaddr iova;
    hwaddr translated_addr;
    hwaddr addr_mask; /* 0xfff = 4 KiB translation */
    IOMMUAccessFlags perm;
} IOMMUTLBEntry;

typedef enum {
    IOMMU_NOTIFIER_NONE = 0,
    IOMMU_NOTIFIER_UNMAP = 0x1,
    IOMMU_NOTIFIER_MAP = 0x2,
} IOMMUNotifierFlag;

#define IOMMU_NOTIFIER_ALL (IOMMU_NOTIFIER_MAP | IOMMU_NOTIFIER_UNMAP)

struct IOMMUNotifier;
typedef void (*IOMMUNotify)(struct IOMMUNotifier *notifier, IOMMUTLBEntry *data);

typedef struct IOMMUNotifier {
    IOMMUNotify notify;
    IOMMUNotifierFlag notifier_flags;
    hwaddr start; /* notify for start <= addr <= end */
    hwaddr end;
    struct IOMMUNotifier *next;
} IOMMUNotifier;

static inline void iommu_notifier_init(IOMMUNotifier *n, IOMMUNotify fn, IOMMUNotifierFlag flags,
                                       hwaddr start, hwaddr end)
{
    n->notify = fn;
    n->notifier_flags = flags;
    n->start = start;
    n->end = end;
    n->next = NULL;
}

enum IOMMUMemoryRegionAttr {
    IOMMU_ATTR_SPAPR_TCE_FD
};

typedef struct IOMMUMemoryRegionClass {
    IOMMUTLBEntry (*translate)(IOMMUMemoryRegion *iommu, hwaddr addr, IOMMUAccessFlags flag);
    uint64_t (*get_min_page_size)(IOMMUMemoryRegion *iommu);
    void (*notify_flag_changed)(IOMMUMemoryRegion *iommu, IOMMUNotifierFlag old_flags,
                                IOMMUNotifierFlag new_flags);
    void (*replay)(IOMMUMemoryRegion *iommu, IOMMUNotifier *notifier);
    int (*get_attr)(IOMMUMemoryRegion *iommu, enum IOMMUMemoryRegionAttr attr, void *data);
} IOMMUMemoryRegionClass;

/*
 * MemoryRegion: caller-allocated; initialise with one memory_region_init_*() function and release with
 * memory_region_destroy(). All fields are private (read them through the functions below).
 */
struct MemoryRegion {
    bool romd_mode;
    bool ram;
    bool subpage;
    bool readonly; /* for RAM regions */
    bool nonvolatile;
    bool rom_device;
    bool flush_coalesced_mmio;
    bool global_locking;
    uint8_t dirty_log_mask;
    bool is_iommu;
    RAMBlock *ram_block;
    Object *owner;

    const MemoryRegionOps *ops;
    void *opaque;
    MemoryRegion *container;
    Int128 size;
    hwaddr addr;
    void (*destructor)(MemoryRegion *mr);
    uint64_t align;
    bool terminates;
    bool ram_device;
    bool enabled;
    bool warning_printed;
    uint8_t vga_logging_count;
    MemoryRegion *alias;
    hwaddr alias_offset;
    int32_t priority;
    /* subregions, highest priority first */
    MemoryRegion *subregions_first;
    MemoryRegion *subregions_last;
    MemoryRegion *subregions_next;
    MemoryRegion *subregions_prev;
    CoalescedMemoryRange *coalesced;
    unsigned coalesced_gen;    /* bumped when the coalesced ranges change */
    char *name;
    unsigned ioeventfd_nb;
    MemoryRegionIoeventfd *ioeventfds;
    unsigned alias_count;      /* aliases pointing at this region */
    unsigned long refcount;    /* references taken by memory_region_ref() */
    MemoryRegion *mmio_ptr_regions; /* created by memory_region_request_mmio_ptr() */
    MemoryRegion *mmio_ptr_next;
    unsigned magic;            /* set by init, cleared by destroy */
    bool rendering;            /* on the current rendering path (alias cycle guard) */
};

struct IOMMUMemoryRegion {
    MemoryRegion parent_obj;
    IOMMUMemoryRegionClass *klass;
    IOMMUNotifier *iommu_notify;
    IOMMUNotifierFlag iommu_notify_flags;
};

#define IOMMU_NOTIFIER_FOREACH(n, mr) for ((n) = (mr)->iommu_notify; (n); (n) = (n)->next)

/*
 * MemoryListener: told about the flat view of one address space (or all, when registered with filter NULL).
 * Unused callbacks are NULL. The caller fills the callbacks and @priority, then registers it.
 *
 * Order: each committed change that alters any address space is bracketed by exactly one begin() and one
 * commit() per listener. Within it, for each address space: first every removed range in address order
 * (region_del, preceded by coalesced_mmio_del for its coalesced parts); then, in address order, region_nop
 * for each range that stayed (plus log_start/log_stop when its dirty-log mask changed) and region_add for
 * each new range (followed by coalesced_mmio_add); then eventfd_del/eventfd_add for the ioeventfds that went
 * away/appeared. The new flat view is already visible to accesses when these calls are made.
 * Listeners are called in ascending @priority for begin, region_add, region_nop, log_start, eventfd_add,
 * coalesced_mmio_add, log_sync, log_global_start and commit, and in descending @priority for region_del,
 * log_stop, eventfd_del, coalesced_mmio_del and log_global_stop ("lower = earlier during add, later during
 * del"); equal priorities keep registration order.
 *
 * Callbacks run with the map lock held: they may make accesses, read region state and call
 * memory_region_ref/unref. A map change made from a callback is not published in the middle of the
 * notification: it becomes a further begin..commit round right after the current one. The
 * MemoryRegionSection passed is only valid during the call.
 */
struct MemoryListener {
    void (*begin)(MemoryListener *listener);
    void (*commit)(MemoryListener *listener);
    void (*region_add)(MemoryListener *listener, MemoryRegionSection *section);
    void (*region_del)(MemoryListener *listener, MemoryRegionSection *section);
    void (*region_nop)(MemoryListener *listener, MemoryRegionSection *section);
    void (*log_start)(MemoryListener *listener, MemoryRegionSection *section, int old, int new);
    void (*log_stop)(MemoryListener *listener, MemoryRegionSection *section, int old, int new);
    void (*log_sync)(MemoryListener *listener, MemoryRegionSection *section);
    void (*log_global_start)(MemoryListener *listener);
    void (*log_global_stop)(MemoryListener *listener);
    void (*eventfd_add)(MemoryListener *listener, MemoryRegionSection *section, bool match_data,
                        uint64_t data, EventNotifier *e);
    void (*eventfd_del)(MemoryListener *listener, MemoryRegionSection *section, bool match_data,
                        uint64_t data, EventNotifier *e);
    void (*coalesced_mmio_add)(MemoryListener *listener, MemoryRegionSection *section, hwaddr addr,
                               hwaddr len);
    void (*coalesced_mmio_del)(MemoryListener *listener, MemoryRegionSection *section, hwaddr addr,
                               hwaddr len);
    /* Lower = earlier (during add), later (during del) */
    unsigned priority;
    /* private */
    AddressSpace *address_space;
    MemoryListener *link_next;
    bool registered;
};

/*
 * AddressSpace: caller-allocated; address_space_init() .. address_space_destroy(). Fields are private.
 */
struct AddressSpace {
    char *name;
    MemoryRegion *root;
    FlatView *current_map; /* published atomically, read lock-free */
    int ioeventfd_nb;
    MemoryRegionIoeventfd *ioeventfds; /* as last announced to listeners */
    AddressSpace *address_spaces_next;
};

/*
 * MemoryRegionSection: a piece of a region as mapped in an address space.
 * @mr: the leaf region (after following aliases); NULL for "nothing".
 * @fv/@address_space: the flat view and address space it was found in.
 * @offset_within_region: where the piece starts in @mr.
 * @size: its length (Int128, may be 2^64).
 * @offset_within_address_space: where it starts in the address space.
 * @readonly: writes are ignored (ROM, or a region made read-only).
 */
struct MemoryRegionSection {
    MemoryRegion *mr;
    FlatView *fv;
    AddressSpace *address_space;
    hwaddr offset_within_region;
    Int128 size;
    hwaddr offset_within_address_space;
    bool readonly;
};

/* ------------------------------------------------------------------------------------------------------ */
/* Region initialisation                                                                                  */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * Common to every init function: @mr is caller storage (its previous contents are ignored); @name is copied
 * (NULL allowed); @size is in bytes, UINT64_MAX meaning 2^64; the new region is enabled, unmapped, priority
 * 0. Functions with @errp leave @mr uninitialised-but-destroyable (memory_region_destroy() is a no-op on it)
 * when they fail.
 */

/* memory_region_init: a pure container; addresses not covered by subregions are unassigned. */
void memory_region_init(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size);

/*
 * memory_region_ref/unref: take/drop a reference that keeps the region's owner alive. When the region has no
 * owner (NULL) they do nothing. Otherwise they count in the region (see memory_region_refcount()) and call
 * the owner hooks installed with memory_set_owner_hooks(), if any. memory_region_find() returns a section
 * holding one reference.
 */
void memory_region_ref(MemoryRegion *mr);
void memory_region_unref(MemoryRegion *mr);
/* memory_region_refcount: references currently held through memory_region_ref() (0 without owner). */
unsigned long memory_region_refcount(const MemoryRegion *mr);
/* memory_set_owner_hooks: forward ref/unref of owned regions to the owner (NULL hooks: counting only). */
void memory_set_owner_hooks(void (*ref)(struct Object *owner), void (*unref)(struct Object *owner));

/* memory_region_init_io: an I/O region dispatching to @ops with @opaque. @ops NULL: every access fails. */
void memory_region_init_io(MemoryRegion *mr, struct Object *owner, const MemoryRegionOps *ops, void *opaque,
                           const char *name, uint64_t size);

/*
 * memory_region_init_ram_nomigrate / memory_region_init_ram: RAM backed by a sealed memfd: created with
 * MFD_CLOEXEC|MFD_ALLOW_SEALING, sized, sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL and mapped
 * MAP_SHARED, so another process may map memory_region_get_fd() and see the same bytes. Zero-filled.
 * (This library does no migration: the _nomigrate variants are the same as the plain ones.)
 */
void memory_region_init_ram_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name,
                                      uint64_t size, Error **errp);
void memory_region_init_ram(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                            Error **errp);

/* memory_region_init_ram_shared_nomigrate: @share true: as init_ram; false: private anonymous memory, no fd. */
void memory_region_init_ram_shared_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name,
                                             uint64_t size, bool share, Error **errp);

/* Flags for memory_region_init_ram_flags(). */
#define RAM_SHARED (1u << 1)    /* sealed memfd, MAP_SHARED (otherwise private anonymous memory) */
#define RAM_NORESERVE (1u << 7) /* MAP_NORESERVE: do not reserve swap */

/* memory_region_init_ram_flags(_nomigrate): RAM with RAM_* flags; unknown flags are an error. */
void memory_region_init_ram_flags(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                  uint32_t ram_flags, Error **errp);
void memory_region_init_ram_flags_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name,
                                            uint64_t size, uint32_t ram_flags, Error **errp);

/*
 * memory_region_init_resizeable_ram: RAM of @size that memory_region_ram_resize() may grow up to @max_size.
 * The whole @max_size is one sealed memfd mapped once, so host pointers never move. @resized (may be NULL)
 * is called with the region name, the new length and the host pointer after each resize.
 */
void memory_region_init_resizeable_ram(MemoryRegion *mr, struct Object *owner, const char *name,
                                       uint64_t size, uint64_t max_size,
                                       void (*resized)(const char *, uint64_t length, void *host),
                                       Error **errp);

/*
 * memory_region_init_ram_from_file: RAM backed by the file at @path (created 0600 if missing, grown to @size
 * if shorter; when @path is a directory, e.g. a hugetlbfs mount, an unnamed file inside it). @share: MAP_SHARED (writes reach the file) or MAP_PRIVATE. @align: 0 or a power of two for the
 * host address alignment.
 */
void memory_region_init_ram_from_file(MemoryRegion *mr, struct Object *owner, const char *name,
                                      uint64_t size, uint64_t align, bool share, const char *path,
                                      Error **errp);

/*
 * memory_region_init_ram_from_fd: RAM backed by @fd (e.g. a memfd received from another process), mapped
 * MAP_SHARED when @share (writes are seen through every other mapping of @fd) or MAP_PRIVATE (guest writes
 * stay private to this mapping). The file must be at least @size long (it is grown if it is shorter and
 * growable). On success the region owns @fd and closes it in memory_region_destroy(); on failure (bad fd,
 * size 0, mmap failure) errp is set and @fd is left alone.
 */
void memory_region_init_ram_from_fd(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                    bool share, int fd, Error **errp);

/* memory_region_init_ram_ptr: RAM at caller memory @ptr (not freed by the region; no fd). */
void memory_region_init_ram_ptr(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                void *ptr);

/*
 * memory_region_init_ram_device_ptr: like init_ram_ptr for memory of a device (e.g. a mapped BAR): accesses
 * are never a plain memcpy but one host load/store of the access size (1, 2, 4 or 8 bytes, little-endian),
 * so the device sees each guest access as it was made.
 */
void memory_region_init_ram_device_ptr(MemoryRegion *mr, struct Object *owner, const char *name,
                                       uint64_t size, void *ptr);

/*
 * memory_region_init_alias: a window of @size bytes onto @orig starting at @offset within @orig. Accessing
 * the alias at x accesses @orig at @offset + x (see memory_region_set_alias_offset()). @orig must stay
 * initialised while the alias exists. An alias that leads back to a region containing it (a cycle) shows
 * nothing at the point where the cycle closes.
 */
void memory_region_init_alias(MemoryRegion *mr, struct Object *owner, const char *name, MemoryRegion *orig,
                              hwaddr offset, uint64_t size);

/* memory_region_init_rom(_nomigrate): read-only RAM (sealed memfd, as init_ram). Guest writes are ignored;
 * the host fills it through memory_region_get_ram_ptr(). */
void memory_region_init_rom_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name,
                                      uint64_t size, Error **errp);
void memory_region_init_rom(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                            Error **errp);

/*
 * memory_region_init_rom_device(_nomigrate): a ROM device: RAM plus @ops. In romd mode (the initial mode)
 * reads come from the RAM without calling @ops and writes go to ops->write; in MMIO mode
 * (memory_region_rom_device_set_romd(mr, false)) reads go to ops->read too.
 */
void memory_region_init_rom_device_nomigrate(MemoryRegion *mr, struct Object *owner,
                                             const MemoryRegionOps *ops, void *opaque, const char *name,
                                             uint64_t size, Error **errp);
void memory_region_init_rom_device(MemoryRegion *mr, struct Object *owner, const MemoryRegionOps *ops,
                                   void *opaque, const char *name, uint64_t size, Error **errp);

/* memory_region_init_reservation: claims an address range; every access fails with MEMTX_DECODE_ERROR. */
static inline void memory_region_init_reservation(MemoryRegion *mr, Object *owner, const char *name,
                                                  uint64_t size)
{
    memory_region_init_io(mr, owner, NULL, mr, name, size);
}

/* memory_region_init_iommu: NOT SUPPORTED YET: aborts with a message. */
void memory_region_init_iommu(void *_iommu_mr, size_t instance_size, const char *mrtypename, Object *owner,
                              const char *name, uint64_t size);

/*
 * memory_region_destroy: release what init allocated (RAM mapping, memfd or adopted fd, name, eventfds,
 * coalescing ranges). The region must not be mapped (remove it from its container first) and no alias may
 * point at it. Its own subregions are detached. Waits for accesses started on other threads before the call
 * to finish. Afterwards the caller may free or reuse @mr. Calling it on zeroed storage or twice is a no-op.
 */
void memory_region_destroy(MemoryRegion *mr);

/* ------------------------------------------------------------------------------------------------------ */
/* Region queries                                                                                         */
/* ------------------------------------------------------------------------------------------------------ */

struct Object *memory_region_owner(MemoryRegion *mr);
/* memory_region_size: size in bytes; a 2^64 region reports UINT64_MAX. */
uint64_t memory_region_size(MemoryRegion *mr);

static inline bool memory_region_is_ram(MemoryRegion *mr)
{
    return mr->ram;
}

bool memory_region_is_ram_device(MemoryRegion *mr);

static inline bool memory_region_is_romd(MemoryRegion *mr)
{
    return mr->rom_device && mr->romd_mode;
}

static inline IOMMUMemoryRegion *memory_region_get_iommu(MemoryRegion *mr)
{
    if (mr->alias)
        return memory_region_get_iommu(mr->alias);
    if (mr->is_iommu)
        return (IOMMUMemoryRegion *)mr;
    return NULL;
}

static inline IOMMUMemoryRegionClass *memory_region_get_iommu_class_nocheck(IOMMUMemoryRegion *iommu_mr)
{
    return iommu_mr->klass;
}

#define memory_region_is_iommu(mr) (memory_region_get_iommu(mr) != NULL)

/* IOMMU functions: NOT SUPPORTED YET (no IOMMU region can be created); they abort with a message. */
uint64_t memory_region_iommu_get_min_page_size(IOMMUMemoryRegion *iommu_mr);
void memory_region_notify_iommu(IOMMUMemoryRegion *iommu_mr, IOMMUTLBEntry entry);
void memory_region_notify_one(IOMMUNotifier *notifier, IOMMUTLBEntry *entry);
void memory_region_register_iommu_notifier(MemoryRegion *mr, IOMMUNotifier *n);
void memory_region_iommu_replay(IOMMUMemoryRegion *iommu_mr, IOMMUNotifier *n);
void memory_region_iommu_replay_all(IOMMUMemoryRegion *iommu_mr);
void memory_region_unregister_iommu_notifier(MemoryRegion *mr, IOMMUNotifier *n);
int memory_region_iommu_get_attr(IOMMUMemoryRegion *iommu_mr, enum IOMMUMemoryRegionAttr attr, void *data);

/* memory_region_name: the name given at init ("" when none). */
const char *memory_region_name(const MemoryRegion *mr);

/* memory_region_is_logging: dirty logging is on for @client (set_log, or global logging for MIGRATION). */
bool memory_region_is_logging(MemoryRegion *mr, uint8_t client);
/* memory_region_get_dirty_log_mask: bit n set = client n logs this region. */
uint8_t memory_region_get_dirty_log_mask(MemoryRegion *mr);

static inline bool memory_region_is_rom(MemoryRegion *mr)
{
    return mr->ram && mr->readonly;
}

/* memory_region_is_nonvolatile / set_nonvolatile: a flag for the machine (e.g. NVDIMM); no other effect. */
bool memory_region_is_nonvolatile(MemoryRegion *mr);
void memory_region_set_nonvolatile(MemoryRegion *mr, bool nonvolatile);

/* memory_region_get_fd: the fd backing a RAM/ROM/ROM-device region (following aliases), or -1. The region
 * keeps ownership; dup() it to keep it. */
int memory_region_get_fd(MemoryRegion *mr);

/* memory_region_from_host: the RAM region whose host memory contains @ptr (or NULL); *offset = offset of
 * @ptr within it. */
MemoryRegion *memory_region_from_host(void *ptr, ram_addr_t *offset);

/* memory_region_get_ram_ptr: host pointer to the start of a RAM/ROM/ROM-device region (following aliases,
 * plus the alias offset), or NULL for other regions. Stable for the region's life. Writes made through it
 * are not dirty-logged (use memory_region_set_dirty()). */
void *memory_region_get_ram_ptr(MemoryRegion *mr);

/* memory_region_ram_resize: change the used size of resizeable RAM (within its max_size). Errors: not
 * resizeable RAM, @newsize 0, or above max_size. Bytes beyond a shrunk size read as zero when regrown. */
void memory_region_ram_resize(MemoryRegion *mr, ram_addr_t newsize, Error **errp);

/* ------------------------------------------------------------------------------------------------------ */
/* Dirty logging (4 KiB pages; addresses relative to the RAM region)                                      */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * memory_region_set_log: turn dirty logging for @client on or off for a RAM region. While on, writes made
 * through an address space and memory_region_set_dirty() mark pages dirty for that client. Listeners get
 * log_start/log_stop.
 */
void memory_region_set_log(MemoryRegion *mr, bool log, unsigned client);
/* memory_region_get_dirty: true if any page overlapping [addr, addr+size) is dirty for @client. */
bool memory_region_get_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size, unsigned client);
/* memory_region_set_dirty: mark the pages overlapping [addr, addr+size) dirty for every logging client. */
void memory_region_set_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size);
/*
 * memory_region_snapshot_and_clear_dirty: atomically take and clear the @client bits of the pages
 * overlapping [addr, addr+size). Release the snapshot with free().
 */
DirtyBitmapSnapshot *memory_region_snapshot_and_clear_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size,
                                                            unsigned client);
/* memory_region_snapshot_get_dirty: true if a page overlapping [addr, addr+size) is dirty in @snap; the range
 * must lie within the snapshot's range. */
bool memory_region_snapshot_get_dirty(MemoryRegion *mr, DirtyBitmapSnapshot *snap, hwaddr addr,
                                      hwaddr size);
/* memory_region_reset_dirty: clear the @client bits of the pages overlapping [addr, addr+size). */
void memory_region_reset_dirty(MemoryRegion *mr, hwaddr addr, hwaddr size, unsigned client);

/* ------------------------------------------------------------------------------------------------------ */
/* Region attributes                                                                                      */
/* ------------------------------------------------------------------------------------------------------ */

/* memory_region_set_readonly: guest writes to this RAM region (or alias) are ignored while set. */
void memory_region_set_readonly(MemoryRegion *mr, bool readonly);
/* memory_region_rom_device_set_romd: switch a ROM device between romd (true) and MMIO (false) mode. */
void memory_region_rom_device_set_romd(MemoryRegion *mr, bool romd_mode);

/*
 * Coalescing: ranges of an I/O region whose writes a listener may batch (coalesced_mmio_add/del are called
 * with the address-space range of each coalesced part that is mapped). Accesses to a region flagged
 * flush-coalesced first call the hook set with memory_set_coalesced_flush_hook().
 */
/* memory_region_set_coalescing: coalesce the whole region. */
void memory_region_set_coalescing(MemoryRegion *mr);
/* memory_region_add_coalescing: coalesce [offset, offset+size) of the region; also sets flush-coalesced. */
void memory_region_add_coalescing(MemoryRegion *mr, hwaddr offset, uint64_t size);
/* memory_region_clear_coalescing: drop every coalesced range (listeners get coalesced_mmio_del). */
void memory_region_clear_coalescing(MemoryRegion *mr);
/* memory_region_set_flush_coalesced: accesses to this region flush coalesced writes first. */
void memory_region_set_flush_coalesced(MemoryRegion *mr);
/* memory_region_clear_flush_coalesced: stop that (unless the region itself has coalesced ranges). */
void memory_region_clear_flush_coalesced(MemoryRegion *mr);
/* memory_set_coalesced_flush_hook: the flush function (NULL: none). */
void memory_set_coalesced_flush_hook(void (*flush)(void *opaque), void *opaque);

/*
 * memory_region_clear_global_locking: callbacks of this region run without the global lock. The global lock
 * is whatever memory_set_global_lock_hooks() installed (none by default); callbacks of other regions run
 * between its lock() and unlock(). The hooks must allow recursion (a callback may access another region).
 */
void memory_region_clear_global_locking(MemoryRegion *mr);
void memory_set_global_lock_hooks(void (*lock)(void), void (*unlock)(void));

/*
 * memory_region_add_eventfd: a guest write of @size bytes (0: any size) at @addr in @mr, with value @data
 * when @match_data (compared with the value the write callback would have received, i.e. in the region's
 * endianness), signals @e instead of calling the region's write callback. This happens in the software
 * dispatch path (address-space accessors and memory_region_dispatch_write). Listeners get eventfd_add with
 * the address-space location. The region only keeps the pointer: @e must outlive the registration.
 */
void memory_region_add_eventfd(MemoryRegion *mr, hwaddr addr, unsigned size, bool match_data, uint64_t data,
                               EventNotifier *e);
/* memory_region_del_eventfd: undo memory_region_add_eventfd() with the same arguments. */
void memory_region_del_eventfd(MemoryRegion *mr, hwaddr addr, unsigned size, bool match_data, uint64_t data,
                               EventNotifier *e);

/* ------------------------------------------------------------------------------------------------------ */
/* The tree                                                                                               */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * memory_region_add_subregion: map @subregion at @offset in @mr with priority 0. It must not already be
 * mapped. Overlaps with siblings are allowed (for priority 0 siblings, which one shows is unspecified by
 * the seed; here the one added last wins).
 */
void memory_region_add_subregion(MemoryRegion *mr, hwaddr offset, MemoryRegion *subregion);
/* memory_region_add_subregion_overlap: same with @priority: higher hides lower where they overlap. */
void memory_region_add_subregion_overlap(MemoryRegion *mr, hwaddr offset, MemoryRegion *subregion,
                                         int priority);
/* memory_region_get_ram_addr: offset of the region's RAM in the process-wide RAM numbering, or
 * RAM_ADDR_INVALID. */
ram_addr_t memory_region_get_ram_addr(MemoryRegion *mr);
/* memory_region_get_alignment: host alignment of the region's RAM (0 when none). */
uint64_t memory_region_get_alignment(const MemoryRegion *mr);
/* memory_region_del_subregion: unmap @subregion from @mr (it must be a subregion of @mr). */
void memory_region_del_subregion(MemoryRegion *mr, MemoryRegion *subregion);
/* memory_region_set_enabled: a disabled region behaves as if it were removed from its container. */
void memory_region_set_enabled(MemoryRegion *mr, bool enabled);
/* memory_region_set_address: move a (possibly mapped) region to @addr within its container. */
void memory_region_set_address(MemoryRegion *mr, hwaddr addr);
/* memory_region_set_size: resize the region as seen in the map (UINT64_MAX = 2^64). For RAM it must not
 * exceed the RAM allocated; use memory_region_ram_resize() to change that. */
void memory_region_set_size(MemoryRegion *mr, uint64_t size);
/* memory_region_set_alias_offset: point an alias at a different offset of its target. */
void memory_region_set_alias_offset(MemoryRegion *mr, hwaddr offset);
/* memory_region_present: true if something other than @container itself is visible at @addr of it. */
bool memory_region_present(MemoryRegion *container, hwaddr addr);
/* memory_region_is_mapped: true if @mr is a subregion of a container (or aliased into one). */
bool memory_region_is_mapped(MemoryRegion *mr);

/*
 * memory_region_find: the first visible piece in [addr, addr+size) relative to @mr, in the address space
 * whose root contains @mr. .size is 0 and .mr NULL when nothing is there. .offset_within_region is relative
 * to the returned .mr. When .mr is set the section holds a reference on it: drop it with
 * memory_region_unref(section.mr). .fv must not be dereferenced after the call.
 */
MemoryRegionSection memory_region_find(MemoryRegion *mr, hwaddr addr, uint64_t size);

/* memory_global_dirty_log_sync: call log_sync for every mapped range with dirty logging on. */
void memory_global_dirty_log_sync(void);

/*
 * memory_region_transaction_begin/commit: group map changes. Nesting is allowed. Changes become visible to
 * accesses and listeners at the outermost commit, all at once. begin takes the map lock; the outermost
 * commit releases it (so begin and commit must be called on the same thread).
 */
void memory_region_transaction_begin(void);
void memory_region_transaction_commit(void);

/*
 * memory_listener_register: add @listener for address space @filter (NULL: every address space). It is
 * immediately told the current map: begin, then region_add (and log_start, eventfd_add, coalesced_mmio_add
 * where they apply) for every range, then commit; plus log_global_start if global logging is on.
 */
void memory_listener_register(MemoryListener *listener, AddressSpace *filter);
/* memory_listener_unregister: remove it; it is told begin, region_del for every range, commit. */
void memory_listener_unregister(MemoryListener *listener);

/* memory_global_dirty_log_start/stop: log every RAM region for DIRTY_MEMORY_MIGRATION; listeners get
 * log_global_start/stop. */
void memory_global_dirty_log_start(void);
void memory_global_dirty_log_stop(void);

/*
 * mtree_info: print every address space's region tree like QEMU's `info mtree`: one line per region,
 * "<start>-<end> (prio <p>, <kind>): <name>", indented by depth, kind one of ram, rom, romd, i/o, container,
 * and for aliases "... (prio p, <kind of target>): alias <name> @<target> <start>-<end>" ; disabled regions
 * end with " [disabled]". With @flatview, also each address space's flat view, one line per range.
 * @dispatch_tree is accepted and ignored (no separate dispatch tree exists). Output goes through
 * @mon_printf(@f, ...).
 */
void mtree_info(fprintf_function mon_printf, void *f, bool flatview, bool dispatch_tree);

/*
 * memory_region_request_mmio_ptr: ask an I/O region's ops->request_ptr for host memory that backs @addr
 * (for execution from MMIO). When it gives some, that memory is mapped over the region as a RAM subregion
 * until memory_region_invalidate_mmio_ptr(). Returns true when it did.
 */
bool memory_region_request_mmio_ptr(MemoryRegion *mr, hwaddr addr);
/* memory_region_invalidate_mmio_ptr: drop such RAM subregions overlapping [offset, offset+size). */
void memory_region_invalidate_mmio_ptr(MemoryRegion *mr, hwaddr offset, unsigned size);

/*
 * memory_region_dispatch_read/write: one access of @size (1, 2, 4 or 8) bytes at @addr of @mr, with the
 * valid/impl rules of MemoryRegionOps applied. The value is the guest-endian (little-endian) value of the
 * bytes. RAM, ROM and romd reads are served from memory; ROM writes are ignored.
 */
MemTxResult memory_region_dispatch_read(MemoryRegion *mr, hwaddr addr, uint64_t *pval, unsigned size,
                                        MemTxAttrs attrs);
MemTxResult memory_region_dispatch_write(MemoryRegion *mr, hwaddr addr, uint64_t data, unsigned size,
                                         MemTxAttrs attrs);

/* ------------------------------------------------------------------------------------------------------ */
/* Address spaces                                                                                         */
/* ------------------------------------------------------------------------------------------------------ */

/* address_space_init: an address space showing @root (typically a container of size UINT64_MAX). */
void address_space_init(AddressSpace *as, MemoryRegion *root, const char *name);
/* address_space_destroy: unregister its listeners, wait for accesses in flight, free the flat view. */
void address_space_destroy(AddressSpace *as);
/* address_space_to_flatview: the current flat view (only while holding memory_rcu_read_lock()). */
FlatView *address_space_to_flatview(AddressSpace *as);

/*
 * Read-side critical section for callers that keep pointers from address_space_translate() or
 * address_space_to_flatview(). Accessors do this by themselves; nesting is allowed; no registration.
 */
void memory_rcu_read_lock(void);
void memory_rcu_read_unlock(void);

/*
 * address_space_rw/read/write: transfer @len bytes at @addr. The range is cut at region boundaries; RAM is
 * copied, ROM ignores writes, I/O regions get accesses no larger than their valid.max_access_size (4 if 0)
 * and no larger than the alignment of the address unless valid.unaligned. Unassigned bytes read as 0 and
 * make the result include MEMTX_DECODE_ERROR; the rest of the transfer still happens. Returns the OR of the
 * results of all pieces.
 */
MemTxResult address_space_rw(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len,
                             bool is_write);
MemTxResult address_space_write(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, const uint8_t *buf, int len);
MemTxResult address_space_read(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len);

/*
 * address_space_ld* / st*: load/store 1, 2, 4 or 8 bytes; _le/_be give the byte order of the value.
 * @result (may be NULL) receives the MemTxResult. Same cutting rules as address_space_rw(), so an 8-byte
 * load from a device whose valid.max_access_size is 4 is two 4-byte accesses.
 */
uint32_t address_space_ldub(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result);
uint32_t address_space_lduw_le(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result);
uint32_t address_space_lduw_be(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result);
uint32_t address_space_ldl_le(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result);
uint32_t address_space_ldl_be(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result);
uint64_t address_space_ldq_le(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result);
uint64_t address_space_ldq_be(AddressSpace *as, hwaddr addr, MemTxAttrs attrs, MemTxResult *result);
void address_space_stb(AddressSpace *as, hwaddr addr, uint32_t val, MemTxAttrs attrs, MemTxResult *result);
void address_space_stw_le(AddressSpace *as, hwaddr addr, uint32_t val, MemTxAttrs attrs, MemTxResult *result);
void address_space_stw_be(AddressSpace *as, hwaddr addr, uint32_t val, MemTxAttrs attrs, MemTxResult *result);
void address_space_stl_le(AddressSpace *as, hwaddr addr, uint32_t val, MemTxAttrs attrs, MemTxResult *result);
void address_space_stl_be(AddressSpace *as, hwaddr addr, uint32_t val, MemTxAttrs attrs, MemTxResult *result);
void address_space_stq_le(AddressSpace *as, hwaddr addr, uint64_t val, MemTxAttrs attrs, MemTxResult *result);
void address_space_stq_be(AddressSpace *as, hwaddr addr, uint64_t val, MemTxAttrs attrs, MemTxResult *result);

/* The same with MEMTXATTRS_UNSPECIFIED and the result discarded. */
uint32_t ldub_phys(AddressSpace *as, hwaddr addr);
uint32_t lduw_le_phys(AddressSpace *as, hwaddr addr);
uint32_t lduw_be_phys(AddressSpace *as, hwaddr addr);
uint32_t ldl_le_phys(AddressSpace *as, hwaddr addr);
uint32_t ldl_be_phys(AddressSpace *as, hwaddr addr);
uint64_t ldq_le_phys(AddressSpace *as, hwaddr addr);
uint64_t ldq_be_phys(AddressSpace *as, hwaddr addr);
void stb_phys(AddressSpace *as, hwaddr addr, uint32_t val);
void stw_le_phys(AddressSpace *as, hwaddr addr, uint32_t val);
void stw_be_phys(AddressSpace *as, hwaddr addr, uint32_t val);
void stl_le_phys(AddressSpace *as, hwaddr addr, uint32_t val);
void stl_be_phys(AddressSpace *as, hwaddr addr, uint32_t val);
void stq_le_phys(AddressSpace *as, hwaddr addr, uint64_t val);
void stq_be_phys(AddressSpace *as, hwaddr addr, uint64_t val);

/*
 * MemoryRegionCache: repeated access to one RAM range of an address space (e.g. a virtqueue). Accesses go
 * through the address space at @xlat + offset, so a map change is always seen; the cache only checks bounds.
 * @xlat: start address in the address space; @len: length usable; @as: NULL when invalid.
 */
struct MemoryRegionCache {
    hwaddr xlat;
    hwaddr len;
    AddressSpace *as;
    bool is_write;
};

#define MEMORY_REGION_CACHE_INVALID ((MemoryRegionCache){ .as = NULL })

/*
 * address_space_cache_init: only RAM can be cached. Returns how many bytes from @addr are usable (at most
 * @len: the contiguous RAM there), or -EINVAL when @addr is not RAM (or is ROM while @is_write), leaving the
 * cache invalid. Offsets passed to the _cached accessors are relative to @addr and must lie within it.
 */
int64_t address_space_cache_init(MemoryRegionCache *cache, AddressSpace *as, hwaddr addr, hwaddr len,
                                 bool is_write);
/* address_space_cache_invalidate: mark [addr, addr+access_len) of the cache as written (dirty logging). */
void address_space_cache_invalidate(MemoryRegionCache *cache, hwaddr addr, hwaddr access_len);
/* address_space_cache_destroy: make the cache invalid (safe on an invalid cache). */
void address_space_cache_destroy(MemoryRegionCache *cache);

uint32_t address_space_ldub_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,
                                   MemTxResult *result);
uint32_t address_space_lduw_le_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,
                                      MemTxResult *result);
uint32_t address_space_lduw_be_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,
                                      MemTxResult *result);
uint32_t address_space_ldl_le_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,
                                     MemTxResult *result);
uint32_t address_space_ldl_be_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,
                                     MemTxResult *result);
uint64_t address_space_ldq_le_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,
                                     MemTxResult *result);
uint64_t address_space_ldq_be_cached(MemoryRegionCache *cache, hwaddr addr, MemTxAttrs attrs,
                                     MemTxResult *result);
void address_space_stb_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val, MemTxAttrs attrs,
                              MemTxResult *result);
void address_space_stw_le_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val, MemTxAttrs attrs,
                                 MemTxResult *result);
void address_space_stw_be_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val, MemTxAttrs attrs,
                                 MemTxResult *result);
void address_space_stl_le_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val, MemTxAttrs attrs,
                                 MemTxResult *result);
void address_space_stl_be_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val, MemTxAttrs attrs,
                                 MemTxResult *result);
void address_space_stq_le_cached(MemoryRegionCache *cache, hwaddr addr, uint64_t val, MemTxAttrs attrs,
                                 MemTxResult *result);
void address_space_stq_be_cached(MemoryRegionCache *cache, hwaddr addr, uint64_t val, MemTxAttrs attrs,
                                 MemTxResult *result);

uint32_t ldub_phys_cached(MemoryRegionCache *cache, hwaddr addr);
uint32_t lduw_le_phys_cached(MemoryRegionCache *cache, hwaddr addr);
uint32_t lduw_be_phys_cached(MemoryRegionCache *cache, hwaddr addr);
uint32_t ldl_le_phys_cached(MemoryRegionCache *cache, hwaddr addr);
uint32_t ldl_be_phys_cached(MemoryRegionCache *cache, hwaddr addr);
uint64_t ldq_le_phys_cached(MemoryRegionCache *cache, hwaddr addr);
uint64_t ldq_be_phys_cached(MemoryRegionCache *cache, hwaddr addr);
void stb_phys_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val);
void stw_le_phys_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val);
void stw_be_phys_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val);
void stl_le_phys_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val);
void stl_be_phys_cached(MemoryRegionCache *cache, hwaddr addr, uint32_t val);
void stq_le_phys_cached(MemoryRegionCache *cache, hwaddr addr, uint64_t val);
void stq_be_phys_cached(MemoryRegionCache *cache, hwaddr addr, uint64_t val);

/* address_space_read_cached/write_cached: @len bytes at offset @addr of the cache (must be within it). */
void address_space_read_cached(MemoryRegionCache *cache, hwaddr addr, void *buf, int len);
void address_space_write_cached(MemoryRegionCache *cache, hwaddr addr, void *buf, int len);

/* address_space_get_iotlb_entry: without IOMMUs, the identity entry for the page of @addr (perm IOMMU_NONE
 * when nothing is mapped there, IOMMU_RO for read-only memory). */
IOMMUTLBEntry address_space_get_iotlb_entry(AddressSpace *as, hwaddr addr, bool is_write);

/*
 * flatview_translate / address_space_translate: the leaf region at @addr (NULL if unassigned), *xlat = offset
 * within it, *len reduced to what stays inside it. Hold memory_rcu_read_lock() while using @fv.
 */
MemoryRegion *flatview_translate(FlatView *fv, hwaddr addr, hwaddr *xlat, hwaddr *len, bool is_write);
MemoryRegion *address_space_translate(AddressSpace *as, hwaddr addr, hwaddr *xlat, hwaddr *len,
                                      bool is_write);

/* address_space_access_valid: would an access of @len bytes at @addr succeed (every piece mapped, RAM or
 * accepted by the region's valid rules)? */
bool address_space_access_valid(AddressSpace *as, hwaddr addr, int len, bool is_write);

/*
 * address_space_map: host pointer for [addr, addr+*plen). RAM gives a direct pointer and *plen is cut to
 * the contiguous RAM there. Anything else gives a bounce buffer of at most 64 KiB (cut at the region's
 * end), filled by reading when !is_write. Returns NULL with *plen = 0 when nothing is mapped at @addr (or
 * for writes to ROM).
 */
void *address_space_map(AddressSpace *as, hwaddr addr, hwaddr *plen, bool is_write);
/* address_space_unmap: release what map gave; @access_len bytes were written when @is_write (RAM: marked
 * dirty; bounce buffer: written back through the address space). */
void address_space_unmap(AddressSpace *as, void *buffer, hwaddr len, int is_write, hwaddr access_len);

/*
 * Pieces of address_space_read(), public as in the seed: flatview_read() and flatview_read_full() read @len
 * bytes at @addr of @fv; flatview_read_continue() does the same when the caller already translated @addr to @mr at offset
 * @addr1 with @l bytes inside it; qemu_map_ram_ptr() is the host address of offset @addr of a RAM block.
 * Hold memory_rcu_read_lock() around them.
 */
MemTxResult flatview_read_continue(FlatView *fv, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len,
                                   hwaddr addr1, hwaddr l, MemoryRegion *mr);
MemTxResult flatview_read_full(FlatView *fv, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len);
MemTxResult flatview_read(FlatView *fv, hwaddr addr, MemTxAttrs attrs, uint8_t *buf, int len);
void *qemu_map_ram_ptr(RAMBlock *ram_block, ram_addr_t addr);

/* memory_access_is_direct: accesses of this kind to @mr are a host memory copy. */
static inline bool memory_access_is_direct(MemoryRegion *mr, bool is_write)
{
    if (is_write)
        return memory_region_is_ram(mr) && !mr->readonly && !memory_region_is_ram_device(mr);
    return (memory_region_is_ram(mr) && !memory_region_is_ram_device(mr)) || memory_region_is_romd(mr);
}

#ifdef __cplusplus
}
#endif

#endif
