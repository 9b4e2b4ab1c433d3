/* What a device sends (serve.c): its own messages, and the answers the hub waits for while serving the rest. */
#ifndef PLEXUS_HUB_DEV_SERVE_H
#define PLEXUS_HUB_DEV_SERVE_H

#include "dev/device.h"

/* Act on one message the device sent on its own (not an answer being waited for). Releases the envelope. */
void hub_dev_serve(hub_device *d, Plx__Envelope *env);
/* Serve what the device has queued, without blocking, up to a bound. Returns the number served. */
int hub_dev_drain(hub_device *d);
/* A process that ended: what it sent last that is only words (its log, the console's output), taken from its
 * channel before the channel goes; the rest is dropped. */
void hub_dev_last_words(hub_device *d);
/* A Log record from the device, escaped and bounded, to the hub's log. */
void hub_dev_serve_log(hub_device *d, const Plx__Log *lg);

/* An MmioReply's content. */
typedef struct hub_dev_reply {
    uint64_t data;
    MemTxResult res;
    uint64_t busy_ns;       /* lockstep: bus time the access took */
    uint64_t next_event;    /* lockstep: the device's next event (0: not given) */
} hub_dev_reply;
/* Wait for the MmioReply to request @seq (@what names it in the failure), serving the rest meanwhile. */
int hub_dev_wait_reply(hub_device *d, uint64_t seq, hub_dev_reply *out, const char *what);
/* Wait until the device answered TimerFire @seq with TimerDone. */
int hub_dev_wait_timer_done(hub_device *d, uint64_t seq);
/* Wait for TimeReached{@until}; the device's next event in *@next_event (VCLOCK_NEVER: none). */
int hub_dev_wait_reached(hub_device *d, uint64_t until, uint64_t *next_event);

#endif
