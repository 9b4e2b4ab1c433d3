/* Proxy io regions (proxy.c): the MemoryRegionOps through which guest accesses reach a device. */
#ifndef PLEXUS_HUB_DEV_PROXY_H
#define PLEXUS_HUB_DEV_PROXY_H

#include "dev/device.h"

/* The ops of a device region (opaque: its hub_region). */
void hub_proxy_init_ops(MemoryRegionOps *ops);

#endif
