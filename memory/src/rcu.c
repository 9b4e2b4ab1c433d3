#define _GNU_SOURCE
/*
 * Read side of the map: a lock-free scheme needing no thread registration.
 *
 * Readers count themselves in one of two counters chosen by the parity of a generation number and re-check
 * the generation after counting (so a writer that already saw the counter at zero is never fooled). A
 * retired object may still be in use by readers counted in either parity; it is freed once each counter has
 * been seen at zero after the retirement. Writers never wait for readers when retiring (a device callback
 * running inside an access may change the map); only memory_region_destroy()/address_space_destroy() wait,
 * ignoring the calling thread's own read section.
 */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

static _Atomic uint64_t rcu_gen;
static _Atomic long rcu_readers[2];

static __thread unsigned rcu_depth __attribute__((tls_model("initial-exec")));
static __thread unsigned rcu_parity __attribute__((tls_model("initial-exec")));

void
mem_read_lock(void)
{
    if (rcu_depth++)
        return;
    for (;;) {
        uint64_t g = atomic_load(&rcu_gen);
        unsigned p = (unsigned)(g & 1);
        atomic_fetch_add(&rcu_readers[p], 1);
        if (atomic_load(&rcu_gen) == g) {
            rcu_parity = p;
            return;
        }
        atomic_fetch_sub(&rcu_readers[p], 1);
    }
}

void
mem_read_unlock(void)
{
    if (--rcu_depth)
        return;
    atomic_fetch_sub_explicit(&rcu_readers[rcu_parity], 1, memory_order_release);
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

typedef struct Retired {
    void *ptr;
    void (*fn)(void *);
    bool seen[2];
    struct Retired *next;
} Retired;

static pthread_mutex_t retire_lock = PTHREAD_MUTEX_INITIALIZER;
static Retired *retired;

/* The counts to ignore: the calling thread's own read section. */
static long self_count(unsigned p)
{
    return rcu_depth && rcu_parity == p ? 1 : 0;
}

void
mem_retire(void *ptr, void (*fn)(void *))
{
    Retired *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->ptr = ptr;
    r->fn = fn;
    /* Readers that start from now on count under the new generation and cannot see @ptr. */
    atomic_fetch_add(&rcu_gen, 1);
    pthread_mutex_lock(&retire_lock);
    r->next = retired;
    retired = r;
    pthread_mutex_unlock(&retire_lock);
    mem_reclaim();
}

void
mem_reclaim(void)
{
    Retired *done = NULL;

    pthread_mutex_lock(&retire_lock);
    bool zero[2];
    for (unsigned p = 0; p < 2; p++)
        zero[p] = atomic_load(&rcu_readers[p]) == self_count(p) && !rcu_depth;
    for (Retired **pp = &retired; *pp;) {
        Retired *r = *pp;
        for (unsigned p = 0; p < 2; p++)
            r->seen[p] |= zero[p];
        if (r->seen[0] && r->seen[1]) {
            *pp = r->next;
            r->next = done;
            done = r;
        } else {
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&retire_lock);
    while (done) {
        Retired *r = done;
        done = r->next;
        r->fn(r->ptr);
        free(r);
    }
}

static void wait_zero(unsigned p)
{
    long want = self_count(p);
    unsigned spins = 0;
    while (atomic_load(&rcu_readers[p]) != want) {
        if (++spins < 64) {
            sched_yield();
        } else {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
    }
}

void
mem_synchronize(void)
{
    /* Two flips: every reader that started before the call has left one of the two counters. */
    for (int i = 0; i < 2; i++) {
        uint64_t g = atomic_fetch_add(&rcu_gen, 1);
        wait_zero((unsigned)(g & 1));
    }
    /* Everything retired before now is unreachable. */
    pthread_mutex_lock(&retire_lock);
    Retired *all = retired;
    retired = NULL;
    pthread_mutex_unlock(&retire_lock);
    if (rcu_depth) {
        /* Our own read section may still use them: put them back for a later reclaim. */
        pthread_mutex_lock(&retire_lock);
        Retired **tail = &all;
        while (*tail)
            tail = &(*tail)->next;
        *tail = retired;
        retired = all;
        pthread_mutex_unlock(&retire_lock);
        return;
    }
    while (all) {
        Retired *r = all;
        all = r->next;
        r->fn(r->ptr);
        free(r);
    }
}
