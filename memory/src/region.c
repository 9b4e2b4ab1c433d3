#define _GNU_SOURCE
/* Regions and the tree: initialisation, attributes, subregions, transactions, listeners. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t map_lock;
static pthread_once_t map_lock_once = PTHREAD_ONCE_INIT;
static unsigned transaction_depth;
static bool update_pending;
static bool publishing;
bool mem_global_dirty_log;
MemoryListener *mem_listeners;
AddressSpace *mem_address_spaces;

static void (*owner_ref)(struct Object *);
static void (*owner_unref)(struct Object *);

static void map_lock_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&map_lock, &a);
    pthread_mutexattr_destroy(&a);
}

void
mem_lock(void)
{
    pthread_once(&map_lock_once, map_lock_init);
    pthread_mutex_lock(&map_lock);
}

void
mem_unlock(void)
{
    pthread_mutex_unlock(&map_lock);
}

void
mem_update_pending(void)
{
    update_pending = true;
}

static void __attribute__((noreturn, format(printf, 1, 2))) fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("plexus-memory: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void check_mr(const MemoryRegion *mr, const char *fn)
{
    if (!mr_valid(mr))
        fatal("%s: region %p is not initialised", fn, (const void *)mr);
}

void
memory_region_transaction_begin(void)
{
    mem_lock();
    transaction_depth++;
}

void
memory_region_transaction_commit(void)
{
    if (transaction_depth == 0)
        fatal("memory_region_transaction_commit without begin");
    /* A change made by a listener while we publish is picked up by the loop, not published recursively. */
    if (--transaction_depth == 0 && !publishing) {
        publishing = true;
        while (update_pending) {
            update_pending = false;
            flatview_publish_all();
        }
        publishing = false;
    }
    mem_unlock();
}

/* Apply a change to the map as its own transaction (or as part of the caller's). */
#define MAP_CHANGE(...)                                                                                        \
    do {                                                                                                       \
        memory_region_transaction_begin();                                                                     \
        __VA_ARGS__;                                                                                           \
        update_pending = true;                                                                                 \
        memory_region_transaction_commit();                                                                    \
    } while (0)

/* ---- init ---- */

static Int128 size_from_u64(uint64_t size)
{
    return size == UINT64_MAX ? int128_2_64() : int128_make64(size);
}

void
memory_region_init(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size)
{
    memset(mr, 0, sizeof(*mr));
    mr->magic = MR_MAGIC;
    mr->owner = owner;
    mr->name = strdup(name ? name : "");
    mr->size = size_from_u64(size);
    mr->enabled = true;
    mr->global_locking = true;
}

/* Access sizes in an ops table must be 0 (default) or 1, 2, 4, 8; min <= max. */
static void check_ops(const MemoryRegionOps *ops, const char *name)
{
    if (!ops)
        return;
    unsigned v[4] = { ops->valid.min_access_size, ops->valid.max_access_size, ops->impl.min_access_size,
                      ops->impl.max_access_size };
    for (int i = 0; i < 4; i++)
        if (v[i] > 8 || (v[i] & (v[i] - 1)))
            fatal("region '%s': access size %u in its MemoryRegionOps is not 1, 2, 4 or 8", name ? name : "", v[i]);
    if ((v[0] && v[1] && v[0] > v[1]) || (v[2] && v[3] && v[2] > v[3]))
        fatal("region '%s': min_access_size above max_access_size in its MemoryRegionOps", name ? name : "");
}

void
memory_region_init_io(MemoryRegion *mr, struct Object *owner, const MemoryRegionOps *ops, void *opaque,
                      const char *name, uint64_t size)
{
    check_ops(ops, name);
    memory_region_init(mr, owner, name, size);
    mr->ops = ops;
    mr->opaque = opaque;
    mr->terminates = true;
}

static void ram_destructor(MemoryRegion *mr)
{
    ram_block_free(mr->ram_block);
    mr->ram_block = NULL;
}

/* Back @mr with fresh RAM: a sealed memfd mapped shared, or private anonymous memory. */
static bool ram_alloc(MemoryRegion *mr, uint64_t size, uint64_t max, bool share, bool noreserve, Error **errp)
{
    const char *name = mr->name;
    if (size == 0 || max < size) {
        error_setg(errp, "memory region '%s': invalid RAM size %" PRIu64 " (max %" PRIu64 ")", name, size, max);
        return false;
    }
    if (max > (uint64_t)SIZE_MAX / 2) {
        error_setg(errp, "memory region '%s': RAM size %" PRIu64 " is too large", name, max);
        return false;
    }
    int fd = -1;
    int flags = (share ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS) | (noreserve ? MAP_NORESERVE : 0);
    if (share) {
        fd = memfd_create(name[0] ? name : "plexus-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
            error_setg(errp, "memory region '%s': memfd_create: %s", name, strerror(errno));
            return false;
        }
        if (ftruncate(fd, (off_t)max) < 0) {
            error_setg(errp, "memory region '%s': cannot size memfd to %" PRIu64 " bytes: %s", name, max,
                       strerror(errno));
            close(fd);
            return false;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
            error_setg(errp, "memory region '%s': cannot seal memfd: %s", name, strerror(errno));
            close(fd);
            return false;
        }
    }
    void *p = mmap(NULL, (size_t)max, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) {
        error_setg(errp, "memory region '%s': cannot map %" PRIu64 " bytes of RAM: %s", name, max, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    RAMBlock *rb = ram_block_new(mr, p, size, max, p, (size_t)max, fd, errp);
    if (!rb) {
        munmap(p, (size_t)max);
        if (fd >= 0)
            close(fd);
        return false;
    }
    mr->ram_block = rb;
    mr->destructor = ram_destructor;
    return true;
}

/* Undo memory_region_init() after a failed RAM allocation: the region stays destroyable. */
static void init_failed(MemoryRegion *mr)
{
    free(mr->name);
    memset(mr, 0, sizeof(*mr));
}

static void init_ram_common(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                            uint64_t max, bool share, bool noreserve, Error **errp)
{
    memory_region_init(mr, owner, name, size);
    if (!ram_alloc(mr, size, max, share, noreserve, errp)) {
        init_failed(mr);
        return;
    }
    mr->ram = true;
    mr->terminates = true;
}

void
memory_region_init_ram_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                 Error **errp)
{
    init_ram_common(mr, owner, name, size, size, true, false, errp);
}

void
memory_region_init_ram(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size, Error **errp)
{
    init_ram_common(mr, owner, name, size, size, true, false, errp);
}

void
memory_region_init_ram_shared_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name,
                                        uint64_t size, bool share, Error **errp)
{
    init_ram_common(mr, owner, name, size, size, share, false, errp);
}

void
memory_region_init_ram_flags_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                       uint32_t ram_flags, Error **errp)
{
    if (ram_flags & ~(RAM_SHARED | RAM_NORESERVE)) {
        memset(mr, 0, sizeof(*mr));
        error_setg(errp, "memory region '%s': unknown RAM flags 0x%x", name ? name : "",
                   ram_flags & ~(RAM_SHARED | RAM_NORESERVE));
        return;
    }
    init_ram_common(mr, owner, name, size, size, ram_flags & RAM_SHARED, ram_flags & RAM_NORESERVE, errp);
}

void
memory_region_init_ram_flags(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                             uint32_t ram_flags, Error **errp)
{
    memory_region_init_ram_flags_nomigrate(mr, owner, name, size, ram_flags, errp);
}

void
memory_region_init_resizeable_ram(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                  uint64_t max_size, void (*resized)(const char *, uint64_t length, void *host),
                                  Error **errp)
{
    init_ram_common(mr, owner, name, size, max_size, true, false, errp);
    if (mr_valid(mr)) {
        mr->ram_block->resizeable = true;
        mr->ram_block->resized = resized;
    }
}

/* Map @fd (size checked/grown) and make it the RAM of @mr. On failure @fd is left open. */
static void init_ram_fd(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size, uint64_t align,
                        bool share, int fd, Error **errp)
{
    struct stat st;
    const char *n = name ? name : "";
    memset(mr, 0, sizeof(*mr));
    if (fd < 0 || fstat(fd, &st) < 0) {
        error_setg(errp, "memory region '%s': invalid fd %d: %s", n, fd, fd < 0 ? "negative" : strerror(errno));
        return;
    }
    if (size == 0 || size > (uint64_t)SIZE_MAX / 2) {
        error_setg(errp, "memory region '%s': invalid RAM size %" PRIu64, n, size);
        return;
    }
    if (align & (align - 1)) {
        error_setg(errp, "memory region '%s': alignment 0x%" PRIx64 " is not a power of two", n, align);
        return;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) {
        error_setg(errp, "memory region '%s': fd %d is not a mappable file", n, fd);
        return;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size && ftruncate(fd, (off_t)size) < 0) {
        error_setg(errp, "memory region '%s': fd %d holds %lld bytes, needs %" PRIu64 " and cannot grow: %s", n, fd,
                   (long long)st.st_size, size, strerror(errno));
        return;
    }
    int flags = share ? MAP_SHARED : MAP_PRIVATE;
    void *p;
    if (align > (uint64_t)sysconf(_SC_PAGESIZE)) {
        uint8_t *res = mmap(NULL, (size_t)(size + align), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (res == MAP_FAILED) {
            error_setg(errp, "memory region '%s': cannot reserve %" PRIu64 " bytes: %s", n, size + align,
                       strerror(errno));
            return;
        }
        uint8_t *aligned = (uint8_t *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
        p = mmap(aligned, (size_t)size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);
        if (p == MAP_FAILED) {
            munmap(res, (size_t)(size + align));
        } else {
            if (aligned > res)
                munmap(res, (size_t)(aligned - res));
            size_t tail = (size_t)((res + size + align) - (aligned + size));
            if (tail)
                munmap(aligned + size, tail);
        }
    } else {
        p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, flags, fd, 0);
    }
    if (p == MAP_FAILED) {
        error_setg(errp, "memory region '%s': cannot map fd %d (%" PRIu64 " bytes): %s", n, fd, size, strerror(errno));
        return;
    }
    memory_region_init(mr, owner, name, size);
    RAMBlock *rb = ram_block_new(mr, p, size, size, p, (size_t)size, fd, errp);
    if (!rb) {
        munmap(p, (size_t)size);
        init_failed(mr);
        return;
    }
    mr->ram_block = rb;
    mr->destructor = ram_destructor;
    mr->align = align;
    mr->ram = true;
    mr->terminates = true;
}

void
memory_region_init_ram_from_fd(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                               bool share, int fd, Error **errp)
{
    init_ram_fd(mr, owner, name, size, 0, share, fd, errp);
}

void
memory_region_init_ram_from_file(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                 uint64_t align, bool share, const char *path, Error **errp)
{
    memset(mr, 0, sizeof(*mr));
    if (!path) {
        error_setg(errp, "memory region '%s': no file path", name ? name : "");
        return;
    }
    struct stat st;
    int fd;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); /* a directory: anonymous file inside it */
    else
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        error_setg(errp, "memory region '%s': cannot open '%s': %s", name ? name : "", path, strerror(errno));
        return;
    }
    init_ram_fd(mr, owner, name, size, align, share, fd, errp);
    if (!mr_valid(mr))
        close(fd);
}

void
memory_region_init_ram_ptr(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size, void *ptr)
{
    memory_region_init(mr, owner, name, size);
    mr->ram_block = ram_block_new(mr, ptr, size, size, NULL, 0, -1, &error_abort);
    mr->destructor = ram_destructor;
    mr->ram = true;
    mr->terminates = true;
}

void
memory_region_init_ram_device_ptr(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                  void *ptr)
{
    memory_region_init_ram_ptr(mr, owner, name, size, ptr);
    mr->ram_device = true;
}

void
memory_region_init_alias(MemoryRegion *mr, struct Object *owner, const char *name, MemoryRegion *orig,
                         hwaddr offset, uint64_t size)
{
    check_mr(orig, "memory_region_init_alias");
    memory_region_init(mr, owner, name, size);
    mr->alias = orig;
    mr->alias_offset = offset;
    mem_lock();
    orig->alias_count++;
    mem_unlock();
}

void
memory_region_init_rom_nomigrate(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size,
                                 Error **errp)
{
    init_ram_common(mr, owner, name, size, size, true, false, errp);
    if (mr_valid(mr))
        mr->readonly = true;
}

void
memory_region_init_rom(MemoryRegion *mr, struct Object *owner, const char *name, uint64_t size, Error **errp)
{
    memory_region_init_rom_nomigrate(mr, owner, name, size, errp);
}

void
memory_region_init_rom_device_nomigrate(MemoryRegion *mr, struct Object *owner, const MemoryRegionOps *ops,
                                        void *opaque, const char *name, uint64_t size, Error **errp)
{
    check_ops(ops, name);
    memory_region_init(mr, owner, name, size);
    if (!ram_alloc(mr, size, size, true, false, errp)) {
        init_failed(mr);
        return;
    }
    mr->ops = ops;
    mr->opaque = opaque;
    mr->terminates = true;
    mr->rom_device = true;
    mr->romd_mode = true;
}

void
memory_region_init_rom_device(MemoryRegion *mr, struct Object *owner, const MemoryRegionOps *ops, void *opaque,
                              const char *name, uint64_t size, Error **errp)
{
    memory_region_init_rom_device_nomigrate(mr, owner, ops, opaque, name, size, errp);
}

void
memory_region_init_iommu(void *_iommu_mr, size_t instance_size, const char *mrtypename, Object *owner,
                         const char *name, uint64_t size)
{
    fatal("memory_region_init_iommu('%s'): IOMMU regions are not supported by this version", name ? name : "");
}

void
memory_region_destroy(MemoryRegion *mr)
{
    if (!mr_valid(mr))
        return;
    for (;;) {
        mem_lock();
        MemoryRegion *sub = mr->mmio_ptr_regions;
        if (sub) {
            mr->mmio_ptr_regions = sub->mmio_ptr_next;
            memory_region_del_subregion(mr, sub);
        }
        mem_unlock();
        if (!sub)
            break;
        memory_region_destroy(sub);
        free(sub);
    }
    mem_lock();
    if (transaction_depth)
        fatal("memory_region_destroy('%s') inside a transaction", mr->name);
    if (mr->container)
        fatal("memory_region_destroy('%s'): still mapped in '%s'", mr->name, mr->container->name);
    if (mr->alias_count)
        fatal("memory_region_destroy('%s'): %u alias(es) still point at it", mr->name, mr->alias_count);
    for (AddressSpace *as = mem_address_spaces; as; as = as->address_spaces_next)
        if (as->root == mr)
            fatal("memory_region_destroy('%s'): root of address space '%s'", mr->name, as->name);
    for (MemoryRegion *c = mr->subregions_first, *next; c; c = next) {
        next = c->subregions_next;
        c->container = NULL;
        c->subregions_next = c->subregions_prev = NULL;
    }
    mr->subregions_first = mr->subregions_last = NULL;
    if (mr->alias)
        mr->alias->alias_count--;
    mr->magic = 0;
    mem_unlock();

    /* Accesses on other threads may still be using a flat view that shows this region. */
    mem_synchronize();

    if (mr->destructor)
        mr->destructor(mr);
    while (mr->coalesced) {
        CoalescedMemoryRange *c = mr->coalesced;
        mr->coalesced = c->next;
        free(c);
    }
    free(mr->ioeventfds);
    free(mr->name);
    memset(mr, 0, sizeof(*mr));
}

/* ---- references ---- */

void
memory_set_owner_hooks(void (*ref)(struct Object *owner), void (*unref)(struct Object *owner))
{
    owner_ref = ref;
    owner_unref = unref;
}

void
memory_region_ref(MemoryRegion *mr)
{
    if (!mr || !mr->owner)
        return;
    __atomic_fetch_add(&mr->refcount, 1, __ATOMIC_RELAXED);
    if (owner_ref)
        owner_ref(mr->owner);
}

void
memory_region_unref(MemoryRegion *mr)
{
    if (!mr || !mr->owner)
        return;
    __atomic_fetch_sub(&mr->refcount, 1, __ATOMIC_RELAXED);
    if (owner_unref)
        owner_unref(mr->owner);
}

unsigned long
memory_region_refcount(const MemoryRegion *mr)
{
    return __atomic_load_n(&mr->refcount, __ATOMIC_RELAXED);
}

/* ---- queries ---- */

struct Object *
memory_region_owner(MemoryRegion *mr)
{
    return mr->owner;
}

uint64_t
memory_region_size(MemoryRegion *mr)
{
    if (int128_eq(mr->size, int128_2_64()))
        return UINT64_MAX;
    return int128_get64(mr->size);
}

bool
memory_region_is_ram_device(MemoryRegion *mr)
{
    return mr->ram_device;
}

const char *
memory_region_name(const MemoryRegion *mr)
{
    return mr->name ? mr->name : "";
}

uint8_t
memory_region_get_dirty_log_mask(MemoryRegion *mr)
{
    uint8_t mask = mr->dirty_log_mask;
    if (mem_global_dirty_log && mr->ram_block)
        mask |= 1u << DIRTY_MEMORY_MIGRATION;
    return mask;
}

bool
memory_region_is_logging(MemoryRegion *mr, uint8_t client)
{
    return client < DIRTY_MEMORY_NUM && (memory_region_get_dirty_log_mask(mr) & (1u << client));
}

bool
memory_region_is_nonvolatile(MemoryRegion *mr)
{
    return mr->nonvolatile;
}

void
memory_region_set_nonvolatile(MemoryRegion *mr, bool nonvolatile)
{
    check_mr(mr, "memory_region_set_nonvolatile");
    if (mr->nonvolatile != nonvolatile)
        MAP_CHANGE(mr->nonvolatile = nonvolatile);
}

int
memory_region_get_fd(MemoryRegion *mr)
{
    uint64_t off = 0;
    MemoryRegion *ram = mr_resolve_ram(mr, &off);
    return ram ? ram->ram_block->fd : -1;
}

void *
memory_region_get_ram_ptr(MemoryRegion *mr)
{
    uint64_t off = 0;
    MemoryRegion *ram = mr_resolve_ram(mr, &off);
    if (!ram || !ram->ram_block->host)
        return NULL;
    return ram->ram_block->host + off;
}

void
memory_region_ram_resize(MemoryRegion *mr, ram_addr_t newsize, Error **errp)
{
    check_mr(mr, "memory_region_ram_resize");
    RAMBlock *rb = mr->ram_block;
    if (!rb || !rb->resizeable) {
        error_setg(errp, "memory region '%s': not resizeable RAM", mr->name);
        return;
    }
    if (newsize == 0 || newsize > rb->max_length) {
        error_setg(errp, "memory region '%s': cannot resize to %" PRIu64 " bytes (max %" PRIu64 ")", mr->name,
                   (uint64_t)newsize, rb->max_length);
        return;
    }
    memory_region_transaction_begin();
    if (newsize < rb->used_length)
        memset(rb->host + newsize, 0, rb->used_length - newsize);
    rb->used_length = newsize;
    mr->size = int128_make64(newsize);
    /* Pages that appear or vanish count as written. */
    ram_mark_dirty(rb, 0, newsize, memory_region_get_dirty_log_mask(mr));
    update_pending = true;
    memory_region_transaction_commit();
    if (rb->resized)
        rb->resized(mr->name, newsize, rb->host);
}

uint64_t
memory_region_get_alignment(const MemoryRegion *mr)
{
    return mr->align;
}

bool
memory_region_is_mapped(MemoryRegion *mr)
{
    return mr->container != NULL;
}

/* ---- attributes ---- */

void
memory_region_set_log(MemoryRegion *mr, bool log, unsigned client)
{
    check_mr(mr, "memory_region_set_log");
    if (client >= DIRTY_MEMORY_NUM)
        fatal("memory_region_set_log('%s'): unknown dirty-log client %u", mr->name, client);
    uint8_t mask = (uint8_t)(1u << client);
    memory_region_transaction_begin();
    if (client == DIRTY_MEMORY_VGA) {
        if (log)
            mr->vga_logging_count++;
        else if (mr->vga_logging_count)
            mr->vga_logging_count--;
        log = mr->vga_logging_count > 0;
    }
    uint8_t newmask = log ? (mr->dirty_log_mask | mask) : (mr->dirty_log_mask & ~mask);
    if (newmask != mr->dirty_log_mask) {
        mr->dirty_log_mask = newmask;
        update_pending = true;
    }
    memory_region_transaction_commit();
}

void
memory_region_set_readonly(MemoryRegion *mr, bool readonly)
{
    check_mr(mr, "memory_region_set_readonly");
    if (mr->readonly != readonly)
        MAP_CHANGE(mr->readonly = readonly);
}

void
memory_region_rom_device_set_romd(MemoryRegion *mr, bool romd_mode)
{
    check_mr(mr, "memory_region_rom_device_set_romd");
    if (mr->romd_mode != romd_mode)
        MAP_CHANGE(__atomic_store_n(&mr->romd_mode, romd_mode, __ATOMIC_RELAXED));
}

void
memory_region_add_coalescing(MemoryRegion *mr, hwaddr offset, uint64_t size)
{
    check_mr(mr, "memory_region_add_coalescing");
    CoalescedMemoryRange *c = calloc(1, sizeof(*c));
    if (!c)
        fatal("out of memory");
    c->addr = offset;
    c->size = size;
    MAP_CHANGE({
        CoalescedMemoryRange **pp = &mr->coalesced;
        while (*pp)
            pp = &(*pp)->next;
        *pp = c;
        mr->coalesced_gen++;
        mr->flush_coalesced_mmio = true;
    });
}

void
memory_region_set_coalescing(MemoryRegion *mr)
{
    memory_region_add_coalescing(mr, 0, memory_region_size(mr));
}

void
memory_region_clear_coalescing(MemoryRegion *mr)
{
    check_mr(mr, "memory_region_clear_coalescing");
    if (mem_coalesced_flush)
        mem_coalesced_flush(mem_coalesced_flush_opaque);
    MAP_CHANGE({
        mr->flush_coalesced_mmio = false;
        while (mr->coalesced) {
            CoalescedMemoryRange *c = mr->coalesced;
            mr->coalesced = c->next;
            free(c);
        }
        mr->coalesced_gen++;
    });
}

void
memory_region_set_flush_coalesced(MemoryRegion *mr)
{
    check_mr(mr, "memory_region_set_flush_coalesced");
    if (!mr->flush_coalesced_mmio)
        MAP_CHANGE(mr->flush_coalesced_mmio = true);
}

void
memory_region_clear_flush_coalesced(MemoryRegion *mr)
{
    check_mr(mr, "memory_region_clear_flush_coalesced");
    if (mem_coalesced_flush)
        mem_coalesced_flush(mem_coalesced_flush_opaque);
    if (mr->flush_coalesced_mmio && !mr->coalesced)
        MAP_CHANGE(mr->flush_coalesced_mmio = false);
}

void
memory_set_coalesced_flush_hook(void (*flush)(void *opaque), void *opaque)
{
    mem_lock();
    mem_coalesced_flush_opaque = opaque;
    mem_coalesced_flush = flush;
    mem_unlock();
}

void
memory_region_clear_global_locking(MemoryRegion *mr)
{
    check_mr(mr, "memory_region_clear_global_locking");
    if (mr->global_locking)
        MAP_CHANGE(mr->global_locking = false);
}

/*
 * memory_region_dispatch_write() reads a region's eventfd array without the map lock, so the array is never
 * changed in place: a new one (ending with an entry whose e is NULL) replaces it and the old one is retired.
 */
static void ioeventfds_replace(MemoryRegion *mr, const MemoryRegionIoeventfd *add, const MemoryRegionIoeventfd *del)
{
    unsigned n = mr->ioeventfd_nb;
    MemoryRegionIoeventfd *v = calloc(n + 2, sizeof(*v)), *old = mr->ioeventfds;
    unsigned k = 0;
    bool removed = false;
    if (!v)
        fatal("out of memory");
    for (unsigned i = 0; i < n; i++) {
        const MemoryRegionIoeventfd *x = &old[i];
        if (del && !removed && x->addr == del->addr && x->size == del->size && x->match_data == del->match_data &&
            x->data == del->data && x->e == del->e) {
            removed = true;
            continue;
        }
        v[k++] = *x;
    }
    if (add)
        v[k++] = *add;
    mr->ioeventfd_nb = k;
    __atomic_store_n(&mr->ioeventfds, v, __ATOMIC_RELEASE);
    if (old)
        mem_retire(old, free);
}

void
memory_region_add_eventfd(MemoryRegion *mr, hwaddr addr, unsigned size, bool match_data, uint64_t data,
                          EventNotifier *e)
{
    check_mr(mr, "memory_region_add_eventfd");
    if (size > 8 || (size & (size - 1)))
        fatal("memory_region_add_eventfd('%s'): invalid size %u", mr->name, size);
    if (!e)
        fatal("memory_region_add_eventfd('%s'): no EventNotifier", mr->name);
    MemoryRegionIoeventfd ev = { addr, size, match_data, match_data ? data : 0, e, mr };
    MAP_CHANGE(ioeventfds_replace(mr, &ev, NULL));
}

void
memory_region_del_eventfd(MemoryRegion *mr, hwaddr addr, unsigned size, bool match_data, uint64_t data,
                          EventNotifier *e)
{
    check_mr(mr, "memory_region_del_eventfd");
    MemoryRegionIoeventfd ev = { addr, size, match_data, match_data ? data : 0, e, mr };
    MAP_CHANGE(ioeventfds_replace(mr, NULL, &ev));
}

/* ---- the tree ---- */

static void add_subregion(MemoryRegion *mr, hwaddr offset, MemoryRegion *sub, int priority)
{
    check_mr(mr, "memory_region_add_subregion");
    check_mr(sub, "memory_region_add_subregion");
    memory_region_transaction_begin();
    if (sub->container)
        fatal("memory_region_add_subregion('%s', '%s'): already mapped in '%s'", mr->name, sub->name,
              sub->container->name);
    if (sub == mr)
        fatal("memory_region_add_subregion('%s'): a region cannot contain itself", mr->name);
    sub->container = mr;
    sub->addr = offset;
    sub->priority = priority;
    /* Highest priority first; a newcomer goes before existing regions of equal priority. */
    MemoryRegion *other = mr->subregions_first;
    while (other && sub->priority < other->priority)
        other = other->subregions_next;
    sub->subregions_next = other;
    sub->subregions_prev = other ? other->subregions_prev : mr->subregions_last;
    if (sub->subregions_prev)
        sub->subregions_prev->subregions_next = sub;
    else
        mr->subregions_first = sub;
    if (other)
        other->subregions_prev = sub;
    else
        mr->subregions_last = sub;
    update_pending = true;
    memory_region_transaction_commit();
}

void
memory_region_add_subregion(MemoryRegion *mr, hwaddr offset, MemoryRegion *subregion)
{
    add_subregion(mr, offset, subregion, 0);
}

void
memory_region_add_subregion_overlap(MemoryRegion *mr, hwaddr offset, MemoryRegion *subregion, int priority)
{
    add_subregion(mr, offset, subregion, priority);
}

void
memory_region_del_subregion(MemoryRegion *mr, MemoryRegion *subregion)
{
    check_mr(mr, "memory_region_del_subregion");
    memory_region_transaction_begin();
    if (subregion->container != mr)
        fatal("memory_region_del_subregion('%s', '%s'): not a subregion of it", mr->name, subregion->name);
    if (subregion->subregions_prev)
        subregion->subregions_prev->subregions_next = subregion->subregions_next;
    else
        mr->subregions_first = subregion->subregions_next;
    if (subregion->subregions_next)
        subregion->subregions_next->subregions_prev = subregion->subregions_prev;
    else
        mr->subregions_last = subregion->subregions_prev;
    subregion->subregions_next = subregion->subregions_prev = NULL;
    subregion->container = NULL;
    update_pending = true;
    memory_region_transaction_commit();
}

void
memory_region_set_enabled(MemoryRegion *mr, bool enabled)
{
    check_mr(mr, "memory_region_set_enabled");
    if (mr->enabled != enabled)
        MAP_CHANGE(mr->enabled = enabled);
}

void
memory_region_set_address(MemoryRegion *mr, hwaddr addr)
{
    check_mr(mr, "memory_region_set_address");
    if (mr->addr != addr)
        MAP_CHANGE(mr->addr = addr);
}

void
memory_region_set_size(MemoryRegion *mr, uint64_t size)
{
    check_mr(mr, "memory_region_set_size");
    Int128 s = size_from_u64(size);
    if (mr->ram_block && !mr->ram_device && int128_gt(s, int128_make64(mr->ram_block->used_length)))
        fatal("memory_region_set_size('%s'): %" PRIu64 " bytes exceeds its RAM (%" PRIu64 ")", mr->name, size,
              mr->ram_block->used_length);
    if (int128_ne(mr->size, s))
        MAP_CHANGE(mr->size = s);
}

void
memory_region_set_alias_offset(MemoryRegion *mr, hwaddr offset)
{
    check_mr(mr, "memory_region_set_alias_offset");
    if (mr->alias_offset != offset)
        MAP_CHANGE(mr->alias_offset = offset);
}

/* ---- find ---- */

MemoryRegionSection
memory_region_find(MemoryRegion *mr, hwaddr addr, uint64_t size)
{
    MemoryRegionSection s = { 0 };
    check_mr(mr, "memory_region_find");
    mem_lock();
    MemoryRegion *root = mr;
    for (MemoryRegion *m = mr; m->container; m = m->container) {
        addr += m->addr;
        root = m->container;
    }
    AddressSpace *as = mem_address_spaces;
    while (as && as->root != root)
        as = as->address_spaces_next;
    if (!as || !size) {
        mem_unlock();
        return s;
    }
    FlatView *fv = as_view(as);
    u128 lo = addr, hi = (u128)addr + size;
    for (unsigned i = 0; i < fv->nr; i++) {
        /* first range overlapping [lo, hi) */
        const FlatRange *fr = &fv->ranges[i];
        if ((u128)fr->last < lo)
            continue;
        if ((u128)fr->start >= hi)
            break;
        u128 a = fr->start > lo ? fr->start : lo;
        u128 b = (u128)fr->last + 1 < hi ? (u128)fr->last + 1 : hi;
        s.mr = fr->mr;
        s.fv = fv;
        s.address_space = as;
        s.offset_within_region = fr->offset_in_region + (hwaddr)(a - fr->start);
        s.offset_within_address_space = (hwaddr)a;
        s.size = (Int128)(b - a);
        s.readonly = fr->readonly;
        memory_region_ref(s.mr);
        break;
    }
    mem_unlock();
    return s;
}

bool
memory_region_present(MemoryRegion *container, hwaddr addr)
{
    MemoryRegionSection s = memory_region_find(container, addr, 1);
    if (!s.mr || s.mr == container)
        return false;
    memory_region_unref(s.mr);
    return true;
}

/* ---- listeners ---- */

void
memory_listener_register(MemoryListener *listener, AddressSpace *filter)
{
    mem_lock();
    if (listener->registered)
        fatal("memory_listener_register: listener %p is already registered", (void *)listener);
    listener->address_space = filter;
    listener->registered = true;
    MemoryListener **pp = &mem_listeners;
    while (*pp && (*pp)->priority <= listener->priority)
        pp = &(*pp)->link_next;
    listener->link_next = *pp;
    *pp = listener;
    if (listener->begin)
        listener->begin(listener);
    if (mem_global_dirty_log && listener->log_global_start)
        listener->log_global_start(listener);
    for (AddressSpace *as = mem_address_spaces; as; as = as->address_spaces_next)
        if (!filter || filter == as)
            flatview_listener_replay(listener, as, true);
    if (listener->commit)
        listener->commit(listener);
    mem_unlock();
}

void
memory_listener_unregister(MemoryListener *listener)
{
    mem_lock();
    if (!listener->registered) {
        mem_unlock();
        return;
    }
    if (listener->begin)
        listener->begin(listener);
    for (AddressSpace *as = mem_address_spaces; as; as = as->address_spaces_next)
        if (!listener->address_space || listener->address_space == as)
            flatview_listener_replay(listener, as, false);
    if (listener->commit)
        listener->commit(listener);
    for (MemoryListener **pp = &mem_listeners; *pp; pp = &(*pp)->link_next) {
        if (*pp == listener) {
            *pp = listener->link_next;
            break;
        }
    }
    listener->registered = false;
    listener->link_next = NULL;
    listener->address_space = NULL;
    mem_unlock();
}

static void global_dirty_log(bool on)
{
    memory_region_transaction_begin();
    if (mem_global_dirty_log != on) {
        mem_global_dirty_log = on;
        update_pending = true;
        if (on) {
            for (MemoryListener *l = mem_listeners; l; l = l->link_next)
                if (l->log_global_start)
                    l->log_global_start(l);
        } else {
            MemoryListener *v[256];
            unsigned n = 0;
            for (MemoryListener *l = mem_listeners; l && n < 256; l = l->link_next)
                v[n++] = l;
            while (n--)
                if (v[n]->log_global_stop)
                    v[n]->log_global_stop(v[n]);
        }
    }
    memory_region_transaction_commit();
}

void
memory_global_dirty_log_start(void)
{
    global_dirty_log(true);
}

void
memory_global_dirty_log_stop(void)
{
    global_dirty_log(false);
}

void
memory_global_dirty_log_sync(void)
{
    mem_lock();
    for (AddressSpace *as = mem_address_spaces; as; as = as->address_spaces_next) {
        FlatView *fv = as_view(as);
        for (unsigned i = 0; i < fv->nr; i++) {
            const FlatRange *fr = &fv->ranges[i];
            if (!fr->dirty_log_mask)
                continue;
            MemoryRegionSection s;
            section_from_range(&s, as, fv, fr);
            for (MemoryListener *l = mem_listeners; l; l = l->link_next)
                if (l->log_sync && (!l->address_space || l->address_space == as))
                    l->log_sync(l, &s);
        }
    }
    mem_unlock();
}

/* ---- address spaces ---- */

void
address_space_init(AddressSpace *as, MemoryRegion *root, const char *name)
{
    check_mr(root, "address_space_init");
    memset(as, 0, sizeof(*as));
    as->name = strdup(name ? name : "anonymous");
    as->root = root;
    as->current_map = calloc(1, sizeof(FlatView));
    if (!as->name || !as->current_map)
        fatal("out of memory");
    memory_region_transaction_begin();
    AddressSpace **pp = &mem_address_spaces;
    while (*pp)
        pp = &(*pp)->address_spaces_next;
    *pp = as;
    update_pending = true;
    memory_region_transaction_commit();
}

void
address_space_destroy(AddressSpace *as)
{
    mem_lock();
    if (transaction_depth)
        fatal("address_space_destroy('%s') inside a transaction", as->name);
    MemoryListener *l = mem_listeners;
    while (l) {
        MemoryListener *next = l->link_next;
        if (l->address_space == as)
            memory_listener_unregister(l);
        else if (!l->address_space) {
            if (l->begin)
                l->begin(l);
            flatview_listener_replay(l, as, false);
            if (l->commit)
                l->commit(l);
        }
        l = next;
    }
    for (AddressSpace **pp = &mem_address_spaces; *pp; pp = &(*pp)->address_spaces_next) {
        if (*pp == as) {
            *pp = as->address_spaces_next;
            break;
        }
    }
    mem_unlock();
    mem_synchronize();
    flatview_free(as->current_map);
    free(as->ioeventfds);
    free(as->name);
    memset(as, 0, sizeof(*as));
}

FlatView *
address_space_to_flatview(AddressSpace *as)
{
    return as_view(as);
}

/* ---- execution from MMIO ---- */

bool
memory_region_request_mmio_ptr(MemoryRegion *mr, hwaddr addr)
{
    check_mr(mr, "memory_region_request_mmio_ptr");
    if (!mr->ops || !mr->ops->request_ptr)
        return false;
    unsigned size = 0, offset = 0;
    void *ptr = mr->ops->request_ptr(mr->opaque, addr, &size, &offset);
    if (!ptr || !size)
        return false;
    MemoryRegion *sub = calloc(1, sizeof(*sub));
    if (!sub)
        return false;
    char name[64];
    snprintf(name, sizeof(name), "%s-mmio-ptr", mr->name);
    memory_region_init_ram_device_ptr(sub, NULL, name, size, ptr);
    sub->ram_device = false; /* executable memory: plain RAM accesses */
    mem_lock();
    sub->mmio_ptr_next = mr->mmio_ptr_regions;
    mr->mmio_ptr_regions = sub;
    memory_region_add_subregion_overlap(mr, offset, sub, 1);
    mem_unlock();
    return true;
}

void
memory_region_invalidate_mmio_ptr(MemoryRegion *mr, hwaddr offset, unsigned size)
{
    check_mr(mr, "memory_region_invalidate_mmio_ptr");
    mem_lock();
    for (MemoryRegion **pp = &mr->mmio_ptr_regions; *pp;) {
        MemoryRegion *sub = *pp;
        u128 a = sub->addr, b = a + (u128)memory_region_size(sub);
        if (a < (u128)offset + size && (u128)offset < b) {
            *pp = sub->mmio_ptr_next;
            memory_region_del_subregion(mr, sub);
            mem_unlock();
            memory_region_destroy(sub);
            free(sub);
            mem_lock();
        } else {
            pp = &sub->mmio_ptr_next;
        }
    }
    mem_unlock();
}

/* ---- IOMMU: not supported ---- */

#define NO_IOMMU(fn) fatal("%s: IOMMU regions are not supported by this version", fn)

uint64_t
memory_region_iommu_get_min_page_size(IOMMUMemoryRegion *iommu_mr)
{
    NO_IOMMU("memory_region_iommu_get_min_page_size");
}

void
memory_region_notify_iommu(IOMMUMemoryRegion *iommu_mr, IOMMUTLBEntry entry)
{
    NO_IOMMU("memory_region_notify_iommu");
}

void
memory_region_notify_one(IOMMUNotifier *notifier, IOMMUTLBEntry *entry)
{
    NO_IOMMU("memory_region_notify_one");
}

void
memory_region_register_iommu_notifier(MemoryRegion *mr, IOMMUNotifier *n)
{
    NO_IOMMU("memory_region_register_iommu_notifier");
}

void
memory_region_iommu_replay(IOMMUMemoryRegion *iommu_mr, IOMMUNotifier *n)
{
    NO_IOMMU("memory_region_iommu_replay");
}

void
memory_region_iommu_replay_all(IOMMUMemoryRegion *iommu_mr)
{
    NO_IOMMU("memory_region_iommu_replay_all");
}

void
memory_region_unregister_iommu_notifier(MemoryRegion *mr, IOMMUNotifier *n)
{
    NO_IOMMU("memory_region_unregister_iommu_notifier");
}

int
memory_region_iommu_get_attr(IOMMUMemoryRegion *iommu_mr, enum IOMMUMemoryRegionAttr attr, void *data)
{
    NO_IOMMU("memory_region_iommu_get_attr");
}
