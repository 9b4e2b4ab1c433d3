/* Supervision (supervise.c): restarting failed devices on the manager's poll path. */
#ifndef PLEXUS_HUB_DEV_SUPERVISE_H
#define PLEXUS_HUB_DEV_SUPERVISE_H

#include "dev/device.h"

/* Restart the failed devices whose backoff has passed (from hub_devmgr_poll() only: a restart forks, execs and
 * handshakes, which never happens inside a guest access). If an access was deferred for a restart since the last
 * call, wait out the backoff of the devices that are due one and restart them now. */
void hub_dev_supervise(hub_devmgr *m);

#endif
