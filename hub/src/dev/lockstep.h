/* Lockstep devices (lockstep.c): time granted at quantum boundaries and at the events they announce. */
#ifndef PLEXUS_HUB_DEV_LOCKSTEP_H
#define PLEXUS_HUB_DEV_LOCKSTEP_H

#include "dev/device.h"

/* Set up the device's grant timer (whether or not it runs in lockstep). */
void hub_dev_lockstep_init(hub_device *d);
/* A lockstep device was accessed: make sure time is granted to it at the next quantum boundary. Inline: every
 * access calls it, and most devices are not in lockstep. */
void hub_dev_lockstep_arm(hub_device *d);
static inline void hub_dev_lockstep_touch(hub_device *d)
{
    if (d->lockstep && !vtimer_pending(&d->grant_vt))
        hub_dev_lockstep_arm(d);
}
/* A lockstep device's reply announced its next event (0: none given): grant time then if that is earlier. */
void hub_dev_lockstep_next(hub_device *d, uint64_t next_event);

#endif
