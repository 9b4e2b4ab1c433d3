#include "vclock.h"

#include <stddef.h>

void vclock_init(vclock *c)
{
    *c = (vclock){ 0 };
}

void vclock_catch_up(vclock *c)
{
    uint64_t t = c->present(c->present_opaque);
    if (t > c->now)
        c->now = t;
}

uint64_t vclock_next_deadline(const vclock *c)
{
    return c->head ? c->head->deadline : VCLOCK_NEVER;
}

void vtimer_init(vtimer *t, vclock *c, vtimer_cb *cb, void *opaque)
{
    t->deadline = VCLOCK_NEVER;
    t->cb = cb;
    t->opaque = opaque;
    t->clock = c;
    t->next = NULL;
    t->fired_in = 0;
}

static bool unlink_from(vtimer **p, vtimer *t)
{
    for (; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            return true;
        }
    }
    return false;
}

void vtimer_del(vtimer *t)
{
    if (!vtimer_pending(t))
        return;
    if (!unlink_from(&t->clock->head, t))
        unlink_from(&t->clock->later, t);
    t->next = NULL;
    t->deadline = VCLOCK_NEVER;
}

static void insert(vtimer *t, uint64_t deadline)
{
    t->deadline = deadline;
    /* Equal deadlines fire in arming order: insert after every timer due at or before this one. */
    vtimer **p = &t->clock->head;
    while (*p && (*p)->deadline <= deadline)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

void vtimer_mod(vtimer *t, uint64_t deadline)
{
    vclock *c = t->clock;
    vtimer_del(t);
    if (deadline == VCLOCK_NEVER)
        return;
    if (c->depth && t->fired_in == c->advance && deadline <= c->now) {
        /* Fired in this advance and due again at or before now: the next advance, 1 ns on. */
        t->deadline = c->now + 1;
        t->next = c->later;
        c->later = t;
        return;
    }
    insert(t, deadline);
}

void vclock_advance(vclock *c, uint64_t ns)
{
    if (c->depth++ == 0)        /* a callback may advance again: one advance all the same */
        c->advance++;
    /* Callbacks see their deadline, not the executing instruction's time. */
    bool lagging = c->lagging;
    c->lagging = false;
    while (c->head && c->head->deadline <= ns) {
        vtimer *t = c->head;
        c->head = t->next;
        t->next = NULL;
        if (t->deadline > c->now)
            c->now = t->deadline;
        t->deadline = VCLOCK_NEVER;
        t->fired_in = c->advance;
        t->cb(t->opaque);
    }
    if (ns > c->now)
        c->now = ns;
    if (--c->depth == 0) {
        while (c->later) {
            vtimer *t = c->later;
            c->later = t->next;
            insert(t, t->deadline);
        }
    }
    c->lagging = lagging;
}
