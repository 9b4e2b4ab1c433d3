#define _GNU_SOURCE
/*
 * Read side of the map: an epoch scheme with one reader record per thread, created automatically on a
 * thread's first access (callers never register) and recycled when the thread exits.
 *
 * A reader entering its outermost section publishes the current epoch in its record with one atomic
 * exchange (the only full barrier on the read side) and clears it with a plain release store on exit. A
 * writer unpublishes an object, then bumps the epoch: the object may be freed once every record is idle
 * or shows an epoch at least that new. Retiring never waits (a device callback running inside an access
 * may change the map); retired objects are freed by later commits. memory_region_destroy() and
 * address_space_destroy() wait for older readers, ignoring the calling thread's own section.
 */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

typedef struct Reader {
    _Atomic uint64_t active; /* 0: outside; else the epoch seen on entry */
    _Atomic bool in_use;
    struct Reader *next;     /* list only grows; records are reused, never freed */
} Reader;

static _Atomic uint64_t epoch = 1;
static Reader *_Atomic readers;
static pthread_mutex_t readers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;

static __thread Reader *my_reader __attribute__((tls_model("initial-exec")));
static __thread unsigned my_depth __attribute__((tls_model("initial-exec")));

static void reader_release(void *p)
{
    Reader *r = p;
    atomic_store(&r->active, 0);
    atomic_store(&r->in_use, false);
    if (r == my_reader)
        my_reader = NULL;
}

/* After fork() only the calling thread exists: other threads' records are idle for good. */
static void reader_atfork_child(void)
{
    pthread_mutex_init(&readers_lock, NULL);
    for (Reader *r = atomic_load(&readers); r; r = r->next) {
        if (r != my_reader) {
            atomic_store(&r->active, 0);
            atomic_store(&r->in_use, false);
        }
    }
}

static void reader_init(void)
{
    pthread_key_create(&reader_key, reader_release);
    pthread_atfork(NULL, NULL, reader_atfork_child);
}

static Reader *reader_get(void)
{
    pthread_once(&reader_once, reader_init);
    pthread_mutex_lock(&readers_lock);
    Reader *r;
    for (r = atomic_load(&readers); r; r = r->next)
        if (!atomic_load(&r->in_use))
            break;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            abort();
        r->next = atomic_load(&readers);
        atomic_store(&readers, r);
    }
    atomic_store(&r->in_use, true);
    pthread_mutex_unlock(&readers_lock);
    pthread_setspecific(reader_key, r);
    my_reader = r;
    return r;
}

void
mem_read_lock(void)
{
    if (my_depth++)
        return;
    Reader *r = my_reader;
    if (__builtin_expect(!r, 0))
        r = reader_get();
    atomic_exchange(&r->active, atomic_load_explicit(&epoch, memory_order_acquire));
}

void
mem_read_unlock(void)
{
    if (--my_depth)
        return;
    atomic_store_explicit(&my_reader->active, 0, memory_order_release);
}

void
memory_rcu_read_lock(void)
{
    mem_read_lock();
}

void
memory_rcu_read_unlock(void)
{
    mem_read_unlock();
}

/* Oldest epoch among readers in a section (UINT64_MAX if none); the caller's own section counts only when
 * @self is true. */
static uint64_t oldest_reader(bool self)
{
    uint64_t min = UINT64_MAX;
    for (Reader *r = atomic_load(&readers); r; r = r->next) {
        if (!self && r == my_reader)
            continue;
        uint64_t a = atomic_load(&r->active);
        if (a && a < min)
            min = a;
    }
    return min;
}

typedef struct Retired {
    void *ptr;
    void (*fn)(void *);
    uint64_t epoch; /* free once every reader is idle or entered at this epoch or later */
    struct Retired *next;
} Retired;

static pthread_mutex_t retire_lock = PTHREAD_MUTEX_INITIALIZER;
static Retired *retired;

static void free_list(Retired *r)
{
    while (r) {
        Retired *next = r->next;
        r->fn(r->ptr);
        free(r);
        r = next;
    }
}

/* Detach the retired objects older than @limit. */
static Retired *take_older(uint64_t limit)
{
    Retired *done = NULL;
    pthread_mutex_lock(&retire_lock);
    for (Retired **pp = &retired; *pp;) {
        Retired *r = *pp;
        if (r->epoch <= limit) {
            *pp = r->next;
            r->next = done;
            done = r;
        } else {
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&retire_lock);
    return done;
}

void
mem_retire(void *ptr, void (*fn)(void *))
{
    Retired *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->ptr = ptr;
    r->fn = fn;
    /* @ptr is already unreachable for new readers: those entering from now on see a newer epoch. */
    r->epoch = atomic_fetch_add(&epoch, 1) + 1;
    pthread_mutex_lock(&retire_lock);
    r->next = retired;
    retired = r;
    pthread_mutex_unlock(&retire_lock);
    mem_reclaim();
}

void
mem_reclaim(void)
{
    free_list(take_older(oldest_reader(true)));
}

void
mem_synchronize(void)
{
    uint64_t target = atomic_fetch_add(&epoch, 1) + 1;
    unsigned spins = 0;
    while (oldest_reader(false) < target) {
        if (++spins < 64) {
            sched_yield();
        } else {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
    }
    mem_reclaim();
}
