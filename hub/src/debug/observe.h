/*
 * Two CPU observers as one (the CPU takes one): each gets what it asked for. The pair must outlive the CPU.
 */
#ifndef PLEXUS_HUB_DEBUG_OBSERVE_H
#define PLEXUS_HUB_DEBUG_OBSERVE_H

#include "cpu/cpu.h"

typedef struct hub_observer_pair {
    hub_cpu_observer obs;       /* give the CPU this, with the pair as its opaque */
    const hub_cpu_observer *a, *b;
    void *oa, *ob;
} hub_observer_pair;

/* Either observer may be NULL. Returns the observer to give the CPU (NULL when both are NULL) and sets
 * *@opaque to what goes with it. */
const hub_cpu_observer *hub_observer_pair_init(hub_observer_pair *p, const hub_cpu_observer *a, void *oa,
                                               const hub_cpu_observer *b, void *ob, void **opaque);

#endif
