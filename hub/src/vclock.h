/*
 * Virtual clock and timers of the hub.
 *
 * Virtual time is a count of nanoseconds that starts at 0 and only moves forward when its owner (the CPU loop)
 * calls vclock_advance(). Timers fire from inside vclock_advance(), in deadline order, on the calling thread.
 * Single-threaded: every function here must be called from the hub's main thread.
 *
 * Lifetime: the caller allocates vclock and vtimer (embed them). A vtimer must be deleted (vtimer_del) or
 * never armed before its memory goes away. A callback may re-arm or delete any timer, itself included.
 */
#ifndef PLEXUS_HUB_VCLOCK_H
#define PLEXUS_HUB_VCLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define VCLOCK_NEVER UINT64_MAX

typedef struct vtimer vtimer;
typedef void vtimer_cb(void *opaque);

struct vtimer {
    uint64_t deadline;      /* VCLOCK_NEVER while not armed */
    vtimer_cb *cb;
    void *opaque;
    struct vclock *clock;
    vtimer *next;           /* private: the clock's list, sorted by deadline */
    uint64_t fired_in;      /* private: the advance it last fired in */
};

typedef struct vclock {
    uint64_t now;
    vtimer *head;           /* private */
    uint64_t advance;       /* private: count of vclock_advance() calls */
    unsigned depth;         /* private: > 0 while one runs */
    vtimer *later;          /* private: timers re-armed by their own callback for the next advance */
    /*
     * While the CPU executes a slice, `now` lags behind the instruction being executed. The CPU then sets
     * @lagging and @present (the virtual time of that instruction, never earlier than before); vclock_now()
     * moves `now` up to it, so whatever a guest access causes (a request to a device, an event-log line, a timer
     * armed from it) carries the time of the instruction that made the access. Moving `now` this way fires no
     * timer: the CPU fires them (vclock_advance) before it lets an access observe a time past their deadline.
     */
    bool lagging;
    uint64_t (*present)(void *opaque);
    void *present_opaque;
} vclock;

void vclock_init(vclock *c);

void vclock_catch_up(vclock *c);

static inline uint64_t vclock_now(vclock *c)
{
    if (__builtin_expect(c->lagging, 0))
        vclock_catch_up(c);
    return c->now;
}

/* Deadline of the earliest armed timer, or VCLOCK_NEVER. */
uint64_t vclock_next_deadline(const vclock *c);

/*
 * Move time forward to @ns (never backward: an earlier @ns is ignored), firing every timer whose deadline is
 * <= @ns in deadline order. While a callback runs, vclock_now() is that timer's deadline, or the time already
 * reached if that is later (a timer armed for a time already past fires at the present). A timer fires at most
 * once per call at any one time: one that fired and is armed again (by its callback or while it runs) at or
 * before vclock_now() is due 1 ns later and waits for the next call, so time always moves on between its fires.
 */
void vclock_advance(vclock *c, uint64_t ns);

void vtimer_init(vtimer *t, vclock *c, vtimer_cb *cb, void *opaque);

/* Arm (or re-arm) @t to fire at absolute virtual time @deadline. A deadline in the past fires at the next advance. */
void vtimer_mod(vtimer *t, uint64_t deadline);

/* Disarm @t; harmless if it is not armed. */
void vtimer_del(vtimer *t);

static inline bool vtimer_pending(const vtimer *t) { return t->deadline != VCLOCK_NEVER; }

#endif
