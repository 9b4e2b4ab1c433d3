/* The hub's side of the handshake (handshake.c, docs/protocol.md) and accepting a device that attaches. */
#ifndef PLEXUS_HUB_DEV_HANDSHAKE_H
#define PLEXUS_HUB_DEV_HANDSHAKE_H

#include "dev/device.h"

/* Hello + Declare in, Hello + Config (+ descriptors, + the ring) out, Ready in. @restart: the declaration must
 * be the one the device made before (its regions stay mapped). The Hello is due by @hello_deadline
 * (hub_dev_now_ms()). */
int hub_dev_handshake(hub_device *d, const hub_device_config *cfg, uint64_t hello_deadline, bool restart,
                      Error **errp);
/* Bring up d->inc (fresh, see hub_dev_inc_begin): bind its channel, start the process (or wait for it to
 * attach), handshake. On failure the incarnation holds what was made: hub_dev_inc_end() it. */
int hub_dev_start(hub_device *d, const hub_device_config *cfg, bool restart, Error **errp);
/* Wait on the manager's attach socket until @deadline for the device called d->name; hand it the endpoint. */
int hub_dev_accept_attach(hub_device *d, uint64_t deadline, Error **errp);

#endif
