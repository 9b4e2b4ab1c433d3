/* Proxy io regions (proxy.c): the MemoryRegionOps through which guest accesses reach a device. */
#ifndef PLEXUS_HUB_DEV_PROXY_H
#define PLEXUS_HUB_DEV_PROXY_H

#include "dev/device.h"

/* Point @ops (a device region's, with its access rules filled in; opaque: its hub_region) at the proxy. */
void hub_dev_proxy_set_ops(MemoryRegionOps *ops);

/* hub_devmgr_sync() for one device; also before a shadow read that follows posted writes. 0, or -EIO if the
 * device failed (before or during it). */
int hub_dev_sync(hub_device *d);

#endif
