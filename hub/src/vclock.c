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
}

void vtimer_del(vtimer *t)
{
    if (!vtimer_pending(t))
        return;
    for (vtimer **p = &t->clock->head; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    t->next = NULL;
    t->deadline = VCLOCK_NEVER;
}

void vtimer_mod(vtimer *t, uint64_t deadline)
{
    vtimer_del(t);
    if (deadline == VCLOCK_NEVER)
        return;
    t->deadline = deadline;
    /* Equal deadlines fire in arming order: insert after every timer due at or before this one. */
    vtimer **p = &t->clock->head;
    while (*p && (*p)->deadline <= deadline)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

void vclock_advance(vclock *c, uint64_t ns)
{
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
        t->cb(t->opaque);
    }
    if (ns > c->now)
        c->now = ns;
    c->lagging = lagging;
}
