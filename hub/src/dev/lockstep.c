/* Lockstep devices: time granted at quantum boundaries and at the events they announce. */
#include "dev/lockstep.h"

#include <inttypes.h>

#include "dev/link.h"
#include "dev/serve.h"

/* ---- lockstep -------------------------------------------------------------------------------------------- */

static uint64_t quantum(const hub_devmgr *m)
{
    return m->env.quantum_ns ? m->env.quantum_ns : HUB_DEFAULT_QUANTUM_NS;
}

/* The first quantum boundary after @t. */
static uint64_t next_boundary(const hub_devmgr *m, uint64_t t)
{
    uint64_t q = quantum(m);
    return t / q * q + q;
}

void
hub_dev_lockstep_arm(hub_device *d)
{
    vtimer_mod(&d->grant_vt, next_boundary(d->m, vclock_now(d->m->env.clock)));
}

void
hub_dev_lockstep_next(hub_device *d, uint64_t next_event)
{
    if (!d->lockstep || !next_event)
        return;
    uint64_t now = vclock_now(d->m->env.clock);
    if (next_event != VCLOCK_NEVER && next_event > now && next_event < d->grant_vt.deadline)
        vtimer_mod(&d->grant_vt, next_event);   /* the event comes before the next boundary: grant it exactly */
}

/* A grant is due: the device advances to now (a quantum boundary, or the event it announced) and says when it
 * next needs time. Runs inside vclock_advance(): the CPU is stopped at this virtual time meanwhile. */
static void grant_cb(void *opaque)
{
    hub_device *d = opaque;
    if (d->failed)
        return;
    uint64_t now = vclock_now(d->m->env.clock);
    Plx__TimeGrant g = PLX__TIME_GRANT__INIT;
    g.until_ns = now;
    Plx__Envelope env = PLX__ENVELOPE__INIT;
    env.msg_case = PLX__ENVELOPE__MSG_TIME_GRANT;
    env.time_grant = &g;
    uint64_t next = VCLOCK_NEVER, t0 = hub_dev_now_ns();
    if (hub_dev_send(d, &env) < 0 || hub_dev_wait_reached(d, now, &next) < 0)
        return;
    d->stats.grants++;
    /* The device now stands at @now: an event it names at or before it is behind it. */
    bool idle = next == VCLOCK_NEVER || next <= now;
    hub_dev_event(d, "grant next %" PRIu64, idle ? 0 : next);
    hub_dev_observe(d->m, grant, d->name, idle ? 0 : next, hub_dev_now_ns() - t0, now);
    if (idle)
        return;     /* nothing until it is accessed */
    uint64_t b = next_boundary(d->m, now);
    vtimer_mod(&d->grant_vt, next < b ? next : b);
}


void
hub_dev_lockstep_init(hub_device *d)
{
    vtimer_init(&d->grant_vt, d->m->env.clock, grant_cb, d);
}
