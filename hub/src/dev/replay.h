/* Posted writes kept until the device applied them, delivered again after a restart (replay.c). */
#ifndef PLEXUS_HUB_DEV_REPLAY_H
#define PLEXUS_HUB_DEV_REPLAY_H

#include "dev/device.h"

/* Remember a posted write until the device has applied it (restartable devices only). */
void hub_dev_log_posted(hub_device *d, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size, uint64_t data);
/* The device answered request @seq: every posted write before it was applied. */
void hub_dev_confirm(hub_device *d, uint64_t seq);

/* The writes a failed process had not applied, taken out of the slot's log for its successor. */
typedef struct hub_dev_replay {
    struct hub_posted *w;
    unsigned n;
    uint64_t dropped;       /* writes that fell out of the log unconfirmed */
} hub_dev_replay;
/* Take them (the state block's sequence numbers are reset for the new process). */
void hub_dev_replay_take(hub_device *d, hub_dev_replay *out);
/* Send them to the new process, in order, and log what happened. */
void hub_dev_replay_deliver(hub_device *d, hub_dev_replay *rp);
/* The restart failed: back into the log, for the next attempt. */
void hub_dev_replay_keep(hub_device *d, hub_dev_replay *rp);

#endif
