/* Starting a device process (spawn.c): program lookup, environment, inherited descriptors, namespaces. */
#ifndef PLEXUS_HUB_DEV_SPAWN_H
#define PLEXUS_HUB_DEV_SPAWN_H

#include "dev/device.h"

/* The device's state block (see struct plx_state_header), made once and kept across restarts. */
void hub_dev_make_state_block(hub_device *d);
/* Fork and exec the device's program (or the plugin runner) with its descriptors and environment. */
int hub_dev_spawn(hub_device *d, const hub_device_config *cfg, Error **errp);

#endif
