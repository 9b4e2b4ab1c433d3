/* Deep copies of device configurations (devcfg.c), kept by devices that may be restarted. */
#ifndef PLEXUS_HUB_DEV_DEVCFG_H
#define PLEXUS_HUB_DEV_DEVCFG_H

#include "dev/devmgr.h"

/* A copy of @src and everything it points to; NULL when out of memory. */
hub_device_config *hub_dev_cfg_dup(const hub_device_config *src);
/* Accepts NULL. */
void hub_dev_cfg_free(hub_device_config *c);

#endif
