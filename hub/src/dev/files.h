/* Files the machine gives a device (files.c): opened once per slot, handed to every process as descriptors. */
#ifndef PLEXUS_HUB_DEV_FILES_H
#define PLEXUS_HUB_DEV_FILES_H

#include "dev/device.h"

/* Open and lock @cfg's files into the slot (hub_dev_destroy closes them). Fails naming the device, the file and
 * the reason. */
int hub_dev_files_open(hub_device *d, const hub_device_config *cfg, Error **errp);
/*
 * Fill @g (room for d->n_files) with the slot's files as FileGrants, their descriptors appended to @passed
 * (room for PLX_MAX_PASSED_FDS, *@n_passed used). The incarnation must have an fd socket. Returns the number
 * of grants, or -EPROTO with @errp set.
 */
int hub_dev_files_grant(hub_device *d, Plx__FileGrant *g, Plx__FileGrant **gp, int *passed, unsigned *n_passed,
                        Error **errp);

#endif
