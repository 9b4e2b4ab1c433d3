/* Supervision (supervise.c): restarting failed devices and the log of posted writes they had not applied. */
#ifndef PLEXUS_HUB_DEV_SUPERVISE_H
#define PLEXUS_HUB_DEV_SUPERVISE_H

#include "dev/device.h"

/* Restart the failed devices whose backoff has passed. */
void hub_dev_supervise(hub_devmgr *m);
/* A failed device that may still be restarted is restarted now (after the rest of its backoff), so an access
 * waits for it rather than failing. True if the device is up. */
bool hub_dev_await_restart(hub_device *d);
/* Remember a posted write until the device has applied it. */
void hub_dev_log_posted(hub_device *d, uint64_t seq, uint32_t region, uint64_t addr, uint32_t size, uint64_t data);
/* The device answered request @seq: every posted write before it was applied. */
void hub_dev_confirm(hub_device *d, uint64_t seq);

#endif
